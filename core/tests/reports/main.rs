//! Consolidation reports on a small hand-built network. Every expected figure below was
//! worked out by hand from the fixture; the comments show the arithmetic.
//!
//! The network (tree order: parents first, children by id):
//! ```text
//! hq     head office            wang, li, zhou
//! ├─ dc-n  distribution centre
//! │  ├─ ag-1  agent             zhao
//! │  ├─ ag-2  agent             (qian, April only)
//! │  └─ rs-1  roadshow team     chen
//! └─ dc-s  distribution centre
//!    └─ ag-3  agent             sun
//! ```
//! Models: SDN-A (cost 100,000 yuan), SUV-B (150,000), EV-C (200,000); OLD-X is in a
//! site's stock but not in the catalogue. `now` is 2026-04-15 10:00 CST.

use std::collections::BTreeMap;

use dealersync_core::reports::{
    self, BoardLevel, KpiLevel, OrderPlanParams, ReportError, ReportWarning, SafetyStock,
    StockParams, Tabular,
};
use dealersync_core::schema::{
    Customer, CustomerEvent, CustomerSource, CustomerStatus, EventKind, ForecastEntry, Millis,
    NetworkDocument, Period, SiteDocument, SiteHeader, SiteKind, Target, Vehicle, VehicleModel,
    VehicleStatus,
};

/// 10,000 yuan in fen.
const WAN: i64 = 1_000_000;

/// UTC milliseconds of a wall-clock time in China Standard Time (UTC+8).
fn cst(y: i32, m: u32, d: u32, h: u32, min: u32) -> Millis {
    chrono::NaiveDate::from_ymd_opt(y, m, d)
        .unwrap()
        .and_hms_opt(h, min, 0)
        .unwrap()
        .and_utc()
        .timestamp_millis()
        - dealersync_core::time::CST_OFFSET_MS
}

fn now() -> Millis {
    cst(2026, 4, 15, 10, 0)
}

fn month(y: i32, m: u32) -> Period {
    Period::Month(y, m)
}

fn header(id: &str, kind: SiteKind, parent: Option<&str>) -> SiteHeader {
    SiteHeader {
        id: id.into(),
        name: format!("{id} name"),
        kind,
        parent: parent.map(Into::into),
        channel: None,
    }
}

fn vin(n: u32) -> String {
    format!("LDS{n:014}")
}

fn vehicle(
    n: u32,
    model: &str,
    status: VehicleStatus,
    arrived: Option<Millis>,
    cost: i64,
) -> Vehicle {
    Vehicle {
        vin: vin(n),
        model: model.into(),
        trim: "std".into(),
        colour: "white".into(),
        cost,
        list_price: cost + 2 * WAN,
        status,
        eta: None,
        arrived_at: arrived,
        reserved_for: None,
        sold_to: None,
        consultant: None,
        transfer_from: None,
        transfer_to: None,
        discount_approved_by: None,
        discount_approved_at: None,
        transfer_id: None,
        updated_at: arrived.unwrap_or(0),
    }
}

fn ev(kind: EventKind, at: Millis, by: &str) -> CustomerEvent {
    CustomerEvent {
        kind,
        at,
        by: by.into(),
        note: None,
        amount: None,
        vin: None,
        score: None,
        direction: None,
    }
}

fn priced(mut e: CustomerEvent, amount: i64) -> CustomerEvent {
    e.amount = Some(amount);
    e
}

fn with_vin(mut e: CustomerEvent, n: u32) -> CustomerEvent {
    e.vin = Some(vin(n));
    e
}

fn customer(
    id: &str,
    source: CustomerSource,
    consultant: Option<&str>,
    model: Option<&str>,
    created: Millis,
    events: Vec<CustomerEvent>,
) -> Customer {
    Customer {
        id: id.into(),
        name: format!("customer {id}"),
        phone: "13800000000".into(),
        source,
        model_of_interest: model.map(Into::into),
        consultant: consultant.map(Into::into),
        status: CustomerStatus::Lead,
        created_at: created,
        events,
        merged_into: None,
        area: None,
        referred_by: None,
        next_follow_up: None,
        lost_reason: None,
        lost_to: None,
        lost_at: None,
    }
}

