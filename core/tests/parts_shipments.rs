//! Parts a distribution centre ships to its agents (配件配送): counts move on both
//! sides, validation leaves both documents untouched, and the roll-up adds up.

mod common;

use std::collections::BTreeMap;

use automerge::AutoCommit;
use common::*;
use dealersync_core::domain::{self, NewShipment};
use dealersync_core::reports;
use dealersync_core::schema::{NetworkDocument, Period, SiteDocument, SiteKind};

fn lines(items: &[(&str, i64)]) -> BTreeMap<String, i64> {
    items.iter().map(|(p, q)| (p.to_string(), *q)).collect()
}

fn shipment(id: &str, items: &[(&str, i64)]) -> NewShipment {
    NewShipment {
        id: id.into(),
        lines: lines(items),
        note: Some("运单 SF1234".into()),
    }
}

/// dc-north with 50 oil filters and 10 wiper blades; its showroom sr-1; and ag-s1 of
/// the other region.
fn world() -> (NetworkDocument, AutoCommit, AutoCommit, AutoCommit) {
    let (_, net) = two_regions();
    let mut dc = site_under("dc-north", SiteKind::DistributionCentre, "hq");
    domain::adjust_part(&mut dc, "OIL-F", 50, "ma.li", T0).unwrap();
    domain::adjust_part(&mut dc, "WIPER", 10, "ma.li", T0).unwrap();
    (
        net,
        dc,
        site("sr-1"),
        site_under("ag-s1", SiteKind::Agent, "dc-south"),
    )
}

fn count(doc: &AutoCommit, part: &str) -> i64 {
    domain::part_count(doc, part).unwrap()
}

#[test]
fn a_shipment_moves_counts_when_sent_and_when_received() {
    let (net, mut dc, mut sr, _) = world();
    let s = domain::ship_parts(
        &mut dc,
        &mut sr,
        &net,
        &shipment("p1", &[("OIL-F", 20), ("WIPER", 4)]),
        "ma.li",
        T0 + HOUR,
    )
    .unwrap();
    assert_eq!((s.from.as_str(), s.to.as_str()), ("dc-north", "sr-1"));
    // The centre's counts go down at once; the showroom's only on arrival.
    assert_eq!((count(&dc, "OIL-F"), count(&dc, "WIPER")), (30, 6));
    assert_eq!(count(&sr, "OIL-F"), 0);
    let heads = sr.get_heads();
    let got = domain::receive_parts(&mut sr, "p1", "wang", T0 + 30 * HOUR).unwrap();
    assert_eq!(sr.get_changes(&heads).len(), 1);
    assert_eq!(got.received_at, Some(T0 + 30 * HOUR));
    assert_eq!((count(&sr, "OIL-F"), count(&sr, "WIPER")), (20, 4));
    let msg = refused(&mut sr, |d| {
        domain::receive_parts(d, "p1", "wang", T0 + 31 * HOUR)
    });
    assert!(msg.contains("already received"), "{msg}");
    let msg = refused(&mut dc, |d| {
        domain::receive_parts(d, "p1", "ma.li", T0 + 31 * HOUR)
    });
    assert!(msg.contains("the receiver records it"), "{msg}");
}

#[test]
fn a_bad_shipment_changes_neither_document() {
    let (net, mut dc, mut sr, mut south) = world();
    let cases: Vec<(NewShipment, &str)> = vec![
        (
            shipment("p1", &[("OIL-F", 51)]),
            "50 on hand, a change of -51",
        ),
        (
            shipment("p1", &[("OIL-F", 0)]),
            "a quantity above zero, got 0",
        ),
        (shipment("p1", &[]), "name at least one part"),
        (shipment("p 1", &[("OIL-F", 1)]), "cannot contain spaces"),
        (shipment("p1", &[("BAD PART", 1)]), "cannot contain spaces"),
    ];
    for (new, expected) in cases {
        let (db, sb) = (dc.save(), sr.save());
        let err = domain::ship_parts(&mut dc, &mut sr, &net, &new, "ma.li", T0).unwrap_err();
        assert!(
            err.to_string().contains(expected),
            "{err} should say {expected}"
        );
        assert!(dc.save() == db && sr.save() == sb, "unchanged after {err}");
    }
    // Another region's agent is not below this centre; a showroom is not a centre.
    let new = shipment("p1", &[("OIL-F", 1)]);
    let err = domain::ship_parts(&mut dc, &mut south, &net, &new, "ma.li", T0).unwrap_err();
    assert!(
        err.to_string()
            .contains("not a site below distribution centre dc-north"),
        "{err}"
    );
    let err = domain::ship_parts(&mut sr, &mut dc, &net, &new, "wang", T0).unwrap_err();
    assert!(
        err.to_string()
            .contains("sr-1 is not a distribution centre"),
        "{err}"
    );
    // An id is used once.
    domain::ship_parts(&mut dc, &mut sr, &net, &new, "ma.li", T0).unwrap();
    let err = domain::ship_parts(&mut dc, &mut sr, &net, &new, "ma.li", T0).unwrap_err();
    assert!(err.to_string().contains("already recorded"), "{err}");
    assert_eq!(count(&dc, "OIL-F"), 49);
}

