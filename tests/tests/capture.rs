//! Records real traffic for the fuzz seed corpus (fuzz/corpus/, docs/fuzzing.md).
//!
//! A recording relay (dealersync's engine with the in-memory store behind a plain
//! WebSocket server, as in docs/protocol.md's check against the JS client) holds the
//! fuzz targets' document (`dealersync_core::fuzzing::seed_document`, under
//! `fuzzing::document_id()`), so that the captured sync messages name heads the
//! `engine` target's server has. Unmodified automerge-repo JS clients
//! (tests/js/client.mjs) and a Rust engine client (the field client's engine) find
//! it, edit it concurrently, ask for a document that does not exist, go offline and
//! come back. Every frame is recorded in both directions, and written as:
//! - `frame/`: each distinct frame, from clients and from the relay;
//! - `sync_message/`: the `data` of each distinct `sync`/`request`;
//! - `engine/`: each client connection's frames in order, as an `EngineInput`
//!   (commit after every frame, and once with every frame arriving mid-commit).
//!
//! ```text
//! DEALERSYNC_CAPTURE_DIR=/tmp/capture cargo test -p dealersync-tests --test capture -- --ignored
//! ```
//! then pick a few dozen small files into fuzz/corpus/<target>/.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use automerge::ROOT;
use automerge::transaction::Transactable;
use dealersync_core::fuzzing::{self, EngineInput, ctl};
use dealersync_core::protocol::memory::MemoryStore;
use dealersync_core::protocol::{
    ConnId, ConnInfo, DocumentId, Engine, EngineConfig, Message, Output,
};
use dealersync_core::store::Store;
use dealersync_tests::{JsClient, RustClient};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMessage;

const DEADLINE: Duration = Duration::from_secs(30);

/// One recorded frame: the connection, whether a client sent it, the bytes.
type Record = (ConnId, bool, Vec<u8>);

struct Relay {
    engine: Engine,
    store: MemoryStore,
    peers: HashMap<ConnId, mpsc::UnboundedSender<Option<Vec<u8>>>>,
    records: Vec<Record>,
}

type Shared = Arc<Mutex<Relay>>;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Relay {
    fn dispatch(&mut self, outs: Vec<Output>) {
        for o in outs {
            match o {
                Output::Send { conn, bytes, .. } => {
                    self.records.push((conn, false, bytes.clone()));
                    if let Some(tx) = self.peers.get(&conn) {
                        let _ = tx.send(Some(bytes));
                    }
                }
                Output::Close { conn, .. } => {
                    if let Some(tx) = self.peers.remove(&conn) {
                        let _ = tx.send(None);
                    }
                }
                _ => {}
            }
        }
    }

    fn commit(&mut self) {
        while let Some((token, batch)) = self.engine.take_write_batch() {
            let outs = match self.store.commit(&batch) {
                Ok(()) => self.engine.commit_succeeded(token, now_ms(), &self.store),
                Err(e) => self.engine.commit_failed(token, &e, now_ms(), &self.store),
            };
            self.dispatch(outs);
        }
    }
}

async fn serve(relay: Shared, listener: tokio::net::TcpListener) {
    let mut next = 1;
    while let Ok((tcp, _)) = listener.accept().await {
        let conn = ConnId(next);
        next += 1;
        let relay = relay.clone();
        tokio::spawn(async move {
            let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
                return;
            };
            let (mut sink, mut stream) = ws.split();
            let (tx, mut rx) = mpsc::unbounded_channel::<Option<Vec<u8>>>();
            {
                let mut r = relay.lock().unwrap();
                r.peers.insert(conn, tx);
                r.engine.connect(conn, ConnInfo::full_access());
            }
            tokio::spawn(async move {
                while let Some(frame) = rx.recv().await {
                    let sent = match frame {
                        Some(bytes) => sink.send(WsMessage::Binary(bytes.into())).await,
                        None => sink.close().await,
                    };
                    if sent.is_err() {
                        break;
                    }
                }
            });
            while let Some(Ok(msg)) = stream.next().await {
                let WsMessage::Binary(frame) = msg else {
                    continue;
                };
                let mut guard = relay.lock().unwrap();
                let r = &mut *guard;
                r.records.push((conn, true, frame.to_vec()));
                let outs = r.engine.receive(conn, &frame, now_ms(), &r.store);
                r.dispatch(outs);
                r.commit();
            }
            let mut r = relay.lock().unwrap();
            r.engine.disconnect(conn);
            r.peers.remove(&conn);
            r.commit();
        });
    }
}

