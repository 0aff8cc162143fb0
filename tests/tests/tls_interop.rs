//! The stock JavaScript automerge-repo client syncing with the relay over `wss://`,
//! the relay serving its own certificate from a dealer's private CA.

use dealersync_tests::{JsClient, ServerProcess};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use serde_json::json;

use std::time::Duration;

/// How long a client may take to see what it waits for.
const DEADLINE: Duration = Duration::from_secs(30);

#[tokio::test]
async fn js_clients_sync_through_a_relay_serving_tls() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Distinct names: a leaf named like its issuer looks self-signed to node.
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Dealer test CA");
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(vec!["localhost".to_string()])?;
    leaf.distinguished_name
        .push(rcgen::DnType::CommonName, "relay.localhost");
    let cert = leaf.signed_by(&key, &issuer)?;
    let (ca_path, cert_path, key_path) = (
        dir.path().join("ca.pem"),
        dir.path().join("relay.pem"),
        dir.path().join("relay.key"),
    );
    std::fs::write(&ca_path, ca_cert.pem())?;
    std::fs::write(&cert_path, cert.pem())?;
    std::fs::write(&key_path, key.serialize_pem())?;

    let server = ServerProcess::start_tls(&cert_path, &key_path, &ca_path).await?;
    let doc = server.create_document().await?.url();
    let url = server.admin_ws_url().await?;
    assert!(url.starts_with("wss://"), "{url}");
    let config = |name: &str| json!({"url": url, "name": name, "caFile": ca_path});
    let alice = JsClient::spawn_with("alice", config("alice")).await?;
    let bob = JsClient::spawn_with("bob", config("bob")).await?;
    alice.find(&doc, DEADLINE).await?;
    bob.find(&doc, DEADLINE).await?;
    let changed = alice
        .change(
            &doc,
            json!([{"op": "set", "path": ["note"], "value": "over wss"}]),
        )
        .await?;
    let seen = bob.wait_heads(&doc, &changed.heads, DEADLINE).await?;
    assert_eq!(seen.doc["note"], "over wss", "{seen:?}");
    Ok(())
}
