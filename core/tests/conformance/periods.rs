//! The periods vector (`core/vectors/periods.json`): which document of a site a client
//! opens, read from the network document's site headers (`domain::current_site_document`,
//! `domain::site_chain`), and until when an archive takes a device's late changes
//! (`domain::archive_writable_until`). The field app follows a site's monthly documents
//! with the same readers (`clients/web/src/domain/periods.ts`).

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ROOT, ReadDoc, Value};
use dealersync_core::domain::{self, PeriodLink};
use serde_json::{Value as Json, json};

use super::common::{T0, network};
use super::documents::error_kind;
use super::{check_vector, read_vector, s, updating};

/// The network document of the vector: `sr-1` carried over twice, `rs-1` never, and
/// `dc-north` whose chain a JavaScript writer left as text rather than scalar strings
/// (what automerge 3 writes for a plain string assignment): readers accept both.
fn chained_network() -> AutoCommit {
    let (mut doc, _) = network();
    let link = |month: Option<&str>, document: &str| PeriodLink {
        month: month.map(str::to_string),
        document: document.into(),
    };
    domain::put_site_chain(
        &mut doc,
        "sr-1",
        &[link(None, "2vTfirst"), link(Some("2026-03"), "3KkSecond")],
        "admin",
        T0,
    )
    .unwrap();
    domain::put_site_chain(
        &mut doc,
        "sr-1",
        &[
            link(None, "2vTfirst"),
            link(Some("2026-03"), "3KkSecond"),
            link(Some("2026-04"), "4QxWorking"),
        ],
        "admin",
        T0 + 31 * 86_400_000,
    )
    .unwrap();
    let sites = match doc.get(ROOT, "sites").unwrap() {
        Some((Value::Object(ObjType::Map), id)) => id,
        other => panic!("sites: {other:?}"),
    };
    let dc = match doc.get(&sites, "dc-north").unwrap() {
        Some((Value::Object(ObjType::Map), id)) => id,
        other => panic!("dc-north: {other:?}"),
    };
    let text = |doc: &mut AutoCommit, obj: &automerge::ObjId, key: &str, value: &str| {
        let t = doc.put_object(obj, key, ObjType::Text).unwrap();
        doc.splice_text(&t, 0, 0, value).unwrap();
    };
    text(&mut doc, &dc, "document", "5DcWorking");
    let list = doc.put_object(&dc, "periods", ObjType::List).unwrap();
    for (i, (month, document)) in [(None, "5DcFirst"), (Some("2026-04"), "5DcWorking")]
        .into_iter()
        .enumerate()
    {
        let entry = doc.insert_object(&list, i, ObjType::Map).unwrap();
        match month {
            Some(m) => text(&mut doc, &entry, "month", m),
            None => doc
                .put(&entry, "month", automerge::ScalarValue::Null)
                .unwrap(),
        }
        text(&mut doc, &entry, "document", document);
    }
    doc.commit();
    doc
}

/// What core reads from `net`: per site its current document and chain.
fn read_sites(net: &AutoCommit) -> Json {
    let sites: Vec<Json> = ["sr-1", "rs-1", "dc-north", "no-such-site"]
        .iter()
        .map(|site| {
            json!({
                "site": site,
                "current": domain::current_site_document(net, site).unwrap(),
                "chain": domain::site_chain(net, site).unwrap(),
            })
        })
        .collect();
    json!(sites)
}

#[test]
fn periods_vectors() {
    let net = chained_network();
    let writable: Vec<Json> = ["2026-04", "2027-01", "2026-12", "2026-13", "26-04", ""]
        .iter()
        .map(|next| match domain::archive_writable_until(next) {
            Ok(until) => json!({"next": next, "until": until}),
            Err(e) => json!({"next": next, "error": error_kind(&e)}),
        })
        .collect();
    let value = json!({
        "graceDays": domain::ARCHIVE_GRACE_DAYS,
        "network": hex::encode(net.clone().save()),
        "sites": read_sites(&net),
        "writableUntil": writable,
    });
    if updating() {
        check_vector("periods.json", &value);
        return;
    }
    // The committed network document, read by core, gives the committed answers; the
    // fresh one (same content, other bytes) gives them too.
    let v = read_vector("periods.json");
    let committed = AutoCommit::load(&hex::decode(s(&v, "network")).unwrap()).unwrap();
    assert_eq!(read_sites(&committed), v["sites"], "periods.json sites");
    for key in ["graceDays", "sites", "writableUntil"] {
        assert_eq!(value[key], v[key], "periods.json {key}");
    }
}
