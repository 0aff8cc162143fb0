//! Auth over real WebSockets: the relay (`server::serve`) with `api::extensions`
//! plugged in, and a client speaking the automerge-repo protocol.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use automerge::ReadDoc;
use automerge::transaction::Transactable;
use common::{Client, DEADLINE, expect_error_and_close, join_frame};
use dealersync_core::access::Role;
use dealersync_core::protocol::DocumentId;
use dealersync_core::protocol::wire::Message;
use dealersync_core::store::Store;
use dealersync_server::api::{ApiState, extensions};
use dealersync_server::auth::{Authenticator, TokenRequest};
use dealersync_server::registry::{Registry, Revocation, StoreDocuments};
use dealersync_server::server::serve;
use dealersync_server::storage::SqliteStore;
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

struct Relay {
    _dir: tempfile::TempDir,
    port: u16,
    store: Arc<SqliteStore>,
    registry: Arc<Registry>,
    auth: Arc<Authenticator>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

impl Relay {
    async fn start() -> Relay {
        let common::Network {
            dir,
            store,
            registry,
            auth,
        } = common::network(str::to_string);
        let state = ApiState {
            auth: auth.clone(),
            registry: registry.clone(),
            documents: Arc::new(StoreDocuments(store.clone())),
        };
        let (port, options) = common::serve_options(dir.path(), Duration::from_secs(5));
        let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
            .build_recorder()
            .handle();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve(options, extensions(state), metrics, async move {
            let _ = stopped.await;
        }));
        let relay = Relay {
            _dir: dir,
            port,
            store,
            registry,
            auth,
            stop: Some(stop),
        };
        let until = Instant::now() + DEADLINE;
        while reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
            .await
            .is_err()
        {
            assert!(Instant::now() < until, "the relay did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        relay
    }

    fn token(&self, role: Role, site: &str, device: &str, ttl: Duration) -> String {
        self.auth
            .issue(&TokenRequest {
                sub: format!("{role}-user"),
                role,
                site: site.into(),
                device: Some(device.into()),
                ttl,
            })
            .unwrap()
            .token
    }

    fn url(&self, token: &str) -> String {
        format!("ws://127.0.0.1:{}/sync?token={token}", self.port)
    }

    fn doc(&self, site: &str) -> DocumentId {
        self.registry.site(site).unwrap().document_id
    }
}

const TTL: Duration = Duration::from_secs(600);

/// The HTTP status of a refused upgrade.
async fn refused_status(req: impl IntoClientRequest + Unpin) -> u16 {
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("the upgrade was accepted"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_without_a_valid_token_are_refused_with_401() {
    let r = Relay::start().await;
    let bare = format!("ws://127.0.0.1:{}/sync", r.port);
    assert_eq!(refused_status(bare.as_str()).await, 401);
    assert_eq!(refused_status(r.url("not.a.token").as_str()).await, 401);
    let expired = {
        let mut c = r
            .auth
            .issue(&TokenRequest {
                sub: "x".into(),
                role: Role::Admin,
                site: "hq".into(),
                device: None,
                ttl: TTL,
            })
            .unwrap()
            .claims;
        c.exp = 1_000_000;
        // Re-sign with the server's own key: only the expiry is wrong.
        let keys = dealersync_server::auth::keys::load_managed(r._dir.path())
            .unwrap()
            .unwrap();
        let key = keys.iter().find(|k| k.signing).unwrap();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, &c, &key.encoding_key().unwrap()).unwrap()
    };
    assert_eq!(refused_status(r.url(&expired).as_str()).await, 401);
    // Revoking the device shuts the next connection out.
    let t = r.token(Role::Consultant, "agent-a", "lost-phone", TTL);
    Client::connect(&r.url(&t), "p1", None).await;
    r.registry
        .revoke(&Revocation::Device("lost-phone".into()))
        .unwrap();
    assert_eq!(refused_status(r.url(&t).as_str()).await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_in_header_and_subprotocol_are_accepted() {
    let r = Relay::start().await;
    let t = r.token(Role::Manager, "dc-north", "pad", TTL);
    let base = format!("ws://127.0.0.1:{}/sync", r.port);

    let mut req = base.as_str().into_client_request().unwrap();
    req.headers_mut().insert(
        "Authorization",
        HeaderValue::from_str(&format!("Bearer {t}")).unwrap(),
    );
    let (mut ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(resp.status().as_u16(), 101);
    assert!(resp.headers().get("sec-websocket-protocol").is_none());
    ws.send(WsMessage::Binary(join_frame("hdr", None).into()))
        .await
        .unwrap();

    let mut req = base.as_str().into_client_request().unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_str(&format!("dealersync, bearer.{t}")).unwrap(),
    );
    let (_ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(
        resp.headers()["sec-websocket-protocol"].to_str().unwrap(),
        "dealersync",
        "the server selects the named subprotocol, never echoes the token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consultant_reads_own_site_only_and_cannot_write_the_network() {
    let r = Relay::start().await;
    let t = r.token(Role::Consultant, "agent-a", "tab", TTL);
    let mut c = Client::connect(&r.url(&t), "consultant-peer", Some("consultant-store")).await;
    let own = r.doc("agent-a");
    let sibling = r.doc("dc-south");
    let parent = r.doc("dc-north");
    let unknown = DocumentId::random();
    let network = r.registry.network_document().unwrap().unwrap();
    for d in [own, sibling, parent, unknown, network] {
        c.request(d).await;
    }
    c.until("own site synced", |c| !c.server_heads(own).is_empty())
        .await;
    c.until("network synced", |c| !c.server_heads(network).is_empty())
        .await;
    for d in [sibling, parent, unknown] {
        c.until("doc-unavailable", |c| c.docs[&d].unavailable).await;
    }
    let site: String = match c.docs[&own].doc.get(automerge::ROOT, "site").unwrap() {
        Some((_, obj)) => match c.docs[&own].doc.get(&obj, "id").unwrap() {
            Some((v, _)) => v.into_string().unwrap_or_default(),
            None => String::new(),
        },
        None => String::new(),
    };
    assert_eq!(site, "agent-a");

    // Writing the own site is stored; writing the read-only network document is
    // answered with an error and leaves the stored bytes as they were.
    c.change(own, |d| {
        d.put(automerge::ROOT, "probe", 1).unwrap();
    })
    .await;
    let until = Instant::now() + DEADLINE;
    loop {
        let stored = r.store.load(&own).unwrap().unwrap().chunks.concat();
        let am = automerge::Automerge::load(&stored).unwrap();
        if am.get(automerge::ROOT, "probe").unwrap().is_some() {
            break;
        }
        assert!(Instant::now() < until, "the own-site write was not stored");
        c.pump_once(Duration::from_millis(20)).await;
    }
    // A well-behaved automerge client honours the read-only flag and never sends its
    // change; a hostile one pushes it anyway, in a hand-made sync message.
    let before = r.store.load(&network).unwrap().unwrap().chunks.concat();
    let mut forged = c.docs[&network].doc.clone();
    forged.put(automerge::ROOT, "hijack", true).unwrap();
    let data = common::pushed_change(&mut forged);
    let mut raw = common::raw(&r.url(&t)).await;
    raw.send(WsMessage::Binary(join_frame("hostile", None).into()))
        .await
        .unwrap();
    let server = c.server.clone();
    raw.send(WsMessage::Binary(
        Message::Sync {
            sender_id: "hostile".into(),
            target_id: server,
            document_id: network,
            data,
        }
        .encode()
        .into(),
    ))
    .await
    .unwrap();
    let error = common::first_error(&mut raw).await;
    assert!(error.contains("read-only"), "{error}");
    let after = r.store.load(&network).unwrap().unwrap().chunks.concat();
    assert_eq!(before, after, "the network document changed");
    let audit = r.registry.audit(&own, 100).unwrap();
    assert!(
        audit
            .iter()
            .any(|a| a.user.as_deref() == Some("consultant-user")
                && a.device.as_deref() == Some("tab")),
        "{audit:?}"
    );
}

/// The first `error` message the server sends on a raw socket.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_connection_is_closed_when_its_token_expires() {
    let r = Relay::start().await;
    let t = r.token(
        Role::HeadOffice,
        "hq",
        "wall-screen",
        Duration::from_secs(2),
    );
    let url = r.url(&t);
    let mut ws = common::raw(&url).await;
    ws.send(WsMessage::Binary(join_frame("board", None).into()))
        .await
        .unwrap();
    let started = Instant::now();
    let errors = expect_error_and_close(&mut ws).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(errors.iter().any(|e| e.contains("expired")), "{errors:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_id_is_bound_to_its_token_and_cannot_be_taken_over() {
    let r = Relay::start().await;
    let own = r.doc("agent-a");
    let mine = r.token(Role::Consultant, "agent-a", "tablet-a", TTL);
    // The same user on another device, and another user: neither may speak as us.
    let other_device = r.token(Role::Consultant, "agent-a", "tablet-b", TTL);
    let other_user = r.token(Role::Manager, "dc-north", "tablet-a", TTL);
    let mut a = Client::connect(&r.url(&mine), "shop-tablet", Some("shop-store")).await;
    a.request(own).await;
    a.until("synced", |c| !c.server_heads(own).is_empty()).await;

    for (token, peer, storage) in [
        (&other_device, "shop-tablet", None),
        (&other_user, "shop-tablet", Some("elsewhere")),
        // A fresh peer id with our storage id would pick up our sync states.
        (&other_user, "fresh-peer", Some("shop-store")),
    ] {
        let (mut ws, _) = tokio_tungstenite::connect_async(r.url(token))
            .await
            .unwrap();
        ws.send(WsMessage::Binary(join_frame(peer, storage).into()))
            .await
            .unwrap();
        let errors = expect_error_and_close(&mut ws).await;
        assert!(
            errors
                .iter()
                .any(|e| e.contains("belongs to another user or device")),
            "{peer}/{storage:?}: {errors:?}"
        );
    }

    // The rightful connection was not replaced: it still writes and is acknowledged.
    a.change(own, |d| {
        d.put(automerge::ROOT, "still-mine", 1).unwrap();
    })
    .await;
    let heads = a.heads(own);
    a.until("acknowledged", |c| c.server_heads(own) == heads)
        .await;
    assert!(a.errors.is_empty(), "{:?}", a.errors);
    // The owner may come back with the same ids on a new connection.
    let mut again = Client::connect(&r.url(&mine), "shop-tablet", Some("shop-store")).await;
    again.request(own).await;
    again
        .until("owner reconnected", |c| c.has_all(own, &heads))
        .await;
}
