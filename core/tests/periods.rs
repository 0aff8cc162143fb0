//! Bounded site documents (issue 14): carrying a site's open work into a new period's
//! working document, and reading the archive and the working document back together.

mod common;

use automerge::AutoCommit;
use common::*;
use dealersync_core::access::Role;
use dealersync_core::domain::{
    self, NewEvent, PeriodDocument, Sale, VehicleAction, customer_is_open, vehicle_is_open,
};
use dealersync_core::reports::SiteAggregate;
use dealersync_core::schema::{
    CustomerStatus, EventKind, NetworkDocument, Period, SiteDocument, VehicleStatus,
};
use dealersync_core::time::DAY_MS;

/// 2026-04-01 00:00 CST: the second period starts.
const APRIL: i64 = T0 + 31 * DAY_MS;

/// March at a showroom: 30 customers with events, some sold and delivered, some lost,
/// vehicles in stock, parts, forecasts for March and April, a target.
fn march(doc: &mut AutoCommit, net: &NetworkDocument) {
    for v in 1..=12 {
        domain::receive_vehicle(
            doc,
            net,
            &new_vehicle(&vin(v), VehicleStatus::InStock),
            "li",
            T0,
        )
        .unwrap();
    }
    for i in 1..=30u32 {
        let now = T0 + i64::from(i) * DAY_MS / 2;
        let id = format!("c-{i}");
        domain::add_customer(
            doc,
            net,
            &new_customer(&id, &format!("1381234{i:04}")),
            "wang",
            now,
        )
        .unwrap();
        domain::record_event(doc, &id, &NewEvent::new(EventKind::Visit, now), "wang", now).unwrap();
        if i % 3 == 0 {
            domain::record_event(doc, &id, &NewEvent::new(EventKind::Call, now), "wang", now)
                .unwrap();
        }
        match i % 5 {
            0 => {
                let v = vin(i / 5);
                let sale = Sale {
                    customer: Some(id.clone()),
                    price: None,
                };
                domain::sell_vehicle(doc, net, v.as_str(), &sale, "wang", Role::Consultant, now)
                    .unwrap();
                domain::move_vehicle(doc, v.as_str(), &VehicleAction::Deliver, "wang", now)
                    .unwrap();
            }
            1 => domain::set_customer_status(doc, &id, CustomerStatus::Lost, "wang", now).unwrap(),
            2 => domain::set_customer_status(doc, &id, CustomerStatus::Negotiating, "wang", now)
                .unwrap(),
            _ => {}
        }
    }
    domain::adjust_part(doc, "OIL-5W30", 40, "li", T0).unwrap();
    domain::adjust_part(doc, "OIL-5W30", -7, "li", T0 + DAY_MS).unwrap();
    domain::set_forecast(doc, net, "2026-03", "SDN-A", 9, "wang", T0).unwrap();
    domain::set_forecast(doc, net, "2026-04", "SDN-A", 11, "wang", T0 + 20 * DAY_MS).unwrap();
}

/// April: the open customers worked on, a carried vehicle sold, new customers, parts.
fn april(doc: &mut AutoCommit, net: &NetworkDocument) {
    let now = APRIL + DAY_MS;
    domain::record_event(
        doc,
        "c-3",
        &NewEvent::new(EventKind::TestDrive, now),
        "wang",
        now,
    )
    .unwrap();
    let sale = Sale {
        customer: Some("c-4".into()),
        price: Some(14_500_000),
    };
    domain::sell_vehicle(
        doc,
        net,
        vin(11).as_str(),
        &sale,
        "wang",
        Role::Consultant,
        now,
    )
    .unwrap();
    domain::add_customer(doc, net, &new_customer("c-40", "13812349999"), "wang", now).unwrap();
    domain::record_event(
        doc,
        "c-40",
        &NewEvent::new(EventKind::Visit, now),
        "wang",
        now,
    )
    .unwrap();
    domain::set_customer_status(doc, "c-8", CustomerStatus::Lost, "wang", now).unwrap();
    domain::adjust_part(doc, "OIL-5W30", -3, "li", now).unwrap();
}

fn read(doc: &AutoCommit) -> SiteDocument {
    SiteDocument::read(doc).unwrap()
}

