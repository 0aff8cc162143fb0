//! Forecasts, parts counters and consultant targets.

use super::*;

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
