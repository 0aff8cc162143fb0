//! The sync engine end to end: a server engine and client engines wired through an
//! in-memory network, each with its own in-memory store and explicit group commits.
//!
//! Every sync/request frame any engine sends is checked against that engine's store
//! at the moment it leaves: all heads it advertises must already be committed.

use std::collections::VecDeque;

use automerge::sync::{self, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{Automerge, ChangeHash, ROOT, ReadDoc, ScalarValue, Value};
use ciborium::Value as Cbor;
use dealersync_core::access::Access;
use dealersync_core::protocol::memory::MemoryStore;
use dealersync_core::protocol::{
    CloseReason, ConnId, ConnInfo, DocumentId, Engine, EngineConfig, Message, MessageKind, Output,
    PeerId, StorageId,
};
use dealersync_core::store::Store;

const SERVER_STORAGE: &str = "server-storage";

fn server_engine() -> Engine {
    Engine::new(
        PeerId::from("server"),
        EngineConfig {
            storage_id: Some(StorageId(SERVER_STORAGE.into())),
            ..EngineConfig::default()
        },
    )
}

fn client_engine(name: &str) -> Engine {
    Engine::new(
        PeerId::from(name),
        EngineConfig {
            storage_id: Some(StorageId(format!("{name}-storage"))),
            ..EngineConfig::default()
        },
    )
}

/// Loads what a store holds for a document.
fn stored_doc(store: &MemoryStore, doc: &DocumentId) -> Option<Automerge> {
    let stored = store.load(doc).unwrap()?;
    let all: Vec<u8> = stored.chunks.concat();
    Some(Automerge::load(&all).unwrap())
}

fn has(am: &Automerge, h: &ChangeHash) -> bool {
    am.get_change_meta_by_hash(h).is_some()
}

/// The sync and request messages among `sent` whose heads include any of `heads`.
fn advertising<'a>(
    sent: &'a [(ConnId, Message)],
    heads: &[ChangeHash],
) -> Vec<&'a (ConnId, Message)> {
    sent.iter()
        .filter(|(_, m)| match m {
            Message::Sync { data, .. } | Message::Request { data, .. } => {
                let sm = sync::Message::decode(data).unwrap();
                sm.heads.iter().any(|h| heads.contains(h))
            }
            _ => false,
        })
        .collect()
}

/// The invariant of the whole design: a sync message leaving an engine advertises
/// only committed heads.
fn assert_heads_durable(store: &MemoryStore, bytes: &[u8], who: &str) {
    let msg = Message::decode(bytes).unwrap();
    let (doc, data) = match &msg {
        Message::Sync {
            document_id, data, ..
        }
        | Message::Request {
            document_id, data, ..
        } => (document_id, data),
        _ => return,
    };
    let sm = sync::Message::decode(data).unwrap();
    if sm.heads.is_empty() {
        return;
    }
    let durable = stored_doc(store, doc)
        .unwrap_or_else(|| panic!("{who} advertised heads of {doc} before storing it"));
    for h in &sm.heads {
        assert!(
            has(&durable, h),
            "{who} advertised head {h} of {doc} that is not committed"
        );
    }
}

struct Client {
    engine: Engine,
    store: MemoryStore,
    online: bool,
    events: Vec<Output>,
}

enum Dest {
    Server(ConnId),
    Client(usize),
}

/// A server and its clients. Client `i` is connection `ConnId(i + 1)` on both sides.
struct World {
    server: Engine,
    store: MemoryStore,
    clients: Vec<Client>,
    wire: VecDeque<(Dest, Vec<u8>)>,
    now: i64,
    /// Every frame the server sent, decoded, with its connection.
    server_sent: Vec<(ConnId, Message)>,
    /// Connections the server closed.
    server_closed: Vec<(ConnId, CloseReason)>,
    server_events: Vec<Output>,
    /// Check every outgoing sync message against the store (off only to measure).
    verify: bool,
}

fn conn(i: usize) -> ConnId {
    ConnId(i as u64 + 1)
}

impl World {
    fn new() -> World {
        World {
            server: server_engine(),
            store: MemoryStore::new(),
            clients: Vec::new(),
            wire: VecDeque::new(),
            now: 1_000,
            server_sent: Vec::new(),
            server_closed: Vec::new(),
            server_events: Vec::new(),
            verify: true,
        }
    }

    /// A document on the server, committed, with `key = 0`.
    fn create_doc(&mut self) -> DocumentId {
        let id = DocumentId::random();
        let mut am = Automerge::new();
        am.transact::<_, _, automerge::AutomergeError>(|tx| {
            tx.put(ROOT, "created", true)?;
            Ok(())
        })
        .unwrap();
        self.server
            .create_document(id, &am.save(), &self.store)
            .unwrap();
        assert!(self.commit_server());
        assert!(self.store.exists(&id).unwrap());
        id
    }

    fn add_client(&mut self, name: &str) -> usize {
        self.clients.push(Client {
            engine: client_engine(name),
            store: MemoryStore::new(),
            online: false,
            events: Vec::new(),
        });
        self.clients.len() - 1
    }

    fn connect(&mut self, i: usize, access: Access) {
        self.connect_with(i, ConnInfo::with_access(move |_| access));
    }

    fn connect_with(&mut self, i: usize, info: ConnInfo) {
        let c = conn(i);
        self.server.connect(c, info);
        self.clients[i].online = true;
        let outs = self.clients[i]
            .engine
            .connect_to_server(c, ConnInfo::full_access());
        self.client_outputs(i, outs);
        self.deliver();
    }

    fn disconnect(&mut self, i: usize) {
        self.clients[i].online = false;
        self.clients[i].engine.disconnect(conn(i));
        self.server.disconnect(conn(i));
    }

    fn open(&mut self, i: usize, doc: DocumentId) {
        let cl = &mut self.clients[i];
        let outs = cl.engine.open(doc, &cl.store).unwrap();
        self.client_outputs(i, outs);
    }

    fn edit(&mut self, i: usize, doc: DocumentId, key: &str, value: i64) -> ChangeHash {
        let e = &mut self.clients[i].engine;
        let am = e.document_mut(&doc).expect("open");
        am.transact::<_, _, automerge::AutomergeError>(|tx| {
            tx.put(ROOT, key, value)?;
            Ok(())
        })
        .unwrap();
        let head = am.get_heads()[0];
        e.local_change(&doc).unwrap();
        head
    }

    fn server_outputs(&mut self, outs: Vec<Output>) {
        for o in outs {
            match o {
                Output::Send { conn, bytes, .. } => {
                    if self.verify {
                        assert_heads_durable(&self.store, &bytes, "server");
                    }
                    self.server_sent
                        .push((conn, Message::decode(&bytes).unwrap()));
                    let i = conn.0 as usize - 1;
                    // Raw connections (numbered past the clients) are read from
                    // `server_sent` by the test itself.
                    if i < self.clients.len() {
                        self.wire.push_back((Dest::Client(i), bytes));
                    }
                }
                Output::Close { conn, reason } => {
                    self.server_closed.push((conn, reason));
                    let i = conn.0 as usize - 1;
                    if i < self.clients.len() {
                        self.clients[i].online = false;
                        self.clients[i].engine.disconnect(conn);
                    }
                }
                other => self.server_events.push(other),
            }
        }
    }

    fn client_outputs(&mut self, i: usize, outs: Vec<Output>) {
        for o in outs {
            match o {
                Output::Send { conn, bytes, .. } => {
                    if self.verify {
                        assert_heads_durable(&self.clients[i].store, &bytes, "client");
                    }
                    self.wire.push_back((Dest::Server(conn), bytes));
                }
                Output::Close { conn, .. } => {
                    self.clients[i].online = false;
                    self.server.disconnect(conn);
                }
                other => self.clients[i].events.push(other),
            }
        }
    }

    /// Delivers frames until the wire is empty (no commits).
    fn deliver(&mut self) {
        let mut budget = 100_000;
        while self.deliver_one() {
            budget -= 1;
            assert!(budget > 0, "message storm");
        }
    }

    /// Delivers the oldest frame on the wire; false if there was none.
    fn deliver_one(&mut self) -> bool {
        self.deliver_oldest(|_| true)
    }

