//! A real automerge-repo client in node, scripted over stdin and stdout.

use std::collections::HashMap;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::oneshot;

use crate::{HarnessError, Result, ensure_npm, io_err, js_dir, tail};

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

pub(crate) type Waiting = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

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
pub(crate) const ANSWER_SLACK: Duration = Duration::from_secs(5);

impl JsClient {
    /// Starts a client that connects to `url` (e.g. [`crate::ServerProcess::ws_url`]).
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

pub(crate) fn ms(d: Duration) -> u64 {
    d.as_millis().try_into().unwrap_or(u64::MAX)
}

pub(crate) fn push_bounded(buf: &Mutex<String>, s: &str) {
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
