//! Customer care after the first visit: follow-ups due (客户回访), complaints (投诉),
//! referrals linked to the customer who referred (以老带新), why a customer was lost
//! and to whom, and where customers live (地州 / 市区).

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ROOT, ReadDoc as AmReadDoc};

use crate::schema::{
    Complaint, ComplaintStatus, CustomerArea, CustomerEvent, CustomerStatus, EventKind, Millis,
};

use super::customer_records::{events_list, live_customer_obj, write_event_fields};
use super::customers::customer_transition_allowed;
use super::{
    DomainError, Result, commit_write, event_time, key_like, non_empty, put_opt_i64, put_opt_str,
    read_err, writable_map,
};

fn clean(text: Option<&str>) -> Option<String> {
    text.map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

/// Plans the next follow-up call of a customer (`None` clears it). A time in the past
/// is allowed: it is simply due.
pub fn schedule_follow_up(
    doc: &mut AutoCommit,
    customer: &str,
    due: Option<Millis>,
    by: &str,
    now: Millis,
) -> Result<()> {
    let by = key_like("follow-up by", by)?;
    let obj = live_customer_obj(doc, customer)?;
    commit_write(
        doc,
        format!("{by}: next follow-up of customer {customer}"),
        now,
        |doc| put_opt_i64(doc, &obj, "nextFollowUp", due),
    )
}

/// Records a follow-up call made at `at`, and plans the next one (`next`, or none), in
/// one change: the call done is no longer due.
pub fn record_follow_up(
    doc: &mut AutoCommit,
    customer: &str,
    at: Millis,
    note: Option<&str>,
    next: Option<Millis>,
    by: &str,
    now: Millis,
) -> Result<CustomerEvent> {
    let by = key_like("follow-up by", by)?;
    let obj = live_customer_obj(doc, customer)?;
    event_time(format!("follow-up of customer {customer}"), at, now)?;
    if let Some(n) = next
        && n <= at
    {
        return Err(DomainError::Invalid {
            field: format!("next follow-up of customer {customer}"),
            reason: "must be after the follow-up just made".into(),
        });
    }
    let (events, len) = events_list(doc, &obj, customer)?;
    let record = CustomerEvent {
        kind: EventKind::FollowUp,
        at,
        by: by.clone(),
        note: clean(note),
        amount: None,
        vin: None,
        score: None,
        direction: None,
    };
    commit_write(
        doc,
        format!("{by}: follow-up of customer {customer}"),
        now,
        |doc| {
            let e = doc.insert_object(&events, len, ObjType::Map)?;
            write_event_fields(doc, &e, &record)?;
            put_opt_i64(doc, &obj, "nextFollowUp", next)
        },
    )?;
    Ok(record)
}

/// Sets (or clears) where a customer lives.
pub fn set_customer_area(
    doc: &mut AutoCommit,
    customer: &str,
    area: Option<CustomerArea>,
    by: &str,
    now: Millis,
) -> Result<()> {
    let by = key_like("area by", by)?;
    let obj = live_customer_obj(doc, customer)?;
    commit_write(
        doc,
        format!("{by}: area of customer {customer}"),
        now,
        |doc| put_opt_str(doc, &obj, "area", area.map(CustomerArea::as_str)),
    )
}

/// Links a customer to the customer of this site who referred them (以老带新). Not
/// oneself, and not someone they referred themselves.
pub fn link_referral(
    doc: &mut AutoCommit,
    customer: &str,
    referrer: &str,
    by: &str,
    now: Millis,
) -> Result<()> {
    let by = key_like("referral by", by)?;
    if customer == referrer {
        return Err(DomainError::Invalid {
            field: format!("referrer of customer {customer}"),
            reason: "a customer does not refer themselves".into(),
        });
    }
    let obj = live_customer_obj(doc, customer)?;
    let referrer_obj = live_customer_obj(doc, referrer)?;
    let back = crate::schema::opt_scalar_str::hydrate(&*doc, &referrer_obj, "referredBy".into())
        .map_err(read_err(format!("referredBy of customer {referrer}")))?;
    if back.as_deref() == Some(customer) {
        return Err(DomainError::Invalid {
            field: format!("referrer of customer {customer}"),
            reason: format!("{customer} referred {referrer}: the link would go both ways"),
        });
    }
    commit_write(
        doc,
        format!("{by}: customer {customer} referred by {referrer}"),
        now,
        |doc| {
            doc.put(&obj, "referredBy", referrer)?;
            Ok(())
        },
    )
}

/// Marks a customer lost, saying why and, if known, to which competitor, in one change
/// with the status. Needs a reason; the funnel must allow the move (any status but
/// `lost` itself).
pub fn mark_lost(
    doc: &mut AutoCommit,
    customer: &str,
    reason: &str,
    competitor: Option<&str>,
    by: &str,
    now: Millis,
) -> Result<()> {
    let by = key_like("lost by", by)?;
    let reason = non_empty(format!("lost reason of customer {customer}"), reason)?;
    let obj = live_customer_obj(doc, customer)?;
    let from: CustomerStatus = autosurgeon::hydrate_prop(&*doc, &obj, "status")
        .map_err(read_err(format!("status of customer {customer}")))?;
    if !customer_transition_allowed(from, CustomerStatus::Lost) {
        return Err(DomainError::IllegalCustomerTransition {
            customer: customer.into(),
            from,
            to: CustomerStatus::Lost,
        });
    }
    let competitor = clean(competitor);
    commit_write(
        doc,
        format!("{by}: customer {customer} {from} -> lost"),
        now,
        |doc| {
            doc.put(&obj, "status", CustomerStatus::Lost.as_str())?;
            doc.put(&obj, "lostReason", reason.as_str())?;
            put_opt_str(doc, &obj, "lostTo", competitor.as_deref())?;
            doc.put(&obj, "lostAt", now)?;
            Ok(())
        },
    )
}

/// A complaint as it is taken down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewComplaint {
    /// Stable id (the client generates a UUID).
    pub id: String,
    /// The customer (an id at this site).
    pub customer: String,
    /// What it is about.
    pub summary: String,
    /// Who is on it; the recorder when `None`.
    pub owner: Option<String>,
    /// When it was received.
    pub at: Millis,
}

