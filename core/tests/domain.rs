//! Every domain operation, and every way it can be refused.

mod common;

use automerge::{AutoCommit, ReadDoc, ScalarValue, Value};
use common::*;
use dealersync_core::domain::{self, CheckDigitPolicy, CustomerUpdate, NewEvent, VehicleAction};
use dealersync_core::schema::{
    CustomerSource, CustomerStatus, EventKind, NetworkDocument, SiteDocument, SiteKind, Target,
    VehicleStatus,
};

fn site_with_customer() -> (AutoCommit, NetworkDocument) {
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

fn scalar_at(doc: &AutoCommit, path: &[&str]) -> Value<'static> {
    let mut obj = automerge::ROOT;
    for key in &path[..path.len() - 1] {
        obj = doc.get(&obj, *key).unwrap().unwrap().1;
    }
    doc.get(&obj, *path.last().unwrap())
        .unwrap()
        .unwrap()
        .0
        .into_owned()
}

#[test]
fn a_new_site_document_has_its_header_and_empty_collections() {
    let doc = site("sr-1");
    let read = SiteDocument::read(&doc).unwrap();
    assert_eq!(read.site.id, "sr-1");
    assert_eq!(read.site.kind, SiteKind::Showroom);
    assert_eq!(read.schema_version, dealersync_core::schema::SCHEMA_VERSION);
    assert!(read.customers.is_empty() && read.vehicles.is_empty() && read.parts.is_empty());
    assert_eq!(
        domain::site_header(&doc).unwrap().parent.as_deref(),
        Some("dc-north")
    );
    domain::check_site_document(&doc).unwrap();

    let mut doc = doc;
    let msg = refused(&mut doc, |d| {
        domain::init_site_document(d, &header("x", SiteKind::Agent, Some("hq")), T0)
    });
    assert_eq!(
        msg,
        "not a dealersync site document: the document is not empty"
    );
    let err = domain::create_site_document(&header("ag-1", SiteKind::Agent, None), T0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid site ag-1 parent: a agent site needs a parent site"
    );
}

#[test]
fn documents_that_are_not_site_documents_are_refused() {
    let net = domain::create_network_document(T0).unwrap();
    let err = domain::check_site_document(&net).unwrap_err();
    assert_eq!(
        err.to_string(),
        "not a dealersync site document: no `site` map at the root"
    );
    let mut empty = AutoCommit::new();
    let (_, network) = network();
    let msg = refused(&mut empty, |d| {
        domain::add_customer(d, &network, &new_customer("c1", "13812345678"), "w", T0)
    });
    assert_eq!(
        msg,
        "not a dealersync site document: no `customers` map at the root"
    );
    let mut newer = site("sr-1");
    {
        use automerge::transaction::Transactable;
        newer.put(automerge::ROOT, "schemaVersion", 99_u64).unwrap();
        newer.commit();
    }
    let err = domain::check_site_document(&newer).unwrap_err();
    assert_eq!(
        err.to_string(),
        "document has schemaVersion 99, this build reads up to 1"
    );
}

#[test]
fn network_document_holds_sites_models_and_site_targets() {
    let (mut doc, net) = network();
    assert_eq!(net.sites.len(), 4);
    assert_eq!(net.models["SDN-A"].trims, ["base", "lux"]);
    let t = Target {
        units: 40,
        revenue: 600_000_000,
        visits: Some(300),
        calls: None,
        test_drives: None,
    };
    domain::set_site_target(&mut doc, "dc-north", "2026-Q2", &t, "boss", T0).unwrap();
    let net = NetworkDocument::read(&doc).unwrap();
    assert_eq!(net.targets["dc-north"]["2026-Q2"], t);

    let msg = refused(&mut doc, |d| {
        domain::set_site_target(d, "dc-south", "2026", &t, "boss", T0)
    });
    assert_eq!(
        msg,
        "unknown site \"dc-south\": not in the network's site tree"
    );
    let msg = refused(&mut doc, |d| {
        domain::set_site_target(d, "dc-north", "2026-Q5", &t, "boss", T0)
    });
    assert_eq!(
        msg,
        "malformed period \"2026-Q5\": expected YYYY, YYYY-Qn, YYYY-MM, YYYY-Www or YYYY-MM-DD"
    );
    let bad = Target {
        units: -1,
        ..t.clone()
    };
    let msg = refused(&mut doc, |d| {
        domain::set_site_target(d, "dc-north", "2026", &bad, "boss", T0)
    });
    assert_eq!(msg, "target dc-north/2026 units cannot be negative, got -1");
    domain::set_discount_limit(&mut doc, "consultant", 300_000, "boss", T0).unwrap();
    assert_eq!(
        NetworkDocument::read(&doc).unwrap().discount_limits["consultant"],
        300_000
    );
    let msg = refused(&mut doc, |d| {
        domain::set_discount_limit(d, "intern", 1, "boss", T0)
    });
    assert_eq!(
        msg,
        "invalid discount limit role: \"intern\" is not one of consultant, manager, head_office, admin"
    );
    let msg = refused(&mut doc, |d| {
        domain::set_discount_limit(d, "manager", -1, "boss", T0)
    });
    assert_eq!(msg, "discount limit of manager cannot be negative, got -1");
    let msg = refused(&mut doc, |d| {
        domain::put_site(
            d,
            &header("ag-9", SiteKind::Agent, Some("dc-west")),
            "admin",
            T0,
        )
    });
    assert_eq!(
        msg,
        "unknown site \"dc-west\": not in the network's site tree"
    );
}

