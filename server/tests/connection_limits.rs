//! Connections that never say anything cannot take the relay down: the real binary
//! under a low file descriptor limit keeps answering `/healthz` and the API while more
//! silent sockets than the limit are open, closes them after the header timeout, and
//! refuses a client over its per-address share with a 503 that says why.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, DEADLINE, admin_token, expect_error_and_close, free_port, metric_value, raw};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// The server binary started through `sh` with `ulimit -n` applied first.
struct Limited {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Limited {
    async fn start(data_dir: &Path, nofile: u32, extra: &[&str]) -> Limited {
        let port = free_port();
        let log = data_dir.join("server.log");
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit -n {nofile} && exec \"$0\" \"$@\""))
            .arg(BIN)
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut s = Limited { child, port, log };
        let until = Instant::now() + DEADLINE;
        loop {
            if let Ok(r) = reqwest::get(s.url("/healthz")).await
                && r.status().is_success()
            {
                return s;
            }
            if let Some(status) = s.child.try_wait().unwrap() {
                panic!("server exited with {status}:\n{}", s.log());
            }
            assert!(Instant::now() < until, "not healthy:\n{}", s.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The log without terminal colours.
    fn log(&self) -> String {
        let raw = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }
}

impl Drop for Limited {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- server log ----\n{}", self.log());
        }
    }
}

/// A client that opens a fresh connection per request and gives up after `timeout`.
fn fresh_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// Waits until the server closes `tcp`; returns whether it answered 503 first.
async fn closed_by_server(mut tcp: TcpStream, until: Instant) -> Result<bool, String> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, tcp.read(&mut buf)).await {
            Err(_) => return Err("still open at the deadline".into()),
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(seen.starts_with(b"HTTP/1.1 503")),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_sockets_beyond_the_fd_limit_do_not_stop_health_checks_or_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let token = admin_token(dir.path());
    let s = Limited::start(dir.path(), 256, &["--header-timeout-secs", "2"]).await;
    assert!(
        s.log().contains("max_connections=160"),
        "the budget is the fd limit less the reserve:\n{}",
        s.log()
    );

    let mut silent = Vec::new();
    for _ in 0..300 {
        silent.push(
            TcpStream::connect(("127.0.0.1", s.port))
                .await
                .expect("connect"),
        );
    }
    let opened = Instant::now();

    // With 300 silent sockets held, probes and the API still answer, each in time.
    let http = fresh_client(Duration::from_secs(5));
    for round in 0..3 {
        let started = Instant::now();
        let r = http.get(s.url("/healthz")).send().await;
        let r = r.unwrap_or_else(|e| panic!("round {round}: /healthz failed: {e}"));
        assert_eq!(r.status(), 200, "round {round}");
        let r = http
            .get(s.url("/api/me"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("round {round}: /api/me failed: {e}"));
        assert_eq!(r.status(), 200, "round {round}");
        let r = http.get(s.url("/metrics")).send().await.unwrap();
        assert_eq!(r.status(), 200, "round {round}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    // Every silent socket is closed by the server: pushed out to make room, or at the
    // header timeout (2 s here).
    let until = opened + Duration::from_secs(2) + DEADLINE;
    let closes =
        futures_util::future::join_all(silent.into_iter().map(|tcp| closed_by_server(tcp, until)))
            .await;
    let still_open = closes.iter().filter(|c| c.is_err()).count();
    assert_eq!(still_open, 0, "{still_open} silent sockets never closed");
    let closed_after = opened.elapsed();
    assert!(
        closed_after >= Duration::from_secs(2),
        "the last silent socket closed before the header timeout: {closed_after:?}"
    );

    let metrics = fresh_client(Duration::from_secs(5))
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let timed_out = metric_value(&metrics, "dealersync_errors_total", "header_timeout");
    let evicted = metric_value(&metrics, "dealersync_errors_total", "idle_evicted");
    eprintln!("header_timeout={timed_out} idle_evicted={evicted} closed after {closed_after:?}");
    assert!(timed_out > 0.0, "{metrics}");
    assert!(evicted > 0.0, "{metrics}");
    assert!(!s.log().contains("Too many open files"), "{}", s.log());
}

#[tokio::test]
async fn a_client_over_its_share_gets_a_503_that_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let token = admin_token(dir.path());
    let s = Limited::start(dir.path(), 1024, &["--max-connections-per-ip", "3"]).await;
    let url = format!("ws://127.0.0.1:{}/sync?token={token}", s.port);
    // Three connections in use (joined), the address's whole share.
    let mut held = Vec::new();
    for i in 0..3 {
        held.push(common::Client::connect(&url, &format!("peer-{i}"), None).await);
    }
    let r = fresh_client(Duration::from_secs(5))
        .get(s.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("too many connections from 127.0.0.1"),
        "{body}"
    );
    // One goes, and the address may connect again.
    drop(held.pop());
    let until = Instant::now() + DEADLINE;
    loop {
        let r = fresh_client(Duration::from_secs(5))
            .get(s.url("/healthz"))
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(Instant::now() < until, "the share never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_websocket_that_never_joins_is_closed_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let token = admin_token(dir.path());
    let s = Limited::start(dir.path(), 1024, &["--join-timeout-secs", "1"]).await;
    let mut ws = raw(&format!("ws://127.0.0.1:{}/sync?token={token}", s.port)).await;
    let started = Instant::now();
    let errors = expect_error_and_close(&mut ws).await;
    assert!(
        errors.iter().any(|e| e.contains("no join within 1 s")),
        "{errors:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
}
