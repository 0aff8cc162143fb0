//! The site registry: which sites exist, where they sit in the tree, which document is
//! theirs, and which tokens were issued and revoked.
//!
//! It lives in the server's SQLite file (`<data-dir>/dealersync.db`) next to the
//! document store, in its own tables; the store owns `PRAGMA user_version`, so the
//! registry records its layout version in `schema_versions(component, version)`.
//!
//! The registry is the source of truth for access (site tree and document ids); the
//! network document's `sites` map mirrors the tree of trading sites for clients.
//! Documents are written through a [`DocumentWriter`]: [`StoreDocuments`] writes through
//! a [`Store`] directly (CLI, first start, tests); a running relay passes a writer that
//! goes through its sync engine, so that connected peers see the change at once.
//!
//! Writes never hold a registry transaction while a document is written: store and
//! registry use separate connections to the same file, and SQLite allows one writer.
//! Documents are written first, the registry row last, so a crash in between leaves at
//! worst an unreferenced document, never a site without its document.

use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use automerge::AutoCommit;
use dealersync_core::access::{Access, Claims, Principal, SiteNode, SiteTree};
use dealersync_core::protocol::DocumentId;
use dealersync_core::protocol::engine::ConnInfo;
use dealersync_core::schema::{SiteHeader, SiteKind};
use dealersync_core::store::{AuditRecord, Store, StoreError, WriteBatch};
use dealersync_core::time::now_ms;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::auth::{AuthError, Revocations};
use crate::revocation::RevocationList;
use crate::site_rules::{validate_site_id, validate_site_name};

/// The registry's layout version in `schema_versions`.
pub const REGISTRY_SCHEMA_VERSION: i64 = 1;

pub use crate::peer_binding::{MAX_PEER_ID_BYTES, PEER_BINDING_RETENTION_MS};

/// The file name of the server database inside the data directory.
pub const DB_FILE: &str = "dealersync.db";

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// SQLite failed.
    #[error("registry database: {0}")]
    Db(#[from] rusqlite::Error),
    /// Writing a document failed.
    #[error("document storage: {0}")]
    Store(#[from] StoreError),
    /// A document's bytes or shape are not what the registry wrote.
    #[error("document {doc}: {reason}")]
    Document {
        /// The document.
        doc: DocumentId,
        /// What is wrong.
        reason: String,
    },
    /// No such site.
    #[error("no site {:?}", crate::telemetry::clip(.0))]
    UnknownSite(String),
    /// The site id is taken.
    #[error("site {:?} already exists", crate::telemetry::clip(.0))]
    SiteExists(String),
    /// The request breaks a rule of the tree; the message says which.
    #[error("{0}")]
    Invalid(String),
    /// A document operation was refused by the domain rules.
    #[error(transparent)]
    Domain(#[from] dealersync_core::domain::DomainError),
    /// A peer or storage id in `join` belongs to another user or device.
    #[error("{kind} id {id:?} belongs to another user or device")]
    PeerTaken {
        /// `peer` or `storage`.
        kind: &'static str,
        /// The id claimed.
        id: String,
    },
    /// A peer or storage id in `join` is longer than [`MAX_PEER_ID_BYTES`].
    #[error("{kind} id of {len} bytes is longer than {MAX_PEER_ID_BYTES} bytes")]
    IdTooLong {
        /// `peer` or `storage`.
        kind: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// The database was written by a newer dealersync.
    #[error(
        "registry tables have version {found}; this build knows up to {REGISTRY_SCHEMA_VERSION}"
    )]
    NewerSchema {
        /// The version found.
        found: i64,
    },
}

/// Writes site and network documents on the registry's behalf.
pub trait DocumentWriter: Send + Sync {
    /// Stores a new document from its saved bytes.
    fn create(&self, id: DocumentId, bytes: Vec<u8>) -> Result<(), RegistryError>;
    /// Loads a document, applies `edit`, and stores the resulting change durably,
    /// without an audit row (the operator's own set-up: sites, the demo seed).
    fn edit(
        &self,
        id: DocumentId,
        edit: &mut dyn FnMut(&mut AutoCommit) -> Result<(), RegistryError>,
    ) -> Result<(), RegistryError> {
        self.edit_as(id, None, edit)
    }
    /// [`DocumentWriter::edit`] on behalf of `author`: each change it makes is also
    /// recorded in the audit log under the author's user and device, in the same
    /// transaction, like a change a peer sends.
    fn edit_as(
        &self,
        id: DocumentId,
        author: Option<&Author>,
        edit: &mut dyn FnMut(&mut AutoCommit) -> Result<(), RegistryError>,
    ) -> Result<(), RegistryError>;
}

/// Who an edit made through the HTTP API is recorded under in the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    /// The user (`sub`).
    pub user: String,
    /// The device of the token or session, if any.
    pub device: Option<String>,
}

