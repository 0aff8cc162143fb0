//! The site and network documents, as they live in automerge.
//!
//! Every value is plain JSON-like data so that a JavaScript automerge client can read and
//! write the same documents with no Rust: ids are map keys, time is integer milliseconds
//! UTC, money is integer fen, keys are camelCase. Strings are written as scalar strings
//! (`ScalarValue::Str`); readers also accept collaborative text, because Automerge 3 for
//! JavaScript turns a plain string assignment into text unless the client wraps it in
//! `ImmutableString` (see `docs/schema.md`).
//!
//! The Rust types map to automerge through autosurgeon's `Hydrate` and `Reconcile`.
//! Enums are stored as their snake_case names (`"in_stock"`), the same spelling the
//! JSON API uses.
//!
//! Layout: `site.rs` and `network.rs` hold the two documents' types, `enums.rs` the
//! string enums, `period.rs` the reporting periods, and `encoding.rs` the lenient
//! readers (the `with = "..."` modules) the types use. Everything is re-exported here.

mod encoding;
mod enums;
mod network;
mod period;
mod site;

pub use encoding::{opt_scalar_str, scalar_str, scalar_str_list, schema_version};
pub use enums::{
    CallDirection, ContestMembers, ContestMetric, CustomerSource, CustomerStatus, EventKind,
    SiteChannel, SiteKind, UnknownVariant, VehicleStatus,
};
pub use network::{
    Contest, ContestTeam, DEFAULT_FORECAST_DEADLINE_DAY, NetworkDocument, VehicleModel,
};
pub use period::{BadPeriod, Period};
pub use site::{
    Customer, CustomerEvent, ForecastAdjustment, ForecastEntry, PartCount, SiteDocument,
    SiteHeader, Target, Vehicle, WalkIn,
};

use autosurgeon::{HydrateError, ReadDoc};

pub use crate::time::{Millis, month_key};

/// Version of the document layout. A reader refuses a document with a higher version
/// than it knows, rather than misreading it.
pub const SCHEMA_VERSION: u64 = 1;

/// Money in integer minor units (fen; 100 fen = 1 yuan).
pub type Fen = i64;

/// Why a document could not be read as a dealersync document.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// A field is missing or has the wrong type; the message names the path.
    #[error("document does not match the dealersync schema: {0}")]
    Shape(#[from] HydrateError),
    /// The document was written by a newer dealersync than this one.
    #[error("document has schemaVersion {found}, this build reads up to {SCHEMA_VERSION}")]
    NewerVersion {
        /// The version found in the document.
        found: u64,
    },
}

/// The `schemaVersion` at the root of a document, if it has one, in either integer
/// form (see [`schema_version`]).
pub fn read_schema_version<D: ReadDoc>(doc: &D) -> Result<Option<u64>, HydrateError> {
    schema_version::hydrate_opt(doc, &automerge::ROOT, "schemaVersion".into())
}

