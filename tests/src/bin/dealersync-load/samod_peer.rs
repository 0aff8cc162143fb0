//! A stock Rust automerge-repo client: a samod `Repo` per connection (as each phone or
//! service would have its own), dialing the relay through the same WebSocket library
//! and socket options as the engine clients, with samod's in-memory storage.

use futures_util::future::BoxFuture;
use samod::{BackoffConfig, DialError, Dialer, DocHandle, Repo, Transport};

use crate::*;

/// Dials the relay with tokio-tungstenite (TCP_NODELAY, as browsers and Node's `ws`).
struct WsDialer {
    url: String,
}

/// A dial that failed; samod retries (the relay restarting or refusing for a moment).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct DialFailed(String);

impl Dialer for WsDialer {
    type Error = DialFailed;

    fn url(&self) -> samod::Url {
        // Only for samod's logs: without the token.
        samod::Url::parse(shown(&self.url)).expect("a checked ws:// URL")
    }

    fn connect(&self) -> BoxFuture<'static, Result<Transport, DialError<DialFailed>>> {
        let url = self.url.clone();
        Box::pin(async move {
            let (ws, _) = tokio_tungstenite::connect_async_with_config(&url, None, true)
                .await
                .map_err(DialError::transient)?;
            let (sink, stream) = ws.split();
            let stream = stream.filter_map(|m| {
                futures_util::future::ready(match m {
                    Ok(WsMessage::Binary(b)) => Some(Ok(b.to_vec())),
                    Ok(WsMessage::Text(_)) => Some(Err(DialFailed("text frame".into()))),
                    Ok(_) => None,
                    Err(e) => Some(Err(DialFailed(e.to_string()))),
                })
            });
            let sink = sink
                .sink_map_err(|e| DialFailed(e.to_string()))
                .with(|b: Vec<u8>| {
                    futures_util::future::ok::<_, DialFailed>(WsMessage::Binary(b.into()))
                });
            Ok(Transport::new(Box::pin(stream), Box::pin(sink)))
        })
    }
}

/// One samod peer with one document open.
pub(crate) struct SamodPeer {
    repo: Repo,
    handle: DocHandle,
    /// One item per change samod applied to the document.
    changes: futures_util::stream::BoxStream<'static, ()>,
}

impl SamodPeer {
    /// Starts a repo, dials the relay, and finds `doc` (waits until samod has synced
    /// it from the relay or gives up at `deadline`).
    pub(crate) async fn connect(
        url: &str,
        doc: DocumentId,
        deadline: TokioInstant,
    ) -> anyhow::Result<SamodPeer> {
        let repo = Repo::build_tokio().load().await;
        let dialer = repo
            .dial(
                BackoffConfig::default(),
                Arc::new(WsDialer {
                    url: url.to_owned(),
                }),
            )
            .map_err(|_| anyhow::anyhow!("samod repo stopped"))?;
        let setup = async {
            dialer
                .established()
                .await
                .map_err(|e| anyhow::anyhow!("samod could not connect: {e:?}"))?;
            let id: samod::DocumentId = doc
                .to_string()
                .parse()
                .map_err(|e| anyhow::anyhow!("document id: {e:?}"))?;
            repo.find(id)
                .await
                .map_err(|_| anyhow::anyhow!("samod repo stopped"))?
                .with_context(|| format!("the relay says {doc} is unavailable"))
        };
        let handle = tokio::time::timeout_at(deadline, setup)
            .await
            .context("timed out finding the document with samod")??;
        let changes = handle.changes().map(|_| ()).boxed();
        Ok(SamodPeer {
            repo,
            handle,
            changes,
        })
    }

    /// Waits until samod applied something new to the document.
    pub(crate) async fn recv(&mut self) -> anyhow::Result<()> {
        self.changes
            .next()
            .await
            .context("samod stopped reporting changes")
    }

    /// Writes `key` = `value` as one change; samod syncs it to the relay.
    pub(crate) fn write(&mut self, key: &str, value: i64) -> anyhow::Result<()> {
        self.handle.with_document(|am| {
            let mut tx = am.transaction();
            tx.put(ROOT, key, ScalarValue::Int(value))?;
            tx.commit();
            anyhow::Ok(())
        })
    }

    /// The integer at `key` of the root map, once samod has it.
    pub(crate) fn int_at(&self, key: &str) -> Option<i64> {
        self.handle.with_document(|am| int_in(am, key))
    }

    /// Whether samod has the document's content.
    pub(crate) fn synced(&self) -> bool {
        self.handle.with_document(|am| !am.get_heads().is_empty())
    }

    pub(crate) async fn close(self) {
        self.repo.stop().await;
    }
}
