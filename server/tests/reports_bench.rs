//! Benchmark of the reports at network scale (ignored; prints figures, asserts none):
//! 500 sites × 2,000 customers, the time of a KPI, a board and a conflicts request on
//! the read model (cold: every site's aggregate computed; warm: aggregates kept), the
//! memory the read model holds, where a whole reload of one site's document spends its
//! time, what a kept automerge document costs in memory, and the cost of one change
//! both ways in the same run: the document loaded whole (before) and the change applied
//! to the kept document, only the touched customer hydrated again (after).
//!
//! `cargo test -p dealersync-server --release --test reports_bench -- --ignored --nocapture`
//! (see docs/benchmarks.md for the figures).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dealersync_core::access::{Claims, Role};
use dealersync_core::conflicts::SiteConflicts;
use dealersync_core::reports::SiteAggregate;
use dealersync_core::schema::{NetworkDocument, SiteDocument, Target, VehicleModel};
use dealersync_core::store::Store;
use dealersync_server::api::Caller;
use dealersync_server::registry::{DocumentWriter, Registry, StoreDocuments};
use dealersync_server::reports_api::read_model::{RESIDENT_DOCUMENTS, Snapshot};
use dealersync_server::reports_api::{ReadModel, ReportQuery, Scope, compute};
use dealersync_server::storage::{SqliteStore, StoreOptions};

