//! The relay driver: runs the sans-IO sync engine on real threads and real storage.
//!
//! Four kinds of actors, connected by channels:
//! - **connection tasks** (one per WebSocket, see [`crate::ws`]) read frames and hand
//!   them to the engine shards, and write what the shards send them;
//! - the **engine shards** (see [`shards`]): N threads, each owning an [`Engine`] for
//!   the documents that hash to it; automerge work is CPU-bound and synchronous, so it
//!   runs on plain threads rather than on the async runtime, and one document's
//!   expensive messages hold back only the documents of its shard;
//! - the **writer thread** owns its own SQLite connection and performs group commits
//!   for every shard;
//! - the **compaction thread** rewrites grown documents from storage.
//!
//! Each shard's event queue is bounded ([`EVENT_QUEUE`]): when a shard falls behind,
//! connection tasks wait to hand over frames and stop reading their sockets, so TCP
//! pushes back on the clients instead of memory growing. A tick thread wakes the
//! shards twice a second to unload idle documents and publish their counters.
//!
//! Group commit: whenever no commit of its own is in flight and its engine has
//! pending writes, a shard takes them all as one [`WriteBatch`] and hands it to the
//! writer; the writer commits the batches of every shard that are waiting in one
//! transaction. While the writer fsyncs, the shards keep receiving, so the next batch
//! collects everything that arrived meanwhile. A batch therefore waits at most one
//! commit plus a short drain window ([`DRAIN_WINDOW`]). An engine advertises no heads
//! containing a change until the commit that holds it succeeded: durable before
//! acknowledged. After each durable commit, the shard names the documents it advanced
//! on [`RelayHandle::subscribe_commits`].

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use automerge::{AutoCommit, ChangeHash, ReadDoc};
use dealersync_core::access::Access;
use dealersync_core::protocol::engine::{
    BatchToken, CloseReason, ConnId, ConnInfo, Engine, EngineConfig, EngineStats, Output,
};
use dealersync_core::protocol::{
    DocumentId, Inbound, InboundError, MessageKind, PeerId, StorageId, SyncLimits,
};
use dealersync_core::store::{Store, StoreError, WriteBatch};
use dealersync_core::time::now_ms;
use tokio::sync::mpsc as tmpsc;
use tokio::sync::{broadcast, oneshot};
use tracing::{debug, error, info, info_span, warn};

use crate::fairness::EngineShare;
use crate::registry::{Author, DocumentWriter, RegistryError};
use crate::storage::SqliteStore;
use crate::telemetry::{self, COMMIT_BATCH_BYTES, COMMIT_BATCH_CHANGES, COMMIT_SECONDS};

/// How long an engine shard keeps draining queued events before it starts a commit,
/// so one busy connection cannot postpone everyone's acknowledgement.
pub const DRAIN_WINDOW: Duration = Duration::from_millis(2);

/// The share of an engine shard's time one (non-admin) user may use, sustained, and
/// how much at once: enough for a device's week-long offline backlog in one go (the
/// message limits bound any single message), not enough to hold the other documents
/// of the shard back for long again and again. Each shard keeps its own accounts: its
/// time is what the user's messages take from the others on it.
pub const ENGINE_SHARE: f64 = 0.25;
/// See [`ENGINE_SHARE`].
pub const ENGINE_SHARE_BURST: Duration = Duration::from_secs(10);

/// How often the engine shards wake up without events, to unload idle documents.
const TICK: Duration = Duration::from_millis(500);

/// Events waiting for one engine shard. When it falls behind, connection tasks wait
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
    /// At most this many documents stay in memory (all shards together): beyond it,
    /// documents without connections are unloaded least recently used first, idle or
    /// not.
    pub max_loaded_docs: Option<usize>,
    /// Bounds on changes and documents (the engine checks a message's growth of a
    /// document; the connection tasks check everything else before the engine).
    pub limits: SyncLimits,
    /// Engine threads; documents are spread over them by id ([`shard_of`]). At least 1;
    /// [`default_shards`] is one per core.
    pub shards: usize,
}

/// Most bytes of frames waiting for one connection to write them; a peer that lets
/// more pile up (it does not read its socket) is closed. A frame count alone would let
/// 4,096 large frames (ephemeral relays, whole documents) wait for one such peer.
pub const MAX_OUTBOX_BYTES: usize = 32 * 1024 * 1024;

