//! The device's durable store: automerge chunks and sync states in SQLite, behind the
//! `core` [`Store`] trait, plus the client's own bookkeeping (what the server has
//! acknowledged, when each document last synced).
//!
//! The trait half is deliberately the same contract the relay's store fulfils, so the
//! shared SQLite store can replace [`SqliteStore`] without touching the commands; the
//! bookkeeping lives in `client_*` tables so the two never collide in one file.

use std::path::Path;
use std::sync::Mutex;

use dealersync_core::protocol::{DocumentId, StorageId};
use dealersync_core::store::{Store, StoreError, StoredDocument, WriteBatch};
use rusqlite::{Connection, OptionalExtension, params};

/// SQLite storage of documents and sync states; every commit is one transaction with
/// `synchronous=FULL`, so it is on disk when `commit` returns.
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

fn to_store_err(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => StoreError::Full(e.to_string()),
        Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => {
            StoreError::Busy(e.to_string())
        }
        Some(ErrorCode::DatabaseCorrupt) | Some(ErrorCode::NotADatabase) => {
            StoreError::Corrupt(e.to_string())
        }
        _ => StoreError::Io(e.to_string()),
    }
}

/// Opens a connection with the durability settings every writer here relies on.
pub fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(to_store_err)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(to_store_err)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(to_store_err)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(to_store_err)?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the store in the SQLite file at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = open_connection(path)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS chunks (
                 seq INTEGER PRIMARY KEY AUTOINCREMENT,
                 doc TEXT NOT NULL,
                 snapshot INTEGER NOT NULL,
                 data BLOB NOT NULL);
             CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc, seq);
             CREATE TABLE IF NOT EXISTS sync_states (
                 doc TEXT NOT NULL,
                 peer TEXT NOT NULL,
                 data BLOB NOT NULL,
                 PRIMARY KEY (doc, peer));
             CREATE TABLE IF NOT EXISTS audit (
                 doc TEXT NOT NULL,
                 change_hash TEXT NOT NULL,
                 actor TEXT NOT NULL,
                 user TEXT,
                 device TEXT,
                 received_at INTEGER NOT NULL);",
        )
        .map_err(to_store_err)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }
}

impl Store for SqliteStore {
    fn load(&self, doc: &DocumentId) -> Result<Option<StoredDocument>, StoreError> {
        let conn = self.conn.lock().expect("store mutex");
        let mut stmt = conn
            .prepare_cached("SELECT snapshot, data FROM chunks WHERE doc = ?1 ORDER BY seq")
            .map_err(to_store_err)?;
        let rows = stmt
            .query_map(params![doc.to_string()], |r| {
                Ok((r.get::<_, bool>(0)?, r.get::<_, Vec<u8>>(1)?))
            })
            .map_err(to_store_err)?;
        let mut out = StoredDocument::default();
        for row in rows {
            let (snapshot, data) = row.map_err(to_store_err)?;
            if snapshot {
                out.snapshot_bytes += data.len() as u64;
            } else {
                out.incremental_bytes += data.len() as u64;
            }
            out.chunks.push(data);
        }
        Ok(if out.chunks.is_empty() {
            None
        } else {
            Some(out)
        })
    }

    fn load_sync_state(
        &self,
        doc: &DocumentId,
        peer: &StorageId,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let conn = self.conn.lock().expect("store mutex");
        conn.query_row(
            "SELECT data FROM sync_states WHERE doc = ?1 AND peer = ?2",
            params![doc.to_string(), peer.0],
            |r| r.get(0),
        )
        .optional()
        .map_err(to_store_err)
    }

    fn commit(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn.lock().expect("store mutex");
        let tx = conn.transaction().map_err(to_store_err)?;
        {
            let mut insert = tx
                .prepare_cached("INSERT INTO chunks (doc, snapshot, data) VALUES (?1, ?2, ?3)")
                .map_err(to_store_err)?;
            for (doc, data) in &batch.created {
                insert
                    .execute(params![doc.to_string(), false, data])
                    .map_err(to_store_err)?;
            }
            for (doc, data) in &batch.appended {
                insert
                    .execute(params![doc.to_string(), false, data])
                    .map_err(to_store_err)?;
            }
            for (doc, data) in &batch.snapshots {
                tx.execute(
                    "DELETE FROM chunks WHERE doc = ?1",
                    params![doc.to_string()],
                )
                .map_err(to_store_err)?;
                insert
                    .execute(params![doc.to_string(), true, data])
                    .map_err(to_store_err)?;
            }
            let mut state = tx
                .prepare_cached(
                    "INSERT INTO sync_states (doc, peer, data) VALUES (?1, ?2, ?3)
                     ON CONFLICT (doc, peer) DO UPDATE SET data = excluded.data",
                )
                .map_err(to_store_err)?;
            for (doc, peer, data) in &batch.sync_states {
                state
                    .execute(params![doc.to_string(), peer.0, data])
                    .map_err(to_store_err)?;
            }
            let mut audit = tx
                .prepare_cached(
                    "INSERT INTO audit (doc, change_hash, actor, user, device, received_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(to_store_err)?;
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
                    .map_err(to_store_err)?;
            }
        }
        tx.commit().map_err(to_store_err)
    }

