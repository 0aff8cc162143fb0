//! Compaction from storage, for a relay that must not compact on its engine thread.
//!
//! A document is stored as a snapshot plus the incremental chunks appended since.
//! [`SqliteStore::compaction_due`] says when the increments outweigh the snapshot;
//! [`SqliteStore::compact`] then loads the chunks up to the newest one, saves them as
//! one snapshot, and replaces exactly those chunks in one transaction. Chunks appended
//! meanwhile (a later `seq`) stay, and load after the snapshot, so a compaction running
//! beside the group commits loses nothing and blocks them only for its short write.

use automerge::Automerge;
use dealersync_core::protocol::DocumentId;
use dealersync_core::store::StoreError;
use rusqlite::OptionalExtension;

use crate::{KIND_INCREMENTAL, KIND_SNAPSHOT, SqliteStore, map_error};

/// What a compaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compacted {
    /// Size of the new snapshot.
    pub snapshot_bytes: u64,
    /// Size of the chunks it replaced.
    pub removed_bytes: u64,
}

impl SqliteStore {
    /// Another connection to the same database (with default options), for a thread
    /// that must not wait on this connection's lock.
    pub fn another_connection(&self) -> Result<SqliteStore, crate::OpenError> {
        SqliteStore::open_file(&self.path, &crate::StoreOptions::default())
    }

    /// Whether `doc`'s incremental chunks outweigh its snapshot and `min_bytes`.
    pub fn compaction_due(&self, doc: &DocumentId, min_bytes: u64) -> Result<bool, StoreError> {
        let conn = self.lock();
        let (snapshot, incremental): (i64, i64) = conn
            .query_row(
                "SELECT COALESCE(SUM(CASE WHEN kind = ?2 THEN length(bytes) END), 0),
                        COALESCE(SUM(CASE WHEN kind = ?3 THEN length(bytes) END), 0)
                 FROM chunks WHERE doc_id = ?1",
                rusqlite::params![doc.to_string(), KIND_SNAPSHOT, KIND_INCREMENTAL],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(map_error)?;
        Ok(incremental as u64 > (snapshot as u64).max(min_bytes))
    }

    /// Replaces `doc`'s chunks with one snapshot of them. `None` if the document has
    /// no chunks.
    pub fn compact(&self, doc: &DocumentId) -> Result<Option<Compacted>, StoreError> {
        let id = doc.to_string();
        // Read outside the write lock: the chunks up to `upto` never change, only
        // compaction deletes them, and one compaction runs at a time.
        let (upto, chunks) = {
            let conn = self.lock();
            let Some(upto): Option<i64> = conn
                .query_row(
                    "SELECT MAX(seq) FROM chunks WHERE doc_id = ?1",
                    [&id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(map_error)?
                .flatten()
            else {
                return Ok(None);
            };
            let mut stmt = conn
                .prepare_cached(
                    "SELECT bytes FROM chunks WHERE doc_id = ?1 AND seq <= ?2
                     ORDER BY kind ASC, seq ASC",
                )
                .map_err(map_error)?;
            let chunks = stmt
                .query_map(rusqlite::params![id, upto], |r| r.get::<_, Vec<u8>>(0))
                .map_err(map_error)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(map_error)?;
            (upto, chunks)
        };
        let removed_bytes: u64 = chunks.iter().map(|c| c.len() as u64).sum();
        let snapshot = Automerge::load(&chunks.concat())
            .map_err(|e| StoreError::Corrupt(format!("document {id}: {e}")))?
            .save();
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(map_error)?;
        tx.execute(
            "DELETE FROM chunks WHERE doc_id = ?1 AND seq <= ?2",
            rusqlite::params![id, upto],
        )
        .map_err(map_error)?;
        tx.execute(
            "INSERT INTO chunks (doc_id, kind, bytes) VALUES (?1, ?2, ?3)",
            rusqlite::params![id, KIND_SNAPSHOT, snapshot],
        )
        .map_err(map_error)?;
        tx.commit().map_err(map_error)?;
        Ok(Some(Compacted {
            snapshot_bytes: snapshot.len() as u64,
            removed_bytes,
        }))
    }
}

#[cfg(test)]
mod tests {
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ReadDoc};
    use dealersync_core::store::{Store, WriteBatch};

    use super::*;
    use crate::StoreOptions;

    #[test]
    fn compaction_keeps_every_change_and_what_was_appended_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path(), &StoreOptions::default()).unwrap();
        let doc = DocumentId::random();
        let mut am = AutoCommit::new();
        am.put(automerge::ROOT, "site", "showroom").unwrap();
        store.create_document(&doc, am.save()).unwrap();
        let mut heads = am.get_heads();
        for i in 0..50 {
            am.put(automerge::ROOT, format!("k{i}"), "x".repeat(4000))
                .unwrap();
            am.commit();
            let batch = WriteBatch {
                appended: vec![(doc, am.save_after(&heads))],
                ..WriteBatch::default()
            };
            heads = am.get_heads();
            store.commit(&batch).unwrap();
        }
        assert!(store.compaction_due(&doc, 64 * 1024).unwrap());
        let done = store.compact(&doc).unwrap().unwrap();
        assert!(done.snapshot_bytes < done.removed_bytes);
        assert!(!store.compaction_due(&doc, 64 * 1024).unwrap());
        // A change appended after the compaction loads after the snapshot.
        am.put(automerge::ROOT, "late", 1).unwrap();
        am.commit();
        store
            .commit(&WriteBatch {
                appended: vec![(doc, am.save_after(&heads))],
                ..WriteBatch::default()
            })
            .unwrap();
        let stored = store.load(&doc).unwrap().unwrap();
        assert_eq!(stored.chunks.len(), 2, "one snapshot and the late chunk");
        assert_eq!(stored.snapshot_bytes, done.snapshot_bytes);
        let loaded = Automerge::load(&stored.chunks.concat()).unwrap();
        assert_eq!(loaded.get_heads(), am.get_heads());
        assert!(loaded.get(automerge::ROOT, "k49").unwrap().is_some());
        assert!(store.compact(&DocumentId::random()).unwrap().is_none());
    }
}