/// Where the engine shards send a connection's frames: the channel its task reads,
/// and the bytes in it (the shards add, the task subtracts what it wrote). Every shard
/// holds a clone; the channel's one sender is shared, so that any shard can close it
/// ([`Outbox::evict`]) and the task sees its queue end.
#[derive(Debug, Clone)]
pub struct Outbox {
    /// The connection task's queue; `None` once evicted.
    frames: Arc<std::sync::Mutex<Option<tmpsc::Sender<Outgoing>>>>,
    /// Bytes of frames queued and not yet written.
    pub queued_bytes: Arc<std::sync::atomic::AtomicUsize>,
}

impl Outbox {
    /// An outbox around a channel, with nothing queued.
    pub fn new(frames: tmpsc::Sender<Outgoing>) -> Self {
        Outbox {
            frames: Arc::new(std::sync::Mutex::new(Some(frames))),
            queued_bytes: Arc::default(),
        }
    }

    /// Queues `msg` without waiting.
    fn try_send(&self, msg: Outgoing) -> Result<(), tmpsc::error::TrySendError<Outgoing>> {
        let frames = self.frames.lock().unwrap_or_else(|e| e.into_inner());
        match frames.as_ref() {
            Some(tx) => tx.try_send(msg),
            None => Err(tmpsc::error::TrySendError::Closed(msg)),
        }
    }

    /// Drops the channel's sender: the task then finds its queue closed and ends the
    /// connection (a peer that does not read).
    fn evict(&self) {
        self.frames.lock().unwrap_or_else(|e| e.into_inner()).take();
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

// `Frame`, nearly every event, is the large variant: boxing it would only add an
// allocation per frame.
#[allow(clippy::large_enum_variant)]
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
        /// Whether this shard's outputs go out: a connection-level message goes to
        /// every shard and only one answers it.
        answer: bool,
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
        /// Who the edit is audited under; `None` for the operator's own set-up.
        author: Option<Author>,
        reply: oneshot::Sender<Result<(), RegistryError>>,
    },
    /// The link to the upstream relay connected (see `upstream`).
    UpstreamConnect {
        conn: ConnId,
        /// The followed documents this shard owns.
        docs: std::collections::HashSet<DocumentId>,
        outbox: Outbox,
        ledger: UpstreamLedger,
        /// Whether this shard's `join` is the one sent.
        send_join: bool,
    },
    /// Documents to follow before the link first connects.
    UpstreamPrepare {
        docs: std::collections::HashSet<DocumentId>,
        upstream_storage: Option<StorageId>,
        ledger: UpstreamLedger,
    },
    /// The upstream link follows one more document.
    UpstreamFollow {
        doc: DocumentId,
    },
    /// The upstream link stops following a document (an archive past its grace week).
    UpstreamUnfollow {
        doc: DocumentId,
    },
    /// Admin path: a new document.
    AdminCreate {
        doc: DocumentId,
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<(), RegistryError>>,
    },
}

/// A group commit for the writer: the shard it comes from, its token, its writes, and
/// the documents to compact once it is committed (flagged by the engine, which knows
/// their sizes).
type Batch = (usize, BatchToken, WriteBatch, Vec<DocumentId>);

/// An admin write waiting for the commit that makes it durable.
struct AdminWaiter {
    doc: DocumentId,
    /// The changes to see durable; empty for a created document (it waits for
    /// `Created`/`CreateFailed` instead).
    heads: Vec<ChangeHash>,
    reply: oneshot::Sender<Result<(), RegistryError>>,
}

/// A cheap, cloneable handle the connection tasks use to talk to the engine shards.
#[derive(Clone)]
pub struct RelayHandle {
    shards: Arc<Shards>,
    next_conn: Arc<AtomicU64>,
    peer_id: PeerId,
    engine_down: Arc<AtomicBool>,
    stopped: tokio::sync::watch::Receiver<bool>,
    commits: broadcast::Sender<DocumentId>,
}

/// Commit notifications a subscriber may fall behind by before it sees `Lagged` (and
/// must then reread everything).
pub const COMMIT_NOTIFICATIONS: usize = 4096;

