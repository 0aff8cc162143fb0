//! A site's monthly archives through a distribution centre's relay (docs/growth.md,
//! docs/tiers.md): head office carries the sites over; the DC relay copies each site's
//! chain with the site tree, so a device syncing through the DC hands its late changes
//! in to an archive during its grace week (the DC forwards them to head office), is
//! refused after it (reads still served), and follows the new working document. The
//! DC keeps the chain across a restart, with head office out of reach, and refuses to
//! run a carry-over of its own.
//!
//! Time moves as in `server/tests/periods.rs`: a carry-over into a month long past
//! makes an archive whose grace week is over, one into next month an archive whose
//! grace week is ahead.

use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{ChangeHash, ROOT, ReadDoc};
use dealersync_core::protocol::DocumentId;
use dealersync_core::time::{next_month_key, now_ms};
use dealersync_tests::tiers::{
    Device, downstream, head_office, relay_token, site_chain, wait_chain, wait_drained,
};
use dealersync_tests::{RustClient, ServerProcess, sync_message};
use serde_json::Value;

/// Generous bounds: debug binaries on a busy 2-core machine, and the link's back-off
/// after head office comes back.
const SYNC: Duration = Duration::from_secs(60);
const DRAIN: Duration = Duration::from_secs(120);

/// `archive --month` through head office's running relay, as its timer runs it.
async fn archive(hq: &ServerProcess, admin: &str, month: &str) -> String {
    hq.admin(&[
        "archive",
        "--month",
        month,
        "--server",
        &hq.http_url(),
        "--token",
        admin,
    ])
    .await
    .expect("archive at head office")
}

