//! A panic inside automerge while the engine handles one peer's message stays with
//! that peer and document: the peer gets an `error` and is closed, the document is
//! reloaded from storage, every other peer goes on and the relay stays healthy.
//!
//! The validator refuses every input known to make automerge panic, so this test
//! hands the engine thread a message that skipped it (as a validator bug would): the
//! 10-byte sync message of issue 8, whose Bloom filter of zero bits per entry makes
//! automerge 0.12 divide by zero.

use std::time::{Duration, Instant};

use automerge::sync::{self, SyncDoc};
use dealersync_core::access::Access;
use dealersync_core::protocol::engine::{CloseReason, ConnInfo};
use dealersync_core::protocol::validate::ValidSync;
use dealersync_core::protocol::{
    DocumentId, Inbound, Message, PeerId, PeerMetadata, StorageId, SyncLimits, decode_frame,
};
use dealersync_server::relay::{Outbox, Outgoing, Relay, RelayConfig, RelayHandle};
use dealersync_server::storage::{SqliteStore, StoreOptions};
use tokio::sync::mpsc;

const ZERO_BIT_BLOOM: [u8; 10] = [0x42, 0x00, 0x00, 0x01, 0x00, 0x03, 0x01, 0x00, 0x07, 0x00];

async fn joined(
    relay: &RelayHandle,
    name: &str,
) -> (dealersync_core::protocol::ConnId, mpsc::Receiver<Outgoing>) {
    let (outbox, rx) = mpsc::channel(64);
    let conn = relay
        .connect(
            ConnInfo::with_access(|_| Access::ReadWrite),
            Outbox::new(outbox),
            Some(name.to_string()),
        )
        .await;
    let join = Message::Join {
        sender_id: PeerId::from(name),
        supported_protocol_versions: Some(vec!["1".into()]),
        metadata: Some(PeerMetadata::default()),
    }
    .encode();
    relay
        .frame(
            conn,
            decode_frame(&join, &SyncLimits::default()),
            join.len(),
            None,
        )
        .await;
    (conn, rx)
}

fn request(name: &str, doc: DocumentId) -> Vec<u8> {
    let mut empty = automerge::AutoCommit::new();
    let data = empty
        .sync()
        .generate_sync_message(&mut sync::State::new())
        .unwrap()
        .encode();
    Message::Request {
        sender_id: PeerId::from(name),
        target_id: PeerId::from("relay"),
        document_id: doc,
        data,
    }
    .encode()
}

/// Waits for the next outgoing item that `pick` accepts.
async fn next<T>(
    rx: &mut mpsc::Receiver<Outgoing>,
    mut pick: impl FnMut(Outgoing) -> Option<T>,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(o)) => {
                if let Some(t) = pick(o) {
                    return t;
                }
            }
            Ok(None) => panic!("the outbox closed"),
            Err(_) => panic!("nothing arrived before the deadline"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_on_one_message_closes_that_peer_only() {
    let dir = tempfile::tempdir().unwrap();
    let open = || SqliteStore::open(dir.path(), &StoreOptions::default()).unwrap();
    let (reads, writes) = (open(), open());
    let doc = DocumentId::random();
    let mut seed = automerge::AutoCommit::new();
    automerge::transaction::Transactable::put(&mut seed, automerge::ROOT, "site", "showroom")
        .unwrap();
    writes.create_document(&doc, seed.save()).unwrap();
    let relay = Relay::start(
        RelayConfig {
            peer_id: PeerId::from("relay"),
            storage_id: StorageId("relay-store".into()),
            idle_unload: Duration::from_secs(60),
            max_loaded_docs: None,
            limits: SyncLimits::default(),
            shards: 2,
        },
        reads,
        writes,
    );
    let handle = relay.handle();
    let (bystander, mut bystander_rx) = joined(&handle, "bystander").await;
    let (attacker, mut attacker_rx) = joined(&handle, "attacker").await;
    let ask = request("bystander", doc);
    handle
        .frame(
            bystander,
            decode_frame(&ask, &SyncLimits::default()),
            ask.len(),
            None,
        )
        .await;
    next(&mut bystander_rx, |o| match o {
        Outgoing::Frame(_, bytes) => {
            matches!(Message::decode(&bytes), Ok(Message::Sync { .. })).then_some(())
        }
        Outgoing::Close(r) => panic!("bystander closed: {r}"),
    })
    .await;

    // The message automerge panics on, as if the validator had let it through.
    let smuggled = Inbound {
        message: Message::Request {
            sender_id: PeerId::from("attacker"),
            target_id: PeerId::from("relay"),
            document_id: doc,
            data: Vec::new(),
        },
        sync: Some(ValidSync {
            message: sync::Message::decode(&ZERO_BIT_BLOOM).unwrap(),
            changes: Vec::new(),
            expanded: None,
        }),
        frame_len: ZERO_BIT_BLOOM.len(),
    };
    handle
        .frame(attacker, Ok(smuggled), ZERO_BIT_BLOOM.len(), None)
        .await;
    let error = next(&mut attacker_rx, |o| match o {
        Outgoing::Frame(_, bytes) => match Message::decode(&bytes) {
            Ok(Message::Error { message, .. }) => Some(message),
            _ => None,
        },
        Outgoing::Close(r) => panic!("closed without an error first: {r}"),
    })
    .await;
    assert!(error.contains("could not process"), "{error}");
    let reason = next(&mut attacker_rx, |o| match o {
        Outgoing::Close(r) => Some(r),
        Outgoing::Frame(..) => None,
    })
    .await;
    assert!(matches!(reason, CloseReason::Protocol(_)), "{reason:?}");
    assert!(
        handle.is_healthy(),
        "a contained panic must not stop the relay"
    );

    // The document's other peer was told to reconnect (its state was dropped with
    // the document); a new connection syncs the document from storage.
    let (again, mut again_rx) = joined(&handle, "bystander-again").await;
    let ask = request("bystander-again", doc);
    handle
        .frame(
            again,
            decode_frame(&ask, &SyncLimits::default()),
            ask.len(),
            None,
        )
        .await;
    let reply = next(&mut again_rx, |o| match o {
        Outgoing::Frame(_, bytes) => match Message::decode(&bytes) {
            Ok(Message::Sync { data, .. }) => Some(data),
            _ => None,
        },
        Outgoing::Close(r) => panic!("new connection closed: {r}"),
    })
    .await;
    let reply = sync::Message::decode(&reply).unwrap();
    assert!(
        !reply.heads.is_empty(),
        "the reloaded document has its changes"
    );
    let told = next(&mut bystander_rx, |o| match o {
        Outgoing::Close(r) => Some(r),
        Outgoing::Frame(..) => None,
    })
    .await;
    assert!(matches!(told, CloseReason::Overloaded(_)), "{told:?}");
    let _ = bystander;
    tokio::task::spawn_blocking(move || relay.shutdown())
        .await
        .unwrap();
}
