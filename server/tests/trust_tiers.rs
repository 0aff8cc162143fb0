//! Trust between tiers, two real relays as processes: head office and a distribution
//! centre running `serve --upstream`. A device token head office issued is accepted at
//! the distribution centre after one refresh, and still after a restart with head
//! office down; a device revoked at head office is cut from its open WebSocket at the
//! distribution centre within one refresh; a token the distribution centre signs is
//! not accepted at head office (it checks, it cannot forge).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{Client, DEADLINE, Server, add_dc, me, run_bin};

/// The downstream's refresh interval in these tests.
const REFRESH_SECS: &str = "0.3";

fn token(data_dir: &Path, role: &str, sub: &str, device: &str) -> String {
    run_bin(
        &[
            "token", "--role", role, "--sub", sub, "--site", "dc-north", "--device", device,
        ],
        data_dir,
    )
    .trim()
    .to_string()
}

fn header(token: &str) -> serde_json::Value {
    let part = token.split('.').next().unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

async fn until_accepted(s: &Server, token: &str, what: &str) -> Duration {
    let started = Instant::now();
    loop {
        let (status, kind) = me(s, token).await;
        if status == 200 {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < DEADLINE,
            "{what}: still {status} {kind}\n{}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_downstream_relay_verifies_upstream_tokens_offline_and_cuts_revoked_devices() {
    let root = tempfile::tempdir().unwrap();
    let (hq_dir, dc_dir) = (root.path().join("hq"), root.path().join("dc"));

    let mut hq = Server::start(&hq_dir, &[]).await;
    add_dc(&hq_dir);
    let relay_token = token(&hq_dir, "relay", "relay.dc-north", "dc-north-relay");
    let pad = token(&hq_dir, "manager", "li.na", "pad-7");
    let laptop = token(&hq_dir, "manager", "zhao.lei", "laptop-2");
    assert_eq!(header(&pad)["alg"], "EdDSA");
    let hq_kid = header(&pad)["kid"].as_str().unwrap().to_string();

    // The JWK set is public and cacheable, and holds no private half.
    let jwks = reqwest::get(hq.url("/.well-known/jwks.json"))
        .await
        .unwrap();
    assert_eq!(jwks.status(), 200);
    assert!(
        jwks.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    let etag = jwks.headers()["etag"].clone();
    let set: serde_json::Value = jwks.json().await.unwrap();
    let key = &set["keys"][0];
    assert_eq!(
        (
            key["kty"].as_str(),
            key["crv"].as_str(),
            key["kid"].as_str()
        ),
        (Some("OKP"), Some("Ed25519"), Some(hq_kid.as_str()))
    );
    assert!(key.get("d").is_none(), "never the private key: {set}");
    let again = reqwest::Client::new()
        .get(hq.url("/.well-known/jwks.json"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);

    // The distribution centre's own registry knows the site (the link brings it).
    std::fs::create_dir_all(&dc_dir).unwrap();
    common::admin_token(&dc_dir);
    add_dc(&dc_dir);
    let hq_url = hq.url("");
    let mut dc = Server::start(
        &dc_dir,
        &[
            "--upstream",
            hq_url.trim_end_matches('/'),
            "--upstream-token",
            &relay_token,
            "--upstream-trust-refresh-secs",
            REFRESH_SECS,
        ],
    )
    .await;
    until_accepted(&dc, &pad, "head office's device token at the DC").await;
    // The DC publishes head office's key next to its own, for relays below it.
    let dc_set: serde_json::Value = reqwest::get(dc.url("/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = dc_set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(
        kids.contains(&hq_kid.as_str()) && kids.len() == 2,
        "{kids:?}"
    );

    // It checks but cannot forge: what it signs, head office refuses.
    let forged = token(&dc_dir, "admin", "mallory", "dc-box");
    assert_ne!(header(&forged)["kid"].as_str(), Some(hq_kid.as_str()));
    assert_eq!(me(&hq, &forged).await, (401, "unknown_key".to_string()));

    // A device revoked at head office is cut from its open socket at the DC.
    let mut socket = Client::connect(
        &format!("ws://127.0.0.1:{}/sync?token={pad}", dc.port),
        "pad-7-peer",
        None,
    )
    .await;
    run_bin(&["revoke", "--device", "pad-7"], &hq_dir);
    let revoked_at = Instant::now();
    while !socket.closed {
        assert!(
            revoked_at.elapsed() < DEADLINE,
            "the revoked device's socket stays open at the DC\n{}",
            dc.log()
        );
        socket.pump_once(Duration::from_millis(100)).await;
    }
    assert!(
        socket
            .errors
            .iter()
            .any(|e| e.contains("pad-7 was revoked")),
        "{:?}",
        socket.errors
    );
    assert_eq!(me(&dc, &pad).await.0, 401);

    // Head office goes away; the DC restarts with the link down and still knows both
    // the keys and the revocation.
    hq.kill();
    dc.restart().await;
    assert_eq!(me(&dc, &laptop).await, (200, String::new()));
    assert_eq!(me(&dc, &pad).await, (401, "device_revoked".to_string()));
    let since = Instant::now();
    while !dc.log().contains("cannot refresh trust from upstream") {
        assert!(
            since.elapsed() < DEADLINE,
            "the DC never says the link is down"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Head office rotates and retires its old key; once the link is back, the DC
    // follows: the new key's tokens verify there, the old key's no longer do.
    let rotated = run_bin(&["keys", "rotate"], &hq_dir).trim().to_string();
    run_bin(&["keys", "retire", &hq_kid], &hq_dir);
    hq.restart().await;
    let fresh = token(&hq_dir, "manager", "sun.li", "pad-9");
    assert_eq!(header(&fresh)["kid"].as_str(), Some(rotated.as_str()));
    until_accepted(&dc, &fresh, "a token of head office's new key at the DC").await;
    assert_eq!(me(&dc, &laptop).await, (401, "unknown_key".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_revocation_feed_is_for_relays_head_office_and_admins() {
    let dir = tempfile::tempdir().unwrap();
    let hq = Server::start(dir.path(), &[]).await;
    add_dc(dir.path());
    let relay = token(dir.path(), "relay", "relay.dc-north", "dc-north-relay");
    let manager = token(dir.path(), "manager", "li.na", "pad-7");
    run_bin(&["revoke", "--device", "pad-3"], dir.path());
    let feed = |t: String, after: &str| {
        let url = hq.url(&format!("/api/revocations?after={after}"));
        async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(t)
                .send()
                .await
                .unwrap()
        }
    };
    let r = feed(relay.clone(), "0").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let page: serde_json::Value = r.json().await.unwrap();
    assert_eq!(page["revocations"][0]["kind"], "device");
    assert_eq!(page["revocations"][0]["value"], "pad-3");
    assert_eq!(page["more"], false);
    let last = page["last"].as_i64().unwrap();
    let rest: serde_json::Value = feed(relay.clone(), &last.to_string())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["revocations"].as_array().unwrap().len(), 0);
    assert_eq!(rest["last"], last);
    assert_eq!(feed(manager, "0").await.status(), 403);
    assert_eq!(feed(relay.clone(), "minus-one").await.status(), 400);
    assert_eq!(feed(relay, "-1").await.status(), 400);
    assert_eq!(feed(hq.token.clone(), "0").await.status(), 200);
}
