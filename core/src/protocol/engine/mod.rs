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
use super::receive::{ReceivePath, Trim, has_change, receive_sync_message};
use super::validate::ValidSync;
use super::wire::{Message, MessageKind, PROTOCOL_VERSION, PeerMetadata, WireError};
use crate::access::Access;
use crate::store::{AuditRecord, Store, StoreError, WriteBatch};

mod connections;
mod durability;
mod ephemeral;
mod local;
mod memory;
mod receiving;
mod syncing;
mod types;

pub use types::*;

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

    /// Hands a peer's sync message to automerge (see [`receive_sync`]) and marks the
    /// peer heard from. `None`: the connection is not a peer of the document.
    fn receive_from(
        &mut self,
        conn: ConnId,
        msg: sync::Message,
        path: ReceivePath,
        stats: &mut EngineStats,
    ) -> Option<Result<(), automerge::AutomergeError>> {
        let durable = self.fully_durable();
        let peer = self.peers.get_mut(&conn)?;
        peer.heard_from = true;
        peer.unavailable = false;
        Some(receive_sync(
            &mut self.am,
            durable,
            &mut peer.sync,
            msg,
            path,
            stats,
        ))
    }

    /// Whether the peer's shared heads moved since they were last saved.
    fn shared_heads_unsaved(&self, conn: ConnId) -> bool {
        self.peers
            .get(&conn)
            .is_some_and(|p| p.sync.shared_heads != p.saved_shared_heads)
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
    /// Documents whose increments outgrew their snapshot, for a driver that compacts
    /// outside the engine (`compact_in_engine` off).
    compaction_due: HashSet<DocumentId>,
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
            compaction_due: HashSet::new(),
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
}

/// The storage id worth persisting sync state for.
fn persistable(metadata: Option<PeerMetadata>) -> Option<StorageId> {
    metadata
        .filter(|m| !m.is_ephemeral)
        .and_then(|m| m.storage_id)
}

/// automerge's `receive_sync_message` (through `path`, see [`super::receive`]), except
/// that it never records uncommitted heads as sent to the peer. `durable`: everything
/// in `am` is committed.
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
    path: ReceivePath,
    stats: &mut EngineStats,
) -> Result<(), automerge::AutomergeError> {
    let told = sync.last_sent_heads.clone();
    let ours = am.get_heads();
    let result = receive_sync_message(am, sync, msg, path);
    if !durable && sync.last_sent_heads == ours {
        sync.last_sent_heads = told;
    }
    if let Ok(Trim::Walked) = result {
        stats.ancestor_walks += 1;
    }
    result.map(|_| ())
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
