//! Site and network documents: headers, what is not a site document, sites, models and targets.

use super::*;

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
