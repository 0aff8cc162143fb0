//! `POST /api/conflicts/{id}/resolve` against the real binary: the conflict report
//! offers the options with the customers' names, a manager of the site settles a
//! double booking through the relay, head office and consultants may not, and the
//! resolution and the planning writes are in the audit log under the caller.
//! Network: see `reports_fixture`.

mod common;
mod reports_fixture;

use automerge::ActorId;
use dealersync_core::domain::{self, VehicleAction};
use dealersync_core::schema::VehicleStatus;
use dealersync_server::registry::DocumentWriter;
use reports_fixture::{Net, rows};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The first vehicle of agent a1 (fixture), reserved for k1 on one tablet and for k2
/// on another, both synced.
const VIN: &str = "LDS00000000000001";

async fn double_booked() -> Net {
    Net::start_with(|writer, docs| {
        writer
            .edit(docs["a1"], &mut |doc| {
                let mut other = doc.fork().with_actor(ActorId::from(b"tablet-b".to_vec()));
                let reserve = |c: &str| VehicleAction::Reserve { customer: c.into() };
                let t = dealersync_core::time::now_ms();
                domain::move_vehicle(doc, VIN, &reserve("k1"), "c1", t)?;
                domain::move_vehicle(&mut other, VIN, &reserve("k2"), "c1b", t + 1)?;
                doc.merge(&mut other).expect("merge");
                Ok(())
            })
            .unwrap();
    })
    .await
}

/// The double bookings of a conflict report (the fixture's customers also share a
/// phone: a duplicate customer that stays open).
fn bookings(report: &Value) -> Vec<&Value> {
    rows(report, "conflicts")
        .iter()
        .filter(|c| c["kind"] == "double_booking")
        .collect()
}

fn the_conflict(report: &Value) -> &Value {
    let listed = bookings(report);
    assert_eq!(listed.len(), 1, "{report}");
    listed[0]
}

