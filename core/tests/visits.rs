//! Visits and calls as they happen on the sales floor: walk-in batches who give no
//! phone still count as visits, calls are inbound or outbound, and every event takes
//! the time it happened (not in the future).

mod common;

use automerge::{AutoCommit, ROOT, ReadDoc, transaction::Transactable};
use common::*;
use dealersync_core::domain::{self, CLOCK_SKEW_MS, NewEvent, NewWalkIn};
use dealersync_core::reports::{self, KpiLevel};
use dealersync_core::schema::{CallDirection, EventKind, NetworkDocument, Period, SiteDocument};

fn walk_in(id: &str, party: i64, at: i64) -> NewWalkIn {
    NewWalkIn {
        id: id.into(),
        at,
        party_size: party,
        model_of_interest: Some("SUV-B".into()),
        note: Some(" 年轻夫妇 ".into()),
    }
}

fn floor() -> (AutoCommit, NetworkDocument) {
    let (_, net) = network();
    let mut doc = site("sr-1");
    domain::add_customer(
        &mut doc,
        &net,
        &new_customer("c1", "138 1234 5678"),
        "wang",
        T0,
    )
    .unwrap();
    (doc, net)
}

fn site_row(net: &NetworkDocument, doc: &AutoCommit, who: Option<&str>) -> reports::KpiRow {
    let site = SiteDocument::read(doc).unwrap();
    let report = reports::kpis(net, &[&site], Period::Month(2026, 3)).unwrap();
    report
        .rows
        .into_iter()
        .find(|r| match who {
            None => r.level == KpiLevel::Site && r.site == "sr-1",
            Some(w) => r.consultant.as_deref() == Some(w),
        })
        .unwrap()
}

#[test]
fn a_walk_in_batch_without_a_phone_is_a_visit() {
    let (mut doc, net) = floor();
    domain::record_event(
        &mut doc,
        "c1",
        &NewEvent::new(EventKind::Visit, T0),
        "wang",
        T0,
    )
    .unwrap();
    let w = domain::record_walk_in(
        &mut doc,
        &net,
        &walk_in("w1", 3, T0 + HOUR),
        "li",
        T0 + 2 * HOUR,
    )
    .unwrap();
    assert_eq!((w.party_size, w.note.as_deref()), (3, Some("年轻夫妇")));
    domain::record_walk_in(
        &mut doc,
        &net,
        &walk_in("w2", 1, T0 + 3 * HOUR),
        "li",
        T0 + 3 * HOUR,
    )
    .unwrap();
    let site = SiteDocument::read(&doc).unwrap();
    assert_eq!(site.walk_ins.len(), 2);
    assert_eq!(site.walk_ins["w1"].by, "li");
    // One visit per batch, whatever its size: the customer's visit and two batches.
    assert_eq!(site_row(&net, &doc, None).visits, Some(3));
    assert_eq!(site_row(&net, &doc, Some("li")).visits, Some(2));
    assert_eq!(site_row(&net, &doc, Some("wang")).visits, Some(1));
}

#[test]
fn walk_in_refusals_leave_the_document_unchanged() {
    let (mut doc, net) = floor();
    domain::record_walk_in(&mut doc, &net, &walk_in("w1", 2, T0), "li", T0).unwrap();
    for (new, want) in [
        (walk_in("w2", 0, T0), "party size: must be 1 to 50, got 0"),
        (walk_in("w2", 51, T0), "must be 1 to 50, got 51"),
        (walk_in("w1", 2, T0), "already recorded"),
        (walk_in("w 2", 2, T0), "cannot contain spaces"),
        (walk_in("w2", 2, T0 + CLOCK_SKEW_MS + 1), "is in the future"),
        (
            NewWalkIn {
                model_of_interest: Some("MPV-Z".into()),
                ..walk_in("w2", 2, T0)
            },
            "unknown model",
        ),
    ] {
        let msg = refused(&mut doc, |d| {
            domain::record_walk_in(d, &net, &new, "li", T0)
        });
        assert!(msg.contains(want), "{msg}");
    }
}

