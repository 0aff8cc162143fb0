//! The accept loop: every TCP connection passes the [`Gate`], has its request headers
//! read within a deadline, and is served by hyper's HTTP/1 with upgrades (for the
//! WebSocket). Replaces `axum::serve`, which has neither a header timeout nor a
//! connection limit: 300 silent sockets used to exhaust the file descriptors.
//!
//! Limits come from [`ConnectionLimits`]; the total is kept below the process's file
//! descriptor limit ([`fd_budget`]) so that the database, `/healthz`, `/metrics` and
//! the API always have descriptors to work with.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::Service;
use tracing::{debug, info, warn};

use crate::gate::{Gate, Refusal, Ticket};
use crate::telemetry;

/// Limits on TCP connections, before and after they become WebSockets.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// How long a client may take to send a request's headers, counted from the
    /// connection's start or the end of its previous request: a silent or idle
    /// connection is closed after this long.
    pub header_read_timeout: Duration,
    /// Connections held at once; `None` derives it from the file descriptor limit.
    pub max_connections: Option<usize>,
    /// Connections held at once from one client address.
    pub max_connections_per_ip: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            max_connections: None,
            max_connections_per_ip: 512,
        }
    }
}

/// File descriptors kept back from connections: SQLite's files (database, WAL and
/// shared memory per connection), the listener, the runtime's own, logs, and room for
/// the answers that keep `/healthz` and the API alive, and the refusals being answered.
/// The relay holds about 21 at rest; the rest is slack for a burst of connections
/// accepted while older ones are still being evicted.
pub const FD_RESERVE: usize = 96;

/// The connection budget under the file descriptor limit `nofile`: a tenth of it, at
/// least [`FD_RESERVE`], is kept for everything else.
pub fn fd_budget(nofile: u64) -> usize {
    let nofile = usize::try_from(nofile).unwrap_or(usize::MAX);
    let reserve = (nofile / 10).max(FD_RESERVE);
    nofile.saturating_sub(reserve).max(1)
}

/// Raises the soft file descriptor limit to the hard one (as Go and nginx do) and
/// returns it; `None` if it cannot be read.
pub fn raise_fd_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
        #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 everywhere
        Some(lim.rlim_cur as u64)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The gate for `limits` under the process's file descriptor limit; logs the figures.
pub fn gate_for(limits: &ConnectionLimits) -> Arc<Gate> {
    let budget = raise_fd_limit().map(fd_budget);
    let total = match (limits.max_connections, budget) {
        (Some(n), Some(b)) if n > b => {
            warn!(
                asked = n,
                budget = b,
                "--max-connections is above what the file descriptor limit allows; using the budget"
            );
            b
        }
        (Some(n), _) => n,
        (None, Some(b)) => b,
        (None, None) => 10_000,
    };
    let per_ip = limits.max_connections_per_ip.min(total);
    info!(
        max_connections = total,
        max_connections_per_ip = per_ip,
        header_read_timeout_ms = limits.header_read_timeout.as_millis() as u64,
        "connection limits"
    );
    Gate::new(total, per_ip)
}

/// The connection's place at the gate, for handlers that keep the connection beyond
/// its HTTP life (the WebSocket task holds it until the socket closes).
#[derive(Clone)]
pub struct ConnTicket(pub Arc<Ticket>);

/// Accepts and serves connections until `stop` turns true, then lets every HTTP
/// connection finish its request and waits (at most `drain`) for the gate to empty,
/// WebSockets included (they close themselves on the same signal).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    gate: Arc<Gate>,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
    drain: Duration,
    tls: Option<TlsAcceptor>,
) {
    let refusals_logged = Arc::new(AtomicI64::new(0));
    let answering = Arc::new(tokio::sync::Semaphore::new(MAX_REFUSALS_ANSWERING));
    loop {
        tokio::select! {
            _ = gate.room_to_accept() => {}
            _ = stopped(&mut stop) => break,
        }
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: the connection waits in the backlog; do not
                    // spin on the error.
                    telemetry::count_error("accept");
                    warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped(&mut stop) => break,
        };
        // Sync messages are small and latency-bound: with Nagle's algorithm on, a reply
        // waits for the peer's delayed ACK (~40 ms on Linux).
        if let Err(e) = tcp.set_nodelay(true) {
            debug!(error = %e, "cannot set TCP_NODELAY on a connection");
        }
        match gate.admit(remote.ip()) {
            Ok((ticket, evicted)) => {
                for _ in 0..evicted {
                    telemetry::count_error("idle_evicted");
                }
                let ticket = Arc::new(ticket);
                let (app, timeout, stop) = (app.clone(), limits.header_read_timeout, stop.clone());
                match tls.clone() {
                    None => {
                        tokio::spawn(connection(tcp, remote, app, ticket, timeout, stop));
                    }
                    Some(tls) => {
                        tokio::spawn(async move {
                            if let Some(tcp) = handshake(&tls, tcp, remote, &ticket, timeout).await
                            {
                                connection(tcp, remote, app, ticket, timeout, stop).await;
                            }
                        });
                    }
                }
            }
            Err(refusal) => refuse(
                tcp,
                remote,
                &refusal,
                &refusals_logged,
                &answering,
                tls.clone(),
            ),
        }
    }
    let until = tokio::time::Instant::now() + drain;
    while gate.open() > 0 && tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Resolves once `stop` is true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Refused connections answered with a 503 at once; beyond these, a refused