#[test]
fn carry_over_keeps_every_open_customer_and_vehicle_and_starts_a_short_history() {
    let (_, net) = network();
    let mut old = site("sr-1");
    march(&mut old, &net);
    let before = read(&old);

    let mut new = domain::carry_over(&old, "2026-04", APRIL).unwrap();
    let after = read(&new);
    assert_eq!(after.site, before.site);

    let open: Vec<_> = before
        .customers
        .values()
        .filter(|c| customer_is_open(c.status, c.merged_into.as_deref()))
        .collect();
    assert!(!open.is_empty() && open.len() < before.customers.len());
    assert_eq!(after.customers.len(), open.len());
    for c in open {
        assert_eq!(
            after.customers.get(&c.id),
            Some(c),
            "{} carried with its events",
            c.id
        );
    }
    let on_books: Vec<_> = before
        .vehicles
        .values()
        .filter(|v| vehicle_is_open(v.status))
        .collect();
    assert!(!on_books.is_empty() && on_books.len() < before.vehicles.len());
    assert_eq!(after.vehicles.len(), on_books.len());
    for v in on_books {
        assert_eq!(after.vehicles.get(&v.vin), Some(v));
    }
    assert_eq!(domain::part_count(&new, "OIL-5W30").unwrap(), 33);
    assert_eq!(
        after.forecasts.keys().collect::<Vec<_>>(),
        ["2026-04"],
        "March's forecast stays in the archive"
    );

    let header = domain::period_header(&new)
        .unwrap()
        .expect("a period header");
    assert_eq!(header.month, "2026-04");
    assert_eq!(header.carried_events.get("c-3"), Some(&2));
    assert!(domain::period_header(&old).unwrap().is_none());

    // The history is a handful of changes, not March's hundreds.
    let march_changes = old.get_changes(&[]).len();
    let carried_changes = new.get_changes(&[]).len();
    assert!(march_changes > 100, "{march_changes}");
    assert!(carried_changes <= 2, "{carried_changes}");

    // A part count is still a counter: an adjustment adds to it.

    assert_eq!(
        domain::adjust_part(&mut new, "OIL-5W30", -3, "li", APRIL).unwrap(),
        30
    );
}

#[test]
fn many_open_customers_are_carried_in_bounded_changes() {
    let (_, net) = network();
    let mut old = site("sr-1");
    let n = domain::CARRY_CUSTOMERS_PER_CHANGE * 2 + 17;
    for i in 0..n {
        let id = format!("c-{i}");
        domain::add_customer(
            &mut old,
            &net,
            &new_customer(&id, &format!("1390000{i:04}")),
            "wang",
            T0,
        )
        .unwrap();
    }
    let mut new = domain::carry_over(&old, "2026-04", APRIL).unwrap();
    assert_eq!(read(&new).customers.len(), n);
    let changes = new.get_changes(&[]);
    assert_eq!(
        changes.len(),
        1 + 3,
        "the header, then three batches of customers"
    );
    let largest = changes.iter().map(|c| c.len()).max().unwrap();
    assert!(
        (largest as u64) < dealersync_core::protocol::SyncLimits::default().max_change_ops,
        "{largest} operations in one change"
    );
}

#[test]
fn archive_and_working_document_read_as_the_unarchived_site() {
    let (_, net) = network();
    // The same operations on one document that keeps everything ...
    let mut whole = site("sr-1");
    march(&mut whole, &net);
    april(&mut whole, &net);
    // ... and on a March archive plus an April working document.
    let mut archive = site("sr-1");
    march(&mut archive, &net);
    let mut working = domain::carry_over(&archive, "2026-04", APRIL).unwrap();
    april(&mut working, &net);

    let chain = [
        PeriodDocument::read(&archive).unwrap(),
        PeriodDocument::read(&working).unwrap(),
    ];
    let combined = domain::combine_periods(&chain).unwrap();
    assert_eq!(combined, read(&whole));

    // So every report reads the same figures, in either month.
    for month in ["2026-03", "2026-04"] {
        let period: Period = month.parse().unwrap();
        let expected = SiteAggregate::compute(&read(&whole), period).unwrap();
        assert_eq!(SiteAggregate::compute(&combined, period).unwrap(), expected);
    }
    // The working document alone knows April's work on carried customers.
    let w = read(&working);
    assert_eq!(w.customers["c-3"].events.len(), 3);
    assert_eq!(w.vehicles[vin(11).as_str()].status, VehicleStatus::Sold);
    assert!(
        !w.customers.contains_key("c-5"),
        "delivered in March: archive only"
    );
}