    /// Delivers the oldest frame going to the server (`to_server`) or to the clients;
    /// false if there was none. Each direction keeps its order, as on a connection,
    /// while the two directions interleave freely.
    fn deliver_oldest_towards(&mut self, to_server: bool) -> bool {
        self.deliver_oldest(|d| matches!(d, Dest::Server(_)) == to_server)
    }

    /// Delivers the oldest frame whose destination matches; false if there was none.
    fn deliver_oldest(&mut self, wanted: impl Fn(&Dest) -> bool) -> bool {
        let Some(pos) = self.wire.iter().position(|(d, _)| wanted(d)) else {
            return false;
        };
        let (dest, bytes) = self.wire.remove(pos).expect("found above");
        {
            match dest {
                Dest::Server(c) => {
                    let outs = self.server.receive(c, &bytes, self.now, &self.store);
                    self.server_outputs(outs);
                }
                Dest::Client(i) => {
                    if self.clients[i].online {
                        let cl = &mut self.clients[i];
                        let outs = cl.engine.receive(conn(i), &bytes, self.now, &cl.store);
                        self.client_outputs(i, outs);
                    }
                }
            }
        }
        true
    }

    fn commit_server(&mut self) -> bool {
        let Some((token, batch)) = self.server.take_write_batch() else {
            return false;
        };
        let outs = match self.store.commit(&batch) {
            Ok(()) => self.server.commit_succeeded(token, self.now, &self.store),
            Err(e) => self.server.commit_failed(token, &e, self.now, &self.store),
        };
        self.server_outputs(outs);
        true
    }

    fn commit_client(&mut self, i: usize) -> bool {
        let cl = &mut self.clients[i];
        let Some((token, batch)) = cl.engine.take_write_batch() else {
            return false;
        };
        let outs = match cl.store.commit(&batch) {
            Ok(()) => cl.engine.commit_succeeded(token, self.now, &cl.store),
            Err(e) => cl.engine.commit_failed(token, &e, self.now, &cl.store),
        };
        self.client_outputs(i, outs);
        true
    }

    /// Delivers and commits everywhere until nothing moves.
    fn settle(&mut self) {
        for _ in 0..10_000 {
            self.now += 1;
            self.deliver();
            let mut any = self.commit_server();
            for i in 0..self.clients.len() {
                any |= self.commit_client(i);
            }
            if !any && self.wire.is_empty() {
                return;
            }
        }
        panic!("did not settle");
    }

    fn client_get(&self, i: usize, doc: DocumentId, key: &str) -> Option<i64> {
        get_int(self.clients[i].engine.document(&doc)?, key)
    }

    fn server_heads(&self, doc: DocumentId) -> Vec<ChangeHash> {
        self.server.document(&doc).unwrap().get_heads()
    }

    /// A raw connection whose frames the test writes by hand; returns the server's
    /// frames for it.
    fn raw_join(&mut self, c: ConnId, access: Access, name: &str) -> Vec<Output> {
        self.server
            .connect(c, ConnInfo::with_access(move |_| access));
        let join = Message::Join {
            sender_id: PeerId::from(name),
            supported_protocol_versions: Some(vec!["1".into()]),
            metadata: None,
        };
        self.server
            .receive(c, &join.encode(), self.now, &self.store)
    }

    fn raw_send(&mut self, c: ConnId, frame: &[u8]) -> Vec<Output> {
        self.server.receive(c, frame, self.now, &self.store)
    }
}

fn get_int(am: &Automerge, key: &str) -> Option<i64> {
    match am.get(ROOT, key).unwrap()?.0 {
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Int(i) => Some(*i),
            _ => None,
        },
        _ => None,
    }
}

fn sends(outs: &[Output], c: ConnId) -> Vec<Message> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Send { conn, bytes, .. } if *conn == c => Some(Message::decode(bytes).unwrap()),
            _ => None,
        })
        .collect()
}

fn closed(outs: &[Output], c: ConnId) -> bool {
    outs.iter()
        .any(|o| matches!(o, Output::Close { conn, .. } if *conn == c))
}

fn sync_frame(doc: DocumentId, data: Vec<u8>, from: &str) -> Vec<u8> {
    Message::Sync {
        sender_id: PeerId::from(from),
        target_id: PeerId::from("server"),
        document_id: doc,
        data,
    }
    .encode()
}

/// A sync message carrying one new change on top of `base`, as a misbehaving or
/// read-only peer could send it regardless of what the server asked for.
fn sync_with_new_change(base: &Automerge, key: &str) -> (Vec<u8>, ChangeHash) {
    let mut fork = base.fork();
    fork.transact::<_, _, automerge::AutomergeError>(|tx| {
        tx.put(ROOT, key, 99)?;
        Ok(())
    })
    .unwrap();
    let heads = fork.get_heads();
    let change = fork.get_changes(&base.get_heads());
    assert_eq!(change.len(), 1);
    let msg = sync::Message {
        heads: heads.clone(),
        need: vec![],
        have: vec![],
        changes: vec![change[0].raw_bytes().to_vec()].into(),
        flags: None,
        version: sync::MessageVersion::V1,
    };
    (msg.encode(), heads[0])
}

#[test]
fn two_peers_sync_through_the_server() {
    let mut w = World::new();
    let doc = w.create_doc();
    let a = w.add_client("alice");
    let b = w.add_client("bob");
    w.connect(a, Access::ReadWrite);
    w.connect(b, Access::ReadWrite);
    w.open(a, doc);
    w.open(b, doc);
    w.settle();
    assert!(
        w.clients[a]
            .engine
            .document(&doc)
            .unwrap()
            .get(ROOT, "created")
            .unwrap()
            .is_some()
    );

    w.edit(a, doc, "price", 120_000);
    w.settle();
    assert_eq!(w.client_get(b, doc, "price"), Some(120_000));
    assert_eq!(
        get_int(&stored_doc(&w.store, &doc).unwrap(), "price"),
        Some(120_000)
    );
    assert!(w.clients[a].engine.is_synced(&doc, conn(a)));
    assert!(w.clients[b].engine.is_synced(&doc, conn(b)));

    // The change was audited with the connection's identity.
    let audit = w.store.audit();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].doc, doc);
    assert!(w.server_events.contains(&Output::DocumentChanged { doc }));
}

#[test]
fn three_peers_with_concurrent_edits_converge_and_a_late_joiner_catches_up() {
    let mut w = World::new();
    let doc = w.create_doc();
    let ids: Vec<usize> = ["a", "b", "c"].iter().map(|n| w.add_client(n)).collect();
    for &i in &ids {
        w.connect(i, Access::ReadWrite);
        w.open(i, doc);
    }
    w.settle();
    // Concurrent: every client edits before anything is delivered.
    for round in 0..5 {
        for &i in &ids {
            w.edit(i, doc, &format!("k{i}"), round);
            w.edit(i, doc, "shared", (i as i64) * 100 + round);
        }
        // Commits happen on each client; then the wire carries all of it at once.
        for &i in &ids {
            w.commit_client(i);
        }
    }
    w.settle();
    let heads = w.server_heads(doc);
    for &i in &ids {
        assert_eq!(
            w.clients[i].engine.document(&doc).unwrap().get_heads(),
            heads
        );
        for &j in &ids {
            assert_eq!(w.client_get(i, doc, &format!("k{j}")), Some(4));
        }
    }
    let shared: Vec<_> = ids
        .iter()
        .map(|&i| w.client_get(i, doc, "shared"))
        .collect();
    assert!(shared.iter().all(|s| *s == shared[0]), "{shared:?}");

    let late = w.add_client("late");
    w.connect(late, Access::ReadWrite);
    w.open(late, doc);
    w.settle();
    assert_eq!(
        w.clients[late].engine.document(&doc).unwrap().get_heads(),
        heads
    );
    assert_eq!(w.client_get(late, doc, "k0"), Some(4));
    // The late joiner's copy is durable in its own store too.
    assert_eq!(
        stored_doc(&w.clients[late].store, &doc)
            .unwrap()
            .get_heads(),
        heads
    );
}

