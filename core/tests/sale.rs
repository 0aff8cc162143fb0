//! The sales floor: a vehicle and its customer are one sale (sell and deliver record
//! the customer's order and delivery in the same change, counted once by the KPIs), and
//! stock arrival (ordered and in-transit vehicles, incoming transfers too).

mod common;

use automerge::AutoCommit;
use common::*;
use dealersync_core::access::Role;
use dealersync_core::domain::{self, NewEvent, Sale, VehicleAction};
use dealersync_core::reports::{self, KpiLevel};
use dealersync_core::schema::{
    CustomerStatus, EventKind, NetworkDocument, Period, SiteDocument, SiteKind, VehicleStatus,
};

/// Site `sr-1` with customers c1 and c2 and vehicle 7 in stock.
fn floor() -> (AutoCommit, NetworkDocument, String) {
    let (_, net) = network();
    let mut doc = site("sr-1");
    for (id, phone) in [("c1", "138 1234 5678"), ("c2", "139 8765 4321")] {
        domain::add_customer(&mut doc, &net, &new_customer(id, phone), "wang", T0).unwrap();
    }
    let v = vin(7);
    domain::receive_vehicle(
        &mut doc,
        &net,
        &new_vehicle(&v, VehicleStatus::InStock),
        "wang",
        T0,
    )
    .unwrap();
    (doc, net, v.to_string())
}

fn customer(doc: &AutoCommit, id: &str) -> dealersync_core::schema::Customer {
    domain::get_customer(doc, id).unwrap().unwrap()
}

fn reserve(doc: &mut AutoCommit, v: &str, c: &str, at: i64) {
    let a = VehicleAction::Reserve { customer: c.into() };
    domain::move_vehicle(doc, v, &a, "li", at).unwrap();
}

#[test]
fn selling_a_reserved_vehicle_records_the_order_on_its_customer_in_the_same_change() {
    let (mut doc, _, v) = floor();
    reserve(&mut doc, &v, "c1", T0 + HOUR);
    assert!(
        customer(&doc, "c1").events.is_empty(),
        "a hold is not an order"
    );
    one_change(&mut doc, |d| {
        domain::move_vehicle(d, &v, &VehicleAction::Sell, "li", T0 + 2 * HOUR)
    });
    let c = customer(&doc, "c1");
    assert_eq!(c.status, CustomerStatus::Ordered);
    let [order] = c.events.as_slice() else {
        panic!("one event: {:?}", c.events)
    };
    assert_eq!(
        (order.kind, order.at, order.by.as_str()),
        (EventKind::Order, T0 + 2 * HOUR, "li")
    );
    assert_eq!(
        (order.amount, order.vin.as_deref()),
        (Some(15_000_000), Some(v.as_str())),
        "the list price by default"
    );
}

#[test]
fn selling_from_stock_reserves_and_sells_at_the_agreed_price_in_one_change() {
    let (mut doc, net, v) = floor();
    let sale = Sale {
        customer: Some("c2".into()),
        price: Some(14_200_000),
    };
    one_change(&mut doc, |d| {
        domain::sell_vehicle(d, &net, &v, &sale, "li", Role::Consultant, T0 + HOUR)
    });
    let got = domain::get_vehicle(&doc, &v).unwrap().unwrap();
    assert_eq!(got.status, VehicleStatus::Sold);
    assert_eq!(
        (got.reserved_for.as_deref(), got.sold_to.as_deref()),
        (Some("c2"), Some("c2"))
    );
    let c = customer(&doc, "c2");
    assert_eq!(c.events.len(), 1);
    assert_eq!(c.events[0].amount, Some(14_200_000));
    assert!(customer(&doc, "c1").events.is_empty());
}

