//! Conformance vectors: the domain rules written down as data, for every other
//! implementation of them to run (the field app's TypeScript domain module runs the same
//! files, `clients/web/test/`).
//!
//! Each test builds its vector from `core` and compares it with the committed file in
//! `core/vectors/`; a difference fails with the path. `UPDATE_VECTORS=1 cargo test -p
//! dealersync-core --test conformance` rewrites the files instead, so they never drift
//! from core silently: a rule changed in Rust changes the vector, and the diff shows
//! what the other implementations must follow. Vectors that carry automerge documents
//! (as hex) are checked by replaying them through core, not by comparing bytes.

#[path = "conformance/care.rs"]
mod care;
mod common;

use std::path::PathBuf;

use automerge::{ActorId, AutoCommit};
use common::{T0, network};
use dealersync_core::access::Role;
use dealersync_core::conflicts;
use dealersync_core::domain::{
    self, CheckDigitPolicy, DomainError, NewCustomer, NewEvent, NewVehicle, NewWalkIn, Sale,
    VehicleAction, Vin, VinError,
};
use dealersync_core::schema::{
    CallDirection, CustomerSource, CustomerStatus, EventKind, NetworkDocument, SiteDocument,
    SiteHeader, SiteKind, VehicleStatus, typed_json,
};
use serde_json::{Value as Json, json};

const MINUTE: i64 = 60_000;

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors")
}

/// Compares `value` with the committed vector `name`, or writes it under UPDATE_VECTORS.
fn check_vector(name: &str, value: &Json) {
    let path = vectors_dir().join(name);
    if std::env::var_os("UPDATE_VECTORS").is_some() {
        std::fs::create_dir_all(vectors_dir()).unwrap();
        let mut text = serde_json::to_string_pretty(value).unwrap();
        text.push('\n');
        std::fs::write(&path, text).unwrap();
        return;
    }
    let committed: Json = serde_json::from_str(
        &std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}; run with UPDATE_VECTORS=1", path.display())),
    )
    .unwrap();
    assert!(
        &committed == value,
        "{} differs from what core computes; if the rule changed on purpose, run \
         UPDATE_VECTORS=1 cargo test -p dealersync-core --test conformance and commit the diff\n\
         core says: {}",
        path.display(),
        serde_json::to_string_pretty(value).unwrap()
    );
}

