//! Document vectors: operations step by step on a site and the network, as the web app replays them.

use super::*;

/// The schema example: a day's operations on a site document, the refusals among them,
/// and the document they leave (typed walk). The app replays the steps on `initial` with
/// its own domain module and must reach the same document.
#[test]
fn schema_vectors() {
    let (_, net) = network();
    let doc = site_vector("site-day.json", &net, initial_site(&net), &schema_steps());
    SiteDocument::read(&doc).expect("the result hydrates");
}

pub(crate) fn i(v: &Json, key: &str) -> i64 {
    v[key].as_i64().unwrap_or_else(|| panic!("{key} in {v}"))
}

/// The site document the schema vector starts from, written by the relay's actor:
/// a showroom with two vehicles in stock and one on order.
pub(crate) fn initial_site(net: &NetworkDocument) -> AutoCommit {
    let mut doc = AutoCommit::new().with_actor(ActorId::from(b"relay".to_vec()));
    domain::init_site_document(&mut doc, &site_header(), T0).unwrap();
    for (n, status) in [
        (1, VehicleStatus::InStock),
        (2, VehicleStatus::InStock),
        (3, VehicleStatus::Ordered),
    ] {
        let new = NewVehicle {
            vin: Vin::parse(&vin(n), CheckDigitPolicy::Enforce).unwrap(),
            model: "SDN-A".into(),
            trim: "lux".into(),
            colour: "白".into(),
            cost: None,
            list_price: None,
            status,
            eta: None,
        };
        domain::receive_vehicle(&mut doc, net, &new, "admin", T0).unwrap();
    }
    doc
}

pub(crate) fn ok() -> Json {
    json!("ok")
}

pub(crate) fn opt_s(v: &Json, key: &str) -> Option<String> {
    v[key].as_str().map(str::to_string)
}

pub(crate) fn refused(kind: &str) -> Json {
    json!({"error": kind})
}

pub(crate) fn s(v: &Json, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {v}"))
        .to_string()
}

/// A vector of steps on a site document: `steps` run on `doc` (the initial document)
/// with the network `net`; the vector holds both, the steps and the document they
/// leave. Check mode also replays the committed steps on the committed initial
/// document. Returns the document the steps leave.
pub(crate) fn site_vector(
    name: &str,
    net: &NetworkDocument,
    mut doc: AutoCommit,
    steps: &[Json],
) -> AutoCommit {
    let initial = hex::encode(doc.save());
    if !updating() {
        let v = read_vector(name);
        let mut committed = AutoCommit::load(&hex::decode(s(&v, "initial")).unwrap()).unwrap();
        let committed_net: NetworkDocument = serde_json::from_value(v["network"].clone()).unwrap();
        run_steps(
            &mut committed,
            &committed_net,
            v["steps"].as_array().unwrap(),
        );
        assert_eq!(typed_json(&committed), v["document"], "{name} document");
    }
    run_steps(&mut doc, net, steps);
    let value = json!({
        "network": net_json(net),
        "initial": initial,
        "steps": steps,
        "document": typed_json(&doc),
    });
    if updating() {
        check_vector(name, &value);
    } else {
        let v = read_vector(name);
        for key in ["steps", "document", "network"] {
            assert_eq!(v[key], value[key], "{name} {key}");
        }
    }
    doc
}

pub(crate) fn site_header() -> SiteHeader {
    SiteHeader {
        id: "sr-1".into(),
        name: "城东展厅".into(),
        kind: SiteKind::Showroom,
        parent: Some("dc-north".into()),
        channel: None,
    }
}

pub(crate) fn net_json(net: &NetworkDocument) -> Json {
    serde_json::to_value(net).unwrap()
}

