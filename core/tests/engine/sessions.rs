//! Ephemeral messages, persisted sync states, unloading idle documents, JS-style joins, compaction, a peer joining again.

use super::*;

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
fn a_client_that_stops_syncing_a_document_lets_it_unload_and_takes_it_up_again() {
    let mut w = World::new();
    let doc = w.create_doc();
    let (a, b) = (w.add_client("downstream"), w.add_client("b"));
    w.connect(a, Access::ReadWrite);
    w.connect(b, Access::ReadWrite);
    w.open(a, doc);
    w.open(b, doc);
    w.settle();
    w.edit(a, doc, "n", 1);
    w.settle();
    let later = w.now + 1_000_000;
    assert_eq!(
        w.clients[a].engine.unload_idle(later, 60_000),
        0,
        "pinned and synced with the server"
    );
    w.clients[a].engine.stop_syncing(&doc, conn(a));
    assert_eq!(w.clients[a].engine.unload_idle(later, 60_000), 1);
    assert!(w.clients[a].engine.document(&doc).is_none());

    // The server still counts it a peer of the document: its next change is taken up
    // again from the client's store, and the client answers it.
    w.edit(b, doc, "n", 2);
    w.settle();
    assert_eq!(w.client_get(a, doc, "n"), Some(2));
    assert!(w.clients[a].engine.is_synced(&doc, conn(a)));
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
