//! Interop: unmodified JavaScript automerge-repo 2.5 clients (tests/js/client.mjs) and
//! a Rust client on dealersync's own engine sync through the real `dealersync-server`
//! binary. The same scenarios run against the reference server in js_reference.rs.

mod common;

use dealersync_core::protocol::DocumentId;
use dealersync_tests::{JsClient, ServerProcess};

use common::DEADLINE;

async fn start_server_with_document() -> anyhow::Result<(ServerProcess, DocumentId)> {
    let server = ServerProcess::start().await?;
    let doc = server.create_document().await?;
    Ok((server, doc))
}

#[tokio::test]
async fn two_js_clients_edit_concurrently_and_converge_through_the_relay() -> anyhow::Result<()> {
    let (server, doc) = start_server_with_document().await?;
    common::two_js_clients_converge(&server.ws_url(), &doc.url()).await
}

#[tokio::test]
async fn js_and_rust_engine_clients_converge_through_the_relay() -> anyhow::Result<()> {
    let (server, doc) = start_server_with_document().await?;
    common::js_and_rust_converge(&server.ws_url(), &doc).await
}

#[tokio::test]
async fn a_js_client_that_reconnects_gets_the_edits_made_meanwhile() -> anyhow::Result<()> {
    let (server, doc) = start_server_with_document().await?;
    let missed =
        common::reconnect_rounds(&server.ws_url(), &doc.url(), 10, common::DEADLINE).await?;
    assert_eq!(
        missed, 0,
        "rounds in which the returning client missed the edit"
    );
    Ok(())
}

#[tokio::test]
async fn js_client_is_told_a_document_the_relay_does_not_have_is_unavailable() -> anyhow::Result<()>
{
    let (server, _doc) = start_server_with_document().await?;
    let client = JsClient::spawn("dora", &server.ws_url()).await?;
    let err = client
        .find(&DocumentId::random().url(), DEADLINE)
        .await
        .unwrap_err();
    assert_eq!(err.js_kind(), Some("unavailable"), "{err}");
    let state = client.state(None).await?;
    assert!(
        state["received"]["doc-unavailable"].as_u64() >= Some(1),
        "the relay must answer doc-unavailable: {state}"
    );
    Ok(())
}