/// What a consultant does in a day, with the refusals the app must make too.
pub(crate) fn schema_steps() -> Vec<Json> {
    let t = T0 + 10 * 3_600_000;
    let (v1, v2, v3) = (vin(1), vin(2), vin(3));
    vec![
        step(
            "add_customer",
            t,
            json!({"id": "c-1", "name": " 张伟 ", "phone": "138 1234 5678", "source": "walk_in",
                   "modelOfInterest": "SDN-A", "consultant": "wang"}),
            ok(),
        ),
        step(
            "add_customer",
            t + MINUTE,
            json!({"id": "c-2", "name": "李娜", "phone": "010-62345678", "source": "phone",
                   "modelOfInterest": null, "consultant": "wang"}),
            ok(),
        ),
        step(
            "add_customer",
            t + MINUTE,
            json!({"id": "c-3", "name": "王芳", "phone": "1381234567", "source": "roadshow",
                   "modelOfInterest": null, "consultant": "wang"}),
            refused("InvalidPhone"),
        ),
        step(
            "add_customer",
            t + MINUTE,
            json!({"id": "c-1", "name": "王芳", "phone": "13912345678", "source": "referral",
                   "modelOfInterest": null, "consultant": "wang"}),
            refused("CustomerExists"),
        ),
        step(
            "add_customer",
            t + MINUTE,
            json!({"id": "c-4", "name": "王芳", "phone": "13912345678", "source": "referral",
                   "modelOfInterest": "XYZ", "consultant": "wang"}),
            refused("UnknownModel"),
        ),
        step(
            "add_customer",
            t + MINUTE,
            json!({"id": "c-5", "name": "  ", "phone": "13912345678", "source": "referral",
                   "modelOfInterest": null, "consultant": "wang"}),
            refused("Invalid"),
        ),
        step(
            "record_event",
            t + 2 * MINUTE,
            json!({"customer": "c-2", "kind": "call", "at": t - 3_600_000, "note": " 问价格 ",
                   "direction": "inbound"}),
            ok(),
        ),
        step(
            "record_event",
            t + 2 * MINUTE,
            json!({"customer": "c-1", "kind": "test_drive", "at": t + MINUTE, "note": ""}),
            ok(),
        ),
        step(
            "record_event",
            t + 3 * MINUTE,
            json!({"customer": "c-1", "kind": "quote", "at": t + 3 * MINUTE, "amount": 14_800_000}),
            ok(),
        ),
        step(
            "record_event",
            t + 3 * MINUTE,
            json!({"customer": "c-1", "kind": "follow_up", "at": t + 3 * MINUTE + 6 * MINUTE}),
            refused("Invalid"),
        ),
        step(
            "record_event",
            t + 3 * MINUTE,
            json!({"customer": "c-1", "kind": "visit", "at": t, "direction": "outbound"}),
            refused("Invalid"),
        ),
        step(
            "record_event",
            t + 3 * MINUTE,
            json!({"customer": "c-1", "kind": "survey", "at": t}),
            refused("Invalid"),
        ),
        step(
            "record_event",
            t + 3 * MINUTE,
            json!({"customer": "c-1", "kind": "quote", "at": t, "amount": -1}),
            refused("NegativeQuantity"),
        ),
        step(
            "record_event",
            t + 3 * MINUTE,
            json!({"customer": "c-9", "kind": "visit", "at": t}),
            refused("UnknownCustomer"),
        ),
        step(
            "record_event",
            t + 3 * MINUTE,
            json!({"customer": "c-1", "kind": "delivery", "at": t}),
            refused("Invalid"),
        ),
        step(
            "record_event",
            t + 3 * MINUTE,
            json!({"customer": "c-1", "kind": "order", "at": t, "vin": "LSVAB2BRONM000001"}),
            refused("InvalidVin"),
        ),
        step(
            "record_walk_in",
            t + 4 * MINUTE,
            json!({"id": "w-1", "at": t + 4 * MINUTE, "partySize": 3, "modelOfInterest": "SUV-B",
                   "note": "年轻夫妇"}),
            ok(),
        ),
        step(
            "record_walk_in",
            t + 4 * MINUTE,
            json!({"id": "w-2", "at": t, "partySize": 0}),
            refused("Invalid"),
        ),
        step(
            "record_walk_in",
            t + 4 * MINUTE,
            json!({"id": "w-1", "at": t, "partySize": 1}),
            refused("Invalid"),
        ),
        step(
            "set_customer_status",
            t + 5 * MINUTE,
            json!({"customer": "c-1", "status": "negotiating"}),
            ok(),
        ),
        step(
            "set_customer_status",
            t + 5 * MINUTE,
            json!({"customer": "c-1", "status": "delivered"}),
            refused("IllegalCustomerTransition"),
        ),
        step(
            "sell",
            t + 6 * MINUTE,
            json!({"vin": v1, "customer": "c-1", "price": 14_800_000}),
            ok(),
        ),
        step(
            "sell",
            t + 6 * MINUTE,
            json!({"vin": v1, "customer": "c-2", "price": 14_800_000}),
            refused("IllegalVehicleTransition"),
        ),
        step(
            "sell",
            t + 6 * MINUTE,
            json!({"vin": v2, "customer": "c-2", "price": 13_000_000}),
            refused("DiscountNotApproved"),
        ),
        step(
            "sell",
            t + 6 * MINUTE,
            json!({"vin": v2}),
            refused("Invalid"),
        ),
        step(
            "sell",
            t + 6 * MINUTE,
            json!({"vin": v3, "customer": "c-2"}),
            refused("IllegalVehicleTransition"),
        ),
        step(
            "sell",
            t + 6 * MINUTE,
            json!({"vin": vin(4), "customer": "c-2"}),
            refused("UnknownVehicle"),
        ),
        step(
            "reserve",
            t + 7 * MINUTE,
            json!({"vin": v2, "customer": "c-2"}),
            ok(),
        ),
        step(
            "reserve",
            t + 7 * MINUTE,
            json!({"vin": v3, "customer": "c-2"}),
            refused("IllegalVehicleTransition"),
        ),
        step(
            "sell",
            t + 8 * MINUTE,
            json!({"vin": v2, "customer": "c-1"}),
            refused("Invalid"),
        ),
        step("release", t + 8 * MINUTE, json!({"vin": v2}), ok()),
        step(
            "reserve",
            t + 9 * MINUTE,
            json!({"vin": v2.to_lowercase(), "customer": "c-2"}),
            ok(),
        ),
        step(
            "sell",
            t + 10 * MINUTE,
            json!({"vin": v2, "customer": "c-2"}),
            ok(),
        ),
        step("deliver", t + 11 * MINUTE, json!({"vin": v2}), ok()),
        step(
            "deliver",
            t + 11 * MINUTE,
            json!({"vin": v2}),
            refused("IllegalVehicleTransition"),
        ),
        step(
            "set_forecast",
            t + 12 * MINUTE,
            json!({"month": "2026-04", "model": "SDN-A", "quantity": 12}),
            ok(),
        ),
        step(
            "set_forecast",
            t + 13 * MINUTE,
            json!({"month": "2026-04", "model": "SDN-A", "quantity": 14}),
            ok(),
        ),
        step(
            "set_forecast",
            t + 13 * MINUTE,
            json!({"month": "2026-4", "model": "SDN-A", "quantity": 1}),
            refused("MalformedMonth"),
        ),
        step(
            "set_forecast",
            t + 13 * MINUTE,
            json!({"month": "2026-04", "model": "SUV-B", "quantity": -2}),
            refused("NegativeQuantity"),
        ),
    ]
}

