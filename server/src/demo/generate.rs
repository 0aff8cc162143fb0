//! What is generated, from a fixed seed, into the demo documents: the network
//! document (catalogue, policy, targets) and each site's customers and vehicles.

use std::collections::BTreeMap;

use automerge::AutoCommit;
use dealersync_core::access::Role;
use dealersync_core::domain::{
    self, CheckDigitPolicy, DiscountDecision, DomainError, NewCustomer, NewEvent, NewVehicle,
    VehicleAction, Vin,
};
use dealersync_core::schema::{
    CustomerSource, CustomerStatus, DEFAULT_FORECAST_DEADLINE_DAY, EventKind, Millis,
    NetworkDocument, SiteKind, Target, VehicleModel, VehicleStatus, month_key,
};
use dealersync_core::time::DAY_MS;
use rand::Rng as _;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom as _;

use crate::registry::RegistryError;

use super::care::{COMPETITORS, LOST_REASONS, seed_care};
use super::catalogue::{
    COLOURS, DemoSite, GIVEN, MOBILE_PREFIXES, MODELS, SITES, SOURCES, SURNAMES,
};

/// The demo's manager (see the demo tokens), who approves discounts.
const DEMO_MANAGER: &str = "sun.hao";

pub(super) fn seed_network(doc: &mut AutoCommit, now: Millis) -> Result<(), RegistryError> {
    let by = "zhou.min";
    for m in MODELS {
        domain::put_model(
            doc,
            &VehicleModel {
                code: m.code.into(),
                name: m.name.into(),
                trims: m.trims.iter().map(|t| t.to_string()).collect(),
                cost: m.cost_yuan * 100,
                list_price: m.list_yuan * 100,
            },
            by,
            now,
        )?;
    }
    // Discount limits per role (fen): beyond these a manager approves.
    let limits: BTreeMap<String, i64> = [
        ("consultant", 300_000),
        ("manager", 1_000_000),
        ("head_office", 3_000_000),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    autosurgeon::reconcile_prop(doc, automerge::ROOT, "discountLimits", &limits)
        .map_err(|e| RegistryError::Invalid(format!("discount limits: {e}")))?;
    doc.commit();
    // Forecasts are due by the end of the 25th (the default, written out so the demo
    // shows where head office sets it).
    domain::set_forecast_deadline(doc, DEFAULT_FORECAST_DEADLINE_DAY, by, now)?;

    let months = recent_months(now, 6, 1);
    for s in SITES.iter().filter(|s| s.kind != SiteKind::HeadOffice) {
        // Monthly units in proportion to the site's size, revenue at ~150k yuan a car.
        let units = (s.customers as i64 / 6).max(3);
        for m in &months {
            domain::set_site_target(
                doc,
                s.id,
                m,
                &Target {
                    units,
                    revenue: units * 15_000_000,
                    visits: Some(units * 12),
                    calls: Some(units * 20),
                    test_drives: Some(units * 4),
                },
                by,
                now,
            )?;
        }
        let year = &month_key(now)[..4];
        domain::set_site_target(
            doc,
            s.id,
            year,
            &Target {
                units: units * 12,
                revenue: units * 12 * 15_000_000,
                ..Target::default()
            },
            by,
            now,
        )?;
    }
    Ok(())
}

/// Month keys from `back` months before `now` to `ahead` months after, in CST.
fn recent_months(now: Millis, back: i64, ahead: i64) -> Vec<String> {
    let key = month_key(now);
    let (y, m): (i64, i64) = (
        key[..4].parse().expect("month_key is YYYY-MM"),
        key[5..].parse().expect("month_key is YYYY-MM"),
    );
    let index = y * 12 + (m - 1);
    (index - back..=index + ahead)
        .map(|i| format!("{:04}-{:02}", i.div_euclid(12), i.rem_euclid(12) + 1))
        .collect()
}

/// A full Chinese name: a surname (biased to the common ones) and a given name.
pub fn chinese_name(rng: &mut StdRng) -> String {
    let i = (rng.random::<f64>().powi(2) * SURNAMES.len() as f64) as usize;
    let surname = SURNAMES[i.min(SURNAMES.len() - 1)];
    let given = GIVEN.choose(rng).copied().unwrap_or("伟");
    format!("{surname}{given}")
}

/// A valid Chinese mobile number, written the way people type it (`138 1234 5678`).
pub fn mobile_number(rng: &mut StdRng) -> String {
    let prefix = MOBILE_PREFIXES.choose(rng).copied().unwrap_or("138");
    let rest: u32 = rng.random_range(0..100_000_000);
    let rest = format!("{rest:08}");
    format!("{prefix} {} {}", &rest[..4], &rest[4..])
}

/// A VIN for a demo vehicle: world manufacturer `LDS` (a Chinese `L` prefix), the
/// model's descriptor, the ISO 3779 check digit, model year `T` (2026), plant and a
/// six-digit serial.
pub fn demo_vin(descriptor: &str, plant: char, serial: u32) -> Vin {
    let mut vin = format!("LDS{descriptor}0T{plant}{serial:06}");
    let check = domain::check_digit(&vin);
    vin.replace_range(8..9, &check.to_string());
    Vin::parse(&vin, CheckDigitPolicy::Enforce).expect("demo VINs are built valid")
}

pub(super) fn seed_site(
    doc: &mut AutoCommit,
    site: &DemoSite,
    net: &NetworkDocument,
    rng: &mut StdRng,
    serial: &mut u32,
    now: Millis,
) -> Result<(usize, usize), DomainError> {
    let plant = ['A', 'B', 'C', 'D', 'E'][rng.random_range(0..5)];
    let consultants: Vec<&str> = site.consultants.iter().map(|(id, _)| *id).collect();
    let mut new_vehicle = |rng: &mut StdRng, model: &str| -> NewVehicle {
        let m = MODELS
            .iter()
            .find(|m| m.code == model)
            .copied()
            .unwrap_or(MODELS[0]);
        *serial += 1;
        NewVehicle {
            vin: demo_vin(m.descriptor, plant, *serial),
            model: m.code.into(),
            trim: m.trims.choose(rng).copied().unwrap_or("舒适版").into(),
            colour: COLOURS.choose(rng).copied().unwrap_or("珍珠白").into(),
            cost: None,
            list_price: None,
            status: VehicleStatus::InStock,
            eta: None,
        }
    };
    let mut vehicles = 0;

    for n in 0..site.customers {
        let consultant = consultants[n % consultants.len()];
        let created = now - rng.random_range(2..180) * DAY_MS - rng.random_range(0..10) * 3_600_000;
        let model = MODELS.choose(rng).map(|m| m.code).unwrap_or("SDN-A");
        let source = if site.kind == SiteKind::Roadshow {
            CustomerSource::Roadshow
        } else {
            *SOURCES.choose(rng).unwrap_or(&CustomerSource::WalkIn)
        };
        let id = uuid::Builder::from_random_bytes(rng.random())
            .into_uuid()
            .to_string();
        domain::add_customer(
            doc,
            net,
            &NewCustomer {
                id: id.clone(),
                name: chinese_name(rng),
                phone: mobile_number(rng),
                source,
                model_of_interest: Some(model.into()),
                consultant: Some(consultant.into()),
            },
            consultant,
            created,
        )?;
        let first = if source == CustomerSource::Phone {
            EventKind::Call
        } else {
            EventKind::Visit
        };
        let mut t = created;
        domain::record_event(doc, &id, &NewEvent::new(first, t), consultant, t)?;
        // How far down the funnel this customer got.
        let stage: u32 = rng.random_range(0..100);
        let list_price = net.models.get(model).map(|m| m.list_price).unwrap_or(0);
        let step = |rng: &mut StdRng, t: &mut Millis| {
            *t = (*t + rng.random_range(1..6) * DAY_MS).min(now - 3_600_000);
        };
        if stage < 12 {
            step(rng, &mut t);
            let reason = LOST_REASONS.choose(rng).copied().unwrap_or("价格");
            let competitor = (reason == "选择竞品" || rng.random_bool(0.5))
                .then(|| COMPETITORS.choose(rng).copied().unwrap_or("吉利"));
            domain::record_event(
                doc,
                &id,
                &NewEvent {
                    note: Some(format!("流失：{reason}")),
                    ..NewEvent::new(EventKind::FollowUp, t)
                },
                consultant,
                t,
            )?;
            domain::mark_lost(doc, &id, reason, competitor, consultant, t)?;
            continue;
        }
        if stage < 35 {
            step(rng, &mut t);
            domain::record_event(doc, &id, &NewEvent::new(EventKind::Call, t), consultant, t)?;
            continue;
        }
        step(rng, &mut t);
        domain::record_event(
            doc,
            &id,
            &NewEvent::new(EventKind::TestDrive, t),
            consultant,
            t,
        )?;
        domain::set_customer_status(doc, &id, CustomerStatus::TestDrive, consultant, t)?;
        if stage < 55 {
            continue;
        }
        step(rng, &mut t);
        let discount = rng.random_range(0..8) * 100_000;
        domain::record_event(
            doc,
            &id,
            &NewEvent {
                amount: Some(list_price - discount),
                ..NewEvent::new(EventKind::Quote, t)
            },
            consultant,
            t,
        )?;
        domain::set_customer_status(doc, &id, CustomerStatus::Negotiating, consultant, t)?;
        if stage < 70 {
            continue;
        }
        // Ordered: a vehicle from stock is sold to the customer at the quoted price;
        // the sale records the order (and the delivery, the delivery event) on the
        // customer in the same change, the one source the KPIs count.
        step(rng, &mut t);
        let mut v = new_vehicle(rng, model);
        let vin = v.vin.clone();
        let arrived = t - rng.random_range(5..60) * DAY_MS;
        v.status = VehicleStatus::InStock;
        domain::receive_vehicle(doc, net, &v, consultant, arrived)?;
        vehicles += 1;
        let sale = domain::Sale {
            customer: Some(id.clone()),
            price: Some(list_price - discount),
        };
        if discount > domain::discount_limit(net, Role::Consultant) {
            domain::request_discount(doc, &id, vin.as_str(), discount, consultant, t)?;
            domain::decide_discount(
                doc,
                net,
                &id,
                vin.as_str(),
                DiscountDecision::Approve,
                DEMO_MANAGER,
                Role::Manager,
                t,
            )?;
        }
        domain::sell_vehicle(
            doc,
            net,
            vin.as_str(),
            &sale,
            consultant,
            Role::Consultant,
            t,
        )?;
        if stage < 85 {
            continue;
        }
        step(rng, &mut t);
        domain::move_vehicle(doc, vin.as_str(), &VehicleAction::Deliver, consultant, t)?;
        if rng.random_bool(0.5) && t + 7 * DAY_MS < now {
            let at = t + 7 * DAY_MS;
            domain::record_event(
                doc,
                &id,
                &NewEvent {
                    score: Some(rng.random_range(3..=5)),
                    ..NewEvent::new(EventKind::Survey, at)
                },
                consultant,
                at,
            )?;
        }
    }

    // One sale closed this month at every selling site, through the one-sale path
    // (sell and deliver record the customer's order and delivery), so the board and
    // the KPIs of the current month are never empty.
    let mut customers = site.customers;
    if site.customers > 0 {
        seed_sale_this_month(doc, net, rng, &mut new_vehicle, consultants[0], now)?;
        customers += 2;
        vehicles += 2;
    }

    // Stock on the books: mostly in stock (some slow movers), some on the way.
    for _ in 0..site.stock {
        let model = MODELS.choose(rng).map(|m| m.code).unwrap_or("SDN-A");
        let mut v = new_vehicle(rng, model);
        let by = consultants[0];
        let roll: u32 = rng.random_range(0..100);
        if roll < 15 {
            v.status = VehicleStatus::Ordered;
            v.eta = Some(now + rng.random_range(20..45) * DAY_MS);
            domain::receive_vehicle(doc, net, &v, by, now - rng.random_range(1..10) * DAY_MS)?;
        } else if roll < 30 {
            v.status = VehicleStatus::InTransit;
            v.eta = Some(now + rng.random_range(2..15) * DAY_MS);
            domain::receive_vehicle(doc, net, &v, by, now - rng.random_range(5..20) * DAY_MS)?;
        } else {
            // Arrival up to four months ago: the oldest are the slow movers.
            domain::receive_vehicle(doc, net, &v, by, now - rng.random_range(3..120) * DAY_MS)?;
        }
        vehicles += 1;
    }

    // Forecasts for next month from every site below head office (agents, showroom
    // and roadshows report to their centre, centres to head office), and consultant
    // targets for this month. Head office staff sell nothing: no consultant targets,
    // so the sales KPIs and the board do not count them.
    if site.kind != SiteKind::HeadOffice {
        let next = month_key(now + 31 * DAY_MS);
        for m in MODELS {
            let q = rng.random_range(1..12);
            domain::set_forecast(doc, net, &next, m.code, q, consultants[0], now)?;
        }
    }
    let this_month = month_key(now);
    let sellers: &[&str] = if site.kind == SiteKind::HeadOffice {
        &[]
    } else {
        &consultants
    };
    for c in sellers {
        domain::set_consultant_target(
            doc,
            c,
            &this_month,
            &Target {
                units: rng.random_range(4..10),
                revenue: rng.random_range(60..150) * 1_000_000,
                visits: Some(rng.random_range(40..90)),
                calls: Some(rng.random_range(80..160)),
                test_drives: Some(rng.random_range(10..30)),
            },
            "zhou.min",
            now,
        )?;
    }
    seed_care(doc, site, rng, now)?;
    Ok((customers, vehicles))
}

/// A walk-in who bought a car from stock and took delivery this month (CST): visit,
/// sale at a small discount, delivery, all between the month's start (or three days
/// ago, if later) and now; and another whose discount request waits for the manager.
fn seed_sale_this_month(
    doc: &mut AutoCommit,
    net: &NetworkDocument,
    rng: &mut StdRng,
    new_vehicle: &mut impl FnMut(&mut StdRng, &str) -> NewVehicle,
    consultant: &str,
    now: Millis,
) -> Result<(), DomainError> {
    let key = month_key(now);
    let first = chrono::NaiveDate::parse_from_str(&format!("{key}-01"), "%Y-%m-%d")
        .expect("month_key is YYYY-MM");
    let start = dealersync_core::time::cst_midnight(first).max(now - 3 * DAY_MS);
    let at = |k: i64| start + (now - start) * k / 4;
    let model = MODELS.choose(rng).map(|m| m.code).unwrap_or("SDN-A");
    let (id, vin) = walk_in_with_car(
        doc,
        net,
        rng,
        new_vehicle,
        model,
        consultant,
        at(0),
        at(0) - 20 * DAY_MS,
    )?;
    let list_price = net.models.get(model).map(|m| m.list_price).unwrap_or(0);
    let sale = domain::Sale {
        customer: Some(id),
        price: Some(list_price - 200_000),
    };
    domain::sell_vehicle(
        doc,
        net,
        vin.as_str(),
        &sale,
        consultant,
        Role::Consultant,
        at(1),
    )?;
    domain::move_vehicle(
        doc,
        vin.as_str(),
        &VehicleAction::Deliver,
        consultant,
        at(2),
    )?;

    // A second walk-in is negotiating a car in stock: 8,000 yuan off, above the
    // consultant's limit, waiting for the manager.
    let (id, vin) = walk_in_with_car(
        doc,
        net,
        rng,
        new_vehicle,
        model,
        consultant,
        at(0),
        at(0) - 10 * DAY_MS,
    )?;
    domain::request_discount(doc, &id, vin.as_str(), 800_000, consultant, at(3))?;
    Ok(())
}

/// A walk-in interested in `model`, visiting at `at`, and a car of that model received
/// into stock at `received`: the customer id and the VIN.
#[allow(clippy::too_many_arguments)]
fn walk_in_with_car(
    doc: &mut AutoCommit,
    net: &NetworkDocument,
    rng: &mut StdRng,
    new_vehicle: &mut impl FnMut(&mut StdRng, &str) -> NewVehicle,
    model: &str,
    consultant: &str,
    at: Millis,
    received: Millis,
) -> Result<(String, Vin), DomainError> {
    let id = uuid::Builder::from_random_bytes(rng.random())
        .into_uuid()
        .to_string();
    domain::add_customer(
        doc,
        net,
        &NewCustomer {
            id: id.clone(),
            name: chinese_name(rng),
            phone: mobile_number(rng),
            source: CustomerSource::WalkIn,
            model_of_interest: Some(model.into()),
            consultant: Some(consultant.into()),
        },
        consultant,
        at,
    )?;
    domain::record_event(
        doc,
        &id,
        &NewEvent::new(EventKind::Visit, at),
        consultant,
        at,
    )?;
    let v = new_vehicle(rng, model);
    let vin = v.vin.clone();
    domain::receive_vehicle(doc, net, &v, consultant, received)?;
    Ok((id, vin))
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng as _;

    use super::*;

    #[test]
    fn demo_vins_carry_a_valid_check_digit() {
        for m in MODELS {
            for serial in [1, 99_999, 123_456] {
                let vin = demo_vin(m.descriptor, 'A', serial);
                assert_eq!(vin.as_str().len(), 17);
                assert_eq!(
                    vin.as_str().as_bytes()[8] as char,
                    domain::check_digit(vin.as_str())
                );
            }
        }
        // A known VIN from ISO 3779's annex-style examples: 1M8GDM9AXKP042788.
        assert_eq!(domain::check_digit("1M8GDM9A_KP042788"), 'X');
    }

    #[test]
    fn names_and_phones_look_chinese_and_validate() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..500 {
            let name = chinese_name(&mut rng);
            let chars = name.chars().count();
            assert!((2..=4).contains(&chars), "{name}");
            assert!(name.chars().all(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)));
            let phone = mobile_number(&mut rng);
            let e164 = domain::normalise_phone(&phone).unwrap();
            assert!(
                e164.starts_with("+861") && e164.len() == 14,
                "{phone} {e164}"
            );
        }
    }

    #[test]
    fn recent_months_are_consecutive() {
        // 2026-03-15 12:00 CST.
        let now = 1_773_547_200_000;
        let months = recent_months(now, 6, 1);
        assert_eq!(months.first().unwrap(), "2025-09");
        assert_eq!(months.last().unwrap(), "2026-04");
        assert_eq!(months.len(), 8, "{months:?}");
    }
}
