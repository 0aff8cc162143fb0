//! Site channels (直销 / 总代理 / 特许代理 / 品牌专卖) in the network document.

mod common;

use automerge::AutoCommit;
use automerge::ReadDoc;
use common::{T0, header, network};
use dealersync_core::domain::{self, DomainError};
use dealersync_core::schema::{NetworkDocument, SiteChannel, SiteKind};

/// A refused operation leaves the document byte-for-byte unchanged.
fn refused(
    doc: &mut AutoCommit,
    op: impl FnOnce(&mut AutoCommit) -> Result<(), DomainError>,
) -> DomainError {
    let before = doc.save();
    let err = op(doc).unwrap_err();
    assert!(doc.save() == before, "document bytes changed after {err}");
    err
}

#[test]
fn a_channel_is_set_read_kept_and_cleared() {
    let (mut doc, net) = network();
    // Documents written before channels existed read without one.
    assert_eq!(net.sites["sr-1"].channel, None);

    domain::set_site_channel(&mut doc, "sr-1", Some(SiteChannel::Direct), "admin", T0).unwrap();
    let net = NetworkDocument::read(&doc).unwrap();
    assert_eq!(net.sites["sr-1"].channel, Some(SiteChannel::Direct));
    // Stored as a plain string a JavaScript client reads.
    let sites = doc.get(automerge::ROOT, "sites").unwrap().unwrap().1;
    let sr1 = doc.get(&sites, "sr-1").unwrap().unwrap().1;
    let (value, _) = doc.get(&sr1, "channel").unwrap().unwrap();
    assert_eq!(value.as_str(), Some("direct"));
    // In JSON too, under `channel`.
    let json = serde_json::to_value(&net.sites["sr-1"]).unwrap();
    assert_eq!(json["channel"], "direct");

    // The registry re-puts a header without a channel on a rename: the channel stays.
    let mut renamed = header("sr-1", SiteKind::Showroom, Some("dc-north"));
    renamed.name = "城东展厅".into();
    domain::put_site(&mut doc, &renamed, "registry", T0).unwrap();
    let net = NetworkDocument::read(&doc).unwrap();
    assert_eq!(net.sites["sr-1"].name, "城东展厅");
    assert_eq!(net.sites["sr-1"].channel, Some(SiteChannel::Direct));

    domain::set_site_channel(&mut doc, "sr-1", None, "admin", T0).unwrap();
    assert_eq!(
        NetworkDocument::read(&doc).unwrap().sites["sr-1"].channel,
        None
    );
}

#[test]
fn channel_refusals_leave_the_document_unchanged() {
    let (mut doc, _) = network();
    let mut agent = header("ag-1", SiteKind::Agent, Some("dc-north"));
    agent.channel = Some(SiteChannel::FranchiseAgent);
    domain::put_site(&mut doc, &agent, "admin", T0).unwrap();

    let err = refused(&mut doc, |d| {
        domain::set_site_channel(d, "nowhere", Some(SiteChannel::BrandStore), "admin", T0)
    });
    assert!(matches!(err, DomainError::UnknownSite { .. }), "{err}");
    // An agent is between the store and the customer: never the direct channel.
    let err = refused(&mut doc, |d| {
        domain::set_site_channel(d, "ag-1", Some(SiteChannel::Direct), "admin", T0)
    });
    assert!(err.to_string().contains("not direct"), "{err}");
    agent.channel = Some(SiteChannel::Direct);
    refused(&mut doc, |d| domain::put_site(d, &agent, "admin", T0));
    assert_eq!(
        NetworkDocument::read(&doc).unwrap().sites["ag-1"].channel,
        Some(SiteChannel::FranchiseAgent)
    );
    // An unknown name is refused when parsed (the CLI and the API parse it).
    assert!("wholesale".parse::<SiteChannel>().is_err());
    assert_eq!(
        "brand-store".parse::<SiteChannel>(),
        Ok(SiteChannel::BrandStore)
    );
}
