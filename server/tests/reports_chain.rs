//! The reports' read model over a site's chain of monthly documents: after the
//! carry-over (`Registry::archive_month`) a site is reported as its archives and
//! working document combined, so the KPIs and the board of the month before equal the
//! figures read before the carry-over, the new month counts only its own work, a change
//! in the working document still updates incrementally (the archives are hydrated
//! once), and a late change in an archive's grace week reaches the reports. Checked
//! against a reference document that was never archived. In process, on a real store.

mod common;
mod reports_fixture;

use std::sync::Arc;

use automerge::AutoCommit;
use dealersync_core::protocol::DocumentId;
use dealersync_core::schema::{Customer, CustomerStatus, EventKind, SiteDocument, SiteKind};
use dealersync_server::registry::{DocumentWriter, Registry, StoreDocuments, load_stored};
use dealersync_server::reports_api::{ReadModel, ReportQuery, Scope, compute};
use dealersync_server::storage::{SqliteStore, StoreOptions};
use reports_fixture::{
    YUAN, add_customers, add_vehicles, create_sites, cst, customer, ev, row, vehicle,
};
use serde_json::Value;

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    writer: StoreDocuments<SqliteStore>,
    registry: Arc<Registry>,
    model: Arc<ReadModel>,
    /// What a1's document would be had it never been archived.
    reference: AutoCommit,
}

impl Fixture {
    /// hq ← a1, the read model loaded.
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path(), &StoreOptions::default()).unwrap());
        let registry = Arc::new(Registry::open_in(dir.path()).unwrap());
        let writer = StoreDocuments(store.clone());
        create_sites(
            &registry,
            &writer,
            &[
                ("hq", SiteKind::HeadOffice, None),
                ("a1", SiteKind::Agent, Some("hq")),
            ],
        );
        let a1 = registry.site("a1").unwrap().document_id;
        let reference = load_stored(&*store, a1).unwrap().unwrap();
        let model = ReadModel::new(
            SqliteStore::open(dir.path(), &StoreOptions::default()).unwrap(),
            registry.clone(),
        );
        model.reload().unwrap();
        Fixture {
            _dir: dir,
            store,
            writer,
            registry,
            model,
            reference,
        }
    }

    /// Writes the same edit into `doc` (a document of a1's chain) and the reference,
    /// and brings the model up to date with the document's commit.
    fn edit(&mut self, doc: DocumentId, edit: impl Fn(&mut AutoCommit)) {
        self.writer
            .edit(doc, &mut |am| {
                edit(am);
                Ok(())
            })
            .unwrap();
        edit(&mut self.reference);
        let change = self.model.apply(&[doc]).unwrap();
        assert_eq!(change.sites, vec!["a1".to_string()]);
        self.assert_matches_reference();
    }

    /// a1 as the reports see it is the document that was never archived.
    fn assert_matches_reference(&self) {
        let snap = self.model.snapshot();
        let reference = SiteDocument::read(&self.reference).unwrap();
        assert_eq!(snap.sites["a1"].doc, reference);
    }

    fn working(&self) -> DocumentId {
        self.registry.site("a1").unwrap().document_id
    }

    /// The KPI report and the sales board for `period`, as `GET /api/reports` computes
    /// them for head office.
    fn figures(&self, period: &str) -> (Value, Value) {
        let snap = self.model.snapshot();
        let scope = Scope::everything(&snap);
        let q = ReportQuery {
            period: Some(period.into()),
            ..ReportQuery::default()
        };
        let kpi = compute("kpi", &q, &scope, None).unwrap().json;
        let board = compute("board", &q, &scope, None).unwrap().json;
        (kpi, board)
    }
}

fn deliveries(kpi: &Value) -> &Value {
    &row(kpi, "rows", "site", "site", "a1")["deliveries"]
}

