//! Documents of the local application (the field client, the relay's admin path).

use super::*;

impl Engine {
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

    pub(super) fn insert_new(
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

    /// Client path: stops syncing `doc_id` with the server on `conn` and unpins it, so
    /// that the engine unloads it when idle (a downstream relay that no longer follows
    /// an archive past its grace week). A later message from that server about the
    /// document starts syncing it again, from the sync state saved with it.
    pub fn stop_syncing(&mut self, doc_id: &DocumentId, conn: ConnId) {
        if let Some(d) = self.docs.get_mut(doc_id) {
            d.pinned = false;
            d.peers.remove(&conn);
            d.queue.retain(|(q, _)| *q != conn);
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.docs.remove(doc_id);
        }
    }

    pub(super) fn sync_with_servers(
        &mut self,
        doc_id: DocumentId,
        store: &dyn Store,
    ) -> Vec<Output> {
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

    /// Records the local edits made since `since` (through [`Engine::document_mut`]) in
    /// the audit log under `user` and `device`, written with the next batch: the
    /// relay's HTTP API edits on a person's behalf, and those edits are audited like
    /// the changes a peer sends.
    pub fn audit_local(
        &mut self,
        doc_id: &DocumentId,
        since: &[ChangeHash],
        user: Option<&str>,
        device: Option<&str>,
        now_ms: i64,
    ) -> Result<(), EngineError> {
        let d = self
            .docs
            .get_mut(doc_id)
            .ok_or(EngineError::NotLoaded(*doc_id))?;
        let rows = AuditRecord::for_changes(*doc_id, &d.am, since, user, device, now_ms);
        d.audit.extend(rows);
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
}
