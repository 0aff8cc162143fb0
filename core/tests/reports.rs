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

// ------------------------------------------------------------------ stock and ageing

#[test]
fn stock_counts_model_site_status_with_the_vehicles_own_cost() {
    let f = fixture();
    let report = reports::stock(&f.network, &f.sites()).unwrap();
    let got: Vec<(&str, &str, VehicleStatus, i64, i64)> = report
        .rows
        .iter()
        .map(|r| {
            (
                r.model.as_str(),
                r.site.as_str(),
                r.status,
                r.count,
                r.cost_value,
            )
        })
        .collect();
    use VehicleStatus as S;
    // Delivered (V06, V12, V13) and transferred-out (V08 at dc-n) are not stock; V08
    // is counted once, in transit at ag-1. Models by code, sites in tree order
    // (hq, dc-n, ag-1, ...), statuses in lifecycle order.
    assert_eq!(
        got,
        vec![
            ("OLD-X", "dc-n", S::InStock, 1, 8 * WAN),
            ("SDN-A", "hq", S::Ordered, 1, 10 * WAN),
            ("SDN-A", "hq", S::InStock, 2, 20 * WAN), // V01 + V02
            ("SDN-A", "ag-1", S::InStock, 1, 10 * WAN),
            ("SDN-A", "ag-1", S::Sold, 1, 10 * WAN),
            ("SUV-B", "hq", S::InTransit, 1, 15 * WAN),
            ("SUV-B", "hq", S::Reserved, 1, 15 * WAN),
            ("SUV-B", "dc-n", S::InStock, 1, 1_550 * 10_000),
            ("SUV-B", "ag-1", S::InTransit, 1, 15 * WAN),
        ]
    );
    assert_eq!(report.rows[0].model_name, None, "OLD-X is not catalogued");
    assert_eq!(report.rows[1].model_name.as_deref(), Some("SDN-A name"));
    // 1 + 5 + 4 vehicles; 8 + 50 + 60.5 (15 + 15 + 15.5 + 15) × 10,000 yuan.
    assert_eq!(report.total_count, 10);
    assert_eq!(report.total_cost_value, 11_850 * 10_000);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
}

#[test]
fn ageing_counts_cst_days_and_flags_slow_movers_over_the_threshold() {
    let f = fixture();
    let report = reports::ageing(&f.network, &f.sites(), now(), &StockParams::default()).unwrap();
    let got: Vec<(String, Option<i64>, bool)> = report
        .rows
        .iter()
        .map(|r| (r.vin.clone(), r.days_in_stock, r.slow_mover))
        .collect();
    // Oldest first, unknown age last. V03 is oldest of those at hq but reserved.
    assert_eq!(
        got,
        vec![
            (vin(9), Some(196), true),
            (vin(3), Some(135), false),
            (vin(1), Some(104), true),
            (vin(2), Some(90), false), // exactly 90 is not *over* 90
            (vin(7), Some(45), false), // Mar 1 → Apr 15 = 31 + 14
            (vin(11), None, false),
        ]
    );
    assert_eq!(report.slow_movers, 2);
    // V09 80,000 + V01 100,000 yuan.
    assert_eq!(report.slow_mover_cost, 18 * WAN);
    assert_eq!(
        report.warnings,
        vec![ReportWarning::MissingArrival {
            site: "ag-1".into(),
            vin: vin(11)
        }]
    );

    // The threshold is a parameter: over 30 days, V02 (90) and V07 (45) join; V03 is
    // still reserved.
    let loose = reports::ageing(
        &f.network,
        &f.sites(),
        now(),
        &StockParams {
            slow_mover_days: 30,
        },
    )
    .unwrap();
    assert_eq!(loose.slow_movers, 4);
    // 8 + 10 + 10 + 15.5 (×10,000 yuan).
    assert_eq!(loose.slow_mover_cost, 4_350 * 10_000);

    // One millisecond before midnight CST V02 has 89 days; at midnight CST (16:00 UTC
    // on April 14th) it has 90: the day count follows Beijing midnight, not UTC's.
    let eve = cst(2026, 4, 14, 23, 59) + 59_999;
    let at = |t: Millis| {
        reports::ageing(&f.network, &f.sites(), t, &StockParams::default())
            .unwrap()
            .rows
            .into_iter()
            .find(|r| r.vin == vin(2))
            .unwrap()
            .days_in_stock
    };
    assert_eq!(at(eve), Some(89));
    assert_eq!(at(eve + 1), Some(90));
}

#[test]
fn pipeline_lists_arrivals_in_cst_and_flags_overdue() {
    let f = fixture();
    let p = reports::pipeline(&f.network, &f.sites(), now()).unwrap();
    // (VIN, site, CST arrival date, overdue, sent from)
    type Line<'a> = (String, &'a str, Option<&'a str>, bool, Option<&'a str>);
    let got: Vec<Line> = p
        .rows
        .iter()
        .map(|r| {
            (
                r.vin.clone(),
                r.site.as_str(),
                r.eta_date.as_deref(),
                r.overdue,
                r.transfer_from.as_deref(),
            )
        })
        .collect();
    // Soonest first, unknown ETA last. V08's ETA is dated the 15th in CST although
    // its UTC date is the 14th.
    assert_eq!(
        got,
        vec![
            (vin(8), "ag-1", Some("2026-04-15"), true, Some("dc-n")),
            (vin(4), "hq", Some("2026-04-20"), false, None),
            (vin(5), "hq", None, false, None),
        ]
    );
    assert_eq!((p.in_transit, p.on_order, p.overdue), (2, 1, 1));
    // V08 150,000 + V04 150,000 + V05 100,000 yuan.
    assert_eq!(p.cost_value, 40 * WAN);
}

// ------------------------------------------------------------------ forecast roll-up

