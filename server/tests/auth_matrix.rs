//! The access matrix through the sync engine: a server engine on the real SQLite store
//! whose connections get their access from the registry (`Registry::conn_info`), and a
//! client engine per case. Each role × own site, sibling, child, parent and network
//! document × read and write.
//!
//! - read: the client opens the document; it either syncs the site's content or gets
//!   `doc-unavailable`, the same answer as for an id that does not exist.
//! - write: the client edits and syncs; the change is stored (read-write), or neither
//!   applied nor stored, the stored document byte-identical (read-only).

mod common;

use std::collections::VecDeque;
use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{Automerge, ROOT, ReadDoc};
use dealersync_core::access::{Access, Role};
use dealersync_core::protocol::memory::MemoryStore;
use dealersync_core::protocol::{
    ConnId, ConnInfo, DocumentId, Engine, EngineConfig, Message, Output, PeerId, StorageId,
};
use dealersync_core::store::Store;
use dealersync_server::auth::TokenRequest;

const CONN: ConnId = ConnId(1);

/// The server side: store, registry and authenticator.
type Net = common::Network;

/// hq → dc-north → agent-a; hq → dc-south.
fn network() -> Net {
    common::network(str::to_string)
}

/// One client connected to the server engine through an in-memory wire.
struct Session<'a> {
    net: &'a Net,
    server: Engine,
    client: Engine,
    client_store: MemoryStore,
    to_server: VecDeque<Vec<u8>>,
    to_client: VecDeque<Vec<u8>>,
    client_events: Vec<Output>,
    errors_to_client: Vec<String>,
    now: i64,
    user: String,
}

