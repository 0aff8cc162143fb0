//! Transfers between regions: a manager asks, head office approves or refuses in the
//! network document, the vehicle leaves only once approved, and the receiving site
//! takes it from the approval. Within a region a manager still moves it directly.

mod common;

use automerge::AutoCommit;
use common::*;
use dealersync_core::access::Role;
use dealersync_core::domain::{self, NewTransfer, VehicleAction};
use dealersync_core::reports::{self, TransferStatus};
use dealersync_core::schema::{
    NetworkDocument, SiteDocument, SiteKind, TransferVerdict, VehicleStatus,
};

struct World {
    net_doc: AutoCommit,
    north: AutoCommit,
    south: AutoCommit,
    vin: String,
}

/// sr-1 (region dc-north) holds a vehicle in stock; ag-s1 is in region dc-south.
fn world() -> World {
    let (net_doc, net) = two_regions();
    let mut north = site("sr-1");
    let south = site_under("ag-s1", SiteKind::Agent, "dc-south");
    let v = vin(41);
    domain::receive_vehicle(
        &mut north,
        &net,
        &new_vehicle(&v, VehicleStatus::InStock),
        "wang",
        T0,
    )
    .unwrap();
    World {
        net_doc,
        north,
        south,
        vin: v.as_str().to_string(),
    }
}

fn net(w: &World) -> NetworkDocument {
    NetworkDocument::read(&w.net_doc).unwrap()
}

fn ask(id: &str, vin: &str, to: &str) -> NewTransfer {
    NewTransfer {
        id: id.into(),
        vin: vin.into(),
        to: to.into(),
        note: Some("南区缺货".into()),
    }
}

#[test]
fn regions_are_the_distribution_centre_above_a_site() {
    let (_, net) = two_regions();
    assert_eq!(domain::region_of(&net, "sr-1").as_deref(), Some("dc-north"));
    assert_eq!(
        domain::region_of(&net, "dc-south").as_deref(),
        Some("dc-south")
    );
    assert_eq!(
        domain::region_of(&net, "ag-s1").as_deref(),
        Some("dc-south")
    );
    assert_eq!(domain::region_of(&net, "hq").as_deref(), Some("hq"));
    assert_eq!(domain::region_of(&net, "nowhere"), None);
}

#[test]
fn a_direct_transfer_between_regions_is_refused_and_nothing_moves() {
    let mut w = world();
    let n = net(&w);
    let (nb, sb) = (w.north.save(), w.south.save());
    let err = domain::transfer_vehicle(&mut w.north, &mut w.south, &n, &w.vin, None, "li", T0)
        .unwrap_err();
    assert!(err.to_string().contains("different regions"), "{err}");
    assert!(w.north.save() == nb && w.south.save() == sb);
}

