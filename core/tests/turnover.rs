//! Days of supply and capital turnover per model and site, figures computed by hand.

mod common;

use automerge::AutoCommit;
use common::*;
use dealersync_core::access::Role;
use dealersync_core::domain::{self, Sale, VehicleAction};
use dealersync_core::reports;
use dealersync_core::schema::{NetworkDocument, Period, SiteDocument, SiteKind, VehicleStatus};

fn stock(doc: &mut AutoCommit, net: &NetworkDocument, n: u32, model: &str) -> String {
    let v = vin(n);
    let mut nv = new_vehicle(&v, VehicleStatus::InStock);
    nv.model = model.into();
    nv.trim = if model == "SDN-A" {
        "lux".into()
    } else {
        String::new()
    };
    domain::receive_vehicle(doc, net, &nv, "wang", T0).unwrap();
    v.as_str().to_string()
}

fn sell_and_deliver(
    doc: &mut AutoCommit,
    net: &NetworkDocument,
    vin: &str,
    customer: &str,
    at: i64,
) {
    domain::add_customer(
        doc,
        net,
        &new_customer(customer, &format!("1380000{:04}", at % 10_000)),
        "wang",
        T0,
    )
    .unwrap();
    let sale = Sale {
        customer: Some(customer.into()),
        price: None,
    };
    domain::sell_vehicle(doc, net, vin, &sale, "wang", Role::Consultant, at).unwrap();
    domain::move_vehicle(doc, vin, &VehicleAction::Deliver, "wang", at + HOUR).unwrap();
}

/// sr-1: SDN-A ×3 and SUV-B ×1 arrive March 1st; one SDN-A is delivered March 10th,
/// the SUV-B March 20th. rs-1: one SDN-A, unsold. Costs: SDN-A 120,000 yuan, SUV-B
/// 200,000 yuan (the common catalogue).
fn documents() -> (NetworkDocument, SiteDocument, SiteDocument) {
    let (_, net) = network();
    let mut sr = site("sr-1");
    let v1 = stock(&mut sr, &net, 1, "SDN-A");
    stock(&mut sr, &net, 2, "SDN-A");
    stock(&mut sr, &net, 3, "SDN-A");
    let v4 = stock(&mut sr, &net, 4, "SUV-B");
    sell_and_deliver(&mut sr, &net, &v1, "c1", T0 + 9 * 24 * HOUR);
    sell_and_deliver(&mut sr, &net, &v4, "c2", T0 + 19 * 24 * HOUR);
    let mut rs = site_under("rs-1", SiteKind::Roadshow, "dc-north");
    stock(&mut rs, &net, 5, "SDN-A");
    (
        net,
        SiteDocument::read(&sr).unwrap(),
        SiteDocument::read(&rs).unwrap(),
    )
}

#[test]
fn days_of_supply_and_capital_turnover_per_model_and_site() {
    let (net, sr, rs) = documents();
    // March is over on April 2nd: 31 days.
    let r = reports::turnover(
        &net,
        &[&sr, &rs],
        Period::Month(2026, 3),
        T0 + 32 * 24 * HOUR,
    )
    .unwrap();
    assert_eq!(r.days, 31);
    let row = |site: &str, model: &str| {
        r.rows
            .iter()
            .find(|x| x.site == site && x.model == model)
            .unwrap_or_else(|| panic!("no row {site}/{model}: {:?}", r.rows))
    };
    // sr-1 SDN-A: 2 on hand (240,000 yuan), 1 sold (120,000 yuan).
    // Days of supply 2 × 31 / 1 = 62.0; turnover 120,000 / 240,000 = 0.5;
    // over a year 0.5 × 365 / 31 = 5.887096… → 5.8871.
    let a = row("sr-1", "SDN-A");
    assert_eq!(
        (a.on_hand, a.on_hand_cost, a.sold, a.sold_cost),
        (2, 24_000_000, 1, 12_000_000)
    );
    assert_eq!(a.days_of_supply, Some(62.0));
    assert_eq!(a.capital_turnover, Some(0.5));
    assert_eq!(a.annual_turnover, Some(5.8871));
    // sr-1 SUV-B: none left, one sold: 0 days of supply; no capital, no turnover.
    let b = row("sr-1", "SUV-B");
    assert_eq!((b.on_hand, b.sold, b.sold_cost), (0, 1, 20_000_000));
    assert_eq!((b.days_of_supply, b.capital_turnover), (Some(0.0), None));
    // rs-1 SDN-A: one on hand, nothing sold: no pace, so no days of supply; turnover 0.
    let c = row("rs-1", "SDN-A");
    assert_eq!(
        (c.on_hand, c.sold, c.days_of_supply, c.capital_turnover),
        (1, 0, None, Some(0.0))
    );
    // The network's SDN-A: 3 on hand (360,000), 1 sold (120,000): 93.0 days,
    // 0.3333, and 1/3 × 365 / 31 = 3.924731… → 3.9247.
    let m = r.models.iter().find(|x| x.model == "SDN-A").unwrap();
    assert_eq!((m.on_hand, m.sold, m.days_of_supply), (3, 1, Some(93.0)));
    assert_eq!(
        (m.capital_turnover, m.annual_turnover),
        (Some(0.3333), Some(3.9247))
    );
    assert_eq!(r.sites_not_available, ["hq", "dc-north"]);
}

#[test]
fn a_period_under_way_counts_the_days_elapsed() {
    let (net, sr, rs) = documents();
    // April 2nd 12:00 CST: a day and a half of April, counted as 2 days; nothing sold.
    let now = T0 + (31 + 1) * 24 * HOUR + 12 * HOUR;
    let r = reports::turnover(&net, &[&sr, &rs], Period::Month(2026, 4), now).unwrap();
    assert_eq!(r.days, 2);
    assert!(
        r.rows
            .iter()
            .all(|x| x.sold == 0 && x.days_of_supply.is_none())
    );
    assert!(reports::turnover(&net, &[&sr], Period::Month(2026, 13), now).is_err());
}
