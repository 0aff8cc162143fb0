//! Discount limits: a sale above the seller's limit needs a manager's approval, asked
//! for as a discount request and recorded (who, when) on the sale.

mod common;

use automerge::AutoCommit;
use common::*;
use dealersync_core::access::Role;
use dealersync_core::domain::{self, DiscountDecision, DiscountState, DomainError, NewEvent, Sale};
use dealersync_core::schema::{EventKind, NetworkDocument, VehicleStatus};

/// The test network with limits: consultants 3,000 yuan, managers 10,000 yuan; site
/// `sr-1` with customer c1 and vehicle 7 (list price 150,000 yuan) in stock.
fn floor() -> (AutoCommit, NetworkDocument, String) {
    let (mut net_doc, _) = network();
    domain::set_discount_limit(&mut net_doc, "consultant", 300_000, "admin", T0).unwrap();
    domain::set_discount_limit(&mut net_doc, "manager", 1_000_000, "admin", T0).unwrap();
    let net = NetworkDocument::read(&net_doc).unwrap();
    let mut doc = site("sr-1");
    domain::add_customer(
        &mut doc,
        &net,
        &new_customer("c1", "138 1234 5678"),
        "wang",
        T0,
    )
    .unwrap();
    domain::add_customer(
        &mut doc,
        &net,
        &new_customer("c2", "139 8765 4321"),
        "wang",
        T0,
    )
    .unwrap();
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

fn sale(price: i64) -> Sale {
    Sale {
        customer: Some("c1".into()),
        price: Some(price),
    }
}

fn state(doc: &AutoCommit, v: &str) -> Option<DiscountState> {
    let c = domain::get_customer(doc, "c1").unwrap().unwrap();
    domain::discount_state(&c, v)
}

#[test]
fn a_discount_within_the_consultants_limit_needs_no_approval() {
    let (mut doc, net, v) = floor();
    domain::sell_vehicle(
        &mut doc,
        &net,
        &v,
        &sale(15_000_000 - 300_000),
        "li",
        Role::Consultant,
        T0,
    )
    .unwrap();
    let got = domain::get_vehicle(&doc, &v).unwrap().unwrap();
    assert_eq!(got.status, VehicleStatus::Sold);
    assert_eq!(got.discount_approved_by, None);
}

#[test]
fn a_discount_above_the_limit_is_requested_approved_and_recorded_on_the_sale() {
    let (mut doc, net, v) = floor();
    let price = 15_000_000 - 800_000;
    let msg = refused(&mut doc, |d| {
        domain::sell_vehicle(d, &net, &v, &sale(price), "li", Role::Consultant, T0)
    });
    assert!(
        msg.contains("800000 fen") && msg.contains("consultant limit of 300000 fen"),
        "{msg}"
    );
    assert!(msg.contains("request a discount"), "{msg}");

    domain::request_discount(&mut doc, "c1", &v, 800_000, "li", T0 + HOUR).unwrap();
    assert!(matches!(
        state(&doc, &v),
        Some(DiscountState::Pending {
            amount: 800_000,
            ..
        })
    ));
    let msg = refused(&mut doc, |d| {
        domain::sell_vehicle(d, &net, &v, &sale(price), "li", Role::Consultant, T0 + HOUR)
    });
    assert!(msg.contains("waiting for a manager"), "{msg}");
    // A consultant cannot approve, not even their own request.
    let msg = refused(&mut doc, |d| {
        domain::decide_discount(
            d,
            &net,
            "c1",
            &v,
            DiscountDecision::Approve,
            "li",
            Role::Consultant,
            T0,
        )
    });
    assert!(msg.contains("approved or refused by a manager"), "{msg}");

    domain::decide_discount(
        &mut doc,
        &net,
        "c1",
        &v,
        DiscountDecision::Approve,
        "zhang",
        Role::Manager,
        T0 + 2 * HOUR,
    )
    .unwrap();
    // More than approved is still refused; the approved discount sells.
    let msg = refused(&mut doc, |d| {
        domain::sell_vehicle(d, &net, &v, &sale(price - 1), "li", Role::Consultant, T0)
    });
    assert!(msg.contains("zhang approved 800000 fen, not more"), "{msg}");
    domain::sell_vehicle(
        &mut doc,
        &net,
        &v,
        &sale(price),
        "li",
        Role::Consultant,
        T0 + 3 * HOUR,
    )
    .unwrap();
    let got = domain::get_vehicle(&doc, &v).unwrap().unwrap();
    assert_eq!(
        (
            got.status,
            got.discount_approved_by.as_deref(),
            got.discount_approved_at
        ),
        (VehicleStatus::Sold, Some("zhang"), Some(T0 + 2 * HOUR))
    );
    let c = domain::get_customer(&doc, "c1").unwrap().unwrap();
    let kinds: Vec<_> = c.events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::DiscountRequest,
            EventKind::DiscountApproved,
            EventKind::Order
        ]
    );
    assert_eq!(c.events[2].amount, Some(price));
}

