//! The demo network seeds valid documents, a token per role, and only into an empty
//! data directory.

use std::sync::Arc;

use automerge::{AutoCommit, ReadDoc, Value};
use dealersync_core::access::Role;
use dealersync_core::domain::{self, CheckDigitPolicy, Vin};
use dealersync_core::reports::{self, KpiLevel};
use dealersync_core::schema::{
    EventKind, NetworkDocument, Period, SiteDocument, SiteKind, VehicleStatus,
};
use dealersync_core::store::Store;
use dealersync_server::auth::{AuthConfig, Authenticator};
use dealersync_server::demo::{DemoError, ensure_demo, seed_demo};
use dealersync_server::registry::{Registry, StoreDocuments};
use dealersync_server::storage::{SqliteStore, StoreOptions};

fn load(store: &SqliteStore, id: &dealersync_core::protocol::DocumentId) -> AutoCommit {
    let stored = store.load(id).unwrap().unwrap();
    AutoCommit::load(&stored.chunks.concat()).unwrap()
}

#[test]
fn demo_network_is_complete_valid_and_seeded_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path(), &StoreOptions::default()).unwrap());
    let registry = Arc::new(Registry::open_in(dir.path()).unwrap());
    let auth = Authenticator::open(dir.path(), AuthConfig::default(), registry.clone()).unwrap();
    let docs = StoreDocuments(store.clone());
    // 2026-03-15 12:00 CST.
    let now = 1_773_547_200_000;
    let summary = seed_demo(&registry, &docs, &auth, now).unwrap();

    let sites = registry.sites().unwrap();
    assert_eq!(sites.len(), 9);
    assert_eq!(summary.sites, 9);
    let count = |k: SiteKind| sites.iter().filter(|s| s.kind == k).count();
    assert_eq!(count(SiteKind::HeadOffice), 1);
    assert_eq!(count(SiteKind::DistributionCentre), 2);
    assert_eq!(count(SiteKind::Agent), 3);
    assert_eq!(count(SiteKind::Showroom), 1);
    assert_eq!(count(SiteKind::Roadshow), 2);
    assert_eq!(sites[0].id, "hq");

    let net_id = registry.network_document().unwrap().unwrap();
    let net = NetworkDocument::read(&load(&store, &net_id)).unwrap();
    assert_eq!(net.sites.len(), 9);
    assert_eq!(net.models.len(), 6);
    for m in net.models.values() {
        assert!(m.list_price > m.cost && m.cost > 5_000_000, "{m:?} in fen");
    }
    assert_eq!(
        net.targets.len(),
        8,
        "every site but head office has targets"
    );
    assert!(net.targets["showroom"].contains_key("2026-03"));
    assert!(net.targets["showroom"].contains_key("2026"));

    let mut customers = 0;
    let mut vehicles = 0;
    let mut phones = std::collections::HashSet::new();
    let mut statuses = std::collections::HashSet::new();
    let mut earliest = i64::MAX;
    for s in &sites {
        let doc = load(&store, &s.document_id);
        domain::check_site_document(&doc).unwrap();
        let site = SiteDocument::read(&doc).unwrap();
        assert_eq!(site.site.id, s.id);
        customers += site.customers.len();
        vehicles += site.vehicles.len();
        for c in site.customers.values() {
            assert!(
                c.name
                    .chars()
                    .all(|ch| ('\u{4e00}'..='\u{9fff}').contains(&ch)),
                "{}",
                c.name
            );
            assert_eq!(domain::normalise_phone(&c.phone).unwrap(), c.phone);
            phones.insert(c.phone.clone());
            assert!(!c.events.is_empty());
            earliest = earliest.min(c.created_at);
            assert!(c.created_at < now);
        }
        for (vin, v) in &site.vehicles {
            Vin::parse(vin, CheckDigitPolicy::Enforce).unwrap();
            assert_eq!(&v.vin, vin);
            statuses.insert(v.status);
            if v.status == VehicleStatus::Sold || v.status == VehicleStatus::Delivered {
                let buyer = v.sold_to.as_ref().expect("sold vehicles name the buyer");
                // One sale: the buyer's order and delivery, each recorded once.
                let recorded = |kind: EventKind| {
                    site.customers[buyer]
                        .events
                        .iter()
                        .filter(|e| e.kind == kind && e.vin.as_deref() == Some(vin.as_str()))
                        .count()
                };
                assert_eq!(recorded(EventKind::Order), 1, "order of {vin}");
                let delivered = usize::from(v.status == VehicleStatus::Delivered);
                assert_eq!(
                    recorded(EventKind::Delivery),
                    delivered,
                    "delivery of {vin}"
                );
            }
        }
        // Strings are scalar strings, not text objects.
        if let Some(id) = site.customers.keys().next() {
            let (_, customers_obj) = doc.get(automerge::ROOT, "customers").unwrap().unwrap();
            let (_, c) = doc.get(&customers_obj, id.as_str()).unwrap().unwrap();
            let (name, _) = doc.get(&c, "name").unwrap().unwrap();
            assert!(matches!(name, Value::Scalar(_)), "{name:?}");
        }
    }
    // Every selling site closed a sale this month (2026-03).
    let site_docs: Vec<SiteDocument> = sites
        .iter()
        .map(|s| SiteDocument::read(&load(&store, &s.document_id)).unwrap())
        .collect();
    let refs: Vec<&SiteDocument> = site_docs.iter().collect();
    let kpi = reports::kpis(&net, &refs, Period::Month(2026, 3)).unwrap();
    assert_eq!(net.forecast_deadline_day, Some(25));
    // Every site has its sales channel in the network document, shown on its rows.
    for (id, h) in &net.sites {
        assert!(h.channel.is_some(), "no channel on {id}");
    }
    assert_eq!(
        kpi.site("agent-n2").and_then(|r| r.channel),
        Some(dealersync_core::schema::SiteChannel::BrandStore)
    );
    for row in kpi
        .rows
        .iter()
        .filter(|r| r.level == KpiLevel::Site && r.site != "hq")
    {
        assert!(
            row.deliveries >= Some(1),
            "no delivery this month at {}",
            row.site
        );
    }
    // ... and has a discount above the consultant's limit waiting for the manager, while
    // the sales above it went through an approval recorded on the vehicle.
    for site in &site_docs {
        if site.customers.is_empty() {
            continue;
        }
        let pending = site.customers.values().any(|c| {
            site.vehicles.keys().any(|vin| {
                matches!(
                    domain::discount_state(c, vin),
                    Some(domain::DiscountState::Pending { .. })
                )
            })
        });
        assert!(pending, "no pending discount at {}", site.site.id);
        for v in site
            .vehicles
            .values()
            .filter(|v| v.status == VehicleStatus::Sold)
        {
            let buyer = &site.customers[v.sold_to.as_ref().unwrap()];
            if let Some(domain::DiscountState::Approved { by, .. }) =
                domain::discount_state(buyer, &v.vin)
            {
                assert_eq!(v.discount_approved_by.as_deref(), Some(by.as_str()));
            }
        }
    }
    demo_shows_every_report(&net, &refs, &kpi, now);
    assert_eq!(customers, summary.customers);
    assert_eq!(vehicles, summary.vehicles);
    assert!((200..=600).contains(&customers), "{customers} customers");
    assert!((150..=600).contains(&vehicles), "{vehicles} vehicles");
    assert!(phones.len() > customers * 9 / 10, "phones mostly distinct");
    for st in [
        VehicleStatus::InStock,
        VehicleStatus::InTransit,
        VehicleStatus::Ordered,
        VehicleStatus::Sold,
        VehicleStatus::Delivered,
    ] {
        assert!(statuses.contains(&st), "no vehicle {st}");
    }
    assert!(now - earliest > 90 * 86_400_000, "history spans months");

    let roles: Vec<Role> = summary.tokens.iter().map(|t| t.role).collect();
    assert_eq!(
        roles,
        [
            Role::Consultant,
            Role::Manager,
            Role::HeadOffice,
            Role::Admin
        ]
    );
    for t in &summary.tokens {
        let claims = auth.verify(&t.token).unwrap();
        assert_eq!(
            (claims.role, claims.site.as_str()),
            (t.role, t.site.as_str())
        );
        registry.site(&claims.site).unwrap();
    }
    let banner = summary.banner("http://127.0.0.1:3030");
    assert!(
        banner.contains("ws://127.0.0.1:3030/sync?token=<token>"),
        "{banner}"
    );
    assert!(banner.contains(&summary.tokens[3].token));
    // The field app's manager phone works on the showroom's document.
    let m = &summary.phone_manager;
    let claims = auth.verify(&m.token).unwrap();
    assert_eq!(
        (claims.role, claims.site.as_str(), claims.sub.as_str()),
        (Role::Manager, "showroom", "qian.jing")
    );
    assert!(
        banner.contains(&format!("/app/#token={} (as qian.jing", m.token)),
        "{banner}"
    );
    // Each demo user has a sign-in link for the board; the code is good once.
    let manager = &summary.tokens[1];
    assert!(
        banner.contains(&format!(
            "http://127.0.0.1:3030/signin?code={}",
            manager.sign_in_code
        )),
        "{banner}"
    );
    let session = dealersync_server::signin::exchange(
        &auth,
        &registry,
        &manager.sign_in_code,
        &dealersync_server::signin::Exchange::Browser,
    )
    .unwrap();
    assert_eq!(
        (session.claims.sub.as_str(), session.claims.role),
        ("sun.hao", Role::Manager)
    );
    assert!(
        dealersync_server::signin::exchange(
            &auth,
            &registry,
            &manager.sign_in_code,
            &dealersync_server::signin::Exchange::Browser,
        )
        .is_err()
    );

    assert!(matches!(
        seed_demo(&registry, &docs, &auth, now),
        Err(DemoError::NotEmpty(9))
    ));
    assert!(summary.seeded);
    // A second `serve --demo` on the same directory: fresh tokens, nothing reseeded.
    let again = ensure_demo(&registry, &docs, &auth, now).unwrap();
    assert!(!again.seeded);
    assert_eq!(registry.sites().unwrap().len(), 9);
    assert_eq!(again.tokens.len(), 4);
    assert_ne!(again.tokens[0].token, summary.tokens[0].token);
    auth.verify(&again.tokens[0].token).unwrap();
}

