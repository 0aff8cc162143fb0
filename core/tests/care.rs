//! Customer care: follow-ups due per consultant, complaints, surveys, referrals, lead
//! sources, lost reasons and competitors, areas; operations validated, figures by hand.

mod common;

use automerge::AutoCommit;
use common::*;
use dealersync_core::domain::{self, ComplaintUpdate, NewComplaint, NewCustomer, NewEvent};
use dealersync_core::reports;
use dealersync_core::schema::{
    ComplaintStatus, CustomerArea, CustomerSource, CustomerStatus, EventKind, NetworkDocument,
    Period, SiteDocument,
};

const DAY: i64 = 24 * HOUR;
const MARCH: Period = Period::Month(2026, 3);

fn lead(id: &str, phone: &str, source: CustomerSource, consultant: &str) -> NewCustomer {
    NewCustomer {
        source,
        consultant: Some(consultant.into()),
        ..new_customer(id, phone)
    }
}

fn survey(doc: &mut AutoCommit, c: &str, score: i64, at: i64) {
    let e = NewEvent {
        score: Some(score),
        ..NewEvent::new(EventKind::Survey, at)
    };
    domain::record_event(doc, c, &e, "wang", at).unwrap();
}

/// sr-1 in March: c1 (walk-in, wang, 市区) referred c2 (li, 地州) and c3 (wang); c2
/// ordered; c4 (web, li) lost on the 20th for price to 比亚迪; c5 (phone, wang) lost
/// with no competitor. Surveys 5, 4, 2. Complaints: k1 resolved, k2 open.
fn site_doc() -> (NetworkDocument, AutoCommit) {
    let (_, net) = network();
    let mut doc = site("sr-1");
    let t = |d: i64| T0 + d * DAY;
    let add = |doc: &mut AutoCommit, c: NewCustomer, at| {
        domain::add_customer(doc, &net, &c, "wang", at).unwrap();
    };
    add(
        &mut doc,
        lead("c1", "13800000001", CustomerSource::WalkIn, "wang"),
        t(1),
    );
    add(
        &mut doc,
        lead("c2", "13800000002", CustomerSource::Referral, "li"),
        t(2),
    );
    add(
        &mut doc,
        lead("c3", "13800000003", CustomerSource::Referral, "wang"),
        t(3),
    );
    add(
        &mut doc,
        lead("c4", "13800000004", CustomerSource::Web, "li"),
        t(4),
    );
    add(
        &mut doc,
        lead("c5", "13800000005", CustomerSource::Phone, "wang"),
        t(5),
    );
    domain::link_referral(&mut doc, "c2", "c1", "li", t(2)).unwrap();
    domain::link_referral(&mut doc, "c3", "c1", "wang", t(3)).unwrap();
    domain::set_customer_area(&mut doc, "c1", Some(CustomerArea::City), "wang", t(1)).unwrap();
    domain::set_customer_area(&mut doc, "c2", Some(CustomerArea::Prefecture), "li", t(2)).unwrap();
    let order = NewEvent {
        amount: Some(15_000_000),
        ..NewEvent::new(EventKind::Order, t(6))
    };
    domain::record_event(&mut doc, "c2", &order, "li", t(6)).unwrap();
    domain::mark_lost(&mut doc, "c4", "价格", Some("比亚迪"), "li", t(19)).unwrap();
    domain::mark_lost(&mut doc, "c5", "不急着买", None, "wang", t(20)).unwrap();
    survey(&mut doc, "c1", 5, t(10));
    survey(&mut doc, "c2", 4, t(11));
    survey(&mut doc, "c3", 2, t(12));
    let complaint = |id: &str, customer: &str, at| NewComplaint {
        id: id.into(),
        customer: customer.into(),
        summary: "交车延迟".into(),
        owner: Some("manager.zhao".into()),
        at,
    };
    domain::open_complaint(&mut doc, &complaint("k1", "c2", t(7)), "li", t(7)).unwrap();
    domain::open_complaint(&mut doc, &complaint("k2", "c3", t(8)), "wang", t(8)).unwrap();
    let resolve = ComplaintUpdate {
        status: Some(ComplaintStatus::Resolved),
        resolution: Some("补送保养一次".into()),
        ..Default::default()
    };
    domain::update_complaint(&mut doc, "k1", &resolve, "manager.zhao", t(9)).unwrap();
    (net, doc)
}

#[test]
fn care_figures_for_march() {
    let (net, doc) = site_doc();
    let site = SiteDocument::read(&doc).unwrap();
    let r = reports::customer_care(&net, &[&site], MARCH, T0 + 40 * DAY).unwrap();
    let row = &r.rows[0];
    // 5 leads; 2 referred (c2, c3), of whom c2 ordered; 2 lost; surveys 5, 4, 2: mean
    // 11 / 3 = 3.67, 2 of 3 satisfied = 0.6667; k1 opened and resolved, k2 open.
    assert_eq!(
        (row.leads, row.referrals, row.referrals_ordered, row.lost),
        (5, 2, 1, 2)
    );
    assert_eq!(
        (row.surveys, row.average_score, row.satisfied_rate),
        (3, Some(3.67), Some(0.6667))
    );
    assert_eq!(
        (
            row.complaints_opened,
            row.complaints_resolved,
            row.complaints_open
        ),
        (2, 1, 1)
    );
    let mix: Vec<(&str, &str, i64)> = r
        .mix
        .iter()
        .map(|m| (m.dimension, m.value.as_str(), m.count))
        .collect();
    assert_eq!(
        mix,
        [
            ("area", "city", 1),
            ("area", "prefecture", 1),
            ("area", "unknown", 3),
            ("competitor", "比亚迪", 1),
            ("lostReason", "不急着买", 1),
            ("lostReason", "价格", 1),
            ("source", "phone", 1),
            ("source", "referral", 2),
            ("source", "walk_in", 1),
            ("source", "web", 1),
        ]
    );
    assert_eq!(r.referrers.len(), 1);
    let c1 = &r.referrers[0];
    assert_eq!(
        (c1.referrer.as_str(), c1.referred, c1.ordered),
        ("c1", 2, 1)
    );
    // Open complaint first; the resolved one took 2 CST days (7th → 9th).
    let ks: Vec<_> = r
        .complaints
        .iter()
        .map(|k| (k.id.as_str(), k.status, k.days_open))
        .collect();
    assert_eq!(
        ks,
        [
            ("k2", ComplaintStatus::Open, 32),
            ("k1", ComplaintStatus::Resolved, 2)
        ]
    );
}

