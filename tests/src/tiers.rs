//! Relays in tiers for the tests: a head office with a small site tree, downstream
//! relays (`serve --upstream`) started on data directories that share the head
//! office's token secret, and field devices (the `dealersync` CLI on a home of their
//! own).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use dealersync_core::protocol::DocumentId;
use serde_json::Value;
use tokio::process::Command;

use crate::{
    HarnessError, Result, SERVER_START_DEADLINE, ServerProcess, free_port, io_err, server_binary,
    workspace_binary,
};

/// The test network's sites: head office `hq`; distribution centres `dc-north` and
/// `dc-south`; agents `agent-a` (under dc-north) and `agent-s` (under dc-south).
pub const SITES: [(&str, &str, &str, Option<&str>); 5] = [
    ("hq", "Head office", "head_office", None),
    ("dc-north", "North DC", "distribution_centre", Some("hq")),
    ("agent-a", "Agent A", "agent", Some("dc-north")),
    ("dc-south", "South DC", "distribution_centre", Some("hq")),
    ("agent-s", "Agent S", "agent", Some("dc-south")),
];

/// A head office relay with [`SITES`].
pub async fn head_office() -> Result<ServerProcess> {
    let hq = ServerProcess::start().await?;
    for (id, name, kind, parent) in SITES {
        let mut args = vec!["site", "add", "--id", id, "--name", name, "--kind", kind];
        if let Some(p) = parent {
            args.extend(["--parent", p]);
        }
        hq.admin(&args).await?;
    }
    Ok(hq)
}

/// A relay token for `site` issued by `upstream`.
pub async fn relay_token(upstream: &ServerProcess, sub: &str, site: &str) -> Result<String> {
    upstream.token(sub, "relay", site).await
}

/// A downstream relay of `upstream_url` (the head office's, or a fault proxy in front
/// of it) with `token`, on `extra_args`; returned once it verifies `keys_from`'s
/// tokens, i.e. once its trust refresh has fetched every key `keys_from` publishes
/// (the keys reach it over the link, as in the field: it cannot mint them).
pub async fn downstream(
    upstream_url: &str,
    token: &str,
    keys_from: &ServerProcess,
    extra_args: &[&str],
) -> Result<ServerProcess> {
    let root = tempfile::Builder::new()
        .prefix("dealersync-test-")
        .tempdir()
        .map_err(io_err("create a temp dir"))?;
    let data = root.path().join("data");
    std::fs::create_dir(&data).map_err(io_err("create the data dir"))?;
    let mut args: Vec<String> = vec![
        "--upstream".into(),
        upstream_url.into(),
        "--upstream-token".into(),
        token.into(),
    ];
    args.extend(extra_args.iter().map(|s| s.to_string()));
    let mut server = ServerProcess {
        bin: server_binary()?,
        root,
        port: free_port()?,
        extra_args: args,
        child: None,
        starts: 0,
        tls_ca: None,
        start_deadline: SERVER_START_DEADLINE,
    };
    server.spawn_and_wait().await?;
    wait_for_upstream_keys(&server, keys_from, Duration::from_secs(60)).await?;
    Ok(server)
}