#[test]
fn nothing_is_advertised_before_the_commit() {
    let mut w = World::new();
    let doc = w.create_doc();
    let a = w.add_client("a");
    let b = w.add_client("b");
    w.connect(a, Access::ReadWrite);
    w.connect(b, Access::ReadWrite);
    w.open(a, doc);
    w.open(b, doc);
    w.settle();

    let head = w.edit(a, doc, "x", 1);
    assert!(w.commit_client(a));
    let sent_before = w.server_sent.len();
    w.deliver();
    // The server applied the change in memory...
    assert!(has(w.server.document(&doc).unwrap(), &head));
    assert!(!has(&stored_doc(&w.store, &doc).unwrap(), &head));
    // ...but sent no sync message advertising it to anyone. (A message advertising
    // the old, durable heads may go out: automerge's Bloom filter has false positives,
    // so a client sometimes needs a second round to send its change, and the server
    // answers the first.)
    let leaked = advertising(&w.server_sent[sent_before..], &[head]);
    assert!(leaked.is_empty(), "{leaked:?}");
    assert!(w.server.has_pending_writes());

    // A batch in flight: messages for the document are queued, still nothing sent.
    let (token, batch) = w.server.take_write_batch().unwrap();
    assert_eq!(batch.appended.len(), 1);
    assert_eq!(batch.audit.len(), 1);
    assert_eq!(batch.audit[0].change_hash, head.to_string());
    let head2 = w.edit(b, doc, "y", 2);
    w.commit_client(b);
    w.deliver();
    assert!(
        !has(w.server.document(&doc).unwrap(), &head2),
        "queued, not applied"
    );
    let leaked = advertising(&w.server_sent[sent_before..], &[head, head2]);
    assert!(leaked.is_empty(), "{leaked:?}");

    w.store.commit(&batch).unwrap();
    let outs = w.server.commit_succeeded(token, w.now, &w.store);
    let acks: Vec<_> = outs
        .iter()
        .filter(|o| {
            matches!(
                o,
                Output::Send {
                    kind: MessageKind::Sync,
                    ..
                }
            )
        })
        .collect();
    assert!(!acks.is_empty());
    w.server_outputs(outs);
    // The queued change from b is applied after the commit (in this round, or the
    // next if a Bloom filter false positive held it back on b).
    w.settle();
    assert!(has(w.server.document(&doc).unwrap(), &head2));
    assert_eq!(w.client_get(b, doc, "x"), Some(1));
    assert_eq!(w.client_get(a, doc, "y"), Some(2));
}

#[test]
fn a_failed_commit_errors_the_sender_and_rolls_back() {
    let mut w = World::new();
    let doc = w.create_doc();
    let a = w.add_client("a");
    let b = w.add_client("b");
    w.connect(a, Access::ReadWrite);
    w.connect(b, Access::ReadWrite);
    w.open(a, doc);
    w.open(b, doc);
    w.settle();
    let before = w.server_heads(doc);

    let head = w.edit(a, doc, "lost", 7);
    w.commit_client(a);
    w.deliver();
    assert!(has(w.server.document(&doc).unwrap(), &head));
    w.store.fail_next_commits(1);
    assert!(w.commit_server());

    // a was told and disconnected; the server forgot the change; b never saw it.
    let err = w
        .server_sent
        .iter()
        .rev()
        .find(|(c, m)| *c == conn(a) && matches!(m, Message::Error { .. }));
    assert!(err.is_some(), "no error sent to the sender");
    assert!(
        w.server_closed
            .iter()
            .any(|(c, r)| *c == conn(a) && matches!(r, CloseReason::Storage(_)))
    );
    assert_eq!(w.server_heads(doc), before);
    assert!(!has(w.server.document(&doc).unwrap(), &head));
    w.settle();
    assert_eq!(w.client_get(b, doc, "lost"), None);
    assert!(w.clients[b].online, "b was not involved");

    // a still holds the change and sends it again on reconnect.
    assert_eq!(w.client_get(a, doc, "lost"), Some(7));
    w.connect(a, Access::ReadWrite);
    w.settle();
    assert_eq!(w.client_get(b, doc, "lost"), Some(7));
    assert!(has(&stored_doc(&w.store, &doc).unwrap(), &head));
}

#[test]
fn read_only_changes_are_rejected_and_never_applied() {
    let mut w = World::new();
    let doc = w.create_doc();
    let writer = w.add_client("writer");
    w.connect(writer, Access::ReadWrite);
    w.open(writer, doc);
    w.settle();
    let before = w.server_heads(doc);
    let audit_before = w.store.audit().len();

    // A raw read-only peer pushes a change the server did not ask for.
    let ro = ConnId(100);
    w.raw_join(ro, Access::ReadOnly, "reader");
    let base = w.server.document(&doc).unwrap().clone();
    let (data, head) = sync_with_new_change(&base, "forged");
    let outs = w.raw_send(ro, &sync_frame(doc, data, "reader"));
    let msgs = sends(&outs, ro);
    assert!(
        msgs.iter()
            .any(|m| matches!(m, Message::Error { message, .. } if message.contains("read-only"))),
        "{msgs:?}"
    );
    assert!(!closed(&outs, ro), "reads keep working");
    assert!(!has(w.server.document(&doc).unwrap(), &head));
    assert_eq!(w.server_heads(doc), before);
    assert!(!w.server.has_pending_writes());
    w.settle();
    assert_eq!(w.store.audit().len(), audit_before);
    assert_eq!(w.client_get(writer, doc, "forged"), None);

    // The reader still receives the writer's changes.
    w.edit(writer, doc, "price", 5);
    w.settle();
    let got: Vec<_> = w
        .server_sent
        .iter()
        .filter(|(c, m)| *c == ro && matches!(m, Message::Sync { .. }))
        .collect();
    assert!(!got.is_empty());

    // An engine client with read-only access: its local edit never reaches the server.
    let r = w.add_client("ro-client");
    w.connect(r, Access::ReadOnly);
    w.open(r, doc);
    w.settle();
    assert_eq!(w.client_get(r, doc, "price"), Some(5));
    let local = w.edit(r, doc, "price", 1);
    w.settle();
    assert!(!has(w.server.document(&doc).unwrap(), &local));
    assert_eq!(w.client_get(writer, doc, "price"), Some(5));
}

/// A store that counts how often the engine reads it, to compare the work behind two
/// answers.
struct CountingStore {
    inner: MemoryStore,
    reads: std::sync::atomic::AtomicUsize,
}

impl Store for CountingStore {
    fn load(
        &self,
        doc: &DocumentId,
    ) -> Result<Option<dealersync_core::store::StoredDocument>, dealersync_core::store::StoreError>
    {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.load(doc)
    }
    fn load_sync_state(
        &self,
        doc: &DocumentId,
        peer: &StorageId,
    ) -> Result<Option<Vec<u8>>, dealersync_core::store::StoreError> {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.load_sync_state(doc, peer)
    }
    fn commit(
        &self,
        batch: &dealersync_core::store::WriteBatch,
    ) -> Result<(), dealersync_core::store::StoreError> {
        self.inner.commit(batch)
    }
    fn exists(&self, doc: &DocumentId) -> Result<bool, dealersync_core::store::StoreError> {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.exists(doc)
    }
}

#[test]
fn a_denied_document_costs_the_store_what_a_missing_one_does() {
    // Timing must not tell a prober which ids exist: the denied answer does the same
    // store work (one lookup) as the answer for an id nobody has.
    let store = CountingStore {
        inner: MemoryStore::new(),
        reads: Default::default(),
    };
    let existing = DocumentId::random();
    let mut init = automerge::AutoCommit::new();
    init.put(ROOT, "k", 1).unwrap();
    store
        .commit(&dealersync_core::store::WriteBatch {
            created: vec![(existing, init.save())],
            ..Default::default()
        })
        .unwrap();
    let reads_for = |access: Access, doc: DocumentId| {
        let mut server = Engine::new(PeerId::from("server"), EngineConfig::default());
        let c = ConnId(1);
        server.connect(c, ConnInfo::with_access(move |_| access));
        let join = Message::Join {
            sender_id: PeerId::from("mallory"),
            supported_protocol_versions: Some(vec!["1".into()]),
            metadata: None,
        };
        server.receive(c, &join.encode(), 0, &store);
        let request = Message::Request {
            sender_id: PeerId::from("mallory"),
            target_id: PeerId::from("server"),
            document_id: doc,
            data: Automerge::new()
                .generate_sync_message(&mut sync::State::new())
                .unwrap()
                .encode(),
        };
        let before = store.reads.load(std::sync::atomic::Ordering::SeqCst);
        let outs = server.receive(c, &request.encode(), 0, &store);
        assert!(
            outs.iter().any(|o| matches!(
                o,
                Output::Send {
                    kind: MessageKind::DocUnavailable,
                    ..
                }
            )),
            "{outs:?}"
        );
        store.reads.load(std::sync::atomic::Ordering::SeqCst) - before
    };
    let denied = reads_for(Access::None, existing);
    let missing = reads_for(Access::ReadWrite, DocumentId::random());
    assert_eq!(denied, missing);
    assert_eq!(denied, 1);
}

