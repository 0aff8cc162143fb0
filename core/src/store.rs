//! The storage trait shared by the relay and the field client.
//!
//! A store keeps, per document, a list of chunks (automerge bytes: a compacted
//! snapshot and the incremental changes saved since), and the sync state per
//! (document, peer storage id). Loading a document is loading all its chunks in order.
//!
//! Durability is the store's promise: when [`Store::commit`] returns `Ok`, everything in
//! the batch survives a crash (for SQLite: one transaction with `synchronous=FULL`).
//! The sync engine groups the changes of many documents and connections into one batch
//! (group commit) and advertises nothing that a committed batch does not contain.

use crate::protocol::{DocumentId, StorageId};

/// Why a storage operation failed. The caller reports it to the peer and to the
/// operator; it never drops the data silently.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The disk is full or the database refused to grow.
    #[error("storage is full: {0}")]
    Full(String),
    /// The database is locked by another process or busy beyond the timeout.
    #[error("storage is busy or locked: {0}")]
    Busy(String),
    /// Stored bytes fail their integrity check.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Any other I/O or database failure.
    #[error("storage failed: {0}")]
    Io(String),
}

impl StoreError {
    /// A short, stable name for metrics and logs (`full`, `busy`, `corrupt`, `io`).
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::Full(_) => "full",
            StoreError::Busy(_) => "busy",
            StoreError::Corrupt(_) => "corrupt",
            StoreError::Io(_) => "io",
        }
    }
}

/// A stored document: its chunks in the order they must be loaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredDocument {
    /// Snapshot first (if any), then incremental chunks in commit order.
    pub chunks: Vec<Vec<u8>>,
    /// Size of the newest snapshot in bytes (0 if none), to decide when to compact.
    pub snapshot_bytes: u64,
    /// Total size of the incremental chunks after the snapshot.
    pub incremental_bytes: u64,
}

impl StoredDocument {
    /// The document these chunks make: every chunk loaded in order. The one way a
    /// stored document becomes an automerge document (engine, backups, tools).
    pub fn load(&self) -> Result<automerge::Automerge, automerge::AutomergeError> {
        automerge::Automerge::load(&self.chunks.concat())
    }

    /// [`StoredDocument::load`] as an [`automerge::AutoCommit`], for code that edits it.
    pub fn load_for_edit(&self) -> Result<automerge::AutoCommit, automerge::AutomergeError> {
        automerge::AutoCommit::load(&self.chunks.concat())
    }
}

/// Everything one group commit writes, atomically, applied in this order: created
/// documents, then snapshots, then appended chunks, so that a chunk appended in the
/// same batch as a compaction survives it (a duplicate change is harmless to automerge,
/// a lost one is not). Snapshots and appends name documents that exist or are created
/// in the same batch; anything else fails the whole batch.
#[derive(Debug, Clone, Default)]
pub struct WriteBatch {
    /// Documents created by this batch (must not exist yet), with their first chunk.
    pub created: Vec<(DocumentId, Vec<u8>)>,
    /// Incremental chunks to append.
    pub appended: Vec<(DocumentId, Vec<u8>)>,
    /// Compactions: the document's chunks are all replaced by this snapshot.
    pub snapshots: Vec<(DocumentId, Vec<u8>)>,
    /// Sync states to save, per (document, peer storage id).
    pub sync_states: Vec<(DocumentId, StorageId, Vec<u8>)>,
    /// One audit row per change accepted from a peer in this batch.
    pub audit: Vec<AuditRecord>,
}

/// Who sent an accepted change, recorded in the same transaction as the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// The document changed.
    pub doc: DocumentId,
    /// The automerge change hash, hex.
    pub change_hash: String,
    /// The automerge actor id, hex.
    pub actor: String,
    /// The authenticated user (`sub`), if the connection had one.
    pub user: Option<String>,
    /// The device claimed in the token, if any.
    pub device: Option<String>,
    /// When the server received it, UTC milliseconds.
    pub received_at: i64,
}

impl AuditRecord {
    /// One row per change of `am` made after `since`, written by `user` on `device`
    /// and received at `received_at`: how an edit made on a person's behalf (the
    /// relay's HTTP API) enters the audit log like a change a peer sent.
    pub fn for_changes(
        doc: DocumentId,
        am: &automerge::Automerge,
        since: &[automerge::ChangeHash],
        user: Option<&str>,
        device: Option<&str>,
        received_at: i64,
    ) -> Vec<AuditRecord> {
        am.get_changes_meta(since)
            .into_iter()
            .map(|ch| AuditRecord {
                doc,
                change_hash: ch.hash.to_string(),
                actor: ch.actor.to_hex_string(),
                user: user.map(str::to_string),
                device: device.map(str::to_string),
                received_at,
            })
            .collect()
    }
}

impl WriteBatch {
    /// Whether the batch writes nothing.
    pub fn is_empty(&self) -> bool {
        self.created.is_empty()
            && self.appended.is_empty()
            && self.snapshots.is_empty()
            && self.sync_states.is_empty()
            && self.audit.is_empty()
    }
}

/// Durable storage of documents and sync states.
pub trait Store: Send + Sync {
    /// The chunks of a document, or `None` if the store does not know it.
    fn load(&self, doc: &DocumentId) -> Result<Option<StoredDocument>, StoreError>;
    /// The saved sync state of a peer's storage for a document.
    fn load_sync_state(
        &self,
        doc: &DocumentId,
        peer: &StorageId,
    ) -> Result<Option<Vec<u8>>, StoreError>;
    /// Writes the batch in one transaction; durable when this returns `Ok`.
    fn commit(&self, batch: &WriteBatch) -> Result<(), StoreError>;
    /// Whether the store knows the document (without loading it).
    fn exists(&self, doc: &DocumentId) -> Result<bool, StoreError>;
}
