//! A sync engine on a real WebSocket: the Rust client the tests and load tools drive.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use automerge::{Automerge, AutomergeError, ChangeHash, ReadDoc};
use dealersync_core::protocol::memory::MemoryStore;
use dealersync_core::protocol::{
    ConnId, ConnInfo, DocumentId, Engine, EngineConfig, Message, Output, PeerId,
};
use dealersync_core::store::Store;
use dealersync_core::time::now_ms;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::{HarnessError, Result};

/// The one connection a [`RustClient`] has.
pub(crate) const RUST_CONN: ConnId = ConnId(1);

/// A peer built on dealersync's own sync engine (`dealersync_core::protocol::engine`,
/// the code the field client uses) with an in-memory store, speaking to a server over
/// a real WebSocket (tokio-tungstenite).
///
/// The client is driven inline: every `wait_*` call reads frames, feeds them to the
/// engine, commits its write batches and sends what the engine says, until its
/// condition holds or its deadline passes.
pub struct RustClient {
    name: String,
    engine: Engine,
    store: MemoryStore,
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    ready: bool,
    closed: Option<String>,
    errors: Vec<String>,
    unavailable: HashSet<DocumentId>,
    server_peer: Option<PeerId>,
}

impl RustClient {
    /// Connects to `url`, sends `join` and waits for the server's `peer`.
    pub async fn connect(name: &str, url: &str, deadline: Duration) -> Result<Self> {
        Self::connect_with_headers(name, url, &[], deadline).await
    }

