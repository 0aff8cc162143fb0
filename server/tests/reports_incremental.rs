//! The reports' read model, updated change by change (the new chunks applied to the
//! automerge documents it keeps, only the touched records hydrated again), equals the
//! documents read whole from the store: the hydrated sites, the aggregates of the
//! periods asked for, the conflict inputs and the conflicts across sites, after edits
//! of every kind (domain operations, whole-record writes, deletions, an unknown field,
//! concurrent edits merged), with fewer resident documents than sites, and across a
//! compaction. In process, on a real store.

mod common;
mod reports_fixture;

use std::collections::BTreeMap;
use std::sync::Arc;

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ROOT};
use dealersync_core::conflicts::{self, ConflictKind, SiteConflicts};
use dealersync_core::domain::{self, CustomerUpdate, NewEvent, VehicleAction};
use dealersync_core::protocol::DocumentId;
use dealersync_core::reports::{AggregateSource, SiteAggregate};
use dealersync_core::schema::{
    EventKind, ForecastEntry, NetworkDocument, Period, SiteDocument, SiteKind, Target, WalkIn,
};
use dealersync_server::registry::{DocumentWriter, Registry, StoreDocuments, load_stored};
use dealersync_server::reports_api::{ReadModel, Scope, UpdateCounts};
use dealersync_server::storage::{SqliteStore, StoreOptions};
use reports_fixture::{
    YUAN, add_customers, add_vehicles, create_sites, cst, customer, ev, vehicle,
};

/// The periods whose aggregates are kept and compared.
const PERIODS: [&str; 4] = ["2026-11", "2026-W45", "2026-Q4", "2026"];

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    writer: StoreDocuments<SqliteStore>,
    model: Arc<ReadModel>,
    network: DocumentId,
    docs: BTreeMap<String, DocumentId>,
}

impl Fixture {
    /// hq ← dc ← a1, a2, with the read model loaded and the periods' aggregates kept.
    fn new(resident_limit: usize) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path(), &StoreOptions::default()).unwrap());
        let registry = Arc::new(Registry::open_in(dir.path()).unwrap());
        let writer = StoreDocuments(store.clone());
        let docs = create_sites(
            &registry,
            &writer,
            &[
                ("hq", SiteKind::HeadOffice, None),
                ("dc", SiteKind::DistributionCentre, Some("hq")),
                ("a1", SiteKind::Agent, Some("dc")),
                ("a2", SiteKind::Agent, Some("dc")),
            ],
        );
        let network = registry.network_document().unwrap().unwrap();
        let model = ReadModel::new(
            SqliteStore::open(dir.path(), &StoreOptions::default()).unwrap(),
            registry,
        );
        model.set_resident_limit(resident_limit);
        model.reload().unwrap();
        let snap = model.snapshot();
        for e in snap.sites.values() {
            for p in PERIODS {
                snap.aggregate(&e.doc, p.parse().unwrap());
            }
        }
        Fixture {
            _dir: dir,
            store,
            writer,
            model,
            network,
            docs,
        }
    }

    /// Edits `site`'s document, brings the model up to date, and compares it.
    fn edit(&self, site: &str, edit: impl Fn(&mut AutoCommit)) {
        let doc = self.docs[site];
        self.writer
            .edit(doc, &mut |am| {
                edit(am);
                Ok(())
            })
            .unwrap();
        let change = self.model.apply(&[doc]).unwrap();
        assert_eq!(change.sites, vec![site.to_string()]);
        self.assert_matches_store();
    }

    /// Every part of the read model equals what the stored documents say.
    fn assert_matches_store(&self) {
        let snap = self.model.snapshot();
        let mut loaded = Vec::new();
        for (site, doc) in &self.docs {
            let am = load_stored(&*self.store, *doc).unwrap().unwrap();
            let full = SiteDocument::read(&am).unwrap();
            let entry = snap.sites.get(site).unwrap_or_else(|| panic!("{site}"));
            assert_eq!(entry.doc, full, "site {site} hydrated");
            for p in PERIODS {
                let period: Period = p.parse().unwrap();
                assert_eq!(
                    *snap.aggregate(&entry.doc, period),
                    SiteAggregate::compute(&full, period).unwrap(),
                    "site {site} aggregate {p}"
                );
            }
            assert_eq!(
                *snap.conflicts[site],
                SiteConflicts::read(site, &am),
                "site {site} conflict inputs"
            );
            loaded.push((site.as_str(), am));
        }
        let pairs: Vec<(&str, &AutoCommit)> = loaded.iter().map(|(s, d)| (*s, d)).collect();
        let net = load_stored(&*self.store, self.network).unwrap().unwrap();
        assert_eq!(*snap.network, NetworkDocument::read(&net).unwrap());
        let mut expected = conflicts::detect(&pairs);
        expected.extend(conflicts::detect_network(&net));
        let (found, covered) = Scope::everything(&snap).detect_conflicts();
        assert_eq!(found, expected);
        assert_eq!(covered, self.docs.keys().cloned().collect::<Vec<_>>());
    }
}

