//! The upstream's site tree, copied into this relay's registry.
//!
//! The relay token reads the network document and the sites of its subtree
//! (`GET /api/network`, `GET /api/sites` on the upstream). Each is written here with
//! the upstream's document id, so a document has one id at every tier and a device
//! can sync with any relay of its chain. Sites that appear upstream appear here at
//! the next copy ([`super::MIRROR_EVERY`]); a site renamed, moved or deactivated
//! upstream is updated. Sites created on this relay itself stay local (they are not
//! in the upstream's tree, so the upstream refuses their documents).
//!
//! Each site's chain of monthly documents (`GET /api/sites/chains`, docs/growth.md) is
//! copied too, so that this relay knows the site's archives and applies the same
//! policy to them as its upstream (`SiteTree::access_at`: writable by devices through
//! the grace week, then read-only). The link follows an archive until
//! [`ARCHIVE_FOLLOW_MARGIN_MS`] after its grace week ends, so that devices' late
//! changes taken here reach the upstream, and changes the upstream took reach here.

use std::collections::HashSet;

use dealersync_core::protocol::{DocumentId, StorageId};
use dealersync_core::schema::Millis;
use dealersync_core::time::{DAY_MS, now_ms};
use rusqlite::{OptionalExtension, params};
use serde::Deserialize;

use super::UpstreamError;
use crate::api::sites::{SiteChain, SiteView};
use crate::registry::{ChainRecord, Registry, RegistryError};

/// How long after an archive's grace week this relay still follows it: a relay cut off
/// from its upstream at the end of the week still exchanges the archive's last changes
/// when the link returns within this margin.
pub const ARCHIVE_FOLLOW_MARGIN_MS: Millis = 7 * DAY_MS;

/// `GET /api/network`'s answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct NetworkAnswer {
    pub(super) document_id: DocumentId,
}

/// Writes the upstream's network document id, `sites` and their `chains` into
/// `registry` (inserting new sites, updating known ones; `None` from an upstream
/// without chains leaves the chains here as they are); returns the documents to follow
/// at `now`: the network document first, every site's working document, and the
/// archives of those sites still taking changes.
pub fn mirror_sites(
    registry: &Registry,
    network: DocumentId,
    sites: &[SiteView],
    chains: Option<&[SiteChain]>,
    now: Millis,
) -> Result<Vec<DocumentId>, UpstreamError> {
    let mut docs = vec![network];
    let _changing = registry.changes.lock().unwrap_or_else(|p| p.into_inner());
    {
        let mut conn = registry.conn();
        let tx = conn.transaction().map_err(RegistryError::from)?;
        // Children may be listed before their parents: check references at commit.
        tx.pragma_update(None, "defer_foreign_keys", "ON")
            .map_err(RegistryError::from)?;
        let known = |id: &str| -> Result<bool, RegistryError> {
            Ok(sites.iter().any(|s| s.id == id)
                || tx
                    .query_row("SELECT 1 FROM sites WHERE id = ?1", [id], |_| Ok(()))
                    .optional()?
                    .is_some())
        };
        tx.execute(
            "INSERT INTO registry_settings (key, value) VALUES ('network_document', ?1)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [network.to_string()],
        )
        .map_err(RegistryError::from)?;
        for site in sites {
            let doc: DocumentId =
                site.document_id
                    .parse()
                    .map_err(|e| UpstreamError::Upstream {
                        url: "/api/sites".into(),
                        reason: format!("site {:?} has a bad document id: {e}", site.id),
                    })?;
            docs.push(doc);
            // The top site's parent is not in the subtree: here the top site has
            // none (the access rules only walk up from a site to the principal's).
            let parent = match &site.parent {
                Some(p) if known(p)? => Some(p.clone()),
                _ => None,
            };
            tx.execute(
                "INSERT INTO sites (id, name, kind, parent, document_id, active, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT(id) DO UPDATE SET name = excluded.name, kind = excluded.kind,
                   parent = excluded.parent, document_id = excluded.document_id,
                   active = excluded.active",
                params![
                    site.id,
                    site.name,
                    site.kind.as_str(),
                    parent,
                    doc.to_string(),
                    site.active,
                    now_ms()
                ],
            )
            .map_err(RegistryError::from)?;
        }
        for chain in chains.unwrap_or_default() {
            let Some(site) = sites.iter().find(|s| s.id == chain.site) else {
                continue;
            };
            match check_chain(&chain.chain, &site.document_id) {
                Ok(()) => Registry::mirror_chain(&tx, &chain.site, &chain.chain)?,
                // Read between two carry-overs, or wrong: the next copy sets it.
                Err(why) => {
                    tracing::warn!(site = %chain.site, why, "not mirroring the site's chain this time")
                }
            }
        }
        tx.commit().map_err(RegistryError::from)?;
    }
    registry.rebuild_tree()?;
    let ours: HashSet<&str> = sites.iter().map(|s| s.id.as_str()).collect();
    docs.extend(
        followed_archives(registry, now)?
            .into_iter()
            .filter(|(_, site)| ours.contains(site.as_str()))
            .map(|(doc, _)| doc),
    );
    Ok(docs)
}

