//! Test harness: the real `dealersync-server` binary in a temp data dir on a free port,
//! and a WebSocket client that speaks the automerge-repo protocol with automerge sync.
//!
//! The relay admits only connections with a token, so [`Server::start`] registers a
//! head office site (`site add`) and issues an admin token (`token`) with the binary's
//! own subcommands first; [`Server::ws_url`] carries it as `?token=`.

#![allow(dead_code)]

pub mod bystander;
pub mod hostile;

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use automerge::sync::{self, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{AutoCommit, ChangeHash, ReadDoc};
use dealersync_core::protocol::wire::{Message, PeerMetadata};
use dealersync_core::protocol::{DocumentId, PeerId, StorageId};
use dealersync_core::schema::{SiteHeader, SiteKind};
use dealersync_server::auth::{AuthConfig, Authenticator};
use dealersync_server::registry::{Registry, StoreDocuments};
use dealersync_server::server::ServeOptions;
use dealersync_server::storage::{Durability, SqliteStore, StoreOptions};
use dealersync_server::ws::Limits;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_dealersync-server");

/// How long any wait in these tests may take before it fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A running server process.
pub struct Server {
    child: Option<Child>,
    pub port: u16,
    pub data_dir: PathBuf,
    extra: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
    /// An admin token of this data directory (every document, the admin API).
    pub token: String,
    /// From the process's spawn to its first healthy `/healthz` (its last start).
    pub healthy_in: Duration,
}

/// Runs a subcommand of the binary and returns its stdout; panics on failure.
pub fn run_bin(args: &[&str], data_dir: &Path) -> String {
    let out = Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dealersync-server {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Registers head office in `data_dir` if no site exists yet, and issues an admin
/// token there.
pub fn admin_token(data_dir: &Path) -> String {
    std::fs::create_dir_all(data_dir).unwrap();
    if run_bin(&["site", "list"], data_dir).trim().is_empty() {
        run_bin(
            &[
                "site",
                "add",
                "--id",
                "hq",
                "--name",
                "Head office",
                "--kind",
                "head_office",
            ],
            data_dir,
        );
    }
    let token = run_bin(
        &["token", "--role", "admin", "--sub", "test", "--site", "hq"],
        data_dir,
    );
    token.trim().to_string()
}

/// Registers the distribution centre `dc-north` under `hq` in `data_dir` (the
/// downstream relays' tests).
pub fn add_dc(data_dir: &Path) {
    run_bin(
        &[
            "site",
            "add",
            "--id",
            "dc-north",
            "--name",
            "North DC",
            "--kind",
            "distribution_centre",
            "--parent",
            "hq",
        ],
        data_dir,
    );
}

/// The status of `GET /api/me` with `token`, and the error `kind` if refused.
pub async fn me(server: &Server, token: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .get(server.url("/api/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: serde_json::Value = r.json().await.unwrap_or_default();
    (
        status,
        body["kind"].as_str().unwrap_or_default().to_string(),
    )
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Server {
    /// Starts the server on a free port and waits for `/healthz`.
    pub async fn start(data_dir: &Path, extra: &[&str]) -> Server {
        Server::start_with_env(data_dir, extra, &[]).await
    }

    /// [`Server::start`] with extra environment variables for the server process.
    pub async fn start_with_env(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut s = Server {
            child: None,
            port: free_port(),
            data_dir: data_dir.to_path_buf(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            log: data_dir.join("server.log"),
            token: admin_token(data_dir),
            healthy_in: Duration::ZERO,
        };
        s.spawn().await;
        s
    }

    async fn spawn(&mut self) {
        std::fs::create_dir_all(&self.data_dir).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(BIN)
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.extra)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env(
                "RUST_LOG",
                std::env::var("TEST_SERVER_LOG").unwrap_or("info,dealersync_server=debug".into()),
            )
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting dealersync-server");
        self.child = Some(child);
        let spawned = Instant::now();
        let until = spawned + DEADLINE;
        loop {
            if let Ok(r) = reqwest::get(self.url("/healthz")).await
                && r.status().is_success()
            {
                self.healthy_in = spawned.elapsed();
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "server exited with {status} before it was healthy:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < until,
                "server not healthy in time:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The server process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// The exit status once the process has ended, waiting up to `deadline`.
    pub async fn exit_status(&mut self, deadline: Duration) -> Option<std::process::ExitStatus> {
        let until = Instant::now() + deadline;
        while Instant::now() < until {
            if let Some(status) = self.child.as_mut()?.try_wait().unwrap() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    /// Whether the server process is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// An HTTP URL on the server.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The WebSocket sync URL, with the admin token.
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/sync?token={}", self.port, self.token)
    }

    /// The WebSocket sync URL without a token.
    pub fn ws_url_without_token(&self) -> String {
        format!("ws://127.0.0.1:{}/sync", self.port)
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// SIGTERM and wait for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("server running");
        let ok = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status()
            .unwrap();
        assert!(ok.success());
        let until = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = c.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < until, "server ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the server again on the same port and data dir.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    /// The Prometheus text from `/metrics`.
    pub async fn metrics(&self) -> String {
        reqwest::get(self.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("---- server log ----\n{}", self.log());
        }
    }
}

/// Creates a document through the admin path and returns its id.
pub fn create_doc(data_dir: &Path) -> DocumentId {
    let out = Command::new(BIN)
        .args(["doc", "create", "--data-dir"])
        .arg(data_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// A benchmark's setting from the environment variable `name`, or `default` when it
/// is unset or does not parse.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The sum of a counter's samples in Prometheus text whose line contains `filter`.
pub fn metric_value(text: &str, name: &str, filter: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split(['{', ' ']).next() == Some(name) && l.contains(filter))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// One document as a client holds it.
pub struct Replica {
    pub doc: AutoCommit,
    pub state: sync::State,
    pub unavailable: bool,
}

/// A WebSocket client speaking automerge-repo protocol "1".
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub peer_id: PeerId,
    pub server: PeerId,
    pub docs: HashMap<DocumentId, Replica>,
    /// `error` messages received.
    pub errors: Vec<String>,
    /// Whether the server closed the socket.
    pub closed: bool,
    /// Bytes of `sync`/`request` frames received.
    pub sync_bytes_in: usize,
    /// Bytes of `sync`/`request` frames sent.
    pub sync_bytes_out: usize,
}

/// A sync message that pushes `doc`'s last local change whatever the relay said: what
/// a client that ignores automerge's read-only flag sends.
pub fn pushed_change(doc: &mut AutoCommit) -> Vec<u8> {
    let change = doc.get_last_local_change().unwrap().raw_bytes().to_vec();
    sync::Message {
        heads: doc.get_heads(),
        need: vec![],
        have: vec![],
        changes: vec![change].into(),
        flags: None,
        version: sync::MessageVersion::V1,
    }
    .encode()
}

/// The first `error` frame on a raw socket; panics at the deadline or if the socket
/// ends first.
pub async fn first_error(ws: &mut WebSocketStream<MaybeTlsStream<TcpStream>>) -> String {
    let until = Instant::now() + DEADLINE;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Err(_) => panic!("no error within the deadline"),
            Ok(Some(Ok(WsMessage::Binary(b)))) => {
                if let Ok(Message::Error { message, .. }) = Message::decode(&b) {
                    return message;
                }
            }
            Ok(Some(Ok(_))) => {}
            Ok(other) => panic!("socket ended without an error: {other:?}"),
        }
    }
}

/// Opens a WebSocket without the handshake, for bad-input tests.
pub async fn raw(url: &str) -> WebSocketStream<MaybeTlsStream<TcpStream>> {
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

/// A `join` frame.
pub fn join_frame(peer: &str, storage: Option<&str>) -> Vec<u8> {
    Message::Join {
        sender_id: PeerId::from(peer),
        supported_protocol_versions: Some(vec!["1".into()]),
        metadata: Some(PeerMetadata {
            storage_id: storage.map(|s| StorageId(s.into())),
            is_ephemeral: storage.is_none(),
        }),
    }
    .encode()
}

/// Reads frames until the server closes; returns the `error` messages seen, or
/// panics after the deadline.
pub async fn expect_error_and_close(
    ws: &mut WebSocketStream<MaybeTlsStream<TcpStream>>,
) -> Vec<String> {
    let mut errors = Vec::new();
    let until = Instant::now() + DEADLINE;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Err(_) => panic!("no close within the deadline; errors so far {errors:?}"),
            Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(WsMessage::Close(_)))) => return errors,
            Ok(Some(Ok(WsMessage::Binary(b)))) => {
                if let Ok(Message::Error { message, .. }) = Message::decode(&b) {
                    errors.push(message);
                }
            }
            Ok(Some(Ok(_))) => {}
        }
    }
}

impl Client {
    /// Connects and completes the join/peer handshake.
    pub async fn connect(url: &str, peer: &str, storage: Option<&str>) -> Client {
        let mut ws = raw(url).await;
        ws.send(WsMessage::Binary(join_frame(peer, storage).into()))
            .await
            .unwrap();
        let until = Instant::now() + DEADLINE;
        let server = loop {
            let left = until.saturating_duration_since(Instant::now());
            let msg = tokio::time::timeout(left, ws.next())
                .await
                .expect("no peer message in time")
                .expect("socket closed during handshake")
                .unwrap();
            if let WsMessage::Binary(b) = msg {
                match Message::decode(&b).unwrap() {
                    Message::Peer { sender_id, .. } => break sender_id,
                    other => panic!("expected peer, got {other:?}"),
                }
            }
        };
        Client {
            ws,
            peer_id: PeerId::from(peer),
            server,
            docs: HashMap::new(),
            errors: Vec::new(),
            closed: false,
            sync_bytes_in: 0,
            sync_bytes_out: 0,
        }
    }

    async fn send(&mut self, msg: Message) {
        let bytes = msg.encode();
        if matches!(msg, Message::Sync { .. } | Message::Request { .. }) {
            self.sync_bytes_out += bytes.len();
        }
        // A send on a dead socket marks the client closed; tests that kill the
        // server keep writing locally, as a real device would.
        if self.ws.send(WsMessage::Binary(bytes.into())).await.is_err() {
            self.closed = true;
        }
    }

    /// Asks the server for a document this client does not have.
    pub async fn request(&mut self, id: DocumentId) {
        let mut r = Replica {
            doc: AutoCommit::new(),
            state: sync::State::new(),
            unavailable: false,
        };
        let data = r
            .doc
            .sync()
            .generate_sync_message(&mut r.state)
            .expect("a first sync message")
            .encode();
        self.docs.insert(id, r);
        let msg = Message::Request {
            sender_id: self.peer_id.clone(),
            target_id: self.server.clone(),
            document_id: id,
            data,
        };
        self.send(msg).await;
    }

    /// Starts syncing a document this client already holds.
    pub async fn share(&mut self, id: DocumentId, doc: AutoCommit, state: sync::State) {
        self.docs.insert(
            id,
            Replica {
                doc,
                state,
                unavailable: false,
            },
        );
        self.flush(id).await;
    }

    /// Sends a sync message for `id` if automerge has something to say.
    pub async fn flush(&mut self, id: DocumentId) {
        let r = self.docs.get_mut(&id).expect("known doc");
        let message = r.doc.sync().generate_sync_message(&mut r.state);
        if let Some(m) = message {
            let msg = Message::Sync {
                sender_id: self.peer_id.clone(),
                target_id: self.server.clone(),
                document_id: id,
                data: m.encode(),
            };
            self.send(msg).await;
        }
    }

    /// Edits a document locally and announces the change.
    pub async fn change(&mut self, id: DocumentId, f: impl FnOnce(&mut AutoCommit)) {
        f(&mut self.docs.get_mut(&id).expect("known doc").doc);
        self.flush(id).await;
    }

    /// Handles one incoming frame; false if none came within `wait`.
    pub async fn pump_once(&mut self, wait: Duration) -> bool {
        let msg = match tokio::time::timeout(wait, self.ws.next()).await {
            Err(_) => return false,
            Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(WsMessage::Close(_)))) => {
                self.closed = true;
                return true;
            }
            Ok(Some(Ok(m))) => m,
        };
        let WsMessage::Binary(bytes) = msg else {
            return true;
        };
        match Message::decode(&bytes).expect("server sends valid messages") {
            Message::Sync {
                document_id, data, ..
            }
            | Message::Request {
                document_id, data, ..
            } => {
                self.sync_bytes_in += bytes.len();
                if let Some(r) = self.docs.get_mut(&document_id) {
                    let m = sync::Message::decode(&data).expect("valid sync message");
                    r.doc
                        .sync()
                        .receive_sync_message(&mut r.state, m)
                        .expect("applies");
                    self.flush(document_id).await;
                }
            }
            Message::DocUnavailable { document_id, .. } => {
                if let Some(r) = self.docs.get_mut(&document_id) {
                    r.unavailable = true;
                }
            }
            Message::Error { message, .. } => self.errors.push(message),
            _ => {}
        }
        true
    }

    /// Pumps until `cond` holds; panics at the deadline.
    pub async fn until(&mut self, what: &str, mut cond: impl FnMut(&mut Client) -> bool) {
        let until = Instant::now() + DEADLINE;
        while !cond(self) {
            assert!(
                !self.closed,
                "socket closed while waiting for {what}; errors {:?}",
                self.errors
            );
            let left = until.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {what}; errors {:?}",
                self.errors
            );
            self.pump_once(left.min(Duration::from_millis(200))).await;
        }
    }

    /// Pumps whatever arrives within `quiet` of silence.
    pub async fn drain(&mut self, quiet: Duration) {
        while self.pump_once(quiet).await && !self.closed {}
    }

    /// The heads the server last advertised for `id`.
    pub fn server_heads(&self, id: DocumentId) -> Vec<ChangeHash> {
        self.docs[&id].state.their_heads.clone().unwrap_or_default()
    }

    /// Our heads for `id`.
    pub fn heads(&mut self, id: DocumentId) -> Vec<ChangeHash> {
        self.docs.get_mut(&id).unwrap().doc.get_heads()
    }

    /// Whether our copy of `id` contains every change in `heads`.
    pub fn has_all(&mut self, id: DocumentId, heads: &[ChangeHash]) -> bool {
        let doc = &mut self.docs.get_mut(&id).unwrap().doc;
        heads.iter().all(|h| doc.get_change_by_hash(h).is_some())
    }

    /// Sends a raw frame.
    pub async fn send_raw(&mut self, bytes: Vec<u8>) {
        self.ws.send(WsMessage::Binary(bytes.into())).await.unwrap();
    }
}

/// Waits until a fresh client of the server receives every change in `heads` of
/// `doc`, pumping `writer` meanwhile (it may still have to answer the server). The
/// relay only advertises committed heads, so this also waits for the commit, without
/// depending on when the writer itself hears back.
pub async fn served_to_a_fresh_client(
    url: &str,
    writer: Option<&mut Client>,
    doc: DocumentId,
    heads: &[ChangeHash],
) {
    let mut reader = Client::connect(url, &format!("fresh-{}", uuid::Uuid::new_v4()), None).await;
    reader.request(doc).await;
    match writer {
        Some(w) => until_reader_has(w, &mut reader, doc, heads).await,
        None => {
            reader
                .until("a fresh client receives the changes", |c| {
                    c.has_all(doc, heads)
                })
                .await
        }
    }
}

/// Pumps `writer` and `reader` in turn until `reader` holds every change in `heads`.
pub async fn until_reader_has(
    writer: &mut Client,
    reader: &mut Client,
    doc: DocumentId,
    heads: &[ChangeHash],
) {
    let until = Instant::now() + DEADLINE;
    while !reader.has_all(doc, heads) {
        assert!(
            Instant::now() < until,
            "reader never received the changes; writer errors {:?}, reader errors {:?}",
            writer.errors,
            reader.errors
        );
        writer.pump_once(Duration::from_millis(10)).await;
        reader.pump_once(Duration::from_millis(10)).await;
    }
}

/// An edit that sets `key` to the integer `value` at the document root.
pub fn put(key: &str, value: i64) -> impl FnOnce(&mut AutoCommit) {
    let key = key.to_string();
    move |d| {
        d.put(automerge::ROOT, key, value).unwrap();
    }
}

/// The integer at `key` in the client's copy of `id`, if there is one.
pub fn value(c: &mut Client, id: DocumentId, key: &str) -> Option<i64> {
    let doc = &c.docs[&id].doc;
    match doc.get(automerge::ROOT, key).unwrap()? {
        (automerge::Value::Scalar(s), _) => match s.as_ref() {
            automerge::ScalarValue::Int(i) => Some(*i),
            _ => None,
        },
        _ => None,
    }
}

/// A store, site registry and authenticator sharing one temp data directory, the
/// in-process pieces the auth tests wire together.
pub struct Network {
    pub dir: tempfile::TempDir,
    pub store: Arc<SqliteStore>,
    pub registry: Arc<Registry>,
    pub auth: Arc<Authenticator>,
}

/// Opens a [`Network`] with the site tree hq → dc-north → agent-a; hq → dc-south,
/// each site named by `site_name(id)`.
pub fn network(site_name: impl Fn(&str) -> String) -> Network {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path(), &StoreOptions::default()).unwrap());
    let registry = Arc::new(Registry::open_in(dir.path()).unwrap());
    let auth =
        Arc::new(Authenticator::open(dir.path(), AuthConfig::default(), registry.clone()).unwrap());
    let docs = StoreDocuments(store.clone());
    for (id, kind, parent) in [
        ("hq", SiteKind::HeadOffice, None),
        ("dc-north", SiteKind::DistributionCentre, Some("hq")),
        ("dc-south", SiteKind::DistributionCentre, Some("hq")),
        ("agent-a", SiteKind::Agent, Some("dc-north")),
    ] {
        registry
            .create_site(
                &docs,
                SiteHeader {
                    id: id.into(),
                    name: site_name(id),
                    kind,
                    parent: parent.map(String::from),
                    channel: None,
                },
            )
            .unwrap();
    }
    Network {
        dir,
        store,
        registry,
        auth,
    }
}

/// Options for an in-process `serve` on a free local port over `data_dir`, with full
/// durability and default limits; returns the port too.
pub fn serve_options(data_dir: &Path, busy_timeout: Duration) -> (u16, ServeOptions) {
    let port = free_port();
    let options = ServeOptions {
        listen: format!("127.0.0.1:{port}").parse().unwrap(),
        data_dir: data_dir.to_path_buf(),
        durability: Durability::Full,
        limits: Limits::default(),
        idle_unload: Duration::from_secs(60),
        busy_timeout,
        max_loaded_docs: None,
        connections: Default::default(),
        tls: None,
        engine_shards: 0,
    };
    (port, options)
}
