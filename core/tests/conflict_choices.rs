//! The options a conflict offers and what a chosen one writes (`Resolution`): the one
//! decision the field CLI and the relay's console share.

mod common;

use automerge::{ActorId, AutoCommit};
use common::*;
use dealersync_core::conflicts::{self, ChoiceKind, Conflict, ConflictKind, Resolution};
use dealersync_core::domain::{self, VehicleAction};
use dealersync_core::schema::{SiteDocument, SiteKind, VehicleStatus};

/// A vehicle reserved for c1 on one tablet and sold to c2 on another, merged.
fn double_booked() -> (AutoCommit, String, Conflict) {
    let (_, net) = network();
    let mut base = site("sr-1");
    for (id, phone) in [("c1", "13811112222"), ("c2", "13933334444")] {
        domain::add_customer(&mut base, &net, &new_customer(id, phone), "wang", T0).unwrap();
    }
    let v = vin(7);
    domain::receive_vehicle(
        &mut base,
        &net,
        &new_vehicle(&v, VehicleStatus::InStock),
        "wang",
        T0,
    )
    .unwrap();
    let vin = v.as_str().to_string();
    let mut a = device(&mut base, "tablet-a");
    let mut b = device(&mut base, "tablet-b");
    let reserve = |c: &str| VehicleAction::Reserve { customer: c.into() };
    domain::move_vehicle(&mut a, &vin, &reserve("c1"), "wang", T0 + HOUR).unwrap();
    domain::move_vehicle(&mut b, &vin, &reserve("c2"), "li", T0 + 2 * HOUR).unwrap();
    domain::move_vehicle(&mut b, &vin, &VehicleAction::Sell, "li", T0 + 3 * HOUR).unwrap();
    a.merge(&mut b).unwrap();
    let found = conflicts::detect(&[("sr-1", &a)]);
    assert_eq!(found.len(), 1, "{found:#?}");
    (a, vin, found[0].clone())
}

#[test]
fn a_double_booking_offers_each_customer_with_whether_it_was_sold() {
    let (_, vin, c) = double_booked();
    let choices = c.choices();
    assert_eq!(choices.choose, ChoiceKind::Customer);
    type Offered<'a> = (&'a str, Option<&'a str>, Option<&'a str>, Option<i64>);
    let offered: Vec<Offered> = choices
        .options
        .iter()
        .map(|o| (o.value.as_str(), o.status, o.site.as_deref(), o.at))
        .collect();
    assert_eq!(
        offered,
        [
            ("c1", Some("reserved"), Some("sr-1"), Some(T0 + HOUR)),
            ("c2", Some("sold"), Some("sr-1"), Some(T0 + 3 * HOUR)),
        ]
    );
    assert_eq!(
        choices.options[1].label,
        format!("vehicle {vin} goes to customer c2 (sold)")
    );
}

#[test]
fn a_chosen_customer_resolves_the_double_booking_in_its_site_document() {
    let (mut doc, vin, c) = double_booked();
    // A unique prefix is the whole id; anything else is refused with the options.
    let r = Resolution::of(&c, "c2").unwrap();
    assert_eq!(
        (r.conflict.as_str(), r.chosen.as_str()),
        (c.id.as_str(), "c2")
    );
    assert_eq!(r.sites().collect::<Vec<_>>(), ["sr-1"]);
    let err = Resolution::of(&c, "c3").unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "invalid resolution of {}: \"c3\" is not one of the competing customers: c1, c2",
            c.id
        )
    );
    assert!(Resolution::of(&c, "c").is_err(), "an ambiguous prefix");
    assert!(Resolution::of(&c, "").is_err(), "nothing chosen");

    let before = doc.get_heads();
    for edit in &r.edits {
        assert!(!edit.needs_network());
        edit.apply(&mut doc, None, "boss", T0 + 4 * HOUR).unwrap();
    }
    assert_ne!(doc.get_heads(), before);
    assert!(conflicts::detect(&[("sr-1", &doc)]).is_empty());
    let v = domain::get_vehicle(&doc, &vin).unwrap().unwrap();
    assert_eq!(
        (v.status, v.sold_to.as_deref(), v.consultant.as_deref()),
        (VehicleStatus::Sold, Some("c2"), Some("li"))
    );
}