/// Whether `chain` is one the registry can hold for a site whose working document is
/// `working`: the working document last, with no end; every archive before it with
/// the month after it and the end of its grace week.
fn check_chain(chain: &[ChainRecord], working: &str) -> Result<(), &'static str> {
    let Some((last, archives)) = chain.split_last() else {
        return Err("an empty chain");
    };
    if last.document_id.to_string() != working {
        return Err("its last document is not the site's working document");
    }
    if last.next_month.is_some() || last.writable_until.is_some() {
        return Err("its working document has an end");
    }
    if archives
        .iter()
        .any(|a| a.next_month.is_none() || a.writable_until.is_none())
    {
        return Err("an archive without its end");
    }
    Ok(())
}

/// The archives this relay follows at `now`, with their sites: those whose grace week
/// ended less than [`ARCHIVE_FOLLOW_MARGIN_MS`] ago, or has not ended.
fn followed_archives(
    registry: &Registry,
    now: Millis,
) -> Result<Vec<(DocumentId, String)>, RegistryError> {
    Ok(registry
        .archives()?
        .into_iter()
        .filter(|(_, a)| a.writable_until.saturating_add(ARCHIVE_FOLLOW_MARGIN_MS) > now)
        .map(|(doc, a)| (doc, a.site))
        .collect())
}

/// Reads the upstream's tree with the relay token and mirrors it.
pub(super) async fn copy_from_upstream(
    http: &reqwest::Client,
    config: &super::UpstreamConfig,
    registry: &std::sync::Arc<Registry>,
) -> Result<Vec<DocumentId>, UpstreamError> {
    let network: NetworkAnswer = super::transport::get_json(http, config, "/api/network").await?;
    let sites: Vec<SiteView> = super::transport::get_json(http, config, "/api/sites").await?;
    // An upstream of an earlier release has no chains (404): its sites have none.
    let chains: Option<Vec<SiteChain>> =
        super::transport::get_json_if_found(http, config, "/api/sites/chains").await?;
    let registry = registry.clone();
    tokio::task::spawn_blocking(move || {
        mirror_sites(
            &registry,
            network.document_id,
            &sites,
            chains.as_deref(),
            now_ms(),
        )
    })
    .await
    .map_err(|e| UpstreamError::Config(format!("the registry task failed: {e}")))?
}

/// The registry key under which the upstream's storage id is kept.
const UPSTREAM_STORAGE_KEY: &str = "upstream_storage_id";

/// Remembers the upstream's storage id (from its `peer` answer): this relay's saved
/// sync states with the upstream are kept under it.
pub(super) fn remember_upstream_storage(
    registry: &Registry,
    storage: &StorageId,
) -> Result<(), RegistryError> {
    registry.conn().execute(
        "INSERT INTO registry_settings (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![UPSTREAM_STORAGE_KEY, storage.0],
    )?;
    Ok(())
}

/// The upstream's storage id last remembered, and every document of the mirrored
/// tree (the network document first, the archives still taking changes at `now` last):
/// what to follow before the first connection.
pub(super) fn followed_offline(
    registry: &Registry,
    now: Millis,
) -> Result<(Option<StorageId>, Vec<DocumentId>), RegistryError> {
    let storage: Option<String> = registry
        .conn()
        .query_row(
            "SELECT value FROM registry_settings WHERE key = ?1",
            [UPSTREAM_STORAGE_KEY],
            |r| r.get(0),
        )
        .optional()?;
    let mut docs: Vec<DocumentId> = registry.network_document()?.into_iter().collect();
    docs.extend(registry.sites()?.into_iter().map(|s| s.document_id));
    docs.extend(
        followed_archives(registry, now)?
            .into_iter()
            .map(|(doc, _)| doc),
    );
    Ok((storage.map(StorageId), docs))
}

