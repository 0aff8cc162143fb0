//! The relay under test: started (dealersync-server or the Node reference server) or
//! reached, its documents created, its memory, CPU and metrics read.

use crate::*;

/// How documents come to exist on the relay.
#[derive(Clone)]
pub(crate) enum DocMaker {
    /// `dealersync-server doc create --data-dir DIR` (the relay's admin path).
    Admin { bin: PathBuf, data_dir: PathBuf },
    /// A client adds the document and syncs it up (what automerge-repo servers allow).
    Client,
}

/// The relay under test.
pub(crate) struct Relay {
    pub(crate) url: String,
    pub(crate) http: Option<String>,
    pub(crate) pid: Option<u32>,
    pub(crate) child: Option<Child>,
    pub(crate) docs: DocMaker,
    pub(crate) _tmp: Option<tempfile::TempDir>,
}

/// Memory and CPU of a process, from /proc.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ProcSample {
    pub(crate) rss_kib: u64,
    pub(crate) cpu_ticks: u64,
}

/// Reads VmRSS and utime+stime (clock ticks, 100 per second on Linux).
pub(crate) fn proc_sample(pid: u32) -> Option<ProcSample> {
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

pub(crate) fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

pub(crate) fn check_loopback(url: &str) -> anyhow::Result<()> {
    let ok = ["ws://127.0.0.1:", "ws://localhost:", "ws://[::1]:"]
        .iter()
        .any(|p| url.starts_with(p));
    if !ok {
        bail!("{url}: the load tool only targets a relay on this machine (ws://127.0.0.1:PORT)");
    }
    Ok(())
}

pub(crate) async fn wait_for_port(
    port: u16,
    child: &mut Child,
    timeout: Duration,
) -> anyhow::Result<()> {
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
    pub(crate) async fn start(cli: &Cli) -> anyhow::Result<Relay> {
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

    pub(crate) fn sample(&self) -> Option<ProcSample> {
        self.pid.and_then(proc_sample)
    }

    /// Creates `n` documents and returns their ids.
    pub(crate) async fn create_docs(
        &self,
        n: usize,
        timeout: Duration,
    ) -> anyhow::Result<Vec<DocumentId>> {
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
    pub(crate) async fn metrics_excerpt(&self) -> Option<String> {
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

    pub(crate) async fn stop(&mut self) {
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
pub(crate) async fn probe(url: &str) -> bool {
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
pub(crate) fn shown(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// Appends `?token=` (browsers' way, accepted by dealersync) when there is a token.
pub(crate) fn with_token(url: &str, token: Option<&str>) -> String {
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
pub(crate) async fn admin_token(bin: &Path, data_dir: &Path) -> anyhow::Result<Option<String>> {
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

pub(crate) fn server_bin(cli: &Cli) -> anyhow::Result<PathBuf> {
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