#[test]
fn sale_refusals_leave_the_document_unchanged() {
    let (mut doc, net, v) = floor();
    let to = |c: Option<&str>, price| Sale {
        customer: c.map(Into::into),
        price,
    };
    let msg = refused(&mut doc, |d| {
        domain::sell_vehicle(d, &net, &v, &to(None, None), "li", Role::Consultant, T0)
    });
    assert!(msg.contains("name the customer"), "{msg}");
    let msg = refused(&mut doc, |d| {
        domain::sell_vehicle(
            d,
            &net,
            &v,
            &to(Some("ghost"), None),
            "li",
            Role::Consultant,
            T0,
        )
    });
    assert_eq!(msg, "unknown customer \"ghost\" at this site");
    let msg = refused(&mut doc, |d| {
        domain::sell_vehicle(
            d,
            &net,
            &v,
            &to(Some("c1"), Some(-1)),
            "li",
            Role::Consultant,
            T0,
        )
    });
    assert!(msg.contains("cannot be negative"), "{msg}");
    reserve(&mut doc, &v, "c1", T0);
    let msg = refused(&mut doc, |d| {
        domain::sell_vehicle(
            d,
            &net,
            &v,
            &to(Some("c2"), None),
            "li",
            Role::Consultant,
            T0,
        )
    });
    assert!(msg.contains("reserved for customer c1"), "{msg}");
    domain::merge_customer(&mut doc, "c1", "c2", "wang", T0).unwrap();
    let msg = refused(&mut doc, |d| {
        domain::move_vehicle(d, &v, &VehicleAction::Sell, "li", T0)
    });
    assert!(msg.contains("merged into \"c2\""), "{msg}");
}

#[test]
fn delivering_records_the_delivery_on_the_customer_in_the_same_change() {
    let (mut doc, _, v) = floor();
    reserve(&mut doc, &v, "c1", T0);
    domain::move_vehicle(&mut doc, &v, &VehicleAction::Sell, "li", T0 + HOUR).unwrap();
    one_change(&mut doc, |d| {
        domain::move_vehicle(d, &v, &VehicleAction::Deliver, "zhao", T0 + 30 * HOUR)
    });
    let c = customer(&doc, "c1");
    assert_eq!(c.status, CustomerStatus::Delivered);
    let kinds: Vec<_> = c.events.iter().map(|e| (e.kind, e.at)).collect();
    assert_eq!(
        kinds,
        [
            (EventKind::Order, T0 + HOUR),
            (EventKind::Delivery, T0 + 30 * HOUR)
        ]
    );
    assert_eq!(c.events[1].vin.as_deref(), Some(v.as_str()));
}

#[test]
fn a_delivery_event_is_the_vehicles_delivery_or_refused() {
    let (mut doc, net, v) = floor();
    let delivery = |vin: Option<&str>, at| NewEvent {
        vin: vin.map(|s| domain::parse_vin(s, Default::default()).unwrap()),
        ..NewEvent::new(EventKind::Delivery, at)
    };
    // Still in stock: not sold to anyone.
    let msg = refused(&mut doc, |d| {
        domain::record_event(d, "c1", &delivery(Some(&v), T0), "li", T0)
    });
    assert_eq!(
        msg,
        format!(
            "invalid delivery of vehicle {v} to customer c1: it is in_stock, not sold; sell it to the customer first"
        )
    );
    let msg = refused(&mut doc, |d| {
        domain::record_event(d, "c1", &delivery(None, T0), "li", T0)
    });
    assert!(msg.contains("names the vehicle"), "{msg}");
    let elsewhere = vin(8).to_string();
    let msg = refused(&mut doc, |d| {
        domain::record_event(d, "c1", &delivery(Some(&elsewhere), T0), "li", T0)
    });
    assert_eq!(msg, format!("unknown vehicle \"{elsewhere}\" at site sr-1"));
    // Sold to c2: not c1's delivery.
    let sale = Sale {
        customer: Some("c2".into()),
        price: None,
    };
    domain::sell_vehicle(&mut doc, &net, &v, &sale, "li", Role::Consultant, T0).unwrap();
    let msg = refused(&mut doc, |d| {
        domain::record_event(d, "c1", &delivery(Some(&v), T0), "li", T0)
    });
    assert!(msg.contains("it is sold to customer c2"), "{msg}");
    // c2's delivery, entered after the fact: the vehicle is delivered, at that time.
    let at = T0 + 5 * HOUR;
    let e = one_change(&mut doc, |d| {
        domain::record_event(d, "c2", &delivery(Some(&v), at), "li", T0 + 9 * HOUR)
    });
    assert_eq!((e.kind, e.at), (EventKind::Delivery, at));
    let got = domain::get_vehicle(&doc, &v).unwrap().unwrap();
    assert_eq!(
        (got.status, got.updated_at),
        (VehicleStatus::Delivered, T0 + 9 * HOUR)
    );
    // Once only.
    let msg = refused(&mut doc, |d| {
        domain::record_event(d, "c2", &delivery(Some(&v), at), "li", at)
    });
    assert!(msg.contains("already delivered"), "{msg}");
    let msg = refused(&mut doc, |d| {
        domain::move_vehicle(d, &v, &VehicleAction::Deliver, "li", at)
    });
    assert!(msg.contains("cannot move from delivered"), "{msg}");
    let _ = net;
}

