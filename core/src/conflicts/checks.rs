//! The checks: what each kind of conflict looks like in a document.

use std::collections::{BTreeMap, BTreeSet};

use automerge::{ObjId, ObjType, ROOT, ReadDoc, Value};

use crate::domain::normalise_phone;
use crate::schema::VehicleStatus;

use super::read::{
    actor_of, all_texts, int_of, keys_of, map_of, maps_of, text_field, text_of, time_of,
};
use super::{ChangeLookup, CompetingValue, Conflict, ConflictKind};

/// Customer ids competing for one vehicle, across concurrent vehicle records and
/// concurrent `reservedFor` / `soldTo` values.
pub(super) fn booking_candidates<D: ChangeLookup>(
    doc: &D,
    site: &str,
    vehicles: &ObjId,
    vin: &str,
) -> Vec<CompetingValue> {
    vehicle_values(doc, site, vehicles, vin, &["reservedFor", "soldTo"], |_| {
        true
    })
}

/// Every concurrent value of `fields` that `keep` accepts, across concurrent records of
/// the VIN (record by record, field by field), with whether automerge hides it.
fn vehicle_values<D: ChangeLookup>(
    doc: &D,
    site: &str,
    vehicles: &ObjId,
    vin: &str,
    fields: &[&str],
    keep: fn(&str) -> bool,
) -> Vec<CompetingValue> {
    let winner = map_of(doc, vehicles, vin);
    let mut values = Vec::new();
    for obj in maps_of(doc, vehicles, vin) {
        let obj_hidden = Some(&obj) != winner.as_ref();
        for field in fields {
            let all = all_texts(doc, &obj, field);
            let last = all.len().saturating_sub(1);
            for (i, (value, op)) in all.into_iter().enumerate() {
                let Some(value) = value.filter(|v| keep(v)) else {
                    continue;
                };
                values.push(CompetingValue {
                    site: site.to_string(),
                    record: format!("vehicle {vin}"),
                    field: field.to_string(),
                    value,
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
pub(super) fn vehicle_checks<D: ChangeLookup>(
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
pub(super) fn held_statuses<D: ChangeLookup>(
    doc: &D,
    site: &str,
    vehicles: &ObjId,
    vin: &str,
) -> Vec<CompetingValue> {
    vehicle_values(doc, site, vehicles, vin, &["status"], is_held)
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

pub(super) fn duplicate_customers<D: ChangeLookup>(site: &str, doc: &D, out: &mut Vec<Conflict>) {
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

pub(super) fn forecast_edits<D: ChangeLookup>(site: &str, doc: &D, out: &mut Vec<Conflict>) {
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

/// Two distribution centre managers adjusting the same forecast offline: concurrent
/// `adjusted` maps (both created one) or concurrent quantities in the one map, with
/// different figures. Only the visible month and cell are read: a hidden cell is a
/// [`ConflictKind::ForecastEdit`] already.
pub(super) fn forecast_adjustments<D: ChangeLookup>(site: &str, doc: &D, out: &mut Vec<Conflict>) {
    let Some(forecasts) = map_of(doc, &ROOT, "forecasts") else {
        return;
    };
    for month in keys_of(doc, &forecasts) {
        let Some(month_obj) = map_of(doc, &forecasts, &month) else {
            continue;
        };
        for model in keys_of(doc, &month_obj) {
            let Some(cell) = map_of(doc, &month_obj, &model) else {
                continue;
            };
            let record = format!("forecast {month}/{model}");
            let visible = map_of(doc, &cell, "adjusted");
            let mut values = Vec::new();
            for adjusted in maps_of(doc, &cell, "adjusted") {
                let all = doc.get_all(&adjusted, "quantity").unwrap_or_default();
                let last = all.len().saturating_sub(1);
                for (i, (v, op)) in all.into_iter().enumerate() {
                    let Some(q) = int_of(&v) else { continue };
                    values.push(CompetingValue {
                        site: site.to_string(),
                        record: record.clone(),
                        field: "adjusted.quantity".into(),
                        value: q.to_string(),
                        actor: actor_of(&op),
                        at: time_of(doc, &adjusted, "at", &op),
                        hidden: Some(&adjusted) != visible.as_ref() || i != last,
                    });
                }
            }
            let distinct: BTreeSet<&str> = values.iter().map(|v| v.value.as_str()).collect();
            if distinct.len() < 2 {
                continue;
            }
            let summary = format!(
                "forecast {month}/{model} at {site} was adjusted concurrently to {}",
                distinct.into_iter().collect::<Vec<_>>().join(" and ")
            );
            out.push(Conflict::new(
                ConflictKind::ForecastAdjustment,
                BTreeSet::from([record]),
                values,
                summary,
            ));
        }
    }
}

/// Every concurrent counter at `parts[part]`, in automerge's op order (the last one is
/// the one readers see). A non-counter value (a plain number written by a foreign
/// client) competes too: it hides or is hidden just the same.
pub(super) fn part_values<D: ReadDoc>(
    doc: &D,
    site: &str,
    parts: &ObjId,
    part: &str,
) -> Vec<CompetingValue> {
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

pub(super) fn part_collisions<D: ReadDoc>(site: &str, doc: &D, out: &mut Vec<Conflict>) {
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

/// The label the network document's values carry in place of a site id.
pub(super) const NETWORK: &str = "network";

/// Every concurrent verdict on transfer request `id` in the network document, with the
/// decision record holding it: across concurrent records (two head-office users each
/// deciding offline create two) and concurrent `verdict` values in one record, with
/// whether automerge hides it.
pub(super) fn decision_values<D: ChangeLookup>(
    doc: &D,
    decisions: &ObjId,
    id: &str,
) -> Vec<(CompetingValue, ObjId)> {
    let winner = map_of(doc, decisions, id);
    let mut values = Vec::new();
    for obj in maps_of(doc, decisions, id) {
        let obj_hidden = Some(&obj) != winner.as_ref();
        let all = all_texts(doc, &obj, "verdict");
        let last = all.len().saturating_sub(1);
        for (i, (verdict, op)) in all.into_iter().enumerate() {
            let Some(verdict) = verdict else { continue };
            values.push((
                CompetingValue {
                    site: NETWORK.to_string(),
                    record: format!("transfer {id}"),
                    field: "verdict".into(),
                    value: verdict,
                    actor: actor_of(&op),
                    at: time_of(doc, &obj, "at", &op),
                    hidden: obj_hidden || i != last,
                },
                obj.clone(),
            ));
        }
    }
    values
}

/// Two head-office users deciding the same transfer request differently offline: one
/// approved it, the other refused it. Readers see one verdict, chosen by automerge's
/// rule, not by head office; the sender may dispatch under the approval while the
/// receiver reads the refusal. Concurrent decisions with the same verdict agree and are
/// not listed.
pub(super) fn transfer_decisions<D: ChangeLookup>(doc: &D, out: &mut Vec<Conflict>) {
    let Some(decisions) = map_of(doc, &ROOT, "transferDecisions") else {
        return;
    };
    // automerge flags a key with several concurrent records; a record edited
    // concurrently in place is found by reading its verdicts.
    for item in doc.map_range(&decisions, ..) {
        if !matches!(item.value, automerge::ValueRef::Object(ObjType::Map)) {
            continue;
        }
        let id = item.key.to_string();
        let values = decision_values(doc, &decisions, &id);
        let distinct: BTreeSet<&str> = values.iter().map(|(v, _)| v.value.as_str()).collect();
        if distinct.len() < 2 {
            continue;
        }
        let said: Vec<String> = values
            .iter()
            .map(|(v, obj)| {
                let by = text_field(doc, obj, "by").unwrap_or_else(|| "?".into());
                format!("{} by {by}", v.value)
            })
            .collect();
        let shown = values
            .iter()
            .find(|(v, _)| !v.hidden)
            .map(|(v, _)| v.value.clone())
            .unwrap_or_default();
        let route = map_of(doc, &decisions, &id)
            .map(|obj| {
                let field = |k: &str| text_field(doc, &obj, k).unwrap_or_else(|| "?".into());
                format!("{} from {} to {}", field("vin"), field("from"), field("to"))
            })
            .unwrap_or_default();
        let summary = format!(
            "transfer {id} ({route}) was decided concurrently: {}; readers see {shown} until head office settles it",
            said.join(", ")
        );
        out.push(Conflict::new(
            ConflictKind::TransferDecision,
            BTreeSet::from([format!("transfer {id}")]),
            values.into_iter().map(|(v, _)| v).collect(),
            summary,
        ));
    }
}
