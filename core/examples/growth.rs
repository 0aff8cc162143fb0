//! How per-change sync cost and a new device's first sync grow with a site document's
//! history (issue 14). Prints figures; not a test.
//!
//! ```text
//! cargo run --release -p dealersync-core --example growth -- [--months 36] [--every 6]
//!     [--leads 1500] [--samples 200] [--period none|year|quarter|month]
//!     [--receive fast|stock|both] [--observers 0]
//! ```
//!
//! A busy showroom's history is written month by month through the real
//! `core::domain` operations (leads, their events and status changes, vehicles arriving,
//! reserved, sold and delivered), each consultant on their own device (actor). With
//! `--period`, the site starts a new working document at each period boundary with
//! `domain::carry_over` (open customers and stock carried, the rest archived).
//!
//! At every `--every` months it measures, on the engine the relay runs
//! (`core::protocol::Engine`, in-memory store, commit included):
//! - **per change**: the server's CPU time to take one incoming change from a synced
//!   phone (receive, apply, write batch, commit, reply), p50/p99 over `--samples`;
//! - **cold sync**: a new phone with an empty store syncing the working document: wall
//!   time (both engines on one thread), bytes over the wire, round trips;
//! - the document's saved size and changes.
//!
//! `--receive` picks how the relay's engine hands sync messages to automerge
//! (`EngineConfig::receive_path`): `fast` (the default, skipping automerge's walk over
//! the history when it cannot trim anything), `stock` (automerge untouched), or `both`:
//! two relays side by side on the same document, their per-change samples interleaved
//! so that both see the same machine. `--observers N` connects N more phones that only
//! follow the document: the relay then also forwards each change to them and hears
//! their acknowledgements, which the per-change time includes.
//!
//! With `--period`, also the wall time of `domain::forward_late` of a late customer
//! (and booking) from the last archive into the working document, writing and again
//! with nothing left to write.

use std::time::{Duration, Instant};

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, Automerge, ChangeHash, ObjType, ROOT, ReadDoc};
use dealersync_core::domain::{
    self, CheckDigitPolicy, NewCustomer, NewEvent, NewVehicle, Sale, VehicleAction, Vin,
};
use dealersync_core::protocol::memory::MemoryStore;
use dealersync_core::protocol::{
    ConnId, ConnInfo, DocumentId, Engine, EngineConfig, Output, PeerId, ReceivePath, StorageId,
};
use dealersync_core::schema::{
    CustomerSource, CustomerStatus, EventKind, Millis, NetworkDocument, SiteHeader, SiteKind,
    VehicleModel, VehicleStatus,
};
use dealersync_core::store::Store;
use dealersync_core::time::cst_midnight;

const CONSULTANTS: usize = 10;
const MODELS: [&str; 3] = ["SDN-A", "SUV-B", "EV-C"];

/// A small deterministic generator (xorshift64*), so every run writes the same history.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Args {
    months: u32,
    every: u32,
    leads: u32,
    samples: usize,
    period: Option<u32>,
    receive: Vec<ReceivePath>,
    observers: usize,
}

fn args() -> Args {
    let mut a = Args {
        months: 36,
        every: 6,
        leads: 1500,
        samples: 200,
        period: None,
        receive: vec![ReceivePath::Fast],
        observers: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_default();
        match k.as_str() {
            "--months" => a.months = v.parse().expect("--months N"),
            "--every" => a.every = v.parse().expect("--every N"),
            "--leads" => a.leads = v.parse().expect("--leads N"),
            "--samples" => a.samples = v.parse().expect("--samples N"),
            "--observers" => a.observers = v.parse().expect("--observers N"),
            "--period" => {
                a.period = match v.as_str() {
                    "none" => None,
                    "year" => Some(12),
                    "quarter" => Some(3),
                    "month" => Some(1),
                    _ => panic!("--period none|year|quarter|month"),
                }
            }
            "--receive" => {
                a.receive = match v.as_str() {
                    "fast" => vec![ReceivePath::Fast],
                    "stock" => vec![ReceivePath::Stock],
                    "both" => vec![ReceivePath::Stock, ReceivePath::Fast],
                    _ => panic!("--receive fast|stock|both"),
                }
            }
            _ => panic!("unknown argument {k}"),
        }
    }
    a
}

