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
        outbox: tmpsc::Sender<Outgoing>,
        share: Option<String>,
    },
    Frame {
        conn: ConnId,
        decoded: Result<Inbound, InboundError>,
        frame_len: usize,
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
}

impl RelayHandle {
    /// Registers a new connection; frames for it go to `outbox`.
    /// `share` names whose share of the engine's time its frames spend
    /// ([`EngineShare`]); `None` leaves the connection unmetered.
    pub async fn connect(
        &self,
        info: ConnInfo,
        outbox: tmpsc::Sender<Outgoing>,
        share: Option<String>,
    ) -> ConnId {
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
    ) {
        let _ = self
            .events
            .send(Event::Frame {
                conn,
                decoded,
                frame_len,
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
        let (batches_tx, batches_rx) = mpsc::channel::<(BatchToken, WriteBatch)>();
        let writer_events = events_tx.clone();
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
            .spawn(move || run_writer(writes, batches_rx, writer_events))
            .expect("spawning the writer thread");
        let engine_config = EngineConfig {
            storage_id: Some(config.storage_id.clone()),
            limits: config.limits.clone(),
            ..EngineConfig::default()
        };
        let engine_down = Arc::new(AtomicBool::new(false));
        let (stopped_tx, stopped_rx) = tokio::sync::watch::channel(false);
        let down = Arc::clone(&engine_down);
        let engine = Engine::new(config.peer_id.clone(), engine_config);
        let idle = config.idle_unload;
        let budget = config.max_loaded_docs;
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

struct EngineLoop {
    engine: Engine,
    store: SqliteStore,
    events: tmpsc::Receiver<Event>,
    batches: mpsc::Sender<(BatchToken, WriteBatch)>,
    conns: HashMap<ConnId, tmpsc::Sender<Outgoing>>,
    in_flight: Option<BatchToken>,
    idle: Duration,
    budget: Option<usize>,
    admin: Vec<AdminWaiter>,
    share: EngineShare,
    /// Whose share each metered connection spends.
    metered: HashMap<ConnId, String>,
}

impl EngineLoop {
    /// Runs until shutdown (`true`) or until a panic that cannot be pinned on one
    /// connection and document (`false`): then the engine's state cannot be trusted,
    /// and the relay must stop so that a supervisor restarts it from storage.
    fn run(mut self) -> bool {
        let mut shutting_down = false;
        let mut last_unload = Instant::now();
        loop {
            match self.events.blocking_recv() {
                Some(Event::Shutdown) | None => shutting_down = true,
                Some(ev) => {
                    if !self.handle_contained(ev) {
                        return false;
                    }
                }
            }
            let window = Instant::now() + DRAIN_WINDOW;
            while Instant::now() < window {
                match self.events.try_recv() {
                    Ok(Event::Shutdown) => shutting_down = true,
                    Ok(ev) => {
                        if !self.handle_contained(ev) {
                            return false;
                        }
                    }
                    Err(_) => break,
                }
            }
            let started = match catch_unwind(AssertUnwindSafe(|| self.start_commit())) {
                Ok(started) => started,
                Err(panic) => {
                    error!(panic = %panic_text(&panic), "the engine panicked preparing a commit; stopping");
                    return false;
                }
            };
            if shutting_down && self.in_flight.is_none() && !started {
                info!("engine stopped; every pending write is committed");
                return true;
            }
            if last_unload.elapsed() >= TICK {
                last_unload = Instant::now();
                let mut unloaded = self
                    .engine
                    .unload_idle(now_ms(), self.idle.as_millis() as i64);
                if let Some(max) = self.budget {
                    unloaded += self.engine.unload_to_budget(max);
                }
                if unloaded > 0 {
                    debug!(unloaded, "unloaded idle documents");
                }
                metrics::gauge!(telemetry::DOCUMENTS_LOADED).set(self.engine.docs_loaded() as f64);
                telemetry::export_engine_stats(self.engine.stats());
                self.share.prune(Instant::now());
            }
        }
    }

    /// Handles one event; a panic while handling a connection's frame is contained to
    /// that connection and document ([`Engine::quarantine`]). Returns `false` when a
    /// panic could not be contained.
    fn handle_contained(&mut self, ev: Event) -> bool {
        let culprit = match &ev {
            Event::Frame { conn, decoded, .. } => Some((*conn, frame_document(decoded))),
            _ => None,
        };
        let started = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| self.handle(ev)));
        if let Some((conn, _)) = culprit {
            self.charge(conn, started);
        }
        let Err(panic) = result else {
            return true;
        };
        let why = panic_text(&panic);
        telemetry::count_error("engine_panic");
        let Some((conn, doc)) = culprit else {
            error!(panic = %why, "the engine panicked outside any connection's message; stopping");
            return false;
        };
        error!(conn = conn.0, doc = ?doc, panic = %why, "the engine panicked on a message; closing that connection and reloading the document");
        match catch_unwind(AssertUnwindSafe(|| {
            self.engine.quarantine(conn, doc, "internal error")
        })) {
            Ok(out) => {
                self.dispatch(out);
                true
            }
            Err(_) => false,
        }
    }

    /// Charges the engine time since `started` to the connection's user; a user over
    /// its share has this connection closed with an `error`.
    fn charge(&mut self, conn: ConnId, started: Instant) {
        let Some(user) = self.metered.get(&conn) else {
            return;
        };
        let now = Instant::now();
        if self.share.charge(user, now - started, now) {
            return;
        }
        telemetry::count_error("engine_share");
        warn!(conn = conn.0, user = %user.chars().take(64).collect::<String>(), "a user exceeded its share of the engine's time; closing the connection");
        let message = format!(
            "this user's messages used more than {:.0}% of the relay's sync engine; slow down and reconnect",
            ENGINE_SHARE * 100.0
        );
        let frame = crate::wire::error_frame(self.engine.peer_id(), None, &message);
        self.send(conn, Outgoing::Frame(MessageKind::Error, frame));
        self.send(conn, Outgoing::Close(CloseReason::Overloaded(message)));
        self.conns.remove(&conn);
        self.metered.remove(&conn);
        self.engine.disconnect(conn);
    }

    /// Hands the pending writes to the writer if it is idle; whether it did.
    fn start_commit(&mut self) -> bool {
        if self.in_flight.is_some() {
            return false;
        }
        let Some((token, batch)) = self.engine.take_write_batch() else {
            return false;
        };
        self.in_flight = Some(token);
        if self.batches.send((token, batch)).is_err() {
            // The writer is gone (it panicked): nothing can become durable any more.
            error!("writer thread is gone; failing the commit");
            self.in_flight = None;
            let err = StoreError::Io("the storage writer stopped".into());
            let out = self
                .engine
                .commit_failed(token, &err, now_ms(), &self.store);
            self.dispatch(out);
        }
        true
    }

    fn handle(&mut self, ev: Event) {
        match ev {
            Event::Connect {
                conn,
                info,
                outbox,
                share,
            } => {
                self.conns.insert(conn, outbox);
                if let Some(user) = share {
                    self.metered.insert(conn, user);
                }
                self.engine.connect(conn, info);
            }
            Event::Frame {
                conn,
                decoded,
                frame_len,
            } => {
                let doc = frame_document(&decoded).map(|d| d.to_string());
                let span = info_span!("doc", conn = conn.0, doc = doc.as_deref().unwrap_or(""));
                let _enter = span.enter();
                let out = self.engine.receive_decoded(
                    conn,
                    decoded,
                    frame_len,
                    now_ms(),
                    &self.store as &dyn Store,
                );
                self.dispatch(out);
            }
            Event::Disconnect { conn } => {
                self.conns.remove(&conn);
                self.metered.remove(&conn);
                self.engine.disconnect(conn);
                metrics::gauge!(telemetry::DOCUMENTS_LOADED).set(self.engine.docs_loaded() as f64);
            }
            Event::Committed { token, result } => {
                self.in_flight = None;
                let out = match result {
                    Ok(()) => self.engine.commit_succeeded(token, now_ms(), &self.store),
                    Err(e) => {
                        telemetry::count_error(e.kind());
                        error!(kind = e.kind(), error = %e, "group commit failed; nothing in it is acknowledged");
                        self.engine.commit_failed(token, &e, now_ms(), &self.store)
                    }
                };
                self.dispatch(out);
                self.settle_admin();
            }
            Event::Tick | Event::Shutdown => {}
            Event::AdminRead { doc, reply } => {
                let result = self
                    .load_for_admin(doc)
                    .map(|()| self.engine.document(&doc).expect("loaded").save());
                let _ = reply.send(result);
            }
            Event::AdminApply {
                doc,
                changes,
                heads,
                reply,
            } => {
                if let Err(e) = self.load_for_admin(doc) {
                    let _ = reply.send(Err(e));
                    return;
                }
                let am = self.engine.document_mut(&doc).expect("loaded");
                let applied = am.load_incremental(&changes).map_err(|e| e.to_string());
                let missing = heads.iter().any(|h| am.get_change_by_hash(h).is_none());
                if applied.is_err() || missing {
                    // Changes with missing dependencies would wait in automerge's queue
                    // forever: the copy was taken from a state the relay no longer has.
                    let _ = reply.send(Err(RegistryError::Document {
                        doc,
                        reason: format!(
                            "cannot apply the edit: {}",
                            applied
                                .err()
                                .unwrap_or_else(|| "its base changed; retry".into())
                        ),
                    }));
                    return;
                }
                // Infallible: the document is loaded.
                let _ = self.engine.local_change(&doc);
                self.admin.push(AdminWaiter { doc, heads, reply });
                self.settle_admin();
            }
            Event::AdminCreate { doc, bytes, reply } => {
                match self.engine.create_document(doc, &bytes, &self.store) {
                    Ok(()) => self.admin.push(AdminWaiter {
                        doc,
                        heads: Vec::new(),
                        reply,
                    }),
                    Err(e) => {
                        let _ = reply.send(Err(engine_error(doc, e)));
                    }
                }
            }
        }
    }

    /// Loads `doc` from the store if it is not in memory; an unknown document is an
    /// error, never created.
    fn load_for_admin(&mut self, doc: DocumentId) -> Result<(), RegistryError> {
        if self.engine.document(&doc).is_some() {
            return Ok(());
        }
        if !self.store.exists(&doc)? {
            return Err(RegistryError::Document {
                doc,
                reason: "not in the store".into(),
            });
        }
        // `open` pins the document for a client; the relay only needs it loaded, and
        // lets idle unloading take it once its edits are committed.
        self.engine
            .open(doc, &self.store)
            .map_err(|e| engine_error(doc, e))?;
        self.engine.close(&doc);
        Ok(())
    }

    /// Answers the admin edits whose changes are now durable, or lost (a failed commit
    /// reloads the document from the store without them).
    fn settle_admin(&mut self) {
        let engine = &self.engine;
        let mut finished = Vec::new();
        self.admin.retain_mut(|w| {
            if w.heads.is_empty() {
                return true;
            }
            let outcome = match (engine.document(&w.doc), engine.durable_heads(&w.doc)) {
                (Some(am), Some(durable)) => {
                    if w.heads.iter().any(|h| am.get_change_by_hash(h).is_none()) {
                        Some(Err(lost(w.doc)))
                    } else {
                        let pending: std::collections::HashSet<ChangeHash> =
                            am.get_changes(&durable).iter().map(|c| c.hash()).collect();
                        w.heads
                            .iter()
                            .all(|h| !pending.contains(h))
                            .then_some(Ok(()))
                    }
                }
                _ => Some(Err(lost(w.doc))),
            };
            match outcome {
                Some(result) => {
                    finished.push((
                        std::mem::replace(&mut w.reply, oneshot::channel().0),
                        result,
                    ));
                    false
                }
                None => true,
            }
        });
        for (reply, result) in finished {
            let _ = reply.send(result);
        }
    }

    /// Answers the admin creations the engine reports on.
    fn settle_created(&mut self, doc: DocumentId, result: Result<(), RegistryError>) {
        if let Some(i) = self
            .admin
            .iter()
            .position(|w| w.doc == doc && w.heads.is_empty())
        {
            let w = self.admin.swap_remove(i);
            let _ = w.reply.send(result);
        }
    }

    fn dispatch(&mut self, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Send { conn, kind, bytes } => self.send(conn, Outgoing::Frame(kind, bytes)),
                Output::Close { conn, reason } => {
                    match &reason {
                        CloseReason::BadFrame(_)
                        | CloseReason::Protocol(_)
                        | CloseReason::Storage(_)
                        | CloseReason::Overloaded(_)
                        | CloseReason::TooLarge(_) => {
                            telemetry::count_error(reason.kind());
                            warn!(conn = conn.0, kind = reason.kind(), "closing: {reason}");
                        }
                        _ => debug!(conn = conn.0, kind = reason.kind(), "closing: {reason}"),
                    }
                    self.send(conn, Outgoing::Close(reason));
                    // The engine forgot the connection; its task ends after the close.
                    self.conns.remove(&conn);
                }
                Output::PeerReady { conn, peer_id } => {
                    debug!(conn = conn.0, peer = %peer_id, "handshake done");
                }
                Output::DocumentChanged { doc } => {
                    metrics::gauge!(telemetry::DOCUMENTS_LOADED)
                        .set(self.engine.docs_loaded() as f64);
                    debug!(doc = %doc, "committed heads advanced");
                }
                Output::CreateFailed { doc, error } => {
                    error!(doc = %doc, "creating the document failed: {error}");
                    self.settle_created(doc, Err(StoreError::Io(error).into()));
                }
                Output::Created { doc } => self.settle_created(doc, Ok(())),
                Output::DocumentUnavailable { .. } | Output::Ephemeral { .. } => {}
            }
        }
    }

