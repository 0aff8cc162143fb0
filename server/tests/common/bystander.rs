//! A relay with two agent sites and a bystander that keeps making round trips on its
//! own document while a test does something heavy or hostile on another: the
//! harness of `attacks.rs` (issue 8) and `shards.rs` (the engine shards).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use automerge::ChangeHash;
use dealersync_core::protocol::DocumentId;
use dealersync_server::relay::shard_of;

use super::*;

/// The longest one bystander round trip may take while an attack runs: generous for a
/// busy 2-core machine running a debug build with two of these tests at once (growing
/// a document to 12 MiB in 1 MB changes measured 1.3 s worst alone, 2.5 s beside other
/// builds); before the fixes the attacks held the bystander 4.7 s to over 40 s.
/// The benchmark (`stall_figures`) measures the figures; this only catches a stall.
pub const WORST_BOUND: Duration = Duration::from_secs(4);
/// How long one bystander round trip may take at all before the bystander gives up.
pub const ROUND_DEADLINE: Duration = Duration::from_secs(10);

/// Runs a subcommand of the binary and returns its trimmed stdout.
pub fn bin(dir: &std::path::Path, args: &[&str]) -> String {
    run_bin(args, dir).trim().to_string()
}

/// A relay with head office, two agents (`agent-a` attacked, another the
/// bystander's) and a consultant token for each.
pub struct Net {
    /// Dropped before the directory, so that a failing test can print its log.
    pub server: Server,
    /// The attacker's own site document: it may read and write it.
    pub target: DocumentId,
    /// The bystander's site document.
    pub other: DocumentId,
    /// A consultant of agent-a.
    pub attacker: String,
    /// A consultant of the bystander's agent.
    pub bystander: String,
    /// For the admin API.
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Net {
    /// The relay with `extra` arguments; the bystander's site is `agent-b`.
    pub async fn start(extra: &[&str]) -> Net {
        Net::start_sharded(extra, None).await
    }

    /// With `Some(n)`, the relay runs `n` engine shards and the bystander's site is the
    /// first of `agent-b`, `agent-c`, … whose document lives on another shard than
    /// the attacker's (with one shard, `agent-b`).
    pub async fn start_sharded(extra: &[&str], shards: Option<usize>) -> Net {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        admin_token(d); // registers head office
        let add = |site: &str| {
            bin(
                d,
                &[
                    "site", "add", "--id", site, "--name", site, "--kind", "agent", "--parent",
                    "hq",
                ],
            );
        };
        add("agent-a");
        let doc_of = |site: &str| -> DocumentId {
            let list = bin(d, &["site", "list"]);
            let line = list
                .lines()
                .find(|l| l.split('\t').next() == Some(site))
                .unwrap_or_else(|| panic!("{site} not in\n{list}"));
            line.split('\t').nth(3).unwrap().parse().unwrap()
        };
        let token = |sub: &str, site: &str| {
            bin(
                d,
                &[
                    "token",
                    "--role",
                    "consultant",
                    "--sub",
                    sub,
                    "--site",
                    site,
                    "--device",
                    &format!("{sub}-tablet"),
                ],
            )
        };
        let target = doc_of("agent-a");
        let n = shards.unwrap_or(1);
        let (mut site, mut other);
        let mut next = b'b';
        loop {
            site = format!("agent-{}", next as char);
            add(&site);
            other = doc_of(&site);
            if n < 2 || shard_of(&other, n) != shard_of(&target, n) {
                break;
            }
            next += 1;
        }
        let (attacker, bystander) = (token("attacker", "agent-a"), token("bystander", &site));
        let n_text = n.to_string();
        let mut args = extra.to_vec();
        if shards.is_some() {
            args.extend(["--engine-shards", &n_text]);
        }
        let server = Server::start(d, &args).await;
        Net {
            _dir: dir,
            server,
            target,
            other,
            attacker,
            bystander,
            http: reqwest::Client::new(),
        }
    }

    pub fn url(&self, token: &str) -> String {
        format!("ws://127.0.0.1:{}/sync?token={token}", self.server.port)
    }

    /// What is stored of `doc`: the heads the relay serves a fresh admin client (it
    /// only advertises committed heads) and the audit rows.
    pub async fn stored(&self, doc: DocumentId) -> Stored {
        let mut admin = Client::connect(
            &self.server.ws_url(),
            &format!("admin-{}", uuid::Uuid::new_v4()),
            None,
        )
        .await;
        admin.request(doc).await;
        admin
            .until("the admin client syncs", |c| {
                let heads = c.server_heads(doc);
                !heads.is_empty() && c.has_all(doc, &heads)
            })
            .await;
        let mut heads = admin.server_heads(doc);
        heads.sort();
        Stored {
            heads,
            audit: self.audit(doc).await,
        }
    }

    /// The audit rows of `doc`, as (user, change hash).
    pub async fn audit(&self, doc: DocumentId) -> Vec<(String, String)> {
        let r = self
            .http
            .get(
                self.server
                    .url(&format!("/api/audit?doc={doc}&limit=10000")),
            )
            .bearer_auth(&self.server.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let rows: Vec<serde_json::Value> = r.json().await.unwrap();
        rows.iter()
            .map(|r| {
                (
                    r["user"].as_str().unwrap_or("").to_string(),
                    r["change_hash"]
                        .as_str()
                        .or(r["changeHash"].as_str())
                        .unwrap_or("")
                        .to_string(),
                )
            })
            .collect()
    }

    /// `/healthz` answers ok, and a new connection of another user syncs a document.
    pub async fn still_serves(&self) {
        let h = reqwest::get(self.server.url("/healthz")).await.unwrap();
        assert!(h.status().is_success(), "/healthz: {}", h.status());
        let mut c = Client::connect(
            &self.url(&self.bystander),
            &format!("late-{}", uuid::Uuid::new_v4()),
            None,
        )
        .await;
        c.request(self.other).await;
        c.until("a new connection syncs", |c| {
            !c.server_heads(self.other).is_empty()
        })
        .await;
        let took = round_trip(&mut c, self.other, 1_000_000).await;
        assert!(took.is_ok(), "a new connection's round trip: {took:?}");
    }
}

/// What is stored of a document.
#[derive(Debug, PartialEq, Eq)]
pub struct Stored {
    /// Its committed heads, sorted.
    pub heads: Vec<ChangeHash>,
    /// Its audit rows, as (user, change hash).
    pub audit: Vec<(String, String)>,
}

/// One edit and the wait for the relay to advertise it back (its acknowledgement:
/// the relay only advertises committed heads).
pub async fn round_trip(c: &mut Client, doc: DocumentId, n: i64) -> Result<Duration, String> {
    round_trip_within(c, doc, n, ROUND_DEADLINE).await
}

/// [`round_trip`], giving up after `deadline`.
pub async fn round_trip_within(
    c: &mut Client,
    doc: DocumentId,
    n: i64,
    deadline: Duration,
) -> Result<Duration, String> {
    let start = Instant::now();
    c.change(doc, put("bystander", n)).await;
    let want = c.heads(doc);
    loop {
        if want.iter().all(|h| c.server_heads(doc).contains(h)) {
            return Ok(start.elapsed());
        }
        if c.closed {
            return Err(format!(
                "the bystander was disconnected in round {n}; errors {:?}",
                c.errors
            ));
        }
        let left = deadline.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Err(format!("round {n} not acknowledged within {deadline:?}"));
        }
        c.pump_once(left.min(Duration::from_millis(100))).await;
    }
}

/// One completed bystander round trip.
#[derive(Debug, Clone, Copy)]
pub struct Round {
    /// When it started.
    pub start: Instant,
    /// How long it took.
    pub took: Duration,
}

/// A peer that keeps making round trips on its own document until stopped.
pub struct Bystander {
    stop: Arc<AtomicBool>,
    rounds: Arc<Mutex<Vec<Round>>>,
    task: tokio::task::JoinHandle<Result<Client, String>>,
    /// How long one round trip may take before the bystander gives up.
    deadline: Duration,
}

impl Bystander {
    pub async fn start(url: &str, peer: &str, doc: DocumentId) -> Bystander {
        Bystander::start_within(url, peer, doc, ROUND_DEADLINE).await
    }