#[test]
fn unknown_and_denied_documents_get_the_same_answer() {
    let mut w = World::new();
    let secret = w.create_doc();
    let c = ConnId(7);
    w.raw_join(c, Access::None, "mallory");
    let request = Message::Request {
        sender_id: PeerId::from("mallory"),
        target_id: PeerId::from("server"),
        document_id: secret,
        data: {
            let mut st = sync::State::new();
            Automerge::new()
                .generate_sync_message(&mut st)
                .unwrap()
                .encode()
        },
    }
    .encode();
    let denied = w.raw_send(c, &request);

    // Same peer, same request, on a server that never heard of the document.
    let mut w2 = World::new();
    w2.raw_join(c, Access::ReadWrite, "mallory");
    let unknown = w2.raw_send(c, &request);
    assert_eq!(denied, unknown);
    assert!(matches!(
        sends(&denied, c).as_slice(),
        [Message::DocUnavailable { document_id, .. }] if *document_id == secret
    ));
    // Nor can a sync for an unknown id create it.
    let sync = sync_frame(
        DocumentId::random(),
        Automerge::new()
            .generate_sync_message(&mut sync::State::new())
            .unwrap()
            .encode(),
        "mallory",
    );
    let outs = w2.raw_send(c, &sync);
    assert!(matches!(
        sends(&outs, c).as_slice(),
        [Message::DocUnavailable { .. }]
    ));
    assert!(!w2.server.has_pending_writes());
    assert_eq!(w2.server.docs_loaded(), 0);
}

#[test]
fn garbage_gets_error_and_close_and_the_others_carry_on() {
    let mut w = World::new();
    let doc = w.create_doc();
    let a = w.add_client("a");
    let b = w.add_client("b");
    w.connect(a, Access::ReadWrite);
    w.connect(b, Access::ReadWrite);
    w.open(a, doc);
    w.open(b, doc);
    w.settle();

    let valid_sync = {
        let base = w.server.document(&doc).unwrap().clone();
        sync_with_new_change(&base, "z").0
    };
    let mut bad_change = valid_sync.clone();
    let n = bad_change.len();
    bad_change[n - 10] ^= 0xff; // inside the change chunk: checksum breaks
    let wrong_types = {
        let mut out = Vec::new();
        ciborium::ser::into_writer(
            &Cbor::Map(vec![
                (Cbor::Text("type".into()), Cbor::Text("sync".into())),
                (Cbor::Text("senderId".into()), Cbor::Integer(5.into())),
                (Cbor::Text("targetId".into()), Cbor::Text("server".into())),
                (Cbor::Text("documentId".into()), Cbor::Text(doc.to_string())),
                (Cbor::Text("data".into()), Cbor::Text("hello".into())),
            ]),
            &mut out,
        )
        .unwrap();
        out
    };
    let full = sync_frame(doc, valid_sync.clone(), "g");
    let mut random = vec![0u8; 64];
    let mut x: u32 = 0x1234_5678;
    for byte in random.iter_mut() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *byte = x as u8;
    }
    random[0] = 0xff; // a CBOR "break" out of place: never valid
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("random bytes", random),
        ("truncated CBOR", full[..full.len() / 2].to_vec()),
        ("wrong field types", wrong_types),
        (
            "not a sync message",
            sync_frame(doc, b"\x42garbage".to_vec(), "g"),
        ),
        ("invalid change bytes", sync_frame(doc, bad_change, "g")),
    ];
    for (k, (what, frame)) in cases.into_iter().enumerate() {
        let c = ConnId(200 + k as u64);
        w.raw_join(c, Access::ReadWrite, &format!("g{k}"));
        let outs = w.raw_send(c, &frame);
        let msgs = sends(&outs, c);
        assert!(
            matches!(msgs.as_slice(), [Message::Error { .. }]),
            "{what}: {msgs:?}"
        );
        assert!(closed(&outs, c), "{what}: not closed");
        assert!(
            outs.iter().all(|o| match o {
                Output::Send { conn, .. } | Output::Close { conn, .. } => *conn == c,
                _ => true,
            }),
            "{what}: others affected"
        );
        // After the close the connection is forgotten.
        assert!(w.raw_send(c, &full).is_empty(), "{what}");
    }
    assert!(!has_key(w.server.document(&doc).unwrap(), "z"));

    // Messages before the handshake are refused too.
    let c = ConnId(300);
    w.server.connect(c, ConnInfo::full_access());
    let outs = w.raw_send(c, &full);
    assert!(matches!(
        sends(&outs, c).as_slice(),
        [Message::Error { .. }]
    ));
    assert!(closed(&outs, c));

    // An unsupported version gets an error and a close.
    let c = ConnId(301);
    w.server.connect(c, ConnInfo::full_access());
    let join2 = Message::Join {
        sender_id: PeerId::from("future"),
        supported_protocol_versions: Some(vec!["2".into()]),
        metadata: None,
    };
    let outs = w.raw_send(c, &join2.encode());
    assert!(matches!(
        sends(&outs, c).as_slice(),
        [Message::Error { message, .. }] if message.contains("version")
    ));
    assert!(closed(&outs, c));

    // The honest peers are unaffected.
    w.edit(a, doc, "after", 1);
    w.settle();
    assert_eq!(w.client_get(b, doc, "after"), Some(1));
}

fn has_key(am: &Automerge, key: &str) -> bool {
    am.get(ROOT, key).unwrap().is_some()
}

#[test]
fn ephemeral_messages_are_relayed_once_to_readers() {
    let mut w = World::new();
    let doc = w.create_doc();
    let a = w.add_client("a");
    let b = w.add_client("b");
    let c = w.add_client("c");
    for i in [a, b, c] {
        w.connect(i, Access::ReadWrite);
        w.open(i, doc);
    }
    w.settle();
    // A peer without access to the document never hears about it.
    let outsider = ConnId(50);
    w.raw_join(outsider, Access::None, "outsider");

    let outs = w.clients[a]
        .engine
        .broadcast_ephemeral(doc, vec![0xa1, 0x01]);
    let frame = match &outs[0] {
        Output::Send { bytes, .. } => bytes.clone(),
        o => panic!("{o:?}"),
    };
    w.client_outputs(a, outs);
    w.deliver();
    for i in [b, c] {
        let got: Vec<_> = w.clients[i]
            .events
            .iter()
            .filter(|e| matches!(e, Output::Ephemeral { sender, data, .. } if sender.0 == "a" && data == &vec![0xa1, 0x01]))
            .collect();
        assert_eq!(got.len(), 1, "client {i}");
    }
    assert!(
        w.clients[a]
            .events
            .iter()
            .all(|e| !matches!(e, Output::Ephemeral { .. }))
    );
    let relayed = w.server.stats().ephemeral_relayed;
    assert_eq!(relayed, 2);

    // The same message again (a mesh loop) is dropped.
    let outs = w.raw_send(conn(a), &frame);
    assert!(outs.is_empty());
    assert_eq!(w.server.stats().ephemeral_duplicates, 1);
    // automerge-repo clients forward what they receive back to the relay, keeping
    // the original sender: that echo is dropped, not relayed as b's.
    let echo = Message::Ephemeral {
        sender_id: PeerId::from("a"),
        target_id: PeerId::from("server"),
        document_id: doc,
        session_id: "s".into(),
        count: 99,
        data: vec![1],
    };
    assert!(w.raw_send(conn(b), &echo.encode()).is_empty());
    assert_eq!(w.server.stats().ephemeral_duplicates, 2);
    assert_eq!(w.server.stats().ephemeral_relayed, relayed);
    assert!(
        !w.server_sent
            .iter()
            .any(|(c, m)| *c == outsider && matches!(m, Message::Ephemeral { .. }))
    );
}