#[cfg(test)]
mod tests {
    use dealersync_core::access::{Access, Principal, Role};
    use dealersync_core::schema::SiteKind;

    use super::*;

    fn site(id: &str, parent: Option<&str>, kind: SiteKind, doc: DocumentId) -> SiteView {
        SiteView {
            id: id.into(),
            name: id.into(),
            kind,
            parent: parent.map(str::to_string),
            document_id: doc.to_string(),
            active: true,
        }
    }

    fn record(
        doc: DocumentId,
        month: Option<&str>,
        next_month: Option<&str>,
        writable_until: Option<Millis>,
    ) -> ChainRecord {
        ChainRecord {
            document_id: doc,
            month: month.map(str::to_string),
            next_month: next_month.map(str::to_string),
            writable_until,
        }
    }

    #[test]
    fn a_chain_is_mirrored_with_its_grace_weeks_and_its_live_archives_followed() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open_in(dir.path()).unwrap();
        let now: Millis = 1_800_000_000_000;
        let [network, old, recent, working] = [(); 4].map(|()| DocumentId::random());
        let sites = vec![
            site(
                "dc-north",
                Some("hq"),
                SiteKind::DistributionCentre,
                DocumentId::random(),
            ),
            site("agent-a", Some("dc-north"), SiteKind::Agent, working),
        ];
        let chains = vec![SiteChain {
            site: "agent-a".into(),
            chain: vec![
                record(old, None, Some("2020-01"), Some(now - 30 * DAY_MS)),
                record(recent, Some("2020-01"), Some("2020-02"), Some(now + DAY_MS)),
                record(working, Some("2020-02"), None, None),
            ],
        }];
        let docs = mirror_sites(&reg, network, &sites, Some(&chains), now).unwrap();
        assert_eq!(docs[0], network);
        assert!(
            docs.contains(&working) && docs.contains(&recent),
            "{docs:?}"
        );
        assert!(!docs.contains(&old), "past its grace week and the margin");
        assert_eq!(reg.chain("agent-a").unwrap(), chains[0].chain);
        assert_eq!(reg.chain("dc-north").unwrap().len(), 1);

        // The policy is head office's: the archive in its grace week takes a
        // consultant's changes, the one after it only serves reads.
        let kim = Principal {
            sub: "kim".into(),
            role: Role::Consultant,
            site: "agent-a".into(),
            device: None,
        };
        let tree = reg.tree();
        assert_eq!(tree.access_at(&kim, &recent, now), Access::ReadWrite);
        assert_eq!(tree.access_at(&kim, &old, now), Access::ReadOnly);
        assert_eq!(tree.access_at(&kim, &working, now), Access::ReadWrite);

        // After a restart: the same archives, until the margin after the grace week.
        let (_, offline) = followed_offline(&reg, now).unwrap();
        assert!(offline.contains(&recent) && !offline.contains(&old));
        let later = now + DAY_MS + ARCHIVE_FOLLOW_MARGIN_MS;
        let (_, offline) = followed_offline(&reg, later).unwrap();
        assert!(!offline.contains(&recent) && offline.contains(&working));

        // An upstream of an earlier release (no chains) leaves the chain as it was, and
        // a chain read between two carry-overs (not ending with the working document)
        // is not taken.
        mirror_sites(&reg, network, &sites, None, now).unwrap();
        assert_eq!(reg.chain("agent-a").unwrap(), chains[0].chain);
        let torn = vec![SiteChain {
            site: "agent-a".into(),
            chain: vec![
                record(working, Some("2020-02"), Some("2020-03"), Some(now)),
                record(DocumentId::random(), Some("2020-03"), None, None),
            ],
        }];
        mirror_sites(&reg, network, &sites, Some(&torn), now).unwrap();
        assert_eq!(reg.chain("agent-a").unwrap(), chains[0].chain);
    }
}
