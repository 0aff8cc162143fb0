//! The relay driver: runs the sans-IO sync engine on real threads and real storage.
//!
//! Three kinds of actors, connected by channels:
//! - **connection tasks** (one per WebSocket, see [`crate::ws`]) read frames and hand
//!   them to the engine thread, and write what the engine sends them;
//! - the **engine thread** owns the [`Engine`]; automerge work is CPU-bound and
//!   synchronous, so it runs on a plain thread rather than on the async runtime;
//! - the **writer thread** owns its own SQLite connection and performs group commits.
//!
//! The engine's event queue is bounded ([`EVENT_QUEUE`]): when the engine falls behind,
//! connection tasks wait to hand over frames and stop reading their sockets, so TCP
//! pushes back on the clients instead of memory growing. A tick thread wakes the
//! engine twice a second to unload idle documents and publish its counters.
//!
//! Group commit: whenever no commit is in flight and the engine has pending writes, the
//! engine thread takes them all as one [`WriteBatch`] and hands it to the writer; while
//! the writer fsyncs, the engine keeps receiving, so the next batch collects everything
//! that arrived meanwhile. A batch therefore waits at most one commit plus a short
//! drain window ([`DRAIN_WINDOW`]). The engine advertises no heads containing a change
//! until the commit that holds it succeeded: durable before acknowledged.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use automerge::{AutoCommit, ChangeHash, ReadDoc};
use dealersync_core::protocol::engine::{
    BatchToken, CloseReason, ConnId, ConnInfo, Engine, EngineConfig, Output,
};
use dealersync_core::protocol::{
    DocumentId, Inbound, InboundError, MessageKind, PeerId, StorageId, SyncLimits,
};
use dealersync_core::store::{Store, StoreError, WriteBatch};
use dealersync_core::time::now_ms;
use tokio::sync::mpsc as tmpsc;
use tokio::sync::oneshot;
use tracing::{debug, error, info, info_span, warn};

use crate::fairness::EngineShare;
use crate::registry::{DocumentWriter, RegistryError};
use crate::storage::SqliteStore;
use crate::telemetry::{self, COMMIT_BATCH_BYTES, COMMIT_BATCH_CHANGES, COMMIT_SECONDS};

/// How long the engine thread keeps draining queued events before it starts a commit,
/// so one busy connection cannot postpone everyone's acknowledgement.
pub const DRAIN_WINDOW: Duration = Duration::from_millis(2);

/// The share of the engine thread's time one (non-admin) user may use, sustained, and
/// how much at once: enough for a device's week-long offline backlog in one go (the
/// message limits bound any single message), not enough to hold everyone else back
/// for long again and again.
pub const ENGINE_SHARE: f64 = 0.25;
/// See [`ENGINE_SHARE`].
pub const ENGINE_SHARE_BURST: Duration = Duration::from_secs(10);

/// How often the engine thread wakes up without events, to unload idle documents.
const TICK: Duration = Duration::from_millis(500);

/// Events waiting for the engine thread. When it falls behind, connection tasks wait
/// to hand over their frames and stop reading their sockets: TCP pushes back on the
/// clients instead of the queue growing without bound.
pub const EVENT_QUEUE: usize = 16 * 1024;

/// Settings of the relay driver.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The server's peer id in `peer` messages.
    pub peer_id: PeerId,
    /// The server's durable storage id, advertised so peers persist sync state.
    pub storage_id: StorageId,
    /// A document without connections for this long is unloaded from memory.
    pub idle_unload: Duration,
    /// At most this many documents stay in memory: beyond it, documents without
    /// connections are unloaded least recently used first, idle or not.
    pub max_loaded_docs: Option<usize>,
    /// Bounds on changes and documents (the engine checks a message's growth of a
    /// document; the connection tasks check everything else before the engine).
    pub limits: SyncLimits,
}

/// Most bytes of frames waiting for one connection to write them; a peer that lets
/// more pile up (it does not read its socket) is closed. A frame count alone would let
/// 4,096 large frames (ephemeral relays, whole documents) wait for one such peer.
pub const MAX_OUTBOX_BYTES: usize = 32 * 1024 * 1024;

/// Where the engine sends a connection's frames: the channel its task reads, and the
/// bytes in it (the engine adds, the task subtracts what it wrote).
#[derive(Debug, Clone)]
pub struct Outbox {
    /// The connection task's queue.
    pub frames: tmpsc::Sender<Outgoing>,
    /// Bytes of frames queued and not yet written.
    pub queued_bytes: Arc<std::sync::atomic::AtomicUsize>,
}

impl Outbox {
    /// An outbox around a channel, with nothing queued.
    pub fn new(frames: tmpsc::Sender<Outgoing>) -> Self {
        Outbox {
            frames,
            queued_bytes: Arc::default(),
        }
    }
}

