//! Helpers shared by the cross-crate tests: the real relay as a child process
//! ([`ServerProcess`]) and real JavaScript automerge-repo clients ([`JsClient`]).
//!
//! Everything here drives real components: the `dealersync-server` binary that
//! `cargo test --workspace` builds, and `@automerge/automerge-repo` 2.5 from npm, run
//! with node through the scripted client in `tests/js/client.mjs`. Every wait has a
//! deadline and fails with what was last seen, never a bare timeout. [`browser`]
//! drives Debian's headless Chromium through the board and console.

pub mod browser;
pub mod fault_proxy;
pub mod field;
pub mod tiers;

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use automerge::{Automerge, AutomergeError, ChangeHash, ReadDoc};
use dealersync_core::protocol::memory::MemoryStore;
use dealersync_core::protocol::{
    ConnId, ConnInfo, DocumentId, Engine, EngineConfig, Message, Output, PeerId,
};
use dealersync_core::store::Store;
use dealersync_core::time::now_ms;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Why a harness step failed. Each variant carries what a developer needs to act on
/// it (the missing tool, the server's log tail, the client's stderr).
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// node or npm is not installed; the interop tests need both.
    #[error(
        "`{tool}` is not available ({detail}); the interop tests need Node.js >= 18 and npm on PATH"
    )]
    MissingTool {
        /// The program that could not be run.
        tool: &'static str,
        /// What running it said.
        detail: String,
    },
    /// `npm ci` in tests/js failed; its output is included.
    #[error("`npm ci` in {dir} failed ({status}):\n{output}")]
    NpmInstall {
        /// The npm project directory.
        dir: String,
        /// npm's exit status.
        status: String,
        /// npm's stdout and stderr.
        output: String,
    },
    /// The headless browser is missing or its driver failed.
    #[error("browser: {0}")]
    Chromium(String),
    /// A workspace binary (the server, the field CLI) is not where cargo puts it.
    #[error(
        "binary not found at {path}: build it first (`cargo test --workspace` or `cargo build --workspace`), or point {env} at it"
    )]
    BinaryMissing {
        /// Where it was looked for.
        path: String,
        /// The variable that names another place.
        env: String,
    },
    /// The server exited or never answered /healthz in time.
    #[error("server did not become healthy: {reason}\n--- server log (tail) ---\n{log}")]
    ServerNotHealthy {
        /// What happened instead.
        reason: String,
        /// The end of the server's stdout/stderr.
        log: String,
    },
    /// An admin subcommand of the server binary failed.
    #[error("`dealersync-server {args}` failed ({status}):\n{output}")]
    AdminCommand {
        /// The arguments given.
        args: String,
        /// Its exit status.
        status: String,
        /// Its stdout and stderr.
        output: String,
    },
    /// The JS client answered a command with `ok: false`.
    #[error("JS client {client}: `{cmd}` failed with {kind}: {message}{stderr}")]
    JsCommand {
        /// The client's name.
        client: String,
        /// The command name.
        cmd: String,
        /// The error class the script reports (`timeout`, `unavailable`, ...).
        kind: String,
        /// Its message.
        message: String,
        /// The end of the client's stderr when the failure was a timeout (set
        /// `DEBUG=automerge-repo:*` to have automerge-repo log there).
        stderr: String,
    },
    /// The JS client did not answer in time, or died.
    #[error("JS client {client}: {what}\n--- client stderr (tail) ---\n{stderr}")]
    JsProcess {
        /// The client's name.
        client: String,
        /// What went wrong.
        what: String,
        /// The end of the client's stderr.
        stderr: String,
    },
    /// The Rust engine client failed: no handshake, a closed socket, a missed deadline.
    #[error("Rust client {client}: {what}")]
    RustClient {
        /// The client's name.
        client: String,
        /// What went wrong.
        what: String,
    },
    /// An answer did not have the expected shape.
    #[error("unexpected answer from {0}: {1}")]
    BadAnswer(String, String),
    /// Spawning or talking to a child process failed.
    #[error("{0}: {1}")]
    Io(String, #[source] io::Error),
}

impl HarnessError {
    /// The error class a failed JS command reported (`timeout`, `unavailable`, ...).
    pub fn js_kind(&self) -> Option<&str> {
        match self {
            HarnessError::JsCommand { kind, .. } => Some(kind),
            _ => None,
        }
    }
}

/// Shorthand for harness results.
pub type Result<T, E = HarnessError> = std::result::Result<T, E>;

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> HarnessError {
    let what = what.into();
    move |e| HarnessError::Io(what, e)
}

// ---- npm --------------------------------------------------------------------------

/// The npm project with the scripted client (`tests/js`).
pub fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("js")
}

/// Installs tests/js's npm dependencies exactly as locked (`npm ci`) unless an install
/// of the same package.json and package-lock.json is already there.
///
/// Safe to call from every test: the first call in a process does the work, and a
/// lock file serialises test binaries running in parallel. npm's output is shown only
/// when it fails.
pub fn ensure_npm() -> Result<()> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    ensure_npm_once(&DONE, &js_dir())
}

/// The field app's npm project (`clients/web`): its domain module, build and the
/// browser driver (playwright-core) of the end-to-end test.
pub fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("clients")
        .join("web")
}

/// [`ensure_npm`] for the field app's project, [`web_dir`].
pub fn ensure_web_npm() -> Result<()> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    ensure_npm_once(&DONE, &web_dir())
}

