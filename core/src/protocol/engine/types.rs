//! The engine's public types: connections, configuration, outputs, errors, counters.

use super::*;

/// A connection, numbered by the driver. Never reuse a number while it is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// What the engine knows about who is on a connection (from the driver's auth).
pub struct ConnInfo {
    /// The access this connection has to a document; asked on every document message,
    /// so revocations take effect at once. `Sync` so that a driver running several
    /// engines (the relay's shards) can share one rule between them.
    pub access: Box<dyn Fn(&DocumentId) -> Access + Send + Sync>,
    /// The authenticated user (`sub`), recorded in the audit log.
    pub user: Option<String>,
    /// The device from the token, recorded in the audit log.
    pub device: Option<String>,
}

impl ConnInfo {
    /// Read-write access to every document, no user: for the field client's own
    /// connection to the relay and for tests.
    pub fn full_access() -> Self {
        ConnInfo {
            access: Box::new(|_| Access::ReadWrite),
            user: None,
            device: None,
        }
    }

    /// A connection with the given access rule.
    pub fn with_access(access: impl Fn(&DocumentId) -> Access + Send + Sync + 'static) -> Self {
        ConnInfo {
            access: Box::new(access),
            user: None,
            device: None,
        }
    }
}

impl std::fmt::Debug for ConnInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnInfo")
            .field("user", &self.user)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

/// Tuning of an [`Engine`].
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Our own storage id, advertised in `join`/`peer` so that peers persist their
    /// sync state with us. `None` for a node without durable storage.
    pub storage_id: Option<StorageId>,
    /// Compaction writes a snapshot once the incremental chunks exceed both the
    /// snapshot and this many bytes.
    pub compact_min_bytes: u64,
    /// Whether the engine compacts documents itself (a `save()` of the whole document
    /// in a write batch). A relay turns this off and compacts on a thread of its own
    /// from storage ([`Engine::compacted`] keeps the engine's sizes right), because a
    /// whole-document save of a large document would hold every peer back.
    pub compact_in_engine: bool,
    /// Sync messages queued per document while it is being written; a connection
    /// that overflows it is answered `error` and closed (back-pressure).
    pub max_queued_per_doc: usize,
    /// How many ephemeral (sender, session) pairs are remembered for de-duplication.
    pub ephemeral_sessions: usize,
    /// Bounds on what a peer may send (see [`SyncLimits`]).
    pub limits: SyncLimits,
    /// How received sync messages go into automerge: skipping its walk over the
    /// document's history when it cannot trim anything (the default), or untouched
    /// (see [`crate::protocol::receive`]).
    pub receive_path: ReceivePath,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            storage_id: None,
            compact_min_bytes: 64 * 1024,
            compact_in_engine: true,
            max_queued_per_doc: 10_000,
            ephemeral_sessions: 10_000,
            limits: SyncLimits::default(),
            receive_path: ReceivePath::default(),
        }
    }
}

/// Why the engine closed a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The frame was not a protocol message (an `error` was sent first).
    BadFrame(String),
    /// The message broke the protocol: handshake order, version, invalid automerge
    /// data (an `error` was sent first).
    Protocol(String),
    /// Storage failed while loading or committing (an `error` was sent first).
    Storage(String),
    /// The connection overflowed a queue (an `error` was sent first).
    Overloaded(String),
    /// A message or change is larger than the relay's limits, or would grow a
    /// document past its limit (an `error` was sent first).
    TooLarge(String),
    /// The same peer id joined on another connection; the newer one wins.
    Replaced,
    /// The peer sent `leave`.
    PeerLeft,
    /// The peer sent `error`.
    PeerError(String),
}