fn network(now: Millis) -> NetworkDocument {
    let mut doc = domain::create_network_document(now).unwrap();
    for (i, code) in MODELS.iter().enumerate() {
        let model = VehicleModel {
            code: code.to_string(),
            name: code.to_string(),
            trims: vec!["std".into(), "lux".into()],
            cost: 10_000_000 + i as i64 * 3_000_000,
            list_price: 13_000_000 + i as i64 * 3_000_000,
        };
        domain::put_model(&mut doc, &model, "hq", now).unwrap();
    }
    NetworkDocument::read(&doc).unwrap()
}

fn vin(serial: u32) -> Vin {
    let mut v = format!("LDSAB2B0TA{serial:07}");
    let check = domain::check_digit(&v);
    v.replace_range(8..9, &check.to_string());
    Vin::parse(&v, CheckDigitPolicy::Enforce).unwrap()
}

/// The showroom: its working document and what the generator remembers of it.
struct Showroom {
    doc: AutoCommit,
    net: NetworkDocument,
    rng: Rng,
    next_customer: u32,
    next_vin: u32,
    /// Customers still in the funnel, with their consultant and when they came.
    open: Vec<(String, usize, Millis)>,
    /// Vehicles in stock.
    stock: Vec<String>,
    changes_written: u64,
    /// The archive the last roll-over left (only with `--period`).
    archive: Option<AutoCommit>,
}

fn actor(consultant: usize) -> ActorId {
    ActorId::from(format!("phone-{consultant:02}").into_bytes())
}

impl Showroom {
    fn new(now: Millis) -> Showroom {
        let header = SiteHeader {
            id: "sr-1".into(),
            name: "城东展厅".into(),
            kind: SiteKind::Showroom,
            parent: Some("dc-north".into()),
            channel: None,
        };
        Showroom {
            doc: domain::create_site_document(&header, now).unwrap(),
            net: network(now),
            rng: Rng(0x5eed_1234_abcd),
            next_customer: 0,
            next_vin: 0,
            open: Vec::new(),
            stock: Vec::new(),
            changes_written: 0,
            archive: None,
        }
    }

    fn by(&mut self, consultant: usize) -> String {
        self.doc.set_actor(actor(consultant));
        self.changes_written += 1;
        format!("cons{consultant:02}")
    }

    /// One month: `leads` new leads and what happens to the open ones.
    fn month(&mut self, start: Millis, end: Millis, leads: u32) {
        let step = (end - start) / i64::from(leads.max(1));
        // Leads nobody heard from in three months are closed as lost at the start of
        // the month (the showroom's monthly clean-up), so the funnel stays a quarter's
        // worth of leads.
        let stale = start - 90 * dealersync_core::time::DAY_MS;
        let (old, open): (Vec<_>, Vec<_>) = std::mem::take(&mut self.open)
            .into_iter()
            .partition(|(_, _, at)| *at < stale);
        self.open = open;
        for (id, c, _) in old {
            let by = self.by(c);
            domain::set_customer_status(&mut self.doc, &id, CustomerStatus::Lost, &by, start)
                .unwrap();
        }
        // Stock arrives at the start of the month: roughly what sells.
        for _ in 0..leads / 15 {
            let now = start;
            let by = self.by(0);
            self.next_vin += 1;
            let v = vin(self.next_vin);
            let model = MODELS[self.rng.below(3) as usize];
            let new = NewVehicle {
                vin: v.clone(),
                model: model.into(),
                trim: "std".into(),
                colour: "白".into(),
                cost: None,
                list_price: None,
                status: VehicleStatus::InStock,
                eta: None,
            };
            domain::receive_vehicle(&mut self.doc, &self.net, &new, &by, now).unwrap();
            self.stock.push(v.as_str().to_string());
        }
        for i in 0..leads {
            let now = start + i64::from(i) * step;
            let c = self.rng.below(CONSULTANTS as u64) as usize;
            let by = self.by(c);
            self.next_customer += 1;
            let id = format!("c-{}", self.next_customer);
            let new = NewCustomer {
                id: id.clone(),
                name: format!("客户{}", self.next_customer),
                phone: format!("+86138{:08}", self.next_customer),
                source: CustomerSource::WalkIn,
                model_of_interest: Some(MODELS[self.rng.below(3) as usize].into()),
                consultant: Some(by.clone()),
            };
            domain::add_customer(&mut self.doc, &self.net, &new, &by, now).unwrap();
            self.open.push((id, c, now));
            // Work a few open customers along.
            for _ in 0..3 {
                self.work_one(now);
            }
        }
    }