#[tokio::test]
#[ignore = "writes a corpus; run with DEALERSYNC_CAPTURE_DIR set (docs/fuzzing.md)"]
async fn capture_seed_corpus() -> anyhow::Result<()> {
    let Some(dir) = std::env::var_os("DEALERSYNC_CAPTURE_DIR").map(PathBuf::from) else {
        return Ok(());
    };
    let doc = fuzzing::document_id();
    let store = MemoryStore::new();
    let mut engine = Engine::new(
        "relay".into(),
        EngineConfig {
            storage_id: Some(dealersync_core::protocol::StorageId("capture-relay".into())),
            ..EngineConfig::default()
        },
    );
    engine.create_document(doc, &fuzzing::seed_document().save(), &store)?;
    let relay = Arc::new(Mutex::new(Relay {
        engine,
        store,
        peers: HashMap::new(),
        records: Vec::new(),
    }));
    relay.lock().unwrap().commit();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("ws://{}/sync", listener.local_addr()?);
    let server = tokio::spawn(serve(relay.clone(), listener));

    scenario(&url, &doc).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.abort();

    let records = std::mem::take(&mut relay.lock().unwrap().records);
    write_corpus(&dir, &records)?;
    Ok(())
}

async fn scenario(url: &str, doc: &DocumentId) -> anyhow::Result<()> {
    let doc_url = doc.url();
    let alice = JsClient::spawn("alice", url).await?;
    let bob = JsClient::spawn("bob", url).await?;
    alice.find(&doc_url, DEADLINE).await?;
    bob.find(&doc_url, DEADLINE).await?;
    let a = alice
        .change(
            &doc_url,
            json!([
                {"op": "set", "path": ["customers", "c1"], "value": {"name": "王伟", "phone": "13800000000"}},
                {"op": "increment", "path": ["counter"], "by": 2},
                {"op": "set", "path": ["prose"], "value": {"$text": "hello"}},
                {"op": "set", "path": ["when"], "value": {"$timestamp": 1_700_000_000_000_i64}},
                {"op": "set", "path": ["blob"], "value": {"$bytes": "00ff10"}},
            ]),
        )
        .await?;
    bob.wait_heads(&doc_url, &a.heads, DEADLINE).await?;
    bob.call(json!({"cmd": "offline"})).await?;
    let b = bob
        .change(
            &doc_url,
            json!([{"op": "set", "path": ["customers", "c2"], "value": {"name": "李娜"}},
                   {"op": "delete", "path": ["customers", "c1"]}]),
        )
        .await?;
    for i in 0..3 {
        alice
            .set(&doc_url, &["orders", &format!("o{i}")], json!(i))
            .await?;
    }
    bob.call(json!({"cmd": "online", "timeoutMs": 10_000}))
        .await?;
    alice.wait_heads(&doc_url, &b.heads, DEADLINE).await?;

    // The Rust engine client (the field client's engine) edits concurrently.
    let mut rust = RustClient::connect("rust", url, DEADLINE).await?;
    rust.open(doc, DEADLINE).await?;
    let heads = rust
        .change(doc, |tx| {
            tx.put(ROOT, "fromRust", "scalar")?;
            tx.put(ROOT, "schemaVersion", 2)?;
            Ok(())
        })
        .await?;
    rust.wait_synced(doc, DEADLINE).await?;
    let hex: Vec<String> = heads.iter().map(|h| h.to_string()).collect();
    alice.wait_heads(&doc_url, &hex, DEADLINE).await?;

    // A document nobody has, and one only a client has.
    let _ = alice
        .find(&DocumentId::random().url(), Duration::from_secs(3))
        .await;
    let _ = bob.create(json!({"local": true})).await?;
    let carol = JsClient::spawn("carol", url).await?;
    carol.find(&doc_url, DEADLINE).await?;
    carol.wait_heads(&doc_url, &hex, DEADLINE).await?;

    rust.close().await?;
    for c in [alice, bob, carol] {
        c.close().await?;
    }
    Ok(())
}

