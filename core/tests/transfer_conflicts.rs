//! Two head-office users deciding the same transfer request offline: one approves, the
//! other refuses. The merge keeps both; `conflicts::detect_network` lists it on every
//! replica with the same id, and `resolve_transfer_decision` settles it everywhere.

mod common;

use automerge::AutoCommit;
use common::*;
use dealersync_core::access::Role;
use dealersync_core::conflicts::{self, ConflictKind};
use dealersync_core::domain::{self, NewTransfer};
use dealersync_core::schema::{NetworkDocument, SiteDocument, TransferVerdict, VehicleStatus};

/// sr-1 (region dc-north) asks to send a car to ag-s1 (region dc-south); the network
/// document is copied onto two head-office laptops that go offline.
struct World {
    north: AutoCommit,
    hq_a: AutoCommit,
    hq_b: AutoCommit,
}

fn world() -> World {
    let (mut net_doc, net) = two_regions();
    let mut north = site("sr-1");
    let v = vin(51);
    domain::receive_vehicle(
        &mut north,
        &net,
        &new_vehicle(&v, VehicleStatus::InStock),
        "wang",
        T0,
    )
    .unwrap();
    let ask = NewTransfer {
        id: "t1".into(),
        vin: v.as_str().into(),
        to: "ag-s1".into(),
        note: None,
    };
    domain::request_transfer(&mut north, &net, &ask, "mgr.north", T0 + HOUR).unwrap();
    let hq_a = device(&mut net_doc, "hq-laptop-a");
    let hq_b = device(&mut net_doc, "hq-laptop-b");
    World { north, hq_a, hq_b }
}

fn decide(net_doc: &mut AutoCommit, sender: &AutoCommit, verdict: TransferVerdict, by: &str) {
    let sender = SiteDocument::read(sender).unwrap();
    let note = (verdict == TransferVerdict::Refused).then_some("南区库存够");
    domain::decide_transfer(
        net_doc,
        &sender,
        "t1",
        verdict,
        note,
        by,
        Role::HeadOffice,
        T0 + 2 * HOUR,
    )
    .unwrap();
}

/// Both laptops decide differently offline, then sync.
fn split_decision() -> World {
    let mut w = world();
    decide(&mut w.hq_a, &w.north, TransferVerdict::Approved, "zhou.min");
    decide(&mut w.hq_b, &w.north, TransferVerdict::Refused, "chen.jie");
    sync_all(&mut [&mut w.hq_a, &mut w.hq_b]);
    w
}

#[test]
fn approve_and_refuse_made_offline_are_one_conflict_on_every_replica() {
    let w = split_decision();
    let a = conflicts::detect_network(&w.hq_a);
    let b = conflicts::detect_network(&w.hq_b);
    assert_eq!(a, b, "same list, same ids on both laptops");
    assert_eq!(a.len(), 1, "{a:#?}");
    let c = &a[0];
    assert_eq!(c.kind, ConflictKind::TransferDecision);
    assert!(c.id.starts_with("transfer_decision-"), "{}", c.id);
    assert_eq!(c.records, vec!["transfer t1".to_string()]);
    let mut verdicts: Vec<&str> = c.values.iter().map(|v| v.value.as_str()).collect();
    verdicts.sort();
    assert_eq!(verdicts, ["approved", "refused"]);
    assert_eq!(
        c.values.iter().filter(|v| !v.hidden).count(),
        1,
        "one is shown"
    );
    assert!(
        c.values
            .iter()
            .all(|v| v.site == "network" && v.at == Some(T0 + 2 * HOUR))
    );
    for who in [
        "approved by zhou.min",
        "refused by chen.jie",
        "from sr-1 to ag-s1",
    ] {
        assert!(c.summary.contains(who), "{}", c.summary);
    }
    // Site documents are not where it lives: detect on them finds nothing of it.
    assert!(conflicts::detect(&[("sr-1", &w.north)]).is_empty());
}

#[test]
fn the_same_verdict_twice_is_not_a_conflict() {
    let mut w = world();
    decide(&mut w.hq_a, &w.north, TransferVerdict::Approved, "zhou.min");
    decide(&mut w.hq_b, &w.north, TransferVerdict::Approved, "chen.jie");
    sync_all(&mut [&mut w.hq_a, &mut w.hq_b]);
    assert!(conflicts::detect_network(&w.hq_a).is_empty());
}