    /// One step for a random open customer: an event, a status change, a sale, or the
    /// lead is lost.
    fn work_one(&mut self, now: Millis) {
        if self.open.is_empty() {
            return;
        }
        let k = self.rng.below(self.open.len() as u64) as usize;
        let (id, c, _) = self.open[k].clone();
        let by = self.by(c);
        let roll = self.rng.below(100);
        if roll < 60 {
            let kind = [EventKind::Visit, EventKind::Call, EventKind::Quote][roll as usize % 3];
            let mut e = NewEvent::new(kind, now);
            if kind == EventKind::Quote {
                e.amount = Some(14_000_000);
            }
            domain::record_event(&mut self.doc, &id, &e, &by, now).unwrap();
        } else if roll < 80 {
            let _ = domain::set_customer_status(
                &mut self.doc,
                &id,
                CustomerStatus::Negotiating,
                &by,
                now,
            );
        } else if roll < 88 && !self.stock.is_empty() {
            let v = self
                .stock
                .swap_remove(self.rng.below(self.stock.len() as u64) as usize);
            let sale = Sale {
                customer: Some(id.clone()),
                price: None,
            };
            domain::sell_vehicle(
                &mut self.doc,
                &self.net,
                &v,
                &sale,
                &by,
                dealersync_core::access::Role::Consultant,
                now,
            )
            .unwrap();
            let by = self.by(c);
            domain::move_vehicle(&mut self.doc, &v, &VehicleAction::Deliver, &by, now).unwrap();
            self.open.swap_remove(k);
        } else {
            domain::set_customer_status(&mut self.doc, &id, CustomerStatus::Lost, &by, now)
                .unwrap();
            self.open.swap_remove(k);
        }
    }
}

fn server(receive_path: ReceivePath) -> Engine {
    Engine::new(
        PeerId::from("relay"),
        EngineConfig {
            storage_id: Some(StorageId("relay-storage".into())),
            receive_path,
            ..EngineConfig::default()
        },
    )
}

fn phone(name: &str) -> Engine {
    Engine::new(
        PeerId::from(name),
        EngineConfig {
            storage_id: Some(StorageId(format!("{name}-storage"))),
            ..EngineConfig::default()
        },
    )
}

/// One phone of a [`Pair`]: connection `ConnId(i + 1)` on the relay.
struct Phone {
    engine: Engine,
    store: MemoryStore,
    /// Frames from the relay not yet read.
    inbox: Vec<Vec<u8>>,
}

/// A relay and its phones (the first one writes, the others only follow the
/// document), frames passed by hand; the relay's time is measured.
struct Pair {
    relay: Engine,
    relay_store: MemoryStore,
    phones: Vec<Phone>,
    to_relay: Vec<(ConnId, Vec<u8>)>,
    relay_time: Duration,
    bytes: u64,
    frames: u64,
}

/// The writing phone.
const WRITER: usize = 0;

fn conn_of(phone: usize) -> ConnId {
    ConnId(phone as u64 + 1)
}

