//! The WebSocket to the upstream relay: connect, hand frames to the engine shards
//! both ways, reconnect with capped, jittered back-off.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use dealersync_core::protocol::{DocumentId, Message, PeerMetadata, SyncLimits, decode_frame};
use dealersync_core::time::now_ms;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{broadcast, mpsc};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tracing::{info, warn};

use super::mirror::{copy_from_upstream, followed_offline, remember_upstream_storage};
use super::transport::{http_client, sync_url, tls_config};
use super::{
    BACKOFF_MAX, BACKOFF_MIN, MIRROR_AFTER_NETWORK_CHANGE, MIRROR_EVERY, Upstream, UpstreamError,
};
use crate::registry::Registry;
use crate::relay::{Outbox, Outgoing, RelayHandle};
use crate::telemetry::{UPSTREAM_BYTES_RECEIVED, UPSTREAM_BYTES_SENT, UPSTREAM_CONNECTS};

/// How long connecting (HTTP, TCP, TLS, WebSocket upgrade) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// A ping goes upstream this often; an upstream silent for two intervals is gone.
const PING_EVERY: Duration = Duration::from_secs(20);
/// Frames waiting to go upstream (bytes are bounded by the outbox itself).
const OUTBOX_FRAMES: usize = 4096;
/// Largest message or frame taken from the upstream: it sends whole documents in one
/// message to a relay that has none, up to its own document limit.
const MAX_MESSAGE: usize = 64 << 20;

/// Runs the link until the process ends.
pub(super) async fn run(up: Upstream, relay: RelayHandle, registry: Arc<Registry>) {
    let tls = match tls_config(up.config.ca.as_deref()) {
        Ok(tls) => tls,
        Err(e) => {
            tracing::error!(error = %e, "the upstream link cannot start");
            up.update(|s| s.last_error = Some(e.to_string()));
            return;
        }
    };
    let reg = registry.clone();
    match tokio::task::spawn_blocking(move || followed_offline(&reg, now_ms())).await {
        Ok(Ok((storage, docs))) => {
            *up.followed.lock().unwrap_or_else(|e| e.into_inner()) = docs.iter().copied().collect();
            relay
                .prepare_upstream(docs, storage, up.ledger.clone())
                .await
        }
        Ok(Err(e)) => warn!(error = %e, "cannot read the sites followed last time"),
        Err(e) => warn!(error = %e, "cannot read the sites followed last time"),
    }
    let mut backoff = BACKOFF_MIN;
    loop {
        let started = Instant::now();
        let why = match session(&up, &relay, &registry, &tls).await {
            Ok(()) => "the connection ended".to_string(),
            Err(e) => e.to_string(),
        };
        up.update(|s| {
            s.connected = false;
            s.last_error = Some(why.clone());
        });
        // A connection that lasted was healthy: retry soon after it breaks.
        if started.elapsed() > BACKOFF_MAX {
            backoff = BACKOFF_MIN;
        }
        let wait = Duration::from_millis(rand::random_range(
            BACKOFF_MIN.as_millis() as u64 / 2..=backoff.as_millis() as u64,
        ));
        warn!(upstream = %up.config.base, error = %why, retry_in_ms = wait.as_millis() as u64, "upstream link down; local devices keep syncing here");
        tokio::time::sleep(wait).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// One connection: copy the site tree, open the socket, pump frames until it ends.
async fn session(
    up: &Upstream,
    relay: &RelayHandle,
    registry: &Arc<Registry>,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<(), UpstreamError> {
    let config = &up.config;
    let http = http_client(tls, CONNECT_TIMEOUT)?;
    let docs = copy_from_upstream(&http, config, registry).await?;
    up.update(|s| s.last_mirror = Some(now_ms()));
    // Lets go of what left the subtree (or its grace week) while the link was down.
    up.follow_only(relay, &docs).await;
    let url = sync_url(config);
    let failed = |reason: String| UpstreamError::Upstream {
        url: url.clone(),
        reason,
    };
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| UpstreamError::Config(format!("bad --upstream URL {url}: {e}")))?;
    request.headers_mut().insert(
        "Authorization",
        format!("Bearer {}", config.token).parse().map_err(|_| {
            UpstreamError::Config("the upstream token has characters a header cannot carry".into())
        })?,
    );
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(crate::server::WS_READ_BUFFER)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let connector = tokio_tungstenite::Connector::Rustls(tls.clone());
    let (stream, _) = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio_tungstenite::connect_async_tls_with_config(
            request,
            Some(ws_config),
            true,
            Some(connector),
        ),
    )
    .await
    .map_err(|_| failed(format!("no answer within {}s", CONNECT_TIMEOUT.as_secs())))?
    .map_err(|e| failed(e.to_string()))?;
    let (mut sink, mut frames) = stream.split();
    let (tx, mut rx) = mpsc::channel(OUTBOX_FRAMES);
    let outbox = Outbox::new(tx);
    let queued = outbox.queued_bytes.clone();
    let conn = relay
        .connect_upstream(docs.clone(), outbox, up.ledger.clone())
        .await;
    metrics::counter!(UPSTREAM_CONNECTS).increment(1);
    up.update(|s| s.connects += 1);
    info!(upstream = %config.base, documents = docs.len(), "upstream link open");
    // New sites and carry-overs upstream: followed as they appear, off the frame loop.
    let follower = tokio::spawn(follow_new_sites(
        up.clone(),
        relay.clone(),
        registry.clone(),
        http.clone(),
        docs[0],
    ));
    let attribution = tokio::spawn(super::attribution::forward(
        up.clone(),
        registry.clone(),
        http,
    ));
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let mut heard = Instant::now();
    let limits = SyncLimits::unlimited();
    let result = loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(Outgoing::Frame(_, bytes)) => {
                    queued.fetch_sub(bytes.len(), Ordering::AcqRel);
                    metrics::counter!(UPSTREAM_BYTES_SENT).increment(bytes.len() as u64);
                    if let Err(e) = sink.send(WsMessage::Binary(bytes.into())).await {
                        break Err(failed(format!("sending failed: {e}")));
                    }
                }
                Some(Outgoing::Close(reason)) => {
                    let _ = sink.send(WsMessage::Close(None)).await;
                    break Err(failed(format!("closed by this relay's engine: {reason}")));
                }
                None => break Err(failed("this relay's engine dropped the link".into())),
            },
            frame = frames.next() => match frame {
                Some(Ok(WsMessage::Binary(bytes))) => {
                    heard = Instant::now();
                    up.update(|s| {
                        s.connected = true;
                        s.last_contact = Some(now_ms());
                    });
                    metrics::counter!(UPSTREAM_BYTES_RECEIVED).increment(bytes.len() as u64);
                    let len = bytes.len();
                    let limits = limits.clone();
                    let decoded = tokio::task::spawn_blocking(move || decode_frame(&bytes, &limits))
                        .await
                        .map_err(|e| failed(format!("decoding failed: {e}")));
                    if let Ok(Ok(inbound)) = &decoded
                        && let Message::Peer { metadata: Some(PeerMetadata { storage_id: Some(sid), .. }), .. } = &inbound.message
                    {
                        let (reg, sid) = (registry.clone(), sid.clone());
                        tokio::task::spawn_blocking(move || {
                            if let Err(e) = remember_upstream_storage(&reg, &sid) {
                                warn!(error = %e, "cannot remember the upstream's storage id");
                            }
                        });
                    }
                    match decoded {
                        Ok(decoded) => relay.frame(conn, decoded, len, None).await,
                        Err(e) => break Err(e),
                    }
                }
                Some(Ok(WsMessage::Close(frame))) => {
                    let why = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                    break Err(failed(format!("the upstream closed the connection {why}")));
                }
                Some(Ok(_)) => {
                    heard = Instant::now();
                    up.update(|s| s.last_contact = Some(now_ms()));
                }
                Some(Err(e)) => break Err(failed(format!("the connection broke: {e}"))),
                None => break Err(failed("the upstream closed the connection".into())),
            },
            _ = ping.tick() => {
                if heard.elapsed() > 2 * PING_EVERY {
                    break Err(failed(format!("silent for {}s", heard.elapsed().as_secs())));
                }
                if let Err(e) = sink.send(WsMessage::Ping(Vec::new().into())).await {
                    break Err(failed(format!("sending failed: {e}")));
                }
            }
        }
    };
    follower.abort();
    attribution.abort();
    relay.disconnect(conn).await;
    result
}