impl RelayHandle {
    /// Registers a new connection with every shard; frames for it go to `outbox`.
    /// `share` names whose share of each shard's time its frames spend
    /// ([`EngineShare`]); `None` leaves the connection unmetered.
    pub async fn connect(&self, info: ConnInfo, outbox: Outbox, share: Option<String>) -> ConnId {
        let conn = ConnId(self.next_conn.fetch_add(1, Ordering::Relaxed));
        let ConnInfo {
            access,
            user,
            device,
        } = info;
        let access: Arc<dyn Fn(&DocumentId) -> Access + Send + Sync> = Arc::from(access);
        for link in self.shards.links() {
            let access = Arc::clone(&access);
            let info = ConnInfo {
                access: Box::new(move |doc| access(doc)),
                user: user.clone(),
                device: device.clone(),
            };
            // A send fails only once the shard has stopped; the connection then sees
            // its outbox closed, or the relay's shutdown, and ends.
            let _ = link
                .events
                .send(Event::Connect {
                    conn,
                    info,
                    outbox: outbox.clone(),
                    share: share.clone(),
                })
                .await;
        }
        conn
    }

    /// Hands one received frame, decoded and validated by the connection task
    /// ([`dealersync_core::protocol::decode_frame`]), to the shard of its document, or
    /// to every shard for a connection-level message (answered by one).
    /// Waits while a shard's queue is full (back-pressure).
    pub async fn frame(
        &self,
        conn: ConnId,
        decoded: Result<Inbound, InboundError>,
        frame_len: usize,
        in_flight: Option<tokio::sync::OwnedSemaphorePermit>,
    ) {
        let event = |decoded, answer, in_flight| Event::Frame {
            conn,
            decoded,
            frame_len,
            answer,
            _in_flight: in_flight,
        };
        let links = self.shards.links();
        match self.shards.route(&decoded) {
            Route::Document(i) => {
                let _ = links[i].events.send(event(decoded, true, in_flight)).await;
            }
            Route::One => {
                let i = self.shards.quietest();
                let _ = links[i].events.send(event(decoded, true, in_flight)).await;
            }
            Route::All => {
                let answering = self.shards.quietest();
                let mut in_flight = in_flight;
                for (i, link) in links.iter().enumerate() {
                    let permit = if i == answering {
                        in_flight.take()
                    } else {
                        None
                    };
                    let _ = link
                        .events
                        .send(event(decoded.clone(), i == answering, permit))
                        .await;
                }
            }
        }
    }

    /// Whether every engine shard is running. A relay with a stopped shard answers no
    /// sync message for that shard's documents, so it must not look healthy.
    pub fn is_healthy(&self) -> bool {
        !self.engine_down.load(Ordering::Acquire)
    }

    /// Resolves once an engine shard has stopped on an error it could not contain.
    pub async fn engine_stopped(&self) {
        let mut rx = self.stopped.clone();
        let _ = rx.wait_for(|down| *down).await;
    }

    /// Tells every shard the connection is gone, so they free its state.
    pub async fn disconnect(&self, conn: ConnId) {
        for link in self.shards.links() {
            let _ = link.events.send(Event::Disconnect { conn }).await;
        }
    }

    /// The server's peer id.
    pub fn peer_id(&self) -> &PeerId {
        &self.peer_id
    }

    /// How many engine shards the relay runs.
    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    /// Names each document after every commit that made changes to it durable (from
    /// peers or admin edits) or created it, from every shard: for read models and
    /// caches that must follow the stored documents. A receiver that falls more than
    /// a few thousand notifications behind gets `Lagged` and should re-read everything.
    pub fn subscribe_commits(&self) -> broadcast::Receiver<DocumentId> {
        self.commits.subscribe()
    }
}

/// The running relay: the engine shards, the writer and the compactor.
pub struct Relay {
    handle: RelayHandle,
    engine_threads: Vec<JoinHandle<()>>,
    writer_thread: JoinHandle<()>,
}

