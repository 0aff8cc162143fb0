//! The server's extension points over real HTTP and WebSockets: an authorizer that
//! admits or refuses connections (and expires them), and extra routes.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use dealersync_core::access::Access;
use dealersync_core::protocol::engine::ConnInfo;
use dealersync_server::server::{Admission, Extensions, serve};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[tokio::test]
async fn extensions_authorize_connections_and_add_routes() {
    let dir = tempfile::tempdir().unwrap();
    let (port, options) = common::serve_options(dir.path(), Duration::from_secs(1));
    let extensions = Extensions {
        authorize: Arc::new(|headers, uri| {
            let token = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .or(uri.query());
            match token {
                Some("Bearer good") | Some("token=good") => Ok(Admission {
                    info: ConnInfo::with_access(|_| Access::ReadOnly),
                    subprotocol: None,
                    expires_in: Some(Duration::from_millis(300)),
                    join_check: None,
                    engine_share: None,
                    revocation: None,
                    contact: None,
                }),
                _ => Err(Box::new(
                    (StatusCode::UNAUTHORIZED, "no valid token").into_response(),
                )),
            }
        }),
        routes: Router::new().route("/api/ping", get(|| async { "pong" })),
    };
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .build_recorder()
        .handle();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(options, extensions, metrics, async {
        let _ = stopped.await;
    }));
    let base = format!("127.0.0.1:{port}");
    let until = std::time::Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(&base).await.is_err() {
        assert!(std::time::Instant::now() < until, "server did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ping = reqwest::get(format!("http://{base}/api/ping"))
        .await
        .unwrap();
    assert_eq!(ping.text().await.unwrap(), "pong");

    let refused = tokio_tungstenite::connect_async(format!("ws://{base}/sync")).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED)
        }
        other => panic!("expected 401, got {other:?}"),
    }
    let mut req = format!("ws://{base}/sync").into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", HeaderValue::from_static("Bearer good"));
    assert!(tokio_tungstenite::connect_async(req).await.is_ok());
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{base}/?token=good"))
        .await
        .unwrap();
    // The admission expires: the server says so and closes.
    let errors = {
        use futures_util::StreamExt;
        let mut errors = Vec::new();
        while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(20), ws.next()).await {
            if let tokio_tungstenite::tungstenite::Message::Binary(b) = m
                && let Ok(dealersync_core::protocol::Message::Error { message, .. }) =
                    dealersync_core::protocol::Message::decode(&b)
            {
                errors.push(message);
            }
        }
        errors
    };
    assert!(errors.iter().any(|e| e.contains("expired")), "{errors:?}");
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