#[test]
fn stock_at_three_sites_writes_every_site_but_the_one_kept() {
    let (_, net) = network();
    let v = vin(9);
    let mut docs: Vec<(String, AutoCommit)> = Vec::new();
    for (i, id) in ["rs-1", "sr-1", "sr-2"].iter().enumerate() {
        let mut d = AutoCommit::new().with_actor(ActorId::from(format!("site-{id}").into_bytes()));
        domain::init_site_document(
            &mut d,
            &header(id, SiteKind::Showroom, Some("dc-north")),
            T0,
        )
        .unwrap();
        domain::receive_vehicle(
            &mut d,
            &net,
            &new_vehicle(&v, VehicleStatus::InStock),
            "w",
            T0 + i as i64 * HOUR,
        )
        .unwrap();
        docs.push((id.to_string(), d));
    }
    let detect = |docs: &[(String, AutoCommit)]| {
        let pairs: Vec<(&str, &AutoCommit)> = docs.iter().map(|(s, d)| (s.as_str(), d)).collect();
        conflicts::detect(&pairs)
    };
    let found = detect(&docs);
    assert_eq!(found.len(), 1);
    let c = &found[0];
    assert_eq!(c.kind, ConflictKind::StockAtTwoSites);
    let choices = c.choices();
    assert_eq!(choices.choose, ChoiceKind::Site);
    let values: Vec<&str> = choices.options.iter().map(|o| o.value.as_str()).collect();
    assert_eq!(values, ["rs-1", "sr-1", "sr-2"]);
    assert_eq!(choices.options[1].at, Some(T0 + HOUR));

    let r = Resolution::of(c, "sr-1").unwrap();
    assert_eq!(r.sites().collect::<Vec<_>>(), ["rs-1", "sr-2"]);
    for edit in &r.edits {
        let (_, doc) = docs.iter_mut().find(|(s, _)| *s == edit.site).unwrap();
        edit.apply(doc, None, "boss", T0 + 5 * HOUR).unwrap();
    }
    assert!(detect(&docs).is_empty());
    for (site, doc) in &docs {
        let got = domain::get_vehicle(doc, v.as_str()).unwrap().unwrap();
        let want = if site == "sr-1" {
            (VehicleStatus::InStock, None)
        } else {
            (VehicleStatus::TransferredOut, Some("sr-1"))
        };
        assert_eq!((got.status, got.transfer_to.as_deref()), want, "{site}");
    }
}

#[test]
fn a_duplicate_customer_keeps_the_chosen_one_and_merges_the_others() {
    let (_, net) = network();
    let mut base = site("sr-1");
    let mut a = device(&mut base, "tablet-a");
    let mut b = device(&mut base, "tablet-b");
    domain::add_customer(&mut a, &net, &new_customer("ca", "13855556666"), "wang", T0).unwrap();
    domain::add_customer(&mut b, &net, &new_customer("cb", "13855556666"), "li", T0).unwrap();
    a.merge(&mut b).unwrap();
    let c = conflicts::detect(&[("sr-1", &a)]).remove(0);
    assert_eq!(c.choices().choose, ChoiceKind::Customer);
    let r = Resolution::of(&c, "cb").unwrap();
    for edit in &r.edits {
        edit.apply(&mut a, None, "boss", T0 + HOUR).unwrap();
    }
    assert!(conflicts::detect(&[("sr-1", &a)]).is_empty());
    let read = SiteDocument::read(&a).unwrap();
    assert_eq!(read.customers["ca"].merged_into.as_deref(), Some("cb"));
    assert_eq!(read.customers["cb"].merged_into, None);
}

#[test]
fn a_forecast_takes_any_quantity_and_suggests_the_competing_ones() {
    let (_, net) = network();
    let mut base = site("sr-1");
    domain::set_forecast(&mut base, &net, "2026-04", "SDN-A", 10, "wang", T0).unwrap();
    let mut a = device(&mut base, "tablet-a");
    let mut b = device(&mut base, "tablet-b");
    domain::set_forecast(&mut a, &net, "2026-04", "SDN-A", 12, "wang", T0 + HOUR).unwrap();
    domain::set_forecast(&mut b, &net, "2026-04", "SDN-A", 15, "li", T0 + HOUR).unwrap();
    a.merge(&mut b).unwrap();
    let c = conflicts::detect(&[("sr-1", &a)]).remove(0);
    let choices = c.choices();
    assert_eq!(choices.choose, ChoiceKind::Quantity);
    let values: Vec<&str> = choices.options.iter().map(|o| o.value.as_str()).collect();
    assert_eq!(values, ["12", "15"]);
    for bad in ["-1", "twelve", "1.5"] {
        let err = Resolution::of(&c, bad).unwrap_err().to_string();
        assert!(err.contains("whole number from 0"), "{bad}: {err}");
    }
    let r = Resolution::of(&c, " 13 ").unwrap();
    let edit = &r.edits[0];
    assert!(edit.needs_network());
    let refused = edit.apply(&mut a, None, "boss", T0).unwrap_err();
    assert!(
        refused.to_string().contains("network document"),
        "{refused}"
    );
    edit.apply(&mut a, Some(&net), "boss", T0 + 2 * HOUR)
        .unwrap();
    assert!(conflicts::detect(&[("sr-1", &a)]).is_empty());
    let read = SiteDocument::read(&a).unwrap();
    assert_eq!(read.forecasts["2026-04"]["SDN-A"].quantity, 13);
}

#[test]
fn a_part_collision_suggests_each_count_and_their_sum() {
    let mut base = site("sr-1");
    let mut a = device(&mut base, "tablet-a");
    let mut b = device(&mut base, "tablet-b");
    domain::adjust_part(&mut a, "OIL-5W30", 5, "wang", T0).unwrap();
    domain::adjust_part(&mut b, "OIL-5W30", 7, "li", T0).unwrap();
    a.merge(&mut b).unwrap();
    let c = conflicts::detect(&[("sr-1", &a)]).remove(0);
    let choices = c.choices();
    assert_eq!(choices.choose, ChoiceKind::Count);
    let mut values: Vec<i64> = choices
        .options
        .iter()
        .map(|o| o.value.parse().unwrap())
        .collect();
    values.sort();
    assert_eq!(values, [5, 7, 12]);
    let r = Resolution::of(&c, "12").unwrap();
    r.edits[0].apply(&mut a, None, "boss", T0 + HOUR).unwrap();
    assert!(conflicts::detect(&[("sr-1", &a)]).is_empty());
    assert_eq!(
        SiteDocument::read(&a).unwrap().parts["OIL-5W30"].value(),
        12
    );
}
