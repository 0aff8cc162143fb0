//! The reports' read model: every site document hydrated once, with each site's KPI
//! aggregates per period and its conflict inputs, kept up to date from the relay's
//! commit notifications so that a report request reads memory instead of reloading
//! hundreds of documents.
//!
//! One thread follows [`crate::relay::RelayHandle::subscribe_commits`]; for each batch
//! of changed documents it reads their stored chunks, applies the new ones to the
//! automerge document it keeps for recently changed sites ([`incremental`]), reads
//! again only the records the change touched, recomputes the site's aggregates for the
//! periods already asked for and its conflict inputs, swaps the entry in, and tells
//! live clients which sites changed ([`ReportChange`]). A site whose automerge document
//! is not kept (more sites changed since than [`RESIDENT_DOCUMENTS`]) is loaded whole
//! on its next change.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use dealersync_core::conflicts::{Conflict, SiteConflicts, detect_network};
use dealersync_core::protocol::DocumentId;
use dealersync_core::reports::{AggregateSource, SiteAggregate};
use dealersync_core::schema::{NetworkDocument, Period, SiteDocument};
use dealersync_core::store::{Store, StoredDocument};
use serde::Serialize;
use tokio::sync::{broadcast, watch};

use super::incremental::{self, Resident, Residents, Touched};
use crate::registry::{Registry, RegistryError};
use crate::storage::SqliteStore;

/// Periods whose aggregates one site keeps (the most recently asked first out when
/// full): the current day, week, month, quarter and year of a few views fit easily.
pub const CACHED_PERIODS: usize = 24;

/// How many change notices live clients may fall behind by.
const CHANGE_NOTICES: usize = 1024;

/// How many site documents the read model keeps in automerge form by default, the
/// most recently changed (see docs/benchmarks.md for what one costs in memory).
pub const RESIDENT_DOCUMENTS: usize = 64;

/// One site as the reports see it: its hydrated document and its aggregates.
pub struct SiteEntry {
    /// The site document, hydrated.
    pub doc: SiteDocument,
    /// Aggregates of this document version per period, newest use last.
    aggregates: Mutex<Vec<(Period, Arc<SiteAggregate>)>>,
}

impl SiteEntry {
    fn new(doc: SiteDocument, periods: &[Period]) -> SiteEntry {
        let aggregates = periods
            .iter()
            .map(|&p| (p, Arc::new(aggregate_of(&doc, p))))
            .collect();
        SiteEntry {
            doc,
            aggregates: Mutex::new(aggregates),
        }
    }

    fn periods(&self) -> Vec<Period> {
        self.lock().iter().map(|(p, _)| *p).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Period, Arc<SiteAggregate>)>> {
        self.aggregates.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The aggregate for `period`, computed and kept on first use.
    fn aggregate(&self, period: Period) -> Arc<SiteAggregate> {
        let mut cache = self.lock();
        if let Some(i) = cache.iter().position(|(p, _)| *p == period) {
            let hit = cache.remove(i);
            let agg = hit.1.clone();
            cache.push(hit);
            return agg;
        }
        let agg = Arc::new(aggregate_of(&self.doc, period));
        if cache.len() >= CACHED_PERIODS {
            cache.remove(0);
        }
        cache.push((period, agg.clone()));
        agg
    }
}

/// The reports check the period before asking for aggregates; an invalid one here
/// would be a bug, answered with empty counts rather than a panic.
fn aggregate_of(doc: &SiteDocument, period: Period) -> SiteAggregate {
    SiteAggregate::compute(doc, period).unwrap_or_default()
}

/// What the read model holds at one moment.
#[derive(Clone, Default)]
pub struct Snapshot {
    /// The network document (empty before the network exists).
    pub network: Arc<NetworkDocument>,
    /// Site id → entry, for every site whose document is stored and readable.
    pub sites: HashMap<String, Arc<SiteEntry>>,
    /// Site id → what the conflict report needs of its document, for every site whose
    /// document loads (also one that does not hydrate: its conflicts are still listed).
    pub conflicts: HashMap<String, Arc<SiteConflicts>>,
    /// The network document's conflicts (head office's transfer decisions).
    pub network_conflicts: Arc<Vec<Conflict>>,
}

impl Snapshot {
    /// A snapshot of hydrated documents, without a store (benchmarks, tools).
    pub fn from_documents(network: NetworkDocument, docs: Vec<SiteDocument>) -> Snapshot {
        Snapshot {
            network: Arc::new(network),
            sites: docs
                .into_iter()
                .map(|d| (d.site.id.clone(), Arc::new(SiteEntry::new(d, &[]))))
                .collect(),
            ..Snapshot::default()
        }
    }
}

impl AggregateSource for Snapshot {
    fn aggregate(&self, doc: &SiteDocument, period: Period) -> Arc<SiteAggregate> {
        match self.sites.get(&doc.site.id) {
            // Only the entry's own document: its aggregates describe that version.
            Some(e) if std::ptr::eq(&e.doc, doc) => e.aggregate(period),
            _ => Arc::new(aggregate_of(doc, period)),
        }
    }
}

/// Which sites' figures changed in one commit (or whether the network document did:
/// targets, catalogue, contests), sent to live boards.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ReportChange {
    /// Site ids whose documents changed.
    pub sites: Vec<String>,
    /// Whether the network document changed (every report may).
    pub network: bool,
}