/// Runs [`install_npm`] for `dir` once per process (`done` remembers the outcome).
pub fn ensure_npm_once(done: &OnceLock<Result<(), String>>, dir: &Path) -> Result<()> {
    done.get_or_init(|| install_npm(dir).map_err(|e| e.to_string()))
        .clone()
        .map_err(|msg| HarnessError::NpmInstall {
            dir: dir.display().to_string(),
            status: "earlier attempt in this process".into(),
            output: msg,
        })
}

/// `npm ci` in the npm project `dir`, unless node_modules was installed from the same
/// package.json and package-lock.json.
fn install_npm(dir: &Path) -> Result<()> {
    check_tool("node", &["--version"])?;
    check_tool("npm", &["--version"])?;

    let lock_path = dir.join(".install.lock");
    let lock =
        File::create(&lock_path).map_err(io_err(format!("create {}", lock_path.display())))?;
    lock.lock()
        .map_err(io_err(format!("lock {}", lock_path.display())))?;

    // The stamp is the manifest and lock that node_modules was installed from; any
    // edit to either makes the install stale.
    let wanted = {
        let mut s = fs::read_to_string(dir.join("package.json"))
            .map_err(io_err(format!("read {}/package.json", dir.display())))?;
        s.push_str(
            &fs::read_to_string(dir.join("package-lock.json"))
                .map_err(io_err(format!("read {}/package-lock.json", dir.display())))?,
        );
        s
    };
    let stamp = dir.join("node_modules").join(".dealersync-install-stamp");
    if fs::read_to_string(&stamp).is_ok_and(|have| have == wanted) {
        return Ok(());
    }

    let out = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(io_err("run npm ci"))?;
    if !out.status.success() {
        return Err(HarnessError::NpmInstall {
            dir: dir.display().to_string(),
            status: out.status.to_string(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        });
    }
    fs::write(&stamp, wanted).map_err(io_err(format!("write {}", stamp.display())))?;
    Ok(())
}

fn check_tool(tool: &'static str, args: &[&str]) -> Result<String> {
    let out = std::process::Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| HarnessError::MissingTool {
            tool,
            detail: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(HarnessError::MissingTool {
            tool,
            detail: format!("`{tool} {}` exited with {}", args.join(" "), out.status),
        });
    }
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if tool == "node" {
        let major: u32 = version
            .trim_start_matches('v')
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        if major < 18 {
            return Err(HarnessError::MissingTool {
                tool,
                detail: format!("found {version}, need >= 18"),
            });
        }
    }
    Ok(version)
}

// ---- the server ---------------------------------------------------------------------

/// Where cargo put the `dealersync-server` binary: next to this test executable's
/// directory (`target/<profile>/`), unless DEALERSYNC_SERVER_BIN says otherwise.
pub fn server_binary() -> Result<PathBuf> {
    workspace_binary("dealersync-server", "DEALERSYNC_SERVER_BIN")
}

/// Where cargo put the workspace binary `name` (next to this test executable's
/// directory), unless the environment variable `env` names another file.
pub fn workspace_binary(name: &str, env: &str) -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(HarnessError::BinaryMissing {
                path: p.display().to_string(),
                env: env.into(),
            })
        };
    }
    let exe = std::env::current_exe().map_err(io_err("locate the test executable"))?;
    // Test executables live in target/<profile>/deps/; binaries in target/<profile>/.
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(HarnessError::BinaryMissing {
            path: bin.display().to_string(),
            env: env.into(),
        })
    }
}

/// How long a server gets to answer /healthz after starting.
pub const SERVER_START_DEADLINE: Duration = Duration::from_secs(20);

/// A `dealersync-server serve` child process on a free local port with its own data
/// directory, which outlives kills and restarts. Dropping it kills the server and
/// removes the directory.
pub struct ServerProcess {
    bin: PathBuf,
    root: tempfile::TempDir,
    port: u16,
    extra_args: Vec<String>,
    child: Option<Child>,
    starts: u32,
    /// The CA that signed the server's certificate, when it serves TLS.
    tls_ca: Option<PathBuf>,
    start_deadline: Duration,
}

impl ServerProcess {
    /// Starts a server on an empty data directory and waits until it is healthy.
    pub async fn start() -> Result<Self> {
        Self::start_with_args(&[]).await
    }

    /// Like [`ServerProcess::start`], with extra arguments after `serve`.
    pub async fn start_with_args(extra_args: &[&str]) -> Result<Self> {
        Self::start_inner(extra_args, None, SERVER_START_DEADLINE).await
    }

    /// `serve --demo`: seeds the demo network before it answers, which takes a debug
    /// build on a busy machine well over the usual start deadline.
    pub async fn start_demo() -> Result<Self> {
        Self::start_inner(&["--demo"], None, Duration::from_secs(300)).await
    }

    /// Like [`ServerProcess::start_with_args`], giving the server `deadline` to become
    /// healthy on each start (`--demo` seeds hundreds of records first).
    pub async fn start_within(extra_args: &[&str], deadline: Duration) -> Result<Self> {
        Self::start_inner(extra_args, None, deadline).await
    }

    /// A server serving TLS with `cert` and `key` (`--tls-cert`, `--tls-key`), whose
    /// URLs are `https://` and `wss://`, checked against the CA certificate `ca`.
    pub async fn start_tls(cert: &Path, key: &Path, ca: &Path) -> Result<Self> {
        let (cert, key) = (cert.display().to_string(), key.display().to_string());
        let args = ["--tls-cert", cert.as_str(), "--tls-key", key.as_str()];
        Self::start_inner(&args, Some(ca.to_path_buf()), SERVER_START_DEADLINE).await
    }

