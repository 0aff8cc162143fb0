//! The HTTP side of the relay: routes, start-up and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use dealersync_core::protocol::PeerId;
use dealersync_core::protocol::engine::ConnInfo;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::watch;
use tracing::info;

use crate::relay::{Relay, RelayConfig, RelayHandle};
use crate::storage::{Durability, SqliteStore, StoreOptions};
use crate::ws::{self, Limits};

/// How much larger than the frame limit the socket's own hard cap is, so that a frame
/// just over the limit is read and answered with a precise `error` message.
const FRAME_SLACK: usize = 1024 * 1024;

/// Everything `serve` needs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Directory holding `dealersync.db`.
    pub data_dir: PathBuf,
    /// SQLite `synchronous` level.
    pub durability: Durability,
    /// Per-connection limits.
    pub limits: Limits,
    /// Documents without connections are unloaded after this long.
    pub idle_unload: Duration,
    /// How long SQLite waits for a lock held by another connection.
    pub busy_timeout: Duration,
}

#[derive(Clone)]
struct AppState {
    relay: RelayHandle,
    limits: Limits,
    metrics: PrometheusHandle,
    shutdown: watch::Receiver<bool>,
}

/// Serves until `shutdown` resolves, then closes the connections and returns once
/// every pending write is committed.
pub async fn serve(
    options: ServeOptions,
    metrics: PrometheusHandle,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let store_options = StoreOptions {
        durability: options.durability,
        busy_timeout: options.busy_timeout,
    };
    let reads = SqliteStore::open(&options.data_dir, &store_options)?;
    let writes = SqliteStore::open(&options.data_dir, &store_options)?;
    if options.durability == Durability::Normal {
        tracing::warn!("synchronous=NORMAL: acknowledged changes can be lost on power failure");
    }
    let peer_id = PeerId(format!(
        "dealersync-relay-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let storage_id = writes.relay_storage_id()?;
    let relay = Relay::start(
        RelayConfig {
            peer_id,
            storage_id,
            idle_unload: options.idle_unload,
        },
        reads,
        writes,
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let state = AppState {
        relay: relay.handle(),
        limits: options.limits.clone(),
        metrics,
        shutdown: stop_rx,
    };
    let app = Router::new()
        .route("/sync", get(sync_socket))
        .route("/", get(sync_socket))
        .route("/healthz", get(healthz))
        .route("/metrics", get(render_metrics))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("cannot listen on {}", options.listen))?;
    info!(
        addr = %listener.local_addr()?,
        data_dir = %options.data_dir.display(),
        "dealersync relay listening; WebSocket at /sync"
    );
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        info!("shutting down: closing connections, finishing commits");
        let _ = stop_tx.send(true);
    })
    .await?;
    tokio::task::spawn_blocking(move || relay.shutdown()).await?;
    info!("shut down cleanly");
    Ok(())
}

async fn sync_socket(
    upgrade: WebSocketUpgrade,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    State(state): State<AppState>,
) -> impl IntoResponse {
    let limits = state.limits.clone();
    let cap = limits.max_frame_bytes.saturating_add(FRAME_SLACK);
    // Until tokens are wired in, every connection may read and write every document
    // the server knows; the engine still refuses to create unknown ones.
    let info = ConnInfo::full_access();
    upgrade
        .max_message_size(cap)
        .max_frame_size(cap)
        .on_upgrade(move |socket| {
            ws::serve_socket(socket, state.relay, info, limits, remote, state.shutdown)
        })
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn render_metrics(State(state): State<AppState>) -> impl IntoResponse {
    state.metrics.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => info!("SIGINT received"),
        _ = term => info!("SIGTERM received"),
    }
}
