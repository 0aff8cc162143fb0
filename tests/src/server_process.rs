//! The relay as a child process: the binary, a free port, start-up, admin commands.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use dealersync_core::protocol::DocumentId;
use tokio::process::{Child, Command};

use crate::{HarnessError, Result, io_err};

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
    pub(crate) bin: PathBuf,
    pub(crate) root: tempfile::TempDir,
    pub(crate) port: u16,
    pub(crate) extra_args: Vec<String>,
    pub(crate) child: Option<Child>,
    pub(crate) starts: u32,
    /// The CA that signed the server's certificate, when it serves TLS.
    pub(crate) tls_ca: Option<PathBuf>,
    pub(crate) start_deadline: Duration,
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

    pub(crate) async fn spawn_and_wait(&mut self) -> Result<()> {
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

pub(crate) fn tail_of_file(path: &Path, max: usize) -> String {
    let mut s = String::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.read_to_string(&mut s);
    }
    tail(&s, max)
}

pub(crate) fn tail(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("...{}", &s[start..])
}