#[test]
fn forecast_rolls_up_agents_and_roadshows_to_head_office() {
    let f = fixture();
    let r = reports::forecast_rollup(&f.network, &f.sites(), month(2026, 5)).unwrap();
    let got: Vec<(&str, u32, &str, i64, i64)> = r
        .rows
        .iter()
        .map(|r| {
            (
                r.site.as_str(),
                r.depth,
                r.model.as_str(),
                r.own.unwrap(),
                r.total,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            // hq: own SDN-A 2 + dc-n 9 = 11; SUV-B dc-n 3 + dc-s 4 = 7; EV-C 0.
            ("hq", 0, "EV-C", 0, 0),
            ("hq", 0, "SDN-A", 2, 11),
            ("hq", 0, "SUV-B", 0, 7),
            // dc-n: SDN-A ag-1 5 + ag-2 3 + rs-1 1 = 9; SUV-B own 1 + ag-1 2 = 3.
            ("dc-n", 1, "SDN-A", 0, 9),
            ("dc-n", 1, "SUV-B", 1, 3),
            ("ag-1", 2, "SDN-A", 5, 5), // the 99 is April's
            ("ag-1", 2, "SUV-B", 2, 2),
            ("ag-2", 2, "SDN-A", 3, 3),
            ("rs-1", 2, "SDN-A", 1, 1), // the roadshow team rolls up like an agent
            ("dc-s", 1, "EV-C", 0, 0),
            ("dc-s", 1, "SUV-B", 0, 4),
            ("ag-3", 2, "EV-C", 0, 0),
            ("ag-3", 2, "SUV-B", 4, 4),
        ]
    );
    assert_eq!(r.rows[3].parent.as_deref(), Some("hq"));
    assert_eq!(r.network_total("SDN-A"), 11);
    assert_eq!(r.network_total("SUV-B"), 7);
    assert_eq!(r.network_total("EV-C"), 0);
    assert_eq!(r.network_total("NOPE"), 0);

    // April: only ag-1's 99.
    let april = reports::forecast_rollup(&f.network, &f.sites(), month(2026, 4)).unwrap();
    assert_eq!(april.network_total("SDN-A"), 99);
    assert_eq!(april.rows.len(), 3, "ag-1, dc-n and hq: {:?}", april.rows);
}

#[test]
fn impossible_periods_are_errors_not_panics() {
    let f = fixture();
    let s = f.sites();
    for bad in [
        Period::Month(2026, 13),
        Period::Day(2026, 2, 30),
        Period::Week(2026, 54),
    ] {
        assert_eq!(
            reports::kpis(&f.network, &s, bad).unwrap_err(),
            ReportError::InvalidPeriod(bad)
        );
        assert_eq!(
            reports::sales_board(&f.network, &s, bad).unwrap_err(),
            ReportError::InvalidPeriod(bad)
        );
    }
    let zero = Period::Month(2026, 0);
    assert_eq!(
        reports::order_plan(&f.network, &s, zero, now(), &OrderPlanParams::default()).unwrap_err(),
        ReportError::InvalidPeriod(zero)
    );
}

#[test]
fn monthly_reports_refuse_other_periods() {
    let f = fixture();
    let q = Period::Quarter(2026, 2);
    assert!(matches!(
        reports::forecast_rollup(&f.network, &f.sites(), q),
        Err(ReportError::NotAMonth { period, .. }) if period == q
    ));
    assert!(matches!(
        reports::order_plan(
            &f.network,
            &f.sites(),
            q,
            now(),
            &OrderPlanParams::default()
        ),
        Err(ReportError::NotAMonth { .. })
    ));
}

// ------------------------------------------------------------------ order plan

#[test]
fn order_plan_nets_forecast_and_safety_stock_against_stock_and_pipeline() {
    let f = fixture();
    let plan = reports::order_plan(
        &f.network,
        &f.sites(),
        month(2026, 5),
        now(),
        &OrderPlanParams::default(),
    )
    .unwrap();
    assert_eq!(plan.month, "2026-05");
    // Made on April 15th: the last full month is March, not half of April.
    assert_eq!(plan.sales_month, "2026-03");
    let row = |m: &str| plan.rows.iter().find(|r| r.model == m).unwrap();

    // SDN-A: forecast 11; safety ⌈11 × 10 %⌉ = ⌈1.1⌉ = 2; in stock V01, V02 (hq) and
    // V11 (ag-1) = 3 (V10 is sold); on order V05 = 1.
    // One slow mover (V01) takes one more unit off:
    // 11 + 2 − 3 − 0 − 1 − 1 = 8 units × 100,000 yuan = 800,000 yuan.
    let a = row("SDN-A");
    assert_eq!(
        (
            a.forecast,
            a.safety_stock,
            a.in_stock,
            a.in_transit,
            a.on_order
        ),
        (11, 2, 3, 0, 1)
    );
    assert_eq!(a.slow_movers, 1, "V01, 104 days");
    assert_eq!(a.slow_mover_reduction, 1);
    assert_eq!(a.quantity, 8);
    assert_eq!(a.capital, Some(80 * WAN));
    // March sales: V06, delivered 23:30 CST March 31st. V13 (00:30 CST April 1st,
    // still March 31st in UTC) is an April sale.
    assert_eq!(a.last_month_sales, 1);

    // SUV-B: forecast 7; safety ⌈0.7⌉ = 1; in stock V07 = 1 (V03 is reserved); in
    // transit V04 + V08 = 2. 7 + 1 − 1 − 2 − 0 = 5 × 150,000 yuan = 750,000 yuan.
    let b = row("SUV-B");
    assert_eq!(
        (
            b.forecast,
            b.safety_stock,
            b.in_stock,
            b.in_transit,
            b.on_order
        ),
        (7, 1, 1, 2, 0)
    );
    assert_eq!((b.quantity, b.capital), (5, Some(75 * WAN)));
    assert_eq!((b.slow_movers, b.slow_mover_reduction), (0, 0));
    // March: V12 (c10) and c4's delivery, which has no VIN: its model of interest
    // (SUV-B) is used.
    assert_eq!(b.last_month_sales, 2);

    // EV-C: nobody expects to sell one, so no safety stock and nothing to order.
    let c = row("EV-C");
    assert_eq!(
        (c.forecast, c.safety_stock, c.quantity, c.capital),
        (0, 0, 0, Some(0))
    );

    // OLD-X: 0 + 0 − 1 would be −1: never below zero. Not catalogued: no capital.
    let x = row("OLD-X");
    assert_eq!((x.quantity, x.unit_cost, x.capital), (0, None, None));
    assert_eq!(x.slow_movers, 1);

    assert_eq!(plan.total_quantity, 13);
    assert_eq!(plan.total_capital, 155 * WAN);
    assert_eq!(
        plan.warnings,
        vec![ReportWarning::UnknownModel {
            model: "OLD-X".into()
        }]
    );

    // The same plan made on May 3rd shows April: V13 (SDN-A), c11's SUV-B (model of
    // interest), and c13's delivery whose model nobody knows.
    let may = reports::order_plan(
        &f.network,
        &f.sites(),
        month(2026, 5),
        cst(2026, 5, 3, 9, 0),
        &OrderPlanParams::default(),
    )
    .unwrap();
    assert_eq!(may.sales_month, "2026-04");
    let sales = |m: &str| {
        may.rows
            .iter()
            .find(|r| r.model == m)
            .unwrap()
            .last_month_sales
    };
    assert_eq!((sales("SDN-A"), sales("SUV-B")), (1, 1));
    assert_eq!(
        may.warnings,
        vec![
            ReportWarning::UnknownModel {
                model: "OLD-X".into()
            },
            ReportWarning::DeliveryWithoutModel {
                site: "ag-2".into(),
                customer: "c13".into(),
                at: cst(2026, 4, 5, 10, 0)
            },
        ]
    );

    // Safety stock as a fixed 3 units per forecast model:
    // SDN-A 11 + 3 − 3 − 1 − 1 (slow) = 9; SUV-B 7 + 3 − 1 − 2 = 7; EV-C forecast 0 → 0.
    let fixed = reports::order_plan(
        &f.network,
        &f.sites(),
        month(2026, 5),
        now(),
        &OrderPlanParams {
            safety_stock: SafetyStock::Units(3),
            ..OrderPlanParams::default()
        },
    )
    .unwrap();
    let q: Vec<(&str, i64)> = fixed
        .rows
        .iter()
        .map(|r| (r.model.as_str(), r.quantity))
        .collect();
    assert_eq!(
        q,
        vec![("EV-C", 0), ("OLD-X", 0), ("SDN-A", 9), ("SUV-B", 7)]
    );
    // 9 × 100,000 + 7 × 150,000 = 1,950,000 yuan.
    assert_eq!(fixed.total_capital, 195 * WAN);
}

// ------------------------------------------------------------------ KPIs

#[test]
fn kpis_per_site_and_consultant_for_march() {
    let f = fixture();
    let k = reports::kpis(&f.network, &f.sites(), month(2026, 3)).unwrap();
    assert_eq!(k.period, "2026-03");

    // Row order: each site in tree order (a region row first for a site with sites
    // below it), then the site's own row, then its consultants by id.
    let order: Vec<(KpiLevel, &str, Option<&str>)> = k
        .rows
        .iter()
        .map(|r| (r.level, r.site.as_str(), r.consultant.as_deref()))
        .collect();
    use KpiLevel::{Consultant as C, Region as R, Site as S};
    assert_eq!(
        order,
        vec![
            (R, "hq", None),
            (S, "hq", None),
            (C, "hq", Some("li")),
            (C, "hq", Some("wang")),
            (C, "hq", Some("zhou")),
            (R, "dc-n", None),
            (S, "dc-n", None),
            (S, "ag-1", None),
            (C, "ag-1", Some("zhao")),
            (S, "ag-2", None),
            (S, "rs-1", None),
            (C, "rs-1", Some("chen")),
            (R, "dc-s", None),
            (S, "dc-s", None),
            (S, "ag-3", None),
            (C, "ag-3", Some("sun")),
        ]
    );

    // hq in March: visits c1 (Mar 2), c2 (Mar 10), c3 ×2 = 4 (c2's 00:30 CST April 1st
    // visit is April); calls: c2's 00:10 CST March 1st = 1 (the Feb 28th call is
    // February); test drives c1 + c3 = 2; orders c1 + c12 = 2; deliveries c1 = 1
    // (23:30 CST March 31st) worth c1's order, 115,000 yuan.
    let hq = k.site("hq").unwrap();
    assert_eq!(
        (
            hq.visits.unwrap(),
            hq.calls.unwrap(),
            hq.test_drives.unwrap(),
            hq.orders.unwrap(),
            hq.deliveries.unwrap()
        ),
        (4, 1, 2, 2, 1)
    );
    assert_eq!(hq.revenue.unwrap(), 1_150 * 10_000);
    // The rates follow the cohort of customers whose first visit was in March: c1
    // (Mar 2), c2 (Mar 10), c3 (Mar 12) = 3 (c12 never visited). Test-drove by the end
    // of March: c1, c3 = 2 / 3; ordered: c1 = 1 / 3 (c12's order is no visitor's).
    assert_eq!(hq.first_visitors, Some(3));
    assert_eq!(hq.test_drive_rate, Some(0.6667));
    assert_eq!(hq.first_visitors_ordered, Some(1));
    assert_eq!(hq.closing_rate, Some(0.3333));
    assert_eq!(hq.roadshow_leads.unwrap(), 0);
    assert_eq!(hq.roadshow_closing_ratio, None); // 0 / 0
    // Consultants: wang and li (activity) and zhou (target) = 3; 1 / 3 units each.
    assert_eq!(hq.consultants, Some(3));
    assert_eq!(hq.units_per_consultant, Some(0.3333));
    // Target 4 units, 500,000 yuan: 1 / 4 = 0.25; 115,000 / 500,000 = 0.23. The
    // quarterly target (12) is not used for a month.
    assert_eq!(
        (hq.target_units, hq.target_revenue),
        (Some(4), Some(50 * WAN))
    );
    assert_eq!(hq.units_achievement, Some(0.25));
    assert_eq!(hq.revenue_achievement, Some(0.23));

    // wang: visits c1 + c2 = 2, calls 1, test drive 1, order 1, delivery 1.
    let wang = k.consultant("hq", "wang").unwrap();
    assert_eq!(
        (
            wang.visits.unwrap(),
            wang.calls.unwrap(),
            wang.test_drives.unwrap(),
            wang.orders.unwrap(),
            wang.deliveries.unwrap()
        ),
        (2, 1, 1, 1, 1)
    );
    // wang received the first visits of c1 and c2: c1 test-drove and ordered: 1 / 2.
    assert_eq!(wang.test_drive_rate, Some(0.5));
    assert_eq!(wang.closing_rate, Some(0.5));
    // Target 2 units, 230,000 yuan: 1 / 2; 115,000 / 230,000.
    assert_eq!(wang.units_achievement, Some(0.5));
    assert_eq!(wang.revenue_achievement, Some(0.5));
    assert_eq!(wang.consultants, None, "site rows only");
    // Activity against the target: 2 / 4 visits; a zero call target and an absent
    // test-drive target give no achievement.
    assert_eq!(wang.target_visits, Some(4));
    assert_eq!(wang.visits_achievement, Some(0.5));
    assert_eq!((wang.target_calls, wang.calls_achievement), (Some(0), None));
    assert_eq!(
        (wang.target_test_drives, wang.test_drives_achievement),
        (None, None)
    );

    // li: two visits, one test drive, c12's order; c12's delivery is April's.
    let li = k.consultant("hq", "li").unwrap();
    assert_eq!(
        (
            li.visits.unwrap(),
            li.test_drives.unwrap(),
            li.orders.unwrap(),
            li.deliveries.unwrap()
        ),
        (2, 1, 1, 0)
    );
    // li's cohort is c3 alone: test-drove, did not order.
    assert_eq!(
        (li.first_visitors, li.test_drive_rate, li.closing_rate),
        (Some(1), Some(1.0), Some(0.0))
    );
    assert_eq!(li.units_achievement, Some(0.0));
    assert_eq!(li.revenue_achievement, Some(0.0));

    // zhou: nothing but a target. Every rate over zero visits is unknown, and JSON
    // says null, never NaN.
    let zhou = k.consultant("hq", "zhou").unwrap();
    assert_eq!(
        (
            zhou.visits.unwrap(),
            zhou.orders.unwrap(),
            zhou.deliveries.unwrap()
        ),
        (0, 0, 0)
    );
    assert_eq!(zhou.test_drive_rate, None);
    assert_eq!(zhou.closing_rate, None);
    assert_eq!(zhou.units_achievement, Some(0.0)); // 0 / 1
    let json = serde_json::to_value(zhou).unwrap();
    assert!(
        json["testDriveRate"].is_null() && json["closingRate"].is_null(),
        "{json}"
    );

    // ag-1: the delivery's own amount (165,000 yuan) wins over the order's 168,000.
    let ag1 = k.site("ag-1").unwrap();
    assert_eq!(
        (
            ag1.visits.unwrap(),
            ag1.calls.unwrap(),
            ag1.test_drives.unwrap(),
            ag1.orders.unwrap(),
            ag1.deliveries.unwrap()
        ),
        (2, 1, 1, 1, 1)
    );
    assert_eq!(ag1.revenue.unwrap(), 1_650 * 10_000);
    assert_eq!(ag1.units_per_consultant, Some(1.0)); // 1 / zhao
    assert_eq!(ag1.units_achievement, Some(0.5)); // 1 / 2
    assert_eq!(ag1.revenue_achievement, Some(0.55)); // 165,000 / 300,000
    let zhao = k.consultant("ag-1", "zhao").unwrap();
    assert_eq!(zhao.target_units, None);
    assert_eq!(zhao.units_achievement, None, "no target, no achievement");

    // rs-1: visits c6, c7, c8 = 3; orders c6 (Mar 9) + c9 (Mar 2) = 2. First visitors
    // c6, c7, c8; only c6 ordered before April (c8 at 00:30 CST April 1st, c9 never
    // visited): closing 1 / 3. No test drives: 0 / 3 = 0. Roadshow cohort: c6, c7, c8 entered in March (c9 in
    // February); of them only c6 ordered before April (c8 ordered 00:30 CST April
    // 1st): 1 / 3.
    let rs1 = k.site("rs-1").unwrap();
    assert_eq!(
        (
            rs1.visits.unwrap(),
            rs1.orders.unwrap(),
            rs1.test_drives.unwrap()
        ),
        (3, 2, 0)
    );
    assert_eq!(rs1.closing_rate, Some(0.3333));
    assert_eq!(rs1.test_drive_rate, Some(0.0));
    assert_eq!(
        (
            rs1.roadshow_leads.unwrap(),
            rs1.roadshow_leads_ordered.unwrap()
        ),
        (3, 1)
    );
    assert_eq!(rs1.roadshow_closing_ratio, Some(0.3333));
    assert_eq!(rs1.units_per_consultant, Some(0.0)); // 0 / chen
    assert_eq!(rs1.target_units, None);
    let chen = k.consultant("rs-1", "chen").unwrap();
    assert_eq!(chen.roadshow_closing_ratio, Some(0.3333));

    // ag-2 had nobody at work in March: no consultants, units per consultant unknown.
    let ag2 = k.site("ag-2").unwrap();
    assert_eq!((ag2.consultants, ag2.units_per_consultant), (Some(0), None));

    // ag-3: one delivery with no price at all: a unit, no revenue, a warning; a zero
    // revenue target gives an unknown revenue achievement.
    let ag3 = k.site("ag-3").unwrap();
    assert_eq!((ag3.deliveries.unwrap(), ag3.revenue.unwrap()), (1, 0));
    assert_eq!(ag3.units_achievement, Some(1.0));
    assert_eq!(ag3.revenue_achievement, None);
    // Regions sum their subtree. hq: visits 4 (hq) + 2 (ag-1) + 3 (rs-1) = 9; calls
    // 1 + 1 = 2; test drives 2 + 1 = 3; orders 2 + 1 + 2 = 5; deliveries hq, ag-1,
    // ag-3 = 3 worth 115,000 + 165,000 + 0; consultants 3 + 1 + 1 + 1 = 6.
    let hq_region = k.region("hq").unwrap();
    assert_eq!(
        (
            hq_region.visits.unwrap(),
            hq_region.calls.unwrap(),
            hq_region.test_drives.unwrap(),
            hq_region.orders.unwrap(),
            hq_region.deliveries.unwrap()
        ),
        (9, 2, 3, 5, 3)
    );
    assert_eq!(hq_region.revenue.unwrap(), 28 * WAN);
    // First visitors: hq 3 + ag-1 (c4, c5) 2 + rs-1 3 = 8; test-drove c1, c3, c4 =
    // 3 / 8; ordered c1, c4, c6 = 3 / 8.
    assert_eq!(hq_region.first_visitors, Some(8));
    assert_eq!(hq_region.test_drive_rate, Some(0.375));
    assert_eq!(hq_region.closing_rate, Some(0.375));
    assert_eq!(hq_region.roadshow_closing_ratio, Some(0.3333)); // rs-1's 1 / 3
    assert_eq!(hq_region.consultants, Some(6));
    assert_eq!(hq_region.units_per_consultant, Some(0.5)); // 3 / 6
    // Target: hq 4 + ag-1 2 + dc-s 3 + ag-3 1 = 10 units; 500,000 + 300,000 + 400,000
    // + 0 = 1,200,000 yuan. No site target sets visits.
    assert_eq!(
        (hq_region.target_units, hq_region.target_revenue),
        (Some(10), Some(120 * WAN))
    );
    assert_eq!(hq_region.units_achievement, Some(0.3));
    assert_eq!(hq_region.revenue_achievement, Some(0.2333));
    assert_eq!(hq_region.target_visits, None);
    // dc-n: visits 2 + 3 = 5, test drives 1, orders 1 + 2 = 3; zhao and chen.
    let dcn = k.region("dc-n").unwrap();
    assert_eq!(
        (
            dcn.visits.unwrap(),
            dcn.test_drives.unwrap(),
            dcn.orders.unwrap()
        ),
        (5, 1, 3)
    );
    // First visitors c4, c5, c6, c7, c8 = 5: test-drove c4 = 1 / 5, ordered c4, c6 =
    // 2 / 5.
    assert_eq!(
        (dcn.test_drive_rate, dcn.closing_rate),
        (Some(0.2), Some(0.4))
    );
    assert_eq!(
        (dcn.consultants, dcn.units_per_consultant),
        (Some(2), Some(0.5))
    );
    assert_eq!(dcn.units_achievement, Some(0.5)); // ag-1's target: 1 / 2
    // dc-s: no visits anywhere below it: no rates.
    let dcs = k.region("dc-s").unwrap();
    assert_eq!((dcs.closing_rate, dcs.deliveries.unwrap()), (None, 1));
    assert_eq!(dcs.units_achievement, Some(0.25)); // 1 / (3 + 1)
    assert_eq!(dcs.revenue_achievement, Some(0.0)); // 0 / 400,000
    assert!(
        k.region("ag-1").is_none(),
        "an agent with nobody below is no region"
    );

    assert_eq!(
        k.warnings,
        vec![ReportWarning::UnpricedDelivery {
            site: "ag-3".into(),
            customer: "c10".into(),
            at: cst(2026, 3, 15, 10, 0)
        }]
    );
}

#[test]
fn days_split_at_midnight_china_standard_time() {
    let f = fixture();
    // March 31st (CST) holds c1's 23:30 delivery and c8's 23:30 visit.
    let d31 = reports::kpis(&f.network, &f.sites(), Period::Day(2026, 3, 31)).unwrap();
    assert_eq!(d31.site("hq").unwrap().deliveries.unwrap(), 1);
    assert_eq!(d31.site("hq").unwrap().visits.unwrap(), 0);
    assert_eq!(d31.site("rs-1").unwrap().visits.unwrap(), 1);
    assert_eq!(d31.site("rs-1").unwrap().roadshow_leads.unwrap(), 1);
    // April 1st (CST) starts at 16:00 UTC on March 31st: c2's 00:30 visit and c12's
    // 00:30 delivery are there, though their UTC date is March 31st.
    let a1 = reports::kpis(&f.network, &f.sites(), Period::Day(2026, 4, 1)).unwrap();
    let hq = a1.site("hq").unwrap();
    assert_eq!((hq.visits.unwrap(), hq.deliveries.unwrap()), (1, 1));
    // c12's delivery has no amount; its March 29th order sets the revenue.
    assert_eq!(hq.revenue.unwrap(), 1_120 * 10_000);
    assert_eq!(a1.site("rs-1").unwrap().orders.unwrap(), 1, "c8's order");
}

// ------------------------------------------------------------------ sales board

#[test]
fn sales_board_ranks_regions_teams_and_consultants() {
    let f = fixture();
    let b = reports::sales_board(&f.network, &f.sites(), month(2026, 3)).unwrap();
    let table = |rows: &[reports::BoardRow]| -> Vec<(u32, String, i64, Option<f64>)> {
        rows.iter()
            .map(|r| (r.rank, r.id.clone(), r.units.unwrap(), r.units_achievement))
            .collect()
    };
    let s = |x: &str| x.to_string();

    // Regions, against the sum of the targets set in them:
    // dc-n = ag-1 1 unit / ag-1's target 2 = 0.5;
    // hq = 3 units (hq, ag-1, ag-3) / (4 + 2 + 3 + 1 = 10) = 0.3;
    // dc-s = ag-3 1 unit / (dc-s 3 + ag-3 1 = 4) = 0.25.
    assert_eq!(
        table(&b.regions),
        vec![
            (1, s("dc-n"), 1, Some(0.5)),
            (2, s("hq"), 3, Some(0.3)),
            (3, s("dc-s"), 1, Some(0.25)),
        ]
    );
    let hq = &b.regions[1];
    // Revenue 115,000 + 165,000 + 0 = 280,000 of 500,000 + 300,000 + 400,000 + 0 =
    // 1,200,000 yuan: 0.2333.
    assert_eq!(
        (hq.revenue, hq.target_revenue),
        (Some(28 * WAN), Some(120 * WAN))
    );
    assert_eq!(hq.revenue_achievement, Some(0.2333));

    // Teams, each site's own: ag-3 1/1, ag-1 1/2, hq 1/4, dc-s 0/3, then the sites
    // with no target, tied at 0 units: one shared rank, by site id.
    assert_eq!(
        table(&b.teams),
        vec![
            (1, s("ag-3"), 1, Some(1.0)),
            (2, s("ag-1"), 1, Some(0.5)),
            (3, s("hq"), 1, Some(0.25)),
            (4, s("dc-s"), 0, Some(0.0)),
            (5, s("ag-2"), 0, None),
            (5, s("dc-n"), 0, None),
            (5, s("rs-1"), 0, None),
        ]
    );

    // Consultants: wang 1/2; li 0/1 and zhou 0/1 tie; then the ones without a target
    // by units and revenue: zhao (1 unit, 165,000), sun (1 unit, 0), chen (0).
    assert_eq!(
        table(&b.consultants),
        vec![
            (1, s("wang"), 1, Some(0.5)),
            (2, s("li"), 0, Some(0.0)),
            (2, s("zhou"), 0, Some(0.0)),
            (4, s("zhao"), 1, None),
            (5, s("sun"), 1, None),
            (6, s("chen"), 0, None),
        ]
    );
    assert_eq!(b.consultants[3].site, "ag-1");

    // The flat table holds the three, in that order.
    let rows = b.rows();
    assert_eq!(rows.len(), 3 + 7 + 6);
    assert_eq!(rows[0].level, BoardLevel::Region);
    assert_eq!(rows[3].level, BoardLevel::Team);
    assert_eq!(rows[10].level, BoardLevel::Consultant);
}

// ------------------------------------------------------------------ odd trees

#[test]
fn odd_site_trees_are_cut_and_reported_not_lost() {
    let mut network = NetworkDocument::new();
    for h in [
        header("hq", SiteKind::HeadOffice, None),
        // A loop: a's parent is b, b's parent is a.
        header("a", SiteKind::Agent, Some("b")),
        header("b", SiteKind::Agent, Some("a")),
        // Hangs below the loop, and sorts before it: the loop is still cut in the loop.
        header("0-below", SiteKind::Showroom, Some("a")),
        header("orphan", SiteKind::Agent, Some("gone")),
    ] {
        network.sites.insert(h.id.clone(), h);
    }
    let mut docs: Vec<SiteDocument> = ["hq", "a", "b", "orphan", "0-below"]
        .iter()
        .map(|id| SiteDocument::new(network.sites[*id].clone()))
        .collect();
    // A site the network document does not list yet, under hq.
    docs.push(SiteDocument::new(header(
        "new",
        SiteKind::Showroom,
        Some("hq"),
    )));
    for (doc, q) in docs.iter_mut().zip([1, 10, 100, 1_000, 100_000, 10_000]) {
        forecast(doc, "2026-05", "SDN-A", q);
    }
    let refs: Vec<&SiteDocument> = docs.iter().collect();
    let r = reports::forecast_rollup(&network, &refs, month(2026, 5)).unwrap();
    let totals: BTreeMap<&str, i64> = r.rows.iter().map(|r| (r.site.as_str(), r.total)).collect();
    // hq 1 + new 10,000; the loop is cut at a (its smallest id), which carries b and
    // 0-below; orphan is its own root. Every forecast is counted exactly once.
    assert_eq!(totals["hq"], 10_001);
    assert_eq!(totals["a"], 100_110);
    assert_eq!(totals["b"], 100);
    assert_eq!(totals["0-below"], 100_000);
    assert_eq!(totals["orphan"], 1_000);
    assert_eq!(r.network_total("SDN-A"), 111_111);
    assert_eq!(
        r.warnings,
        vec![
            ReportWarning::SiteNotInNetwork { site: "new".into() },
            ReportWarning::UnknownParent {
                site: "orphan".into(),
                parent: "gone".into()
            },
            ReportWarning::ParentCycle { site: "a".into() },
        ]
    );

    // The same site twice would count it twice: refused.
    let twice = vec![&docs[0], &docs[0]];
    assert_eq!(
        reports::stock(&network, &twice).unwrap_err(),
        ReportError::DuplicateSite("hq".into())
    );
}

// ------------------------------------------------------------------ flat rows

/// Every tabular report's rows are flat objects of scalars, so CSV and tables work.
#[test]
fn tabular_rows_are_flat() {
    fn assert_flat<T: Tabular>(report: &T) -> usize {
        let rows = report.rows();
        for row in &rows {
            let v = serde_json::to_value(row).unwrap();
            let obj = v.as_object().expect("a row is an object");
            for (k, field) in obj {
                assert!(
                    !field.is_object() && !field.is_array(),
                    "field {k} is nested: {field}"
                );
            }
        }
        rows.len()
    }
    let f = fixture();
    let s = f.sites();
    let (n, m) = (&f.network, month(2026, 3));
    assert_eq!(assert_flat(&reports::stock(n, &s).unwrap()), 9);
    assert_eq!(
        assert_flat(&reports::ageing(n, &s, now(), &StockParams::default()).unwrap()),
        6
    );
    assert_eq!(
        assert_flat(&reports::forecast_rollup(n, &s, month(2026, 5)).unwrap()),
        13
    );
    assert_eq!(
        assert_flat(
            &reports::order_plan(n, &s, month(2026, 5), now(), &OrderPlanParams::default())
                .unwrap()
        ),
        4
    );
    assert_eq!(assert_flat(&reports::kpis(n, &s, m).unwrap()), 16);
    assert_eq!(assert_flat(&reports::pipeline(n, &s, now()).unwrap()), 3);
    assert_eq!(assert_flat(&reports::sales_board(n, &s, m).unwrap()), 16);
    // Names on the wire are camelCase, enums snake_case.
    let stock = serde_json::to_value(&reports::stock(n, &s).unwrap().rows[0]).unwrap();
    assert_eq!(stock["costValue"], 8 * WAN);
    assert_eq!(stock["status"], "in_stock");
}

// ------------------------------------------------------------------ properties

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// A random network: each site's parent is nobody, any site (loops included) or a
    /// site that does not exist; some sites are missing from the network document.
    fn arb_network() -> impl Strategy<Value = (NetworkDocument, Vec<SiteDocument>)> {
        (1usize..10)
            .prop_flat_map(|n| {
                (
                    prop::collection::vec((0usize..n + 2, any::<bool>()), n),
                    prop::collection::vec(prop::collection::vec(0i64..50, 3), n),
                )
            })
            .prop_map(|(links, quantities)| {
                let n = links.len();
                let mut network = NetworkDocument::new();
                let mut docs = Vec::new();
                for (i, ((parent, listed), qs)) in links.into_iter().zip(quantities).enumerate() {
                    let parent = match parent {
                        p if p < n => Some(format!("s{p}")),
                        p if p == n => None,
                        _ => Some("ghost".to_string()),
                    };
                    let h = SiteHeader {
                        id: format!("s{i}"),
                        name: format!("site {i}"),
                        kind: SiteKind::Agent,
                        parent,
                        channel: None,
                    };
                    if listed {
                        network.sites.insert(h.id.clone(), h.clone());
                    }
                    let mut doc = SiteDocument::new(h);
                    for (model, q) in ["M1", "M2", "M3"].iter().zip(qs) {
                        forecast(&mut doc, "2026-05", model, q);
                    }
                    docs.push(doc);
                }
                (network, docs)
            })
    }

    proptest! {
        /// Whatever the shape of the tree, every forecast is counted exactly once at
        /// the top, each total is its own forecast plus its children's totals, and the
        /// order the documents are given in does not matter.
        #[test]
        fn rollup_counts_every_forecast_once((network, docs) in arb_network()) {
            let refs: Vec<&SiteDocument> = docs.iter().collect();
            let r = reports::forecast_rollup(&network, &refs, month(2026, 5)).unwrap();
            for model in ["M1", "M2", "M3"] {
                let own_sum: i64 = docs
                    .iter()
                    .map(|d| d.forecasts["2026-05"][model].quantity)
                    .sum();
                prop_assert_eq!(r.network_total(model), own_sum);
                for row in r.rows.iter().filter(|x| x.model == model) {
                    let children: i64 = r
                        .rows
                        .iter()
                        .filter(|c| c.model == model && c.parent.as_deref() == Some(&row.site))
                        .map(|c| c.total)
                        .sum();
                    prop_assert_eq!(row.total, row.own.unwrap_or(0) + children);
                }
            }
            prop_assert_eq!(r.rows.len(), docs.len() * 3);
            // A loop is cut at a site on the loop: climbing its parents leads back to it.
            let parent: BTreeMap<&str, Option<&str>> = docs
                .iter()
                .map(|d| (d.site.id.as_str(), d.site.parent.as_deref()))
                .collect();
            for w in &r.warnings {
                if let ReportWarning::ParentCycle { site } = w {
                    let mut at = parent[site.as_str()];
                    for _ in 0..docs.len() {
                        if at == Some(site.as_str()) {
                            break;
                        }
                        at = at.and_then(|p| parent.get(p).copied().flatten());
                    }
                    prop_assert_eq!(at, Some(site.as_str()), "{} is on no loop", site);
                }
            }
            let reversed: Vec<&SiteDocument> = docs.iter().rev().collect();
            let again = reports::forecast_rollup(&network, &reversed, month(2026, 5)).unwrap();
            prop_assert_eq!(again, r);
        }
    }
}

