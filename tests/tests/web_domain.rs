//! The field app's domain module (clients/web/src/domain, TypeScript on automerge JS)
//! writes documents that core reads without loss: node replays core's vectors with the
//! app's module, and core hydrates the result, compares it value for value and type
//! for type with what core itself wrote, and finds no conflict left after the app's
//! resolutions. The app's own unit tests (`npm test` in clients/web) run the same
//! vectors without Rust.

use std::process::Stdio;

use automerge::{AutoCommit, ReadDoc, ScalarValue, Value};
use dealersync_core::conflicts;
use dealersync_core::domain;
use dealersync_core::schema::{
    CustomerArea, CustomerStatus, EventKind, SiteDocument, VehicleStatus, typed_json,
};
use dealersync_tests::{ensure_web_npm, web_dir};
use serde_json::Value as Json;

fn vector(name: &str) -> Json {
    let path = web_dir().join("../../core/vectors").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Runs the app's writer script; returns the directory holding its documents.
fn written_by_the_app() -> tempfile::TempDir {
    ensure_web_npm().expect("npm ci in clients/web");
    let out = tempfile::tempdir().unwrap();
    let run = std::process::Command::new("node")
        .args(["--import", "tsx", "scripts/write-vector-docs.ts"])
        .arg(out.path())
        .current_dir(web_dir())
        .stdin(Stdio::null())
        .output()
        .expect("run node");
    assert!(
        run.status.success(),
        "write-vector-docs.ts failed: {}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    out
}

fn load(dir: &tempfile::TempDir, name: &str) -> AutoCommit {
    AutoCommit::load(&std::fs::read(dir.path().join(name)).unwrap()).unwrap()
}

/// The app's own unit tests (`npm test`: node's runner over core's vectors), run here
/// so that `cargo test --workspace` is the whole suite.
#[test]
fn the_app_domain_module_passes_cores_vectors() {
    ensure_web_npm().expect("npm ci in clients/web");
    let run = std::process::Command::new("npm")
        .args(["test", "--silent"])
        .current_dir(web_dir())
        .stdin(Stdio::null())
        .output()
        .expect("run npm test");
    assert!(
        run.status.success(),
        "npm test failed: {}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
}

#[test]
fn a_document_written_by_the_app_is_read_by_core_without_loss() {
    let dir = written_by_the_app();
    let doc = load(&dir, "site-day.automerge");
    // Value for value and type for type what core wrote for the same operations:
    // scalar strings (no text), integers (no floats), the same nulls and absent keys.
    assert_eq!(typed_json(&doc), vector("site-day.json")["document"]);

    let site = SiteDocument::read(&doc).expect("core hydrates the app's document");
    domain::check_site_document(&doc).unwrap();
    let c1 = &site.customers["c-1"];
    assert_eq!(c1.name, "张伟");
    assert_eq!(c1.phone, "+8613812345678");
    let order = c1
        .events
        .iter()
        .find(|e| e.kind == EventKind::Order)
        .unwrap();
    assert_eq!(order.amount, Some(14_800_000), "money in fen");
    let sold = site
        .vehicles
        .values()
        .find(|v| v.sold_to.as_deref() == Some("c-1"))
        .unwrap();
    assert_eq!(sold.status, VehicleStatus::Sold);
    assert_eq!(
        sold.updated_at, order.at,
        "the sale and its order are one change"
    );
    assert_eq!(site.walk_ins["w-1"].party_size, 3);
    assert_eq!(site.forecasts["2026-04"]["SDN-A"].quantity, 14);

    // Checked at the automerge level too: the phone is a scalar string, the price an
    // integer, the time an integer in ms.
    let customers = doc.get(automerge::ROOT, "customers").unwrap().unwrap().1;
    let c1_obj = doc.get(&customers, "c-1").unwrap().unwrap().1;
    let phone = doc.get(&c1_obj, "phone").unwrap().unwrap().0;
    assert!(
        matches!(phone, Value::Scalar(ref s) if matches!(s.as_ref(), ScalarValue::Str(_))),
        "{phone:?}"
    );
    let created = doc.get(&c1_obj, "createdAt").unwrap().unwrap().0;
    assert!(
        matches!(created, Value::Scalar(ref s) if matches!(s.as_ref(), ScalarValue::Int(t) if *t > 1_700_000_000_000)),
        "{created:?}"
    );
}

/// Referrals, follow-ups, areas, a lost customer, complaints, discounts, a transfer
/// request and an incoming transfer written by the app: core reads every record back as it wrote them.
#[test]
fn care_written_by_the_app_is_read_by_core_without_loss() {
    let dir = written_by_the_app();
    let doc = load(&dir, "care.automerge");
    assert_eq!(typed_json(&doc), vector("care.json")["document"]);
    let site = SiteDocument::read(&doc).expect("core hydrates the app's document");
    domain::check_site_document(&doc).unwrap();
    assert_eq!(site.customers["c-2"].referred_by.as_deref(), Some("c-1"));
    assert!(site.customers["c-1"].next_follow_up.is_some());
    assert_eq!(site.customers["c-1"].area, Some(CustomerArea::Prefecture));
    let lost = &site.customers["c-3"];
    assert_eq!(
        (
            lost.status,
            lost.lost_reason.as_deref(),
            lost.lost_to.as_deref(),
            lost.area
        ),
        (CustomerStatus::Lost, Some("价格"), Some("比亚迪"), None)
    );
    assert!(lost.lost_at.is_some());
    // The showroom's figure typed again on the phone kept its distribution centre's
    // adjustment beside it.
    let cell = &site.forecasts["2026-04"]["SDN-A"];
    assert_eq!(
        (cell.quantity, cell.adjusted.as_ref().map(|a| a.quantity)),
        (15, Some(10))
    );
    // And the parts shipment core wrote is as core wrote it (the typed JSON above).
    assert_eq!(site.parts_shipments["ps-1"].lines["OIL-F"], 6);
    let k = &site.complaints["k-1"];
    assert_eq!(
        (k.owner.as_str(), k.resolution.as_deref()),
        ("sun.hao", Some("赠送一次保养"))
    );
    let t = &site.transfers["tr-1"];
    assert_eq!(
        (t.to.as_str(), t.requested_by.as_str()),
        ("ag-s1", "sun.hao")
    );
    let sold = site
        .vehicles
        .values()
        .find(|v| v.sold_to.as_deref() == Some("c-1"))
        .unwrap();
    assert_eq!(sold.discount_approved_by.as_deref(), Some("sun.hao"));
    let incoming = site
        .vehicles
        .values()
        .find(|v| v.transfer_id.as_deref() == Some("tr-in"))
        .unwrap();
    assert_eq!(incoming.status, VehicleStatus::InStock);
    assert!(conflicts::detect(&[("sr-1", &doc)]).is_empty());
}

#[test]
fn conflicts_resolved_by_the_app_are_gone_for_core() {
    let dir = written_by_the_app();
    let doc = load(&dir, "conflicts-resolved.automerge");
    assert_eq!(conflicts::detect(&[("sr-1", &doc)]), vec![]);
    let after = vector("conflicts.json")["after"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(typed_json(&doc), after.last().unwrap()["document"]);
}