#[test]
fn persisted_sync_state_makes_reconnecting_cheap() {
    let mut w = World::new();
    let doc = w.create_doc();
    let a = w.add_client("field-device");
    w.connect(a, Access::ReadWrite);
    w.open(a, doc);
    w.settle();
    // A long history: 2,000 changes.
    for n in 0..2_000 {
        w.edit(a, doc, &format!("k{}", n % 50), n);
    }
    w.settle();
    assert!(w.clients[a].engine.is_synced(&doc, conn(a)));
    w.disconnect(a);
    w.settle(); // sync states written on both sides

    let first_frame_sizes = |w: &mut World, i: usize| -> (usize, usize) {
        let mark = w.server_sent.len();
        let c = conn(i);
        w.server.connect(c, ConnInfo::full_access());
        w.clients[i].online = true;
        let outs = w.clients[i]
            .engine
            .connect_to_server(c, ConnInfo::full_access());
        w.client_outputs(i, outs);
        // Handshake only, then the client's first document message.
        let (_, join) = w.wire.pop_front().unwrap();
        let outs = w.server.receive(c, &join, w.now, &w.store);
        w.server_outputs(outs);
        let (_, peer) = w.wire.pop_front().unwrap();
        let cl = &mut w.clients[i];
        let outs = cl.engine.receive(c, &peer, w.now, &cl.store);
        w.client_outputs(i, outs);
        let (_, first) = w.wire.pop_front().expect("client sends its first sync");
        let client_first = first.len();
        let outs = w.server.receive(c, &first, w.now, &w.store);
        w.server_outputs(outs);
        let server_first = w.server_sent[mark..]
            .iter()
            .find(|(cc, m)| *cc == c && matches!(m, Message::Sync { .. }))
            .map(|(_, m)| m.encode().len())
            .expect("server answers");
        w.settle();
        (client_first, server_first)
    };
    let (with_client, with_server) = first_frame_sizes(&mut w, a);

    // The same document on a device with no saved sync state.
    let fresh = w.add_client("fresh-device");
    let copy = w.clients[a].engine.document(&doc).unwrap().clone();
    {
        let cl = &mut w.clients[fresh];
        let _ = cl.engine.add_local_document(doc, copy, &cl.store);
    }
    // (add_local_document refuses nothing here: the fresh store is empty.)
    w.commit_client(fresh);
    let (without_client, without_server) = first_frame_sizes(&mut w, fresh);
    println!(
        "first frame after reconnect, 2000-change history: client {with_client} B with saved \
         sync state vs {without_client} B without; server reply {with_server} B vs {without_server} B"
    );
    assert!(
        with_client * 10 < without_client,
        "{with_client} vs {without_client}"
    );
    // The server's answer is small either way here: both sides have the same heads,
    // so it advertises a Bloom filter over nothing.
    assert!(
        with_server <= without_server,
        "{with_server} vs {without_server}"
    );
    assert!(w.clients[fresh].engine.is_synced(&doc, conn(fresh)));
}

#[test]
fn idle_documents_unload_and_reload_with_the_same_heads() {
    let mut w = World::new();
    let doc = w.create_doc();
    let a = w.add_client("a");
    w.connect(a, Access::ReadWrite);
    w.open(a, doc);
    w.settle();
    for n in 0..20 {
        w.edit(a, doc, "n", n);
        w.settle();
    }
    let heads = w.server_heads(doc);
    w.now += 1_000_000;
    assert_eq!(
        w.server.unload_idle(w.now, 60_000),
        0,
        "a peer still uses it"
    );
    w.disconnect(a);
    w.settle();
    assert_eq!(
        w.server.unload_idle(w.now, 60_000),
        0,
        "not idle long enough yet"
    );
    assert_eq!(w.server.unload_idle(w.now + 60_000, 60_000), 1);
    assert_eq!(w.server.docs_loaded(), 0);

    let b = w.add_client("b");
    w.connect(b, Access::ReadWrite);
    w.open(b, doc);
    w.settle();
    assert_eq!(w.server.docs_loaded(), 1);
    // A budget unloads only documents nobody uses.
    let other = w.create_doc();
    assert_eq!(w.server.docs_loaded(), 2);
    assert_eq!(w.server.unload_to_budget(1), 1);
    assert_eq!(w.server.docs_loaded(), 1);
    assert!(w.server.document(&other).is_none());
    assert_eq!(w.server.unload_to_budget(0), 0, "doc has a peer");
    assert_eq!(w.server_heads(doc), heads);
    assert_eq!(
        w.clients[b].engine.document(&doc).unwrap().get_heads(),
        heads
    );
    assert_eq!(w.client_get(b, doc, "n"), Some(19));
}

#[test]
fn a_js_style_join_with_float_integers_and_undefined_storage_id_is_accepted() {
    let mut w = World::new();
    let c = ConnId(9);
    w.server.connect(c, ConnInfo::full_access());
    // {type: "join", senderId, supportedProtocolVersions: ["1"],
    //  peerMetadata: {storageId: undefined, isEphemeral: true}}
    let mut frame = Vec::new();
    ciborium::ser::into_writer(
        &Cbor::Map(vec![
            (Cbor::Text("type".into()), Cbor::Text("join".into())),
            (Cbor::Text("senderId".into()), Cbor::Text("js-tab".into())),
            (
                Cbor::Text("supportedProtocolVersions".into()),
                Cbor::Array(vec![Cbor::Text("1".into())]),
            ),
            (
                Cbor::Text("peerMetadata".into()),
                Cbor::Map(vec![
                    (Cbor::Text("storageId".into()), Cbor::Null),
                    (Cbor::Text("isEphemeral".into()), Cbor::Bool(true)),
                ]),
            ),
        ]),
        &mut frame,
    )
    .unwrap();
    let at = frame.iter().rposition(|b| *b == 0xf6).unwrap();
    frame[at] = 0xf7; // CBOR undefined, as cbor-x writes it
    let outs = w.raw_send(c, &frame);
    match sends(&outs, c).as_slice() {
        [
            Message::Peer {
                selected_protocol_version,
                target_id,
                metadata,
                ..
            },
        ] => {
            assert_eq!(selected_protocol_version, "1");
            assert_eq!(target_id.0, "js-tab");
            assert_eq!(
                metadata.as_ref().unwrap().storage_id,
                Some(StorageId(SERVER_STORAGE.into()))
            );
        }
        other => panic!("{other:?}"),
    }
    // An ephemeral message with a float64 count relays like any other.
    let doc = w.create_doc();
    let mut frame = Vec::new();
    ciborium::ser::into_writer(
        &Cbor::Map(vec![
            (Cbor::Text("type".into()), Cbor::Text("ephemeral".into())),
            (Cbor::Text("senderId".into()), Cbor::Text("js-tab".into())),
            (Cbor::Text("targetId".into()), Cbor::Text("server".into())),
            (Cbor::Text("documentId".into()), Cbor::Text(doc.to_string())),
            (Cbor::Text("sessionId".into()), Cbor::Text("s1".into())),
            (Cbor::Text("count".into()), Cbor::Float(3.0)),
            (Cbor::Text("data".into()), Cbor::Bytes(vec![0xf6])),
        ]),
        &mut frame,
    )
    .unwrap();
    let outs = w.raw_send(c, &frame);
    assert!(outs.iter().any(|o| matches!(o, Output::Ephemeral { .. })));
    assert!(!closed(&outs, c));
}

