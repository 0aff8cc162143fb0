//! One task per WebSocket connection: limits, keepalive, metrics, and the hand-off of
//! frames to the engine shards.
//!
//! Everything a single peer can do wrong (text frames, oversized frames, floods, not
//! reading its socket, vanishing without a close) ends *this* connection with an
//! `error` message and a close; other peers never wait on it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, close_code};
use dealersync_core::protocol::engine::{CloseReason, ConnInfo};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{Semaphore, mpsc, watch};
use tracing::{Instrument, debug, field, info, info_span, warn};

use crate::extensions::{JoinCheck, RevocationCheck};
use crate::relay::{Outbox, Outgoing, RelayHandle};
use crate::telemetry::{self, BYTES_IN, BYTES_OUT, MESSAGES_IN, MESSAGES_OUT, SYNC_ROUND_SECONDS};
use crate::wire;
use dealersync_core::protocol::{
    Inbound, InboundError, Message, MessageKind, SyncLimits, WireError, decode_frame,
};

/// Per-connection limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest binary frame accepted, in bytes.
    pub max_frame_bytes: usize,
    /// Sustained messages per second a connection may send; bursts up to one second's
    /// worth are allowed.
    pub max_messages_per_sec: u32,
    /// A ping is sent this often; a peer silent for two intervals is dead.
    pub ping_interval: Duration,
    /// Frames queued for a peer that does not read before it is disconnected.
    pub outbox_capacity: usize,
    /// How long one write to the socket may take before the peer counts as stuck.
    pub write_timeout: Duration,
    /// When the connection's credentials expire (set per connection at admission).
    pub expires_in: Option<Duration>,
    /// Bounds on sync messages, checked here before the engine sees a frame.
    pub sync: SyncLimits,
    /// How long an upgraded connection may take to send its `join`.
    pub join_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: 16 * 1024 * 1024,
            max_messages_per_sec: 1000,
            ping_interval: Duration::from_secs(20),
            outbox_capacity: 4096,
            write_timeout: Duration::from_secs(30),
            expires_in: None,
            sync: SyncLimits::default(),
            join_timeout: Duration::from_secs(10),
        }
    }
}