/// A document created before walk-ins existed has no `walkIns` map: it still reads, and
/// the first walk-in creates the map.
#[test]
fn old_documents_without_walk_ins_read_and_take_one() {
    let (mut doc, net) = floor();
    doc.delete(ROOT, "walkIns").unwrap();
    doc.commit();
    assert!(doc.get(ROOT, "walkIns").unwrap().is_none());
    assert!(SiteDocument::read(&doc).unwrap().walk_ins.is_empty());
    domain::record_walk_in(&mut doc, &net, &walk_in("w1", 4, T0), "li", T0).unwrap();
    assert_eq!(
        SiteDocument::read(&doc).unwrap().walk_ins["w1"].party_size,
        4
    );
    // Two devices taking their first walk-in offline both keep theirs.
    doc.delete(ROOT, "walkIns").unwrap();
    doc.commit();
    let mut a = device(&mut doc, "tablet-a");
    let mut b = device(&mut doc, "tablet-b");
    domain::record_walk_in(&mut a, &net, &walk_in("wa", 1, T0), "li", T0).unwrap();
    domain::record_walk_in(&mut b, &net, &walk_in("wb", 2, T0), "wang", T0).unwrap();
    a.merge(&mut b).unwrap();
    domain::record_walk_in(&mut a, &net, &walk_in("wc", 1, T0), "li", T0).unwrap();
    let ids: Vec<String> = SiteDocument::read(&a)
        .unwrap()
        .walk_ins
        .into_keys()
        .collect();
    assert_eq!(ids, ["wa", "wb", "wc"]);
}

#[test]
fn calls_are_inbound_or_outbound_and_old_calls_still_read() {
    let (mut doc, net) = floor();
    let call = |d: Option<CallDirection>| NewEvent {
        direction: d,
        ..NewEvent::new(EventKind::Call, T0)
    };
    domain::record_event(
        &mut doc,
        "c1",
        &call(Some(CallDirection::Inbound)),
        "wang",
        T0,
    )
    .unwrap();
    domain::record_event(
        &mut doc,
        "c1",
        &call(Some(CallDirection::Outbound)),
        "wang",
        T0,
    )
    .unwrap();
    domain::record_event(&mut doc, "c1", &call(None), "wang", T0).unwrap();
    let events = domain::get_customer(&doc, "c1").unwrap().unwrap().events;
    let dirs: Vec<_> = events.iter().map(|e| e.direction).collect();
    assert_eq!(
        dirs,
        [
            Some(CallDirection::Inbound),
            Some(CallDirection::Outbound),
            None
        ]
    );
    // Stored as a scalar string a JS client reads; absent when not given.
    let customers = doc.get(ROOT, "customers").unwrap().unwrap().1;
    let c1 = doc.get(&customers, "c1").unwrap().unwrap().1;
    let list = doc.get(&c1, "events").unwrap().unwrap().1;
    let first = doc.get(&list, 0).unwrap().unwrap().1;
    let (v, _) = doc.get(&first, "direction").unwrap().unwrap();
    assert!(
        matches!(v, automerge::Value::Scalar(s) if s.as_str() == Some("inbound")),
        "a scalar string"
    );
    let last = doc.get(&list, 2).unwrap().unwrap().1;
    assert!(doc.get(&last, "direction").unwrap().is_none());
    // The KPIs count all three calls, one inbound, one outbound (the third has no
    // direction), at the site and for the consultant who made them.
    for who in [None, Some("wang")] {
        let row = site_row(&net, &doc, who);
        assert_eq!(
            (row.calls, row.calls_inbound, row.calls_outbound),
            (Some(3), Some(1), Some(1)),
            "{who:?}"
        );
    }
    // Only calls have a direction.
    let visit = NewEvent {
        direction: Some(CallDirection::Inbound),
        ..NewEvent::new(EventKind::Visit, T0)
    };
    let msg = refused(&mut doc, |d| {
        domain::record_event(d, "c1", &visit, "wang", T0)
    });
    assert!(msg.contains("only calls are inbound or outbound"), "{msg}");
}

#[test]
fn an_event_takes_the_time_it_happened_but_not_a_future_one() {
    let (mut doc, _) = floor();
    let now = T0 + 48 * HOUR;
    // Entered two days late, before the customer record even existed: accepted.
    for at in [T0 - HOUR, T0 + HOUR, now + CLOCK_SKEW_MS] {
        let e = domain::record_event(
            &mut doc,
            "c1",
            &NewEvent::new(EventKind::Visit, at),
            "wang",
            now,
        )
        .unwrap();
        assert_eq!(e.at, at);
    }
    let msg = refused(&mut doc, |d| {
        domain::record_event(
            d,
            "c1",
            &NewEvent::new(EventKind::Visit, now + CLOCK_SKEW_MS + 1),
            "wang",
            now,
        )
    });
    assert!(
        msg.contains("2026-03-03 00:05 is in the future (now is 2026-03-03 00:00)"),
        "{msg}"
    );
}
