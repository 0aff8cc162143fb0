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

mod ingest;
mod js_clients;
mod peer;
mod propagation;
mod relay;
mod report;
mod samod_peer;

use ingest::*;
use js_clients::*;
use peer::*;
use propagation::*;
use relay::*;
use report::*;
use samod_peer::*;

/// Which relay the tool measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Target {
    /// dealersync-server (documents created with `doc create`, the admin path).
    Dealersync,
    /// The automerge-repo Node reference server (documents created by a client).
    Node,
}

/// Which automerge-repo implementation the propagation clients run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ClientKind {
    /// The project's own sans-IO engine (what the field CLI runs).
    Engine,
    /// samod 0.16, the Rust automerge-repo, one `Repo` per connection.
    Samod,
    /// The JavaScript automerge-repo 2.5 client (tests/js), one `Repo` per connection,
    /// all in one node process.
    Js,
}

impl ClientKind {
    fn label(self) -> &'static str {
        match self {
            ClientKind::Engine => "engine clients",
            ClientKind::Samod => "samod clients",
            ClientKind::Js => "JS automerge-repo clients",
        }
    }
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
    /// Propagation: the client implementations to run, one run each in this order
    /// (comma-separated), all against the same relay.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "engine")]
    clients: Vec<ClientKind>,
    /// The npm project of the JS clients (`load-clients.mjs`, its `node_modules`
    /// installed with `npm ci`).
    #[arg(long, default_value = "tests/js")]
    js_dir: PathBuf,
    /// Node processes the JS clients are spread over (node runs JavaScript on one
    /// thread; each process owns whole documents).
    #[arg(long, default_value_t = 1)]
    js_processes: usize,
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

/// The headline figures of one relay, for the comparison line.
struct Headline {
    /// Propagation p99 of each client implementation's run.
    p99_ms: Vec<(ClientKind, Option<f64>)>,
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
        for ((kind, ours_p99), (_, node_p99)) in ours.p99_ms.iter().zip(&node.p99_ms) {
            println!(
                "  {:<28} {} vs {} (dealersync / node = {})",
                format!("p99, {}", kind.label()),
                ms(*ours_p99),
                ms(*node_p99),
                ratio(*ours_p99, *node_p99)
            );
        }
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
    let mut props: Vec<(ClientKind, PropagationFigures)> = Vec::new();
    if matches!(cli.scenario, Scenario::All | Scenario::Propagation) {
        for &kind in &cli.clients {
            match run_propagation(&cli, &relay, kind).await {
                Ok(p) => props.push((kind, p)),
                Err(e) => failures.push(format!("propagation with {} failed: {e:#}", kind.label())),
            }
        }
    }
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
    for (kind, p) in &props {
        print_propagation(&cli, *kind, p);
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
    for (kind, p) in &props {
        println!(
            "  {:<28} {}",
            format!("{} docs loaded, {}", cli.docs, kind.label()),
            mib(p.rss_loaded)
        );
        println!(
            "  {:<28} {}",
            format!("after propagation ({})", kind.label()),
            mib(p.rss_after)
        );
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
        p99_ms: props
            .iter()
            .map(|(k, p)| (*k, pct(&p.samples, 0.99)))
            .collect(),
        ingest_per_s: ingest
            .as_ref()
            .map(|i| i.acked as f64 / i.elapsed.as_secs_f64()),
        rss_loaded: props.first().and_then(|(_, p)| p.rss_loaded),
    })
}