#[test]
fn reports_read_a_site_across_its_carry_over() {
    let mut f = Fixture::new();
    let october = f.working();
    // October: one customer delivered (stays in the archive), one still open (carried
    // over with its events), a car in stock (carried).
    f.edit(october, |am| {
        add_customers(
            am,
            vec![
                Customer {
                    status: CustomerStatus::Delivered,
                    ..customer(
                        "d1",
                        "c1",
                        vec![
                            ev(EventKind::Visit, cst(10, 3, 10), "c1", None),
                            ev(EventKind::Order, cst(10, 5, 10), "c1", Some(150_000 * YUAN)),
                            ev(
                                EventKind::Delivery,
                                cst(10, 10, 10),
                                "c1",
                                Some(150_000 * YUAN),
                            ),
                        ],
                    )
                },
                customer(
                    "o1",
                    "c2",
                    vec![ev(EventKind::Visit, cst(10, 12, 10), "c2", None)],
                ),
            ],
        );
        add_vehicles(am, vec![vehicle(1, "SDN-A", 90_000 * YUAN)]);
    });
    let (kpi_oct, board_oct) = f.figures("2026-10");
    assert_eq!(deliveries(&kpi_oct), 1);

    let archived = f
        .registry
        .archive_month(&f.writer, "2026-11", cst(11, 1, 9))
        .unwrap();
    assert_eq!(archived.len(), 2);
    let november = f.working();
    assert_ne!(november, october);
    // Through the relay the new document's notice comes before the registry names it
    // (and is passed over); the network document's header comes after: on that notice
    // the model finds the site carried over.
    let network = f.registry.network_document().unwrap().unwrap();
    let change = f.model.apply(&[network]).unwrap();
    assert!(change.sites.contains(&"a1".to_string()), "{change:?}");
    f.assert_matches_reference();
    // The working document alone has lost the delivered customer: the reports have not.
    let alone = SiteDocument::read(&load_stored(&*f.store, november).unwrap().unwrap()).unwrap();
    assert!(!alone.customers.contains_key("d1"));
    assert_eq!(f.figures("2026-10"), (kpi_oct.clone(), board_oct.clone()));
    let loaded = f.model.update_counts();
    assert_eq!(loaded.archives, 2, "each site's archive hydrated once");

    // November: the carried customer orders and takes delivery, a new one visits.
    f.edit(november, |am| {
        let mut site = SiteDocument::read(am).unwrap();
        let o1 = site.customers.get_mut("o1").unwrap();
        o1.events.extend([
            ev(EventKind::Order, cst(11, 3, 10), "c2", Some(160_000 * YUAN)),
            ev(
                EventKind::Delivery,
                cst(11, 10, 10),
                "c2",
                Some(160_000 * YUAN),
            ),
        ]);
        o1.status = CustomerStatus::Delivered;
        autosurgeon::reconcile(am, &site).unwrap();
        add_customers(
            am,
            vec![customer(
                "n1",
                "c1",
                vec![ev(EventKind::Visit, cst(11, 4, 10), "c1", None)],
            )],
        );
    });
    let after = f.model.update_counts();
    assert_eq!(after.incremental, loaded.incremental + 1, "{after:?}");
    assert_eq!(after.whole, loaded.whole, "{after:?}");
    assert_eq!(
        after.archives, loaded.archives,
        "the archives are not read again"
    );
    let (kpi_nov, _) = f.figures("2026-11");
    assert_eq!(
        deliveries(&kpi_nov),
        1,
        "November counts only its own delivery"
    );
    assert_eq!(
        row(&kpi_nov, "rows", "site", "site", "a1")["revenue"],
        160_000 * YUAN
    );
    assert_eq!(f.figures("2026-10"), (kpi_oct.clone(), board_oct));

    // A device that missed the month's end hands in a visitor late, in the grace week.
    f.edit(october, |am| {
        add_customers(
            am,
            vec![customer(
                "l1",
                "c2",
                vec![ev(EventKind::Visit, cst(10, 30, 10), "c2", None)],
            )],
        );
    });
    assert_eq!(f.model.update_counts().archives, loaded.archives + 1);
    let (kpi_late, _) = f.figures("2026-10");
    let visits = |k: &Value| {
        row(k, "rows", "site", "site", "a1")["visits"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(visits(&kpi_late), visits(&kpi_oct) + 1);

    // A reload (a lagging subscriber) reads the same.
    f.model.reload().unwrap();
    f.assert_matches_reference();
    assert_eq!(f.figures("2026-10").0, kpi_late);
}