#[test]
fn add_customer_stores_a_normalised_phone_as_scalar_strings() {
    let (doc, _) = site_with_customer();
    let c = domain::get_customer(&doc, "c1").unwrap().unwrap();
    assert_eq!(c.phone, "+8613812345678");
    assert_eq!(c.status, CustomerStatus::Lead);
    assert_eq!(c.created_at, T0);
    assert!(c.events.is_empty() && c.merged_into.is_none());
    assert!(matches!(
        scalar_at(&doc, &["customers", "c1", "name"]),
        Value::Scalar(s) if matches!(s.as_ref(), ScalarValue::Str(_))
    ));
    assert!(matches!(
        scalar_at(&doc, &["customers", "c1", "status"]),
        Value::Scalar(s) if s.as_ref() == &ScalarValue::Str("lead".into())
    ));
    // The change names who did what, and its time is `now` in seconds.
    let mut doc = doc;
    let change = doc.get_last_local_change().unwrap();
    assert_eq!(change.message(), Some("wang: add customer c1"));
    assert_eq!(change.timestamp(), T0 / 1000);
}

#[test]
fn add_customer_refusals_name_the_problem() {
    let (mut doc, net) = site_with_customer();
    let msg = refused(&mut doc, |d| {
        domain::add_customer(d, &net, &new_customer("c1", "13912345678"), "wang", T0)
    });
    assert_eq!(msg, "customer \"c1\" already exists");
    let msg = refused(&mut doc, |d| {
        domain::add_customer(d, &net, &new_customer("c2", "1391234567"), "wang", T0)
    });
    assert_eq!(
        msg,
        "invalid phone number \"1391234567\" for customer c2: a mobile number is 11 digits starting 13-19, this has 10 digits starting 13"
    );
    let mut c = new_customer("c2", "13912345678");
    c.model_of_interest = Some("MPV-Z".into());
    let msg = refused(&mut doc, |d| domain::add_customer(d, &net, &c, "wang", T0));
    assert_eq!(
        msg,
        "unknown model \"MPV-Z\" in customer c2 modelOfInterest: not in the network catalogue"
    );
    let mut c = new_customer("c2", "13912345678");
    c.name = "  ".into();
    let msg = refused(&mut doc, |d| domain::add_customer(d, &net, &c, "wang", T0));
    assert_eq!(msg, "invalid customer c2 name: must not be empty");
    let msg = refused(&mut doc, |d| {
        domain::add_customer(d, &net, &new_customer("c 2", "13912345678"), "wang", T0)
    });
    assert_eq!(
        msg,
        "invalid customer id: \"c 2\" contains ' '; ids cannot contain spaces or '/'"
    );
}

#[test]
fn update_customer_writes_only_the_given_fields() {
    let (mut doc, net) = site_with_customer();
    let heads = doc.get_heads();
    let update = CustomerUpdate {
        phone: Some("+86 139-8765-4321".into()),
        consultant: Some(None),
        ..Default::default()
    };
    domain::update_customer(&mut doc, &net, "c1", &update, "li", T0 + HOUR).unwrap();
    let c = domain::get_customer(&doc, "c1").unwrap().unwrap();
    assert_eq!(c.phone, "+8613987654321");
    assert_eq!(c.consultant, None);
    assert_eq!(c.name, "顾客 c1");
    // Two puts, nothing else.
    let changes = doc.get_changes(&heads);
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].len(), 2);

    let msg = refused(&mut doc, |d| {
        domain::update_customer(d, &net, "c9", &update, "li", T0)
    });
    assert_eq!(msg, "unknown customer \"c9\" at this site");
    let bad = CustomerUpdate {
        model_of_interest: Some(Some("X".into())),
        ..Default::default()
    };
    let msg = refused(&mut doc, |d| {
        domain::update_customer(d, &net, "c1", &bad, "li", T0)
    });
    assert_eq!(
        msg,
        "unknown model \"X\" in customer c1 modelOfInterest: not in the network catalogue"
    );
}

#[test]
fn writing_a_customer_costs_the_same_whatever_the_site_size() {
    let (_, net) = network();
    let mut ops = Vec::new();
    for existing in [1usize, 300] {
        let mut doc = site("sr-1");
        for i in 0..existing {
            domain::add_customer(
                &mut doc,
                &net,
                &new_customer(&format!("x{i}"), "13800000000"),
                "w",
                T0,
            )
            .unwrap();
        }
        let heads = doc.get_heads();
        domain::add_customer(&mut doc, &net, &new_customer("new", "13912345678"), "w", T0).unwrap();
        domain::record_event(
            &mut doc,
            "new",
            &NewEvent::new(EventKind::Visit, T0),
            "w",
            T0,
        )
        .unwrap();
        ops.push(
            doc.get_changes(&heads)
                .iter()
                .map(|c| c.len())
                .sum::<usize>(),
        );
    }
    assert_eq!(ops[0], ops[1], "ops written with 1 vs 300 customers");
}

#[test]
fn events_are_appended_and_concurrent_appends_all_survive() {
    let (mut doc, _) = site_with_customer();
    let mut quote = NewEvent::new(EventKind::Quote, T0 + HOUR);
    quote.amount = Some(14_500_000);
    quote.note = Some(" 首付 30% ".into());
    domain::record_event(
        &mut doc,
        "c1",
        &NewEvent::new(EventKind::Visit, T0),
        "wang",
        T0,
    )
    .unwrap();
    domain::record_event(&mut doc, "c1", &quote, "wang", T0 + HOUR).unwrap();
    let c = domain::get_customer(&doc, "c1").unwrap().unwrap();
    assert_eq!(c.events.len(), 2);
    assert_eq!(c.events[1].kind, EventKind::Quote);
    assert_eq!(c.events[1].amount, Some(14_500_000));
    assert_eq!(c.events[1].note.as_deref(), Some("首付 30%"));
    assert_eq!(c.events[1].by, "wang");

    let mut a = device(&mut doc, "tablet-a");
    let mut b = device(&mut doc, "tablet-b");
    domain::record_event(
        &mut a,
        "c1",
        &NewEvent::new(EventKind::Call, T0 + 2 * HOUR),
        "wang",
        T0 + 2 * HOUR,
    )
    .unwrap();
    domain::record_event(
        &mut b,
        "c1",
        &NewEvent::new(EventKind::TestDrive, T0 + 2 * HOUR),
        "li",
        T0 + 2 * HOUR,
    )
    .unwrap();
    a.merge(&mut b).unwrap();
    b.merge(&mut a).unwrap();
    let ea = domain::get_customer(&a, "c1").unwrap().unwrap().events;
    let eb = domain::get_customer(&b, "c1").unwrap().unwrap().events;
    assert_eq!(ea, eb);
    assert_eq!(ea.len(), 4);
    let kinds: Vec<_> = ea[2..].iter().map(|e| e.kind).collect();
    assert!(kinds.contains(&EventKind::Call) && kinds.contains(&EventKind::TestDrive));
}