fn check_version<D: ReadDoc>(doc: &D) -> Result<(), SchemaError> {
    let v = read_schema_version(doc)?;
    match v {
        Some(found) if found > SCHEMA_VERSION => Err(SchemaError::NewerVersion { found }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;

    fn header() -> SiteHeader {
        SiteHeader {
            id: "rs-1".into(),
            name: "乡镇巡展一队".into(),
            kind: SiteKind::Roadshow,
            parent: Some("dc-north".into()),
            channel: None,
        }
    }

    #[test]
    fn site_document_round_trips_through_automerge() {
        let site = SiteDocument::new(header());
        let mut doc = automerge::AutoCommit::new();
        autosurgeon::reconcile(&mut doc, &site).unwrap();
        assert_eq!(SiteDocument::read(&doc).unwrap(), site);
        // Written as scalar strings, not text objects.
        let (v, _) = automerge::ReadDoc::get(&doc, automerge::ROOT, "site")
            .unwrap()
            .unwrap();
        assert!(v.is_object());
        let site_obj = automerge::ReadDoc::get(&doc, automerge::ROOT, "site")
            .unwrap()
            .unwrap()
            .1;
        let (name, _) = automerge::ReadDoc::get(&doc, &site_obj, "name")
            .unwrap()
            .unwrap();
        assert!(
            matches!(name, automerge::Value::Scalar(_)),
            "name is {name:?}"
        );
    }

    #[test]
    fn readers_accept_text_written_by_js_clients() {
        let site = SiteDocument::new(header());
        let mut doc = automerge::AutoCommit::new();
        autosurgeon::reconcile(&mut doc, &site).unwrap();
        let site_obj = automerge::ReadDoc::get(&doc, automerge::ROOT, "site")
            .unwrap()
            .unwrap()
            .1;
        let text = doc
            .put_object(&site_obj, "name", automerge::ObjType::Text)
            .unwrap();
        doc.splice_text(&text, 0, 0, "文本名称").unwrap();
        assert_eq!(SiteDocument::read(&doc).unwrap().site.name, "文本名称");
    }

    /// What a JavaScript client writes with plain assignments: numbers are `int`
    /// (automerge-js never writes `uint` unless told to), list elements may be text,
    /// and optional fields may simply be left out instead of set to `null`.
    #[test]
    fn readers_accept_what_a_js_client_writes() {
        use automerge::{ObjType, ROOT, ScalarValue};
        let mut doc = automerge::AutoCommit::new();
        doc.put(ROOT, "schemaVersion", ScalarValue::Int(1)).unwrap();
        for key in ["sites", "targets", "discountLimits"] {
            doc.put_object(ROOT, key, ObjType::Map).unwrap();
        }
        let models = doc.put_object(ROOT, "models", ObjType::Map).unwrap();
        let m = doc.put_object(&models, "SDN-A", ObjType::Map).unwrap();
        doc.put(&m, "code", "SDN-A").unwrap();
        doc.put(&m, "name", "轿车 A").unwrap();
        doc.put(&m, "cost", 12_000_000).unwrap();
        doc.put(&m, "listPrice", 15_000_000).unwrap();
        let trims = doc.put_object(&m, "trims", ObjType::List).unwrap();
        doc.insert(&trims, 0, "base").unwrap();
        let lux = doc.insert_object(&trims, 1, ObjType::Text).unwrap();
        doc.splice_text(&lux, 0, 0, "lux").unwrap();
        let net = NetworkDocument::read(&doc).unwrap();
        assert_eq!(net.schema_version, 1);
        assert_eq!(net.models["SDN-A"].trims, ["base", "lux"]);

        let mut doc = automerge::AutoCommit::new();
        autosurgeon::reconcile(&mut doc, SiteDocument::new(header())).unwrap();
        doc.put(ROOT, "schemaVersion", ScalarValue::Int(1)).unwrap();
        let vehicles = automerge::ReadDoc::get(&doc, ROOT, "vehicles")
            .unwrap()
            .unwrap()
            .1;
        let v = doc
            .put_object(&vehicles, "LSVAB2BR7NM000001", ObjType::Map)
            .unwrap();
        for (k, val) in [
            ("vin", "LSVAB2BR7NM000001"),
            ("model", "SDN-A"),
            ("trim", "lux"),
            ("colour", "白"),
            ("status", "in_stock"),
        ] {
            doc.put(&v, k, val).unwrap();
        }
        for (k, n) in [
            ("cost", 12_000_000_i64),
            ("listPrice", 15_000_000),
            ("arrivedAt", 1_772_294_400_000_i64),
            ("updatedAt", 1_772_294_400_000),
        ] {
            doc.put(&v, k, n).unwrap();
        }
        let targets = automerge::ReadDoc::get(&doc, ROOT, "targets")
            .unwrap()
            .unwrap()
            .1;
        let wang = doc.put_object(&targets, "wang", ObjType::Map).unwrap();
        let t = doc.put_object(&wang, "2026-03", ObjType::Map).unwrap();
        doc.put(&t, "units", 4).unwrap();
        doc.put(&t, "revenue", 60_000_000).unwrap();
        // A part count assigned as a plain number instead of a counter.
        let parts = automerge::ReadDoc::get(&doc, ROOT, "parts")
            .unwrap()
            .unwrap()
            .1;
        doc.put(&parts, "OIL-5W30", 12).unwrap();
        let site = SiteDocument::read(&doc).unwrap();
        assert_eq!(site.parts["OIL-5W30"].value(), 12);
        let read = &site.vehicles["LSVAB2BR7NM000001"];
        assert_eq!((read.eta, read.arrived_at), (None, Some(1_772_294_400_000)));
        assert_eq!(read.reserved_for, None);
        assert_eq!(site.targets["wang"]["2026-03"].visits, None);
    }

    #[test]
    fn newer_schema_version_is_refused() {
        let mut site = SiteDocument::new(header());
        site.schema_version = SCHEMA_VERSION + 1;
        let mut doc = automerge::AutoCommit::new();
        autosurgeon::reconcile(&mut doc, &site).unwrap();
        assert!(matches!(
            SiteDocument::read(&doc),
            Err(SchemaError::NewerVersion { found }) if found == SCHEMA_VERSION + 1
        ));
    }
}