/// How the read model brought site documents up to date since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpdateCounts {
    /// Changes applied to a kept automerge document, only the touched records
    /// hydrated again.
    pub incremental: u64,
    /// Documents loaded and hydrated whole: the first load, a site not kept, or a
    /// change that is not placed field by field.
    pub whole: u64,
}

/// The read model shared by the report routes.
pub struct ReadModel {
    store: SqliteStore,
    registry: Arc<Registry>,
    state: RwLock<Snapshot>,
    changes: broadcast::Sender<ReportChange>,
    ready: watch::Sender<bool>,
    /// The automerge documents kept to apply changes to. Held from reading a document
    /// in the store to swapping it in: without it a batch that read version N could
    /// swap in after a request's read-your-write of N+1 and put the older version back.
    applying: Mutex<Applying>,
    incremental: AtomicU64,
    whole: AtomicU64,
}

/// What [`ReadModel::applying`] guards.
struct Applying {
    /// Site documents, the most recently changed.
    sites: Residents,
    /// The network document, always kept (one document, read by every report).
    network: Option<(DocumentId, Resident)>,
}

impl ReadModel {
    /// An empty read model over its own store connection; call [`ReadModel::reload`]
    /// (or [`ReadModel::follow`]) to fill it.
    pub fn new(store: SqliteStore, registry: Arc<Registry>) -> Arc<ReadModel> {
        Arc::new(ReadModel {
            store,
            registry,
            state: RwLock::new(Snapshot::default()),
            changes: broadcast::channel(CHANGE_NOTICES).0,
            ready: watch::channel(false).0,
            applying: Mutex::new(Applying {
                sites: Residents::new(RESIDENT_DOCUMENTS),
                network: None,
            }),
            incremental: AtomicU64::new(0),
            whole: AtomicU64::new(0),
        })
    }

    /// Keeps at most `limit` site documents in automerge form (default
    /// [`RESIDENT_DOCUMENTS`]); 0 loads every changed document whole, as before.
    pub fn set_resident_limit(&self, limit: usize) {
        self.lock_applying().sites.set_limit(limit);
    }

    /// How many site documents are kept in automerge form now.
    pub fn resident_documents(&self) -> usize {
        self.lock_applying().sites.len()
    }

    /// How site documents were brought up to date so far.
    pub fn update_counts(&self) -> UpdateCounts {
        UpdateCounts {
            incremental: self.incremental.load(Ordering::Relaxed),
            whole: self.whole.load(Ordering::Relaxed),
        }
    }