#[test]
fn head_office_settles_it_and_it_clears_everywhere() {
    let mut w = split_decision();
    let sender = SiteDocument::read(&w.north).unwrap();
    // Only head office decides; a verdict is one of those given; each refusal leaves the
    // document byte for byte as it was.
    let msg = refused(&mut w.hq_a, |d| {
        conflicts::resolve_transfer_decision(
            d,
            Some(&sender),
            "t1",
            TransferVerdict::Approved,
            "mgr.north",
            Role::Manager,
            T0 + 3 * HOUR,
        )
    });
    assert!(msg.contains("head office does"), "{msg}");
    let msg = refused(&mut w.hq_a, |d| {
        conflicts::resolve_transfer_decision(
            d,
            Some(&sender),
            "t9",
            TransferVerdict::Approved,
            "zhou.min",
            Role::HeadOffice,
            T0 + 3 * HOUR,
        )
    });
    assert!(msg.contains("no concurrent decisions"), "{msg}");

    one_change(&mut w.hq_a, |d| {
        conflicts::resolve_transfer_decision(
            d,
            Some(&sender),
            "t1",
            TransferVerdict::Refused,
            "wu.lei",
            Role::HeadOffice,
            T0 + 3 * HOUR,
        )
    });
    assert!(conflicts::detect_network(&w.hq_a).is_empty());
    let net = NetworkDocument::read(&w.hq_a).unwrap();
    let d = &net.transfer_decisions["t1"];
    assert_eq!(
        (
            d.verdict,
            d.by.as_str(),
            d.at,
            d.note.as_deref(),
            d.vin.as_str()
        ),
        (
            TransferVerdict::Refused,
            "wu.lei",
            T0 + 3 * HOUR,
            Some("南区库存够"),
            sender.transfers["t1"].vin.as_str()
        )
    );
    // The other laptop still shows it until it syncs; then both agree.
    assert_eq!(conflicts::detect_network(&w.hq_b).len(), 1);
    sync_all(&mut [&mut w.hq_a, &mut w.hq_b]);
    assert!(conflicts::detect_network(&w.hq_b).is_empty());
    assert_eq!(
        NetworkDocument::read(&w.hq_b).unwrap().transfer_decisions["t1"].verdict,
        TransferVerdict::Refused
    );
    // A settled request is decided once: deciding it again is refused.
    let msg = refused(&mut w.hq_b, |d| {
        domain::decide_transfer(
            d,
            &sender,
            "t1",
            TransferVerdict::Approved,
            None,
            "zhou.min",
            Role::HeadOffice,
            T0 + 4 * HOUR,
        )
    });
    assert!(msg.contains("already refused by wu.lei"), "{msg}");
}

#[test]
fn a_refusal_cannot_be_kept_once_the_car_left_under_the_approval() {
    let mut w = split_decision();
    // The sender saw only the approval (it synced with laptop A before B's refusal) and
    // let the car go.
    let approved_net = {
        let mut seen = world().hq_a;
        decide(&mut seen, &w.north, TransferVerdict::Approved, "zhou.min");
        NetworkDocument::read(&seen).unwrap()
    };
    domain::dispatch_transfer(
        &mut w.north,
        &approved_net,
        "t1",
        "mgr.north",
        T0 + 3 * HOUR,
    )
    .unwrap();
    let sender = SiteDocument::read(&w.north).unwrap();
    let msg = refused(&mut w.hq_a, |d| {
        conflicts::resolve_transfer_decision(
            d,
            Some(&sender),
            "t1",
            TransferVerdict::Refused,
            "wu.lei",
            Role::HeadOffice,
            T0 + 4 * HOUR,
        )
    });
    assert!(
        msg.contains("already dispatched") && msg.contains("keep approved"),
        "{msg}"
    );
    one_change(&mut w.hq_a, |d| {
        conflicts::resolve_transfer_decision(
            d,
            Some(&sender),
            "t1",
            TransferVerdict::Approved,
            "wu.lei",
            Role::HeadOffice,
            T0 + 4 * HOUR,
        )
    });
    assert!(conflicts::detect_network(&w.hq_a).is_empty());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 24, ..Default::default() })]

    /// Up to four head-office laptops, each deciding (approve / refuse) or not while
    /// offline, merged in any order: every replica lists the same conflicts, there is
    /// one exactly when both verdicts were given, and resolving it on one replica clears
    /// it everywhere once they sync, leaving the verdict kept.
    #[test]
    fn any_offline_decisions_converge_and_settle(
        choices in proptest::collection::vec(proptest::option::of(proptest::bool::ANY), 2..5),
        order in proptest::collection::vec(0usize..4, 0..8),
        keep_approved in proptest::bool::ANY,
    ) {
        let mut w = world();
        let mut laptops: Vec<AutoCommit> = (0..choices.len())
            .map(|i| device(&mut w.hq_a, &format!("hq-laptop-{i}")))
            .collect();
        for (i, choice) in choices.iter().enumerate() {
            if let Some(approve) = choice {
                let verdict = if *approve { TransferVerdict::Approved } else { TransferVerdict::Refused };
                decide(&mut laptops[i], &w.north, verdict, &format!("hq.{i}"));
            }
        }
        // Some pairwise syncs in a random order, then everyone with everyone.
        for pair in order.chunks(2) {
            if let [a, b] = pair && a != b && *a < laptops.len() && *b < laptops.len() {
                let mut theirs = laptops[*b].fork();
                laptops[*a].merge(&mut theirs).unwrap();
            }
        }
        {
            let mut refs: Vec<&mut AutoCommit> = laptops.iter_mut().collect();
            sync_all(&mut refs);
        }
        let lists: Vec<_> = laptops.iter().map(conflicts::detect_network).collect();
        proptest::prop_assert!(lists.windows(2).all(|p| p[0] == p[1]));
        let given: std::collections::BTreeSet<bool> = choices.iter().flatten().copied().collect();
        proptest::prop_assert_eq!(lists[0].len(), usize::from(given.len() == 2));
        if given.len() == 2 {
            let verdict = if keep_approved { TransferVerdict::Approved } else { TransferVerdict::Refused };
            let sender = SiteDocument::read(&w.north).unwrap();
            conflicts::resolve_transfer_decision(
                &mut laptops[0], Some(&sender), "t1", verdict, "wu.lei", Role::HeadOffice, T0 + 3 * HOUR,
            )
            .unwrap();
            let mut refs: Vec<&mut AutoCommit> = laptops.iter_mut().collect();
            sync_all(&mut refs);
            for l in &laptops {
                proptest::prop_assert!(conflicts::detect_network(l).is_empty());
                proptest::prop_assert_eq!(
                    NetworkDocument::read(l).unwrap().transfer_decisions["t1"].verdict,
                    verdict
                );
            }
        }
    }
}
