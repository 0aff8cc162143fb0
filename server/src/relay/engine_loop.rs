//! One engine shard's thread: handles its events in order, contains panics per
//! message, charges each user's engine time, hands batches to the writer and
//! dispatches outputs.

use super::*;

pub(super) struct EngineLoop {
    /// Which shard this is.
    pub(super) index: usize,
    /// Every shard's load, for the memory budget and for choosing who answers.
    pub(super) shards: Arc<Shards>,
    pub(super) engine: Engine,
    pub(super) store: SqliteStore,
    pub(super) events: tmpsc::Receiver<Event>,
    pub(super) batches: mpsc::Sender<Batch>,
    pub(super) conns: HashMap<ConnId, Outbox>,
    pub(super) in_flight: Option<BatchToken>,
    pub(super) idle: Duration,
    pub(super) budget: Option<usize>,
    pub(super) admin: Vec<AdminWaiter>,
    pub(super) share: EngineShare,
    /// Whose share each metered connection spends.
    pub(super) metered: HashMap<ConnId, String>,
    /// Documents made durable, for [`RelayHandle::subscribe_commits`].
    pub(super) commits: broadcast::Sender<DocumentId>,
    /// The engine's counters as last exported (metrics add the difference, so that
    /// every shard's counts sum up).
    pub(super) exported: EngineStats,
    /// The link to the upstream relay, on a downstream relay.
    pub(super) upstream: Option<super::upstream::UpstreamPeer>,
    /// Document ids as the log writes them, for each frame's span.
    pub(super) doc_names: DocNames,
}

/// Document ids as the log writes them (bs58check), kept so that a frame's span does
/// not encode and checksum its document's id again: that was 1.1 % of the relay's CPU
/// under durable ingest. Bounded: forgotten all at once when it reaches [`Self::MAX`].
#[derive(Default)]
pub(super) struct DocNames(HashMap<DocumentId, Arc<str>>);

impl DocNames {
    /// More documents than one shard keeps loaded at once.
    const MAX: usize = 65_536;

    /// The id's text, encoded once.
    pub(super) fn get(&mut self, id: DocumentId) -> Arc<str> {
        if let Some(name) = self.0.get(&id) {
            return name.clone();
        }
        if self.0.len() >= Self::MAX {
            self.0.clear();
        }
        let name: Arc<str> = id.to_string().into();
        self.0.insert(id, name.clone());
        name
    }
}

