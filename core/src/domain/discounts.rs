//! Discount approval: the network's commercial policy lets each role grant a discount
//! per vehicle up to its limit (`discountLimits` in the network document); above it, a
//! consultant asks (a `discount_request` on the customer) and a manager approves or
//! refuses (`discount_approved` / `discount_refused`). A sale above the seller's limit
//! needs an approval covering its discount, and the vehicle records who approved it
//! and when.

use automerge::AutoCommit;
use automerge::transaction::Transactable as _;

use crate::access::Role;
use crate::schema::{Customer, CustomerEvent, EventKind, Fen, Millis, NetworkDocument};

use super::customer_records::{events_list, live_customer_obj, write_event_fields};
use super::read::{get_customer, get_vehicle};
use super::{DomainError, Result, commit_write, key_like, site_id};

/// The largest discount `role` may grant without approval: the network's limit for
/// the role, or nothing (0) when the policy sets none for it.
pub fn discount_limit(net: &NetworkDocument, role: Role) -> Fen {
    net.discount_limits
        .get(role.as_str())
        .copied()
        .unwrap_or(0)
        .max(0)
}

/// The discount a price on `vin` means (its list price − `price`), when it is above the
/// limit of `role`: a quote at that price has to become a discount request. `None`
/// within the limit.
pub fn discount_over_limit(
    doc: &AutoCommit,
    net: &NetworkDocument,
    vin: &str,
    price: Fen,
    role: Role,
) -> Result<Option<Fen>> {
    let key = vin.trim().to_ascii_uppercase();
    let v = get_vehicle(doc, &key)?.ok_or_else(|| DomainError::UnknownVehicle {
        vin: vin.into(),
        site: site_id(doc).unwrap_or_default(),
    })?;
    let discount = v.list_price.saturating_sub(price);
    Ok((discount > discount_limit(net, role)).then_some(discount))
}

/// Where a discount on one vehicle for one customer stands: the last request or
/// decision about that VIN in the customer's history.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DiscountState {
    /// Asked for, not decided yet.
    Pending {
        /// The discount asked for, in fen.
        amount: Fen,
        /// Who asked.
        by: String,
        /// When.
        at: Millis,
    },
    /// Approved by a manager, up to `amount`.
    Approved {
        /// The discount approved, in fen.
        amount: Fen,
        /// The approver.
        by: String,
        /// When.
        at: Millis,
    },
    /// Refused by a manager.
    Refused {
        /// The discount that was refused, in fen.
        amount: Fen,
        /// The manager who refused it.
        by: String,
        /// When.
        at: Millis,
    },
}

/// The state of the discount on `vin` for `customer`, if one was ever asked for.
pub fn discount_state(customer: &Customer, vin: &str) -> Option<DiscountState> {
    customer
        .events
        .iter()
        .rev()
        .filter(|e| e.vin.as_deref() == Some(vin))
        .find_map(|e| {
            let (amount, by, at) = (e.amount.unwrap_or(0), e.by.clone(), e.at);
            match e.kind {
                EventKind::DiscountRequest => Some(DiscountState::Pending { amount, by, at }),
                EventKind::DiscountApproved => Some(DiscountState::Approved { amount, by, at }),
                EventKind::DiscountRefused => Some(DiscountState::Refused { amount, by, at }),
                _ => None,
            }
        })
}

/// A manager's answer to a discount request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscountDecision {
    /// The discount asked for is granted.
    Approve,
    /// It is not.
    Refuse,
}

/// Asks for a discount of `amount` fen on `vin` for `customer` (a vehicle of this site,
/// in stock or reserved for that customer). A new request supersedes an earlier one.
pub fn request_discount(
    doc: &mut AutoCommit,
    customer: &str,
    vin: &str,
    amount: Fen,
    by: &str,
    now: Millis,
) -> Result<CustomerEvent> {
    let by = key_like("discount request by", by)?;
    let (vin, list_price) = discountable(doc, customer, vin)?;
    if amount <= 0 || amount > list_price {
        return Err(DomainError::Invalid {
            field: format!("discount on vehicle {vin} for customer {customer}"),
            reason: format!(
                "must be more than 0 and at most the list price {list_price} fen, got {amount}"
            ),
        });
    }
    let event = discount_event(EventKind::DiscountRequest, &vin, amount, &by, now);
    append(
        doc,
        customer,
        &event,
        format!("{by}: discount request {amount} fen on {vin}"),
        now,
    )?;
    Ok(event)
}

