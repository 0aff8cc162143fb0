//! Each site's chain of monthly documents (docs/growth.md): the registry's
//! `site_periods` rows, and the carry-over of every site into a new month
//! ([`Registry::archive_month`], the `archive` command and `POST /api/admin/archive`).
//!
//! A site's row in `sites` names its current working document; `site_periods` lists
//! every document of its chain with the first month each records, and for an archive
//! the month that followed and the instant its grace period ends. A site that was never
//! carried over has no rows: its one document is the one in `sites`.

use dealersync_core::access::ArchiveNode;
use dealersync_core::domain::{self, PeriodLink};
use dealersync_core::protocol::DocumentId;
use dealersync_core::schema::Millis;
use rusqlite::params;
use serde::{Deserialize, Serialize};

use super::documents::DocumentWriter;
use super::{Registry, RegistryError, SiteRecord};

/// One document of a site's chain, as the registry records it (and as
/// `GET /api/sites/chains` carries it to downstream relays).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainRecord {
    /// The document.
    pub document_id: DocumentId,
    /// The first month it records; `None` for the site's first document.
    pub month: Option<String>,
    /// For an archive, the month its successor starts; `None` for the working document.
    pub next_month: Option<String>,
    /// For an archive, when it stops taking devices' late changes (UTC milliseconds).
    pub writable_until: Option<Millis>,
}

/// What [`Registry::archive_month`] did for one site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchivedSite {
    /// The site.
    pub site: String,
    /// Its working document for the month, new or (when already carried over) as it was.
    pub document_id: DocumentId,
    /// The document that became the archive; `None` when the site was already working
    /// in the month (a second run does nothing).
    pub archived: Option<DocumentId>,
}