    fn send(&mut self, conn: ConnId, msg: Outgoing) {
        let Some(outbox) = self.conns.get(&conn) else {
            return;
        };
        match outbox.try_send(msg) {
            Ok(()) => {}
            Err(tmpsc::error::TrySendError::Full(_)) => {
                // A peer that does not read must not grow our memory or stall others:
                // dropping its outbox makes its task close the socket with an error.
                warn!(
                    conn = conn.0,
                    "outgoing queue full; closing the slow connection"
                );
                telemetry::count_error("slow_consumer");
                self.conns.remove(&conn);
                self.engine.disconnect(conn);
            }
            Err(tmpsc::error::TrySendError::Closed(_)) => {
                self.conns.remove(&conn);
            }
        }
    }
}

/// The document a frame is about, when it names one.
fn frame_document(decoded: &Result<Inbound, InboundError>) -> Option<DocumentId> {
    match decoded {
        Ok(inbound) => inbound.message.document_id().copied(),
        Err(InboundError::Sync { doc, .. }) => Some(*doc),
        Err(InboundError::Wire(_)) => None,
    }
}

/// A panic's message, for the log.
fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into());
    text.chars().take(200).collect()
}

fn lost(doc: DocumentId) -> RegistryError {
    RegistryError::Store(StoreError::Io(format!(
        "the commit holding the edit of {doc} failed; nothing was changed"
    )))
}

