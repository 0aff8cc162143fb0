//! Input any token holder (or admin typo) can send, against the real binary: ids and
//! names of any length or with control characters, spreadsheet formulas in CSV cells,
//! endless token lifetimes, tokens for sites that do not exist.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{BIN, DEADLINE, Server, expect_error_and_close, join_frame, raw, run_bin};
use dealersync_core::access::Role;
use dealersync_server::auth::{AuthConfig, Authenticator, TokenRequest};
use dealersync_server::registry::Registry;
use futures_util::SinkExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(DEADLINE)
        .build()
        .unwrap()
}

async fn post(s: &Server, path: &str, body: Value) -> (StatusCode, Value) {
    let r = http()
        .post(s.url(path))
        .bearer_auth(&s.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn get(s: &Server, path: &str, token: &str) -> (StatusCode, String) {
    let r = http()
        .get(s.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

/// A token signed with the data directory's own key but not checked against the site
/// registry, as an identity provider would issue one.
fn unchecked_token(data_dir: &std::path::Path, site: &str) -> String {
    let registry = std::sync::Arc::new(Registry::open_in(data_dir).unwrap());
    let auth = Authenticator::open(data_dir, AuthConfig::default(), registry).unwrap();
    auth.issue(&TokenRequest {
        sub: "ghost".into(),
        role: Role::Manager,
        site: site.into(),
        device: Some("pad-9".into()),
        ttl: Duration::from_secs(600),
    })
    .unwrap()
    .token
}

#[tokio::test]
async fn site_ids_and_names_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]).await;
    let site =
        |id: &str, name: &str| json!({"id": id, "name": name, "kind": "agent", "parent": "hq"});
    for (body, why) in [
        (site("agent-", "Agent"), "trailing dash"),
        (site("-agent", "Agent"), "leading dash"),
        (site("agent-1", "bad\u{0}name"), "NUL in the name"),
        (site("agent-1", "bad\u{1b}[2Jname"), "escape in the name"),
        (site("agent-1", &"n".repeat(1 << 20)), "1 MB name"),
        (site("agent-1", &"站".repeat(101)), "101 characters"),
    ] {
        let (status, body) = post(&s, "/api/admin/sites", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{why}: {body}");
        assert!(body["error"].as_str().unwrap().len() < 300, "{why}: {body}");
    }
    // A rejected JSON body names the bad value; the answer quotes it clipped.
    let (status, body) = post(
        &s,
        "/api/admin/sites",
        json!({"id": "agent-1", "name": "A", "kind": "k".repeat(100_000), "parent": "hq"}),
    )
    .await;
    assert!(status.is_client_error(), "{status}");
    assert!(body["error"].as_str().unwrap().len() < 600, "{body}");
    let (status, body) = post(&s, "/api/admin/sites", site("agent-1", &"站".repeat(100))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = http()
        .patch(s.url("/api/admin/sites/agent-1"))
        .bearer_auth(&s.token)
        .json(&json!({"name": "x\u{7}y"}))
        .send()
        .await
        .map(|r| (r.status(), r))
        .unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{:?}", body.text().await);
    // The CLI goes through the same rules.
    let out = Command::new(BIN)
        .args([
            "site", "add", "--id", "agent-2-", "--name", "A", "--kind", "agent",
        ])
        .args(["--parent", "hq", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid site id"));
}

#[tokio::test]
async fn token_lifetimes_are_capped_and_sites_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]).await;
    let token =
        |ttl: &str, site: &str| json!({"sub": "u", "role": "consultant", "site": site, "ttl": ttl});
    let (status, body) = post(&s, "/api/admin/tokens", token("5000w", "hq")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("at most 366 days"),
        "{body}"
    );
    let (status, body) = post(&s, "/api/admin/tokens", token("366d", "hq")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = post(&s, "/api/admin/tokens", token("1d", "nowhere")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    for (ttl, site, says) in [
        ("5000w", "hq", "at most 366 days"),
        ("1d", "nowhere", "no site"),
    ] {
        let out = Command::new(BIN)
            .args([
                "token",
                "--sub",
                "u",
                "--role",
                "consultant",
                "--site",
                site,
            ])
            .args(["--ttl", ttl, "--data-dir"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "token --ttl {ttl} --site {site} succeeded"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{err}");
        assert!(out.stdout.is_empty());
    }
}

#[tokio::test]
async fn tokens_of_unknown_or_deactivated_sites_are_refused_at_admission() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]).await;
    let ghost = unchecked_token(dir.path(), "nowhere");
    let (status, body) = get(&s, "/api/me", &ghost).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("does not exist"), "{body}");
    let refused =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}/sync?token={ghost}", s.port))
            .await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
        other => panic!("upgrade with a token of an unknown site: {other:?}"),
    }

    let (status, body) = post(
        &s,
        "/api/admin/sites",
        json!({"id": "rs-9", "name": "Roadshow", "kind": "roadshow", "parent": "hq"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let user = run_bin(
        &[
            "token",
            "--sub",
            "li",
            "--role",
            "consultant",
            "--site",
            "rs-9",
        ],
        dir.path(),
    );
    let user = user.trim();
    assert_eq!(get(&s, "/api/me", user).await.0, StatusCode::OK);
    let (status, body) = post(&s, "/api/admin/sites/rs-9/deactivate", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = get(&s, "/api/me", user).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("deactivated"), "{body}");
    let (status, body) = post(
        &s,
        "/api/admin/tokens",
        json!({"sub": "li", "role": "consultant", "site": "rs-9"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn csv_exports_never_carry_a_formula() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]).await;
    let formula = "=HYPERLINK(\"http://evil.example/\",\"open\")";
    let (status, body) = post(
        &s,
        "/api/admin/sites",
        json!({"id": "agent-x", "name": formula, "kind": "agent", "parent": "hq"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, csv) = get(&s, "/api/sites?format=csv", &s.token).await;
    assert_eq!(status, StatusCode::OK, "{csv}");
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let names: Vec<String> = reader
        .records()
        .map(|r| r.unwrap()[1].to_string())
        .collect();
    assert!(names.contains(&format!("'{formula}")), "{csv}");
    assert!(
        names.iter().all(|n| !n.starts_with(['=', '+', '-', '@'])),
        "{csv}"
    );
}

#[tokio::test]
async fn a_huge_audit_doc_parameter_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]).await;
    let long = "1".repeat(65_000);
    let started = Instant::now();
    let (status, body) = get(&s, &format!("/api/audit?doc={long}"), &s.token).await;
    let took = started.elapsed();
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "{}",
        &body[..body.len().min(300)]
    );
    assert!(
        body.len() < 300,
        "the answer echoes the input: {} bytes",
        body.len()
    );
    // Parsing 65k characters as base58 took 1.5 s; refusing them takes nothing.
    assert!(took < Duration::from_millis(500), "took {took:?}");

    // Eight at once (they used to occupy both async workers for seconds) do not hold
    // up the health check.
    let url = s.url(&format!("/api/audit?doc={long}"));
    let flood: Vec<_> = (0..8)
        .map(|_| {
            let (url, token) = (url.clone(), s.token.clone());
            tokio::spawn(async move { http().get(url).bearer_auth(token).send().await })
        })
        .collect();
    let started = Instant::now();
    let health = http().get(s.url("/healthz")).send().await.unwrap();
    let took = started.elapsed();
    assert_eq!(health.status(), StatusCode::OK);
    assert!(took < Duration::from_millis(500), "/healthz took {took:?}");
    for r in flood {
        assert_eq!(r.await.unwrap().unwrap().status(), StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn overlong_peer_ids_are_refused_and_never_stored_or_logged() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]).await;
    let long_peer = format!("peer-{}", "p".repeat(10_000));
    let mut ws = raw(&s.ws_url()).await;
    ws.send(WsMessage::Binary(join_frame(&long_peer, None).into()))
        .await
        .unwrap();
    let errors = expect_error_and_close(&mut ws).await;
    assert!(
        errors.iter().any(|e| e.contains("longer than 128 bytes")),
        "{errors:?}"
    );
    let long_storage = "s".repeat(129);
    let mut ws = raw(&s.ws_url()).await;
    ws.send(WsMessage::Binary(
        join_frame("short-peer", Some(&long_storage)).into(),
    ))
    .await
    .unwrap();
    let errors = expect_error_and_close(&mut ws).await;
    assert!(
        errors.iter().any(|e| e.contains("storage id of 129 bytes")),
        "{errors:?}"
    );
    // An id within the limit but long for a log line is accepted, and clipped in logs.
    let medium = format!("m{}", "e".repeat(119));
    let client = common::Client::connect(&s.ws_url(), &medium, None).await;
    drop(client);

    let db = rusqlite::Connection::open(dir.path().join("dealersync.db")).unwrap();
    let longest: i64 = db
        .query_row(
            "SELECT COALESCE(MAX(LENGTH(id)), 0) FROM peer_bindings",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(longest, 120, "only the 120-byte peer id is bound");
    // The connection span names the peer clipped, with its length (on the lines it
    // logs once the peer is known: its disconnection).
    let clipped = format!("{}… (120 bytes)", &medium[..80]);
    let until = Instant::now() + DEADLINE;
    while !s.log().contains(&clipped) {
        assert!(Instant::now() < until, "no {clipped:?} in the log");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = s.log();
    assert!(!log.contains(&"p".repeat(100)));
    assert!(!log.contains(&"s".repeat(100)));
}

#[tokio::test]
async fn a_huge_document_id_is_not_copied_into_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]).await;
    let mut c = common::Client::connect(&s.ws_url(), "peer-doc", None).await;
    let frame = ciborium::Value::Map(vec![
        ("type".into(), "request".into()),
        ("senderId".into(), "peer-doc".into()),
        ("targetId".into(), c.server.0.clone().into()),
        ("documentId".into(), "d".repeat(20_000).into()),
        ("data".into(), ciborium::Value::Bytes(vec![0x42, 0, 0])),
    ]);
    let mut bytes = Vec::new();
    ciborium::into_writer(&frame, &mut bytes).unwrap();
    c.send_raw(bytes).await;
    let until = Instant::now() + DEADLINE;
    while !c.closed && c.errors.is_empty() {
        assert!(Instant::now() < until, "no answer to a bad document id");
        c.pump_once(Duration::from_millis(100)).await;
    }
    // The relay logs the frame (debug) and the connection's end; wait for the latter.
    let until = Instant::now() + DEADLINE;
    drop(c);
    while !s.log().contains("disconnected") {
        assert!(Instant::now() < until, "no disconnect logged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = s.log();
    assert!(log.contains("(20000 bytes)"), "the id is named, clipped");
    assert!(
        !log.contains(&"d".repeat(200)),
        "the whole id went into the log"
    );
}
