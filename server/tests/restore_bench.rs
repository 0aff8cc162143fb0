//! How long a restore of a realistic network takes (ignored; prints figures, asserts
//! only that each step works). The network of the reports benchmark (500 sites × 2,000
//! customers, `scale_network`) written into a real data directory the way devices
//! write it: one change per customer, from its consultant's device (actor), audited
//! under the consultant, then compacted as the relay's compactor leaves it. Then, with
//! the release binary: `backup --to`, `verify`, `restore` into an empty directory, the
//! restored relay's first start (healthy, then its reports' read model loaded from
//! every site document) and the first full sync of one agent's site document by a
//! client that was never there, with a token issued before the backup. The backup is
//! taken with no relay running: an idle relay costs it nothing, and one still loading
//! its read model would only add its own CPU to the figure (that a backup taken while
//! writers commit holds every acknowledged change is `backup.rs`'s test).
//!
//! ```sh
//! RESTORE_BENCH_DIR=/tmp/restore-bench cargo test -p dealersync-server --release \
//!     --test restore_bench -- --ignored --nocapture
//! ```
//!
//! `RESTORE_BENCH_DIR` keeps the generated data directory for the next run (generating
//! takes minutes); `RESTORE_BENCH_SITES` and `RESTORE_BENCH_CUSTOMERS` shrink the
//! network (at least 21 sites: head office and the 20 distribution centres).

mod common;
mod scale_network;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use automerge::{ActorId, ObjType, ROOT, ReadDoc, Value};
use common::{BIN, Client, Server, env_or};
use dealersync_core::store::{AuditRecord, Store, WriteBatch};
use dealersync_core::time::now_ms;
use dealersync_server::registry::{Registry, SiteRecord, StoreDocuments, load_stored};
use dealersync_server::storage::{SqliteStore, StoreOptions};
use scale_network::{CONSULTANTS, CUSTOMERS, Lcg, SITES, customers, header};

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// Bytes of the files directly in `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// Writes the network into `dir`: every site through the registry, then each site's
/// customers one change each from their consultant's actor, audited under the
/// consultant's device, and the site document compacted; sites are written by two
/// threads (each site from its own seed, so the network is the same every run). An
/// interrupted run is resumed: sites and customers already written are kept.
fn generate(dir: &Path, sites: usize, per_site: usize) -> Vec<SiteRecord> {
    std::fs::create_dir_all(dir).unwrap();
    let store = SqliteStore::open(dir, &StoreOptions::default()).unwrap();
    let registry = Registry::open_in(dir).unwrap();
    let writer = StoreDocuments(Arc::new(store.another_connection().unwrap()));
    let records: Vec<SiteRecord> = (0..sites)
        .map(|i| {
            let h = header(i);
            match registry.site(&h.id) {
                Ok(site) => site,
                Err(_) => registry.create_site(&writer, h).unwrap(),
            }
        })
        .collect();
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(site) = records.get(i) else { break };
                    if write_customers(&store, site, per_site, i as u64) {
                        store.compact(&site.document_id).unwrap();
                    }
                    if (i + 1).is_multiple_of(50) {
                        println!("  {} sites written in {}", i + 1, secs(started.elapsed()));
                    }
                }
            });
        }
    });
    records
}

/// Writes `per_site` customers into `site`'s document, one change per customer from
/// its consultant's actor, each audited under the consultant's device, in one commit
/// as a device's sync would land. Customers already there are skipped; false when
/// there was nothing to write.
fn write_customers(store: &SqliteStore, site: &SiteRecord, per_site: usize, seed: u64) -> bool {
    if store.audit_count(&site.document_id).unwrap() >= per_site as u64 {
        return false; // written by an earlier run
    }
    let all = customers(&site.id, per_site, &mut Lcg(7 + seed));
    let mut am = load_stored(store, site.document_id).unwrap().unwrap();
    let Some((Value::Object(ObjType::Map), map)) = am.get(ROOT, "customers").unwrap() else {
        panic!("a site document has a customers map");
    };
    let before = am.get_heads();
    let mut audit = Vec::new();
    for c in 0..CONSULTANTS {
        let by = format!("{}-c{c}", site.id);
        let since = am.get_heads();
        am.set_actor(ActorId::from(by.as_bytes()));
        for k in all.iter().filter(|k| k.consultant.as_deref() == Some(&by)) {
            if am.get(&map, k.id.as_str()).unwrap().is_none() {
                autosurgeon::reconcile_prop(&mut am, &map, k.id.as_str(), k).unwrap();
                am.commit();
            }
        }
        let device = format!("{by}-pad");
        audit.extend(AuditRecord::for_changes(
            site.document_id,
            am.document(),
            &since,
            Some(&by),
            Some(&device),
            now_ms(),
        ));
    }
    if am.get_heads() == before {
        return false;
    }
    let batch = WriteBatch {
        appended: vec![(site.document_id, am.save_after(&before))],
        audit,
        ..WriteBatch::default()
    };
    store.commit(&batch).unwrap();
    true
}

