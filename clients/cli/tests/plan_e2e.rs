//! The rest of issue 9 from the real CLI against `serve --demo`: a transfer between
//! regions approved by head office and moved by the two regions' managers, the
//! forecast deadline, parts shipped and received, customers registered at two sites,
//! customer care, and the stock reports.

mod common;

use common::{Device, Server};
use serde_json::Value;

fn rows(v: &Value) -> &Vec<Value> {
    v["rows"].as_array().expect("a report has rows")
}

fn short(id: &str) -> &str {
    &id[..8]
}

#[test]
fn the_rest_of_issue_9_from_the_cli_against_serve_demo() {
    let server = Server::start_demo();
    let hq = Device::new("head office");
    hq.login(&server, &server.token("zhou.min", "head_office", "hq"));
    let north = Device::new("north manager");
    north.login(&server, &server.token("sun.hao", "manager", "dc-north"));

    // The demo's transfer waiting for head office; a manager may not decide it.
    let t = hq.json(&["report", "transfers"]);
    assert_eq!(t["pending"], 1, "{t}");
    let pending = rows(&t)
        .iter()
        .find(|r| r["status"] == "pending")
        .unwrap()
        .clone();
    let id = pending["id"].as_str().unwrap().to_string();
    let vin = pending["vin"].as_str().unwrap().to_string();
    let err = north.fails(&["transfer", "approve", short(&id)]);
    assert!(err.contains("may only read"), "{err}");
    // Before approval the car stays.
    let err = north.fails(&["--site", "agent-n1", "transfer", "dispatch", short(&id)]);
    assert!(err.contains("has not approved it"), "{err}");
    let d = hq.json(&["transfer", "approve", short(&id), "--note", "同意"]);
    assert_eq!(d["verdict"], "approved");
    hq.ok(&["sync"]);

    north.ok(&["sync"]);
    north.ok(&["--site", "agent-n1", "transfer", "dispatch", short(&id)]);
    north.ok(&["sync"]);
    let south = Device::new("south manager");
    south.login(&server, &server.token("hu.jun", "manager", "dc-south"));
    let v = south.json(&["--site", "agent-s1", "transfer", "receive", short(&id)]);
    assert_eq!(
        (v["status"].as_str(), v["transferFrom"].as_str()),
        (Some("in_transit"), Some("agent-n1"))
    );
    south.ok(&["--site", "agent-s1", "vehicle", "arrive", &vin]);
    south.ok(&["sync"]);
    hq.ok(&["sync"]);
    let t = hq.json(&["report", "transfers"]);
    let row = rows(&t).iter().find(|r| r["id"] == id.as_str()).unwrap();
    assert_eq!(row["status"], "received", "{row}");
    assert_eq!(t["pending"], 0);

    // Head office sets the forecast deadline in the network document; others may not.
    hq.ok(&["network", "deadline", "20"]);
    let err = north.fails(&["network", "deadline", "20"]);
    assert!(err.contains("may only read"), "{err}");
    let err = hq.fails(&["network", "deadline", "30"]);
    assert!(err.contains("give 1 to 28"), "{err}");

    // Head office changes a site's sales channel (直销 / 总代理 / 特许代理 / 品牌专卖);
    // the KPI rows carry it. An agent is never direct; a manager may not.
    let c = hq.json(&["network", "channel", "agent-s1", "品牌专卖"]);
    assert_eq!(c["channel"], "brand_store", "{c}");
    let err = hq.fails(&["network", "channel", "agent-s1", "direct"]);
    assert!(err.contains("direct"), "{err}");
    let err = hq.fails(&["network", "channel", "agent-s1", "wholesale"]);
    assert!(err.contains("franchise_agent"), "{err}");
    let err = north.fails(&["network", "channel", "agent-n1", "brand_store"]);
    assert!(err.contains("may only read"), "{err}");
    let kpi = hq.json(&["report", "kpi"]);
    let site_row = |id: &str| {
        rows(&kpi)
            .iter()
            .find(|r| r["level"] == "site" && r["site"] == id)
            .unwrap_or_else(|| panic!("no site row {id}: {kpi}"))
            .clone()
    };
    assert_eq!(site_row("agent-s1")["channel"], "brand_store");
    assert_eq!(site_row("agent-n1")["channel"], "franchise_agent");
    let table = hq.ok(&["report", "kpi"]);
    assert!(table.contains("品牌专卖"), "{table}");

    // A consultant's device holds its own site only: the KPI table's title names the
    // first sites it lacks and counts the rest, so that it fits a terminal.
    let consultant = Device::new("consultant");
    consultant.login(
        &server,
        &server.token("wang.fang", "consultant", "showroom"),
    );
    let table = consultant.ok(&["report", "kpi"]);
    let title = table.lines().next().unwrap();
    assert!(
        title.contains("not available here: hq, dc-north, agent-n1 and 5 more"),
        "{title}"
    );
    assert!(title.chars().count() <= 100, "{title}");

    // Parts: dc-north ships to agent-n2, which receives them.
    let s = north.json(&[
        "--site",
        "dc-north",
        "parts",
        "ship",
        "--to",
        "agent-n2",
        "WIPER-B=3",
        "MAT-SET-C=1",
    ]);
    let sid = s["id"].as_str().unwrap().to_string();
    let err = north.fails(&[
        "--site",
        "dc-north",
        "parts",
        "ship",
        "--to",
        "agent-n2",
        "WIPER-B=100000",
    ]);
    assert!(err.contains("on hand"), "{err}");
    north.ok(&["--site", "agent-n2", "parts", "receive", short(&sid)]);
    let err = north.fails(&["--site", "agent-n2", "parts", "receive", short(&sid)]);
    assert!(err.contains("already received"), "{err}");
    let p = north.json(&["report", "parts"]);
    let wiper = rows(&p)
        .iter()
        .find(|r| r["to"] == "agent-n2" && r["part"] == "WIPER-B")
        .unwrap();
    assert!(wiper["received"].as_i64().unwrap() >= 3, "{wiper}");

    // The same phone at a northern and a southern agent: head office sees both, and
    // settles it.
    let phone = "13912345678";
    north.ok(&[
        "--site", "agent-n1", "customer", "add", "--name", "马明", "--phone", phone,
    ]);
    south.ok(&[
        "--site", "agent-s1", "customer", "add", "--name", "马明", "--phone", phone,
    ]);
    north.ok(&["sync"]);
    south.ok(&["sync"]);
    hq.ok(&["sync"]);
    let dups = hq.json(&["report", "duplicates"]);
    let mine: Vec<&Value> = rows(&dups)
        .iter()
        .filter(|r| r["phone"] == "+8613912345678")
        .collect();
    assert_eq!(mine.len(), 2, "{dups}");
    assert!(mine.iter().all(|r| r["settledBy"] == "hq"));

    // Customer care at agent-n1.
    let c = north.json(&[
        "--site",
        "agent-n1",
        "customer",
        "add",
        "--name",
        "林芳",
        "--phone",
        "13700001111",
    ]);
    let cid = c["id"].as_str().unwrap().to_string();
    let c = north.json(&[
        "--site",
        "agent-n1",
        "care",
        "area",
        short(&cid),
        "prefecture",
    ]);
    assert_eq!(c["area"], "prefecture");
    let k = north.json(&[
        "--site",
        "agent-n1",
        "complaint",
        "open",
        short(&cid),
        "--summary",
        "交车延迟",
    ]);
    let kid = k["id"].as_str().unwrap().to_string();
    let err = north.fails(&[
        "--site",
        "agent-n1",
        "complaint",
        "update",
        short(&kid),
        "--status",
        "resolved",
    ]);
    assert!(err.contains("say how it was resolved"), "{err}");
    north.ok(&[
        "--site",
        "agent-n1",
        "complaint",
        "update",
        short(&kid),
        "--status",
        "resolved",
        "--resolution",
        "致歉",
    ]);
    north.ok(&[
        "--site",
        "agent-n1",
        "care",
        "lost",
        short(&cid),
        "--reason",
        "价格",
        "--competitor",
        "吉利",
    ]);
    let care = north.json(&["--site", "agent-n1", "report", "care"]);
    assert!(
        rows(&care)[0]["complaintsResolved"].as_i64().unwrap() >= 1,
        "{care}"
    );
    assert!(
        care["mix"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["dimension"] == "competitor" && m["value"] == "吉利")
    );
    assert!(!rows(&hq.json(&["report", "follow-ups"])).is_empty());

    // Stock: the slow movers, days of supply and capital turnover.
    let slow = hq.json(&["report", "ageing", "--slow"]);
    assert!(rows(&slow).iter().all(|r| r["slowMover"] == true));
    assert!(slow["slowMovers"].as_i64().unwrap() >= rows(&slow).len() as i64);
    let turnover = hq.json(&["report", "turnover"]);
    assert!(!rows(&turnover).is_empty());
    let plan = hq.json(&["report", "order-plan"]);
    assert!(
        rows(&plan)
            .iter()
            .all(|r| r["slowMoverReduction"] == r["slowMovers"])
    );
    let table = hq.ok(&["report", "transfers"]);
    assert!(table.contains("received"), "{table}");
}