/// Records a customer's complaint, `open`, owned by `owner` (default: the recorder).
pub fn open_complaint(
    doc: &mut AutoCommit,
    new: &NewComplaint,
    by: &str,
    now: Millis,
) -> Result<Complaint> {
    let by = key_like("complaint by", by)?;
    let id = key_like("complaint id", &new.id)?;
    live_customer_obj(doc, &new.customer)?;
    let summary = non_empty(format!("complaint {id} summary"), &new.summary)?;
    let owner = match &new.owner {
        Some(o) => key_like(format!("complaint {id} owner"), o)?,
        None => by.clone(),
    };
    event_time(format!("complaint {id}"), new.at, now)?;
    if read_complaint(doc, &id)?.is_some() {
        return Err(DomainError::Invalid {
            field: format!("complaint {id}"),
            reason: "already recorded".into(),
        });
    }
    let record = Complaint {
        id: id.clone(),
        customer: new.customer.clone(),
        summary,
        status: ComplaintStatus::Open,
        owner,
        opened_at: new.at,
        opened_by: by.clone(),
        resolution: None,
        resolved_at: None,
        resolved_by: None,
    };
    commit_write(
        doc,
        format!("{by}: complaint {id} of customer {}", new.customer),
        now,
        |doc| {
            let map = writable_map::<Complaint>(doc, &ROOT, "complaints")?;
            autosurgeon::reconcile_prop(doc, &map, id.as_str(), &record)?;
            Ok(())
        },
    )?;
    Ok(record)
}

fn read_complaint(doc: &AutoCommit, id: &str) -> Result<Option<Complaint>> {
    let Some(map) = super::map_at(doc, &ROOT, "complaints")? else {
        return Ok(None);
    };
    if AmReadDoc::get(doc, &map, id)?.is_none() {
        return Ok(None);
    }
    autosurgeon::hydrate_prop(doc, &map, id).map_err(read_err(format!("complaint {id}")))
}

/// What changes on a complaint: its status, its owner, how it was resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComplaintUpdate {
    /// The new status.
    pub status: Option<ComplaintStatus>,
    /// The new owner.
    pub owner: Option<String>,
    /// How it was settled (required to resolve).
    pub resolution: Option<String>,
}

/// Moves a complaint along (open → in progress → resolved; a resolved one may be
/// reopened), hands it to another owner, or records its resolution. Resolving needs a
/// resolution and records who and when; reopening clears them.
pub fn update_complaint(
    doc: &mut AutoCommit,
    id: &str,
    update: &ComplaintUpdate,
    by: &str,
    now: Millis,
) -> Result<Complaint> {
    let by = key_like("complaint by", by)?;
    let mut c = read_complaint(doc, id)?.ok_or_else(|| DomainError::Invalid {
        field: format!("complaint {id}"),
        reason: "no such complaint at this site".into(),
    })?;
    if let Some(o) = &update.owner {
        c.owner = key_like(format!("complaint {id} owner"), o)?;
    }
    if let Some(r) = clean(update.resolution.as_deref()) {
        c.resolution = Some(r);
    }
    let to = update.status.unwrap_or(c.status);
    match (c.status, to) {
        (_, ComplaintStatus::Resolved) if c.resolution.is_none() => {
            return Err(DomainError::Invalid {
                field: format!("complaint {id}"),
                reason: "say how it was resolved (a resolution)".into(),
            });
        }
        (ComplaintStatus::Resolved, ComplaintStatus::Resolved) => {}
        (_, ComplaintStatus::Resolved) => {
            c.resolved_at = Some(now);
            c.resolved_by = Some(by.clone());
        }
        (ComplaintStatus::Resolved, _) => {
            c.resolved_at = None;
            c.resolved_by = None;
        }
        _ => {}
    }
    c.status = to;
    let map = super::root_map(doc, "site", "complaints")?;
    commit_write(doc, format!("{by}: complaint {id} {to}"), now, |doc| {
        autosurgeon::reconcile_prop(doc, &map, id, &c)?;
        Ok(())
    })?;
    Ok(c)
}
