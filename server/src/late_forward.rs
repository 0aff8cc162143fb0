//! Late changes forward through the running relay (docs/growth.md, "Conflicts that
//! span documents"): after every durable commit to an archive in its grace week, the
//! customers and vehicle bookings a late device wrote there are written into the
//! site's next document with `domain::forward_late`, through the engine like an admin
//! edit, audited as the relay's own change, and sent to the working document's peers.
//!
//! One thread follows [`RelayHandle::subscribe_commits`]. Forwarding is idempotent, so
//! the thread also forwards every archive in its grace week when it starts (a commit
//! made durable just before a restart) and when it falls behind the notifications.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dealersync_core::access::ArchiveNode;
use dealersync_core::domain;
use dealersync_core::protocol::DocumentId;
use dealersync_core::time::now_ms;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

use crate::registry::{Author, DocumentWriter, Registry, RegistryError};
use crate::relay::RelayHandle;

/// The user the audit log records the forwards under.
pub const FORWARD_AUTHOR: &str = "relay";

/// How long the list of archives is trusted before it is read again: a carry-over adds
/// archives, and an archive first seen on a re-read is forwarded then, so a commit
/// that arrived before the re-read is not missed.
const ARCHIVES_FRESH_FOR: Duration = Duration::from_secs(1);

/// Starts the thread that forwards late changes on the relay behind `relay`. A relay
/// that follows an upstream relay forwards nothing: its sites' documents are head
/// office's, which forwards them and sends the result down.
pub fn start(registry: Arc<Registry>, relay: &RelayHandle, documents: Arc<dyn DocumentWriter>) {
    let commits = relay.subscribe_commits();
    let author = Author {
        user: FORWARD_AUTHOR.into(),
        device: Some(relay.peer_id().to_string()),
    };
    let forwarder = Forwarder {
        registry,
        documents,
        author,
        archives: HashMap::new(),
        read_at: None,
    };
    if let Err(e) = std::thread::Builder::new()
        .name("dealersync-forward".into())
        .spawn(move || forwarder.follow(commits))
    {
        tracing::error!(error = %e, "cannot start forwarding late changes");
    }
}

struct Forwarder {
    registry: Arc<Registry>,
    documents: Arc<dyn DocumentWriter>,
    author: Author,
    /// Every archive of every site, as last read from the registry.
    archives: HashMap<DocumentId, ArchiveNode>,
    read_at: Option<Instant>,
}

impl Forwarder {
    fn follow(mut self, mut commits: broadcast::Receiver<DocumentId>) {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
        {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot start forwarding late changes");
                return;
            }
        };
        let (all, _) = self.refresh(true);
        self.forward_all(all);
        // Whether a commit named a document the list (then fresh) did not know: it may
        // be an archive listed since, so the list is read again once it is stale even
        // if no other commit comes.
        let mut unsure = false;
        loop {
            let mut batch = BTreeSet::new();
            let mut lagged = false;
            match runtime
                .block_on(async { tokio::time::timeout(ARCHIVES_FRESH_FOR, commits.recv()).await })
            {
                Ok(Ok(doc)) => {
                    batch.insert(doc);
                }
                Ok(Err(RecvError::Lagged(_))) => lagged = true,
                Ok(Err(RecvError::Closed)) => return,
                Err(_) if !unsure => continue,
                Err(_) => {}
            }
            // Everything already waiting, so that a burst costs one forward per archive.
            loop {
                match commits.try_recv() {
                    Ok(doc) => {
                        batch.insert(doc);
                    }
                    Err(TryRecvError::Lagged(_)) => lagged = true,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Closed) => return,
                }
            }
            let (mut due, refreshed) = self.refresh(lagged);
            unsure = !refreshed && (unsure || batch.iter().any(|d| !self.archives.contains_key(d)));
            due.extend(batch.into_iter().filter(|d| self.archives.contains_key(d)));
            self.forward_all(due);
        }
    }

    /// Re-reads the archives when the list is stale (or `all`); returns those to
    /// forward because of it (every archive when `all`, else the newly listed ones) and
    /// whether it read them.
    fn refresh(&mut self, all: bool) -> (BTreeSet<DocumentId>, bool) {
        let fresh = self
            .read_at
            .is_some_and(|t| t.elapsed() < ARCHIVES_FRESH_FOR);
        if fresh && !all {
            return (BTreeSet::new(), false);
        }
        let listed = match self.registry.archives() {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the archives to forward late changes");
                return (BTreeSet::new(), false);
            }
        };
        self.read_at = Some(Instant::now());
        let due = listed
            .iter()
            .filter(|(d, _)| all || !self.archives.contains_key(d))
            .map(|(d, _)| *d)
            .collect();
        self.archives = listed.into_iter().collect();
        (due, true)
    }

    fn forward_all(&self, due: BTreeSet<DocumentId>) {
        if due.is_empty() || self.registry.is_downstream() {
            return;
        }
        let now = now_ms();
        for archive in due {
            let Some(node) = self.archives.get(&archive) else {
                continue;
            };
            if now >= node.writable_until {
                continue;
            }
            if let Err(e) = self.forward(archive, &node.site, now) {
                tracing::warn!(error = %e, %archive, site = %node.site, "cannot forward late changes");
            }
        }
    }

    /// Forwards `archive`'s late changes into the document that follows it in the
    /// site's chain.
    fn forward(&self, archive: DocumentId, site: &str, now: i64) -> Result<(), RegistryError> {
        let chain = self.registry.chain(site)?;
        let Some(next) = chain
            .iter()
            .position(|c| c.document_id == archive)
            .and_then(|i| chain.get(i + 1))
            .map(|c| c.document_id)
        else {
            return Ok(());
        };
        let old = self.documents.read(archive)?;
        let mut done = domain::Forwarded::default();
        self.documents
            .edit_as(next, Some(&self.author), &mut |doc| {
                done = domain::forward_late(&old, doc, now)?;
                Ok(())
            })?;
        if !done.is_empty() {
            tracing::info!(
                site,
                %archive,
                working = %next,
                customers = ?done.customers,
                vehicles = ?done.vehicles,
                "late changes forward"
            );
        }
        Ok(())
    }
}
