//! Bounds on what one peer may send, checked before any work in proportion to what a
//! message claims.
//!
//! A relay serves every site from one process: a single message must not be able to
//! make it allocate gigabytes, spin for seconds, or store a document no phone can load.
//! The structural bounds (ids, Bloom filters, hash lists, CBOR shape) are constants:
//! no real client comes near them. The content bounds are [`SyncLimits`], configurable
//! per relay because what a dealer's document may hold is a policy.
//! docs/operations.md ("Limits") lists each one and what a client sees when it hits it.

/// Longest peer id, storage id, session id or target id accepted, in bytes.
/// automerge-repo generates ids of about 40 characters.
pub const MAX_ID_BYTES: usize = 128;

/// Longest `documentId` text accepted before it is decoded. A bs58check document id
/// is 22–27 characters; an `automerge:` URL with heads may add a few hundred.
pub const MAX_DOCUMENT_ID_CHARS: usize = 512;

/// Largest `data` of an `ephemeral` message, in bytes. Ephemeral messages (presence,
/// cursors) are relayed to every other peer of the document, so their size is
/// multiplied by the document's audience; real ones are a few hundred bytes.
pub const MAX_EPHEMERAL_BYTES: usize = 64 * 1024;

/// Most CBOR items (map entries, array elements, scalars) in one frame. The largest
/// real message (`remote-heads-changed` for a few storage ids) has a few dozen.
pub const MAX_CBOR_ITEMS: usize = 4096;

/// Deepest CBOR nesting in one frame. Real messages nest three levels.
pub const MAX_CBOR_DEPTH: usize = 8;

/// Most change hashes in one list of a sync message (`heads`, `need`, a `have`'s
/// `lastSync`). Real lists hold the few concurrent heads of a document; a long list
/// of hashes the relay does not have makes automerge answer with as long a list.
pub const MAX_HASHES: usize = 1024;

/// Most `have` entries in one sync message. automerge sends zero or one.
pub const MAX_HAVES: usize = 16;

/// Largest Bloom filter parameters accepted. automerge writes 10 bits per entry and 7
/// probes; the cost of a lookup grows with the probes, and a filter with zero bits
/// per entry makes automerge divide by zero.
pub const MAX_BLOOM_BITS_PER_ENTRY: u32 = 32;
/// See [`MAX_BLOOM_BITS_PER_ENTRY`].
pub const MAX_BLOOM_PROBES: u32 = 32;

/// Content bounds of sync messages and documents, configurable per relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncLimits {
    /// Largest change, uncompressed, in bytes. A customer with its events is a few
    /// hundred bytes; a 1M-character note is not a sales record.
    pub max_change_bytes: u64,
    /// Most operations in one change (an operation per key set, per list element,
    /// per character of text).
    pub max_change_ops: u64,
    /// Most changes in one sync message.
    pub max_changes_per_message: u64,
    /// Most operations in one sync message, all changes together: bounds the time one
    /// message holds the engine.
    pub max_ops_per_message: u64,
    /// Most bytes one sync message may inflate to (compressed changes and documents
    /// decompressed, plus uncompressed changes).
    pub max_inflated_bytes: u64,
    /// Most operations (and changes) a whole document sent in a sync message may
    /// hold. Counted from its columns before automerge loads it, so a column that
    /// claims billions of entries in a few bytes costs nothing.
    pub max_document_ops: u64,
    /// Largest stored document, in bytes: a change that would grow a document past it
    /// is refused. Kept below the frame limit so that a new device's first sync of the
    /// whole document fits in one message.
    pub max_document_bytes: u64,
}

impl Default for SyncLimits {
    fn default() -> Self {
        SyncLimits {
            max_change_bytes: 1024 * 1024,
            max_change_ops: 100_000,
            max_changes_per_message: 50_000,
            max_ops_per_message: 500_000,
            max_inflated_bytes: 64 * 1024 * 1024,
            max_document_ops: 5_000_000,
            max_document_bytes: 12 * 1024 * 1024,
        }
    }
}

impl SyncLimits {
    /// No content bounds: for a field client reading its own relay, which already
    /// enforced them, and for tools.
    pub fn unlimited() -> Self {
        SyncLimits {
            max_change_bytes: u64::MAX,
            max_change_ops: u64::MAX,
            max_changes_per_message: u64::MAX,
            max_ops_per_message: u64::MAX,
            max_inflated_bytes: u64::MAX,
            max_document_ops: u64::MAX,
            max_document_bytes: u64::MAX,
        }
    }
}
