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
