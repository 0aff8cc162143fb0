//! A small hand-built network shared by the domain, conflict and merge tests.
#![allow(dead_code)]

use automerge::{ActorId, AutoCommit};
use dealersync_core::domain::{self, CheckDigitPolicy, NewCustomer, NewVehicle, Vin};
use dealersync_core::schema::{
    CustomerSource, Millis, NetworkDocument, SiteHeader, SiteKind, VehicleModel, VehicleStatus,
};

/// 2026-03-01 00:00 CST.
pub const T0: Millis = 1_772_294_400_000;
pub const HOUR: Millis = 3_600_000;

/// The network document: head office, one distribution centre, a showroom and a
/// roadshow team; two models.
pub fn network() -> (AutoCommit, NetworkDocument) {
    let mut doc = AutoCommit::new().with_actor(ActorId::from(b"head-office".to_vec()));
    domain::init_network_document(&mut doc, T0).unwrap();
    for h in [
        header("hq", SiteKind::HeadOffice, None),
        header("dc-north", SiteKind::DistributionCentre, Some("hq")),
        header("sr-1", SiteKind::Showroom, Some("dc-north")),
        header("rs-1", SiteKind::Roadshow, Some("dc-north")),
    ] {
        domain::put_site(&mut doc, &h, "admin", T0).unwrap();
    }
    domain::put_model(
        &mut doc,
        &VehicleModel {
            code: "SDN-A".into(),
            name: "轿车 A".into(),
            trims: vec!["base".into(), "lux".into()],
            cost: 12_000_000,
            list_price: 15_000_000,
        },
        "admin",
        T0,
    )
    .unwrap();
    domain::put_model(
        &mut doc,
        &VehicleModel {
            code: "SUV-B".into(),
            name: "SUV B".into(),
            trims: vec![],
            cost: 20_000_000,
            list_price: 24_800_000,
        },
        "admin",
        T0,
    )
    .unwrap();
    // Consultants may give up to 10,000 yuan off without approval (no other role has a
    // limit here; the discount tests set their own).
    domain::set_discount_limit(&mut doc, "consultant", 1_000_000, "admin", T0).unwrap();
    let net = NetworkDocument::read(&doc).unwrap();
    (doc, net)
}

pub fn header(id: &str, kind: SiteKind, parent: Option<&str>) -> SiteHeader {
    SiteHeader {
        id: id.into(),
        name: format!("site {id}"),
        kind,
        parent: parent.map(Into::into),
        channel: None,
    }
}

/// A fresh site document created by actor `site-<id>`.
pub fn site(id: &str) -> AutoCommit {
    let mut doc = AutoCommit::new().with_actor(ActorId::from(format!("site-{id}").into_bytes()));
    domain::init_site_document(
        &mut doc,
        &header(id, SiteKind::Showroom, Some("dc-north")),
        T0,
    )
    .unwrap();
    doc
}

/// A fork of `doc` acting as device `name`.
pub fn device(doc: &mut AutoCommit, name: &str) -> AutoCommit {
    doc.fork()
        .with_actor(ActorId::from(name.as_bytes().to_vec()))
}

/// A valid VIN (correct check digit) with serial number `n`.
pub fn vin(n: u32) -> Vin {
    let mut s = format!("LSVAB2BR0NM{n:06}");
    let c = domain::check_digit(&s);
    s.replace_range(8..9, &c.to_string());
    Vin::parse(&s, CheckDigitPolicy::Enforce).unwrap()
}

pub fn new_customer(id: &str, phone: &str) -> NewCustomer {
    NewCustomer {
        id: id.into(),
        name: format!("顾客 {id}"),
        phone: phone.into(),
        source: CustomerSource::WalkIn,
        model_of_interest: Some("SDN-A".into()),
        consultant: Some("wang".into()),
    }
}

pub fn new_vehicle(v: &Vin, status: VehicleStatus) -> NewVehicle {
    NewVehicle {
        vin: v.clone(),
        model: "SDN-A".into(),
        trim: "lux".into(),
        colour: "白".into(),
        cost: None,
        list_price: None,
        status,
        eta: None,
    }
}

/// Merges every document into every other, so all hold the same changes.
pub fn sync_all(docs: &mut [&mut AutoCommit]) {
    for i in 0..docs.len() {
        for j in 0..docs.len() {
            if i != j {
                let (a, b) = if i < j {
                    let (l, r) = docs.split_at_mut(j);
                    (&mut *l[i], &mut *r[0])
                } else {
                    let (l, r) = docs.split_at_mut(i);
                    (&mut *r[0], &mut *l[j])
                };
                a.merge(b).unwrap();
            }
        }
    }
}

/// Runs an operation that must be refused and checks that the document's saved bytes
/// did not change; returns the error's message.
pub fn refused<T: std::fmt::Debug>(
    doc: &mut AutoCommit,
    op: impl FnOnce(&mut AutoCommit) -> Result<T, domain::DomainError>,
) -> String {
    let before = doc.save();
    let heads = doc.get_heads();
    let err = op(doc).expect_err("operation should be refused");
    assert_eq!(doc.get_heads(), heads, "heads changed after {err}");
    assert!(doc.save() == before, "document bytes changed after {err}");
    err.to_string()
}

/// Runs an operation that must succeed as exactly one automerge change.
pub fn one_change<T>(
    doc: &mut AutoCommit,
    op: impl FnOnce(&mut AutoCommit) -> Result<T, domain::DomainError>,
) -> T {
    let heads = doc.get_heads();
    let out = op(doc).unwrap_or_else(|e| panic!("operation refused: {e}"));
    assert_eq!(
        doc.get_changes(&heads).len(),
        1,
        "one operation, one change"
    );
    out
}

/// The shared network with a second region: `dc-south` and its agent `ag-s1`.
pub fn two_regions() -> (AutoCommit, NetworkDocument) {
    let (mut doc, _) = network();
    for h in [
        header("dc-south", SiteKind::DistributionCentre, Some("hq")),
        header("ag-s1", SiteKind::Agent, Some("dc-south")),
    ] {
        domain::put_site(&mut doc, &h, "admin", T0).unwrap();
    }
    let net = NetworkDocument::read(&doc).unwrap();
    (doc, net)
}

/// A fresh site document for site `id` under `parent`.
pub fn site_under(id: &str, kind: SiteKind, parent: &str) -> AutoCommit {
    let mut doc = AutoCommit::new().with_actor(ActorId::from(format!("site-{id}").into_bytes()));
    domain::init_site_document(&mut doc, &header(id, kind, Some(parent)), T0).unwrap();
    doc
}
