//! Benchmark of the reports at network scale (ignored; prints figures, asserts none):
//! 500 sites × 2,000 customers, the time of a KPI and a board request on the read
//! model (cold: every site's aggregate computed; warm: aggregates kept), the memory
//! the read model holds, and the cost of one change (reload the changed document from
//! the store, hydrate it, recompute its cached aggregates).
//!
//! `cargo test -p dealersync-server --release --test reports_bench -- --ignored --nocapture`
//! (see docs/benchmarks.md for the figures).

use std::sync::Arc;
use std::time::{Duration, Instant};

use dealersync_core::schema::{
    Customer, CustomerEvent, CustomerSource, CustomerStatus, EventKind, NetworkDocument,
    SiteDocument, SiteHeader, SiteKind, Target, VehicleModel,
};
use dealersync_core::store::Store;
use dealersync_server::registry::{DocumentWriter, Registry, StoreDocuments};
use dealersync_server::reports_api::read_model::Snapshot;
use dealersync_server::reports_api::{ReadModel, ReportQuery, Scope, compute};
use dealersync_server::storage::{SqliteStore, StoreOptions};

const SITES: usize = 500;
const CUSTOMERS: usize = 2_000;
const CONSULTANTS: usize = 5;

/// A small deterministic generator (no dependency, same network every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// 00:00 CST on day `d` (0-based) of 2026.
fn day(d: u64) -> i64 {
    1_767_225_600_000 - 8 * 3_600_000 + d as i64 * 86_400_000
}

fn customers(site: &str, rng: &mut Lcg) -> Vec<Customer> {
    (0..CUSTOMERS)
        .map(|i| {
            let by = format!("{site}-c{}", rng.next(CONSULTANTS as u64));
            let d = rng.next(334); // January 1st to November 30th
            let ev = |kind, at, amount| CustomerEvent {
                kind,
                at,
                by: by.clone(),
                note: None,
                amount,
                vin: None,
                score: None,
                direction: None,
            };
            let mut events = vec![ev(EventKind::Visit, day(d) + 36_000_000, None)];
            if rng.next(2) == 0 {
                events.push(ev(EventKind::TestDrive, day(d) + 40_000_000, None));
            }
            if rng.next(4) == 0 {
                events.push(ev(EventKind::Order, day(d + 2), Some(15_000_000)));
                if rng.next(5) < 4 {
                    events.push(ev(EventKind::Delivery, day(d + 12), None));
                }
            }
            if rng.next(3) == 0 {
                events.push(ev(EventKind::Call, day(d + 1), None));
            }
            Customer {
                id: format!("{site}-k{i}"),
                name: format!("客户{i}"),
                phone: format!("138{:08}", i),
                source: CustomerSource::WalkIn,
                model_of_interest: None,
                consultant: Some(by.clone()),
                status: CustomerStatus::Lead,
                created_at: day(d),
                events,
                merged_into: None,
            }
        })
        .collect()
}

