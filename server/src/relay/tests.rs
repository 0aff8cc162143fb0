//! The driver with real threads and SQLite: slow readers, admin writes.

use super::*;
use automerge::sync::SyncDoc;
use dealersync_core::protocol::{DocumentId, Message, PeerMetadata};

use crate::storage::StoreOptions;
use dealersync_core::protocol::decode_frame;

/// A relay of `shards` engine shards with default limits.
fn config(shards: usize) -> RelayConfig {
    RelayConfig {
        peer_id: PeerId::from("relay"),
        storage_id: StorageId("relay-store".into()),
        idle_unload: Duration::from_secs(60),
        limits: SyncLimits::default(),
        max_loaded_docs: None,
        shards,
    }
}

/// Registers a connection with full access whose frames go to `outbox`, and sends its
/// `join` as `peer`.
async fn joined(handle: &RelayHandle, peer: &str, outbox: tmpsc::Sender<Outgoing>) -> ConnId {
    let conn = handle
        .connect(ConnInfo::full_access(), Outbox::new(outbox), None)
        .await;
    let join = Message::Join {
        sender_id: PeerId::from(peer),
        supported_protocol_versions: Some(vec!["1".into()]),
        metadata: Some(PeerMetadata::default()),
    }
    .encode();
    handle
        .frame(
            conn,
            decode_frame(&join, &SyncLimits::default()),
            join.len(),
            None,
        )
        .await;
    conn
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_does_not_read_is_dropped_not_buffered() {
    let limits = SyncLimits::default();
    let dir = tempfile::tempdir().unwrap();
    let open = || SqliteStore::open(dir.path(), &StoreOptions::default()).unwrap();
    let (reads, writes) = (open(), open());
    let doc = DocumentId::random();
    writes
        .create_document(&doc, crate::documents::empty_document())
        .unwrap();
    let relay = Relay::start(config(2), reads, writes);
    let handle = relay.handle();
    // Room for one frame, and nobody reads it.
    let (outbox, mut unread) = tmpsc::channel(1);
    let conn = joined(&handle, "slow", outbox).await;
    let mut empty = automerge::AutoCommit::new();
    let mut state = automerge::sync::State::new();
    let data = empty
        .sync()
        .generate_sync_message(&mut state)
        .unwrap()
        .encode();
    let request = Message::Request {
        sender_id: PeerId::from("slow"),
        target_id: PeerId::from("relay"),
        document_id: doc,
        data,
    }
    .encode();
    handle
        .frame(conn, decode_frame(&request, &limits), request.len(), None)
        .await;

    // The answer to the request does not fit: the engine drops the outbox instead
    // of buffering, which tells the connection task to close the socket.
    let until = Instant::now() + Duration::from_secs(20);
    while !unread.is_closed() {
        assert!(Instant::now() < until, "the slow connection was kept");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    match unread.recv().await {
        Some(Outgoing::Frame(kind, _)) => assert_eq!(kind, MessageKind::Peer),
        other => panic!("expected the peer message, got {other:?}"),
    }
    assert!(unread.recv().await.is_none(), "nothing more was queued");
    tokio::task::spawn_blocking(move || relay.shutdown())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_writes_through_the_relay_are_durable_when_they_return() {
    use automerge::transaction::Transactable;
    let dir = tempfile::tempdir().unwrap();
    let open = || SqliteStore::open(dir.path(), &StoreOptions::default()).unwrap();
    let (reads, writes, check) = (open(), open(), open());
    let relay = Relay::start(config(2), reads, writes);
    let docs = RelayDocuments::new(relay.handle());
    let doc = DocumentId::random();
    let stored = tokio::task::spawn_blocking(move || {
        docs.create(doc, crate::documents::empty_document())?;
        // Creating it twice, or editing a document nobody created, is refused.
        assert!(
            docs.create(doc, crate::documents::empty_document())
                .is_err()
        );
        let unknown = DocumentId::random();
        assert!(matches!(
            docs.edit(unknown, &mut |_| Ok(())),
            Err(RegistryError::Document { .. })
        ));
        assert!(!check.exists(&unknown)?);
        docs.edit(doc, &mut |d| {
            d.put(automerge::ROOT, "name", "总部").unwrap();
            Ok(())
        })?;
        // A failing edit changes nothing.
        let refused = docs.edit(doc, &mut |d| {
            d.put(automerge::ROOT, "name", "half-done").unwrap();
            Err(RegistryError::Invalid("refused".into()))
        });
        assert!(matches!(refused, Err(RegistryError::Invalid(_))));
        // Returned means committed: the store has it without waiting.
        let stored = check.load(&doc)?.expect("created");
        Ok::<_, RegistryError>(automerge::Automerge::load(&stored.chunks.concat()).unwrap())
    })
    .await
    .unwrap()
    .unwrap();
    let name = stored
        .get(automerge::ROOT, "name")
        .unwrap()
        .and_then(|(v, _)| v.into_string().ok());
    assert_eq!(name.as_deref(), Some("总部"));
    tokio::task::spawn_blocking(move || relay.shutdown())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_is_answered_once_and_every_shard_announces_its_commits() {
    use automerge::transaction::Transactable;
    let dir = tempfile::tempdir().unwrap();
    let open = || SqliteStore::open(dir.path(), &StoreOptions::default()).unwrap();
    let relay = Relay::start(config(3), open(), open());
    let handle = relay.handle();
    assert_eq!(handle.shards(), 3);
    let mut commits = handle.subscribe_commits();
    // One document on each shard.
    let mut docs: Vec<DocumentId> = Vec::new();
    while docs.len() < 3 {
        let d = DocumentId::random();
        if docs.iter().all(|x| shard_of(x, 3) != shard_of(&d, 3)) {
            docs.push(d);
        }
    }
    let (outbox, mut frames) = tmpsc::channel(64);
    joined(&handle, "peer", outbox).await;

    let writer = RelayDocuments::new(handle.clone());
    let written = docs.clone();
    tokio::task::spawn_blocking(move || {
        for d in written {
            writer.create(d, crate::documents::empty_document())?;
            writer.edit(d, &mut |am| {
                am.put(automerge::ROOT, "k", 1).unwrap();
                Ok(())
            })?;
        }
        Ok::<_, RegistryError>(())
    })
    .await
    .unwrap()
    .unwrap();
    // Each write returned once durable, so every notification is already sent.
    let mut announced = Vec::new();
    while let Ok(doc) = commits.try_recv() {
        announced.push(doc);
    }
    for d in &docs {
        assert!(
            announced.iter().filter(|a| *a == d).count() >= 2,
            "{d}: created and edited, announced {announced:?}"
        );
    }

    // Once every shard has stopped, the connection's queue ends: it got one `peer`.
    tokio::task::spawn_blocking(move || relay.shutdown())
        .await
        .unwrap();
    let mut peers = 0;
    while let Some(out) = frames.recv().await {
        if let Outgoing::Frame(MessageKind::Peer, _) = out {
            peers += 1;
        }
    }
    assert_eq!(peers, 1, "the join was answered {peers} times");
}