/// A manager approves or refuses the pending discount request on `vin` for `customer`.
/// Only managers, head office and admins decide, and each approves up to its own limit
/// (a discount beyond the manager's goes to head office).
#[allow(clippy::too_many_arguments)]
pub fn decide_discount(
    doc: &mut AutoCommit,
    net: &NetworkDocument,
    customer: &str,
    vin: &str,
    decision: DiscountDecision,
    by: &str,
    role: Role,
    now: Millis,
) -> Result<CustomerEvent> {
    let by = key_like("discount decision by", by)?;
    let (vin, _) = discountable(doc, customer, vin)?;
    let field = || format!("discount on vehicle {vin} for customer {customer}");
    if role == Role::Consultant {
        return Err(DomainError::Invalid {
            field: field(),
            reason: "a discount is approved or refused by a manager".into(),
        });
    }
    let c = get_customer(&*doc, customer)?.ok_or_else(|| DomainError::UnknownCustomer {
        id: customer.into(),
    })?;
    let amount = match discount_state(&c, &vin) {
        Some(DiscountState::Pending { amount, .. }) => amount,
        other => {
            return Err(DomainError::Invalid {
                field: field(),
                reason: match other {
                    None => "no discount was requested".into(),
                    Some(s) => format!("no request is pending ({})", describe(&s)),
                },
            });
        }
    };
    let kind = match decision {
        DiscountDecision::Approve => {
            let limit = discount_limit(net, role);
            if amount > limit {
                return Err(DomainError::Invalid {
                    field: field(),
                    reason: format!(
                        "{amount} fen is above the {} limit of {limit} fen; it needs a higher approval",
                        role.as_str()
                    ),
                });
            }
            EventKind::DiscountApproved
        }
        DiscountDecision::Refuse => EventKind::DiscountRefused,
    };
    let event = discount_event(kind, &vin, amount, &by, now);
    append(
        doc,
        customer,
        &event,
        format!("{by}: {kind} {amount} fen on {vin}"),
        now,
    )?;
    Ok(event)
}

/// Checks a sale's discount against the seller's limit: `Ok(None)` within it,
/// `Ok(Some((approver, at)))` when an approval covers it, refused otherwise.
pub(super) fn check_sale_discount(
    doc: &AutoCommit,
    net: &NetworkDocument,
    customer: &str,
    vin: &str,
    discount: Fen,
    role: Role,
) -> Result<Option<(String, Millis)>> {
    let limit = discount_limit(net, role);
    if discount <= limit {
        return Ok(None);
    }
    let c = get_customer(doc, customer)?.ok_or_else(|| DomainError::UnknownCustomer {
        id: customer.into(),
    })?;
    let state = discount_state(&c, vin);
    if let Some(DiscountState::Approved { amount, by, at }) = &state
        && *amount >= discount
    {
        return Ok(Some((by.clone(), *at)));
    }
    Err(DomainError::DiscountNotApproved {
        vin: vin.into(),
        discount,
        role: role.as_str(),
        limit,
        state: match state {
            None => "request a discount and have a manager approve it".into(),
            Some(s) => describe(&s),
        },
    })
}

fn describe(s: &DiscountState) -> String {
    match s {
        DiscountState::Pending { amount, by, .. } => {
            format!("{by}'s request for {amount} fen is waiting for a manager")
        }
        DiscountState::Approved { amount, by, .. } => {
            format!("{by} approved {amount} fen, not more")
        }
        DiscountState::Refused { amount, by, .. } => format!("{by} refused {amount} fen"),
    }
}

/// The vehicle's VIN key and list price, when it can still be sold to `customer`: at
/// this site, in stock, or reserved for that customer.
fn discountable(doc: &AutoCommit, customer: &str, vin: &str) -> Result<(String, Fen)> {
    live_customer_obj(doc, customer)?;
    let key = vin.trim().to_ascii_uppercase();
    let v = get_vehicle(doc, &key)?.ok_or_else(|| DomainError::UnknownVehicle {
        vin: vin.into(),
        site: site_id(doc).unwrap_or_default(),
    })?;
    use crate::schema::VehicleStatus::*;
    match (v.status, v.reserved_for.as_deref()) {
        (InStock | Ordered | InTransit, _) => Ok((key, v.list_price)),
        (Reserved, Some(c)) if c == customer => Ok((key, v.list_price)),
        (status, other) => Err(DomainError::Invalid {
            field: format!("discount on vehicle {key} for customer {customer}"),
            reason: match other {
                Some(o) if status == Reserved => format!("it is reserved for customer {o}"),
                _ => format!("it is {status}, no longer for sale"),
            },
        }),
    }
}

fn discount_event(kind: EventKind, vin: &str, amount: Fen, by: &str, at: Millis) -> CustomerEvent {
    CustomerEvent {
        kind,
        at,
        by: by.into(),
        note: None,
        amount: Some(amount),
        vin: Some(vin.into()),
        score: None,
        direction: None,
    }
}

fn append(
    doc: &mut AutoCommit,
    customer: &str,
    event: &CustomerEvent,
    message: String,
    now: Millis,
) -> Result<()> {
    let obj = live_customer_obj(doc, customer)?;
    let (events, len) = events_list(doc, &obj, customer)?;
    commit_write(doc, message, now, |doc| {
        let eo = doc.insert_object(&events, len, automerge::ObjType::Map)?;
        write_event_fields(doc, &eo, event)
    })
}