/// What the engine sends to a connection task.
#[derive(Debug)]
pub enum Outgoing {
    /// One binary frame, and its message type for metrics.
    Frame(MessageKind, Vec<u8>),
    /// Close the connection for this reason (the engine has sent any `error` first).
    Close(CloseReason),
}

enum Event {
    Connect {
        conn: ConnId,
        info: ConnInfo,
        outbox: Outbox,
        share: Option<String>,
    },
    Frame {
        conn: ConnId,
        decoded: Result<Inbound, InboundError>,
        frame_len: usize,
        /// The connection's claim on bytes in flight to the engine, released once the
        /// engine has handled the frame.
        _in_flight: Option<tokio::sync::OwnedSemaphorePermit>,
    },
    Disconnect {
        conn: ConnId,
    },
    Committed {
        token: BatchToken,
        result: Result<(), StoreError>,
    },
    Tick,
    Shutdown,
    /// Storage compacted a document (see `compactor`).
    Compacted {
        doc: DocumentId,
        snapshot_bytes: u64,
        removed_bytes: u64,
    },
    /// Admin path: the current bytes of a document, to edit outside the engine thread.
    AdminRead {
        doc: DocumentId,
        reply: oneshot::Sender<Result<Vec<u8>, RegistryError>>,
    },
    /// Admin path: changes made on those bytes, to apply as local edits.
    AdminApply {
        doc: DocumentId,
        changes: Vec<u8>,
        /// The document's heads after the edit: the edit is durable when they are.
        heads: Vec<ChangeHash>,
        reply: oneshot::Sender<Result<(), RegistryError>>,
    },
    /// Admin path: a new document.
    AdminCreate {
        doc: DocumentId,
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<(), RegistryError>>,
    },
}

/// A group commit for the writer: its token, its writes, and the documents to compact
/// once it is committed (flagged by the engine, which knows their sizes).
type Batch = (BatchToken, WriteBatch, Vec<DocumentId>);

/// An admin write waiting for the commit that makes it durable.
struct AdminWaiter {
    doc: DocumentId,
    /// The changes to see durable; empty for a created document (it waits for
    /// `Created`/`CreateFailed` instead).
    heads: Vec<ChangeHash>,
    reply: oneshot::Sender<Result<(), RegistryError>>,
}

/// A cheap, cloneable handle the connection tasks use to talk to the engine thread.
#[derive(Clone)]
pub struct RelayHandle {
    events: tmpsc::Sender<Event>,
    next_conn: Arc<AtomicU64>,
    peer_id: PeerId,
    engine_down: Arc<AtomicBool>,
    stopped: tokio::sync::watch::Receiver<bool>,
    commits: tokio::sync::broadcast::Sender<DocumentId>,
}

/// Commit notifications a subscriber may fall behind by before it sees `Lagged` (and
/// must then reread everything).
pub const COMMIT_NOTIFICATIONS: usize = 4096;

impl RelayHandle {
    /// The id of every document whose changes a group commit made durable, sent after
    /// the commit: for read models that follow the documents without polling. A slow
    /// subscriber gets `RecvError::Lagged` and must reload what it follows.
    pub fn subscribe_commits(&self) -> tokio::sync::broadcast::Receiver<DocumentId> {
        self.commits.subscribe()
    }

    /// Registers a new connection; frames for it go to `outbox`.
    /// `share` names whose share of the engine's time its frames spend
    /// ([`EngineShare`]); `None` leaves the connection unmetered.
    pub async fn connect(&self, info: ConnInfo, outbox: Outbox, share: Option<String>) -> ConnId {
        let conn = ConnId(self.next_conn.fetch_add(1, Ordering::Relaxed));
        // A send fails only once the relay has shut down; the connection then sees its
        // outbox closed and ends.
        let _ = self
            .events
            .send(Event::Connect {
                conn,
                info,
                outbox,
                share,
            })
            .await;
        conn
    }

    /// Hands one received frame, decoded and validated by the connection task
    /// ([`dealersync_core::protocol::decode_frame`]), to the engine.
    /// Waits while the engine's queue is full (back-pressure).
    pub async fn frame(
        &self,
        conn: ConnId,
        decoded: Result<Inbound, InboundError>,
        frame_len: usize,
        in_flight: Option<tokio::sync::OwnedSemaphorePermit>,
    ) {
        let _ = self
            .events
            .send(Event::Frame {
                conn,
                decoded,
                frame_len,
                _in_flight: in_flight,
            })
            .await;
    }

    /// Whether the engine thread is running. A relay whose engine stopped answers no
    /// sync message, so it must not look healthy.
    pub fn is_healthy(&self) -> bool {
        !self.engine_down.load(Ordering::Acquire)
    }