#[test]
fn event_refusals_name_the_problem() {
    let (mut doc, _) = site_with_customer();
    let msg = refused(&mut doc, |d| {
        domain::record_event(
            d,
            "nobody",
            &NewEvent::new(EventKind::Visit, T0),
            "wang",
            T0,
        )
    });
    assert_eq!(msg, "unknown customer \"nobody\" at this site");
    let mut e = NewEvent::new(EventKind::DiscountRequest, T0);
    e.amount = Some(-500);
    let msg = refused(&mut doc, |d| domain::record_event(d, "c1", &e, "wang", T0));
    assert_eq!(
        msg,
        "discount_request event amount of customer c1 cannot be negative, got -500"
    );
    let mut e = NewEvent::new(EventKind::Survey, T0);
    e.score = Some(6);
    let msg = refused(&mut doc, |d| domain::record_event(d, "c1", &e, "wang", T0));
    assert_eq!(
        msg,
        "invalid survey score of customer c1: must be 1 to 5, got 6"
    );
    let mut e = NewEvent::new(EventKind::Call, T0);
    e.score = Some(3);
    let msg = refused(&mut doc, |d| domain::record_event(d, "c1", &e, "wang", T0));
    assert_eq!(
        msg,
        "invalid call event score of customer c1: only surveys have a score"
    );
}

#[test]
fn customers_move_along_the_funnel_only() {
    let (mut doc, _) = site_with_customer();
    use CustomerStatus::*;
    for to in [TestDrive, Negotiating, Ordered, Delivered] {
        domain::set_customer_status(&mut doc, "c1", to, "wang", T0).unwrap();
    }
    let msg = refused(&mut doc, |d| {
        domain::set_customer_status(d, "c1", Ordered, "wang", T0)
    });
    assert_eq!(msg, "customer c1 cannot move from delivered to ordered");
    domain::set_customer_status(&mut doc, "c1", Lost, "wang", T0).unwrap();
    let msg = refused(&mut doc, |d| {
        domain::set_customer_status(d, "c1", Negotiating, "wang", T0)
    });
    assert_eq!(msg, "customer c1 cannot move from lost to negotiating");
    domain::set_customer_status(&mut doc, "c1", Lead, "wang", T0).unwrap();
    // Skipping the test drive is fine; delivering without an order is not.
    domain::set_customer_status(&mut doc, "c1", Negotiating, "wang", T0).unwrap();
    let msg = refused(&mut doc, |d| {
        domain::set_customer_status(d, "c1", Delivered, "wang", T0)
    });
    assert_eq!(msg, "customer c1 cannot move from negotiating to delivered");
    let msg = refused(&mut doc, |d| {
        domain::set_customer_status(d, "c1", Lead, "wang", T0)
    });
    assert_eq!(msg, "customer c1 cannot move from negotiating to lead");
    let msg = refused(&mut doc, |d| {
        domain::set_customer_status(d, "c2", Lost, "wang", T0)
    });
    assert_eq!(msg, "unknown customer \"c2\" at this site");
    assert_eq!(
        domain::get_customer(&doc, "c1").unwrap().unwrap().status,
        Negotiating
    );
}

#[test]
fn duplicate_customers_can_be_merged() {
    let (mut doc, net) = site_with_customer();
    domain::add_customer(
        &mut doc,
        &net,
        &new_customer("c2", "+86 13812345678"),
        "li",
        T0,
    )
    .unwrap();
    assert_eq!(
        domain::find_customers_by_phone(&doc, "138-1234-5678")
            .unwrap()
            .len(),
        2
    );
    domain::merge_customer(&mut doc, "c2", "c1", "boss", T0).unwrap();
    let listed: Vec<String> = domain::list_customers(&doc)
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(listed, ["c1"]);
    assert_eq!(
        domain::get_customer(&doc, "c2")
            .unwrap()
            .unwrap()
            .merged_into
            .as_deref(),
        Some("c1")
    );
    let msg = refused(&mut doc, |d| {
        domain::merge_customer(d, "c1", "c2", "boss", T0)
    });
    assert_eq!(
        msg,
        "invalid merge of customer c1: customer c2 was itself merged into c1; merge into that one"
    );
    // New history goes on the customer that remains.
    let msg = refused(&mut doc, |d| {
        domain::record_event(d, "c2", &NewEvent::new(EventKind::Call, T0), "li", T0)
    });
    assert_eq!(
        msg,
        "customer \"c2\" was merged into \"c1\"; use that customer"
    );
    let msg = refused(&mut doc, |d| {
        domain::set_customer_status(d, "c2", CustomerStatus::Lost, "li", T0)
    });
    assert_eq!(
        msg,
        "customer \"c2\" was merged into \"c1\"; use that customer"
    );
    let v = vin(31);
    domain::receive_vehicle(
        &mut doc,
        &net,
        &new_vehicle(&v, VehicleStatus::InStock),
        "li",
        T0,
    )
    .unwrap();
    let reserve = VehicleAction::Reserve {
        customer: "c2".into(),
    };
    let msg = refused(&mut doc, |d| {
        domain::move_vehicle(d, v.as_str(), &reserve, "li", T0)
    });
    assert_eq!(
        msg,
        "customer \"c2\" was merged into \"c1\"; use that customer"
    );
    let msg = refused(&mut doc, |d| {
        domain::merge_customer(d, "c1", "c1", "boss", T0)
    });
    assert_eq!(
        msg,
        "invalid merge of customer c1: a customer cannot be merged into itself"
    );
}

