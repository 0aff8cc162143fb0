//! Propagation with the stock JavaScript automerge-repo client: `tests/js/load-clients.mjs`
//! in node, one `Repo` per connection. Node runs JavaScript on one thread, so the
//! clients are spread over `--js-processes` node processes, each owning whole
//! documents: every latency is measured within one process, on one clock.

use tokio::io::AsyncWriteExt;

use crate::*;

/// What one node process reports at the end (latencies in µs).
#[derive(serde::Deserialize)]
struct NodeResult {
    written: u64,
    missing: u64,
    latencies: Vec<u32>,
    timeline: Vec<(i64, u32)>,
    errors: Vec<String>,
}

/// One node process of the run, with its stdout lines.
struct NodeClients {
    child: Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl NodeClients {
    /// The next JSON line, waiting at most until `deadline`.
    async fn line(&mut self, deadline: TokioInstant) -> anyhow::Result<serde_json::Value> {
        let line = tokio::time::timeout_at(deadline, self.lines.next_line())
            .await
            .context("the node clients did not answer in time")??
            .context("the node clients exited (their log is in the run's temp dir)")?;
        serde_json::from_str(&line).with_context(|| format!("node printed {line:?}"))
    }
}

/// Runs the propagation load with JS clients on `docs`; same figures as the Rust
/// clients' run.
pub(crate) async fn run_js_propagation(
    cli: &Cli,
    relay: &Relay,
    docs: &[DocumentId],
) -> anyhow::Result<PropagationFigures> {
    let script = cli.js_dir.join("load-clients.mjs");
    if !cli.js_dir.join("node_modules").exists() {
        bail!(
            "{}: run `npm ci` there first (the stock client's modules)",
            cli.js_dir.display()
        );
    }
    let setup_timeout = Duration::from_secs_f64(cli.setup_timeout);
    let deadline = TokioInstant::now() + setup_timeout;
    let conns_total = docs.len() * cli.conns_per_doc;
    let processes = cli.js_processes.clamp(1, docs.len().max(1));
    let per = docs.len().div_ceil(processes);
    let log = tempfile::Builder::new()
        .prefix("dealersync-load-js-")
        .tempfile()?;
    eprintln!(
        "propagation: {conns_total} JS clients in {processes} node process(es), log {}",
        log.path().display()
    );
    let mut nodes = Vec::new();
    for (i, chunk) in docs.chunks(per).enumerate() {
        let config = serde_json::json!({
            "url": relay.url,
            "docs": chunk.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
            "connsPerDoc": cli.conns_per_doc,
            "rate": cli.rate,
            "totalConns": conns_total,
            "firstConn": i * per * cli.conns_per_doc,
            "durationMs": cli.duration * 1000.0,
            "drainMs": cli.drain * 1000.0,
            "setupMs": cli.setup_timeout * 1000.0,
        });
        let mut child = Command::new("node")
            .arg(&script)
            .arg(config.to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(log.reopen()?)
            .kill_on_drop(true)
            .spawn()
            .context("cannot start node")?;
        let stdout = child.stdout.take().context("no stdout")?;
        nodes.push(NodeClients {
            child,
            lines: tokio::io::BufReader::new(stdout).lines(),
        });
    }
    let mut setup_errors = Vec::new();
    for n in &mut nodes {
        let ready = n.line(deadline).await?;
        let retries = ready["setupRetries"].as_u64().unwrap_or(0);
        if retries > 0 {
            eprintln!(
                "propagation: {retries} JS finds gave up before their socket had a peer and were tried again"
            );
        }
        if ready["failed"].as_u64().unwrap_or(0) > 0 {
            setup_errors.push(format!(
                "{} JS clients failed to set up, first: {}",
                ready["failed"], ready["firstError"]
            ));
        }
    }
    for e in &setup_errors {
        eprintln!("propagation: {e}");
    }
    let rss_loaded = relay.sample();
    eprintln!("propagation: {} s at {} changes/s", cli.duration, cli.rate);
    for n in &mut nodes {
        let stdin = n.child.stdin.as_mut().context("no stdin")?;
        stdin.write_all(b"start\n").await?;
        stdin.flush().await?;
    }
    let end =
        TokioInstant::now() + Duration::from_secs_f64(cli.duration + cli.drain) + setup_timeout;
    let mut fig = PropagationFigures {
        samples: Vec::new(),
        timeline: Vec::new(),
        written: 0,
        expected: 0,
        missing: 0,
        elapsed: Duration::from_secs_f64(cli.duration),
        errors: setup_errors,
        rss_loaded,
        rss_after: None,
        cpu_before_run: rss_loaded,
    };
    for n in &mut nodes {
        let v = n.line(end).await?;
        let r: NodeResult =
            serde_json::from_value(v["result"].clone()).context("the node clients' result")?;
        fig.samples.extend(r.latencies);
        fig.timeline.extend(r.timeline);
        fig.written += r.written;
        fig.missing += r.missing;
        fig.errors.extend(r.errors);
    }
    for mut n in nodes {
        if tokio::time::timeout(Duration::from_secs(10), n.child.wait())
            .await
            .is_err()
        {
            let _ = n.child.kill().await;
        }
    }
    fig.expected = fig.written * (cli.conns_per_doc as u64 - 1);
    fig.samples.sort_unstable();
    fig.rss_after = relay.sample();
    Ok(fig)
}