/// The committed vector `name`, parsed.
fn read_vector(name: &str) -> Json {
    let path = vectors_dir().join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn updating() -> bool {
    std::env::var_os("UPDATE_VECTORS").is_some()
}

/// A valid VIN (correct check digit) with serial `n`.
fn vin(n: u32) -> String {
    let mut s = format!("LSVAB2BR0NM{n:06}");
    let c = domain::check_digit(&s);
    s.replace_range(8..9, &c.to_string());
    s
}

fn vin_error(e: &VinError) -> Json {
    match e {
        VinError::Length { len } => json!({"kind": "length", "len": len}),
        VinError::ForbiddenLetter { ch, position } => {
            json!({"kind": "forbidden_letter", "ch": ch.to_string(), "position": position})
        }
        VinError::BadCharacter { ch, position } => {
            json!({"kind": "bad_character", "ch": ch.to_string(), "position": position})
        }
        VinError::CheckDigit { expected, found } => json!({
            "kind": "check_digit", "expected": expected.to_string(), "found": found.to_string()
        }),
    }
}

#[test]
fn vin_vectors() {
    let good = vin(1);
    let mut wrong_check = good.clone();
    let bad = if &good[8..9] == "1" { "2" } else { "1" };
    wrong_check.replace_range(8..9, bad);
    let mut cases: Vec<(String, &str)> = vec![
        ("1M8GDM9AXKP042788".into(), "enforce"),
        (" 1m8gdm9axkp042788 ".into(), "enforce"),
        ("11111111111111111".into(), "enforce"),
        (good.clone(), "enforce"),
        (good.to_lowercase(), "enforce"),
        (wrong_check.clone(), "enforce"),
        (wrong_check, "ignore"),
        ("1M8GDM9AXKP04278".into(), "enforce"),
        ("1M8GDM9AXKP0427888".into(), "enforce"),
        ("".into(), "enforce"),
        ("1M8GDM9AXKPO42788".into(), "enforce"),
        ("1M8GDM9AXKPI42788".into(), "ignore"),
        ("Q M8GDM9AXKP042788".into(), "enforce"),
        ("1M8GDM9AXKP0427_8".into(), "enforce"),
        ("1M8GDM9A1KP042788".into(), "enforce"),
        ("1M8GDM9A1KP042788".into(), "ignore"),
        ("1M8GDM9AXKP04278é".into(), "ignore"),
        ("1M8GDM9AXKP 42788".into(), "enforce"),
        ("LSVAB2BR NM000001".into(), "enforce"),
    ];
    // Every letter's transliteration, through the check digit of a VIN made with it.
    for ch in "ABCDEFGHJKLMNPRSTUVWXYZ".chars() {
        let mut s = format!("{ch}SVAB2BR0NM000017");
        let c = domain::check_digit(&s);
        s.replace_range(8..9, &c.to_string());
        cases.push((s, "enforce"));
    }
    let out: Vec<Json> = cases
        .iter()
        .map(|(input, policy)| {
            let p = if *policy == "ignore" {
                CheckDigitPolicy::Ignore
            } else {
                CheckDigitPolicy::Enforce
            };
            match Vin::parse(input, p) {
                Ok(v) => json!({"input": input, "policy": policy, "ok": true, "vin": v.as_str()}),
                Err(e) => json!({
                    "input": input, "policy": policy, "ok": false,
                    "error": vin_error(&e), "message": e.to_string()
                }),
            }
        })
        .collect();
    check_vector("vin.json", &json!({"cases": out}));
}

#[test]
fn phone_vectors() {
    let inputs = [
        "13812345678",
        "138 1234 5678",
        "138-1234-5678",
        "+86 138 1234 5678",
        "+8613812345678",
        "008613812345678",
        "8613812345678",
        "(+86) 138.1234.5678",
        "19912345678",
        "010-62345678",
        "(010) 2345 6789",
        "+86 10 62345678",
        "021 5555 1234",
        "0755-8765432",
        "0951-87654321",
        "1381234567",
        "12812345678",
        "138123456789",
        "138x1234567",
        "010-1234567",
        "0755-0123456",
        "021-12345678",
        "\u{3000}138x1234567",
        " - ",
        "",
        "62345678",
        "+1 415 555 0100",
        "++8613812345678",
        "00",
        "0755",
        "+86 0755 8765432",
    ];
    let out: Vec<Json> = inputs
        .iter()
        .map(|input| match domain::normalise_phone(input) {
            Ok(p) => json!({"input": input, "ok": true, "phone": p}),
            Err(e) => {
                let error = match &e {
                    domain::PhoneError::Empty => json!({"kind": "empty"}),
                    domain::PhoneError::BadCharacter { ch, position } => {
                        json!({"kind": "bad_character", "ch": ch.to_string(), "position": position})
                    }
                    domain::PhoneError::Mobile { digits, prefix } => {
                        json!({"kind": "mobile", "digits": digits, "prefix": prefix})
                    }
                    domain::PhoneError::Landline {
                        area,
                        expected,
                        found,
                    } => {
                        json!({"kind": "landline", "area": area, "expected": expected, "found": found})
                    }
                    domain::PhoneError::LocalPrefix { area, first } => {
                        json!({"kind": "local_prefix", "area": area, "first": first.to_string()})
                    }
                    domain::PhoneError::Unrecognised => json!({"kind": "unrecognised"}),
                };
                json!({"input": input, "ok": false, "error": error, "message": e.to_string()})
            }
        })
        .collect();
    check_vector("phone.json", &json!({"cases": out}));
}

#[test]
fn lifecycle_vectors() {
    let mut customer = Vec::new();
    for from in CustomerStatus::ALL {
        for to in CustomerStatus::ALL {
            customer.push(json!({
                "from": from.as_str(), "to": to.as_str(),
                "allowed": domain::customer_transition_allowed(*from, *to)
            }));
        }
    }
    let mut vehicle = Vec::new();
    for from in VehicleStatus::ALL {
        for to in VehicleStatus::ALL {
            vehicle.push(json!({
                "from": from.as_str(), "to": to.as_str(),
                "allowed": domain::vehicle_transition_allowed(*from, *to)
            }));
        }
    }
    let actions = [
        VehicleAction::Ship { eta: None },
        VehicleAction::Arrive,
        VehicleAction::Reserve {
            customer: "c".into(),
        },
        VehicleAction::Release,
        VehicleAction::Sell,
        VehicleAction::Deliver,
    ];
    let actions: Vec<Json> = actions
        .iter()
        .map(|a| {
            let from: Vec<&str> = VehicleStatus::ALL
                .iter()
                .filter(|s| a.applies_from(**s))
                .map(|s| s.as_str())
                .collect();
            json!({"action": a.name(), "from": from, "to": a.target().as_str()})
        })
        .collect();
    let enums = json!({
        "customerSource": CustomerSource::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "customerStatus": CustomerStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "eventKind": EventKind::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "callDirection": CallDirection::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "vehicleStatus": VehicleStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "siteKind": SiteKind::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
    });
    check_vector(
        "lifecycle.json",
        &json!({
            "customer": customer, "vehicle": vehicle, "vehicleActions": actions, "enums": enums,
            "clockSkewMs": domain::CLOCK_SKEW_MS, "maxPartySize": domain::MAX_PARTY_SIZE,
        }),
    );
}

// ---- documents -------------------------------------------------------------------------

/// The name of a domain error's variant: what the vectors expect of a refusal.
fn error_kind(e: &DomainError) -> &'static str {
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

fn s(v: &Json, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {v}"))
        .to_string()
}
fn opt_s(v: &Json, key: &str) -> Option<String> {
    v[key].as_str().map(str::to_string)
}
fn i(v: &Json, key: &str) -> i64 {
    v[key].as_i64().unwrap_or_else(|| panic!("{key} in {v}"))
}

/// Runs one operation of a vector on `doc`, as the app's domain module does.
pub fn apply_op(doc: &mut AutoCommit, net: &NetworkDocument, op: &Json) -> Result<(), DomainError> {
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

/// Runs the steps of a vector, checking each one's expected outcome; a refused step
/// must leave the document unchanged.
pub fn run_steps(doc: &mut AutoCommit, net: &NetworkDocument, steps: &[Json]) {
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

fn site_header() -> SiteHeader {
    SiteHeader {
        id: "sr-1".into(),
        name: "城东展厅".into(),
        kind: SiteKind::Showroom,
        parent: Some("dc-north".into()),
        channel: None,
    }
}

/// The site document the schema vector starts from, written by the relay's actor:
/// a showroom with two vehicles in stock and one on order.
fn initial_site(net: &NetworkDocument) -> AutoCommit {
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

fn step(op: &str, now: i64, args: Json, expect: Json) -> Json {
    json!({"op": op, "by": "wang", "role": "consultant", "now": now, "args": args, "expect": expect})
}

fn ok() -> Json {
    json!("ok")
}
fn refused(kind: &str) -> Json {
    json!({"error": kind})
}

/// What a consultant does in a day, with the refusals the app must make too.
fn schema_steps() -> Vec<Json> {
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

fn net_json(net: &NetworkDocument) -> Json {
    serde_json::to_value(net).unwrap()
}

/// The schema example: a day's operations on a site document, the refusals among them,
/// and the document they leave (typed walk). The app replays the steps on `initial` with
/// its own domain module and must reach the same document.
#[test]
fn schema_vectors() {
    let (_, net) = network();
    let doc = site_vector("site-day.json", &net, initial_site(&net), &schema_steps());
    SiteDocument::read(&doc).expect("the result hydrates");
}

/// A vector of steps on a site document: `steps` run on `doc` (the initial document)
/// with the network `net`; the vector holds both, the steps and the document they
/// leave. Check mode also replays the committed steps on the committed initial
/// document. Returns the document the steps leave.
fn site_vector(
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

/// Two offline copies of a showroom: each books the same VIN for a different customer,
/// and each enters the same person (one phone, typed differently).
fn conflict_fork() -> (NetworkDocument, AutoCommit) {
    let (_, net) = network();
    let mut base = initial_site(&net);
    let t = T0 + 10 * 3_600_000;
    for (id, phone) in [("c-a", "13811112222"), ("c-b", "13933334444")] {
        let new = NewCustomer {
            id: id.into(),
            name: format!("顾客 {id}"),
            phone: phone.into(),
            source: CustomerSource::WalkIn,
            model_of_interest: None,
            consultant: Some("wang".into()),
        };
        domain::add_customer(&mut base, &net, &new, "wang", t).unwrap();
    }
    let mut a = base.fork().with_actor(ActorId::from(b"phone-a".to_vec()));
    let mut b = base.fork().with_actor(ActorId::from(b"phone-b".to_vec()));
    let sale = |c: &str| Sale {
        customer: Some(c.into()),
        price: None,
    };
    let v = vin(1);
    let role = Role::Consultant;
    domain::sell_vehicle(&mut a, &net, &v, &sale("c-a"), "wang", role, t + MINUTE).unwrap();
    domain::sell_vehicle(&mut b, &net, &v, &sale("c-b"), "li", role, t + 2 * MINUTE).unwrap();
    let dup = |id: &str, phone: &str| NewCustomer {
        id: id.into(),
        name: "赵强".into(),
        phone: phone.into(),
        source: CustomerSource::Roadshow,
        model_of_interest: None,
        consultant: None,
    };
    domain::add_customer(
        &mut a,
        &net,
        &dup("c-x", "139 0000 1111"),
        "wang",
        t + 3 * MINUTE,
    )
    .unwrap();
    domain::add_customer(
        &mut b,
        &net,
        &dup("c-y", "+8613900001111"),
        "li",
        t + 4 * MINUTE,
    )
    .unwrap();
    a.merge(&mut b).unwrap();
    (net, a)
}

/// The conflict cases: the merged document (hex), the conflicts core lists on it, and
/// each resolution with the document and conflicts it leaves.
#[test]
fn conflict_vectors() {
    let (net, merged) = conflict_fork();
    let t = T0 + 11 * 3_600_000;
    let resolutions = vec![
        step(
            "resolve_double_booking",
            t,
            json!({"vin": vin(1), "customer": "c-b"}),
            ok(),
        ),
        step(
            "resolve_duplicate_customer",
            t + MINUTE,
            json!({"duplicate": "c-y", "keep": "c-x"}),
            ok(),
        ),
    ];
    let failing = vec![
        step(
            "resolve_double_booking",
            t,
            json!({"vin": vin(1), "customer": "c-x"}),
            refused("Invalid"),
        ),
        step(
            "resolve_duplicate_customer",
            t,
            json!({"duplicate": "c-x", "keep": "c-x"}),
            refused("Invalid"),
        ),
    ];
    let build = |doc: &AutoCommit| -> Json {
        let mut doc = doc.clone();
        let conflicts_before = serde_json::to_value(conflicts::detect(&[("sr-1", &doc)])).unwrap();
        run_steps(&mut doc, &net, &failing);
        let mut after = Vec::new();
        for r in &resolutions {
            run_steps(&mut doc, &net, std::slice::from_ref(r));
            after.push(json!({
                "conflicts": serde_json::to_value(conflicts::detect(&[("sr-1", &doc)])).unwrap(),
                "document": typed_json(&doc),
            }));
        }
        json!({
            "conflicts": conflicts_before,
            "refusals": failing,
            "resolutions": resolutions,
            "after": after,
        })
    };
    let mut value = build(&merged);
    if updating() {
        value["network"] = net_json(&net);
        value["merged"] = json!(hex::encode(merged.clone().save()));
        value["document"] = typed_json(&merged);
        check_vector("conflicts.json", &value);
    } else {
        let v = read_vector("conflicts.json");
        let committed = AutoCommit::load(&hex::decode(s(&v, "merged")).unwrap()).unwrap();
        let mut replay = build(&committed);
        replay["network"] = v["network"].clone();
        replay["merged"] = v["merged"].clone();
        replay["document"] = typed_json(&committed);
        assert_eq!(replay, v, "conflicts.json replayed on core");
        // And a fresh fork gives the same conflicts (ids depend on content, not bytes).
        assert_eq!(value["conflicts"], v["conflicts"]);
    }
}

/// A consultant's own figures, as the KPI report counts them, on the document the day of
/// `site-day.json` leaves: what the app's Today screen must show. With the period's
/// range in ms and the ISO week of the day's first operation, so the app's CST
/// calendar is checked too.
#[test]
fn figures_vectors() {
    use dealersync_core::reports;
    use dealersync_core::schema::Period;
    let (_, net) = network();
    let mut doc = initial_site(&net);
    run_steps(&mut doc, &net, &schema_steps());
    let site = SiteDocument::read(&doc).unwrap();
    let day = schema_steps()[0]["now"].as_i64().unwrap();
    let mut periods = Vec::new();
    for key in ["2026-03", "2026-W09", "2026-02"] {
        let period: Period = key.parse().unwrap();
        let report = reports::kpis(&net, &[&site], period).unwrap();
        let row = report.consultant("sr-1", "wang");
        let (start, end) = period.range_millis();
        let n = |f: fn(&reports::KpiRow) -> Option<i64>| row.and_then(f).unwrap_or(0);
        periods.push(json!({
            "period": key, "start": start, "end": end,
            "visits": n(|r| r.visits), "calls": n(|r| r.calls),
            "testDrives": n(|r| r.test_drives), "orders": n(|r| r.orders),
            "units": n(|r| r.deliveries), "revenue": n(|r| r.revenue),
        }));
    }
    check_vector(
        "figures.json",
        &json!({
            "document": "site-day.json", "consultant": "wang", "at": day,
            "monthOfAt": dealersync_core::time::month_key(day), "periods": periods,
        }),
    );
}
