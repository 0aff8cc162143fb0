//! The HTTP side of the relay: routes, start-up and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use dealersync_core::protocol::PeerId;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::watch;
use tracing::info;

pub use crate::extensions::{Admission, Authorize, Extensions, JoinCheck, RevocationCheck};
use crate::listener::{self, ConnTicket, ConnectionLimits};
use crate::relay::{Relay, RelayConfig, RelayHandle};
use crate::storage::{Durability, SqliteStore, StoreOptions};
use crate::telemetry;
use crate::tls::{ReloadableCert, TlsFiles};
use crate::ws::{self, Limits};

/// How long shutdown waits for open connections (WebSockets closing with 1001
/// included) before the relay commits what is pending and exits.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(10);

/// How much larger than the frame limit the socket's own hard cap is, so that a frame
/// just over the limit is read and answered with a precise `error` message.
const FRAME_SLACK: usize = 1024 * 1024;

/// Each connection's WebSocket read buffer. tungstenite's default (128 KiB) is
/// allocated per connection and zero-filled before every read, whatever the frame's
/// size: at 10,000 phones that is 1.3 GB of buffers, and the `memset` was a tenth of
/// the relay's CPU in the ingest profile (docs/benchmarks.md). A sync message is a few
/// hundred bytes; larger ones are read in more calls of this size.
pub const WS_READ_BUFFER: usize = 16 * 1024;

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
    /// Memory budget in documents; `None` for no limit beyond idle unloading.
    pub max_loaded_docs: Option<usize>,
    /// Header timeout and connection caps.
    pub connections: ConnectionLimits,
    /// Serve TLS with these files; `None` for plain HTTP (behind a proxy, or on a LAN).
    pub tls: Option<TlsFiles>,
    /// Sync engine threads (documents are spread over them by id); 0 for
    /// [`crate::relay::default_shards`].
    pub engine_shards: usize,
}

#[derive(Clone)]
struct AppState {
    relay: RelayHandle,
    limits: Limits,
    metrics: PrometheusHandle,
    shutdown: watch::Receiver<bool>,
    authorize: Authorize,
    data_dir: PathBuf,
}

/// Serves until `shutdown` resolves, then closes the connections and returns once
/// every pending write is committed.
pub async fn serve(
    options: ServeOptions,
    extensions: Extensions,
    metrics: PrometheusHandle,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_with(options, |_| extensions, metrics, shutdown, |_| {}).await
}

/// [`serve`] for extensions that need the running relay (the API writes documents
/// through it, so connected peers see admin changes at once): `extensions` is called
/// once the relay runs, and `ready` once the listener is bound, with its address.
pub async fn serve_with(
    options: ServeOptions,
    extensions: impl FnOnce(&RelayHandle) -> Extensions,
    metrics: PrometheusHandle,
    shutdown: impl Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(SocketAddr),
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
            max_loaded_docs: options.max_loaded_docs,
            limits: options.limits.sync.clone(),
            shards: if options.engine_shards == 0 {
                crate::relay::default_shards()
            } else {
                options.engine_shards
            },
        },
        reads,
        writes,
    );
    let extensions = extensions(&relay.handle());
    let (stop_tx, stop_rx) = watch::channel(false);
    let state = AppState {
        relay: relay.handle(),
        limits: options.limits.clone(),
        metrics,
        shutdown: stop_rx,
        authorize: extensions.authorize,
        data_dir: options.data_dir.clone(),
    };
    let app = Router::new()
        .route("/sync", get(sync_socket))
        .route("/", get(root))
        .route("/healthz", get(healthz))
        .route("/metrics", get(render_metrics))
        .with_state(state)
        .merge(crate::web_app::router())
        .merge(extensions.routes);
    let gate = listener::gate_for(&options.connections);
    let tls = match &options.tls {
        None => None,
        Some(files) => {
            let cert = ReloadableCert::new(files.clone())
                .context("cannot serve TLS with --tls-cert and --tls-key")?;
            crate::tls::reload_on_sighup(cert.clone());
            Some(cert.acceptor())
        }
    };
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("cannot listen on {}", options.listen))?;
    let addr = listener.local_addr()?;
    info!(
        addr = %addr,
        data_dir = %options.data_dir.display(),
        tls = tls.is_some(),
        "dealersync relay listening; WebSocket at /sync"
    );
    ready(addr);
    let stopping = stop_tx.subscribe();
    let (engine, health) = (relay.handle(), relay.handle());
    tokio::spawn(async move {
        tokio::select! {
            _ = shutdown => info!("shutting down: closing connections, finishing commits"),
            _ = engine.engine_stopped() => {
                tracing::error!("the sync engine stopped on an internal error; shutting down so that a supervisor restarts the relay");
            }
        }
        let _ = stop_tx.send(true);
        // Keep the sender alive until the process ends: receivers treat a dropped
        // sender as a change.
        std::future::pending::<()>().await;
    });
    listener::serve(
        listener,
        app,
        gate,
        options.connections.clone(),
        stopping,
        SHUTDOWN_DRAIN,
        tls,
    )
    .await;
    tokio::task::spawn_blocking(move || relay.shutdown()).await?;
    if !health.is_healthy() {
        anyhow::bail!("the sync engine stopped on an internal error (see the log above)");
    }
    info!("shut down cleanly");
    Ok(())
}

