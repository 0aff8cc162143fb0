//! The site registry over the real SQLite store: sites get their documents, the network
//! document mirrors the tree, and the tree's rules hold.

use std::path::Path;
use std::sync::Arc;

use automerge::AutoCommit;
use dealersync_core::access::{Access, Principal, Role};
use dealersync_core::protocol::DocumentId;
use dealersync_core::schema::{NetworkDocument, SiteDocument, SiteHeader, SiteKind};
use dealersync_core::store::Store;
use dealersync_server::api::{SiteCommand, TokenArgs};
use dealersync_server::auth::{AuthConfig, Authenticator};
use dealersync_server::registry::{Registry, RegistryError, StoreDocuments};
use dealersync_server::storage::{SqliteStore, StoreOptions};

struct Net {
    dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    docs: StoreDocuments<SqliteStore>,
    registry: Arc<Registry>,
}

fn open() -> Net {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path(), &StoreOptions::default()).unwrap());
    let registry = Arc::new(Registry::open_in(dir.path()).unwrap());
    Net {
        docs: StoreDocuments(store.clone()),
        dir,
        store,
        registry,
    }
}

fn header(id: &str, kind: SiteKind, parent: Option<&str>) -> SiteHeader {
    SiteHeader {
        id: id.into(),
        name: format!("{id} 名称"),
        kind,
        parent: parent.map(String::from),
        channel: None,
    }
}

impl Net {
    fn add(&self, id: &str, kind: SiteKind, parent: Option<&str>) -> DocumentId {
        self.registry
            .create_site(&self.docs, header(id, kind, parent))
            .unwrap()
            .document_id
    }

    fn load(&self, id: &DocumentId) -> AutoCommit {
        let stored = self.store.load(id).unwrap().expect("document stored");
        AutoCommit::load(&stored.chunks.concat()).unwrap()
    }

    fn network(&self) -> NetworkDocument {
        let id = self.registry.network_document().unwrap().unwrap();
        NetworkDocument::read(&self.load(&id)).unwrap()
    }

    fn standard(&self) {
        self.add("hq", SiteKind::HeadOffice, None);
        self.add("dc-north", SiteKind::DistributionCentre, Some("hq"));
        self.add("dc-south", SiteKind::DistributionCentre, Some("hq"));
        self.add("agent-a", SiteKind::Agent, Some("dc-north"));
    }
}

#[test]
fn creating_a_site_stores_its_document_and_lists_it_in_the_network() {
    let n = open();
    n.standard();
    let agent = n.registry.site("agent-a").unwrap();
    let doc = SiteDocument::read(&n.load(&agent.document_id)).unwrap();
    assert_eq!(
        doc.site,
        header("agent-a", SiteKind::Agent, Some("dc-north"))
    );
    assert!(doc.customers.is_empty());

    let net = n.network();
    let ids: Vec<&str> = net.sites.keys().map(String::as_str).collect();
    assert_eq!(ids, ["agent-a", "dc-north", "dc-south", "hq"]);
    assert_eq!(net.sites["dc-north"].parent.as_deref(), Some("hq"));

    // Head office first in listings.
    assert_eq!(n.registry.sites().unwrap()[0].id, "hq");
}

#[test]
fn tree_rules_are_enforced() {
    let n = open();
    n.standard();
    let r = &n.registry;
    let err = |h: SiteHeader| r.create_site(&n.docs, h).unwrap_err();
    assert!(matches!(
        err(header("hq", SiteKind::HeadOffice, None)),
        RegistryError::SiteExists(_)
    ));
    assert!(
        err(header("hq2", SiteKind::HeadOffice, None))
            .to_string()
            .contains("already has a head office")
    );
    assert!(matches!(
        err(header("x", SiteKind::Agent, Some("nowhere"))),
        RegistryError::UnknownSite(_)
    ));
    assert!(
        err(header("x", SiteKind::Agent, None))
            .to_string()
            .contains("needs a parent")
    );
    assert!(matches!(
        err(header("Bad Id", SiteKind::Agent, Some("hq"))),
        RegistryError::Invalid(_)
    ));
    // Moving a site below its own descendant would make a cycle.
    let e = r.move_site(&n.docs, "dc-north", "agent-a").unwrap_err();
    assert!(e.to_string().contains("inside"), "{e}");
    assert!(r.move_site(&n.docs, "hq", "dc-north").is_err());
    // A site with active children stays.
    let e = r.deactivate_site(&n.docs, "dc-north").unwrap_err();
    assert!(e.to_string().contains("agent-a"), "{e}");
}

#[test]
fn move_rename_and_deactivate_update_documents_and_access() {
    let n = open();
    n.standard();
    let r = &n.registry;
    let agent_doc = r.site("agent-a").unwrap().document_id;
    let north = Principal {
        sub: "m1".into(),
        role: Role::Manager,
        site: "dc-north".into(),
        device: None,
    };
    let south = Principal {
        site: "dc-south".into(),
        ..north.clone()
    };
    assert_eq!(r.access(&north, &agent_doc), Access::ReadWrite);

    r.move_site(&n.docs, "agent-a", "dc-south").unwrap();
    assert_eq!(r.access(&north, &agent_doc), Access::None);
    assert_eq!(r.access(&south, &agent_doc), Access::ReadWrite);
    assert_eq!(
        n.network().sites["agent-a"].parent.as_deref(),
        Some("dc-south")
    );
    let site_doc = SiteDocument::read(&n.load(&agent_doc)).unwrap();
    assert_eq!(site_doc.site.parent.as_deref(), Some("dc-south"));

    r.rename_site(&n.docs, "agent-a", "南区代理").unwrap();
    assert_eq!(n.network().sites["agent-a"].name, "南区代理");
    assert_eq!(
        SiteDocument::read(&n.load(&agent_doc)).unwrap().site.name,
        "南区代理"
    );

    r.deactivate_site(&n.docs, "agent-a").unwrap();
    assert!(!n.network().sites.contains_key("agent-a"));
    assert_eq!(r.access(&south, &agent_doc), Access::ReadOnly);
    assert!(!r.site("agent-a").unwrap().active);
    // Nothing hangs below a deactivated site.
    assert!(
        r.create_site(&n.docs, header("sub", SiteKind::Showroom, Some("agent-a")))
            .is_err()
    );
}

