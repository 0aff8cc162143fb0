//! Validated operations on site and network documents.
//!
//! Every operation takes the automerge document, the acting user (`by`) and the time
//! (`now`, UTC milliseconds; core reads no clock). It validates its whole input against
//! the document first and only then writes, so a rejected operation leaves the document
//! byte-for-byte unchanged. It writes only the fields that change (direct puts; the
//! rare network and target writes use `reconcile_prop` on the one record), never the
//! whole document, so its cost does not grow with the number of customers. Each successful operation commits one
//! automerge change whose message says who did what and whose time is `now` in seconds
//! (automerge's unit for change times).
//!
//! Strings are written as scalar strings; reads accept collaborative text too (see
//! [`crate::schema`]).

mod care;
mod customer_records;
mod customers;
mod discounts;
mod documents;
mod forecasts;
mod forward;
mod network;
mod parts;
mod periods;
mod phone;
mod planning;
mod read;
mod sale;
mod targets;
mod transfers;
mod vehicle_records;
mod vehicles;
mod vin;
mod walk_ins;

pub use care::{
    ComplaintUpdate, NewComplaint, link_referral, mark_lost, open_complaint, record_follow_up,
    schedule_follow_up, set_customer_area, update_complaint,
};
pub use customers::{
    CustomerUpdate, NewCustomer, NewEvent, add_customer, customer_transition_allowed,
    merge_customer, record_event, set_customer_status, update_customer,
};
pub use discounts::{
    DiscountDecision, DiscountState, decide_discount, discount_limit, discount_over_limit,
    discount_state, request_discount,
};
pub use documents::{
    create_network_document, create_site_document, init_network_document, init_site_document,
};
pub use forecasts::{adjust_forecast, set_forecast};
pub use forward::{FORWARD_MESSAGE, Forwarded, forward_late};
pub use network::{
    DISCOUNT_ROLES, put_model, put_site, region_of, set_discount_limit, set_forecast_deadline,
    set_site_channel,
};
pub use parts::{NewShipment, adjust_part, receive_parts, ship_parts};
pub use periods::{
    ARCHIVE_GRACE_DAYS, CARRY_CUSTOMERS_PER_CHANGE, CURRENT_DOCUMENT_KEY, PERIOD_KEY, PERIODS_KEY,
    PeriodDocument, PeriodHeader, PeriodLink, archive_writable_until, carry_over, combine_periods,
    current_site_document, customer_is_open, period_header, put_site_chain, site_chain,
    vehicle_is_open,
};
pub use phone::{PhoneError, normalise_phone};
pub use planning::{
    SplitCheck, check_split, put_contest, remove_contest, share, split_target, sub_periods,
    working_days,
};
pub use read::{
    check_site_document, find_customers_by_phone, get_customer, get_vehicle, list_customers,
    list_vehicles, part_count, site_header,
};
pub use targets::{set_consultant_target, set_site_target};
pub use transfers::{
    NewTransfer, decide_transfer, dispatch_transfer, receive_transfer, request_transfer,
};
pub(crate) use vehicle_records::put_vehicle_record;
pub use vehicle_records::vehicle_transition_allowed;
pub use vehicles::{
    NewVehicle, Sale, VehicleAction, move_vehicle, receive_vehicle, sell_vehicle, transfer_vehicle,
};
pub use vin::{CheckDigitPolicy, Vin, VinError, check_digit};
pub use walk_ins::{MAX_PARTY_SIZE, NewWalkIn, record_walk_in};

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{AutoCommit, ObjId, ObjType, ROOT, ReadDoc as AmReadDoc, ScalarValue, Value};

use crate::schema::{
    BadPeriod, CustomerStatus, Fen, Millis, NetworkDocument, Period, SchemaError, SiteHeader,
    SiteKind, VehicleModel, VehicleStatus,
};

