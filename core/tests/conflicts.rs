//! Business-rule conflicts made on offline forks: detected after the merge with every
//! competing value, its actor and time, and cleared everywhere by one resolution.

mod common;

use automerge::{ActorId, AutoCommit};
use common::*;
use dealersync_core::conflicts::{self, Conflict, ConflictKind};
use dealersync_core::domain::{self, VehicleAction};
use dealersync_core::schema::{NetworkDocument, SiteDocument, SiteKind, VehicleStatus};

fn hex(name: &str) -> String {
    ActorId::from(name.as_bytes().to_vec()).to_hex_string()
}

fn detect1(site: &str, doc: &AutoCommit) -> Vec<Conflict> {
    conflicts::detect(&[(site, doc)])
}

/// A showroom with customers c1 and c2 and one vehicle in stock.
fn showroom() -> (AutoCommit, NetworkDocument, String) {
    let (_, net) = network();
    let mut doc = site("sr-1");
    domain::add_customer(
        &mut doc,
        &net,
        &new_customer("c1", "13811112222"),
        "wang",
        T0,
    )
    .unwrap();
    domain::add_customer(&mut doc, &net, &new_customer("c2", "13933334444"), "li", T0).unwrap();
    let v = vin(7);
    domain::receive_vehicle(
        &mut doc,
        &net,
        &new_vehicle(&v, VehicleStatus::InStock),
        "wang",
        T0,
    )
    .unwrap();
    (doc, net, v.as_str().to_string())
}

#[test]
fn a_double_reservation_on_two_forks_is_found_and_cleared_by_one_resolution() {
    let (mut base, _, vin) = showroom();
    assert!(detect1("sr-1", &base).is_empty());
    let mut a = device(&mut base, "tablet-a");
    let mut b = device(&mut base, "tablet-b");
    let reserve = |c: &str| VehicleAction::Reserve { customer: c.into() };
    domain::move_vehicle(&mut a, &vin, &reserve("c1"), "wang", T0 + HOUR).unwrap();
    domain::move_vehicle(&mut b, &vin, &reserve("c2"), "li", T0 + 2 * HOUR).unwrap();
    assert!(
        detect1("sr-1", &a).is_empty(),
        "no conflict before the merge"
    );
    a.merge(&mut b).unwrap();
    b.merge(&mut a).unwrap();

    let found = detect1("sr-1", &a);
    assert_eq!(found, detect1("sr-1", &b), "same list on both replicas");
    assert_eq!(found.len(), 1, "{found:#?}");
    let c = &found[0];
    assert_eq!(c.kind, ConflictKind::DoubleBooking);
    assert_eq!(
        c.records,
        [
            "customer c1".to_string(),
            "customer c2".to_string(),
            format!("vehicle {vin}")
        ]
    );
    assert!(c.id.starts_with("double_booking-"), "{}", c.id);
    let mut seen: Vec<(String, String, Option<String>, Option<i64>)> = c
        .values
        .iter()
        .map(|v| (v.field.clone(), v.value.clone(), v.actor.clone(), v.at))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            (
                "reservedFor".into(),
                "c1".into(),
                Some(hex("tablet-a")),
                Some(T0 + HOUR)
            ),
            (
                "reservedFor".into(),
                "c2".into(),
                Some(hex("tablet-b")),
                Some(T0 + 2 * HOUR)
            ),
        ]
    );
    assert_eq!(
        c.values.iter().filter(|v| v.hidden).count(),
        1,
        "one value loses"
    );
    let shown = c.values.iter().find(|v| !v.hidden).unwrap();
    let winner = domain::get_vehicle(&a, &vin).unwrap().unwrap().reserved_for;
    assert_eq!(
        Some(shown.value.as_str()),
        winner.as_deref(),
        "the unhidden value is what readers see"
    );

    // Resolve on one replica only; the other learns it by merging.
    let msg = conflicts::resolve_double_booking(&mut a, &vin, "c3", "boss", T0).unwrap_err();
    assert_eq!(
        msg.to_string(),
        format!(
            "invalid resolution of vehicle {vin}: customer c3 is not one of the competing customers (c1, c2)"
        )
    );
    conflicts::resolve_double_booking(&mut a, &vin, "c2", "boss", T0 + 3 * HOUR).unwrap();
    assert!(detect1("sr-1", &a).is_empty());
    assert_eq!(detect1("sr-1", &b).len(), 1);
    b.merge(&mut a).unwrap();
    assert!(detect1("sr-1", &b).is_empty());
    let v = domain::get_vehicle(&b, &vin).unwrap().unwrap();
    assert_eq!(v.status, VehicleStatus::Reserved);
    assert_eq!(v.reserved_for.as_deref(), Some("c2"));
    assert_eq!(
        v.consultant.as_deref(),
        Some("li"),
        "the consultant who booked c2"
    );
}

