//! Sync messages: access, loading, validation against the limits, applying, and
//! generating replies only from committed heads.

use super::*;

impl Engine {
    /// Adds `conn` as a peer of a loaded document and sends our first message.
    pub(super) fn start_sync(
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
    pub(super) fn ensure_peer(&mut self, conn: ConnId, doc_id: DocumentId, store: &dyn Store) {
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

    pub(super) fn on_sync(
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
    pub(super) fn apply_sync(
        &mut self,
        out: &mut Vec<Output>,
        conn: ConnId,
        doc_id: DocumentId,
        mut valid: ValidSync,
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
        valid.keep_new(|h| has_change(&d.am, h));
        let mut msg = valid.message;
        if !growth.hashes.is_empty()
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
        let new = growth.hashes;
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
        let before = d.am.get_heads();
        if !msg.changes.is_empty() {
            self.stats.apply_calls += 1;
        }
        let result = d
            .receive_from(conn, msg, self.config.receive_path, &mut self.stats)
            .expect("ensure_peer added it");
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
        if after != before || d.shared_heads_unsaved(conn) {
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
    pub(super) fn generate(&mut self, out: &mut Vec<Output>, doc_id: DocumentId, conn: ConnId) {
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

    pub(super) fn generate_all(&mut self, out: &mut Vec<Output>, doc_id: DocumentId) {
        let conns: Vec<ConnId> = match self.docs.get(&doc_id) {
            Some(d) => d.peers.keys().copied().collect(),
            None => return,
        };
        for conn in conns {
            self.generate(out, doc_id, conn);
        }
    }

    pub(super) fn unavailable(&mut self, out: &mut Vec<Output>, conn: ConnId, doc_id: DocumentId) {
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
    pub(super) fn fail(&mut self, out: &mut Vec<Output>, conn: ConnId, reason: CloseReason) {
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

    pub(super) fn send(&mut self, out: &mut Vec<Output>, conn: ConnId, msg: &Message) {
        let bytes = msg.encode();
        let kind = msg.kind();
        self.stats.bytes_out += bytes.len() as u64;
        *self.stats.messages_out.entry(kind).or_default() += 1;
        out.push(Output::Send { conn, kind, bytes });
    }

    /// Loads a document from the store if it is not in memory. `Ok(false)`: unknown.
    pub(super) fn ensure_loaded(
        &mut self,
        doc_id: DocumentId,
        store: &dyn Store,
    ) -> Result<bool, StoreError> {
        if self.docs.contains_key(&doc_id) {
            return Ok(true);
        }
        let Some(stored) = store.load(&doc_id)? else {
            return Ok(false);
        };
        let am = stored
            .load()
            .map_err(|e| StoreError::Corrupt(format!("document {doc_id}: {e}")))?;
        let mut d = Doc::new(am, true, self.now);
        d.snapshot_bytes = stored.snapshot_bytes;
        d.incremental_bytes = stored.incremental_bytes;
        self.docs.insert(doc_id, d);
        Ok(true)
    }
}
