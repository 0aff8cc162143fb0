//! The same customer registered at two sites (业务重叠), found across documents and
//! listed with the site whose manager settles it.

mod common;

use common::*;
use dealersync_core::domain::{self, NewCustomer};
use dealersync_core::reports;
use dealersync_core::schema::{NetworkDocument, SiteDocument, SiteKind};

fn customer(id: &str, phone: &str, consultant: &str) -> NewCustomer {
    let mut c = new_customer(id, phone);
    c.consultant = Some(consultant.into());
    c
}

fn documents() -> (NetworkDocument, Vec<SiteDocument>) {
    let (_, net) = two_regions();
    let mut sr = site("sr-1");
    let mut rs = site_under("rs-1", SiteKind::Roadshow, "dc-north");
    let mut ag = site_under("ag-s1", SiteKind::Agent, "dc-south");
    // 138 0013 8000 at all three sites, typed three ways (one key: +8613800138000).
    domain::add_customer(
        &mut sr,
        &net,
        &customer("a1", "13800138000", "wang"),
        "wang",
        T0,
    )
    .unwrap();
    domain::add_customer(
        &mut rs,
        &net,
        &customer("b1", "138-0013-8000", "chen"),
        "chen",
        T0 + HOUR,
    )
    .unwrap();
    domain::add_customer(
        &mut ag,
        &net,
        &customer("c1", "+86 138 0013 8000", "liang"),
        "liang",
        T0 + 2 * HOUR,
    )
    .unwrap();
    // 139… at sr-1 and rs-1 only (one region).
    domain::add_customer(
        &mut sr,
        &net,
        &customer("a2", "13900139000", "wang"),
        "wang",
        T0,
    )
    .unwrap();
    domain::add_customer(
        &mut rs,
        &net,
        &customer("b2", "13900139000", "chen"),
        "chen",
        T0,
    )
    .unwrap();
    // A number at one site only, and a duplicate merged away within sr-1: neither is listed.
    domain::add_customer(
        &mut sr,
        &net,
        &customer("a3", "13700137000", "wang"),
        "wang",
        T0,
    )
    .unwrap();
    domain::add_customer(
        &mut ag,
        &net,
        &customer("c3", "13600136000", "liang"),
        "liang",
        T0,
    )
    .unwrap();
    domain::add_customer(
        &mut sr,
        &net,
        &customer("a4", "13600136000", "wang"),
        "wang",
        T0,
    )
    .unwrap();
    domain::add_customer(
        &mut sr,
        &net,
        &customer("a5", "13700137000", "li"),
        "li",
        T0,
    )
    .unwrap();
    domain::merge_customer(&mut sr, "a4", "a3", "wang", T0 + HOUR)
        .unwrap_or_else(|e| panic!("{e}"));
    let docs = [sr, rs, ag]
        .iter()
        .map(|d| SiteDocument::read(d).unwrap())
        .collect();
    (net, docs)
}

#[test]
fn the_same_phone_at_two_sites_is_listed_with_who_settles_it() {
    let (net, docs) = documents();
    let all: Vec<&SiteDocument> = docs.iter().collect();
    let r = reports::duplicate_customers(&net, &all).unwrap();
    let rows: Vec<_> = r
        .rows
        .iter()
        .map(|x| {
            (
                x.phone.as_str(),
                x.site.as_str(),
                x.customer.as_str(),
                x.settled_by.as_str(),
            )
        })
        .collect();
    // Tree order: hq → dc-north → rs-1, sr-1; dc-south → ag-s1. Across regions head
    // office settles; within dc-north its manager does.
    assert_eq!(
        rows,
        [
            ("+8613800138000", "rs-1", "b1", "hq"),
            ("+8613800138000", "sr-1", "a1", "hq"),
            ("+8613800138000", "ag-s1", "c1", "hq"),
            ("+8613900139000", "rs-1", "b2", "dc-north"),
            ("+8613900139000", "sr-1", "a2", "dc-north"),
        ]
    );
    assert_eq!(r.groups, 2);
    assert_eq!(r.rows[0].consultant.as_deref(), Some("chen"));

    // The north manager's device holds north's documents only: the 138 number shows
    // at two of its sites, the southern record is not seen.
    let north: Vec<&SiteDocument> = docs.iter().take(2).collect();
    let r = reports::duplicate_customers(&net, &north).unwrap();
    assert_eq!(r.groups, 2);
    assert!(
        r.rows
            .iter()
            .all(|x| x.site != "ag-s1" && x.settled_by == "dc-north")
    );
    assert!(r.sites_not_available.contains(&"ag-s1".to_string()));
}
