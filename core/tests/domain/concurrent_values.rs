//! Values written concurrently by other clients: the next write supersedes them; refusals leave the document unchanged.

use super::*;

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
