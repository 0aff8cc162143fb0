//! A TCP fault proxy between two tiers: latency, a bandwidth cap (a 2G link), cuts in
//! the middle of a frame, and partitions.
//!
//! Every accepted connection is piped to the target through two pumps (one per
//! direction). Each pump delivers what it read after the link's latency and no faster
//! than its bandwidth, in order. [`FaultProxy::partition`] drops every open
//! connection and refuses new ones (accepted, then closed at once) until
//! [`FaultProxy::heal`]; [`FaultProxy::cut_after`] closes every open connection after
//! forwarding that many more bytes, which lands in the middle of a WebSocket frame.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// How a link behaves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkProfile {
    /// One-way delay added to every chunk.
    pub latency: Duration,
    /// Bits per second in each direction; `None` for no cap.
    pub bits_per_sec: Option<u64>,
}

impl LinkProfile {
    /// A LAN: no added delay, no cap.
    pub const LAN: LinkProfile = LinkProfile {
        latency: Duration::ZERO,
        bits_per_sec: None,
    };
    /// A 2G link: about 50 kbit/s with 500 ms of latency.
    pub const TWO_G: LinkProfile = LinkProfile {
        latency: Duration::from_millis(500),
        bits_per_sec: Some(50_000),
    };
}

struct Shared {
    profile: std::sync::Mutex<LinkProfile>,
    /// Bumped on every partition: pumps of older generations end.
    generation: watch::Sender<u64>,
    partitioned: AtomicBool,
    /// Bytes left before every open connection is cut; `u64::MAX` when no cut is due.
    cut_in: AtomicU64,
    /// Bytes forwarded upstream-bound (client → target) and back.
    to_target: AtomicU64,
    to_client: AtomicU64,
}

/// The running proxy; dropping it stops accepting (open pumps end with their sockets).
pub struct FaultProxy {
    port: u16,
    shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on a free local port and forwards to `127.0.0.1:target_port`.
    pub async fn start(target_port: u16, profile: LinkProfile) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared {
            profile: std::sync::Mutex::new(profile),
            generation: watch::channel(0).0,
            partitioned: AtomicBool::new(false),
            cut_in: AtomicU64::new(u64::MAX),
            to_target: AtomicU64::new(0),
            to_client: AtomicU64::new(0),
        });
        let s = shared.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if s.partitioned.load(Ordering::Acquire) {
                    drop(client);
                    continue;
                }
                let s = s.clone();
                tokio::spawn(async move {
                    if let Ok(target) = TcpStream::connect(("127.0.0.1", target_port)).await {
                        pipe(client, target, s).await;
                    }
                });
            }
        });
        Ok(FaultProxy {
            port,
            shared,
            accept,
        })
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`.
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Changes the link's latency and bandwidth for every connection.
    pub fn set_profile(&self, profile: LinkProfile) {
        *self
            .shared
            .profile
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = profile;
    }

    /// Drops every open connection and refuses new ones until [`FaultProxy::heal`].
    pub fn partition(&self) {
        self.shared.partitioned.store(true, Ordering::Release);
        self.shared.generation.send_modify(|g| *g += 1);
    }

    /// Lets connections through again.
    pub fn heal(&self) {
        self.shared.partitioned.store(false, Ordering::Release);
    }

    /// Cuts every open connection once `bytes` more have been forwarded (in either
    /// direction): the cut falls inside whatever frame is passing.
    pub fn cut_after(&self, bytes: u64) {
        self.shared.cut_in.store(bytes, Ordering::Release);
    }

    /// Bytes forwarded towards the target, and back to the clients.
    pub fn bytes(&self) -> (u64, u64) {
        (
            self.shared.to_target.load(Ordering::Relaxed),
            self.shared.to_client.load(Ordering::Relaxed),
        )
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.shared.generation.send_modify(|g| *g += 1);
    }
}

/// Pipes both directions until either side closes, a partition, or a cut.
async fn pipe(client: TcpStream, target: TcpStream, shared: Arc<Shared>) {
    let _ = client.set_nodelay(true);
    let _ = target.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (tr, tw) = target.into_split();
    let mut generation = shared.generation.subscribe();
    generation.mark_unchanged();
    let up = pump(cr, tw, shared.clone(), true);
    let down = pump(tr, cw, shared.clone(), false);
    tokio::select! {
        _ = up => {}
        _ = down => {}
        _ = generation.changed() => {}
    }
}

/// One direction: read, then deliver each chunk after the latency and at the
/// bandwidth, in order.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    shared: Arc<Shared>,
    towards_target: bool,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let shared_w = shared.clone();
    let reader = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    let latency = shared_profile(&shared).latency;
                    if tx
                        .send((Instant::now() + latency, buf[..n].to_vec()))
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    };
    let writer = async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            // Small slices under a bandwidth cap, so a cut can fall mid-chunk and
            // the pacing stays smooth.
            for piece in chunk.chunks(512) {
                let mut piece = piece;
                let left = shared_w.cut_in.load(Ordering::Acquire);
                let cut = left != u64::MAX && left <= piece.len() as u64;
                if cut {
                    piece = &piece[..left as usize];
                }
                if to.write_all(piece).await.is_err() {
                    return;
                }
                let counter = if towards_target {
                    &shared_w.to_target
                } else {
                    &shared_w.to_client
                };
                counter.fetch_add(piece.len() as u64, Ordering::Relaxed);
                if cut {
                    shared_w.cut_in.store(u64::MAX, Ordering::Release);
                    shared_w.generation.send_modify(|g| *g += 1);
                    return;
                }
                if left != u64::MAX {
                    shared_w
                        .cut_in
                        .fetch_sub(piece.len() as u64, Ordering::AcqRel);
                }
                if let Some(bps) = shared_profile(&shared_w).bits_per_sec {
                    let secs = piece.len() as f64 * 8.0 / bps as f64;
                    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
                }
            }
        }
    };
    // The reader ending (EOF) lets the writer deliver what is still in flight.
    tokio::join!(reader, writer);
}

fn shared_profile(shared: &Shared) -> LinkProfile {
    *shared.profile.lock().unwrap_or_else(|e| e.into_inner())
}