/// The names of the customers in a site document as automerge JSON.
fn customer_names(doc: &Value) -> Vec<String> {
    doc["customers"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect()
}

/// Adds a customer to `agent-a`'s document on the field device (no sync).
async fn add_customer(device: &Device, name: &str, phone: &str) {
    device
        .json(&[
            "--site", "agent-a", "customer", "add", "--name", name, "--phone", phone,
        ])
        .await
        .expect("customer add");
}

/// The names of the customers of `site` on the field device.
async fn device_names(device: &Device, site: &str) -> Vec<String> {
    let mut names: Vec<String> = device
        .customers(site)
        .await
        .expect("customer list")
        .iter()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect();
    names.sort();
    names
}

/// Opens `doc` on `client` and waits until it holds a customer named `name`.
async fn wait_customer(client: &mut RustClient, doc: &DocumentId, name: &str) {
    client.open(doc, SYNC).await.expect("open");
    let d = *doc;
    client
        .pump_until(&format!("customer {name} in {doc}"), DRAIN, |c| {
            c.document_json(&d)
                .is_some_and(|v| customer_names(&v).iter().any(|n| n == name))
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Writes a change into `doc` as `token` at `relay` the way a client that ignores the
/// READ_ONLY flag would (automerge's own client never sends it), and returns the
/// relay's `error`. `reader` holds the document and makes the change.
async fn push_refused(
    relay: &ServerProcess,
    token: &str,
    reader: &mut RustClient,
    doc: &DocumentId,
    name: &str,
) -> (String, Vec<ChangeHash>) {
    let heads = reader
        .change(doc, |tx| {
            tx.put(ROOT, "lateAfterGrace", 1)?;
            Ok(())
        })
        .await
        .expect("a local change");
    let am = reader.document(doc).expect("open");
    let changes = heads
        .iter()
        .map(|h| am.get_change_by_hash(h).expect("own change"))
        .collect();
    let mut pusher = RustClient::connect(name, &relay.ws_url_with_token(token), SYNC)
        .await
        .expect("connect the pusher");
    pusher
        .send_sync_message(doc, sync_message(heads.clone(), changes))
        .await
        .expect("push");
    pusher
        .pump_until("the relay's error", SYNC, |p| !p.errors().is_empty())
        .await
        .expect("an error frame");
    (pusher.errors()[0].clone(), heads)
}

/// Whether `relay` stores any of `changes` in `doc` (read by a fresh client of
/// `token`).
async fn stored_any(
    relay: &ServerProcess,
    token: &str,
    doc: &DocumentId,
    name: &str,
    changes: &[ChangeHash],
) -> bool {
    let mut fresh = RustClient::connect(name, &relay.ws_url_with_token(token), SYNC)
        .await
        .expect("connect");
    fresh.open(doc, SYNC).await.expect("reads are served");
    let am = fresh.document(doc).expect("open");
    changes.iter().any(|h| am.get_change_by_hash(h).is_some())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_behind_a_dc_hands_late_changes_in_to_head_offices_archive_in_its_grace_week() {
    let mut hq = head_office().await.unwrap();
    let relay = relay_token(&hq, "dc-north-relay", "dc-north")
        .await
        .unwrap();
    let mut dc = downstream(&hq.http_url(), &relay, &hq, &[]).await.unwrap();
    let kim = hq.token("kim", "consultant", "agent-a").await.unwrap();
    let admin = hq.token("ops", "admin", "hq").await.unwrap();
    let phone = Device::new().unwrap();
    phone.login_at(&dc, &kim, SYNC).await.unwrap();
    add_customer(&phone, "Before", "13800000001").await;
    phone.sync_within(SYNC).await.unwrap();
    wait_drained(&dc, &kim, DRAIN).await.unwrap();
    let first = site_chain(&hq, &admin, "agent-a").await.unwrap();
    assert_eq!(first.len(), 1, "never carried over: {first:?}");

    // A carry-over into a month long past: the first document is an archive whose
    // grace week is over. The DC copies the chain and the phone follows through it.
    let out = archive(&hq, &admin, "2020-01").await;
    assert!(out.contains(&format!("archived {}", first[0])), "{out}");
    let chain = wait_chain(&dc, &kim, "agent-a", 2, SYNC).await.unwrap();
    assert_eq!(chain, site_chain(&hq, &admin, "agent-a").await.unwrap());
    let (closed, working) = (chain[0], chain[1]);
    // Carry-overs are head office's: the DC's own admin cannot run one there.
    let dc_admin = dc.token("dc-ops", "admin", "dc-north").await.unwrap();
    let refused = reqwest::Client::new()
        .post(format!("{}/api/admin/archive", dc.http_url()))
        .bearer_auth(&dc_admin)
        .json(&serde_json::json!({ "month": next_month_key(now_ms()) }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 409);
    assert_eq!(site_chain(&dc, &kim, "agent-a").await.unwrap(), chain);
    phone.sync_within(SYNC).await.unwrap();
    assert_eq!(device_names(&phone, "agent-a").await, vec!["Before"]);

    // After its grace week, the archive is read-only through the DC: reads are served,
    // a change is refused there with an error frame and not stored, so it is never
    // forwarded to head office.
    let mut reader = RustClient::connect("kim-reader", &dc.ws_url_with_token(&kim), SYNC)
        .await
        .unwrap();
    wait_customer(&mut reader, &closed, "Before").await;
    let (error, refused) = push_refused(&dc, &kim, &mut reader, &closed, "kim-pusher").await;
    assert!(error.contains("read-only"), "{error}");
    assert!(!stored_any(&dc, &kim, &closed, "kim-check", &refused).await);

    // The phone writes offline over the month's end; head office carries over into
    // next month, so the document the phone wrote is an archive in its grace week.
    add_customer(&phone, "Late", "13800000002").await;
    let next = next_month_key(now_ms());
    let out = archive(&hq, &admin, &next).await;
    assert!(out.contains(&format!("archived {working}")), "{out}");
    let chain = wait_chain(&dc, &kim, "agent-a", 3, SYNC).await.unwrap();
    assert_eq!(chain, site_chain(&hq, &admin, "agent-a").await.unwrap());
    let current = chain[2];

    // The phone syncs through the DC only: its late customer lands in head office's
    // archive, and the phone follows the new working document.
    phone.sync_within(SYNC).await.unwrap();
    let mut office = RustClient::connect("ops-reader", &hq.ws_url_with_token(&admin), SYNC)
        .await
        .unwrap();
    wait_customer(&mut office, &working, "Late").await;
    // Head office forwards the late customer into the working document (docs/growth.md,
    // late changes forward); the phone gets it through the DC on a later sync.
    wait_customer(&mut office, &current, "Late").await;
    let deadline = std::time::Instant::now() + SYNC;
    while device_names(&phone, "agent-a").await != ["Before", "Late"] {
        assert!(
            std::time::Instant::now() < deadline,
            "the forwarded customer never reached the phone"
        );
        phone.sync_within(SYNC).await.unwrap();
    }
    add_customer(&phone, "After", "13800000003").await;
    phone.sync_within(SYNC).await.unwrap();
    wait_customer(&mut office, &current, "After").await;
    office.close().await.unwrap();
    reader.close().await.unwrap();

    // The DC keeps the chain across a restart with head office out of reach: the
    // archive in its grace week still takes a late change (handed in once head office
    // is back), the closed one still refuses one and serves reads.
    hq.kill().await.unwrap();
    dc.kill().await.unwrap();
    dc.restart().await.unwrap();
    assert_eq!(site_chain(&dc, &kim, "agent-a").await.unwrap(), chain);
    let mut late = RustClient::connect("kim-late", &dc.ws_url_with_token(&kim), SYNC)
        .await
        .unwrap();
    late.open(&working, SYNC).await.unwrap();
    let handed_in = late
        .change(&working, |tx| {
            tx.put(ROOT, "handedInWhileCutOff", 1)?;
            Ok(())
        })
        .await
        .unwrap();
    late.wait_synced(&working, SYNC).await.unwrap();
    assert!(late.errors().is_empty(), "{:?}", late.errors());
    wait_customer(&mut late, &closed, "Before").await;
    let (error, refused) = push_refused(&dc, &kim, &mut late, &closed, "kim-pusher-2").await;
    assert!(error.contains("read-only"), "{error}");
    assert!(!stored_any(&dc, &kim, &closed, "kim-check-2", &refused).await);

    hq.restart().await.unwrap();
    let mut office = RustClient::connect("ops-reader-2", &hq.ws_url_with_token(&admin), SYNC)
        .await
        .unwrap();
    office.open(&working, SYNC).await.unwrap();
    let hex: Vec<String> = handed_in.iter().map(ChangeHash::to_string).collect();
    office
        .wait_heads(&working, &hex, DRAIN)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", dc.log_tail(3000)));
}