#[test]
fn a_customer_merged_into_another_is_not_a_second_roadshow_lead() {
    // rs-1's March cohort is c6, c7, c8 (1 / 3 ordered). c7 turns out to be c6
    // entered twice: the cohort is c6 and c8, of whom c6 ordered: 1 / 2. c7's visit
    // happened all the same and still counts (3 visits).
    let mut f = fixture();
    let rs1 = f.sites.iter_mut().find(|s| s.site.id == "rs-1").unwrap();
    rs1.customers.get_mut("c7").unwrap().merged_into = Some("c6".into());
    let k = reports::kpis(&f.network, &f.sites(), month(2026, 3)).unwrap();
    let rs1 = k.site("rs-1").unwrap();
    assert_eq!(
        (
            rs1.roadshow_leads.unwrap(),
            rs1.roadshow_leads_ordered.unwrap()
        ),
        (2, 1)
    );
    assert_eq!(rs1.roadshow_closing_ratio, Some(0.5));
    assert_eq!(rs1.visits.unwrap(), 3);
}

/// Numbers a foreign client could write (times at the ends of the i64 range, huge
/// quantities and prices) give figures and warnings, never a panic: reports run in the
/// server on whatever the documents hold.
#[test]
fn extreme_numbers_in_documents_do_not_panic_a_report() {
    let mut network = NetworkDocument::new();
    network
        .sites
        .insert("hq".into(), header("hq", SiteKind::HeadOffice, None));
    network.models.insert(
        "SDN-A".into(),
        VehicleModel {
            code: "SDN-A".into(),
            name: "SDN-A".into(),
            trims: vec![],
            cost: i64::MAX,
            list_price: i64::MAX,
        },
    );
    let mut hq = SiteDocument::new(header("hq", SiteKind::HeadOffice, None));
    for (n, t) in [(1, i64::MAX), (2, i64::MIN), (3, 0)] {
        let mut v = vehicle(n, "SDN-A", VehicleStatus::InStock, Some(t), 0);
        (v.eta, v.cost) = (Some(t), i64::MAX);
        hq.vehicles.insert(v.vin.clone(), v);
        let mut v = vehicle(n + 10, "SDN-A", VehicleStatus::InTransit, None, 0);
        (v.eta, v.cost) = (Some(t), i64::MAX);
        hq.vehicles.insert(v.vin.clone(), v);
    }
    forecast(&mut hq, "2026-05", "SDN-A", i64::MAX);
    hq.customers.insert(
        "c1".into(),
        customer(
            "c1",
            CustomerSource::Roadshow,
            Some("wang"),
            Some("SDN-A"),
            i64::MAX,
            vec![
                priced(
                    ev(EventKind::Delivery, cst(2026, 4, 2, 10, 0), "wang"),
                    i64::MAX,
                ),
                priced(
                    ev(EventKind::Delivery, cst(2026, 4, 3, 10, 0), "wang"),
                    i64::MAX,
                ),
                ev(EventKind::Visit, i64::MIN, "wang"),
            ],
        ),
    );
    network
        .targets
        .entry("hq".into())
        .or_default()
        .insert("2026-04".into(), target(i64::MAX, i64::MAX));
    let sites = [&hq];
    let now = now();
    reports::stock(&network, &sites).unwrap();
    reports::ageing(&network, &sites, now, &StockParams::default()).unwrap();
    reports::pipeline(&network, &sites, now).unwrap();
    reports::forecast_rollup(&network, &sites, month(2026, 5)).unwrap();
    let plan = reports::order_plan(
        &network,
        &sites,
        month(2026, 5),
        now,
        &OrderPlanParams::default(),
    )
    .unwrap();
    assert!(plan.rows[0].quantity >= 0);
    reports::kpis(&network, &sites, month(2026, 4)).unwrap();
    reports::sales_board(&network, &sites, month(2026, 4)).unwrap();
}