    async fn start_inner(
        extra_args: &[&str],
        tls_ca: Option<PathBuf>,
        start_deadline: Duration,
    ) -> Result<Self> {
        let bin = server_binary()?;
        let root = tempfile::Builder::new()
            .prefix("dealersync-test-")
            .tempdir()
            .map_err(io_err("create a temp dir"))?;
        fs::create_dir(root.path().join("data")).map_err(io_err("create the data dir"))?;
        let mut server = ServerProcess {
            bin,
            root,
            port: free_port()?,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            child: None,
            starts: 0,
            tls_ca,
            start_deadline,
        };
        // The free port can be taken by another test between our probe and the
        // server's bind; then it exits at once, and a fresh port is worth a retry.
        for _ in 0..3 {
            match server.spawn_and_wait().await {
                Err(HarnessError::ServerNotHealthy { log, .. })
                    if server.child.is_none() && log.contains("Address already in use") =>
                {
                    server.port = free_port()?;
                }
                other => return other.map(|()| server),
            }
        }
        server.spawn_and_wait().await?;
        Ok(server)
    }

    /// The data directory (kept across restarts).
    pub fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    /// The file the server's stdout and stderr go to.
    pub fn log_path(&self) -> PathBuf {
        self.root.path().join("server.log")
    }

    /// The port it listens on (the same after a restart).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT` (`https://localhost:PORT` with TLS).
    pub fn http_url(&self) -> String {
        match self.tls_ca {
            None => format!("http://127.0.0.1:{}", self.port),
            Some(_) => format!("https://localhost:{}", self.port),
        }
    }

    /// The WebSocket sync endpoint, `ws://127.0.0.1:PORT/sync` (`wss://` with TLS).
    pub fn ws_url(&self) -> String {
        match self.tls_ca {
            None => format!("ws://127.0.0.1:{}/sync", self.port),
            Some(_) => format!("wss://localhost:{}/sync", self.port),
        }
    }

    /// The CA file to trust when the server serves TLS.
    pub fn tls_ca(&self) -> Option<&Path> {
        self.tls_ca.as_deref()
    }

    /// The sync endpoint with a token in the query, as browsers send it.
    pub fn ws_url_with_token(&self, token: &str) -> String {
        format!("{}?token={token}", self.ws_url())
    }

    /// The last `max` bytes of the server's log, for failure messages.
    pub fn log_tail(&self, max: usize) -> String {
        tail_of_file(&self.log_path(), max)
    }

    /// Kills the server with SIGKILL (no graceful shutdown) and reaps it.
    pub async fn kill(&mut self) -> Result<ExitStatus> {
        let mut child = self.child.take().ok_or_else(|| {
            HarnessError::Io(
                "kill the server".into(),
                io::Error::other("the server is not running"),
            )
        })?;
        // tokio's start_kill sends SIGKILL on Unix.
        child.start_kill().map_err(io_err("SIGKILL the server"))?;
        child.wait().await.map_err(io_err("reap the server"))
    }

    /// Starts the server again on the same data directory and port, and waits until
    /// it is healthy.
    pub async fn restart(&mut self) -> Result<()> {
        if self.child.is_some() {
            self.kill().await?;
        }
        self.spawn_and_wait().await
    }