#[test]
fn a_sale_competing_with_a_reservation_resolves_to_sold() {
    let (mut base, _, vin) = showroom();
    let mut a = device(&mut base, "tablet-a");
    let mut b = device(&mut base, "tablet-b");
    domain::move_vehicle(
        &mut a,
        &vin,
        &VehicleAction::Reserve {
            customer: "c1".into(),
        },
        "wang",
        T0,
    )
    .unwrap();
    domain::move_vehicle(
        &mut b,
        &vin,
        &VehicleAction::Reserve {
            customer: "c2".into(),
        },
        "li",
        T0,
    )
    .unwrap();
    domain::move_vehicle(&mut b, &vin, &VehicleAction::Sell, "li", T0 + HOUR).unwrap();
    a.merge(&mut b).unwrap();
    let found = detect1("sr-1", &a);
    assert_eq!(found.len(), 1);
    let sold: Vec<_> = found[0]
        .values
        .iter()
        .filter(|v| v.field == "soldTo")
        .collect();
    assert_eq!(sold.len(), 1);
    assert_eq!(
        (sold[0].value.as_str(), sold[0].at),
        ("c2", Some(T0 + HOUR))
    );
    conflicts::resolve_double_booking(&mut a, &vin, "c2", "boss", T0 + 2 * HOUR).unwrap();
    let v = domain::get_vehicle(&a, &vin).unwrap().unwrap();
    assert_eq!(
        (v.status, v.sold_to.as_deref()),
        (VehicleStatus::Sold, Some("c2"))
    );
    assert!(detect1("sr-1", &a).is_empty());
}

#[test]
fn the_same_customer_booked_on_two_devices_is_no_conflict() {
    let (mut base, _, vin) = showroom();
    let mut a = device(&mut base, "tablet-a");
    let mut b = device(&mut base, "tablet-b");
    for d in [&mut a, &mut b] {
        domain::move_vehicle(
            d,
            &vin,
            &VehicleAction::Reserve {
                customer: "c1".into(),
            },
            "wang",
            T0,
        )
        .unwrap();
    }
    a.merge(&mut b).unwrap();
    assert!(detect1("sr-1", &a).is_empty());
}

#[test]
fn a_vin_received_twice_concurrently_and_booked_twice_is_resolved_afresh() {
    let (_, net) = network();
    let mut base = site("sr-1");
    domain::add_customer(
        &mut base,
        &net,
        &new_customer("c1", "13811112222"),
        "wang",
        T0,
    )
    .unwrap();
    domain::add_customer(
        &mut base,
        &net,
        &new_customer("c2", "13933334444"),
        "li",
        T0,
    )
    .unwrap();
    let v = vin(8);
    let mut a = device(&mut base, "tablet-a");
    let mut b = device(&mut base, "tablet-b");
    for (d, c) in [(&mut a, "c1"), (&mut b, "c2")] {
        domain::receive_vehicle(d, &net, &new_vehicle(&v, VehicleStatus::InStock), "x", T0)
            .unwrap();
        domain::move_vehicle(
            d,
            v.as_str(),
            &VehicleAction::Reserve { customer: c.into() },
            "x",
            T0,
        )
        .unwrap();
    }
    a.merge(&mut b).unwrap();
    let found = detect1("sr-1", &a);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].kind, ConflictKind::DoubleBooking);
    conflicts::resolve_double_booking(&mut a, v.as_str(), "c1", "boss", T0).unwrap();
    b.merge(&mut a).unwrap();
    assert!(detect1("sr-1", &b).is_empty());
    assert_eq!(
        domain::get_vehicle(&b, v.as_str())
            .unwrap()
            .unwrap()
            .reserved_for
            .as_deref(),
        Some("c1")
    );
}

