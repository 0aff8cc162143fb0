//! Customers: adding, updating, events, statuses and merging duplicates.

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjId, ObjType, ReadDoc as _};

use crate::schema::{
    CallDirection, Customer, CustomerEvent, CustomerSource, CustomerStatus, EventKind, Fen, Millis,
    NetworkDocument,
};

use super::customer_records::{
    customer_obj, events_list, live_customer_obj, merged_into, write_event_fields,
};
use super::{
    DomainError, Result, Vin, catalogue_model, commit_write, event_time, key_like, non_empty,
    normalise_phone, not_negative, put_opt_str, read_err, root_map,
};

/// A customer as entered by a consultant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCustomer {
    /// Stable id (the client generates a UUID).
    pub id: String,
    /// Full name.
    pub name: String,
    /// Phone number in any common notation; stored normalised (E.164).
    pub phone: String,
    /// Where the lead came from.
    pub source: CustomerSource,
    /// Model code of interest, checked against the catalogue.
    pub model_of_interest: Option<String>,
    /// Consultant who owns the lead.
    pub consultant: Option<String>,
}

/// Adds a customer as a new lead. The phone number is stored normalised, so that
/// duplicates can be found by comparing strings.
pub fn add_customer(
    doc: &mut AutoCommit,
    net: &NetworkDocument,
    new: &NewCustomer,
    by: &str,
    now: Millis,
) -> Result<Customer> {
    let id = key_like("customer id", &new.id)?;
    let name = non_empty(format!("customer {id} name"), &new.name)?;
    let phone = normalise_phone(&new.phone).map_err(|reason| DomainError::InvalidPhone {
        customer: id.clone(),
        input: new.phone.clone(),
        reason,
    })?;
    if let Some(m) = &new.model_of_interest {
        catalogue_model(net, m, || format!("customer {id} modelOfInterest"))?;
    }
    let consultant = match &new.consultant {
        Some(c) => Some(key_like(format!("customer {id} consultant"), c)?),
        None => None,
    };
    let customers = root_map(doc, "site", "customers")?;
    if doc.get(&customers, id.as_str())?.is_some() {
        return Err(DomainError::CustomerExists { id });
    }
    let customer = Customer {
        id: id.clone(),
        name,
        phone,
        source: new.source,
        model_of_interest: new.model_of_interest.clone(),
        consultant,
        status: CustomerStatus::Lead,
        created_at: now,
        events: Vec::new(),
        merged_into: None,
        area: None,
        referred_by: None,
        next_follow_up: None,
        lost_reason: None,
        lost_to: None,
        lost_at: None,
    };
    commit_write(doc, format!("{by}: add customer {id}"), now, |doc| {
        let obj = doc.put_object(&customers, id.as_str(), ObjType::Map)?;
        write_customer_fields(doc, &obj, &customer)
    })?;
    Ok(customer)
}

/// Writes a new customer record with direct puts: the hot path of a busy showroom, and
/// cheaper than a generic reconcile, which reads the record back first.
fn write_customer_fields(doc: &mut AutoCommit, obj: &ObjId, c: &Customer) -> Result<()> {
    doc.put(obj, "id", c.id.as_str())?;
    doc.put(obj, "name", c.name.as_str())?;
    doc.put(obj, "phone", c.phone.as_str())?;
    doc.put(obj, "source", c.source.as_str())?;
    put_opt_str(doc, obj, "modelOfInterest", c.model_of_interest.as_deref())?;
    put_opt_str(doc, obj, "consultant", c.consultant.as_deref())?;
    doc.put(obj, "status", c.status.as_str())?;
    doc.put(obj, "createdAt", c.created_at)?;
    let events = doc.put_object(obj, "events", ObjType::List)?;
    for (i, e) in c.events.iter().enumerate() {
        let eo = doc.insert_object(&events, i, ObjType::Map)?;
        write_event_fields(doc, &eo, e)?;
    }
    put_opt_str(doc, obj, "mergedInto", c.merged_into.as_deref())?;
    Ok(())
}

/// Changes to a customer's details; `None` leaves a field as it is. Status has its own
/// operation ([`set_customer_status`]) because it follows the funnel's rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerUpdate {
    /// New name.
    pub name: Option<String>,
    /// New phone number (any common notation).
    pub phone: Option<String>,
    /// New source.
    pub source: Option<CustomerSource>,
    /// New model of interest; `Some(None)` clears it.
    pub model_of_interest: Option<Option<String>>,
    /// New consultant; `Some(None)` clears it.
    pub consultant: Option<Option<String>>,
}

