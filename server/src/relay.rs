//! The relay driver: runs the sans-IO sync engine on real threads and real storage.
//!
//! Three kinds of actors, connected by channels:
//! - **connection tasks** (one per WebSocket, see [`crate::ws`]) read frames and hand
//!   them to the engine thread, and write what the engine sends them;
//! - the **engine thread** owns the [`Engine`]; automerge work is CPU-bound and
//!   synchronous, so it runs on a plain thread rather than on the async runtime;
//! - the **writer thread** owns its own SQLite connection and performs group commits.
//!
//! Group commit: whenever no commit is in flight and the engine has pending writes, the
//! engine thread takes them all as one [`WriteBatch`] and hands it to the writer; while
//! the writer fsyncs, the engine keeps receiving, so the next batch collects everything
//! that arrived meanwhile. A batch therefore waits at most one commit plus a short
//! drain window ([`DRAIN_WINDOW`]). The engine advertises no heads containing a change
//! until the commit that holds it succeeded: durable before acknowledged.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dealersync_core::protocol::engine::{
    BatchToken, CloseReason, ConnId, ConnInfo, Engine, EngineConfig, Output,
};
use dealersync_core::protocol::{MessageKind, PeerId, StorageId};
use dealersync_core::store::{Store, StoreError, WriteBatch};
use tokio::sync::mpsc as tmpsc;
use tracing::{debug, error, info, info_span, warn};

use crate::storage::SqliteStore;
use crate::telemetry::{self, COMMIT_BATCH_BYTES, COMMIT_BATCH_CHANGES, COMMIT_SECONDS};
use crate::wire::FrameHeader;

/// How long the engine thread keeps draining queued events before it starts a commit,
/// so one busy connection cannot postpone everyone's acknowledgement.
pub const DRAIN_WINDOW: Duration = Duration::from_millis(2);

/// How often the engine thread wakes up without events, to unload idle documents.
const TICK: Duration = Duration::from_millis(500);

/// Settings of the relay driver.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The server's peer id in `peer` messages.
    pub peer_id: PeerId,
    /// The server's durable storage id, advertised so peers persist sync state.
    pub storage_id: StorageId,
    /// A document without connections for this long is unloaded from memory.
    pub idle_unload: Duration,
}

/// What the engine sends to a connection task.
#[derive(Debug)]
pub enum Outgoing {
    /// One binary frame, and its message type for metrics.
    Frame(MessageKind, Vec<u8>),
    /// Close the connection with this reason (the engine has sent any `error` first).
    Close(String),
}

enum Event {
    Connect {
        conn: ConnId,
        info: ConnInfo,
        outbox: tmpsc::Sender<Outgoing>,
    },
    Frame {
        conn: ConnId,
        bytes: Vec<u8>,
        header: FrameHeader,
    },
    Disconnect {
        conn: ConnId,
    },
    Committed {
        token: BatchToken,
        result: Result<(), StoreError>,
    },
    Shutdown,
}

/// A cheap, cloneable handle the connection tasks use to talk to the engine thread.
#[derive(Clone)]
pub struct RelayHandle {
    events: mpsc::Sender<Event>,
    next_conn: Arc<AtomicU64>,
    peer_id: PeerId,
}

impl RelayHandle {
    /// Registers a new connection; frames for it go to `outbox`.
    pub fn connect(&self, info: ConnInfo, outbox: tmpsc::Sender<Outgoing>) -> ConnId {
        let conn = ConnId(self.next_conn.fetch_add(1, Ordering::Relaxed));
        // A send fails only once the relay has shut down; the connection then sees its
        // outbox closed and ends.
        let _ = self.events.send(Event::Connect { conn, info, outbox });
        conn
    }

    /// Hands one received frame to the engine.
    pub fn frame(&self, conn: ConnId, bytes: Vec<u8>, header: FrameHeader) {
        let _ = self.events.send(Event::Frame {
            conn,
            bytes,
            header,
        });
    }

