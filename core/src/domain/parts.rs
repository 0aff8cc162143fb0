//! Parts counters, and parts a distribution centre ships to its agents (配件配送).

use std::collections::BTreeMap;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjId, ROOT, ReadDoc as AmReadDoc, ScalarValue, Value};

use crate::schema::{Millis, NetworkDocument, PartsShipment, SiteKind};

use super::{
    DomainError, Result, commit, commit_write, key_like, read_err, root_map, site_id, writable_map,
};

/// The count of `part` in `parts`: `None` when the site has never had it; an error
/// when the value is not a counter (a foreign client's plain number).
fn on_hand(doc: &AutoCommit, parts: &ObjId, part: &str) -> Result<Option<i64>> {
    match doc.get(parts, part)? {
        None => Ok(None),
        Some((Value::Scalar(s), _)) => match s.as_ref() {
            ScalarValue::Counter(c) => Ok(Some(i64::from(c))),
            other => Err(DomainError::NotADocument {
                kind: "site",
                reason: format!("parts.{part} is {other:?}, not a counter"),
            }),
        },
        Some((v, _)) => Err(DomainError::NotADocument {
            kind: "site",
            reason: format!("parts.{part} is {v:?}, not a counter"),
        }),
    }
}

/// The count after adding `change` to `current`, or the error saying why not.
fn checked_count(part: &str, current: i64, change: i64) -> Result<i64> {
    let Some(after) = current.checked_add(change) else {
        return Err(DomainError::PartsOverflow {
            part: part.to_string(),
            on_hand: current,
            change,
        });
    };
    if after < 0 {
        return Err(DomainError::PartsBelowZero {
            part: part.to_string(),
            on_hand: current,
            change,
        });
    }
    Ok(after)
}

/// Adds `change` to a part's counter, creating it when the site never had the part.
fn write_change(
    doc: &mut AutoCommit,
    parts: &ObjId,
    part: &str,
    existed: bool,
    change: i64,
) -> Result<()> {
    if existed {
        doc.increment(parts, part, change)?;
    } else {
        doc.put(parts, part, ScalarValue::counter(change))?;
    }
    Ok(())
}

/// Adds `change` (negative to take parts out) to the count of a part, as an automerge
/// counter increment, so that concurrent adjustments on several devices add up. A
/// change that would take the count below zero here is refused; concurrent withdrawals
/// on other devices can still take the merged count below zero, which
/// [`crate::conflicts`] does not hide. Returns the new local count.
pub fn adjust_part(
    doc: &mut AutoCommit,
    part: &str,
    change: i64,
    by: &str,
    now: Millis,
) -> Result<i64> {
    let part = key_like("part number", part)?;
    let parts = root_map(doc, "site", "parts")?;
    let current = on_hand(doc, &parts, &part)?;
    let after = checked_count(&part, current.unwrap_or(0), change)?;
    if change == 0 {
        return Ok(after);
    }
    commit_write(doc, format!("{by}: part {part} {change:+}"), now, |doc| {
        write_change(doc, &parts, &part, current.is_some(), change)
    })?;
    Ok(after)
}

/// A shipment as the distribution centre enters it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewShipment {
    /// Stable id (the client generates a UUID).
    pub id: String,
    /// Part number → quantity, each above zero.
    pub lines: BTreeMap<String, i64>,
    /// The waybill, free text.
    pub note: Option<String>,
}