impl Relay {
    /// Starts `config.shards` engine threads (reading through `reads` and connections
    /// opened from it) and the writer thread (committing through `writes`). Give each
    /// its own connection to the database.
    pub fn start(config: RelayConfig, reads: SqliteStore, writes: SqliteStore) -> Relay {
        let n = config.shards.max(1);
        let (senders, receivers): (Vec<_>, Vec<_>) =
            (0..n).map(|_| tmpsc::channel(EVENT_QUEUE)).unzip();
        let shards = Arc::new(Shards::new(senders));
        let (batches_tx, batches_rx) = mpsc::channel::<Batch>();
        let (compact_tx, compact_rx) = mpsc::channel::<DocumentId>();
        match reads.another_connection() {
            Ok(store) => {
                let shards = Arc::clone(&shards);
                std::thread::Builder::new()
                    .name("dealersync-compactor".into())
                    .spawn(move || run_compactor(store, compact_rx, shards))
                    .expect("spawning the compaction thread");
            }
            // Documents then grow by appends only, which loses nothing.
            Err(e) => {
                error!(error = %e, "cannot open a connection for compaction; documents will not be compacted")
            }
        }
        let ticks = Arc::clone(&shards);
        std::thread::Builder::new()
            .name("dealersync-tick".into())
            .spawn(move || run_ticks(ticks))
            .expect("spawning the tick thread");
        let writer_shards = Arc::clone(&shards);
        let writer_thread = std::thread::Builder::new()
            .name("dealersync-writer".into())
            .spawn(move || run_writer(writes, batches_rx, writer_shards, compact_tx))
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
        let stopped_tx = Arc::new(stopped_tx);
        let (commits, _) = broadcast::channel(COMMIT_NOTIFICATIONS);
        let mut stores = Some(reads);
        let mut engine_threads = Vec::with_capacity(n);
        for (index, events) in receivers.into_iter().enumerate() {
            // The last shard takes `reads` itself; the others open connections of
            // their own (a SQLite connection is used by one thread at a time).
            let store = if index + 1 == n {
                stores.take().expect("one store per shard")
            } else {
                match stores
                    .as_ref()
                    .expect("kept for the last shard")
                    .another_connection()
                {
                    Ok(store) => store,
                    Err(e) => {
                        panic!("cannot open a database connection for engine shard {index}: {e}")
                    }
                }
            };
            let down = Arc::clone(&engine_down);
            let stopped = Arc::clone(&stopped_tx);
            let engine = Engine::new(config.peer_id.clone(), engine_config.clone());
            let shard_loop = EngineLoop {
                index,
                shards: Arc::clone(&shards),
                engine,
                store,
                events,
                batches: batches_tx.clone(),
                conns: HashMap::new(),
                in_flight: None,
                idle: config.idle_unload,
                budget: config.max_loaded_docs,
                admin: Vec::new(),
                share: EngineShare::new(ENGINE_SHARE, ENGINE_SHARE_BURST),
                metered: HashMap::new(),
                commits: commits.clone(),
                exported: EngineStats::default(),
                upstream: None,
                doc_names: DocNames::default(),
            };
            let thread = std::thread::Builder::new()
                .name(format!("dealersync-engine-{index}"))
                .spawn(move || {
                    if !shard_loop.run() {
                        down.store(true, Ordering::Release);
                        let _ = stopped.send(true);
                    }
                })
                .expect("spawning an engine thread");
            engine_threads.push(thread);
        }
        info!(shards = n, "engine shards started");
        Relay {
            handle: RelayHandle {
                shards,
                next_conn: Arc::new(AtomicU64::new(1)),
                peer_id: config.peer_id,
                engine_down,
                stopped: stopped_rx,
                commits,
            },
            engine_threads,
            writer_thread,
        }
    }

    /// A handle for connection tasks.
    pub fn handle(&self) -> RelayHandle {
        self.handle.clone()
    }

    /// Stops the relay after the events already queued are handled and every pending
    /// write of every shard is committed. Blocks; call it from a blocking context.
    pub fn shutdown(self) {
        for link in self.handle.shards.links() {
            let _ = link.events.blocking_send(Event::Shutdown);
        }
        drop(self.handle);
        for thread in self.engine_threads {
            if thread.join().is_err() {
                error!("an engine thread panicked");
            }
        }
        if self.writer_thread.join().is_err() {
            error!("writer thread panicked");
        }
    }
}

mod admin;
mod compactor;
mod engine_loop;
mod shards;
#[cfg(test)]
mod tests;
mod upstream;
mod writer;

pub use admin::RelayDocuments;
use compactor::run_compactor;
use engine_loop::{DocNames, EngineLoop};
use shards::{Route, Shards, run_ticks};
pub use shards::{default_shards, shard_of};
pub use upstream::{UpstreamDoc, UpstreamLedger};
use writer::run_writer;