#[test]
fn a_refused_discount_does_not_sell_and_a_new_request_starts_again() {
    let (mut doc, net, v) = floor();
    domain::request_discount(&mut doc, "c1", &v, 500_000, "li", T0).unwrap();
    domain::decide_discount(
        &mut doc,
        &net,
        "c1",
        &v,
        DiscountDecision::Refuse,
        "zhang",
        Role::Manager,
        T0,
    )
    .unwrap();
    assert!(matches!(
        state(&doc, &v),
        Some(DiscountState::Refused { .. })
    ));
    let msg = refused(&mut doc, |d| {
        domain::sell_vehicle(
            d,
            &net,
            &v,
            &sale(15_000_000 - 500_000),
            "li",
            Role::Consultant,
            T0,
        )
    });
    assert!(msg.contains("zhang refused 500000 fen"), "{msg}");
    // Nothing pending: nothing to decide.
    let msg = refused(&mut doc, |d| {
        domain::decide_discount(
            d,
            &net,
            "c1",
            &v,
            DiscountDecision::Approve,
            "zhang",
            Role::Manager,
            T0,
        )
    });
    assert!(msg.contains("no request is pending"), "{msg}");
    domain::request_discount(&mut doc, "c1", &v, 400_000, "li", T0 + HOUR).unwrap();
    assert!(matches!(
        state(&doc, &v),
        Some(DiscountState::Pending {
            amount: 400_000,
            ..
        })
    ));
}

#[test]
fn each_approver_approves_up_to_its_own_limit() {
    let (mut doc, net, v) = floor();
    domain::request_discount(&mut doc, "c1", &v, 1_200_000, "li", T0).unwrap();
    let msg = refused(&mut doc, |d| {
        domain::decide_discount(
            d,
            &net,
            "c1",
            &v,
            DiscountDecision::Approve,
            "zhang",
            Role::Manager,
            T0,
        )
    });
    assert!(
        msg.contains("above the manager limit of 1000000 fen"),
        "{msg}"
    );
    // Head office has no limit set in this network: it may not approve either.
    let msg = refused(&mut doc, |d| {
        domain::decide_discount(
            d,
            &net,
            "c1",
            &v,
            DiscountDecision::Approve,
            "hq",
            Role::HeadOffice,
            T0,
        )
    });
    assert!(msg.contains("head_office limit of 0 fen"), "{msg}");
    // A manager may still refuse it.
    domain::decide_discount(
        &mut doc,
        &net,
        "c1",
        &v,
        DiscountDecision::Refuse,
        "zhang",
        Role::Manager,
        T0,
    )
    .unwrap();
}

