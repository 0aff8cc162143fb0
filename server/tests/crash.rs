//! Crash safety of the real binary: SIGKILL while clients write, then restart.

mod common;

use std::time::Duration;

use automerge::ReadDoc;
use automerge::transaction::Transactable;
use common::*;
use dealersync_core::protocol::DocumentId;

fn put(key: &str, value: i64) -> impl FnOnce(&mut automerge::AutoCommit) {
    let key = key.to_string();
    move |d| {
        d.put(automerge::ROOT, key, value).unwrap();
    }
}

fn value(c: &mut Client, id: DocumentId, key: &str) -> Option<i64> {
    let doc = &c.docs[&id].doc;
    match doc.get(automerge::ROOT, key).unwrap()? {
        (automerge::Value::Scalar(s), _) => match s.as_ref() {
            automerge::ScalarValue::Int(i) => Some(*i),
            _ => None,
        },
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_changes_survive_sigkill_and_clients_resume() {
    let dir = tempfile::tempdir().unwrap();
    let doc = create_doc(dir.path());
    let mut server = Server::start(dir.path(), &[]).await;
    let mut writer = Client::connect(&server.ws_url(), "writer", Some("writer-store")).await;
    writer.request(doc).await;
    writer
        .until("writer has the doc", |c| !c.server_heads(doc).is_empty())
        .await;

    // Write changes while syncing; kill the server mid-stream.
    let mut acked = Vec::new();
    for i in 0..200 {
        writer.change(doc, put(&format!("k{i}"), i)).await;
        writer.pump_once(Duration::from_millis(1)).await;
        acked = writer.server_heads(doc);
    }
    server.kill();
    // Whatever arrived before the kill may still be in the socket buffer.
    writer.drain(Duration::from_millis(50)).await;
    let last_acked = writer.server_heads(doc);
    if !last_acked.is_empty() {
        acked = last_acked;
    }
    assert!(!acked.is_empty());

    server.restart().await;
    let mut reader = Client::connect(&server.ws_url(), "reader", Some("reader-store")).await;
    reader.request(doc).await;
    reader
        .until("every acknowledged change is back", |c| {
            let d = &c.docs[&doc].doc;
            acked.iter().all(|h| d.get_change_by_hash(h).is_some())
        })
        .await;

    // The writer resumes: it reconnects and its unacknowledged changes reach the reader.
    let writer_doc = writer.docs.remove(&doc).unwrap().doc;
    let mut writer = Client::connect(&server.ws_url(), "writer-2", Some("writer-store")).await;
    writer
        .share(doc, writer_doc, automerge::sync::State::new())
        .await;
    writer.change(doc, put("after_restart", 1)).await;
    let want = writer.heads(doc);
    until_reader_has(&mut writer, &mut reader, doc, &want).await;
    assert_eq!(value(&mut reader, doc, "k199"), Some(199));
}