fn site_edit(am: &mut AutoCommit, f: impl FnOnce(&mut SiteDocument)) {
    let mut d = SiteDocument::read(am).unwrap();
    f(&mut d);
    autosurgeon::reconcile(am, &d).unwrap();
}

fn obj(am: &AutoCommit, field: &str) -> automerge::ObjId {
    automerge::ReadDoc::get(am, ROOT, field).unwrap().unwrap().1
}

/// Edits of every kind, one site at a time, each compared with a full read.
fn edits_of_every_kind(f: &Fixture) {
    let t = cst(11, 3, 10);
    // The operations' clock: after every event they record.
    let now = cst(11, 30, 10);
    f.edit("a1", |am| {
        add_customers(
            am,
            vec![
                customer("k1", "c1", vec![ev(EventKind::Visit, t, "c1", None)]),
                customer("k2", "c2", vec![ev(EventKind::Visit, t, "c2", None)]),
            ],
        )
    });
    f.edit("a1", |am| {
        add_vehicles(
            am,
            vec![
                vehicle(1, "SDN-A", 90_000 * YUAN),
                vehicle(2, "SDN-A", 90_000 * YUAN),
            ],
        )
    });
    for (i, kind) in [EventKind::TestDrive, EventKind::Order, EventKind::Call]
        .into_iter()
        .enumerate()
    {
        f.edit("a1", |am| {
            let mut e = NewEvent::new(kind, t + i as i64 * 3_600_000);
            e.amount = (kind == EventKind::Order).then_some(150_000 * YUAN);
            domain::record_event(am, "k1", &e, "c1", now).unwrap();
        });
    }
    f.edit("a1", |am| {
        let reserve = VehicleAction::Reserve {
            customer: "k1".into(),
        };
        domain::move_vehicle(am, "LDS00000000000001", &reserve, "c1", now).unwrap();
    });
    f.edit("a1", |am| {
        let update = CustomerUpdate {
            name: Some("王先生".into()),
            phone: Some("139 0000 1111".into()),
            ..CustomerUpdate::default()
        };
        domain::update_customer(am, &NetworkDocument::new(), "k2", &update, "c2", now).unwrap();
    });
    f.edit("a1", |am| {
        domain::adjust_part(am, "P-100", 5, "c1", now).unwrap();
    });
    f.edit("a1", |am| {
        domain::adjust_part(am, "P-100", -2, "c1", now).unwrap();
    });
    f.edit("a1", |am| {
        let target = Target {
            units: 3,
            ..Target::default()
        };
        domain::set_consultant_target(am, "c1", "2026-11", &target, "m1", now).unwrap();
    });
    f.edit("a1", |am| {
        site_edit(am, |d| {
            d.forecasts.entry("2026-12".into()).or_default().insert(
                "SDN-A".into(),
                ForecastEntry {
                    quantity: 4,
                    at: t,
                    by: "m1".into(),
                    adjusted: None,
                },
            );
            d.walk_ins.insert(
                "w1".into(),
                WalkIn {
                    id: "w1".into(),
                    at: t,
                    by: "c2".into(),
                    party_size: 3,
                    model_of_interest: None,
                    note: None,
                },
            );
            d.site.name = "site a1, renamed".into();
        })
    });
    // A second customer with k1's phone: a duplicate customer.
    f.edit("a1", |am| {
        add_customers(am, vec![customer("k3", "c1", vec![])]);
    });
    // Deletions: a customer and a vehicle removed from their maps.
    f.edit("a1", |am| {
        let customers = obj(am, "customers");
        am.delete(&customers, "k2").unwrap();
        let vehicles = obj(am, "vehicles");
        am.delete(&vehicles, "LDS00000000000002").unwrap();
    });
    // A field this code does not know, then a whole map set afresh: read whole.
    f.edit("a1", |am| {
        am.put(ROOT, "somethingNew", "x").unwrap();
    });
    f.edit("a1", |am| {
        am.delete(ROOT, "walkIns").unwrap();
    });
    // Concurrent reservations merged: a double booking.
    f.edit("a1", |am| {
        add_vehicles(am, vec![vehicle(9, "SDN-A", 90_000 * YUAN)]);
        let mut other = am.fork().with_actor(ActorId::from(b"tablet-b".to_vec()));
        let reserve = |c: &str| VehicleAction::Reserve { customer: c.into() };
        domain::move_vehicle(am, "LDS00000000000009", &reserve("k1"), "c1", now).unwrap();
        domain::move_vehicle(&mut other, "LDS00000000000009", &reserve("k3"), "c2", now).unwrap();
        am.merge(&mut other).unwrap();
    });
    // The same VIN in stock at a2 as well: stock at two sites, across documents.
    f.edit("a2", |am| {
        add_vehicles(am, vec![vehicle(1, "SDN-A", 90_000 * YUAN)]);
    });
    f.edit("a2", |am| {
        add_customers(
            am,
            vec![customer(
                "m1",
                "c9",
                vec![
                    ev(EventKind::Visit, t, "c9", None),
                    ev(
                        EventKind::Delivery,
                        t + 86_400_000,
                        "c9",
                        Some(200_000 * YUAN),
                    ),
                ],
            )],
        );
    });
}