impl Pair {
    fn new(doc: DocumentId, saved: &[u8], receive_path: ReceivePath, phones: usize) -> Pair {
        let mut p = Pair {
            relay: server(receive_path),
            relay_store: MemoryStore::new(),
            phones: (0..phones)
                .map(|i| Phone {
                    engine: phone(&format!("phone-{i}")),
                    store: MemoryStore::new(),
                    inbox: Vec::new(),
                })
                .collect(),
            to_relay: Vec::new(),
            relay_time: Duration::ZERO,
            bytes: 0,
            frames: 0,
        };
        p.relay.create_document(doc, saved, &p.relay_store).unwrap();
        p.commit_relay();
        for i in 0..phones {
            p.relay.connect(conn_of(i), ConnInfo::full_access());
            let outs = p.phones[i]
                .engine
                .connect_to_server(conn_of(i), ConnInfo::full_access());
            p.phone_out(i, outs);
        }
        p.settle();
        p
    }

    fn relay_out(&mut self, outs: Vec<Output>) {
        for o in outs {
            if let Output::Send { conn, bytes, .. } = o {
                self.bytes += bytes.len() as u64;
                self.frames += 1;
                self.phones[conn.0 as usize - 1].inbox.push(bytes);
            }
        }
    }

    fn phone_out(&mut self, phone: usize, outs: Vec<Output>) {
        for o in outs {
            if let Output::Send { bytes, .. } = o {
                self.bytes += bytes.len() as u64;
                self.frames += 1;
                self.to_relay.push((conn_of(phone), bytes));
            }
        }
    }

    fn commit_relay(&mut self) -> bool {
        let Some((token, batch)) = self.relay.take_write_batch() else {
            return false;
        };
        self.relay_store.commit(&batch).unwrap();
        let outs = self.relay.commit_succeeded(token, 0, &self.relay_store);
        self.relay_out(outs);
        true
    }

    fn commit_phone(&mut self, i: usize) -> bool {
        let ph = &mut self.phones[i];
        let Some((token, batch)) = ph.engine.take_write_batch() else {
            return false;
        };
        ph.store.commit(&batch).unwrap();
        let outs = ph.engine.commit_succeeded(token, 0, &ph.store);
        self.phone_out(i, outs);
        true
    }

    /// A phone opens the document (and starts syncing it).
    fn open(&mut self, i: usize, doc: DocumentId) {
        let ph = &mut self.phones[i];
        let outs = ph.engine.open(doc, &ph.store).unwrap();
        self.phone_out(i, outs);
    }

    /// Passes frames and commits until nothing moves; the relay's part is timed.
    fn settle(&mut self) {
        loop {
            let mut moved = false;
            let t = cpu_now();
            for (conn, f) in std::mem::take(&mut self.to_relay) {
                let outs = self.relay.receive(conn, &f, 0, &self.relay_store);
                self.relay_out(outs);
                moved = true;
            }
            moved |= self.commit_relay();
            self.relay_time += cpu_now() - t;
            for i in 0..self.phones.len() {
                let conn = conn_of(i);
                for f in std::mem::take(&mut self.phones[i].inbox) {
                    let ph = &mut self.phones[i];
                    let outs = ph.engine.receive(conn, &f, 0, &ph.store);
                    self.phone_out(i, outs);
                    moved = true;
                }
                moved |= self.commit_phone(i);
            }
            if !moved {
                return;
            }
        }
    }
}

