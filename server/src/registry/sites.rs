//! The tree of sites: each site's record and document, and the changes an admin makes
//! to it (create, rename, move, deactivate), mirrored into the network document.

use automerge::AutoCommit;
use dealersync_core::protocol::DocumentId;
use dealersync_core::schema::{SiteHeader, SiteKind};
use dealersync_core::time::now_ms;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::documents::{DocumentWriter, doc_err, put_network_site};
use super::{Registry, RegistryError};
use crate::site_rules::{validate_site_id, validate_site_name};

/// A site as the registry and `GET /api/sites` describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SiteRecord {
    /// Stable id (`hq`, `dc-north`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// What kind of site.
    pub kind: SiteKind,
    /// The site above; `None` for head office.
    pub parent: Option<String>,
    /// The site document, bare bs58check id.
    pub document_id: DocumentId,
    /// Whether the site still trades.
    pub active: bool,
    /// When it was created, UTC milliseconds.
    pub created_at: i64,
}

impl SiteRecord {
    /// The header written into documents.
    pub fn header(&self) -> SiteHeader {
        SiteHeader {
            id: self.id.clone(),
            name: self.name.clone(),
            kind: self.kind,
            parent: self.parent.clone(),
            channel: None,
        }
    }
}
impl Registry {
    /// Creates the network document on first start; returns its id either way.
    pub fn ensure_network(&self, docs: &dyn DocumentWriter) -> Result<DocumentId, RegistryError> {
        let _changing = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        self.ensure_network_locked(docs)
    }

    fn ensure_network_locked(
        &self,
        docs: &dyn DocumentWriter,
    ) -> Result<DocumentId, RegistryError> {
        if let Some(id) = self.network_document()? {
            return Ok(id);
        }
        let id = DocumentId::random();
        let mut doc = AutoCommit::new();
        dealersync_core::domain::init_network_document(&mut doc, now_ms())?;
        docs.create(id, doc.save())?;
        self.conn().execute(
            "INSERT INTO registry_settings (key, value) VALUES ('network_document', ?1)",
            [id.to_string()],
        )?;
        self.rebuild_tree()?;
        tracing::info!(doc = %id, "created the network document");
        Ok(id)
    }

