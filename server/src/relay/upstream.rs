//! The upstream relay as one more peer of the engine shards.
//!
//! A downstream relay (`serve --upstream`) keeps one WebSocket to its upstream relay.
//! That socket is an *outgoing* connection of every shard's engine, the client side
//! of the same engine the field client drives: every shard registers it with
//! [`Engine::connect_to_server`] (shard 0's `join` is the one sent), the upstream's
//! `peer` answer goes to every shard, and each shard then syncs the subtree's
//! documents it owns. There is one copy of each document and one durable store: a
//! change from a local device is committed here, acknowledged to the device, and
//! offered upstream by the same commit; a change from upstream is committed here
//! before it is acknowledged upstream (durable before acknowledged at every hop).
//!
//! The subtree's documents are pinned in memory while the relay follows its upstream
//! (a distribution centre holds tens of site documents), so that every commit of one
//! of them reaches the upstream at once. A site's archive is followed while it takes
//! changes, then let go of ([`RelayHandle::unfollow_upstream`]): it unloads when idle,
//! so the pinned set stays one working document per site and the archives of the
//! month just closed.
//!
//! [`UpstreamLedger`] is what the status API and the metrics read: per document, the
//! changes the upstream has not acknowledged yet, computed on each shard's tick from
//! the heads the upstream last advertised (it advertises only committed heads).

use std::collections::{BTreeMap, HashSet};

use dealersync_core::protocol::engine::ConnInfo;

use super::*;

/// One document's standing with the upstream relay.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpstreamDoc {
    /// Changes held here that the upstream has not acknowledged; `None` until the
    /// upstream has advertised its heads for the document since this relay started.
    pub unacknowledged: Option<u64>,
    /// Changes held here in all.
    pub changes: u64,
    /// The upstream's last advertised heads (hex), which it holds durably.
    pub upstream_heads: Vec<String>,
    /// When the upstream last advanced its heads for this document, UTC ms.
    pub acknowledged_at: Option<i64>,
    /// The upstream answered `doc-unavailable` (its token does not reach it, or it
    /// does not have it).
    pub unavailable: bool,
}

/// What the shards know about the upstream, per document, shared with the link task,
/// the API and the metrics.
#[derive(Debug, Clone, Default)]
pub struct UpstreamLedger {
    docs: Arc<std::sync::Mutex<BTreeMap<DocumentId, UpstreamDoc>>>,
}

impl UpstreamLedger {
    /// Every followed document's standing.
    pub fn snapshot(&self) -> BTreeMap<DocumentId, UpstreamDoc> {
        self.docs.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Changes not acknowledged upstream, over every document whose count is known.
    pub fn unacknowledged(&self) -> u64 {
        self.docs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter_map(|d| d.unacknowledged)
            .sum()
    }

    /// Drops a document the link no longer follows from the status and metrics.
    fn forget(&self, doc: &DocumentId) {
        self.docs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(doc);
    }

    fn update(&self, doc: DocumentId, f: impl FnOnce(&mut UpstreamDoc)) {
        let mut docs = self.docs.lock().unwrap_or_else(|e| e.into_inner());
        f(docs.entry(doc).or_default());
    }
}

/// A shard's view of the upstream link.
pub(super) struct UpstreamPeer {
    /// The link's current connection, while it is up.
    pub(super) conn: Option<ConnId>,
    /// The subtree's documents this shard owns.
    pub(super) docs: HashSet<DocumentId>,
    /// The last heads the upstream advertised, per document (kept across reconnects).
    pub(super) acked: HashMap<DocumentId, Vec<ChangeHash>>,
    /// Local and upstream heads the ledger was last computed for, per document: the
    /// counts walk the change graph, so they are recomputed only when either moved.
    pub(super) counted: HashMap<DocumentId, (Vec<ChangeHash>, Option<Vec<ChangeHash>>)>,
    pub(super) ledger: UpstreamLedger,
}

impl RelayHandle {
    /// Registers the link to the upstream relay with every shard as an outgoing
    /// connection that follows `docs` (each shard takes those it owns); returns its
    /// id and the `join` frame to send first. Frames the upstream sends go to
    /// [`RelayHandle::frame`] as any connection's; [`RelayHandle::disconnect`] ends it.
    pub async fn connect_upstream(
        &self,
        docs: Vec<DocumentId>,
        outbox: Outbox,
        ledger: UpstreamLedger,
    ) -> ConnId {
        let conn = ConnId(self.next_conn.fetch_add(1, Ordering::Relaxed));
        for (i, link) in self.shards.links().iter().enumerate() {
            let mine = docs
                .iter()
                .filter(|d| shard_of(d, self.shards.len()) == i)
                .copied()
                .collect();
            let _ = link
                .events
                .send(Event::UpstreamConnect {
                    conn,
                    docs: mine,
                    outbox: outbox.clone(),
                    ledger: ledger.clone(),
                    send_join: i == 0,
                })
                .await;
        }
        conn
    }

