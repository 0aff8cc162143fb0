//! `login`, `sync` and `status`: the only commands that talk to the server (and
//! `status`, which reports what the last syncs left behind).

use dealersync_core::time::now_ms;
use std::process::ExitCode;
use std::time::Duration;

use std::collections::HashMap;

use anyhow::{Context, Result, anyhow, bail};
use automerge::{ChangeHash, ReadDoc};
use dealersync_core::protocol::SyncLimits;
use dealersync_core::protocol::engine::{ConnId, ConnInfo, Engine, EngineConfig, Output};
use dealersync_core::protocol::{DocumentId, PeerId, StorageId};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::cli::{LoginArgs, SyncArgs};
use crate::ctx::Ctx;
use crate::home::{Config, DocRef, Home, SiteEntry, decode_claims};
use crate::output::{Table, print_json, when};
use crate::store::unacked;
use crate::transport::{TlsSettings, base_url, http_client, ws_connector};
use crate::workspace::Workspace;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NetworkAnswer {
    document_id: DocumentId,
}

async fn get_json<T: for<'de> Deserialize<'de>>(
    http: &reqwest::Client,
    url: &str,
    token: &str,
) -> Result<T> {
    let resp = http
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .with_context(|| format!("cannot reach the server at {url}"))?;
    let status = resp.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        bail!("the server refused the token ({status}); ask your administrator for a new one");
    }
    if !status.is_success() {
        let body = resp.text().await.unwrap_or_default();
        bail!("{url} answered {status}: {}", body.trim());
    }
    resp.json()
        .await
        .with_context(|| format!("{url} did not answer the expected JSON"))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// `login`: learn the documents this user may access, save the login, then sync.
pub fn login(home: Home, args: LoginArgs, ctx: &Ctx) -> Result<ExitCode> {
    let tls = TlsSettings {
        ca: args.ca.map(|ca| std::path::absolute(&ca).unwrap_or(ca)),
        insecure: args.insecure,
    };
    let base = base_url(&args.server, tls.insecure)?;
    let claims = decode_claims(args.token.trim())?;
    let token = args.token.trim().to_string();
    let http = http_client(&tls, Duration::from_secs(30))?;
    let (sites, network) = runtime()?.block_on(async {
        let sites: Vec<SiteEntry> = get_json(&http, &format!("{base}/api/sites"), &token).await?;
        let network: NetworkAnswer =
            get_json(&http, &format!("{base}/api/network"), &token).await?;
        anyhow::Ok((sites, network))
    })?;
    // Keep the storage id across logins, so the server's sync state for us stays valid.
    let storage_id = match home.config() {
        Ok(Some(old)) => old.storage_id,
        _ => uuid::Uuid::new_v4().to_string(),
    };
    let config = Config {
        server: base,
        token,
        claims,
        network: network.document_id,
        sites,
        storage_id,
        tls,
    };
    home.save_config(&config)?;
    if !ctx.json {
        println!(
            "logged in as {} ({}, site {}); {} site document(s) and the network document",
            config.claims.sub,
            config.claims.role,
            config.claims.site,
            config.sites.len()
        );
    }
    sync(
        home,
        SyncArgs {
            watch: false,
            timeout: args.timeout,
            via: None,
        },
        ctx,
    )
}

/// How long `status` waits for its relay's `/api/upstream` before leaving it out.
const UPSTREAM_STATUS_TIMEOUT: Duration = Duration::from_secs(2);

/// A downstream relay's `GET /api/upstream`: per document, the changes it holds that
/// its upstream has not acknowledged. `None` when the relay has no upstream (404) or
/// cannot be reached now: `status` works offline.
fn relay_upstream(ws: &Workspace) -> Option<HashMap<String, Option<u64>>> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Doc {
        document_id: String,
        unacknowledged: Option<u64>,
    }
    #[derive(Deserialize)]
    struct Answer {
        documents: Vec<Doc>,
    }
    let http = http_client(&ws.config.tls, UPSTREAM_STATUS_TIMEOUT).ok()?;
    let url = format!("{}/api/upstream", ws.config.server);
    let answer: Answer = runtime()
        .ok()?
        .block_on(get_json(&http, &url, &ws.config.token))
        .ok()?;
    Some(
        answer
            .documents
            .into_iter()
            .map(|d| (d.document_id, d.unacknowledged))
            .collect(),
    )
}