#[test]
fn an_event_written_late_into_the_archive_is_not_lost() {
    let (_, net) = network();
    let mut archive = site("sr-1");
    march(&mut archive, &net);
    // A phone offline over the month's end still writes to the March document.
    let mut late_phone = device(&mut archive, "late-phone");
    let mut working = domain::carry_over(&archive, "2026-04", APRIL).unwrap();
    let late = APRIL + 2 * DAY_MS;
    domain::record_event(
        &mut late_phone,
        "c-3",
        &NewEvent::new(EventKind::Call, late),
        "zhao",
        late,
    )
    .unwrap();
    archive.merge(&mut late_phone).unwrap();
    april(&mut working, &net);

    let chain = [
        PeriodDocument::read(&archive).unwrap(),
        PeriodDocument::read(&working).unwrap(),
    ];
    let combined = domain::combine_periods(&chain).unwrap();
    let kinds: Vec<_> = combined.customers["c-3"]
        .events
        .iter()
        .map(|e| (e.kind, e.by.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            (EventKind::Visit, "wang"),
            (EventKind::Call, "wang"),
            (EventKind::Call, "zhao"),
            (EventKind::TestDrive, "wang"),
        ]
    );
}

#[test]
fn a_period_must_start_after_the_one_it_follows() {
    let (_, net) = network();
    let mut old = site("sr-1");
    march(&mut old, &net);
    let april = domain::carry_over(&old, "2026-04", APRIL).unwrap();
    for month in ["2026-04", "2026-03", "April"] {
        assert!(
            domain::carry_over(&april, month, APRIL).is_err(),
            "{month} accepted"
        );
    }
    let may = domain::carry_over(&april, "2026-05", APRIL + 30 * DAY_MS).unwrap();
    assert_eq!(
        domain::period_header(&may).unwrap().unwrap().month,
        "2026-05"
    );
}

#[test]
fn combining_refuses_another_sites_document() {
    let (_, net) = network();
    let mut a = site("sr-1");
    march(&mut a, &net);
    let b = site("rs-1");
    let chain = [
        PeriodDocument::read(&a).unwrap(),
        PeriodDocument::read(&b).unwrap(),
    ];
    assert!(domain::combine_periods(&chain).is_err());
    assert!(domain::combine_periods(&[]).is_err());
}

#[test]
fn the_network_document_names_each_sites_chain_and_current_document() {
    let (mut net_doc, _) = network();
    assert_eq!(domain::site_chain(&net_doc, "sr-1").unwrap(), vec![]);
    assert_eq!(
        domain::current_site_document(&net_doc, "sr-1").unwrap(),
        None
    );
    let chain = vec![
        domain::PeriodLink {
            month: None,
            document: "first".into(),
        },
        domain::PeriodLink {
            month: Some("2026-04".into()),
            document: "april".into(),
        },
    ];
    domain::put_site_chain(&mut net_doc, "sr-1", &chain, "registry", APRIL).unwrap();
    let heads = net_doc.get_heads();
    domain::put_site_chain(&mut net_doc, "sr-1", &chain, "registry", APRIL).unwrap();
    assert_eq!(
        net_doc.get_heads(),
        heads,
        "the same chain again writes nothing"
    );
    // A rename by the registry rewrites the header's own fields: the chain stays.
    let mut renamed = header(
        "sr-1",
        dealersync_core::schema::SiteKind::Showroom,
        Some("dc-north"),
    );
    renamed.name = "城东展厅".into();
    domain::put_site(&mut net_doc, &renamed, "registry", APRIL).unwrap();
    assert_eq!(domain::site_chain(&net_doc, "sr-1").unwrap(), chain);
    assert_eq!(
        domain::current_site_document(&net_doc, "sr-1")
            .unwrap()
            .as_deref(),
        Some("april")
    );
    // Readers that know nothing of the chain read the header as before.
    let read = NetworkDocument::read(&net_doc).unwrap();
    assert_eq!(read.sites["sr-1"].name, "城东展厅");
    assert!(domain::put_site_chain(&mut net_doc, "nowhere", &chain, "registry", APRIL).is_err());
}

