//! The care vector (`core/vectors/care.json`): what issue 9 added that the phone app
//! does too — referrals (以老带新), follow-ups and surveys, customer areas (地州 / 市区),
//! a lost customer's reason and competitor, a forecast typed again over a distribution
//! centre's adjustment (both kept) in a document holding a parts shipment, complaints with status,
//! owner and resolution, discount requests and a manager's decision, a transfer
//! request between regions, an incoming transfer put on the books, and arrivals.

use std::collections::BTreeMap;

use automerge::AutoCommit;
use dealersync_core::access::Role;
use dealersync_core::domain::{
    self, CheckDigitPolicy, ComplaintUpdate, DiscountDecision, DomainError, NewComplaint,
    NewShipment, NewTransfer, VehicleAction, Vin,
};
use dealersync_core::reports;
use dealersync_core::schema::{
    NetworkDocument, SiteDocument, SiteKind, TransferVerdict, VehicleStatus,
};
use serde_json::{Value as Json, json};

use super::common::{T0, header, new_vehicle, site_under, two_regions};
use super::{MINUTE, check_vector, i, initial_site, ok, opt_s, refused, s, site_vector, vin};

/// Runs one of the care operations, `None` for an operation this module does not know.
pub fn apply_care_op(
    doc: &mut AutoCommit,
    net: &NetworkDocument,
    op: &Json,
) -> Option<Result<(), DomainError>> {
    let a = &op["args"];
    let by = s(op, "by");
    let now = i(op, "now");
    let role: Role = op["role"].as_str().unwrap_or("consultant").parse().unwrap();
    Some(match s(op, "op").as_str() {
        "link_referral" => {
            domain::link_referral(doc, &s(a, "customer"), &s(a, "referrer"), &by, now)
        }
        "record_follow_up" => domain::record_follow_up(
            doc,
            &s(a, "customer"),
            i(a, "at"),
            opt_s(a, "note").as_deref(),
            a["next"].as_i64(),
            &by,
            now,
        )
        .map(drop),
        "open_complaint" => domain::open_complaint(
            doc,
            &NewComplaint {
                id: s(a, "id"),
                customer: s(a, "customer"),
                summary: s(a, "summary"),
                owner: opt_s(a, "owner"),
                at: i(a, "at"),
            },
            &by,
            now,
        )
        .map(drop),
        "update_complaint" => domain::update_complaint(
            doc,
            &s(a, "id"),
            &ComplaintUpdate {
                status: opt_s(a, "status").map(|x| x.parse().unwrap()),
                owner: opt_s(a, "owner"),
                resolution: opt_s(a, "resolution"),
            },
            &by,
            now,
        )
        .map(drop),
        "request_discount" => domain::request_discount(
            doc,
            &s(a, "customer"),
            &s(a, "vin"),
            i(a, "amount"),
            &by,
            now,
        )
        .map(drop),
        "decide_discount" => domain::decide_discount(
            doc,
            net,
            &s(a, "customer"),
            &s(a, "vin"),
            match s(a, "decision").as_str() {
                "approve" => DiscountDecision::Approve,
                _ => DiscountDecision::Refuse,
            },
            &by,
            role,
            now,
        )
        .map(drop),
        "request_transfer" => domain::request_transfer(
            doc,
            net,
            &NewTransfer {
                id: s(a, "id"),
                vin: s(a, "vin"),
                to: s(a, "to"),
                note: opt_s(a, "note"),
            },
            &by,
            now,
        )
        .map(drop),
        "receive_transfer" => {
            domain::receive_transfer(doc, net, &s(a, "id"), a["eta"].as_i64(), &by, now).map(drop)
        }
        "arrive" => domain::move_vehicle(doc, &s(a, "vin"), &VehicleAction::Arrive, &by, now),
        "set_area" => domain::set_customer_area(
            doc,
            &s(a, "customer"),
            opt_s(a, "area").map(|x| x.parse().unwrap()),
            &by,
            now,
        ),
        "mark_lost" => domain::mark_lost(
            doc,
            &s(a, "customer"),
            &s(a, "reason"),
            opt_s(a, "competitor").as_deref(),
            &by,
            now,
        ),
        _ => return None,
    })
}