#[test]
fn a_second_registry_sees_changes_after_refresh() {
    let n = open();
    n.standard();
    let other = Registry::open_in(n.dir.path()).unwrap();
    assert!(other.tree().site("agent-b").is_none());
    n.add("agent-b", SiteKind::Agent, Some("dc-south"));
    other.refresh().unwrap();
    assert!(other.tree().site("agent-b").is_some());
}

#[test]
fn site_and_token_commands_work_on_a_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data: &Path = dir.path();
    let add = |id: &str, kind: SiteKind, parent: Option<&str>| {
        SiteCommand::Add {
            id: id.into(),
            name: format!("{id} site"),
            kind,
            parent: parent.map(String::from),
            channel: None,
        }
        .run(data)
        .unwrap()
    };
    let hq_doc = add("hq", SiteKind::HeadOffice, None);
    assert!(hq_doc.parse::<DocumentId>().is_ok(), "{hq_doc}");
    add("rs-1", SiteKind::Roadshow, Some("hq"));
    let listing = SiteCommand::List.run(data).unwrap();
    assert!(
        listing.starts_with(&format!("hq\thead_office\t-\t{hq_doc}")),
        "{listing}"
    );
    assert!(listing.contains("rs-1\troadshow\thq\t"), "{listing}");

    let args = TokenArgs {
        sub: "zhao.lei".into(),
        role: Role::Consultant,
        site: "rs-1".into(),
        device: None,
        ttl: std::time::Duration::from_secs(600),
    };
    let token = args.run(data, AuthConfig::default()).unwrap();
    assert_eq!(token.split('.').count(), 3, "{token}");
    let registry = Arc::new(Registry::open_in(data).unwrap());
    let auth = Authenticator::open(data, AuthConfig::default(), registry.clone()).unwrap();
    assert_eq!(auth.verify(&token).unwrap().site, "rs-1");
    assert_eq!(registry.issued_tokens().unwrap().len(), 1);

    let unknown_site = TokenArgs {
        site: "nowhere".into(),
        ..args
    };
    assert!(unknown_site.run(data, AuthConfig::default()).is_err());
}

#[test]
fn peer_and_storage_ids_are_bound_to_user_and_device() {
    let n = open();
    let claims = |sub: &str, device: Option<&str>| dealersync_core::access::Claims {
        sub: sub.into(),
        role: Role::Consultant,
        site: "hq".into(),
        device: device.map(String::from),
        exp: u64::MAX,
        jti: "j".into(),
        iat: None,
        nbf: None,
        iss: None,
        aud: None,
    };
    let r = &n.registry;
    let a = claims("wang.fang", Some("tablet-1"));
    let now = 1_780_000_000_000;
    r.bind_peer("peer-a", Some("store-a"), &a, now).unwrap();
    // The same user and device reconnects.
    r.bind_peer("peer-a", Some("store-a"), &a, now + 1000)
        .unwrap();
    // Someone else claims the peer id, or the storage id, or the same user from another
    // device.
    let b = claims("li.qiang", Some("tablet-2"));
    for (peer, storage, who) in [
        ("peer-a", None, &b),
        ("peer-b", Some("store-a"), &b),
        ("peer-a", None, &claims("wang.fang", Some("phone-9"))),
    ] {
        let err = r.bind_peer(peer, storage, who, now + 2000).unwrap_err();
        assert!(matches!(err, RegistryError::PeerTaken { .. }), "{err}");
    }
    // A refused claim binds nothing: peer-b is still free for anyone.
    r.bind_peer("peer-b", None, &claims("zhao.lei", None), now + 3000)
        .unwrap();
    // Unused bindings lapse.
    let later = now + 1000 + dealersync_server::registry::PEER_BINDING_RETENTION_MS + 1;
    r.bind_peer("peer-a", Some("store-a"), &b, later).unwrap();
}

#[test]
fn live_access_picks_up_a_site_added_by_another_process() {
    let n = open();
    n.standard();
    let relay = Registry::open_in(n.dir.path()).unwrap();
    let manager = Principal {
        sub: "m".into(),
        role: Role::Manager,
        site: "dc-south".into(),
        device: None,
    };
    // `dealersync-server site add` through its own registry connection.
    let doc = n.add("agent-b", SiteKind::Agent, Some("dc-south"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while relay.access(&manager, &doc) != Access::ReadWrite {
        assert!(
            std::time::Instant::now() < deadline,
            "the new site never became visible"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn concurrent_creations_of_one_site_leave_one_site() {
    let n = open();
    n.standard();
    let results: Vec<Result<_, RegistryError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|_| {
                scope.spawn(|| {
                    n.registry
                        .create_site(&n.docs, header("rs-9", SiteKind::Roadshow, Some("hq")))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 1, "{results:?}");
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| matches!(e, RegistryError::SiteExists(_)))
    );
    // The network document, the four standard sites and rs-9: no orphans.
    assert_eq!(n.store.document_ids().unwrap().len(), 1 + 4 + 1);
}
