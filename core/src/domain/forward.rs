//! Late changes forward (docs/growth.md, "Conflicts that span documents"): what a
//! device offline over the month's end wrote into the archive during its grace week,
//! written into the new working document so that the new month's lists show it and
//! the working document's conflict checks see it.
//!
//! - A customer the late device *created* (still open) is copied with its events, and
//!   `carriedEvents` counts them, so [`super::combine_periods`] reads each event once.
//! - A *carried vehicle* whose booking (status, reservedFor, soldTo) the late device
//!   changed gets the archive's record, written on a fork of the working document at
//!   the heads the carry-over (and earlier forwards) left: concurrent with the working
//!   document's own edits since, so a car also booked there keeps both values and the
//!   existing double-booking check lists it with its usual resolutions.
//!
//! Idempotent: a second run with the same archive finds nothing to write.

use std::collections::{BTreeMap, BTreeSet};

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ChangeHash, ObjType, ROOT, ReadDoc as AmReadDoc, Value};

use crate::schema::{Customer, CustomerStatus, Millis, Vehicle};

use super::periods::{
    CARRY_CUSTOMERS_PER_CHANGE, CARRY_MESSAGE, PERIOD_KEY, customer_is_open, read_str_at,
};
use super::{DomainError, Result, commit_write, root_map};

/// Opening of every change [`forward_late`] writes: how a later run finds the forwards
/// made before (their heads, with the carry-over's, are where its fork starts).
pub const FORWARD_MESSAGE: &str = "late changes forward";

/// What [`forward_late`] wrote into the working document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forwarded {
    /// Customers created late in the archive, now in the working document.
    pub customers: Vec<String>,
    /// Carried vehicles whose late booking in the archive was written forward.
    pub vehicles: Vec<String>,
}

impl Forwarded {
    /// Whether nothing was written (the working document already had it all).
    pub fn is_empty(&self) -> bool {
        self.customers.is_empty() && self.vehicles.is_empty()
    }
}

/// Writes into `working` (a document [`super::carry_over`] made from `archive`) what
/// devices wrote late into `archive`: open customers it does not have, with their
/// events, and the archive's record of each carried vehicle whose booking changed
/// there after the carry-over, as a change concurrent with `working`'s own edits.
pub fn forward_late(
    archive: &AutoCommit,
    working: &mut AutoCommit,
    now: Millis,
) -> Result<Forwarded> {
    let site = super::site_header(working)?.id;
    let archived = super::site_header(archive)?.id;
    if archived != site {
        return Err(DomainError::Invalid {
            field: "site documents".into(),
            reason: format!(
                "the archive of {archived} cannot be forwarded into the working document of {site}"
            ),
        });
    }
    let base = fork_base(working)?;
    // What to write is decided on reads that hydrate only candidates, so that the run
    // after every late commit costs little when everything is already forwarded.
    let customers = late_customers(archive, working)?;
    let vehicles = late_bookings(archive, working, &base)?;
    if customers.is_empty() && vehicles.is_empty() {
        return Ok(Forwarded::default());
    }
    let mut fork = working.fork_at(&base)?;
    for chunk in customers.chunks(CARRY_CUSTOMERS_PER_CHANGE) {
        let obj = root_map(&fork, "site", "customers")?;
        let carried = carried_events_map(&fork)?;
        commit_write(
            &mut fork,
            format!(
                "{FORWARD_MESSAGE}: {} customers of site {site}",
                chunk.len()
            ),
            now,
            |doc| {
                for c in chunk {
                    autosurgeon::reconcile_prop(doc, &obj, c.id.as_str(), c)?;
                    doc.put(&carried, c.id.as_str(), c.events.len() as u64)?;
                }
                Ok(())
            },
        )?;
    }
    if !vehicles.is_empty() {
        let obj = root_map(&fork, "site", "vehicles")?;
        commit_write(
            &mut fork,
            format!(
                "{FORWARD_MESSAGE}: {} vehicles of site {site}",
                vehicles.len()
            ),
            now,
            |doc| {
                for v in &vehicles {
                    autosurgeon::reconcile_prop(doc, &obj, v.vin.as_str(), v)?;
                }
                Ok(())
            },
        )?;
    }
    working.merge(&mut fork)?;
    Ok(Forwarded {
        customers: customers.into_iter().map(|c| c.id).collect(),
        vehicles: vehicles.into_iter().map(|v| v.vin).collect(),
    })
}

