//! dealersync-sqlite-store: the SQLite implementation of `dealersync_core::store::Store`,
//! shared by the relay (`<data-dir>/dealersync.db`) and the field client (its offline
//! store in `--home`), so both keep documents, sync states and the audit log the same
//! way: document chunks (compacted snapshots and incremental changes), sync states per
//! (document, peer storage id), and the audit rows of accepted changes.
//!
//! One database file, `<data-dir>/dealersync.db`, in WAL mode. Every [`Store::commit`]
//! is one transaction; with `synchronous=FULL` (the default) the WAL is fsynced before
//! the commit returns, which is what lets the relay advertise the heads it contains.
//!
//! The schema version of these tables is `PRAGMA user_version`. Other modules (the site
//! registry) keep their own tables in the same file and version them in their own
//! `schema_versions` table, so both can migrate independently.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use dealersync_core::protocol::{DocumentId, StorageId};
use dealersync_core::store::{Store, StoreError, StoredDocument, WriteBatch};
use dealersync_core::time::now_ms;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

/// The database file inside the data directory.
pub const DB_FILE: &str = "dealersync.db";

/// The `user_version` this code writes; see [`MIGRATIONS`].
pub const SCHEMA_VERSION: i64 = 2;

/// Chunk kinds in the `chunks` table. A snapshot is a whole document (`save()`), an
/// incremental chunk is changes saved since (`save_incremental()`).
const KIND_SNAPSHOT: i64 = 0;
const KIND_INCREMENTAL: i64 = 1;

pub mod backup;
mod compaction;
pub use compaction::Compacted;

/// Migrations by target version; migration `i` brings `user_version` from `i` to `i+1`.
const MIGRATIONS: &[&str] = &[
    // v1: documents, their chunks, sync states, audit log.
    "CREATE TABLE IF NOT EXISTS documents (
        doc_id TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL
     );
     CREATE TABLE IF NOT EXISTS chunks (
        seq INTEGER PRIMARY KEY,
        doc_id TEXT NOT NULL REFERENCES documents(doc_id),
        kind INTEGER NOT NULL,
        bytes BLOB NOT NULL
     );
     CREATE INDEX IF NOT EXISTS chunks_by_doc ON chunks(doc_id, seq);
     CREATE TABLE IF NOT EXISTS sync_states (
        doc_id TEXT NOT NULL,
        storage_id TEXT NOT NULL,
        state BLOB NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (doc_id, storage_id)
     );
     CREATE TABLE IF NOT EXISTS audit (
        id INTEGER PRIMARY KEY,
        doc_id TEXT NOT NULL,
        change_hash TEXT NOT NULL,
        actor TEXT NOT NULL,
        user TEXT,
        device TEXT,
        received_at INTEGER NOT NULL
     );
     CREATE INDEX IF NOT EXISTS audit_by_doc ON audit(doc_id, received_at);
     CREATE TABLE IF NOT EXISTS relay_meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
     );",
    // v2: the relays a change came through, leaf side first (`dc-north-relay`,
    // `rs-1-laptop > dc-north-relay`), recorded when a downstream relay forwards the
    // attribution of changes it uploaded; looked up by change hash.
    "ALTER TABLE audit ADD COLUMN via TEXT;
     CREATE INDEX IF NOT EXISTS audit_by_change ON audit(doc_id, change_hash);",
];

/// How hard SQLite works to keep a commit on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL`: a committed transaction survives power loss. The default.
    #[default]
    Full,
    /// `synchronous=NORMAL`: faster, but the last commits may be lost on power loss
    /// (not on a process crash). Unsafe for a relay that acknowledges changes.
    Normal,
}

/// Options for opening the store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// `synchronous` level.
    pub durability: Durability,
    /// How long a statement waits for a lock held by another connection.
    pub busy_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            durability: Durability::Full,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The data directory could not be created.
    #[error("cannot create data directory {0}: {1}")]
    DataDir(PathBuf, std::io::Error),
    /// SQLite refused to open or migrate the database.
    #[error("cannot open database {0}: {1}")]
    Database(PathBuf, StoreError),
    /// The database was written by a newer dealersync.
    #[error("database {path} has schema version {found}, newer than this server's {supported}")]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
        /// The newest version this code knows.
        supported: i64,
    },
}

/// A [`Store`] on one SQLite connection. Open one per thread that needs it (the relay
/// opens one for the engine's reads and one for the writer), since a connection runs
/// one statement at a time; WAL lets readers proceed while the writer commits.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