/// The network of the care vector: two regions (sr-1 under dc-north, ag-s1 under
/// dc-south), a manager's discount limit, and head office's approval of a transfer
/// from ag-s1 to sr-1 (so sr-1 can put the incoming car on its books).
fn care_network() -> NetworkDocument {
    let (mut net_doc, net) = two_regions();
    domain::put_site(
        &mut net_doc,
        &header("rs-1", SiteKind::Roadshow, Some("dc-north")),
        "admin",
        T0,
    )
    .unwrap();
    domain::set_discount_limit(&mut net_doc, "manager", 3_000_000, "admin", T0).unwrap();
    let mut south = site_under("ag-s1", SiteKind::Agent, "dc-south");
    let incoming = vin(9);
    domain::receive_vehicle(
        &mut south,
        &net,
        &new_vehicle(
            &Vin::parse(&incoming, CheckDigitPolicy::Enforce).unwrap(),
            VehicleStatus::InStock,
        ),
        "admin",
        T0,
    )
    .unwrap();
    let ask = NewTransfer {
        id: "tr-in".into(),
        vin: incoming,
        to: "sr-1".into(),
        note: None,
    };
    domain::request_transfer(&mut south, &net, &ask, "hu.jun", T0 + MINUTE).unwrap();
    let sender = SiteDocument::read(&south).unwrap();
    domain::decide_transfer(
        &mut net_doc,
        &sender,
        "tr-in",
        TransferVerdict::Approved,
        None,
        "zhou.min",
        Role::HeadOffice,
        T0 + 2 * MINUTE,
    )
    .unwrap();
    NetworkDocument::read(&net_doc).unwrap()
}

fn step_as(op: &str, by: &str, role: &str, now: i64, args: Json, expect: Json) -> Json {
    json!({"op": op, "by": by, "role": role, "now": now, "args": args, "expect": expect})
}