/// This thread's CPU time: what the relay's engine spends, without the time other
/// processes on a loaded machine take from it.
fn cpu_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given and nothing else.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Appends an event to a customer the way `domain::record_event` writes it (the
/// phone's engine holds a plain `Automerge`).
fn phone_edit(am: &mut Automerge, customer: &str, at: Millis) {
    am.transact::<_, _, automerge::AutomergeError>(|tx| {
        let (_, customers) = tx.get(ROOT, "customers")?.expect("customers");
        let (_, c) = tx.get(&customers, customer)?.expect("customer");
        let (_, events) = tx.get(&c, "events")?.expect("events");
        let n = tx.length(&events);
        let e = tx.insert_object(&events, n, ObjType::Map)?;
        tx.put(&e, "kind", "call")?;
        tx.put(&e, "at", at)?;
        tx.put(&e, "by", "cons01")?;
        Ok(())
    })
    .unwrap();
}

/// A relay and its phone after the phone's cold sync of the working document.
struct Synced {
    pair: Pair,
    path: ReceivePath,
    cold_wall: Duration,
    cold_cpu: Duration,
    cold_relay: Duration,
    cold_bytes: u64,
    cold_frames: u64,
    per_change: Vec<f64>,
    /// The relay's ancestor walks before the per-change samples.
    walks_before: u64,
}

/// Cold sync: a new phone opens the working document.
fn cold_sync(
    heads: &[ChangeHash],
    doc_id: DocumentId,
    saved: &[u8],
    path: ReceivePath,
    observers: usize,
) -> Synced {
    let mut p = Pair::new(doc_id, saved, path, 1 + observers);
    let t = Instant::now();
    let cpu = cpu_now();
    let before = (p.bytes, p.frames, p.relay_time);
    p.open(WRITER, doc_id);
    p.settle();
    let (cold_wall, cold_cpu) = (t.elapsed(), cpu_now() - cpu);
    assert_eq!(
        p.phones[WRITER]
            .engine
            .document(&doc_id)
            .unwrap()
            .get_heads(),
        heads,
        "the new phone has the whole working document"
    );
    let (cold_bytes, cold_frames) = (p.bytes - before.0, p.frames - before.1);
    let cold_relay = p.relay_time - before.2;
    // The observers sync the document too, untimed.
    for i in 1..=observers {
        p.open(i, doc_id);
    }
    p.settle();
    Synced {
        cold_wall,
        cold_cpu,
        cold_relay,
        cold_bytes,
        cold_frames,
        walks_before: p.relay.stats().ancestor_walks,
        pair: p,
        path,
        per_change: Vec::new(),
    }
}

fn measure(s: &mut Showroom, months: u32, a: &Args, total_changes: u64) {
    let saved = s.doc.save();
    let changes = s.doc.get_changes(&[]).len();
    let heads = s.doc.get_heads();
    let doc_id = DocumentId::random();
    let mut relays: Vec<Synced> = a
        .receive
        .iter()
        .map(|path| cold_sync(&heads, doc_id, &saved, *path, a.observers))
        .collect();

    // Per change: the synced phone writes events to open customers; with several
    // relays, each sample is taken on each in turn.
    for i in 0..a.samples {
        let cust = s.open[i % s.open.len()].0.clone();
        for r in &mut relays {
            let p = &mut r.pair;
            let writer = &mut p.phones[WRITER].engine;
            phone_edit(writer.document_mut(&doc_id).unwrap(), &cust, 1);
            writer.local_change(&doc_id).unwrap();
            // The phone commits and sends; then the relay takes it, timed alone.
            while p.commit_phone(WRITER) {}
            let t0 = p.relay_time;
            p.settle();
            r.per_change.push((p.relay_time - t0).as_secs_f64() * 1e3);
        }
    }
    for r in &mut relays {
        let per_change = &mut r.per_change;
        per_change.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "month {months:>3}  written {total_changes:>7}  doc changes {changes:>7}  saved {:>8} B  \
             receive {:<5} observers {}  per change ms p50 {:.3} p99 {:.3} max {:.3}  ancestor walks {}  \
             cold sync {:.0} ms wall, {:.0} ms CPU (relay {:.0} ms) {} B in {} frames",
            saved.len(),
            match r.path {
                ReceivePath::Fast => "fast",
                ReceivePath::Stock => "stock",
            },
            a.observers,
            percentile(per_change, 0.5),
            percentile(per_change, 0.99),
            per_change.last().copied().unwrap_or(0.0),
            r.pair.relay.stats().ancestor_walks - r.walks_before,
            r.cold_wall.as_secs_f64() * 1e3,
            r.cold_cpu.as_secs_f64() * 1e3,
            r.cold_relay.as_secs_f64() * 1e3,
            r.cold_bytes,
            r.cold_frames,
        );
    }
    if let Some(archive) = &s.archive {
        measure_forward(archive, &mut s.doc, &s.net);
    }
}

