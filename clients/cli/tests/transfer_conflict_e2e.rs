//! Two head-office laptops decide the demo's pending transfer differently while
//! offline: the CLI and the relay's conflict report list it, `conflicts resolve --keep`
//! settles it, and it clears on the other laptop once it syncs. Also: a distribution
//! centre shipping parts to itself gets a clear refusal.

mod common;

use common::{Device, Server, http_get};
use serde_json::Value;

fn transfer_conflicts(d: &Device) -> Vec<Value> {
    d.json(&["conflicts", "list"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "transfer_decision")
        .cloned()
        .collect()
}

#[test]
fn concurrent_transfer_decisions_are_listed_and_settled() {
    let server = Server::start_demo();
    let zhou = Device::new("head office laptop a");
    let zhou_token = server.token("zhou.min", "head_office", "hq");
    zhou.login(&server, &zhou_token);
    let chen = Device::new("head office laptop b");
    chen.login(&server, &server.token("chen.jie", "head_office", "hq"));

    let t = zhou.json(&["report", "transfers"]);
    let pending = t["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["status"] == "pending")
        .expect("the demo has a transfer waiting for head office")
        .clone();
    let id = pending["id"].as_str().unwrap().to_string();
    let short = &id[..8];

    // Both decide with no network in between (neither has synced the other's).
    zhou.ok(&["transfer", "approve", short, "--note", "同意"]);
    chen.ok(&["transfer", "refuse", short, "--note", "南区库存够"]);
    assert!(
        transfer_conflicts(&zhou).is_empty(),
        "one decision alone is fine"
    );
    zhou.ok(&["sync"]);
    chen.ok(&["sync"]);
    zhou.ok(&["sync"]);

    let found = transfer_conflicts(&zhou);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(transfer_conflicts(&chen), found, "same conflict, same id");
    let cid = found[0]["id"].as_str().unwrap().to_string();
    let summary = found[0]["summary"].as_str().unwrap();
    assert!(
        summary.contains("approved by zhou.min") && summary.contains("refused by chen.jie"),
        "{summary}"
    );
    // The relay's conflict report lists it to head office.
    let (status, body) =
        http_get(&server.addr, "/api/reports/conflicts", Some(&zhou_token)).unwrap();
    assert_eq!(status, 200, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    let ids: Vec<&str> = report["conflicts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert!(ids.contains(&cid.as_str()), "{body}");

    let err = zhou.fails(&["conflicts", "resolve", &cid[..24], "--keep", "maybe"]);
    assert!(err.contains("approved") && err.contains("refused"), "{err}");
    zhou.ok(&["conflicts", "resolve", &cid[..24], "--keep", "approved"]);
    assert!(transfer_conflicts(&zhou).is_empty());
    zhou.ok(&["sync"]);
    chen.ok(&["sync"]);
    assert!(transfer_conflicts(&chen).is_empty());
    let t = chen.json(&["report", "transfers"]);
    let row = t["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id.as_str())
        .unwrap();
    assert_eq!(row["status"], "approved", "{row}");
    assert_eq!(row["decidedBy"], "zhou.min", "{row}");

    // Parts: a distribution centre does not ship to itself, and says so.
    let north = Device::new("north manager");
    north.login(&server, &server.token("sun.hao", "manager", "dc-north"));
    let err = north.fails(&[
        "--site",
        "dc-north",
        "parts",
        "ship",
        "--to",
        "dc-north",
        "WIPER-B=1",
    ]);
    assert!(err.contains("would ship to itself"), "{err}");
}
