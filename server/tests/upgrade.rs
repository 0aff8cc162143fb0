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

/// A token as release 0.1.0 issued it: HS256 with the data directory's secret, no key
/// id.
fn release_0_1_0_token(data_dir: &Path) -> String {
    let secret = hex::decode(
        std::fs::read_to_string(data_dir.join("jwt-secret"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    let now = dealersync_server::auth::now_secs();
    let claims = serde_json::json!({
        "sub": "old.admin", "role": "admin", "site": "hq",
        "exp": now + 3600, "iat": now, "jti": "issued-by-0.1.0",
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(&secret),
    )
    .unwrap()
}

#[tokio::test]
async fn hs256_tokens_of_release_0_1_0_verify_until_the_secret_is_retired() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/release-0.1.0");
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture, dir.path());
    let old = release_0_1_0_token(dir.path());

    let server = Server::start(dir.path(), &[]).await;
    assert_eq!(common::me(&server, &old).await, (200, String::new()));
    // From now on the relay signs with its own Ed25519 key, and names it.
    let header: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            server.token.split('.').next().unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "EdDSA");
    let listed = run_bin(&["keys", "list"], dir.path());
    let kid = header["kid"].as_str().unwrap();
    assert!(
        listed.contains(&format!("{kid}\tEdDSA\tsigning")),
        "{listed}"
    );
    assert!(listed.contains("hs256\tHS256\tverifying"), "{listed}");

    // Retired while the relay runs: the old token is refused within a second or so,
    // the new one is not affected.
    run_bin(&["keys", "retire", "hs256"], dir.path());
    assert!(!dir.path().join("jwt-secret").exists());
    let until = std::time::Instant::now() + common::DEADLINE;
    while common::me(&server, &old).await.0 == 200 {
        assert!(
            std::time::Instant::now() < until,
            "the retired secret still verifies"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        common::me(&server, &old).await,
        (401, "wrong_algorithm".to_string())
    );
    assert_eq!(common::me(&server, &server.token).await.0, 200);
}

/// The first `archive` on a data directory of release 0.1.0 (registry tables version
/// 1, one document per site) migrates it: the registry gains the chain table, and each
/// site's one document becomes its first archive, served next to the new working
/// document that carries its open work.
#[tokio::test]
async fn archive_migrates_a_data_directory_of_release_0_1_0() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/release-0.1.0");
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture, dir.path());
    let registry_version = |dir: &Path| -> i64 {
        rusqlite::Connection::open(dir.join("dealersync.db"))
            .unwrap()
            .query_row(
                "SELECT version FROM schema_versions WHERE component = 'registry'",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert_eq!(
        registry_version(&fixture),
        1,
        "the fixture is a version 1 registry"
    );
    let old_doc = |sites: &str| -> dealersync_core::protocol::DocumentId {
        let line = sites.lines().find(|l| l.starts_with("sr-1\t")).unwrap();
        line.split('\t').nth(3).unwrap().parse().unwrap()
    };
    let before = old_doc(&run_bin(&["site", "list"], dir.path()));

    let out = run_bin(&["archive", "--month", "2026-12"], dir.path());
    assert!(out.contains(&format!("archived {before}")), "{out}");
    assert_eq!(
        registry_version(dir.path()),
        dealersync_server::registry::REGISTRY_SCHEMA_VERSION
    );
    let after = old_doc(&run_bin(&["site", "list"], dir.path()));
    assert_ne!(after, before, "sr-1 works in a new document");
    let again = run_bin(&["archive", "--month", "2026-12"], dir.path());
    assert!(!again.contains("archived"), "{again}");

    let server = Server::start(dir.path(), &[]).await;
    let mut client = Client::connect(&server.ws_url(), "upgrader", None).await;
    for doc in [before, after] {
        client.request(doc).await;
        client
            .until("the document arrives", |c| !c.heads(doc).is_empty())
            .await;
    }
    let archive = dealersync_core::schema::SiteDocument::read(&client.docs[&before].doc).unwrap();
    let working = dealersync_core::schema::SiteDocument::read(&client.docs[&after].doc).unwrap();
    assert_eq!(working.site, archive.site);
    let header = dealersync_core::domain::period_header(&client.docs[&after].doc)
        .unwrap()
        .expect("the working document says which month it starts");
    assert_eq!(header.month, "2026-12");
    for (id, c) in &archive.customers {
        let open = dealersync_core::domain::customer_is_open(c.status, c.merged_into.as_deref());
        assert_eq!(working.customers.contains_key(id), open, "customer {id}");
    }
}
