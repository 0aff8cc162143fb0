//! Business rules a CRDT merge can break, listed after every merge.
//!
//! automerge merges concurrent edits without losing any of them: when two devices set
//! the same field offline, both values stay in the document and one is chosen as the
//! "winner" by a deterministic rule that knows nothing about cars. [`detect`] reads every
//! concurrent value (`get_all`), not just the winner, and lists what the business must
//! decide:
//! - [`ConflictKind::DoubleBooking`]: a vehicle reserved or sold to two different
//!   customers concurrently;
//! - [`ConflictKind::StockAtTwoSites`]: the same VIN in stock (in_stock or reserved) at
//!   two sites, e.g. after a transfer recorded on one side only;
//! - [`ConflictKind::DuplicateCustomer`]: two customers with the same normalised phone;
//! - [`ConflictKind::ForecastEdit`]: concurrent edits of the same forecast cell with
//!   different quantities, or a cell hidden because its month was created concurrently;
//! - [`ConflictKind::ForecastAdjustment`]: two distribution centre adjustments of the
//!   same forecast cell made concurrently, with different figures;
//! - [`ConflictKind::PartCountCollision`]: a part counter created on two devices
//!   concurrently (both first stocking the same new part number), so readers see one
//!   device's count and the other's is hidden;
//! - [`ConflictKind::TransferDecision`]: in the network document ([`detect_network`]),
//!   a transfer between regions approved and refused concurrently by head office.
//!
//! The list depends only on the documents' contents (keys in order, concurrent values in
//! automerge's op order, sites sorted by id), so every replica that has the same changes
//! lists the same conflicts in the same order with the same ids. A resolving operation
//! writes a value that supersedes all the concurrent ones; once the replicas sync, the
//! conflict is gone everywhere.
//!
//! Layout: this file holds the types and [`detect`]; `checks.rs` what each kind of
//! conflict looks like, `read.rs` the lenient readers the checks share, `resolve.rs`
//! the resolving operations (re-exported here), `network.rs` the network document's,
//! `choices.rs` the options a conflict offers and which operation a chosen one applies
//! to which document ([`Resolution`]).

mod checks;
mod choices;
mod network;
mod read;
mod resolve;

pub use choices::{ChoiceKind, Resolution, ResolutionChoices, ResolutionOption, SiteEdit};
pub use network::{detect_network, resolve_transfer_decision};

pub use resolve::{
    resolve_double_booking, resolve_duplicate_customer, resolve_forecast,
    resolve_forecast_adjustment, resolve_part_count, resolve_stock_elsewhere,
};

use std::collections::{BTreeMap, BTreeSet};

use automerge::{AutoCommit, Automerge, ChangeHash, ObjId, ReadDoc};
use serde::Serialize;

use crate::schema::Millis;
use checks::{
    duplicate_customers, forecast_adjustments, forecast_edits, part_collisions, vehicle_checks,
};

/// A document whose operations can be traced to the change that made them, so a
/// conflict can say who made each competing value.
pub trait ChangeLookup: ReadDoc {
    /// The change that contains the operation `op`, if it is committed.
    fn change_of(&self, op: &automerge::ObjId) -> Option<ChangeHash>;
}

impl ChangeLookup for AutoCommit {
    fn change_of(&self, op: &ObjId) -> Option<ChangeHash> {
        self.hash_for_opid(op)
    }
}

impl ChangeLookup for Automerge {
    fn change_of(&self, op: &ObjId) -> Option<ChangeHash> {
        self.hash_for_opid(op)
    }
}

/// The kinds of business-rule conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictKind {
    /// A vehicle reserved or sold to two different customers concurrently.
    DoubleBooking,
    /// A vehicle in stock (in_stock or reserved) at two sites.
    StockAtTwoSites,
    /// Two customers with the same normalised phone number.
    DuplicateCustomer,
    /// Concurrent edits of the same forecast cell.
    ForecastEdit,
    /// Concurrent adjustments of the same forecast cell by distribution centres.
    ForecastAdjustment,
    /// A part counter created on two devices concurrently: automerge keeps both
    /// counters at the part number and shows one, hiding the other's count.
    PartCountCollision,
    /// A transfer between regions approved by one head-office user and refused by
    /// another, concurrently (the network document; [`detect_network`]).
    TransferDecision,
}

impl ConflictKind {
    /// The name used in ids, the API and documentation.
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictKind::DoubleBooking => "double_booking",
            ConflictKind::StockAtTwoSites => "stock_at_two_sites",
            ConflictKind::DuplicateCustomer => "duplicate_customer",
            ConflictKind::ForecastEdit => "forecast_edit",
            ConflictKind::ForecastAdjustment => "forecast_adjustment",
            ConflictKind::PartCountCollision => "part_count_collision",
            ConflictKind::TransferDecision => "transfer_decision",
        }
    }
}

/// One of the values competing in a conflict, and who wrote it when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CompetingValue {
    /// The site whose document holds the value.
    pub site: String,
    /// The record, e.g. `vehicle LSV...`, `customer c-17`, `forecast 2026-03/SDN-A`.
    pub record: String,
    /// The field, e.g. `reservedFor`, `status`, `phone`, `quantity`.
    pub field: String,
    /// The value, as text.
    pub value: String,
    /// The automerge actor (hex) whose change wrote the value.
    pub actor: Option<String>,
    /// When it was written (UTC ms): the record's `updatedAt` / `at` / `createdAt`
    /// written in the same change.
    pub at: Option<Millis>,
    /// Whether the value is hidden by automerge's winner (it is not what readers see).
    pub hidden: bool,
}