// ------------------------------------------------------- rates and partial devices

#[test]
fn closing_rate_follows_first_visitors_and_never_exceeds_one() {
    // ag-1 in March: c4 and c5 first visited (1 of 2 ordered). Add c20, who first
    // visited in February and orders twice in March (two cars), and c21, who orders
    // in March without ever visiting. Old formula: orders / visits = (1 + 2 + 1) / 2 =
    // 200 %. Cohort: still c4 and c5, of whom c4 ordered: 1 / 2 = 50 %.
    use CustomerSource as Src;
    use EventKind as K;
    let mut f = fixture();
    let ag1 = f.sites.iter_mut().find(|s| s.site.id == "ag-1").unwrap();
    for c in [
        customer(
            "c20",
            Src::WalkIn,
            Some("zhao"),
            None,
            cst(2026, 2, 10, 10, 0),
            vec![
                ev(K::Visit, cst(2026, 2, 10, 10, 0), "zhao"),
                with_vin(ev(K::Order, cst(2026, 3, 10, 10, 0), "zhao"), 30),
                with_vin(ev(K::Order, cst(2026, 3, 11, 10, 0), "zhao"), 31),
            ],
        ),
        customer(
            "c21",
            Src::Phone,
            Some("zhao"),
            None,
            cst(2026, 3, 12, 10, 0),
            vec![ev(K::Order, cst(2026, 3, 12, 10, 0), "zhao")],
        ),
    ] {
        ag1.customers.insert(c.id.clone(), c);
    }
    let k = reports::kpis(&f.network, &f.sites(), month(2026, 3)).unwrap();
    let ag1 = k.site("ag-1").unwrap();
    assert_eq!((ag1.visits, ag1.orders), (Some(2), Some(4)));
    assert_eq!(
        (ag1.first_visitors, ag1.first_visitors_ordered),
        (Some(2), Some(1))
    );
    assert_eq!(ag1.closing_rate, Some(0.5));
    // No rate of any row is above 100 %: achievements may be (a target beaten), the
    // conversion rates may not.
    for r in &k.rows {
        for rate in [r.closing_rate, r.test_drive_rate, r.roadshow_closing_ratio] {
            assert!(rate.unwrap_or(0.0) <= 1.0, "{r:?}");
        }
    }
}