    /// Like [`RustClient::connect`], with extra HTTP headers on the upgrade request
    /// (`Authorization: Bearer T`, `Sec-WebSocket-Protocol`).
    pub async fn connect_with_headers(
        name: &str,
        url: &str,
        headers: &[(&str, &str)],
        deadline: Duration,
    ) -> Result<Self> {
        let bad = |what: String| HarnessError::RustClient {
            client: name.into(),
            what,
        };
        let mut request = url
            .into_client_request()
            .map_err(|e| bad(format!("bad URL {url}: {e}")))?;
        for (k, v) in headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| bad(format!("bad header name {k}: {e}")))?;
            let value =
                HeaderValue::from_str(v).map_err(|e| bad(format!("bad header {k}: {e}")))?;
            request.headers_mut().insert(name, value);
        }
        let (ws, _) = tokio::time::timeout(deadline, tokio_tungstenite::connect_async(request))
            .await
            .map_err(|_| HarnessError::RustClient {
                client: name.into(),
                what: format!("no WebSocket connection to {url} within {deadline:?}"),
            })?
            .map_err(|e| HarnessError::RustClient {
                client: name.into(),
                what: format!("WebSocket connection to {url} failed: {e}"),
            })?;
        let mut engine = Engine::new(
            PeerId(format!("rust-{name}-{}", rand::random::<u32>())),
            EngineConfig {
                limits: dealersync_core::protocol::SyncLimits::unlimited(),
                ..EngineConfig::default()
            },
        );
        let join = engine.connect_to_server(RUST_CONN, ConnInfo::full_access());
        let mut client = RustClient {
            name: name.into(),
            engine,
            store: MemoryStore::new(),
            ws,
            ready: false,
            closed: None,
            errors: Vec::new(),
            unavailable: HashSet::new(),
            server_peer: None,
        };
        client.handle(join).await?;
        client
            .pump_until("the server's `peer` answer", deadline, |c| c.ready)
            .await?;
        Ok(client)
    }

    /// Starts syncing a document and waits until the server has sent it (it has
    /// heads). A document the server does not have or denies fails with the
    /// `doc-unavailable` it answered.
    pub async fn open(&mut self, doc: &DocumentId, deadline: Duration) -> Result<()> {
        let outs = self
            .engine
            .open(*doc, &self.store)
            .map_err(|e| self.fail(format!("open {doc}: {e}")))?;
        self.handle(outs).await?;
        let d = *doc;
        self.pump_until(&format!("document {doc}"), deadline, move |c| {
            c.unavailable.contains(&d)
                || c.engine
                    .document(&d)
                    .is_some_and(|am| !am.get_heads().is_empty())
        })
        .await?;
        if self.unavailable.contains(doc) {
            return Err(self.fail(format!("the server answered doc-unavailable for {doc}")));
        }
        Ok(())
    }

    /// Makes one local change (one automerge transaction), commits it to the client's
    /// store and sends it. Returns the new heads.
    pub async fn change<F>(&mut self, doc: &DocumentId, edit: F) -> Result<Vec<ChangeHash>>
    where
        F: FnOnce(&mut automerge::transaction::Transaction<'_>) -> Result<(), AutomergeError>,
    {
        let Some(am) = self.engine.document_mut(doc) else {
            return Err(self.fail(format!("change: {doc} is not open")));
        };
        let result = am.transact(|tx| edit(tx)).map(|_| am.get_heads());
        let heads =
            result.map_err(|f| self.fail(format!("change to {doc} failed: {}", f.error)))?;
        self.engine
            .local_change(doc)
            .map_err(|e| self.fail(format!("local_change: {e}")))?;
        self.commit_and_send().await?;
        Ok(heads)
    }

    /// The document as the client holds it (including uncommitted local changes).
    pub fn document(&self, doc: &DocumentId) -> Option<&Automerge> {
        self.engine.document(doc)
    }

    /// The document as plain JSON (automerge's own serde view), comparable with what
    /// [`crate::JsClient`] reports.
    pub fn document_json(&self, doc: &DocumentId) -> Option<Value> {
        self.engine
            .document(doc)
            .and_then(|am| serde_json::to_value(automerge::AutoSerde::from(am)).ok())
    }

    /// The document's heads as hex strings, sorted.
    pub fn heads(&self, doc: &DocumentId) -> Vec<String> {
        let mut h: Vec<String> = self
            .engine
            .document(doc)
            .map(|am| am.get_heads().iter().map(|h| h.to_string()).collect())
            .unwrap_or_default();
        h.sort();
        h
    }

    /// `error` messages the server sent.
    pub fn errors(&self) -> &[String] {
        &self.errors
    }

    /// Why the connection ended, if it has.
    pub fn closed(&self) -> Option<&str> {
        self.closed.as_deref()
    }

    /// Whether the server answered `doc-unavailable` for the document.
    pub fn is_unavailable(&self, doc: &DocumentId) -> bool {
        self.unavailable.contains(doc)
    }

    /// Waits until the document contains every change in `heads` (hex hashes).
    pub async fn wait_heads(
        &mut self,
        doc: &DocumentId,
        heads: &[String],
        deadline: Duration,
    ) -> Result<()> {
        let wanted: Vec<ChangeHash> = heads
            .iter()
            .map(|h| h.parse())
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| HarnessError::BadAnswer(self.name.clone(), format!("heads: {e}")))?;
        let d = *doc;
        self.pump_until(&format!("changes {heads:?} in {doc}"), deadline, move |c| {
            c.engine
                .document(&d)
                .is_some_and(|am| wanted.iter().all(|h| am.get_change_by_hash(h).is_some()))
        })
        .await
    }

    /// Waits until the server has acknowledged everything this client has: the
    /// server's advertised heads equal ours.
    pub async fn wait_synced(&mut self, doc: &DocumentId, deadline: Duration) -> Result<()> {
        let d = *doc;
        self.pump_until(
            &format!("{doc} in sync with the server"),
            deadline,
            move |c| c.engine.is_synced(&d, RUST_CONN),
        )
        .await
    }

    /// Reads and handles frames until `cond` holds, failing at the deadline, when the
    /// socket closes, or if the server sends `error`.
    pub async fn pump_until(
        &mut self,
        what: &str,
        deadline: Duration,
        mut cond: impl FnMut(&RustClient) -> bool,
    ) -> Result<()> {
        let until = Instant::now() + deadline;
        loop {
            self.commit_and_send().await?;
            if cond(self) {
                return Ok(());
            }
            if let Some(why) = &self.closed {
                return Err(self.fail(format!("waiting for {what}: connection closed ({why})")));
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.fail(format!("no {what} within {deadline:?}")));
            }
            match tokio::time::timeout(left, self.ws.next()).await {
                Err(_) => continue, // the deadline check above reports it
                Ok(read) => self.receive(read).await?,
            }
        }
    }

    /// Handles the frames that have already arrived, without waiting for more: what a
    /// client writing many changes in a row does between them, so that the server's
    /// answers do not pile up unread (a relay closes a connection that does not read
    /// its socket within its write timeout).
    pub async fn pump_ready(&mut self) -> Result<()> {
        loop {
            self.commit_and_send().await?;
            if self.closed.is_some() {
                return Ok(());
            }
            match futures_util::FutureExt::now_or_never(self.ws.next()) {
                None => return Ok(()),
                Some(read) => self.receive(read).await?,
            }
        }
    }

    /// One read from the socket: a frame goes to the engine, an end is remembered.
    async fn receive(
        &mut self,
        read: Option<Result<WsMessage, tokio_tungstenite::tungstenite::Error>>,
    ) -> Result<()> {
        match read {
            None => self.closed = Some("the socket ended".into()),
            Some(Err(e)) => self.closed = Some(format!("socket error: {e}")),
            Some(Ok(WsMessage::Binary(frame))) => {
                match Message::decode(&frame) {
                    Ok(Message::Error { message, .. }) => self.errors.push(message),
                    Ok(Message::Peer { sender_id, .. }) => self.server_peer = Some(sender_id),
                    _ => {}
                }
                let outs = self
                    .engine
                    .receive(RUST_CONN, &frame, now_ms(), &self.store);
                self.handle(outs).await?;
            }
            Some(Ok(WsMessage::Close(frame))) => {
                self.closed = Some(format!("closed by the server: {frame:?}"));
            }
            // Pings are answered by tungstenite on the next read; text frames are
            // not part of the protocol.
            Some(Ok(_)) => {}
        }
        Ok(())
    }

    /// Sends a hand-made automerge sync message for `doc` to the server, bypassing
    /// the engine: how a test plays a client that ignores the server's READ_ONLY flag
    /// (automerge itself never sends changes to a peer that advertised it) or pushes
    /// changes for a document it was refused.
    pub async fn send_sync_message(
        &mut self,
        doc: &DocumentId,
        message: automerge::sync::Message,
    ) -> Result<()> {
        let server = self
            .server_peer
            .clone()
            .ok_or_else(|| self.fail("no `peer` answer from the server yet".into()))?;
        let frame = Message::Sync {
            sender_id: self.engine.peer_id().clone(),
            target_id: server,
            document_id: *doc,
            data: message.encode(),
        }
        .encode();
        self.ws
            .send(WsMessage::Binary(frame.into()))
            .await
            .map_err(|e| self.fail(format!("send a sync message for {doc}: {e}")))
    }

    /// Closes the WebSocket politely.
    pub async fn close(mut self) -> Result<()> {
        self.engine.disconnect(RUST_CONN);
        let _ = self.ws.close(None).await;
        Ok(())
    }

    fn fail(&self, what: String) -> HarnessError {
        let errors = if self.errors.is_empty() {
            String::new()
        } else {
            format!(" (server errors: {:?})", self.errors)
        };
        HarnessError::RustClient {
            client: self.name.clone(),
            what: format!("{what}{errors}"),
        }
    }

    async fn commit_and_send(&mut self) -> Result<()> {
        while let Some((token, batch)) = self.engine.take_write_batch() {
            let outs = match self.store.commit(&batch) {
                Ok(()) => self.engine.commit_succeeded(token, now_ms(), &self.store),
                Err(e) => self.engine.commit_failed(token, &e, now_ms(), &self.store),
            };
            self.handle(outs).await?;
        }
        Ok(())
    }

    async fn handle(&mut self, outs: Vec<Output>) -> Result<()> {
        for o in outs {
            match o {
                Output::Send { bytes, .. } => {
                    if self.closed.is_none()
                        && let Err(e) = self.ws.send(WsMessage::Binary(bytes.into())).await
                    {
                        self.closed = Some(format!("send failed: {e}"));
                    }
                }
                Output::Close { reason, .. } => {
                    let _ = self.ws.close(None).await;
                    self.closed = Some(format!("closed by our engine: {reason}"));
                }
                Output::PeerReady { .. } => self.ready = true,
                Output::DocumentUnavailable { doc, .. } => {
                    self.unavailable.insert(doc);
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// A sync message carrying `changes`, as a client that ignores the READ_ONLY flag
/// (or its refusal) would send it; for [`RustClient::send_sync_message`].
pub fn sync_message(
    heads: Vec<ChangeHash>,
    changes: Vec<automerge::Change>,
) -> automerge::sync::Message {
    let raw: Vec<Vec<u8>> = changes.iter().map(|c| c.raw_bytes().to_vec()).collect();
    automerge::sync::Message {
        heads,
        need: Vec::new(),
        have: Vec::new(),
        changes: raw.into(),
        flags: None,
        version: automerge::sync::MessageVersion::V1,
    }
}