#[test]
fn vins_are_validated_with_an_explicit_check_digit_policy() {
    let e = domain::parse_vin("LSVAB2BR0NM00000I", CheckDigitPolicy::Enforce).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid VIN \"LSVAB2BR0NM00000I\": character 'I' at position 17 is not allowed in a VIN (I, O and Q are never used)"
    );
    let good = vin(42);
    let mut wrong = good.as_str().to_string();
    let other = if wrong.as_bytes()[8] == b'5' {
        "6"
    } else {
        "5"
    };
    wrong.replace_range(8..9, other);
    let e = domain::parse_vin(&wrong, CheckDigitPolicy::Enforce).unwrap_err();
    assert!(
        e.to_string().contains("check digit at position 9 is"),
        "{e}"
    );
    assert_eq!(
        domain::parse_vin(&wrong, CheckDigitPolicy::Ignore)
            .unwrap()
            .as_str(),
        wrong
    );
    assert_eq!(CheckDigitPolicy::default(), CheckDigitPolicy::Enforce);
}

#[test]
fn a_vehicle_walks_its_lifecycle() {
    let (mut doc, net) = site_with_customer();
    let v = vin(1);
    let eta = T0 + 72 * HOUR;
    let mut nv = new_vehicle(&v, VehicleStatus::Ordered);
    nv.eta = Some(eta);
    let got = domain::receive_vehicle(&mut doc, &net, &nv, "wang", T0).unwrap();
    assert_eq!(
        (got.cost, got.list_price),
        (12_000_000, 15_000_000),
        "prices from the catalogue"
    );
    assert_eq!(got.eta, Some(eta));
    let steps = [
        (
            VehicleAction::Ship {
                eta: Some(eta + HOUR),
            },
            VehicleStatus::InTransit,
        ),
        (VehicleAction::Arrive, VehicleStatus::InStock),
        (
            VehicleAction::Reserve {
                customer: "c1".into(),
            },
            VehicleStatus::Reserved,
        ),
        (VehicleAction::Release, VehicleStatus::InStock),
        (
            VehicleAction::Reserve {
                customer: "c1".into(),
            },
            VehicleStatus::Reserved,
        ),
        (VehicleAction::Sell, VehicleStatus::Sold),
        (VehicleAction::Deliver, VehicleStatus::Delivered),
    ];
    for (i, (action, status)) in steps.iter().enumerate() {
        let now = T0 + (i as i64 + 1) * HOUR;
        domain::move_vehicle(&mut doc, v.as_str(), action, "li", now).unwrap();
        let got = domain::get_vehicle(&doc, v.as_str()).unwrap().unwrap();
        assert_eq!(got.status, *status, "after {action:?}");
        assert_eq!(got.updated_at, now);
    }
    let got = domain::get_vehicle(&doc, &v.as_str().to_lowercase())
        .unwrap()
        .unwrap();
    assert_eq!(got.arrived_at, Some(T0 + 2 * HOUR));
    assert_eq!(got.sold_to.as_deref(), Some("c1"));
    assert_eq!(got.reserved_for.as_deref(), Some("c1"));
    assert_eq!(got.consultant.as_deref(), Some("li"));
    assert_eq!(
        domain::list_vehicles(&doc, Some(VehicleStatus::Delivered))
            .unwrap()
            .len(),
        1
    );
    assert!(
        domain::list_vehicles(&doc, Some(VehicleStatus::InStock))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn vehicle_refusals_name_the_problem() {
    let (mut doc, net) = site_with_customer();
    let v = vin(2);
    domain::receive_vehicle(
        &mut doc,
        &net,
        &new_vehicle(&v, VehicleStatus::InStock),
        "wang",
        T0,
    )
    .unwrap();

    let msg = refused(&mut doc, |d| {
        domain::receive_vehicle(
            d,
            &net,
            &new_vehicle(&v, VehicleStatus::InStock),
            "wang",
            T0,
        )
    });
    assert_eq!(
        msg,
        format!("vehicle {v} is already at site sr-1 with status in_stock")
    );
    let mut nv = new_vehicle(&vin(3), VehicleStatus::InStock);
    nv.model = "MPV-Z".into();
    let msg = refused(&mut doc, |d| {
        domain::receive_vehicle(d, &net, &nv, "wang", T0)
    });
    assert_eq!(
        msg,
        format!(
            "unknown model \"MPV-Z\" in vehicle {}: not in the network catalogue",
            vin(3)
        )
    );
    let mut nv = new_vehicle(&vin(3), VehicleStatus::InStock);
    nv.trim = "sport".into();
    let msg = refused(&mut doc, |d| {
        domain::receive_vehicle(d, &net, &nv, "wang", T0)
    });
    assert_eq!(
        msg,
        "unknown trim \"sport\" for model SDN-A; the catalogue lists: base, lux"
    );
    let mut nv = new_vehicle(&vin(3), VehicleStatus::InStock);
    nv.cost = Some(-1);
    let msg = refused(&mut doc, |d| {
        domain::receive_vehicle(d, &net, &nv, "wang", T0)
    });
    assert_eq!(
        msg,
        format!("vehicle {} cost cannot be negative, got -1", vin(3))
    );
    let nv = new_vehicle(&vin(3), VehicleStatus::Sold);
    let msg = refused(&mut doc, |d| {
        domain::receive_vehicle(d, &net, &nv, "wang", T0)
    });
    assert_eq!(
        msg,
        format!(
            "invalid vehicle {} status: a vehicle is received as ordered, in_transit or in_stock, not sold",
            vin(3)
        )
    );

    let msg = refused(&mut doc, |d| {
        domain::move_vehicle(d, v.as_str(), &VehicleAction::Sell, "li", T0)
    });
    assert_eq!(
        msg,
        format!("vehicle {v} cannot move from in_stock to sold")
    );
    let msg = refused(&mut doc, |d| {
        domain::move_vehicle(d, v.as_str(), &VehicleAction::Arrive, "li", T0)
    });
    assert_eq!(
        msg,
        format!("vehicle {v} cannot move from in_stock to in_stock")
    );
    let reserve_ghost = VehicleAction::Reserve {
        customer: "ghost".into(),
    };
    let msg = refused(&mut doc, |d| {
        domain::move_vehicle(d, v.as_str(), &reserve_ghost, "li", T0)
    });
    assert_eq!(msg, "unknown customer \"ghost\" at this site");
    let other = vin(99);
    let msg = refused(&mut doc, |d| {
        domain::move_vehicle(d, other.as_str(), &VehicleAction::Deliver, "li", T0)
    });
    assert_eq!(msg, format!("unknown vehicle \"{other}\" at site sr-1"));
}

#[test]
fn a_transfer_writes_both_sites_or_neither() {
    let (_, net) = network();
    let mut from = site("sr-1");
    let mut to = {
        let mut d = AutoCommit::new().with_actor(automerge::ActorId::from(b"site-rs-1".to_vec()));
        domain::init_site_document(
            &mut d,
            &header("rs-1", SiteKind::Roadshow, Some("dc-north")),
            T0,
        )
        .unwrap();
        d
    };
    let v = vin(5);
    domain::receive_vehicle(
        &mut from,
        &net,
        &new_vehicle(&v, VehicleStatus::InStock),
        "wang",
        T0,
    )
    .unwrap();
    domain::transfer_vehicle(
        &mut from,
        &mut to,
        &net,
        v.as_str(),
        Some(T0 + 48 * HOUR),
        "wang",
        T0 + HOUR,
    )
    .unwrap();
    let out = domain::get_vehicle(&from, v.as_str()).unwrap().unwrap();
    assert_eq!(out.status, VehicleStatus::TransferredOut);
    assert_eq!(out.transfer_to.as_deref(), Some("rs-1"));
    let arriving = domain::get_vehicle(&to, v.as_str()).unwrap().unwrap();
    assert_eq!(arriving.status, VehicleStatus::InTransit);
    assert_eq!(arriving.transfer_from.as_deref(), Some("sr-1"));
    assert_eq!(arriving.eta, Some(T0 + 48 * HOUR));
    assert_eq!(
        (arriving.model.as_str(), arriving.cost),
        ("SDN-A", 12_000_000)
    );

    // A second transfer is refused and neither document changes.
    let (fb, tb) = (from.save(), to.save());
    let err = domain::transfer_vehicle(&mut from, &mut to, &net, v.as_str(), None, "wang", T0)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("vehicle {v} cannot move from transferred_out to transferred_out")
    );
    assert!(from.save() == fb && to.save() == tb);
    // The vehicle arrives and can go back: the old transferred_out record is replaced.
    domain::move_vehicle(
        &mut to,
        v.as_str(),
        &VehicleAction::Arrive,
        "zhao",
        T0 + 50 * HOUR,
    )
    .unwrap();
    domain::transfer_vehicle(
        &mut to,
        &mut from,
        &net,
        v.as_str(),
        None,
        "zhao",
        T0 + 60 * HOUR,
    )
    .unwrap();
    let back = domain::get_vehicle(&from, v.as_str()).unwrap().unwrap();
    assert_eq!(
        (back.status, back.transfer_to, back.transfer_from.as_deref()),
        (VehicleStatus::InTransit, None, Some("rs-1"))
    );
    // A document cannot transfer to itself.
    let mut copy = from.fork();
    domain::move_vehicle(
        &mut from,
        v.as_str(),
        &VehicleAction::Arrive,
        "wang",
        T0 + 70 * HOUR,
    )
    .unwrap();
    copy.merge(&mut from).unwrap();
    let err = domain::transfer_vehicle(&mut from, &mut copy, &net, v.as_str(), None, "wang", T0)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("invalid transfer of vehicle {v}: both documents are site sr-1")
    );
}