fn audit_users(audit: &Value) -> Vec<(String, String)> {
    audit
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {audit}"))
        .iter()
        .map(|r| {
            (
                r["user"].as_str().unwrap_or("").to_string(),
                r["device"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_manager_settles_a_double_booking_over_http_and_it_is_audited() {
    let net = double_booked().await;
    let ho = net.token("head_office", "hq");
    let consultant = net.token("consultant", "a1");
    let other_manager = net.token("manager", "a2");
    let admin = net.token("admin", "hq");
    let manager = common::run_bin(
        &[
            "token",
            "--role",
            "manager",
            "--sub",
            "li.manager",
            "--site",
            "dc",
            "--device",
            "office-pc",
        ],
        &net.server.data_dir,
    )
    .trim()
    .to_string();

    let report = net.ok("/api/reports/conflicts", &manager).await;
    let c = the_conflict(&report);
    assert_eq!(c["kind"], "double_booking");
    assert_eq!(c["resolvable"], true);
    assert_eq!(c["choices"]["choose"], "customer");
    let options: Vec<(&str, &str)> = rows(&c["choices"], "options")
        .iter()
        .map(|o| (o["value"].as_str().unwrap(), o["status"].as_str().unwrap()))
        .collect();
    assert_eq!(options, [("k1", "reserved"), ("k2", "reserved")]);
    assert_eq!(c["names"]["k1"], "customer k1", "{c}");
    let id = c["id"].as_str().unwrap().to_string();
    let path = format!("/api/conflicts/{id}/resolve");

    // Head office sees it but reads site documents only; a consultant uses the field
    // client; the manager of another agent does not see it at all.
    let ho_view = net.ok("/api/reports/conflicts", &ho).await;
    assert_eq!(the_conflict(&ho_view)["resolvable"], false);
    for (token, want) in [
        (&ho, StatusCode::FORBIDDEN),
        (&consultant, StatusCode::FORBIDDEN),
        (&other_manager, StatusCode::NOT_FOUND),
    ] {
        let (status, body) = net
            .send(Method::POST, &path, token, json!({"keep": "k2"}))
            .await;
        assert_eq!(status, want, "{body}");
    }
    let (status, body) = net
        .send(Method::POST, &path, &manager, json!({"keep": "k9"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("\"k9\" is not one of the competing customers: k1, k2"),
        "{body}"
    );
    let (status, body) = net
        .send(
            Method::POST,
            &path,
            &manager,
            json!({"keep": "k2", "extra": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let before = net.stored_sites().1;
    let unchanged = before.iter().find(|d| d.site.id == "a1").unwrap();
    assert_eq!(unchanged.vehicles[VIN].status, VehicleStatus::Reserved);

    let (status, body) = net
        .send(Method::POST, &path, &manager, json!({"keep": "k2"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["chosen"], "k2");
    assert_eq!(body["sites"], json!(["a1"]));
    let after = net.ok("/api/reports/conflicts", &manager).await;
    assert!(bookings(&after).is_empty(), "{after}");
    let (_, sites) = net.stored_sites();
    let a1 = sites.iter().find(|d| d.site.id == "a1").unwrap();
    let v = &a1.vehicles[VIN];
    assert_eq!(
        (v.status, v.reserved_for.as_deref()),
        (VehicleStatus::Reserved, Some("k2"))
    );
    // Settled once: asking again is a clear 404.
    let (status, body) = net
        .send(Method::POST, &path, &manager, json!({"keep": "k2"}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    let audit = net
        .ok(
            &format!("/api/audit?doc={}&limit=1", net.docs["a1"]),
            &admin,
        )
        .await;
    assert_eq!(
        audit_users(&audit),
        [("li.manager".to_string(), "office-pc".to_string())]
    );
}

#[tokio::test]
async fn planning_writes_are_in_the_audit_log_with_user_and_device() {
    let net = Net::start().await;
    let admin = net.token("admin", "hq");
    let ho = common::run_bin(
        &[
            "token",
            "--role",
            "head_office",
            "--sub",
            "zhao.hq",
            "--site",
            "hq",
            "--device",
            "hq-laptop",
        ],
        &net.server.data_dir,
    )
    .trim()
    .to_string();
    let registry = dealersync_server::registry::Registry::open_in(&net.server.data_dir).unwrap();
    let network = registry.network_document().unwrap().unwrap();
    let audit = |doc: String| {
        let (net, admin) = (&net, &admin);
        async move {
            audit_users(
                &net.ok(&format!("/api/audit?doc={doc}&limit=100"), admin)
                    .await,
            )
        }
    };
    let before = audit(network.to_string()).await.len();
    let writes = [
        (
            Method::PUT,
            "/api/targets".to_string(),
            json!({"targets": [{"site": "dc", "period": "2026", "units": 12, "revenue": 0}]}),
        ),
        (
            Method::PUT,
            "/api/catalogue/SDN-A".to_string(),
            json!({"name": "悦行", "cost": 9_000_000, "listPrice": 10_800_000}),
        ),
        (
            Method::PUT,
            "/api/discount-limits/consultant".to_string(),
            json!({"limit": 300_000}),
        ),
        (
            Method::PUT,
            "/api/contests/nov".to_string(),
            json!({"name": "十一月冲刺", "period": "2026-11", "metric": "units",
                   "members": "sites", "teams": [{"name": "A", "members": ["a1"]}, {"name": "B", "members": ["a2"]}]}),
        ),
        (Method::DELETE, "/api/contests/nov".to_string(), Value::Null),
    ];
    for (method, path, body) in writes {
        let (status, answer) = net.send(method, &path, &ho, body).await;
        assert!(status.is_success(), "{path}: {status} {answer}");
    }
    let rows = audit(network.to_string()).await;
    let ours: Vec<_> = rows
        .iter()
        .filter(|(u, d)| u == "zhao.hq" && d == "hq-laptop")
        .collect();
    assert_eq!(
        (rows.len() - before, ours.len()),
        (5, 5),
        "one audited change per planning write: {rows:?}"
    );

    // A consultant's target is written in the site document, audited there.
    let (status, body) = net
        .send(
            Method::PUT,
            "/api/targets",
            &admin,
            json!({"targets": [{"site": "a1", "consultant": "c1", "period": "2026-12", "units": 2, "revenue": 0}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let site_rows = audit(net.docs["a1"].to_string()).await;
    assert_eq!(site_rows[0].0, "admin-hq", "{site_rows:?}");
}