impl Author {
    /// The author of a request made with `claims`.
    pub fn of(claims: &Claims) -> Author {
        Author {
            user: claims.sub.clone(),
            device: claims.device.clone(),
        }
    }
}

/// A [`DocumentWriter`] straight onto a [`Store`]: for the CLI, first start and the
/// demo seed, when no relay holds the documents in memory.
pub struct StoreDocuments<S: ?Sized>(pub Arc<S>);

impl<S: Store + ?Sized> DocumentWriter for StoreDocuments<S> {
    fn create(&self, id: DocumentId, bytes: Vec<u8>) -> Result<(), RegistryError> {
        let batch = WriteBatch {
            created: vec![(id, bytes)],
            ..WriteBatch::default()
        };
        Ok(self.0.commit(&batch)?)
    }

    fn edit_as(
        &self,
        id: DocumentId,
        author: Option<&Author>,
        edit: &mut dyn FnMut(&mut AutoCommit) -> Result<(), RegistryError>,
    ) -> Result<(), RegistryError> {
        let mut doc = load_stored(&*self.0, id)?.ok_or_else(|| RegistryError::Document {
            doc: id,
            reason: "not in the store".into(),
        })?;
        let before = doc.get_heads();
        edit(&mut doc)?;
        let change = doc.save_after(&before);
        if doc.get_heads() == before {
            return Ok(());
        }
        let audit = author.map_or_else(Vec::new, |a| {
            AuditRecord::for_changes(
                id,
                doc.document(),
                &before,
                Some(&a.user),
                a.device.as_deref(),
                now_ms(),
            )
        });
        let batch = WriteBatch {
            appended: vec![(id, change)],
            audit,
            ..WriteBatch::default()
        };
        Ok(self.0.commit(&batch)?)
    }
}

/// A document as stored (its chunks joined and loaded), or `None` when the store has
/// no such document: the one way a stored document is read outside the engine.
pub fn load_stored<S: Store + ?Sized>(
    store: &S,
    id: DocumentId,
) -> Result<Option<AutoCommit>, RegistryError> {
    let Some(stored) = store.load(&id)? else {
        return Ok(None);
    };
    stored
        .load_for_edit()
        .map(Some)
        .map_err(|e| RegistryError::Document {
            doc: id,
            reason: format!("cannot load: {e}"),
        })
}

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

/// A token the server issued, for the admin API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IssuedRecord {
    /// Token id.
    pub jti: String,
    /// User.
    pub sub: String,
    /// Role name.
    pub role: String,
    /// Site.
    pub site: String,
    /// Device, if any.
    pub device: Option<String>,
    /// Issued at, seconds since the epoch.
    pub issued_at: i64,
    /// Expiry, seconds since the epoch.
    pub expires_at: i64,
    /// Whether its jti or device has been revoked.
    pub revoked: bool,
}

/// What to revoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// One token.
    Token(String),
    /// Every token naming this device.
    Device(String),
}

/// One row of the audit log that the store writes with every accepted change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// Document changed.
    pub doc: String,
    /// Automerge change hash, hex.
    pub change_hash: String,
    /// Automerge actor id, hex.
    pub actor: String,
    /// User (`sub`).
    pub user: Option<String>,
    /// Device.
    pub device: Option<String>,
    /// Received at, UTC milliseconds.
    pub received_at: i64,
    /// The relays the change came through, leaf side first (`rs-1-laptop >
    /// dc-north-relay`); `None` when it reached this relay directly.
    pub via: Option<String>,
}