#[test]
fn follow_ups_due_per_consultant() {
    let (net, mut doc) = site_doc();
    let t = |d: i64| T0 + d * DAY;
    domain::schedule_follow_up(&mut doc, "c1", Some(t(21) + 10 * HOUR), "wang", t(20)).unwrap();
    domain::schedule_follow_up(&mut doc, "c3", Some(t(25)), "wang", t(20)).unwrap();
    domain::schedule_follow_up(&mut doc, "c2", Some(t(23)), "li", t(20)).unwrap();
    // c4 is lost: its follow-up is not listed.
    domain::schedule_follow_up(&mut doc, "c4", Some(t(21)), "li", t(20)).unwrap();
    let now = t(23) + 9 * HOUR; // March 24th 09:00 CST
    let site = SiteDocument::read(&doc).unwrap();
    let r = reports::follow_ups_due(&net, &[&site], now).unwrap();
    let rows: Vec<_> = r
        .rows
        .iter()
        .map(|x| (x.consultant.as_str(), x.customer.as_str(), x.days_overdue))
        .collect();
    // c1 due the 22nd: 2 days late; c2 due today: 0; c3 due the 26th: not yet.
    assert_eq!(rows, [("li", "c2", 0), ("wang", "c1", 2)]);
    assert_eq!(r.per_consultant["sr-1"]["wang"], 1);
    // The call made, the next one planned: c1 is no longer due.
    domain::record_follow_up(&mut doc, "c1", now, Some("满意"), Some(t(40)), "wang", now).unwrap();
    let site = SiteDocument::read(&doc).unwrap();
    let r = reports::follow_ups_due(&net, &[&site], now).unwrap();
    assert_eq!(r.rows.len(), 1);
    assert_eq!(site.customers["c1"].next_follow_up, Some(t(40)));
    let cr = reports::customer_care(&net, &[&site], MARCH, now).unwrap();
    assert_eq!(cr.rows[0].follow_ups_done, 1);
}

#[test]
fn care_operations_are_validated_and_leave_the_document_unchanged() {
    let (_, mut doc) = site_doc();
    let msg = refused(&mut doc, |d| {
        domain::link_referral(d, "c1", "c1", "wang", T0)
    });
    assert!(msg.contains("does not refer themselves"), "{msg}");
    let msg = refused(&mut doc, |d| {
        domain::link_referral(d, "c1", "c2", "wang", T0)
    });
    assert!(msg.contains("both ways"), "{msg}");
    let msg = refused(&mut doc, |d| {
        domain::link_referral(d, "c1", "nobody", "wang", T0)
    });
    assert!(msg.contains("unknown customer"), "{msg}");
    let msg = refused(&mut doc, |d| {
        domain::mark_lost(d, "c1", "  ", None, "wang", T0)
    });
    assert!(msg.contains("must not be empty"), "{msg}");
    let msg = refused(&mut doc, |d| {
        domain::mark_lost(d, "c4", "again", None, "wang", T0)
    });
    assert!(msg.contains("cannot move from lost to lost"), "{msg}");
    let msg = refused(&mut doc, |d| {
        domain::update_complaint(
            d,
            "k2",
            &ComplaintUpdate {
                status: Some(ComplaintStatus::Resolved),
                ..Default::default()
            },
            "zhao",
            T0 + 30 * DAY,
        )
    });
    assert!(msg.contains("say how it was resolved"), "{msg}");
    let msg = refused(&mut doc, |d| {
        domain::open_complaint(
            d,
            &NewComplaint {
                id: "k1".into(),
                customer: "c1".into(),
                summary: "x".into(),
                owner: None,
                at: T0,
            },
            "wang",
            T0,
        )
    });
    assert!(msg.contains("already recorded"), "{msg}");
    let msg = refused(&mut doc, |d| {
        domain::record_follow_up(d, "c1", T0 + DAY, None, Some(T0), "wang", T0 + DAY)
    });
    assert!(msg.contains("after the follow-up just made"), "{msg}");
    // Reopening a resolved complaint clears its resolution time; in progress moves on.
    let k = domain::update_complaint(
        &mut doc,
        "k1",
        &ComplaintUpdate {
            status: Some(ComplaintStatus::InProgress),
            owner: Some("wang".into()),
            ..Default::default()
        },
        "zhao",
        T0 + 30 * DAY,
    )
    .unwrap();
    assert_eq!(
        (k.status, k.resolved_at, k.owner.as_str()),
        (ComplaintStatus::InProgress, None, "wang")
    );
    let site = SiteDocument::read(&doc).unwrap();
    assert_eq!(site.complaints["k1"], k);
    assert_eq!(site.customers["c4"].status, CustomerStatus::Lost);
    assert_eq!(site.customers["c4"].lost_to.as_deref(), Some("比亚迪"));
    assert_eq!(site.customers["c2"].referred_by.as_deref(), Some("c1"));
}