impl<'a> Session<'a> {
    fn open(net: &'a Net, role: Role, site: &str) -> Session<'a> {
        // Authenticate as the relay does: verify the token, derive the connection.
        let token = net
            .auth
            .issue(&TokenRequest {
                sub: format!("{role}-user"),
                role,
                site: site.into(),
                device: Some("tablet".into()),
                ttl: Duration::from_secs(600),
            })
            .unwrap()
            .token;
        let claims = net.auth.verify(&token).unwrap();
        let mut s = Session {
            net,
            server: Engine::new(
                PeerId::from("server"),
                EngineConfig {
                    storage_id: Some(StorageId("server-storage".into())),
                    ..EngineConfig::default()
                },
            ),
            client: Engine::new(
                PeerId::from("client"),
                EngineConfig {
                    storage_id: Some(StorageId("client-storage".into())),
                    ..EngineConfig::default()
                },
            ),
            client_store: MemoryStore::new(),
            to_server: VecDeque::new(),
            to_client: VecDeque::new(),
            client_events: Vec::new(),
            errors_to_client: Vec::new(),
            now: 1_000,
            user: claims.sub.clone(),
        };
        s.server.connect(CONN, net.registry.conn_info(&claims));
        let outs = s.client.connect_to_server(CONN, ConnInfo::full_access());
        s.client_out(outs);
        s.pump();
        s
    }

    fn client_out(&mut self, outs: Vec<Output>) {
        for o in outs {
            match o {
                Output::Send { bytes, .. } => self.to_server.push_back(bytes),
                other => self.client_events.push(other),
            }
        }
    }

    fn server_out(&mut self, outs: Vec<Output>) {
        for o in outs {
            if let Output::Send { bytes, .. } = o {
                if let Ok(Message::Error { message, .. }) = Message::decode(&bytes) {
                    self.errors_to_client.push(message);
                }
                self.to_client.push_back(bytes);
            }
        }
    }

    /// Delivers frames and commits batches until nothing moves (bounded, so a livelock
    /// fails the test instead of hanging it).
    fn pump(&mut self) {
        for _ in 0..10_000 {
            self.now += 1;
            let mut moved = false;
            if let Some(f) = self.to_server.pop_front() {
                let outs = self
                    .server
                    .receive(CONN, &f, self.now, self.net.store.as_ref());
                self.server_out(outs);
                moved = true;
            }
            if let Some(f) = self.to_client.pop_front() {
                let outs = self.client.receive(CONN, &f, self.now, &self.client_store);
                self.client_out(outs);
                moved = true;
            }
            if let Some((token, batch)) = self.server.take_write_batch() {
                self.net.store.commit(&batch).unwrap();
                let outs = self
                    .server
                    .commit_succeeded(token, self.now, self.net.store.as_ref());
                self.server_out(outs);
                moved = true;
            }
            if let Some((token, batch)) = self.client.take_write_batch() {
                self.client_store.commit(&batch).unwrap();
                let outs = self
                    .client
                    .commit_succeeded(token, self.now, &self.client_store);
                self.client_out(outs);
                moved = true;
            }
            if !moved {
                return;
            }
        }
        panic!("the session did not settle");
    }

    /// Opens `doc` on the client; true if its content arrived, false if the server
    /// answered `doc-unavailable`.
    fn read(&mut self, doc: DocumentId) -> bool {
        let outs = self.client.open(doc, &self.client_store).unwrap();
        self.client_out(outs);
        self.pump();
        let unavailable = self
            .client_events
            .iter()
            .any(|e| matches!(e, Output::DocumentUnavailable { doc: d, .. } if *d == doc));
        let synced = self
            .client
            .document(&doc)
            .is_some_and(|am| am.get(ROOT, "schemaVersion").unwrap().is_some());
        assert_ne!(unavailable, synced, "exactly one outcome for {doc}");
        synced
    }

    /// Edits a document the client has and syncs; true if the server stored the edit.
    fn write(&mut self, doc: DocumentId, probe: &str) -> bool {
        let before = stored(self.net, &doc);
        let errors = self.errors_to_client.len();
        let am = self.client.document_mut(&doc).expect("read first");
        am.transact::<_, _, automerge::AutomergeError>(|tx| {
            tx.put(ROOT, probe, "written by the client")?;
            Ok(())
        })
        .unwrap();
        self.client.local_change(&doc).unwrap();
        self.pump();
        let after = stored(self.net, &doc);
        let has_probe = Automerge::load(&after)
            .unwrap()
            .get(ROOT, probe)
            .unwrap()
            .is_some();
        if has_probe {
            assert_eq!(self.errors_to_client.len(), errors, "accepted yet an error");
            // The accepted change is audited with the token's user and device.
            let audit = self.net.registry.audit(&doc, 10_000).unwrap();
            assert!(
                audit
                    .iter()
                    .any(|a| a.user.as_deref() == Some(self.user.as_str())
                        && a.device.as_deref() == Some("tablet")),
                "no audit row for {} in {audit:?}",
                self.user
            );
        } else {
            assert_eq!(before, after, "a refused write changed the stored bytes");
            // Not applied in memory either, so not forwarded to anyone. (This client
            // honours automerge's read-only sync flag and does not even send the
            // change; a client that sends it anyway gets an `error`, which the
            // engine's own tests cover.)
            let in_memory = self.server.document(&doc).expect("loaded while synced");
            assert!(in_memory.get(ROOT, probe).unwrap().is_none());
        }
        has_probe
    }
}

fn stored(net: &Net, doc: &DocumentId) -> Vec<u8> {
    net.store.load(doc).unwrap().unwrap().chunks.concat()
}

#[test]
fn role_by_relation_by_operation_through_the_engine() {
    use Access::{None as N, ReadOnly as R, ReadWrite as W};
    let net = network();
    let doc = |site: &str| net.registry.site(site).unwrap().document_id;
    let network_doc = net.registry.network_document().unwrap().unwrap();
    // From a user of dc-north: own, sibling, child, parent, network.
    let targets = [
        ("own", doc("dc-north")),
        ("sibling", doc("dc-south")),
        ("child", doc("agent-a")),
        ("parent", doc("hq")),
        ("network", network_doc),
    ];
    let matrix: [(Role, [Access; 5]); 4] = [
        (Role::Consultant, [W, N, N, N, R]),
        (Role::Manager, [W, N, W, N, R]),
        (Role::HeadOffice, [R, R, R, R, W]),
        (Role::Admin, [W, W, W, W, W]),
    ];
    for (role, row) in matrix {
        for ((name, target), want) in targets.iter().zip(row) {
            // A fresh connection and probe key per cell, so one cell's writes cannot
            // mask another's.
            let mut s = Session::open(&net, role, "dc-north");
            let readable = s.read(*target);
            assert_eq!(readable, want.can_read(), "{role} read {name}");
            if readable {
                let wrote = s.write(*target, &format!("probe-{role}-{name}"));
                assert_eq!(wrote, want.can_write(), "{role} write {name}");
            }
        }
    }
}

#[test]
fn denied_and_unknown_documents_get_the_same_answer() {
    let net = network();
    let denied = net.registry.site("dc-south").unwrap().document_id;
    let unknown = DocumentId::random();
    let mut s = Session::open(&net, Role::Consultant, "dc-north");
    assert!(!s.read(denied));
    assert!(!s.read(unknown));
    let unavailable: Vec<DocumentId> = s
        .client_events
        .iter()
        .filter_map(|e| match e {
            Output::DocumentUnavailable { doc, .. } => Some(*doc),
            _ => None,
        })
        .collect();
    assert_eq!(unavailable, [denied, unknown]);
}
