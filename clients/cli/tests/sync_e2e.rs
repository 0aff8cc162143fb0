//! End to end with the real `dealersync-server` and `dealersync` binaries: devices
//! working offline, syncing in several orders, agreeing on documents and conflicts.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Device, Server, unacknowledged, wait_for};
use dealersync_cli::home::Home;
use dealersync_cli::workspace::Workspace;
use dealersync_core::domain;
use serde_json::Value;

/// A valid VIN (check digit at position 9) ending in `serial`.
fn vin(serial: u32) -> String {
    let raw = format!("LSVAU2180N2{serial:06}");
    let digit = domain::check_digit(&raw);
    let mut v: Vec<char> = raw.chars().collect();
    v[8] = digit;
    v.into_iter().collect()
}

fn workspace(d: &Device) -> Workspace {
    Workspace::open(Home {
        dir: d.home().to_path_buf(),
    })
    .unwrap()
}

/// The heads of a site's document on a device, hex, sorted.
fn heads(d: &Device, site: &str) -> Vec<String> {
    let ws = workspace(d);
    let doc = ws.pick_site(Some(site)).unwrap();
    let mut am = ws.load(&doc.id).unwrap().expect("document on device");
    let mut h: Vec<String> = am.get_heads().iter().map(|h| h.to_string()).collect();
    h.sort();
    h
}

/// The roadshow team under a distribution centre in the demo network, and that centre.
fn roadshow_and_centre(server: &Server, admin: &str) -> (String, String) {
    let sites = server.sites(admin);
    let kind_of = |id: &str| {
        sites
            .iter()
            .find(|s| s["id"] == id)
            .map(|s| s["kind"].as_str().unwrap_or("").to_string())
    };
    for s in &sites {
        if s["kind"] == "roadshow"
            && let Some(parent) = s["parent"].as_str()
            && kind_of(parent).as_deref() == Some("distribution_centre")
        {
            return (s["id"].as_str().unwrap().into(), parent.into());
        }
    }
    panic!("the demo network has no roadshow team under a distribution centre: {sites:?}");
}

/// A model of the catalogue and one of its trims.
fn model(d: &Device) -> (String, String) {
    let net = workspace(d).network().unwrap();
    let m = net
        .models
        .values()
        .next()
        .expect("the demo catalogue has models");
    (m.code.clone(), m.trims.first().cloned().unwrap_or_default())
}

fn ids(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

fn kinds(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap().to_string())
        .collect()
}

/// The conflicts a device lists within one site (a manager also sees other sites').
fn conflicts_at(d: &Device, site: &str) -> Value {
    d.json(&["conflicts", "list"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["values"]
                .as_array()
                .unwrap()
                .iter()
                .all(|v| v["site"] == site)
        })
        .cloned()
        .collect()
}

/// Every device shows the same site document: same heads, same customers, vehicles,
/// parts and conflicts.
fn assert_identical(devices: &[&Device], site: &str) -> Value {
    let first = devices[0];
    let h = heads(first, site);
    let customers = first.json(&["--site", site, "customer", "list"]);
    let vehicles = first.json(&["--site", site, "vehicle", "list"]);
    let parts = first.json(&["--site", site, "parts", "list"]);
    let conflicts = conflicts_at(first, site);
    for d in &devices[1..] {
        assert_eq!(heads(d, site), h, "{} differs from {}", d.name, first.name);
        assert_eq!(
            d.json(&["--site", site, "customer", "list"]),
            customers,
            "{}",
            d.name
        );
        assert_eq!(
            d.json(&["--site", site, "vehicle", "list"]),
            vehicles,
            "{}",
            d.name
        );
        assert_eq!(
            d.json(&["--site", site, "parts", "list"]),
            parts,
            "{}",
            d.name
        );
        assert_eq!(conflicts_at(d, site), conflicts, "{}", d.name);
    }
    conflicts
}

/// The sum of the parts this test adjusted.
fn e2e_parts(parts: &Value) -> i64 {
    parts
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["part"].as_str().unwrap().starts_with("E2E-"))
        .map(|p| p["count"].as_i64().unwrap())
        .sum()
}