fn engine_error(
    doc: DocumentId,
    e: dealersync_core::protocol::engine::EngineError,
) -> RegistryError {
    use dealersync_core::protocol::engine::EngineError;
    match e {
        EngineError::Store(s) => RegistryError::Store(s),
        other => RegistryError::Document {
            doc,
            reason: other.to_string(),
        },
    }
}

/// A [`DocumentWriter`] through the running relay: the admin API's site and network
/// edits become the engine's own local changes, committed like any other and sent to
/// every connected peer of the document at once. Each call blocks until the change is
/// durable: call it from a blocking thread (`spawn_blocking`), never from async code.
pub struct RelayDocuments {
    handle: RelayHandle,
}

impl RelayDocuments {
    /// Writes through the relay behind `handle`.
    pub fn new(handle: RelayHandle) -> Self {
        RelayDocuments { handle }
    }

    fn ask<T>(
        &self,
        event: impl FnOnce(oneshot::Sender<Result<T, RegistryError>>) -> Event,
    ) -> Result<T, RegistryError> {
        let (tx, rx) = oneshot::channel();
        let stopped = || RegistryError::Store(StoreError::Io("the relay is shutting down".into()));
        self.handle
            .events
            .blocking_send(event(tx))
            .map_err(|_| stopped())?;
        rx.blocking_recv().map_err(|_| stopped())?
    }
}

