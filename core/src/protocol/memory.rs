//! A [`Store`] in memory: the same contract as the SQLite stores, minus the disk.
//!
//! Useful wherever durability is not the point: engine tests, load tools, a relay
//! started for a demo. It can be told to fail its next commits, to exercise the
//! engine's error path.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::protocol::{DocumentId, StorageId};
use crate::store::{AuditRecord, Store, StoreError, StoredDocument, WriteBatch};

#[derive(Default)]
struct Inner {
    docs: HashMap<DocumentId, StoredDocument>,
    sync_states: HashMap<(DocumentId, StorageId), Vec<u8>>,
    audit: Vec<AuditRecord>,
    fail_next: usize,
    commits: usize,
}

/// An in-memory store. Commits are atomic: a failing one changes nothing.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next `n` commits fail with [`StoreError::Full`].
    pub fn fail_next_commits(&self, n: usize) {
        self.lock().fail_next = n;
    }

    /// Successful commits so far.
    pub fn commits(&self) -> usize {
        self.lock().commits
    }

    /// The audit rows written so far.
    pub fn audit(&self) -> Vec<AuditRecord> {
        self.lock().audit.clone()
    }

    /// Number of chunks stored for a document (snapshot plus incrementals).
    pub fn chunk_count(&self, doc: &DocumentId) -> usize {
        self.lock().docs.get(doc).map_or(0, |d| d.chunks.len())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (commits check
        // before they change anything), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Store for MemoryStore {
    fn load(&self, doc: &DocumentId) -> Result<Option<StoredDocument>, StoreError> {
        Ok(self.lock().docs.get(doc).cloned())
    }

    fn load_sync_state(
        &self,
        doc: &DocumentId,
        peer: &StorageId,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock().sync_states.get(&(*doc, peer.clone())).cloned())
    }

    fn commit(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if inner.fail_next > 0 {
            inner.fail_next -= 1;
            return Err(StoreError::Full("injected failure".into()));
        }
        // Check everything that can fail before changing anything: atomic without
        // copying the store.
        for (id, _) in &batch.created {
            if inner.docs.contains_key(id) {
                return Err(StoreError::Io(format!("document {id} already exists")));
            }
        }
        let created: std::collections::HashSet<_> =
            batch.created.iter().map(|(id, _)| id).collect();
        let known = |id: &DocumentId| inner.docs.contains_key(id) || created.contains(id);
        if let Some((id, _)) = batch.snapshots.iter().find(|(id, _)| !known(id)) {
            return Err(StoreError::Io(format!("snapshot of unknown document {id}")));
        }
        if let Some((id, _)) = batch.appended.iter().find(|(id, _)| !known(id)) {
            return Err(StoreError::Io(format!("append to unknown document {id}")));
        }
        // The order of `WriteBatch`'s contract: created, then snapshots, then appends.
        let docs = &mut inner.docs;
        for (id, bytes) in batch.created.iter().chain(&batch.snapshots) {
            docs.insert(
                *id,
                StoredDocument {
                    chunks: vec![bytes.clone()],
                    snapshot_bytes: bytes.len() as u64,
                    incremental_bytes: 0,
                },
            );
        }
        for (id, bytes) in &batch.appended {
            let d = docs.get_mut(id).expect("checked above");
            d.chunks.push(bytes.clone());
            d.incremental_bytes += bytes.len() as u64;
        }
        for (doc, peer, state) in &batch.sync_states {
            inner
                .sync_states
                .insert((*doc, peer.clone()), state.clone());
        }
        inner.audit.extend(batch.audit.iter().cloned());
        inner.commits += 1;
        Ok(())
    }

    fn exists(&self, doc: &DocumentId) -> Result<bool, StoreError> {
        Ok(self.lock().docs.contains_key(doc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_batch_changes_nothing() {
        let store = MemoryStore::new();
        let a = DocumentId::random();
        let ok = WriteBatch {
            created: vec![(a, vec![1])],
            ..WriteBatch::default()
        };
        store.commit(&ok).unwrap();
        let bad = WriteBatch {
            appended: vec![(a, vec![2]), (DocumentId::random(), vec![3])],
            sync_states: vec![(a, StorageId("s".into()), vec![4])],
            ..WriteBatch::default()
        };
        assert!(store.commit(&bad).is_err());
        assert_eq!(store.load(&a).unwrap().unwrap().chunks, vec![vec![1]]);
        assert_eq!(
            store.load_sync_state(&a, &StorageId("s".into())).unwrap(),
            None
        );
        store.fail_next_commits(1);
        assert!(matches!(store.commit(&ok), Err(StoreError::Full(_))));
        assert_eq!(store.commits(), 1);
    }
}