    /// Resolves once the engine thread has stopped on an error it could not contain.
    pub async fn engine_stopped(&self) {
        let mut rx = self.stopped.clone();
        let _ = rx.wait_for(|down| *down).await;
    }

    /// Tells the engine the connection is gone, so it frees its state.
    pub async fn disconnect(&self, conn: ConnId) {
        let _ = self.events.send(Event::Disconnect { conn }).await;
    }

    /// The server's peer id.
    pub fn peer_id(&self) -> &PeerId {
        &self.peer_id
    }
}

/// The running relay: the engine and writer threads.
pub struct Relay {
    handle: RelayHandle,
    engine_thread: JoinHandle<()>,
    writer_thread: JoinHandle<()>,
}

impl Relay {
    /// Starts the engine thread (reading through `reads`) and the writer thread
    /// (committing through `writes`). Give each its own connection to the database.
    pub fn start(config: RelayConfig, reads: SqliteStore, writes: SqliteStore) -> Relay {
        let (events_tx, events_rx) = tmpsc::channel(EVENT_QUEUE);
        let (batches_tx, batches_rx) = mpsc::channel::<Batch>();
        let writer_events = events_tx.clone();
        let (compact_tx, compact_rx) = mpsc::channel::<DocumentId>();
        match reads.another_connection() {
            Ok(store) => {
                let events = events_tx.clone();
                std::thread::Builder::new()
                    .name("dealersync-compactor".into())
                    .spawn(move || run_compactor(store, compact_rx, events))
                    .expect("spawning the compaction thread");
            }
            // Documents then grow by appends only, which loses nothing.
            Err(e) => {
                error!(error = %e, "cannot open a connection for compaction; documents will not be compacted")
            }
        }
        let ticks = events_tx.clone();
        std::thread::Builder::new()
            .name("dealersync-tick".into())
            .spawn(move || {
                // Ends when the engine thread has gone and the channel is closed.
                while ticks.blocking_send(Event::Tick).is_ok() {
                    std::thread::sleep(TICK);
                }
            })
            .expect("spawning the tick thread");
        let writer_thread = std::thread::Builder::new()
            .name("dealersync-writer".into())
            .spawn(move || run_writer(writes, batches_rx, writer_events, compact_tx))
            .expect("spawning the writer thread");
        let engine_config = EngineConfig {
            storage_id: Some(config.storage_id.clone()),
            limits: config.limits.clone(),
            // Compaction runs on its own thread from storage (`compactor`).
            compact_in_engine: false,
            ..EngineConfig::default()
        };
        let engine_down = Arc::new(AtomicBool::new(false));
        let (stopped_tx, stopped_rx) = tokio::sync::watch::channel(false);
        let down = Arc::clone(&engine_down);
        let engine = Engine::new(config.peer_id.clone(), engine_config);
        let (commits, _) = tokio::sync::broadcast::channel(COMMIT_NOTIFICATIONS);
        let idle = config.idle_unload;
        let budget = config.max_loaded_docs;
        let engine_commits = commits.clone();
        let engine_thread = std::thread::Builder::new()
            .name("dealersync-engine".into())
            .spawn(move || {
                let clean = EngineLoop {
                    engine,
                    store: reads,
                    events: events_rx,
                    batches: batches_tx,
                    conns: HashMap::new(),
                    in_flight: None,
                    idle,
                    budget,
                    admin: Vec::new(),
                    share: EngineShare::new(ENGINE_SHARE, ENGINE_SHARE_BURST),
                    metered: HashMap::new(),
                    commits: engine_commits,
                    in_flight_docs: Vec::new(),
                }
                .run();
                if !clean {
                    down.store(true, Ordering::Release);
                    let _ = stopped_tx.send(true);
                }
            })
            .expect("spawning the engine thread");
        Relay {
            handle: RelayHandle {
                events: events_tx,
                next_conn: Arc::new(AtomicU64::new(1)),
                peer_id: config.peer_id,
                engine_down,
                stopped: stopped_rx,
                commits,
            },
            engine_thread,
            writer_thread,
        }
    }

    /// A handle for connection tasks.
    pub fn handle(&self) -> RelayHandle {
        self.handle.clone()
    }

    /// Stops the relay after the events already queued are handled and every pending
    /// write is committed. Blocks; call it from a blocking context.
    pub fn shutdown(self) {
        let _ = self.handle.events.blocking_send(Event::Shutdown);
        drop(self.handle);
        if self.engine_thread.join().is_err() {
            error!("engine thread panicked");
        }
        if self.writer_thread.join().is_err() {
            error!("writer thread panicked");
        }
    }
}

mod admin;
mod compactor;
mod engine_loop;
#[cfg(test)]
mod tests;
mod writer;

pub use admin::RelayDocuments;
use compactor::run_compactor;
use engine_loop::EngineLoop;
use writer::run_writer;
