//! The admin path: site and network edits made through the running relay.

use super::*;

/// A [`DocumentWriter`] through the running relay: the admin API's site and network
/// edits become the engine's own local changes, committed like any other and sent to
/// every connected peer of the document at once. Each call blocks until the change is
/// durable: call it from a blocking thread (`spawn_blocking`), never from async code.
pub struct RelayDocuments {
    handle: RelayHandle,
}

impl RelayDocuments {
    /// Writes through the relay behind `handle`.
    pub fn new(handle: RelayHandle) -> Self {
        RelayDocuments { handle }
    }

    /// Sends the event made by `event` to `doc`'s shard and waits for its answer.
    fn ask<T>(
        &self,
        doc: DocumentId,
        event: impl FnOnce(oneshot::Sender<Result<T, RegistryError>>) -> Event,
    ) -> Result<T, RegistryError> {
        let (tx, rx) = oneshot::channel();
        let stopped = || RegistryError::Store(StoreError::Io("the relay is shutting down".into()));
        self.handle
            .shards
            .of(&doc)
            .events
            .blocking_send(event(tx))
            .map_err(|_| stopped())?;
        rx.blocking_recv().map_err(|_| stopped())?
    }
}

impl DocumentWriter for RelayDocuments {
    fn create(&self, id: DocumentId, bytes: Vec<u8>) -> Result<(), RegistryError> {
        self.ask(id, |reply| Event::AdminCreate {
            doc: id,
            bytes,
            reply,
        })
    }

    fn read(&self, id: DocumentId) -> Result<AutoCommit, RegistryError> {
        let bytes = self.ask(id, |reply| Event::AdminRead { doc: id, reply })?;
        AutoCommit::load(&bytes).map_err(|e| RegistryError::Document {
            doc: id,
            reason: format!("cannot load: {e}"),
        })
    }

    fn edit_as(
        &self,
        id: DocumentId,
        author: Option<&Author>,
        edit: &mut dyn FnMut(&mut AutoCommit) -> Result<(), RegistryError>,
    ) -> Result<(), RegistryError> {
        // The edit runs here, on a copy with its own fresh actor id, so that the engine
        // thread never waits on it; the resulting changes merge like a peer's.
        let mut doc = self.read(id)?;
        let before = doc.get_heads();
        edit(&mut doc)?;
        let changes = doc.save_after(&before);
        if doc.get_heads() == before {
            return Ok(());
        }
        let heads = doc.get_heads();
        self.ask(id, |reply| Event::AdminApply {
            doc: id,
            changes,
            heads,
            author: author.cloned(),
            reply,
        })
    }
}