/// `status`: per document, what the server has not acknowledged yet, and, when the
/// server is a downstream relay, what it has not passed on upstream yet.
pub fn status(ws: &Workspace, ctx: &Ctx) -> Result<ExitCode> {
    let upstream = relay_upstream(ws);
    let relay_pending = |id: &DocumentId| -> Option<Option<u64>> {
        upstream
            .as_ref()
            .map(|u| u.get(&id.to_string()).copied().flatten())
    };
    let mut rows = Vec::new();
    let conflicts = crate::conflicts::detect_all(ws)?;
    for d in ws
        .config
        .sync_documents()
        .into_iter()
        .filter(|d| d.access.can_read())
    {
        let rec = ws.state.record(&d.id)?;
        let (held, unacked) = match ws.load(&d.id)? {
            None => (false, 0),
            Some(mut am) => (true, unacked(am.document(), &rec.server_heads)),
        };
        let open_conflicts = crate::conflicts::count_for(&conflicts, &d);
        rows.push((d, held, unacked, rec.last_sync_at, open_conflicts));
    }
    if ctx.json {
        let v: Vec<_> = rows
            .iter()
            .map(|(d, held, unacked, last, conflicts)| {
                json!({
                    "document": d.label,
                    "documentId": d.id.to_string(),
                    "access": d.access.as_str(),
                    "onDevice": held,
                    "unacknowledged": unacked,
                    "lastSync": last,
                    "conflicts": conflicts,
                    "relayUnacknowledged": relay_pending(&d.id).flatten(),
                })
            })
            .collect();
        print_json(&json!({
            "server": ws.config.server,
            "relayHasUpstream": upstream.is_some(),
            "user": ws.config.claims.sub,
            "role": ws.config.claims.role.as_str(),
            "site": ws.config.claims.site,
            "documents": v,
        }))?;
    } else {
        println!(
            "{} ({}, site {}) on {}",
            ws.config.claims.sub, ws.config.claims.role, ws.config.claims.site, ws.config.server
        );
        let mut headers = vec![
            "document",
            "access",
            "unacknowledged changes",
            "last sync",
            "conflicts",
        ];
        if upstream.is_some() {
            headers.push("on the relay, not yet upstream");
        }
        let mut t = Table::new(&headers);
        for (d, held, unacked, last, conflicts) in rows {
            let pending = relay_pending(&d.id);
            let mut row = vec![
                d.label,
                d.access.as_str().into(),
                if held {
                    unacked.to_string()
                } else {
                    "not on device".into()
                },
                last.map(when).unwrap_or_else(|| "never".into()),
                conflicts.to_string(),
            ];
            if let Some(p) = pending {
                row.push(p.map(|n| n.to_string()).unwrap_or_else(|| "unknown".into()));
            }
            t.row(row);
        }
        print!("{}", t.render());
    }
    Ok(ExitCode::SUCCESS)
}

/// The one connection a client has: to its server.
const SERVER: ConnId = ConnId(1);

/// How long connecting (TCP + WebSocket upgrade) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// How often `sync --watch` looks for edits made by other commands on this device.
const WATCH_POLL: Duration = Duration::from_millis(300);

/// Backoff of `sync --watch` between reconnection attempts.
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// The WebSocket URL of the relay's sync endpoint.
fn sync_url(server: &str, tls: &TlsSettings) -> Result<String> {
    let base = base_url(server, tls.insecure)?;
    Ok(if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}/sync")
    } else {
        format!("ws://{}/sync", base.trim_start_matches("http://"))
    })
}

/// What happened to one document in a sync.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct DocReport {
    document: String,
    document_id: String,
    /// Local changes the server had not acknowledged when the sync started.
    sent: usize,
    /// Changes that arrived from the server.
    received: usize,
    /// `synced`, `unavailable` (the server does not have it or will not show it) or
    /// `incomplete` (the deadline passed).
    outcome: &'static str,
}