/// Updates a customer's details, writing only the fields given.
pub fn update_customer(
    doc: &mut AutoCommit,
    net: &NetworkDocument,
    id: &str,
    update: &CustomerUpdate,
    by: &str,
    now: Millis,
) -> Result<()> {
    let obj = customer_obj(doc, id)?;
    let name = match &update.name {
        Some(n) => Some(non_empty(format!("customer {id} name"), n)?),
        None => None,
    };
    let phone = match &update.phone {
        Some(p) => Some(
            normalise_phone(p).map_err(|reason| DomainError::InvalidPhone {
                customer: id.to_string(),
                input: p.clone(),
                reason,
            })?,
        ),
        None => None,
    };
    if let Some(Some(m)) = &update.model_of_interest {
        catalogue_model(net, m, || format!("customer {id} modelOfInterest"))?;
    }
    if let Some(Some(c)) = &update.consultant {
        key_like(format!("customer {id} consultant"), c)?;
    }
    commit_write(doc, format!("{by}: update customer {id}"), now, |doc| {
        if let Some(n) = &name {
            doc.put(&obj, "name", n.as_str())?;
        }
        if let Some(p) = &phone {
            doc.put(&obj, "phone", p.as_str())?;
        }
        if let Some(s) = update.source {
            doc.put(&obj, "source", s.as_str())?;
        }
        if let Some(m) = &update.model_of_interest {
            put_opt_str(doc, &obj, "modelOfInterest", m.as_deref())?;
        }
        if let Some(c) = &update.consultant {
            put_opt_str(doc, &obj, "consultant", c.as_deref().map(str::trim))?;
        }
        Ok(())
    })
}

/// An event to record in a customer's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// What happened.
    pub kind: EventKind,
    /// When it happened (may be earlier than `now` when entered after the fact).
    pub at: Millis,
    /// Free-text note.
    pub note: Option<String>,
    /// Money involved, in fen.
    pub amount: Option<Fen>,
    /// The vehicle involved, already validated.
    pub vin: Option<Vin>,
    /// Survey score, 1 to 5 (only for surveys).
    pub score: Option<i64>,
    /// Inbound or outbound (only for calls; optional there).
    pub direction: Option<CallDirection>,
}

impl NewEvent {
    /// An event of `kind` at `at` with nothing else.
    pub fn new(kind: EventKind, at: Millis) -> Self {
        NewEvent {
            kind,
            at,
            note: None,
            amount: None,
            vin: None,
            score: None,
            direction: None,
        }
    }
}

/// Appends an event to a customer's history. The event is inserted after the last
/// element, so events recorded concurrently on several devices all survive the merge.
///
/// `at` is when it happened, which may be before the customer was entered (a lead is
/// often typed in after the first visit or call) but not later than `now` plus
/// [`super::CLOCK_SKEW_MS`].
///
/// A `delivery` must name its vehicle, sold to this customer at this site: it is then
/// recorded as the vehicle's delivery (status `delivered` in the same change), so a
/// delivery is counted once. A vehicle still in stock, or sold to someone else, is
/// refused.
pub fn record_event(
    doc: &mut AutoCommit,
    customer: &str,
    event: &NewEvent,
    by: &str,
    now: Millis,
) -> Result<CustomerEvent> {
    let by = key_like("event by", by)?;
    let obj = live_customer_obj(doc, customer)?;
    if let Some(a) = event.amount {
        not_negative(
            format!("{} event amount of customer {customer}", event.kind),
            a,
        )?;
    }
    event_time(
        format!("{} event of customer {customer}", event.kind),
        event.at,
        now,
    )?;
    if event.direction.is_some() && event.kind != EventKind::Call {
        return Err(DomainError::Invalid {
            field: format!("{} event direction of customer {customer}", event.kind),
            reason: "only calls are inbound or outbound".into(),
        });
    }
    match (event.kind, event.score) {
        (EventKind::Survey, Some(s)) if (1..=5).contains(&s) => {}
        (EventKind::Survey, s) => {
            return Err(DomainError::Invalid {
                field: format!("survey score of customer {customer}"),
                reason: match s {
                    Some(s) => format!("must be 1 to 5, got {s}"),
                    None => "a survey needs a score from 1 to 5".into(),
                },
            });
        }
        (kind, Some(_)) => {
            return Err(DomainError::Invalid {
                field: format!("{kind} event score of customer {customer}"),
                reason: "only surveys have a score".into(),
            });
        }
        (_, None) => {}
    }
    let (events, len) = events_list(doc, &obj, customer)?;
    let record = CustomerEvent {
        kind: event.kind,
        at: event.at,
        by,
        note: event
            .note
            .as_ref()
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty()),
        amount: event.amount,
        vin: event.vin.as_ref().map(|v| v.as_str().to_string()),
        score: event.score,
        direction: event.direction,
    };
    if matches!(
        event.kind,
        EventKind::DiscountApproved | EventKind::DiscountRefused
    ) {
        return Err(DomainError::Invalid {
            field: format!("{} event of customer {customer}", event.kind),
            reason: "a discount is approved or refused by a manager (`dealersync discount approve|refuse`)".into(),
        });
    }
    if event.kind == EventKind::Delivery {
        // A delivery is the vehicle's: recorded once, with the vehicle's status, by
        // the one-sale path (see `sale`), whichever command the consultant typed.
        let vin = event.vin.as_ref().ok_or_else(|| DomainError::Invalid {
            field: format!("delivery event of customer {customer}"),
            reason: "a delivery names the vehicle handed over (its VIN)".into(),
        })?;
        return super::vehicles::deliver_to(doc, vin.as_str(), customer, &record, now);
    }
    commit_write(
        doc,
        format!(
            "{}: {} event for customer {customer}",
            record.by, event.kind
        ),
        now,
        |doc| {
            let obj = doc.insert_object(&events, len, ObjType::Map)?;
            write_event_fields(doc, &obj, &record)
        },
    )?;
    Ok(record)
}