/// A token bucket: `rate` tokens per second, at most `rate` stored.
struct RateLimit {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimit {
    fn new(rate: u32) -> Self {
        let rate = f64::from(rate.max(1));
        RateLimit {
            rate,
            tokens: rate,
            last: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.rate);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Why the server ends a connection, for the peer, the log and the metric.
struct Breach {
    kind: &'static str,
    code: u16,
    message: String,
}

impl Breach {
    fn new(kind: &'static str, code: u16, message: impl Into<String>) -> Self {
        Breach {
            kind,
            code,
            message: message.into(),
        }
    }
}

enum End {
    /// The socket failed; nothing more to say.
    Quiet,
    /// The peer sent a close: answer it (the closing handshake) and end.
    PeerClosed,
    /// The engine asked to close (its `error` message is already sent).
    Engine(CloseReason),
    /// Server shutdown.
    Shutdown,
    /// A limit or rule broken by the peer.
    Breach(Breach),
}

/// Who a connection is, as admitted: what the engine needs, and the check of the peer
/// id it claims.
pub struct Admitted {
    /// Access per document, user and device.
    pub info: ConnInfo,
    /// Binds the `join`'s peer and storage ids to the credentials.
    pub join_check: Option<JoinCheck>,
    /// Whose share of the engine's time the connection spends; `None` if unmetered.
    pub engine_share: Option<String>,
    /// Ends the connection when its credentials are revoked.
    pub revocation: Option<RevocationCheck>,
    /// A downstream relay's contact, told of every frame (see `crate::downstreams`).
    pub contact: Option<crate::downstreams::Contact>,
}

/// The checks a connection task runs on the credentials while the connection lives.
struct Checks {
    join_check: Option<JoinCheck>,
    revocation: Option<RevocationCheck>,
    contact: Option<crate::downstreams::Contact>,
}

/// Serves one upgraded WebSocket until it ends, then frees its engine state.
pub async fn serve_socket(
    socket: WebSocket,
    relay: RelayHandle,
    admitted: Admitted,
    limits: Limits,
    remote: SocketAddr,
    shutdown: watch::Receiver<bool>,
) {
    let (outbox_tx, outbox_rx) = mpsc::channel(limits.outbox_capacity);
    let outbox_tx = Outbox::new(outbox_tx);
    let queued_bytes = outbox_tx.queued_bytes.clone();
    let join_check = admitted.join_check;
    let revocation = admitted.revocation;
    let contact = admitted.contact;
    let conn = relay
        .connect(admitted.info, outbox_tx, admitted.engine_share)
        .await;
    let span = info_span!("conn", conn = conn.0, remote = %remote, peer = field::Empty);
    metrics::gauge!(telemetry::CONNECTIONS).increment(1.0);
    metrics::counter!(telemetry::CONNECTIONS_TOTAL).increment(1);
    async {
        info!("connected");
        run(
            socket,
            &relay,
            conn,
            &limits,
            Checks {
                join_check,
                revocation,
                contact,
            },
            (outbox_rx, queued_bytes),
            shutdown,
        )
        .await;
        relay.disconnect(conn).await;
        info!("disconnected");
    }
    .instrument(span)
    .await;
    metrics::gauge!(telemetry::CONNECTIONS).decrement(1.0);
}

async fn run(
    socket: WebSocket,
    relay: &RelayHandle,
    conn: dealersync_core::protocol::engine::ConnId,
    limits: &Limits,
    checks: Checks,
    (mut outbox, queued_bytes): (mpsc::Receiver<Outgoing>, Arc<AtomicUsize>),
    mut shutdown: watch::Receiver<bool>,
) {
    let Checks {
        join_check,
        mut revocation,
        contact,
    } = checks;
    let (mut sink, mut stream) = socket.split();
    let mut rate = RateLimit::new(limits.max_messages_per_sec);
    let mut ping = tokio::time::interval(limits.ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    let mut last_heard = Instant::now();
    let mut sync_pending: Option<Instant> = None;
    let mut peer: Option<String> = None;
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT_UNITS));
    // Far enough in the future to never fire when the credentials do not expire.
    let expiry = tokio::time::sleep(limits.expires_in.unwrap_or(Duration::from_secs(1 << 40)));
    tokio::pin!(expiry);
    let join_deadline = tokio::time::sleep(limits.join_timeout);
    tokio::pin!(join_deadline);

    let end = loop {
        tokio::select! {
            incoming = stream.next() => {
                last_heard = Instant::now();
                if let Some(c) = &contact {
                    c.heard();
                }
                match incoming {
                    None => break End::Quiet,
                    Some(Ok(WsMessage::Close(_))) => break End::PeerClosed,
                    Some(Err(e)) => {
                        let text = e.to_string();
                        // Frames beyond the socket's hard size cap (the limit plus
                        // slack) end here; tell the peer if the socket still writes.
                        if text.contains("too long") {
                            break End::Breach(Breach::new(
                                "frame_too_large",
                                close_code::SIZE,
                                format!("frame exceeds the limit: {text}"),
                            ));
                        }
                        // A reset or a missing close handshake: the peer is gone.
                        info!(error = %text, "connection lost");
                        break End::Quiet;
                    }
                    Some(Ok(WsMessage::Text(_))) => break End::Breach(Breach::new(
                        "text_frame",
                        close_code::UNSUPPORTED,
                        "text frames are not part of the protocol; send CBOR in binary frames",
                    )),
                    Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
                    Some(Ok(WsMessage::Binary(bytes))) => {
                        if !rate.take() {
                            break End::Breach(Breach::new(
                                "rate_limited",
                                close_code::POLICY,
                                format!(
                                    "more than {} messages per second",
                                    limits.max_messages_per_sec
                                ),
                            ));
                        }
                        if bytes.len() > limits.max_frame_bytes {
                            break End::Breach(Breach::new(
                                "frame_too_large",
                                close_code::SIZE,
                                format!(
                                    "frame of {} bytes exceeds the limit of {} bytes",
                                    bytes.len(),
                                    limits.max_frame_bytes
                                ),
                            ));
                        }
                        let frame_len = bytes.len();
                        // Bytes in flight to the engine are bounded per connection: a
                        // peer pipelining large frames waits here (and stops reading
                        // its socket) instead of piling them up in the relay's memory.
                        let Ok(in_flight) = in_flight
                            .clone()
                            .acquire_many_owned(in_flight_units(frame_len))
                            .await
                        else {
                            break End::Quiet;
                        };
                        let decoded = decode(bytes, &limits.sync).await;
                        let kind = match &decoded {
                            Ok(inbound) => inbound.message.kind().as_str(),
                            Err(InboundError::Wire(WireError::UnknownType(_))) => "other",
                            Err(InboundError::Sync { .. }) => "sync",
                            Err(InboundError::Wire(_)) => "invalid",
                        };
                        count(MESSAGES_IN, BYTES_IN, kind, frame_len);
                        if peer.is_none()
                            && let Ok(Inbound {
                                message: Message::Join { sender_id, metadata, .. },
                                ..
                            }) = &decoded
                        {
                            tracing::Span::current().record("peer", telemetry::clip(&sender_id.0).as_str());
                            peer = Some(sender_id.0.clone());
                            // Vetted before the engine sees it: the engine lets a
                            // second connection with the same peer id replace the
                            // first, which must not happen for another user's peer id.
                            // Later joins on this connection must repeat the same id
                            // (the engine closes otherwise), so the first is the one.
                            // The ids are the decoder's, the same the engine reads.
                            let storage = metadata.as_ref().and_then(|m| m.storage_id.clone());
                            if let Some(check) = &join_check
                                && let Err(why) = vet_join(check, &sender_id.0, storage.map(|s| s.0)).await
                            {
                                break End::Breach(Breach::new("peer_taken", close_code::POLICY, why));
                            }
                        }
                        if kind == "sync" && sync_pending.is_none() {
                            sync_pending = Some(Instant::now());
                        }
                        tracing::trace!(kind, len = frame_len, "frame in");
                        relay.frame(conn, decoded, frame_len, Some(in_flight)).await;
                    }
                }
            }
            out = outbox.recv() => match out {
                Some(Outgoing::Frame(kind, bytes)) => {
                    queued_bytes.fetch_sub(bytes.len(), Ordering::AcqRel);
                    count(MESSAGES_OUT, BYTES_OUT, kind.as_str(), bytes.len());
                    tracing::trace!(kind = kind.as_str(), len = bytes.len(), "frame out");
                    if kind == MessageKind::Sync
                        && let Some(since) = sync_pending.take()
                    {
                        metrics::histogram!(SYNC_ROUND_SECONDS)
                            .record(since.elapsed().as_secs_f64());
                    }
                    match tokio::time::timeout(
                        limits.write_timeout,
                        sink.send(WsMessage::Binary(bytes.into())),
                    )
                    .await
                    {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => {
                            debug!(error = %e, "write failed");
                            break End::Quiet;
                        }
                        Err(_) => {
                            telemetry::count_error("write_timeout");
                            warn!("peer does not read its socket; closing");
                            break End::Quiet;
                        }
                    }
                }
                Some(Outgoing::Close(reason)) => break End::Engine(reason),
                None => break End::Breach(Breach::new(
                    "slow_consumer",
                    close_code::AGAIN,
                    "too many messages queued for this connection; reconnect",
                )),
            },
            _ = ping.tick() => {
                if last_heard.elapsed() > limits.ping_interval * 2 {
                    telemetry::count_error("dead_socket");
                    info!("no frame or pong for two ping intervals; closing");
                    break End::Quiet;
                }
                let sent = tokio::time::timeout(
                    limits.write_timeout,
                    sink.send(WsMessage::Ping(Vec::new().into())),
                )
                .await;
                if !matches!(sent, Ok(Ok(()))) {
                    break End::Quiet;
                }
            }
            _ = shutdown.changed() => break End::Shutdown,
            _ = &mut expiry => break End::Breach(Breach::new(
                "token_expired",
                close_code::POLICY,
                "the token expired; reconnect with a fresh one",
            )),
            _ = &mut join_deadline, if peer.is_none() => break End::Breach(Breach::new(
                "join_timeout",
                close_code::POLICY,
                format!("no join within {} s of connecting", limits.join_timeout.as_secs_f32()),
            )),
            why = revoked(&mut revocation) => {
                break End::Breach(Breach::new("token_revoked", close_code::POLICY, why))
            }
        }
    };

    let (code, reason) = match end {
        End::Quiet => return,
        End::PeerClosed => {
            // tungstenite queued the close reply while reading; send it.
            let _ = tokio::time::timeout(limits.write_timeout, sink.close()).await;
            return;
        }
        End::Engine(reason) => {
            let code = match reason {
                CloseReason::PeerLeft | CloseReason::Replaced | CloseReason::PeerError(_) => {
                    close_code::NORMAL
                }
                CloseReason::Storage(_) => close_code::ERROR,
                CloseReason::Overloaded(_) => close_code::AGAIN,
                CloseReason::TooLarge(_) => close_code::SIZE,
                _ => close_code::POLICY,
            };
            (code, reason.to_string())
        }
        End::Shutdown => (close_code::AWAY, "server shutting down".to_string()),
        End::Breach(b) => {
            telemetry::count_error(b.kind);
            warn!(kind = b.kind, "{}", b.message);
            let frame = wire::error_frame(relay.peer_id(), peer.as_deref(), &b.message);
            count(MESSAGES_OUT, BYTES_OUT, "error", frame.len());
            let _ = tokio::time::timeout(
                limits.write_timeout,
                sink.send(WsMessage::Binary(frame.into())),
            )
            .await;
            (b.code, b.message)
        }
    };
    // Close reasons are limited to 123 bytes by the WebSocket protocol.
    let mut reason = reason;
    while reason.len() > 120 {
        reason.pop();
    }
    let _ = tokio::time::timeout(
        limits.write_timeout,
        sink.send(WsMessage::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }))),
    )
    .await;
    // The closing handshake: read (and drop) what the peer still sends until its
    // close arrives. Closing the socket with unread input makes the kernel send a
    // reset, which can destroy our `error` and close before the peer reads them.
    let _ = tokio::time::timeout(CLOSE_LINGER, async {
        while let Some(Ok(_)) = stream.next().await {}
    })
    .await;
}

