//! `dealersync-load`: measures a relay against the figures of issue 3, section 5.
//!
//! Every client is a real automerge-repo peer: one [`Engine`] (the same sans-IO engine
//! the field client uses) with an in-memory store, on its own WebSocket to the relay.
//! All clients live in this one process, so a change's send time and the moment
//! another client sees it are read from the same clock.
//!
//! Three measurements, all bounded in time and count, all on 127.0.0.1:
//! - **propagation**: N documents × M connections each, a total change rate R spread
//!   evenly over the connections for D seconds. Each change writes one map key
//!   `"<slot>:<seq>"` whose value is the send time (µs); every other client of the
//!   document records when that key first appears in its copy.
//! - **durable ingest**: K clients, one document each, each writing W changes, then
//!   waiting until the relay's advertised heads contain them, then the next W.
//! - **memory**: the relay's VmRSS when the tool started it (or `--server-pid`), idle,
//!   with the documents loaded, after each run and after an idle wait.
//!
//! The relay is the dealersync release binary started on a temp data dir (default),
//! the automerge-repo Node reference server (`--target node`), or one already running
//! (`--url`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use automerge::transaction::Transactable;
use automerge::{Automerge, ChangeHash, ROOT, ReadDoc, ScalarValue, Value};
use clap::{Parser, ValueEnum};
use dealersync_core::protocol::memory::MemoryStore;
use dealersync_core::protocol::{
    ConnId, ConnInfo, DocumentId, Engine, EngineConfig, Output, StorageId,
};
use dealersync_core::store::Store;
use dealersync_core::time::now_ms;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncBufReadExt;
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant as TokioInstant;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Which relay the tool measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Target {
    /// dealersync-server (documents created with `doc create`, the admin path).
    Dealersync,
    /// The automerge-repo Node reference server (documents created by a client).
    Node,
}

/// Which measurements to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    All,
    Propagation,
    Ingest,
}

#[derive(Parser, Debug, Clone)]
#[command(
    name = "dealersync-load",
    about = "Load tool: propagation latency, durable ingest and memory of a sync relay (loopback only)"
)]
struct Cli {
    /// The relay to measure; started by the tool unless --url is given.
    #[arg(long, value_enum, default_value_t = Target::Dealersync)]
    target: Target,
    /// WebSocket URL of a relay already running on 127.0.0.1 (nothing is started).
    #[arg(long)]
    url: Option<String>,
    /// The dealersync-server binary (default: next to this binary).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// The relay's data directory (default: a temp dir). With --url and target
    /// dealersync, documents are created here with `doc create`.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// An extra argument for `dealersync-server serve` (repeat for several), e.g.
    /// idle-unload settings.
    #[arg(long = "serve-arg", allow_hyphen_values = true)]
    serve_args: Vec<String>,
    /// The reference server script for --target node (tests/js/ref-server.mjs of the
    /// interop branch, with its node_modules installed next to it).
    #[arg(long, default_value = "tests/js/ref-server.mjs")]
    node_script: PathBuf,
    /// A JWT for the relay, sent as `?token=`. When the tool starts dealersync-server
    /// itself it registers a site and issues an admin token through the binary.
    #[arg(long, env = "DEALERSYNC_TOKEN")]
    token: Option<String>,
    /// The relay's pid, to read its memory and CPU time when using --url.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Which measurements to run.
    #[arg(long, value_enum, default_value_t = Scenario::All)]
    scenario: Scenario,
    /// Propagation: documents.
    #[arg(long, default_value_t = 100)]
    docs: usize,
    /// Propagation: connections per document.
    #[arg(long, default_value_t = 3)]
    conns_per_doc: usize,
    /// Propagation: total changes per second, spread evenly over all connections.
    #[arg(long, default_value_t = 600.0)]
    rate: f64,
    /// Propagation: seconds of writing.
    #[arg(long, default_value_t = 30.0)]
    duration: f64,
    /// Seconds allowed after writing stops for the last changes to arrive.
    #[arg(long, default_value_t = 10.0)]
    drain: f64,
    /// Ingest: clients, each on its own document.
    #[arg(long, default_value_t = 100)]
    ingest_clients: usize,
    /// Ingest: changes each client makes per round before waiting for the ack.
    #[arg(long, default_value_t = 1)]
    ingest_window: usize,
    /// Ingest: seconds of writing.
    #[arg(long, default_value_t = 10.0)]
    ingest_duration: f64,
    /// Seconds to wait once every client has left before the last memory reading
    /// (lets a relay with idle unload drop its documents); 0 skips it.
    #[arg(long, default_value_t = 0.0)]
    idle_wait: f64,
    /// After measuring dealersync-server, run the same load against the Node reference
    /// server (--node-script) and print the ratios.
    #[arg(long)]
    compare_node: bool,
    /// Clients advertise a storage id, so the relay persists their sync states (as
    /// for real devices with local storage); without it they are like browser tabs.
    #[arg(long)]
    client_storage_ids: bool,
    /// Seconds allowed for connecting and opening documents.
    #[arg(long, default_value_t = 60.0)]
    setup_timeout: f64,
}

/// The one clock of the process: microseconds since the tool started.
fn micros() -> i64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_micros() as i64
}

// ------------------------------------------------------------------ the relay process

/// How documents come to exist on the relay.
#[derive(Clone)]
enum DocMaker {
    /// `dealersync-server doc create --data-dir DIR` (the relay's admin path).
    Admin { bin: PathBuf, data_dir: PathBuf },
    /// A client adds the document and syncs it up (what automerge-repo servers allow).
    Client,
}