#[test]
fn discount_request_refusals_leave_the_document_unchanged() {
    let (mut doc, net, v) = floor();
    for (customer, vin_, amount, want) in [
        ("c1", v.clone(), 0, "must be more than 0"),
        ("c1", v.clone(), 15_000_001, "at most the list price"),
        ("ghost", v.clone(), 100, "unknown customer"),
        ("c1", vin(99).to_string(), 100, "unknown vehicle"),
    ] {
        let msg = refused(&mut doc, |d| {
            domain::request_discount(d, customer, &vin_, amount, "li", T0)
        });
        assert!(msg.contains(want), "{msg}");
    }
    // Reserved for someone else, or sold: not discountable for c1 any more.
    let reserve = domain::VehicleAction::Reserve {
        customer: "c2".into(),
    };
    domain::move_vehicle(&mut doc, &v, &reserve, "li", T0).unwrap();
    let msg = refused(&mut doc, |d| {
        domain::request_discount(d, "c1", &v, 100, "li", T0)
    });
    assert!(msg.contains("reserved for customer c2"), "{msg}");
    // Approvals and refusals are not typed as plain events: they need a manager.
    let approved = NewEvent {
        amount: Some(100),
        vin: Some(domain::parse_vin(&v, Default::default()).unwrap()),
        ..NewEvent::new(EventKind::DiscountApproved, T0)
    };
    let msg = refused(&mut doc, |d| {
        domain::record_event(d, "c1", &approved, "li", T0)
    });
    assert!(msg.contains("discount approve"), "{msg}");
    let _ = net;
}

/// Every (state, step) pair of a discount: a request is taken in any state (it
/// supersedes), a decision only while one is pending, and an over-limit sale only once
/// approved. Refused steps leave the document unchanged.
#[test]
fn every_discount_step_from_every_state() {
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum At {
        Nothing,
        Pending,
        Approved,
        Refused,
    }
    #[derive(Debug, Clone, Copy)]
    enum Step {
        Request,
        Approve,
        Refuse,
        Sell,
    }
    let reach = |at: At| {
        let (mut doc, net, v) = floor();
        if at != At::Nothing {
            domain::request_discount(&mut doc, "c1", &v, 600_000, "li", T0).unwrap();
        }
        let decision = match at {
            At::Approved => Some(DiscountDecision::Approve),
            At::Refused => Some(DiscountDecision::Refuse),
            _ => None,
        };
        if let Some(d) = decision {
            domain::decide_discount(&mut doc, &net, "c1", &v, d, "zhang", Role::Manager, T0)
                .unwrap();
        }
        (doc, net, v)
    };
    for at in [At::Nothing, At::Pending, At::Approved, At::Refused] {
        for step in [Step::Request, Step::Approve, Step::Refuse, Step::Sell] {
            let (mut doc, net, v) = reach(at);
            let allowed = match step {
                Step::Request => true,
                Step::Approve | Step::Refuse => at == At::Pending,
                Step::Sell => at == At::Approved,
            };
            let run = |d: &mut AutoCommit| -> Result<(), DomainError> {
                let decide = |d: &mut AutoCommit, how| {
                    domain::decide_discount(d, &net, "c1", &v, how, "zhang", Role::Manager, T0)
                        .map(|_| ())
                };
                match step {
                    Step::Request => {
                        domain::request_discount(d, "c1", &v, 600_000, "li", T0).map(|_| ())
                    }
                    Step::Approve => decide(d, DiscountDecision::Approve),
                    Step::Refuse => decide(d, DiscountDecision::Refuse),
                    Step::Sell => domain::sell_vehicle(
                        d,
                        &net,
                        &v,
                        &sale(15_000_000 - 600_000),
                        "li",
                        Role::Consultant,
                        T0,
                    ),
                }
            };
            if allowed {
                run(&mut doc).unwrap_or_else(|e| panic!("{step:?} from {at:?}: {e}"));
            } else {
                refused(&mut doc, run);
            }
        }
    }
}

#[test]
fn a_price_above_the_limit_is_a_discount_to_request() {
    let (doc, net, v) = floor();
    let over = |price, role| domain::discount_over_limit(&doc, &net, &v, price, role).unwrap();
    assert_eq!(over(15_000_000 - 300_000, Role::Consultant), None);
    assert_eq!(over(15_000_000 - 300_001, Role::Consultant), Some(300_001));
    assert_eq!(over(15_000_000 - 300_001, Role::Manager), None);
    assert_eq!(over(16_000_000, Role::Consultant), None, "above list price");
}
