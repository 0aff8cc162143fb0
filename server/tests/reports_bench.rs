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

use dealersync_core::schema::{NetworkDocument, SiteDocument, Target, VehicleModel};
use dealersync_core::store::Store;
use dealersync_server::registry::{DocumentWriter, Registry, StoreDocuments};
use dealersync_server::reports_api::read_model::Snapshot;
use dealersync_server::reports_api::{ReadModel, ReportQuery, Scope, compute};
use dealersync_server::storage::{SqliteStore, StoreOptions};

mod scale_network;
use scale_network::{CUSTOMERS, Lcg, SITES, customers, header};

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
            d.customers = customers(&h.id, CUSTOMERS, &mut rng)
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
    let big = customers(&site.id, CUSTOMERS, &mut rng);
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