impl DocumentWriter for RelayDocuments {
    fn create(&self, id: DocumentId, bytes: Vec<u8>) -> Result<(), RegistryError> {
        self.ask(|reply| Event::AdminCreate {
            doc: id,
            bytes,
            reply,
        })
    }

    fn edit(
        &self,
        id: DocumentId,
        edit: &mut dyn FnMut(&mut AutoCommit) -> Result<(), RegistryError>,
    ) -> Result<(), RegistryError> {
        // The edit runs here, on a copy with its own fresh actor id, so that the engine
        // thread never waits on it; the resulting changes merge like a peer's.
        let bytes = self.ask(|reply| Event::AdminRead { doc: id, reply })?;
        let mut doc = AutoCommit::load(&bytes).map_err(|e| RegistryError::Document {
            doc: id,
            reason: format!("cannot load: {e}"),
        })?;
        let before = doc.get_heads();
        edit(&mut doc)?;
        let changes = doc.save_after(&before);
        if doc.get_heads() == before {
            return Ok(());
        }
        let heads = doc.get_heads();
        self.ask(|reply| Event::AdminApply {
            doc: id,
            changes,
            heads,
            reply,
        })
    }
}

fn run_writer(
    store: SqliteStore,
    batches: mpsc::Receiver<(BatchToken, WriteBatch)>,
    events: tmpsc::Sender<Event>,
) {
    for (token, batch) in batches {
        let changes = batch.audit.len();
        let bytes: usize = batch
            .created
            .iter()
            .chain(&batch.appended)
            .chain(&batch.snapshots)
            .map(|(_, b)| b.len())
            .sum();
        let started = Instant::now();
        let result = store.commit(&batch);
        let elapsed = started.elapsed();
        metrics::histogram!(COMMIT_SECONDS).record(elapsed.as_secs_f64());
        metrics::histogram!(COMMIT_BATCH_CHANGES).record(changes as f64);
        metrics::histogram!(COMMIT_BATCH_BYTES).record(bytes as f64);
        debug!(
            changes,
            bytes,
            ms = elapsed.as_secs_f64() * 1e3,
            ok = result.is_ok(),
            "group commit"
        );
        if events
            .blocking_send(Event::Committed { token, result })
            .is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::sync::SyncDoc;
    use dealersync_core::protocol::{DocumentId, Message, PeerMetadata};

    use crate::storage::StoreOptions;
    use dealersync_core::protocol::decode_frame;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connection_that_does_not_read_is_dropped_not_buffered() {
        let limits = SyncLimits::default();
        let dir = tempfile::tempdir().unwrap();
        let open = || SqliteStore::open(dir.path(), &StoreOptions::default()).unwrap();
        let (reads, writes) = (open(), open());
        let doc = DocumentId::random();
        writes
            .create_document(&doc, crate::documents::empty_document())
            .unwrap();
        let relay = Relay::start(
            RelayConfig {
                peer_id: PeerId::from("relay"),
                storage_id: StorageId("relay-store".into()),
                idle_unload: Duration::from_secs(60),
                limits: SyncLimits::default(),
                max_loaded_docs: None,
            },
            reads,
            writes,
        );
        let handle = relay.handle();
        // Room for one frame, and nobody reads it.
        let (outbox, mut unread) = tmpsc::channel(1);
        let conn = handle.connect(ConnInfo::full_access(), outbox, None).await;
        let join = Message::Join {
            sender_id: PeerId::from("slow"),
            supported_protocol_versions: Some(vec!["1".into()]),
            metadata: Some(PeerMetadata::default()),
        }
        .encode();
        handle
            .frame(conn, decode_frame(&join, &limits), join.len())
            .await;
        let mut empty = automerge::AutoCommit::new();
        let mut state = automerge::sync::State::new();
        let data = empty
            .sync()
            .generate_sync_message(&mut state)
            .unwrap()
            .encode();
        let request = Message::Request {
            sender_id: PeerId::from("slow"),
            target_id: PeerId::from("relay"),
            document_id: doc,
            data,
        }
        .encode();
        handle
            .frame(conn, decode_frame(&request, &limits), request.len())
            .await;

        // The answer to the request does not fit: the engine drops the outbox instead
        // of buffering, which tells the connection task to close the socket.
        let until = Instant::now() + Duration::from_secs(20);
        while !unread.is_closed() {
            assert!(Instant::now() < until, "the slow connection was kept");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        match unread.recv().await {
            Some(Outgoing::Frame(kind, _)) => assert_eq!(kind, MessageKind::Peer),
            other => panic!("expected the peer message, got {other:?}"),
        }
        assert!(unread.recv().await.is_none(), "nothing more was queued");
        tokio::task::spawn_blocking(move || relay.shutdown())
            .await
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn admin_writes_through_the_relay_are_durable_when_they_return() {
        use automerge::transaction::Transactable;
        let dir = tempfile::tempdir().unwrap();
        let open = || SqliteStore::open(dir.path(), &StoreOptions::default()).unwrap();
        let (reads, writes, check) = (open(), open(), open());
        let relay = Relay::start(
            RelayConfig {
                peer_id: PeerId::from("relay"),
                storage_id: StorageId("relay-store".into()),
                idle_unload: Duration::from_secs(60),
                limits: SyncLimits::default(),
                max_loaded_docs: None,
            },
            reads,
            writes,
        );
        let docs = RelayDocuments::new(relay.handle());
        let doc = DocumentId::random();
        let stored = tokio::task::spawn_blocking(move || {
            docs.create(doc, crate::documents::empty_document())?;
            // Creating it twice, or editing a document nobody created, is refused.
            assert!(
                docs.create(doc, crate::documents::empty_document())
                    .is_err()
            );
            let unknown = DocumentId::random();
            assert!(matches!(
                docs.edit(unknown, &mut |_| Ok(())),
                Err(RegistryError::Document { .. })
            ));
            assert!(!check.exists(&unknown)?);
            docs.edit(doc, &mut |d| {
                d.put(automerge::ROOT, "name", "总部").unwrap();
                Ok(())
            })?;
            // A failing edit changes nothing.
            let refused = docs.edit(doc, &mut |d| {
                d.put(automerge::ROOT, "name", "half-done").unwrap();
                Err(RegistryError::Invalid("refused".into()))
            });
            assert!(matches!(refused, Err(RegistryError::Invalid(_))));
            // Returned means committed: the store has it without waiting.
            let stored = check.load(&doc)?.expect("created");
            Ok::<_, RegistryError>(automerge::Automerge::load(&stored.chunks.concat()).unwrap())
        })
        .await
        .unwrap()
        .unwrap();
        let name = stored
            .get(automerge::ROOT, "name")
            .unwrap()
            .and_then(|(v, _)| v.into_string().ok());
        assert_eq!(name.as_deref(), Some("总部"));
        tokio::task::spawn_blocking(move || relay.shutdown())
            .await
            .unwrap();
    }
}