#[test]
fn incrementals_are_compacted_into_a_snapshot_that_loads_the_same() {
    let mut w = World::new();
    w.server = Engine::new(
        PeerId::from("server"),
        EngineConfig {
            storage_id: Some(StorageId(SERVER_STORAGE.into())),
            compact_min_bytes: 2_048,
            ..EngineConfig::default()
        },
    );
    let doc = w.create_doc();
    let a = w.add_client("a");
    w.connect(a, Access::ReadWrite);
    w.open(a, doc);
    w.settle();
    let mut snapshots = 0;
    let mut max_chunks = 0;
    for n in 0..300 {
        w.edit(a, doc, &format!("key-{}", n % 30), n);
        w.commit_client(a);
        w.deliver();
        if let Some((token, batch)) = w.server.take_write_batch() {
            snapshots += batch.snapshots.len();
            assert!(
                batch
                    .snapshots
                    .iter()
                    .all(|(d, _)| !batch.appended.iter().any(|(e, _)| e == d)),
                "a document is either appended to or compacted in one batch"
            );
            w.store.commit(&batch).unwrap();
            let outs = w.server.commit_succeeded(token, w.now, &w.store);
            w.server_outputs(outs);
        }
        max_chunks = max_chunks.max(w.store.chunk_count(&doc));
        w.settle();
    }
    println!("300 single-change batches: {snapshots} compactions, at most {max_chunks} chunks");
    assert!(snapshots >= 1, "never compacted");
    assert!(max_chunks < 300, "chunks grew without bound: {max_chunks}");
    let stored = w.store.load(&doc).unwrap().unwrap();
    assert!(stored.incremental_bytes <= stored.snapshot_bytes.max(2_048));
    assert_eq!(
        stored_doc(&w.store, &doc).unwrap().get_heads(),
        w.server_heads(doc)
    );
    assert_eq!(w.client_get(a, doc, "key-29"), Some(299));
}

#[test]
fn the_same_peer_joining_again_replaces_the_old_connection() {
    let mut w = World::new();
    let first = ConnId(40);
    let second = ConnId(41);
    w.raw_join(first, Access::ReadWrite, "tab");
    let outs = w.raw_join(second, Access::ReadWrite, "tab");
    assert!(outs.iter().any(|o| matches!(
        o,
        Output::Close { conn, reason: CloseReason::Replaced } if *conn == first
    )));
    assert!(matches!(
        sends(&outs, second).as_slice(),
        [Message::Peer { .. }]
    ));
    assert_eq!(w.server.connections(), 1);
}

#[test]
fn a_flood_while_writing_is_bounded() {
    let mut w = World::new();
    w.server = Engine::new(
        PeerId::from("server"),
        EngineConfig {
            max_queued_per_doc: 3,
            ..EngineConfig::default()
        },
    );
    let doc = w.create_doc();
    let c = ConnId(60);
    w.raw_join(c, Access::ReadWrite, "flooder");
    let base = w.server.document(&doc).unwrap().clone();
    let (data, _) = sync_with_new_change(&base, "a");
    let outs = w.raw_send(c, &sync_frame(doc, data, "flooder"));
    assert!(!closed(&outs, c));
    let (token, batch) = w.server.take_write_batch().unwrap();
    let ping = {
        let mut st = sync::State::new();
        base.generate_sync_message(&mut st).unwrap().encode()
    };
    for _ in 0..3 {
        let outs = w.raw_send(c, &sync_frame(doc, ping.clone(), "flooder"));
        assert!(outs.is_empty(), "queued while writing: {outs:?}");
    }
    let outs = w.raw_send(c, &sync_frame(doc, ping, "flooder"));
    assert!(matches!(
        sends(&outs, c).as_slice(),
        [Message::Error { .. }]
    ));
    assert!(outs.iter().any(|o| matches!(
        o,
        Output::Close {
            reason: CloseReason::Overloaded(_),
            ..
        }
    )));
    // The flooder's change is still committed; nobody is left to acknowledge.
    w.store.commit(&batch).unwrap();
    let outs = w.server.commit_succeeded(token, w.now, &w.store);
    assert!(
        outs.iter().all(|o| !matches!(o, Output::Send { .. })),
        "{outs:?}"
    );
    assert_eq!(get_int(&stored_doc(&w.store, &doc).unwrap(), "a"), Some(99));
}

#[test]
fn a_document_created_by_a_client_is_not_created_on_the_server() {
    let mut w = World::new();
    let a = w.add_client("a");
    w.connect(a, Access::ReadWrite);
    let doc = DocumentId::random();
    let mut am = Automerge::new();
    am.transact::<_, _, automerge::AutomergeError>(|tx| {
        tx.put(ROOT, "mine", 1)?;
        Ok(())
    })
    .unwrap();
    let cl = &mut w.clients[a];
    let outs = cl.engine.add_local_document(doc, am, &cl.store).unwrap();
    assert!(outs.is_empty(), "nothing leaves before the local commit");
    w.settle();
    assert!(
        w.clients[a]
            .events
            .contains(&Output::DocumentUnavailable { conn: conn(a), doc })
    );
    assert!(w.clients[a].engine.is_unavailable(&doc, conn(a)));
    assert!(!w.store.exists(&doc).unwrap());
    assert!(w.clients[a].store.exists(&doc).unwrap(), "kept locally");
}

#[test]
fn a_failed_create_is_forgotten() {
    let mut w = World::new();
    let doc = DocumentId::random();
    w.server
        .create_document(doc, &Automerge::new().save(), &w.store)
        .unwrap();
    assert!(matches!(
        w.server
            .create_document(doc, &Automerge::new().save(), &w.store),
        Err(dealersync_core::protocol::EngineError::AlreadyExists(_))
    ));
    assert!(matches!(
        w.server
            .create_document(DocumentId::random(), b"not automerge", &w.store),
        Err(dealersync_core::protocol::EngineError::InvalidDocument(_))
    ));
    w.store.fail_next_commits(1);
    let (token, batch) = w.server.take_write_batch().unwrap();
    assert_eq!(batch.created.len(), 1);
    let err = w.store.commit(&batch).unwrap_err();
    let outs = w.server.commit_failed(token, &err, w.now, &w.store);
    assert!(
        outs.iter()
            .any(|o| matches!(o, Output::CreateFailed { doc: d, .. } if *d == doc))
    );
    assert_eq!(w.server.docs_loaded(), 0);
    assert!(!w.server.has_pending_writes());
}

#[test]
fn a_revoked_peer_hears_nothing_more() {
    use std::sync::{Arc, Mutex};
    let mut w = World::new();
    let doc = w.create_doc();
    let a = w.add_client("a");
    let b = w.add_client("b");
    let b_access = Arc::new(Mutex::new(Access::ReadWrite));
    w.connect(a, Access::ReadWrite);
    let rule = b_access.clone();
    w.connect_with(b, ConnInfo::with_access(move |_| *rule.lock().unwrap()));
    w.open(a, doc);
    w.open(b, doc);
    w.settle();
    w.edit(a, doc, "v", 1);
    w.settle();
    assert_eq!(w.client_get(b, doc, "v"), Some(1));

    *b_access.lock().unwrap() = Access::None;
    let mark = w.server_sent.len();
    w.edit(a, doc, "v", 2);
    w.settle();
    assert_eq!(w.client_get(b, doc, "v"), Some(1));
    assert!(
        w.server_sent[mark..]
            .iter()
            .all(|(c, m)| *c != conn(b) || matches!(m, Message::DocUnavailable { .. })),
        "{:?}",
        &w.server_sent[mark..]
    );
    // b's next message about the document is answered doc-unavailable.
    w.edit(b, doc, "v", 3);
    w.settle();
    assert!(
        w.clients[b]
            .events
            .contains(&Output::DocumentUnavailable { conn: conn(b), doc })
    );
    assert_eq!(w.client_get(a, doc, "v"), Some(2));
}

