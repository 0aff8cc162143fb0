//! The documents on this device: loading them from the store and changing them
//! durably.
//!
//! Every writer (a command, a running `sync`) holds the home's write lock while it
//! reads-modifies-commits, so a compaction never drops a chunk another process just
//! appended.

use std::fs::File;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use automerge::AutoCommit;
use dealersync_core::access::Access;
use dealersync_core::protocol::DocumentId;
use dealersync_core::schema::{NetworkDocument, SiteDocument};
use dealersync_core::store::{Store, WriteBatch};

use crate::home::{Config, DocRef, Home};
use crate::store::{ClientState, SqliteStore, StoreOptions};

/// Incremental bytes beyond which a document is compacted into one snapshot, relative
/// to the snapshot's size (and at least this absolute amount).
const COMPACT_MIN_BYTES: u64 = 256 * 1024;

/// A logged-in device's documents.
pub struct Workspace {
    /// The home directory.
    pub home: Home,
    /// The stored login.
    pub config: Config,
    /// Documents and sync states.
    pub store: Arc<dyn Store>,
    /// Sync bookkeeping.
    pub state: ClientState,
}

/// An exclusive hold on the home's write lock, released on drop.
pub struct WriteLock(File);

impl Drop for WriteLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

impl Workspace {
    /// Opens the workspace of a logged-in device.
    pub fn open(home: Home) -> Result<Workspace> {
        let config = home.require_config()?;
        Self::open_with(home, config)
    }

    /// Opens the workspace with a login not yet saved (during `login`).
    pub fn open_with(home: Home, config: Config) -> Result<Workspace> {
        home.ensure()?;
        let path = home.store_path();
        let store = SqliteStore::open_file(&path, &StoreOptions::default())
            .with_context(|| format!("cannot open the store {}", path.display()))?;
        let state = ClientState::open(&path)
            .with_context(|| format!("cannot open the store {}", path.display()))?;
        Ok(Workspace {
            home,
            config,
            store: Arc::new(store),
            state,
        })
    }

    /// Takes the write lock (waits for another writer on this device to finish).
    pub fn lock(&self) -> Result<WriteLock> {
        let path = self.home.dir.join("write.lock");
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        f.lock()
            .with_context(|| format!("cannot lock {}", path.display()))?;
        Ok(WriteLock(f))
    }

    /// Loads a document from the store; `None` if this device has none of it yet.
    pub fn load(&self, id: &DocumentId) -> Result<Option<AutoCommit>> {
        Ok(self.load_sized(id)?.map(|(doc, _)| doc))
    }

    /// Loads a document and tells whether its chunks are due for compaction.
    fn load_sized(&self, id: &DocumentId) -> Result<Option<(AutoCommit, bool)>> {
        let Some(stored) = self.store.load(id)? else {
            return Ok(None);
        };
        let mut doc = AutoCommit::new();
        for chunk in &stored.chunks {
            doc.load_incremental(chunk)
                .with_context(|| format!("stored document {id} is damaged"))?;
        }
        let compact = stored.incremental_bytes > COMPACT_MIN_BYTES.max(stored.snapshot_bytes);
        Ok(Some((doc, compact)))
    }

    /// The network document (catalogue, site tree, targets), empty if not yet synced.
    pub fn network(&self) -> Result<NetworkDocument> {
        match self.load(&self.config.network)? {
            Some(doc) => NetworkDocument::read(&doc).context("the network document is unreadable"),
            None => Ok(NetworkDocument::new()),
        }
    }

    /// The site this command works on: `--site`, else the user's own site.
    pub fn pick_site(&self, site: Option<&str>) -> Result<DocRef> {
        let wanted = site.unwrap_or(&self.config.claims.site);
        self.config
            .documents()
            .into_iter()
            .find(|d| d.site.as_ref().is_some_and(|s| s.id == wanted))
            .ok_or_else(|| {
                let known: Vec<String> = self.config.sites.iter().map(|s| s.id.clone()).collect();
                anyhow!(
                    "this device holds no document for site {wanted:?}; sites you can access: {}",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                )
            })
    }

    /// Loads a site document, or explains that it has not been synced yet.
    pub fn site_doc(&self, doc: &DocRef) -> Result<(AutoCommit, SiteDocument)> {
        if !doc.access.can_read() {
            bail!(
                "{} ({}) may not access the document of site {}",
                self.config.claims.sub,
                self.config.claims.role,
                doc.label
            );
        }
        let (am, _) = self.site_doc_sized(doc)?;
        let site = SiteDocument::read(&am)
            .with_context(|| format!("the document of site {} is unreadable", doc.label))?;
        Ok((am, site))
    }

