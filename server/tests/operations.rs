//! Operational behaviour of the real binary: storage failures reach the peer, idle
//! documents are unloaded, dead sockets are closed, sync state survives reconnects.

mod common;

use std::time::{Duration, Instant};

use automerge::transaction::Transactable;
use common::*;
use dealersync_core::protocol::DocumentId;

/// Polls `/metrics` until `cond` holds on its text; panics at the deadline.
async fn metrics_until(server: &Server, what: &str, cond: impl Fn(&str) -> bool) -> String {
    let until = Instant::now() + DEADLINE;
    loop {
        let m = server.metrics().await;
        if cond(&m) {
            return m;
        }
        assert!(Instant::now() < until, "metrics never showed {what}:\n{m}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_error_reaches_the_peer_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let doc = create_doc(dir.path());
    let server = Server::start(dir.path(), &["--busy-timeout-ms", "200"]).await;
    let mut c = Client::connect(&server.ws_url(), "writer", Some("w")).await;
    c.request(doc).await;
    c.until("synced", |c| !c.server_heads(doc).is_empty()).await;

    // Another process holds the write lock: the relay's commit fails as busy.
    let blocker = rusqlite::Connection::open(dir.path().join("dealersync.db")).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    c.change(doc, put("during_outage", 1)).await;
    let want = c.heads(doc);
    c.until("an error and a close", |c| c.closed).await;
    assert!(
        c.errors
            .iter()
            .any(|e| e.contains("busy") || e.contains("locked")),
        "{:?}",
        c.errors
    );
    assert!(
        !c.server_heads(doc).iter().any(|h| want.contains(h)),
        "the failed change was acknowledged"
    );
    let m = server.metrics().await;
    assert!(
        metric_value(&m, "dealersync_errors_total", "kind=\"busy\"") >= 1.0,
        "{m}"
    );
    assert!(
        server.log().contains("group commit failed"),
        "{}",
        server.log()
    );

    // The lock goes away; the client reconnects and its change is stored.
    blocker.execute_batch("ROLLBACK").unwrap();
    let kept = c.docs.remove(&doc).unwrap().doc;
    let mut c = Client::connect(&server.ws_url(), "writer", Some("w")).await;
    c.share(doc, kept, automerge::sync::State::new()).await;
    let mut reader = Client::connect(&server.ws_url(), "reader", None).await;
    reader.request(doc).await;
    until_reader_has(&mut c, &mut reader, doc, &want).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_documents_are_unloaded_and_reload_with_the_same_heads() {
    let dir = tempfile::tempdir().unwrap();
    let doc = create_doc(dir.path());
    let server = Server::start(dir.path(), &["--idle-unload-secs", "1"]).await;
    let mut c = Client::connect(&server.ws_url(), "a", Some("a")).await;
    c.request(doc).await;
    c.until("synced", |c| !c.server_heads(doc).is_empty()).await;
    for i in 0..20 {
        c.change(doc, put(&format!("k{i}"), i)).await;
    }
    let want = c.heads(doc);
    served_to_a_fresh_client(&server.ws_url(), Some(&mut c), doc, &want).await;
    metrics_until(&server, "a loaded document", |m| {
        metric_value(m, "dealersync_documents_loaded", "") >= 1.0
    })
    .await;
    drop(c);
    metrics_until(&server, "the document unloaded", |m| {
        metric_value(m, "dealersync_documents_loaded", "") == 0.0
            && metric_value(m, "dealersync_connections", "") == 0.0
    })
    .await;
    let mut again = Client::connect(&server.ws_url(), "b", None).await;
    again.request(doc).await;
    again
        .until("the same heads after reloading", |c| c.heads(doc) == want)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_is_closed_and_its_connection_freed() {
    let dir = tempfile::tempdir().unwrap();
    create_doc(dir.path());
    let server = Server::start(dir.path(), &["--ping-interval-secs", "1"]).await;
    // Joins, then never reads: it never answers pings.
    let mut silent = raw(&server.ws_url()).await;
    futures_util::SinkExt::send(
        &mut silent,
        tokio_tungstenite::tungstenite::Message::Binary(join_frame("silent", None).into()),
    )
    .await
    .unwrap();
    metrics_until(&server, "the connection", |m| {
        metric_value(m, "dealersync_connections", "") == 1.0
    })
    .await;
    metrics_until(&server, "the dead socket closed", |m| {
        metric_value(m, "dealersync_connections", "") == 0.0
            && metric_value(m, "dealersync_errors_total", "kind=\"dead_socket\"") >= 1.0
    })
    .await;
}

/// Bytes of `sync`/`request` frames both ways until the client and the server have
/// nothing more to say.
async fn reconnect_bytes(
    server: &Server,
    doc: DocumentId,
    storage: &str,
    am: automerge::AutoCommit,
    state: automerge::sync::State,
) -> usize {
    let mut c = Client::connect(&server.ws_url(), &format!("dev-{storage}"), Some(storage)).await;
    c.share(doc, am, state).await;
    c.until("the server answers", |c| {
        c.docs[&doc].state.their_heads.is_some()
    })
    .await;
    // Measuring, not asserting on time: what is exchanged before a quiet second.
    c.drain(Duration::from_millis(1000)).await;
    c.sync_bytes_in + c.sync_bytes_out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persisted_sync_state_makes_a_reconnect_cheaper() {
    let dir = tempfile::tempdir().unwrap();
    let doc = create_doc(dir.path());
    let server = Server::start(dir.path(), &[]).await;
    let mut c = Client::connect(&server.ws_url(), "device", Some("device-store")).await;
    c.request(doc).await;
    c.until("synced", |c| !c.server_heads(doc).is_empty()).await;
    for i in 0..1000 {
        c.docs
            .get_mut(&doc)
            .unwrap()
            .doc
            .put(automerge::ROOT, format!("k{}", i % 50), i)
            .unwrap();
        c.docs.get_mut(&doc).unwrap().doc.commit();
    }
    c.flush(doc).await;
    let want = c.heads(doc);
    served_to_a_fresh_client(&server.ws_url(), Some(&mut c), doc, &want).await;
    c.drain(Duration::from_millis(300)).await;
    let replica = c.docs.remove(&doc).unwrap();
    let saved = replica.state.encode();
    drop(c);

    // The relay saves the device's sync state when it disconnects.
    let db = dir.path().join("dealersync.db");
    let until = Instant::now() + DEADLINE;
    loop {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let n: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sync_states WHERE doc_id = ?1 AND storage_id = 'device-store'",
                [doc.to_string()],
                |r| r.get(0),
            )
            .unwrap();
        if n == 1 {
            break;
        }
        assert!(Instant::now() < until, "sync state never saved");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let resumed = reconnect_bytes(
        &server,
        doc,
        "device-store",
        replica.doc.clone(),
        automerge::sync::State::decode(&saved).unwrap(),
    )
    .await;
    let from_scratch = reconnect_bytes(
        &server,
        doc,
        "new-store",
        replica.doc.clone(),
        automerge::sync::State::new(),
    )
    .await;
    eprintln!(
        "reconnect of a 1000-change document: {resumed} bytes with persisted sync state, \
         {from_scratch} bytes without"
    );
    assert!(
        resumed * 2 < from_scratch,
        "persisted: {resumed} bytes, from scratch: {from_scratch} bytes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_json_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--log-json"]).await;
    let _c = Client::connect(&server.ws_url(), "logged", None).await;
    let until = Instant::now() + DEADLINE;
    while !server.log().contains("\"connected\"") {
        assert!(
            Instant::now() < until,
            "no connection log:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for line in server.log().lines().filter(|l| !l.is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            v.get("level").is_some() && v.get("fields").is_some(),
            "{line}"
        );
    }
    let connected = server
        .log()
        .lines()
        .find(|l| l.contains("\"connected\""))
        .unwrap()
        .to_string();
    assert!(
        connected.contains("\"remote\""),
        "the span is logged: {connected}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doc_create_from_a_file_serves_its_contents() {
    let dir = tempfile::tempdir().unwrap();
    let mut seed = automerge::AutoCommit::new();
    seed.put(automerge::ROOT, "site", "showroom-1").unwrap();
    let file = dir.path().join("seed.automerge");
    std::fs::write(&file, seed.save()).unwrap();
    let id = DocumentId::random();
    let out = std::process::Command::new(BIN)
        .args(["doc", "create", "--data-dir"])
        .arg(dir.path())
        .args(["--id", &id.to_string(), "--from"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        id.to_string()
    );
    // Garbage is refused and creates nothing.
    std::fs::write(&file, b"not automerge").unwrap();
    let bad = std::process::Command::new(BIN)
        .args(["doc", "create", "--data-dir"])
        .arg(dir.path())
        .arg("--from")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not an automerge document"));

    let server = Server::start(dir.path(), &[]).await;
    let mut c = Client::connect(&server.ws_url(), "reader", None).await;
    c.request(id).await;
    let want = seed.get_heads();
    c.until("the seeded contents", |c| c.has_all(id, &want))
        .await;
    let (v, _) = automerge::ReadDoc::get(&c.docs[&id].doc, automerge::ROOT, "site")
        .unwrap()
        .unwrap();
    assert_eq!(v.as_str(), Some("showroom-1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_budget_unloads_documents_without_peers_first() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (create_doc(dir.path()), create_doc(dir.path()));
    let server = Server::start(dir.path(), &["--max-loaded-docs", "1"]).await;
    let mut first = Client::connect(&server.ws_url(), "first", None).await;
    first.request(a).await;
    first.change(a, put("x", 1)).await;
    first
        .until("a synced", |c| !c.server_heads(a).is_empty())
        .await;
    let want = first.heads(a);
    served_to_a_fresh_client(&server.ws_url(), Some(&mut first), a, &want).await;
    drop(first);
    let mut second = Client::connect(&server.ws_url(), "second", None).await;
    second.request(b).await;
    second
        .until("b synced", |c| !c.server_heads(b).is_empty())
        .await;
    // b is in use and stays; a has no peers and goes, long before the idle timeout.
    metrics_until(&server, "one document loaded", |m| {
        metric_value(m, "dealersync_documents_loaded", "") == 1.0
    })
    .await;
    let mut again = Client::connect(&server.ws_url(), "again", None).await;
    again.request(a).await;
    again
        .until("a reloads with the same heads", |c| c.heads(a) == want)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_chunks_are_compacted_into_a_snapshot_and_reload() {
    let dir = tempfile::tempdir().unwrap();
    let doc = create_doc(dir.path());
    let mut server = Server::start(dir.path(), &[]).await;
    let db = rusqlite::Connection::open(dir.path().join("dealersync.db")).unwrap();
    let count = |sql: &str| -> i64 { db.query_row(sql, [doc.to_string()], |r| r.get(0)).unwrap() };
    let mut c = Client::connect(&server.ws_url(), "writer", None).await;
    c.request(doc).await;
    c.until("synced", |c| !c.server_heads(doc).is_empty()).await;
    let rounds = 20;
    for round in 0..rounds {
        for i in 0..50 {
            let text = format!("{round}-{i}-{}", "x".repeat(300));
            c.docs
                .get_mut(&doc)
                .unwrap()
                .doc
                .put(automerge::ROOT, format!("note{i}"), text)
                .unwrap();
            c.docs.get_mut(&doc).unwrap().doc.commit();
        }
        c.flush(doc).await;
        // Wait until this round is durable: its audit rows are in the same transaction.
        let until = Instant::now() + DEADLINE;
        while count("SELECT COUNT(*) FROM audit WHERE doc_id = ?1") < 50 * (round + 1) {
            assert!(Instant::now() < until, "round {round} never committed");
            c.pump_once(Duration::from_millis(10)).await;
        }
    }
    let snapshots = count("SELECT COUNT(*) FROM chunks WHERE doc_id = ?1 AND kind = 0");
    let incrementals = count("SELECT COUNT(*) FROM chunks WHERE doc_id = ?1 AND kind = 1");
    eprintln!(
        "after {rounds} commits of 50 changes: {snapshots} snapshot, {incrementals} incremental chunks"
    );
    assert_eq!(snapshots, 1);
    assert!(
        incrementals < rounds - 1,
        "no compaction: {incrementals} incremental chunks after {rounds} commits"
    );
    let want = c.heads(doc);
    drop(c);
    server.restart().await;
    served_to_a_fresh_client(&server.ws_url(), None, doc, &want).await;
}
