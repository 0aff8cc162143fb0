//! The upstream's site tree, copied into this relay's registry.
//!
//! The relay token reads the network document and the sites of its subtree
//! (`GET /api/network`, `GET /api/sites` on the upstream). Each is written here with
//! the upstream's document id, so a document has one id at every tier and a device
//! can sync with any relay of its chain. Sites that appear upstream appear here at
//! the next copy ([`super::MIRROR_EVERY`]); a site renamed, moved or deactivated
//! upstream is updated. Sites created on this relay itself stay local (they are not
//! in the upstream's tree, so the upstream refuses their documents).

use dealersync_core::protocol::{DocumentId, StorageId};
use dealersync_core::time::now_ms;
use rusqlite::{OptionalExtension, params};
use serde::Deserialize;

use super::UpstreamError;
use crate::api::sites::SiteView;
use crate::registry::{Registry, RegistryError};

/// `GET /api/network`'s answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct NetworkAnswer {
    pub(super) document_id: DocumentId,
}

/// Writes the upstream's network document id and `sites` into `registry` (inserting
/// new sites, updating known ones); returns every document the subtree holds, the
/// network document first.
pub fn mirror_sites(
    registry: &Registry,
    network: DocumentId,
    sites: &[SiteView],
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
        tx.commit().map_err(RegistryError::from)?;
    }
    registry.rebuild_tree()?;
    Ok(docs)
}

/// Reads the upstream's tree with the relay token and mirrors it.
pub(super) async fn copy_from_upstream(
    http: &reqwest::Client,
    config: &super::UpstreamConfig,
    registry: &std::sync::Arc<Registry>,
) -> Result<Vec<DocumentId>, UpstreamError> {
    let network: NetworkAnswer = super::transport::get_json(http, config, "/api/network").await?;
    let sites: Vec<SiteView> = super::transport::get_json(http, config, "/api/sites").await?;
    let registry = registry.clone();
    tokio::task::spawn_blocking(move || mirror_sites(&registry, network.document_id, &sites))
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
/// tree (the network document first): what to follow before the first connection.
pub(super) fn followed_offline(
    registry: &Registry,
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
    Ok((storage.map(StorageId), docs))
}
