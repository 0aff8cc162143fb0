//! Who may do what with a document, on the registry's current site tree.

use std::sync::Arc;

use dealersync_core::access::{Access, Claims, Principal, SiteNode, SiteTree};
use dealersync_core::protocol::DocumentId;
use dealersync_core::protocol::engine::ConnInfo;
use dealersync_core::time::now_ms;

use super::{Registry, RegistryError, SiteRecord, network_id};

impl Registry {
    /// The current site tree, as of the last change through this registry or the last
    /// [`Registry::refresh`].
    pub fn tree(&self) -> Arc<SiteTree> {
        self.tree.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Reloads the tree if another connection or process changed the database since
    /// (e.g. `dealersync-server site add` next to a running server).
    pub fn refresh(&self) -> Result<(), RegistryError> {
        let version: i64 = self
            .conn()
            .query_row("PRAGMA data_version", [], |r| r.get(0))?;
        let stale = *self.data_version.lock().unwrap_or_else(|p| p.into_inner()) != version;
        if stale {
            self.rebuild_tree()?;
        }
        Ok(())
    }

    pub(crate) fn rebuild_tree(&self) -> Result<(), RegistryError> {
        // One rebuild at a time, and the version read before the sites: two threads
        // refreshing at once must not let the one that read older sites store its
        // tree last under the newer version (the stale tree would then stay until the
        // next change). A change between the two reads only makes the next refresh
        // rebuild again.
        let mut seen = self.data_version.lock().unwrap_or_else(|p| p.into_inner());
        let version: i64 = self
            .conn()
            .query_row("PRAGMA data_version", [], |r| r.get(0))?;
        let sites = self.sites()?;
        let network = network_id(&self.conn())?;
        let mut tree = SiteTree::new(network);
        for s in sites {
            tree.insert(
                s.id,
                SiteNode {
                    parent: s.parent,
                    document: s.document_id,
                    active: s.active,
                },
            );
        }
        for (doc, node) in self.archives()? {
            tree.insert_archive(doc, node);
        }
        *self.tree.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(tree);
        *seen = version;
        Ok(())
    }

    /// What `who` may do with `doc`, on the current tree. At most once a second it
    /// also looks whether another process changed the registry (a `site add` next to
    /// the running server), so such changes reach live connections within a second.
    pub fn access(&self, who: &Principal, doc: &DocumentId) -> Access {
        let now = now_ms();
        let last = self.last_refresh.load(std::sync::atomic::Ordering::Relaxed);
        if now - last >= 1000 {
            self.last_refresh
                .store(now, std::sync::atomic::Ordering::Relaxed);
            if let Err(e) = self.refresh() {
                tracing::warn!(error = %e, "cannot reload the site registry; using the last tree");
            }
        }
        let tree = self.tree();
        let access = tree.access_at(who, doc, now);
        match &*self.ceiling.read().unwrap_or_else(|p| p.into_inner()) {
            Some(relay) => access.min(tree.access_at(relay, doc, now)),
            None => access,
        }
    }

    /// Whether this relay follows an upstream relay (`serve --upstream`): its sites and
    /// their chains are the upstream's.
    pub fn is_downstream(&self) -> bool {
        self.ceiling
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// The policy of one connection: reads the registry's current tree on every call,
    /// so that a site moved or deactivated while peers are connected takes effect at
    /// once.
    pub fn policy(
        self: &Arc<Self>,
        who: Principal,
    ) -> impl Fn(&DocumentId) -> Access + Send + Sync + 'static {
        let reg = Arc::clone(self);
        move |doc| reg.access(&who, doc)
    }

    /// What the sync engine needs to know about a connection authenticated by
    /// `claims`: its live access rule, and the user and device for the audit log.
    /// Once the token or its device is revoked the rule grants nothing, so a change
    /// sent after the revocation is neither stored nor audited even if it arrives
    /// before the connection is closed.
    pub fn conn_info(self: &Arc<Self>, claims: &Claims) -> ConnInfo {
        let policy = self.policy(claims.principal());
        let reg = Arc::clone(self);
        let (jti, device) = (claims.jti.clone(), claims.device.clone());
        ConnInfo {
            access: Box::new(move |doc| {
                if reg.revocations.revoked(&jti, device.as_deref()).is_some() {
                    Access::None
                } else {
                    policy(doc)
                }
            }),
            user: Some(claims.sub.clone()),
            device: claims.device.clone(),
        }
    }

    /// The sites `who` may read.
    pub fn readable_sites(&self, who: &Principal) -> Result<Vec<SiteRecord>, RegistryError> {
        let tree = self.tree();
        Ok(self
            .sites()?
            .into_iter()
            .filter(|s| tree.access(who, &s.document_id).can_read())
            .collect())
    }
}
