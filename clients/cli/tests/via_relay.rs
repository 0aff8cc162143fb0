//! A device logged in to head office finds a local relay on the LAN (`relays`), syncs
//! through it with the same login (`sync --via auto`), then directly with head office:
//! `status` keeps saying what head office has until then, and nothing is sent twice or
//! lost. Two relays as processes: head office, and a downstream relay that trusts head
//! office's keys (`--upstream`) and advertises itself (`--advertise`, multicast DNS on
//! this machine; `DEALERSYNC_SKIP_MDNS=1` skips the test where multicast is blocked).

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Device, free_port, http_get, server_bin, unacknowledged, wait_for};

const DEADLINE: Duration = Duration::from_secs(60);

fn admin(data_dir: &Path, args: &[&str]) -> String {
    let out = Command::new(server_bin())
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn sites(data_dir: &Path) {
    admin(
        data_dir,
        &[
            "site",
            "add",
            "--id",
            "hq",
            "--name",
            "HQ",
            "--kind",
            "head_office",
        ],
    );
    admin(
        data_dir,
        &[
            "site", "add", "--id", "sr-1", "--name", "Showroom", "--kind", "showroom", "--parent",
            "hq",
        ],
    );
}

struct Relay(Child, String);

impl Relay {
    fn start(data_dir: &Path, listen: &str, extra: &[&str]) -> Relay {
        let child = Command::new(server_bin())
            .args(["serve", "--listen", listen, "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr = format!("127.0.0.1:{}", listen.rsplit(':').next().unwrap());
        let probe = addr.clone();
        wait_for("the relay's /healthz", DEADLINE, || {
            matches!(http_get(&probe, "/healthz", None), Ok((200, _)))
        });
        Relay(child, addr)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A device logged in to head office. The local relay is found at this machine's LAN
/// address; where that is not a private range (a sandbox's TEST-NET address), plain
/// http needs --insecure, as it should.
fn logged_in(name: &str, hq: &Relay, token: &str) -> Device {
    let d = Device::new(name);
    d.ok(&[
        "login",
        "--server",
        &format!("http://{}", hq.1),
        "--token",
        token,
        "--insecure",
    ]);
    d
}

#[test]
fn a_device_syncs_through_a_local_relay_then_directly_without_duplicates_or_loss() {
    if std::env::var_os("DEALERSYNC_SKIP_MDNS").is_some() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let (hq_dir, dc_dir) = (root.path().join("hq"), root.path().join("dc"));
    sites(&hq_dir);
    // The local relay holds the same documents: here seeded from a backup of head
    // office (a new storage id, no keys of head office's); in the field the upstream
    // sync link brings them.
    let seed = root.path().join("seed.backup");
    admin(&hq_dir, &["backup", "--to", seed.to_str().unwrap()]);
    admin(&dc_dir, &["restore", "--from", seed.to_str().unwrap()]);
    let token = admin(
        &hq_dir,
        &["token", "--sub", "li.na", "--role", "admin", "--site", "hq"],
    );
    let relay_token = admin(
        &hq_dir,
        &[
            "token", "--sub", "relay.hq", "--role", "relay", "--site", "hq",
        ],
    );
    let hq_listen = format!("127.0.0.1:{}", free_port());
    let hq = Relay::start(&hq_dir, &hq_listen, &[]);
    let name = format!("via-test-{}", std::process::id());
    let dc = Relay::start(
        &dc_dir,
        &format!("0.0.0.0:{}", free_port()),
        &[
            "--upstream",
            &format!("http://{}", hq.1),
            "--upstream-token",
            &relay_token,
            "--upstream-trust-refresh-secs",
            "0.3",
            "--advertise",
            "--advertise-name",
            &name,
        ],
    );
    wait_for("head office's token at the local relay", DEADLINE, || {
        matches!(http_get(&dc.1, "/api/me", Some(&token)), Ok((200, _)))
    });

    let device = logged_in("tablet", &hq, &token);
    // A second device at the same roadshow, logged in to head office too.
    let other = logged_in("phone", &hq, &token);
    assert_eq!(zhang_weis(&other), 0);
    let found = device.json(&["relays", "--wait", "3"]);
    let ours = found["relays"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["instance"] == name.as_str())
        .unwrap_or_else(|| panic!("the local relay is listed: {found}"));
    assert_eq!(ours["subtree"], "hq");
    assert_eq!(ours["upstream"], true);

    // The link to head office goes down: from here until it returns, the roadshow has
    // only its local relay (whose upstream link retries in the background).
    drop(hq);
    device.ok(&[
        "--site",
        "sr-1",
        "customer",
        "add",
        "--name",
        "Zhang Wei",
        "--phone",
        "13800138000",
    ]);
    assert_eq!(unacknowledged(&device, "sr-1"), 1);
    let via = device.json(&["sync", "--via", "auto"]);
    assert_eq!(via["ok"], true, "{via}");
    // At the local relay, not yet at head office: status says so.
    assert_eq!(unacknowledged(&device, "sr-1"), 1);

    // The second device gets the customer through the local relay with its head
    // office login, head office being out of reach.
    let got = other.json(&["sync", "--via", "auto"]);
    assert_eq!(got["ok"], true, "{got}");
    assert_eq!(zhang_weis(&other), 1, "{got}");

    // Back in range of head office: the first device syncs directly, and everyone
    // ends with the customer exactly once (the local relay's link uploads it too).
    let _hq = Relay::start(&hq_dir, &hq_listen, &[]);
    let direct = device.json(&["sync"]);
    assert_eq!(direct["ok"], true, "{direct}");
    assert_eq!(unacknowledged(&device, "sr-1"), 0);
    let again = device.json(&["sync", "--via", "auto"]);
    assert_eq!(again["ok"], true, "{again}");
    assert_eq!(unacknowledged(&device, "sr-1"), 0);
    other.ok(&["sync"]);
    assert_eq!(zhang_weis(&other), 1);
    assert_eq!(zhang_weis(&device), 1);
}

/// How many customers named Zhang Wei the device holds at sr-1.
fn zhang_weis(d: &Device) -> usize {
    let customers = d.json(&["--site", "sr-1", "customer", "list"]);
    let list = customers
        .as_array()
        .or_else(|| customers["customers"].as_array())
        .cloned()
        .unwrap_or_default();
    list.iter()
        .filter(|c| c.to_string().contains("Zhang Wei"))
        .count()
}