#[test]
fn a_site_whose_document_is_not_held_is_not_available_never_zero() {
    // A device holding every document but ag-1's (dc-n's agent).
    let f = fixture();
    let held: Vec<&SiteDocument> = f.sites.iter().filter(|s| s.site.id != "ag-1").collect();
    let k = reports::kpis(&f.network, &held, month(2026, 3)).unwrap();
    assert_eq!(k.sites_not_available, vec!["ag-1".to_string()]);
    assert!(k.sites_covered.contains(&"hq".to_string()));
    assert!(!k.sites_covered.contains(&"ag-1".to_string()));

    let ag1 = k.site("ag-1").unwrap();
    assert!(!ag1.available);
    assert_eq!((ag1.visits, ag1.orders, ag1.deliveries), (None, None, None));
    assert_eq!((ag1.revenue, ag1.consultants), (None, None));
    assert_eq!((ag1.closing_rate, ag1.units_achievement), (None, None));
    // Its target is in the network document, so it is still shown.
    assert_eq!(ag1.target_units, Some(2));
    assert!(k.consultant("ag-1", "zhao").is_none());
    let json = serde_json::to_value(ag1).unwrap();
    assert!(
        json["visits"].is_null() && json["revenue"].is_null(),
        "{json}"
    );
    assert_eq!(json["available"], false);

    // dc-n's region: rs-1's 3 visits (ag-1's 2 left out), one site not available.
    let dcn = k.region("dc-n").unwrap();
    assert!(dcn.available);
    assert_eq!(dcn.sites_not_available, Some(1));
    assert_eq!(dcn.visits, Some(3));
    // hq's region without ag-1: visits 4 + 3 = 7, deliveries hq + ag-3 = 2.
    let hq = k.region("hq").unwrap();
    assert_eq!((hq.visits, hq.deliveries), (Some(7), Some(2)));
    assert_eq!(hq.sites_not_available, Some(1));
    // A complete device says 0 sites missing.
    let all = reports::kpis(&f.network, &f.sites(), month(2026, 3)).unwrap();
    assert_eq!(all.region("hq").unwrap().sites_not_available, Some(0));
    assert!(all.sites_not_available.is_empty());

    // CSV: the row's figures are empty cells, not 0.
    let mut w = csv::Writer::from_writer(Vec::new());
    w.serialize(ag1).unwrap();
    let line = String::from_utf8(w.into_inner().unwrap()).unwrap();
    let data = line.lines().nth(1).unwrap();
    assert!(data.starts_with("site,ag-1,"), "{data}");
    assert!(data.contains(",false,,,,"), "{data}");
}

