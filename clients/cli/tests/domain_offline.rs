//! Every domain command of the real binary, offline, on a home holding exactly what a
//! login and sync would have stored: the network document and the site documents, built
//! through `core::domain`, and a login for a consultant, a manager or head office.

mod common;

use automerge::AutoCommit;
use base64::Engine as _;
use common::Device;
use dealersync_cli::home::{Config, Home, SiteEntry, decode_claims};
use dealersync_cli::store::{SqliteStore, StoreOptions};
use dealersync_cli::workspace::Workspace;
use dealersync_core::domain;
use dealersync_core::protocol::DocumentId;
use dealersync_core::schema::{SiteHeader, SiteKind, VehicleModel};
use dealersync_core::store::{Store, WriteBatch};
use serde_json::Value;

const NOW: i64 = 1_790_000_000_000;

fn header(id: &str, kind: SiteKind, parent: Option<&str>) -> SiteHeader {
    SiteHeader {
        id: id.into(),
        name: format!("{id} 站点"),
        kind,
        parent: parent.map(str::to_string),
        channel: None,
    }
}

/// An unsigned-looking JWT with these claims (the client decodes, the server verifies).
fn token(sub: &str, role: &str, site: &str) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    format!(
        "{}.{}.c2ln",
        b64(r#"{"alg":"HS256","typ":"JWT"}"#),
        b64(&format!(
            r#"{{"sub":"{sub}","role":"{role}","site":"{site}","exp":4102444800,"jti":"t-{sub}"}}"#
        ))
    )
}

/// A device logged in as `sub` with the network (hq → dc → rs) on it.
fn device(sub: &str, role: &str, site: &str) -> Device {
    let d = Device::new(sub);
    let sites = [
        header("hq", SiteKind::HeadOffice, None),
        header("dc", SiteKind::DistributionCentre, Some("hq")),
        header("rs", SiteKind::Roadshow, Some("dc")),
    ];
    let mut net = AutoCommit::new();
    domain::init_network_document(&mut net, NOW).unwrap();
    for s in &sites {
        domain::put_site(&mut net, s, "admin", NOW).unwrap();
    }
    domain::put_model(
        &mut net,
        &VehicleModel {
            code: "SDN-A".into(),
            name: "轿车 A".into(),
            trims: vec!["Comfort".into(), "Luxury".into()],
            cost: 12_000_000,
            list_price: 15_200_000,
        },
        "admin",
        NOW,
    )
    .unwrap();
    // Consultants give up to 10,000 yuan off without a manager.
    domain::set_discount_limit(&mut net, "consultant", 1_000_000, "admin", NOW).unwrap();
    let store =
        SqliteStore::open_file(&d.home().join("store.sqlite"), &StoreOptions::default()).unwrap();
    let network = DocumentId::random();
    let mut batch = WriteBatch {
        created: vec![(network, net.save())],
        ..WriteBatch::default()
    };
    let mut entries = Vec::new();
    for s in &sites {
        let id = DocumentId::random();
        batch
            .created
            .push((id, domain::create_site_document(s, NOW).unwrap().save()));
        entries.push(SiteEntry {
            id: s.id.clone(),
            name: s.name.clone(),
            kind: s.kind.to_string(),
            parent: s.parent.clone(),
            document_id: id,
            archives: Vec::new(),
        });
    }
    store.commit(&batch).unwrap();
    let tok = token(sub, role, site);
    let home = Home {
        dir: d.home().to_path_buf(),
    };
    home.save_config(&Config {
        server: "http://127.0.0.1:9".into(),
        claims: decode_claims(&tok).unwrap(),
        token: tok,
        network,
        sites: entries,
        storage_id: "test-storage".into(),
        tls: Default::default(),
    })
    .unwrap();
    d
}

/// A VIN with a valid check digit.
fn vin(serial: u32) -> String {
    let raw = format!("LSVAU2180N2{serial:06}");
    let mut v: Vec<char> = raw.chars().collect();
    v[8] = domain::check_digit(&raw);
    v.into_iter().collect()
}