fn write_corpus(dir: &std::path::Path, records: &[Record]) -> anyhow::Result<()> {
    for t in ["frame", "sync_message", "engine"] {
        std::fs::create_dir_all(dir.join(t))?;
    }
    let mut seen = BTreeSet::new();
    let mut seen_data = BTreeSet::new();
    let mut by_conn: HashMap<ConnId, Vec<Vec<u8>>> = HashMap::new();
    for (i, (conn, from_client, bytes)) in records.iter().enumerate() {
        let side = if *from_client { "client" } else { "relay" };
        let msg = Message::decode(bytes).ok();
        let kind = msg.as_ref().map_or("bad", |m| m.kind().as_str());
        if seen.insert(bytes.clone()) {
            std::fs::write(
                dir.join(format!("frame/{i:04}-{side}-{kind}-conn{}", conn.0)),
                bytes,
            )?;
        }
        if let Some(Message::Sync { data, .. } | Message::Request { data, .. }) = &msg
            && seen_data.insert(data.clone())
        {
            std::fs::write(
                dir.join(format!("sync_message/{i:04}-{side}-{kind}-conn{}", conn.0)),
                data,
            )?;
        }
        if *from_client {
            by_conn.entry(*conn).or_default().push(bytes.clone());
        }
    }
    for (conn, frames) in by_conn {
        for (name, c) in [("commit", ctl::COMMIT), ("mid-commit", ctl::DURING_WRITE)] {
            let input = EngineInput {
                setup: 0,
                records: frames.iter().map(|f| (c, f.clone())).collect(),
            };
            std::fs::write(
                dir.join(format!("engine/conn{}-{name}", conn.0)),
                input.to_bytes(),
            )?;
        }
    }
    // Kinds the scenario's clients do not send, encoded by our own encoder (named
    // `synthetic-`, not captured traffic), so the fuzzer starts from every kind.
    let peer = |s: &str| dealersync_core::protocol::PeerId::from(s);
    let doc = fuzzing::document_id();
    let storage = |s: &str| dealersync_core::protocol::StorageId(s.into());
    let mut heads = std::collections::BTreeMap::new();
    heads.insert(
        storage("s1"),
        dealersync_core::protocol::wire::RemoteHeads {
            heads: vec![fuzzing::seed_document().get_heads()[0].to_string()],
            timestamp: 1_700_000_000_000,
        },
    );
    let synthetic = [
        Message::Join {
            sender_id: peer("fuzz-peer"),
            supported_protocol_versions: Some(vec!["1".into()]),
            metadata: Some(dealersync_core::protocol::PeerMetadata {
                storage_id: Some(storage("device-storage")),
                is_ephemeral: false,
            }),
        },
        Message::Ephemeral {
            sender_id: peer("fuzz-peer"),
            target_id: peer("relay"),
            document_id: doc,
            session_id: "session".into(),
            count: 3,
            data: vec![0xa1, 0x61, 0x78, 0x01],
        },
        Message::RemoteSubscriptionChange {
            sender_id: peer("fuzz-peer"),
            target_id: peer("relay"),
            add: vec![storage("s1")],
            remove: vec![storage("s2")],
        },
        Message::RemoteHeadsChanged {
            sender_id: peer("fuzz-peer"),
            target_id: peer("relay"),
            document_id: doc,
            new_heads: heads,
        },
        Message::DocUnavailable {
            sender_id: peer("fuzz-peer"),
            target_id: peer("relay"),
            document_id: doc,
        },
        Message::Error {
            message: "bye".into(),
            sender_id: Some(peer("fuzz-peer")),
            target_id: None,
        },
        Message::Leave {
            sender_id: peer("fuzz-peer"),
        },
    ];
    let mut session = vec![(ctl::COMMIT, synthetic[0].encode())];
    for m in &synthetic {
        let f = m.encode();
        std::fs::write(
            dir.join(format!("frame/synthetic-{}", m.kind().as_str())),
            &f,
        )?;
        if !matches!(m, Message::Join { .. }) {
            session.push((ctl::COMMIT, f));
        }
    }
    let input = EngineInput {
        setup: 4,
        records: session,
    };
    std::fs::write(dir.join("engine/synthetic-every-kind"), input.to_bytes())?;
    println!("captured {} frames into {}", records.len(), dir.display());
    Ok(())
}