/// A business-rule conflict found after a merge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Conflict {
    /// Stable id: a hash of the kind, the records and the sorted competing values, so
    /// the same conflict has the same id on every replica and across runs.
    pub id: String,
    /// What kind of conflict.
    pub kind: ConflictKind,
    /// The records involved, sorted (`vehicle VIN`, `customer ID`, ...).
    pub records: Vec<String>,
    /// The competing values, in a deterministic order.
    pub values: Vec<CompetingValue>,
    /// A sentence for people.
    pub summary: String,
}

impl Conflict {
    fn new(
        kind: ConflictKind,
        records: BTreeSet<String>,
        values: Vec<CompetingValue>,
        summary: String,
    ) -> Self {
        let records: Vec<String> = records.into_iter().collect();
        let mut keyed: Vec<String> = values
            .iter()
            .map(|v| {
                format!(
                    "{}\u{1f}{}\u{1f}{}\u{1f}{}",
                    v.site, v.record, v.field, v.value
                )
            })
            .collect();
        keyed.sort();
        keyed.dedup();
        let mut h = Fnv::new();
        h.write(kind.as_str());
        for r in &records {
            h.write(r);
        }
        for v in &keyed {
            h.write(v);
        }
        Conflict {
            id: format!("{}-{:016x}", kind.as_str(), h.0),
            kind,
            records,
            values,
            summary,
        }
    }
}

/// FNV-1a, 64 bit: ids only need to be stable and well spread, not secret, and this
/// keeps them independent of any hasher seed or crate version.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, s: &str) {
        for b in s.bytes().chain(std::iter::once(0u8)) {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// Lists the conflicts in a set of site documents, given as `(site id, document)`.
///
/// Per document: double bookings, duplicate customers, forecast edits and
/// adjustments, part count collisions; across the
/// documents: vehicles in stock at two sites. The order of `site_docs` does not matter
/// (they are sorted by site id; a site given twice is read once). Records that do not
/// have the expected shape are skipped rather than stopping the check.
pub fn detect<D: ChangeLookup>(site_docs: &[(&str, &D)]) -> Vec<Conflict> {
    let read: Vec<SiteConflicts> = site_docs
        .iter()
        .map(|(site, doc)| SiteConflicts::read(site, *doc))
        .collect();
    detect_across(&read.iter().collect::<Vec<_>>())
}

/// One site document's part of [`detect`]: the conflicts inside it and the vehicles it
/// holds in stock (every concurrent value), which the check across sites needs. A read
/// model keeps one per site, read again only when the site's document changes, so that
/// listing a network's conflicts does not reload every document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteConflicts {
    site: String,
    own: Vec<Conflict>,
    in_stock: BTreeMap<String, Vec<CompetingValue>>,
}

impl SiteConflicts {
    /// Reads `doc`, the document of `site`.
    pub fn read<D: ChangeLookup>(site: &str, doc: &D) -> SiteConflicts {
        let mut own = Vec::new();
        let mut in_stock = BTreeMap::new();
        vehicle_checks(site, doc, &mut own, &mut in_stock);
        duplicate_customers(site, doc, &mut own);
        forecast_edits(site, doc, &mut own);
        forecast_adjustments(site, doc, &mut own);
        part_collisions(site, doc, &mut own);
        SiteConflicts {
            site: site.to_string(),
            own,
            in_stock,
        }
    }

    /// The site the document belongs to.
    pub fn site(&self) -> &str {
        &self.site
    }
}

/// [`detect`] over sites already read: their own conflicts and the vehicles in stock at
/// two of them. The order of `sites` does not matter (sorted by site id; a site given
/// twice is counted once).
pub fn detect_across(sites: &[&SiteConflicts]) -> Vec<Conflict> {
    let mut sites: Vec<&SiteConflicts> = sites.to_vec();
    sites.sort_by(|a, b| a.site.cmp(&b.site));
    sites.dedup_by(|a, b| a.site == b.site);
    let mut out = Vec::new();
    let mut in_stock: BTreeMap<&str, Vec<CompetingValue>> = BTreeMap::new();
    for s in &sites {
        out.extend(s.own.iter().cloned());
        for (vin, held) in &s.in_stock {
            in_stock
                .entry(vin.as_str())
                .or_default()
                .extend(held.iter().cloned());
        }
    }
    for (vin, held) in in_stock {
        // Two sites, not two values: one site's concurrent statuses are not a second site.
        let sites: BTreeSet<&str> = held.iter().map(|v| v.site.as_str()).collect();
        if sites.len() > 1 {
            let sites: Vec<&str> = sites.into_iter().collect();
            let summary = format!(
                "vehicle {vin} is in stock at {} sites: {}",
                sites.len(),
                sites.join(", ")
            );
            out.push(Conflict::new(
                ConflictKind::StockAtTwoSites,
                BTreeSet::from([format!("vehicle {vin}")]),
                held,
                summary,
            ));
        }
    }
    out.sort_by(|a, b| (a.kind, &a.records, &a.id).cmp(&(b.kind, &b.records, &b.id)));
    out
}