#[test]
fn updates_change_by_change_equal_a_full_read() {
    let f = Fixture::new(64);
    edits_of_every_kind(&f);
    // 18 edits: all but the unknown field and the deleted map (its field gone)
    // applied change by change; the 4 sites of the first load and those 2 read whole.
    assert_eq!(
        f.model.update_counts(),
        UpdateCounts {
            incremental: 16,
            whole: 6,
            archives: 0
        }
    );
    let kinds: Vec<ConflictKind> = Scope::everything(&f.model.snapshot())
        .detect_conflicts()
        .0
        .iter()
        .map(|c| c.kind)
        .collect();
    for kind in [
        ConflictKind::DoubleBooking,
        ConflictKind::StockAtTwoSites,
        ConflictKind::DuplicateCustomer,
    ] {
        assert!(kinds.contains(&kind), "{kind:?} in {kinds:?}");
    }
}

#[test]
fn one_resident_document_for_two_changing_sites_still_equals_a_full_read() {
    let f = Fixture::new(1);
    edits_of_every_kind(&f);
    for i in 0..6 {
        let site = if i % 2 == 0 { "a1" } else { "a2" };
        f.edit(site, |am| {
            let customers = obj(am, "customers");
            let first = automerge::ReadDoc::keys(am, &customers).next().unwrap();
            let e = NewEvent::new(EventKind::Visit, cst(11, 4, 10) + i);
            domain::record_event(am, &first, &e, "c1", cst(11, 30, 10)).unwrap();
        });
        assert!(f.model.resident_documents() <= 1);
    }
}

#[test]
fn a_compaction_between_changes_changes_nothing() {
    let f = Fixture::new(64);
    edits_of_every_kind(&f);
    for site in ["a1", "a2"] {
        f.store.compact(&f.docs[site]).unwrap();
        // A notice for a compaction alone: nothing new, the model stays equal.
        f.model.apply(&[f.docs[site]]).unwrap();
        f.assert_matches_store();
        f.edit(site, |am| {
            domain::adjust_part(am, "P-7", 1, "c1", 0).unwrap();
        });
    }
}

#[test]
fn the_network_document_and_its_conflicts_follow_changes() {
    let f = Fixture::new(64);
    f.writer
        .edit(f.network, &mut |am| {
            let t = Target {
                units: 9,
                ..Target::default()
            };
            domain::set_site_target(am, "a1", "2026-11", &t, "hq-user", 0)?;
            Ok(())
        })
        .unwrap();
    let change = f.model.apply(&[f.network]).unwrap();
    assert!(change.network);
    assert_eq!(f.model.snapshot().network.targets["a1"]["2026-11"].units, 9);
    f.assert_matches_store();
}