#[test]
fn a_forecast_not_on_this_device_is_unknown_not_zero() {
    // Without dc-n's document: its own SUV-B 1 is unknown (`None`), not 0; its totals
    // are what the agents held here forecast (SDN-A ag-1 5 + ag-2 3 + rs-1 1 = 9;
    // SUV-B ag-1 2 = 2), and the report says dc-n is not covered.
    let f = fixture();
    let held: Vec<&SiteDocument> = f.sites.iter().filter(|s| s.site.id != "dc-n").collect();
    let r = reports::forecast_rollup(&f.network, &held, month(2026, 5)).unwrap();
    assert_eq!(r.sites_not_available, vec!["dc-n".to_string()]);
    let dcn: Vec<(&str, bool, Option<i64>, i64)> = r
        .rows
        .iter()
        .filter(|x| x.site == "dc-n")
        .map(|x| (x.model.as_str(), x.available, x.own, x.total))
        .collect();
    assert_eq!(
        dcn,
        vec![("SDN-A", false, None, 9), ("SUV-B", false, None, 2)]
    );
    let ag1 = r.rows.iter().find(|x| x.site == "ag-1").unwrap();
    assert_eq!((ag1.available, ag1.own), (true, Some(5)));
    // SUV-B for the network: dc-s's region 4 + ag-1 2; dc-n's own 1 is not here.
    assert_eq!(r.network_total("SUV-B"), 6);
}