#[test]
fn forecasts_are_validated_and_stored_per_month_and_model() {
    let (_, net) = network();
    let mut doc = site("sr-1");
    domain::set_forecast(&mut doc, &net, "2026-04", "SDN-A", 12, "wang", T0).unwrap();
    domain::set_forecast(&mut doc, &net, "2026-04", "SUV-B", 3, "wang", T0).unwrap();
    domain::set_forecast(&mut doc, &net, "2026-04", "SDN-A", 14, "li", T0 + HOUR).unwrap();
    let read = SiteDocument::read(&doc).unwrap();
    let cell = &read.forecasts["2026-04"]["SDN-A"];
    assert_eq!(
        (cell.quantity, cell.by.as_str(), cell.at),
        (14, "li", T0 + HOUR)
    );
    assert_eq!(read.forecasts["2026-04"]["SUV-B"].quantity, 3);

    for bad in ["2026-4", "2026-13", "April", "2026-04-01", "2026"] {
        let msg = refused(&mut doc, |d| {
            domain::set_forecast(d, &net, bad, "SDN-A", 1, "wang", T0)
        });
        assert_eq!(
            msg,
            format!("malformed month {bad:?}: expected YYYY-MM, e.g. 2026-03")
        );
    }
    let msg = refused(&mut doc, |d| {
        domain::set_forecast(d, &net, "2026-04", "SDN-A", -2, "wang", T0)
    });
    assert_eq!(
        msg,
        "forecast 2026-04/SDN-A quantity cannot be negative, got -2"
    );
    let msg = refused(&mut doc, |d| {
        domain::set_forecast(d, &net, "2026-04", "X9", 2, "wang", T0)
    });
    assert_eq!(
        msg,
        "unknown model \"X9\" in forecast 2026-04: not in the network catalogue"
    );
}

