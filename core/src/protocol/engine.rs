//! A sans-IO automerge-repo sync engine: the relay's server side and the field
//! client's peer side, with durability and access control built in.
//!
//! The engine owns the documents in use (one [`Automerge`] each) and one automerge
//! sync [`State`] per (document, connection). It does no I/O: the driver hands it
//! frames and the current time, and gets back [`Output`]s (frames to send, connections
//! to close, events). Storage is reached only through the [`Store`] trait, for reads;
//! every write goes through a [`WriteBatch`] the driver commits (group commit).
//!
//! # Driving it
//! ```text
//! server                                   client (field app)
//! engine.connect(conn, info)               engine.connect_to_server(conn, info) -> join
//! engine.receive(conn, frame, now, store)  engine.receive(conn, frame, now, store)
//! engine.disconnect(conn)                  engine.open(doc, store) / add_local_document
//! engine.create_document(doc, bytes, store) engine.document_mut(doc) + local_change(doc)
//!                                          engine.is_synced(doc, conn)
//! loop (commit task, every few ms while has_pending_writes()):
//!     let (token, batch) = engine.take_write_batch()?;   // one batch in flight
//!     match store.commit(&batch) {                        // outside the engine lock
//!         Ok(())  => engine.commit_succeeded(token, now, store),
//!         Err(e)  => engine.commit_failed(token, &e, now, store),
//!     }
//! periodically: engine.unload_idle(now, idle_ms), engine.unload_to_budget(max)
//! ```
//! The calls that produce frames return `Vec<Output>`; the driver sends each
//! [`Output::Send`] frame on
//! its connection in order and closes each [`Output::Close`] connection after sending
//! what precedes it. A closed connection is already forgotten by the engine; calling
//! [`Engine::disconnect`] for it again is harmless.
//!
//! # Durable before acknowledged
//! Received changes are applied to the in-memory document at once, but no sync
//! message for that document (to anyone) is generated while the document holds
//! changes that are not committed: such a message would advertise heads that a crash
//! could still lose. Per document:
//! - *clean*: everything in memory is committed; sync messages flow.
//! - *dirty*: changes applied, not yet in a batch; replies wait.
//! - *writing*: in the batch being committed; incoming sync messages for the
//!   document are queued, not applied, so each commit cycle ends with the document
//!   clean and able to answer (no starvation under constant load).
//!
//! A sync state never records uncommitted heads as sent (see `receive_sync`), so the
//! message sent after the commit, which is the writer's acknowledgement, is never
//! skipped.
//!
//! [`Engine::commit_succeeded`] marks the batch's documents clean, generates the
//! waiting sync messages and replays the queue. [`Engine::commit_failed`] errors and
//! closes every connection whose changes were in the batch (they still hold them and
//! resend after reconnecting) and reloads the documents from the store, so nothing
//! unacknowledged is advertised later. On a field client this also drops local edits
//! that were in the failed batch (nothing was saved); its driver reports the error.
//!
//! # Access
//! [`ConnInfo::access`] is asked for every document message. A document the store does
//! not know and a document the connection may not read get the same
//! `doc-unavailable`. A read-only connection's sync state is automerge's read-only
//! state (it advertises the READ_ONLY flag so modern peers do not even send changes);
//! changes it sends anyway that the document does not already have are answered with
//! an `error` and stripped from the message before automerge sees it, so they are
//! never applied, stored or forwarded. The connection stays open: its reads still
//! work, and closing would only make the client resend the same changes in a loop.
//!
//! # Sync state persistence
//! A peer whose `peerMetadata` has a `storageId` (and is not `isEphemeral`) gets its
//! saved sync state loaded when it starts syncing a document, and saved in write
//! batches whenever the shared heads advance and when it disconnects. A reconnecting
//! device therefore sends a Bloom filter of what changed since, not of its whole
//! history.
//!
//! # Cost per message
//! A sync message costs work in proportion to the changes it carries and the changes
//! since the shared heads; nothing saves the whole document per message. Write batches
//! append `save_after(durable heads)`; a compacted snapshot is written only when the
//! incremental bytes outgrow the snapshot (amortised constant cost per byte).
//! automerge 0.12 itself pays per *apply call* in proportion to the document, so the
//! messages queued while a document is written are applied in one call.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use automerge::sync::{self, State, SyncDoc};
use automerge::{Automerge, ChangeHash};

use super::ids::{DocumentId, PeerId, StorageId};
use super::inbound::{Inbound, InboundError, decode_frame};
use super::limits::SyncLimits;
use super::validate::ValidSync;
use super::wire::{Message, MessageKind, PROTOCOL_VERSION, PeerMetadata, WireError};
use crate::access::Access;
use crate::store::{AuditRecord, Store, StoreError, WriteBatch};

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
    /// so revocations take effect at once.
    pub access: Box<dyn Fn(&DocumentId) -> Access + Send>,
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
    pub fn with_access(access: impl Fn(&DocumentId) -> Access + Send + 'static) -> Self {
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
    /// Sync messages queued per document while it is being written; a connection
    /// that overflows it is answered `error` and closed (back-pressure).
    pub max_queued_per_doc: usize,
    /// How many ephemeral (sender, session) pairs are remembered for de-duplication.
    pub ephemeral_sessions: usize,
    /// Bounds on what a peer may send (see [`SyncLimits`]).
    pub limits: SyncLimits,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            storage_id: None,
            compact_min_bytes: 64 * 1024,
            max_queued_per_doc: 10_000,
            ephemeral_sessions: 10_000,
            limits: SyncLimits::default(),
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
pub struct BatchToken(u64);

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
}

/// Handshake progress of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Incoming: waiting for `join`.
    AwaitingJoin,
    /// Outgoing: sent `join`, waiting for `peer`.
    AwaitingPeer,
    /// Sync phase.
    Ready,
}

struct Conn {
    info: ConnInfo,
    outgoing: bool,
    phase: Phase,
    peer_id: Option<PeerId>,
    /// The peer's storage id when its sync state is worth persisting.
    storage_id: Option<StorageId>,
    docs: HashSet<DocumentId>,
}

/// One connection's view of one document.
struct PeerDoc {
    sync: State,
    /// Shared heads as last written to the store (or loaded from it).
    saved_shared_heads: Vec<ChangeHash>,
    /// Whether anything has been received from the peer for this document.
    heard_from: bool,
    /// The peer said `doc-unavailable`.
    unavailable: bool,
}

struct Doc {
    am: Automerge,
    /// Heads of what the store holds.
    durable_heads: Vec<ChangeHash>,
    /// Whether the store has this document at all.
    in_store: bool,
    /// Created here; must be written even if empty.
    must_create: bool,
    /// Heads included in the batch being committed.
    writing: Option<Vec<ChangeHash>>,
    peers: BTreeMap<ConnId, PeerDoc>,
    /// Sync messages that arrived while writing, in arrival order.
    queue: VecDeque<(ConnId, ValidSync)>,
    /// Connections whose changes are applied but not yet in a batch.
    senders: BTreeSet<ConnId>,
    /// Connections whose changes are in the batch being committed.
    writing_senders: BTreeSet<ConnId>,
    /// Audit rows for changes not yet in a batch.
    audit: Vec<AuditRecord>,
    snapshot_bytes: u64,
    incremental_bytes: u64,
    last_active: i64,
    /// Opened by the local application: never unloaded.
    pinned: bool,
}