#[test]
fn approved_transfer_moves_the_vehicle_in_four_steps() {
    let mut w = world();
    let vin = w.vin.clone();
    let n = net(&w);
    let req = one_change(&mut w.north, |d| {
        domain::request_transfer(d, &n, &ask("t1", &vin, "ag-s1"), "mgr.north", T0 + HOUR)
    });
    assert_eq!((req.from.as_str(), req.model.as_str()), ("sr-1", "SDN-A"));

    // Before approval the vehicle stays: dispatching and receiving are refused.
    let msg = refused(&mut w.north, |d| {
        domain::dispatch_transfer(d, &n, "t1", "mgr.north", T0 + 2 * HOUR)
    });
    assert!(msg.contains("has not approved it"), "{msg}");
    let msg = refused(&mut w.south, |d| {
        domain::receive_transfer(d, &n, "t1", None, "mgr.south", T0 + 2 * HOUR)
    });
    assert!(msg.contains("has not approved it"), "{msg}");

    let sender = SiteDocument::read(&w.north).unwrap();
    // A manager may not decide; head office may.
    let msg = refused(&mut w.net_doc, |d| {
        domain::decide_transfer(
            d,
            &sender,
            "t1",
            TransferVerdict::Approved,
            None,
            "mgr.north",
            Role::Manager,
            T0 + 3 * HOUR,
        )
    });
    assert!(msg.contains("head office does"), "{msg}");
    let decision = one_change(&mut w.net_doc, |d| {
        domain::decide_transfer(
            d,
            &sender,
            "t1",
            TransferVerdict::Approved,
            None,
            "zhou.min",
            Role::HeadOffice,
            T0 + 3 * HOUR,
        )
    });
    assert_eq!((decision.cost, decision.to.as_str()), (12_000_000, "ag-s1"));
    // Decided once.
    let msg = refused(&mut w.net_doc, |d| {
        domain::decide_transfer(
            d,
            &sender,
            "t1",
            TransferVerdict::Refused,
            Some("changed my mind"),
            "zhou.min",
            Role::HeadOffice,
            T0 + 4 * HOUR,
        )
    });
    assert!(msg.contains("already approved by zhou.min"), "{msg}");

    let n = net(&w);
    // The report before dispatch: approved, not yet sent.
    let north_doc = SiteDocument::read(&w.north).unwrap();
    let r = reports::transfers(&n, &[&north_doc]).unwrap();
    assert_eq!((r.pending, r.approved_not_sent), (0, 1));
    assert_eq!(r.rows[0].decided_by.as_deref(), Some("zhou.min"));

    one_change(&mut w.north, |d| {
        domain::dispatch_transfer(d, &n, "t1", "mgr.north", T0 + 5 * HOUR)
    });
    let out = domain::get_vehicle(&w.north, &vin).unwrap().unwrap();
    assert_eq!(out.status, VehicleStatus::TransferredOut);
    assert_eq!(out.transfer_to.as_deref(), Some("ag-s1"));
    let msg = refused(&mut w.north, |d| {
        domain::dispatch_transfer(d, &n, "t1", "mgr.north", T0 + 6 * HOUR)
    });
    assert!(msg.contains("already dispatched"), "{msg}");

    // The north site cannot take it in; the south site can, from the approval alone.
    let msg = refused(&mut w.north, |d| {
        domain::receive_transfer(d, &n, "t1", None, "mgr.north", T0 + 6 * HOUR)
    });
    assert!(msg.contains("goes to ag-s1"), "{msg}");
    let eta = T0 + 48 * HOUR;
    let v = one_change(&mut w.south, |d| {
        domain::receive_transfer(d, &n, "t1", Some(eta), "mgr.south", T0 + 6 * HOUR)
    });
    assert_eq!(
        (
            v.status,
            v.transfer_from.as_deref(),
            v.transfer_id.as_deref(),
            v.eta
        ),
        (
            VehicleStatus::InTransit,
            Some("sr-1"),
            Some("t1"),
            Some(eta)
        )
    );
    assert_eq!(
        (v.model.as_str(), v.trim.as_str(), v.cost),
        ("SDN-A", "lux", 12_000_000)
    );
    domain::move_vehicle(
        &mut w.south,
        &vin,
        &VehicleAction::Arrive,
        "mgr.south",
        T0 + 50 * HOUR,
    )
    .unwrap();

    let north_doc = SiteDocument::read(&w.north).unwrap();
    let south_doc = SiteDocument::read(&w.south).unwrap();
    let r = reports::transfers(&n, &[&north_doc, &south_doc]).unwrap();
    assert_eq!(r.rows.len(), 1);
    assert_eq!(r.rows[0].status, TransferStatus::Received);
    assert_eq!(r.rows[0].arrived_at, Some(T0 + 50 * HOUR));
    assert_eq!(r.rows[0].dispatched_at, Some(T0 + 5 * HOUR));
    // The receiving region's device holds only its own document: it still sees the
    // transfer, from the decision in the network document.
    let r = reports::transfers(&n, &[&south_doc]).unwrap();
    assert_eq!(r.rows[0].status, TransferStatus::Received);
    assert_eq!(r.rows[0].requested_by, None);
}

