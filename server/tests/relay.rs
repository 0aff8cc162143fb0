//! The real `dealersync-server` binary over real WebSockets: convergence, crash safety,
//! bad input, metrics, and the rule that peers cannot create documents.

mod common;

use std::time::Duration;

use automerge::ReadDoc;
use automerge::transaction::Transactable;
use common::*;
use dealersync_core::protocol::wire::Message;
use dealersync_core::protocol::{DocumentId, PeerId};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_converge_through_the_relay() {
    let dir = tempfile::tempdir().unwrap();
    let doc = create_doc(dir.path());
    let server = Server::start(dir.path(), &[]).await;
    let mut a = Client::connect(&server.ws_url(), "peer-a", Some("storage-a")).await;
    let mut b = Client::connect(&server.ws_url(), "peer-b", Some("storage-b")).await;
    a.request(doc).await;
    b.request(doc).await;
    a.until("a has the doc", |c| !c.server_heads(doc).is_empty())
        .await;
    b.until("b has the doc", |c| !c.server_heads(doc).is_empty())
        .await;

    // Concurrent edits on both sides, then each must see the other's.
    a.change(doc, put("from_a", 1)).await;
    b.change(doc, put("from_b", 2)).await;
    let (mut a_done, mut b_done) = (false, false);
    let until = std::time::Instant::now() + DEADLINE;
    while !(a_done && b_done) {
        assert!(std::time::Instant::now() < until, "no convergence");
        a.pump_once(Duration::from_millis(20)).await;
        b.pump_once(Duration::from_millis(20)).await;
        a_done = value(&mut a, doc, "from_b") == Some(2);
        b_done = value(&mut b, doc, "from_a") == Some(1);
    }
    a.until("a settles", |c| c.docs[&doc].state.their_heads.is_some())
        .await;
    let ha = a.heads(doc);
    b.until("same heads", |c| c.heads(doc) == ha).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_for_an_unknown_document_does_not_create_it() {
    let dir = tempfile::tempdir().unwrap();
    let known = create_doc(dir.path());
    let server = Server::start(dir.path(), &[]).await;
    let unknown = DocumentId::random();
    let mut c = Client::connect(&server.ws_url(), "peer", Some("s")).await;
    c.request(unknown).await;
    c.until("doc-unavailable", |c| c.docs[&unknown].unavailable)
        .await;
    // A sync carrying real changes for the unknown id must not create it either.
    let mut doc = automerge::AutoCommit::new();
    doc.put(automerge::ROOT, "x", 1).unwrap();
    c.share(unknown, doc, automerge::sync::State::new()).await;
    c.request(known).await;
    c.until("known doc syncs", |c| !c.server_heads(known).is_empty())
        .await;
    drop(c);
    drop(server);
    let out = std::process::Command::new(BIN)
        .args(["doc", "create", "--data-dir"])
        .arg(dir.path())
        .arg("--id")
        .arg(unknown.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the id was taken, so the peer created it: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A client that keeps syncing while others misbehave, and loses nothing.
async fn bystander_keeps_syncing(server: &Server, doc: DocumentId, c: &mut Client, n: i64) {
    c.change(doc, put("bystander", n)).await;
    let want = c.heads(doc);
    assert!(!c.closed, "the bystander was disconnected: {:?}", c.errors);
    served_to_a_fresh_client(&server.ws_url(), Some(c), doc, &want).await;
    c.drain(Duration::from_millis(5)).await;
    assert!(!c.closed && c.errors.is_empty(), "{:?}", c.errors);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_an_error_and_a_close_and_others_keep_syncing() {
    let dir = tempfile::tempdir().unwrap();
    let doc = create_doc(dir.path());
    let server = Server::start(
        dir.path(),
        &[
            "--max-frame-bytes",
            "64KiB",
            "--max-messages-per-sec",
            "200",
        ],
    )
    .await;
    let mut good = Client::connect(&server.ws_url(), "good", Some("good-store")).await;
    good.request(doc).await;
    good.until("good has the doc", |c| !c.server_heads(doc).is_empty())
        .await;
    let url = server.ws_url();
    let server_peer = good.server.clone();
    let sync_frame = |data: Vec<u8>| {
        Message::Sync {
            sender_id: PeerId::from("bad"),
            target_id: server_peer.clone(),
            document_id: doc,
            data,
        }
        .encode()
    };
    let bad_automerge = sync_frame(vec![0x42, 0x01, 0x00]);
    let truncated = {
        let f = sync_frame(vec![7; 40]);
        f[..f.len() / 2].to_vec()
    };
    let wrong_types = {
        let v = ciborium::Value::Map(vec![
            ("type".into(), "sync".into()),
            ("senderId".into(), 42.into()),
            ("targetId".into(), ciborium::Value::Bytes(vec![1])),
            ("documentId".into(), true.into()),
            ("data".into(), "not bytes".into()),
        ]);
        let mut out = Vec::new();
        ciborium::into_writer(&v, &mut out).unwrap();
        out
    };
    let random: Vec<u8> = (0..512u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let cases: Vec<(&str, Vec<Vec<u8>>)> = vec![
        ("random bytes", vec![random]),
        ("truncated CBOR", vec![truncated]),
        ("wrong field types", vec![wrong_types]),
        ("invalid automerge sync data", vec![bad_automerge]),
        ("frame over the limit", vec![vec![0u8; 65 * 1024]]),
    ];
    for (n, (what, frames)) in cases.into_iter().enumerate() {
        let mut ws = raw(&url).await;
        ws.send(WsMessage::Binary(join_frame("bad", None).into()))
            .await
            .unwrap();
        for f in frames {
            // The server may close before every frame is written.
            let _ = ws.send(WsMessage::Binary(f.into())).await;
        }
        let errors = expect_error_and_close(&mut ws).await;
        assert!(
            !errors.is_empty(),
            "{what}: no error message before the close"
        );
        bystander_keeps_syncing(&server, doc, &mut good, n as i64).await;
    }

    // A text frame.
    let mut ws = raw(&url).await;
    ws.send(WsMessage::Text("hello".into())).await.unwrap();
    let errors = expect_error_and_close(&mut ws).await;
    assert!(errors.iter().any(|e| e.contains("text")), "{errors:?}");

    // A flood: far more messages than the limit allows in one second.
    let mut ws = raw(&url).await;
    ws.send(WsMessage::Binary(join_frame("flood", None).into()))
        .await
        .unwrap();
    // A message the engine tolerates and ignores, so only the rate limit can stop it.
    let leave = Message::RemoteSubscriptionChange {
        sender_id: PeerId::from("flood"),
        target_id: server_peer.clone(),
        add: vec![],
        remove: vec![],
    }
    .encode();
    let (mut sink, mut stream) = ws.split();
    let flood = tokio::spawn(async move {
        for _ in 0..5000 {
            if sink
                .send(WsMessage::Binary(leave.clone().into()))
                .await
                .is_err()
            {
                break;
            }
        }
    });
    let mut errors = Vec::new();
    let until = std::time::Instant::now() + DEADLINE;
    loop {
        let left = until.saturating_duration_since(std::time::Instant::now());
        match tokio::time::timeout(left, stream.next()).await {
            Err(_) => panic!("flood not closed"),
            Ok(Some(Ok(WsMessage::Binary(b)))) => {
                if let Ok(Message::Error { message, .. }) = Message::decode(&b) {
                    errors.push(message);
                }
            }
            Ok(Some(Ok(WsMessage::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => break,
            Ok(Some(Ok(_))) => {}
        }
    }
    flood.abort();
    assert!(
        errors.iter().any(|e| e.contains("messages per second")),
        "{errors:?}"
    );
    bystander_keeps_syncing(&server, doc, &mut good, 100).await;

    let m = server.metrics().await;
    for kind in [
        "frame_too_large",
        "rate_limited",
        "text_frame",
        "bad_frame",
        "protocol",
    ] {
        assert!(
            metric_value(&m, "dealersync_errors_total", &format!("kind=\"{kind}\"")) >= 1.0,
            "{kind} not counted:\n{m}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_connections_messages_and_commits() {
    let dir = tempfile::tempdir().unwrap();
    let doc = create_doc(dir.path());
    let server = Server::start(dir.path(), &[]).await;
    let mut c = Client::connect(&server.ws_url(), "metered", Some("m")).await;
    c.request(doc).await;
    c.until("synced", |c| !c.server_heads(doc).is_empty()).await;
    for i in 0..5 {
        c.change(doc, put("n", i)).await;
    }
    let want = c.heads(doc);
    served_to_a_fresh_client(&server.ws_url(), Some(&mut c), doc, &want).await;
    let m = server.metrics().await;
    assert!(
        metric_value(&m, "dealersync_connections_total", "") >= 2.0,
        "{m}"
    );
    assert!(metric_value(&m, "dealersync_messages_in_total", "type=\"join\"") >= 1.0);
    assert!(metric_value(&m, "dealersync_messages_in_total", "type=\"sync\"") >= 5.0);
    assert!(metric_value(&m, "dealersync_bytes_out_total", "type=\"sync\"") > 0.0);
    assert!(metric_value(&m, "dealersync_storage_commit_seconds_count", "") >= 1.0);
    assert!(metric_value(&m, "dealersync_storage_commit_batch_changes_sum", "") >= 5.0);
    assert!(metric_value(&m, "dealersync_sync_round_seconds_count", "") >= 1.0);
    // Published on the engine's half-second tick.
    let until = std::time::Instant::now() + DEADLINE;
    while metric_value(
        &server.metrics().await,
        "dealersync_changes_applied_total",
        "",
    ) < 5.0
    {
        assert!(
            std::time::Instant::now() < until,
            "changes_applied never reached 5"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        metric_value(&m, "dealersync_documents_loaded", "") >= 1.0,
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_shuts_down_cleanly_and_keeps_acknowledged_changes() {
    let dir = tempfile::tempdir().unwrap();
    let doc = create_doc(dir.path());
    let mut server = Server::start(dir.path(), &[]).await;
    let mut c = Client::connect(&server.ws_url(), "term", Some("t")).await;
    c.request(doc).await;
    c.until("synced", |c| !c.server_heads(doc).is_empty()).await;
    c.change(doc, put("before_term", 7)).await;
    let want = c.heads(doc);
    served_to_a_fresh_client(&server.ws_url(), Some(&mut c), doc, &want).await;
    let status = server.terminate();
    assert!(status.success(), "exit status {status}:\n{}", server.log());
    c.until("the server closes the socket", |c| c.closed).await;
    assert!(
        server.log().contains("shut down cleanly"),
        "{}",
        server.log()
    );
    server.restart().await;
    let mut r = Client::connect(&server.ws_url(), "after", None).await;
    r.request(doc).await;
    r.until("the change is there", |c| {
        let d = &c.docs[&doc].doc;
        want.iter().all(|h| d.get_change_by_hash(h).is_some())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_batches_changes_from_many_connections() {
    let dir = tempfile::tempdir().unwrap();
    let docs = [create_doc(dir.path()), create_doc(dir.path())];
    let server = Server::start(dir.path(), &[]).await;
    let mut writers = Vec::new();
    for w in 0..10 {
        let doc = docs[w % 2];
        let mut c =
            Client::connect(&server.ws_url(), &format!("w{w}"), Some(&format!("s{w}"))).await;
        c.request(doc).await;
        c.until("synced", |c| !c.server_heads(doc).is_empty()).await;
        writers.push((c, doc));
    }
    // Every writer sends its changes without waiting for acknowledgements.
    for i in 0..30 {
        for (w, (c, doc)) in writers.iter_mut().enumerate() {
            c.change(*doc, put(&format!("w{w}"), i)).await;
        }
    }
    let mut readers = Vec::new();
    for doc in docs {
        let mut r = Client::connect(&server.ws_url(), &format!("r-{doc}"), None).await;
        r.request(doc).await;
        readers.push((r, doc));
    }
    let until = std::time::Instant::now() + DEADLINE;
    loop {
        let mut done = true;
        for (c, doc) in writers.iter_mut() {
            c.pump_once(Duration::from_millis(1)).await;
            let want = c.heads(*doc);
            let reader = &mut readers.iter_mut().find(|(_, d)| d == doc).unwrap().0;
            done &= reader.has_all(*doc, &want);
        }
        for (r, _) in readers.iter_mut() {
            r.pump_once(Duration::from_millis(1)).await;
        }
        if done {
            break;
        }
        assert!(
            std::time::Instant::now() < until,
            "readers never got every change"
        );
    }
    let m = server.metrics().await;
    let changes = metric_value(&m, "dealersync_storage_commit_batch_changes_sum", "");
    let commits = metric_value(&m, "dealersync_storage_commit_seconds_count", "");
    let seconds = metric_value(&m, "dealersync_storage_commit_seconds_sum", "");
    eprintln!(
        "{changes} changes in {commits} commits: {:.1} changes per commit, {:.2} ms per commit",
        changes / commits,
        seconds / commits * 1e3
    );
    assert!(changes >= 300.0, "{m}");
    assert!(
        commits < changes,
        "no batching: {commits} commits for {changes} changes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_refuses_sync_and_api_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]).await;
    match tokio_tungstenite::connect_async(server.ws_url_without_token()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            assert_eq!(r.status().as_u16(), 401)
        }
        Ok(_) => panic!("a WebSocket without a token was upgraded"),
        Err(e) => panic!("expected a 401, got {e}"),
    }
    let api = reqwest::get(server.url("/api/sites")).await.unwrap();
    assert_eq!(api.status().as_u16(), 401);
    let authed = reqwest::Client::new()
        .get(server.url("/api/sites"))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap();
    assert_eq!(authed.status().as_u16(), 200);
    let sites: serde_json::Value = authed.json().await.unwrap();
    assert_eq!(sites[0]["id"], "hq");
    // Health and metrics stay open for probes and scrapers.
    assert!(
        reqwest::get(server.url("/healthz"))
            .await
            .unwrap()
            .status()
            .is_success()
    );
    assert!(
        reqwest::get(server.url("/metrics"))
            .await
            .unwrap()
            .status()
            .is_success()
    );
}

/// `ROOT.sites[site].name` of a network document, either string form.
fn network_site_name(doc: &automerge::AutoCommit, site: &str) -> Option<String> {
    let (_, sites) = doc.get(automerge::ROOT, "sites").ok()??;
    let (_, entry) = doc.get(&sites, site).ok()??;
    match doc.get(&entry, "name").ok()?? {
        (automerge::Value::Scalar(s), _) => s.as_str().map(String::from),
        (automerge::Value::Object(_), text) => doc.text(&text).ok(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_edits_reach_connected_peers_without_reconnecting() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]).await;
    let http = reqwest::Client::new();
    let network: String = http
        .get(server.url("/api/network"))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap()["documentId"]
        .as_str()
        .unwrap()
        .to_string();
    let network: DocumentId = network.parse().unwrap();
    let mut peer = Client::connect(&server.ws_url(), "office-pc", Some("office-pc-store")).await;
    peer.request(network).await;
    peer.until("network synced", |c| {
        network_site_name(&c.docs[&network].doc, "hq").as_deref() == Some("Head office")
    })
    .await;

    // A rename through the admin API is in the peer's copy without a reconnect.
    let renamed = http
        .patch(server.url("/api/admin/sites/hq"))
        .bearer_auth(&server.token)
        .json(&serde_json::json!({ "name": "总部" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        renamed.status().as_u16(),
        200,
        "{}",
        renamed.text().await.unwrap()
    );
    peer.until("the rename arrives", |c| {
        network_site_name(&c.docs[&network].doc, "hq").as_deref() == Some("总部")
    })
    .await;

    // A site created meanwhile: its document syncs at once and the network lists it.
    let created = http
        .post(server.url("/api/admin/sites"))
        .bearer_auth(&server.token)
        .json(&serde_json::json!({
            "id": "dc-east", "name": "华东配送中心", "kind": "distribution_centre", "parent": "hq"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let site: serde_json::Value = created.json().await.unwrap();
    let site_doc: DocumentId = site["documentId"].as_str().unwrap().parse().unwrap();
    peer.until("the new site is in the network", |c| {
        network_site_name(&c.docs[&network].doc, "dc-east").is_some()
    })
    .await;
    peer.request(site_doc).await;
    peer.until("the new site document syncs", |c| {
        !c.server_heads(site_doc).is_empty()
    })
    .await;
    assert!(peer.errors.is_empty(), "{:?}", peer.errors);

    // Both edits are durable: a restart serves them from storage.
    let heads = peer.heads(network);
    let mut server = server;
    server.restart().await;
    served_to_a_fresh_client(&server.ws_url(), None, network, &heads).await;
}