    /// Is the child still running?
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    async fn spawn_and_wait(&mut self) -> Result<()> {
        self.starts += 1;
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(io_err("open the server log"))?;
        use std::io::Write as _;
        let mut header = log.try_clone().map_err(io_err("open the server log"))?;
        let _ = writeln!(header, "=== start #{} ===", self.starts);
        let listen = format!("127.0.0.1:{}", self.port);
        let child = Command::new(&self.bin)
            .arg("serve")
            .arg("--listen")
            .arg(&listen)
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(&self.extra_args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(io_err("open the server log"))?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(io_err(format!("spawn {}", self.bin.display())))?;
        self.child = Some(child);
        self.wait_healthy(self.start_deadline).await
    }

    /// Polls GET /healthz until it answers 200, the process exits, or the deadline.
    pub async fn wait_healthy(&mut self, deadline: Duration) -> Result<()> {
        let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(2));
        if let Some(ca) = &self.tls_ca {
            let pem = fs::read(ca).map_err(io_err("read the test CA"))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| HarnessError::Io("read the test CA".into(), io::Error::other(e)))?;
            builder = builder.add_root_certificate(cert);
        }
        let client = builder
            .build()
            .map_err(|e| HarnessError::Io("build an HTTP client".into(), io::Error::other(e)))?;
        let url = format!("{}/healthz", self.http_url());
        let until = Instant::now() + deadline;
        let mut last;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(HarnessError::ServerNotHealthy {
                    reason: format!("the server exited with {status}"),
                    log: self.log_tail(4000),
                });
            }
            match client.get(&url).send().await {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) => last = format!("/healthz answered {}", r.status()),
                Err(e) => last = e.to_string(),
            }
            if Instant::now() >= until {
                return Err(HarnessError::ServerNotHealthy {
                    reason: format!("no healthy answer within {deadline:?}; last: {last}"),
                    log: self.log_tail(4000),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs an admin subcommand of the server binary on this data directory
    /// (`dealersync-server ARGS... --data-dir D`) and returns its stdout.
    pub async fn admin(&self, args: &[&str]) -> Result<String> {
        run_admin(&self.bin, &self.data_dir(), args).await
    }

    /// Creates an empty document through the admin path and returns its id.
    pub async fn create_document(&self) -> Result<DocumentId> {
        let out = self.admin(&["doc", "create"]).await?;
        out.trim()
            .parse()
            .map_err(|e| HarnessError::BadAnswer("`doc create`".into(), format!("{e}: {out:?}")))
    }

    /// The sync endpoint with an admin token in the query, for tests about sync
    /// rather than access: documents made by `doc create` belong to no site, so only
    /// an admin may sync them. Registers the head office `hq` first if the registry
    /// is empty, since a token names the site of its holder.
    pub async fn admin_ws_url(&self) -> Result<String> {
        if self.admin(&["site", "list"]).await?.trim().is_empty() {
            self.admin(&[
                "site",
                "add",
                "--id",
                "hq",
                "--name",
                "Head office",
                "--kind",
                "head_office",
            ])
            .await?;
        }
        let token = self.token("interop.admin", "admin", "hq").await?;
        Ok(self.ws_url_with_token(&token))
    }

    /// A signed token from `dealersync-server token` (printed alone on stdout).
    pub async fn token(&self, sub: &str, role: &str, site: &str) -> Result<String> {
        let out = self
            .admin(&["token", "--sub", sub, "--role", role, "--site", site])
            .await?;
        Ok(out.trim().to_string())
    }
}

/// Runs `BIN ARGS... --data-dir D`, returning stdout or an error with all output.
pub async fn run_admin(bin: &Path, data_dir: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(bin)
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(io_err(format!("run {}", bin.display())))?;
    if !out.status.success() {
        return Err(HarnessError::AdminCommand {
            args: args.join(" "),
            status: out.status.to_string(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A port nothing listens on right now (the OS picks it; the server binds it next).
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(io_err("find a free port"))?;
    Ok(l.local_addr().map_err(io_err("find a free port"))?.port())
}

fn tail_of_file(path: &Path, max: usize) -> String {
    let mut s = String::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.read_to_string(&mut s);
    }
    tail(&s, max)
}

fn tail(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("...{}", &s[start..])
}

// ---- the JS client ------------------------------------------------------------------

/// The state of one document as a client holds it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocSnapshot {
    /// The bare automerge-repo id.
    pub document_id: String,
    /// Hex change hashes, as `automerge::ChangeHash` prints them.
    pub heads: Vec<String>,
    /// The document as plain JSON (scalar strings and texts both as strings, counters
    /// as numbers).
    pub doc: Value,
}

impl DocSnapshot {
    /// The `automerge:<id>` URL.
    pub fn url(&self) -> String {
        format!("automerge:{}", self.document_id)
    }

    /// The heads, sorted, for comparing replicas.
    pub fn sorted_heads(&self) -> Vec<String> {
        let mut h = self.heads.clone();
        h.sort();
        h
    }
}

type Waiting = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// A node process running `tests/js/client.mjs`: a real automerge-repo 2.5 `Repo` with
/// the stock WebSocket client adapter, driven by JSON commands (see tests/js/README.md).
///
/// Commands may run concurrently on one client (each waits for its own answer).
/// Dropping the client kills the process.
pub struct JsClient {
    name: String,
    child: Child,
    stdin: tokio::sync::Mutex<ChildStdin>,
    waiting: Waiting,
    stderr: Arc<Mutex<String>>,
    next_id: AtomicU64,
}

/// Slack added to a command's own deadline before the Rust side gives up on an answer.
const ANSWER_SLACK: Duration = Duration::from_secs(5);

impl JsClient {
    /// Starts a client that connects to `url` (e.g. [`ServerProcess::ws_url`]).
    pub async fn spawn(name: &str, url: &str) -> Result<Self> {
        Self::spawn_with(name, json!({ "url": url })).await
    }

    /// Starts a client with a full config object: `url`, and optionally `peerId` and
    /// `retryMs` (how soon the adapter reconnects after losing the server).
    pub async fn spawn_with(name: &str, mut config: Value) -> Result<Self> {
        ensure_npm()?;
        config["name"] = json!(name);
        Self::spawn_script(name, &js_dir(), "client.mjs", &config)
    }

    /// Starts `node SCRIPT CONFIG` in `dir`: any script that answers one JSON line per
    /// command line with the same `id` (`ok`, `error`, `message`), as client.mjs does.
    /// The caller has installed the script's npm packages.
    pub fn spawn_script(name: &str, dir: &Path, script: &str, config: &Value) -> Result<Self> {
        let mut node = Command::new("node");
        // A relay serving TLS with a test CA: node trusts it through its own variable.
        if let Some(ca) = config.get("caFile").and_then(Value::as_str) {
            node.env("NODE_EXTRA_CA_CERTS", ca);
        }
        let mut child = node
            .arg(script)
            .arg(config.to_string())
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(io_err(format!("spawn node {script}")))?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr_pipe = child.stderr.take().expect("piped stderr");

        let waiting: Waiting = Arc::default();
        let stderr = Arc::new(Mutex::new(String::new()));

        let w = waiting.clone();
        let err_buf = stderr.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    push_bounded(&err_buf, &format!("[stdout, not JSON] {line}\n"));
                    continue;
                };
                let Some(id) = v.get("id").and_then(Value::as_u64) else {
                    push_bounded(&err_buf, &format!("[stdout, no id] {line}\n"));
                    continue;
                };
                if let Some(tx) = w.lock().expect("waiting lock").remove(&id) {
                    let _ = tx.send(v);
                }
            }
            // The process is gone: fail every command still waiting.
            w.lock().expect("waiting lock").clear();
        });
        let err_buf = stderr.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr_pipe).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                push_bounded(&err_buf, &format!("{line}\n"));
            }
        });

        Ok(JsClient {
            name: name.to_string(),
            child,
            stdin: tokio::sync::Mutex::new(stdin),
            waiting,
            stderr,
            next_id: AtomicU64::new(1),
        })
    }

    /// The client's name (in its log lines and errors).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The end of the client's stderr.
    pub fn stderr_tail(&self) -> String {
        tail(&self.stderr.lock().expect("stderr lock"), 4000)
    }

    fn process_error(&self, what: String) -> HarnessError {
        HarnessError::JsProcess {
            client: self.name.clone(),
            what,
            stderr: self.stderr_tail(),
        }
    }

    /// Sends one command and waits for its answer; `ok: false` answers are errors.
    /// The command's own `timeoutMs` bounds the wait, plus some slack.
    pub async fn call(&self, mut cmd: Value) -> Result<Value> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        cmd["id"] = json!(id);
        let name = cmd["cmd"].as_str().unwrap_or("?").to_string();
        let budget = cmd["timeoutMs"]
            .as_u64()
            .map(Duration::from_millis)
            .unwrap_or(Duration::from_secs(10))
            + ANSWER_SLACK;

        let (tx, rx) = oneshot::channel();
        self.waiting.lock().expect("waiting lock").insert(id, tx);
        let mut line = cmd.to_string();
        line.push('\n');
        {
            let mut stdin = self.stdin.lock().await;
            if let Err(e) = stdin.write_all(line.as_bytes()).await {
                return Err(self.process_error(format!("could not send `{name}`: {e}")));
            }
            let _ = stdin.flush().await;
        }
        let answer = match tokio::time::timeout(budget, rx).await {
            Ok(Ok(v)) => v,
            Ok(Err(_)) => {
                return Err(self.process_error(format!("exited before answering `{name}`")));
            }
            Err(_) => {
                self.waiting.lock().expect("waiting lock").remove(&id);
                return Err(self.process_error(format!("no answer to `{name}` within {budget:?}")));
            }
        };
        if answer["ok"].as_bool() == Some(true) {
            Ok(answer)
        } else {
            let kind = answer["error"].as_str().unwrap_or("?").to_string();
            let stderr = if kind == "timeout" {
                format!("\n--- client stderr (tail) ---\n{}", self.stderr_tail())
            } else {
                String::new()
            };
            Err(HarnessError::JsCommand {
                client: self.name.clone(),
                cmd: name,
                kind,
                message: answer["message"].as_str().unwrap_or("").to_string(),
                stderr,
            })
        }
    }

    async fn snapshot(&self, cmd: Value) -> Result<DocSnapshot> {
        let answer = self.call(cmd).await?;
        serde_json::from_value(answer.clone())
            .map_err(|e| HarnessError::BadAnswer(self.name.clone(), format!("{e}: {answer}")))
    }

    /// Creates a document on this client (the relay learns it when the client
    /// announces it). Strings in `value` are stored as scalar strings.
    pub async fn create(&self, value: Value) -> Result<DocSnapshot> {
        self.snapshot(json!({"cmd": "create", "value": value}))
            .await
    }

    /// `repo.find`s a document, waiting up to `timeout` for it to become ready.
    /// A document the server does not have (or denies) fails with kind `unavailable`.
    pub async fn find(&self, doc: &str, timeout: Duration) -> Result<DocSnapshot> {
        self.snapshot(json!({"cmd": "find", "doc": doc, "timeoutMs": ms(timeout)}))
            .await
    }

    /// Applies `ops` in one change: `{"op":"set","path":[..],"value":V}`,
    /// `{"op":"delete","path":[..]}`, `{"op":"increment","path":[..],"by":N}`.
    /// Values: strings become scalar strings; `{"$text":s}`, `{"$counter":n}`,
    /// `{"$timestamp":ms}` and `{"$bytes":hex}` ask for the other automerge types.
    pub async fn change(&self, doc: &str, ops: Value) -> Result<DocSnapshot> {
        self.snapshot(json!({"cmd": "change", "doc": doc, "ops": ops}))
            .await
    }

    /// Sets one value (see [`JsClient::change`]).
    pub async fn set(&self, doc: &str, path: &[&str], value: Value) -> Result<DocSnapshot> {
        self.change(doc, json!([{"op": "set", "path": path, "value": value}]))
            .await
    }

    /// Waits until the value at `path` equals `value` (as plain JSON).
    pub async fn wait_value(
        &self,
        doc: &str,
        path: &[&str],
        value: Value,
        timeout: Duration,
    ) -> Result<DocSnapshot> {
        self.snapshot(json!({
            "cmd": "wait", "doc": doc, "path": path, "value": value, "timeoutMs": ms(timeout)
        }))
        .await
    }

    /// Waits until the document contains every change in `heads` (hex hashes).
    pub async fn wait_heads(
        &self,
        doc: &str,
        heads: &[String],
        timeout: Duration,
    ) -> Result<DocSnapshot> {
        self.snapshot(json!({
            "cmd": "wait", "doc": doc, "heads": heads, "timeoutMs": ms(timeout)
        }))
        .await
    }

    /// Waits until the server has advertised heads that include this client's current
    /// heads: the moment a user would believe the edit is saved.
    pub async fn acked(&self, doc: &str, timeout: Duration) -> Result<Value> {
        self.call(json!({"cmd": "acked", "doc": doc, "timeoutMs": ms(timeout)}))
            .await
    }

    /// Waits until the socket has opened `opens` times in total (1 = first connect,
    /// 2 = after one reconnect).
    pub async fn connected(&self, opens: u64, timeout: Duration) -> Result<Value> {
        self.call(json!({"cmd": "connected", "opens": opens, "timeoutMs": ms(timeout)}))
            .await
    }

    /// What the client has seen: message counts by type (`received`), `error` frames'
    /// messages (`errors`), socket closes, and the document if `doc` is given and known.
    pub async fn state(&self, doc: Option<&str>) -> Result<Value> {
        let mut cmd = json!({"cmd": "state"});
        if let Some(d) = doc {
            cmd["doc"] = json!(d);
        }
        self.call(cmd).await
    }

    /// Asks the client to shut its repo down and exit, and waits for it.
    pub async fn close(mut self) -> Result<ExitStatus> {
        // Its exit status reflects every command it failed; the answer itself is ok.
        let _ = self.call(json!({"cmd": "close"})).await;
        match tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await {
            Ok(r) => r.map_err(io_err("wait for node")),
            Err(_) => Err(self.process_error("did not exit within 10 s of `close`".into())),
        }
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis().try_into().unwrap_or(u64::MAX)
}