impl Doc {
    fn new(am: Automerge, in_store: bool, now: i64) -> Doc {
        let durable_heads = if in_store { am.get_heads() } else { vec![] };
        Doc {
            am,
            durable_heads,
            in_store,
            must_create: false,
            writing: None,
            peers: BTreeMap::new(),
            queue: VecDeque::new(),
            senders: BTreeSet::new(),
            writing_senders: BTreeSet::new(),
            audit: Vec::new(),
            snapshot_bytes: 0,
            incremental_bytes: 0,
            last_active: now,
            pinned: false,
        }
    }

    /// Everything in memory is committed, so sync messages may advertise our heads.
    fn fully_durable(&self) -> bool {
        self.writing.is_none() && !self.must_create && self.am.get_heads() == self.durable_heads
    }

    /// Nothing would be lost or interrupted by dropping it from memory.
    fn unloadable(&self) -> bool {
        self.peers.is_empty()
            && !self.pinned
            && self.queue.is_empty()
            && self.in_store
            && self.fully_durable()
    }

    fn needs_write(&self) -> bool {
        self.writing.is_none() && (self.must_create || self.am.get_heads() != self.durable_heads)
    }
}

struct InFlight {
    token: u64,
    /// Documents written by the batch, and whether the batch creates them.
    docs: Vec<(DocumentId, bool)>,
}

/// The sync engine. See the module docs.
pub struct Engine {
    local: PeerId,
    config: EngineConfig,
    conns: HashMap<ConnId, Conn>,
    by_peer: HashMap<PeerId, ConnId>,
    docs: HashMap<DocumentId, Doc>,
    /// Documents that may have something to write (changes or sync states).
    dirty: HashSet<DocumentId>,
    /// Sync states of connections that went away, for the next batch.
    pending_states: Vec<(DocumentId, StorageId, Vec<u8>)>,
    in_flight: Option<InFlight>,
    next_token: u64,
    ephemeral_seen: HashMap<(PeerId, String), u64>,
    ephemeral_order: VecDeque<(PeerId, String)>,
    session_id: String,
    ephemeral_count: u64,
    now: i64,
    stats: EngineStats,
}

impl Engine {
    /// An engine for the local peer id.
    pub fn new(local: PeerId, config: EngineConfig) -> Engine {
        Engine {
            local,
            config,
            conns: HashMap::new(),
            by_peer: HashMap::new(),
            docs: HashMap::new(),
            dirty: HashSet::new(),
            pending_states: Vec::new(),
            in_flight: None,
            next_token: 1,
            ephemeral_seen: HashMap::new(),
            ephemeral_order: VecDeque::new(),
            session_id: DocumentId::random().to_string(),
            ephemeral_count: 0,
            now: 0,
            stats: EngineStats::default(),
        }
    }

    /// Our peer id.
    pub fn peer_id(&self) -> &PeerId {
        &self.local
    }

    /// Counters for metrics.
    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// Documents held in memory.
    pub fn docs_loaded(&self) -> usize {
        self.docs.len()
    }

    /// Open connections.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Whether [`Engine::take_write_batch`] has something to write.
    pub fn has_pending_writes(&self) -> bool {
        self.in_flight.is_none() && (!self.dirty.is_empty() || !self.pending_states.is_empty())
    }

    /// Whether a batch is being committed.
    pub fn batch_in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    // ---------------------------------------------------------------- connections

    /// A peer connected to us (we are the receiving side): it must send `join` first.
    pub fn connect(&mut self, conn: ConnId, info: ConnInfo) {
        self.conns.insert(
            conn,
            Conn {
                info,
                outgoing: false,
                phase: Phase::AwaitingJoin,
                peer_id: None,
                storage_id: None,
                docs: HashSet::new(),
            },
        );
    }

    /// We connected to a server: returns the `join` to send. Documents opened locally
    /// start syncing once the server answers `peer`.
    pub fn connect_to_server(&mut self, conn: ConnId, info: ConnInfo) -> Vec<Output> {
        self.conns.insert(
            conn,
            Conn {
                info,
                outgoing: true,
                phase: Phase::AwaitingPeer,
                peer_id: None,
                storage_id: None,
                docs: HashSet::new(),
            },
        );
        let mut out = Vec::new();
        let join = Message::Join {
            sender_id: self.local.clone(),
            supported_protocol_versions: Some(vec![PROTOCOL_VERSION.to_string()]),
            metadata: Some(self.metadata()),
        };
        self.send(&mut out, conn, &join);
        out
    }