/// Runs the join check on a blocking thread with the peer and storage ids of the
/// decoded `join`.
async fn vet_join(check: &JoinCheck, peer: &str, storage: Option<String>) -> Result<(), String> {
    let (check, peer) = (check.clone(), peer.to_string());
    tokio::task::spawn_blocking(move || check(&peer, storage.as_deref()))
        .await
        .unwrap_or_else(|e| Err(format!("cannot check the peer id: {e}")))
}

/// Frames up to this size are decoded on the connection's task; larger ones (whose
/// changes may take milliseconds to parse and inflate) on the blocking pool, so the
/// runtime's workers keep serving other connections.
const DECODE_INLINE_BYTES: usize = 16 * 1024;

/// Decodes and validates a frame ([`decode_frame`]) off the engine shards.
async fn decode(bytes: axum::body::Bytes, limits: &SyncLimits) -> Result<Inbound, InboundError> {
    if bytes.len() <= DECODE_INLINE_BYTES {
        return decode_frame(&bytes, limits);
    }
    let limits = limits.clone();
    tokio::task::spawn_blocking(move || decode_frame(&bytes, &limits))
        .await
        .unwrap_or_else(|e| {
            Err(InboundError::Wire(WireError::Cbor(format!(
                "the frame could not be decoded: {e}"
            ))))
        })
}