impl EngineLoop {
    /// Runs until shutdown (`true`) or until a panic that cannot be pinned on one
    /// connection and document (`false`): then the engine's state cannot be trusted,
    /// and the relay must stop so that a supervisor restarts it from storage.
    pub(super) fn run(mut self) -> bool {
        let mut shutting_down = false;
        let mut last_unload = Instant::now();
        loop {
            self.shards.idle(self.index);
            let next = self.events.blocking_recv();
            self.shards.busy(self.index);
            match next {
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
                    // The budget is the relay's: this shard may keep what the others
                    // leave of it (they unload theirs on their own ticks).
                    let left = max.saturating_sub(self.shards.loaded_elsewhere(self.index));
                    unloaded += self.engine.unload_to_budget(left);
                }
                if unloaded > 0 {
                    debug!(shard = self.index, unloaded, "unloaded idle documents");
                }
                self.publish_loaded();
                self.upstream_ledger();
                telemetry::export_engine_stats(&self.exported, self.engine.stats());
                self.exported = self.engine.stats().clone();
                self.share.prune(Instant::now());
            }
        }
    }

    /// Sets the documents-loaded gauge to what all shards hold.
    fn publish_loaded(&self) {
        let total = self
            .shards
            .set_loaded(self.index, self.engine.docs_loaded());
        metrics::gauge!(telemetry::DOCUMENTS_LOADED).set(total as f64);
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
        failpoint("engine-commit");
        self.in_flight = Some(token);
        let compact = self.engine.take_compaction_due();
        if self
            .batches
            .send((self.index, token, batch, compact))
            .is_err()
        {
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
                answer,
                ..
            } => {
                let doc = frame_document(&decoded).map(|d| self.doc_names.get(d));
                let span = info_span!(
                    "doc",
                    shard = self.index,
                    conn = conn.0,
                    doc = doc.as_deref().unwrap_or("")
                );
                let _enter = span.enter();
                let out = self.engine.receive_decoded(
                    conn,
                    decoded,
                    frame_len,
                    now_ms(),
                    &self.store as &dyn Store,
                );
                if answer || self.is_upstream(conn) {
                    self.dispatch(out);
                } else {
                    // Another shard answers this connection-level message with the
                    // same outputs; only forget the connections this engine closed.
                    for output in out {
                        if let Output::Close { conn, .. } = output {
                            self.conns.remove(&conn);
                        }
                    }
                }
            }
            Event::Disconnect { conn } => {
                self.upstream_gone(conn);
                self.conns.remove(&conn);
                self.metered.remove(&conn);
                self.engine.disconnect(conn);
                self.publish_loaded();
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
            Event::UpstreamConnect {
                conn,
                docs,
                outbox,
                ledger,
                send_join,
            } => self.upstream_connect(conn, docs, outbox, ledger, send_join),
            Event::UpstreamFollow { doc } => self.upstream_follow(doc),
            Event::UpstreamUnfollow { doc } => self.upstream_unfollow(doc),
            Event::UpstreamPrepare {
                docs,
                upstream_storage,
                ledger,
            } => self.upstream_prepare(docs, upstream_storage, ledger),
            Event::Compacted {
                doc,
                snapshot_bytes,
                removed_bytes,
            } => self.engine.compacted(&doc, snapshot_bytes, removed_bytes),
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
                author,
                reply,
            } => {
                if let Err(e) = self.load_for_admin(doc) {
                    let _ = reply.send(Err(e));
                    return;
                }
                let am = self.engine.document_mut(&doc).expect("loaded");
                let before = am.get_heads();
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
                if let Some(a) = &author {
                    let _ = self.engine.audit_local(
                        &doc,
                        &before,
                        Some(&a.user),
                        a.device.as_deref(),
                        now_ms(),
                    );
                }
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

    pub(super) fn dispatch(&mut self, outputs: Vec<Output>) {
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
                    self.publish_loaded();
                    debug!(doc = %doc, "committed heads advanced");
                    // Nobody listening is not an error.
                    let _ = self.commits.send(doc);
                }
                Output::CreateFailed { doc, error } => {
                    error!(doc = %doc, "creating the document failed: {error}");
                    self.settle_created(doc, Err(StoreError::Io(error).into()));
                }
                Output::Created { doc } => {
                    let _ = self.commits.send(doc);
                    self.settle_created(doc, Ok(()));
                }
                Output::DocumentUnavailable { .. } | Output::Ephemeral { .. } => {}
            }
        }
    }

    fn send(&mut self, conn: ConnId, msg: Outgoing) {
        let Some(outbox) = self.conns.get(&conn) else {
            return;
        };
        let len = match &msg {
            Outgoing::Frame(_, bytes) => bytes.len(),
            Outgoing::Close(_) => 0,
        };
        let queued = outbox.queued_bytes.load(Ordering::Acquire);
        let result = if queued + len > MAX_OUTBOX_BYTES && len > 0 {
            Err(tmpsc::error::TrySendError::Full(msg))
        } else {
            outbox.queued_bytes.fetch_add(len, Ordering::AcqRel);
            outbox.try_send(msg).inspect_err(|_| {
                outbox.queued_bytes.fetch_sub(len, Ordering::AcqRel);
            })
        };
        match result {
            Ok(()) => {}
            Err(tmpsc::error::TrySendError::Full(_)) => {
                // A peer that does not read must not grow our memory or stall others:
                // closing its outbox (for every shard) makes its task close the socket
                // with an error; the other shards forget it on its disconnect.
                warn!(
                    conn = conn.0,
                    "outgoing queue full; closing the slow connection"
                );
                telemetry::count_error("slow_consumer");
                outbox.evict();
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
pub(super) fn frame_document(decoded: &Result<Inbound, InboundError>) -> Option<DocumentId> {
    match decoded {
        Ok(inbound) => inbound.message.document_id().copied(),
        Err(InboundError::Sync { doc, .. }) => Some(*doc),
        Err(InboundError::Wire(_)) => None,
    }
}

/// A panic's message, for the log.
pub(super) fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into());
    text.chars().take(200).collect()
}

pub(super) fn lost(doc: DocumentId) -> RegistryError {
    RegistryError::Store(StoreError::Io(format!(
        "the commit holding the edit of {doc} failed; nothing was changed"
    )))
}

pub(super) fn engine_error(
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

/// Fault injection: with the cargo feature `failpoints` (the test suite's build only),
/// panics when `DEALERSYNC_FAILPOINT` names this point, so that tests can prove what an
/// engine panic outside any message does (the relay stops, `/healthz` fails, the
/// process exits non-zero). Compiled to nothing otherwise.
#[inline]
fn failpoint(_name: &str) {
    #[cfg(feature = "failpoints")]
    if std::env::var("DEALERSYNC_FAILPOINT").as_deref() == Ok(_name) {
        panic!("failpoint {_name}");
    }
}
