//! Revoking a token or a device cuts its open WebSocket connections within a second or
//! two, whether the revocation comes through the admin API (in process) or from the
//! `dealersync-server revoke` subcommand (another process writing the same SQLite
//! file); and nothing the revoked connection sends afterwards is stored.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use common::{BIN, Client, DEADLINE, Server, create_doc, put, run_bin};
use dealersync_core::protocol::DocumentId;

/// Issues an admin token for `device` with the binary and returns it with its `jti`.
fn token_for(data_dir: &Path, device: &str) -> (String, String) {
    let token = run_bin(
        &[
            "token", "--sub", "li.na", "--role", "admin", "--site", "hq", "--device", device,
        ],
        data_dir,
    )
    .trim()
    .to_string();
    let payload = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    (token, claims["jti"].as_str().unwrap().to_string())
}

fn ws_url(s: &Server, token: &str) -> String {
    format!("ws://127.0.0.1:{}/sync?token={token}", s.port)
}

/// Audit rows written for `device`.
fn audited(data_dir: &Path, device: &str) -> i64 {
    let db = rusqlite::Connection::open(data_dir.join("dealersync.db")).unwrap();
    db.query_row(
        "SELECT COUNT(*) FROM audit WHERE device = ?1",
        [device],
        |r| r.get(0),
    )
    .unwrap()
}

/// A client of `device` that has written one acknowledged change to `doc`.
async fn synced_writer(s: &Server, token: &str, peer: &str, doc: DocumentId) -> Client {
    let mut c = Client::connect(&ws_url(s, token), peer, None).await;
    c.request(doc).await;
    c.until("the document arrives", |c| !c.server_heads(doc).is_empty())
        .await;
    // A key of its own: automerge makes no change for a put of the value already there.
    c.change(doc, put(&format!("before-{peer}"), 1)).await;
    let heads = c.heads(doc);
    c.until("the change is acknowledged", |c| {
        heads.iter().all(|h| c.server_heads(doc).contains(h))
    })
    .await;
    c
}

/// Pumps `c` until the server closes it; returns the errors and how long it took.
async fn closed_with(c: &mut Client) -> (Vec<String>, Duration) {
    let started = Instant::now();
    let until = started + DEADLINE;
    while !c.closed {
        assert!(Instant::now() < until, "not closed; errors {:?}", c.errors);
        c.pump_once(Duration::from_millis(100)).await;
    }
    (c.errors.clone(), started.elapsed())
}

async fn revoke_by_api(s: &Server, body: serde_json::Value) {
    let r = reqwest::Client::new()
        .post(s.url("/api/admin/revocations"))
        .bearer_auth(&s.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "{:?}", r.text().await);
}

fn revoke_by_cli(data_dir: &Path, args: &[&str]) {
    let out = std::process::Command::new(BIN)
        .arg("revoke")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn revoking_through_the_api_closes_the_connection_and_drops_its_later_changes() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]).await;
    let doc = create_doc(dir.path());
    let (revoked, jti) = token_for(dir.path(), "pad-1");
    let (kept, _) = token_for(dir.path(), "pad-2");
    let mut a = synced_writer(&s, &revoked, "peer-a", doc).await;
    let mut b = synced_writer(&s, &kept, "peer-b", doc).await;
    assert_eq!(audited(dir.path(), "pad-1"), 1);

    let before_revocation = a.heads(doc);
    revoke_by_api(&s, serde_json::json!({ "jti": jti })).await;
    // Sent after the revocation was acknowledged: must not be stored.
    a.change(doc, put("after", 2)).await;
    assert_ne!(a.heads(doc), before_revocation, "a made a change to send");
    let (errors, took) = closed_with(&mut a).await;
    assert!(
        errors
            .iter()
            .any(|e| e.contains("revoked") && e.contains(&jti)),
        "{errors:?}"
    );
    assert!(took < Duration::from_secs(3), "closed after {took:?}");

    // The other device's connection is untouched and its changes still land.
    b.change(doc, put("still", 3)).await;
    let heads = b.heads(doc);
    b.until("b's change is acknowledged", |c| {
        heads.iter().all(|h| c.server_heads(doc).contains(h))
    })
    .await;
    assert_eq!(audited(dir.path(), "pad-2"), 2);
    assert_eq!(
        audited(dir.path(), "pad-1"),
        1,
        "the change after revocation was stored"
    );
    let metrics = s.metrics().await;
    assert_eq!(
        common::metric_value(&metrics, "dealersync_errors_total", "token_revoked"),
        1.0
    );
}

