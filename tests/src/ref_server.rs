//! The JS reference sync server (automerge-repo's own), for conformance comparisons.

use std::process::Stdio;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::{
    HarnessError, Result, SERVER_START_DEADLINE, ensure_npm, io_err, js_dir, push_bounded, tail,
};

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