#[test]
fn the_roll_up_counts_shipped_received_and_on_the_way() {
    let (net, mut dc, mut sr, _) = world();
    let mut rs = site_under("rs-1", SiteKind::Roadshow, "dc-north");
    // March: p1 to sr-1 (OIL-F 20, WIPER 4), received; p2 to sr-1 (OIL-F 5), on the
    // way; p3 to rs-1 (OIL-F 10), received. April: p4 to rs-1 (WIPER 2).
    let day = 24 * HOUR;
    domain::ship_parts(
        &mut dc,
        &mut sr,
        &net,
        &shipment("p1", &[("OIL-F", 20), ("WIPER", 4)]),
        "ma.li",
        T0 + day,
    )
    .unwrap();
    domain::ship_parts(
        &mut dc,
        &mut sr,
        &net,
        &shipment("p2", &[("OIL-F", 5)]),
        "ma.li",
        T0 + 2 * day,
    )
    .unwrap();
    domain::ship_parts(
        &mut dc,
        &mut rs,
        &net,
        &shipment("p3", &[("OIL-F", 10)]),
        "ma.li",
        T0 + 3 * day,
    )
    .unwrap();
    domain::ship_parts(
        &mut dc,
        &mut rs,
        &net,
        &shipment("p4", &[("WIPER", 2)]),
        "ma.li",
        T0 + 31 * day,
    )
    .unwrap();
    domain::receive_parts(&mut sr, "p1", "wang", T0 + 2 * day).unwrap();
    domain::receive_parts(&mut rs, "p3", "chen", T0 + 4 * day).unwrap();
    let (dcd, srd, rsd) = (
        SiteDocument::read(&dc).unwrap(),
        SiteDocument::read(&sr).unwrap(),
        SiteDocument::read(&rs).unwrap(),
    );
    let march = Period::Month(2026, 3);
    let r = reports::parts_distribution(&net, &[&dcd, &srd, &rsd], march).unwrap();
    let rows: Vec<_> = r
        .rows
        .iter()
        .map(|x| {
            (
                x.to.as_str(),
                x.part.as_str(),
                x.shipments,
                x.shipped,
                x.received,
                x.in_transit,
                x.agent_on_hand,
            )
        })
        .collect();
    // Agents in tree order (children by id). sr-1 OIL-F: 20 + 5 shipped in 2 shipments, 20 arrived, 5 on the way; it holds 20.
    assert_eq!(
        rows,
        [
            ("rs-1", "OIL-F", 1, 10, 10, 0, Some(10)),
            ("sr-1", "OIL-F", 2, 25, 20, 5, Some(20)),
            ("sr-1", "WIPER", 1, 4, 4, 0, Some(4)),
        ]
    );
    assert_eq!(r.centres.len(), 1);
    let c = &r.centres[0];
    // 3 shipments; 25 + 4 + 10 = 39 units; 20 + 4 + 10 = 34 arrived; 5 on the way.
    assert_eq!(
        (c.shipments, c.shipped, c.received, c.in_transit),
        (3, 39, 34, 5)
    );

    // The centre's device without the agents' documents: its own copies, nothing
    // received yet as far as it knows, and no agent counts.
    let r = reports::parts_distribution(&net, &[&dcd], march).unwrap();
    assert_eq!(r.centres[0].received, 0);
    assert!(r.rows.iter().all(|x| x.agent_on_hand.is_none()));
    // The showroom's device alone sees its own shipments and its arrival.
    let r = reports::parts_distribution(&net, &[&srd], march).unwrap();
    assert_eq!((r.centres[0].shipped, r.centres[0].received), (29, 24));
    // April holds only p4.
    let r = reports::parts_distribution(&net, &[&dcd, &rsd], Period::Month(2026, 4)).unwrap();
    assert_eq!(r.rows.len(), 1);
    assert_eq!(
        (
            r.rows[0].part.as_str(),
            r.rows[0].shipped,
            r.rows[0].in_transit
        ),
        ("WIPER", 2, 2)
    );
}
