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