fn push_bounded(buf: &Mutex<String>, s: &str) {
    const MAX: usize = 64 * 1024;
    let mut b = buf.lock().expect("buffer lock");
    b.push_str(s);
    if b.len() > MAX {
        let cut = b.len() - MAX / 2;
        let cut = (cut..b.len())
            .find(|&i| b.is_char_boundary(i))
            .unwrap_or(b.len());
        b.drain(..cut);
    }
}

// ---- the JS reference server --------------------------------------------------------

/// The automerge-repo reference server (`tests/js/ref-server.mjs`: the stock
/// NodeWSServerAdapter), to check the JS client against the protocol's own
/// implementation and to compare behaviour with dealersync's relay.
pub struct RefServer {
    child: Child,
    port: u16,
    _stderr: Arc<Mutex<String>>,
}

impl RefServer {
    /// Starts it on a free port (in memory, no storage, the share policy of
    /// automerge-repo's example sync server) and waits until it listens.
    pub async fn start() -> Result<Self> {
        Self::start_with_args(&[]).await
    }

    /// Like [`RefServer::start`] with more arguments for ref-server.mjs
    /// (`--share-policy all`, `--data-dir D`).
    pub async fn start_with_args(args: &[&str]) -> Result<Self> {
        ensure_npm()?;
        let mut child = Command::new("node")
            .args(["ref-server.mjs", "--port", "0"])
            .args(args)
            .current_dir(js_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(io_err("spawn node ref-server.mjs"))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr_pipe = child.stderr.take().expect("piped stderr");
        let stderr = Arc::new(Mutex::new(String::new()));
        let buf = stderr.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr_pipe).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                push_bounded(&buf, &format!("{line}\n"));
            }
        });
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(SERVER_START_DEADLINE, lines.next_line()).await;
        let line = match first {
            Ok(Ok(Some(line))) => line,
            other => {
                return Err(HarnessError::ServerNotHealthy {
                    reason: format!("ref-server.mjs printed no port: {other:?}"),
                    log: tail(&stderr.lock().expect("stderr lock"), 4000),
                });
            }
        };
        let port = serde_json::from_str::<Value>(&line)
            .ok()
            .and_then(|v| v["port"].as_u64())
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| HarnessError::BadAnswer("ref-server.mjs".into(), line.clone()))?;
        Ok(RefServer {
            child,
            port,
            _stderr: stderr,
        })
    }

    /// `ws://127.0.0.1:PORT/sync`.
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/sync", self.port)
    }

    /// Kills it with SIGKILL.
    pub async fn kill(&mut self) -> Result<()> {
        self.child.start_kill().map_err(io_err("kill ref-server"))?;
        self.child.wait().await.map_err(io_err("reap ref-server"))?;
        Ok(())
    }
}

