//! Merged customers and extreme numbers: figures, never a panic.

use super::*;

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
