//! Conflict and figures vectors.

use super::*;

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