/// Runs a subcommand of the release binary, timed; panics with its stderr on failure.
fn timed(args: &[&str]) -> (Duration, String) {
    let t = Instant::now();
    let out = Command::new(BIN).args(args).output().unwrap();
    let took = t.elapsed();
    assert!(
        out.status.success(),
        "dealersync-server {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (took, String::from_utf8(out.stdout).unwrap())
}

/// Polls a KPI report over the whole network until it answers 200 (the reports' read
/// model has loaded every site document).
async fn reports_ready(server: &Server) {
    let http = reqwest::Client::new();
    let until = Instant::now() + Duration::from_secs(1_800);
    loop {
        let r = http
            .get(server.url("/api/reports/kpi?period=2026-11"))
            .bearer_auth(&server.token)
            .send()
            .await
            .unwrap();
        if r.status().is_success() {
            return;
        }
        assert_eq!(r.status().as_u16(), 503, "{}", r.text().await.unwrap());
        assert!(Instant::now() < until, "the reports never loaded");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run in release with --ignored --nocapture (see docs/operations.md)"]
async fn restore_of_a_realistic_network() {
    let sites: usize = env_or("RESTORE_BENCH_SITES", SITES);
    let per_site: usize = env_or("RESTORE_BENCH_CUSTOMERS", CUSTOMERS);
    assert!(
        sites > 20,
        "head office and 20 distribution centres at least"
    );
    let temp = tempfile::tempdir().unwrap();
    let root = std::env::var("RESTORE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| temp.path().to_path_buf());
    let live = root.join(format!("live-{sites}x{per_site}"));

    if !live.join("dealersync.db").exists() {
        println!("generating {sites} sites × {per_site} customers in {live:?}");
        let t = Instant::now();
        let records = generate(&live.with_extension("partial"), sites, per_site);
        std::fs::rename(live.with_extension("partial"), &live).unwrap();
        println!(
            "generated {} site documents in {}",
            records.len(),
            secs(t.elapsed())
        );
    } else {
        println!("reusing {live:?}");
    }
    println!("data directory: {}", mib(dir_bytes(&live)));

    // A token of the live relay, issued before the backup.
    let token = common::admin_token(&live);
    let site = Registry::open_in(&live)
        .unwrap()
        .site(&header(sites - 1).id)
        .unwrap();
    let store = SqliteStore::open(&live, &StoreOptions::default()).unwrap();
    let expected = load_stored(&store, site.document_id)
        .unwrap()
        .unwrap()
        .get_heads();
    drop(store);

    let file = root.join(format!("bench-{}.backup", uuid::Uuid::new_v4()));
    let (took, out) = timed(&["backup", "--data-dir", path(&live), "--to", path(&file)]);
    let size = std::fs::metadata(&file).unwrap().len();
    println!(
        "backup --to:                  {}  → {} file",
        secs(took),
        mib(size)
    );
    print!("{out}");
    let (took, _) = timed(&["verify", path(&file)]);
    println!("verify:                       {}", secs(took));
    let restored = root.join(format!("restored-{}", uuid::Uuid::new_v4()));
    let (took, _) = timed(&[
        "restore",
        "--from",
        path(&file),
        "--data-dir",
        path(&restored),
    ]);
    println!(
        "restore:                      {}  → {} data directory",
        secs(took),
        mib(dir_bytes(&restored))
    );

    // The restored relay's first start, and a device that was never there syncing one
    // agent's whole site document with the token the live relay issued; meanwhile the
    // relay loads its reports' read model.
    let second = Server::start(&restored, &[]).await;
    let healthy = Instant::now();
    println!(
        "restored relay: healthy {} after spawn",
        secs(second.healthy_in)
    );
    let url = format!("ws://127.0.0.1:{}/sync?token={token}", second.port);
    let t = Instant::now();
    let mut stranger = Client::connect(&url, "never-there", None).await;
    stranger.request(site.document_id).await;
    stranger
        .until("the restored relay serves the whole site document", |c| {
            c.has_all(site.document_id, &expected)
        })
        .await;
    println!(
        "first full sync of site {} by a new device: {} ({} received, {} changes)",
        site.id,
        secs(t.elapsed()),
        mib(stranger.sync_bytes_in as u64),
        stranger
            .docs
            .get_mut(&site.document_id)
            .unwrap()
            .doc
            .get_changes(&[])
            .len()
    );
    reports_ready(&second).await;
    println!(
        "restored relay: reports loaded {} after it was healthy",
        secs(healthy.elapsed())
    );
    drop(second);
    std::fs::remove_file(&file).unwrap();
    std::fs::remove_file(backup_checksum(&file)).unwrap();
    std::fs::remove_dir_all(&restored).unwrap();
}

/// The checksum file `backup` writes beside `file`.
fn backup_checksum(file: &Path) -> PathBuf {
    dealersync_sqlite_store::backup::checksum_path(file)
}