#[test]
fn three_devices_work_offline_and_agree_on_documents_and_conflicts() {
    let mut server = Server::start_demo();
    let admin = server.token("root", "admin", "hq");
    let (rs, dc) = roadshow_and_centre(&server, &admin);
    let a = Device::new("consultant li");
    let b = Device::new("consultant wang");
    let m = Device::new("manager zhao");
    a.login(&server, &server.token("li", "consultant", &rs));
    b.login(&server, &server.token("wang", "consultant", &rs));
    m.login(&server, &server.token("zhao", "manager", &dc));
    let (model, trim) = model(&a);
    let (v1, v2) = (vin(183_294), vin(183_295));
    // The demo network comes with customers and perhaps conflicts of its own.
    let customers_before = a.json(&["customer", "list"]).as_array().unwrap().len();
    let baseline = ids(&conflicts_at(&a, &rs));

    // Online: li enters a customer and two vehicles; everyone syncs.
    let c1 = a.json(&[
        "customer",
        "add",
        "--name",
        "张三",
        "--phone",
        "13800138001",
        "--source",
        "roadshow",
        "--model",
        &model,
    ])["id"]
        .as_str()
        .unwrap()
        .to_string();
    for v in [&v1, &v2] {
        let got = a.json(&[
            "vehicle", "receive", v, "--model", &model, "--trim", &trim, "--colour", "white",
        ]);
        assert_eq!(got["status"], "in_stock");
        assert_eq!(got["vin"], v.as_str());
    }
    // The part is on the books before the devices count it offline (a part first
    // entered on two devices at once is core::domain's concern, not the sync's).
    a.ok(&["parts", "adjust", "E2E-OIL-FILTER", "1"]);
    a.ok(&["sync", "--timeout", "180"]);
    b.ok(&["sync", "--timeout", "180"]);
    m.ok(&["sync", "--timeout", "180"]);
    assert_eq!(b.json(&["vehicle", "show", &v1])["status"], "in_stock");
    assert_eq!(
        m.json(&["--site", &rs, "customer", "show", &c1])["name"],
        "张三"
    );

    // Offline: the server is gone for hours.
    server.kill();
    let c2 = b.json(&[
        "customer",
        "add",
        "--name",
        "李四",
        "--phone",
        "13900139002",
    ])["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The same vehicle reserved for two customers on two devices.
    assert_eq!(
        a.json(&["vehicle", "reserve", &v1, "--customer", &c1])["reservedFor"],
        c1.as_str()
    );
    assert_eq!(
        b.json(&["vehicle", "reserve", &v1, "--customer", &c2])["reservedFor"],
        c2.as_str()
    );
    // The same customer's history extended on two devices.
    a.ok(&[
        "customer",
        "event",
        &c1,
        "visit",
        "--note",
        "came with family",
    ]);
    b.ok(&[
        "customer",
        "event",
        &c1[..8],
        "call",
        "--note",
        "asked for a quote",
    ]);
    // The same person entered twice (two notations of one number).
    a.ok(&[
        "customer",
        "add",
        "--name",
        "王五",
        "--phone",
        "13700137003",
    ]);
    b.ok(&[
        "customer",
        "add",
        "--name",
        "王五",
        "--phone",
        "137 0013 7003",
    ]);
    // The same forecast cell set by the consultant and by the manager.
    a.ok(&["forecast", "set", "2027-01", &model, "12"]);
    m.ok(&["--site", &rs, "forecast", "set", "2027-01", &model, "10"]);
    // Parts counted on both devices add up.
    a.ok(&["parts", "adjust", "E2E-OIL-FILTER", "5"]);
    b.ok(&["parts", "adjust", "E2E-OIL-FILTER", "7"]);
    assert!(unacknowledged(&a, &rs) >= 5);

    // Syncing without a server fails clearly and keeps everything.
    let err = a.fails(&["sync", "--timeout", "5"]);
    assert!(err.contains("cannot reach the server"), "{err}");
    assert!(err.contains("kept"), "{err}");
    assert_eq!(
        a.json(&["vehicle", "show", &v1])["reservedFor"],
        c1.as_str()
    );

    // Back online; sync in one order, then another.
    server.spawn(false);
    for d in [&b, &m, &a, &b, &m] {
        d.ok(&["sync", "--timeout", "180"]);
    }
    let all = assert_identical(&[&a, &b, &m], &rs);
    let conflicts = Value::Array(
        all.as_array()
            .unwrap()
            .iter()
            .filter(|c| !baseline.contains(c["id"].as_str().unwrap()))
            .cloned()
            .collect(),
    );
    let k = kinds(&conflicts);
    for want in ["double_booking", "duplicate_customer", "forecast_edit"] {
        assert_eq!(
            k.iter().filter(|x| *x == want).count(),
            1,
            "expected one {want}: {conflicts:#}"
        );
    }
    assert_eq!(unacknowledged(&a, &rs), 0);
    assert_eq!(unacknowledged(&b, &rs), 0);
    let history = a.json(&["customer", "show", &c1]);
    let events: Vec<&str> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        events.contains(&"visit") && events.contains(&"call"),
        "{events:?}"
    );
    let parts = b.json(&["parts", "list"]);
    let oil = parts
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["part"] == "E2E-OIL-FILTER")
        .unwrap();
    assert_eq!(oil["count"], 13, "{parts}");
    let status = m.json(&["status"]);
    let rs_status = status["documents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["document"] == rs.as_str())
        .unwrap()
        .clone();
    let involving_rs = m
        .json(&["conflicts", "list"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["values"]
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v["site"] == rs.as_str())
        })
        .count();
    assert!(involving_rs >= 3 + baseline.len(), "{status:#}");
    assert_eq!(
        rs_status["conflicts"].as_u64().unwrap() as usize,
        involving_rs,
        "{status:#}"
    );
    assert!(rs_status["lastSync"].is_i64());

    // The manager resolves the double booking; once synced it is gone everywhere.
    let booking = conflicts
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "double_booking")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    m.ok(&[
        "--site",
        &rs,
        "conflicts",
        "resolve",
        &booking,
        "--keep",
        &c1,
    ]);
    assert!(!ids(&m.json(&["conflicts", "list"])).contains(&booking));
    // A different order this time.
    for d in [&m, &a, &b] {
        d.ok(&["sync", "--timeout", "180"]);
    }
    for d in [&a, &b, &m] {
        assert!(
            !ids(&d.json(&["conflicts", "list"])).contains(&booking),
            "{}",
            d.name
        );
        let v = d.json(&["--site", &rs, "vehicle", "show", &v1]);
        assert_eq!(v["reservedFor"], c1.as_str(), "{}", d.name);
        assert_eq!(v["status"], "reserved");
    }

    // The consultant resolves the duplicate, the manager the forecast.
    let rest: Value = conflicts_at(&a, &rs)
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| !baseline.contains(c["id"].as_str().unwrap()))
        .cloned()
        .collect();
    let dup = rest
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "duplicate_customer")
        .unwrap()
        .clone();
    let keep = dup["records"][0]
        .as_str()
        .unwrap()
        .strip_prefix("customer ")
        .unwrap()
        .to_string();
    a.ok(&[
        "conflicts",
        "resolve",
        dup["id"].as_str().unwrap(),
        "--keep",
        &keep,
    ]);
    let fc = rest
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "forecast_edit")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    m.ok(&["conflicts", "resolve", &fc, "--keep", "11"]);
    for d in [&a, &m, &b, &a, &m] {
        d.ok(&["sync", "--timeout", "180"]);
    }
    let left = assert_identical(&[&a, &b, &m], &rs);
    assert_eq!(ids(&left), baseline, "{left:#}");
    let fc = b.json(&["forecast", "show", "2027-01"]);
    let cell = fc
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["model"] == model.as_str())
        .unwrap();
    assert_eq!(cell["quantity"], 11, "{fc}");
    assert_eq!(
        b.json(&["customer", "list"]).as_array().unwrap().len(),
        customers_before + 3,
        "the merged duplicate is no longer listed"
    );

    // v2 was never touched offline: sold and delivered online, seen by all.
    a.ok(&["vehicle", "sell", &v2, "--customer", &c2]);
    a.ok(&["vehicle", "deliver", &v2]);
    a.ok(&["sync", "--timeout", "180"]);
    m.ok(&["sync", "--timeout", "180"]);
    assert_eq!(
        m.json(&["--site", &rs, "vehicle", "show", &v2])["status"],
        "delivered"
    );
}

