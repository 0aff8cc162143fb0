//! `serve --advertise`: the relay is found on the LAN by DNS-SD (`_dealersync._tcp`)
//! with its storage id and subtree in the TXT record. Multicast on this machine's
//! interfaces (loopback included); a machine whose network drops multicast skips it
//! with `DEALERSYNC_SKIP_MDNS=1`.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, DEADLINE, admin_token, free_port};
use dealersync_core::discovery::{RelayAdvert, SERVICE_TYPE};
use mdns_sd::{ServiceDaemon, ServiceEvent};

#[test]
fn advertising_on_loopback_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    admin_token(dir.path());
    let out = Command::new(BIN)
        .args([
            "serve",
            "--advertise",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--advertise needs a LAN address"), "{err}");
}

#[test]
fn an_advertised_relay_is_found_with_its_subtree_and_storage_id() {
    if std::env::var_os("DEALERSYNC_SKIP_MDNS").is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    admin_token(dir.path());
    let name = format!("test-relay-{}", std::process::id());
    let port = free_port();
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--advertise",
            "--advertise-name",
            &name,
            "--listen",
        ])
        .arg(format!("0.0.0.0:{port}"))
        .arg("--data-dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let browser = ServiceDaemon::new().unwrap();
    let events = browser.browse(SERVICE_TYPE).unwrap();
    let until = Instant::now() + DEADLINE;
    let found = loop {
        let left = until.saturating_duration_since(Instant::now());
        match events.recv_timeout(left.min(Duration::from_millis(500))) {
            Ok(ServiceEvent::ServiceResolved(info)) if info.get_fullname().starts_with(&name) => {
                break info;
            }
            _ if Instant::now() >= until => {
                let _ = child.kill();
                panic!(
                    "the relay was not found on the LAN (set DEALERSYNC_SKIP_MDNS=1 where multicast is blocked)"
                );
            }
            _ => {}
        }
    };
    let _ = browser.shutdown();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(found.get_port(), port);
    let advert = RelayAdvert::from_txt(
        found
            .get_properties()
            .iter()
            .map(|p| (p.key().to_string(), p.val_str().to_string())),
    )
    .unwrap();
    assert_eq!(advert.subtree, "hq");
    assert!(!advert.upstream && !advert.tls);
    // The storage id advertised is the relay's own, which devices key sync state by.
    let db = rusqlite::Connection::open(dir.path().join("dealersync.db")).unwrap();
    let sid: String = db
        .query_row(
            "SELECT value FROM relay_meta WHERE key = 'storage_id'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(advert.storage_id, sid);
}