#[test]
fn a_vehicle_in_stock_at_two_sites_is_found_across_documents() {
    let (_, net) = network();
    let mut showroom = site("sr-1");
    let mut roadshow = AutoCommit::new().with_actor(ActorId::from(b"site-rs-1".to_vec()));
    domain::init_site_document(
        &mut roadshow,
        &header("rs-1", SiteKind::Roadshow, Some("dc-north")),
        T0,
    )
    .unwrap();
    let v = vin(9);
    domain::receive_vehicle(
        &mut showroom,
        &net,
        &new_vehicle(&v, VehicleStatus::InStock),
        "w",
        T0,
    )
    .unwrap();
    // The roadshow booked the vehicle in as if transferred, but the showroom never
    // recorded the transfer out.
    domain::receive_vehicle(
        &mut roadshow,
        &net,
        &new_vehicle(&v, VehicleStatus::InStock),
        "z",
        T0 + HOUR,
    )
    .unwrap();
    let found = conflicts::detect(&[("sr-1", &showroom), ("rs-1", &roadshow)]);
    assert_eq!(
        found,
        conflicts::detect(&[("rs-1", &roadshow), ("sr-1", &showroom)])
    );
    assert_eq!(found.len(), 1);
    let c = &found[0];
    assert_eq!(c.kind, ConflictKind::StockAtTwoSites);
    let sites: Vec<(&str, Option<&str>, Option<i64>)> = c
        .values
        .iter()
        .map(|v| (v.site.as_str(), v.actor.as_deref(), v.at))
        .collect();
    assert_eq!(
        sites,
        [
            ("rs-1", Some(hex("site-rs-1").as_str()), Some(T0 + HOUR)),
            ("sr-1", Some(hex("site-sr-1").as_str()), Some(T0)),
        ]
    );
    // Each document alone is fine.
    assert!(detect1("sr-1", &showroom).is_empty());

    let err = conflicts::resolve_stock_elsewhere(&mut showroom, v.as_str(), "sr-1", "boss", T0)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("run this at the site that gives the vehicle up"),
        "{err}"
    );
    conflicts::resolve_stock_elsewhere(&mut showroom, v.as_str(), "rs-1", "boss", T0 + 2 * HOUR)
        .unwrap();
    assert!(conflicts::detect(&[("sr-1", &showroom), ("rs-1", &roadshow)]).is_empty());
    let out = domain::get_vehicle(&showroom, v.as_str()).unwrap().unwrap();
    assert_eq!(
        (out.status, out.transfer_to.as_deref()),
        (VehicleStatus::TransferredOut, Some("rs-1"))
    );
}

#[test]
fn the_same_phone_entered_on_two_devices_is_a_duplicate_until_merged() {
    let (_, net) = network();
    let mut base = site("sr-1");
    let mut a = device(&mut base, "tablet-a");
    let mut b = device(&mut base, "tablet-b");
    domain::add_customer(
        &mut a,
        &net,
        &new_customer("ca", "138 5555 6666"),
        "wang",
        T0,
    )
    .unwrap();
    domain::add_customer(
        &mut b,
        &net,
        &new_customer("cb", "+86-13855556666"),
        "li",
        T0 + HOUR,
    )
    .unwrap();
    domain::add_customer(&mut b, &net, &new_customer("cc", "13955556666"), "li", T0).unwrap();
    a.merge(&mut b).unwrap();
    b.merge(&mut a).unwrap();
    let found = detect1("sr-1", &a);
    assert_eq!(found, detect1("sr-1", &b));
    assert_eq!(found.len(), 1, "{found:#?}");
    let c = &found[0];
    assert_eq!(c.kind, ConflictKind::DuplicateCustomer);
    assert_eq!(c.records, ["customer ca", "customer cb"]);
    let who: Vec<_> = c.values.iter().map(|v| (v.actor.clone(), v.at)).collect();
    assert_eq!(
        who,
        [
            (Some(hex("tablet-a")), Some(T0)),
            (Some(hex("tablet-b")), Some(T0 + HOUR))
        ]
    );
    assert!(c.summary.contains("+8613855556666"), "{}", c.summary);

    conflicts::resolve_duplicate_customer(&mut b, "cb", "ca", "boss", T0).unwrap();
    a.merge(&mut b).unwrap();
    assert!(detect1("sr-1", &a).is_empty());
    assert!(detect1("sr-1", &b).is_empty());
}