pub(crate) fn step(op: &str, now: i64, args: Json, expect: Json) -> Json {
    json!({"op": op, "by": "wang", "role": "consultant", "now": now, "args": args, "expect": expect})
}

/// Runs the steps of a vector, checking each one's expected outcome; a refused step
/// must leave the document unchanged.
pub(crate) fn run_steps(doc: &mut AutoCommit, net: &NetworkDocument, steps: &[Json]) {
    for step in steps {
        let before = doc.get_heads();
        let got = apply_op(doc, net, step);
        match (&step["expect"], got) {
            (Json::String(ok), Ok(())) if ok == "ok" => {}
            (want, Ok(())) => panic!("step {step} succeeded, expected {want}"),
            (want, Err(e)) => {
                assert_eq!(
                    want["error"].as_str(),
                    Some(error_kind(&e)),
                    "step {step}: {e}"
                );
                assert_eq!(
                    doc.get_heads(),
                    before,
                    "refused step {step} changed the doc"
                );
            }
        }
    }
}

/// Runs one operation of a vector on `doc`, as the app's domain module does.
pub(crate) fn apply_op(
    doc: &mut AutoCommit,
    net: &NetworkDocument,
    op: &Json,
) -> Result<(), DomainError> {
    let a = &op["args"];
    let by = s(op, "by");
    let now = i(op, "now");
    let role: Role = op["role"].as_str().unwrap_or("consultant").parse().unwrap();
    match s(op, "op").as_str() {
        "add_customer" => domain::add_customer(
            doc,
            net,
            &NewCustomer {
                id: s(a, "id"),
                name: s(a, "name"),
                phone: s(a, "phone"),
                source: s(a, "source").parse().unwrap(),
                model_of_interest: opt_s(a, "modelOfInterest"),
                consultant: opt_s(a, "consultant"),
            },
            &by,
            now,
        )
        .map(drop),
        "record_event" => {
            let vin = match opt_s(a, "vin") {
                Some(v) => Some(domain::parse_vin(&v, CheckDigitPolicy::Enforce)?),
                None => None,
            };
            let event = NewEvent {
                kind: s(a, "kind").parse().unwrap(),
                at: i(a, "at"),
                note: opt_s(a, "note"),
                amount: a["amount"].as_i64(),
                vin,
                score: a["score"].as_i64(),
                direction: opt_s(a, "direction").map(|d| d.parse().unwrap()),
            };
            domain::record_event(doc, &s(a, "customer"), &event, &by, now).map(drop)
        }
        "record_walk_in" => domain::record_walk_in(
            doc,
            net,
            &NewWalkIn {
                id: s(a, "id"),
                at: i(a, "at"),
                party_size: i(a, "partySize"),
                model_of_interest: opt_s(a, "modelOfInterest"),
                note: opt_s(a, "note"),
            },
            &by,
            now,
        )
        .map(drop),
        "set_customer_status" => domain::set_customer_status(
            doc,
            &s(a, "customer"),
            s(a, "status").parse().unwrap(),
            &by,
            now,
        ),
        "reserve" => domain::move_vehicle(
            doc,
            &s(a, "vin"),
            &VehicleAction::Reserve {
                customer: s(a, "customer"),
            },
            &by,
            now,
        ),
        "release" => domain::move_vehicle(doc, &s(a, "vin"), &VehicleAction::Release, &by, now),
        "deliver" => domain::move_vehicle(doc, &s(a, "vin"), &VehicleAction::Deliver, &by, now),
        "sell" => domain::sell_vehicle(
            doc,
            net,
            &s(a, "vin"),
            &Sale {
                customer: opt_s(a, "customer"),
                price: a["price"].as_i64(),
            },
            &by,
            role,
            now,
        ),
        "set_forecast" => domain::set_forecast(
            doc,
            net,
            &s(a, "month"),
            &s(a, "model"),
            i(a, "quantity"),
            &by,
            now,
        ),
        "resolve_double_booking" => {
            conflicts::resolve_double_booking(doc, &s(a, "vin"), &s(a, "customer"), &by, now)
        }
        "resolve_duplicate_customer" => {
            conflicts::resolve_duplicate_customer(doc, &s(a, "duplicate"), &s(a, "keep"), &by, now)
        }
        other => care::apply_care_op(doc, net, op).unwrap_or_else(|| panic!("unknown op {other}")),
    }
}