    /// Before the first connection: follows `docs` and starts each one's count from
    /// what the upstream had acknowledged when this relay last saved its sync state
    /// with it (`upstream_storage`, the upstream's storage id), so that a relay
    /// restarted while cut off still says how far behind it is.
    pub async fn prepare_upstream(
        &self,
        docs: Vec<DocumentId>,
        upstream_storage: Option<StorageId>,
        ledger: UpstreamLedger,
    ) {
        for (i, link) in self.shards.links().iter().enumerate() {
            let mine = docs
                .iter()
                .filter(|d| shard_of(d, self.shards.len()) == i)
                .copied()
                .collect();
            let _ = link
                .events
                .send(Event::UpstreamPrepare {
                    docs: mine,
                    upstream_storage: upstream_storage.clone(),
                    ledger: ledger.clone(),
                })
                .await;
        }
    }

    /// The upstream link follows more documents (sites that appeared upstream, and
    /// their archives).
    pub async fn follow_upstream(&self, docs: Vec<DocumentId>) {
        self.to_owning_shards(docs, |doc| Event::UpstreamFollow { doc })
            .await;
    }

    /// The upstream link stops following `docs` (archives past their grace week, sites
    /// that left the subtree): they are no longer pinned, and unload when idle. The
    /// copies here still serve reads.
    pub async fn unfollow_upstream(&self, docs: Vec<DocumentId>) {
        self.to_owning_shards(docs, |doc| Event::UpstreamUnfollow { doc })
            .await;
    }

    /// Sends each document's `event` to the shard that owns it.
    async fn to_owning_shards(&self, docs: Vec<DocumentId>, event: fn(DocumentId) -> Event) {
        for doc in docs {
            let _ = self.shards.of(&doc).events.send(event(doc)).await;
        }
    }
}

impl EngineLoop {
    /// See [`RelayHandle::prepare_upstream`].
    pub(super) fn upstream_prepare(
        &mut self,
        docs: HashSet<DocumentId>,
        upstream_storage: Option<StorageId>,
        ledger: UpstreamLedger,
    ) {
        let peer = self.upstream.get_or_insert_with(|| UpstreamPeer {
            conn: None,
            docs: HashSet::new(),
            acked: HashMap::new(),
            counted: HashMap::new(),
            ledger,
        });
        peer.docs.extend(docs.iter().copied());
        for doc in docs {
            self.open_for_upstream(doc);
            let Some(sid) = &upstream_storage else {
                continue;
            };
            let (Some(am), Ok(Some(saved))) = (
                self.engine.document(&doc),
                self.store.load_sync_state(&doc, sid),
            ) else {
                continue;
            };
            if let Ok(state) = automerge::sync::State::decode(&saved)
                && state
                    .shared_heads
                    .iter()
                    .all(|h| am.get_change_by_hash(h).is_some())
                && let Some(peer) = self.upstream.as_mut()
            {
                peer.acked.entry(doc).or_insert(state.shared_heads);
            }
        }
        self.upstream_ledger();
    }