#[test]
fn concurrent_forecast_edits_are_found_with_both_quantities() {
    let (_, net) = network();
    let mut base = site("sr-1");
    domain::set_forecast(&mut base, &net, "2026-04", "SDN-A", 10, "wang", T0).unwrap();
    let mut a = device(&mut base, "tablet-a");
    let mut b = device(&mut base, "tablet-b");
    domain::set_forecast(&mut a, &net, "2026-04", "SDN-A", 12, "wang", T0 + HOUR).unwrap();
    domain::set_forecast(&mut b, &net, "2026-04", "SDN-A", 15, "li", T0 + 2 * HOUR).unwrap();
    a.merge(&mut b).unwrap();
    b.merge(&mut a).unwrap();
    let found = detect1("sr-1", &a);
    assert_eq!(found, detect1("sr-1", &b));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].kind, ConflictKind::ForecastEdit);
    assert_eq!(found[0].records, ["forecast 2026-04/SDN-A"]);
    let vals: Vec<_> = found[0]
        .values
        .iter()
        .map(|v| (v.value.as_str(), v.actor.clone(), v.at))
        .collect();
    assert_eq!(
        vals,
        [
            ("12", Some(hex("tablet-a")), Some(T0 + HOUR)),
            ("15", Some(hex("tablet-b")), Some(T0 + 2 * HOUR)),
        ]
    );
    conflicts::resolve_forecast(&mut b, &net, "2026-04", "SDN-A", 13, "boss", T0 + 3 * HOUR)
        .unwrap();
    a.merge(&mut b).unwrap();
    assert!(detect1("sr-1", &a).is_empty());
    let read = SiteDocument::read(&a).unwrap();
    assert_eq!(read.forecasts["2026-04"]["SDN-A"].quantity, 13);
}

#[test]
fn a_month_created_on_two_devices_hides_no_forecast_silently() {
    let (_, net) = network();
    let mut base = site("sr-1");
    let mut a = device(&mut base, "tablet-a");
    let mut b = device(&mut base, "tablet-b");
    // Both devices create the month 2026-05, each with a different model.
    domain::set_forecast(&mut a, &net, "2026-05", "SDN-A", 7, "wang", T0).unwrap();
    domain::set_forecast(&mut b, &net, "2026-05", "SUV-B", 2, "li", T0).unwrap();
    a.merge(&mut b).unwrap();
    let found = detect1("sr-1", &a);
    assert_eq!(found.len(), 1, "{found:#?}");
    let c = &found[0];
    assert_eq!(c.kind, ConflictKind::ForecastEdit);
    assert!(c.values.iter().all(|v| v.hidden));
    assert!(c.summary.contains("hidden"), "{}", c.summary);
    let model = if c.records[0].ends_with("SDN-A") {
        "SDN-A"
    } else {
        "SUV-B"
    };
    let hidden_q: i64 = c.values[0].value.parse().unwrap();
    // Setting the hidden cell rewrites the month and keeps the visible cell too.
    conflicts::resolve_forecast(&mut a, &net, "2026-05", model, hidden_q, "boss", T0).unwrap();
    b.merge(&mut a).unwrap();
    assert!(detect1("sr-1", &b).is_empty());
    let read = SiteDocument::read(&b).unwrap();
    assert_eq!(read.forecasts["2026-05"]["SDN-A"].quantity, 7);
    assert_eq!(read.forecasts["2026-05"]["SUV-B"].quantity, 2);
}

#[test]
fn conflict_ids_are_stable_across_unrelated_edits() {
    let (mut base, net, vin) = showroom();
    let mut a = device(&mut base, "tablet-a");
    let mut b = device(&mut base, "tablet-b");
    domain::move_vehicle(
        &mut a,
        &vin,
        &VehicleAction::Reserve {
            customer: "c1".into(),
        },
        "w",
        T0,
    )
    .unwrap();
    domain::move_vehicle(
        &mut b,
        &vin,
        &VehicleAction::Reserve {
            customer: "c2".into(),
        },
        "l",
        T0,
    )
    .unwrap();
    a.merge(&mut b).unwrap();
    let before = detect1("sr-1", &a)[0].id.clone();
    domain::add_customer(&mut a, &net, &new_customer("c3", "13700001111"), "w", T0).unwrap();
    let after = detect1("sr-1", &a)[0].id.clone();
    assert_eq!(before, after);
    // A fresh load of the saved bytes (what another process sees) gives the same list.
    let loaded = automerge::Automerge::load(&a.save()).unwrap();
    assert_eq!(conflicts::detect(&[("sr-1", &loaded)]), detect1("sr-1", &a));
}

