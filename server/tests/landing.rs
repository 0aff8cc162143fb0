//! `/` serves two kinds of visitor: an automerge-repo client that connects to the bare
//! address syncs there, and a person who types the address in a browser gets a page
//! that leads to the board, the console, the phone app and the API documentation.

mod common;

use common::{Client, Server, create_doc, put, value};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_at_the_root_gets_a_page_and_a_sync_client_still_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let doc = create_doc(dir.path());
    let server = Server::start(dir.path(), &[]).await;

    let resp = reqwest::get(server.url("/")).await.unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
    let kind = resp.headers()[reqwest::header::CONTENT_TYPE].clone();
    assert_eq!(kind, "text/html; charset=utf-8");
    let page = resp.text().await.unwrap();
    for link in [
        "href=\"/board\"",
        "href=\"/console\"",
        "href=\"/app/\"",
        "href=\"/api-docs\"",
        "href=\"/signin\"",
    ] {
        assert!(page.contains(link), "the landing page lacks {link}");
    }

    // A client on the bare address (no /sync), as automerge-repo's stock adapter does
    // when given the relay's address: the handshake and a round of sync.
    let root = server.ws_url().replace("/sync?", "/?");
    let mut a = Client::connect(&root, "peer-root", None).await;
    let mut b = Client::connect(&server.ws_url(), "peer-sync", None).await;
    a.request(doc).await;
    b.request(doc).await;
    a.until("the root client has the doc", |c| {
        !c.server_heads(doc).is_empty()
    })
    .await;
    a.change(doc, put("from_root", 7)).await;
    let until = std::time::Instant::now() + common::DEADLINE;
    while value(&mut b, doc, "from_root") != Some(7) {
        assert!(
            std::time::Instant::now() < until,
            "the change never arrived"
        );
        a.pump_once(Duration::from_millis(20)).await;
        b.pump_once(Duration::from_millis(20)).await;
    }

    // A broken WebSocket handshake at the root is refused as a handshake, not
    // answered with the page.
    let resp = reqwest::Client::new()
        .get(server.url("/"))
        .header("Connection", "upgrade")
        .header("Upgrade", "websocket")
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_client_error(), "{}", resp.status());
    assert!(!resp.text().await.unwrap().contains("/board"));
}
