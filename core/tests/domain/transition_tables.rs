//! Every vehicle action and customer status pair against its table; part counters that would overflow.

use super::*;

/// A vehicle at `sr-1` walked to `status` through the operations themselves.
fn vehicle_in(status: VehicleStatus) -> (AutoCommit, NetworkDocument, String) {
    let (mut doc, net) = site_with_customer();
    let v = vin(40);
    let mut steps: Vec<VehicleAction> = Vec::new();
    use VehicleStatus::*;
    let path = [InTransit, InStock, Reserved, Sold, Delivered];
    let reached = match status {
        Ordered => 0,
        InTransit => 1,
        InStock | TransferredOut => 2,
        Reserved => 3,
        Sold => 4,
        Delivered => 5,
    };
    for s in &path[..reached] {
        steps.push(match s {
            InTransit => VehicleAction::Ship { eta: None },
            InStock => VehicleAction::Arrive,
            Reserved => VehicleAction::Reserve {
                customer: "c1".into(),
            },
            Sold => VehicleAction::Sell,
            _ => VehicleAction::Deliver,
        });
    }
    domain::receive_vehicle(&mut doc, &net, &new_vehicle(&v, Ordered), "wang", T0).unwrap();
    for (i, a) in steps.iter().enumerate() {
        domain::move_vehicle(&mut doc, v.as_str(), a, "li", T0 + (i as i64 + 1) * HOUR).unwrap();
    }
    if status == TransferredOut {
        let mut other = AutoCommit::new();
        domain::init_site_document(
            &mut other,
            &header("rs-1", SiteKind::Roadshow, Some("dc-north")),
            T0,
        )
        .unwrap();
        domain::transfer_vehicle(
            &mut doc,
            &mut other,
            &net,
            v.as_str(),
            None,
            "li",
            T0 + 9 * HOUR,
        )
        .unwrap();
    }
    assert_eq!(
        domain::get_vehicle(&doc, v.as_str())
            .unwrap()
            .unwrap()
            .status,
        status
    );
    (doc, net, v.to_string())
}

/// Each action applies from exactly one status (`Arrive` from two: ordered or in
/// transit): `Arrive` is not a way to release a
/// reservation (it would restart the days in stock and keep `reservedFor`), and
/// `Release` is not a way to take a vehicle still in transit into stock (it would have
/// no arrival date). Every other (status, action) pair is refused, leaving the document
/// unchanged.
#[test]
fn every_vehicle_action_applies_from_its_own_status_only() {
    use VehicleStatus::*;
    let actions = [
        (VehicleAction::Ship { eta: None }, Ordered),
        (VehicleAction::Arrive, InTransit),
        (
            VehicleAction::Reserve {
                customer: "c1".into(),
            },
            InStock,
        ),
        (VehicleAction::Release, Reserved),
        (VehicleAction::Sell, Reserved),
        (VehicleAction::Deliver, Sold),
    ];
    for &from in VehicleStatus::ALL {
        for (action, allowed_from) in &actions {
            let (mut doc, _, v) = vehicle_in(from);
            // `arrive` also takes an ordered vehicle whose shipment was never recorded.
            let arrives_ordered = matches!(action, VehicleAction::Arrive) && from == Ordered;
            assert_eq!(
                action.applies_from(from),
                from == *allowed_from || arrives_ordered
            );
            if from == *allowed_from || arrives_ordered {
                domain::move_vehicle(&mut doc, &v, action, "li", T0 + 20 * HOUR)
                    .unwrap_or_else(|e| panic!("{action:?} from {from}: {e}"));
                let got = domain::get_vehicle(&doc, &v).unwrap().unwrap();
                assert_eq!(got.status, action.target());
            } else {
                let msg = refused(&mut doc, |d| {
                    domain::move_vehicle(d, &v, action, "li", T0 + 20 * HOUR)
                });
                assert!(
                    msg.contains(&v) && msg.contains(from.as_str()),
                    "{action:?} from {from}: {msg}"
                );
            }
        }
        // A transfer leaves only from in_stock.
        let (mut doc, net, v) = vehicle_in(from);
        let mut other = AutoCommit::new();
        domain::init_site_document(
            &mut other,
            &header("rs-1", SiteKind::Roadshow, Some("dc-north")),
            T0,
        )
        .unwrap();
        let (before, other_before) = (doc.save(), other.save());
        let got =
            domain::transfer_vehicle(&mut doc, &mut other, &net, &v, None, "li", T0 + 20 * HOUR);
        if from == InStock {
            got.unwrap();
        } else {
            got.unwrap_err();
            assert!(doc.save() == before && other.save() == other_before);
        }
    }
}

/// The funnel table of docs/schema.md, pair by pair, through the operation itself.
#[test]
fn every_customer_status_pair_follows_the_funnel_table() {
    use CustomerStatus::*;
    let order = [Lead, TestDrive, Negotiating, Ordered, Delivered];
    let rank = |s| order.iter().position(|o| *o == s);
    for &from in CustomerStatus::ALL {
        for &to in CustomerStatus::ALL {
            let expected = match (from, to) {
                (Lost, Lead) => true,
                (Lost, _) => false,
                (_, Lost) => true,
                (Ordered, Delivered) => true,
                (_, Delivered) => false,
                _ => rank(to) > rank(from),
            };
            let (mut doc, _) = site_with_customer();
            // Walk the customer to `from` the ordinary way.
            let walk: &[CustomerStatus] = match from {
                Lead => &[],
                TestDrive => &[TestDrive],
                Negotiating => &[Negotiating],
                Ordered => &[Ordered],
                Delivered => &[Ordered, Delivered],
                Lost => &[Lost],
            };
            for s in walk {
                domain::set_customer_status(&mut doc, "c1", *s, "wang", T0).unwrap();
            }
            if expected {
                domain::set_customer_status(&mut doc, "c1", to, "wang", T0)
                    .unwrap_or_else(|e| panic!("{from} -> {to}: {e}"));
                assert_eq!(
                    domain::get_customer(&doc, "c1").unwrap().unwrap().status,
                    to
                );
            } else {
                let msg = refused(&mut doc, |d| {
                    domain::set_customer_status(d, "c1", to, "wang", T0)
                });
                assert_eq!(msg, format!("customer c1 cannot move from {from} to {to}"));
            }
        }
    }
}

/// A change so large that the count would overflow is refused with a typed error, not
/// a panic (or, in a release build, a count that wraps to a large negative number).
#[test]
fn a_part_change_that_would_overflow_is_refused() {
    let mut doc = site("sr-1");
    domain::adjust_part(&mut doc, "OIL-5W30", 5, "wang", T0).unwrap();
    let msg = refused(&mut doc, |d| {
        domain::adjust_part(d, "OIL-5W30", i64::MAX, "wang", T0)
    });
    assert!(msg.contains("OIL-5W30"), "{msg}");
    assert_eq!(domain::part_count(&doc, "OIL-5W30").unwrap(), 5);
}