/// A transfer out on one tablet while another tablet of the same site reserves the car
/// for a customer: after the merge the site's status has two concurrent values. Whichever
/// automerge shows, the car is in stock at the receiving site and held here by the
/// hidden or visible reservation: a conflict, and resolving it here clears it.
#[test]
fn a_reservation_concurrent_with_a_transfer_out_is_found_whichever_value_wins() {
    for (t1, t2) in [("tablet-a", "tablet-z"), ("tablet-z", "tablet-a")] {
        let (mut showroom, net, vin) = showroom();
        let mut roadshow = AutoCommit::new().with_actor(ActorId::from(b"site-rs-1".to_vec()));
        domain::init_site_document(
            &mut roadshow,
            &header("rs-1", SiteKind::Roadshow, Some("dc-north")),
            T0,
        )
        .unwrap();
        let mut mover = device(&mut showroom, t1);
        let mut seller = device(&mut showroom, t2);
        domain::transfer_vehicle(
            &mut mover,
            &mut roadshow,
            &net,
            &vin,
            None,
            "wang",
            T0 + HOUR,
        )
        .unwrap();
        domain::move_vehicle(
            &mut roadshow,
            &vin,
            &VehicleAction::Arrive,
            "z",
            T0 + 2 * HOUR,
        )
        .unwrap();
        let reserve = VehicleAction::Reserve {
            customer: "c1".into(),
        };
        domain::move_vehicle(&mut seller, &vin, &reserve, "li", T0 + HOUR).unwrap();
        mover.merge(&mut seller).unwrap();
        seller.merge(&mut mover).unwrap();

        let found = conflicts::detect(&[("sr-1", &mover), ("rs-1", &roadshow)]);
        assert_eq!(
            found,
            conflicts::detect(&[("sr-1", &seller), ("rs-1", &roadshow)])
        );
        assert_eq!(found.len(), 1, "{t1}/{t2}: {found:#?}");
        let c = &found[0];
        assert_eq!(c.kind, ConflictKind::StockAtTwoSites);
        let here: Vec<(&str, &str, Option<&str>)> = c
            .values
            .iter()
            .filter(|v| v.site == "sr-1")
            .map(|v| (v.value.as_str(), v.field.as_str(), v.actor.as_deref()))
            .collect();
        assert_eq!(here, [("reserved", "status", Some(hex(t2).as_str()))]);

        conflicts::resolve_stock_elsewhere(&mut mover, &vin, "rs-1", "boss", T0 + 3 * HOUR)
            .unwrap_or_else(|e| panic!("{t1}/{t2}: {e}"));
        seller.merge(&mut mover).unwrap();
        for doc in [&mover, &seller] {
            assert!(conflicts::detect(&[("sr-1", doc), ("rs-1", &roadshow)]).is_empty());
            let v = domain::get_vehicle(doc, &vin).unwrap().unwrap();
            assert_eq!(
                (v.status, v.transfer_to.as_deref()),
                (VehicleStatus::TransferredOut, Some("rs-1"))
            );
        }
    }
}