fn care_steps() -> Vec<Json> {
    let t = T0 + 10 * 3_600_000;
    let c = |op: &str, now: i64, args: Json, expect: Json| {
        step_as(op, "wang", "consultant", now, args, expect)
    };
    let m = |op: &str, now: i64, args: Json, expect: Json| {
        step_as(op, "sun.hao", "manager", now, args, expect)
    };
    let (v1, v2, v3, v9) = (vin(1), vin(2), vin(3), vin(9));
    let day = 24 * 3_600_000;
    vec![
        c(
            "add_customer",
            t,
            json!({"id": "c-1", "name": "张伟", "phone": "13812345678", "source": "walk_in",
            "modelOfInterest": "SDN-A", "consultant": "wang"}),
            ok(),
        ),
        c(
            "add_customer",
            t,
            json!({"id": "c-2", "name": "李娜", "phone": "13912345678", "source": "referral",
            "modelOfInterest": null, "consultant": "wang"}),
            ok(),
        ),
        // 以老带新: c-2 came through c-1.
        c(
            "link_referral",
            t + MINUTE,
            json!({"customer": "c-2", "referrer": "c-1"}),
            ok(),
        ),
        c(
            "link_referral",
            t + MINUTE,
            json!({"customer": "c-1", "referrer": "c-2"}),
            refused("Invalid"),
        ),
        c(
            "link_referral",
            t + MINUTE,
            json!({"customer": "c-1", "referrer": "c-1"}),
            refused("Invalid"),
        ),
        c(
            "link_referral",
            t + MINUTE,
            json!({"customer": "c-2", "referrer": "c-9"}),
            refused("UnknownCustomer"),
        ),
        // A follow-up call typed in later, with the next one planned.
        c(
            "record_follow_up",
            t + 2 * MINUTE,
            json!({"customer": "c-1", "at": t - 3_600_000, "note": " 问提车时间 ",
            "next": t + 3 * day}),
            ok(),
        ),
        c(
            "record_follow_up",
            t + 2 * MINUTE,
            json!({"customer": "c-1", "at": t, "next": t - MINUTE}),
            refused("Invalid"),
        ),
        c(
            "record_follow_up",
            t + 2 * MINUTE,
            json!({"customer": "c-1", "at": t + 10 * MINUTE}),
            refused("Invalid"),
        ),
        c(
            "record_event",
            t + 2 * MINUTE,
            json!({"customer": "c-1", "kind": "survey", "at": t, "score": 4,
            "note": "满意"}),
            ok(),
        ),
        c(
            "record_event",
            t + 2 * MINUTE,
            json!({"customer": "c-1", "kind": "survey", "at": t, "score": 6}),
            refused("Invalid"),
        ),
        // A complaint: opened by the consultant, handed to the manager, resolved.
        c(
            "open_complaint",
            t + 3 * MINUTE,
            json!({"id": "k-1", "customer": "c-1", "summary": " 交车延迟 ",
            "owner": null, "at": t + 2 * MINUTE}),
            ok(),
        ),
        c(
            "open_complaint",
            t + 3 * MINUTE,
            json!({"id": "k-1", "customer": "c-1", "summary": "again",
            "owner": null, "at": t}),
            refused("Invalid"),
        ),
        c(
            "open_complaint",
            t + 3 * MINUTE,
            json!({"id": "k-2", "customer": "c-1", "summary": "  ",
            "owner": null, "at": t}),
            refused("Invalid"),
        ),
        c(
            "open_complaint",
            t + 3 * MINUTE,
            json!({"id": "k-3", "customer": "c-9", "summary": "x",
            "owner": null, "at": t}),
            refused("UnknownCustomer"),
        ),
        c(
            "update_complaint",
            t + 4 * MINUTE,
            json!({"id": "k-1", "status": "in_progress", "owner": "sun.hao"}),
            ok(),
        ),
        m(
            "update_complaint",
            t + 5 * MINUTE,
            json!({"id": "k-1", "status": "resolved"}),
            refused("Invalid"),
        ),
        m(
            "update_complaint",
            t + 5 * MINUTE,
            json!({"id": "k-1", "status": "resolved",
            "resolution": "赠送一次保养"}),
            ok(),
        ),
        m(
            "update_complaint",
            t + 5 * MINUTE,
            json!({"id": "k-9", "status": "open"}),
            refused("Invalid"),
        ),
        m(
            "update_complaint",
            t + 6 * MINUTE,
            json!({"id": "k-1", "status": "open"}),
            ok(),
        ),
        // A discount above the consultant's limit: asked, decided by a manager, sold.
        c(
            "request_discount",
            t + 7 * MINUTE,
            json!({"customer": "c-1", "vin": v1, "amount": 2_000_000}),
            ok(),
        ),
        c(
            "request_discount",
            t + 7 * MINUTE,
            json!({"customer": "c-1", "vin": v1, "amount": 0}),
            refused("Invalid"),
        ),
        c(
            "request_discount",
            t + 7 * MINUTE,
            json!({"customer": "c-1", "vin": vin(4), "amount": 1}),
            refused("UnknownVehicle"),
        ),
        c(
            "decide_discount",
            t + 8 * MINUTE,
            json!({"customer": "c-1", "vin": v1, "decision": "approve"}),
            refused("Invalid"),
        ),
        c(
            "sell",
            t + 8 * MINUTE,
            json!({"vin": v1, "customer": "c-1", "price": 13_000_000}),
            refused("DiscountNotApproved"),
        ),
        m(
            "decide_discount",
            t + 9 * MINUTE,
            json!({"customer": "c-1", "vin": v1, "decision": "approve"}),
            ok(),
        ),
        m(
            "decide_discount",
            t + 9 * MINUTE,
            json!({"customer": "c-1", "vin": v1, "decision": "refuse"}),
            refused("Invalid"),
        ),
        c(
            "sell",
            t + 10 * MINUTE,
            json!({"vin": v1, "customer": "c-1", "price": 13_000_000}),
            ok(),
        ),
        c(
            "request_discount",
            t + 11 * MINUTE,
            json!({"customer": "c-2", "vin": v2, "amount": 5_000_000}),
            ok(),
        ),
        m(
            "decide_discount",
            t + 11 * MINUTE,
            json!({"customer": "c-2", "vin": v2, "decision": "approve"}),
            refused("Invalid"),
        ),
        m(
            "decide_discount",
            t + 12 * MINUTE,
            json!({"customer": "c-2", "vin": v2, "decision": "refuse"}),
            ok(),
        ),
        // A transfer to another region, asked by the manager.
        m(
            "request_transfer",
            t + 13 * MINUTE,
            json!({"id": "tr-1", "vin": v2, "to": "ag-s1", "note": "南区缺货"}),
            ok(),
        ),
        m(
            "request_transfer",
            t + 13 * MINUTE,
            json!({"id": "tr-2", "vin": v2, "to": "ag-s1"}),
            refused("Invalid"),
        ),
        m(
            "request_transfer",
            t + 13 * MINUTE,
            json!({"id": "tr-3", "vin": v3, "to": "ag-s1"}),
            refused("WrongVehicleAction"),
        ),
        m(
            "request_transfer",
            t + 13 * MINUTE,
            json!({"id": "tr-4", "vin": v1, "to": "rs-1"}),
            refused("WrongVehicleAction"),
        ),
        // The ordered car arrives; the incoming transfer goes on the books, then arrives.
        c("arrive", t + 14 * MINUTE, json!({"vin": v3}), ok()),
        c(
            "arrive",
            t + 14 * MINUTE,
            json!({"vin": v3}),
            refused("IllegalVehicleTransition"),
        ),
        m(
            "request_transfer",
            t + 14 * MINUTE,
            json!({"id": "tr-5", "vin": v3, "to": "rs-1"}),
            refused("Invalid"),
        ),
        m(
            "receive_transfer",
            t + 15 * MINUTE,
            json!({"id": "tr-in", "eta": t + 2 * day}),
            ok(),
        ),
        m(
            "receive_transfer",
            t + 15 * MINUTE,
            json!({"id": "tr-in"}),
            refused("VehicleExists"),
        ),
        m(
            "receive_transfer",
            t + 15 * MINUTE,
            json!({"id": "tr-1"}),
            refused("Invalid"),
        ),
        c("arrive", t + 16 * MINUTE, json!({"vin": v9}), ok()),
        // Where customers live (地州 / 市区), and a lead lost to a competitor, with why.
        c(
            "set_area",
            t + 17 * MINUTE,
            json!({"customer": "c-1", "area": "prefecture"}),
            ok(),
        ),
        c(
            "set_area",
            t + 17 * MINUTE,
            json!({"customer": "c-9", "area": "city"}),
            refused("UnknownCustomer"),
        ),
        c(
            "add_customer",
            t + 18 * MINUTE,
            json!({"id": "c-3", "name": "赵磊", "phone": "13712345678", "source": "roadshow",
            "modelOfInterest": "SDN-A", "consultant": "wang"}),
            ok(),
        ),
        c(
            "set_area",
            t + 18 * MINUTE,
            json!({"customer": "c-3", "area": "city"}),
            ok(),
        ),
        c(
            "set_area",
            t + 18 * MINUTE,
            json!({"customer": "c-3", "area": null}),
            ok(),
        ),
        c(
            "mark_lost",
            t + 19 * MINUTE,
            json!({"customer": "c-3", "reason": "  ", "competitor": "比亚迪"}),
            refused("Invalid"),
        ),
        c(
            "mark_lost",
            t + 19 * MINUTE,
            json!({"customer": "c-3", "reason": " 价格 ", "competitor": " 比亚迪 "}),
            ok(),
        ),
        c(
            "mark_lost",
            t + 19 * MINUTE,
            json!({"customer": "c-3", "reason": "价格", "competitor": null}),
            refused("IllegalCustomerTransition"),
        ),
        c(
            "mark_lost",
            t + 19 * MINUTE,
            json!({"customer": "c-2", "reason": "不买了", "competitor": ""}),
            ok(),
        ),
        // The showroom's forecast, adjusted by its distribution centre, typed again.
        c(
            "set_forecast",
            t + 20 * MINUTE,
            json!({"month": "2026-04", "model": "SDN-A", "quantity": 15}),
            ok(),
        ),
    ]
}