    /// Tells the engine the connection is gone, so it frees its state.
    pub fn disconnect(&self, conn: ConnId) {
        let _ = self.events.send(Event::Disconnect { conn });
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
        let (events_tx, events_rx) = mpsc::channel();
        let (batches_tx, batches_rx) = mpsc::channel::<(BatchToken, WriteBatch)>();
        let writer_events = events_tx.clone();
        let writer_thread = std::thread::Builder::new()
            .name("dealersync-writer".into())
            .spawn(move || run_writer(writes, batches_rx, writer_events))
            .expect("spawning the writer thread");
        let engine_config = EngineConfig {
            storage_id: Some(config.storage_id.clone()),
            ..EngineConfig::default()
        };
        let engine = Engine::new(config.peer_id.clone(), engine_config);
        let idle = config.idle_unload;
        let engine_thread = std::thread::Builder::new()
            .name("dealersync-engine".into())
            .spawn(move || {
                EngineLoop {
                    engine,
                    store: reads,
                    events: events_rx,
                    batches: batches_tx,
                    conns: HashMap::new(),
                    in_flight: None,
                    idle,
                }
                .run()
            })
            .expect("spawning the engine thread");
        Relay {
            handle: RelayHandle {
                events: events_tx,
                next_conn: Arc::new(AtomicU64::new(1)),
                peer_id: config.peer_id,
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
        let _ = self.handle.events.send(Event::Shutdown);
        drop(self.handle);
        if self.engine_thread.join().is_err() {
            error!("engine thread panicked");
        }
        if self.writer_thread.join().is_err() {
            error!("writer thread panicked");
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

struct EngineLoop {
    engine: Engine,
    store: SqliteStore,
    events: mpsc::Receiver<Event>,
    batches: mpsc::Sender<(BatchToken, WriteBatch)>,
    conns: HashMap<ConnId, tmpsc::Sender<Outgoing>>,
    in_flight: Option<BatchToken>,
    idle: Duration,
}

impl EngineLoop {
    fn run(mut self) {
        let mut shutting_down = false;
        let mut last_unload = Instant::now();
        loop {
            match self.events.recv_timeout(TICK) {
                Ok(Event::Shutdown) => shutting_down = true,
                Ok(ev) => self.handle(ev),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => shutting_down = true,
            }
            let window = Instant::now() + DRAIN_WINDOW;
            while Instant::now() < window {
                match self.events.try_recv() {
                    Ok(Event::Shutdown) => shutting_down = true,
                    Ok(ev) => self.handle(ev),
                    Err(_) => break,
                }
            }
            let started = self.start_commit();
            if shutting_down && self.in_flight.is_none() && !started {
                info!("engine stopped; every pending write is committed");
                return;
            }
            if last_unload.elapsed() >= TICK {
                last_unload = Instant::now();
                let unloaded = self
                    .engine
                    .unload_idle(now_ms(), self.idle.as_millis() as i64);
                if unloaded > 0 {
                    debug!(unloaded, "unloaded idle documents");
                }
                metrics::gauge!(telemetry::DOCUMENTS_LOADED).set(self.engine.docs_loaded() as f64);
            }
        }
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
            Event::Connect { conn, info, outbox } => {
                self.conns.insert(conn, outbox);
                self.engine.connect(conn, info);
            }
            Event::Frame {
                conn,
                bytes,
                header,
            } => {
                let span = info_span!(
                    "doc",
                    conn = conn.0,
                    doc = header.document_id.as_deref().unwrap_or(""),
                    kind = header.kind
                );
                let _enter = span.enter();
                let out = self
                    .engine
                    .receive(conn, &bytes, now_ms(), &self.store as &dyn Store);
                self.dispatch(out);
            }
            Event::Disconnect { conn } => {
                self.conns.remove(&conn);
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
            }
            Event::Shutdown => {}
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
                        | CloseReason::Overloaded(_) => {
                            telemetry::count_error(reason.kind());
                            warn!(conn = conn.0, kind = reason.kind(), "closing: {reason}");
                        }
                        _ => debug!(conn = conn.0, kind = reason.kind(), "closing: {reason}"),
                    }
                    self.send(conn, Outgoing::Close(reason.to_string()));
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
                }
                Output::DocumentUnavailable { .. }
                | Output::Ephemeral { .. }
                | Output::Created { .. } => {}
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

fn run_writer(
    store: SqliteStore,
    batches: mpsc::Receiver<(BatchToken, WriteBatch)>,
    events: mpsc::Sender<Event>,
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
        if events.send(Event::Committed { token, result }).is_err() {
            return;
        }
    }
}
