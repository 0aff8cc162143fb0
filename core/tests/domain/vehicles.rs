//! Vehicles: VIN rules, the lifecycle, refusals, transfers that write both sites or neither.

use super::*;

#[test]
fn vins_are_validated_with_an_explicit_check_digit_policy() {
    let e = domain::parse_vin("LSVAB2BR0NM00000I", CheckDigitPolicy::Enforce).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid VIN \"LSVAB2BR0NM00000I\": character 'I' at position 17 is not allowed in a VIN (I, O and Q are never used)"
    );
    let good = vin(42);
    let mut wrong = good.as_str().to_string();
    let other = if wrong.as_bytes()[8] == b'5' {
        "6"
    } else {
        "5"
    };
    wrong.replace_range(8..9, other);
    let e = domain::parse_vin(&wrong, CheckDigitPolicy::Enforce).unwrap_err();
    assert!(
        e.to_string().contains("check digit at position 9 is"),
        "{e}"
    );
    assert_eq!(
        domain::parse_vin(&wrong, CheckDigitPolicy::Ignore)
            .unwrap()
            .as_str(),
        wrong
    );
    assert_eq!(CheckDigitPolicy::default(), CheckDigitPolicy::Enforce);
}

#[test]
fn a_vehicle_walks_its_lifecycle() {
    let (mut doc, net) = site_with_customer();
    let v = vin(1);
    let eta = T0 + 72 * HOUR;
    let mut nv = new_vehicle(&v, VehicleStatus::Ordered);
    nv.eta = Some(eta);
    let got = domain::receive_vehicle(&mut doc, &net, &nv, "wang", T0).unwrap();
    assert_eq!(
        (got.cost, got.list_price),
        (12_000_000, 15_000_000),
        "prices from the catalogue"
    );
    assert_eq!(got.eta, Some(eta));
    let steps = [
        (
            VehicleAction::Ship {
                eta: Some(eta + HOUR),
            },
            VehicleStatus::InTransit,
        ),
        (VehicleAction::Arrive, VehicleStatus::InStock),
        (
            VehicleAction::Reserve {
                customer: "c1".into(),
            },
            VehicleStatus::Reserved,
        ),
        (VehicleAction::Release, VehicleStatus::InStock),
        (
            VehicleAction::Reserve {
                customer: "c1".into(),
            },
            VehicleStatus::Reserved,
        ),
        (VehicleAction::Sell, VehicleStatus::Sold),
        (VehicleAction::Deliver, VehicleStatus::Delivered),
    ];
    for (i, (action, status)) in steps.iter().enumerate() {
        let now = T0 + (i as i64 + 1) * HOUR;
        domain::move_vehicle(&mut doc, v.as_str(), action, "li", now).unwrap();
        let got = domain::get_vehicle(&doc, v.as_str()).unwrap().unwrap();
        assert_eq!(got.status, *status, "after {action:?}");
        assert_eq!(got.updated_at, now);
    }
    let got = domain::get_vehicle(&doc, &v.as_str().to_lowercase())
        .unwrap()
        .unwrap();
    assert_eq!(got.arrived_at, Some(T0 + 2 * HOUR));
    assert_eq!(got.sold_to.as_deref(), Some("c1"));
    assert_eq!(got.reserved_for.as_deref(), Some("c1"));
    assert_eq!(got.consultant.as_deref(), Some("li"));
    assert_eq!(
        domain::list_vehicles(&doc, Some(VehicleStatus::Delivered))
            .unwrap()
            .len(),
        1
    );
    assert!(
        domain::list_vehicles(&doc, Some(VehicleStatus::InStock))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn vehicle_refusals_name_the_problem() {
    let (mut doc, net) = site_with_customer();
    let v = vin(2);
    domain::receive_vehicle(
        &mut doc,
        &net,
        &new_vehicle(&v, VehicleStatus::InStock),
        "wang",
        T0,
    )
    .unwrap();

    let msg = refused(&mut doc, |d| {
        domain::receive_vehicle(
            d,
            &net,
            &new_vehicle(&v, VehicleStatus::InStock),
            "wang",
            T0,
        )
    });
    assert_eq!(
        msg,
        format!("vehicle {v} is already at site sr-1 with status in_stock")
    );
    let mut nv = new_vehicle(&vin(3), VehicleStatus::InStock);
    nv.model = "MPV-Z".into();
    let msg = refused(&mut doc, |d| {
        domain::receive_vehicle(d, &net, &nv, "wang", T0)
    });
    assert_eq!(
        msg,
        format!(
            "unknown model \"MPV-Z\" in vehicle {}: not in the network catalogue",
            vin(3)
        )
    );
    let mut nv = new_vehicle(&vin(3), VehicleStatus::InStock);
    nv.trim = "sport".into();
    let msg = refused(&mut doc, |d| {
        domain::receive_vehicle(d, &net, &nv, "wang", T0)
    });
    assert_eq!(
        msg,
        "unknown trim \"sport\" for model SDN-A; the catalogue lists: base, lux"
    );
    let mut nv = new_vehicle(&vin(3), VehicleStatus::InStock);
    nv.cost = Some(-1);
    let msg = refused(&mut doc, |d| {
        domain::receive_vehicle(d, &net, &nv, "wang", T0)
    });
    assert_eq!(
        msg,
        format!("vehicle {} cost cannot be negative, got -1", vin(3))
    );
    let nv = new_vehicle(&vin(3), VehicleStatus::Sold);
    let msg = refused(&mut doc, |d| {
        domain::receive_vehicle(d, &net, &nv, "wang", T0)
    });
    assert_eq!(
        msg,
        format!(
            "invalid vehicle {} status: a vehicle is received as ordered, in_transit or in_stock, not sold",
            vin(3)
        )
    );

    let msg = refused(&mut doc, |d| {
        domain::move_vehicle(d, v.as_str(), &VehicleAction::Sell, "li", T0)
    });
    assert_eq!(
        msg,
        format!("vehicle {v} cannot move from in_stock to sold")
    );
    let msg = refused(&mut doc, |d| {
        domain::move_vehicle(d, v.as_str(), &VehicleAction::Arrive, "li", T0)
    });
    assert_eq!(
        msg,
        format!("vehicle {v} cannot move from in_stock to in_stock")
    );
    let reserve_ghost = VehicleAction::Reserve {
        customer: "ghost".into(),
    };
    let msg = refused(&mut doc, |d| {
        domain::move_vehicle(d, v.as_str(), &reserve_ghost, "li", T0)
    });
    assert_eq!(msg, "unknown customer \"ghost\" at this site");
    let other = vin(99);
    let msg = refused(&mut doc, |d| {
        domain::move_vehicle(d, other.as_str(), &VehicleAction::Deliver, "li", T0)
    });
    assert_eq!(msg, format!("unknown vehicle \"{other}\" at site sr-1"));
}

#[test]
fn a_transfer_writes_both_sites_or_neither() {
    let (_, net) = network();
    let mut from = site("sr-1");
    let mut to = {
        let mut d = AutoCommit::new().with_actor(automerge::ActorId::from(b"site-rs-1".to_vec()));
        domain::init_site_document(
            &mut d,
            &header("rs-1", SiteKind::Roadshow, Some("dc-north")),
            T0,
        )
        .unwrap();
        d
    };
    let v = vin(5);
    domain::receive_vehicle(
        &mut from,
        &net,
        &new_vehicle(&v, VehicleStatus::InStock),
        "wang",
        T0,
    )
    .unwrap();
    domain::transfer_vehicle(
        &mut from,
        &mut to,
        &net,
        v.as_str(),
        Some(T0 + 48 * HOUR),
        "wang",
        T0 + HOUR,
    )
    .unwrap();
    let out = domain::get_vehicle(&from, v.as_str()).unwrap().unwrap();
    assert_eq!(out.status, VehicleStatus::TransferredOut);
    assert_eq!(out.transfer_to.as_deref(), Some("rs-1"));
    let arriving = domain::get_vehicle(&to, v.as_str()).unwrap().unwrap();
    assert_eq!(arriving.status, VehicleStatus::InTransit);
    assert_eq!(arriving.transfer_from.as_deref(), Some("sr-1"));
    assert_eq!(arriving.eta, Some(T0 + 48 * HOUR));
    assert_eq!(
        (arriving.model.as_str(), arriving.cost),
        ("SDN-A", 12_000_000)
    );

    // A second transfer is refused and neither document changes.
    let (fb, tb) = (from.save(), to.save());
    let err = domain::transfer_vehicle(&mut from, &mut to, &net, v.as_str(), None, "wang", T0)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("vehicle {v} cannot move from transferred_out to transferred_out")
    );
    assert!(from.save() == fb && to.save() == tb);
    // The vehicle arrives and can go back: the old transferred_out record is replaced.
    domain::move_vehicle(
        &mut to,
        v.as_str(),
        &VehicleAction::Arrive,
        "zhao",
        T0 + 50 * HOUR,
    )
    .unwrap();
    domain::transfer_vehicle(
        &mut to,
        &mut from,
        &net,
        v.as_str(),
        None,
        "zhao",
        T0 + 60 * HOUR,
    )
    .unwrap();
    let back = domain::get_vehicle(&from, v.as_str()).unwrap().unwrap();
    assert_eq!(
        (back.status, back.transfer_to, back.transfer_from.as_deref()),
        (VehicleStatus::InTransit, None, Some("rs-1"))
    );
    // A document cannot transfer to itself.
    let mut copy = from.fork();
    domain::move_vehicle(
        &mut from,
        v.as_str(),
        &VehicleAction::Arrive,
        "wang",
        T0 + 70 * HOUR,
    )
    .unwrap();
    copy.merge(&mut from).unwrap();
    let err = domain::transfer_vehicle(&mut from, &mut copy, &net, v.as_str(), None, "wang", T0)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("invalid transfer of vehicle {v}: both documents are site sr-1")
    );
}