    fn lock_applying(&self) -> std::sync::MutexGuard<'_, Applying> {
        self.applying.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current snapshot (cheap: the entries are shared).
    pub fn snapshot(&self) -> Snapshot {
        self.state.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Change notices for live clients.
    pub fn subscribe(&self) -> broadcast::Receiver<ReportChange> {
        self.changes.subscribe()
    }

    /// Resolves once the first full load is done.
    pub async fn wait_ready(&self) {
        let mut rx = self.ready.subscribe();
        let _ = rx.wait_for(|r| *r).await;
    }

    /// Brings every document up to date from the store (those kept in automerge form
    /// by their new chunks only). Blocking.
    pub fn reload(&self) -> Result<ReportChange, RegistryError> {
        let mut applying = self.lock_applying();
        self.registry.refresh()?;
        let sites = self.registry.sites()?;
        let mut docs: Vec<DocumentId> = sites.iter().map(|s| s.document_id).collect();
        docs.extend(self.registry.network_document()?);
        let change = self.apply_in_order(&mut applying, &docs)?;
        // Sites removed from the registry since (none today) would linger otherwise.
        let known: BTreeSet<&str> = sites.iter().map(|s| s.id.as_str()).collect();
        let kept: HashSet<DocumentId> = docs.iter().copied().collect();
        applying.sites.retain(&kept);
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        state.sites.retain(|id, _| known.contains(id.as_str()));
        state.conflicts.retain(|id, _| known.contains(id.as_str()));
        drop(state);
        self.ready.send_replace(true);
        Ok(change)
    }

    /// Brings the given documents up to date from the store: the new chunks applied,
    /// the records they touched hydrated again, the aggregates recomputed for every
    /// period the old version had and the conflict inputs read again, then swapped in.
    /// Blocking. A document that cannot be read leaves its site out (reported as not
    /// available, never as zero) and is logged.
    pub fn apply(&self, docs: &[DocumentId]) -> Result<ReportChange, RegistryError> {
        let mut applying = self.lock_applying();
        self.apply_in_order(&mut applying, docs)
    }

    /// [`ReadModel::apply`] with `applying` held.
    fn apply_in_order(
        &self,
        applying: &mut Applying,
        docs: &[DocumentId],
    ) -> Result<ReportChange, RegistryError> {
        self.registry.refresh()?;
        let network_id = self.registry.network_document()?;
        let by_doc: HashMap<DocumentId, String> = self
            .registry
            .sites()?
            .into_iter()
            .map(|s| (s.document_id, s.id))
            .collect();
        let mut change = ReportChange {
            sites: Vec::new(),
            network: false,
        };
        for &doc in docs {
            if Some(doc) == network_id {
                change.network |= self.apply_network(applying, doc);
            } else if let Some(site) = by_doc.get(&doc) {
                self.apply_site(&mut applying.sites, doc, site);
                change.sites.push(site.clone());
            }
        }
        change.sites.sort();
        change.sites.dedup();
        if change.network || !change.sites.is_empty() {
            let _ = self.changes.send(change.clone());
        }
        Ok(change)
    }

    /// The stored chunks of `doc`, or `None` (logged) when it is missing or unreadable.
    fn stored(&self, doc: DocumentId) -> Option<StoredDocument> {
        match self.store.load(&doc) {
            Ok(stored) => stored,
            Err(e) => {
                tracing::warn!(doc = %doc, error = %e, "cannot load a document for reports");
                None
            }
        }
    }

    /// `kept` brought up to date with `stored` (its patches), or the whole document
    /// loaded (no patches: read everything).
    fn catch_up(
        doc: DocumentId,
        kept: Option<Resident>,
        stored: &StoredDocument,
    ) -> Option<(Resident, Option<Vec<automerge::Patch>>)> {
        if let Some(mut r) = kept {
            match r.catch_up(stored) {
                Ok(patches) => return Some((r, Some(patches))),
                Err(e) => {
                    tracing::debug!(doc = %doc, error = %e, "new chunks did not apply; loading the document whole");
                }
            }
        }
        match Resident::load(stored) {
            Ok(r) => Some((r, None)),
            Err(e) => {
                tracing::warn!(doc = %doc, error = %e, "cannot load a document for reports");
                None
            }
        }
    }

    /// Updates the network document; whether it (may have) changed.
    fn apply_network(&self, applying: &mut Applying, doc: DocumentId) -> bool {
        let kept = applying
            .network
            .take()
            .filter(|(id, _)| *id == doc)
            .map(|(_, r)| r);
        let Some((resident, patches)) = self
            .stored(doc)
            .and_then(|stored| Self::catch_up(doc, kept, &stored))
        else {
            return false;
        };
        let unchanged = patches.as_ref().is_some_and(|p| p.is_empty());
        let read = (!unchanged).then(|| NetworkDocument::read(&resident.doc));
        let conflicts = (!unchanged).then(|| detect_network(&resident.doc));
        applying.network = Some((doc, resident));
        match (read, conflicts) {
            (Some(Ok(net)), Some(conflicts)) => {
                let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
                state.network = Arc::new(net);
                state.network_conflicts = Arc::new(conflicts);
                true
            }
            (Some(Err(e)), _) => {
                tracing::warn!(doc = %doc, error = %e, "network document unreadable for reports");
                false
            }
            _ => false,
        }
    }

    /// Updates one site's entry and conflict inputs from its stored chunks.
    fn apply_site(&self, residents: &mut Residents, doc: DocumentId, site: &str) {
        let old = self
            .state
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .sites
            .get(site)
            .cloned();
        let kept = residents.take(&doc);
        let started = Instant::now();
        let Some((resident, patches)) = self
            .stored(doc)
            .and_then(|stored| Self::catch_up(doc, kept, &stored))
        else {
            let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
            state.sites.remove(site);
            state.conflicts.remove(site);
            return;
        };
        let touched = patches.as_deref().map(Touched::of);
        if let (Some(_), Some(t)) = (&old, &touched)
            && t.is_empty()
        {
            // Nothing new (a notice for chunks already applied).
            residents.put(doc, resident);
            return;
        }
        let caught_up = started.elapsed();
        let periods = old.as_ref().map(|e| e.periods()).unwrap_or_default();
        let partial = match (&old, &touched) {
            (Some(old), Some(t)) => {
                let mut d = old.doc.clone();
                incremental::rehydrate(&mut d, &resident.doc, t)
                    .map(|()| d)
                    .map_err(|e| tracing::debug!(site, error = %e, "reading the site whole"))
                    .ok()
            }
            _ => None,
        };
        let counter = match partial {
            Some(_) => &self.incremental,
            None => &self.whole,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let incremental = partial.is_some();
        let entry = match partial {
            Some(d) => Some(d),
            None => match SiteDocument::read(&resident.doc) {
                Ok(d) => Some(d),
                Err(e) => {
                    tracing::warn!(doc = %doc, error = %e, "document unreadable for reports; its site is reported as not available");
                    None
                }
            },
        };
        let hydrated = started.elapsed();
        let entry = entry.map(|d| Arc::new(SiteEntry::new(d, &periods)));
        let aggregated = started.elapsed();
        let conflicts = Arc::new(SiteConflicts::read(site, &resident.doc));
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        tracing::debug!(
            site,
            incremental,
            catch_up_ms = ms(caught_up),
            hydrate_ms = ms(hydrated - caught_up),
            aggregates_ms = ms(aggregated - hydrated),
            conflicts_ms = ms(started.elapsed() - aggregated),
            "reports: site brought up to date"
        );
        residents.put(doc, resident);
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        match entry {
            Some(e) => state.sites.insert(site.to_string(), e),
            None => state.sites.remove(site),
        };
        state.conflicts.insert(site.to_string(), conflicts);
    }

    /// Fills the model, then follows the relay's commits until they end, on a thread
    /// of its own: each batch of notices (drained together) is applied at once. A
    /// subscriber that fell behind reloads everything. The thread runs at a lower
    /// scheduling priority than the engine and, after each batch, rests twice as long as
    /// the batch took: a writer growing a huge document cannot make the reports take
    /// more than a third of a core, nor the engine's time (documents of normal size take
    /// milliseconds, so boards still hear of a change within a second).
    pub fn follow(self: Arc<Self>, mut commits: broadcast::Receiver<DocumentId>) {
        lower_priority();
        if let Err(e) = self.reload() {
            tracing::error!(error = %e, "the first load of the reports' read model failed");
        }
        loop {
            let mut docs = BTreeSet::new();
            let mut lagged = false;
            match commits.blocking_recv() {
                Ok(d) => {
                    docs.insert(d);
                }
                Err(broadcast::error::RecvError::Lagged(_)) => lagged = true,
                Err(broadcast::error::RecvError::Closed) => return,
            }
            loop {
                match commits.try_recv() {
                    Ok(d) => {
                        docs.insert(d);
                    }
                    Err(broadcast::error::TryRecvError::Lagged(_)) => lagged = true,
                    Err(_) => break,
                }
            }
            let started = std::time::Instant::now();
            let done = if lagged {
                self.reload()
            } else {
                self.apply(&docs.into_iter().collect::<Vec<_>>())
            };
            if let Err(e) = done {
                tracing::warn!(error = %e, "cannot update the reports' read model");
            }
            std::thread::sleep((started.elapsed() * 2).min(MAX_REST));
        }
    }

    /// Starts [`ReadModel::follow`] on a thread named `dealersync-reports`.
    pub fn start_following(self: &Arc<Self>, commits: broadcast::Receiver<DocumentId>) {
        let me = self.clone();
        if let Err(e) = std::thread::Builder::new()
            .name("dealersync-reports".into())
            .spawn(move || me.follow(commits))
        {
            tracing::error!(error = %e, "cannot start the reports' read model; reports will not load");
        }
    }
}

/// The longest rest between two batches.
const MAX_REST: std::time::Duration = std::time::Duration::from_secs(2);

/// Lowers this thread's scheduling priority (nice 10) so that the engine and the
/// connections come first when the cores are busy.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority on this thread's own id; no memory is involved.
    unsafe {
        let tid = libc::gettid();
        if libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10) != 0 {
            tracing::debug!("cannot lower the reports thread's priority");
        }
    }
}