#[test]
fn a_refusal_needs_a_reason_and_keeps_the_vehicle() {
    let mut w = world();
    let vin = w.vin.clone();
    let n = net(&w);
    domain::request_transfer(&mut w.north, &n, &ask("t2", &vin, "ag-s1"), "mgr", T0).unwrap();
    let sender = SiteDocument::read(&w.north).unwrap();
    let decide = |d: &mut AutoCommit, note: Option<&str>| {
        domain::decide_transfer(
            d,
            &sender,
            "t2",
            TransferVerdict::Refused,
            note,
            "zhou.min",
            Role::HeadOffice,
            T0 + HOUR,
        )
    };
    let msg = refused(&mut w.net_doc, |d| decide(d, Some("  ")));
    assert!(msg.contains("say why"), "{msg}");
    decide(&mut w.net_doc, Some("北区自己要卖")).unwrap();
    let n = net(&w);
    let msg = refused(&mut w.north, |d| {
        domain::dispatch_transfer(d, &n, "t2", "mgr", T0 + 2 * HOUR)
    });
    assert_eq!(
        msg,
        "invalid transfer t2: refused by zhou.min: 北区自己要卖"
    );
    assert_eq!(
        domain::get_vehicle(&w.north, &vin).unwrap().unwrap().status,
        VehicleStatus::InStock
    );
    // A refused request is closed: the vehicle may be asked for again.
    domain::request_transfer(
        &mut w.north,
        &n,
        &ask("t3", &vin, "ag-s1"),
        "mgr",
        T0 + 3 * HOUR,
    )
    .unwrap();
    let north_doc = SiteDocument::read(&w.north).unwrap();
    let r = reports::transfers(&n, &[&north_doc]).unwrap();
    let statuses: Vec<_> = r.rows.iter().map(|r| (r.id.as_str(), r.status)).collect();
    assert_eq!(
        statuses,
        [
            ("t3", TransferStatus::Pending),
            ("t2", TransferStatus::Refused)
        ]
    );
    assert_eq!(r.pending, 1);
}

#[test]
fn requests_are_validated_before_anything_is_written() {
    let mut w = world();
    let held = w.vin.clone();
    let (other, v2) = (vin(99).as_str().to_string(), vin(42));
    let n = net(&w);
    let cases: Vec<(NewTransfer, &str)> = vec![
        (ask("a", &held, "rs-1"), "both in region dc-north"),
        (ask("a", &held, "sr-1"), "already at site sr-1"),
        (ask("a", &held, "mars"), "unknown site \"mars\""),
        (ask("a", &other, "ag-s1"), "unknown vehicle"),
        (ask("with space", &held, "ag-s1"), "cannot contain spaces"),
    ];
    for (new, expected) in cases {
        let msg = refused(&mut w.north, |d| {
            domain::request_transfer(d, &n, &new, "mgr", T0)
        });
        assert!(msg.contains(expected), "{msg} should say {expected}");
    }
    domain::request_transfer(&mut w.north, &n, &ask("t1", &held, "ag-s1"), "mgr", T0).unwrap();
    let msg = refused(&mut w.north, |d| {
        domain::request_transfer(d, &n, &ask("t2", &held, "ag-s1"), "mgr", T0)
    });
    assert!(msg.contains("request t1 to ag-s1 is still open"), "{msg}");
    // A reserved vehicle cannot be asked for.
    domain::add_customer(
        &mut w.north,
        &n,
        &new_customer("c1", "13800001111"),
        "wang",
        T0,
    )
    .unwrap();
    domain::receive_vehicle(
        &mut w.north,
        &n,
        &new_vehicle(&v2, VehicleStatus::InStock),
        "wang",
        T0,
    )
    .unwrap();
    domain::move_vehicle(
        &mut w.north,
        v2.as_str(),
        &VehicleAction::Reserve {
            customer: "c1".into(),
        },
        "wang",
        T0,
    )
    .unwrap();
    let msg = refused(&mut w.north, |d| {
        domain::request_transfer(d, &n, &ask("t9", v2.as_str(), "ag-s1"), "mgr", T0)
    });
    assert!(msg.contains("is reserved"), "{msg}");
}

#[test]
fn approval_of_a_vehicle_sold_meanwhile_is_refused() {
    let mut w = world();
    let vin = w.vin.clone();
    let n = net(&w);
    domain::request_transfer(&mut w.north, &n, &ask("t1", &vin, "ag-s1"), "mgr", T0).unwrap();
    domain::add_customer(
        &mut w.north,
        &n,
        &new_customer("c1", "13800001111"),
        "wang",
        T0,
    )
    .unwrap();
    domain::move_vehicle(
        &mut w.north,
        &vin,
        &VehicleAction::Reserve {
            customer: "c1".into(),
        },
        "wang",
        T0 + HOUR,
    )
    .unwrap();
    let sender = SiteDocument::read(&w.north).unwrap();
    let msg = refused(&mut w.net_doc, |d| {
        domain::decide_transfer(
            d,
            &sender,
            "t1",
            TransferVerdict::Approved,
            None,
            "zhou.min",
            Role::HeadOffice,
            T0 + 2 * HOUR,
        )
    });
    assert!(
        msg.contains("approving a transfer applies only to a vehicle that is in_stock"),
        "{msg}"
    );
}