    /// The connection is gone. Its sync states are saved with the next batch; its
    /// changes already applied are still committed (just not acknowledged to it).
    pub fn disconnect(&mut self, conn: ConnId) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        if let Some(pid) = &c.peer_id
            && self.by_peer.get(pid) == Some(&conn)
        {
            self.by_peer.remove(pid);
        }
        for doc_id in c.docs {
            let Some(d) = self.docs.get_mut(&doc_id) else {
                continue;
            };
            d.last_active = self.now;
            d.queue.retain(|(q, _)| *q != conn);
            if let Some(p) = d.peers.remove(&conn)
                && let Some(sid) = &c.storage_id
                && p.sync.shared_heads != p.saved_shared_heads
            {
                self.pending_states
                    .push((doc_id, sid.clone(), p.sync.encode()));
            }
        }
    }

    // ---------------------------------------------------------------- receiving

    /// Handles one frame from a connection. `now_ms` is the wall clock (audit times,
    /// idle tracking); `store` is read for documents and sync states not in memory.
    /// Frames for a connection the engine does not know (never connected, or already
    /// closed) are ignored.
    pub fn receive(
        &mut self,
        conn: ConnId,
        frame: &[u8],
        now_ms: i64,
        store: &dyn Store,
    ) -> Vec<Output> {
        let decoded = decode_frame(frame, &self.config.limits);
        self.receive_decoded(conn, decoded, frame.len(), now_ms, store)
    }

    /// [`Engine::receive`] for a frame the driver already decoded with
    /// [`decode_frame`] (off the engine's thread, with the engine's limits).
    pub fn receive_decoded(
        &mut self,
        conn: ConnId,
        decoded: Result<Inbound, InboundError>,
        frame_len: usize,
        now_ms: i64,
        store: &dyn Store,
    ) -> Vec<Output> {
        self.now = now_ms;
        self.stats.bytes_in += frame_len as u64;
        let mut out = Vec::new();
        let Some(phase) = self.conns.get(&conn).map(|c| c.phase) else {
            return out;
        };
        let (msg, mut valid) = match decoded {
            Ok(inbound) => (inbound.message, inbound.sync),
            Err(InboundError::Wire(WireError::UnknownType(t))) => {
                self.stats.unknown_types_ignored += 1;
                let t: String = t.chars().take(40).collect();
                tracing::debug!(%conn, r#type = %t, "ignoring unknown message type");
                return out;
            }
            Err(InboundError::Wire(e)) => {
                self.stats.frames_rejected += 1;
                self.fail(&mut out, conn, CloseReason::BadFrame(e.to_string()));
                return out;
            }
            Err(e @ InboundError::Sync { .. }) => {
                self.stats.frames_rejected += 1;
                let reason = match &e {
                    InboundError::Sync { rejected, .. } if rejected.is_limit() => {
                        CloseReason::TooLarge(e.to_string())
                    }
                    _ => CloseReason::Protocol(e.to_string()),
                };
                self.fail(&mut out, conn, reason);
                return out;
            }
        };
        *self.stats.messages_in.entry(msg.kind()).or_default() += 1;

        match (phase, msg) {
            (_, Message::Error { message, .. }) => {
                out.push(Output::Close {
                    conn,
                    reason: CloseReason::PeerError(message),
                });
                self.disconnect(conn);
            }
            (
                Phase::AwaitingJoin,
                Message::Join {
                    sender_id,
                    supported_protocol_versions,
                    metadata,
                },
            ) => self.on_join(
                &mut out,
                conn,
                sender_id,
                supported_protocol_versions,
                metadata,
            ),
            (Phase::AwaitingJoin, other) => self.fail(
                &mut out,
                conn,
                CloseReason::Protocol(format!(
                    "expected `join` first, got `{}`",
                    other.kind().as_str()
                )),
            ),
            (
                Phase::AwaitingPeer,
                Message::Peer {
                    sender_id,
                    selected_protocol_version,
                    metadata,
                    ..
                },
            ) => self.on_peer(
                &mut out,
                conn,
                sender_id,
                selected_protocol_version,
                metadata,
                store,
            ),
            (Phase::AwaitingPeer, other) => self.fail(
                &mut out,
                conn,
                CloseReason::Protocol(format!(
                    "expected `peer` first, got `{}`",
                    other.kind().as_str()
                )),
            ),
            (Phase::Ready, Message::Join { sender_id, .. }) => {
                let same = self.conns[&conn].peer_id.as_ref() == Some(&sender_id);
                if same {
                    // A repeated join (a client retrying) is answered again.
                    let peer = self.peer_message(sender_id);
                    self.send(&mut out, conn, &peer);
                } else {
                    self.fail(
                        &mut out,
                        conn,
                        CloseReason::Protocol("`join` with a different peer id".into()),
                    );
                }
            }
            (Phase::Ready, Message::Peer { .. }) => {}
            (Phase::Ready, Message::Request { document_id, .. })
            | (Phase::Ready, Message::Sync { document_id, .. }) => match valid.take() {
                Some(v) => self.on_sync(&mut out, conn, document_id, v, store),
                // A caller-built `Inbound` without its validated message.
                None => self.fail(
                    &mut out,
                    conn,
                    CloseReason::Protocol("sync message was not validated".into()),
                ),
            },
            (Phase::Ready, Message::DocUnavailable { document_id, .. }) => {
                if let Some(p) = self
                    .docs
                    .get_mut(&document_id)
                    .and_then(|d| d.peers.get_mut(&conn))
                {
                    p.unavailable = true;
                }
                out.push(Output::DocumentUnavailable {
                    conn,
                    doc: document_id,
                });
            }
            (Phase::Ready, m @ Message::Ephemeral { .. }) => self.on_ephemeral(&mut out, conn, m),
            (Phase::Ready, Message::Leave { .. }) => {
                out.push(Output::Close {
                    conn,
                    reason: CloseReason::PeerLeft,
                });
                self.disconnect(conn);
            }
            // Heads gossip is tolerated and ignored: the relay offers no subscriptions.
            (Phase::Ready, Message::RemoteSubscriptionChange { .. })
            | (Phase::Ready, Message::RemoteHeadsChanged { .. }) => {}
        }
        out
    }

    fn metadata(&self) -> PeerMetadata {
        PeerMetadata {
            storage_id: self.config.storage_id.clone(),
            is_ephemeral: self.config.storage_id.is_none(),
        }
    }

    fn peer_message(&self, target: PeerId) -> Message {
        Message::Peer {
            sender_id: self.local.clone(),
            target_id: target,
            selected_protocol_version: PROTOCOL_VERSION.to_string(),
            metadata: Some(self.metadata()),
        }
    }

    fn on_join(
        &mut self,
        out: &mut Vec<Output>,
        conn: ConnId,
        sender: PeerId,
        versions: Option<Vec<String>>,
        metadata: Option<PeerMetadata>,
    ) {
        // The JS server treats an absent list as version "1"; so do we.
        let speaks_v1 = versions.is_none_or(|v| v.iter().any(|v| v == PROTOCOL_VERSION));
        if !speaks_v1 {
            self.fail(
                out,
                conn,
                CloseReason::Protocol(format!(
                    "unsupported protocol version: this server speaks \"{PROTOCOL_VERSION}\""
                )),
            );
            return;
        }
        if let Some(old) = self.by_peer.get(&sender).copied()
            && old != conn
        {
            out.push(Output::Close {
                conn: old,
                reason: CloseReason::Replaced,
            });
            self.disconnect(old);
        }
        let c = self.conns.get_mut(&conn).expect("checked by receive");
        c.phase = Phase::Ready;
        c.peer_id = Some(sender.clone());
        c.storage_id = persistable(metadata);
        self.by_peer.insert(sender.clone(), conn);
        let peer = self.peer_message(sender.clone());
        self.send(out, conn, &peer);
        out.push(Output::PeerReady {
            conn,
            peer_id: sender,
        });
    }

    fn on_peer(
        &mut self,
        out: &mut Vec<Output>,
        conn: ConnId,
        sender: PeerId,
        version: String,
        metadata: Option<PeerMetadata>,
        store: &dyn Store,
    ) {
        if version != PROTOCOL_VERSION {
            self.fail(
                out,
                conn,
                CloseReason::Protocol(format!(
                    "server selected protocol version {version:?}; we speak \"{PROTOCOL_VERSION}\""
                )),
            );
            return;
        }
        let c = self.conns.get_mut(&conn).expect("checked by receive");
        c.phase = Phase::Ready;
        c.peer_id = Some(sender.clone());
        c.storage_id = persistable(metadata);
        self.by_peer.insert(sender.clone(), conn);
        out.push(Output::PeerReady {
            conn,
            peer_id: sender,
        });
        let pinned: Vec<DocumentId> = self
            .docs
            .iter()
            .filter(|(_, d)| d.pinned)
            .map(|(id, _)| *id)
            .collect();
        for doc_id in pinned {
            self.start_sync(out, conn, doc_id, store);
        }
    }

    /// Adds `conn` as a peer of a loaded document and sends our first message.
    fn start_sync(
        &mut self,
        out: &mut Vec<Output>,
        conn: ConnId,
        doc_id: DocumentId,
        store: &dyn Store,
    ) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        if c.phase != Phase::Ready || !(c.info.access)(&doc_id).can_read() {
            return;
        }
        self.ensure_peer(conn, doc_id, store);
        self.generate(out, doc_id, conn);
    }

    /// Creates the (document, connection) sync state if it is new, from the saved
    /// state of the peer's storage if there is one.
    fn ensure_peer(&mut self, conn: ConnId, doc_id: DocumentId, store: &dyn Store) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let read_only = !(c.info.access)(&doc_id).can_write();
        let Some(d) = self.docs.get_mut(&doc_id) else {
            return;
        };
        if let Some(p) = d.peers.get_mut(&conn) {
            if p.sync.read_only != read_only {
                p.sync.set_read_only(read_only);
            }
            return;
        }
        c.docs.insert(doc_id);
        let saved = c.storage_id.as_ref().and_then(|sid| {
            match store.load_sync_state(&doc_id, sid) {
                Ok(Some(bytes)) => State::decode(&bytes).ok(),
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!(doc = %doc_id, error = %e, "could not load sync state; starting fresh");
                    None
                }
            }
        });
        // A state that mentions changes we do not have (a lost batch) is useless.
        let mut sync = saved
            .filter(|s| s.shared_heads.iter().all(|h| has_change(&d.am, h)))
            .unwrap_or_default();
        sync.set_read_only(read_only);
        let saved_shared_heads = sync.shared_heads.clone();
        d.peers.insert(
            conn,
            PeerDoc {
                sync,
                saved_shared_heads,
                heard_from: false,
                unavailable: false,
            },
        );
    }

    fn on_sync(
        &mut self,
        out: &mut Vec<Output>,
        conn: ConnId,
        doc_id: DocumentId,
        msg: ValidSync,
        store: &dyn Store,
    ) {
        if !(self.conns[&conn].info.access)(&doc_id).can_read() {
            if let Some(d) = self.docs.get_mut(&doc_id) {
                d.peers.remove(&conn);
                d.queue.retain(|(q, _)| *q != conn);
            }
            // A document that does not exist costs a store lookup before its
            // `doc-unavailable`; a denied one must cost the same, or the answer's timing
            // would tell a prober which ids exist. Only an index lookup, never a load,
            // so a denied peer cannot make the server read large documents.
            let _ = store.exists(&doc_id);
            self.unavailable(out, conn, doc_id);
            return;
        }
        match self.ensure_loaded(doc_id, store) {
            Ok(true) => {}
            Ok(false) => {
                self.unavailable(out, conn, doc_id);
                return;
            }
            Err(e) => {
                tracing::error!(doc = %doc_id, error = %e, "loading a document failed");
                self.fail(
                    out,
                    conn,
                    CloseReason::Storage(format!("storage failed loading {doc_id}: {e}")),
                );
                return;
            }
        }
        let max = self.config.max_queued_per_doc;
        let d = self.docs.get_mut(&doc_id).expect("loaded above");
        if d.writing.is_some() || !d.queue.is_empty() {
            if d.queue.len() >= max {
                self.fail(
                    out,
                    conn,
                    CloseReason::Overloaded(format!(
                        "too many sync messages queued for {doc_id} while it is being written"
                    )),
                );
                return;
            }
            d.queue.push_back((conn, msg));
            return;
        }
        self.apply_sync(out, conn, doc_id, msg, store);
    }

    /// Applies one sync message to a loaded document that is not being written.
    fn apply_sync(
        &mut self,
        out: &mut Vec<Output>,
        conn: ConnId,
        doc_id: DocumentId,
        valid: ValidSync,
        store: &dyn Store,
    ) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let access = (c.info.access)(&doc_id);
        if !access.can_read() {
            if let Some(d) = self.docs.get_mut(&doc_id) {
                d.peers.remove(&conn);
            }
            self.unavailable(out, conn, doc_id);
            return;
        }
        let (user, device) = (c.info.user.clone(), c.info.device.clone());
        self.ensure_peer(conn, doc_id, store);
        let now = self.now;
        let d = self.docs.get_mut(&doc_id).expect("caller loaded it");
        d.last_active = now;

        let growth = valid.growth(|h| has_change(&d.am, h));
        let stored = d.snapshot_bytes + d.incremental_bytes;
        let mut msg = valid.message;
        let new = growth.hashes.clone();
        if !new.is_empty()
            && access.can_write()
            && let Err(e) = growth.check(stored, &self.config.limits)
        {
            // Refused before automerge sees them: nothing is applied or stored.
            self.stats.frames_rejected += 1;
            self.fail(
                out,
                conn,
                CloseReason::TooLarge(format!("sync message for document {doc_id} refused: {e}")),
            );
            return;
        }
        if !new.is_empty() && !access.can_write() {
            // Rejected before automerge sees them: strip the changes, keep the heads
            // and Bloom filter so the read-only peer still receives ours.
            self.stats.read_only_rejections += 1;
            msg.changes = sync::ChunkList::empty();
            let err = Message::Error {
                message: format!(
                    "document {doc_id} is read-only for this connection: {} change(s) rejected",
                    new.len()
                ),
                sender_id: Some(self.local.clone()),
                target_id: self.conns[&conn].peer_id.clone(),
            };
            self.send(out, conn, &err);
        }
        let d = self.docs.get_mut(&doc_id).expect("caller loaded it");
        let durable = d.fully_durable();
        let peer = d.peers.get_mut(&conn).expect("ensure_peer added it");
        peer.heard_from = true;
        peer.unavailable = false;
        let before = d.am.get_heads();
        if !msg.changes.is_empty() {
            self.stats.apply_calls += 1;
        }
        let result = receive_sync(&mut d.am, durable, &mut peer.sync, msg);
        let after = d.am.get_heads();
        if after != before {
            // Exactly the changes applied now: also those that arrived earlier and
            // waited in automerge's queue for a missing dependency.
            let mut applied = 0;
            for ch in d.am.get_changes_meta(&before) {
                applied += 1;
                d.audit.push(AuditRecord {
                    doc: doc_id,
                    change_hash: ch.hash.to_string(),
                    actor: ch.actor.to_hex_string(),
                    user: user.clone(),
                    device: device.clone(),
                    received_at: now,
                });
            }
            self.stats.changes_applied += applied;
            d.senders.insert(conn);
        }
        if after != before || peer.sync.shared_heads != peer.saved_shared_heads {
            self.dirty.insert(doc_id);
        }
        if let Err(e) = result {
            self.fail(
                out,
                conn,
                CloseReason::Protocol(format!("sync message for {doc_id} rejected: {e}")),
            );
            return;
        }
        self.generate(out, doc_id, conn);
    }

    /// Sends the next sync message to one peer, if the document is fully durable.
    fn generate(&mut self, out: &mut Vec<Output>, doc_id: DocumentId, conn: ConnId) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let Some(target) = c.peer_id.clone() else {
            return;
        };
        let can_read = (c.info.access)(&doc_id).can_read();
        let Some(d) = self.docs.get_mut(&doc_id) else {
            return;
        };
        if !can_read {
            // Access was revoked while syncing: the peer hears nothing more.
            d.peers.remove(&conn);
            if let Some(c) = self.conns.get_mut(&conn) {
                c.docs.remove(&doc_id);
            }
            return;
        }
        if !d.fully_durable() {
            return;
        }
        let empty = d.durable_heads.is_empty();
        let Some(p) = d.peers.get_mut(&conn) else {
            return;
        };
        let Some(m) = d.am.generate_sync_message(&mut p.sync) else {
            return;
        };
        if p.sync.shared_heads != p.saved_shared_heads {
            self.dirty.insert(doc_id);
        }
        let data = m.encode();
        // Asking for a document we do not have is a `request`, so the peer answers
        // `doc-unavailable` rather than nothing.
        let msg = if empty && !p.heard_from {
            Message::Request {
                sender_id: self.local.clone(),
                target_id: target,
                document_id: doc_id,
                data,
            }
        } else {
            Message::Sync {
                sender_id: self.local.clone(),
                target_id: target,
                document_id: doc_id,
                data,
            }
        };
        self.send(out, conn, &msg);
    }

    fn generate_all(&mut self, out: &mut Vec<Output>, doc_id: DocumentId) {
        let conns: Vec<ConnId> = match self.docs.get(&doc_id) {
            Some(d) => d.peers.keys().copied().collect(),
            None => return,
        };
        for conn in conns {
            self.generate(out, doc_id, conn);
        }
    }

    fn on_ephemeral(&mut self, out: &mut Vec<Output>, conn: ConnId, msg: Message) {
        let Message::Ephemeral {
            sender_id: claimed_sender,
            document_id: doc_id,
            session_id,
            count,
            data,
            ..
        } = msg
        else {
            return;
        };
        let c = &self.conns[&conn];
        // A server we connected to relays other peers' messages. A peer connected to
        // us speaks for itself only: automerge-repo clients forward every ephemeral
        // message they receive to their other peers, i.e. back to us, with the
        // original sender. In a star we have seen those already, and accepting
        // messages in another peer's name would let a client spoof its presence.
        if !c.outgoing && c.peer_id.as_ref() != Some(&claimed_sender) {
            self.stats.ephemeral_duplicates += 1;
            return;
        }
        let sender = claimed_sender;
        if !(c.info.access)(&doc_id).can_read() {
            // Silently dropped: answering would reveal whether the document exists.
            return;
        }
        let key = (sender.clone(), session_id.clone());
        if self
            .ephemeral_seen
            .get(&key)
            .is_some_and(|seen| *seen >= count)
        {
            self.stats.ephemeral_duplicates += 1;
            return;
        }
        if self.ephemeral_seen.insert(key.clone(), count).is_none() {
            self.ephemeral_order.push_back(key);
            while self.ephemeral_order.len() > self.config.ephemeral_sessions {
                if let Some(old) = self.ephemeral_order.pop_front() {
                    self.ephemeral_seen.remove(&old);
                }
            }
        }
        let targets: Vec<(ConnId, PeerId)> = self
            .docs
            .get(&doc_id)
            .map(|d| {
                d.peers
                    .keys()
                    .filter(|t| **t != conn)
                    .filter_map(|t| {
                        let tc = self.conns.get(t)?;
                        if tc.phase != Phase::Ready || !(tc.info.access)(&doc_id).can_read() {
                            return None;
                        }
                        Some((*t, tc.peer_id.clone()?))
                    })
                    .collect()
            })
            .unwrap_or_default();
        for (t, target_id) in targets {
            let m = Message::Ephemeral {
                sender_id: sender.clone(),
                target_id,
                document_id: doc_id,
                session_id: session_id.clone(),
                count,
                data: data.clone(),
            };
            self.stats.ephemeral_relayed += 1;
            self.send(out, t, &m);
        }
        out.push(Output::Ephemeral {
            doc: doc_id,
            sender,
            data,
        });
    }

    /// Sends an ephemeral message about a document to all its peers.
    pub fn broadcast_ephemeral(&mut self, doc_id: DocumentId, data: Vec<u8>) -> Vec<Output> {
        let mut out = Vec::new();
        self.ephemeral_count += 1;
        let targets: Vec<(ConnId, PeerId)> = self
            .docs
            .get(&doc_id)
            .map(|d| {
                d.peers
                    .keys()
                    .filter_map(|t| Some((*t, self.conns.get(t)?.peer_id.clone()?)))
                    .collect()
            })
            .unwrap_or_default();
        for (t, target_id) in targets {
            let m = Message::Ephemeral {
                sender_id: self.local.clone(),
                target_id,
                document_id: doc_id,
                session_id: self.session_id.clone(),
                count: self.ephemeral_count,
                data: data.clone(),
            };
            self.send(&mut out, t, &m);
        }
        out
    }

    fn unavailable(&mut self, out: &mut Vec<Output>, conn: ConnId, doc_id: DocumentId) {
        let Some(target) = self.conns.get(&conn).and_then(|c| c.peer_id.clone()) else {
            return;
        };
        let m = Message::DocUnavailable {
            sender_id: self.local.clone(),
            target_id: target,
            document_id: doc_id,
        };
        self.send(out, conn, &m);
    }

    /// Sends `error`, closes and forgets the connection.
    fn fail(&mut self, out: &mut Vec<Output>, conn: ConnId, reason: CloseReason) {
        tracing::debug!(%conn, reason = %reason, "closing connection");
        let target = self.conns.get(&conn).and_then(|c| c.peer_id.clone());
        let m = Message::Error {
            message: reason.to_string(),
            sender_id: Some(self.local.clone()),
            target_id: target,
        };
        self.send(out, conn, &m);
        out.push(Output::Close { conn, reason });
        self.disconnect(conn);
    }

    fn send(&mut self, out: &mut Vec<Output>, conn: ConnId, msg: &Message) {
        let bytes = msg.encode();
        let kind = msg.kind();
        self.stats.bytes_out += bytes.len() as u64;
        *self.stats.messages_out.entry(kind).or_default() += 1;
        out.push(Output::Send { conn, kind, bytes });
    }

    /// Loads a document from the store if it is not in memory. `Ok(false)`: unknown.
    fn ensure_loaded(&mut self, doc_id: DocumentId, store: &dyn Store) -> Result<bool, StoreError> {
        if self.docs.contains_key(&doc_id) {
            return Ok(true);
        }
        let Some(stored) = store.load(&doc_id)? else {
            return Ok(false);
        };
        let am = load_chunks(&stored.chunks)
            .map_err(|e| StoreError::Corrupt(format!("document {doc_id}: {e}")))?;
        let mut d = Doc::new(am, true, self.now);
        d.snapshot_bytes = stored.snapshot_bytes;
        d.incremental_bytes = stored.incremental_bytes;
        self.docs.insert(doc_id, d);
        Ok(true)
    }

    // ---------------------------------------------------------------- local documents

    /// Admin path: a new document with the given automerge bytes, written in the next
    /// batch as `created`. Peers can sync it once that batch is committed.
    pub fn create_document(
        &mut self,
        doc_id: DocumentId,
        initial: &[u8],
        store: &dyn Store,
    ) -> Result<(), EngineError> {
        let am =
            Automerge::load(initial).map_err(|e| EngineError::InvalidDocument(e.to_string()))?;
        self.insert_new(doc_id, am, store)?;
        Ok(())
    }

    /// Client path: a document made locally. It is written in the next batch and
    /// offered to the server once committed.
    pub fn add_local_document(
        &mut self,
        doc_id: DocumentId,
        doc: Automerge,
        store: &dyn Store,
    ) -> Result<Vec<Output>, EngineError> {
        self.insert_new(doc_id, doc, store)?;
        self.docs.get_mut(&doc_id).expect("inserted").pinned = true;
        Ok(self.sync_with_servers(doc_id, store))
    }

    fn insert_new(
        &mut self,
        doc_id: DocumentId,
        am: Automerge,
        store: &dyn Store,
    ) -> Result<(), EngineError> {
        if self.docs.contains_key(&doc_id) || store.exists(&doc_id)? {
            return Err(EngineError::AlreadyExists(doc_id));
        }
        let mut d = Doc::new(am, false, self.now);
        d.must_create = true;
        self.docs.insert(doc_id, d);
        self.dirty.insert(doc_id);
        Ok(())
    }

    /// Client path: keeps a document in memory (loading it from the store, or empty if
    /// the store does not have it) and syncs it with every connected server. An empty
    /// document is asked for with `request`.
    pub fn open(
        &mut self,
        doc_id: DocumentId,
        store: &dyn Store,
    ) -> Result<Vec<Output>, EngineError> {
        if !self.ensure_loaded(doc_id, store)? {
            self.docs
                .insert(doc_id, Doc::new(Automerge::new(), false, self.now));
        }
        self.docs.get_mut(&doc_id).expect("loaded").pinned = true;
        Ok(self.sync_with_servers(doc_id, store))
    }

    /// Lets the engine unload the document again when idle.
    pub fn close(&mut self, doc_id: &DocumentId) {
        if let Some(d) = self.docs.get_mut(doc_id) {
            d.pinned = false;
        }
    }

    fn sync_with_servers(&mut self, doc_id: DocumentId, store: &dyn Store) -> Vec<Output> {
        let mut out = Vec::new();
        let servers: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.outgoing && c.phase == Phase::Ready)
            .map(|(id, _)| *id)
            .collect();
        for conn in servers {
            self.start_sync(&mut out, conn, doc_id, store);
        }
        out
    }

    /// The in-memory document, including changes not yet committed.
    pub fn document(&self, doc_id: &DocumentId) -> Option<&Automerge> {
        self.docs.get(doc_id).map(|d| &d.am)
    }

    /// The in-memory document for local edits; call [`Engine::local_change`] after.
    pub fn document_mut(&mut self, doc_id: &DocumentId) -> Option<&mut Automerge> {
        self.docs.get_mut(doc_id).map(|d| &mut d.am)
    }

    /// Registers local edits made through [`Engine::document_mut`]: they are written
    /// in the next batch and sent to peers once committed.
    pub fn local_change(&mut self, doc_id: &DocumentId) -> Result<(), EngineError> {
        let d = self
            .docs
            .get(doc_id)
            .ok_or(EngineError::NotLoaded(*doc_id))?;
        if d.am.get_heads() != d.durable_heads || d.must_create {
            self.dirty.insert(*doc_id);
        }
        Ok(())
    }

    /// Heads of the committed state of a loaded document.
    pub fn durable_heads(&self, doc_id: &DocumentId) -> Option<Vec<ChangeHash>> {
        self.docs.get(doc_id).map(|d| d.durable_heads.clone())
    }

    /// The heads the peer on `conn` last told us for the document.
    pub fn peer_heads(&self, doc_id: &DocumentId, conn: ConnId) -> Option<Vec<ChangeHash>> {
        self.docs
            .get(doc_id)?
            .peers
            .get(&conn)?
            .sync
            .their_heads
            .clone()
    }

    /// Whether the document is in sync with the peer on `conn`: everything is
    /// committed here and the peer's last advertised heads equal ours. (A peer only
    /// advertises committed heads, so for a client this means the server has
    /// durably stored everything the client has.)
    pub fn is_synced(&self, doc_id: &DocumentId, conn: ConnId) -> bool {
        let Some(d) = self.docs.get(doc_id) else {
            return false;
        };
        let Some(p) = d.peers.get(&conn) else {
            return false;
        };
        d.fully_durable()
            && d.queue.is_empty()
            && p.sync.their_heads.as_ref() == Some(&d.am.get_heads())
    }

    /// Whether the peer on `conn` said it does not have the document.
    pub fn is_unavailable(&self, doc_id: &DocumentId, conn: ConnId) -> bool {
        self.docs
            .get(doc_id)
            .and_then(|d| d.peers.get(&conn))
            .is_some_and(|p| p.unavailable)
    }

    // ---------------------------------------------------------------- durability

    /// Collects everything to write: new changes (`save_after` the durable heads),
    /// compactions, created documents, sync states and audit rows. The documents in
    /// it are *writing* until the commit's outcome is reported. `None` when there is
    /// nothing to write or a batch is already in flight (one at a time).
    pub fn take_write_batch(&mut self) -> Option<(BatchToken, WriteBatch)> {
        if self.in_flight.is_some() {
            return None;
        }
        let mut batch = WriteBatch::default();
        let mut written = Vec::new();
        let min = self.config.compact_min_bytes;
        for doc_id in std::mem::take(&mut self.dirty) {
            let Some(d) = self.docs.get_mut(&doc_id) else {
                continue;
            };
            if d.needs_write() {
                let heads = d.am.get_heads();
                let created = !d.in_store;
                if created {
                    let bytes = d.am.save();
                    d.snapshot_bytes = bytes.len() as u64;
                    d.incremental_bytes = 0;
                    batch.created.push((doc_id, bytes));
                } else {
                    let inc = d.am.save_after(&d.durable_heads);
                    let grown = d.incremental_bytes + inc.len() as u64;
                    if grown > d.snapshot_bytes.max(min) {
                        let snap = d.am.save();
                        d.snapshot_bytes = snap.len() as u64;
                        d.incremental_bytes = 0;
                        batch.snapshots.push((doc_id, snap));
                    } else {
                        d.incremental_bytes = grown;
                        batch.appended.push((doc_id, inc));
                    }
                }
                d.writing = Some(heads);
                d.writing_senders = std::mem::take(&mut d.senders);
                batch.audit.append(&mut d.audit);
                written.push((doc_id, created));
            }
            for (conn, p) in d.peers.iter_mut() {
                if p.sync.shared_heads == p.saved_shared_heads {
                    continue;
                }
                if let Some(sid) = self.conns.get(conn).and_then(|c| c.storage_id.clone()) {
                    batch.sync_states.push((doc_id, sid, p.sync.encode()));
                }
                p.saved_shared_heads = p.sync.shared_heads.clone();
            }
        }
        batch.sync_states.append(&mut self.pending_states);
        if batch.is_empty() {
            return None;
        }
        let token = self.next_token;
        self.next_token += 1;
        self.in_flight = Some(InFlight {
            token,
            docs: written,
        });
        Some((BatchToken(token), batch))
    }

    /// The batch is durable: its documents become clean, the sync messages they held
    /// back are generated, then the messages queued meanwhile are applied.
    pub fn commit_succeeded(
        &mut self,
        token: BatchToken,
        now_ms: i64,
        store: &dyn Store,
    ) -> Vec<Output> {
        self.now = now_ms;
        let mut out = Vec::new();
        let Some(f) = self.in_flight.take_if(|f| f.token == token.0) else {
            return out;
        };
        self.stats.batches_committed += 1;
        for (doc_id, created) in &f.docs {
            let Some(d) = self.docs.get_mut(doc_id) else {
                continue;
            };
            let Some(heads) = d.writing.take() else {
                continue;
            };
            let advanced = heads != d.durable_heads || *created;
            d.durable_heads = heads;
            d.in_store = true;
            d.must_create = false;
            d.writing_senders.clear();
            if d.needs_write() {
                // Local edits made while writing go into the next batch.
                self.dirty.insert(*doc_id);
            }
            if *created {
                out.push(Output::Created { doc: *doc_id });
            }
            if advanced {
                out.push(Output::DocumentChanged { doc: *doc_id });
            }
        }
        for (doc_id, _) in &f.docs {
            self.generate_all(&mut out, *doc_id);
            self.replay_queue(&mut out, *doc_id, store);
        }
        out
    }

    /// The batch was not written. Every connection whose changes were in it gets an
    /// `error` and is closed (it resends after reconnecting); the documents are
    /// reloaded from the store so nothing unacknowledged is ever advertised.
    pub fn commit_failed(
        &mut self,
        token: BatchToken,
        error: &StoreError,
        now_ms: i64,
        store: &dyn Store,
    ) -> Vec<Output> {
        self.now = now_ms;
        let mut out = Vec::new();
        let Some(f) = self.in_flight.take_if(|f| f.token == token.0) else {
            return out;
        };
        self.stats.batches_failed += 1;
        tracing::error!(error = %error, docs = f.docs.len(), "write batch failed");
        for (doc_id, created) in f.docs {
            let Some(mut d) = self.docs.remove(&doc_id) else {
                continue;
            };
            let senders: BTreeSet<ConnId> = d.writing_senders.union(&d.senders).copied().collect();
            for s in &senders {
                d.peers.remove(s);
                if self.conns.contains_key(s) {
                    self.fail(
                        &mut out,
                        *s,
                        CloseReason::Storage(format!(
                            "storage failed; your changes to {doc_id} were not saved, send them again: {error}"
                        )),
                    );
                }
            }
            let reloaded = if created {
                out.push(Output::CreateFailed {
                    doc: doc_id,
                    error: error.to_string(),
                });
                None
            } else {
                match self.ensure_loaded(doc_id, store) {
                    Ok(true) => Some(()),
                    Ok(false) => None,
                    Err(e) => {
                        tracing::error!(doc = %doc_id, error = %e, "reloading after a failed commit failed");
                        None
                    }
                }
            };
            if reloaded.is_none() {
                // Nothing durable to fall back on: the remaining peers are told
                // the document is unavailable (created) or closed (storage down).
                for (conn, _) in std::mem::take(&mut d.peers) {
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.docs.remove(&doc_id);
                    }
                    if created {
                        self.unavailable(&mut out, conn, doc_id);
                    } else if self.conns.contains_key(&conn) {
                        self.fail(
                            &mut out,
                            conn,
                            CloseReason::Storage(format!("storage failed for {doc_id}: {error}")),
                        );
                    }
                }
                continue;
            }
            let fresh = self.docs.get_mut(&doc_id).expect("reloaded");
            fresh.pinned = d.pinned;
            fresh.queue = std::mem::take(&mut d.queue);
            for (conn, mut p) in std::mem::take(&mut d.peers) {
                let known = |h: &ChangeHash| has_change(&fresh.am, h);
                if !p.sync.shared_heads.iter().all(known)
                    || !p.sync.last_sent_heads.iter().all(known)
                {
                    let read_only = p.sync.read_only;
                    p.sync = State::new();
                    p.sync.set_read_only(read_only);
                    p.saved_shared_heads = Vec::new();
                }
                fresh.peers.insert(conn, p);
            }
            self.generate_all(&mut out, doc_id);
            self.replay_queue(&mut out, doc_id, store);
        }
        out
    }

    /// Recovers from a panic while handling `conn`'s message about `doc` (a bug in
    /// automerge or here; the driver caught it). The connection is answered `error`
    /// and closed, and the document is dropped from memory with every connection that
    /// had it open, so nothing half-applied is ever advertised or written: the next
    /// peer to ask loads it again from storage, and the closed peers reconnect and
    /// resend what the store does not have. Other documents are untouched.
    pub fn quarantine(&mut self, conn: ConnId, doc: Option<DocumentId>, why: &str) -> Vec<Output> {
        let mut out = Vec::new();
        if self.conns.contains_key(&conn) {
            self.fail(
                &mut out,
                conn,
                CloseReason::Protocol(format!("the relay could not process this message: {why}")),
            );
        }
        let Some(doc_id) = doc else {
            return out;
        };
        self.dirty.remove(&doc_id);
        if let Some(f) = &mut self.in_flight {
            // Its commit still lands; the document is reloaded from the store after.
            f.docs.retain(|(d, _)| *d != doc_id);
        }
        let Some(d) = self.docs.remove(&doc_id) else {
            return out;
        };
        for peer in d.peers.keys() {
            if self.conns.contains_key(peer) {
                self.fail(
                    &mut out,
                    *peer,
                    CloseReason::Overloaded(format!(
                        "document {doc_id} was reloaded after an internal error; reconnect"
                    )),
                );
            }
        }
        out
    }

    /// Applies the messages that arrived while the document was being written.
    fn replay_queue(&mut self, out: &mut Vec<Output>, doc_id: DocumentId, store: &dyn Store) {
        let queued: Vec<(ConnId, ValidSync)> = match self.docs.get_mut(&doc_id) {
            Some(d) if d.writing.is_none() => d.queue.drain(..).collect(),
            _ => return,
        };
        let queued = match self.apply_together(out, doc_id, queued, store) {
            Ok(()) => return,
            Err(queued) => queued,
        };
        for (conn, msg) in queued {
            if self.conns.contains_key(&conn) {
                self.apply_sync(out, conn, doc_id, msg, store);
            }
        }
    }

    /// Applies the changes of several queued messages in one automerge call.
    ///
    /// automerge 0.12 pays a cost that grows with the document's history per apply
    /// call, not per change (measured: one change into a 50,000-change document
    /// takes ~28 ms, twenty in one call ~1.5 ms each), so a busy document gets one
    /// apply per commit cycle instead of one per message. Anything unusual (a closed
    /// or read-only connection, invalid bytes, a failed apply) hands the messages
    /// back, untouched, for the one-by-one path that answers each sender precisely.
    fn apply_together(
        &mut self,
        out: &mut Vec<Output>,
        doc_id: DocumentId,
        queued: Vec<(ConnId, ValidSync)>,
        store: &dyn Store,
    ) -> Result<(), Vec<(ConnId, ValidSync)>> {
        if queued.len() < 2 {
            return Err(queued);
        }
        let mut chunks = Vec::new();
        let mut sender_of: HashMap<ChangeHash, ConnId> = HashMap::new();
        for (conn, msg) in &queued {
            let Some(c) = self.conns.get(conn) else {
                return Err(queued);
            };
            if !(c.info.access)(&doc_id).can_write() {
                return Err(queued);
            }
            for c in &msg.changes {
                sender_of.entry(c.hash).or_insert(*conn);
            }
            for chunk in msg.message.changes.iter() {
                chunks.extend_from_slice(chunk);
            }
        }
        let Some(d) = self.docs.get_mut(&doc_id) else {
            return Err(queued);
        };
        // Within the limits together, or each message is answered on its own.
        let mut growth = crate::protocol::validate::Growth::default();
        for (_, v) in &queued {
            let g = v.growth(|h| has_change(&d.am, h));
            growth.hashes.extend(g.hashes);
            growth.bytes += g.bytes;
            growth.ops += g.ops;
        }
        if growth
            .check(d.snapshot_bytes + d.incremental_bytes, &self.config.limits)
            .is_err()
        {
            return Err(queued);
        }
        if chunks.is_empty() {
            return Err(queued);
        }
        let before = d.am.get_heads();
        if d.am.load_incremental(&chunks).is_err() {
            // Changes it did apply are valid; the one-by-one path skips them.
            return Err(queued);
        }
        self.stats.apply_calls += 1;
        let now = self.now;
        let mut conns = Vec::with_capacity(queued.len());
        for (conn, valid) in queued {
            self.ensure_peer(conn, doc_id, store);
            let mut msg = valid.message;
            msg.changes = sync::ChunkList::empty();
            let d = self.docs.get_mut(&doc_id).expect("checked above");
            d.last_active = now;
            // The queue's changes are applied and not committed yet.
            let durable = d.fully_durable();
            let Some(peer) = d.peers.get_mut(&conn) else {
                continue;
            };
            peer.heard_from = true;
            peer.unavailable = false;
            let result = receive_sync(&mut d.am, durable, &mut peer.sync, msg);
            if peer.sync.shared_heads != peer.saved_shared_heads {
                self.dirty.insert(doc_id);
            }
            match result {
                Ok(()) => conns.push(conn),
                Err(e) => self.fail(
                    out,
                    conn,
                    CloseReason::Protocol(format!("sync message for {doc_id} rejected: {e}")),
                ),
            }
        }
        let d = self.docs.get_mut(&doc_id).expect("checked above");
        if d.am.get_heads() != before {
            let mut applied = 0;
            for ch in d.am.get_changes_meta(&before) {
                applied += 1;
                let sender = sender_of.get(&ch.hash).copied();
                let info = sender.and_then(|s| self.conns.get(&s)).map(|c| &c.info);
                if let Some(s) = sender {
                    d.senders.insert(s);
                }
                d.audit.push(AuditRecord {
                    doc: doc_id,
                    change_hash: ch.hash.to_string(),
                    actor: ch.actor.to_hex_string(),
                    user: info.and_then(|i| i.user.clone()),
                    device: info.and_then(|i| i.device.clone()),
                    received_at: now,
                });
            }
            self.stats.changes_applied += applied;
            self.dirty.insert(doc_id);
        }
        for conn in conns {
            self.generate(out, doc_id, conn);
        }
        Ok(())
    }

    /// Keeps at most `max_docs` documents in memory by unloading those that are
    /// committed, unpinned and without peers, least recently used first. Documents in
    /// use are never unloaded, so the count can stay above the budget. Returns how
    /// many were unloaded.
    pub fn unload_to_budget(&mut self, max_docs: usize) -> usize {
        if self.docs.len() <= max_docs {
            return 0;
        }
        let mut idle: Vec<(i64, DocumentId)> = self
            .docs
            .iter()
            .filter(|(_, d)| d.unloadable())
            .map(|(id, d)| (d.last_active, *id))
            .collect();
        idle.sort_unstable();
        let excess = self.docs.len() - max_docs;
        let mut unloaded = 0;
        for (_, id) in idle.into_iter().take(excess) {
            self.docs.remove(&id);
            self.dirty.remove(&id);
            unloaded += 1;
        }
        unloaded
    }

    /// Drops documents that are committed, unpinned and without peers for `idle_ms`.
    /// Returns how many were unloaded. Loading one again gives the same heads.
    pub fn unload_idle(&mut self, now_ms: i64, idle_ms: i64) -> usize {
        self.now = now_ms;
        let before = self.docs.len();
        self.docs
            .retain(|_, d| !(d.unloadable() && now_ms - d.last_active >= idle_ms));
        let docs = &self.docs;
        self.dirty.retain(|id| docs.contains_key(id));
        before - self.docs.len()
    }
}

