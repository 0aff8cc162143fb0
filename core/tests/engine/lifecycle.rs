//! Floods, documents created by clients, failed creates, revoked peers.

use super::*;

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