/// The rows of `site`'s chain in `site_periods`, oldest first (none for a site never
/// carried over).
fn chain_rows(conn: &rusqlite::Connection, site: &str) -> Result<Vec<ChainRecord>, RegistryError> {
    let mut stmt = conn.prepare(
        "SELECT document_id, month, next_month, writable_until FROM site_periods
         WHERE site = ?1 ORDER BY month IS NOT NULL, month",
    )?;
    let rows = stmt.query_map([site], |r| {
        Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (doc, month, next_month, writable_until) = row?;
        out.push(ChainRecord {
            document_id: doc
                .parse()
                .map_err(|e| RegistryError::Invalid(format!("chain of {site}: {e}")))?,
            month,
            next_month,
            writable_until,
        });
    }
    Ok(out)
}

impl Registry {
    /// Every archive of every site, for the access policy and for the archives a
    /// downstream relay follows.
    pub(crate) fn archives(&self) -> Result<Vec<(DocumentId, ArchiveNode)>, RegistryError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT document_id, site, writable_until FROM site_periods
             WHERE next_month IS NOT NULL",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (doc, site, writable_until) = row?;
            let doc = doc
                .parse()
                .map_err(|e| RegistryError::Invalid(format!("archive of {site}: {e}")))?;
            out.push((
                doc,
                ArchiveNode {
                    site,
                    writable_until,
                },
            ));
        }
        Ok(out)
    }

    /// A site's documents, oldest first; the last is its working document. A site never
    /// carried over has one, with no month.
    pub fn chain(&self, site: &str) -> Result<Vec<ChainRecord>, RegistryError> {
        let record = self.site(site)?;
        let mut out = chain_rows(&self.conn(), site)?;
        if out.is_empty() {
            out.push(ChainRecord {
                document_id: record.document_id,
                month: None,
                next_month: None,
                writable_until: None,
            });
        }
        Ok(out)
    }

    /// Replaces `site`'s rows with `chain` as its upstream relay records it (a
    /// downstream relay's mirror, `upstream::mirror`), inside the mirror's transaction.
    /// A chain of one document is a site never carried over: it has no rows.
    pub(crate) fn mirror_chain(
        tx: &rusqlite::Transaction<'_>,
        site: &str,
        chain: &[ChainRecord],
    ) -> Result<(), RegistryError> {
        let rows = if chain.len() < 2 { &[][..] } else { chain };
        // Copied every 30 s: unchanged rows are not written again.
        if chain_rows(tx, site)? == rows {
            return Ok(());
        }
        tx.execute("DELETE FROM site_periods WHERE site = ?1", [site])?;
        for c in rows {
            tx.execute(
                "INSERT INTO site_periods (document_id, site, month, next_month, writable_until)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (document_id) DO UPDATE SET site = ?2, month = ?3,
                   next_month = ?4, writable_until = ?5",
                params![
                    c.document_id.to_string(),
                    site,
                    c.month,
                    c.next_month,
                    c.writable_until
                ],
            )?;
        }
        Ok(())
    }

    /// Carries every active site over into `month` (`YYYY-MM`): a new working document
    /// made by `domain::carry_over` from the current one, which becomes the archive of
    /// the months before (writable by devices until [`domain::archive_writable_until`]),
    /// then the registry's rows and the site's header in the network document.
    ///
    /// Idempotent: a site already working in `month` or later is left as it is (its
    /// header in the network document is rewritten if an earlier run stopped before
    /// it). The same call migrates a data directory of an earlier release: each site's
    /// one document becomes its first archive. Safe while the relay serves when `docs`
    /// writes through it (`RelayDocuments`): peers see the new header at once, and a
    /// device still writing the old document keeps doing so until it follows.
    pub fn archive_month(
        &self,
        docs: &dyn DocumentWriter,
        month: &str,
        now: Millis,
    ) -> Result<Vec<ArchivedSite>, RegistryError> {
        let month = domain::parse_month(month)?;
        let writable_until = domain::archive_writable_until(&month)?;
        let mut out = Vec::new();
        for listed in self.sites()?.into_iter().filter(|s| s.active) {
            let _changing = self.changes.lock().unwrap_or_else(|p| p.into_inner());
            // Read again under the lock: a concurrent run (two timers) may have carried
            // the site over since the list was read, and must find its new document.
            let site = self.site(&listed.id)?;
            let done = self.carry_site(docs, &site, &month, writable_until, now)?;
            self.write_chain(docs, &site.id, now)?;
            out.push(done);
        }
        self.rebuild_tree()?;
        Ok(out)
    }

    /// One site's carry-over: the new document first, then the registry's rows in one
    /// transaction (a crash in between leaves an unreferenced document, and the next
    /// run carries the site over again).
    fn carry_site(
        &self,
        docs: &dyn DocumentWriter,
        site: &SiteRecord,
        month: &str,
        writable_until: Millis,
        now: Millis,
    ) -> Result<ArchivedSite, RegistryError> {
        let old_id = site.document_id;
        let old = docs.read(old_id)?;
        let from = domain::period_header(&old)?.map(|h| h.month);
        if from.as_deref().is_some_and(|m| m >= month) {
            return Ok(ArchivedSite {
                site: site.id.clone(),
                document_id: old_id,
                archived: None,
            });
        }
        let mut next = domain::carry_over(&old, month, now)?;
        let new_id = DocumentId::random();
        docs.create(new_id, next.save())?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO site_periods (document_id, site, month, next_month, writable_until)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (document_id) DO UPDATE SET next_month = ?4, writable_until = ?5",
            params![old_id.to_string(), site.id, from, month, writable_until],
        )?;
        tx.execute(
            "INSERT INTO site_periods (document_id, site, month) VALUES (?1, ?2, ?3)",
            params![new_id.to_string(), site.id, month],
        )?;
        tx.execute(
            "UPDATE sites SET document_id = ?2 WHERE id = ?1",
            params![site.id, new_id.to_string()],
        )?;
        tx.commit()?;
        tracing::info!(site = %site.id, month, archive = %old_id, working = %new_id, "carried over");
        Ok(ArchivedSite {
            site: site.id.clone(),
            document_id: new_id,
            archived: Some(old_id),
        })
    }

    /// Writes the site's chain into its header in the network document (nothing when
    /// it is already there, or when the site was never carried over).
    fn write_chain(
        &self,
        docs: &dyn DocumentWriter,
        site: &str,
        now: Millis,
    ) -> Result<(), RegistryError> {
        let chain: Vec<PeriodLink> = self
            .chain(site)?
            .into_iter()
            .map(|c| PeriodLink {
                month: c.month,
                document: c.document_id.to_string(),
            })
            .collect();
        let Some(network) = self.network_document()? else {
            return Ok(());
        };
        if chain.len() < 2 {
            return Ok(());
        }
        docs.edit(network, &mut |doc| {
            Ok(domain::put_site_chain(doc, site, &chain, "registry", now)?)
        })
    }
}