/// One document's state at the start of a connection.
struct Start {
    doc: DocRef,
    heads: Vec<ChangeHash>,
    unacked: usize,
}

/// A connection to the relay driving the sync engine for every document.
struct Session<'a> {
    ws: &'a Workspace,
    /// The relay this connection goes to: the login's server, or `sync --via`'s.
    server: String,
    engine: Engine,
    starts: Vec<Start>,
    /// Local edit counters last absorbed, per document.
    edits_seen: HashMap<DocumentId, i64>,
    /// Heads last recorded as acknowledged, per document (watch mode prints changes).
    recorded: HashMap<DocumentId, Vec<ChangeHash>>,
    /// The server's heads when it first answered, per document: what it had before
    /// this connection, to count what we sent.
    first_server_heads: HashMap<DocumentId, Vec<ChangeHash>>,
}

type WsSink = futures_util::stream::SplitSink<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    WsMessage,
>;

impl<'a> Session<'a> {
    fn new(ws: &'a Workspace, via: Option<&str>) -> Result<Session<'a>> {
        let engine = Engine::new(
            PeerId(format!("dealersync-cli-{}", uuid::Uuid::new_v4())),
            EngineConfig {
                storage_id: Some(StorageId(ws.config.storage_id.clone())),
                // The relay enforced its limits on everything it holds; a device must
                // be able to read whatever its relay serves.
                limits: SyncLimits::unlimited(),
                ..EngineConfig::default()
            },
        );
        let mut starts = Vec::new();
        let mut edits_seen = HashMap::new();
        for doc in ws
            .config
            .sync_documents()
            .into_iter()
            .filter(|d| d.access.can_read())
        {
            let rec = ws.state.record(&doc.id)?;
            let (heads, n) = match ws.load(&doc.id)? {
                Some(mut am) => (am.get_heads(), unacked(am.document(), &rec.server_heads)),
                None => (Vec::new(), 0),
            };
            edits_seen.insert(doc.id, ws.state.edits(&doc.id)?);
            starts.push(Start {
                doc,
                heads,
                unacked: n,
            });
        }
        Ok(Session {
            ws,
            server: via.unwrap_or(&ws.config.server).to_string(),
            engine,
            starts,
            edits_seen,
            recorded: HashMap::new(),
            first_server_heads: HashMap::new(),
        })
    }

    /// Sends the engine's frames; an engine-initiated close ends the session.
    async fn flush(&mut self, sink: &mut WsSink, outputs: Vec<Output>) -> Result<()> {
        for o in outputs {
            match o {
                Output::Send { bytes, .. } => sink
                    .send(WsMessage::Binary(bytes.into()))
                    .await
                    .context("the connection to the server broke")?,
                Output::Close { reason, .. } => {
                    let _ = sink.send(WsMessage::Close(None)).await;
                    bail!("the sync was stopped: {reason}");
                }
                Output::DocumentUnavailable { doc, .. } => {
                    tracing::info!(%doc, "the server does not have this document");
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Picks up edits that other commands on this device committed meanwhile. Called
    /// under the write lock, so that a compaction the engine writes next contains them.
    fn absorb_local_edits(&mut self) -> Result<()> {
        for s in &self.starts {
            let id = s.doc.id;
            let n = self.ws.state.edits(&id)?;
            if self.edits_seen.get(&id) == Some(&n) {
                continue;
            }
            self.edits_seen.insert(id, n);
            let Some(stored) = self.ws.store.load(&id)? else {
                continue;
            };
            let Some(doc) = self.engine.document_mut(&id) else {
                continue;
            };
            let before = doc.get_heads();
            for chunk in &stored.chunks {
                doc.load_incremental(chunk)
                    .with_context(|| format!("stored document {id} is damaged"))?;
            }
            if doc.get_heads() != before {
                self.engine.local_change(&id)?;
            }
        }
        Ok(())
    }

    /// Commits what the engine holds (changes from the server, sync states) under the
    /// device's write lock, then lets the engine answer: nothing is acknowledged to the
    /// server before it is on this device's disk.
    async fn commit(&mut self, sink: &mut WsSink) -> Result<()> {
        loop {
            let lock = self.ws.lock()?;
            self.absorb_local_edits()?;
            let Some((token, batch)) = self.engine.take_write_batch() else {
                return Ok(());
            };
            let outputs = match self.ws.store.commit(&batch) {
                Ok(()) => self
                    .engine
                    .commit_succeeded(token, now_ms(), &*self.ws.store),
                Err(e) => {
                    let out = self
                        .engine
                        .commit_failed(token, &e, now_ms(), &*self.ws.store);
                    drop(lock);
                    let _ = self.flush(sink, out).await;
                    return Err(e).context("cannot save the server's changes on this device");
                }
            };
            drop(lock);
            self.flush(sink, outputs).await?;
        }
    }

    /// Remembers the heads the server first reports for each document.
    fn note_server_heads(&mut self) {
        for s in &self.starts {
            if self.first_server_heads.contains_key(&s.doc.id) {
                continue;
            }
            if let Some(h) = self.engine.peer_heads(&s.doc.id, SERVER) {
                self.first_server_heads.insert(s.doc.id, h);
            }
        }
    }

    /// Local changes present at the start that the server did not have when it first
    /// answered; falls back to the changes it had not acknowledged before.
    fn sent(&self, s: &Start) -> usize {
        let (Some(doc), Some(first)) = (
            self.engine.document(&s.doc.id),
            self.first_server_heads.get(&s.doc.id),
        ) else {
            return s.unacked;
        };
        let known: Vec<ChangeHash> = first
            .iter()
            .filter(|h| doc.get_change_by_hash(h).is_some())
            .copied()
            .collect();
        let newer_than_start: std::collections::HashSet<ChangeHash> = doc
            .get_changes_meta(&s.heads)
            .iter()
            .map(|c| c.hash)
            .collect();
        doc.get_changes_meta(&known)
            .iter()
            .filter(|c| !newer_than_start.contains(&c.hash))
            .count()
    }

    fn done(&self) -> bool {
        self.starts.iter().all(|s| {
            self.engine.is_synced(&s.doc.id, SERVER)
                || self.engine.is_unavailable(&s.doc.id, SERVER)
        })
    }

    /// Records, for `status`, what the server has acknowledged; returns the documents
    /// whose acknowledged heads moved since the last call.
    fn record_synced(&mut self) -> Result<Vec<DocumentId>> {
        let mut moved = Vec::new();
        // Through another relay, a change it acknowledged is not yet at our own server:
        // `status` keeps saying what our server has. (The sync states the engine keeps
        // are per relay storage id already, so the next sync with either relay sends
        // only what that relay lacks.)
        if self.server != self.ws.config.server {
            return Ok(moved);
        }
        for s in &self.starts {
            let id = s.doc.id;
            if !self.engine.is_synced(&id, SERVER) {
                continue;
            }
            let heads = self.engine.peer_heads(&id, SERVER).unwrap_or_default();
            if self.recorded.get(&id) == Some(&heads) {
                continue;
            }
            let hex: Vec<String> = heads.iter().map(|h| h.to_string()).collect();
            self.ws.state.save(&id, &hex, Some(now_ms()))?;
            self.recorded.insert(id, heads);
            moved.push(id);
        }
        Ok(moved)
    }

    fn reports(&self) -> Vec<DocReport> {
        self.starts
            .iter()
            .map(|s| {
                let id = s.doc.id;
                let received = self
                    .engine
                    .document(&id)
                    .map(|d| d.get_changes_meta(&s.heads).len())
                    .unwrap_or(0);
                let outcome = if self.engine.is_synced(&id, SERVER) {
                    "synced"
                } else if self.engine.is_unavailable(&id, SERVER) {
                    "unavailable"
                } else {
                    "incomplete"
                };
                DocReport {
                    document: s.doc.label.clone(),
                    document_id: id.to_string(),
                    sent: if outcome == "synced" { self.sent(s) } else { 0 },
                    received,
                    outcome,
                }
            })
            .collect()
    }

    /// Connects and syncs. Returns when every document is in sync (unless `watch`),
    /// or fails when the connection breaks or the deadline passes.
    async fn run(
        &mut self,
        deadline: Option<tokio::time::Instant>,
        watch: bool,
        json: bool,
    ) -> Result<()> {
        let tls = &self.ws.config.tls;
        let url = sync_url(&self.server, tls)?;
        let mut request = url
            .as_str()
            .into_client_request()
            .with_context(|| format!("bad server URL {url}"))?;
        request.headers_mut().insert(
            "Authorization",
            format!("Bearer {}", self.ws.config.token)
                .parse()
                .context("the stored token has characters a header cannot carry")?,
        );
        let connector = ws_connector(tls)?;
        let connected = tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio_tungstenite::connect_async_tls_with_config(request, None, true, Some(connector)),
        )
        .await;
        let (stream, _) = match connected {
            Err(_) => bail!(
                "cannot reach the server at {url}: no answer within {}s",
                CONNECT_TIMEOUT.as_secs()
            ),
            Ok(Err(tokio_tungstenite::tungstenite::Error::Http(resp))) => {
                let status = resp.status();
                if status == 401 || status == 403 {
                    bail!(
                        "the server at {url} refused the token ({status}); log in again with a new token"
                    );
                }
                bail!("the server at {url} refused the connection ({status})");
            }
            Ok(Err(e)) => bail!("cannot reach the server at {url}: {e}"),
            Ok(Ok(s)) => s,
        };
        let (mut sink, mut frames) = stream.split();
        let store = self.ws.store.clone();
        // The `join` goes out before the documents are loaded: the relay closes a
        // socket that does not join within its join timeout (10 s by default), and
        // loading a large store on a busy machine can take longer than that.
        let join = self
            .engine
            .connect_to_server(SERVER, ConnInfo::full_access());
        self.flush(&mut sink, join).await?;
        let mut outputs = Vec::new();
        for s in &self.starts {
            outputs.extend(self.engine.open(s.doc.id, &*store)?);
        }
        self.flush(&mut sink, outputs).await?;
        let mut poll = tokio::time::interval(WATCH_POLL);
        loop {
            self.commit(&mut sink).await?;
            if watch {
                for id in self.record_synced()? {
                    if let Some(r) = self
                        .reports()
                        .into_iter()
                        .find(|r| r.document_id == id.to_string())
                    {
                        print_line(&r, json)?;
                    }
                }
            } else if self.done() {
                self.record_synced()?;
                let _ = sink.send(WsMessage::Close(None)).await;
                return Ok(());
            }
            let sleep_until =
                deadline.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                frame = frames.next() => match frame {
                    Some(Ok(WsMessage::Binary(bytes))) => {
                        let out = self.engine.receive(SERVER, &bytes, now_ms(), &*store);
                        self.note_server_heads();
                        self.flush(&mut sink, out).await?;
                    }
                    Some(Ok(WsMessage::Close(_))) | None => bail!("the server closed the connection"),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => bail!("the connection to the server broke: {e}"),
                },
                _ = tokio::time::sleep_until(sleep_until), if deadline.is_some() => {
                    bail!("the sync did not complete before the deadline");
                }
                _ = poll.tick(), if watch => {
                    // Edits by other commands: absorbed (and sent) by the commit above.
                    let changed = self.starts.iter().any(|s| {
                        self.ws.state.edits(&s.doc.id).ok() != self.edits_seen.get(&s.doc.id).copied()
                    });
                    if changed {
                        let _lock = self.ws.lock()?;
                        self.absorb_local_edits()?;
                    }
                }
            }
        }
    }
}

fn print_line(r: &DocReport, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(r)?);
    } else {
        println!(
            "{}  {}: sent {}, received {}",
            when(now_ms()),
            r.document,
            r.sent,
            r.received
        );
    }
    Ok(())
}

/// `sync` and `sync --watch`.
pub fn sync(home: Home, args: SyncArgs, ctx: &Ctx) -> Result<ExitCode> {
    let mut ws = Workspace::open(home)?;
    let rt = runtime()?;
    let via = args
        .via
        .as_deref()
        .map(|v| crate::relays::resolve_via(&ws, v, crate::relays::DEFAULT_WAIT))
        .transpose()?;
    if args.watch {
        return rt.block_on(watch(&mut ws, via.as_deref(), ctx));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.timeout);
    let run = |ws: &Workspace| -> Result<(Result<()>, Vec<DocReport>, usize)> {
        let mut session = Session::new(ws, via.as_deref())?;
        let result = rt.block_on(session.run(Some(deadline), false, ctx.json));
        let pending = session.starts.iter().map(|s| s.unacked).sum();
        Ok((result, session.reports(), pending))
    };
    let (mut result, mut reports, mut pending) = run(&ws)?;
    // After the relay's monthly carry-over the network document names new working
    // documents: follow them, and sync again so they are on the device now.
    if result.is_ok() && crate::periods::follow(&mut ws)? {
        (result, reports, pending) = run(&ws)?;
    }
    if result.is_ok() {
        crate::periods::drop_handed_in_archives(&mut ws)?;
    }
    if ctx.json {
        print_json(&json!({
            "ok": result.is_ok(),
            "error": result.as_ref().err().map(|e| format!("{e:#}")),
            "documents": reports,
        }))?;
    } else {
        let mut t = Table::new(&["document", "sent", "received", "outcome"]);
        for r in &reports {
            t.row(vec![
                r.document.clone(),
                r.sent.to_string(),
                r.received.to_string(),
                r.outcome.to_string(),
            ]);
        }
        print!("{}", t.render());
    }
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e.context(format!(
            "sync failed; everything on this device is kept ({pending} local change(s) not yet \
             acknowledged by the server); run `dealersync sync` again when the server is reachable"
        ))),
    }
}