/// The key ids `relay` publishes at `/.well-known/jwks.json`.
async fn published_kids(relay: &ServerProcess) -> Result<Vec<String>> {
    let url = format!("{}/.well-known/jwks.json", relay.http_url());
    let bad = |e: String| HarnessError::BadAnswer(url.clone(), e);
    let v: Value = reqwest::Client::new()
        .get(&url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| bad(e.to_string()))?
        .json()
        .await
        .map_err(|e| bad(e.to_string()))?;
    Ok(v["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k["kid"].as_str().map(str::to_string))
        .collect())
}

/// Waits until `downstream` trusts every key `upstream` signs with (its JWKS, which
/// lists the upstream keys it trusts, holds them all).
pub async fn wait_for_upstream_keys(
    downstream: &ServerProcess,
    upstream: &ServerProcess,
    deadline: Duration,
) -> Result<()> {
    let want = published_kids(upstream).await?;
    let until = Instant::now() + deadline;
    loop {
        let have = published_kids(downstream).await.unwrap_or_default();
        if !want.is_empty() && want.iter().all(|k| have.contains(k)) {
            return Ok(());
        }
        if Instant::now() >= until {
            return Err(HarnessError::BadAnswer(
                "/.well-known/jwks.json".into(),
                format!(
                    "the downstream relay never trusted the upstream's keys {want:?} (it has {have:?})"
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET /api/upstream` on a downstream relay, as `token` sees it.
pub async fn upstream_status(relay: &ServerProcess, token: &str) -> Result<Value> {
    get_api(relay, "/api/upstream", token).await
}

/// `GET path` on `relay` with `token`, as JSON.
async fn get_api(relay: &ServerProcess, path: &str, token: &str) -> Result<Value> {
    let url = format!("{}{path}", relay.http_url());
    let bad = |e: String| HarnessError::BadAnswer(url.clone(), e);
    let resp = reqwest::Client::new()
        .get(&url)
        .bearer_auth(token)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| bad(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(bad(format!("status {}", resp.status())));
    }
    resp.json().await.map_err(|e| bad(e.to_string()))
}

/// Waits until `relay` has delivered every change to its upstream: connected, every
/// followed document's count known and zero, for `token`'s documents.
pub async fn wait_drained(relay: &ServerProcess, token: &str, deadline: Duration) -> Result<Value> {
    poll(
        relay,
        "/api/upstream",
        "drained",
        deadline,
        || upstream_status(relay, token),
        |v| {
            v["connected"] == true
                && v["documents"].as_array().is_some_and(|docs| {
                    !docs.is_empty() && docs.iter().all(|d| d["unacknowledged"] == 0)
                })
        },
    )
    .await
}

/// Asks `ask` every 100 ms until its answer is `done`; past `deadline`, fails naming
/// `route`, `what` was awaited, the last answer and the end of `relay`'s log.
async fn poll<T: std::fmt::Debug, F: std::future::Future<Output = Result<T>>>(
    relay: &ServerProcess,
    route: &str,
    what: &str,
    deadline: Duration,
    mut ask: impl FnMut() -> F,
    done: impl Fn(&T) -> bool,
) -> Result<T> {
    let until = Instant::now() + deadline;
    loop {
        let last = ask().await;
        if last.as_ref().is_ok_and(&done) {
            return last;
        }
        if Instant::now() >= until {
            return Err(HarnessError::BadAnswer(
                route.into(),
                format!(
                    "not {what} within {deadline:?}; last: {last:?}; log: {}",
                    relay.log_tail(3000)
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET /api/sites/chains` on `relay` as `token`: `site`'s documents, oldest first, the
/// last its working document (an empty list for a site the relay does not list).
pub async fn site_chain(relay: &ServerProcess, token: &str, site: &str) -> Result<Vec<DocumentId>> {
    let rows = get_api(relay, "/api/sites/chains", token).await?;
    let Some(row) = rows
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["site"] == site)
    else {
        return Ok(Vec::new());
    };
    row["chain"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            c["documentId"]
                .as_str()
                .and_then(|d| d.parse().ok())
                .ok_or_else(|| {
                    HarnessError::BadAnswer(
                        "/api/sites/chains".into(),
                        format!("a chain record without a document id: {c}"),
                    )
                })
        })
        .collect()
}

/// Waits until `relay` lists `site`'s chain with `len` documents (a downstream relay
/// copies head office's after a carry-over), and returns it.
pub async fn wait_chain(
    relay: &ServerProcess,
    token: &str,
    site: &str,
    len: usize,
    deadline: Duration,
) -> Result<Vec<DocumentId>> {
    let what = format!("a chain of {len} for {site}");
    poll(
        relay,
        "/api/sites/chains",
        &what,
        deadline,
        || site_chain(relay, token, site),
        |c| c.len() == len,
    )
    .await
}

/// The field CLI on a device of its own.
pub struct Device {
    home: tempfile::TempDir,
    bin: PathBuf,
}

impl Device {
    /// A device with an empty home.
    pub fn new() -> Result<Device> {
        Ok(Device {
            home: tempfile::Builder::new()
                .prefix("dealersync-device-")
                .tempdir()
                .map_err(io_err("create a device home"))?,
            bin: workspace_binary("dealersync", "DEALERSYNC_CLI_BIN")?,
        })
    }

    /// Runs `dealersync --home H ARGS...`; its stdout, or an error with all output.
    pub async fn run(&self, args: &[&str]) -> Result<String> {
        let out = Command::new(&self.bin)
            .arg("--home")
            .arg(self.home.path())
            .args(args)
            .output()
            .await
            .map_err(io_err("run the field CLI"))?;
        if !out.status.success() {
            return Err(HarnessError::BadAnswer(
                format!("dealersync {}", args.join(" ")),
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs with `--json` and parses the answer.
    pub async fn json(&self, args: &[&str]) -> Result<Value> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.run(&all).await?;
        serde_json::from_str(&out)
            .map_err(|e| HarnessError::BadAnswer(format!("{all:?}"), format!("{e}: {out}")))
    }

    /// `login --server URL --token T`.
    pub async fn login(&self, server: &str, token: &str) -> Result<String> {
        self.run(&["login", "--server", server, "--token", token])
            .await
    }

    /// `login` at `relay`, retried until `deadline` while the relay does not know the
    /// token's site yet (a downstream relay learns its sites from the upstream after
    /// it starts).
    pub async fn login_at(
        &self,
        relay: &ServerProcess,
        token: &str,
        deadline: Duration,
    ) -> Result<String> {
        let until = Instant::now() + deadline;
        loop {
            let last = self.login(&relay.http_url(), token).await;
            if last.is_ok() || Instant::now() >= until {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `sync`, retried until it succeeds or `deadline` passes (a relay may be
    /// restarting, or its upstream link reconnecting).
    pub async fn sync_within(&self, deadline: Duration) -> Result<String> {
        let until = Instant::now() + deadline;
        loop {
            let last = self.run(&["sync", "--timeout", "20"]).await;
            if last.is_ok() || Instant::now() >= until {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The customers of `site`'s document on this device.
    pub async fn customers(&self, site: &str) -> Result<Vec<Value>> {
        let v = self.json(&["--site", site, "customer", "list"]).await?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }
}