/// Random interleavings of edits, deliveries, commits (some failing) and reconnects:
/// afterwards everyone converges and every edit made on a client is on the server.
#[test]
fn chaos_with_failing_commits_and_reconnects_converges_without_loss() {
    for seed in [1u64, 7, 42, 2026] {
        let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut w = World::new();
        let doc = w.create_doc();
        let ids: Vec<usize> = (0..3).map(|i| w.add_client(&format!("c{i}"))).collect();
        for &i in &ids {
            w.connect(i, Access::ReadWrite);
            w.open(i, doc);
        }
        let mut made: Vec<(usize, ChangeHash)> = Vec::new();
        for step in 0..400 {
            w.now += 1;
            let i = ids[next(3) as usize];
            match next(10) {
                0..=2 => made.push((i, w.edit(i, doc, &format!("k{}", next(8)), step))),
                3..=5 => {
                    for _ in 0..next(6) {
                        w.deliver_one();
                    }
                }
                6 => {
                    if next(4) == 0 {
                        w.store.fail_next_commits(1);
                    }
                    w.commit_server();
                }
                7 | 8 => {
                    w.commit_client(i);
                }
                _ => {
                    if w.clients[i].online {
                        w.disconnect(i);
                    } else {
                        w.connect(i, Access::ReadWrite);
                    }
                }
            }
        }
        w.store.fail_next_commits(0);
        for &i in &ids {
            if !w.clients[i].online {
                w.connect(i, Access::ReadWrite);
            }
        }
        w.settle();
        let heads = w.server_heads(doc);
        let durable = stored_doc(&w.store, &doc).unwrap();
        assert_eq!(durable.get_heads(), heads, "seed {seed}");
        for &i in &ids {
            assert_eq!(
                w.clients[i].engine.document(&doc).unwrap().get_heads(),
                heads,
                "seed {seed}: client {i}"
            );
        }
        for (i, h) in &made {
            assert!(has(&durable, h), "seed {seed}: edit of client {i} lost");
        }
        println!(
            "seed {seed}: {} edits, {} server batches failed, {} committed",
            made.len(),
            w.server.stats().batches_failed,
            w.server.stats().batches_committed
        );
    }
}

/// Every change ends up acknowledged, whatever the interleaving: a writer learns the
/// server's heads once they contain its changes, and the server learns a client's
/// heads once they contain what it forwarded. Two writers over two hundred
/// seeded interleavings of deliveries (each direction in order), commits and edits.
///
/// This caught automerge recording our heads as already sent to a peer when that
/// peer said it had exactly them while they were still uncommitted: after the
/// commit the engine stayed silent and the writer never got its acknowledgement.
#[test]
fn every_change_is_acknowledged_whatever_the_interleaving() {
    for seed in 0..200u64 {
        let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut w = World::new();
        let doc = w.create_doc();
        let ids: Vec<usize> = ["w0", "w1"].iter().map(|n| w.add_client(n)).collect();
        for &i in &ids {
            w.connect(i, Access::ReadWrite);
            w.open(i, doc);
        }
        // The server's batch stays in flight across steps, so messages queue
        // behind it and are applied together when it is committed.
        let mut server_batch = None;
        let mut edits_left = 8;
        for step in 0..100 {
            w.now += 1;
            let i = ids[next(2) as usize];
            match next(6) {
                0 => {
                    w.deliver_oldest_towards(true);
                }
                1 if server_batch.is_none() => server_batch = w.server.take_write_batch(),
                2 => {
                    if let Some((token, batch)) = server_batch.take() {
                        w.store.commit(&batch).unwrap();
                        let outs = w.server.commit_succeeded(token, w.now, &w.store);
                        w.server_outputs(outs);
                    }
                }
                3 => {
                    w.deliver_oldest_towards(false);
                }
                4 if edits_left > 0 => {
                    edits_left -= 1;
                    w.edit(i, doc, &format!("k{i}"), step);
                }
                _ => {
                    w.commit_client(i);
                }
            }
        }
        if let Some((token, batch)) = server_batch {
            w.store.commit(&batch).unwrap();
            let outs = w.server.commit_succeeded(token, w.now, &w.store);
            w.server_outputs(outs);
        }
        w.settle();
        let heads = w.server_heads(doc);
        for &i in &ids {
            let client = &w.clients[i].engine;
            assert_eq!(
                client.document(&doc).unwrap().get_heads(),
                heads,
                "seed {seed}: client {i} converged"
            );
            assert_eq!(
                client.peer_heads(&doc, conn(i)),
                Some(heads.clone()),
                "seed {seed}: client {i} never heard the server acknowledge its changes"
            );
            assert!(client.is_synced(&doc, conn(i)), "seed {seed}: client {i}");
            assert_eq!(
                w.server.peer_heads(&doc, conn(i)),
                Some(heads.clone()),
                "seed {seed}: the server never heard client {i} has everything"
            );
        }
    }
}

#[test]
fn changes_waiting_for_a_dependency_are_audited_when_applied() {
    let mut w = World::new();
    let doc = w.create_doc();
    let c = ConnId(70);
    w.raw_join(c, Access::ReadWrite, "out-of-order");
    let base = w.server.document(&doc).unwrap().clone();
    let mut fork = base.fork();
    for v in 0..2 {
        fork.transact::<_, _, automerge::AutomergeError>(|tx| {
            tx.put(ROOT, "v", v)?;
            Ok(())
        })
        .unwrap();
    }
    let changes = fork.get_changes(&base.get_heads());
    let msg = |change: &automerge::Change| {
        sync::Message {
            heads: fork.get_heads(),
            need: vec![],
            have: vec![],
            changes: vec![change.raw_bytes().to_vec()].into(),
            flags: None,
            version: sync::MessageVersion::V1,
        }
        .encode()
    };
    // The second change first: automerge keeps it until its dependency arrives.
    w.raw_send(c, &sync_frame(doc, msg(&changes[1]), "out-of-order"));
    assert!(!w.server.has_pending_writes());
    w.raw_send(c, &sync_frame(doc, msg(&changes[0]), "out-of-order"));
    let (token, batch) = w.server.take_write_batch().unwrap();
    let mut audited: Vec<_> = batch.audit.iter().map(|a| a.change_hash.clone()).collect();
    let mut expected: Vec<_> = changes.iter().map(|c| c.hash().to_string()).collect();
    audited.sort();
    expected.sort();
    assert_eq!(audited, expected);
    w.store.commit(&batch).unwrap();
    w.server.commit_succeeded(token, w.now, &w.store);
    assert_eq!(get_int(&stored_doc(&w.store, &doc).unwrap(), "v"), Some(1));
}

#[test]
fn messages_queued_during_a_commit_are_applied_in_one_call() {
    let mut w = World::new();
    let doc = w.create_doc();
    let ids: Vec<usize> = ["u0", "u1", "u2"].iter().map(|n| w.add_client(n)).collect();
    for &i in &ids {
        let user = format!("user{i}");
        w.connect_with(
            i,
            ConnInfo {
                access: Box::new(|_| Access::ReadWrite),
                user: Some(user),
                device: Some(format!("phone{i}")),
            },
        );
        w.open(i, doc);
    }
    w.settle();
    // The server starts writing something, then every client sends a change.
    w.edit(ids[0], doc, "first", 1);
    w.commit_client(ids[0]);
    w.deliver();
    let (token, batch) = w.server.take_write_batch().unwrap();
    let mut heads = Vec::new();
    for &i in &ids {
        heads.push((i, w.edit(i, doc, &format!("k{i}"), i as i64)));
        w.commit_client(i);
    }
    w.deliver();
    let calls = w.server.stats().apply_calls;
    w.store.commit(&batch).unwrap();
    let outs = w.server.commit_succeeded(token, w.now, &w.store);
    w.server_outputs(outs);
    assert_eq!(
        w.server.stats().apply_calls,
        calls + 1,
        "one apply for the queue"
    );
    // A change held back on its client by a Bloom filter false positive arrives in
    // a later round; every change ends up audited with its sender either way.
    w.settle();
    let audit = w.store.audit();
    for (i, h) in &heads {
        let rec = audit
            .iter()
            .find(|a| a.change_hash == h.to_string())
            .unwrap_or_else(|| panic!("change of client {i} not audited"));
        assert_eq!(rec.user.as_deref(), Some(format!("user{i}").as_str()));
        assert_eq!(rec.device.as_deref(), Some(format!("phone{i}").as_str()));
    }
    for &i in &ids {
        for &j in &ids {
            assert_eq!(w.client_get(i, doc, &format!("k{j}")), Some(j as i64));
        }
    }
}

