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
//!
//! A site carried over into monthly documents (docs/growth.md) is reported as its whole
//! chain, `domain::combine_periods(archives oldest first + working document)`, so that
//! figures for months before the carry-over keep what stayed in the archives. Each
//! archive is hydrated once and kept ([`Applying::archives`]): archives change only
//! through their grace week, and a commit to one reads it again and recombines its
//! site. The working document keeps the incremental path above.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use dealersync_core::conflicts::{Conflict, SiteConflicts, detect_network};
use dealersync_core::domain::{self, PeriodDocument, PeriodHeader};
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
    /// The site document, hydrated: for a site with archives, its chain combined.
    pub doc: SiteDocument,
    /// The working document alone when the site has archives (`doc` is then the chain
    /// combined); `None` when `doc` is the working document.
    working: Option<PeriodDocument>,
    /// The working document's period header when `working` is `None`.
    period: Option<PeriodHeader>,
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
            working: None,
            period: None,
            aggregates: Mutex::new(aggregates),
        }
    }

    /// The working document as hydrated alone (what the incremental path updates).
    fn working(&self) -> &SiteDocument {
        self.working.as_ref().map_or(&self.doc, |w| &w.site)
    }

    /// The working document's period header.
    fn period(&self) -> Option<&PeriodHeader> {
        match &self.working {
            Some(w) => w.period.as_ref(),
            None => self.period.as_ref(),
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
    /// Archives loaded and hydrated (each once, and again after a change in its
    /// grace week).
    pub archives: u64,
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
    archives: AtomicU64,
}

/// What [`ReadModel::applying`] guards.
struct Applying {
    /// Site documents, the most recently changed.
    sites: Residents,
    /// The network document, always kept (one document, read by every report).
    network: Option<(DocumentId, Resident)>,
    /// Archives hydrated, kept for good (read-only after their grace week; a commit
    /// to one in its grace week drops it here and it is read again).
    archives: HashMap<DocumentId, Arc<PeriodDocument>>,
    /// Site id → the working document its entry was read from: a site carried over
    /// since is read again from its new working document.
    working: HashMap<String, DocumentId>,
    /// Sites whose chain is combined again even when their working document has
    /// nothing new (an archive changed, or a reload).
    stale: HashSet<String>,
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
                archives: HashMap::new(),
                working: HashMap::new(),
                stale: HashSet::new(),
            }),
            incremental: AtomicU64::new(0),
            whole: AtomicU64::new(0),
            archives: AtomicU64::new(0),
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
            archives: self.archives.load(Ordering::Relaxed),
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
        // Notices may have been missed (a lagging subscriber): archives still in their
        // grace week are read again, and every site with archives combined again.
        let tree = self.registry.tree();
        let now = dealersync_core::time::now_ms();
        applying
            .archives
            .retain(|id, _| tree.archive(id).is_some_and(|a| a.writable_until <= now));
        applying.stale = sites.iter().map(|s| s.id.clone()).collect();
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
        let tree = self.registry.tree();
        let mut change = ReportChange {
            sites: Vec::new(),
            network: false,
        };
        for &doc in docs {
            if Some(doc) == network_id {
                change.network |= self.apply_network(applying, doc);
            } else if let Some(site) = by_doc.get(&doc) {
                self.apply_site(applying, doc, site);
                change.sites.push(site.clone());
            } else if let Some(archive) = tree.archive(&doc) {
                // A late change in the grace week: read the archive again, and combine
                // its site's chain again (the working document as it is).
                applying.archives.remove(&doc);
                let site = &archive.site;
                if let Some(&working) = applying.working.get(site) {
                    applying.stale.insert(site.clone());
                    self.apply_site(applying, working, site);
                    change.sites.push(site.clone());
                }
            }
        }
        // Sites carried over since their entry was read (the new working document's
        // own notice may come before the registry names it).
        for (&doc, site) in &by_doc {
            if applying.working.get(site).is_some_and(|w| *w != doc) {
                self.apply_site(applying, doc, site);
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

    /// Updates one site's entry and conflict inputs from its stored chunks, and
    /// combines its chain when it has archives.
    fn apply_site(&self, applying: &mut Applying, doc: DocumentId, site: &str) {
        let stale = applying.stale.remove(site);
        // The entry describes this working document (not the one before a carry-over).
        let old = self
            .state
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .sites
            .get(site)
            .cloned()
            .filter(|_| applying.working.get(site) == Some(&doc));
        let kept = applying.sites.take(&doc);
        let started = Instant::now();
        let Some((resident, patches)) = self
            .stored(doc)
            .and_then(|stored| Self::catch_up(doc, kept, &stored))
        else {
            self.forget(applying, site);
            return;
        };
        let touched = patches.as_deref().map(Touched::of);
        let archives = match self.archives_of(applying, site, doc) {
            Ok(a) => a,
            Err(()) => {
                // Figures without an archive would be short: not available, never low.
                // Its conflicts are the working document's, still listed.
                let conflicts = Arc::new(SiteConflicts::read(site, &resident.doc));
                applying.sites.put(doc, resident);
                self.forget(applying, site);
                let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
                state.conflicts.insert(site.to_string(), conflicts);
                return;
            }
        };
        // A chain to combine again even though the working document has nothing new.
        let recombine = stale && !archives.is_empty();
        if let (Some(_), Some(t)) = (&old, &touched)
            && t.is_empty()
            && !recombine
        {
            // Nothing new (a notice for chunks already applied).
            applying.sites.put(doc, resident);
            return;
        }
        let caught_up = started.elapsed();
        let periods = old.as_ref().map(|e| e.periods()).unwrap_or_default();
        let partial = match (&old, &touched) {
            (Some(old), Some(t)) => {
                let mut d = old.working().clone();
                incremental::rehydrate(&mut d, &resident.doc, t)
                    .map(|()| (d, old.period().cloned()))
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
        let working = match partial {
            Some((site, period)) => Some(PeriodDocument { site, period }),
            None => match PeriodDocument::read(&resident.doc) {
                Ok(d) => Some(d),
                Err(e) => {
                    tracing::warn!(doc = %doc, error = %e, "document unreadable for reports; its site is reported as not available");
                    None
                }
            },
        };
        let hydrated = started.elapsed();
        let entry = working
            .and_then(|w| Self::entry(site, &archives, w, &periods))
            .map(Arc::new);
        let aggregated = started.elapsed();
        let conflicts = Arc::new(SiteConflicts::read(site, &resident.doc));
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        tracing::debug!(
            site,
            incremental,
            archives = archives.len(),
            catch_up_ms = ms(caught_up),
            hydrate_ms = ms(hydrated - caught_up),
            combine_and_aggregates_ms = ms(aggregated - hydrated),
            conflicts_ms = ms(started.elapsed() - aggregated),
            "reports: site brought up to date"
        );
        applying.sites.put(doc, resident);
        applying.working.insert(site.to_string(), doc);
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        match entry {
            Some(e) => state.sites.insert(site.to_string(), e),
            None => state.sites.remove(site),
        };
        state.conflicts.insert(site.to_string(), conflicts);
    }

    /// A site's entry from its working document and its archives (oldest first): the
    /// chain combined, or the working document itself when there are none.
    fn entry(
        site: &str,
        archives: &[Arc<PeriodDocument>],
        working: PeriodDocument,
        periods: &[Period],
    ) -> Option<SiteEntry> {
        if archives.is_empty() {
            let mut e = SiteEntry::new(working.site, periods);
            e.period = working.period;
            return Some(e);
        }
        let chain = archives.iter().map(|a| a.as_ref());
        match domain::combine_periods(chain.chain(std::iter::once(&working))) {
            Ok(all) => {
                let mut e = SiteEntry::new(all, periods);
                e.working = Some(working);
                Some(e)
            }
            Err(e) => {
                tracing::warn!(site, error = %e, "cannot combine the site's documents; its site is reported as not available");
                None
            }
        }
    }

    /// The archives of `site` before its working document `doc`, oldest first, each
    /// hydrated once and kept. `Err` (logged) when one cannot be read.
    fn archives_of(
        &self,
        applying: &mut Applying,
        site: &str,
        doc: DocumentId,
    ) -> Result<Vec<Arc<PeriodDocument>>, ()> {
        let chain = self.registry.chain(site).map_err(|e| {
            tracing::warn!(site, error = %e, "cannot read the site's chain of documents");
        })?;
        let mut out = Vec::new();
        for link in chain.iter().filter(|c| c.document_id != doc) {
            let id = link.document_id;
            if let Some(a) = applying.archives.get(&id) {
                out.push(a.clone());
                continue;
            }
            let read = self
                .stored(id)
                .ok_or_else(|| "not stored".to_string())
                .and_then(|stored| stored.load().map_err(|e| e.to_string()))
                .and_then(|am| PeriodDocument::read(&am).map_err(|e| e.to_string()));
            match read {
                Ok(a) => {
                    self.archives.fetch_add(1, Ordering::Relaxed);
                    let a = Arc::new(a);
                    applying.archives.insert(id, a.clone());
                    out.push(a);
                }
                Err(e) => {
                    tracing::warn!(site, archive = %id, error = %e, "archive unreadable for reports; its site is reported as not available");
                    return Err(());
                }
            }
        }
        Ok(out)
    }

    /// Takes `site` out of the reports (not available) until its next change.
    fn forget(&self, applying: &mut Applying, site: &str) {
        applying.working.remove(site);
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        state.sites.remove(site);
        state.conflicts.remove(site);
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