/// The name of a domain error's variant: what the vectors expect of a refusal.
pub(crate) fn error_kind(e: &DomainError) -> &'static str {
    match e {
        DomainError::InvalidVin { .. } => "InvalidVin",
        DomainError::InvalidPhone { .. } => "InvalidPhone",
        DomainError::UnknownModel { .. } => "UnknownModel",
        DomainError::UnknownTrim { .. } => "UnknownTrim",
        DomainError::UnknownCustomer { .. } => "UnknownCustomer",
        DomainError::MergedCustomer { .. } => "MergedCustomer",
        DomainError::CustomerExists { .. } => "CustomerExists",
        DomainError::UnknownVehicle { .. } => "UnknownVehicle",
        DomainError::VehicleExists { .. } => "VehicleExists",
        DomainError::IllegalCustomerTransition { .. } => "IllegalCustomerTransition",
        DomainError::IllegalVehicleTransition { .. } => "IllegalVehicleTransition",
        DomainError::WrongVehicleAction { .. } => "WrongVehicleAction",
        DomainError::DiscountNotApproved { .. } => "DiscountNotApproved",
        DomainError::NegativeQuantity { .. } => "NegativeQuantity",
        DomainError::MalformedMonth { .. } => "MalformedMonth",
        DomainError::Invalid { .. } => "Invalid",
        _ => "Other",
    }
}
