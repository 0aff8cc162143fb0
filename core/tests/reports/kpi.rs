//! KPIs.

use super::*;

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
