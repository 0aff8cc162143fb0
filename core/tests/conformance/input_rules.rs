//! VIN, phone and status-lifecycle vectors.

use super::*;

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
        "customerArea": CustomerArea::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
    });
    check_vector(
        "lifecycle.json",
        &json!({
            "customer": customer, "vehicle": vehicle, "vehicleActions": actions, "enums": enums,
            "clockSkewMs": domain::CLOCK_SKEW_MS, "maxPartySize": domain::MAX_PARTY_SIZE,
            "slowMoverDays": dealersync_core::reports::DEFAULT_SLOW_MOVER_DAYS,
        }),
    );
}