/// What the demo holds for the reports of issue 9: head office staff out of the sales
/// KPIs, forecasts from every site, quarter and week targets, transfers (one pending),
/// parts shipments, complaints, referrals, follow-ups, lost reasons and areas, a
/// customer at three agents, a forecast adjustment.
fn demo_shows_every_report(
    net: &NetworkDocument,
    sites: &[&SiteDocument],
    kpi: &reports::KpiReport,
    now: i64,
) {
    assert!(
        !kpi.rows
            .iter()
            .any(|r| r.level == KpiLevel::Consultant && r.site == "hq"),
        "head office staff are not sales consultants"
    );
    for s in sites.iter().filter(|s| s.site.id != "hq") {
        assert!(
            s.forecasts.contains_key("2026-04"),
            "no forecast for next month at {}",
            s.site.id
        );
    }
    // 2026-03-15 is in the first quarter and ISO week 11.
    assert!(net.targets["showroom"].contains_key("2026-Q1"));
    assert!(net.targets["agent-n1"].contains_key("2026-W11"));

    let t = reports::transfers(net, sites).unwrap();
    assert_eq!(t.pending, 1, "{:?}", t.rows);
    assert!(
        t.rows
            .iter()
            .any(|r| r.status == reports::TransferStatus::Received)
    );
    let p = reports::parts_distribution(net, sites, Period::Month(2026, 3)).unwrap();
    assert_eq!(p.centres.len(), 2);
    assert!(
        p.centres
            .iter()
            .all(|c| c.shipped > c.received && c.received > 0)
    );

    let care = reports::customer_care(net, sites, Period::Year(2026), now).unwrap();
    let sum = |f: fn(&reports::CareRow) -> i64| care.rows.iter().map(f).sum::<i64>();
    assert!(sum(|r| r.complaints_open) >= 1 && sum(|r| r.complaints_resolved) >= 1);
    assert!(sum(|r| r.referrals) >= 1 && sum(|r| r.lost) >= 1 && sum(|r| r.surveys) >= 1);
    for dim in ["source", "area", "lostReason", "competitor"] {
        assert!(care.mix.iter().any(|m| m.dimension == dim), "no {dim} mix");
    }
    assert!(!care.referrers.is_empty());
    let due = reports::follow_ups_due(net, sites, now).unwrap();
    assert!(!due.rows.is_empty(), "some follow-ups are due");

    // 业务重叠: one customer at three agents of two regions, for head office to settle.
    let dups = reports::duplicate_customers(net, sites).unwrap();
    assert_eq!(dups.groups, 1, "{:?}", dups.rows);
    let at: Vec<&str> = dups.rows.iter().map(|r| r.site.as_str()).collect();
    assert_eq!(at, ["agent-n1", "agent-n2", "agent-s1"]);
    assert!(dups.rows.iter().all(|r| r.settled_by == "hq"));
    // A distribution centre's adjustment of an agent's forecast, both figures kept.
    let n1 = sites.iter().find(|s| s.site.id == "agent-n1").unwrap();
    assert!(
        n1.forecasts.values().flat_map(|m| m.values()).any(|c| c
            .adjusted
            .as_ref()
            .is_some_and(|a| a.quantity == c.quantity + 3)),
        "no adjusted forecast at agent-n1"
    );
}

