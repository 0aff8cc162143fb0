//! One client peer on the project's own engine: the reference client of every run.

use crate::*;

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What a new [`Peer`] does with its document.
pub(crate) enum Open {
    /// Ask the relay for it.
    Existing,
    /// Add it as a new local document and sync it up.
    Create(Box<Automerge>),
    /// Nothing (only the handshake).
    Nothing,
}

/// Whether clients advertise a storage id (`--client-storage-ids`).
pub(crate) static CLIENT_STORAGE_IDS: AtomicBool = AtomicBool::new(false);

/// The only connection of each client engine.
pub(crate) const CONN: ConnId = ConnId(1);

/// One automerge-repo client: an engine, its in-memory store, one WebSocket, one
/// document.
pub(crate) struct Peer {
    pub(crate) engine: Engine,
    pub(crate) store: MemoryStore,
    pub(crate) doc: DocumentId,
    pub(crate) sink: SplitSink<Ws, WsMessage>,
    pub(crate) stream: SplitStream<Ws>,
    /// The relay answered `join` with `peer`.
    pub(crate) ready: bool,
}

impl Peer {
    /// Connects, joins and opens `doc` as `open` says.
    pub(crate) async fn connect(
        url: &str,
        name: &str,
        doc: DocumentId,
        open: Open,
    ) -> anyhow::Result<Peer> {
        // TCP_NODELAY, as browsers and Node's `ws` set it: with Nagle on, a small frame
        // written while the previous one is unacknowledged waits for a delayed ACK.
        let (ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true)
            .await
            .with_context(|| format!("cannot connect to {url}"))?;
        let (sink, stream) = ws.split();
        let name = format!("load-{}-{name}", std::process::id());
        let mut peer = Peer {
            engine: Engine::new(
                name.as_str().into(),
                EngineConfig {
                    // A storage id makes the relay persist a sync state per (document,
                    // client), as it does for real devices.
                    storage_id: CLIENT_STORAGE_IDS
                        .load(Ordering::Relaxed)
                        .then(|| StorageId(format!("{name}-storage"))),
                    ..EngineConfig::default()
                },
            ),
            store: MemoryStore::new(),
            doc,
            sink,
            stream,
            ready: false,
        };
        let join = peer.engine.connect_to_server(CONN, ConnInfo::full_access());
        peer.flush(join).await?;
        let outs = match open {
            Open::Existing => peer.engine.open(doc, &peer.store)?,
            Open::Create(am) => peer.engine.add_local_document(doc, *am, &peer.store)?,
            Open::Nothing => Vec::new(),
        };
        peer.flush(outs).await?;
        Ok(peer)
    }

    /// Sends the engine's frames, commits its write batches (memory, instant) and
    /// sends what the commits release, until nothing is left.
    pub(crate) async fn flush(&mut self, outs: Vec<Output>) -> anyhow::Result<()> {
        let mut outs = outs;
        loop {
            let mut sent = false;
            for o in outs.drain(..) {
                match o {
                    Output::Send { bytes, .. } => {
                        self.sink.feed(WsMessage::Binary(bytes.into())).await?;
                        sent = true;
                    }
                    Output::Close { reason, .. } => bail!("the engine closed: {reason}"),
                    Output::DocumentUnavailable { doc, .. } => {
                        bail!("the relay says {doc} is unavailable")
                    }
                    Output::CreateFailed { error, .. } => bail!("local create failed: {error}"),
                    Output::PeerReady { .. } => self.ready = true,
                    _ => {}
                }
            }
            if sent {
                self.sink.flush().await?;
            }
            let Some((token, batch)) = self.engine.take_write_batch() else {
                return Ok(());
            };
            outs = match self.store.commit(&batch) {
                Ok(()) => self.engine.commit_succeeded(token, now_ms(), &self.store),
                Err(e) => bail!("in-memory commit failed: {e}"),
            };
        }
    }

    /// Waits for one frame and hands it to the engine.
    pub(crate) async fn recv(&mut self) -> anyhow::Result<()> {
        loop {
            match self.stream.next().await {
                Some(Ok(WsMessage::Binary(b))) => {
                    let outs = self.engine.receive(CONN, &b, now_ms(), &self.store);
                    return self.flush(outs).await;
                }
                Some(Ok(WsMessage::Close(f))) => bail!("the relay closed the connection: {f:?}"),
                Some(Ok(WsMessage::Text(t))) => bail!("unexpected text frame: {t}"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => bail!("websocket error: {e}"),
                None => bail!("the connection ended"),
            }
        }
    }

    pub(crate) fn synced(&self) -> bool {
        self.engine.is_synced(&self.doc, CONN)
            && self
                .engine
                .document(&self.doc)
                .is_some_and(|d| !d.get_heads().is_empty())
    }

    pub(crate) async fn wait_synced(&mut self, deadline: TokioInstant) -> anyhow::Result<()> {
        while !self.synced() {
            tokio::time::timeout_at(deadline, self.recv())
                .await
                .context("timed out syncing the document")??;
        }
        Ok(())
    }

    /// One small map write as its own change; returns its hash.
    pub(crate) fn change(&mut self, key: &str, value: i64) -> anyhow::Result<ChangeHash> {
        let am = self
            .engine
            .document_mut(&self.doc)
            .context("document not open")?;
        let mut tx = am.transaction();
        tx.put(ROOT, key, ScalarValue::Int(value))?;
        let (hash, _) = tx.commit();
        self.engine.local_change(&self.doc)?;
        hash.context("empty change")
    }

    pub(crate) fn int_at(&self, key: &str) -> Option<i64> {
        int_in(self.engine.document(&self.doc)?, key)
    }

    pub(crate) async fn close(mut self) {
        let _ = self.sink.close().await;
    }
}

/// The integer at `key` of a document's root map.
pub(crate) fn int_in(am: &Automerge, key: &str) -> Option<i64> {
    match am.get(ROOT, key).ok()?? {
        (Value::Scalar(s), _) => match s.as_ref() {
            ScalarValue::Int(i) => Some(*i),
            _ => None,
        },
        _ => None,
    }
}
