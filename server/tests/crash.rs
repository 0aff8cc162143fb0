//! Crash safety of the real binary: SIGKILL while clients write, then restart.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_changes_survive_sigkill_and_clients_resume() {
    let dir = tempfile::tempdir().unwrap();
    let doc = create_doc(dir.path());
    let mut server = Server::start(dir.path(), &[]).await;
    let mut writers = Vec::new();
    for name in ["writer-a", "writer-b"] {
        let mut w = Client::connect(&server.ws_url(), name, Some(&format!("{name}-store"))).await;
        w.request(doc).await;
        w.until("writer has the doc", |c| !c.server_heads(doc).is_empty())
            .await;
        writers.push(w);
    }

    // Both write concurrently; the server is killed while they are still writing.
    // Each change's hash is kept to count how many were acknowledged.
    let mut hashes: Vec<Vec<automerge::ChangeHash>> = vec![Vec::new(), Vec::new()];
    let mut acked: Vec<Vec<automerge::ChangeHash>> = vec![Vec::new(), Vec::new()];
    for i in 0..200 {
        if i == 120 {
            server.kill();
        }
        for (n, w) in writers.iter_mut().enumerate() {
            w.change(doc, put(&format!("w{n}-{i}"), i)).await;
            let own = w.docs.get_mut(&doc).unwrap().doc.get_last_local_change();
            hashes[n].push(own.expect("a local change").hash());
            if !w.closed {
                w.pump_once(Duration::from_millis(1)).await;
            }
            acked[n] = w.server_heads(doc);
        }
    }
    for (n, w) in writers.iter_mut().enumerate() {
        // What arrived before the kill may still be in the socket buffer.
        w.drain(Duration::from_millis(50)).await;
        acked[n] = w.server_heads(doc);
    }
    let acked: Vec<automerge::ChangeHash> = acked.concat();
    assert!(!acked.is_empty());

    server.restart().await;
    let mut reader = Client::connect(&server.ws_url(), "reader", Some("reader-store")).await;
    reader.request(doc).await;
    reader
        .until("every acknowledged change is back", |c| {
            c.has_all(doc, &acked)
        })
        .await;
    // A change is acknowledged if it is an ancestor of heads the server sent.
    let reader_doc = &mut reader.docs.get_mut(&doc).unwrap().doc;
    let after_acked: std::collections::HashSet<automerge::ChangeHash> = reader_doc
        .get_changes(&acked)
        .iter()
        .map(|c| c.hash())
        .collect();
    let acked_count = hashes
        .concat()
        .iter()
        .filter(|h| reader_doc.get_change_by_hash(h).is_some() && !after_acked.contains(h))
        .count();
    eprintln!(
        "{acked_count} of 400 changes were acknowledged before SIGKILL; all present after restart"
    );
    assert!(acked_count > 0);

    // The writers resume: they reconnect and every change they made reaches the reader.
    let mut want = Vec::new();
    for (n, w) in writers.into_iter().enumerate() {
        let mut w = w;
        let kept = w.docs.remove(&doc).unwrap().doc;
        let name = format!("writer-{n}-again");
        let mut w = Client::connect(&server.ws_url(), &name, Some(&format!("{name}-store"))).await;
        w.share(doc, kept, automerge::sync::State::new()).await;
        w.change(doc, put(&format!("after_restart_{n}"), 1)).await;
        want = w.heads(doc);
        until_reader_has(&mut w, &mut reader, doc, &want).await;
    }
    assert!(reader.has_all(doc, &want));
    assert_eq!(value(&mut reader, doc, "w0-199"), Some(199));
    assert_eq!(value(&mut reader, doc, "w1-199"), Some(199));
}
