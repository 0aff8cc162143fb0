//! Group commit: write batches, their success or failure, the queue of messages that
//! waited, and quarantine after a panic.

use super::*;

impl Engine {
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
                    let due = grown > d.snapshot_bytes.max(min);
                    if self.config.compact_in_engine && due {
                        let snap = d.am.save();
                        d.snapshot_bytes = snap.len() as u64;
                        d.incremental_bytes = 0;
                        batch.snapshots.push((doc_id, snap));
                    } else {
                        if due {
                            self.compaction_due.insert(doc_id);
                        }
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
    pub(super) fn replay_queue(
        &mut self,
        out: &mut Vec<Output>,
        doc_id: DocumentId,
        store: &dyn Store,
    ) {
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
    pub(super) fn apply_together(
        &mut self,
        out: &mut Vec<Output>,
        doc_id: DocumentId,
        mut queued: Vec<(ConnId, ValidSync)>,
        store: &dyn Store,
    ) -> Result<(), Vec<(ConnId, ValidSync)>> {
        if queued.len() < 2 {
            return Err(queued);
        }
        if let Some(d) = self.docs.get(&doc_id) {
            for (_, v) in &mut queued {
                v.keep_new(|h| has_change(&d.am, h));
            }
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
            growth.add(v.growth(|h| has_change(&d.am, h)));
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
            let Some(result) = d.receive_from(conn, msg, self.config.receive_path, &mut self.stats)
            else {
                continue;
            };
            if d.shared_heads_unsaved(conn) {
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
}
