//! The field CLI follows a site's monthly working document (docs/growth.md): after the
//! relay's `archive --month`, `sync` moves a device onto the new working document and
//! operations write there; a device that was offline over the month's end hands its
//! changes in to the archive (in its grace week) and then follows too. `report` reads
//! each site's chain back as one site, and says when an archive is not on the device.

mod common;

use common::{Device, Server};
use dealersync_cli::home::Home;
use dealersync_cli::workspace::Workspace;
use dealersync_core::time::{month_key, next_month_key, now_ms};
use serde_json::Value;
use std::time::{Duration, Instant};

fn workspace(d: &Device) -> Workspace {
    Workspace::open(Home {
        dir: d.home().to_path_buf(),
    })
    .unwrap()
}

fn names(list: &Value) -> Vec<String> {
    let mut v: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

/// A relay serving head office and one showroom, `sr-1`.
fn showroom() -> Server {
    Server::start_with_sites(&[
        &["--id", "hq", "--name", "总部", "--kind", "head_office"],
        &[
            "--id",
            "sr-1",
            "--name",
            "一号展厅",
            "--kind",
            "showroom",
            "--parent",
            "hq",
        ],
    ])
}

#[test]
fn sync_follows_the_new_working_document_and_hands_in_offline_changes_to_the_archive() {
    let server = showroom();
    let token = server.token("wang", "consultant", "sr-1");
    let (desk, phone) = (Device::new("desk"), Device::new("phone"));
    desk.login(&server, &token);
    phone.login(&server, &token);
    desk.ok(&[
        "customer",
        "add",
        "--name",
        "张伟",
        "--phone",
        "13812340001",
    ]);
    desk.ok(&["sync"]);
    let before = workspace(&desk).pick_site(None).unwrap().id;

    // The phone works offline over the month's end.
    phone.ok(&[
        "customer",
        "add",
        "--name",
        "赵敏",
        "--phone",
        "13812340003",
    ]);

    let admin = server.token("ops", "admin", "hq");
    let month = next_month_key(now_ms());
    let out = server.admin(&[
        "archive",
        "--month",
        &month,
        "--server",
        &server.url(),
        "--token",
        &admin,
    ]);
    assert!(out.contains(&format!("archived {before}")), "{out}");

    // The desk follows on its next sync: the carried customer is there, and a new one
    // is written into the new working document.
    desk.ok(&["sync"]);
    let working = workspace(&desk).pick_site(None).unwrap().id;
    assert_ne!(
        working, before,
        "the desk moved to the new working document"
    );
    assert_eq!(names(&desk.json(&["customer", "list"])), vec!["张伟"]);
    desk.ok(&[
        "customer",
        "add",
        "--name",
        "李四",
        "--phone",
        "13812340002",
    ]);
    desk.ok(&["sync"]);
    let ws = workspace(&desk);
    let doc = ws.load(&working).unwrap().unwrap();
    let site = dealersync_core::schema::SiteDocument::read(&doc).unwrap();
    assert_eq!(site.customers.len(), 2, "{:?}", site.customers);
    assert!(
        ws.config.sites[0].archives.is_empty(),
        "nothing of the desk's is left in the archive"
    );

    // The phone comes back: its offline customer goes into the archive (in its grace
    // week), then it follows and sees the working document.
    phone.ok(&["sync"]);
    let ws = workspace(&phone);
    assert_eq!(ws.pick_site(None).unwrap().id, working);
    let mut archived = ws
        .load(&before)
        .unwrap()
        .expect("the archive stays on the phone");
    let acked = ws.state.record(&before).unwrap().server_heads;
    let heads: Vec<String> = archived.get_heads().iter().map(|h| h.to_string()).collect();
    assert!(
        heads.iter().all(|h| acked.contains(h)),
        "the server has the phone's offline change in the archive: {heads:?} vs {acked:?}"
    );
    let archive = dealersync_core::schema::SiteDocument::read(&archived).unwrap();
    assert!(archive.customers.values().any(|c| c.name == "赵敏"));
    assert!(
        ws.config.sites[0].archives.is_empty(),
        "the archive is handed in, so the phone stops syncing it"
    );
    // The relay forwards the late customer into the working document (docs/growth.md,
    // late changes forward): the phone's list of the new month shows it once a sync has
    // brought the forward.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !names(&phone.json(&["customer", "list"])).contains(&"赵敏".to_string()) {
        assert!(
            Instant::now() < deadline,
            "the late customer never reached the working document"
        );
        phone.ok(&["sync"]);
    }
    assert_eq!(
        names(&phone.json(&["customer", "list"])),
        vec!["张伟", "李四", "赵敏"]
    );
    // New work on the phone goes into the working document.
    phone.ok(&[
        "customer",
        "add",
        "--name",
        "钱七",
        "--phone",
        "13812340004",
    ]);
    phone.ok(&["sync"]);
    desk.ok(&["sync"]);
    assert_eq!(
        names(&desk.json(&["customer", "list"])),
        vec!["张伟", "李四", "赵敏", "钱七"]
    );
}