/// Copies the site tree every [`MIRROR_EVERY`], and [`MIRROR_AFTER_NETWORK_CHANGE`]
/// after the upstream changed the `network` document (a carry-over names the sites'
/// new documents there); follows the documents of sites that appeared upstream and of
/// carry-overs, and lets go of archives past their grace week.
async fn follow_new_sites(
    up: Upstream,
    relay: RelayHandle,
    registry: Arc<Registry>,
    http: reqwest::Client,
    network: DocumentId,
) {
    let mut every = tokio::time::interval(MIRROR_EVERY);
    every.tick().await;
    let mut commits = Some(relay.subscribe_commits());
    loop {
        let network_changed = async {
            loop {
                match commits.as_mut() {
                    None => std::future::pending::<()>().await,
                    Some(rx) => match rx.recv().await {
                        Ok(doc) if doc == network => return,
                        Ok(_) => {}
                        // Notices were missed: one of them may have been the network's.
                        Err(broadcast::error::RecvError::Lagged(_)) => return,
                        Err(broadcast::error::RecvError::Closed) => commits = None,
                    },
                }
            }
        };
        let by_network = tokio::select! {
            _ = every.tick() => false,
            () = network_changed => true,
        };
        if by_network {
            tokio::time::sleep(MIRROR_AFTER_NETWORK_CHANGE).await;
            if let Some(rx) = commits.as_mut() {
                // The notices of the pause are covered by the copy below.
                while !matches!(
                    rx.try_recv(),
                    Err(broadcast::error::TryRecvError::Empty
                        | broadcast::error::TryRecvError::Closed)
                ) {}
            }
            every.reset();
        }
        match copy_from_upstream(&http, &up.config, &registry).await {
            Ok(docs) => {
                up.update(|s| s.last_mirror = Some(now_ms()));
                up.follow_only(&relay, &docs).await;
            }
            Err(e) => {
                warn!(error = %e, "cannot copy the upstream's site tree; keeping the last copy")
            }
        }
    }
}
