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
//!
//! The module's parts: `documents` (how the registry writes documents), `sites` (the
//! tree of sites and their documents), `access` (who may do what, on the current tree),
//! `periods` (each site's chain of monthly documents and the carry-over into the
//! next), `tokens` (issued tokens, revocations and the audit read side).

mod access;
mod documents;
mod periods;
pub mod revocations;
mod sites;
mod tokens;

use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use dealersync_core::access::{Principal, SiteTree};
use dealersync_core::protocol::DocumentId;
use dealersync_core::store::StoreError;
use rusqlite::{Connection, OptionalExtension};

use crate::revocation::RevocationList;

pub use documents::{Author, DocumentWriter, StoreDocuments, load_stored};
pub use periods::{ArchivedSite, ChainRecord};
pub use revocations::{FEED_PAGE, RevocationEntry, RevocationPage};
pub use sites::SiteRecord;
pub use tokens::{AuditEntry, IssuedRecord, Revocation};

/// The registry's layout version in `schema_versions`.
/// Version 2 added `site_periods` (each site's chain of monthly documents).
pub const REGISTRY_SCHEMA_VERSION: i64 = 2;

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

/// The downstream relays head office has seen ([`crate::downstreams`] keeps it),
/// created with the registry's own tables.
const DOWNSTREAMS_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS downstream_relays (
    relay TEXT NOT NULL,
    site TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    last_connected INTEGER NOT NULL,
    last_contact INTEGER NOT NULL,
    connects INTEGER NOT NULL,
    PRIMARY KEY (relay, site)
);
";

/// The sign-in codes' table ([`crate::signin`] issues and redeems them), created with
/// the registry's own.
const SIGN_IN_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sign_in_codes (
    code_hash TEXT PRIMARY KEY,
    sub TEXT NOT NULL,
    role TEXT NOT NULL,
    site TEXT NOT NULL,
    device TEXT,
    session_ttl INTEGER,
    issued_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
);
CREATE INDEX IF NOT EXISTS sign_in_codes_by_expiry ON sign_in_codes(expires_at);
";

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
CREATE TABLE IF NOT EXISTS site_periods (
    document_id TEXT PRIMARY KEY,
    site TEXT NOT NULL REFERENCES sites(id),
    month TEXT,
    next_month TEXT,
    writable_until INTEGER
);
CREATE INDEX IF NOT EXISTS site_periods_by_site ON site_periods(site);
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
        conn.execute_batch(SIGN_IN_SCHEMA)?;
        conn.execute_batch(DOWNSTREAMS_SCHEMA)?;
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
            // Version 1 lacked `site_periods`, which SCHEMA has just created: a site
            // without rows there has its one document, as before.
            Some(v) if v < REGISTRY_SCHEMA_VERSION => {
                conn.execute(
                    "UPDATE schema_versions SET version = ?1 WHERE component = 'registry'",
                    [REGISTRY_SCHEMA_VERSION],
                )?;
                tracing::info!(
                    from = v,
                    to = REGISTRY_SCHEMA_VERSION,
                    "migrated the registry tables"
                );
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

#[cfg(test)]
mod tests {
    use super::*;

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
