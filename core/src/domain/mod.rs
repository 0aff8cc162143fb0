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

mod phone;
mod vin;

pub use phone::{PhoneError, normalise_phone};
pub use vin::{CheckDigitPolicy, Vin, VinError, check_digit};

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{AutoCommit, ObjId, ObjType, ROOT, ReadDoc as AmReadDoc, ScalarValue, Value};

use crate::schema::{
    BadPeriod, Customer, CustomerEvent, CustomerSource, CustomerStatus, EventKind, Fen, Millis,
    NetworkDocument, Period, SCHEMA_VERSION, SchemaError, SiteDocument, SiteHeader, SiteKind,
    Target, Vehicle, VehicleModel, VehicleStatus,
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
        /// The status the step starts from.
        needs: VehicleStatus,
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

fn commit(doc: &mut AutoCommit, message: String, now: Millis) {
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

// ---------------------------------------------------------------------------------------
// Creating documents.

/// Writes a new, empty site document for `header` into `doc`, which must be empty. The
/// caller chooses the actor (`AutoCommit::new().with_actor(..)`); only one device (the
/// relay, when a site is registered) should create a given site's document, since two
/// independent creations would be two unrelated documents.
pub fn init_site_document(doc: &mut AutoCommit, header: &SiteHeader, now: Millis) -> Result<()> {
    validate_header(header)?;
    if doc.length(ROOT) > 0 {
        return Err(DomainError::NotADocument {
            kind: "site",
            reason: "the document is not empty".into(),
        });
    }
    let site = SiteDocument::new(header.clone());
    commit_write(doc, format!("create site {}", header.id), now, |doc| {
        autosurgeon::reconcile(doc, &site)?;
        Ok(())
    })
}

/// A new site document for `header`, with a fresh random actor.
pub fn create_site_document(header: &SiteHeader, now: Millis) -> Result<AutoCommit> {
    let mut doc = AutoCommit::new();
    init_site_document(&mut doc, header, now)?;
    Ok(doc)
}

/// Writes a new, empty network document into `doc`, which must be empty.
pub fn init_network_document(doc: &mut AutoCommit, now: Millis) -> Result<()> {
    if doc.length(ROOT) > 0 {
        return Err(DomainError::NotADocument {
            kind: "network",
            reason: "the document is not empty".into(),
        });
    }
    commit_write(doc, "create network".into(), now, |doc| {
        autosurgeon::reconcile(doc, NetworkDocument::new())?;
        Ok(())
    })
}

/// A new network document with a fresh random actor.
pub fn create_network_document(now: Millis) -> Result<AutoCommit> {
    let mut doc = AutoCommit::new();
    init_network_document(&mut doc, now)?;
    Ok(doc)
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

// ---------------------------------------------------------------------------------------
// Network document (written by head office).

/// Adds a site to the network's site tree, or updates it. Its parent must already be in
/// the tree, which keeps the tree rooted at head office.
pub fn put_site(
    net_doc: &mut AutoCommit,
    header: &SiteHeader,
    by: &str,
    now: Millis,
) -> Result<()> {
    validate_header(header)?;
    let sites = root_map(net_doc, "network", "sites")?;
    if let Some(parent) = &header.parent
        && map_at(net_doc, &sites, parent)?.is_none()
    {
        return Err(DomainError::UnknownSite { id: parent.clone() });
    }
    commit_write(
        net_doc,
        format!("{by}: put site {}", header.id),
        now,
        |doc| {
            autosurgeon::reconcile_prop(doc, &sites, header.id.as_str(), header)?;
            Ok(())
        },
    )
}

/// Adds a model to the catalogue, or updates it.
pub fn put_model(
    net_doc: &mut AutoCommit,
    model: &VehicleModel,
    by: &str,
    now: Millis,
) -> Result<()> {
    key_like("model code", &model.code)?;
    non_empty(format!("model {} name", model.code), &model.name)?;
    not_negative(format!("model {} cost", model.code), model.cost)?;
    not_negative(format!("model {} listPrice", model.code), model.list_price)?;
    let models = root_map(net_doc, "network", "models")?;
    commit_write(
        net_doc,
        format!("{by}: put model {}", model.code),
        now,
        |doc| {
            autosurgeon::reconcile_prop(doc, &models, model.code.as_str(), model)?;
            Ok(())
        },
    )
}

/// Sets a site's target for a period (`2026`, `2026-Q1`, `2026-03`, `2026-W09`).
pub fn set_site_target(
    net_doc: &mut AutoCommit,
    site: &str,
    period: &str,
    target: &Target,
    by: &str,
    now: Millis,
) -> Result<()> {
    let period = period.parse::<Period>()?.to_string();
    validate_target(&format!("target {site}/{period}"), target)?;
    let sites = root_map(net_doc, "network", "sites")?;
    if map_at(net_doc, &sites, site)?.is_none() {
        return Err(DomainError::UnknownSite { id: site.into() });
    }
    let targets = root_map(net_doc, "network", "targets")?;
    commit_write(
        net_doc,
        format!("{by}: set target of site {site} for {period}"),
        now,
        |doc| put_target(doc, &targets, site, &period, target),
    )
}

/// The roles a discount limit can be set for (those of the access tokens).
pub const DISCOUNT_ROLES: [&str; 4] = ["consultant", "manager", "head_office", "admin"];

/// Sets the largest discount per vehicle that `role` may grant without approval.
pub fn set_discount_limit(
    net_doc: &mut AutoCommit,
    role: &str,
    limit: Fen,
    by: &str,
    now: Millis,
) -> Result<()> {
    if !DISCOUNT_ROLES.contains(&role) {
        return Err(DomainError::Invalid {
            field: "discount limit role".into(),
            reason: format!("{role:?} is not one of {}", DISCOUNT_ROLES.join(", ")),
        });
    }
    not_negative(format!("discount limit of {role}"), limit)?;
    let limits = root_map(net_doc, "network", "discountLimits")?;
    commit_write(
        net_doc,
        format!("{by}: discount limit of {role} = {limit}"),
        now,
        |doc| {
            doc.put(&limits, role, limit)?;
            Ok(())
        },
    )
}

fn validate_target(field: &str, t: &Target) -> Result<()> {
    not_negative(format!("{field} units"), t.units)?;
    not_negative(format!("{field} revenue"), t.revenue)?;
    for (name, v) in [
        ("visits", t.visits),
        ("calls", t.calls),
        ("testDrives", t.test_drives),
    ] {
        if let Some(v) = v {
            not_negative(format!("{field} {name}"), v)?;
        }
    }
    Ok(())
}

fn put_target(
    doc: &mut AutoCommit,
    targets: &ObjId,
    owner: &str,
    period: &str,
    t: &Target,
) -> Result<()> {
    let maps = maps_at(doc, targets, owner)?;
    let owner_map = match (maps.len(), sole_visible_map(doc, targets, owner)?) {
        (0, _) => doc.put_object(targets, owner, ObjType::Map)?,
        (_, Some(only)) => only,
        _ => {
            // Two devices created this owner's map concurrently (or a foreign client
            // wrote a plain value over it) and automerge shows only one value: rewrite it
            // as one map holding every period (later maps win ties, as automerge's
            // winner does), so no target stays hidden.
            let mut periods = std::collections::BTreeMap::new();
            for m in &maps {
                for key in doc.keys(m).collect::<Vec<_>>() {
                    let target: Option<Target> = autosurgeon::hydrate_prop(doc, m, key.as_str())
                        .ok()
                        .flatten();
                    if let Some(target) = target {
                        periods.insert(key, target);
                    }
                }
            }
            let fresh = doc.put_object(targets, owner, ObjType::Map)?;
            for (key, target) in &periods {
                autosurgeon::reconcile_prop(doc, &fresh, key.as_str(), target)?;
            }
            fresh
        }
    };
    autosurgeon::reconcile_prop(doc, &owner_map, period, t)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Customers.

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

fn write_event_fields(doc: &mut AutoCommit, obj: &ObjId, e: &CustomerEvent) -> Result<()> {
    doc.put(obj, "kind", e.kind.as_str())?;
    doc.put(obj, "at", e.at)?;
    doc.put(obj, "by", e.by.as_str())?;
    put_opt_str(doc, obj, "note", e.note.as_deref())?;
    put_opt_i64(doc, obj, "amount", e.amount)?;
    put_opt_str(doc, obj, "vin", e.vin.as_deref())?;
    put_opt_i64(doc, obj, "score", e.score)?;
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

/// A customer that has not been merged into another: new history belongs on the
/// customer that remains.
fn live_customer_obj(doc: &AutoCommit, id: &str) -> Result<ObjId> {
    let obj = customer_obj(doc, id)?;
    match merged_into(doc, &obj, id)? {
        Some(into) => Err(DomainError::MergedCustomer {
            id: id.into(),
            into,
        }),
        None => Ok(obj),
    }
}

fn merged_into(doc: &AutoCommit, obj: &ObjId, id: &str) -> Result<Option<String>> {
    crate::schema::opt_scalar_str::hydrate(doc, obj, "mergedInto".into())
        .map_err(read_err(format!("mergedInto of customer {id}")))
}

fn customer_obj<D: AmReadDoc>(doc: &D, id: &str) -> Result<ObjId> {
    let customers = root_map(doc, "site", "customers")?;
    map_at(doc, &customers, id)?.ok_or_else(|| DomainError::UnknownCustomer { id: id.into() })
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
        }
    }
}

/// Appends an event to a customer's history. The event is inserted after the last
/// element, so events recorded concurrently on several devices all survive the merge.
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
    let events = match doc.get(&obj, "events")? {
        Some((Value::Object(ObjType::List), id)) => id,
        _ => {
            return Err(DomainError::NotADocument {
                kind: "site",
                reason: format!("customer {customer} has no events list"),
            });
        }
    };
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
    };
    let len = doc.length(&events);
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

// ---------------------------------------------------------------------------------------
// Vehicles.

/// A vehicle arriving on a site's books.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVehicle {
    /// The validated VIN.
    pub vin: Vin,
    /// Model code from the catalogue.
    pub model: String,
    /// Trim, one of the model's trims when the catalogue lists any.
    pub trim: String,
    /// Exterior colour.
    pub colour: String,
    /// Cost in fen; the catalogue's cost when `None`.
    pub cost: Option<Fen>,
    /// List price in fen; the catalogue's when `None`.
    pub list_price: Option<Fen>,
    /// `ordered`, `in_transit` or `in_stock`.
    pub status: VehicleStatus,
    /// Expected arrival, for ordered and in-transit vehicles.
    pub eta: Option<Millis>,
}

/// Puts a vehicle on the site's books: ordered from the manufacturer, in transit, or
/// arrived in stock (then `arrivedAt` is `now`). A VIN the site already holds is
/// refused unless its record there is `transferred_out` or `delivered` (it came back).
pub fn receive_vehicle(
    doc: &mut AutoCommit,
    net: &NetworkDocument,
    new: &NewVehicle,
    by: &str,
    now: Millis,
) -> Result<Vehicle> {
    let vin = new.vin.as_str().to_string();
    let model = catalogue_model(net, &new.model, || format!("vehicle {vin}"))?;
    if !model.trims.is_empty() && !model.trims.iter().any(|t| t == &new.trim) {
        return Err(DomainError::UnknownTrim {
            model: model.code.clone(),
            trim: new.trim.clone(),
            known: model.trims.clone(),
        });
    }
    let colour = non_empty(format!("vehicle {vin} colour"), &new.colour)?;
    let cost = new.cost.unwrap_or(model.cost);
    let list_price = new.list_price.unwrap_or(model.list_price);
    not_negative(format!("vehicle {vin} cost"), cost)?;
    not_negative(format!("vehicle {vin} listPrice"), list_price)?;
    if !matches!(
        new.status,
        VehicleStatus::Ordered | VehicleStatus::InTransit | VehicleStatus::InStock
    ) {
        return Err(DomainError::Invalid {
            field: format!("vehicle {vin} status"),
            reason: format!(
                "a vehicle is received as ordered, in_transit or in_stock, not {}",
                new.status
            ),
        });
    }
    let vehicles = root_map(doc, "site", "vehicles")?;
    check_vin_free(doc, &vehicles, &vin)?;
    let vehicle = Vehicle {
        vin: vin.clone(),
        model: model.code.clone(),
        trim: new.trim.clone(),
        colour,
        cost,
        list_price,
        status: new.status,
        eta: if new.status == VehicleStatus::InStock {
            None
        } else {
            new.eta
        },
        arrived_at: (new.status == VehicleStatus::InStock).then_some(now),
        reserved_for: None,
        sold_to: None,
        consultant: None,
        transfer_from: None,
        transfer_to: None,
        updated_at: now,
    };
    commit_write(
        doc,
        format!("{by}: receive vehicle {vin} ({})", new.status),
        now,
        |doc| put_vehicle_record(doc, &vehicles, &vehicle),
    )?;
    Ok(vehicle)
}

/// A vehicle record is always written as a fresh map, so that a re-received VIN does not
/// inherit fields of its old record.
pub(crate) fn put_vehicle_record(
    doc: &mut AutoCommit,
    vehicles: &ObjId,
    v: &Vehicle,
) -> Result<()> {
    let obj = doc.put_object(vehicles, v.vin.as_str(), ObjType::Map)?;
    write_vehicle_fields(doc, &obj, v)
}

fn write_vehicle_fields(doc: &mut AutoCommit, obj: &ObjId, v: &Vehicle) -> Result<()> {
    doc.put(obj, "vin", v.vin.as_str())?;
    doc.put(obj, "model", v.model.as_str())?;
    doc.put(obj, "trim", v.trim.as_str())?;
    doc.put(obj, "colour", v.colour.as_str())?;
    doc.put(obj, "cost", v.cost)?;
    doc.put(obj, "listPrice", v.list_price)?;
    doc.put(obj, "status", v.status.as_str())?;
    put_opt_i64(doc, obj, "eta", v.eta)?;
    put_opt_i64(doc, obj, "arrivedAt", v.arrived_at)?;
    put_opt_str(doc, obj, "reservedFor", v.reserved_for.as_deref())?;
    put_opt_str(doc, obj, "soldTo", v.sold_to.as_deref())?;
    put_opt_str(doc, obj, "consultant", v.consultant.as_deref())?;
    put_opt_str(doc, obj, "transferFrom", v.transfer_from.as_deref())?;
    put_opt_str(doc, obj, "transferTo", v.transfer_to.as_deref())?;
    doc.put(obj, "updatedAt", v.updated_at)?;
    Ok(())
}

fn put_opt_i64(doc: &mut AutoCommit, obj: &ObjId, key: &str, v: Option<i64>) -> Result<()> {
    match v {
        Some(n) => doc.put(obj, key, n)?,
        None => doc.put(obj, key, ScalarValue::Null)?,
    }
    Ok(())
}

fn check_vin_free(doc: &AutoCommit, vehicles: &ObjId, vin: &str) -> Result<()> {
    if let Some(obj) = map_at(doc, vehicles, vin)? {
        let status: VehicleStatus = autosurgeon::hydrate_prop(doc, &obj, "status")
            .map_err(read_err(format!("status of vehicle {vin}")))?;
        if !matches!(
            status,
            VehicleStatus::TransferredOut | VehicleStatus::Delivered
        ) {
            return Err(DomainError::VehicleExists {
                vin: vin.into(),
                site: site_id(doc)?,
                status,
            });
        }
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

/// A step in a vehicle's life at a site. Transfers to another site have their own
/// operation, [`transfer_vehicle`], because they write two documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VehicleAction {
    /// ordered → in_transit, with an expected arrival.
    Ship {
        /// Expected arrival.
        eta: Option<Millis>,
    },
    /// in_transit → in_stock; days in stock count from now.
    Arrive,
    /// in_stock → reserved for a customer of this site.
    Reserve {
        /// The customer id.
        customer: String,
    },
    /// reserved → in_stock: the reservation is released.
    Release,
    /// reserved → sold, to the customer it was reserved for.
    Sell,
    /// sold → delivered: handed over.
    Deliver,
}

impl VehicleAction {
    /// The status this action starts from. Arrive and release both end in stock, but
    /// only from their own status: an arrival sets the arrival date, a release clears the
    /// reservation, and neither may stand in for the other.
    pub fn source(&self) -> VehicleStatus {
        match self {
            VehicleAction::Ship { .. } => VehicleStatus::Ordered,
            VehicleAction::Arrive => VehicleStatus::InTransit,
            VehicleAction::Reserve { .. } => VehicleStatus::InStock,
            VehicleAction::Release | VehicleAction::Sell => VehicleStatus::Reserved,
            VehicleAction::Deliver => VehicleStatus::Sold,
        }
    }

    /// The step's name, as the CLI spells it.
    pub fn name(&self) -> &'static str {
        match self {
            VehicleAction::Ship { .. } => "ship",
            VehicleAction::Arrive => "arrive",
            VehicleAction::Reserve { .. } => "reserve",
            VehicleAction::Release => "release",
            VehicleAction::Sell => "sell",
            VehicleAction::Deliver => "deliver",
        }
    }

    /// The status this action moves the vehicle to.
    pub fn target(&self) -> VehicleStatus {
        match self {
            VehicleAction::Ship { .. } => VehicleStatus::InTransit,
            VehicleAction::Arrive | VehicleAction::Release => VehicleStatus::InStock,
            VehicleAction::Reserve { .. } => VehicleStatus::Reserved,
            VehicleAction::Sell => VehicleStatus::Sold,
            VehicleAction::Deliver => VehicleStatus::Delivered,
        }
    }
}

/// Whether a vehicle may move from `from` to `to`: ordered → in_transit → in_stock →
/// reserved → sold → delivered; reserved → in_stock (release); in_stock →
/// transferred_out (a transfer).
pub fn vehicle_transition_allowed(from: VehicleStatus, to: VehicleStatus) -> bool {
    use VehicleStatus::*;
    matches!(
        (from, to),
        (Ordered, InTransit)
            | (InTransit, InStock)
            | (InStock, Reserved)
            | (Reserved, Sold)
            | (Sold, Delivered)
            | (Reserved, InStock)
            | (InStock, TransferredOut)
    )
}

fn vehicle_obj<D: AmReadDoc>(doc: &D, vin: &str) -> Result<(ObjId, String)> {
    let vehicles = root_map(doc, "site", "vehicles")?;
    let key = vin.trim().to_ascii_uppercase();
    match map_at(doc, &vehicles, &key)? {
        Some(obj) => Ok((obj, key)),
        None => Err(DomainError::UnknownVehicle {
            vin: vin.to_string(),
            site: site_id(doc)?,
        }),
    }
}

/// Moves a vehicle one step along its lifecycle, writing only the fields that change.
pub fn move_vehicle(
    doc: &mut AutoCommit,
    vin: &str,
    action: &VehicleAction,
    by: &str,
    now: Millis,
) -> Result<()> {
    let by = key_like("consultant", by)?;
    let (obj, vin) = vehicle_obj(doc, vin)?;
    let from: VehicleStatus = autosurgeon::hydrate_prop(doc, &obj, "status")
        .map_err(read_err(format!("status of vehicle {vin}")))?;
    let to = action.target();
    if !vehicle_transition_allowed(from, to) {
        return Err(DomainError::IllegalVehicleTransition { vin, from, to });
    }
    if from != action.source() {
        return Err(DomainError::WrongVehicleAction {
            vin,
            action: action.name(),
            from,
            needs: action.source(),
        });
    }
    if let VehicleAction::Reserve { customer } = action {
        live_customer_obj(doc, customer)?;
    }
    let reserved_for = crate::schema::opt_scalar_str::hydrate(doc, &obj, "reservedFor".into())
        .map_err(read_err(format!("reservedFor of vehicle {vin}")))?;
    if matches!(action, VehicleAction::Sell) && reserved_for.is_none() {
        return Err(DomainError::Invalid {
            field: format!("vehicle {vin} reservedFor"),
            reason: "a reserved vehicle must name its customer before it is sold".into(),
        });
    }
    commit_write(
        doc,
        format!("{by}: vehicle {vin} {from} -> {to}"),
        now,
        |doc| {
            doc.put(&obj, "status", to.as_str())?;
            doc.put(&obj, "updatedAt", now)?;
            match action {
                VehicleAction::Ship { eta } => put_opt_i64(doc, &obj, "eta", *eta)?,
                VehicleAction::Arrive => {
                    doc.put(&obj, "arrivedAt", now)?;
                    put_opt_i64(doc, &obj, "eta", None)?;
                }
                VehicleAction::Reserve { customer } => {
                    doc.put(&obj, "reservedFor", customer.as_str())?;
                    doc.put(&obj, "consultant", by.as_str())?;
                }
                VehicleAction::Release => {
                    put_opt_str(doc, &obj, "reservedFor", None)?;
                    put_opt_str(doc, &obj, "consultant", None)?;
                }
                VehicleAction::Sell => {
                    let c = reserved_for.as_deref().expect("checked above");
                    doc.put(&obj, "soldTo", c)?;
                    doc.put(&obj, "consultant", by.as_str())?;
                }
                VehicleAction::Deliver => {}
            }
            Ok(())
        },
    )
}

/// Transfers a vehicle in stock at `from` to the site of `to`: `from` records it
/// `transferred_out` (with `transferTo`), `to` gets it `in_transit` (with
/// `transferFrom`). Both documents are validated before either is written; the caller
/// syncs both (a transfer recorded on one side only shows up as a
/// [`crate::conflicts::ConflictKind::StockAtTwoSites`] conflict or a missing vehicle).
pub fn transfer_vehicle(
    from: &mut AutoCommit,
    to: &mut AutoCommit,
    vin: &str,
    eta: Option<Millis>,
    by: &str,
    now: Millis,
) -> Result<()> {
    let by = key_like("consultant", by)?;
    let (obj, vin) = vehicle_obj(from, vin)?;
    let mut vehicle = get_vehicle(&*from, &vin)?.ok_or_else(|| DomainError::UnknownVehicle {
        vin: vin.clone(),
        site: site_id(&*from).unwrap_or_default(),
    })?;
    if !vehicle_transition_allowed(vehicle.status, VehicleStatus::TransferredOut) {
        return Err(DomainError::IllegalVehicleTransition {
            vin,
            from: vehicle.status,
            to: VehicleStatus::TransferredOut,
        });
    }
    let from_site = site_id(from)?;
    let to_site = site_id(to)?;
    if from_site == to_site {
        return Err(DomainError::Invalid {
            field: format!("transfer of vehicle {vin}"),
            reason: format!("both documents are site {from_site}"),
        });
    }
    let to_vehicles = root_map(to, "site", "vehicles")?;
    check_vin_free(to, &to_vehicles, &vin)?;

    vehicle.status = VehicleStatus::InTransit;
    vehicle.eta = eta;
    vehicle.arrived_at = None;
    vehicle.reserved_for = None;
    vehicle.sold_to = None;
    vehicle.consultant = None;
    vehicle.transfer_from = Some(from_site.clone());
    vehicle.transfer_to = None;
    vehicle.updated_at = now;

    from.commit();
    to.commit();
    let out = (|| -> Result<()> {
        from.put(&obj, "status", VehicleStatus::TransferredOut.as_str())?;
        from.put(&obj, "transferTo", to_site.as_str())?;
        from.put(&obj, "updatedAt", now)?;
        put_vehicle_record(to, &to_vehicles, &vehicle)
    })();
    if let Err(e) = out {
        from.rollback();
        to.rollback();
        return Err(e);
    }
    commit(
        from,
        format!("{by}: transfer vehicle {vin} to {to_site}"),
        now,
    );
    commit(
        to,
        format!("{by}: vehicle {vin} in transit from {from_site}"),
        now,
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Forecasts, parts, consultant targets.

/// Sets next month's demand forecast for a model at this site.
///
/// The value is written so that it supersedes every concurrent value of the same cell:
/// a plain put replaces all conflicting `quantity` values, and when two devices created
/// the cell (or the month) concurrently, the cell (or month) is written afresh, keeping
/// the other cells of the month. This is also how a forecast conflict is resolved.
pub fn set_forecast(
    doc: &mut AutoCommit,
    net: &NetworkDocument,
    month: &str,
    model: &str,
    quantity: i64,
    by: &str,
    now: Millis,
) -> Result<()> {
    let month = parse_month(month)?;
    catalogue_model(net, model, || format!("forecast {month}"))?;
    not_negative(format!("forecast {month}/{model} quantity"), quantity)?;
    let by = key_like("forecast by", by)?;
    let forecasts = root_map(doc, "site", "forecasts")?;
    commit_write(
        doc,
        format!("{by}: forecast {month}/{model} = {quantity}"),
        now,
        |doc| {
            let months = maps_at(doc, &forecasts, &month)?;
            let month_obj = match (months.len(), sole_visible_map(doc, &forecasts, &month)?) {
                (0, _) => doc.put_object(&forecasts, month.as_str(), ObjType::Map)?,
                (_, Some(only)) => only,
                // Concurrent month maps, or one hidden behind a concurrent plain value.
                _ => {
                    // Concurrent month maps: rewrite the month as one map holding every
                    // cell, each at its winning value, so no cell is lost.
                    let mut cells = std::collections::BTreeMap::new();
                    for m in &months {
                        for key in doc.keys(m).collect::<Vec<_>>() {
                            // Later month maps win ties, as automerge's own winner does.
                            let entry: Option<crate::schema::ForecastEntry> =
                                autosurgeon::hydrate_prop(doc, m, key.as_str())
                                    .ok()
                                    .flatten();
                            if let Some(e) = entry {
                                cells.insert(key, e);
                            }
                        }
                    }
                    let fresh = doc.put_object(&forecasts, month.as_str(), ObjType::Map)?;
                    for (key, e) in cells {
                        autosurgeon::reconcile_prop(doc, &fresh, key.as_str(), &e)?;
                    }
                    fresh
                }
            };
            let cell = match sole_visible_map(doc, &month_obj, model)? {
                Some(cell) => cell,
                None => doc.put_object(&month_obj, model, ObjType::Map)?,
            };
            doc.put(&cell, "quantity", quantity)?;
            doc.put(&cell, "by", by.as_str())?;
            doc.put(&cell, "at", now)?;
            Ok(())
        },
    )
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
    let on_hand = match doc.get(&parts, part.as_str())? {
        None => None,
        Some((Value::Scalar(s), _)) => match s.as_ref() {
            ScalarValue::Counter(c) => Some(i64::from(c)),
            other => {
                return Err(DomainError::NotADocument {
                    kind: "site",
                    reason: format!("parts.{part} is {other:?}, not a counter"),
                });
            }
        },
        Some((v, _)) => {
            return Err(DomainError::NotADocument {
                kind: "site",
                reason: format!("parts.{part} is {v:?}, not a counter"),
            });
        }
    };
    let current = on_hand.unwrap_or(0);
    let Some(after) = current.checked_add(change) else {
        return Err(DomainError::PartsOverflow {
            part,
            on_hand: current,
            change,
        });
    };
    if after < 0 {
        return Err(DomainError::PartsBelowZero {
            part,
            on_hand: current,
            change,
        });
    }
    if change == 0 {
        return Ok(current);
    }
    commit_write(doc, format!("{by}: part {part} {change:+}"), now, |doc| {
        match on_hand {
            Some(_) => doc.increment(&parts, part.as_str(), change)?,
            None => doc.put(&parts, part.as_str(), ScalarValue::counter(change))?,
        }
        Ok(())
    })?;
    Ok(after)
}

/// Sets a consultant's target for a period at this site.
pub fn set_consultant_target(
    doc: &mut AutoCommit,
    consultant: &str,
    period: &str,
    target: &Target,
    by: &str,
    now: Millis,
) -> Result<()> {
    let consultant = key_like("consultant", consultant)?;
    let period = period.parse::<Period>()?.to_string();
    validate_target(&format!("target {consultant}/{period}"), target)?;
    let targets = root_map(doc, "site", "targets")?;
    commit_write(
        doc,
        format!("{by}: set target of {consultant} for {period}"),
        now,
        |doc| put_target(doc, &targets, &consultant, &period, target),
    )
}

// ---------------------------------------------------------------------------------------
// Reading.

/// The site's header (id, name, kind, parent).
pub fn site_header<D: autosurgeon::ReadDoc + AmReadDoc>(doc: &D) -> Result<SiteHeader> {
    autosurgeon::hydrate_prop::<_, Option<SiteHeader>, _, _>(doc, &ROOT, "site")
        .map_err(read_err("site header"))?
        .ok_or_else(|| DomainError::NotADocument {
            kind: "site",
            reason: "no site header".into(),
        })
}

/// One customer, merged or not.
pub fn get_customer<D: autosurgeon::ReadDoc + AmReadDoc>(
    doc: &D,
    id: &str,
) -> Result<Option<Customer>> {
    let customers = root_map(doc, "site", "customers")?;
    // autosurgeon reads an absent key as an error even into an Option: ask first.
    if AmReadDoc::get(doc, &customers, id)?.is_none() {
        return Ok(None);
    }
    autosurgeon::hydrate_prop(doc, &customers, id).map_err(read_err(format!("customer {id}")))
}

/// Every customer that has not been merged into another, by id.
pub fn list_customers<D: autosurgeon::ReadDoc + AmReadDoc>(doc: &D) -> Result<Vec<Customer>> {
    root_map(doc, "site", "customers")?;
    let all: std::collections::BTreeMap<String, Customer> =
        autosurgeon::hydrate_prop(doc, &ROOT, "customers").map_err(read_err("customers"))?;
    Ok(all
        .into_values()
        .filter(|c| c.merged_into.is_none())
        .collect())
}

/// Customers (not merged) whose phone number is the same number as `phone`.
pub fn find_customers_by_phone<D: autosurgeon::ReadDoc + AmReadDoc>(
    doc: &D,
    phone: &str,
) -> Result<Vec<Customer>> {
    let wanted = normalise_phone(phone).map_err(|reason| DomainError::InvalidPhone {
        customer: "(search)".into(),
        input: phone.into(),
        reason,
    })?;
    Ok(list_customers(doc)?
        .into_iter()
        .filter(|c| normalise_phone(&c.phone).ok().as_deref() == Some(wanted.as_str()))
        .collect())
}

/// One vehicle by VIN (case and surrounding spaces forgiven).
pub fn get_vehicle<D: autosurgeon::ReadDoc + AmReadDoc>(
    doc: &D,
    vin: &str,
) -> Result<Option<Vehicle>> {
    let vehicles = root_map(doc, "site", "vehicles")?;
    let key = vin.trim().to_ascii_uppercase();
    if AmReadDoc::get(doc, &vehicles, key.as_str())?.is_none() {
        return Ok(None);
    }
    autosurgeon::hydrate_prop(doc, &vehicles, key.as_str())
        .map_err(read_err(format!("vehicle {key}")))
}

/// Every vehicle on the site's books, by VIN, optionally only those with `status`.
pub fn list_vehicles<D: autosurgeon::ReadDoc + AmReadDoc>(
    doc: &D,
    status: Option<VehicleStatus>,
) -> Result<Vec<Vehicle>> {
    root_map(doc, "site", "vehicles")?;
    let all: std::collections::BTreeMap<String, Vehicle> =
        autosurgeon::hydrate_prop(doc, &ROOT, "vehicles").map_err(read_err("vehicles"))?;
    Ok(all
        .into_values()
        .filter(|v| status.is_none_or(|s| v.status == s))
        .collect())
}

/// The count on hand of one part (0 if never stocked).
pub fn part_count<D: AmReadDoc>(doc: &D, part: &str) -> Result<i64> {
    let parts = root_map(doc, "site", "parts")?;
    Ok(match doc.get(&parts, part)? {
        Some((Value::Scalar(s), _)) => match s.as_ref() {
            ScalarValue::Counter(c) => i64::from(c),
            ScalarValue::Int(n) => *n,
            ScalarValue::Uint(n) => *n as i64,
            _ => 0,
        },
        _ => 0,
    })
}

/// Checks that a document is a site document this build can read.
pub fn check_site_document<D: autosurgeon::ReadDoc + AmReadDoc>(doc: &D) -> Result<()> {
    let v = crate::schema::read_schema_version(doc).map_err(read_err("schemaVersion"))?;
    match v {
        Some(found) if found > SCHEMA_VERSION => Err(SchemaError::NewerVersion { found }.into()),
        Some(_) => {
            site_id(doc)?;
            Ok(())
        }
        None => Err(DomainError::NotADocument {
            kind: "site",
            reason: "no schemaVersion".into(),
        }),
    }
}
