//! The scripted JS client against the automerge-repo reference server
//! (`tests/js/ref-server.mjs`). This pins down the harness itself: when an interop
//! test against dealersync fails but this one passes, the fault is in the relay, not
//! in the client script or the npm set-up.

use std::time::Duration;

use dealersync_tests::{JsClient, RefServer};
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(15);

#[tokio::test]
async fn js_clients_converge_through_the_reference_server() -> anyhow::Result<()> {
    let server = RefServer::start().await?;
    let alice = JsClient::spawn("alice", &server.ws_url()).await?;
    let bob = JsClient::spawn("bob", &server.ws_url()).await?;

    let created = alice
        .create(json!({"schemaVersion": 1, "parts": {"filter": {"$counter": 10}}}))
        .await?;
    let doc = created.document_id.clone();
    // Bob can only find it once the server holds it.
    alice.acked(&doc, DEADLINE).await?;
    let found = bob.find(&doc, DEADLINE).await?;
    assert_eq!(found.heads, created.heads);
    assert_eq!(found.doc["parts"]["filter"], json!(10));

    // Concurrent edits: one each, plus a counter both decrement.
    let (a, b) = tokio::join!(
        alice.change(
            &doc,
            json!([
                {"op": "set", "path": ["customers", "c1", "name"], "value": "王伟"},
                {"op": "increment", "path": ["parts", "filter"], "by": -1}
            ])
        ),
        bob.change(
            &doc,
            json!([
                {"op": "set", "path": ["vehicles", "LSVAU2180N2183294", "status"], "value": "in_stock"},
                {"op": "increment", "path": ["parts", "filter"], "by": -2}
            ])
        ),
    );
    let (a, b) = (a?, b?);
    assert_ne!(a.heads, b.heads, "the edits must be concurrent");

    let (a_end, b_end) = tokio::join!(
        alice.wait_heads(&doc, &b.heads, DEADLINE),
        bob.wait_heads(&doc, &a.heads, DEADLINE),
    );
    let (a_end, b_end) = (a_end?, b_end?);
    assert_eq!(a_end.sorted_heads(), b_end.sorted_heads());
    assert_eq!(a_end.doc, b_end.doc);
    assert_eq!(a_end.doc["customers"]["c1"]["name"], json!("王伟"));
    assert_eq!(
        a_end.doc["vehicles"]["LSVAU2180N2183294"]["status"],
        json!("in_stock")
    );
    assert_eq!(a_end.doc["parts"]["filter"], json!(7));

    // A document nobody has is reported unavailable, not a hang.
    let missing = bob
        .find("automerge:4NMNnkMhL8jXrdJ9jamS58PAVdXu", DEADLINE)
        .await
        .unwrap_err();
    assert_eq!(missing.js_kind(), Some("unavailable"), "{missing}");

    assert!(alice.close().await?.success());
    // Bob failed one command (the missing document), so its exit status says so.
    assert!(!bob.close().await?.success());
    Ok(())
}