/// Whether the sales funnel allows a customer to move from `from` to `to`.
///
/// Forward along lead → test_drive → negotiating → ordered → delivered, skipping steps
/// if need be (not every buyer takes a test drive), except that `delivered` needs an
/// order first; any status → `lost`; `lost` → `lead` when a lost customer comes back.
pub fn customer_transition_allowed(from: CustomerStatus, to: CustomerStatus) -> bool {
    use CustomerStatus::*;
    let rank = |s: CustomerStatus| match s {
        Lead => 0,
        TestDrive => 1,
        Negotiating => 2,
        Ordered => 3,
        Delivered => 4,
        Lost => 99,
    };
    match (from, to) {
        (Lost, Lead) => true,
        (Lost, _) => false,
        (_, Lost) => true,
        (Ordered, Delivered) => true,
        (_, Delivered) => false,
        (f, t) => rank(t) > rank(f),
    }
}

/// Moves a customer to another funnel status, if the funnel allows it.
pub fn set_customer_status(
    doc: &mut AutoCommit,
    id: &str,
    to: CustomerStatus,
    by: &str,
    now: Millis,
) -> Result<()> {
    let obj = live_customer_obj(doc, id)?;
    let from: CustomerStatus = autosurgeon::hydrate_prop(doc, &obj, "status")
        .map_err(read_err(format!("status of customer {id}")))?;
    if !customer_transition_allowed(from, to) {
        return Err(DomainError::IllegalCustomerTransition {
            customer: id.into(),
            from,
            to,
        });
    }
    commit_write(
        doc,
        format!("{by}: customer {id} {from} -> {to}"),
        now,
        |doc| {
            doc.put(&obj, "status", to.as_str())?;
            Ok(())
        },
    )
}

/// Marks `duplicate` as merged into `into` (same person entered twice). The duplicate
/// record stays for the audit trail; readers skip it.
pub fn merge_customer(
    doc: &mut AutoCommit,
    duplicate: &str,
    into: &str,
    by: &str,
    now: Millis,
) -> Result<()> {
    if duplicate == into {
        return Err(DomainError::Invalid {
            field: format!("merge of customer {duplicate}"),
            reason: "a customer cannot be merged into itself".into(),
        });
    }
    let dup = customer_obj(doc, duplicate)?;
    let keep = customer_obj(doc, into)?;
    if let Some(other) = merged_into(doc, &keep, into)? {
        return Err(DomainError::Invalid {
            field: format!("merge of customer {duplicate}"),
            reason: format!("customer {into} was itself merged into {other}; merge into that one"),
        });
    }
    commit_write(
        doc,
        format!("{by}: merge customer {duplicate} into {into}"),
        now,
        |doc| {
            doc.put(&dup, "mergedInto", into)?;
            Ok(())
        },
    )
}