/// The site registry over the server's SQLite database.
pub struct Registry {
    conn: Mutex<Connection>,
    tree: RwLock<Arc<SiteTree>>,
    data_version: Mutex<i64>,
    last_refresh: std::sync::atomic::AtomicI64,
    /// Serialises site changes: each is check-then-write across two connections, and
    /// two concurrent creations of one id must not both pass the check.
    pub(crate) changes: Mutex<()>,
    /// The revocations as open connections see them.
    pub(crate) revocations: RevocationList,
    /// On a downstream relay, its upstream token's principal: nobody here gets more
    /// than that token carries upstream (see `upstream::mirror`).
    pub(crate) ceiling: RwLock<Option<Principal>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS schema_versions (
    component TEXT PRIMARY KEY,
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sites (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    parent TEXT REFERENCES sites(id),
    document_id TEXT NOT NULL UNIQUE,
    active INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS registry_settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS revocations (
    kind TEXT NOT NULL CHECK (kind IN ('jti', 'device')),
    value TEXT NOT NULL,
    revoked_at INTEGER NOT NULL,
    PRIMARY KEY (kind, value)
);
CREATE TABLE IF NOT EXISTS peer_bindings (
    kind TEXT NOT NULL CHECK (kind IN ('peer', 'storage')),
    id TEXT NOT NULL,
    sub TEXT NOT NULL,
    device TEXT NOT NULL DEFAULT '',
    last_seen INTEGER NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX IF NOT EXISTS peer_bindings_by_age ON peer_bindings(last_seen);
CREATE TABLE IF NOT EXISTS issued_tokens (
    jti TEXT PRIMARY KEY,
    sub TEXT NOT NULL,
    role TEXT NOT NULL,
    site TEXT NOT NULL,
    device TEXT,
    issued_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
";

impl Registry {
    /// Opens (creating if needed) the registry tables in the database at `db_path`.
    pub fn open(db_path: &Path) -> Result<Self, RegistryError> {
        if let Some(dir) = db_path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| {
                RegistryError::Invalid(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let conn = Connection::open(db_path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch(crate::signin::SCHEMA)?;
        conn.execute_batch(crate::downstreams::SCHEMA)?;
        let found: Option<i64> = conn
            .query_row(
                "SELECT version FROM schema_versions WHERE component = 'registry'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        match found {
            Some(v) if v > REGISTRY_SCHEMA_VERSION => {
                return Err(RegistryError::NewerSchema { found: v });
            }
            Some(_) => {}
            None => {
                conn.execute(
                    "INSERT INTO schema_versions (component, version) VALUES ('registry', ?1)",
                    [REGISTRY_SCHEMA_VERSION],
                )?;
            }
        }
        let reg = Registry {
            conn: Mutex::new(conn),
            tree: RwLock::new(Arc::new(SiteTree::default())),
            data_version: Mutex::new(-1),
            last_refresh: std::sync::atomic::AtomicI64::new(0),
            changes: Mutex::new(()),
            revocations: RevocationList::default(),
            ceiling: RwLock::new(None),
        };
        reg.rebuild_tree()?;
        reg.poll_revocations()?;
        Ok(reg)
    }

    /// Opens the registry in `<data_dir>/dealersync.db`.
    pub fn open_in(data_dir: &Path) -> Result<Self, RegistryError> {
        Self::open(&data_dir.join(DB_FILE))
    }

    pub(crate) fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (statements are
        // atomic), so the poisoned guard is safe to reuse.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The network document id, if the network was set up.
    pub fn network_document(&self) -> Result<Option<DocumentId>, RegistryError> {
        let conn = self.conn();
        network_id(&conn)
    }

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

    /// The current site tree, as of the last change through this registry or the last
    /// [`Registry::refresh`].
    pub fn tree(&self) -> Arc<SiteTree> {
        self.tree.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Reloads the tree if another connection or process changed the database since
    /// (e.g. `dealersync-server site add` next to a running server).
    pub fn refresh(&self) -> Result<(), RegistryError> {
        let version: i64 = self
            .conn()
            .query_row("PRAGMA data_version", [], |r| r.get(0))?;
        let stale = *self.data_version.lock().unwrap_or_else(|p| p.into_inner()) != version;
        if stale {
            self.rebuild_tree()?;
        }
        Ok(())
    }

    pub(crate) fn rebuild_tree(&self) -> Result<(), RegistryError> {
        // One rebuild at a time, and the version read before the sites: two threads
        // refreshing at once must not let the one that read older sites store its
        // tree last under the newer version (the stale tree would then stay until the
        // next change). A change between the two reads only makes the next refresh
        // rebuild again.
        let mut seen = self.data_version.lock().unwrap_or_else(|p| p.into_inner());
        let version: i64 = self
            .conn()
            .query_row("PRAGMA data_version", [], |r| r.get(0))?;
        let sites = self.sites()?;
        let network = network_id(&self.conn())?;
        let mut tree = SiteTree::new(network);
        for s in sites {
            tree.insert(
                s.id,
                SiteNode {
                    parent: s.parent,
                    document: s.document_id,
                    active: s.active,
                },
            );
        }
        *self.tree.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(tree);
        *seen = version;
        Ok(())
    }

    /// What `who` may do with `doc`, on the current tree. At most once a second it
    /// also looks whether another process changed the registry (a `site add` next to
    /// the running server), so such changes reach live connections within a second.
    pub fn access(&self, who: &Principal, doc: &DocumentId) -> Access {
        let now = now_ms();
        let last = self.last_refresh.load(std::sync::atomic::Ordering::Relaxed);
        if now - last >= 1000 {
            self.last_refresh
                .store(now, std::sync::atomic::Ordering::Relaxed);
            if let Err(e) = self.refresh() {
                tracing::warn!(error = %e, "cannot reload the site registry; using the last tree");
            }
        }
        let tree = self.tree();
        let access = tree.access(who, doc);
        match &*self.ceiling.read().unwrap_or_else(|p| p.into_inner()) {
            Some(relay) => access.min(tree.access(relay, doc)),
            None => access,
        }
    }

    /// The policy of one connection: reads the registry's current tree on every call,
    /// so that a site moved or deactivated while peers are connected takes effect at
    /// once.
    pub fn policy(
        self: &Arc<Self>,
        who: Principal,
    ) -> impl Fn(&DocumentId) -> Access + Send + Sync + 'static {
        let reg = Arc::clone(self);
        move |doc| reg.access(&who, doc)
    }

    /// What the sync engine needs to know about a connection authenticated by
    /// `claims`: its live access rule, and the user and device for the audit log.
    /// Once the token or its device is revoked the rule grants nothing, so a change
    /// sent after the revocation is neither stored nor audited even if it arrives
    /// before the connection is closed.
    pub fn conn_info(self: &Arc<Self>, claims: &Claims) -> ConnInfo {
        let policy = self.policy(claims.principal());
        let reg = Arc::clone(self);
        let (jti, device) = (claims.jti.clone(), claims.device.clone());
        ConnInfo {
            access: Box::new(move |doc| {
                if reg.revocations.revoked(&jti, device.as_deref()).is_some() {
                    Access::None
                } else {
                    policy(doc)
                }
            }),
            user: Some(claims.sub.clone()),
            device: claims.device.clone(),
        }
    }

    /// The sites `who` may read.
    pub fn readable_sites(&self, who: &Principal) -> Result<Vec<SiteRecord>, RegistryError> {
        let tree = self.tree();
        Ok(self
            .sites()?
            .into_iter()
            .filter(|s| tree.access(who, &s.document_id).can_read())
            .collect())
    }

    /// Records an issued token for the admin API.
    pub fn record_issued(&self, claims: &Claims) -> Result<(), RegistryError> {
        self.conn().execute(
            "INSERT OR REPLACE INTO issued_tokens (jti, sub, role, site, device, issued_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                claims.jti,
                claims.sub,
                claims.role.as_str(),
                claims.site,
                claims.device,
                claims.iat.unwrap_or_else(crate::auth::now_secs) as i64,
                claims.exp as i64
            ],
        )?;
        Ok(())
    }

    /// Issued tokens, newest first, with their revocation status.
    pub fn issued_tokens(&self) -> Result<Vec<IssuedRecord>, RegistryError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT t.jti, t.sub, t.role, t.site, t.device, t.issued_at, t.expires_at,
                    EXISTS (SELECT 1 FROM revocations r
                            WHERE (r.kind = 'jti' AND r.value = t.jti)
                               OR (r.kind = 'device' AND r.value = t.device))
             FROM issued_tokens t ORDER BY t.issued_at DESC, t.jti",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(IssuedRecord {
                jti: r.get(0)?,
                sub: r.get(1)?,
                role: r.get(2)?,
                site: r.get(3)?,
                device: r.get(4)?,
                issued_at: r.get(5)?,
                expires_at: r.get(6)?,
                revoked: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Revokes a token id or a device; revoking twice is not an error.
    pub fn revoke(&self, what: &Revocation) -> Result<(), RegistryError> {
        let (kind, value) = match what {
            Revocation::Token(j) => ("jti", j),
            Revocation::Device(d) => ("device", d),
        };
        if value.trim().is_empty() {
            return Err(RegistryError::Invalid(format!("empty {kind} to revoke")));
        }
        {
            let conn = self.conn();
            conn.execute(
                "INSERT OR IGNORE INTO revocations (kind, value, revoked_at) VALUES (?1, ?2, ?3)",
                params![kind, value, now_ms()],
            )?;
            // Open connections of this token or device see it before we return.
            self.revocations.reload(&conn)?;
        }
        tracing::info!(kind, value = %crate::telemetry::clip(value), "revoked");
        Ok(())
    }

    /// Reloads the revocation list if the table changed (another process may have run
    /// `dealersync-server revoke`); returns whether it did. The relay calls this every
    /// [`crate::revocation::POLL_INTERVAL`].
    pub fn poll_revocations(&self) -> Result<bool, RegistryError> {
        let conn = self.conn();
        Ok(self.revocations.reload(&conn)?)
    }

    /// Why a token with this id and device may no longer be used, as of the last
    /// reload of the revocation list (no database query).
    pub fn revoked(&self, jti: &str, device: Option<&str>) -> Option<AuthError> {
        self.revocations.revoked(jti, device)
    }

    /// Changes whenever the revocation list may have grown: open connections wait on
    /// it and then check their own token with [`Registry::revoked`].
    pub fn revocation_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.revocations.subscribe()
    }

    /// The audit log of one document, newest first, at most `limit` rows. The table is
    /// written by the document store in the same transaction as each accepted change;
    /// before the store has created it, the log is empty.
    pub fn audit(&self, doc: &DocumentId, limit: u32) -> Result<Vec<AuditEntry>, RegistryError> {
        let conn = self.conn();
        let exists: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit')",
            [],
            |r| r.get(0),
        )?;
        if !exists {
            return Ok(Vec::new());
        }
        let mut stmt = conn.prepare(
            "SELECT doc_id, change_hash, actor, user, device, received_at, via FROM audit
             WHERE doc_id = ?1 ORDER BY received_at DESC, rowid DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![doc.to_string(), limit], |r| {
            Ok(AuditEntry {
                doc: r.get(0)?,
                change_hash: r.get(1)?,
                actor: r.get(2)?,
                user: r.get(3)?,
                device: r.get(4)?,
                received_at: r.get(5)?,
                via: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

impl Revocations for Registry {
    fn check(&self, jti: &str, device: Option<&str>) -> Result<(), AuthError> {
        let conn = self.conn();
        let hit: Option<String> = conn
            .query_row(
                "SELECT kind FROM revocations
                 WHERE (kind = 'jti' AND value = ?1) OR (kind = 'device' AND value = ?2)
                 ORDER BY kind DESC LIMIT 1",
                params![jti, device],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| AuthError::RevocationCheck(e.to_string()))?;
        match hit.as_deref() {
            None => Ok(()),
            Some("jti") => Err(AuthError::Revoked {
                jti: jti.to_string(),
            }),
            Some(_) => Err(AuthError::DeviceRevoked {
                device: device.unwrap_or_default().to_string(),
            }),
        }
    }
}

fn doc_err(doc: DocumentId, e: impl std::fmt::Display) -> RegistryError {
    RegistryError::Document {
        doc,
        reason: e.to_string(),
    }
}

fn put_network_site(
    docs: &dyn DocumentWriter,
    network: DocumentId,
    header: &SiteHeader,
) -> Result<(), RegistryError> {
    docs.edit(network, &mut |doc| {
        Ok(dealersync_core::domain::put_site(
            doc,
            header,
            "registry",
            now_ms(),
        )?)
    })
}

fn network_id(conn: &Connection) -> Result<Option<DocumentId>, RegistryError> {
    let s: Option<String> = conn
        .query_row(
            "SELECT value FROM registry_settings WHERE key = 'network_document'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    s.map(|s| {
        s.parse()
            .map_err(|e| RegistryError::Invalid(format!("stored network document id: {e}")))
    })
    .transpose()
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

fn get_site(conn: &Connection, id: &str) -> Result<Option<SiteRecord>, RegistryError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocation_check_distinguishes_jti_and_device() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open_in(dir.path()).unwrap();
        reg.check("j1", Some("d1")).unwrap();
        reg.revoke(&Revocation::Device("d1".into())).unwrap();
        assert_eq!(
            reg.check("j1", Some("d1")),
            Err(AuthError::DeviceRevoked {
                device: "d1".into()
            })
        );
        reg.check("j1", None).unwrap();
        reg.revoke(&Revocation::Token("j1".into())).unwrap();
        assert_eq!(
            reg.check("j1", Some("d1")),
            Err(AuthError::Revoked { jti: "j1".into() })
        );
    }

    #[test]
    fn reopening_keeps_the_version_row_and_refuses_newer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        drop(Registry::open(&path).unwrap());
        drop(Registry::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.execute(
            "UPDATE schema_versions SET version = 99 WHERE component = 'registry'",
            [],
        )
        .unwrap();
        assert!(matches!(
            Registry::open(&path),
            Err(RegistryError::NewerSchema { found: 99 })
        ));
    }
}