#[test]
fn an_archive_takes_late_changes_for_a_week_into_the_next_month() {
    assert_eq!(
        domain::archive_writable_until("2026-04").unwrap(),
        APRIL + 7 * DAY_MS
    );
    assert!(domain::archive_writable_until("April").is_err());
}

// ---------------------------------------------------------------------------
// Late changes forward: what a device offline over the month's end wrote into the
// archive, written into the working document (`domain::forward_late`).
// ---------------------------------------------------------------------------

/// A March archive, a phone that stays on it over the month's end, and the April
/// working document carried over while the phone was away.
fn month_end() -> (NetworkDocument, AutoCommit, AutoCommit, AutoCommit) {
    let (_, net) = network();
    let mut archive = site("sr-1");
    march(&mut archive, &net);
    let late_phone = device(&mut archive, "late-phone");
    let working = domain::carry_over(&archive, "2026-04", APRIL).unwrap();
    (net, archive, late_phone, working)
}

/// The phone's late work reaches the archive during its grace week.
fn hand_in(archive: &mut AutoCommit, late_phone: &mut AutoCommit) {
    archive.merge(late_phone).unwrap();
}

fn sell(doc: &mut AutoCommit, net: &NetworkDocument, v: u32, customer: &str, at: i64) {
    let sale = Sale {
        customer: Some(customer.into()),
        price: None,
    };
    domain::sell_vehicle(
        doc,
        net,
        vin(v).as_str(),
        &sale,
        "zhao",
        Role::Consultant,
        at,
    )
    .unwrap();
}

fn combined(archive: &AutoCommit, working: &AutoCommit) -> SiteDocument {
    let chain = [
        PeriodDocument::read(archive).unwrap(),
        PeriodDocument::read(working).unwrap(),
    ];
    domain::combine_periods(&chain).unwrap()
}

fn double_bookings(working: &AutoCommit) -> Vec<dealersync_core::conflicts::Conflict> {
    dealersync_core::conflicts::detect(&[("sr-1", working)])
        .into_iter()
        .filter(|c| c.kind == dealersync_core::conflicts::ConflictKind::DoubleBooking)
        .collect()
}

#[test]
fn a_customer_created_late_in_the_archive_reaches_the_working_document_once() {
    let (net, mut archive, mut late_phone, mut working) = month_end();
    let mut whole = archive.fork();
    let late = APRIL + 2 * DAY_MS;
    let add_late = |doc: &mut AutoCommit| {
        domain::add_customer(
            doc,
            &net,
            &new_customer("c-50", "13900005050"),
            "zhao",
            late,
        )
        .unwrap();
        for kind in [EventKind::Visit, EventKind::Call] {
            domain::record_event(doc, "c-50", &NewEvent::new(kind, late), "zhao", late).unwrap();
        }
        // Lost at once: stays in the archive.
        domain::add_customer(
            doc,
            &net,
            &new_customer("c-51", "13900005151"),
            "zhao",
            late,
        )
        .unwrap();
        domain::set_customer_status(doc, "c-51", CustomerStatus::Lost, "zhao", late).unwrap();
    };
    add_late(&mut late_phone);
    add_late(&mut whole);
    hand_in(&mut archive, &mut late_phone);
    april(&mut working, &net);
    april(&mut whole, &net);
    assert!(!read(&working).customers.contains_key("c-50"));
    let before = combined(&archive, &working);

    let done = domain::forward_late(&archive, &mut working, late).unwrap();
    assert_eq!(done.customers, ["c-50"]);
    assert!(done.vehicles.is_empty());
    let w = read(&working);
    assert_eq!(w.customers["c-50"], read(&archive).customers["c-50"]);
    assert!(
        !w.customers.contains_key("c-51"),
        "a lost customer stays behind"
    );
    assert_eq!(
        domain::period_header(&working)
            .unwrap()
            .unwrap()
            .carried_events["c-50"],
        2
    );

    // The reports read the same figures as before, and as the one unarchived document.
    let after = combined(&archive, &working);
    assert_eq!(after.customers["c-50"].events.len(), 2, "each event once");
    assert_eq!(after, read(&whole));
    for month in ["2026-03", "2026-04"] {
        let period: Period = month.parse().unwrap();
        assert_eq!(
            SiteAggregate::compute(&after, period).unwrap(),
            SiteAggregate::compute(&before, period).unwrap()
        );
    }

    // A second run writes nothing.
    let heads = working.get_heads();
    let again = domain::forward_late(&archive, &mut working, late + DAY_MS).unwrap();
    assert!(again.is_empty(), "{again:?}");
    assert_eq!(working.get_heads(), heads);
}

