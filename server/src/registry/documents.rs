//! How the registry writes documents: through a [`DocumentWriter`], straight onto the
//! store ([`StoreDocuments`]) or through a running relay's engine.

use std::sync::Arc;

use automerge::AutoCommit;
use dealersync_core::access::Claims;
use dealersync_core::protocol::DocumentId;
use dealersync_core::schema::SiteHeader;
use dealersync_core::store::{AuditRecord, Store, WriteBatch};
use dealersync_core::time::now_ms;

use super::RegistryError;

/// Writes site and network documents on the registry's behalf.
pub trait DocumentWriter: Send + Sync {
    /// Stores a new document from its saved bytes.
    fn create(&self, id: DocumentId, bytes: Vec<u8>) -> Result<(), RegistryError>;
    /// The document as it is now (every durable change), for reading or as the base
    /// of a new document.
    fn read(&self, id: DocumentId) -> Result<AutoCommit, RegistryError>;
    /// Loads a document, applies `edit`, and stores the resulting change durably,
    /// without an audit row (the operator's own set-up: sites, the demo seed).
    fn edit(
        &self,
        id: DocumentId,
        edit: &mut dyn FnMut(&mut AutoCommit) -> Result<(), RegistryError>,
    ) -> Result<(), RegistryError> {
        self.edit_as(id, None, edit)
    }
    /// [`DocumentWriter::edit`] on behalf of `author`: each change it makes is also
    /// recorded in the audit log under the author's user and device, in the same
    /// transaction, like a change a peer sends.
    fn edit_as(
        &self,
        id: DocumentId,
        author: Option<&Author>,
        edit: &mut dyn FnMut(&mut AutoCommit) -> Result<(), RegistryError>,
    ) -> Result<(), RegistryError>;
}

/// Who an edit made through the HTTP API is recorded under in the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    /// The user (`sub`).
    pub user: String,
    /// The device of the token or session, if any.
    pub device: Option<String>,
}

impl Author {
    /// The author of a request made with `claims`.
    pub fn of(claims: &Claims) -> Author {
        Author {
            user: claims.sub.clone(),
            device: claims.device.clone(),
        }
    }
}

/// A [`DocumentWriter`] straight onto a [`Store`]: for the CLI, first start and the
/// demo seed, when no relay holds the documents in memory.
pub struct StoreDocuments<S: ?Sized>(pub Arc<S>);

impl StoreDocuments<crate::storage::SqliteStore> {
    /// The document store of a stopped relay's data directory, for the admin
    /// subcommands that write documents without a running relay (`site add`, `archive`).
    pub fn open_in(data_dir: &std::path::Path) -> Result<Self, RegistryError> {
        let store =
            crate::storage::SqliteStore::open(data_dir, &crate::storage::StoreOptions::default())
                .map_err(|e| RegistryError::Invalid(format!("document store: {e}")))?;
        Ok(StoreDocuments(Arc::new(store)))
    }
}

impl<S: Store + ?Sized> DocumentWriter for StoreDocuments<S> {
    fn create(&self, id: DocumentId, bytes: Vec<u8>) -> Result<(), RegistryError> {
        let batch = WriteBatch {
            created: vec![(id, bytes)],
            ..WriteBatch::default()
        };
        Ok(self.0.commit(&batch)?)
    }

    fn read(&self, id: DocumentId) -> Result<AutoCommit, RegistryError> {
        load_stored(&*self.0, id)?.ok_or_else(|| RegistryError::Document {
            doc: id,
            reason: "not in the store".into(),
        })
    }

    fn edit_as(
        &self,
        id: DocumentId,
        author: Option<&Author>,
        edit: &mut dyn FnMut(&mut AutoCommit) -> Result<(), RegistryError>,
    ) -> Result<(), RegistryError> {
        let mut doc = self.read(id)?;
        let before = doc.get_heads();
        edit(&mut doc)?;
        let change = doc.save_after(&before);
        if doc.get_heads() == before {
            return Ok(());
        }
        let audit = author.map_or_else(Vec::new, |a| {
            AuditRecord::for_changes(
                id,
                doc.document(),
                &before,
                Some(&a.user),
                a.device.as_deref(),
                now_ms(),
            )
        });
        let batch = WriteBatch {
            appended: vec![(id, change)],
            audit,
            ..WriteBatch::default()
        };
        Ok(self.0.commit(&batch)?)
    }
}

/// A document as stored (its chunks joined and loaded), or `None` when the store has
/// no such document: the one way a stored document is read outside the engine.
pub fn load_stored<S: Store + ?Sized>(
    store: &S,
    id: DocumentId,
) -> Result<Option<AutoCommit>, RegistryError> {
    let Some(stored) = store.load(&id)? else {
        return Ok(None);
    };
    stored
        .load_for_edit()
        .map(Some)
        .map_err(|e| RegistryError::Document {
            doc: id,
            reason: format!("cannot load: {e}"),
        })
}

pub(super) fn doc_err(doc: DocumentId, e: impl std::fmt::Display) -> RegistryError {
    RegistryError::Document {
        doc,
        reason: e.to_string(),
    }
}

pub(super) fn put_network_site(
    docs: &dyn DocumentWriter,
    network: DocumentId,
    header: &SiteHeader,
) -> Result<(), RegistryError> {
    docs.edit(network, &mut |doc| {
        Ok(dealersync_core::domain::put_site(
            doc,
            header,
            "registry",
            now_ms(),
        )?)
    })
}