/// `/`: automerge-repo clients that connect to the bare address (the stock
/// `BrowserWebSocketClientAdapter("wss://host")`) get the sync socket; a person who
/// types the address in a browser (no `Upgrade: websocket`) gets a page linking the
/// board, the console, the phone app and the API documentation.
async fn root(
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    remote: ConnectInfo<SocketAddr>,
    ticket: Option<axum::Extension<ConnTicket>>,
    state: State<AppState>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let wants_socket = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    match upgrade {
        Ok(upgrade) => sync_socket(upgrade, remote, ticket, state, headers, uri).await,
        // A malformed WebSocket handshake still gets the precise refusal.
        Err(rejection) if wants_socket => rejection.into_response(),
        Err(_) => crate::web::landing_page(),
    }
}

async fn sync_socket(
    upgrade: WebSocketUpgrade,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    ticket: Option<axum::Extension<ConnTicket>>,
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    // The authorizer reads SQLite (revocations, the registry): off the async workers.
    let authorize = state.authorize.clone();
    let decided = tokio::task::spawn_blocking(move || authorize(&headers, &uri)).await;
    let admission = match decided {
        Ok(Ok(a)) => a,
        Err(e) => {
            tracing::error!(error = %e, "the authorizer failed");
            return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        Ok(Err(refusal)) => {
            telemetry::count_error("unauthorized");
            tracing::info!(remote = %remote, status = %refusal.status(), "WebSocket refused");
            return *refusal;
        }
    };
    let mut limits = state.limits.clone();
    limits.expires_in = admission.expires_in;
    let info = admission.info;
    let join_check = admission.join_check;
    let engine_share = admission.engine_share;
    let revocation = admission.revocation;
    let contact = admission.contact;
    let cap = limits.max_frame_bytes.saturating_add(FRAME_SLACK);
    let upgrade = match admission.subprotocol {
        Some(p) => upgrade.protocols([p]),
        None => upgrade,
    };
    upgrade
        .read_buffer_size(WS_READ_BUFFER)
        .max_message_size(cap)
        .max_frame_size(cap)
        .on_upgrade(move |socket| async move {
            // The connection keeps its place at the gate while the socket lives.
            let _ticket = ticket;
            ws::serve_socket(
                socket,
                state.relay,
                ws::Admitted {
                    info,
                    join_check,
                    engine_share,
                    revocation,
                    contact,
                },
                limits,
                remote,
                state.shutdown,
            )
            .await
        })
        .into_response()
}

/// `ok` while the sync engine runs; 503 once it has stopped, so a load balancer or
/// supervisor takes the relay out of service instead of trusting a dead one.
async fn healthz(State(state): State<AppState>) -> Response {
    if state.relay.is_healthy() {
        "ok\n".into_response()
    } else {
        (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "the sync engine stopped\n",
        )
            .into_response()
    }
}

async fn render_metrics(State(state): State<AppState>) -> impl IntoResponse {
    let healthy = if state.relay.is_healthy() { 1.0 } else { 0.0 };
    metrics::gauge!(telemetry::ENGINE_HEALTHY).set(healthy);
    let dir = state.data_dir.clone();
    if let Ok(Some((free, total))) =
        tokio::task::spawn_blocking(move || telemetry::disk_space(&dir)).await
    {
        metrics::gauge!(telemetry::DATA_FREE_BYTES).set(free as f64);
        metrics::gauge!(telemetry::DATA_TOTAL_BYTES).set(total as f64);
    }
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