/// A delivery recorded through the vehicle, and the same delivery typed as a customer
/// event on a second device offline, merge into two events naming one VIN: the KPIs
/// count one unit, at the order's price.
#[test]
fn a_delivery_is_counted_once() {
    let (mut doc, net, v) = floor();
    let march = Period::Month(2026, 3);
    let sale = Sale {
        customer: Some("c1".into()),
        price: Some(14_000_000),
    };
    domain::sell_vehicle(&mut doc, &net, &v, &sale, "li", Role::Consultant, T0 + HOUR).unwrap();
    let mut tablet = device(&mut doc, "tablet");
    domain::move_vehicle(&mut doc, &v, &VehicleAction::Deliver, "li", T0 + 48 * HOUR).unwrap();
    let typed = NewEvent {
        vin: Some(domain::parse_vin(&v, Default::default()).unwrap()),
        ..NewEvent::new(EventKind::Delivery, T0 + 47 * HOUR)
    };
    domain::record_event(&mut tablet, "c1", &typed, "li", T0 + 50 * HOUR).unwrap();
    doc.merge(&mut tablet).unwrap();
    let site = SiteDocument::read(&doc).unwrap();
    let deliveries = site.customers["c1"]
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Delivery)
        .count();
    assert_eq!(deliveries, 2, "both devices' events survive the merge");
    let report = reports::kpis(&net, &[&site], march).unwrap();
    let row = report
        .rows
        .iter()
        .find(|r| r.level == KpiLevel::Site && r.site == "sr-1")
        .unwrap();
    assert_eq!((row.orders, row.deliveries), (Some(1), Some(1)));
    assert_eq!(row.revenue, Some(14_000_000));
    let li = report
        .rows
        .iter()
        .find(|r| r.consultant.as_deref() == Some("li"))
        .unwrap();
    assert_eq!(li.deliveries, Some(1));
}

#[test]
fn ordered_and_in_transit_vehicles_arrive_into_stock() {
    let (mut doc, net, _) = floor();
    for (n, status) in [(20, VehicleStatus::Ordered), (21, VehicleStatus::InTransit)] {
        let v = vin(n);
        let mut nv = new_vehicle(&v, status);
        nv.eta = Some(T0 + 72 * HOUR);
        domain::receive_vehicle(&mut doc, &net, &nv, "wang", T0).unwrap();
        domain::move_vehicle(
            &mut doc,
            v.as_str(),
            &VehicleAction::Arrive,
            "li",
            T0 + 60 * HOUR,
        )
        .unwrap();
        let got = domain::get_vehicle(&doc, v.as_str()).unwrap().unwrap();
        assert_eq!(
            (got.status, got.arrived_at, got.eta),
            (VehicleStatus::InStock, Some(T0 + 60 * HOUR), None),
            "from {status}"
        );
    }
    // Every other status is refused, the document unchanged.
    for (n, status, want) in [
        (
            30,
            VehicleStatus::InStock,
            "cannot move from in_stock to in_stock",
        ),
        (
            31,
            VehicleStatus::Reserved,
            "arrive applies only to a vehicle that is ordered or in_transit",
        ),
    ] {
        let v = vin(n);
        domain::receive_vehicle(
            &mut doc,
            &net,
            &new_vehicle(&v, VehicleStatus::InStock),
            "wang",
            T0,
        )
        .unwrap();
        if status == VehicleStatus::Reserved {
            reserve(&mut doc, v.as_str(), "c1", T0);
        }
        let msg = refused(&mut doc, |d| {
            domain::move_vehicle(d, v.as_str(), &VehicleAction::Arrive, "li", T0)
        });
        assert!(msg.contains(want), "{msg}");
    }
}

