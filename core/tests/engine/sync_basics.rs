//! Peers sync through the server; nothing is advertised before it is committed; a failed commit rolls back.

use super::*;

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
    let ids = w.clients_syncing(&["a", "b", "c"], doc);
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

/// The relay's receive path (`EngineConfig::receive_path`): three phones take turns
/// writing through the server. Forwarding a change to a phone and hearing its
/// acknowledgement is found next to the phone's heads, so the fast path never walks
/// the document's history; the stock path walks it on every sync message.
#[test]
fn forwarding_changes_does_not_walk_the_history() {
    let mut walks = Vec::new();
    for path in [ReceivePath::Fast, ReceivePath::Stock] {
        let mut w = World::new();
        w.server = server_engine_on(path);
        let doc = w.create_doc();
        let ids = w.clients_syncing(&["a", "b", "c"], doc);
        for round in 0..30 {
            let i = ids[round % ids.len()];
            w.edit(i, doc, &format!("k{round}"), round as i64);
            w.settle();
        }
        for &i in &ids {
            assert_eq!(w.client_get(i, doc, "k29"), Some(29));
        }
        let stats = w.server.stats();
        let received = |k| stats.messages_in.get(&k).copied().unwrap_or(0);
        walks.push((
            stats.ancestor_walks,
            received(MessageKind::Sync) + received(MessageKind::Request),
        ));
    }
    let (fast, stock) = (walks[0], walks[1]);
    assert_eq!(
        fast.0, 0,
        "fast path: {fast:?} (walks, sync and request messages)"
    );
    assert_eq!(stock.0, stock.1, "stock path: {stock:?}");
}