// ---- the Rust engine client ---------------------------------------------------------

/// The one connection a [`RustClient`] has.
const RUST_CONN: ConnId = ConnId(1);

/// A peer built on dealersync's own sync engine (`dealersync_core::protocol::engine`,
/// the code the field client uses) with an in-memory store, speaking to a server over
/// a real WebSocket (tokio-tungstenite).
///
/// The client is driven inline: every `wait_*` call reads frames, feeds them to the
/// engine, commits its write batches and sends what the engine says, until its
/// condition holds or its deadline passes.
pub struct RustClient {
    name: String,
    engine: Engine,
    store: MemoryStore,
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    ready: bool,
    closed: Option<String>,
    errors: Vec<String>,
    unavailable: HashSet<DocumentId>,
    server_peer: Option<PeerId>,
}

impl RustClient {
    /// Connects to `url`, sends `join` and waits for the server's `peer`.
    pub async fn connect(name: &str, url: &str, deadline: Duration) -> Result<Self> {
        Self::connect_with_headers(name, url, &[], deadline).await
    }

    /// Like [`RustClient::connect`], with extra HTTP headers on the upgrade request
    /// (`Authorization: Bearer T`, `Sec-WebSocket-Protocol`).
    pub async fn connect_with_headers(
        name: &str,
        url: &str,
        headers: &[(&str, &str)],
        deadline: Duration,
    ) -> Result<Self> {
        let bad = |what: String| HarnessError::RustClient {
            client: name.into(),
            what,
        };
        let mut request = url
            .into_client_request()
            .map_err(|e| bad(format!("bad URL {url}: {e}")))?;
        for (k, v) in headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| bad(format!("bad header name {k}: {e}")))?;
            let value =
                HeaderValue::from_str(v).map_err(|e| bad(format!("bad header {k}: {e}")))?;
            request.headers_mut().insert(name, value);
        }
        let (ws, _) = tokio::time::timeout(deadline, tokio_tungstenite::connect_async(request))
            .await
            .map_err(|_| HarnessError::RustClient {
                client: name.into(),
                what: format!("no WebSocket connection to {url} within {deadline:?}"),
            })?
            .map_err(|e| HarnessError::RustClient {
                client: name.into(),
                what: format!("WebSocket connection to {url} failed: {e}"),
            })?;
        let mut engine = Engine::new(
            PeerId(format!("rust-{name}-{}", rand::random::<u32>())),
            EngineConfig {
                limits: dealersync_core::protocol::SyncLimits::unlimited(),
                ..EngineConfig::default()
            },
        );
        let join = engine.connect_to_server(RUST_CONN, ConnInfo::full_access());
        let mut client = RustClient {
            name: name.into(),
            engine,
            store: MemoryStore::new(),
            ws,
            ready: false,
            closed: None,
            errors: Vec::new(),
            unavailable: HashSet::new(),
            server_peer: None,
        };
        client.handle(join).await?;
        client
            .pump_until("the server's `peer` answer", deadline, |c| c.ready)
            .await?;
        Ok(client)
    }

    /// Starts syncing a document and waits until the server has sent it (it has
    /// heads). A document the server does not have or denies fails with the
    /// `doc-unavailable` it answered.
    pub async fn open(&mut self, doc: &DocumentId, deadline: Duration) -> Result<()> {
        let outs = self
            .engine
            .open(*doc, &self.store)
            .map_err(|e| self.fail(format!("open {doc}: {e}")))?;
        self.handle(outs).await?;
        let d = *doc;
        self.pump_until(&format!("document {doc}"), deadline, move |c| {
            c.unavailable.contains(&d)
                || c.engine
                    .document(&d)
                    .is_some_and(|am| !am.get_heads().is_empty())
        })
        .await?;
        if self.unavailable.contains(doc) {
            return Err(self.fail(format!("the server answered doc-unavailable for {doc}")));
        }
        Ok(())
    }

    /// Makes one local change (one automerge transaction), commits it to the client's
    /// store and sends it. Returns the new heads.
    pub async fn change<F>(&mut self, doc: &DocumentId, edit: F) -> Result<Vec<ChangeHash>>
    where
        F: FnOnce(&mut automerge::transaction::Transaction<'_>) -> Result<(), AutomergeError>,
    {
        let Some(am) = self.engine.document_mut(doc) else {
            return Err(self.fail(format!("change: {doc} is not open")));
        };
        let result = am.transact(|tx| edit(tx)).map(|_| am.get_heads());
        let heads =
            result.map_err(|f| self.fail(format!("change to {doc} failed: {}", f.error)))?;
        self.engine
            .local_change(doc)
            .map_err(|e| self.fail(format!("local_change: {e}")))?;
        self.commit_and_send().await?;
        Ok(heads)
    }

    /// The document as the client holds it (including uncommitted local changes).
    pub fn document(&self, doc: &DocumentId) -> Option<&Automerge> {
        self.engine.document(doc)
    }

    /// The document as plain JSON (automerge's own serde view), comparable with what
    /// [`JsClient`] reports.
    pub fn document_json(&self, doc: &DocumentId) -> Option<Value> {
        self.engine
            .document(doc)
            .and_then(|am| serde_json::to_value(automerge::AutoSerde::from(am)).ok())
    }

    /// The document's heads as hex strings, sorted.
    pub fn heads(&self, doc: &DocumentId) -> Vec<String> {
        let mut h: Vec<String> = self
            .engine
            .document(doc)
            .map(|am| am.get_heads().iter().map(|h| h.to_string()).collect())
            .unwrap_or_default();
        h.sort();
        h
    }

    /// `error` messages the server sent.
    pub fn errors(&self) -> &[String] {
        &self.errors
    }

    /// Why the connection ended, if it has.
    pub fn closed(&self) -> Option<&str> {
        self.closed.as_deref()
    }

    /// Whether the server answered `doc-unavailable` for the document.
    pub fn is_unavailable(&self, doc: &DocumentId) -> bool {
        self.unavailable.contains(doc)
    }

    /// Waits until the document contains every change in `heads` (hex hashes).
    pub async fn wait_heads(
        &mut self,
        doc: &DocumentId,
        heads: &[String],
        deadline: Duration,
    ) -> Result<()> {
        let wanted: Vec<ChangeHash> = heads
            .iter()
            .map(|h| h.parse())
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| HarnessError::BadAnswer(self.name.clone(), format!("heads: {e}")))?;
        let d = *doc;
        self.pump_until(&format!("changes {heads:?} in {doc}"), deadline, move |c| {
            c.engine
                .document(&d)
                .is_some_and(|am| wanted.iter().all(|h| am.get_change_by_hash(h).is_some()))
        })
        .await
    }

    /// Waits until the server has acknowledged everything this client has: the
    /// server's advertised heads equal ours.
    pub async fn wait_synced(&mut self, doc: &DocumentId, deadline: Duration) -> Result<()> {
        let d = *doc;
        self.pump_until(
            &format!("{doc} in sync with the server"),
            deadline,
            move |c| c.engine.is_synced(&d, RUST_CONN),
        )
        .await
    }

    /// Reads and handles frames until `cond` holds, failing at the deadline, when the
    /// socket closes, or if the server sends `error`.
    pub async fn pump_until(
        &mut self,
        what: &str,
        deadline: Duration,
        mut cond: impl FnMut(&RustClient) -> bool,
    ) -> Result<()> {
        let until = Instant::now() + deadline;
        loop {
            self.commit_and_send().await?;
            if cond(self) {
                return Ok(());
            }
            if let Some(why) = &self.closed {
                return Err(self.fail(format!("waiting for {what}: connection closed ({why})")));
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.fail(format!("no {what} within {deadline:?}")));
            }
            match tokio::time::timeout(left, self.ws.next()).await {
                Err(_) => continue, // the deadline check above reports it
                Ok(read) => self.receive(read).await?,
            }
        }
    }

    /// Handles the frames that have already arrived, without waiting for more: what a
    /// client writing many changes in a row does between them, so that the server's
    /// answers do not pile up unread (a relay closes a connection that does not read
    /// its socket within its write timeout).
    pub async fn pump_ready(&mut self) -> Result<()> {
        loop {
            self.commit_and_send().await?;
            if self.closed.is_some() {
                return Ok(());
            }
            match futures_util::FutureExt::now_or_never(self.ws.next()) {
                None => return Ok(()),
                Some(read) => self.receive(read).await?,
            }
        }
    }

    /// One read from the socket: a frame goes to the engine, an end is remembered.
    async fn receive(
        &mut self,
        read: Option<Result<WsMessage, tokio_tungstenite::tungstenite::Error>>,
    ) -> Result<()> {
        match read {
            None => self.closed = Some("the socket ended".into()),
            Some(Err(e)) => self.closed = Some(format!("socket error: {e}")),
            Some(Ok(WsMessage::Binary(frame))) => {
                match Message::decode(&frame) {
                    Ok(Message::Error { message, .. }) => self.errors.push(message),
                    Ok(Message::Peer { sender_id, .. }) => self.server_peer = Some(sender_id),
                    _ => {}
                }
                let outs = self
                    .engine
                    .receive(RUST_CONN, &frame, now_ms(), &self.store);
                self.handle(outs).await?;
            }
            Some(Ok(WsMessage::Close(frame))) => {
                self.closed = Some(format!("closed by the server: {frame:?}"));
            }
            // Pings are answered by tungstenite on the next read; text frames are
            // not part of the protocol.
            Some(Ok(_)) => {}
        }
        Ok(())
    }

    /// Sends a hand-made automerge sync message for `doc` to the server, bypassing
    /// the engine: how a test plays a client that ignores the server's READ_ONLY flag
    /// (automerge itself never sends changes to a peer that advertised it) or pushes
    /// changes for a document it was refused.
    pub async fn send_sync_message(
        &mut self,
        doc: &DocumentId,
        message: automerge::sync::Message,
    ) -> Result<()> {
        let server = self
            .server_peer
            .clone()
            .ok_or_else(|| self.fail("no `peer` answer from the server yet".into()))?;
        let frame = Message::Sync {
            sender_id: self.engine.peer_id().clone(),
            target_id: server,
            document_id: *doc,
            data: message.encode(),
        }
        .encode();
        self.ws
            .send(WsMessage::Binary(frame.into()))
            .await
            .map_err(|e| self.fail(format!("send a sync message for {doc}: {e}")))
    }

    /// Closes the WebSocket politely.
    pub async fn close(mut self) -> Result<()> {
        self.engine.disconnect(RUST_CONN);
        let _ = self.ws.close(None).await;
        Ok(())
    }

    fn fail(&self, what: String) -> HarnessError {
        let errors = if self.errors.is_empty() {
            String::new()
        } else {
            format!(" (server errors: {:?})", self.errors)
        };
        HarnessError::RustClient {
            client: self.name.clone(),
            what: format!("{what}{errors}"),
        }
    }

    async fn commit_and_send(&mut self) -> Result<()> {
        while let Some((token, batch)) = self.engine.take_write_batch() {
            let outs = match self.store.commit(&batch) {
                Ok(()) => self.engine.commit_succeeded(token, now_ms(), &self.store),
                Err(e) => self.engine.commit_failed(token, &e, now_ms(), &self.store),
            };
            self.handle(outs).await?;
        }
        Ok(())
    }

    async fn handle(&mut self, outs: Vec<Output>) -> Result<()> {
        for o in outs {
            match o {
                Output::Send { bytes, .. } => {
                    if self.closed.is_none()
                        && let Err(e) = self.ws.send(WsMessage::Binary(bytes.into())).await
                    {
                        self.closed = Some(format!("send failed: {e}"));
                    }
                }
                Output::Close { reason, .. } => {
                    let _ = self.ws.close(None).await;
                    self.closed = Some(format!("closed by our engine: {reason}"));
                }
                Output::PeerReady { .. } => self.ready = true,
                Output::DocumentUnavailable { doc, .. } => {
                    self.unavailable.insert(doc);
                }
                _ => {}
            }
        }
        Ok(())
    }
}