#[test]
fn a_late_sale_of_a_car_the_working_document_left_alone_is_applied() {
    let (net, mut archive, mut late_phone, mut working) = month_end();
    let late = APRIL + DAY_MS;
    sell(&mut late_phone, &net, 8, "c-2", late);
    hand_in(&mut archive, &mut late_phone);
    april(&mut working, &net);
    // Shadowed until forwarded: the working document's copy wins in the reports.
    assert_eq!(
        combined(&archive, &working).vehicles[vin(8).as_str()].status,
        VehicleStatus::InStock
    );

    let done = domain::forward_late(&archive, &mut working, late).unwrap();
    assert_eq!(done.vehicles, [vin(8).to_string()]);
    let car = &read(&working).vehicles[vin(8).as_str()];
    assert_eq!(car.status, VehicleStatus::Sold);
    assert_eq!(car.sold_to.as_deref(), Some("c-2"));
    assert_eq!(car, &read(&archive).vehicles[vin(8).as_str()]);
    assert!(double_bookings(&working).is_empty());
    assert_eq!(
        combined(&archive, &working).vehicles[vin(8).as_str()].status,
        VehicleStatus::Sold
    );
    // The working document's own work is untouched.
    assert_eq!(
        read(&working).vehicles[vin(11).as_str()].sold_to.as_deref(),
        Some("c-4")
    );

    // Idempotent, also after more April work and a device that synced the forward.
    let mut phone = device(&mut working, "april-phone");
    april_more(&mut phone, &net);
    working.merge(&mut phone).unwrap();
    let heads = working.get_heads();
    assert!(
        domain::forward_late(&archive, &mut working, late)
            .unwrap()
            .is_empty()
    );
    assert_eq!(working.get_heads(), heads);
}

/// More April work on a phone of the working document.
fn april_more(doc: &mut AutoCommit, net: &NetworkDocument) {
    let now = APRIL + 3 * DAY_MS;
    sell(doc, net, 12, "c-7", now);
}

#[test]
fn a_car_sold_late_in_the_archive_and_again_in_the_working_document_is_a_double_booking() {
    let (net, mut archive, mut late_phone, mut working) = month_end();
    let late = APRIL + DAY_MS;
    sell(&mut late_phone, &net, 9, "c-2", late);
    hand_in(&mut archive, &mut late_phone);
    // Someone who followed the carry-over sells the same car to another customer.
    sell(&mut working, &net, 9, "c-4", late + 1000);
    assert!(
        double_bookings(&working).is_empty(),
        "not seen per document"
    );

    let done = domain::forward_late(&archive, &mut working, late).unwrap();
    assert_eq!(done.vehicles, [vin(9).to_string()]);
    let found = double_bookings(&working);
    assert_eq!(found.len(), 1, "{found:?}");
    let customers: std::collections::BTreeSet<_> =
        found[0].values.iter().map(|v| v.value.as_str()).collect();
    assert_eq!(customers, ["c-2", "c-4"].into());

    // Resolved as any double booking; forwarding again does not bring it back.
    dealersync_core::conflicts::resolve_double_booking(
        &mut working,
        vin(9).as_str(),
        "c-2",
        "boss",
        late,
    )
    .unwrap();
    assert!(double_bookings(&working).is_empty());
    assert_eq!(
        read(&working).vehicles[vin(9).as_str()].sold_to.as_deref(),
        Some("c-2")
    );
    assert!(
        domain::forward_late(&archive, &mut working, late)
            .unwrap()
            .is_empty()
    );

    // The late phone keeps going: a further late change is forwarded on top of the
    // first forward, still concurrent with the working document's own edits.
    let mut late_phone = device(&mut archive, "late-phone-2");
    sell(&mut late_phone, &net, 10, "c-7", late + 2000);
    hand_in(&mut archive, &mut late_phone);
    let done = domain::forward_late(&archive, &mut working, late).unwrap();
    assert_eq!(done.vehicles, [vin(10).to_string()]);
    assert!(double_bookings(&working).is_empty());
}