    fn site_doc_sized(&self, doc: &DocRef) -> Result<(AutoCommit, bool)> {
        self.load_sized(&doc.id)?.ok_or_else(|| {
            anyhow!(
                "the document of site {} is not on this device yet; run `dealersync sync` \
                 once with a network connection",
                doc.label
            )
        })
    }

    /// Every site document this device holds, hydrated (sites not yet synced are
    /// skipped).
    pub fn all_sites(&self) -> Result<Vec<(DocRef, SiteDocument)>> {
        let mut out = Vec::new();
        for d in self.config.documents() {
            if d.site.is_none() || !d.access.can_read() {
                continue;
            }
            if let Some(am) = self.load(&d.id)? {
                let site = SiteDocument::read(&am)
                    .with_context(|| format!("the document of site {} is unreadable", d.label))?;
                out.push((d, site));
            }
        }
        Ok(out)
    }

    /// Refuses, before anything is loaded or changed, a write the server would reject.
    pub fn require_write(&self, doc: &DocRef) -> Result<()> {
        let what = if doc.site.is_some() {
            format!("site {}", doc.label)
        } else {
            doc.label.clone()
        };
        let who = format!("{} ({})", self.config.claims.sub, self.config.claims.role);
        match doc.access {
            Access::ReadWrite => Ok(()),
            Access::ReadOnly => bail!(
                "{who} may only read the document of {what}; nothing was changed{}",
                if doc.site.is_some() {
                    " (use --site to pick a site you may write)"
                } else {
                    ""
                }
            ),
            Access::None => {
                bail!("{who} may not access the document of {what}; nothing was changed")
            }
        }
    }

    /// Applies `change` to a site document and returns once the change is committed to
    /// the device's store. Refuses before loading anything when the user may not write
    /// the document; if `change` fails the store is untouched.
    pub fn edit_site<T>(
        &self,
        doc: &DocRef,
        change: impl FnOnce(&mut AutoCommit) -> Result<T>,
    ) -> Result<T> {
        self.require_write(doc)?;
        let _lock = self.lock()?;
        let (mut am, compact) = self.site_doc_sized(doc)?;
        let before = am.get_heads();
        let out = change(&mut am)?;
        am.commit();
        let mut batch = WriteBatch::default();
        stage(&doc.id, &mut am, &before, compact, &mut batch);
        self.commit(&batch)?;
        self.state.bump_edits(&doc.id)?;
        Ok(out)
    }

    /// Like [`Workspace::edit_site`] for a change that writes two site documents at
    /// once (a transfer); both are committed in one transaction.
    pub fn edit_two<T>(
        &self,
        a: &DocRef,
        b: &DocRef,
        change: impl FnOnce(&mut AutoCommit, &mut AutoCommit) -> Result<T>,
    ) -> Result<T> {
        self.require_write(a)?;
        self.require_write(b)?;
        if a.id == b.id {
            bail!("{} is named twice: this takes two different sites", a.label);
        }
        let _lock = self.lock()?;
        let (mut am_a, compact_a) = self.site_doc_sized(a)?;
        let (mut am_b, compact_b) = self.site_doc_sized(b)?;
        let (before_a, before_b) = (am_a.get_heads(), am_b.get_heads());
        let out = change(&mut am_a, &mut am_b)?;
        am_a.commit();
        am_b.commit();
        let mut batch = WriteBatch::default();
        stage(&a.id, &mut am_a, &before_a, compact_a, &mut batch);
        stage(&b.id, &mut am_b, &before_b, compact_b, &mut batch);
        self.commit(&batch)?;
        self.state.bump_edits(&a.id)?;
        self.state.bump_edits(&b.id)?;
        Ok(out)
    }

    /// Commits a batch durably, with an error that says nothing was recorded.
    pub fn commit(&self, batch: &WriteBatch) -> Result<()> {
        self.store
            .commit(batch)
            .context("the change could not be saved on this device; nothing was recorded")
    }
}

/// Adds to `batch` what changed in `am` since `before`: the new changes, or a compacted
/// snapshot when `compact`. The caller holds the write lock and loaded `am` under it,
/// so the snapshot contains every committed chunk.
fn stage(
    id: &DocumentId,
    am: &mut AutoCommit,
    before: &[automerge::ChangeHash],
    compact: bool,
    batch: &mut WriteBatch,
) {
    if am.get_heads() == before {
        return;
    }
    if compact {
        batch.snapshots.push((*id, am.save()));
    } else {
        batch.appended.push((*id, am.save_after(before)));
    }
}