/// What the relay runs after a late commit to the archive: `domain::forward_late` of a
/// late customer with a reservation of a carried car into the working document as it is
/// now (both documents already loaded; the relay also reads them from its engine).
fn measure_forward(archive: &AutoCommit, working: &mut AutoCommit, net: &NetworkDocument) {
    let mut late = archive.clone();
    late.set_actor(ActorId::from(b"late-phone".to_vec()));
    let at = domain::period_header(working)
        .unwrap()
        .map(|h| h.month)
        .and_then(|m| m.parse::<dealersync_core::schema::Period>().ok())
        .map_or(0, |p| p.range_millis().0 + 3_600_000);
    let customer = NewCustomer {
        id: "late-1".into(),
        name: "迟到".into(),
        phone: "13999990001".into(),
        source: CustomerSource::WalkIn,
        model_of_interest: None,
        consultant: Some("cons00".into()),
    };
    domain::add_customer(&mut late, net, &customer, "cons00", at).unwrap();
    let in_stock = |d: &AutoCommit| domain::list_vehicles(d, Some(VehicleStatus::InStock)).unwrap();
    let now_in_stock = in_stock(working);
    let carried = in_stock(archive);
    if let Some(v) = carried
        .iter()
        .find(|v| now_in_stock.iter().any(|n| n.vin == v.vin))
    {
        let reserve = VehicleAction::Reserve {
            customer: "late-1".into(),
        };
        domain::move_vehicle(&mut late, &v.vin, &reserve, "cons00", at).unwrap();
    }
    let mut w = working.fork();
    let t = Instant::now();
    let done = domain::forward_late(&late, &mut w, at).unwrap();
    let first = t.elapsed();
    let t = Instant::now();
    let again = domain::forward_late(&late, &mut w, at).unwrap();
    let second = t.elapsed();
    assert!(!done.is_empty() && again.is_empty());
    println!(
        "           forward late: {:.0} ms writing {} customer(s) and {} vehicle(s), {:.0} ms \
         when nothing is left to write (archive {} changes, working document {} changes)",
        first.as_secs_f64() * 1e3,
        done.customers.len(),
        done.vehicles.len(),
        second.as_secs_f64() * 1e3,
        late.get_changes(&[]).len(),
        w.get_changes(&[]).len(),
    );
}

fn main() {
    let a = args();
    let month_start = |m: u32| {
        let date = chrono::NaiveDate::from_ymd_opt(2026 + (m / 12) as i32, m % 12 + 1, 1)
            .expect("a valid month");
        cst_midnight(date)
    };
    let mut s = Showroom::new(month_start(0));
    let gen_t = Instant::now();
    for m in 0..a.months {
        let (start, end) = (month_start(m), month_start(m + 1));
        if let Some(p) = a.period
            && m > 0
            && m % p == 0
        {
            s.roll_over(start);
        }
        s.month(start, end, a.leads);
        if (m + 1) % a.every == 0 {
            let g = gen_t.elapsed();
            let written = s.changes_written;
            measure(&mut s, m + 1, &a, written);
            eprintln!("  (generated in {:.1} s so far)", g.as_secs_f64());
        }
    }
}

impl Showroom {
    /// Starts the next period's working document (only with `--period`): open
    /// customers and stock carried over, the rest left in the archive.
    fn roll_over(&mut self, now: Millis) {
        let month = dealersync_core::time::month_key(now);
        let next = domain::carry_over(&self.doc, &month, now).unwrap();
        self.archive = Some(std::mem::replace(&mut self.doc, next));
        self.changes_written += 1;
    }
}
