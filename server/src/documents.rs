//! Creating documents through the admin path (`dealersync-server doc create`): the only
//! way a document comes to exist until the site registry creates them.

use automerge::{AutoCommit, Automerge};
use dealersync_core::protocol::DocumentId;
use dealersync_core::store::StoreError;

use crate::storage::SqliteStore;

/// Why a document could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The bytes given are not an automerge document.
    #[error("not an automerge document: {0}")]
    NotAutomerge(#[from] automerge::AutomergeError),
    /// The store refused (the id exists, the disk is full, ...).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An empty document with one empty change, so it has heads: automerge-repo clients
/// treat a document without heads as unavailable.
pub fn empty_document() -> Vec<u8> {
    let mut doc = AutoCommit::new();
    doc.empty_change(
        automerge::transaction::CommitOptions::default()
            .with_message("created by dealersync-server".to_owned()),
    );
    doc.save()
}

/// Checks `bytes` load as automerge and stores them as a new document `id`.
pub fn create(store: &SqliteStore, id: &DocumentId, bytes: &[u8]) -> Result<(), CreateError> {
    let doc = Automerge::load(bytes)?;
    store.create_document(id, doc.save())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dealersync_core::store::Store;

    #[test]
    fn created_documents_have_heads_and_reject_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path(), &Default::default()).unwrap();
        let id = DocumentId::random();
        create(&store, &id, &empty_document()).unwrap();
        let stored = store.load(&id).unwrap().unwrap();
        let doc = Automerge::load(&stored.chunks[0]).unwrap();
        assert_eq!(doc.get_heads().len(), 1);
        let other = DocumentId::random();
        assert!(matches!(
            create(&store, &other, b"not automerge"),
            Err(CreateError::NotAutomerge(_))
        ));
        assert!(!store.exists(&other).unwrap());
        assert!(matches!(
            create(&store, &id, &empty_document()),
            Err(CreateError::Store(_))
        ));
    }
}
