//! Customers: normalised phones, refusals, updates, events, the funnel, merges.

use super::*;

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