#[test]
fn forwarding_needs_a_carried_over_working_document_of_the_same_site() {
    let (_, mut archive, _, mut working) = month_end();
    let mut not_carried = archive.fork();
    assert!(domain::forward_late(&archive, &mut not_carried, APRIL).is_err());
    let mut other = domain::carry_over(&site("rs-1"), "2026-04", APRIL).unwrap();
    assert!(domain::forward_late(&archive, &mut other, APRIL).is_err());
    let mut w = working.fork();
    assert!(
        domain::forward_late(&archive, &mut w, APRIL)
            .unwrap()
            .is_empty()
    );
}

/// Customers open at the end of March (`march`), who can book a car in either month.
const OPEN: [&str; 5] = ["c-2", "c-3", "c-4", "c-7", "c-8"];

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(8))]

    /// Whatever the late phone booked (nothing, a reservation or a sale) on each car
    /// still in stock, and whatever the working document sold: a car booked on one side
    /// only ends with that booking, a car booked on both sides for two customers is one
    /// double booking, the late customers arrive with their events counted once, and a
    /// second forward writes nothing.
    #[test]
    fn forwarding_any_late_bookings(
        late in proptest::collection::vec((0..3u8, 0..OPEN.len()), 6),
        now_sold in proptest::collection::vec(proptest::option::of(0..OPEN.len()), 6),
        new_customers in 0..3u32,
    ) {
        let (net, mut archive, mut late_phone, mut working) = month_end();
        let at = APRIL + DAY_MS;
        for i in 0..new_customers {
            let id = format!("c-6{i}");
            domain::add_customer(&mut late_phone, &net, &new_customer(&id, &format!("1390000610{i}")), "zhao", at)
                .unwrap();
        }
        for (k, (op, who)) in late.iter().enumerate() {
            let v = vin(7 + k as u32);
            match op {
                1 => {
                    let action = VehicleAction::Reserve { customer: OPEN[*who].into() };
                    domain::move_vehicle(&mut late_phone, v.as_str(), &action, "zhao", at).unwrap();
                }
                2 => sell(&mut late_phone, &net, 7 + k as u32, OPEN[*who], at),
                _ => {}
            }
        }
        hand_in(&mut archive, &mut late_phone);
        for (k, who) in now_sold.iter().enumerate() {
            if let Some(who) = who {
                sell(&mut working, &net, 7 + k as u32, OPEN[*who], at + 1000);
            }
        }
        let before = read(&working);

        let done = domain::forward_late(&archive, &mut working, at).unwrap();
        let (a, w) = (read(&archive), read(&working));
        let mut doubles = 0;
        for k in 0..6 {
            let v = vin(7 + k as u32);
            let (op, who) = late[k];
            proptest::prop_assert_eq!(done.vehicles.contains(&v.to_string()), op != 0);
            match (op, now_sold[k]) {
                (0, _) => proptest::prop_assert_eq!(&w.vehicles[v.as_str()], &before.vehicles[v.as_str()]),
                (_, None) => proptest::prop_assert_eq!(&w.vehicles[v.as_str()], &a.vehicles[v.as_str()]),
                (_, Some(other)) => doubles += usize::from(OPEN[who] != OPEN[other]),
            }
        }
        proptest::prop_assert_eq!(double_bookings(&working).len(), doubles);
        proptest::prop_assert_eq!(done.customers.len(), new_customers as usize);
        let all = combined(&archive, &working);
        for id in &done.customers {
            proptest::prop_assert_eq!(&w.customers[id], &a.customers[id]);
            proptest::prop_assert_eq!(&all.customers[id].events, &a.customers[id].events);
        }

        let heads = working.get_heads();
        proptest::prop_assert!(domain::forward_late(&archive, &mut working, at).unwrap().is_empty());
        proptest::prop_assert_eq!(working.get_heads(), heads);
    }
}