/// `sync --watch`: reconnects forever with exponential backoff and full jitter.
async fn watch(ws: &mut Workspace, via: Option<&str>, ctx: &Ctx) -> Result<ExitCode> {
    let mut backoff = BACKOFF_MIN;
    loop {
        // A carry-over the network document announced during the last connection.
        crate::periods::follow(ws)?;
        let mut session = Session::new(ws, via)?;
        let started = tokio::time::Instant::now();
        let err = match session.run(None, true, ctx.json).await {
            Ok(()) => anyhow!("the connection ended"),
            Err(e) => e,
        };
        // A connection that lasted a while was healthy: start the backoff afresh.
        if started.elapsed() > BACKOFF_MAX {
            backoff = BACKOFF_MIN;
        }
        let wait = Duration::from_millis(rand::random_range(0..=backoff.as_millis() as u64));
        eprintln!(
            "{:#}; reconnecting in {:.1}s (local edits are kept)",
            err,
            wait.as_secs_f64()
        );
        tokio::time::sleep(wait).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// `relays`: the relays answering on the local network.
pub fn relays(args: crate::cli::RelaysArgs, ctx: &Ctx) -> Result<ExitCode> {
    let found = crate::relays::browse(Duration::from_secs(args.wait))?;
    if ctx.json {
        let list: Vec<_> = found
            .iter()
            .map(|r| {
                json!({
                    "instance": r.instance,
                    "url": r.url,
                    "subtree": r.advert.subtree,
                    "upstream": r.advert.upstream,
                    "storageId": r.advert.storage_id,
                })
            })
            .collect();
        print_json(&json!({ "relays": list }))?;
    } else {
        let mut t = Table::new(&["relay", "url", "subtree", "upstream"]);
        for r in &found {
            t.row(vec![
                r.instance.clone(),
                r.url.clone(),
                r.advert.subtree.clone(),
                if r.advert.upstream { "yes" } else { "no" }.to_string(),
            ]);
        }
        print!("{}", t.render());
    }
    Ok(ExitCode::SUCCESS)
}