#[test]
fn refused_writes_change_nothing_and_bad_input_says_what_is_wrong() {
    let server = Server::start_demo();
    let admin = server.token("root", "admin", "hq");
    let (rs, _dc) = roadshow_and_centre(&server, &admin);
    let hq = server
        .sites(&admin)
        .into_iter()
        .find(|s| s["kind"] == "head_office")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let h = Device::new("head office");
    h.login(&server, &server.token("sun", "head_office", &hq));
    let before = heads(&h, &rs);
    let err = h.fails(&[
        "--site",
        &rs,
        "customer",
        "add",
        "--name",
        "X",
        "--phone",
        "13800138009",
    ]);
    assert!(err.contains("may only read"), "{err}");
    assert_eq!(heads(&h, &rs), before);
    // Head office still reads every site, offline.
    h.json(&["--site", &rs, "customer", "list"]);
    h.json(&["report", "stock"]);

    let a = Device::new("consultant");
    a.login(&server, &server.token("li", "consultant", &rs));
    let (model, trim) = model(&a);
    let before = heads(&a, &rs);
    let mut bad = vin(42);
    bad.replace_range(16..17, "O");
    let err = a.fails(&[
        "vehicle", "receive", &bad, "--model", &model, "--trim", &trim, "--colour", "red",
    ]);
    assert!(err.contains("position 17"), "{err}");
    let mut typo: Vec<char> = vin(42).chars().collect();
    typo[12] = if typo[12] == '1' { '2' } else { '1' };
    let typo: String = typo.into_iter().collect();
    let err = a.fails(&[
        "vehicle", "receive", &typo, "--model", &model, "--trim", &trim, "--colour", "red",
    ]);
    assert!(err.contains("check digit"), "{err}");
    let err = a.fails(&["customer", "add", "--name", "Y", "--phone", "12"]);
    assert!(err.contains("phone"), "{err}");
    let err = a.fails(&["--site", &hq, "customer", "list"]);
    assert!(
        err.contains("no document for site") || err.contains("may not access"),
        "{err}"
    );
    assert_eq!(
        heads(&a, &rs),
        before,
        "refused commands changed the document"
    );
}