/// Runs the care steps on the schema vector's initial showroom; the app replays them
/// with its domain module and must reach the same document.
#[test]
fn care_vectors() {
    let net = care_network();
    // A forecast the showroom submitted and its distribution centre adjusted: the site's
    // figure typed again (on a phone) keeps the adjustment beside it.
    let mut initial = initial_site(&net);
    domain::set_forecast(&mut initial, &net, "2026-04", "SDN-A", 12, "wang", T0).unwrap();
    domain::adjust_forecast(&mut initial, "2026-04", "SDN-A", 10, "sun.hao", T0 + MINUTE).unwrap();
    // Parts shipped by the distribution centre and received (配件配送): records the app
    // never writes (counters included), which its operations leave as core wrote them.
    let mut dc = site_under("dc-north", SiteKind::DistributionCentre, "hq");
    domain::adjust_part(&mut dc, "OIL-F", 20, "ma.li", T0).unwrap();
    let shipment = NewShipment {
        id: "ps-1".into(),
        lines: BTreeMap::from([("OIL-F".to_string(), 6)]),
        note: Some("SF1234".into()),
    };
    domain::ship_parts(
        &mut dc,
        &mut initial,
        &net,
        &shipment,
        "sun.hao",
        T0 + 2 * MINUTE,
    )
    .unwrap();
    domain::receive_parts(&mut initial, "ps-1", "wang", T0 + 3 * MINUTE).unwrap();
    let doc = site_vector("care.json", &net, initial, &care_steps());
    let site = SiteDocument::read(&doc).expect("the result hydrates");
    assert_eq!(site.customers["c-2"].referred_by.as_deref(), Some("c-1"));
    let cell = &site.forecasts["2026-04"]["SDN-A"];
    assert_eq!(
        (cell.quantity, cell.adjusted.as_ref().map(|a| a.quantity)),
        (15, Some(10))
    );
    assert!(site.parts_shipments["ps-1"].received_at.is_some());
    // The planned follow-ups due, as core's report lists them, before the planned day,
    // on that CST day before the planned hour, and after: what the app's Today list must show.
    let planned = site.customers["c-1"].next_follow_up.unwrap();
    let net_scoped = care_network();
    let mut days = Vec::new();
    for at in [
        planned - 24 * 3_600_000,
        planned - 8 * 3_600_000,
        planned + 48 * 3_600_000,
    ] {
        let report = reports::follow_ups_due(&net_scoped, &[&site], at).unwrap();
        let due: Vec<&str> = report
            .rows
            .iter()
            .filter(|r| r.consultant == "wang")
            .map(|r| r.customer.as_str())
            .collect();
        days.push(json!({"at": at, "due": due}));
    }
    check_vector(
        "follow-ups.json",
        &json!({"document": "care.json", "consultant": "wang", "days": days}),
    );
}
