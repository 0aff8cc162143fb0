//! Interop scenarios shared by the tests against dealersync's relay (interop.rs) and
//! against the automerge-repo reference server (js_reference.rs): the same scenario
//! passing on both is what "compatible" means here.

use std::time::Duration;

use anyhow::Context;
use automerge::transaction::Transactable;
use automerge::{ObjType, ROOT, ReadDoc, ScalarValue, Value as AmValue};
use dealersync_core::protocol::DocumentId;
use dealersync_tests::{DocSnapshot, JsClient, RustClient};
use serde_json::json;

/// Generous: two cores are shared with other builds and tests.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// The containers of a site document that the scenarios edit inside.
fn skeleton() -> serde_json::Value {
    json!([
        {"op": "set", "path": ["schemaVersion"], "value": 1},
        {"op": "set", "path": ["customers"], "value": {}},
        {"op": "set", "path": ["parts"], "value": {"oil-filter": {"$counter": 10}}},
    ])
}

pub fn assert_converged(a: &DocSnapshot, b: &DocSnapshot) {
    assert_eq!(
        a.sorted_heads(),
        b.sorted_heads(),
        "replicas differ in heads"
    );
    assert_eq!(a.doc, b.doc, "replicas differ in content");
}

/// Two JS clients find `doc` through the server at `url`; one goes offline, both edit
/// (so the edits are concurrent for certain), it comes back, and both converge. Then
/// both change a counter concurrently, and a third client arriving later gets the
/// merged document from the server alone.
pub async fn two_js_clients_converge(url: &str, doc: &str) -> anyhow::Result<()> {
    let alice = JsClient::spawn("alice", url).await?;
    let bob = JsClient::spawn("bob", url).await?;

    let (a0, b0) = tokio::join!(alice.find(doc, DEADLINE), bob.find(doc, DEADLINE));
    let (a0, b0) = (a0?, b0?);
    assert_converged(&a0, &b0);

    // The containers exist before anyone edits inside them, as in a real site
    // document: two concurrent creations of `customers` would be a conflict where one
    // map wins and the other's contents are hidden.
    let init = alice.change(doc, skeleton()).await?;
    bob.wait_heads(doc, &init.heads, DEADLINE)
        .await
        .context("bob waits for alice's skeleton")?;

    bob.call(json!({"cmd": "offline"})).await?;
    let a1 = alice
        .change(
            doc,
            json!([
                {"op": "set", "path": ["customers", "c-alice"], "value": {"name": "王伟"}},
                {"op": "set", "path": ["note"], "value": "from alice"},
            ]),
        )
        .await?;
    let b1 = bob
        .change(
            doc,
            json!([
                {"op": "set", "path": ["customers", "c-bob"], "value": {"name": "李娜"}},
                {"op": "set", "path": ["note"], "value": "from bob"},
            ]),
        )
        .await?;
    assert!(
        b1.doc["customers"].get("c-alice").is_none(),
        "bob was offline, his edit must be concurrent: {b1:?}"
    );
    bob.call(json!({"cmd": "online", "timeoutMs": 10_000}))
        .await?;

    let (a2, b2) = tokio::join!(
        alice.wait_heads(doc, &b1.heads, DEADLINE),
        bob.wait_heads(doc, &a1.heads, DEADLINE),
    );
    let a2 = a2.context("alice waits for bob's offline edit")?;
    let b2 = b2.context("bob, back online, waits for alice's edit")?;
    assert_converged(&a2, &b2);
    assert_eq!(a2.doc["customers"]["c-alice"]["name"], json!("王伟"));
    assert_eq!(a2.doc["customers"]["c-bob"]["name"], json!("李娜"));
    // The same key written on both sides: automerge picks one winner, the same on
    // every replica (assert_converged checked that).
    assert!(
        a2.doc["note"] == json!("from alice") || a2.doc["note"] == json!("from bob"),
        "{}",
        a2.doc
    );
    assert_eq!(a2.heads.len(), 2, "merged, not yet built upon: two heads");

    // Counter changes from both sides add up rather than overwrite.
    let (a3, b3) = tokio::join!(
        alice.change(
            doc,
            json!([{"op": "increment", "path": ["parts", "oil-filter"], "by": -3}])
        ),
        bob.change(
            doc,
            json!([{"op": "increment", "path": ["parts", "oil-filter"], "by": -2}])
        ),
    );
    let (a3, b3) = (a3?, b3?);
    let (a4, b4) = tokio::join!(
        alice.wait_heads(doc, &b3.heads, DEADLINE),
        bob.wait_heads(doc, &a3.heads, DEADLINE),
    );
    let a4 = a4.context("alice waits for bob's counter change")?;
    let b4 = b4.context("bob waits for alice's counter change")?;
    assert_converged(&a4, &b4);
    assert_eq!(a4.doc["parts"]["oil-filter"], json!(5));

    // A client that arrives later gets the merged document from the server alone.
    let carol = JsClient::spawn("carol", url).await?;
    carol.find(doc, DEADLINE).await?;
    let c = carol.wait_heads(doc, &a4.heads, DEADLINE).await?;
    assert_converged(&a4, &c);

    for client in [alice, bob, carol] {
        let name = client.name().to_string();
        let status = client.close().await?;
        assert!(status.success(), "{name} failed a command: {status}");
    }
    Ok(())
}