/// Counts the bytes allocated and not yet freed, so memory figures do not depend on
/// what the allocator kept from earlier phases (RSS does not shrink on free).
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; the counter
// is only a statistic.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Live heap, MiB.
fn heap_mib() -> f64 {
    LIVE.load(Ordering::Relaxed) as f64 / (1024.0 * 1024.0)
}

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
    // The read model logs each site update's stages at debug.
    tracing_subscriber::fmt()
        .with_env_filter("dealersync_server::reports_api=debug")
        .init();
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
    let heap0 = heap_mib();
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
    let mut snapshot = Snapshot::from_documents(network, docs);
    let rss1 = rss_mib();
    println!(
        "read model memory, hydrated documents: RSS growth {:.0} MiB, live heap {:.0} MiB",
        rss1 - rss0,
        heap_mib() - heap0
    );
    // Conflict inputs for every site, read from one automerge document of a site's
    // size with a duplicate customer in it: the conflict report lists one per site.
    let sample = {
        let mut d = SiteDocument::new(header(1));
        let mut cs = customers("dc1", CUSTOMERS, &mut Lcg(11));
        cs[1].phone = cs[0].phone.clone();
        d.customers = cs.into_iter().map(|c| (c.id.clone(), c)).collect();
        let mut am = automerge::AutoCommit::new();
        autosurgeon::reconcile(&mut am, &d).unwrap();
        am
    };
    let started = Instant::now();
    let heap1 = heap_mib();
    snapshot.conflicts = (0..SITES)
        .map(|i| {
            let id = header(i).id;
            let inputs = SiteConflicts::read(&id, &sample);
            (id, Arc::new(inputs))
        })
        .collect();
    println!(
        "conflict inputs of {SITES} sites read in {:.1} s; their live heap: {:.1} MiB",
        started.elapsed().as_secs_f64(),
        heap_mib() - heap1
    );
    drop(sample);

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
        "read model memory with 6 periods of aggregates: RSS growth {:.0} MiB, live heap {:.0} MiB",
        rss_mib() - rss0,
        heap_mib() - heap0
    );
    // An admin may settle any conflict: the registry's tree is not consulted.
    let admin_dir = tempfile::tempdir().unwrap();
    let admin_registry = Registry::open_in(admin_dir.path()).unwrap();
    let admin = Caller(Claims {
        sub: "bench".into(),
        role: Role::Admin,
        site: "hq".into(),
        device: None,
        exp: u64::MAX,
        jti: "bench".into(),
        iat: None,
        nbf: None,
        iss: None,
        aud: None,
    });
    let q = ReportQuery::default();
    let run = || {
        let t = Instant::now();
        let c = compute("conflicts", &q, &scope, Some((&admin_registry, &admin))).unwrap();
        let listed = c.json["conflicts"].as_array().unwrap().len();
        (
            t.elapsed(),
            listed,
            serde_json::to_vec(&c.json).unwrap().len(),
        )
    };
    let (first, listed, bytes) = run();
    let median_conflicts = median((0..9).map(|_| run().0).collect());
    println!(
        "conflicts: {listed} conflicts over {SITES} sites, first {}, median of 9 {} — {} KiB of JSON",
        ms(first),
        ms(median_conflicts),
        bytes / 1024
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
    // Where a full reload's time goes, stage by stage, on the stored document.
    let mut stages: [Vec<Duration>; 5] = Default::default();
    for _ in 0..5 {
        let t = Instant::now();
        let stored = store.load(&site.document_id).unwrap().unwrap();
        stages[0].push(t.elapsed());
        let t = Instant::now();
        let am = stored.load().unwrap();
        stages[1].push(t.elapsed());
        let t = Instant::now();
        let doc = SiteDocument::read(&am).unwrap();
        stages[2].push(t.elapsed());
        let t = Instant::now();
        for p in ["2026-11", "2026-W45", "2026-Q4", "2026"] {
            SiteAggregate::compute(&doc, p.parse().unwrap()).unwrap();
        }
        stages[3].push(t.elapsed());
        let t = Instant::now();
        dealersync_core::conflicts::detect(&[(site.id.as_str(), &am)]);
        stages[4].push(t.elapsed());
    }
    let [store_load, am_load, hydrate, aggregates, conflicts] = stages.map(median);
    println!(
        "full reload of that site, median of 5: store read {}, automerge load {}, hydrate {}, 4 periods of aggregates {}, conflict detection {}",
        ms(store_load),
        ms(am_load),
        ms(hydrate),
        ms(aggregates),
        ms(conflicts)
    );
    // What keeping an automerge document resident costs.
    let stored = store.load(&site.document_id).unwrap().unwrap();
    let before = heap_mib();
    let resident = stored.load().unwrap();
    println!(
        "one kept automerge document of {CUSTOMERS} customers: {:.1} MiB of live heap ({RESIDENT_DOCUMENTS} kept by default: {:.0} MiB)",
        heap_mib() - before,
        (heap_mib() - before) * RESIDENT_DOCUMENTS as f64
    );
    drop(resident);

    // One change at a time, first loading the document whole every time (no automerge
    // document kept: how every change was applied before), then applied to the kept
    // document with only the touched customer hydrated again.
    let mut edits = 0;
    let mut edit = || {
        edits += 1;
        writer
            .edit(site.document_id, &mut |am| {
                let mut d = SiteDocument::read(am).unwrap();
                let c = d.customers.values_mut().nth(edits * 7).unwrap();
                let mut e = c.events[0].clone();
                e.at += 60_000;
                c.events.push(e);
                autosurgeon::reconcile(am, &d).unwrap();
                Ok(())
            })
            .unwrap();
    };
    for (limit, how) in [
        (0, "loaded whole (before)"),
        (RESIDENT_DOCUMENTS, "applied to the kept document (after)"),
    ] {
        model.set_resident_limit(limit);
        edit();
        model.apply(&[site.document_id]).unwrap();
        let counts = model.update_counts();
        let mut costs = Vec::new();
        for _ in 0..15 {
            edit();
            let t = Instant::now();
            model.apply(&[site.document_id]).unwrap();
            costs.push(t.elapsed());
        }
        let after = model.update_counts();
        let worst = *costs.iter().max().unwrap();
        println!(
            "one change to a site of {CUSTOMERS} customers ({} KiB stored), {how}: median {}, worst {} ({} incremental, {} whole)",
            bytes / 1024,
            ms(median(costs)),
            ms(worst),
            after.incremental - counts.incremental,
            after.whole - counts.whole
        );
    }
}