/// Seeded on the 2nd of a month, the demo's parts shipments fall in that month, so the
/// parts report (this month by default) has them.
#[test]
fn early_in_a_month_the_parts_shipped_are_this_months() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path(), &StoreOptions::default()).unwrap());
    let registry = Arc::new(Registry::open_in(dir.path()).unwrap());
    let auth = Authenticator::open(dir.path(), AuthConfig::default(), registry.clone()).unwrap();
    let docs = StoreDocuments(store.clone());
    // 2026-04-02 10:00 CST.
    let now = 1_775_095_200_000;
    seed_demo(&registry, &docs, &auth, now).unwrap();
    let net_id = registry.network_document().unwrap().unwrap();
    let net = NetworkDocument::read(&load(&store, &net_id)).unwrap();
    let sites: Vec<SiteDocument> = registry
        .sites()
        .unwrap()
        .iter()
        .map(|s| SiteDocument::read(&load(&store, &s.document_id)).unwrap())
        .collect();
    let refs: Vec<&SiteDocument> = sites.iter().collect();
    let p = reports::parts_distribution(&net, &refs, Period::Month(2026, 4)).unwrap();
    assert_eq!(p.centres.len(), 2);
    assert!(
        p.centres
            .iter()
            .all(|c| c.shipped > c.received && c.received > 0),
        "{:?}",
        p.centres
    );
}

#[test]
fn demo_refuses_a_data_dir_holding_another_network() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path(), &StoreOptions::default()).unwrap());
    let registry = Arc::new(Registry::open_in(dir.path()).unwrap());
    let auth = Authenticator::open(dir.path(), AuthConfig::default(), registry.clone()).unwrap();
    let docs = StoreDocuments(store);
    registry
        .create_site(
            &docs,
            dealersync_core::schema::SiteHeader {
                id: "hq".into(),
                name: "总部".into(),
                kind: SiteKind::HeadOffice,
                parent: None,
                channel: None,
            },
        )
        .unwrap();
    let err = ensure_demo(&registry, &docs, &auth, 1_773_547_200_000).unwrap_err();
    assert!(
        matches!(err, DemoError::NotDemo(ref s) if s == "showroom"),
        "{err}"
    );
}