#[tokio::test]
async fn revoking_from_the_command_line_closes_open_connections_within_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]).await;
    let doc = create_doc(dir.path());

    // By device, from the subcommand: both connections of the device go.
    let (t1, _) = token_for(dir.path(), "lost-pad");
    let (t2, _) = token_for(dir.path(), "lost-pad");
    let (t3, jti3) = token_for(dir.path(), "pad-3");
    let mut a = synced_writer(&s, &t1, "peer-a", doc).await;
    let mut b = synced_writer(&s, &t2, "peer-b", doc).await;
    let mut c = synced_writer(&s, &t3, "peer-c", doc).await;
    revoke_by_cli(dir.path(), &["--device", "lost-pad"]);
    for client in [&mut a, &mut b] {
        let (errors, took) = closed_with(client).await;
        assert!(
            errors
                .iter()
                .any(|e| e.contains("revoked") && e.contains("lost-pad")),
            "{errors:?}"
        );
        assert!(took < Duration::from_secs(3), "closed after {took:?}");
    }

    // By token id, from the subcommand.
    revoke_by_cli(dir.path(), &["--jti", &jti3]);
    let (errors, took) = closed_with(&mut c).await;
    assert!(
        errors
            .iter()
            .any(|e| e.contains("revoked") && e.contains(&jti3)),
        "{errors:?}"
    );
    assert!(took < Duration::from_secs(3), "closed after {took:?}");

    // By device, through the API.
    let (t4, _) = token_for(dir.path(), "pad-4");
    let mut d = synced_writer(&s, &t4, "peer-d", doc).await;
    revoke_by_api(&s, serde_json::json!({ "device": "pad-4" })).await;
    let (errors, took) = closed_with(&mut d).await;
    assert!(errors.iter().any(|e| e.contains("pad-4")), "{errors:?}");
    assert!(took < Duration::from_secs(3), "closed after {took:?}");

    // And a revoked token cannot come back.
    let refused = tokio_tungstenite::connect_async(ws_url(&s, &t4)).await;
    assert!(refused.is_err());
}

/// The engine's access rule of a connection grants nothing from the moment its token
/// or device is revoked, also when the revocation comes from another process and is
/// picked up by the poll: a change that races the close is never stored.
#[test]
fn a_revoked_connection_s_access_rule_grants_nothing() {
    use dealersync_core::access::{Access, Role};
    use dealersync_server::auth::TokenRequest;
    use dealersync_server::registry::{Registry, Revocation};

    let n = common::network(|id| id.to_string());
    let issue = |device: &str| {
        n.auth
            .issue(&TokenRequest {
                sub: "li.na".into(),
                role: Role::Admin,
                site: "hq".into(),
                device: Some(device.into()),
                ttl: Duration::from_secs(600),
            })
            .unwrap()
            .claims
    };
    let (a, b) = (issue("pad-a"), issue("pad-b"));
    let doc = n.registry.site("dc-north").unwrap().document_id;
    let (info_a, info_b) = (n.registry.conn_info(&a), n.registry.conn_info(&b));
    assert_eq!((info_a.access)(&doc), Access::ReadWrite);

    n.registry
        .revoke(&Revocation::Token(a.jti.clone()))
        .unwrap();
    assert_eq!((info_a.access)(&doc), Access::None);
    assert_eq!((info_b.access)(&doc), Access::ReadWrite);

    // Another process (a second registry on the same file) revokes the device.
    let mut changes = n.registry.revocation_changes();
    changes.mark_unchanged();
    Registry::open_in(n.dir.path())
        .unwrap()
        .revoke(&Revocation::Device("pad-b".into()))
        .unwrap();
    assert_eq!(
        (info_b.access)(&doc),
        Access::ReadWrite,
        "not seen before the poll"
    );
    assert!(n.registry.poll_revocations().unwrap());
    assert!(changes.has_changed().unwrap());
    assert_eq!((info_b.access)(&doc), Access::None);
    assert!(!n.registry.poll_revocations().unwrap(), "nothing new");
}
