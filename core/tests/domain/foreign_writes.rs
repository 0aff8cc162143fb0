//! Documents written by JS clients and the documented examples; refusals keep the caller's pending edits.

use super::*;

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
