//! The field CLI follows a site's monthly working document (docs/growth.md): after the
//! relay's `archive --month`, `sync` moves a device onto the new working document and
//! operations write there; a device that was offline over the month's end hands its
//! changes in to the archive (in its grace week) and then follows too.

mod common;

use common::{Device, Server};
use dealersync_cli::home::Home;
use dealersync_cli::workspace::Workspace;
use dealersync_core::time::{next_month_key, now_ms};
use serde_json::Value;

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

#[test]
fn sync_follows_the_new_working_document_and_hands_in_offline_changes_to_the_archive() {
    let server = Server::start_with_sites(&[
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
    ]);
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
    assert_eq!(
        names(&phone.json(&["customer", "list"])),
        vec!["张伟", "李四"]
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
        vec!["张伟", "李四", "钱七"]
    );
}