impl CloseReason {
    /// A short stable name for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            CloseReason::BadFrame(_) => "bad_frame",
            CloseReason::Protocol(_) => "protocol",
            CloseReason::Storage(_) => "storage",
            CloseReason::Overloaded(_) => "overloaded",
            CloseReason::TooLarge(_) => "too_large",
            CloseReason::Replaced => "replaced",
            CloseReason::PeerLeft => "peer_left",
            CloseReason::PeerError(_) => "peer_error",
        }
    }
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::BadFrame(m)
            | CloseReason::Protocol(m)
            | CloseReason::Storage(m)
            | CloseReason::Overloaded(m)
            | CloseReason::TooLarge(m) => f.write_str(m),
            CloseReason::Replaced => f.write_str("the peer id connected again elsewhere"),
            CloseReason::PeerLeft => f.write_str("the peer left"),
            CloseReason::PeerError(m) => write!(f, "the peer reported an error: {m}"),
        }
    }
}

/// What the driver must do, or may want to know, after a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send this frame on the connection.
    Send {
        /// The connection.
        conn: ConnId,
        /// What the frame is, for metrics.
        kind: MessageKind,
        /// The CBOR frame.
        bytes: Vec<u8>,
    },
    /// Close the connection (after sending the frames before this output).
    Close {
        /// The connection.
        conn: ConnId,
        /// Why.
        reason: CloseReason,
    },
    /// The handshake on a connection finished.
    PeerReady {
        /// The connection.
        conn: ConnId,
        /// The remote peer's id.
        peer_id: PeerId,
    },
    /// A document's committed heads advanced (changes from a peer or local edits are
    /// now durable). The relay updates its read model from here.
    DocumentChanged {
        /// The document.
        doc: DocumentId,
    },
    /// A peer answered `doc-unavailable` for a document we asked it for.
    DocumentUnavailable {
        /// The connection.
        conn: ConnId,
        /// The document.
        doc: DocumentId,
    },
    /// A new ephemeral message arrived (also relayed to the document's other peers).
    Ephemeral {
        /// The document.
        doc: DocumentId,
        /// The peer that created it.
        sender: PeerId,
        /// The payload.
        data: Vec<u8>,
    },
    /// A document from [`Engine::create_document`] or
    /// [`Engine::add_local_document`] is committed.
    Created {
        /// The document.
        doc: DocumentId,
    },
    /// Committing a new document failed; it is forgotten.
    CreateFailed {
        /// The document.
        doc: DocumentId,
        /// The storage error.
        error: String,
    },
}

/// Identifies the batch in flight between [`Engine::take_write_batch`] and
/// [`Engine::commit_succeeded`] / [`Engine::commit_failed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchToken(pub(super) u64);

/// Why an engine call on a document failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The document already exists (in memory or in the store).
    #[error("document {0} already exists")]
    AlreadyExists(DocumentId),
    /// The bytes are not an automerge document.
    #[error("invalid automerge document: {0}")]
    InvalidDocument(String),
    /// The document is not loaded (open it first).
    #[error("document {0} is not open")]
    NotLoaded(DocumentId),
    /// Reading the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Counters for the driver's metrics.
#[derive(Debug, Clone, Default)]
pub struct EngineStats {
    /// Messages received, by kind.
    pub messages_in: BTreeMap<MessageKind, u64>,
    /// Messages sent, by kind.
    pub messages_out: BTreeMap<MessageKind, u64>,
    /// Bytes received in frames.
    pub bytes_in: u64,
    /// Bytes sent in frames.
    pub bytes_out: u64,
    /// Frames that did not decode (answered `error` and closed).
    pub frames_rejected: u64,
    /// Frames of a message type this engine does not know (ignored).
    pub unknown_types_ignored: u64,
    /// Sync messages from read-only connections whose new changes were rejected.
    pub read_only_rejections: u64,
    /// Changes accepted from peers.
    pub changes_applied: u64,
    /// automerge apply calls for peers' changes: one per message carrying changes,
    /// or one for all the messages queued while a document was written.
    pub apply_calls: u64,
    /// Ephemeral messages dropped as already seen.
    pub ephemeral_duplicates: u64,
    /// Ephemeral messages forwarded to other peers.
    pub ephemeral_relayed: u64,
    /// Batches committed and failed.
    pub batches_committed: u64,
    /// Batches whose commit failed.
    pub batches_failed: u64,
    /// Sync messages for which automerge walked every ancestor of the peer's heads
    /// (the receive fast path could not show the walk unnecessary, or it is off).
    pub ancestor_walks: u64,
}
