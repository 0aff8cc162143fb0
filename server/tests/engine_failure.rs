//! An engine that fails outside any one peer's message never looks healthy: the relay
//! stops (its `/healthz` answers 503 for as long as it still answers) and the process
//! exits non-zero so that a supervisor restarts it from storage. Driven with the real binary and the
//! `engine-commit` failpoint (a panic while preparing a group commit), which the test
//! build compiles in.

mod common;

use std::time::Duration;

use automerge::transaction::Transactable;
use common::{Client, DEADLINE, Server, create_doc};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_preparing_a_commit_stops_the_relay_and_fails_its_health_check() {
    let dir = tempfile::tempdir().unwrap();
    let doc = create_doc(dir.path());
    let mut server = Server::start_with_env(
        dir.path(),
        &[],
        &[("DEALERSYNC_FAILPOINT", "engine-commit")],
    )
    .await;
    let mut client = Client::connect(&server.ws_url(), "writer", None).await;
    client.request(doc).await;
    client.drain(Duration::from_millis(300)).await;
    // The first change to commit makes the engine panic outside any message.
    client
        .change(doc, |d| {
            d.put(automerge::ROOT, "k", 1).unwrap();
        })
        .await;
    let status = server
        .exit_status(DEADLINE)
        .await
        .expect("the relay kept running with a dead engine");
    assert!(!status.success(), "exit status {status}");
    let log = server.log();
    assert!(log.contains("failpoint engine-commit"), "{log}");
    assert!(log.contains("the sync engine stopped"), "{log}");
    // Nothing that was acknowledged is lost: a restart serves the stored document.
    drop(client);
    let server = Server::start(dir.path(), &[]).await;
    let health = reqwest::get(server.url("/healthz")).await.unwrap();
    assert!(health.status().is_success());
}