#[test]
fn the_sales_board_ranks_a_team_not_on_this_device_last_and_shows_no_zero() {
    // Without ag-3's document: ag-3 (1 unit of 1, first on the complete board) has no
    // figures here; it is not a team that sold nothing, so it goes last, not available.
    let f = fixture();
    let held: Vec<&SiteDocument> = f.sites.iter().filter(|s| s.site.id != "ag-3").collect();
    let b = reports::sales_board(&f.network, &held, month(2026, 3)).unwrap();
    let last = b.teams.last().unwrap();
    assert_eq!(
        (last.id.as_str(), last.available, last.units, last.revenue),
        ("ag-3", false, None, None)
    );
    assert_eq!((last.target_units, last.units_achievement), (Some(1), None));
    assert_eq!(b.teams[0].id, "ag-1"); // 1 / 2 now leads
    // dc-s's region: its own document is held (0 units), ag-3's is not.
    let dcs = b.regions.iter().find(|r| r.id == "dc-s").unwrap();
    assert_eq!((dcs.available, dcs.units), (true, Some(0)));
}

#[test]
fn stock_and_the_order_plan_say_which_sites_they_do_not_hold() {
    // Without ag-1's document its vehicles are in no figure; the reports say so rather
    // than let a buyer read them as an empty site.
    let f = fixture();
    let held: Vec<&SiteDocument> = f.sites.iter().filter(|s| s.site.id != "ag-1").collect();
    let missing = vec!["ag-1".to_string()];
    let s = reports::stock(&f.network, &held).unwrap();
    assert_eq!(s.sites_not_available, missing);
    assert!(s.rows.iter().all(|r| r.site != "ag-1"));
    let p = reports::order_plan(
        &f.network,
        &held,
        month(2026, 5),
        now(),
        &OrderPlanParams::default(),
    )
    .unwrap();
    assert_eq!(p.sites_not_available, missing);
    let all = reports::order_plan(
        &f.network,
        &f.sites(),
        month(2026, 5),
        now(),
        &OrderPlanParams::default(),
    )
    .unwrap();
    assert!(all.sites_not_available.is_empty());
    assert_eq!(all.sites_covered.len(), 7);
}