/// A JS client and a Rust engine client sync `doc` through the server at `url`, edit
/// concurrently, and converge to the same heads and content; each reads the other's
/// types as written (scalar strings stay scalar, counters stay counters).
pub async fn js_and_rust_converge(url: &str, doc: &DocumentId) -> anyhow::Result<()> {
    let doc_url = doc.url();
    let js = JsClient::spawn("js", url).await?;
    let mut rust = RustClient::connect("rust", url, DEADLINE).await?;
    js.find(&doc_url, DEADLINE).await?;
    rust.open(doc, DEADLINE).await?;
    let j0 = js.change(&doc_url, skeleton()).await?;
    rust.wait_heads(doc, &j0.heads, DEADLINE).await?;

    // JS edits first; the Rust client edits before reading anything from the socket,
    // so it has not seen the JS change: the two are concurrent.
    let j1 = js
        .change(
            &doc_url,
            json!([
                {"op": "set", "path": ["customers", "c-js", "name"], "value": "张伟"},
                {"op": "set", "path": ["customers", "c-js", "notes"], "value": {"$text": "想要白色"}},
                {"op": "set", "path": ["updatedAt"], "value": 1_700_000_000_000_i64},
            ]),
        )
        .await?;
    let r1 = rust
        .change(doc, |tx| {
            let (_, customers) = tx.get(ROOT, "customers")?.expect("skeleton");
            let c = tx.put_object(&customers, "c-rust", ObjType::Map)?;
            tx.put(&c, "name", "李强")?;
            let (_, parts) = tx.get(ROOT, "parts")?.expect("skeleton");
            tx.put(&parts, "brake-pad", ScalarValue::counter(4))?;
            tx.increment(&parts, "oil-filter", -1)?;
            tx.put(ROOT, "updatedAt", 1_700_000_000_001_i64)?;
            Ok(())
        })
        .await?;
    let r1: Vec<String> = r1.iter().map(|h| h.to_string()).collect();
    assert!(
        j1.heads.iter().all(|h| !r1.contains(h)) && j1.doc["customers"].get("c-rust").is_none(),
        "the edits must be concurrent"
    );

    // Each sees the other's change.
    let j2 = js.wait_heads(&doc_url, &r1, DEADLINE).await?;
    rust.wait_heads(doc, &j1.heads, DEADLINE).await?;
    rust.wait_synced(doc, DEADLINE).await?;
    assert_eq!(j2.sorted_heads(), rust.heads(doc));
    assert_eq!(Some(&j2.doc), rust.document_json(doc).as_ref());

    // Types survive the trip: the JS scalar string is a scalar in Rust, its text is
    // text, and the Rust counter is a counter in JS (it can be incremented there).
    assert_eq!(j2.doc["customers"]["c-rust"]["name"], json!("李强"));
    assert_eq!(j2.doc["parts"]["oil-filter"], json!(9));
    {
        let am = rust.document(doc).expect("open");
        let (_, customers) = am.get(ROOT, "customers")?.expect("customers");
        let (_, c_js) = am.get(&customers, "c-js")?.expect("c-js");
        match am.get(&c_js, "name")? {
            Some((AmValue::Scalar(s), _)) => assert_eq!(s.as_ref(), &ScalarValue::from("张伟")),
            other => panic!("JS ImmutableString must arrive as a scalar string: {other:?}"),
        }
        assert!(
            matches!(
                am.get(&c_js, "notes")?,
                Some((AmValue::Object(ObjType::Text), _))
            ),
            "JS text must arrive as text"
        );
    }
    let j3 = js
        .change(
            &doc_url,
            json!([{"op": "increment", "path": ["parts", "brake-pad"], "by": -1}]),
        )
        .await?;
    assert_eq!(j3.doc["parts"]["brake-pad"], json!(3));
    rust.wait_heads(doc, &j3.heads, DEADLINE).await?;
    assert_eq!(
        rust.document_json(doc).expect("open")["parts"]["brake-pad"],
        json!(3)
    );
    assert_eq!(rust.heads(doc), j3.sorted_heads());
    assert!(
        rust.errors().is_empty(),
        "server errors: {:?}",
        rust.errors()
    );

    rust.close().await?;
    assert!(js.close().await?.success());
    Ok(())
}

/// Round after round, one JS client drops its connection while another edits at the
/// same moment; the first comes back and must get the edit. Returns how many rounds
/// the returning client did not get the edit within `wait` (0 for a correct server).
pub async fn reconnect_rounds(
    url: &str,
    doc: &str,
    rounds: usize,
    wait: std::time::Duration,
) -> anyhow::Result<usize> {
    let writer = JsClient::spawn("writer", url).await?;
    let roamer = JsClient::spawn("roamer", url).await?;
    writer.find(doc, DEADLINE).await?;
    roamer.find(doc, DEADLINE).await?;
    let mut missed = 0;
    for round in 0..rounds {
        let (off, edit) = tokio::join!(
            roamer.call(json!({"cmd": "offline"})),
            writer.set(doc, &["round"], json!(round)),
        );
        off?;
        let edit = edit?;
        roamer
            .call(json!({"cmd": "online", "timeoutMs": 10_000}))
            .await?;
        match roamer.wait_heads(doc, &edit.heads, wait).await {
            Ok(_) => {}
            Err(e) if e.js_kind() == Some("timeout") => missed += 1,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(missed)
}