fn target(units: i64, revenue: i64) -> Target {
    Target {
        units,
        revenue,
        ..Target::default()
    }
}

fn forecast(doc: &mut SiteDocument, month: &str, model: &str, quantity: i64) {
    doc.forecasts.entry(month.into()).or_default().insert(
        model.into(),
        ForecastEntry {
            quantity,
            by: "planner".into(),
            at: cst(2026, 4, 1, 9, 0),
            adjusted: None,
        },
    );
}

struct Fixture {
    network: NetworkDocument,
    sites: Vec<SiteDocument>,
}

impl Fixture {
    fn sites(&self) -> Vec<&SiteDocument> {
        self.sites.iter().collect()
    }
}

fn fixture() -> Fixture {
    use CustomerSource as Src;
    use EventKind as K;
    use VehicleStatus as S;

    let headers = [
        header("hq", SiteKind::HeadOffice, None),
        header("dc-n", SiteKind::DistributionCentre, Some("hq")),
        header("dc-s", SiteKind::DistributionCentre, Some("hq")),
        header("ag-1", SiteKind::Agent, Some("dc-n")),
        header("ag-2", SiteKind::Agent, Some("dc-n")),
        header("rs-1", SiteKind::Roadshow, Some("dc-n")),
        header("ag-3", SiteKind::Agent, Some("dc-s")),
    ];
    let mut network = NetworkDocument::new();
    for h in &headers {
        network.sites.insert(h.id.clone(), h.clone());
    }
    for (code, cost) in [("SDN-A", 10 * WAN), ("SUV-B", 15 * WAN), ("EV-C", 20 * WAN)] {
        network.models.insert(
            code.into(),
            VehicleModel {
                code: code.into(),
                name: format!("{code} name"),
                trims: vec!["std".into()],
                cost,
                list_price: cost + 2 * WAN,
            },
        );
    }
    let mut site_target = |site: &str, period: &str, t: Target| {
        network
            .targets
            .entry(site.into())
            .or_default()
            .insert(period.into(), t);
    };
    site_target("hq", "2026-03", target(4, 50 * WAN));
    site_target("ag-1", "2026-03", target(2, 30 * WAN));
    site_target("dc-s", "2026-03", target(3, 40 * WAN));
    // A revenue target of zero: its achievement is unknown, not infinite.
    site_target("ag-3", "2026-03", target(1, 0));
    // A quarterly target must not be used for a monthly period.
    site_target("hq", "2026-Q1", target(12, 150 * WAN));

    let mut docs: BTreeMap<&str, SiteDocument> = headers
        .iter()
        .map(|h| (h.id.as_str(), SiteDocument::new(h.clone())))
        .collect();

    // ---- hq ----
    let hq = docs.get_mut("hq").unwrap();
    for v in [
        // 2026-01-01 → 2026-04-15: 31 (Jan) + 28 (Feb) + 31 (Mar) + 14 = 104 days: slow.
        vehicle(
            1,
            "SDN-A",
            S::InStock,
            Some(cst(2026, 1, 1, 10, 0)),
            10 * WAN,
        ),
        // Arrived 2026-01-15 00:30 CST, which is 2026-01-14 16:30 UTC. In CST days it
        // has been in stock 90 days (Jan 15 → Apr 15), not more than 90: not slow. Had
        // the days been counted on UTC dates it would be 91 and slow.
        vehicle(
            2,
            "SDN-A",
            S::InStock,
            Some(cst(2026, 1, 15, 0, 30)),
            10 * WAN,
        ),
        // 2025-12-01 → 2026-04-15 = 31 + 31 + 28 + 31 + 14 = 135 days, but reserved:
        // spoken for, so never a slow mover.
        vehicle(
            3,
            "SUV-B",
            S::Reserved,
            Some(cst(2025, 12, 1, 10, 0)),
            15 * WAN,
        ),
        vehicle(4, "SUV-B", S::InTransit, None, 15 * WAN),
        vehicle(5, "SDN-A", S::Ordered, None, 10 * WAN),
        vehicle(
            6,
            "SDN-A",
            S::Delivered,
            Some(cst(2026, 2, 1, 10, 0)),
            10 * WAN,
        ),
        vehicle(
            13,
            "SDN-A",
            S::Delivered,
            Some(cst(2026, 2, 1, 10, 0)),
            10 * WAN,
        ),
    ] {
        hq.vehicles.insert(v.vin.clone(), v);
    }
    hq.vehicles.get_mut(&vin(4)).unwrap().eta = Some(cst(2026, 4, 20, 10, 0));
    for c in [
        customer(
            "c1",
            Src::WalkIn,
            Some("wang"),
            Some("SDN-A"),
            cst(2026, 3, 2, 10, 0),
            vec![
                ev(K::Visit, cst(2026, 3, 2, 10, 0), "wang"),
                ev(K::TestDrive, cst(2026, 3, 2, 11, 0), "wang"),
                priced(ev(K::Order, cst(2026, 3, 5, 15, 0), "wang"), 1_150 * 10_000),
                // 23:30 CST on March 31st is 15:30 UTC the same day: March. No amount
                // on the delivery, so its revenue is the order's 115,000 yuan.
                with_vin(ev(K::Delivery, cst(2026, 3, 31, 23, 30), "wang"), 6),
            ],
        ),
        customer(
            "c2",
            Src::Phone,
            Some("wang"),
            None,
            cst(2026, 2, 20, 10, 0),
            vec![
                // 23:50 CST on Feb 28th: February.
                ev(K::Call, cst(2026, 2, 28, 23, 50), "wang"),
                // 00:10 CST on March 1st is 16:10 UTC on Feb 28th: March in CST.
                ev(K::Call, cst(2026, 3, 1, 0, 10), "wang"),
                ev(K::Visit, cst(2026, 3, 10, 14, 0), "wang"),
                // 00:30 CST on April 1st is 16:30 UTC on March 31st: April in CST.
                ev(K::Visit, cst(2026, 4, 1, 0, 30), "wang"),
            ],
        ),
        customer(
            "c3",
            Src::WalkIn,
            Some("li"),
            None,
            cst(2026, 3, 12, 10, 0),
            vec![
                ev(K::Visit, cst(2026, 3, 12, 10, 0), "li"),
                ev(K::Visit, cst(2026, 3, 20, 10, 0), "li"),
                ev(K::TestDrive, cst(2026, 3, 20, 11, 0), "li"),
                // Quotes are not counted in any KPI.
                priced(ev(K::Quote, cst(2026, 3, 20, 12, 0), "li"), 1_100 * 10_000),
            ],
        ),
        customer(
            "c12",
            Src::WalkIn,
            Some("li"),
            Some("SDN-A"),
            cst(2026, 3, 28, 10, 0),
            vec![
                priced(ev(K::Order, cst(2026, 3, 29, 10, 0), "li"), 1_120 * 10_000),
                // Delivered 00:30 CST April 1st (UTC: March 31st): an April sale.
                with_vin(ev(K::Delivery, cst(2026, 4, 1, 0, 30), "li"), 13),
            ],
        ),
    ] {
        hq.customers.insert(c.id.clone(), c);
    }
    // wang's target also sets activity: 4 visits, 0 calls, no test-drive figure.
    hq.targets.insert(
        "wang".into(),
        [(
            "2026-03".to_string(),
            Target {
                visits: Some(4),
                calls: Some(0),
                ..target(2, 23 * WAN)
            },
        )]
        .into(),
    );
    hq.targets.insert(
        "li".into(),
        [("2026-03".to_string(), target(1, 12 * WAN))].into(),
    );
    // zhou has a target and did nothing: a consultant row with zero denominators.
    hq.targets.insert(
        "zhou".into(),
        [("2026-03".to_string(), target(1, 10 * WAN))].into(),
    );
    forecast(hq, "2026-05", "SDN-A", 2);

    // ---- dc-n ----
    let dcn = docs.get_mut("dc-n").unwrap();
    for v in [
        // Its own recorded cost (155,000) differs from the catalogue's 150,000: stock
        // value uses what the site paid.
        vehicle(
            7,
            "SUV-B",
            S::InStock,
            Some(cst(2026, 3, 1, 10, 0)),
            1_550 * 10_000,
        ),
        vehicle(
            8,
            "SUV-B",
            S::TransferredOut,
            Some(cst(2026, 3, 1, 10, 0)),
            15 * WAN,
        ),
        // 2025-10-01 → 2026-04-15 = 31+30+31+31+28+31+14 = 196 days: slow, and the
        // model is not in the catalogue.
        vehicle(
            9,
            "OLD-X",
            S::InStock,
            Some(cst(2025, 10, 1, 10, 0)),
            8 * WAN,
        ),
    ] {
        dcn.vehicles.insert(v.vin.clone(), v);
    }
    forecast(dcn, "2026-05", "SUV-B", 1);

    // ---- ag-1 ----
    let ag1 = docs.get_mut("ag-1").unwrap();
    for v in [
        // Received from dc-n, on its way: counted once, here, as in transit.
        vehicle(8, "SUV-B", S::InTransit, None, 15 * WAN),
        vehicle(10, "SDN-A", S::Sold, Some(cst(2026, 2, 1, 10, 0)), 10 * WAN),
        // In stock without an arrival date: no age, a warning.
        vehicle(11, "SDN-A", S::InStock, None, 10 * WAN),
    ] {
        ag1.vehicles.insert(v.vin.clone(), v);
    }
    // Due 00:30 CST April 15th (16:30 UTC on the 14th), so overdue at 10:00 CST.
    let v8 = ag1.vehicles.get_mut(&vin(8)).unwrap();
    v8.eta = Some(cst(2026, 4, 15, 0, 30));
    v8.transfer_from = Some("dc-n".into());
    for c in [
        customer(
            "c4",
            Src::WalkIn,
            Some("zhao"),
            Some("SUV-B"),
            cst(2026, 3, 3, 10, 0),
            vec![
                ev(K::Visit, cst(2026, 3, 3, 10, 0), "zhao"),
                ev(K::TestDrive, cst(2026, 3, 3, 11, 0), "zhao"),
                priced(ev(K::Order, cst(2026, 3, 4, 10, 0), "zhao"), 1_680 * 10_000),
                // The delivery's own amount (after a discount) wins over the order's.
                priced(
                    ev(K::Delivery, cst(2026, 3, 25, 10, 0), "zhao"),
                    1_650 * 10_000,
                ),
            ],
        ),
        customer(
            "c5",
            Src::Referral,
            Some("zhao"),
            None,
            cst(2026, 3, 5, 10, 0),
            vec![
                ev(K::Visit, cst(2026, 3, 5, 10, 0), "zhao"),
                ev(K::Call, cst(2026, 3, 6, 10, 0), "zhao"),
            ],
        ),
    ] {
        ag1.customers.insert(c.id.clone(), c);
    }
    forecast(ag1, "2026-05", "SDN-A", 5);
    forecast(ag1, "2026-05", "SUV-B", 2);
    // Another month's forecast must not leak into May.
    forecast(ag1, "2026-04", "SDN-A", 99);

    // ---- ag-2 ----
    let ag2 = docs.get_mut("ag-2").unwrap();
    // An April delivery whose model cannot be known: no VIN, no model of interest.
    let c13 = customer(
        "c13",
        Src::Phone,
        None,
        None,
        cst(2026, 4, 2, 10, 0),
        vec![priced(
            ev(K::Delivery, cst(2026, 4, 5, 10, 0), "qian"),
            1_200 * 10_000,
        )],
    );
    ag2.customers.insert(c13.id.clone(), c13);
    forecast(ag2, "2026-05", "SDN-A", 3);

    // ---- rs-1 (roadshow team) ----
    let rs1 = docs.get_mut("rs-1").unwrap();
    for c in [
        customer(
            "c6",
            Src::Roadshow,
            Some("chen"),
            None,
            cst(2026, 3, 8, 10, 0),
            vec![
                ev(K::Visit, cst(2026, 3, 8, 10, 0), "chen"),
                priced(ev(K::Order, cst(2026, 3, 9, 10, 0), "chen"), 980 * 10_000),
            ],
        ),
        customer(
            "c7",
            Src::Roadshow,
            Some("chen"),
            None,
            cst(2026, 3, 8, 11, 0),
            vec![ev(K::Visit, cst(2026, 3, 8, 11, 0), "chen")],
        ),
        // Entered 23:30 CST March 31st (a March lead); ordered 00:30 CST April 1st,
        // after March ended, so not a March conversion.
        customer(
            "c8",
            Src::Roadshow,
            Some("chen"),
            None,
            cst(2026, 3, 31, 23, 30),
            vec![
                ev(K::Visit, cst(2026, 3, 31, 23, 30), "chen"),
                priced(ev(K::Order, cst(2026, 4, 1, 0, 30), "chen"), 990 * 10_000),
            ],
        ),
        // A February roadshow lead ordering in March: a March order, but not in the
        // March roadshow cohort.
        customer(
            "c9",
            Src::Roadshow,
            Some("chen"),
            None,
            cst(2026, 2, 27, 10, 0),
            vec![priced(
                ev(K::Order, cst(2026, 3, 2, 10, 0), "chen"),
                990 * 10_000,
            )],
        ),
    ] {
        rs1.customers.insert(c.id.clone(), c);
    }
    forecast(rs1, "2026-05", "SDN-A", 1);

    // ---- ag-3 ----
    let ag3 = docs.get_mut("ag-3").unwrap();
    ag3.vehicles.insert(
        vin(12),
        vehicle(
            12,
            "SUV-B",
            S::Delivered,
            Some(cst(2026, 3, 1, 10, 0)),
            15 * WAN,
        ),
    );
    for c in [
        // Delivered with no amount and no order: one unit, zero revenue, a warning.
        customer(
            "c10",
            Src::Web,
            Some("sun"),
            None,
            cst(2026, 3, 1, 10, 0),
            vec![with_vin(
                ev(K::Delivery, cst(2026, 3, 15, 10, 0), "sun"),
                12,
            )],
        ),
        // An April SUV-B sale, the model known only from the customer's interest.
        customer(
            "c11",
            Src::WalkIn,
            Some("sun"),
            Some("SUV-B"),
            cst(2026, 4, 1, 10, 0),
            vec![
                priced(ev(K::Order, cst(2026, 4, 2, 10, 0), "sun"), 1_600 * 10_000),
                ev(K::Delivery, cst(2026, 4, 10, 10, 0), "sun"),
            ],
        ),
    ] {
        ag3.customers.insert(c.id.clone(), c);
    }
    forecast(ag3, "2026-05", "SUV-B", 4);
    // A zero forecast still appears in the roll-up, as zero.
    forecast(ag3, "2026-05", "EV-C", 0);

    Fixture {
        network,
        sites: docs.into_values().collect(),
    }
}

mod board;
mod extremes;
mod flat_rows;
mod forecast;
mod kpi;
mod odd_trees;
mod order_plan;
mod properties;
mod rates;
mod stock;