/// Not a test: prints what one sync round costs against history length.
/// `cargo test -p dealersync-core --release --test engine -- --ignored --nocapture round_cost`
#[test]
#[ignore = "a measurement; run it in release"]
fn round_cost_against_history_length() {
    for history in [1_000usize, 10_000, 50_000] {
        let mut w = World::new();
        w.verify = false;
        let doc = w.create_doc();
        {
            let am = w.server.document_mut(&doc).unwrap();
            for i in 0..history {
                am.transact::<_, _, automerge::AutomergeError>(|tx| {
                    tx.put(ROOT, format!("k{}", i % 100), i as i64)?;
                    Ok(())
                })
                .unwrap();
            }
            w.server.local_change(&doc).unwrap();
        }
        w.commit_server();
        let a = w.add_client("a");
        w.connect(a, Access::ReadWrite);
        w.open(a, doc);
        w.settle();
        let rounds = 100;
        let start = std::time::Instant::now();
        for r in 0..rounds {
            w.edit(a, doc, "round", r);
            w.settle();
        }
        let per_round = start.elapsed().as_secs_f64() * 1e6 / rounds as f64;
        let am = w.server.document(&doc).unwrap();
        let start = std::time::Instant::now();
        for _ in 0..100 {
            std::hint::black_box(am.save_after(&am.get_heads()));
        }
        let save_after = start.elapsed().as_secs_f64() * 1e6 / 100.0;
        println!(
            "history {history:>6}: {per_round:>8.0} us per round (edit, client commit, server \
             apply + commit + ack, client apply + commit); save_after {save_after:.1} us"
        );
    }
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn valid_frames(doc: DocumentId) -> Vec<Vec<u8>> {
        let base = {
            let mut am = Automerge::new();
            am.transact::<_, _, automerge::AutomergeError>(|tx| {
                tx.put(ROOT, "k", 1)?;
                Ok(())
            })
            .unwrap();
            am
        };
        vec![
            sync_frame(doc, sync_with_new_change(&base, "x").0, "fuzzer"),
            Message::Ephemeral {
                sender_id: PeerId::from("fuzzer"),
                target_id: PeerId::from("server"),
                document_id: doc,
                session_id: "s".into(),
                count: 1,
                data: vec![0xa0],
            }
            .encode(),
            Message::Join {
                sender_id: PeerId::from("fuzzer"),
                supported_protocol_versions: Some(vec!["1".into()]),
                metadata: None,
            }
            .encode(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Mutated and random frames never panic the server; every `error` it sends
        /// is followed by a close of that connection, and other connections are
        /// never touched.
        #[test]
        fn hostile_frames_never_panic(
            pick in 0usize..3,
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
            cut in any::<prop::sample::Index>(),
            random in proptest::collection::vec(any::<u8>(), 0..200),
            use_random in any::<bool>(),
        ) {
            let mut w = World::new();
            let doc = w.create_doc();
            let c = ConnId(90);
            w.raw_join(c, Access::ReadWrite, "fuzzer");
            let frame = if use_random {
                random
            } else {
                let mut f = valid_frames(doc)[pick].clone();
                for (i, b) in &flips {
                    let at = i.index(f.len());
                    f[at] ^= *b;
                }
                let keep = cut.index(f.len() + 1);
                f.truncate(keep.max(1));
                f
            };
            let outs = w.raw_send(c, &frame);
            let errored = sends(&outs, c).iter().any(|m| matches!(m, Message::Error { message, .. } if !message.contains("read-only")));
            prop_assert!(!errored || closed(&outs, c));
            for o in &outs {
                if let Output::Send { conn, .. } | Output::Close { conn, .. } = o {
                    prop_assert_eq!(*conn, c);
                }
            }
            // The server still works for everyone else.
            let a = w.add_client("honest");
            w.connect(a, Access::ReadWrite);
            w.open(a, doc);
            w.settle();
            prop_assert!(w.clients[a].engine.is_synced(&doc, conn(a)));
        }
    }
}

/// A writer that behaves like automerge-repo 2.5's DocSynchronizer: it answers a
/// received sync message with `generate_sync_message` on the document as it was
/// *before* the message was applied, and sends its own edits only when a throttle
/// timer fires, not per edit.
struct JsLikeWriter {
    am: Automerge,
    sync: sync::State,
    out: VecDeque<Vec<u8>>,
    /// Frames the server sent it that it has read.
    read: usize,
    /// Heads of the last `sync` the server sent it.
    acked: Option<Vec<ChangeHash>>,
    throttle_pending: bool,
}

impl JsLikeWriter {
    fn send(&mut self, doc: DocumentId, before: Option<Automerge>) {
        let am = before.as_ref().unwrap_or(&self.am);
        if let Some(m) = am.generate_sync_message(&mut self.sync) {
            self.out.push_back(sync_frame(doc, m.encode(), "js"));
        }
    }

    /// Reads the next frame the server sent on `c`; false if there is none.
    fn receive_one(&mut self, w: &World, c: ConnId, doc: DocumentId) -> bool {
        let Some(pos) = w.server_sent[self.read..]
            .iter()
            .position(|(conn, _)| *conn == c)
        else {
            self.read = w.server_sent.len();
            return false;
        };
        let (_, msg) = &w.server_sent[self.read + pos];
        self.read += pos + 1;
        if let Message::Sync { data, .. } | Message::Request { data, .. } = msg {
            let m = sync::Message::decode(data).unwrap();
            if matches!(msg, Message::Sync { .. }) {
                self.acked = Some(m.heads.clone());
            }
            let before = self.am.clone();
            self.am.receive_sync_message(&mut self.sync, m).unwrap();
            self.send(doc, Some(before));
        }
        true
    }
}

/// Every writer hears the server advertise its last change once it is committed,
/// when the writer is the stock JS client rather than our engine (which also resends
/// while settling, and so could hide a missing acknowledgement). The JS client sends
/// its heads again without changes right after the change itself; the server once
/// recorded those uncommitted heads as sent and stayed silent after the commit
/// (in more than a third of these interleavings, and one round in 15 against the
/// real client in tests/tests/interop.rs).
#[test]
fn a_js_like_writer_is_acknowledged_whatever_the_interleaving() {
    let mut failures = Vec::new();
    for seed in 0..100u64 {
        let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut w = World::new();
        let doc = w.create_doc();
        let c = ConnId(90);
        let outs = w.raw_join(c, Access::ReadWrite, "js");
        w.server_outputs(outs);
        let mut js = JsLikeWriter {
            am: Automerge::new(),
            sync: sync::State::new(),
            out: VecDeque::new(),
            read: 0,
            acked: None,
            throttle_pending: false,
        };
        js.send(doc, None);
        let mut server_batch = None;
        let mut edits_left = 12;
        for step in 0..150 {
            w.now += 1;
            match next(7) {
                0 | 1 => {
                    if let Some(f) = js.out.pop_front() {
                        let outs = w.raw_send(c, &f);
                        w.server_outputs(outs);
                    }
                }
                2 if server_batch.is_none() => server_batch = w.server.take_write_batch(),
                3 => {
                    if let Some((token, batch)) = server_batch.take() {
                        w.store.commit(&batch).unwrap();
                        let outs = w.server.commit_succeeded(token, w.now, &w.store);
                        w.server_outputs(outs);
                    }
                }
                4 => {
                    js.receive_one(&w, c, doc);
                }
                5 if edits_left > 0 && !js.am.get_heads().is_empty() => {
                    edits_left -= 1;
                    js.am
                        .transact::<_, _, automerge::AutomergeError>(|tx| {
                            tx.put(ROOT, format!("k{step}"), step)?;
                            Ok(())
                        })
                        .unwrap();
                    js.throttle_pending = true;
                }
                _ => {
                    if std::mem::take(&mut js.throttle_pending) {
                        js.send(doc, None);
                    }
                }
            }
        }
        if let Some((token, batch)) = server_batch {
            w.store.commit(&batch).unwrap();
            let outs = w.server.commit_succeeded(token, w.now, &w.store);
            w.server_outputs(outs);
        }
        for _ in 0..10_000 {
            w.now += 1;
            let mut any = false;
            if std::mem::take(&mut js.throttle_pending) {
                js.send(doc, None);
            }
            while let Some(f) = js.out.pop_front() {
                any = true;
                let outs = w.raw_send(c, &f);
                w.server_outputs(outs);
            }
            any |= w.commit_server();
            while js.receive_one(&w, c, doc) {
                any = true;
            }
            if !any {
                break;
            }
        }
        let heads = js.am.get_heads();
        assert_eq!(w.server_heads(doc), heads, "seed {seed}: server has it all");
        if js.acked.as_ref() != Some(&heads) {
            failures.push(format!(
                "seed {seed}: writer at {heads:?}, server last advertised {:?}",
                js.acked
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} unacknowledged: {failures:#?}",
        failures.len()
    );
}