/// Bytes of one connection's frames that may wait for the engine at once, in KiB units
/// of a semaphore: 32 MiB, two of the largest frames.
const IN_FLIGHT_UNITS: usize = 32 * 1024;

/// The semaphore units a frame of `len` bytes holds while it waits for the engine.
fn in_flight_units(len: usize) -> u32 {
    len.div_ceil(1024).clamp(1, IN_FLIGHT_UNITS) as u32
}

/// Resolves with the reason once this connection's credentials are revoked; never if
/// they cannot be. Cancel-safe: the receiver remembers which generation it saw.
async fn revoked(revocation: &mut Option<RevocationCheck>) -> String {
    let Some(r) = revocation else {
        return std::future::pending().await;
    };
    loop {
        if r.changes.changed().await.is_err() {
            return std::future::pending().await;
        }
        if let Some(why) = (r.check)() {
            return why;
        }
    }
}

/// How long a closing connection waits for the peer's close.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

fn count(messages: &'static str, bytes: &'static str, kind: &'static str, len: usize) {
    metrics::counter!(messages, "type" => kind).increment(1);
    metrics::counter!(bytes, "type" => kind).increment(len as u64);
}

#[cfg(test)]
mod tests {
    use super::RateLimit;

    #[test]
    fn the_rate_limit_allows_one_second_of_burst_then_refuses() {
        let mut r = RateLimit::new(5);
        assert!((0..5).all(|_| r.take()), "a burst of the rate is allowed");
        assert!(
            !r.take(),
            "the sixth message in the same instant is refused"
        );
        // Refilling: pretend 0.4 s passed, which earns two messages.
        r.last -= std::time::Duration::from_millis(400);
        assert!(r.take() && r.take());
        assert!(!r.take());
    }
}
