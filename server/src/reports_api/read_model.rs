//! The reports' read model: every site document hydrated once, with each site's KPI
//! aggregates per period, kept up to date from the relay's commit notifications so
//! that a report request reads memory instead of reloading hundreds of documents.
//!
//! One task follows [`crate::relay::RelayHandle::subscribe_commits`]; for each batch
//! of changed documents it reloads them from the store on the blocking pool (never on
//! the engine thread), hydrates them, recomputes the changed site's aggregates for the
//! periods already asked for, swaps the entry in, and tells live clients which sites
//! changed ([`ReportChange`]).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use dealersync_core::protocol::DocumentId;
use dealersync_core::reports::{AggregateSource, SiteAggregate};
use dealersync_core::schema::{NetworkDocument, Period, SiteDocument};
use serde::Serialize;
use tokio::sync::{broadcast, watch};

use crate::registry::{Registry, RegistryError, load_stored};
use crate::storage::SqliteStore;

/// Periods whose aggregates one site keeps (the most recently asked first out when
/// full): the current day, week, month, quarter and year of a few views fit easily.
pub const CACHED_PERIODS: usize = 24;

/// How many change notices live clients may fall behind by.
const CHANGE_NOTICES: usize = 1024;

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

/// The read model shared by the report routes.
pub struct ReadModel {
    store: SqliteStore,
    registry: Arc<Registry>,
    state: RwLock<Snapshot>,
    changes: broadcast::Sender<ReportChange>,
    ready: watch::Sender<bool>,
    /// Held from reading a document in the store to swapping it in: without it a
    /// batch that read version N could swap in after a request's read-your-write of
    /// N+1 and put the older version back.
    applying: Mutex<()>,
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
            applying: Mutex::new(()),
        })
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

    /// Loads every document from the store. Blocking.
    pub fn reload(&self) -> Result<ReportChange, RegistryError> {
        let _applying = self.applying.lock().unwrap_or_else(|p| p.into_inner());
        self.registry.refresh()?;
        let mut docs: Vec<DocumentId> = self
            .registry
            .sites()?
            .into_iter()
            .map(|s| s.document_id)
            .collect();
        docs.extend(self.registry.network_document()?);
        let change = self.apply_in_order(&docs)?;
        // Sites removed from the registry since (none today) would linger otherwise.
        let known: BTreeSet<String> = self.registry.sites()?.into_iter().map(|s| s.id).collect();
        self.state
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .sites
            .retain(|id, _| known.contains(id));
        self.ready.send_replace(true);
        Ok(change)
    }

    /// Reloads the given documents from the store, hydrates them and recomputes their
    /// aggregates for every period the old version had, then swaps them in. Blocking.
    /// A document that cannot be read leaves its site out (reported as not
    /// available, never as zero) and is logged.
    pub fn apply(&self, docs: &[DocumentId]) -> Result<ReportChange, RegistryError> {
        let _applying = self.applying.lock().unwrap_or_else(|p| p.into_inner());
        self.apply_in_order(docs)
    }

    /// [`ReadModel::apply`] with `applying` already held.
    fn apply_in_order(&self, docs: &[DocumentId]) -> Result<ReportChange, RegistryError> {
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
                match self.read(doc, NetworkDocument::read) {
                    Some(net) => {
                        self.state
                            .write()
                            .unwrap_or_else(|p| p.into_inner())
                            .network = Arc::new(net);
                    }
                    None => continue,
                }
                change.network = true;
                continue;
            }
            let Some(site) = by_doc.get(&doc) else {
                continue;
            };
            let old = self
                .state
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .sites
                .get(site)
                .cloned();
            let periods = old.as_ref().map(|e| e.periods()).unwrap_or_default();
            let entry = self
                .read(doc, SiteDocument::read)
                .map(|d| Arc::new(SiteEntry::new(d, &periods)));
            let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
            match entry {
                Some(e) => state.sites.insert(site.clone(), e),
                None => state.sites.remove(site),
            };
            change.sites.push(site.clone());
        }
        change.sites.sort();
        change.sites.dedup();
        if change.network || !change.sites.is_empty() {
            let _ = self.changes.send(change.clone());
        }
        Ok(change)
    }

    fn read<T, E: std::fmt::Display>(
        &self,
        doc: DocumentId,
        hydrate: impl Fn(&automerge::AutoCommit) -> Result<T, E>,
    ) -> Option<T> {
        match load_stored(&self.store, doc) {
            Ok(Some(am)) => match hydrate(&am) {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::warn!(doc = %doc, error = %e, "document unreadable for reports; its site is reported as not available");
                    None
                }
            },
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(doc = %doc, error = %e, "cannot load a document for reports");
                None
            }
        }
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