fn header(i: usize) -> SiteHeader {
    let (id, kind, parent) = match i {
        0 => ("hq".to_string(), SiteKind::HeadOffice, None),
        1..=20 => (
            format!("dc{i}"),
            SiteKind::DistributionCentre,
            Some("hq".into()),
        ),
        _ => (
            format!("ag{i}"),
            SiteKind::Agent,
            Some(format!("dc{}", 1 + i % 20)),
        ),
    };
    SiteHeader {
        name: format!("{id} 站"),
        id,
        kind,
        parent,
        channel: None,
    }
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[test]
#[ignore = "benchmark: run with --ignored --nocapture, in release for the documented figures"]
fn reports_at_network_scale() {
    let mut rng = Lcg(7);
    let mut network = NetworkDocument::new();
    network.models.insert(
        "SDN-A".into(),
        VehicleModel {
            code: "SDN-A".into(),
            name: "悦行".into(),
            trims: vec![],
            cost: 9_000_000,
            list_price: 10_800_000,
        },
    );
    let rss0 = rss_mib();
    let started = Instant::now();
    let docs: Vec<SiteDocument> = (0..SITES)
        .map(|i| {
            let h = header(i);
            network.sites.insert(h.id.clone(), h.clone());
            network.targets.entry(h.id.clone()).or_default().insert(
                "2026-11".into(),
                Target {
                    units: 30,
                    revenue: 450_000_000,
                    ..Target::default()
                },
            );
            let mut d = SiteDocument::new(h.clone());
            d.customers = customers(&h.id, &mut rng)
                .into_iter()
                .map(|c| (c.id.clone(), c))
                .collect();
            d
        })
        .collect();
    let events: usize = docs
        .iter()
        .flat_map(|d| d.customers.values())
        .map(|c| c.events.len())
        .sum();
    println!(
        "generated {SITES} sites × {CUSTOMERS} customers ({events} events) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let snapshot = Snapshot::from_documents(network, docs);
    let rss1 = rss_mib();
    println!(
        "read model memory (RSS growth, hydrated documents): {:.0} MiB",
        rss1 - rss0
    );

    let scope = Scope::everything(&snapshot);
    for kind in ["kpi", "board"] {
        for period in ["2026-11", "2026-W45", "2026"] {
            let q = ReportQuery {
                period: Some(period.into()),
                ..ReportQuery::default()
            };
            let run = || {
                let t = Instant::now();
                let c = compute(kind, &q, &scope, None).unwrap();
                let bytes = serde_json::to_vec(&c.json).unwrap().len();
                (t.elapsed(), bytes)
            };
            let (cold, bytes) = run();
            let warm = median((0..9).map(|_| run().0).collect());
            println!(
                "{kind:5} {period:8}: cold (every aggregate computed) {}, warm (aggregates kept) median {} — {} KiB of JSON",
                ms(cold),
                ms(warm),
                bytes / 1024
            );
        }
    }
    println!(
        "read model memory with 6 periods of aggregates: {:.0} MiB",
        rss_mib() - rss0
    );
    drop(scope);
    drop(snapshot);

    // The cost of one change: a site document of 2,000 customers in a real store.
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path(), &StoreOptions::default()).unwrap());
    let registry = Arc::new(Registry::open_in(dir.path()).unwrap());
    let writer = StoreDocuments(store.clone());
    registry.create_site(&writer, header(0)).unwrap();
    registry.create_site(&writer, header(2)).unwrap();
    let site = registry.create_site(&writer, header(21)).unwrap();
    let big = customers(&site.id, &mut rng);
    writer
        .edit(site.document_id, &mut |am| {
            let mut d = SiteDocument::read(am).unwrap();
            d.customers = big.iter().map(|c| (c.id.clone(), c.clone())).collect();
            autosurgeon::reconcile(am, &d).unwrap();
            Ok(())
        })
        .unwrap();
    let bytes = store
        .load(&site.document_id)
        .unwrap()
        .unwrap()
        .chunks
        .concat()
        .len();
    let model = ReadModel::new(
        SqliteStore::open(dir.path(), &StoreOptions::default()).unwrap(),
        registry.clone(),
    );
    model.reload().unwrap();
    {
        let snap = model.snapshot();
        let scope = Scope::everything(&snap);
        for p in ["2026-11", "2026-W45", "2026-Q4", "2026"] {
            let q = ReportQuery {
                period: Some(p.into()),
                ..ReportQuery::default()
            };
            compute("kpi", &q, &scope, None).unwrap();
        }
    }
    let mut costs = Vec::new();
    for i in 0..15 {
        writer
            .edit(site.document_id, &mut |am| {
                let mut d = SiteDocument::read(am).unwrap();
                let c = d.customers.values_mut().nth(i * 7).unwrap();
                let mut e = c.events[0].clone();
                e.at += 60_000;
                c.events.push(e);
                autosurgeon::reconcile(am, &d).unwrap();
                Ok(())
            })
            .unwrap();
        let t = Instant::now();
        model.apply(&[site.document_id]).unwrap();
        costs.push(t.elapsed());
    }
    let worst = *costs.iter().max().unwrap();
    println!(
        "one change to a site of {CUSTOMERS} customers ({} KiB stored): reload + hydrate + 4 periods recomputed, median {}, worst {}",
        bytes / 1024,
        ms(median(costs)),
        ms(worst)
    );
}