#[test]
fn a_new_part_first_stocked_on_two_forks_is_a_collision_cleared_by_one_resolution() {
    let mut base = site("sr-1");
    let mut a = device(&mut base, "tablet-a");
    let mut b = device(&mut base, "tablet-b");
    domain::adjust_part(&mut a, "OIL-5W30", 5, "wang", T0 + HOUR).unwrap();
    domain::adjust_part(&mut b, "OIL-5W30", 7, "li", T0 + 2 * HOUR).unwrap();
    assert!(
        detect1("sr-1", &a).is_empty(),
        "no conflict before the merge"
    );
    a.merge(&mut b).unwrap();
    b.merge(&mut a).unwrap();

    let found = detect1("sr-1", &a);
    assert_eq!(found, detect1("sr-1", &b), "same list on both replicas");
    assert_eq!(found.len(), 1, "{found:#?}");
    let c = &found[0];
    assert_eq!(c.kind, ConflictKind::PartCountCollision);
    assert_eq!(c.records, ["part OIL-5W30".to_string()]);
    assert!(c.id.starts_with("part_count_collision-"), "{}", c.id);
    let mut seen: Vec<(String, String, Option<String>, Option<i64>)> = c
        .values
        .iter()
        .map(|v| (v.site.clone(), v.value.clone(), v.actor.clone(), v.at))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("sr-1".into(), "5".into(), Some(hex("tablet-a")), None),
            ("sr-1".into(), "7".into(), Some(hex("tablet-b")), None),
        ]
    );
    assert_eq!(c.values.iter().filter(|v| v.hidden).count(), 1);
    let shown = c.values.iter().find(|v| !v.hidden).unwrap();
    assert_eq!(
        shown.value,
        domain::part_count(&a, "OIL-5W30").unwrap().to_string(),
        "the unhidden value is what readers see"
    );

    // Refusals leave the document as it was.
    let heads = a.get_heads();
    let err = conflicts::resolve_part_count(&mut a, "OIL-5W30", -1, "boss", T0).unwrap_err();
    assert!(err.to_string().contains("cannot be negative"), "{err}");
    let err = conflicts::resolve_part_count(&mut a, "MAT-01", 3, "boss", T0).unwrap_err();
    assert!(err.to_string().contains("not stocked at sr-1"), "{err}");
    assert_eq!(a.get_heads(), heads, "a refused resolution changes nothing");
    assert_eq!(detect1("sr-1", &a), found);

    conflicts::resolve_part_count(&mut a, "OIL-5W30", 12, "boss", T0 + 3 * HOUR).unwrap();
    assert!(detect1("sr-1", &a).is_empty());
    assert_eq!(detect1("sr-1", &b).len(), 1, "b has not synced yet");
    b.merge(&mut a).unwrap();
    a.merge(&mut b).unwrap();
    for doc in [&a, &b] {
        assert!(detect1("sr-1", doc).is_empty());
        assert_eq!(domain::part_count(doc, "OIL-5W30").unwrap(), 12);
    }
    // The fresh counter is a counter: increments on both replicas add up again.
    domain::adjust_part(&mut a, "OIL-5W30", -2, "wang", T0 + 4 * HOUR).unwrap();
    domain::adjust_part(&mut b, "OIL-5W30", 3, "li", T0 + 4 * HOUR).unwrap();
    a.merge(&mut b).unwrap();
    assert_eq!(domain::part_count(&a, "OIL-5W30").unwrap(), 13);
    assert!(detect1("sr-1", &a).is_empty());
}

#[test]
fn concurrent_increments_of_a_part_created_once_are_not_a_conflict() {
    let mut base = site("sr-1");
    domain::adjust_part(&mut base, "OIL-5W30", 10, "wang", T0).unwrap();
    let mut a = device(&mut base, "tablet-a");
    let mut b = device(&mut base, "tablet-b");
    domain::adjust_part(&mut a, "OIL-5W30", -3, "wang", T0 + HOUR).unwrap();
    domain::adjust_part(&mut b, "OIL-5W30", 4, "li", T0 + HOUR).unwrap();
    a.merge(&mut b).unwrap();
    b.merge(&mut a).unwrap();
    assert!(detect1("sr-1", &a).is_empty());
    assert!(detect1("sr-1", &b).is_empty());
    assert_eq!(domain::part_count(&a, "OIL-5W30").unwrap(), 11);
    let err = conflicts::resolve_part_count(&mut a, "OIL-5W30", 11, "boss", T0).unwrap_err();
    assert!(err.to_string().contains("not a collision"), "{err}");
}

#[test]
fn an_adjustment_during_a_part_collision_moves_every_competing_count() {
    let mut base = site("sr-1");
    let mut a = device(&mut base, "tablet-a");
    let mut b = device(&mut base, "tablet-b");
    domain::adjust_part(&mut a, "MAT-01", 2, "wang", T0).unwrap();
    domain::adjust_part(&mut b, "MAT-01", 4, "li", T0).unwrap();
    a.merge(&mut b).unwrap();
    let before = detect1("sr-1", &a);
    domain::adjust_part(&mut a, "MAT-01", 1, "wang", T0 + HOUR).unwrap();
    let after = detect1("sr-1", &a);
    assert_eq!(after.len(), 1, "the collision is still listed: {after:#?}");
    let mut counts: Vec<&str> = after[0].values.iter().map(|v| v.value.as_str()).collect();
    counts.sort();
    assert_eq!(counts, ["3", "5"]);
    assert_ne!(
        before[0].id, after[0].id,
        "the id follows the competing values"
    );
}