/// The storage id worth persisting sync state for.
fn persistable(metadata: Option<PeerMetadata>) -> Option<StorageId> {
    metadata
        .filter(|m| !m.is_ephemeral)
        .and_then(|m| m.storage_id)
}

/// automerge's `receive_sync_message`, except that it never records uncommitted
/// heads as sent to the peer. `durable`: everything in `am` is committed.
///
/// When a message carries no changes and heads equal to ours, automerge sets
/// `last_sent_heads` to our heads ("the peer has exactly what we have, nothing to
/// tell it"), and `generate_sync_message` then stays silent until our heads move.
/// Here that is wrong while our heads are not committed: we have not sent them (no
/// message goes out before the commit), and the message advertising them after the
/// commit is the peer's acknowledgement. A writer whose own changes were in those
/// heads would otherwise never learn they are stored. So the previous value, which
/// names committed heads only, is kept. The stock automerge-repo JS client sends
/// exactly such a message a few milliseconds after the last change of a burst (its
/// throttled sync re-sends its heads; the change is already in its `sent_hashes`),
/// so without this its writer went unacknowledged whenever that message arrived
/// before the commit.
///
/// The rest of what automerge updates claims nothing we told the peer:
/// `their_heads`/`their_have`/`their_need`, capabilities and flags describe the peer;
/// `sent_hashes` is only trimmed (it grows only in `generate_sync_message`, which
/// runs on committed documents); `in_flight = false` only allows the next message;
/// `shared_heads` may name uncommitted changes, but it is saved in the same batch
/// as them and checked against the document on load and after a failed commit.
fn receive_sync(
    am: &mut Automerge,
    durable: bool,
    sync: &mut State,
    msg: sync::Message,
) -> Result<(), automerge::AutomergeError> {
    let told = sync.last_sent_heads.clone();
    let ours = am.get_heads();
    let result = am.receive_sync_message(sync, msg);
    if !durable && sync.last_sent_heads == ours {
        sync.last_sent_heads = told;
    }
    result
}

/// Whether the document has applied the change (automerge keeps its own
/// `has_change` crate-private).
fn has_change(am: &Automerge, hash: &ChangeHash) -> bool {
    am.get_change_meta_by_hash(hash).is_some()
}

/// A document from its stored chunks (snapshot first, then incrementals).
fn load_chunks(chunks: &[Vec<u8>]) -> Result<Automerge, automerge::AutomergeError> {
    let total: usize = chunks.iter().map(Vec::len).sum();
    let mut all = Vec::with_capacity(total);
    for c in chunks {
        all.extend_from_slice(c);
    }
    Automerge::load(&all)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The driver keeps the engine behind a mutex shared by tasks.
    #[test]
    fn engine_can_move_between_threads() {
        fn is_send<T: Send>() {}
        is_send::<Engine>();
        is_send::<Output>();
        is_send::<(BatchToken, WriteBatch)>();
    }
}
