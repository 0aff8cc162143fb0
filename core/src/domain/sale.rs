//! The one sale: a vehicle and its customer change together.
//!
//! Selling a vehicle records an `order` event on the customer it is sold to, and
//! delivering it records a `delivery` event on that customer, in the same automerge
//! change as the vehicle's new status. The reports count units from those events only,
//! so a sale exists once, whichever command recorded it, and never as a vehicle status
//! without its event (or an event without its vehicle).

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjId};

use crate::schema::{CustomerEvent, CustomerStatus, EventKind, Fen, Millis, VehicleStatus};

use super::customer_records::{events_list, live_customer_obj, write_event_fields};
use super::{DomainError, Result, read_err};

/// What a sale step writes on the customer, worked out (and validated) before anything
/// is written.
pub(super) struct CustomerSide {
    /// The customer record.
    obj: ObjId,
    /// Its events list, and the index to append at.
    events: ObjId,
    len: usize,
    /// The funnel status to move to, when the funnel allows it and the customer is not
    /// already there.
    status: Option<CustomerStatus>,
    /// The event to append.
    pub(super) event: CustomerEvent,
}

/// Prepares the customer side of a sale step: `order` when a vehicle is sold,
/// `delivery` when it is handed over. Refuses an unknown or merged customer.
pub(super) fn customer_side(
    doc: &AutoCommit,
    customer: &str,
    event: CustomerEvent,
) -> Result<CustomerSide> {
    let obj = live_customer_obj(doc, customer)?;
    let (events, len) = events_list(doc, &obj, customer)?;
    let from: CustomerStatus = autosurgeon::hydrate_prop(doc, &obj, "status")
        .map_err(read_err(format!("status of customer {customer}")))?;
    let to = match event.kind {
        EventKind::Delivery => CustomerStatus::Delivered,
        _ => CustomerStatus::Ordered,
    };
    // Forward only: a customer already past this step (or lost and now buying, which the
    // funnel cannot express) keeps the status a person gave them.
    let status = (from != to && super::customer_transition_allowed(from, to)).then_some(to);
    Ok(CustomerSide {
        obj,
        events,
        len,
        status,
        event,
    })
}

/// Writes a prepared customer side (inside the vehicle's change).
pub(super) fn write_customer_side(doc: &mut AutoCommit, side: &CustomerSide) -> Result<()> {
    let eo = doc.insert_object(&side.events, side.len, automerge::ObjType::Map)?;
    write_event_fields(doc, &eo, &side.event)?;
    if let Some(to) = side.status {
        doc.put(&side.obj, "status", to.as_str())?;
    }
    Ok(())
}

/// The order event of a sale: the price agreed (in fen) and the vehicle.
pub(super) fn order_event(vin: &str, price: Fen, by: &str, at: Millis) -> CustomerEvent {
    CustomerEvent {
        kind: EventKind::Order,
        at,
        by: by.to_string(),
        note: None,
        amount: Some(price),
        vin: Some(vin.to_string()),
        score: None,
        direction: None,
    }
}

/// The delivery event of a sale. Its amount is left empty: the revenue is the order's
/// price (see the KPI report), unless a price is given at delivery.
pub(super) fn delivery_event(
    vin: &str,
    amount: Option<Fen>,
    note: Option<String>,
    by: &str,
    at: Millis,
) -> CustomerEvent {
    CustomerEvent {
        kind: EventKind::Delivery,
        at,
        by: by.to_string(),
        note,
        amount,
        vin: Some(vin.to_string()),
        score: None,
        direction: None,
    }
}

/// Why a `delivery` event for `vin` cannot be recorded on `customer`: the vehicle is not
/// sold to them. `None` when it is (then the delivery is the vehicle's).
pub(super) fn delivery_refusal(
    vin: &str,
    customer: &str,
    status: VehicleStatus,
    sold_to: Option<&str>,
) -> Option<DomainError> {
    let reason = match (status, sold_to) {
        (VehicleStatus::Sold, Some(c)) if c == customer => return None,
        (VehicleStatus::Delivered, Some(c)) if c == customer => {
            "it was already delivered to this customer; a delivery is recorded once".to_string()
        }
        (VehicleStatus::Sold | VehicleStatus::Delivered, Some(c)) => {
            format!("it is {status} to customer {c}")
        }
        (status, _) => format!("it is {status}, not sold; sell it to the customer first"),
    };
    Some(DomainError::Invalid {
        field: format!("delivery of vehicle {vin} to customer {customer}"),
        reason,
    })
}