/// A distribution centre (`dc`) ships parts to an agent below it (`agent`): its own
/// counts go down and the shipment is recorded in both documents, all validated before
/// either is written. The agent's counts go up when it records the arrival
/// ([`receive_parts`]). A DC manager writes both documents (the agent is in the
/// manager's subtree).
pub fn ship_parts(
    dc: &mut AutoCommit,
    agent: &mut AutoCommit,
    net: &NetworkDocument,
    new: &NewShipment,
    by: &str,
    now: Millis,
) -> Result<PartsShipment> {
    let by = key_like("shipped by", by)?;
    let id = key_like("shipment id", &new.id)?;
    let (from, to) = (site_id(&*dc)?, site_id(&*agent)?);
    if from == to {
        return Err(DomainError::Invalid {
            field: format!("shipment {id}"),
            reason: format!("{from} cannot ship parts to itself: name an agent below it"),
        });
    }
    let kind = net.sites.get(&from).map(|h| h.kind);
    if kind != Some(SiteKind::DistributionCentre) {
        return Err(DomainError::Invalid {
            field: format!("shipment {id}"),
            reason: format!("{from} is not a distribution centre of the network"),
        });
    }
    if !below(net, &to, &from) {
        return Err(DomainError::Invalid {
            field: format!("shipment {id}"),
            reason: format!("{to} is not a site below distribution centre {from}"),
        });
    }
    if new.lines.is_empty() {
        return Err(DomainError::Invalid {
            field: format!("shipment {id}"),
            reason: "name at least one part and its quantity".into(),
        });
    }
    let parts = root_map(dc, "site", "parts")?;
    let mut counts = Vec::with_capacity(new.lines.len());
    for (part, &qty) in &new.lines {
        let part = key_like("part number", part)?;
        if qty <= 0 {
            return Err(DomainError::Invalid {
                field: format!("shipment {id} part {part}"),
                reason: format!("a quantity above zero, got {qty}"),
            });
        }
        let current = on_hand(dc, &parts, &part)?;
        checked_count(&part, current.unwrap_or(0), -qty)?;
        counts.push((part, qty, current.is_some()));
    }
    for doc in [&*dc, &*agent] {
        if let Some(map) = super::map_at(doc, &ROOT, "partsShipments")?
            && doc.get(&map, id.as_str())?.is_some()
        {
            return Err(DomainError::Invalid {
                field: format!("shipment {id}"),
                reason: "already recorded".into(),
            });
        }
    }
    root_map(agent, "site", "parts")?;
    let record = PartsShipment {
        id: id.clone(),
        from: from.clone(),
        to: to.clone(),
        lines: counts.iter().map(|(p, q, _)| (p.clone(), *q)).collect(),
        shipped_at: now,
        shipped_by: by.clone(),
        received_at: None,
        received_by: None,
        note: new
            .note
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string),
    };
    dc.commit();
    agent.commit();
    let out = (|| -> Result<()> {
        for (part, qty, existed) in &counts {
            write_change(dc, &parts, part, *existed, -qty)?;
        }
        for doc in [&mut *dc, &mut *agent] {
            let map = writable_map::<PartsShipment>(doc, &ROOT, "partsShipments")?;
            autosurgeon::reconcile_prop(doc, &map, id.as_str(), &record)?;
        }
        Ok(())
    })();
    if let Err(e) = out {
        dc.rollback();
        agent.rollback();
        return Err(e);
    }
    let units: i64 = record.lines.values().sum();
    commit(dc, format!("{by}: ship {units} parts to {to} ({id})"), now);
    commit(
        agent,
        format!("{by}: {units} parts on the way from {from} ({id})"),
        now,
    );
    Ok(record)
}

/// Whether `site` lies below `ancestor` in the network's tree (a loop ends the walk).
fn below(net: &NetworkDocument, site: &str, ancestor: &str) -> bool {
    let mut at = net.sites.get(site).and_then(|h| h.parent.as_deref());
    for _ in 0..=net.sites.len() {
        match at {
            Some(p) if p == ancestor => return true,
            Some(p) => at = net.sites.get(p).and_then(|h| h.parent.as_deref()),
            None => return false,
        }
    }
    false
}

/// The agent records a shipment's arrival: its counts go up by the shipment's lines
/// and the shipment records when and by whom, in one change. Received once.
pub fn receive_parts(
    doc: &mut AutoCommit,
    id: &str,
    by: &str,
    now: Millis,
) -> Result<PartsShipment> {
    let by = key_like("received by", by)?;
    let here = site_id(&*doc)?;
    let no_such = || DomainError::Invalid {
        field: format!("shipment {id}"),
        reason: format!("site {here} has no such shipment"),
    };
    let map = super::map_at(doc, &ROOT, "partsShipments")?.ok_or_else(no_such)?;
    let obj = super::map_at(doc, &map, id)?.ok_or_else(no_such)?;
    let mut record: PartsShipment =
        autosurgeon::hydrate_prop(&*doc, &map, id).map_err(read_err(format!("shipment {id}")))?;
    if record.to != here {
        return Err(DomainError::Invalid {
            field: format!("shipment {id}"),
            reason: format!(
                "it was sent by {here} to {}; the receiver records it",
                record.to
            ),
        });
    }
    if let Some(at) = record.received_at {
        return Err(DomainError::Invalid {
            field: format!("shipment {id}"),
            reason: format!("already received at {}", crate::time::cst_minute(at)),
        });
    }
    let parts = root_map(doc, "site", "parts")?;
    let mut counts = Vec::with_capacity(record.lines.len());
    for (part, &qty) in &record.lines {
        let current = on_hand(doc, &parts, part)?;
        checked_count(part, current.unwrap_or(0), qty)?;
        counts.push((part.clone(), qty, current.is_some()));
    }
    commit_write(
        doc,
        format!("{by}: received parts shipment {id} from {}", record.from),
        now,
        |doc| {
            for (part, qty, existed) in &counts {
                write_change(doc, &parts, part, *existed, *qty)?;
            }
            doc.put(&obj, "receivedAt", now)?;
            doc.put(&obj, "receivedBy", by.as_str())?;
            Ok(())
        },
    )?;
    record.received_at = Some(now);
    record.received_by = Some(by);
    Ok(record)
}