#[test]
fn parts_are_counters_that_add_up_across_devices() {
    let mut doc = site("sr-1");
    assert_eq!(
        domain::adjust_part(&mut doc, "OIL-5W30", 10, "wang", T0).unwrap(),
        10
    );
    assert!(matches!(
        scalar_at(&doc, &["parts", "OIL-5W30"]),
        Value::Scalar(s) if matches!(s.as_ref(), ScalarValue::Counter(_))
    ));
    let mut a = device(&mut doc, "tablet-a");
    let mut b = device(&mut doc, "tablet-b");
    domain::adjust_part(&mut a, "OIL-5W30", -3, "wang", T0).unwrap();
    domain::adjust_part(&mut b, "OIL-5W30", -4, "li", T0).unwrap();
    domain::adjust_part(&mut b, "OIL-5W30", 6, "li", T0).unwrap();
    a.merge(&mut b).unwrap();
    assert_eq!(domain::part_count(&a, "OIL-5W30").unwrap(), 9);
    assert_eq!(SiteDocument::read(&a).unwrap().parts["OIL-5W30"].value(), 9);

    let msg = refused(&mut a, |d| {
        domain::adjust_part(d, "OIL-5W30", -10, "wang", T0)
    });
    assert_eq!(
        msg,
        "part OIL-5W30: 9 on hand, a change of -10 would leave -1"
    );
    let msg = refused(&mut a, |d| domain::adjust_part(d, "MAT-01", -1, "wang", T0));
    assert_eq!(msg, "part MAT-01: 0 on hand, a change of -1 would leave -1");
    let msg = refused(&mut a, |d| domain::adjust_part(d, "", 1, "wang", T0));
    assert_eq!(msg, "invalid part number: must not be empty");
}

#[test]
fn consultant_targets_live_in_the_site_document() {
    let mut doc = site("sr-1");
    let t = Target {
        units: 4,
        revenue: 60_000_000,
        visits: Some(80),
        calls: Some(200),
        test_drives: Some(20),
    };
    domain::set_consultant_target(&mut doc, "wang", "2026-03", &t, "boss", T0).unwrap();
    domain::set_consultant_target(&mut doc, "wang", "2026-W10", &t, "boss", T0).unwrap();
    let read = SiteDocument::read(&doc).unwrap();
    assert_eq!(read.targets["wang"]["2026-03"], t);
    assert_eq!(read.targets["wang"].len(), 2);
    let msg = refused(&mut doc, |d| {
        domain::set_consultant_target(d, "wang", "2026-W60", &t, "boss", T0)
    });
    assert!(msg.starts_with("malformed period \"2026-W60\""), "{msg}");
    let bad = Target {
        calls: Some(-5),
        ..t
    };
    let msg = refused(&mut doc, |d| {
        domain::set_consultant_target(d, "wang", "2026", &bad, "boss", T0)
    });
    assert_eq!(msg, "target wang/2026 calls cannot be negative, got -5");
}

#[test]
fn customers_written_by_a_js_client_as_text_are_read() {
    use automerge::transaction::Transactable;
    let (mut doc, _) = site_with_customer();
    let c = doc.get(automerge::ROOT, "customers").unwrap().unwrap().1;
    let c1 = doc.get(&c, "c1").unwrap().unwrap().1;
    let text = doc
        .put_object(&c1, "phone", automerge::ObjType::Text)
        .unwrap();
    doc.splice_text(&text, 0, 0, "13812345678").unwrap();
    doc.commit();
    assert_eq!(
        domain::get_customer(&doc, "c1").unwrap().unwrap().phone,
        "13812345678"
    );
    assert_eq!(
        domain::find_customers_by_phone(&doc, "+86 138 1234 5678")
            .unwrap()
            .len(),
        1
    );
    let _ = CustomerSource::Web;
}

