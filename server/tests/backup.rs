//! Backups that restore, against the real binary: `backup` while a writer keeps
//! committing, `verify`, `restore` into an empty directory, the restored relay serving
//! a client that was never there with the tokens issued before, and a device that
//! synced after the backup sending the restored relay what it lost.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use automerge::ChangeHash;
use automerge::sync;
use common::{BIN, Client, DEADLINE, Server, create_doc, put};
use dealersync_core::protocol::DocumentId;

/// Writes `key` and pumps until the relay advertises the change (it is durable).
async fn write_acknowledged(c: &mut Client, doc: DocumentId, key: &str, value: i64) -> ChangeHash {
    c.change(doc, put(key, value)).await;
    let head = c.heads(doc)[0];
    c.until("the relay acknowledges the change", |c| {
        c.server_heads(doc).contains(&head)
    })
    .await;
    head
}

fn bin(args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = bin(args);
    assert!(
        out.status.success(),
        "dealersync-server {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_restores_every_acknowledged_change_and_devices_resend_the_rest() {
    let root = tempfile::tempdir().unwrap();
    let (live, restored) = (root.path().join("live"), root.path().join("restored"));
    std::fs::create_dir_all(&live).unwrap();
    let doc = create_doc(&live);
    let server = Server::start(&live, &[]).await;
    let mut writer = Client::connect(&server.ws_url(), "writer", Some("writer-storage")).await;
    writer.request(doc).await;
    writer
        .until("the document arrives", |c| !c.heads(doc).is_empty())
        .await;

    // A writer commits one change after another; the backup starts in the middle of
    // it and runs while the writer goes on.
    let file = root.path().join("relay.backup");
    let mut acknowledged = Vec::new();
    let mut acked_before_backup = Vec::new();
    let mut backup = None;
    let mut i = 0i64;
    let until = Instant::now() + DEADLINE * 3;
    loop {
        acknowledged.push(write_acknowledged(&mut writer, doc, &format!("k{i}"), i).await);
        i += 1;
        if i == 40 {
            acked_before_backup = acknowledged.clone();
            let args = vec![
                "backup".to_string(),
                "--data-dir".into(),
                path(&live).into(),
                "--to".into(),
                path(&file).into(),
            ];
            backup = Some(tokio::task::spawn_blocking(move || {
                Command::new(BIN).args(&args).output().unwrap()
            }));
        }
        if let Some(b) = &backup
            && b.is_finished()
            && i >= 80
        {
            break;
        }
        assert!(Instant::now() < until, "the backup never finished");
    }
    let out = backup.unwrap().await.unwrap();
    assert!(
        out.status.success(),
        "backup: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("every one loads"), "{printed}");
    let written_after = i;

    // verify reads it back; restore puts it in an empty directory.
    let verified = ok(&["verify", path(&file)]);
    assert!(
        verified.contains("jwt-keys.json"),
        "the signing keys travel: {verified}"
    );
    ok(&[
        "restore",
        "--from",
        path(&file),
        "--data-dir",
        path(&restored),
    ]);

    // The restored relay answers the token issued by the live one, and serves a
    // client that was never there every change acknowledged before the backup began.
    let second = Server::start(&restored, &[]).await;
    let old_token_url = format!("ws://127.0.0.1:{}/sync?token={}", second.port, server.token);
    let mut stranger = Client::connect(&old_token_url, "stranger", None).await;
    stranger.request(doc).await;
    stranger
        .until("the restored relay serves what was acknowledged", |c| {
            c.has_all(doc, &acked_before_backup)
        })
        .await;
    let served: usize = acknowledged
        .iter()
        .filter(|h| {
            stranger
                .docs
                .get_mut(&doc)
                .unwrap()
                .doc
                .get_change_by_hash(h)
                .is_some()
        })
        .count();
    assert!(
        served < acknowledged.len(),
        "the backup was taken while writing: it lacks the last changes ({served} of {})",
        acknowledged.len()
    );

    // The writer, with the sync state it had persisted against the live relay,
    // reconnects to the restored one: it sends what the backup lacks.
    let mut device = Client::connect(&second.ws_url(), "writer", Some("writer-storage")).await;
    let replica = writer.docs.remove(&doc).unwrap();
    let remembered = sync::State::decode(&replica.state.encode()).unwrap();
    device.share(doc, replica.doc, remembered).await;
    let all = device.heads(doc);
    let mut late = Client::connect(&second.ws_url(), "late", None).await;
    late.request(doc).await;
    common::until_reader_has(&mut device, &mut late, doc, &all).await;
    assert!(late.has_all(doc, &acknowledged));
    assert_eq!(
        common::value(&mut late, doc, &format!("k{}", written_after - 1)),
        Some(written_after - 1)
    );
    drop(server);
}

#[tokio::test]
async fn damaged_backups_are_refused_and_nothing_is_overwritten() {
    let root = tempfile::tempdir().unwrap();
    let live = root.path().join("live");
    std::fs::create_dir_all(&live).unwrap();
    create_doc(&live);
    let file = root.path().join("b.backup");
    ok(&["backup", "--data-dir", path(&live), "--to", path(&file)]);

    // Never overwrites a backup.
    let again = bin(&["backup", "--data-dir", path(&live), "--to", path(&file)]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    // Never restores over a data directory that has a database.
    let into_live = bin(&["restore", "--from", path(&file), "--data-dir", path(&live)]);
    assert!(!into_live.status.success());
    assert!(String::from_utf8_lossy(&into_live.stderr).contains("already exists"));

    // One flipped byte: verify and restore refuse it, and say why.
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&file, &bytes).unwrap();
    let verify = bin(&["verify", path(&file)]);
    assert!(!verify.status.success());
    let err = String::from_utf8_lossy(&verify.stderr);
    assert!(err.contains("damaged or changed"), "{err}");
    let fresh = root.path().join("fresh");
    let restore = bin(&["restore", "--from", path(&file), "--data-dir", path(&fresh)]);
    assert!(!restore.status.success());
    assert!(
        !fresh.join("dealersync.db").exists(),
        "a refused restore leaves no database behind"
    );

    // Without its checksum file a backup is not trusted either.
    std::fs::remove_file(root.path().join("b.backup.sha256")).unwrap();
    let verify = bin(&["verify", path(&file)]);
    assert!(String::from_utf8_lossy(&verify.stderr).contains("checksum file"));
}
