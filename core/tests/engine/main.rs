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
    PeerId, ReceivePath, StorageId,
};
use dealersync_core::store::Store;

const SERVER_STORAGE: &str = "server-storage";

fn server_engine() -> Engine {
    server_engine_on(ReceivePath::default())
}

/// The server's engine with the given receive path.
fn server_engine_on(receive_path: ReceivePath) -> Engine {
    Engine::new(
        PeerId::from("server"),
        EngineConfig {
            storage_id: Some(StorageId(SERVER_STORAGE.into())),
            receive_path,
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

    /// Clients with these names, connected read-write, syncing `doc`, settled.
    fn clients_syncing(&mut self, names: &[&str], doc: DocumentId) -> Vec<usize> {
        let ids: Vec<usize> = names.iter().map(|n| self.add_client(n)).collect();
        for &i in &ids {
            self.connect(i, Access::ReadWrite);
            self.open(i, doc);
        }
        self.settle();
        ids
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

mod access;
mod fuzz;
mod hostile_input;
mod interleavings;
mod lifecycle;
mod sessions;
mod sync_basics;
