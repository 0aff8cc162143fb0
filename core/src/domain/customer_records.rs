//! A customer's record in the site document as the operations reach it: finding the
//! live record (not merged away), its event list, and the fields of one event. Shared by
//! the customer, sale, discount and vehicle operations, so that none of them imports
//! another to reach a record.

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjId, ObjType, ReadDoc as AmReadDoc, Value};

use crate::schema::CustomerEvent;

use super::{DomainError, Result, map_at, put_opt_i64, put_opt_str, read_err, root_map};

pub(super) fn write_event_fields(
    doc: &mut AutoCommit,
    obj: &ObjId,
    e: &CustomerEvent,
) -> Result<()> {
    doc.put(obj, "kind", e.kind.as_str())?;
    doc.put(obj, "at", e.at)?;
    doc.put(obj, "by", e.by.as_str())?;
    put_opt_str(doc, obj, "note", e.note.as_deref())?;
    put_opt_i64(doc, obj, "amount", e.amount)?;
    put_opt_str(doc, obj, "vin", e.vin.as_deref())?;
    put_opt_i64(doc, obj, "score", e.score)?;
    // Only calls have a direction; other events leave the key out (readers take a
    // missing key as none), so they cost nothing more than before.
    if let Some(d) = e.direction {
        doc.put(obj, "direction", d.as_str())?;
    }
    Ok(())
}

/// A customer that has not been merged into another: new history belongs on the
/// customer that remains.
pub(super) fn live_customer_obj(doc: &AutoCommit, id: &str) -> Result<ObjId> {
    let obj = customer_obj(doc, id)?;
    match merged_into(doc, &obj, id)? {
        Some(into) => Err(DomainError::MergedCustomer {
            id: id.into(),
            into,
        }),
        None => Ok(obj),
    }
}

pub(super) fn merged_into(doc: &AutoCommit, obj: &ObjId, id: &str) -> Result<Option<String>> {
    crate::schema::opt_scalar_str::hydrate(doc, obj, "mergedInto".into())
        .map_err(read_err(format!("mergedInto of customer {id}")))
}

pub(super) fn customer_obj<D: AmReadDoc>(doc: &D, id: &str) -> Result<ObjId> {
    let customers = root_map(doc, "site", "customers")?;
    map_at(doc, &customers, id)?.ok_or_else(|| DomainError::UnknownCustomer { id: id.into() })
}

/// A customer's events list and its length (where the next event goes).
pub(super) fn events_list(doc: &AutoCommit, obj: &ObjId, customer: &str) -> Result<(ObjId, usize)> {
    match doc.get(obj, "events")? {
        Some((Value::Object(ObjType::List), id)) => {
            let len = doc.length(&id);
            Ok((id, len))
        }
        _ => Err(DomainError::NotADocument {
            kind: "site",
            reason: format!("customer {customer} has no events list"),
        }),
    }
}