/// The archive's open customers that the working document does not have. Only the
/// keys and statuses of the others are read (most are carried or closed).
fn late_customers(archive: &AutoCommit, working: &AutoCommit) -> Result<Vec<Customer>> {
    let there = root_map(working, "site", "customers")?;
    let have: BTreeSet<String> = working.keys(&there).collect();
    let obj = root_map(archive, "site", "customers")?;
    let closed = [CustomerStatus::Delivered, CustomerStatus::Lost].map(|s| s.as_str());
    let mut out = Vec::new();
    for id in archive.keys(&obj) {
        if have.contains(&id) {
            continue;
        }
        let Some((Value::Object(ObjType::Map), c)) = archive.get(&obj, id.as_str())? else {
            continue;
        };
        let status = read_str_at(archive, &c, "status", None)?;
        if read_str_at(archive, &c, "mergedInto", None)?.is_some()
            || status.is_some_and(|s| closed.contains(&s.as_str()))
        {
            continue;
        }
        if let Some(customer) = super::get_customer(archive, &id)?
            && customer_is_open(customer.status, customer.merged_into.as_deref())
        {
            out.push(customer);
        }
    }
    Ok(out)
}

/// The archive's record of each carried vehicle whose booking differs from what the
/// working document held at `base` (the carry-over and earlier forwards).
fn late_bookings(
    archive: &AutoCommit,
    working: &AutoCommit,
    base: &[ChangeHash],
) -> Result<Vec<Vehicle>> {
    let vehicles = root_map(working, "site", "vehicles")?;
    let mut out = Vec::new();
    for v in super::list_vehicles(archive, None)? {
        let Some((Value::Object(ObjType::Map), obj)) =
            working.get_at(&vehicles, v.vin.as_str(), base)?
        else {
            continue;
        };
        let then = (
            read_str_at(working, &obj, "status", Some(base))?,
            read_str_at(working, &obj, "reservedFor", Some(base))?,
            read_str_at(working, &obj, "soldTo", Some(base))?,
        );
        let late = (
            Some(v.status.as_str().to_string()),
            v.reserved_for.clone(),
            v.sold_to.clone(),
        );
        if then != late {
            out.push(v);
        }
    }
    Ok(out)
}

/// The header's `carriedEvents` map (every carried-over document has one).
fn carried_events_map(doc: &AutoCommit) -> Result<automerge::ObjId> {
    let bad = |reason: &str| DomainError::NotADocument {
        kind: "site",
        reason: format!("`{PERIOD_KEY}` {reason}"),
    };
    let Some((Value::Object(ObjType::Map), p)) = doc.get(ROOT, PERIOD_KEY)? else {
        return Err(bad("is missing: the document was not carried over"));
    };
    match doc.get(&p, "carriedEvents")? {
        Some((Value::Object(ObjType::Map), c)) => Ok(c),
        _ => Err(bad("has no carriedEvents map")),
    }
}

/// Where the forwards' fork starts: the carry-over's last change and every earlier
/// forward, none of the working document's own edits.
///
/// Read from the history, so it holds for documents carried over by any release: the
/// carry-over writes the document's first changes with an actor of its own (the
/// document is built in memory and then stored, so that actor never writes again), and
/// the forwards are known by their message.
fn fork_base(working: &mut AutoCommit) -> Result<Vec<ChangeHash>> {
    let not_carried = || DomainError::NotADocument {
        kind: "site",
        reason: "its history does not start with a carry-over".into(),
    };
    let metas = working.get_changes_meta(&[]);
    let root = metas
        .iter()
        .find(|m| m.deps.is_empty())
        .ok_or_else(not_carried)?;
    if !root
        .message
        .as_deref()
        .is_some_and(|m| m.starts_with(CARRY_MESSAGE))
    {
        return Err(not_carried());
    }
    let carrier = root.actor.clone();
    let carried = metas
        .iter()
        .filter(|m| {
            m.actor == carrier
                && m.message
                    .as_deref()
                    .is_some_and(|s| s.starts_with(CARRY_MESSAGE))
        })
        .max_by_key(|m| m.seq)
        .ok_or_else(not_carried)?
        .hash;
    let forwards: BTreeMap<ChangeHash, &[ChangeHash]> = metas
        .iter()
        .filter(|m| {
            m.message
                .as_deref()
                .is_some_and(|s| s.starts_with(FORWARD_MESSAGE))
        })
        .map(|m| (m.hash, m.deps.as_slice()))
        .collect();
    let depended: BTreeSet<&ChangeHash> = forwards.values().flat_map(|d| d.iter()).collect();
    let mut base: Vec<ChangeHash> = forwards
        .keys()
        .filter(|h| !depended.contains(h))
        .copied()
        .collect();
    if base.is_empty() {
        base.push(carried);
    }
    Ok(base)
}