    /// [`Bystander::start`] whose round trips give up after `deadline` (a benchmark
    /// measuring stalls longer than [`ROUND_DEADLINE`]).
    pub async fn start_within(
        url: &str,
        peer: &str,
        doc: DocumentId,
        deadline: Duration,
    ) -> Bystander {
        let mut c = Client::connect(url, peer, Some(&format!("{peer}-store"))).await;
        c.request(doc).await;
        c.until("the bystander syncs", |c| !c.server_heads(doc).is_empty())
            .await;
        let stop = Arc::new(AtomicBool::new(false));
        let rounds = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn({
            let (stop, rounds) = (stop.clone(), rounds.clone());
            async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let start = Instant::now();
                    let took = round_trip_within(&mut c, doc, n, deadline).await?;
                    rounds.lock().unwrap().push(Round { start, took });
                    n += 1;
                }
                Ok(c)
            }
        });
        let b = Bystander {
            stop,
            rounds,
            task,
            deadline,
        };
        if let Err(why) = b.wait_rounds(3).await {
            let failure = b.finish().await.err().unwrap_or_default();
            panic!("the bystander never got going: {why} {failure}");
        }
        b
    }

    pub fn completed(&self) -> usize {
        self.rounds.lock().unwrap().len()
    }

    /// Waits until `n` rounds completed in all.
    pub async fn wait_rounds(&self, n: usize) -> Result<(), String> {
        let until = Instant::now() + DEADLINE;
        while self.completed() < n {
            if self.task.is_finished() {
                return Err(format!(
                    "the bystander stopped after {} rounds",
                    self.completed()
                ));
            }
            if Instant::now() > until {
                return Err(format!(
                    "the bystander completed {} of {n} rounds in {DEADLINE:?}",
                    self.completed()
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// Stops the loop; returns the client and every round, or the bystander's failure.
    pub async fn finish(self) -> Result<(Client, Vec<Round>), String> {
        self.stop.store(true, Ordering::Relaxed);
        let c = tokio::time::timeout(self.deadline + Duration::from_secs(2), self.task)
            .await
            .map_err(|_| "the bystander did not stop".to_string())?
            .map_err(|e| format!("the bystander panicked: {e}"))??;
        let rounds = self.rounds.lock().unwrap().clone();
        Ok((c, rounds))
    }
}

/// Latency figures of the rounds that overlap `[from, to]`.
#[derive(Debug, Clone, Copy)]
pub struct Figures {
    /// Rounds counted.
    pub n: usize,
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Worst.
    pub max: Duration,
}

pub fn figures(rounds: &[Round], from: Instant, to: Instant) -> Figures {
    let mut took: Vec<Duration> = rounds
        .iter()
        .filter(|r| r.start <= to && r.start + r.took >= from)
        .map(|r| r.took)
        .collect();
    took.sort();
    let at = |q: f64| {
        took.get(((took.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    Figures {
        n: took.len(),
        p50: at(0.5),
        p99: at(0.99),
        max: took.last().copied().unwrap_or_default(),
    }
}

/// Runs `attack` while a bystander of another user keeps syncing; returns the
/// attacker's `error` messages. Checks the bystander was never disconnected, kept
/// completing round trips afterwards, and that its worst round trip during the
/// attack stayed under [`WORST_BOUND`] (the figures are printed).
pub async fn with_bystander<F, Fut>(net: &Net, what: &str, attack: F) -> Vec<String>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Vec<String>>,
{
    let (errors, during) = bystander_during(net, what, attack).await;
    assert!(
        during.max < WORST_BOUND,
        "{what}: the bystander waited {:?} for one round trip during the attack (bound {WORST_BOUND:?})",
        during.max
    );
    errors
}

/// [`with_bystander`] without the bound: the attacker's `error` messages and the
/// bystander's figures during the attack.
pub async fn bystander_during<F, Fut>(net: &Net, what: &str, attack: F) -> (Vec<String>, Figures)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Vec<String>>,
{
    let by = Bystander::start(&net.url(&net.bystander), "bystander", net.other).await;
    let from = Instant::now();
    let errors = attack().await;
    let to = Instant::now();
    println!("{what}: the attacker was told {errors:?}");
    let done = by.completed();
    let after = by.wait_rounds(done + 3).await;
    let (c, rounds) = by.finish().await.unwrap_or_else(|e| panic!("{what}: {e}"));
    if let Err(why) = after {
        panic!("{what}: after the attack: {why}");
    }
    assert!(
        !c.closed && c.errors.is_empty(),
        "{what}: the bystander got {:?}",
        c.errors
    );
    let before = figures(&rounds, rounds[0].start, from);
    let during = figures(&rounds, from, to);
    println!(
        "{what}: attack ran {:?}; bystander round trips during it: {} rounds, median {:?}, worst {:?} (before: median {:?})",
        to - from,
        during.n,
        during.p50,
        during.max,
        before.p50
    );
    (errors, during)
}