#[test]
fn an_incoming_transfer_arrives_and_ages_from_its_arrival() {
    let (mut from, net, v) = floor();
    let mut to = AutoCommit::new();
    domain::init_site_document(
        &mut to,
        &header("rs-1", SiteKind::Roadshow, Some("dc-north")),
        T0,
    )
    .unwrap();
    let eta = T0 + 48 * HOUR;
    domain::transfer_vehicle(&mut from, &mut to, &net, &v, Some(eta), "li", T0 + HOUR).unwrap();
    let incoming = domain::get_vehicle(&to, &v).unwrap().unwrap();
    assert_eq!(
        (incoming.status, incoming.eta),
        (VehicleStatus::InTransit, Some(eta))
    );
    one_change(&mut to, |d| {
        domain::move_vehicle(d, &v, &VehicleAction::Arrive, "zhao", T0 + 40 * HOUR)
    });
    let site = SiteDocument::read(&to).unwrap();
    let now = T0 + 40 * HOUR + 10 * 24 * HOUR;
    let ageing = reports::ageing(&net, &[&site], now, &reports::StockParams::default()).unwrap();
    let days: Vec<Option<i64>> = ageing.rows.iter().map(|r| r.days_in_stock).collect();
    assert_eq!(days, [Some(10)]);
}

/// A delivery typed on the customer, from every vehicle status: only a vehicle sold to
/// that customer takes it; every other status is refused, the document unchanged.
#[test]
fn a_delivery_event_from_every_vehicle_status() {
    use VehicleStatus::*;
    for &status in VehicleStatus::ALL {
        let (mut doc, net, _) = floor();
        let v = vin(60);
        let received = match status {
            Ordered | InTransit => status,
            _ => InStock,
        };
        domain::receive_vehicle(&mut doc, &net, &new_vehicle(&v, received), "wang", T0).unwrap();
        let v = v.to_string();
        if matches!(status, Reserved | Sold | Delivered) {
            reserve(&mut doc, &v, "c1", T0);
        }
        if matches!(status, Sold | Delivered) {
            domain::move_vehicle(&mut doc, &v, &VehicleAction::Sell, "li", T0).unwrap();
        }
        if status == Delivered {
            domain::move_vehicle(&mut doc, &v, &VehicleAction::Deliver, "li", T0).unwrap();
        }
        if status == TransferredOut {
            let mut other = AutoCommit::new();
            domain::init_site_document(
                &mut other,
                &header("rs-1", SiteKind::Roadshow, Some("dc-north")),
                T0,
            )
            .unwrap();
            domain::transfer_vehicle(&mut doc, &mut other, &net, &v, None, "li", T0).unwrap();
        }
        assert_eq!(
            domain::get_vehicle(&doc, &v).unwrap().unwrap().status,
            status
        );
        let event = NewEvent {
            vin: Some(domain::parse_vin(&v, Default::default()).unwrap()),
            ..NewEvent::new(EventKind::Delivery, T0 + HOUR)
        };
        if status == Sold {
            one_change(&mut doc, |d| {
                domain::record_event(d, "c1", &event, "li", T0 + HOUR)
            });
            let got = domain::get_vehicle(&doc, &v).unwrap().unwrap();
            assert_eq!(got.status, Delivered);
        } else {
            let msg = refused(&mut doc, |d| {
                domain::record_event(d, "c1", &event, "li", T0 + HOUR)
            });
            assert!(msg.contains(&v), "{status}: {msg}");
        }
    }
}