    fn exists(&self, doc: &DocumentId) -> Result<bool, StoreError> {
        let conn = self.conn.lock().expect("store mutex");
        conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM chunks WHERE doc = ?1)",
            params![doc.to_string()],
            |r| r.get(0),
        )
        .map_err(to_store_err)
    }
}

/// What the device knows about one document's sync with the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncRecord {
    /// Heads the server has acknowledged having (hex change hashes).
    pub server_heads: Vec<String>,
    /// When a sync of this document last completed, UTC milliseconds.
    pub last_sync_at: Option<i64>,
}

/// The client's bookkeeping next to the store, in the same SQLite file.
pub struct ClientState {
    conn: Connection,
}

impl ClientState {
    /// Opens (creating if needed) the bookkeeping tables in the file at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = open_connection(path)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS client_sync (
                 doc TEXT PRIMARY KEY,
                 server_heads TEXT NOT NULL DEFAULT '',
                 last_sync_at INTEGER,
                 local_edits INTEGER NOT NULL DEFAULT 0)",
        )
        .map_err(to_store_err)?;
        Ok(ClientState { conn })
    }

    /// The sync record of a document (empty if it never synced).
    pub fn record(&self, doc: &DocumentId) -> Result<SyncRecord, StoreError> {
        let row: Option<(String, Option<i64>)> = self
            .conn
            .query_row(
                "SELECT server_heads, last_sync_at FROM client_sync WHERE doc = ?1",
                params![doc.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(to_store_err)?;
        Ok(match row {
            None => SyncRecord::default(),
            Some((heads, at)) => SyncRecord {
                server_heads: heads
                    .split(',')
                    .filter(|h| !h.is_empty())
                    .map(str::to_string)
                    .collect(),
                last_sync_at: at,
            },
        })
    }

    /// Counts a local edit of `doc`, so a running `sync` knows to pick it up from the
    /// store. Called under the write lock, right after the edit is committed.
    pub fn bump_edits(&self, doc: &DocumentId) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO client_sync (doc, local_edits) VALUES (?1, 1)
                 ON CONFLICT (doc) DO UPDATE SET local_edits = local_edits + 1",
                params![doc.to_string()],
            )
            .map_err(to_store_err)?;
        Ok(())
    }

    /// How many local edits of `doc` were counted so far.
    pub fn edits(&self, doc: &DocumentId) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT local_edits FROM client_sync WHERE doc = ?1",
                params![doc.to_string()],
                |r| r.get(0),
            )
            .optional()
            .map_err(to_store_err)?
            .unwrap_or(0))
    }

    /// Saves what the server acknowledged; `completed_at` marks a finished sync.
    pub fn save(
        &self,
        doc: &DocumentId,
        server_heads: &[String],
        completed_at: Option<i64>,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO client_sync (doc, server_heads, last_sync_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (doc) DO UPDATE SET server_heads = excluded.server_heads,
                     last_sync_at = COALESCE(excluded.last_sync_at, client_sync.last_sync_at)",
                params![doc.to_string(), server_heads.join(","), completed_at],
            )
            .map_err(to_store_err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_survive_reopen_and_snapshots_replace_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite");
        let doc = DocumentId::random();
        {
            let store = SqliteStore::open(&path).unwrap();
            assert!(!store.exists(&doc).unwrap());
            let batch = WriteBatch {
                created: vec![(doc, vec![1, 2])],
                appended: vec![(doc, vec![3])],
                ..Default::default()
            };
            store.commit(&batch).unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let got = store.load(&doc).unwrap().unwrap();
        assert_eq!(got.chunks, vec![vec![1, 2], vec![3]]);
        assert_eq!(got.incremental_bytes, 3);
        store
            .commit(&WriteBatch {
                snapshots: vec![(doc, vec![9, 9, 9, 9])],
                appended: vec![],
                ..Default::default()
            })
            .unwrap();
        let got = store.load(&doc).unwrap().unwrap();
        assert_eq!(got.chunks, vec![vec![9, 9, 9, 9]]);
        assert_eq!(got.snapshot_bytes, 4);
    }

    #[test]
    fn sync_records_keep_the_last_completion_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite");
        let doc = DocumentId::random();
        let st = ClientState::open(&path).unwrap();
        assert_eq!(st.record(&doc).unwrap(), SyncRecord::default());
        st.save(&doc, &["aa".into()], Some(5)).unwrap();
        st.save(&doc, &["aa".into(), "bb".into()], None).unwrap();
        let r = st.record(&doc).unwrap();
        assert_eq!(r.server_heads, vec!["aa", "bb"]);
        assert_eq!(r.last_sync_at, Some(5));
        assert_eq!(st.edits(&doc).unwrap(), 0);
        st.bump_edits(&doc).unwrap();
        st.bump_edits(&doc).unwrap();
        assert_eq!(st.edits(&doc).unwrap(), 2);
        assert_eq!(st.record(&doc).unwrap().server_heads, vec!["aa", "bb"]);
    }
}
