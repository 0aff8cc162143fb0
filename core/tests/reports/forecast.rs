//! The forecast roll-up.

use super::*;

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