    /// Every site, head office first, then by id.
    pub fn sites(&self) -> Result<Vec<SiteRecord>, RegistryError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, name, kind, parent, document_id, active, created_at FROM sites
             ORDER BY parent IS NOT NULL, id",
        )?;
        let rows = stmt.query_map([], row_to_site)?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r??);
        }
        Ok(out)
    }

    /// One site.
    pub fn site(&self, id: &str) -> Result<SiteRecord, RegistryError> {
        let conn = self.conn();
        get_site(&conn, id)?.ok_or_else(|| RegistryError::UnknownSite(id.to_string()))
    }

    /// Creates a site with its document and adds it to the network document's tree.
    pub fn create_site(
        &self,
        docs: &dyn DocumentWriter,
        header: SiteHeader,
    ) -> Result<SiteRecord, RegistryError> {
        let _changing = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        validate_site_id(&header.id)?;
        let header = SiteHeader {
            name: validate_site_name(&header.name)?,
            ..header
        };
        let network = self.ensure_network_locked(docs)?;
        {
            let conn = self.conn();
            if get_site(&conn, &header.id)?.is_some() {
                return Err(RegistryError::SiteExists(header.id));
            }
            check_parent(&conn, &header.id, header.kind, header.parent.as_deref())?;
        }
        let document_id = DocumentId::random();
        let mut doc = dealersync_core::domain::create_site_document(&header, now_ms())?;
        docs.create(document_id, doc.save())?;
        put_network_site(docs, network, &header)?;
        let record = SiteRecord {
            id: header.id.clone(),
            name: header.name.clone(),
            kind: header.kind,
            parent: header.parent.clone(),
            document_id,
            active: true,
            created_at: now_ms(),
        };
        self.conn().execute(
            "INSERT INTO sites (id, name, kind, parent, document_id, active, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6)",
            params![
                record.id,
                record.name,
                record.kind.as_str(),
                record.parent,
                record.document_id.to_string(),
                record.created_at
            ],
        )?;
        self.rebuild_tree()?;
        tracing::info!(site = %record.id, doc = %document_id, "created site");
        Ok(record)
    }

    /// Renames a site, in the registry, its own document and the network document.
    pub fn rename_site(
        &self,
        docs: &dyn DocumentWriter,
        id: &str,
        name: &str,
    ) -> Result<SiteRecord, RegistryError> {
        let _changing = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        let name = validate_site_name(name)?;
        let mut site = self.site(id)?;
        site.name = name;
        self.write_header(docs, &site)?;
        self.conn().execute(
            "UPDATE sites SET name = ?2 WHERE id = ?1",
            params![id, site.name],
        )?;
        Ok(site)
    }

    /// Moves a site under another parent. Refuses to move head office, to move a site
    /// below itself, or under a deactivated site.
    pub fn move_site(
        &self,
        docs: &dyn DocumentWriter,
        id: &str,
        new_parent: &str,
    ) -> Result<SiteRecord, RegistryError> {
        let _changing = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        let mut site = self.site(id)?;
        {
            let conn = self.conn();
            check_parent(&conn, id, site.kind, Some(new_parent))?;
        }
        if self.tree().is_within(new_parent, id) {
            return Err(RegistryError::Invalid(format!(
                "cannot move {id} under {new_parent}: {new_parent} is inside {id}"
            )));
        }
        site.parent = Some(new_parent.to_string());
        self.write_header(docs, &site)?;
        self.conn().execute(
            "UPDATE sites SET parent = ?2 WHERE id = ?1",
            params![id, new_parent],
        )?;
        self.rebuild_tree()?;
        Ok(site)
    }

    /// Deactivates a site: its document becomes read-only for everyone but admins and it
    /// leaves the network document's tree. Refused while active sites sit below it.
    pub fn deactivate_site(
        &self,
        docs: &dyn DocumentWriter,
        id: &str,
    ) -> Result<SiteRecord, RegistryError> {
        let _changing = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        let mut site = self.site(id)?;
        if !site.active {
            return Ok(site);
        }
        if site.parent.is_none() {
            return Err(RegistryError::Invalid(
                "head office cannot be deactivated".into(),
            ));
        }
        let children: Vec<String> = {
            let conn = self.conn();
            let mut stmt =
                conn.prepare("SELECT id FROM sites WHERE parent = ?1 AND active = 1 ORDER BY id")?;
            stmt.query_map([id], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        if !children.is_empty() {
            return Err(RegistryError::Invalid(format!(
                "{id} still has active sites below it ({}); move or deactivate them first",
                children.join(", ")
            )));
        }
        if let Some(network) = self.network_document()? {
            let site_id = id.to_string();
            docs.edit(network, &mut |doc| {
                let mut sites: std::collections::BTreeMap<String, SiteHeader> =
                    autosurgeon::hydrate_prop(doc, automerge::ROOT, "sites")
                        .map_err(|e| doc_err(network, e))?;
                sites.remove(&site_id);
                autosurgeon::reconcile_prop(doc, automerge::ROOT, "sites", &sites)
                    .map_err(|e| doc_err(network, e))
            })?;
        }
        self.conn()
            .execute("UPDATE sites SET active = 0 WHERE id = ?1", [id])?;
        site.active = false;
        self.rebuild_tree()?;
        Ok(site)
    }

    fn write_header(
        &self,
        docs: &dyn DocumentWriter,
        site: &SiteRecord,
    ) -> Result<(), RegistryError> {
        let mut header = site.header();
        let doc_id = site.document_id;
        docs.edit(doc_id, &mut |doc| {
            // The registry does not keep the channel; keep the one the document has,
            // rather than erase it on a rename or a move.
            if let Ok(old) =
                autosurgeon::hydrate_prop::<_, SiteHeader, _, _>(doc, automerge::ROOT, "site")
            {
                header.channel = old.channel;
            }
            autosurgeon::reconcile_prop(doc, automerge::ROOT, "site", &header)
                .map_err(|e| doc_err(doc_id, e))
        })?;
        if site.active
            && let Some(network) = self.network_document()?
        {
            put_network_site(docs, network, &header)?;
        }
        Ok(())
    }
}

type SiteRow = Result<SiteRecord, RegistryError>;

fn row_to_site(r: &rusqlite::Row<'_>) -> rusqlite::Result<SiteRow> {
    let kind: String = r.get(2)?;
    let doc: String = r.get(4)?;
    let id: String = r.get(0)?;
    let parsed = (|| {
        Ok(SiteRecord {
            kind: kind
                .parse()
                .map_err(|e| RegistryError::Invalid(format!("site {id}: {e}")))?,
            document_id: doc
                .parse()
                .map_err(|e| RegistryError::Invalid(format!("site {id}: {e}")))?,
            id: id.clone(),
            name: r.get(1)?,
            parent: r.get(3)?,
            active: r.get(5)?,
            created_at: r.get(6)?,
        })
    })();
    Ok(parsed)
}

pub(super) fn get_site(conn: &Connection, id: &str) -> Result<Option<SiteRecord>, RegistryError> {
    let row = conn
        .query_row(
            "SELECT id, name, kind, parent, document_id, active, created_at FROM sites WHERE id = ?1",
            [id],
            row_to_site,
        )
        .optional()?;
    row.transpose()
}

/// Head office has no parent and there is one; every other site hangs below an active
/// site.
fn check_parent(
    conn: &Connection,
    id: &str,
    kind: SiteKind,
    parent: Option<&str>,
) -> Result<(), RegistryError> {
    match (kind, parent) {
        (SiteKind::HeadOffice, None) => {
            let other: Option<String> = conn
                .query_row(
                    "SELECT id FROM sites WHERE parent IS NULL AND id != ?1",
                    [id],
                    |r| r.get(0),
                )
                .optional()?;
            match other {
                Some(o) => Err(RegistryError::Invalid(format!(
                    "the network already has a head office ({o})"
                ))),
                None => Ok(()),
            }
        }
        (SiteKind::HeadOffice, Some(_)) => Err(RegistryError::Invalid(
            "head office sits at the top of the tree and has no parent".into(),
        )),
        (_, None) => Err(RegistryError::Invalid(format!(
            "a {kind} site needs a parent site"
        ))),
        (_, Some(p)) => {
            if p == id {
                return Err(RegistryError::Invalid(format!(
                    "{id} cannot be its own parent"
                )));
            }
            match get_site(conn, p)? {
                None => Err(RegistryError::UnknownSite(p.to_string())),
                Some(s) if !s.active => {
                    Err(RegistryError::Invalid(format!("parent {p} is deactivated")))
                }
                Some(_) => Ok(()),
            }
        }
    }
}
