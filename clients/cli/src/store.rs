//! The device's durable store. Documents and sync states live in the shared SQLite
//! store (crate `dealersync-sqlite-store`, the relay's own storage code) in
//! `<home>/store.sqlite`; this module adds the client's bookkeeping (what the server
//! has acknowledged, when each document last synced, local edits for `sync --watch`)
//! in `client_*` tables of the same file.

use std::path::Path;

use automerge::{Automerge, ChangeHash, ReadDoc};
use dealersync_core::protocol::DocumentId;
use dealersync_core::store::StoreError;
use dealersync_sqlite_store::map_error;
pub use dealersync_sqlite_store::{SqliteStore, StoreOptions};
use rusqlite::{Connection, OptionalExtension, params};

/// Opens a connection for the bookkeeping tables. The shared store opened the file
/// first (WAL is a property of the file); every write here is as durable as its own.
fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(map_error)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(map_error)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(map_error)?;
    Ok(conn)
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
        .map_err(map_error)?;
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
            .map_err(map_error)?;
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
            .map_err(map_error)?;
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
            .map_err(map_error)?
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
            .map_err(map_error)?;
        Ok(())
    }
}

/// The number of changes in `am` the server has not acknowledged.
pub(crate) fn unacked(am: &Automerge, server_heads: &[String]) -> usize {
    let acked: Vec<ChangeHash> = server_heads
        .iter()
        .filter_map(|h| h.parse().ok())
        .filter(|h| am.get_change_by_hash(h).is_some())
        .collect();
    am.get_changes_meta(&acked).len()
}

#[cfg(test)]
mod tests {
    use super::*;

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