    /// The link connected: follow `docs`, then `join` (from shard 0 only).
    pub(super) fn upstream_connect(
        &mut self,
        conn: ConnId,
        docs: HashSet<DocumentId>,
        outbox: Outbox,
        ledger: UpstreamLedger,
        send_join: bool,
    ) {
        self.conns.insert(conn, outbox);
        if self.upstream.is_none() {
            self.upstream_prepare(HashSet::new(), None, ledger);
        }
        let peer = self.upstream.as_mut().expect("prepared");
        peer.conn = Some(conn);
        peer.docs.extend(docs);
        let docs: Vec<DocumentId> = peer.docs.iter().copied().collect();
        for doc in docs {
            self.open_for_upstream(doc);
        }
        // The upstream may send us any change of the documents we follow: it is
        // the authority over them, and it checked its own peers' access.
        let info = ConnInfo::full_access();
        let join = self.engine.connect_to_server(conn, info);
        if send_join {
            self.dispatch(join);
        }
    }

    /// Starts following `doc` (and syncing it if the link is up).
    pub(super) fn upstream_follow(&mut self, doc: DocumentId) {
        let Some(peer) = self.upstream.as_mut() else {
            return;
        };
        if peer.docs.insert(doc) {
            let out = self.open_for_upstream(doc);
            self.dispatch(out);
        }
    }

    /// See [`RelayHandle::unfollow_upstream`].
    pub(super) fn upstream_unfollow(&mut self, doc: DocumentId) {
        let Some(peer) = self.upstream.as_mut() else {
            return;
        };
        if !peer.docs.remove(&doc) {
            return;
        }
        peer.acked.remove(&doc);
        peer.counted.remove(&doc);
        peer.ledger.forget(&doc);
        match peer.conn {
            Some(conn) => self.engine.stop_syncing(&doc, conn),
            None => self.engine.close(&doc),
        }
    }

    /// Pins `doc` (loading it, or an empty copy asked for with `request` when this
    /// relay does not have it yet); the frames for an already connected upstream.
    fn open_for_upstream(&mut self, doc: DocumentId) -> Vec<Output> {
        match self.engine.open(doc, &self.store as &dyn Store) {
            Ok(out) => out,
            Err(e) => {
                warn!(doc = %doc, error = %e, "cannot open a document to sync with the upstream");
                Vec::new()
            }
        }
    }

    /// Whether `conn` is the upstream link: every shard answers its connection-level
    /// messages (its `peer` starts each shard's own documents).
    pub(super) fn is_upstream(&self, conn: ConnId) -> bool {
        self.upstream.as_ref().and_then(|p| p.conn) == Some(conn)
    }

    /// The link went away (its task calls [`RelayHandle::disconnect`]).
    pub(super) fn upstream_gone(&mut self, conn: ConnId) {
        if let Some(peer) = self.upstream.as_mut()
            && peer.conn == Some(conn)
        {
            peer.conn = None;
        }
    }

    /// Refreshes the ledger for this shard's followed documents (on each tick and
    /// after commits).
    pub(super) fn upstream_ledger(&mut self) {
        let Some(peer) = self.upstream.as_mut() else {
            return;
        };
        for doc in &peer.docs {
            let Some(am) = self.engine.document(doc) else {
                continue;
            };
            let mut advanced = false;
            if let Some(conn) = peer.conn
                && let Some(heads) = self.engine.peer_heads(doc, conn)
                && heads.iter().all(|h| am.get_change_by_hash(h).is_some())
                && peer.acked.get(doc) != Some(&heads)
            {
                peer.acked.insert(*doc, heads);
                advanced = true;
            }
            let acked = peer.acked.get(doc);
            let unavailable = peer
                .conn
                .is_some_and(|c| self.engine.is_unavailable(doc, c));
            let key = (am.get_heads(), acked.cloned());
            if peer.counted.get(doc) == Some(&key) {
                peer.ledger.update(*doc, |d| d.unavailable = unavailable);
                continue;
            }
            peer.counted.insert(*doc, key);
            let unacknowledged = acked.map(|h| am.get_changes_meta(h).len() as u64);
            let changes = am.get_changes_meta(&[]).len() as u64;
            peer.ledger.update(*doc, |d| {
                d.unacknowledged = unacknowledged;
                d.changes = changes;
                d.unavailable = unavailable;
                if let Some(h) = acked {
                    d.upstream_heads = h.iter().map(|h| h.to_string()).collect();
                }
                if advanced {
                    d.acknowledged_at = Some(now_ms());
                }
            });
        }
    }
}