/// Maps a SQLite error to the store's error kinds, so the peer and the metrics see
/// "full" rather than an opaque message.
pub fn map_error(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode as C;
    let msg = e.to_string();
    match e.sqlite_error_code() {
        Some(C::DiskFull) => StoreError::Full(msg),
        Some(C::DatabaseBusy | C::DatabaseLocked) => StoreError::Busy(msg),
        Some(C::DatabaseCorrupt | C::NotADatabase) => StoreError::Corrupt(msg),
        _ => StoreError::Io(msg),
    }
}

impl SqliteStore {
    /// Opens (creating if needed) `<data_dir>/dealersync.db` and migrates it.
    pub fn open(data_dir: &Path, options: &StoreOptions) -> Result<SqliteStore, OpenError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| OpenError::DataDir(data_dir.to_path_buf(), e))?;
        Self::open_file(&data_dir.join(DB_FILE), options)
    }

    /// Opens (creating if needed) the database at `path` and migrates it.
    pub fn open_file(path: &Path, options: &StoreOptions) -> Result<SqliteStore, OpenError> {
        let db_err = |e: rusqlite::Error| OpenError::Database(path.to_path_buf(), map_error(e));
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(db_err)?;
        conn.busy_timeout(options.busy_timeout).map_err(db_err)?;
        // journal_mode returns a row; pragma_update_and_check reads it.
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(db_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(OpenError::Database(
                path.to_path_buf(),
                StoreError::Io(format!("journal_mode is {mode}, WAL required")),
            ));
        }
        let sync = match options.durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", sync)
            .map_err(db_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(db_err)?;
        let store = SqliteStore {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        };
        store.migrate()?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn migrate(&self) -> Result<(), OpenError> {
        let db_err = |e: rusqlite::Error| OpenError::Database(self.path.clone(), map_error(e));
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db_err)?;
        let found: i64 = tx
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(db_err)?;
        if found > SCHEMA_VERSION {
            return Err(OpenError::TooNew {
                path: self.path.clone(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        for sql in &MIGRATIONS[found as usize..] {
            tx.execute_batch(sql).map_err(db_err)?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(db_err)?;
        tx.commit().map_err(db_err)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection usable: SQLite rolls
        // back the open transaction when the Transaction guard drops.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates a document with its first bytes (a full `save()`), failing if it exists.
    pub fn create_document(&self, doc: &DocumentId, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.commit(&WriteBatch {
            created: vec![(*doc, bytes)],
            ..WriteBatch::default()
        })
    }

    /// The ids of every stored document, in id order.
    pub fn document_ids(&self) -> Result<Vec<DocumentId>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached("SELECT doc_id FROM documents ORDER BY doc_id")
            .map_err(map_error)?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(map_error)?;
        let mut ids = Vec::new();
        for row in rows {
            let s = row.map_err(map_error)?;
            ids.push(
                s.parse()
                    .map_err(|e| StoreError::Corrupt(format!("documents.doc_id: {e}")))?,
            );
        }
        Ok(ids)
    }

    /// The relay's own storage id, created on first use and kept in the database, so
    /// peers that persist their sync state with us find it again after a restart.
    pub fn relay_storage_id(&self) -> Result<StorageId, StoreError> {
        let conn = self.lock();
        let fresh = uuid::Uuid::new_v4().to_string();
        conn.execute(
            "INSERT OR IGNORE INTO relay_meta (key, value) VALUES ('storage_id', ?1)",
            [&fresh],
        )
        .map_err(map_error)?;
        conn.query_row(
            "SELECT value FROM relay_meta WHERE key = 'storage_id'",
            [],
            |r| r.get(0),
        )
        .map(StorageId)
        .map_err(map_error)
    }

    /// The number of audit rows recorded for a document.
    pub fn audit_count(&self, doc: &DocumentId) -> Result<u64, StoreError> {
        let conn = self.lock();
        conn.query_row(
            "SELECT COUNT(*) FROM audit WHERE doc_id = ?1",
            [doc.to_string()],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n as u64)
        .map_err(map_error)
    }

    /// Runs `f` on the connection, for modules that keep their own tables in this file.
    pub fn with_connection<T>(&self, f: impl FnOnce(&mut Connection) -> T) -> T {
        f(&mut self.lock())
    }
}

impl Store for SqliteStore {
    fn load(&self, doc: &DocumentId) -> Result<Option<StoredDocument>, StoreError> {
        let conn = self.lock();
        let id = doc.to_string();
        let known: Option<i64> = conn
            .query_row("SELECT 1 FROM documents WHERE doc_id = ?1", [&id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(map_error)?;
        if known.is_none() {
            return Ok(None);
        }
        // Snapshot first, then incrementals in commit order.
        let mut stmt = conn
            .prepare_cached(
                "SELECT kind, bytes FROM chunks WHERE doc_id = ?1 ORDER BY kind ASC, seq ASC",
            )
            .map_err(map_error)?;
        let rows = stmt
            .query_map([&id], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
            })
            .map_err(map_error)?;
        let mut out = StoredDocument::default();
        for row in rows {
            let (kind, bytes) = row.map_err(map_error)?;
            match kind {
                KIND_SNAPSHOT => out.snapshot_bytes += bytes.len() as u64,
                KIND_INCREMENTAL => out.incremental_bytes += bytes.len() as u64,
                other => {
                    return Err(StoreError::Corrupt(format!(
                        "chunk of {id} has unknown kind {other}"
                    )));
                }
            }
            out.chunks.push(bytes);
        }
        Ok(Some(out))
    }

    fn load_sync_state(
        &self,
        doc: &DocumentId,
        peer: &StorageId,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let conn = self.lock();
        conn.query_row(
            "SELECT state FROM sync_states WHERE doc_id = ?1 AND storage_id = ?2",
            params![doc.to_string(), peer.0],
            |r| r.get(0),
        )
        .optional()
        .map_err(map_error)
    }

    fn commit(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut conn = self.lock();
        // IMMEDIATE takes the write lock up front, so a busy database fails here (after
        // busy_timeout) rather than half-way through.
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(map_error)?;
        let now = now_ms();
        {
            let mut create = tx
                .prepare_cached("INSERT INTO documents (doc_id, created_at) VALUES (?1, ?2)")
                .map_err(map_error)?;
            let mut exists = tx
                .prepare_cached("SELECT 1 FROM documents WHERE doc_id = ?1")
                .map_err(map_error)?;
            let mut insert_chunk = tx
                .prepare_cached("INSERT INTO chunks (doc_id, kind, bytes) VALUES (?1, ?2, ?3)")
                .map_err(map_error)?;
            let mut clear = tx
                .prepare_cached("DELETE FROM chunks WHERE doc_id = ?1")
                .map_err(map_error)?;
            let mut known = |id: &str| -> Result<bool, StoreError> {
                exists
                    .query_row([id], |_| Ok(()))
                    .optional()
                    .map(|r| r.is_some())
                    .map_err(map_error)
            };

            for (doc, bytes) in &batch.created {
                let id = doc.to_string();
                if known(&id)? {
                    return Err(StoreError::Io(format!("document {id} already exists")));
                }
                create.execute(params![id, now]).map_err(map_error)?;
                insert_chunk
                    .execute(params![id, KIND_SNAPSHOT, bytes])
                    .map_err(map_error)?;
            }
            // Snapshots before appends: a chunk appended in the same batch survives the
            // compaction even if the snapshot was taken before it (duplicates are
            // harmless to automerge, losses are not).
            for (doc, bytes) in &batch.snapshots {
                let id = doc.to_string();
                if !known(&id)? {
                    return Err(StoreError::Io(format!("snapshot of unknown document {id}")));
                }
                clear.execute([&id]).map_err(map_error)?;
                insert_chunk
                    .execute(params![id, KIND_SNAPSHOT, bytes])
                    .map_err(map_error)?;
            }
            for (doc, bytes) in &batch.appended {
                let id = doc.to_string();
                // A peer must not be able to make the server store a document it does
                // not know: appending is only for documents that exist.
                if !known(&id)? {
                    return Err(StoreError::Io(format!("append to unknown document {id}")));
                }
                insert_chunk
                    .execute(params![id, KIND_INCREMENTAL, bytes])
                    .map_err(map_error)?;
            }
            let mut save_state = tx
                .prepare_cached(
                    "INSERT INTO sync_states (doc_id, storage_id, state, updated_at)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (doc_id, storage_id)
                     DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
                )
                .map_err(map_error)?;
            for (doc, peer, state) in &batch.sync_states {
                save_state
                    .execute(params![doc.to_string(), peer.0, state, now])
                    .map_err(map_error)?;
            }
            let mut audit = tx
                .prepare_cached(
                    "INSERT INTO audit (doc_id, change_hash, actor, user, device, received_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(map_error)?;
            for a in &batch.audit {
                audit
                    .execute(params![
                        a.doc.to_string(),
                        a.change_hash,
                        a.actor,
                        a.user,
                        a.device,
                        a.received_at
                    ])
                    .map_err(map_error)?;
            }
        }
        tx.commit().map_err(map_error)
    }

    fn exists(&self, doc: &DocumentId) -> Result<bool, StoreError> {
        let conn = self.lock();
        conn.query_row(
            "SELECT 1 FROM documents WHERE doc_id = ?1",
            [doc.to_string()],
            |_| Ok(()),
        )
        .optional()
        .map(|r| r.is_some())
        .map_err(map_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::{AutoCommit, ReadDoc, transaction::Transactable};
    use dealersync_core::store::AuditRecord;

    fn open(dir: &Path) -> SqliteStore {
        SqliteStore::open(dir, &StoreOptions::default()).unwrap()
    }

    fn doc_with(key: &str, value: i64) -> AutoCommit {
        let mut d = AutoCommit::new();
        d.put(automerge::ROOT, key, value).unwrap();
        d
    }

    fn load_doc(stored: &StoredDocument) -> AutoCommit {
        let mut d = AutoCommit::new();
        for c in &stored.chunks {
            d.load_incremental(c).unwrap();
        }
        d
    }

    #[test]
    fn documents_round_trip_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let id = DocumentId::random();
        let mut doc = doc_with("a", 1);
        {
            let store = open(dir.path());
            assert!(!store.exists(&id).unwrap());
            assert_eq!(store.load(&id).unwrap(), None);
            store.create_document(&id, doc.save()).unwrap();
            doc.put(automerge::ROOT, "b", 2).unwrap();
            let inc = doc.save_incremental();
            store
                .commit(&WriteBatch {
                    appended: vec![(id, inc)],
                    sync_states: vec![(id, StorageId("dev-1".into()), vec![1, 2, 3])],
                    audit: vec![AuditRecord {
                        doc: id,
                        change_hash: "ab".into(),
                        actor: "cd".into(),
                        user: Some("u".into()),
                        device: None,
                        received_at: 5,
                    }],
                    ..WriteBatch::default()
                })
                .unwrap();
        }
        let store = open(dir.path());
        assert!(store.exists(&id).unwrap());
        let stored = store.load(&id).unwrap().unwrap();
        assert_eq!(stored.chunks.len(), 2);
        assert!(stored.snapshot_bytes > 0 && stored.incremental_bytes > 0);
        let mut loaded = load_doc(&stored);
        assert_eq!(loaded.get_heads(), doc.get_heads());
        assert_eq!(
            store
                .load_sync_state(&id, &StorageId("dev-1".into()))
                .unwrap(),
            Some(vec![1, 2, 3])
        );
        assert_eq!(
            store
                .load_sync_state(&id, &StorageId("dev-2".into()))
                .unwrap(),
            None
        );
        assert_eq!(store.audit_count(&id).unwrap(), 1);
        assert_eq!(store.document_ids().unwrap(), vec![id]);
    }

    #[test]
    fn the_relay_storage_id_is_stable_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let first = open(dir.path()).relay_storage_id().unwrap();
        assert_eq!(open(dir.path()).relay_storage_id().unwrap(), first);
        assert!(!first.0.is_empty());
    }

    #[test]
    fn sync_state_is_replaced_not_duplicated() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let id = DocumentId::random();
        store
            .create_document(&id, AutoCommit::new().save())
            .unwrap();
        let peer = StorageId("s".into());
        for state in [vec![1u8], vec![2u8, 2]] {
            store
                .commit(&WriteBatch {
                    sync_states: vec![(id, peer.clone(), state)],
                    ..WriteBatch::default()
                })
                .unwrap();
        }
        assert_eq!(store.load_sync_state(&id, &peer).unwrap(), Some(vec![2, 2]));
    }

    #[test]
    fn snapshot_replaces_all_chunks_and_keeps_later_appends() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let id = DocumentId::random();
        let mut doc = doc_with("n", 0);
        store.create_document(&id, doc.save()).unwrap();
        for i in 1..=5 {
            doc.put(automerge::ROOT, "n", i).unwrap();
            store
                .commit(&WriteBatch {
                    appended: vec![(id, doc.save_incremental())],
                    ..WriteBatch::default()
                })
                .unwrap();
        }
        assert_eq!(store.load(&id).unwrap().unwrap().chunks.len(), 6);
        let snapshot = doc.save();
        doc.put(automerge::ROOT, "n", 6).unwrap();
        let after = doc.save_incremental();
        store
            .commit(&WriteBatch {
                snapshots: vec![(id, snapshot)],
                appended: vec![(id, after)],
                ..WriteBatch::default()
            })
            .unwrap();
        let stored = store.load(&id).unwrap().unwrap();
        assert_eq!(stored.chunks.len(), 2, "snapshot plus the later append");
        let mut loaded = load_doc(&stored);
        assert_eq!(loaded.get_heads(), doc.get_heads());
        let (v, _) = loaded.get(automerge::ROOT, "n").unwrap().unwrap();
        assert!(
            matches!(&v, automerge::Value::Scalar(s) if **s == automerge::ScalarValue::Int(6)),
            "{v:?}"
        );
    }

    #[test]
    fn a_failed_batch_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let known = DocumentId::random();
        store
            .create_document(&known, AutoCommit::new().save())
            .unwrap();
        let before = store.load(&known).unwrap().unwrap();
        // The snapshot of `known` comes before the failing append in commit order, so
        // this checks that the transaction rolls it back.
        let err = store
            .commit(&WriteBatch {
                snapshots: vec![(known, doc_with("x", 1).save())],
                appended: vec![(DocumentId::random(), vec![1, 2, 3])],
                ..WriteBatch::default()
            })
            .unwrap_err();
        assert_eq!(err.kind(), "io", "{err}");
        assert_eq!(store.load(&known).unwrap().unwrap(), before);
    }

    #[test]
    fn creating_an_existing_document_fails() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let id = DocumentId::random();
        store
            .create_document(&id, AutoCommit::new().save())
            .unwrap();
        let err = store
            .create_document(&id, AutoCommit::new().save())
            .unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
        assert_eq!(store.load(&id).unwrap().unwrap().chunks.len(), 1);
    }

    #[test]
    fn a_full_database_is_reported_as_full() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let id = DocumentId::random();
        store
            .create_document(&id, AutoCommit::new().save())
            .unwrap();
        let pages: i64 = store.with_connection(|c| {
            c.pragma_query_value(None, "page_count", |r| r.get(0))
                .unwrap()
        });
        store.with_connection(|c| {
            c.pragma_update(None, "max_page_count", pages).unwrap();
        });
        let err = store
            .commit(&WriteBatch {
                appended: vec![(id, vec![7u8; 64 * 1024])],
                ..WriteBatch::default()
            })
            .unwrap_err();
        assert_eq!(err.kind(), "full", "{err}");
        assert_eq!(store.load(&id).unwrap().unwrap().chunks.len(), 1);
    }

    #[test]
    fn a_locked_database_is_reported_as_busy() {
        let dir = tempfile::tempdir().unwrap();
        let options = StoreOptions {
            busy_timeout: Duration::from_millis(50),
            ..StoreOptions::default()
        };
        let store = SqliteStore::open(dir.path(), &options).unwrap();
        let other = SqliteStore::open(dir.path(), &options).unwrap();
        let id = DocumentId::random();
        other.with_connection(|c| c.execute_batch("BEGIN IMMEDIATE").unwrap());
        let err = store
            .create_document(&id, AutoCommit::new().save())
            .unwrap_err();
        assert_eq!(err.kind(), "busy", "{err}");
        other.with_connection(|c| c.execute_batch("ROLLBACK").unwrap());
        store
            .create_document(&id, AutoCommit::new().save())
            .unwrap();
    }

    #[test]
    fn a_file_that_is_not_a_database_is_reported_as_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(DB_FILE), vec![0x5a; 8192]).unwrap();
        match SqliteStore::open(dir.path(), &StoreOptions::default()) {
            Err(OpenError::Database(_, e)) => assert_eq!(e.kind(), "corrupt", "{e}"),
            other => panic!("expected a corrupt database, got {other:?}"),
        }
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        open(dir.path()).with_connection(|c| {
            c.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
                .unwrap()
        });
        assert!(matches!(
            SqliteStore::open(dir.path(), &StoreOptions::default()),
            Err(OpenError::TooNew { .. })
        ));
    }

    #[test]
    fn settings_are_wal_and_synchronous_full_by_default() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let (mode, sync): (String, i64) = store.with_connection(|c| {
            (
                c.pragma_query_value(None, "journal_mode", |r| r.get(0))
                    .unwrap(),
                c.pragma_query_value(None, "synchronous", |r| r.get(0))
                    .unwrap(),
            )
        });
        assert_eq!(mode, "wal");
        assert_eq!(sync, 2, "FULL");
    }
}