/// connection is closed without an answer (each answer holds a descriptor for up to
/// [`REFUSAL_TIMEOUT`]).
const MAX_REFUSALS_ANSWERING: usize = 16;

/// How long a refused connection may take to send the request its 503 answers.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(2);

/// Answers the refused connection's request with 503 and the reason (JSON, like the
/// API's errors), then closes; or just closes when many refusals are being answered.
/// Logs at most one line a second, so a flood cannot flood the log.
fn refuse(
    tcp: TcpStream,
    remote: SocketAddr,
    refusal: &Refusal,
    logged: &AtomicI64,
    answering: &Arc<tokio::sync::Semaphore>,
    tls: Option<TlsAcceptor>,
) {
    telemetry::count_error(refusal.kind());
    let now = chrono::Utc::now().timestamp();
    if logged.swap(now, Ordering::Relaxed) != now {
        warn!(remote = %remote, reason = %refusal, "connection refused");
    }
    let Ok(permit) = answering.clone().try_acquire_owned() else {
        return;
    };
    let body =
        serde_json::json!({"error": refusal.to_string(), "kind": refusal.kind()}).to_string();
    tokio::spawn(async move {
        let _permit = permit;
        let service = hyper::service::service_fn(move |_req: hyper::Request<Incoming>| {
            let body = body.clone();
            async move {
                hyper::Response::builder()
                    .status(503)
                    .header("content-type", "application/json")
                    .header("retry-after", "5")
                    .body(axum::body::Body::from(body))
            }
        });
        let answer = async move {
            let builder = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(REFUSAL_TIMEOUT)
                .keep_alive(false)
                .clone();
            match tls {
                None => {
                    let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
                }
                Some(tls) => {
                    if let Ok(stream) = tls.accept(tcp).await {
                        let _ = builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                }
            }
        };
        let _ = tokio::time::timeout(REFUSAL_TIMEOUT * 2, answer).await;
    });
}

/// The TLS handshake of an admitted connection, bounded like the request headers
/// (a silent socket must not hold its place by never saying hello) and given up if
/// the gate needs the place. `None` when it failed; counted as `tls_handshake`.
async fn handshake(
    tls: &TlsAcceptor,
    tcp: TcpStream,
    remote: SocketAddr,
    ticket: &Ticket,
    timeout: Duration,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    tokio::select! {
        r = tokio::time::timeout(timeout, tls.accept(tcp)) => match r {
            Ok(Ok(stream)) => Some(stream),
            Ok(Err(e)) => {
                telemetry::count_error("tls_handshake");
                debug!(remote = %remote, error = %e, "TLS handshake failed");
                None
            }
            Err(_) => {
                telemetry::count_error("header_timeout");
                debug!(remote = %remote, "no TLS handshake in time; closed");
                None
            }
        },
        _ = ticket.evicted() => None,
    }
}

/// Serves one connection: HTTP/1 with upgrades, request headers within
/// `header_read_timeout`, closed early if the gate needs its place while it is still
/// silent, and shut down gracefully on `stop`.
async fn connection<Io>(
    tcp: Io,
    remote: SocketAddr,
    app: Router,
    ticket: Arc<Ticket>,
    header_read_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) where
    Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service_ticket = ticket.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        service_ticket.activate();
        req.extensions_mut().insert(ConnectInfo(remote));
        req.extensions_mut()
            .insert(ConnTicket(service_ticket.clone()));
        let mut app = app.clone();
        async move { app.call(req).await }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .serve_connection(TokioIo::new(tcp), service)
        .with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = ticket.evicted() => {
            debug!(remote = %remote, "closed a silent connection to make room");
            return;
        }
        _ = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        if e.is_timeout() {
            telemetry::count_error("header_timeout");
            debug!(remote = %remote, "no request headers in time; closed");
        } else {
            debug!(remote = %remote, error = %e, "connection ended with an error");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_keeps_a_reserve_below_the_fd_limit() {
        assert_eq!(fd_budget(256), 160);
        assert_eq!(fd_budget(1024), 922);
        assert_eq!(fd_budget(65_536), 58_983);
        assert_eq!(fd_budget(10), 1, "never zero");
    }
}
