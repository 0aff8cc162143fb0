//! Stock and ageing.

use super::*;

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
