//! SIGTERM while a commit is in flight (`systemctl stop`, `docker stop`): the relay
//! finishes that commit before it exits, so the change it had received is stored.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_commit_waits_for_it_and_the_change_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let doc = create_doc(dir.path());
    let mut server = Server::start(dir.path(), &["--busy-timeout-ms", "30000"]).await;
    let mut c = Client::connect(&server.ws_url(), "writer", Some("w")).await;
    c.request(doc).await;
    c.until("synced", |c| !c.server_heads(doc).is_empty()).await;

    // Another process holds the write lock, so the commit of the next change waits
    // for it: the change is received and applied, its commit in flight.
    let blocker = rusqlite::Connection::open(dir.path().join("dealersync.db")).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    c.change(doc, put("in_flight", 1)).await;
    let want = c.heads(doc);
    let until = Instant::now() + DEADLINE;
    while metric_value(
        &server.metrics().await,
        "dealersync_changes_applied_total",
        "",
    ) < 1.0
    {
        assert!(Instant::now() < until, "the relay never applied the change");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let pid = server.pid().unwrap().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let until = Instant::now() + DEADLINE;
    while !server.log().contains("shutting down") {
        assert!(
            Instant::now() < until,
            "no shutdown logged:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The relay closes the socket (1001) and, the connection gone, finishes its
    // commits: the one in flight still waits for the lock, and the relay with it.
    c.until("the relay closes the socket", |c| c.closed).await;
    assert!(
        server.exit_status(Duration::from_secs(1)).await.is_none(),
        "the relay exited with a commit in flight:\n{}",
        server.log()
    );
    blocker.execute_batch("ROLLBACK").unwrap();
    let status = server
        .exit_status(DEADLINE)
        .await
        .expect("the relay exits once its commit is done");
    assert!(status.success(), "exit status {status}:\n{}", server.log());
    assert!(
        server.log().contains("shut down cleanly"),
        "{}",
        server.log()
    );

    // Started again, it serves the change to a device that was never there.
    server.restart().await;
    served_to_a_fresh_client(&server.ws_url(), None, doc, &want).await;
}