/// The relay under test.
struct Relay {
    url: String,
    http: Option<String>,
    pid: Option<u32>,
    child: Option<Child>,
    docs: DocMaker,
    _tmp: Option<tempfile::TempDir>,
}

/// Memory and CPU of a process, from /proc.
#[derive(Debug, Clone, Copy, Default)]
struct ProcSample {
    rss_kib: u64,
    cpu_ticks: u64,
}

/// Reads VmRSS and utime+stime (clock ticks, 100 per second on Linux).
fn proc_sample(pid: u32) -> Option<ProcSample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(ProcSample {
        rss_kib,
        cpu_ticks: utime + stime,
    })
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

fn check_loopback(url: &str) -> anyhow::Result<()> {
    let ok = ["ws://127.0.0.1:", "ws://localhost:", "ws://[::1]:"]
        .iter()
        .any(|p| url.starts_with(p));
    if !ok {
        bail!("{url}: the load tool only targets a relay on this machine (ws://127.0.0.1:PORT)");
    }
    Ok(())
}

async fn wait_for_port(port: u16, child: &mut Child, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("the relay exited before listening: {status}");
        }
        if Instant::now() > deadline {
            bail!("the relay did not listen on port {port} within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Relay {
    async fn start(cli: &Cli) -> anyhow::Result<Relay> {
        if let Some(url) = &cli.url {
            check_loopback(url)?;
            let docs = match cli.target {
                Target::Dealersync => DocMaker::Admin {
                    bin: server_bin(cli)?,
                    data_dir: cli.data_dir.clone().context(
                        "--url with target dealersync needs --data-dir to create documents",
                    )?,
                },
                Target::Node => DocMaker::Client,
            };
            let url = with_token(url, cli.token.as_deref());
            let http = url
                .strip_prefix("ws://")
                .and_then(|r| r.split('/').next())
                .map(|hp| format!("http://{hp}"));
            return Ok(Relay {
                url,
                http,
                pid: cli.server_pid,
                child: None,
                docs,
                _tmp: None,
            });
        }
        let tmp = tempfile::Builder::new()
            .prefix("dealersync-load-")
            .tempdir()?;
        let data_dir = cli
            .data_dir
            .clone()
            .unwrap_or_else(|| tmp.path().join("data"));
        std::fs::create_dir_all(&data_dir)?;
        let log = std::fs::File::create(tmp.path().join("relay.log"))?;
        match cli.target {
            Target::Dealersync => {
                let bin = server_bin(cli)?;
                let token = match &cli.token {
                    Some(t) => Some(t.clone()),
                    None => admin_token(&bin, &data_dir).await?,
                };
                let port = free_port()?;
                let mut child = Command::new(&bin)
                    .arg("serve")
                    .arg("--listen")
                    .arg(format!("127.0.0.1:{port}"))
                    .arg("--data-dir")
                    .arg(&data_dir)
                    .args(&cli.serve_args)
                    .stdout(log.try_clone()?)
                    .stderr(log)
                    .kill_on_drop(true)
                    .spawn()
                    .with_context(|| format!("cannot start {}", bin.display()))?;
                wait_for_port(port, &mut child, Duration::from_secs(30)).await?;
                Ok(Relay {
                    url: with_token(&format!("ws://127.0.0.1:{port}/sync"), token.as_deref()),
                    http: Some(format!("http://127.0.0.1:{port}")),
                    pid: child.id(),
                    child: Some(child),
                    docs: DocMaker::Admin { bin, data_dir },
                    _tmp: Some(tmp),
                })
            }
            Target::Node => {
                let mut child = Command::new("node")
                    .arg(&cli.node_script)
                    .args(["--port", "0", "--host", "127.0.0.1", "--data-dir"])
                    .arg(&data_dir)
                    .stdout(std::process::Stdio::piped())
                    .stderr(log)
                    .kill_on_drop(true)
                    .spawn()
                    .context("cannot start node")?;
                let stdout = child.stdout.take().context("no stdout")?;
                let mut lines = tokio::io::BufReader::new(stdout).lines();
                let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
                    .await
                    .context("the reference server did not print its port")??
                    .context("the reference server exited")?;
                let v: serde_json::Value = serde_json::from_str(&line)?;
                let port = v["port"].as_u64().context("no port in the server's line")?;
                // Keep reading: a closed pipe would kill node at its next write.
                tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                let url = format!("ws://127.0.0.1:{port}/sync");
                // The Repo attaches its network adapter only once its storage is ready;
                // until then connections are dropped. Wait for a `peer` answer.
                let deadline = Instant::now() + Duration::from_secs(30);
                while !probe(&url).await {
                    if Instant::now() > deadline {
                        bail!("the reference server never answered join");
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok(Relay {
                    url,
                    http: None,
                    pid: child.id(),
                    child: Some(child),
                    docs: DocMaker::Client,
                    _tmp: Some(tmp),
                })
            }
        }
    }

    fn sample(&self) -> Option<ProcSample> {
        self.pid.and_then(proc_sample)
    }

    /// Creates `n` documents and returns their ids.
    async fn create_docs(&self, n: usize, timeout: Duration) -> anyhow::Result<Vec<DocumentId>> {
        match &self.docs {
            DocMaker::Admin { bin, data_dir } => {
                let mut ids = Vec::with_capacity(n);
                for _ in 0..n {
                    let out = Command::new(bin)
                        .args(["doc", "create", "--data-dir"])
                        .arg(data_dir)
                        .output()
                        .await?;
                    if !out.status.success() {
                        bail!(
                            "doc create failed: {}",
                            String::from_utf8_lossy(&out.stderr).trim()
                        );
                    }
                    let id: DocumentId = String::from_utf8_lossy(&out.stdout)
                        .trim()
                        .parse()
                        .map_err(|e| anyhow::anyhow!("doc create printed no id: {e:?}"))?;
                    ids.push(id);
                }
                Ok(ids)
            }
            DocMaker::Client => {
                let mut tasks = Vec::new();
                for i in 0..n {
                    let url = self.url.clone();
                    tasks.push(tokio::spawn(async move {
                        let id = DocumentId::random();
                        let mut am = Automerge::new();
                        let mut tx = am.transaction();
                        tx.put(ROOT, "created", true)?;
                        tx.commit();
                        let deadline = TokioInstant::now() + timeout;
                        let mut peer = Peer::connect(
                            &url,
                            &format!("creator-{i}"),
                            id,
                            Open::Create(Box::new(am)),
                        )
                        .await?;
                        peer.wait_synced(deadline).await?;
                        peer.close().await;
                        anyhow::Ok(id)
                    }));
                }
                let mut ids = Vec::with_capacity(n);
                for t in tasks {
                    ids.push(t.await??);
                }
                Ok(ids)
            }
        }
    }

    /// Selected lines of the relay's Prometheus metrics (commit batches and latency).
    async fn metrics_excerpt(&self) -> Option<String> {
        let http = self.http.as_ref()?;
        let body = reqwest::get(format!("{http}/metrics"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        let lines: Vec<&str> = body
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| {
                [
                    "commit",
                    "batch",
                    "documents_loaded",
                    "sync_round",
                    "messages_",
                    "errors",
                ]
                .iter()
                .any(|k| l.contains(k))
            })
            .filter(|l| !l.contains("quantile") || l.contains("0.99") || l.contains("0.5\""))
            .collect();
        Some(lines.join("\n"))
    }

    async fn stop(&mut self) {
        if let Some(child) = &mut self.child {
            if let Some(pid) = child.id() {
                // SIGTERM first: the relay finishes its commits and exits cleanly.
                let _ = Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status()
                    .await;
            }
            if tokio::time::timeout(Duration::from_secs(10), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
    }
}

/// Whether a relay answers `join` with `peer` within a second.
async fn probe(url: &str) -> bool {
    let attempt = async {
        let mut peer = Peer::connect(url, "probe", DocumentId::random(), Open::Nothing).await?;
        while !peer.ready {
            peer.recv().await?;
        }
        peer.close().await;
        anyhow::Ok(())
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(1), attempt).await,
        Ok(Ok(()))
    )
}

/// The URL without its token, for printing.
fn shown(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// Appends `?token=` (browsers' way, accepted by dealersync) when there is a token.
fn with_token(url: &str, token: Option<&str>) -> String {
    match token {
        Some(t) => format!(
            "{url}{}token={t}",
            if url.contains('?') { '&' } else { '?' }
        ),
        None => url.to_owned(),
    }
}

/// Registers a site and issues an admin token in a fresh data dir, through the
/// server binary (before it serves: `site add` wants the server stopped). A binary
/// without these subcommands predates auth and needs no token.
async fn admin_token(bin: &Path, data_dir: &Path) -> anyhow::Result<Option<String>> {
    let help = Command::new(bin).arg("--help").output().await?;
    if !String::from_utf8_lossy(&help.stdout).contains("token") {
        return Ok(None);
    }
    let site = Command::new(bin)
        .args(["site", "add", "--id", "load-hq", "--name", "Load test"])
        .args(["--kind", "head_office", "--data-dir"])
        .arg(data_dir)
        .output()
        .await?;
    if !site.status.success() {
        bail!(
            "site add failed: {}",
            String::from_utf8_lossy(&site.stderr).trim()
        );
    }
    let out = Command::new(bin)
        .args(["token", "--sub", "dealersync-load", "--role", "admin"])
        .args(["--site", "load-hq", "--ttl", "1d", "--data-dir"])
        .arg(data_dir)
        .output()
        .await?;
    if !out.status.success() {
        bail!(
            "token failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(Some(String::from_utf8_lossy(&out.stdout).trim().to_owned()))
}

fn server_bin(cli: &Cli) -> anyhow::Result<PathBuf> {
    if let Some(b) = &cli.server_bin {
        return Ok(b.clone());
    }
    let me = std::env::current_exe()?;
    let bin = me
        .parent()
        .context("no directory for this binary")?
        .join("dealersync-server");
    if !bin.exists() {
        bail!(
            "{} not found: build it (cargo build --release -p dealersync-server) or pass --server-bin",
            bin.display()
        );
    }
    Ok(bin)
}

// ------------------------------------------------------------------ one client peer

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What a new [`Peer`] does with its document.
enum Open {
    /// Ask the relay for it.
    Existing,
    /// Add it as a new local document and sync it up.
    Create(Box<Automerge>),
    /// Nothing (only the handshake).
    Nothing,
}

/// Whether clients advertise a storage id (`--client-storage-ids`).
static CLIENT_STORAGE_IDS: AtomicBool = AtomicBool::new(false);

/// The only connection of each client engine.
const CONN: ConnId = ConnId(1);

/// One automerge-repo client: an engine, its in-memory store, one WebSocket, one
/// document.
struct Peer {
    engine: Engine,
    store: MemoryStore,
    doc: DocumentId,
    sink: SplitSink<Ws, WsMessage>,
    stream: SplitStream<Ws>,
    /// The relay answered `join` with `peer`.
    ready: bool,
}

impl Peer {
    /// Connects, joins and opens `doc` as `open` says.
    async fn connect(url: &str, name: &str, doc: DocumentId, open: Open) -> anyhow::Result<Peer> {
        // TCP_NODELAY, as browsers and Node's `ws` set it: with Nagle on, a small frame
        // written while the previous one is unacknowledged waits for a delayed ACK.
        let (ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true)
            .await
            .with_context(|| format!("cannot connect to {url}"))?;
        let (sink, stream) = ws.split();
        let name = format!("load-{}-{name}", std::process::id());
        let mut peer = Peer {
            engine: Engine::new(
                name.as_str().into(),
                EngineConfig {
                    // A storage id makes the relay persist a sync state per (document,
                    // client), as it does for real devices.
                    storage_id: CLIENT_STORAGE_IDS
                        .load(Ordering::Relaxed)
                        .then(|| StorageId(format!("{name}-storage"))),
                    ..EngineConfig::default()
                },
            ),
            store: MemoryStore::new(),
            doc,
            sink,
            stream,
            ready: false,
        };
        let join = peer.engine.connect_to_server(CONN, ConnInfo::full_access());
        peer.flush(join).await?;
        let outs = match open {
            Open::Existing => peer.engine.open(doc, &peer.store)?,
            Open::Create(am) => peer.engine.add_local_document(doc, *am, &peer.store)?,
            Open::Nothing => Vec::new(),
        };
        peer.flush(outs).await?;
        Ok(peer)
    }

    /// Sends the engine's frames, commits its write batches (memory, instant) and
    /// sends what the commits release, until nothing is left.
    async fn flush(&mut self, outs: Vec<Output>) -> anyhow::Result<()> {
        let mut outs = outs;
        loop {
            let mut sent = false;
            for o in outs.drain(..) {
                match o {
                    Output::Send { bytes, .. } => {
                        self.sink.feed(WsMessage::Binary(bytes.into())).await?;
                        sent = true;
                    }
                    Output::Close { reason, .. } => bail!("the engine closed: {reason}"),
                    Output::DocumentUnavailable { doc, .. } => {
                        bail!("the relay says {doc} is unavailable")
                    }
                    Output::CreateFailed { error, .. } => bail!("local create failed: {error}"),
                    Output::PeerReady { .. } => self.ready = true,
                    _ => {}
                }
            }
            if sent {
                self.sink.flush().await?;
            }
            let Some((token, batch)) = self.engine.take_write_batch() else {
                return Ok(());
            };
            outs = match self.store.commit(&batch) {
                Ok(()) => self.engine.commit_succeeded(token, now_ms(), &self.store),
                Err(e) => bail!("in-memory commit failed: {e}"),
            };
        }
    }

    /// Waits for one frame and hands it to the engine.
    async fn recv(&mut self) -> anyhow::Result<()> {
        loop {
            match self.stream.next().await {
                Some(Ok(WsMessage::Binary(b))) => {
                    let outs = self.engine.receive(CONN, &b, now_ms(), &self.store);
                    return self.flush(outs).await;
                }
                Some(Ok(WsMessage::Close(f))) => bail!("the relay closed the connection: {f:?}"),
                Some(Ok(WsMessage::Text(t))) => bail!("unexpected text frame: {t}"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => bail!("websocket error: {e}"),
                None => bail!("the connection ended"),
            }
        }
    }

    fn synced(&self) -> bool {
        self.engine.is_synced(&self.doc, CONN)
            && self
                .engine
                .document(&self.doc)
                .is_some_and(|d| !d.get_heads().is_empty())
    }

    async fn wait_synced(&mut self, deadline: TokioInstant) -> anyhow::Result<()> {
        while !self.synced() {
            tokio::time::timeout_at(deadline, self.recv())
                .await
                .context("timed out syncing the document")??;
        }
        Ok(())
    }

    /// One small map write as its own change; returns its hash.
    fn change(&mut self, key: &str, value: i64) -> anyhow::Result<ChangeHash> {
        let am = self
            .engine
            .document_mut(&self.doc)
            .context("document not open")?;
        let mut tx = am.transaction();
        tx.put(ROOT, key, ScalarValue::Int(value))?;
        let (hash, _) = tx.commit();
        self.engine.local_change(&self.doc)?;
        hash.context("empty change")
    }

    fn int_at(&self, key: &str) -> Option<i64> {
        let am = self.engine.document(&self.doc)?;
        match am.get(ROOT, key).ok()?? {
            (Value::Scalar(s), _) => match s.as_ref() {
                ScalarValue::Int(i) => Some(*i),
                _ => None,
            },
            _ => None,
        }
    }

    async fn close(mut self) {
        let _ = self.sink.close().await;
    }
}

// ------------------------------------------------------------------ propagation

/// What one propagation client reports.
#[derive(Default)]
struct PropagationReport {
    latencies_us: Vec<u32>,
    /// (send time µs, latency µs) of each observation, for the per-window view.
    timeline: Vec<(i64, u32)>,
    written: u64,
    missing: u64,
    errors: Vec<String>,
}

/// Shared by the clients of one propagation run.
struct PropagationPlan {
    conns_total: usize,
    conns_per_doc: usize,
    rate: f64,
    duration: Duration,
    drain: Duration,
    /// Per connection: how many changes it wrote, once it stopped (u64::MAX before).
    final_written: Vec<AtomicU64>,
}

async fn propagation_client(
    url: String,
    doc: DocumentId,
    g: usize,
    plan: Arc<PropagationPlan>,
    setup_deadline: TokioInstant,
    ready: mpsc::Sender<anyhow::Result<()>>,
    mut start: watch::Receiver<Option<TokioInstant>>,
) -> PropagationReport {
    let mut report = PropagationReport::default();
    let slot = g % plan.conns_per_doc;
    let first_of_doc = g - slot;
    let setup = async {
        let mut peer = Peer::connect(&url, &format!("p{g}"), doc, Open::Existing).await?;
        peer.wait_synced(setup_deadline).await?;
        anyhow::Ok(peer)
    }
    .await;
    let mut peer = match setup {
        Ok(p) => {
            let _ = ready.send(Ok(())).await;
            p
        }
        Err(e) => {
            let _ = ready.send(Err(anyhow::anyhow!("client {g}: {e:#}"))).await;
            plan.final_written[g].store(0, Ordering::SeqCst);
            report.errors.push(format!("{e:#}"));
            return report;
        }
    };
    // Keep answering the relay while the others get ready.
    let t0 = loop {
        tokio::select! {
            r = start.changed() => {
                if r.is_err() { return report; }
                if let Some(t) = *start.borrow() { break t; }
            }
            r = peer.recv() => if let Err(e) = r {
                report.errors.push(format!("before start: {e:#}"));
                plan.final_written[g].store(0, Ordering::SeqCst);
                return report;
            }
        }
    };
    let period = Duration::from_secs_f64(plan.conns_total as f64 / plan.rate);
    let mut next_write = t0 + Duration::from_secs_f64(g as f64 / plan.rate);
    let stop_writing = t0 + plan.duration;
    let drain_deadline = stop_writing + plan.drain;
    let others: Vec<usize> = (0..plan.conns_per_doc).filter(|s| *s != slot).collect();
    let mut next_seq = vec![0u64; plan.conns_per_doc];
    let mut writing = true;
    let result: anyhow::Result<()> = async {
        loop {
            if writing && TokioInstant::now() >= stop_writing {
                writing = false;
                plan.final_written[g].store(report.written, Ordering::SeqCst);
            }
            if !writing {
                let all_seen = others.iter().all(|&s| {
                    next_seq[s] >= plan.final_written[first_of_doc + s].load(Ordering::SeqCst)
                });
                if all_seen && peer.synced() {
                    return Ok(());
                }
                if TokioInstant::now() >= drain_deadline {
                    return Ok(());
                }
            }
            let wake = if writing {
                next_write.min(stop_writing)
            } else {
                // Re-check now and then: the others' final counts arrive without a frame.
                (TokioInstant::now() + Duration::from_millis(50)).min(drain_deadline)
            };
            tokio::select! {
                r = peer.recv() => {
                    r?;
                    let now = micros();
                    for &s in &others {
                        while let Some(sent) = peer.int_at(&format!("{s}:{}", next_seq[s])) {
                            let lat = (now - sent).max(0) as u32;
                            report.latencies_us.push(lat);
                            report.timeline.push((sent, lat));
                            next_seq[s] += 1;
                        }
                    }
                }
                _ = tokio::time::sleep_until(wake) => {
                    if writing && TokioInstant::now() >= next_write && TokioInstant::now() < stop_writing {
                        let key = format!("{slot}:{}", report.written);
                        peer.change(&key, micros())?;
                        report.written += 1;
                        peer.flush(Vec::new()).await?;
                        next_write += period;
                    }
                }
            }
        }
    }
    .await;
    if writing {
        plan.final_written[g].store(report.written, Ordering::SeqCst);
    }
    if let Err(e) = result {
        report.errors.push(format!("{e:#}"));
    }
    for &s in &others {
        let fw = plan.final_written[first_of_doc + s].load(Ordering::SeqCst);
        if fw != u64::MAX {
            report.missing += fw.saturating_sub(next_seq[s]);
        }
    }
    peer.close().await;
    report
}

/// Figures of a propagation run.
struct PropagationFigures {
    samples: Vec<u32>,
    timeline: Vec<(i64, u32)>,
    written: u64,
    expected: u64,
    missing: u64,
    elapsed: Duration,
    errors: Vec<String>,
    rss_loaded: Option<ProcSample>,
    rss_after: Option<ProcSample>,
    cpu_before_run: Option<ProcSample>,
}

async fn run_propagation(cli: &Cli, relay: &Relay) -> anyhow::Result<PropagationFigures> {
    let setup_timeout = Duration::from_secs_f64(cli.setup_timeout);
    eprintln!("propagation: creating {} documents", cli.docs);
    let docs = relay.create_docs(cli.docs, setup_timeout).await?;
    let conns_total = cli.docs * cli.conns_per_doc;
    let plan = Arc::new(PropagationPlan {
        conns_total,
        conns_per_doc: cli.conns_per_doc,
        rate: cli.rate,
        duration: Duration::from_secs_f64(cli.duration),
        drain: Duration::from_secs_f64(cli.drain),
        final_written: (0..conns_total).map(|_| AtomicU64::new(u64::MAX)).collect(),
    });
    eprintln!("propagation: connecting {conns_total} clients");
    let setup_deadline = TokioInstant::now() + setup_timeout;
    let (ready_tx, mut ready_rx) = mpsc::channel(conns_total.max(1));
    let (start_tx, start_rx) = watch::channel(None);
    let mut tasks = Vec::with_capacity(conns_total);
    for g in 0..conns_total {
        tasks.push(tokio::spawn(propagation_client(
            relay.url.clone(),
            docs[g / cli.conns_per_doc],
            g,
            plan.clone(),
            setup_deadline,
            ready_tx.clone(),
            start_rx.clone(),
        )));
        // Spread the handshakes a little so the relay's accept queue does not overflow.
        if g % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    drop(ready_tx);
    let mut setup_errors = Vec::new();
    for _ in 0..conns_total {
        match ready_rx.recv().await {
            Some(Ok(())) => {}
            Some(Err(e)) => setup_errors.push(e.to_string()),
            None => break,
        }
    }
    if !setup_errors.is_empty() {
        eprintln!(
            "propagation: {} clients failed to set up, first: {}",
            setup_errors.len(),
            setup_errors[0]
        );
    }
    let rss_loaded = relay.sample();
    eprintln!("propagation: {} s at {} changes/s", cli.duration, cli.rate);
    let t0 = TokioInstant::now() + Duration::from_millis(200);
    start_tx.send(Some(t0))?;
    let mut fig = PropagationFigures {
        samples: Vec::new(),
        timeline: Vec::new(),
        written: 0,
        expected: 0,
        missing: 0,
        elapsed: Duration::ZERO,
        errors: Vec::new(),
        rss_loaded,
        rss_after: None,
        cpu_before_run: rss_loaded,
    };
    for t in tasks {
        let r = t.await?;
        fig.samples.extend(r.latencies_us);
        fig.timeline.extend(r.timeline);
        fig.written += r.written;
        fig.missing += r.missing;
        fig.errors.extend(r.errors);
    }
    fig.elapsed = plan.duration;
    fig.expected = fig.written * (cli.conns_per_doc as u64 - 1);
    fig.samples.sort_unstable();
    fig.rss_after = relay.sample();
    Ok(fig)
}

// ------------------------------------------------------------------ durable ingest

#[derive(Default)]
struct IngestReport {
    acked: u64,
    ack_us: Vec<u32>,
    errors: Vec<String>,
}

/// How a client learns when to start: it reports ready, then waits for the start time.
struct Gate {
    setup_deadline: TokioInstant,
    ready: mpsc::Sender<anyhow::Result<()>>,
    start: watch::Receiver<Option<TokioInstant>>,
}

async fn ingest_client(
    url: String,
    doc: DocumentId,
    i: usize,
    window: usize,
    duration: Duration,
    gate: Gate,
) -> IngestReport {
    let Gate {
        setup_deadline,
        ready,
        mut start,
    } = gate;
    let mut report = IngestReport::default();
    let setup = async {
        let mut peer = Peer::connect(&url, &format!("i{i}"), doc, Open::Existing).await?;
        peer.wait_synced(setup_deadline).await?;
        anyhow::Ok(peer)
    }
    .await;
    let mut peer = match setup {
        Ok(p) => {
            let _ = ready.send(Ok(())).await;
            p
        }
        Err(e) => {
            let _ = ready.send(Err(anyhow::anyhow!("client {i}: {e:#}"))).await;
            report.errors.push(format!("{e:#}"));
            return report;
        }
    };
    let t0 = loop {
        tokio::select! {
            r = start.changed() => {
                if r.is_err() { return report; }
                if let Some(t) = *start.borrow() { break t; }
            }
            r = peer.recv() => if let Err(e) = r {
                report.errors.push(format!("before start: {e:#}"));
                return report;
            }
        }
    };
    tokio::time::sleep_until(t0).await;
    let deadline = t0 + duration;
    let mut seq = 0i64;
    let result: anyhow::Result<()> = async {
        while TokioInstant::now() < deadline {
            let sent = micros();
            let mut last = None;
            for _ in 0..window {
                last = Some(peer.change("n", seq)?);
                seq += 1;
            }
            let last = last.context("window is 0")?;
            peer.flush(Vec::new()).await?;
            // Acknowledged: the relay's advertised heads contain the change.
            loop {
                if peer
                    .engine
                    .peer_heads(&peer.doc, CONN)
                    .is_some_and(|h| h.contains(&last))
                {
                    report.acked += window as u64;
                    report.ack_us.push((micros() - sent).max(0) as u32);
                    break;
                }
                match tokio::time::timeout_at(deadline, peer.recv()).await {
                    Ok(r) => r?,
                    Err(_) => return Ok(()),
                }
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        report.errors.push(format!("{e:#}"));
    }
    peer.close().await;
    report
}

struct IngestFigures {
    acked: u64,
    ack_us: Vec<u32>,
    elapsed: Duration,
    errors: Vec<String>,
    before: Option<ProcSample>,
    after: Option<ProcSample>,
}

async fn run_ingest(cli: &Cli, relay: &Relay) -> anyhow::Result<IngestFigures> {
    let setup_timeout = Duration::from_secs_f64(cli.setup_timeout);
    eprintln!("ingest: creating {} documents", cli.ingest_clients);
    let docs = relay.create_docs(cli.ingest_clients, setup_timeout).await?;
    let setup_deadline = TokioInstant::now() + setup_timeout;
    let (ready_tx, mut ready_rx) = mpsc::channel(cli.ingest_clients.max(1));
    let (start_tx, start_rx) = watch::channel(None);
    let duration = Duration::from_secs_f64(cli.ingest_duration);
    let mut tasks = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        tasks.push(tokio::spawn(ingest_client(
            relay.url.clone(),
            *doc,
            i,
            cli.ingest_window,
            duration,
            Gate {
                setup_deadline,
                ready: ready_tx.clone(),
                start: start_rx.clone(),
            },
        )));
    }
    drop(ready_tx);
    let mut failed = 0;
    for _ in 0..docs.len() {
        let Some(r) = ready_rx.recv().await else {
            break;
        };
        if let Err(e) = r {
            if failed == 0 {
                eprintln!("ingest: client failed to set up: {e}");
            }
            failed += 1;
        }
    }
    eprintln!(
        "ingest: {} clients, window {}, {} s",
        cli.ingest_clients, cli.ingest_window, cli.ingest_duration
    );
    let before = relay.sample();
    let t0 = TokioInstant::now() + Duration::from_millis(200);
    start_tx.send(Some(t0))?;
    let mut fig = IngestFigures {
        acked: 0,
        ack_us: Vec::new(),
        elapsed: duration,
        errors: Vec::new(),
        before,
        after: None,
    };
    for t in tasks {
        let r = t.await?;
        fig.acked += r.acked;
        fig.ack_us.extend(r.ack_us);
        fig.errors.extend(r.errors);
    }
    fig.after = relay.sample();
    fig.ack_us.sort_unstable();
    Ok(fig)
}

// ------------------------------------------------------------------ report

fn pct(sorted: &[u32], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    Some(sorted[i] as f64 / 1000.0)
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.1} ms"))
}

fn mib(s: Option<ProcSample>) -> String {
    s.map_or("-".into(), |s| {
        format!("{:.1} MiB", s.rss_kib as f64 / 1024.0)
    })
}

fn cpu_secs(a: Option<ProcSample>, b: Option<ProcSample>) -> Option<f64> {
    Some(b?.cpu_ticks.saturating_sub(a?.cpu_ticks) as f64 / 100.0)
}

fn summarize_errors(errors: &[String]) -> String {
    if errors.is_empty() {
        return "0".into();
    }
    format!("{} (first: {})", errors.len(), errors[0])
}

/// The 1-minute load average: other work on the machine skews every figure.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "-".into())
}

fn command_line() -> String {
    std::env::args()
        .map(|a| if a.contains(' ') { format!("'{a}'") } else { a })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The headline figures of one relay, for the comparison line.
struct Headline {
    p99_ms: Option<f64>,
    ingest_per_s: Option<f64>,
    rss_loaded: Option<ProcSample>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    micros();
    let cli = Cli::parse();
    if cli.conns_per_doc < 2 {
        bail!("--conns-per-doc must be at least 2: a change must have someone to reach");
    }
    if cli.rate <= 0.0 || cli.duration <= 0.0 || cli.ingest_window == 0 {
        bail!("--rate, --duration and --ingest-window must be positive");
    }
    if let Some(p) = &cli.server_bin
        && !Path::new(p).exists()
    {
        bail!("{} does not exist", p.display());
    }
    CLIENT_STORAGE_IDS.store(cli.client_storage_ids, Ordering::Relaxed);
    let ours = measure(&cli).await?;
    if cli.compare_node && cli.url.is_none() && cli.target == Target::Dealersync {
        let node_cli = Cli {
            target: Target::Node,
            data_dir: None,
            ..cli.clone()
        };
        let node = measure(&node_cli).await?;
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.3}x", a / b),
            _ => "-".into(),
        };
        println!();
        println!("== same load, dealersync-server vs the Node reference server");
        println!(
            "  {:<28} {} vs {} (dealersync / node = {})",
            "propagation p99",
            ms(ours.p99_ms),
            ms(node.p99_ms),
            ratio(ours.p99_ms, node.p99_ms)
        );
        println!(
            "  {:<28} {} vs {} changes/s (dealersync / node = {})",
            "acknowledged ingest",
            ours.ingest_per_s.map_or("-".into(), |r| format!("{r:.0}")),
            node.ingest_per_s.map_or("-".into(), |r| format!("{r:.0}")),
            ratio(ours.ingest_per_s, node.ingest_per_s)
        );
        let rss = |s: Option<ProcSample>| s.map(|s| s.rss_kib as f64);
        println!(
            "  {:<28} {} vs {} (dealersync / node = {})",
            "RSS, documents loaded",
            mib(ours.rss_loaded),
            mib(node.rss_loaded),
            ratio(rss(ours.rss_loaded), rss(node.rss_loaded))
        );
    }
    Ok(())
}

/// Starts (or reaches) one relay, runs the scenarios against it and prints its figures.
async fn measure(cli: &Cli) -> anyhow::Result<Headline> {
    let cli = cli.clone();
    let mut relay = Relay::start(&cli).await?;
    eprintln!("relay at {} (pid {:?})", shown(&relay.url), relay.pid);
    let idle = relay.sample();
    let load_start = loadavg();
    let tool_start = proc_sample(std::process::id());

    // A scenario that cannot even set up (a saturated relay) is reported, not fatal:
    // the figures of the other one are still worth printing.
    let mut failures = Vec::new();
    let prop = match cli.scenario {
        Scenario::All | Scenario::Propagation => match run_propagation(&cli, &relay).await {
            Ok(p) => Some(p),
            Err(e) => {
                failures.push(format!("propagation failed: {e:#}"));
                None
            }
        },
        Scenario::Ingest => None,
    };
    let metrics_prop = relay.metrics_excerpt().await;
    let ingest = match cli.scenario {
        Scenario::All | Scenario::Ingest => match run_ingest(&cli, &relay).await {
            Ok(i) => Some(i),
            Err(e) => {
                failures.push(format!("ingest failed: {e:#}"));
                None
            }
        },
        Scenario::Propagation => None,
    };
    let after_run = relay.sample();
    let idle_after = if cli.idle_wait > 0.0 {
        eprintln!("waiting {} s with no clients", cli.idle_wait);
        tokio::time::sleep(Duration::from_secs_f64(cli.idle_wait)).await;
        relay.sample()
    } else {
        None
    };
    let metrics_end = relay.metrics_excerpt().await;
    let tool_end = proc_sample(std::process::id());
    relay.stop().await;

    let target = match cli.target {
        Target::Dealersync => "dealersync-server",
        Target::Node => "automerge-repo Node reference server",
    };
    println!("== dealersync-load: {target} at {}", shown(&relay.url));
    println!("command: {}", command_line());
    for f in &failures {
        println!("FAILED: {f}");
    }
    println!(
        "machine: {} cores (shared with the load clients); load average at start {}, at end {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_start,
        loadavg()
    );
    if let Some(p) = &prop {
        let n = p.samples.len() as u64;
        let achieved = p.written as f64 / p.elapsed.as_secs_f64();
        let p99 = pct(&p.samples, 0.99);
        println!();
        println!(
            "propagation: {} docs x {} connections/doc = {} connections, target rate {} changes/s for {} s",
            cli.docs,
            cli.conns_per_doc,
            cli.docs * cli.conns_per_doc,
            cli.rate,
            cli.duration
        );
        println!("  {:<28} {}", "changes written", p.written);
        println!("  {:<28} {achieved:.1} changes/s", "achieved rate");
        println!(
            "  {:<28} {n} of {} expected ({} missing after {} s drain)",
            "observations (other clients)", p.expected, p.missing, cli.drain
        );
        println!("  {:<28} {}", "p50", ms(pct(&p.samples, 0.50)));
        println!("  {:<28} {}", "p90", ms(pct(&p.samples, 0.90)));
        println!("  {:<28} {}", "p99", ms(p99));
        println!("  {:<28} {}", "max", ms(pct(&p.samples, 1.0)));
        if let Some(p99) = p99 {
            println!(
                "  {:<28} {:.2}x the 50 ms target ({})",
                "p99 / target",
                p99 / 50.0,
                if p99 < 50.0 { "met" } else { "missed" }
            );
        }
        if let Some(cpu) = cpu_secs(p.cpu_before_run, p.rss_after) {
            println!(
                "  {:<28} {cpu:.1} s ({:.0}% of one core, {:.2} ms per change written)",
                "relay CPU during run",
                100.0 * cpu / (p.elapsed.as_secs_f64() + cli.drain.min(1.0)),
                1000.0 * cpu / p.written.max(1) as f64
            );
        }
        println!("  {:<28} {}", "errors", summarize_errors(&p.errors));
        // Whether latency grows with history or comes in bursts shows per window.
        if let Some(first) = p.timeline.iter().map(|t| t.0).min() {
            println!("  by send time (5 s windows): p50 / p99 / observations");
            let mut windows: std::collections::BTreeMap<i64, Vec<u32>> = Default::default();
            for (sent, lat) in &p.timeline {
                windows
                    .entry((sent - first) / 5_000_000)
                    .or_default()
                    .push(*lat);
            }
            for (w, mut v) in windows {
                v.sort_unstable();
                println!(
                    "    {:>3}-{:<3} s  {:>10} {:>10} {:>7}",
                    w * 5,
                    w * 5 + 5,
                    ms(pct(&v, 0.5)),
                    ms(pct(&v, 0.99)),
                    v.len()
                );
            }
        }
    }
    if let Some(i) = &ingest {
        let rate = i.acked as f64 / i.elapsed.as_secs_f64();
        println!();
        println!(
            "durable ingest: {} clients x 1 document each, {} change(s) per round, {} s",
            cli.ingest_clients, cli.ingest_window, cli.ingest_duration
        );
        println!("  {:<28} {}", "changes acknowledged", i.acked);
        println!("  {:<28} {rate:.0} changes/s", "acknowledged rate");
        println!(
            "  {:<28} {:.2}x the 5,000 changes/s target ({})",
            "rate / target",
            rate / 5000.0,
            if rate >= 5000.0 { "met" } else { "missed" }
        );
        println!(
            "  {:<28} p50 {} / p99 {} / max {}",
            "round trip to ack",
            ms(pct(&i.ack_us, 0.5)),
            ms(pct(&i.ack_us, 0.99)),
            ms(pct(&i.ack_us, 1.0))
        );
        if let Some(cpu) = cpu_secs(i.before, i.after) {
            println!(
                "  {:<28} {cpu:.1} s ({:.3} ms per change acknowledged)",
                "relay CPU during run",
                1000.0 * cpu / i.acked.max(1) as f64
            );
        }
        println!("  {:<28} {}", "errors", summarize_errors(&i.errors));
    }
    println!();
    println!("relay memory (VmRSS):");
    println!("  {:<28} {}", "started, idle", mib(idle));
    if let Some(p) = &prop {
        println!(
            "  {:<28} {}",
            format!("{} docs loaded, connected", cli.docs),
            mib(p.rss_loaded)
        );
        println!("  {:<28} {}", "after propagation", mib(p.rss_after));
    }
    if let Some(i) = &ingest {
        println!("  {:<28} {}", "after ingest", mib(i.after));
    }
    println!("  {:<28} {}", "all clients gone", mib(after_run));
    if cli.idle_wait > 0.0 {
        println!(
            "  {:<28} {}",
            format!("after {} s idle", cli.idle_wait),
            mib(idle_after)
        );
    }
    if let Some(cpu) = cpu_secs(tool_start, tool_end) {
        println!();
        println!("load tool CPU: {cpu:.1} s (competes with the relay for the same cores)");
    }
    for (label, m) in [
        ("after propagation", metrics_prop),
        ("at the end", metrics_end),
    ] {
        if let Some(m) = m
            && !m.is_empty()
        {
            println!();
            println!("relay metrics {label} (selected lines):");
            for l in m.lines() {
                println!("  {l}");
            }
        }
    }
    Ok(Headline {
        p99_ms: prop.as_ref().and_then(|p| pct(&p.samples, 0.99)),
        ingest_per_s: ingest
            .as_ref()
            .map(|i| i.acked as f64 / i.elapsed.as_secs_f64()),
        rss_loaded: prop.as_ref().and_then(|p| p.rss_loaded),
    })
}
