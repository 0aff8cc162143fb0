//! Rates and partial devices.

use super::*;

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