fn heads(d: &Device, site: &str) -> Vec<String> {
    let ws = Workspace::open(Home {
        dir: d.home().to_path_buf(),
    })
    .unwrap();
    let doc = ws.pick_site(Some(site)).unwrap();
    let mut am = ws.load(&doc.id).unwrap().unwrap();
    am.get_heads().iter().map(|h| h.to_string()).collect()
}

#[test]
fn customers_offline() {
    let d = device("li", "consultant", "rs");
    let c = d.json(&[
        "customer",
        "add",
        "--name",
        "王伟",
        "--phone",
        "138 0013 8000",
        "--source",
        "roadshow",
        "--model",
        "SDN-A",
    ]);
    let id = c["id"].as_str().unwrap().to_string();
    assert_eq!(c["name"], "王伟");
    assert_eq!(c["phone"], "+8613800138000", "stored normalised");
    assert_eq!(c["source"], "roadshow");
    assert_eq!(c["status"], "lead");
    assert_eq!(c["consultant"], "li");
    let list = d.json(&["customer", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], id.as_str());
    // A unique prefix is enough.
    let shown = d.json(&["customer", "show", &id[..6]]);
    assert_eq!(shown["id"], id.as_str());
    let upd = d.json(&["customer", "update", &id, "--phone", "13900139000"]);
    assert_eq!(upd["phone"], "+8613900139000");
    let st = d.json(&["customer", "status", &id, "test-drive"]);
    assert_eq!(st["status"], "test_drive");
    let ev = d.json(&[
        "customer",
        "event",
        &id,
        "quote",
        "--amount",
        "148,000.50",
        "--note",
        "白色",
    ]);
    assert_eq!(ev["kind"], "quote");
    assert_eq!(ev["amount"], 14_800_050, "yuan typed, fen stored");
    assert_eq!(ev["by"], "li");
    let shown = d.json(&["customer", "show", &id]);
    assert_eq!(shown["events"].as_array().unwrap().len(), 1);
    assert_eq!(
        d.json(&["customer", "list", "--status", "lead"]),
        Value::Array(vec![])
    );
    // A person reads a table.
    let table = d.ok(&["customer", "list"]);
    assert!(table.lines().next().unwrap().starts_with("id"), "{table}");
    assert!(
        table.contains("王伟") && table.contains("test_drive"),
        "{table}"
    );
    // Errors that say what is wrong, and change nothing.
    let before = heads(&d, "rs");
    let err = d.fails(&["customer", "status", &id, "delivered"]);
    assert!(
        err.contains("cannot move from test_drive to delivered"),
        "{err}"
    );
    let err = d.fails(&["customer", "show", "zzz"]);
    assert!(err.contains("no customer"), "{err}");
    let err = d.fails(&["customer", "add", "--name", "X", "--phone", "12345"]);
    assert!(err.contains("phone"), "{err}");
    let err = d.fails(&["customer", "event", &id, "dance"]);
    assert!(
        err.contains("expected one of") && err.contains("test_drive"),
        "{err}"
    );
    assert_eq!(heads(&d, "rs"), before);
    // Never synced: every change is waiting for the server.
    let status = d.json(&["status"]);
    let rs = status["documents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["document"] == "rs")
        .unwrap();
    assert_eq!(rs["access"], "write");
    assert!(rs["unacknowledged"].as_i64().unwrap() >= 4, "{status:#}");
    assert_eq!(rs["lastSync"], Value::Null);
    assert_eq!(rs["conflicts"], 0);
}

#[test]
fn vehicles_parts_and_forecasts_offline() {
    let d = device("li", "consultant", "rs");
    let v = vin(183_294);
    let got = d.json(&[
        "vehicle",
        "receive",
        &v.to_lowercase(),
        "--model",
        "SDN-A",
        "--trim",
        "Comfort",
        "--colour",
        "白",
    ]);
    assert_eq!(got["vin"], v.as_str(), "VINs are upper-cased");
    assert_eq!(got["status"], "in_stock");
    assert_eq!(got["cost"], 12_000_000, "the catalogue's cost");
    assert_eq!(got["listPrice"], 15_200_000);
    let c = d.json(&[
        "customer",
        "add",
        "--name",
        "赵六",
        "--phone",
        "13700137000",
    ])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = d.json(&["vehicle", "reserve", &v, "--customer", &c]);
    assert_eq!(r["status"], "reserved");
    assert_eq!(r["reservedFor"], c.as_str());
    let rel = d.json(&["vehicle", "release", &v]);
    assert_eq!(rel["status"], "in_stock");
    assert_eq!(rel["reservedFor"], Value::Null);
    let err = d.fails(&["vehicle", "sell", &v]);
    assert!(err.contains("--customer"), "{err}");
    let sold = d.json(&["vehicle", "sell", &v, "--customer", &c[..5]]);
    assert_eq!(sold["status"], "sold");
    assert_eq!(sold["soldTo"], c.as_str());
    let del = d.json(&["vehicle", "deliver", &v]);
    assert_eq!(del["status"], "delivered");
    assert_eq!(
        d.json(&["vehicle", "list", "--status", "delivered"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // An invalid VIN says which character is wrong; nothing changes.
    let before = heads(&d, "rs");
    let mut bad = vin(7);
    bad.replace_range(4..5, "I");
    let err = d.fails(&[
        "vehicle", "receive", &bad, "--model", "SDN-A", "--trim", "Comfort", "--colour", "红",
    ]);
    assert!(err.contains("position 5") && err.contains("'I'"), "{err}");
    let err = d.fails(&[
        "vehicle",
        "receive",
        "LSVAU2180N21832",
        "--model",
        "SDN-A",
        "--colour",
        "红",
    ]);
    assert!(err.contains("17 characters"), "{err}");
    let err = d.fails(&[
        "vehicle",
        "receive",
        &vin(8),
        "--model",
        "NOPE",
        "--colour",
        "红",
    ]);
    assert!(err.contains("unknown model"), "{err}");
    assert_eq!(heads(&d, "rs"), before);

    let p = d.json(&["parts", "adjust", "OIL-FILTER", "20"]);
    assert_eq!(p["count"], 20);
    let p = d.json(&["parts", "adjust", "OIL-FILTER", "-3"]);
    assert_eq!(p["count"], 17);
    let err = d.fails(&["parts", "adjust", "OIL-FILTER", "-30"]);
    assert!(err.contains("OIL-FILTER"), "{err}");
    assert_eq!(
        d.json(&["parts", "list"]),
        serde_json::json!([{"part": "OIL-FILTER", "count": 17}])
    );

    let f = d.json(&["forecast", "set", "2026-12", "SDN-A", "14"]);
    assert_eq!(f["quantity"], 14);
    let shown = d.json(&["forecast", "show", "2026-12"]);
    assert_eq!(shown[0]["model"], "SDN-A");
    assert_eq!(shown[0]["quantity"], 14);
    assert_eq!(shown[0]["by"], "li");
    let err = d.fails(&["forecast", "set", "2026-13", "SDN-A", "1"]);
    assert!(err.contains("2026-13"), "{err}");

    // Reports over what the device holds.
    let stock = d.json(&["report", "stock"]);
    assert_eq!(
        stock["totalCount"], 0,
        "the only vehicle was delivered: {stock}"
    );
    let fc = d.json(&["report", "forecast", "--month", "2026-12"]);
    assert!(fc.to_string().contains("SDN-A"), "{fc}");
    let csv = d.ok(&["report", "forecast", "--month", "2026-12", "--csv"]);
    assert!(csv.lines().count() >= 2, "{csv}");
    assert!(csv.lines().next().unwrap().contains(','), "{csv}");
    d.json(&["report", "order-plan", "--month", "2026-12"]);
    d.json(&["report", "kpi", "--period", "2026-Q4"]);
    let err = d.fails(&["report", "kpi", "--period", "2026-Q5"]);
    assert!(err.contains("2026-Q5"), "{err}");
    assert_eq!(d.json(&["conflicts", "list"]), Value::Array(vec![]));
}

/// A vehicle and its customer are one sale: selling and delivering write the customer's
/// order and delivery; a delivery typed on the customer for a car in stock is refused;
/// arrivals enter stock; the KPIs count the delivery once.
#[test]
fn the_sales_floor_offline() {
    let d = device("li", "consultant", "rs");
    let c = d.json(&[
        "customer",
        "add",
        "--name",
        "钱七",
        "--phone",
        "13600136000",
    ])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (sold, coming) = (vin(500), vin(501));
    d.json(&[
        "vehicle", "receive", &sold, "--model", "SDN-A", "--trim", "Comfort", "--colour", "白",
    ]);
    d.json(&[
        "vehicle",
        "receive",
        &coming,
        "--model",
        "SDN-A",
        "--trim",
        "Luxury",
        "--colour",
        "黑",
        "--status",
        "ordered",
        "--eta",
        "2026-12-20",
    ]);
    let listed = d.ok(&["vehicle", "list", "--status", "ordered"]);
    assert!(
        listed.contains("eta") && listed.contains("2026-12-20"),
        "{listed}"
    );

    // Still in stock: a delivery on the customer is refused, nothing written.
    let before = heads(&d, "rs");
    let err = d.fails(&["customer", "event", &c, "delivery", "--vin", &sold]);
    assert!(err.contains("in_stock, not sold"), "{err}");
    assert_eq!(heads(&d, "rs"), before);

    let s = d.json(&[
        "vehicle",
        "sell",
        &sold,
        "--customer",
        &c,
        "--price",
        "146500",
    ]);
    assert_eq!(s["status"], "sold");
    let err = d.fails(&["vehicle", "deliver", &sold, "--at", "2099-01-01 10:00"]);
    assert!(err.contains("in the future"), "{err}");
    let del = d.json(&["vehicle", "deliver", &sold]);
    assert_eq!(del["status"], "delivered");
    let shown = d.json(&["customer", "show", &c]);
    assert_eq!(shown["status"], "delivered");
    let events: Vec<(String, Value, Value)> = shown["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["amount"].clone(),
                e["vin"].clone(),
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            (
                "order".into(),
                Value::from(14_650_000),
                Value::from(sold.as_str())
            ),
            ("delivery".into(), Value::Null, Value::from(sold.as_str())),
        ]
    );
    let err = d.fails(&["customer", "event", &c, "delivery", "--vin", &sold]);
    assert!(err.contains("already delivered"), "{err}");

    let kpi = d.json(&["report", "kpi"]);
    let site_row = kpi["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["level"] == "site" && r["site"] == "rs")
        .unwrap_or_else(|| panic!("{kpi}"))
        .clone();
    assert_eq!(site_row["deliveries"], 1, "{site_row}");
    assert_eq!(site_row["revenue"], 14_650_000, "{site_row}");

    // Walk-ins with no phone are visits; calls have a direction; events take their time.
    let w = d.json(&["walk-in", "add", "--party", "3", "--model", "SDN-A"]);
    assert_eq!(w["partySize"], 3);
    assert_eq!(d.json(&["walk-in", "list"]).as_array().unwrap().len(), 1);
    let call = d.json(&[
        "customer",
        "event",
        &c,
        "call",
        "--direction",
        "outbound",
        "--at",
        "2026-11-28 14:30",
    ]);
    assert_eq!(call["direction"], "outbound");
    assert_eq!(call["at"], 1_795_847_400_000_i64, "14:30 CST is 06:30 UTC");
    let err = d.fails(&["customer", "event", &c, "visit", "--at", "2099-01-01 10:00"]);
    assert!(err.contains("in the future"), "{err}");
    let err = d.fails(&["customer", "event", &c, "visit", "--at", "yesterday"]);
    assert!(err.contains("YYYY-MM-DD HH:MM"), "{err}");
    let kpi = d.json(&["report", "kpi"]);
    let visits = kpi["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["level"] == "site" && r["site"] == "rs")
        .unwrap()["visits"]
        .clone();
    assert_eq!(visits, 1, "the walk-in batch");
    // The KPI table fits a terminal by default; `--wide` has every column.
    let table = d.ok(&["report", "kpi"]);
    let widest = table
        .lines()
        .skip(1)
        .map(|l| l.chars().count())
        .max()
        .unwrap();
    assert!(widest <= 110, "{widest} columns:\n{table}");
    // hq's document is not on this consultant's device: "n/a", never 0.
    let hq_row = table
        .lines()
        .find(|l| l.starts_with("site") && l.contains(" hq "))
        .unwrap();
    assert!(
        hq_row.contains("n/a") && !hq_row.contains(" 0 "),
        "{hq_row}"
    );
    assert!(
        table
            .lines()
            .next()
            .unwrap()
            .contains("not available here: hq"),
        "{table}"
    );
    assert!(
        table.contains("closing") && !table.contains("callsAchievement"),
        "{table}"
    );
    let wide = d.ok(&["report", "kpi", "--wide"]);
    assert!(wide.contains("callsAchievement"), "{wide}");

    // 22,000 yuan off is above the consultant's limit: a request, waiting for a manager.
    let dear = vin(502);
    d.json(&[
        "vehicle", "receive", &dear, "--model", "SDN-A", "--trim", "Comfort", "--colour", "红",
    ]);
    let err = d.fails(&[
        "vehicle",
        "sell",
        &dear,
        "--customer",
        &c,
        "--price",
        "130000",
    ]);
    assert!(err.contains("consultant limit of 1000000 fen"), "{err}");
    let req = d.json(&[
        "discount",
        "request",
        &dear,
        "--customer",
        &c,
        "--amount",
        "22000",
    ]);
    assert_eq!(req["kind"], "discount_request");
    assert_eq!(req["amount"], 2_200_000);
    // A quote above the limit is a request too (it supersedes the earlier one).
    d.json(&[
        "customer", "event", &c, "quote", "--vin", &dear, "--amount", "128000",
    ]);
    let listed = d.json(&["discount", "list"]);
    assert_eq!(listed[0]["discount"]["state"], "pending", "{listed}");
    assert_eq!(listed[0]["discount"]["amount"], 2_400_000, "{listed}");
    let before = heads(&d, "rs");
    let err = d.fails(&["discount", "approve", &dear, "--customer", &c]);
    assert!(err.contains("by a manager"), "{err}");
    let err = d.fails(&[
        "vehicle",
        "sell",
        &dear,
        "--customer",
        &c,
        "--price",
        "130000",
    ]);
    assert!(err.contains("waiting for a manager"), "{err}");
    assert_eq!(heads(&d, "rs"), before);

    let arrived = d.json(&["vehicle", "arrive", &coming]);
    assert_eq!(arrived["status"], "in_stock");
    assert_eq!(arrived["eta"], Value::Null);
    assert!(arrived["arrivedAt"].as_i64().unwrap() > NOW);
    let err = d.fails(&["vehicle", "arrive", &coming]);
    assert!(err.contains("in_stock"), "{err}");
}

#[test]
fn access_decides_who_may_write_which_site() {
    // Head office reads every site but writes none of them.
    let h = device("zhou", "head_office", "hq");
    let before = heads(&h, "rs");
    let err = h.fails(&[
        "--site",
        "rs",
        "customer",
        "add",
        "--name",
        "X",
        "--phone",
        "13800138000",
    ]);
    assert!(
        err.contains("may only read") && err.contains("nothing was changed"),
        "{err}"
    );
    assert_eq!(heads(&h, "rs"), before);
    h.json(&["--site", "rs", "customer", "list"]);
    // A manager writes his centre and the roadshow team below it: a transfer writes both.
    let m = device("sun", "manager", "dc");
    let v = vin(55);
    m.json(&[
        "--site", "rs", "vehicle", "receive", &v, "--model", "SDN-A", "--trim", "Luxury",
        "--colour", "黑",
    ]);
    let t = m.json(&["--site", "rs", "vehicle", "transfer", &v, "--to", "dc"]);
    assert_eq!(t["status"], "transferred_out");
    assert_eq!(t["transferTo"], "dc");
    let arrived = m.json(&["vehicle", "show", &v]);
    assert_eq!(arrived["status"], "in_transit");
    assert_eq!(arrived["transferFrom"], "rs");
    // But not head office's document.
    let err = m.fails(&["--site", "hq", "parts", "adjust", "X", "1"]);
    assert!(err.contains("may not access"), "{err}");
}

#[test]
fn forecast_adjustments_and_submissions_offline() {
    // The distribution centre's manager holds dc and the roadshow team below it.
    let m = device("sun", "manager", "dc");
    m.json(&["--site", "rs", "forecast", "set", "2026-12", "SDN-A", "14"]);
    let a = m.json(&[
        "--site", "rs", "forecast", "adjust", "2026-12", "SDN-A", "10",
    ]);
    assert_eq!(a["adjusted"]["quantity"], 10, "{a}");
    assert_eq!(a["adjusted"]["by"], "sun", "{a}");
    // Both figures are kept; the adjusted one counts.
    let shown = m.json(&["--site", "rs", "forecast", "show", "2026-12"]);
    assert_eq!(shown[0]["quantity"], 14, "{shown}");
    assert_eq!(shown[0]["adjusted"]["quantity"], 10, "{shown}");
    assert_eq!(shown[0]["counts"], 10, "{shown}");
    let roll = m.json(&["report", "forecast", "--month", "2026-12"]);
    assert_eq!(roll["networkTotals"][0]["quantity"], 10, "{roll}");
    // Nothing submitted for a model: refused, nothing changed.
    let before = heads(&m, "rs");
    let err = m.fails(&["--site", "rs", "forecast", "adjust", "2026-12", "EV-X", "1"]);
    assert!(err.contains("no forecast"), "{err}");
    assert_eq!(heads(&m, "rs"), before);
    // A site does not adjust its own figure.
    let err = m.fails(&["forecast", "adjust", "2026-12", "SDN-A", "1"]);
    assert!(err.contains("only a manager above"), "{err}");
    // A consultant does not adjust at all.
    let c = device("li", "consultant", "rs");
    c.json(&["forecast", "set", "2026-12", "SDN-A", "3"]);
    let err = c.fails(&["forecast", "adjust", "2026-12", "SDN-A", "1"]);
    assert!(err.contains("only a manager above"), "{err}");

    // December's forecasts were due by the end of November 25th (CST): rs submitted
    // after it (the test runs later), dc submitted nothing. hq reports to nobody and
    // is outside the manager's subtree.
    let r = m.json(&["report", "submissions", "--month", "2026-12"]);
    assert_eq!(r["deadlineDate"], "2026-11-25", "{r}");
    let rows: Vec<(String, String)> = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["site"].as_str().unwrap().to_string(),
                x["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            ("dc".into(), "missing".into()),
            ("rs".into(), "late".into())
        ]
    );
    assert_eq!(
        (r["late"].as_i64(), r["missing"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(r["rows"][1]["submittedUnits"], 14, "{r}");
    assert_eq!(r["rows"][1]["units"], 10, "{r}");
    let table = m.ok(&["report", "submissions", "--month", "2026-12"]);
    assert!(table.contains("due by the end of 2026-11-25"), "{table}");
    let widest = table
        .lines()
        .skip(1)
        .map(|l| l.chars().count())
        .max()
        .unwrap();
    assert!(widest <= 100, "{widest} columns:\n{table}");
}