/// The JSON examples in docs/schema.md are real documents: they deserialise into the
/// schema types, and survive a round trip through automerge.
#[test]
fn the_documented_examples_are_valid_documents() {
    let md =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/schema.md")).unwrap();
    let blocks: Vec<&str> = md
        .split("```json\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    assert_eq!(blocks.len(), 2, "one example per document");
    let site: SiteDocument = serde_json::from_str(blocks[0]).unwrap();
    assert_eq!(site.vehicles.len(), 1);
    for vin in site.vehicles.keys() {
        domain::parse_vin(vin, CheckDigitPolicy::Enforce).unwrap();
    }
    for c in site.customers.values() {
        assert_eq!(domain::normalise_phone(&c.phone).unwrap(), c.phone);
    }
    let mut doc = AutoCommit::new();
    autosurgeon::reconcile(&mut doc, &site).unwrap();
    assert_eq!(SiteDocument::read(&doc).unwrap(), site);
    let net: NetworkDocument = serde_json::from_str(blocks[1]).unwrap();
    let mut doc = AutoCommit::new();
    autosurgeon::reconcile(&mut doc, &net).unwrap();
    assert_eq!(NetworkDocument::read(&doc).unwrap(), net);
    assert!(
        net.models
            .contains_key(&site.vehicles.values().next().unwrap().model)
    );
}

#[test]
fn a_refused_operation_never_takes_the_callers_pending_edits_with_it() {
    use automerge::transaction::Transactable;
    let (mut doc, net) = site_with_customer();
    let c = doc.get(automerge::ROOT, "customers").unwrap().unwrap().1;
    let c1 = doc.get(&c, "c1").unwrap().unwrap().1;
    doc.put(&c1, "name", "王先生").unwrap(); // left uncommitted by the caller
    let err = domain::add_customer(&mut doc, &net, &new_customer("c1", "13912345678"), "w", T0);
    assert!(err.is_err());
    domain::add_customer(&mut doc, &net, &new_customer("c2", "bad"), "w", T0).unwrap_err();
    assert_eq!(
        domain::get_customer(&doc, "c1").unwrap().unwrap().name,
        "王先生"
    );
    domain::add_customer(&mut doc, &net, &new_customer("c2", "13912345678"), "w", T0).unwrap();
    let name_change = doc.get_changes(&[]).into_iter().rev().nth(1).unwrap();
    assert_eq!(
        name_change.message(),
        None,
        "the caller's edit is its own change"
    );
}

#[test]
fn vehicles_written_by_a_js_client_as_text_still_move_and_are_checked() {
    use automerge::transaction::Transactable;
    let (mut doc, net) = site_with_customer();
    let v = vin(40);
    domain::receive_vehicle(
        &mut doc,
        &net,
        &new_vehicle(&v, VehicleStatus::InStock),
        "w",
        T0,
    )
    .unwrap();
    let vehicles = doc.get(automerge::ROOT, "vehicles").unwrap().unwrap().1;
    let obj = doc.get(&vehicles, v.as_str()).unwrap().unwrap().1;
    let text = doc
        .put_object(&obj, "status", automerge::ObjType::Text)
        .unwrap();
    doc.splice_text(&text, 0, 0, "in_stock").unwrap();
    doc.commit();
    // The text status counts as in stock for the two-site check ...
    let mut other = site("rs-1");
    domain::receive_vehicle(
        &mut other,
        &net,
        &new_vehicle(&v, VehicleStatus::InStock),
        "z",
        T0,
    )
    .unwrap();
    let found = dealersync_core::conflicts::detect(&[("sr-1", &doc), ("rs-1", &other)]);
    assert_eq!(found.len(), 1, "{found:#?}");
    // ... and the vehicle moves on, written back as a scalar.
    let reserve = VehicleAction::Reserve {
        customer: "c1".into(),
    };
    domain::move_vehicle(&mut doc, v.as_str(), &reserve, "w", T0).unwrap();
    assert!(matches!(
        scalar_at(&doc, &["vehicles", v.as_str(), "status"]),
        Value::Scalar(s) if s.as_ref() == &ScalarValue::Str("reserved".into())
    ));
}

#[test]
fn targets_created_on_two_devices_are_all_kept_by_the_next_write() {
    let mut base = site("sr-1");
    let mut a = device(&mut base, "tablet-a");
    let mut b = device(&mut base, "tablet-b");
    let t = |units| Target {
        units,
        ..Default::default()
    };
    domain::set_consultant_target(&mut a, "wang", "2026-03", &t(3), "boss", T0).unwrap();
    domain::set_consultant_target(&mut b, "wang", "2026-04", &t(4), "mgr", T0).unwrap();
    a.merge(&mut b).unwrap();
    // automerge shows one device's map for `wang` ...
    assert_eq!(SiteDocument::read(&a).unwrap().targets["wang"].len(), 1);
    // ... and the next target written for `wang` brings both back.
    domain::set_consultant_target(&mut a, "wang", "2026-05", &t(5), "boss", T0).unwrap();
    b.merge(&mut a).unwrap();
    let periods: Vec<(String, i64)> = SiteDocument::read(&b).unwrap().targets["wang"]
        .iter()
        .map(|(k, v)| (k.clone(), v.units))
        .collect();
    assert_eq!(
        periods,
        [
            ("2026-03".to_string(), 3),
            ("2026-04".to_string(), 4),
            ("2026-05".to_string(), 5)
        ]
    );
}

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

/// A JS client that wrote `reservedFor` as text (a plain string assignment) or left
/// optional fields out: the vehicle still sells, and reads back.
#[test]
fn a_vehicle_reserved_by_a_js_client_sells() {
    use automerge::transaction::Transactable;
    let (mut doc, net) = site_with_customer();
    let v = vin(41);
    domain::receive_vehicle(
        &mut doc,
        &net,
        &new_vehicle(&v, VehicleStatus::InStock),
        "w",
        T0,
    )
    .unwrap();
    let vehicles = doc.get(automerge::ROOT, "vehicles").unwrap().unwrap().1;
    let obj = doc.get(&vehicles, v.as_str()).unwrap().unwrap().1;
    doc.put(&obj, "status", "reserved").unwrap();
    let text = doc
        .put_object(&obj, "reservedFor", automerge::ObjType::Text)
        .unwrap();
    doc.splice_text(&text, 0, 0, "c1").unwrap();
    for absent in ["eta", "soldTo", "transferFrom", "transferTo"] {
        doc.delete(&obj, absent).unwrap();
    }
    doc.commit();
    // JS stores `schemaVersion: 1` as a signed integer.
    doc.put(automerge::ROOT, "schemaVersion", ScalarValue::Int(1))
        .unwrap();
    domain::check_site_document(&doc).unwrap();
    assert_eq!(SiteDocument::read(&doc).unwrap().schema_version, 1);
    let read = domain::get_vehicle(&doc, v.as_str()).unwrap().unwrap();
    assert_eq!(
        (read.reserved_for.as_deref(), read.eta, read.sold_to),
        (Some("c1"), None, None)
    );
    domain::move_vehicle(&mut doc, v.as_str(), &VehicleAction::Sell, "w", T0).unwrap();
    let sold = domain::get_vehicle(&doc, v.as_str()).unwrap().unwrap();
    assert_eq!(
        (sold.status, sold.sold_to.as_deref()),
        (VehicleStatus::Sold, Some("c1"))
    );
}

/// A forecast month or cell that a foreign client overwrote concurrently with a plain
/// value: whichever value automerge shows, the next `set_forecast` makes its quantity
/// the one readers see (no panic, no write into a hidden map).
#[test]
fn set_forecast_supersedes_a_concurrent_non_map_value() {
    use automerge::transaction::Transactable;
    let (_, net) = network();
    for (ours, theirs) in [("a-device", "z-js"), ("z-device", "a-js")] {
        for at_month in [false, true] {
            let mut doc = site("sr-1");
            if !at_month {
                domain::set_forecast(&mut doc, &net, "2026-04", "SUV-B", 1, "w", T0).unwrap();
            }
            let mut a = device(&mut doc, ours);
            let mut b = device(&mut doc, theirs);
            domain::set_forecast(&mut a, &net, "2026-04", "SDN-A", 5, "w", T0).unwrap();
            let forecasts = b.get(automerge::ROOT, "forecasts").unwrap().unwrap().1;
            if at_month {
                b.put(&forecasts, "2026-04", 7).unwrap();
            } else {
                let month = b.get(&forecasts, "2026-04").unwrap().unwrap().1;
                b.put(&month, "SDN-A", 7).unwrap();
            }
            b.commit();
            a.merge(&mut b).unwrap();
            domain::set_forecast(&mut a, &net, "2026-04", "SDN-A", 9, "w", T0 + HOUR)
                .unwrap_or_else(|e| panic!("{ours}/{theirs} month={at_month}: {e}"));
            let read = SiteDocument::read(&a)
                .unwrap_or_else(|e| panic!("{ours}/{theirs} month={at_month}: {e}"));
            assert_eq!(
                read.forecasts["2026-04"]["SDN-A"].quantity, 9,
                "{ours}/{theirs} month={at_month}"
            );
            if !at_month {
                assert_eq!(read.forecasts["2026-04"]["SUV-B"].quantity, 1);
            }
        }
    }
}

/// The same for a consultant's target map: a period set after a concurrent plain value
/// at the consultant's key is visible, and the periods already set are kept.
#[test]
fn set_consultant_target_supersedes_a_concurrent_non_map_value() {
    use automerge::transaction::Transactable;
    let t = |units| Target {
        units,
        revenue: 0,
        visits: None,
        calls: None,
        test_drives: None,
    };
    for (ours, theirs) in [("a-device", "z-js"), ("z-device", "a-js")] {
        let mut doc = site("sr-1");
        let mut a = device(&mut doc, ours);
        let mut b = device(&mut doc, theirs);
        domain::set_consultant_target(&mut a, "wang", "2026-03", &t(4), "mgr", T0).unwrap();
        let targets = b.get(automerge::ROOT, "targets").unwrap().unwrap().1;
        b.put(&targets, "wang", "oops").unwrap();
        b.commit();
        a.merge(&mut b).unwrap();
        domain::set_consultant_target(&mut a, "wang", "2026-04", &t(5), "mgr", T0).unwrap();
        let read = SiteDocument::read(&a).unwrap_or_else(|e| panic!("{ours}/{theirs}: {e}"));
        assert_eq!(read.targets["wang"]["2026-04"].units, 5, "{ours}/{theirs}");
        assert_eq!(read.targets["wang"]["2026-03"].units, 4, "{ours}/{theirs}");
    }
}

/// The operations not refused elsewhere in this file: the catalogue, an empty network
/// document, and the conflict resolutions. Each refusal leaves the document as it was.
#[test]
fn catalogue_and_resolution_refusals_leave_the_document_unchanged() {
    use dealersync_core::conflicts;
    use dealersync_core::schema::VehicleModel;
    let (mut net_doc, _) = network();
    let model = |code: &str, cost| VehicleModel {
        code: code.into(),
        name: "轿车 C".into(),
        trims: vec![],
        cost,
        list_price: 1,
    };
    let msg = refused(&mut net_doc, |d| {
        domain::put_model(d, &model("SDN-C", -5), "admin", T0)
    });
    assert_eq!(msg, "model SDN-C cost cannot be negative, got -5");
    let msg = refused(&mut net_doc, |d| {
        domain::put_model(d, &model("SDN C", 5), "admin", T0)
    });
    assert!(msg.starts_with("invalid model code"), "{msg}");
    let msg = refused(&mut net_doc, |d| domain::init_network_document(d, T0));
    assert_eq!(
        msg,
        "not a dealersync network document: the document is not empty"
    );

    let (mut doc, net) = site_with_customer();
    let v = vin(42);
    domain::receive_vehicle(
        &mut doc,
        &net,
        &new_vehicle(&v, VehicleStatus::InStock),
        "w",
        T0,
    )
    .unwrap();
    let msg = refused(&mut doc, |d| {
        conflicts::resolve_double_booking(d, v.as_str(), "c1", "boss", T0)
    });
    assert!(
        msg.contains(v.as_str()) && msg.contains("not one of the competing customers"),
        "{msg}"
    );
    // Absent records read as None, not as an error.
    assert_eq!(domain::get_vehicle(&doc, vin(43).as_str()).unwrap(), None);
    assert_eq!(domain::get_customer(&doc, "c9").unwrap(), None);
    let msg = refused(&mut doc, |d| {
        conflicts::resolve_double_booking(d, vin(43).as_str(), "c1", "boss", T0)
    });
    assert_eq!(msg, format!("unknown vehicle \"{}\" at site sr-1", vin(43)));
    let msg = refused(&mut doc, |d| {
        conflicts::resolve_stock_elsewhere(d, vin(43).as_str(), "rs-1", "boss", T0)
    });
    assert_eq!(msg, format!("unknown vehicle \"{}\" at site sr-1", vin(43)));
    let msg = refused(&mut doc, |d| {
        conflicts::resolve_stock_elsewhere(d, v.as_str(), "sr-1", "boss", T0)
    });
    assert!(msg.contains("gives the vehicle up"), "{msg}");
    let msg = refused(&mut doc, |d| {
        conflicts::resolve_duplicate_customer(d, "c1", "c9", "boss", T0)
    });
    assert_eq!(msg, "unknown customer \"c9\" at this site");
    let msg = refused(&mut doc, |d| {
        conflicts::resolve_forecast(d, &net, "2026-4", "SDN-A", 3, "boss", T0)
    });
    assert_eq!(
        msg,
        "malformed month \"2026-4\": expected YYYY-MM, e.g. 2026-03"
    );
    domain::move_vehicle(
        &mut doc,
        v.as_str(),
        &VehicleAction::Reserve {
            customer: "c1".into(),
        },
        "w",
        T0,
    )
    .unwrap();
    domain::move_vehicle(&mut doc, v.as_str(), &VehicleAction::Sell, "w", T0).unwrap();
    let msg = refused(&mut doc, |d| {
        conflicts::resolve_stock_elsewhere(d, v.as_str(), "rs-1", "boss", T0)
    });
    assert_eq!(
        msg,
        format!("vehicle {v} cannot move from sold to transferred_out")
    );
}
