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
//! - [`ConflictKind::PartCountCollision`]: a part counter created on two devices
//!   concurrently (both first stocking the same new part number), so readers see one
//!   device's count and the other's is hidden.
//!
//! The list depends only on the documents' contents (keys in order, concurrent values in
//! automerge's op order, sites sorted by id), so every replica that has the same changes
//! lists the same conflicts in the same order with the same ids. A resolving operation
//! writes a value that supersedes all the concurrent ones; once the replicas sync, the
//! conflict is gone everywhere.

use std::collections::{BTreeMap, BTreeSet};

use automerge::transaction::Transactable;
use automerge::{
    AutoCommit, Automerge, ChangeHash, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value,
};
use serde::Serialize;

use crate::domain::{self, DomainError, normalise_phone};
use crate::schema::{Millis, NetworkDocument, Vehicle, VehicleStatus};

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
    /// A part counter created on two devices concurrently: automerge keeps both
    /// counters at the part number and shows one, hiding the other's count.
    PartCountCollision,
}

impl ConflictKind {
    /// The name used in ids, the API and documentation.
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictKind::DoubleBooking => "double_booking",
            ConflictKind::StockAtTwoSites => "stock_at_two_sites",
            ConflictKind::DuplicateCustomer => "duplicate_customer",
            ConflictKind::ForecastEdit => "forecast_edit",
            ConflictKind::PartCountCollision => "part_count_collision",
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
/// Per document: double bookings, duplicate customers, forecast edits, part count
/// collisions; across the
/// documents: vehicles in stock at two sites. The order of `site_docs` does not matter
/// (they are sorted by site id; a site given twice is read once). Records that do not
/// have the expected shape are skipped rather than stopping the check.
pub fn detect<D: ChangeLookup>(site_docs: &[(&str, &D)]) -> Vec<Conflict> {
    let mut docs: Vec<(&str, &D)> = site_docs.to_vec();
    docs.sort_by(|a, b| a.0.cmp(b.0));
    docs.dedup_by(|a, b| a.0 == b.0);
    let mut out = Vec::new();
    let mut in_stock: BTreeMap<String, Vec<CompetingValue>> = BTreeMap::new();
    for (site, doc) in &docs {
        vehicle_checks(site, *doc, &mut out, &mut in_stock);
        duplicate_customers(site, *doc, &mut out);
        forecast_edits(site, *doc, &mut out);
        part_collisions(site, *doc, &mut out);
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

// ---------------------------------------------------------------------------------------
// Reading helpers, lenient: a malformed record is skipped, never a panic.

fn map_of<D: ReadDoc>(doc: &D, obj: &ObjId, key: &str) -> Option<ObjId> {
    match doc.get(obj, key).ok()?? {
        (Value::Object(ObjType::Map), id) => Some(id),
        _ => None,
    }
}

fn maps_of<D: ReadDoc>(doc: &D, obj: &ObjId, key: &str) -> Vec<ObjId> {
    domain::maps_at(doc, obj, key).unwrap_or_default()
}

fn keys_of<D: ReadDoc>(doc: &D, obj: &ObjId) -> Vec<String> {
    doc.keys(obj).collect()
}

/// A value as text: scalar strings, text objects, numbers; `None` for null/absent.
fn text_of<D: ReadDoc>(doc: &D, v: &Value<'_>, id: &ObjId) -> Option<String> {
    match v {
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Str(s) => Some(s.to_string()),
            ScalarValue::Int(n) => Some(n.to_string()),
            ScalarValue::Uint(n) => Some(n.to_string()),
            ScalarValue::F64(n) => Some(n.to_string()),
            ScalarValue::Counter(c) => Some(i64::from(c).to_string()),
            _ => None,
        },
        Value::Object(ObjType::Text) => doc.text(id).ok(),
        Value::Object(_) => None,
    }
}

fn int_of(v: &Value<'_>) -> Option<i64> {
    match v {
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Int(n) => Some(*n),
            ScalarValue::Uint(n) => i64::try_from(*n).ok(),
            // cbor-x and JS numbers may arrive as floats.
            ScalarValue::F64(f) if f.fract() == 0.0 => Some(*f as i64),
            _ => None,
        },
        _ => None,
    }
}

/// Every concurrent value of `obj.key` with the op that wrote it.
fn all_texts<D: ReadDoc>(doc: &D, obj: &ObjId, key: &str) -> Vec<(Option<String>, ObjId)> {
    doc.get_all(obj, key)
        .unwrap_or_default()
        .into_iter()
        .map(|(v, id)| (text_of(doc, &v, &id), id))
        .collect()
}

fn actor_of(op: &ObjId) -> Option<String> {
    match op {
        ObjId::Id(_, actor, _) => Some(actor.to_hex_string()),
        ObjId::Root => None,
    }
}

/// The time written in `obj.time_key` by the same change as `op` (domain operations
/// write `updatedAt`/`at` together with the value); else the one the same actor wrote.
fn time_of<D: ChangeLookup>(doc: &D, obj: &ObjId, time_key: &str, op: &ObjId) -> Option<Millis> {
    let times: Vec<(Option<i64>, ObjId)> = doc
        .get_all(obj, time_key)
        .ok()?
        .into_iter()
        .map(|(v, id)| (int_of(&v), id))
        .collect();
    let change = doc.change_of(op);
    if change.is_some()
        && let Some(t) = times.iter().find(|(_, id)| doc.change_of(id) == change)
    {
        return t.0;
    }
    let actor = actor_of(op);
    times
        .iter()
        .rev()
        .find(|(_, id)| actor_of(id) == actor)
        .and_then(|t| t.0)
}

// ---------------------------------------------------------------------------------------
// The checks.

/// Customer ids competing for one vehicle, across concurrent vehicle records and
/// concurrent `reservedFor` / `soldTo` values.
fn booking_candidates<D: ChangeLookup>(
    doc: &D,
    site: &str,
    vehicles: &ObjId,
    vin: &str,
) -> Vec<CompetingValue> {
    let winner = map_of(doc, vehicles, vin);
    let mut values = Vec::new();
    for obj in maps_of(doc, vehicles, vin) {
        let obj_hidden = Some(&obj) != winner.as_ref();
        for field in ["reservedFor", "soldTo"] {
            let all = all_texts(doc, &obj, field);
            let last = all.len().saturating_sub(1);
            for (i, (value, op)) in all.into_iter().enumerate() {
                let Some(customer) = value else { continue };
                values.push(CompetingValue {
                    site: site.to_string(),
                    record: format!("vehicle {vin}"),
                    field: field.to_string(),
                    value: customer,
                    actor: actor_of(&op),
                    at: time_of(doc, &obj, "updatedAt", &op),
                    hidden: obj_hidden || i != last,
                });
            }
        }
    }
    values
}

/// One field of a record as read by [`fields_of`].
struct Field {
    value: Value<'static>,
    op: ObjId,
    /// Whether other concurrent values exist (then `value` is automerge's winner).
    conflict: bool,
}

impl Field {
    fn text<D: ReadDoc>(&self, doc: &D) -> Option<String> {
        text_of(doc, &self.value, &self.op)
    }
}

/// The fields `wanted` of the map `obj`, read in one pass over the map rather than one
/// lookup per field: the checks read every record, so this is their hot path.
fn fields_of<D: ReadDoc, const N: usize>(
    doc: &D,
    obj: &ObjId,
    wanted: [&str; N],
) -> [Option<Field>; N] {
    let mut out: [Option<Field>; N] = std::array::from_fn(|_| None);
    for item in doc.map_range(obj, ..) {
        if let Some(i) = wanted.iter().position(|w| *w == item.key) {
            out[i] = Some(Field {
                op: item.id(),
                value: item.value.into(),
                conflict: item.conflict,
            });
        }
    }
    out
}

/// Per vehicle, in one pass: double bookings (reported at once) and whether the
/// vehicle is held in stock here (collected for the cross-document check).
fn vehicle_checks<D: ChangeLookup>(
    site: &str,
    doc: &D,
    out: &mut Vec<Conflict>,
    held: &mut BTreeMap<String, Vec<CompetingValue>>,
) {
    let Some(vehicles) = map_of(doc, &ROOT, "vehicles") else {
        return;
    };
    for item in doc.map_range(&vehicles, ..) {
        if !matches!(item.value, automerge::ValueRef::Object(ObjType::Map)) {
            continue;
        }
        let vin = item.key.to_string();
        let obj = item.id();
        let [status, reserved, sold, updated] =
            fields_of(doc, &obj, ["status", "reservedFor", "soldTo", "updatedAt"]);
        // Fast path: one record, one value per field, at most one customer named.
        let mut suspect = item.conflict;
        let mut named = BTreeSet::new();
        for f in [&reserved, &sold].into_iter().flatten() {
            suspect |= f.conflict;
            named.extend(f.text(doc));
        }
        if suspect || named.len() > 1 {
            double_booking(site, doc, &vehicles, &vin, out);
        }
        let Some(status) = status else { continue };
        if item.conflict || status.conflict {
            // Concurrent statuses (a transfer out on one device, a reservation on
            // another) or concurrent records: the site holds the vehicle if any of them
            // says so, shown or hidden.
            held.entry(vin.clone())
                .or_default()
                .extend(held_statuses(doc, site, &vehicles, &vin));
            continue;
        }
        let Some(text) = status.text(doc) else {
            continue;
        };
        if !is_held(&text) {
            continue;
        }
        let at = match &updated {
            Some(u) if !u.conflict => int_of(&u.value),
            _ => time_of(doc, &obj, "updatedAt", &status.op),
        };
        held.entry(vin.clone()).or_default().push(CompetingValue {
            site: site.to_string(),
            record: format!("vehicle {vin}"),
            field: "status".into(),
            value: text,
            actor: actor_of(&status.op),
            at,
            hidden: false,
        });
    }
}

/// Whether a status means the site has the vehicle (available or promised).
fn is_held(status: &str) -> bool {
    status == VehicleStatus::InStock.as_str() || status == VehicleStatus::Reserved.as_str()
}

/// Every concurrent status value, across concurrent records of the VIN, that says the
/// site holds the vehicle, with whether automerge hides it.
fn held_statuses<D: ChangeLookup>(
    doc: &D,
    site: &str,
    vehicles: &ObjId,
    vin: &str,
) -> Vec<CompetingValue> {
    let winner = map_of(doc, vehicles, vin);
    let mut values = Vec::new();
    for obj in maps_of(doc, vehicles, vin) {
        let obj_hidden = Some(&obj) != winner.as_ref();
        let all = all_texts(doc, &obj, "status");
        let last = all.len().saturating_sub(1);
        for (i, (value, op)) in all.into_iter().enumerate() {
            let Some(value) = value.filter(|v| is_held(v)) else {
                continue;
            };
            values.push(CompetingValue {
                site: site.to_string(),
                record: format!("vehicle {vin}"),
                field: "status".into(),
                value,
                actor: actor_of(&op),
                at: time_of(doc, &obj, "updatedAt", &op),
                hidden: obj_hidden || i != last,
            });
        }
    }
    values
}

fn double_booking<D: ChangeLookup>(
    site: &str,
    doc: &D,
    vehicles: &ObjId,
    vin: &str,
    out: &mut Vec<Conflict>,
) {
    let values = booking_candidates(doc, site, vehicles, vin);
    let customers: BTreeSet<&str> = values.iter().map(|v| v.value.as_str()).collect();
    if customers.len() < 2 {
        return;
    }
    let mut records = BTreeSet::from([format!("vehicle {vin}")]);
    records.extend(customers.iter().map(|c| format!("customer {c}")));
    let summary = format!(
        "vehicle {vin} at {site} was reserved or sold to {} customers concurrently: {}",
        customers.len(),
        customers.iter().copied().collect::<Vec<_>>().join(", ")
    );
    out.push(Conflict::new(
        ConflictKind::DoubleBooking,
        records,
        values,
        summary,
    ));
}

fn duplicate_customers<D: ChangeLookup>(site: &str, doc: &D, out: &mut Vec<Conflict>) {
    let Some(customers) = map_of(doc, &ROOT, "customers") else {
        return;
    };
    let mut by_phone: BTreeMap<String, Vec<(String, CompetingValue)>> = BTreeMap::new();
    for item in doc.map_range(&customers, ..) {
        if !matches!(item.value, automerge::ValueRef::Object(ObjType::Map)) {
            continue;
        }
        let id = item.key.to_string();
        let obj = item.id();
        let [phone, merged, name, created] =
            fields_of(doc, &obj, ["phone", "mergedInto", "name", "createdAt"]);
        if merged.and_then(|m| m.text(doc)).is_some() {
            continue;
        }
        let Some(phone) = phone.and_then(|p| p.text(doc)) else {
            continue;
        };
        // A number that does not validate (written by an older or foreign client) is
        // still compared, by its digits.
        let key = normalise_phone(&phone)
            .unwrap_or_else(|_| phone.chars().filter(char::is_ascii_digit).collect());
        if key.is_empty() {
            continue;
        }
        let name = name.and_then(|n| n.text(doc)).unwrap_or_default();
        let at = created.and_then(|c| int_of(&c.value));
        by_phone.entry(key).or_default().push((
            name,
            CompetingValue {
                site: site.to_string(),
                record: format!("customer {id}"),
                field: "phone".into(),
                value: phone,
                actor: actor_of(&obj),
                at,
                hidden: false,
            },
        ));
    }
    for (phone, group) in by_phone {
        if group.len() < 2 {
            continue;
        }
        let records: BTreeSet<String> = group.iter().map(|(_, v)| v.record.clone()).collect();
        let who: Vec<String> = group
            .iter()
            .map(|(name, v)| format!("{} ({name})", v.record))
            .collect();
        let summary = format!(
            "{} customers at {site} share phone {phone}: {}",
            group.len(),
            who.join(", ")
        );
        let values = group.into_iter().map(|(_, v)| v).collect();
        out.push(Conflict::new(
            ConflictKind::DuplicateCustomer,
            records,
            values,
            summary,
        ));
    }
}

fn forecast_edits<D: ChangeLookup>(site: &str, doc: &D, out: &mut Vec<Conflict>) {
    let Some(forecasts) = map_of(doc, &ROOT, "forecasts") else {
        return;
    };
    for month in keys_of(doc, &forecasts) {
        let win_month = map_of(doc, &forecasts, &month);
        let mut cells: BTreeMap<String, Vec<CompetingValue>> = BTreeMap::new();
        for month_obj in maps_of(doc, &forecasts, &month) {
            for model in keys_of(doc, &month_obj) {
                let win_cell = map_of(doc, &month_obj, &model);
                for cell in maps_of(doc, &month_obj, &model) {
                    let cell_hidden =
                        Some(&month_obj) != win_month.as_ref() || Some(&cell) != win_cell.as_ref();
                    let all = doc.get_all(&cell, "quantity").unwrap_or_default();
                    let last = all.len().saturating_sub(1);
                    for (i, (v, op)) in all.into_iter().enumerate() {
                        let Some(q) = int_of(&v) else { continue };
                        cells
                            .entry(model.clone())
                            .or_default()
                            .push(CompetingValue {
                                site: site.to_string(),
                                record: format!("forecast {month}/{model}"),
                                field: "quantity".into(),
                                value: q.to_string(),
                                actor: actor_of(&op),
                                at: time_of(doc, &cell, "at", &op),
                                hidden: cell_hidden || i != last,
                            });
                    }
                }
            }
        }
        for (model, values) in cells {
            let distinct: BTreeSet<&str> = values.iter().map(|v| v.value.as_str()).collect();
            let lost = values.iter().all(|v| v.hidden);
            if distinct.len() < 2 && !lost {
                continue;
            }
            let summary = if lost {
                format!(
                    "forecast {month}/{model} at {site} is hidden: the month was created on two devices concurrently"
                )
            } else {
                format!(
                    "forecast {month}/{model} at {site} was set concurrently to {}",
                    distinct.into_iter().collect::<Vec<_>>().join(" and ")
                )
            };
            out.push(Conflict::new(
                ConflictKind::ForecastEdit,
                BTreeSet::from([format!("forecast {month}/{model}")]),
                values,
                summary,
            ));
        }
    }
}

/// Every concurrent counter at `parts[part]`, in automerge's op order (the last one is
/// the one readers see). A non-counter value (a plain number written by a foreign
/// client) competes too: it hides or is hidden just the same.
fn part_values<D: ReadDoc>(doc: &D, site: &str, parts: &ObjId, part: &str) -> Vec<CompetingValue> {
    let all = doc.get_all(parts, part).unwrap_or_default();
    let last = all.len().saturating_sub(1);
    all.into_iter()
        .enumerate()
        .filter_map(|(i, (v, op))| {
            let value = match &v {
                Value::Scalar(_) => text_of(doc, &v, &op)?,
                Value::Object(_) => return None,
            };
            Some(CompetingValue {
                site: site.to_string(),
                record: format!("part {part}"),
                field: "count".into(),
                value,
                actor: actor_of(&op),
                // A counter carries no time of its own, and its increments are separate
                // changes: there is no single moment the count was written.
                at: None,
                hidden: i != last,
            })
        })
        .collect()
}

fn part_collisions<D: ReadDoc>(site: &str, doc: &D, out: &mut Vec<Conflict>) {
    let Some(parts) = map_of(doc, &ROOT, "parts") else {
        return;
    };
    // automerge flags a key with several concurrent values; only those need `get_all`.
    let collided: Vec<String> = doc
        .map_range(&parts, ..)
        .filter(|item| item.conflict)
        .map(|item| item.key.to_string())
        .collect();
    for part in collided {
        let values = part_values(doc, site, &parts, &part);
        if values.len() < 2 {
            continue;
        }
        let shown = values
            .iter()
            .find(|v| !v.hidden)
            .map(|v| v.value.clone())
            .unwrap_or_default();
        let summary = format!(
            "part {part} at {site} was first stocked on {} devices concurrently: counts {}; readers see {shown}",
            values.len(),
            values
                .iter()
                .map(|v| v.value.as_str())
                .collect::<Vec<_>>()
                .join(" and ")
        );
        out.push(Conflict::new(
            ConflictKind::PartCountCollision,
            BTreeSet::from([format!("part {part}")]),
            values,
            summary,
        ));
    }
}

// ---------------------------------------------------------------------------------------
// Resolving.

/// Resolves a double booking: the vehicle goes to `customer`, one of the competing
/// customers. The vehicle is `sold` if some device sold it to that customer, else
/// `reserved`; the consultant is the one who booked it for that customer. The values are
/// written over every concurrent value (when the vehicle record itself was created
/// twice, it is written afresh), so the conflict disappears once replicas sync.
pub fn resolve_double_booking(
    doc: &mut AutoCommit,
    vin: &str,
    customer: &str,
    by: &str,
    now: Millis,
) -> Result<(), DomainError> {
    let site = domain::site_header(doc)?.id;
    let vin = vin.trim().to_ascii_uppercase();
    let vehicles = map_of(doc, &ROOT, "vehicles").ok_or_else(|| DomainError::NotADocument {
        kind: "site",
        reason: "no `vehicles` map at the root".into(),
    })?;
    let candidates = booking_candidates(doc, &site, &vehicles, &vin);
    if candidates.is_empty() {
        domain::get_vehicle(doc, &vin)?.ok_or(DomainError::UnknownVehicle {
            vin: vin.clone(),
            site: site.clone(),
        })?;
    }
    if !candidates.iter().any(|c| c.value == customer) {
        let names: BTreeSet<&str> = candidates.iter().map(|c| c.value.as_str()).collect();
        return Err(DomainError::Invalid {
            field: format!("resolution of vehicle {vin}"),
            reason: format!(
                "customer {customer} is not one of the competing customers ({})",
                names.into_iter().collect::<Vec<_>>().join(", ")
            ),
        });
    }
    let sold = candidates
        .iter()
        .any(|c| c.field == "soldTo" && c.value == customer);
    // The consultant who booked the vehicle for this customer: the one written in the
    // same change as the chosen value.
    let mut consultant = None;
    for obj in maps_of(doc, &vehicles, &vin) {
        for (value, op) in all_texts(doc, &obj, "reservedFor")
            .into_iter()
            .chain(all_texts(doc, &obj, "soldTo"))
        {
            if value.as_deref() != Some(customer) {
                continue;
            }
            let change = doc.change_of(&op);
            for (c, cop) in all_texts(doc, &obj, "consultant") {
                if c.is_some() && doc.change_of(&cop) == change {
                    consultant = c;
                }
            }
        }
    }
    let consultant = consultant.unwrap_or_else(|| by.to_string());
    let status = if sold {
        VehicleStatus::Sold
    } else {
        VehicleStatus::Reserved
    };
    let fresh = maps_of(doc, &vehicles, &vin).len() > 1;
    let mut vehicle: Vehicle =
        domain::get_vehicle(doc, &vin)?.ok_or(DomainError::UnknownVehicle {
            vin: vin.clone(),
            site: site.clone(),
        })?;
    vehicle.status = status;
    vehicle.reserved_for = Some(customer.to_string());
    vehicle.sold_to = sold.then(|| customer.to_string());
    vehicle.consultant = Some(consultant.clone());
    vehicle.updated_at = now;
    doc.commit();
    let result = (|| -> Result<(), DomainError> {
        if fresh {
            domain::put_vehicle_record(doc, &vehicles, &vehicle)?;
        } else {
            let obj = map_of(doc, &vehicles, &vin).expect("vehicle exists");
            doc.put(&obj, "status", status.as_str())?;
            doc.put(&obj, "reservedFor", customer)?;
            match &vehicle.sold_to {
                Some(c) => doc.put(&obj, "soldTo", c.as_str())?,
                None => doc.put(&obj, "soldTo", ScalarValue::Null)?,
            }
            doc.put(&obj, "consultant", consultant.as_str())?;
            doc.put(&obj, "updatedAt", now)?;
        }
        Ok(())
    })();
    finish(
        doc,
        result,
        format!("{by}: resolve double booking of {vin}: {customer}"),
        now,
    )
}

/// Resolves a vehicle in stock at two sites, at a site that should not hold it: its
/// record here becomes `transferred_out` to `kept_at`, the site that keeps it. Only
/// this site's document changes; the conflict clears once it syncs.
pub fn resolve_stock_elsewhere(
    doc: &mut AutoCommit,
    vin: &str,
    kept_at: &str,
    by: &str,
    now: Millis,
) -> Result<(), DomainError> {
    let site = domain::site_header(doc)?.id;
    let vin = vin.trim().to_ascii_uppercase();
    if kept_at == site {
        return Err(DomainError::Invalid {
            field: format!("resolution of vehicle {vin}"),
            reason: format!("run this at the site that gives the vehicle up, not at {kept_at}"),
        });
    }
    let mut vehicle = domain::get_vehicle(doc, &vin)?.ok_or(DomainError::UnknownVehicle {
        vin: vin.clone(),
        site: site.clone(),
    })?;
    let unknown = || DomainError::UnknownVehicle {
        vin: vin.clone(),
        site: site.clone(),
    };
    let vehicles = map_of(doc, &ROOT, "vehicles").ok_or_else(unknown)?;
    let obj = map_of(doc, &vehicles, &vin).ok_or_else(unknown)?;
    // The site holds the vehicle if the status shown says so, or a concurrent one
    // hidden behind it (a reservation made while another device transferred it out).
    let held_here = matches!(
        vehicle.status,
        VehicleStatus::InStock | VehicleStatus::Reserved
    ) || !held_statuses(doc, &site, &vehicles, &vin).is_empty();
    if !held_here {
        return Err(DomainError::IllegalVehicleTransition {
            vin,
            from: vehicle.status,
            to: VehicleStatus::TransferredOut,
        });
    }
    let fresh = maps_of(doc, &vehicles, &vin).len() > 1;
    vehicle.status = VehicleStatus::TransferredOut;
    vehicle.transfer_to = Some(kept_at.to_string());
    vehicle.updated_at = now;
    doc.commit();
    let result = (|| -> Result<(), DomainError> {
        if fresh {
            // Two records of the VIN: one fresh record supersedes both.
            return domain::put_vehicle_record(doc, &vehicles, &vehicle);
        }
        // Plain puts supersede every concurrent value of these fields.
        doc.put(&obj, "status", VehicleStatus::TransferredOut.as_str())?;
        doc.put(&obj, "transferTo", kept_at)?;
        doc.put(&obj, "updatedAt", now)?;
        Ok(())
    })();
    finish(
        doc,
        result,
        format!("{by}: vehicle {vin} is held at {kept_at}, not here"),
        now,
    )
}

/// Resolves a duplicate customer by marking `duplicate` as merged into `keep`.
pub fn resolve_duplicate_customer(
    doc: &mut AutoCommit,
    duplicate: &str,
    keep: &str,
    by: &str,
    now: Millis,
) -> Result<(), DomainError> {
    domain::merge_customer(doc, duplicate, keep, by, now)
}

/// Resolves a forecast conflict by setting the cell to `quantity`, written over every
/// concurrent value (see [`domain::set_forecast`]).
pub fn resolve_forecast(
    doc: &mut AutoCommit,
    net: &NetworkDocument,
    month: &str,
    model: &str,
    quantity: i64,
    by: &str,
    now: Millis,
) -> Result<(), DomainError> {
    domain::set_forecast(doc, net, month, model, quantity, by, now)
}

/// Resolves a part count collision: `parts[part]` becomes one fresh counter holding
/// `count` (typically what was counted on the shelf, or the sum of the competing
/// counts), which supersedes every concurrent counter. Increments made elsewhere to the
/// old counters and not yet synced here are superseded too, so resolve after syncing.
/// (An adjustment made while the collision stands is applied by automerge to every
/// competing counter, so the competing values, and the conflict's id, move with it.)
/// Refused, with the document unchanged, for a negative count or a part that has only
/// one counter (adjust that with [`domain::adjust_part`], whose increments add up).
pub fn resolve_part_count(
    doc: &mut AutoCommit,
    part: &str,
    count: i64,
    by: &str,
    now: Millis,
) -> Result<(), DomainError> {
    let site = domain::site_header(doc)?.id;
    let part = part.trim();
    if count < 0 {
        return Err(DomainError::Invalid {
            field: format!("resolution of part {part}"),
            reason: format!("a count cannot be negative, got {count}"),
        });
    }
    let parts = map_of(doc, &ROOT, "parts").ok_or_else(|| DomainError::NotADocument {
        kind: "site",
        reason: "no `parts` map at the root".into(),
    })?;
    let competing = part_values(doc, &site, &parts, part);
    if competing.len() < 2 {
        let why = if competing.is_empty() {
            format!("part {part} is not stocked at {site}")
        } else {
            format!(
                "part {part} has one counter at {site}, not a collision; adjust its count instead"
            )
        };
        return Err(DomainError::Invalid {
            field: format!("resolution of part {part}"),
            reason: why,
        });
    }
    doc.commit();
    // A put's predecessors are every value visible here, so this one counter replaces
    // all of them on every replica that receives it.
    let result = doc
        .put(&parts, part, ScalarValue::counter(count))
        .map_err(DomainError::from);
    finish(
        doc,
        result,
        format!("{by}: resolve part count collision of {part}: {count}"),
        now,
    )
}

fn finish(
    doc: &mut AutoCommit,
    result: Result<(), DomainError>,
    message: String,
    now: Millis,
) -> Result<(), DomainError> {
    match result {
        Ok(()) => {
            doc.commit_with(
                automerge::transaction::CommitOptions::default()
                    .with_message(message)
                    .with_time(now.div_euclid(1000)),
            );
            Ok(())
        }
        Err(e) => {
            doc.rollback();
            Err(e)
        }
    }
}
