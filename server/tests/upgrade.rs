//! Upgrades: the current relay opens the data directories earlier releases left
//! (`tests/fixtures/release-*`), migrates them, and serves what they hold.

mod common;

use std::path::Path;

use common::{Client, Server, run_bin};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[tokio::test]
async fn the_relay_serves_a_data_directory_of_release_0_1_0() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/release-0.1.0");
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture, dir.path());
    let secret_before = std::fs::read(dir.path().join("jwt-secret")).unwrap();

    let sites = run_bin(&["site", "list"], dir.path());
    let sr1 = sites
        .lines()
        .find(|l| l.starts_with("sr-1\t"))
        .unwrap_or_else(|| panic!("the showroom survives: {sites}"));
    let doc = sr1.split('\t').nth(3).unwrap().parse().unwrap();

    let server = Server::start(dir.path(), &[]).await;
    assert_eq!(
        std::fs::read(dir.path().join("jwt-secret")).unwrap(),
        secret_before,
        "the signing secret is kept, so issued tokens stay valid"
    );
    let version: i64 = rusqlite::Connection::open(dir.path().join("dealersync.db"))
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, dealersync_server::storage::SCHEMA_VERSION);

    let mut client = Client::connect(&server.ws_url(), "upgrader", None).await;
    client.request(doc).await;
    client
        .until("the old showroom document arrives", |c| {
            !c.heads(doc).is_empty()
        })
        .await;
    let site = dealersync_core::schema::SiteDocument::read(&client.docs[&doc].doc)
        .expect("the current code reads the old document");
    assert_eq!(site.site.name, "一号展厅");
    assert_eq!(site.site.parent.as_deref(), Some("dc-west"));
}