/// The site's row of a KPI report.
fn site_row<'a>(kpi: &'a Value, site: &str) -> &'a Value {
    kpi["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["level"] == "site" && r["site"] == site)
        .unwrap_or_else(|| panic!("no site row {site} in {kpi}"))
}

#[test]
fn report_reads_the_month_before_the_carry_over_as_before_and_says_when_an_archive_is_not_here() {
    let server = showroom();
    let token = server.token("wang", "consultant", "sr-1");
    let desk = Device::new("desk");
    desk.login(&server, &token);
    // This month: two visitors; one is lost (stays in the archive), one stays open
    // (carried over with its events).
    let mut ids = Vec::new();
    for (name, phone) in [("张伟", "13812340001"), ("李四", "13812340002")] {
        let c = desk.json(&["customer", "add", "--name", name, "--phone", phone]);
        let id = c["id"].as_str().unwrap().to_string();
        desk.ok(&["customer", "event", &id, "visit"]);
        ids.push(id);
    }
    desk.ok(&["care", "lost", &ids[0], "--reason", "价格"]);
    desk.ok(&["sync"]);
    let month = month_key(now_ms());
    let before = desk.json(&["report", "kpi", "--period", &month]);
    assert_eq!(site_row(&before, "sr-1")["visits"], 2, "{before}");

    let admin = server.token("ops", "admin", "hq");
    server.admin(&[
        "archive",
        "--month",
        &next_month_key(now_ms()),
        "--server",
        &server.url(),
        "--token",
        &admin,
    ]);
    desk.ok(&["sync"]);
    let ws = workspace(&desk);
    let working = ws.pick_site(None).unwrap().id;
    let alone =
        dealersync_core::schema::SiteDocument::read(&ws.load(&working).unwrap().unwrap()).unwrap();
    assert!(
        !alone.customers.contains_key(&ids[0]),
        "the lost customer stayed in the archive"
    );
    let after = desk.run(&["--json", "report", "kpi", "--period", &month]);
    assert!(after.status.success());
    assert_eq!(
        serde_json::from_slice::<Value>(&after.stdout).unwrap(),
        before,
        "this month's figures read across the carry-over"
    );
    assert!(after.stderr.is_empty(), "no warning: the archive is here");

    // A device that logs in after the carry-over holds the working document only.
    let fresh = Device::new("fresh");
    fresh.login(&server, &token);
    let out = fresh.run(&["--json", "report", "kpi", "--period", &month]);
    assert!(out.status.success());
    let kpi: Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = site_row(&kpi, "sr-1");
    assert_eq!(row["available"], false, "not available, never zero: {kpi}");
    assert_eq!(row["visits"], Value::Null);
    let warning = String::from_utf8_lossy(&out.stderr);
    assert!(
        warning.contains("sr-1") && warning.contains("not on this device"),
        "{warning}"
    );
    // Next month needs no archive.
    let next = fresh.json(&["report", "kpi", "--period", &next_month_key(now_ms())]);
    assert_eq!(site_row(&next, "sr-1")["available"], true, "{next}");
}