#[test]
fn an_offline_device_catches_up_5000_changes_in_one_sync_and_survives_a_killed_sync() {
    let server = Server::start_demo();
    let admin = server.token("root", "admin", "hq");
    let (rs, _dc) = roadshow_and_centre(&server, &admin);
    let a = Device::new("busy");
    let b = Device::new("offline");
    a.login(&server, &server.token("li", "consultant", &rs));
    b.login(&server, &server.token("wang", "consultant", &rs));

    // b works offline meanwhile.
    let mine: Vec<String> = (0..3)
        .map(|i| {
            b.json(&[
                "customer",
                "add",
                "--name",
                &format!("离线{i}"),
                "--phone",
                &format!("1360000000{i}"),
            ])["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();

    // a makes 5,000 changes (one automerge change each, as 5,000 commands would) and
    // uploads them.
    let ws = workspace(&a);
    let doc = ws.pick_site(None).unwrap();
    let t0 = chrono::Utc::now().timestamp_millis();
    ws.edit_site(&doc, |am| {
        for i in 0..5000 {
            domain::adjust_part(am, &format!("E2E-P-{}", i % 50), 1, "li", t0 + i)?;
        }
        Ok(())
    })
    .unwrap();
    drop(ws);
    assert!(unacknowledged(&a, &rs) >= 5000);
    a.ok(&["sync", "--timeout", "300"]);
    assert_eq!(unacknowledged(&a, &rs), 0);

    // One sync brings b up to date and takes b's offline work up.
    let report = b.json(&["sync", "--timeout", "300"]);
    let row = report["documents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["document"] == rs.as_str())
        .unwrap();
    assert_eq!(row["outcome"], "synced", "{report:#}");
    assert!(row["received"].as_i64().unwrap() >= 5000, "{report:#}");
    assert_eq!(row["sent"], 3, "{report:#}");
    a.ok(&["sync", "--timeout", "180"]);
    assert_eq!(heads(&a, &rs), heads(&b, &rs));
    let parts = b.json(&["parts", "list"]);
    let total = e2e_parts(&parts);
    assert_eq!(total, 5000);
    let on_a = ids(&a.json(&["customer", "list"]));
    for id in &mine {
        assert!(
            on_a.contains(id),
            "b's offline customer {id} did not arrive"
        );
    }

    // A sync killed halfway leaves both sides consistent; the next one completes.
    let ws = workspace(&a);
    ws.edit_site(&doc, |am| {
        for i in 0..3000 {
            domain::adjust_part(am, &format!("E2E-Q-{}", i % 30), 1, "li", t0 + 10_000 + i)?;
        }
        Ok(())
    })
    .unwrap();
    drop(ws);
    b.ok(&["parts", "adjust", "E2E-WIPER", "4"]);
    let before_b = heads(&b, &rs);
    let before_a = heads(&a, &rs);
    for delay_ms in [0u64, 150, 600] {
        let mut child = a
            .cmd(&["sync", "--timeout", "300"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        // a's store is intact: it loads and still holds every change.
        assert_eq!(heads(&a, &rs), before_a);
        a.json(&["status"]);
    }
    let mut child = b
        .cmd(&["sync", "--timeout", "300"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for(
        "b's killed sync to make progress or end",
        Duration::from_secs(60),
        || heads(&b, &rs) != before_b || child.try_wait().unwrap().is_some(),
    );
    let _ = child.kill();
    let _ = child.wait();
    b.json(&["status"]);
    a.ok(&["sync", "--timeout", "300"]);
    b.ok(&["sync", "--timeout", "300"]);
    a.ok(&["sync", "--timeout", "300"]);
    assert_eq!(heads(&a, &rs), heads(&b, &rs));
    let parts = a.json(&["parts", "list"]);
    let total = e2e_parts(&parts);
    assert_eq!(total, 5000 + 3000 + 4);
    assert_eq!(unacknowledged(&a, &rs), 0);
    assert_eq!(unacknowledged(&b, &rs), 0);
    // A device logging in afresh gets exactly the same document from the server.
    let c = Device::new("fresh");
    c.login(&server, &server.token("chen", "consultant", &rs));
    assert_eq!(heads(&c, &rs), heads(&a, &rs));
}

#[test]
fn sync_watch_follows_both_sides_and_reconnects_after_a_server_restart() {
    let mut server = Server::start_demo();
    let admin = server.token("root", "admin", "hq");
    let (rs, _dc) = roadshow_and_centre(&server, &admin);
    let a = Device::new("syncing by hand");
    let b = Device::new("watching");
    a.login(&server, &server.token("li", "consultant", &rs));
    b.login(&server, &server.token("wang", "consultant", &rs));
    let mut watcher = b
        .cmd(&["sync", "--watch", "--json"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let add = |d: &Device, name: &str, phone: &str| -> String {
        d.json(&["customer", "add", "--name", name, "--phone", phone])["id"]
            .as_str()
            .unwrap()
            .to_string()
    };

    // A change on the server reaches the watching device by itself.
    let from_a = add(&a, "甲", "13500000001");
    a.ok(&["sync", "--timeout", "180"]);
    wait_for("a's customer to reach b", Duration::from_secs(30), || {
        ids(&b.json(&["customer", "list"])).contains(&from_a)
    });
    // A command on the watching device is sent by the watcher.
    let from_b = add(&b, "乙", "13500000002");
    wait_for("b's customer to reach a", Duration::from_secs(30), || {
        a.ok(&["sync", "--timeout", "180"]);
        ids(&a.json(&["customer", "list"])).contains(&from_b)
    });
    // The server restarts; the watcher reconnects and carries on.
    server.kill();
    let offline = add(&b, "丙", "13500000003");
    server.spawn(false);
    wait_for(
        "b's offline customer to reach a after the restart",
        Duration::from_secs(90),
        || {
            a.ok(&["sync", "--timeout", "180"]);
            ids(&a.json(&["customer", "list"])).contains(&offline)
        },
    );
    let _ = watcher.kill();
    let _ = watcher.wait();
}