/// Why an operation was rejected. Every variant names the record and field concerned,
/// so the message can be shown to the consultant as is.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// A VIN failed validation.
    #[error("invalid VIN {input:?}: {reason}")]
    InvalidVin {
        /// The VIN as given.
        input: String,
        /// What is wrong, with the position of the bad character.
        reason: VinError,
    },
    /// A phone number is not a Chinese mobile or landline.
    #[error("invalid phone number {input:?} for customer {customer}: {reason}")]
    InvalidPhone {
        /// The customer the number belongs to.
        customer: String,
        /// The number as given.
        input: String,
        /// What is wrong.
        reason: PhoneError,
    },
    /// A model code that the network catalogue does not list.
    #[error("unknown model {model:?} in {field}: not in the network catalogue")]
    UnknownModel {
        /// The code given.
        model: String,
        /// Where it was given, e.g. `vehicle 1M8GDM9AXKP042788`.
        field: String,
    },
    /// A trim that the catalogue does not list for the model.
    #[error("unknown trim {trim:?} for model {model}; the catalogue lists: {}", known.join(", "))]
    UnknownTrim {
        /// The model code.
        model: String,
        /// The trim given.
        trim: String,
        /// The trims the catalogue lists.
        known: Vec<String>,
    },
    /// No customer with this id at this site.
    #[error("unknown customer {id:?} at this site")]
    UnknownCustomer {
        /// The id given.
        id: String,
    },
    /// The customer was merged into another (a duplicate); use that one.
    #[error("customer {id:?} was merged into {into:?}; use that customer")]
    MergedCustomer {
        /// The merged (duplicate) customer.
        id: String,
        /// The customer that remains.
        into: String,
    },
    /// A customer with this id already exists.
    #[error("customer {id:?} already exists")]
    CustomerExists {
        /// The id given.
        id: String,
    },
    /// No vehicle with this VIN at this site.
    #[error("unknown vehicle {vin:?} at site {site}")]
    UnknownVehicle {
        /// The VIN given.
        vin: String,
        /// The site searched.
        site: String,
    },
    /// The site already holds a live record of this vehicle.
    #[error("vehicle {vin} is already at site {site} with status {status}")]
    VehicleExists {
        /// The VIN.
        vin: String,
        /// The site.
        site: String,
        /// Its current status there.
        status: VehicleStatus,
    },
    /// A site id that the network document does not list.
    #[error("unknown site {id:?}: not in the network's site tree")]
    UnknownSite {
        /// The id given.
        id: String,
    },
    /// A customer status change the sales funnel does not allow.
    #[error("customer {customer} cannot move from {from} to {to}")]
    IllegalCustomerTransition {
        /// The customer.
        customer: String,
        /// Current status.
        from: CustomerStatus,
        /// Requested status.
        to: CustomerStatus,
    },
    /// A vehicle status change its lifecycle does not allow.
    #[error("vehicle {vin} cannot move from {from} to {to}")]
    IllegalVehicleTransition {
        /// The VIN.
        vin: String,
        /// Current status.
        from: VehicleStatus,
        /// Requested status.
        to: VehicleStatus,
    },
    /// A lifecycle step applied to a vehicle in a status it does not start from, though
    /// another step makes that move (`arrive` on a reserved vehicle: use `release`).
    #[error("vehicle {vin} is {from}: {action} applies only to a vehicle that is {needs}")]
    WrongVehicleAction {
        /// The VIN.
        vin: String,
        /// The step asked for (`arrive`, `release`, ...).
        action: &'static str,
        /// Current status.
        from: VehicleStatus,
        /// The status (or statuses) the step starts from.
        needs: String,
    },
    /// A sale whose discount is above the seller's limit without an approval covering it.
    #[error(
        "vehicle {vin}: a discount of {discount} fen is above the {role} limit of {limit} fen; {state}"
    )]
    DiscountNotApproved {
        /// The VIN.
        vin: String,
        /// The discount of the sale (list price − price), in fen.
        discount: Fen,
        /// The seller's role.
        role: &'static str,
        /// That role's limit, in fen.
        limit: Fen,
        /// Where the discount request stands, and what to do.
        state: String,
    },
    /// A quantity, amount or price below zero.
    #[error("{field} cannot be negative, got {value}")]
    NegativeQuantity {
        /// Which field, e.g. `forecast 2026-03/SDN-A quantity`.
        field: String,
        /// The value given.
        value: i64,
    },
    /// A part change so large that the count would overflow.
    #[error("part {part}: {on_hand} on hand, a change of {change} is out of range")]
    PartsOverflow {
        /// The part number.
        part: String,
        /// Count on hand before the change.
        on_hand: i64,
        /// The change asked for.
        change: i64,
    },
    /// Taking more parts than are on hand.
    #[error("part {part}: {on_hand} on hand, a change of {change} would leave {}", on_hand + change)]
    PartsBelowZero {
        /// The part number.
        part: String,
        /// Count on hand before the change.
        on_hand: i64,
        /// The change asked for.
        change: i64,
    },
    /// A forecast adjustment for a model the site has not submitted (or whose cell is
    /// in conflict: resolve it first, so it is clear which figure is being adjusted).
    #[error(
        "no forecast for {model} in {month} to adjust: the site has not submitted one (or its forecast is in conflict; resolve it first)"
    )]
    NoForecast {
        /// The month.
        month: String,
        /// The model code.
        model: String,
    },
    /// A month that is not `YYYY-MM`.
    #[error("malformed month {input:?}: expected YYYY-MM, e.g. 2026-03")]
    MalformedMonth {
        /// The text given.
        input: String,
    },
    /// A target period key that does not parse.
    #[error(transparent)]
    MalformedPeriod(#[from] BadPeriod),
    /// Any other field that fails validation (empty name, survey score out of range...).
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// Which field.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// The document lacks a part every site (or network) document has.
    #[error("not a dealersync {kind} document: {reason}")]
    NotADocument {
        /// `site` or `network`.
        kind: &'static str,
        /// What is missing or wrong.
        reason: String,
    },
    /// The document does not match the schema when read.
    #[error(transparent)]
    Schema(Box<SchemaError>),
    /// A record could not be read from the document.
    #[error("cannot read {what}: {source}")]
    Read {
        /// What was being read.
        what: String,
        /// The hydrate error, naming the field (boxed: it is large and rare).
        source: Box<autosurgeon::HydrateError>,
    },
    /// automerge refused a write (should not happen once validated).
    #[error("automerge: {0}")]
    Automerge(#[from] automerge::AutomergeError),
    /// autosurgeon could not write a record.
    #[error("writing a record: {0}")]
    Reconcile(Box<autosurgeon::ReconcileError>),
}

impl From<SchemaError> for DomainError {
    fn from(e: SchemaError) -> Self {
        DomainError::Schema(Box::new(e))
    }
}

impl From<autosurgeon::ReconcileError> for DomainError {
    fn from(e: autosurgeon::ReconcileError) -> Self {
        DomainError::Reconcile(Box::new(e))
    }
}

/// Shorthand for results of this module.
pub type Result<T, E = DomainError> = std::result::Result<T, E>;

// ---------------------------------------------------------------------------------------
// Small helpers over the automerge document.

fn read_err(what: impl Into<String>) -> impl FnOnce(autosurgeon::HydrateError) -> DomainError {
    let what = what.into();
    move |source| DomainError::Read {
        what,
        source: Box::new(source),
    }
}

/// The map at `key` under `obj`, if there is one (the winning value when concurrent).
fn map_at<D: AmReadDoc>(doc: &D, obj: &ObjId, key: &str) -> Result<Option<ObjId>> {
    match doc.get(obj, key)? {
        Some((Value::Object(ObjType::Map), id)) => Ok(Some(id)),
        _ => Ok(None),
    }
}

/// A top-level map every document of `kind` has.
fn root_map<D: AmReadDoc>(doc: &D, kind: &'static str, key: &str) -> Result<ObjId> {
    map_at(doc, &ROOT, key)?.ok_or_else(|| DomainError::NotADocument {
        kind,
        reason: format!("no `{key}` map at the root"),
    })
}

/// Runs `write`, then commits one change with `message` at `now`; on error rolls the
/// pending operations back so nothing of the attempt remains. Operations the caller
/// left uncommitted are committed first, as their own change, so that a rollback can
/// never take them with it.
fn commit_write<T>(
    doc: &mut AutoCommit,
    message: String,
    now: Millis,
    write: impl FnOnce(&mut AutoCommit) -> Result<T>,
) -> Result<T> {
    doc.commit();
    match write(doc) {
        Ok(v) => {
            commit(doc, message, now);
            Ok(v)
        }
        Err(e) => {
            doc.rollback();
            Err(e)
        }
    }
}

/// Commits the pending operations as one change with `message`, timed `now` in
/// seconds (automerge's unit for change times).
pub(crate) fn commit(doc: &mut AutoCommit, message: String, now: Millis) {
    doc.commit_with(
        CommitOptions::default()
            .with_message(message)
            .with_time(now.div_euclid(1000)),
    );
}

fn put_opt_str(doc: &mut AutoCommit, obj: &ObjId, key: &str, v: Option<&str>) -> Result<()> {
    match v {
        Some(s) => doc.put(obj, key, s)?,
        None => doc.put(obj, key, ScalarValue::Null)?,
    }
    Ok(())
}

fn non_empty(field: impl Into<String>, value: &str) -> Result<String> {
    let t = value.trim();
    if t.is_empty() {
        Err(DomainError::Invalid {
            field: field.into(),
            reason: "must not be empty".into(),
        })
    } else {
        Ok(t.to_string())
    }
}

/// An id used as a map key: non-empty, no whitespace or `/` (ids appear in paths).
fn key_like(field: impl Into<String>, value: &str) -> Result<String> {
    let field = field.into();
    let t = non_empty(field.clone(), value)?;
    if let Some(ch) = t.chars().find(|c| c.is_whitespace() || *c == '/') {
        return Err(DomainError::Invalid {
            field,
            reason: format!("{t:?} contains {ch:?}; ids cannot contain spaces or '/'"),
        });
    }
    Ok(t)
}

/// How far in the future an event's time may be: the devices' clocks disagree by a
/// few minutes, and a time typed to the minute rounds up.
pub const CLOCK_SKEW_MS: Millis = 5 * 60_000;

/// Refuses a time of something that happened later than `now` (plus the clock skew):
/// an event is recorded when, or after, it happens.
fn event_time(field: impl Into<String>, at: Millis, now: Millis) -> Result<()> {
    if at > now.saturating_add(CLOCK_SKEW_MS) {
        return Err(DomainError::Invalid {
            field: field.into(),
            reason: format!(
                "{} is in the future (now is {})",
                crate::time::cst_minute(at),
                crate::time::cst_minute(now)
            ),
        });
    }
    Ok(())
}

fn not_negative(field: impl Into<String>, value: i64) -> Result<()> {
    if value < 0 {
        Err(DomainError::NegativeQuantity {
            field: field.into(),
            value,
        })
    } else {
        Ok(())
    }
}

fn validate_header(h: &SiteHeader) -> Result<()> {
    key_like("site id", &h.id)?;
    non_empty(format!("site {} name", h.id), &h.name)?;
    match (&h.parent, h.kind) {
        (None, SiteKind::HeadOffice) => Ok(()),
        (None, kind) => Err(DomainError::Invalid {
            field: format!("site {} parent", h.id),
            reason: format!("a {kind} site needs a parent site"),
        }),
        (Some(p), _) if p == &h.id => Err(DomainError::Invalid {
            field: format!("site {} parent", h.id),
            reason: "a site cannot be its own parent".into(),
        }),
        (Some(p), _) => key_like(format!("site {} parent", h.id), p).map(|_| ()),
    }
}

fn put_opt_i64(doc: &mut AutoCommit, obj: &ObjId, key: &str, v: Option<i64>) -> Result<()> {
    match v {
        Some(n) => doc.put(obj, key, n)?,
        None => doc.put(obj, key, ScalarValue::Null)?,
    }
    Ok(())
}

fn site_id<D: AmReadDoc>(doc: &D) -> Result<String> {
    let site = root_map(doc, "site", "site")?;
    match doc.get(&site, "id")? {
        Some((Value::Scalar(s), _)) => match s.as_ref() {
            ScalarValue::Str(s) => Ok(s.to_string()),
            _ => Err(DomainError::NotADocument {
                kind: "site",
                reason: "site.id is not a string".into(),
            }),
        },
        Some((Value::Object(ObjType::Text), id)) => Ok(doc.text(&id)?),
        _ => Err(DomainError::NotADocument {
            kind: "site",
            reason: "no site.id".into(),
        }),
    }
}

/// The map at `key` when it is the only value there, so writing into it is what readers
/// will see; `None` when there is no map, several concurrent ones, or a map hidden
/// behind a concurrent plain value (a foreign client's write).
fn sole_visible_map<D: AmReadDoc>(doc: &D, obj: &ObjId, key: &str) -> Result<Option<ObjId>> {
    let all = doc.get_all(obj, key)?;
    Ok(match all.as_slice() {
        [(Value::Object(ObjType::Map), id)] => Some(id.clone()),
        _ => None,
    })
}

/// Every concurrent map at `key` (more than one after concurrent creation).
pub(crate) fn maps_at<D: AmReadDoc>(doc: &D, obj: &ObjId, key: &str) -> Result<Vec<ObjId>> {
    Ok(doc
        .get_all(obj, key)?
        .into_iter()
        .filter_map(|(v, id)| matches!(v, Value::Object(ObjType::Map)).then_some(id))
        .collect())
}

/// The one map at `key` to write into: the map there when it is the only value, a new
/// map when there is none. When two devices created it concurrently (or a foreign
/// client wrote a plain value over it) automerge shows only one value, so it is
/// rewritten as one fresh map holding every entry of the concurrent maps (later maps
/// win ties, as automerge's own winner does) and no entry stays hidden.
fn writable_map<T: autosurgeon::Hydrate + autosurgeon::Reconcile>(
    doc: &mut AutoCommit,
    obj: &ObjId,
    key: &str,
) -> Result<ObjId> {
    let maps = maps_at(doc, obj, key)?;
    Ok(match (maps.len(), sole_visible_map(doc, obj, key)?) {
        (0, _) => doc.put_object(obj, key, ObjType::Map)?,
        (_, Some(only)) => only,
        _ => {
            let mut entries = std::collections::BTreeMap::new();
            for m in &maps {
                for entry in doc.keys(m).collect::<Vec<_>>() {
                    let value: Option<T> = autosurgeon::hydrate_prop(doc, m, entry.as_str())
                        .ok()
                        .flatten();
                    if let Some(value) = value {
                        entries.insert(entry, value);
                    }
                }
            }
            let fresh = doc.put_object(obj, key, ObjType::Map)?;
            for (entry, value) in &entries {
                autosurgeon::reconcile_prop(doc, &fresh, entry.as_str(), value)?;
            }
            fresh
        }
    })
}

/// Parses a VIN given by a user, wrapping the reason in a [`DomainError`].
pub fn parse_vin(input: &str, policy: CheckDigitPolicy) -> Result<Vin> {
    Vin::parse(input, policy).map_err(|reason| DomainError::InvalidVin {
        input: input.to_string(),
        reason,
    })
}

/// Checks that `input` is a month key `YYYY-MM` and returns it.
pub fn parse_month(input: &str) -> Result<String> {
    match input.parse::<Period>() {
        Ok(Period::Month(y, m)) => Ok(format!("{y:04}-{m:02}")),
        _ => Err(DomainError::MalformedMonth {
            input: input.to_string(),
        }),
    }
}

fn catalogue_model<'n>(
    net: &'n NetworkDocument,
    model: &str,
    field: impl FnOnce() -> String,
) -> Result<&'n VehicleModel> {
    net.models
        .get(model)
        .ok_or_else(|| DomainError::UnknownModel {
            model: model.to_string(),
            field: field(),
        })
}
