//! The site and network documents, as they live in automerge.
//!
//! Every value is plain JSON-like data so that a JavaScript automerge client can read and
//! write the same documents with no Rust: ids are map keys, time is integer milliseconds
//! UTC, money is integer fen, keys are camelCase. Strings are written as scalar strings
//! (`ScalarValue::Str`); readers also accept collaborative text, because Automerge 3 for
//! JavaScript turns a plain string assignment into text unless the client wraps it in
//! `ImmutableString` (see `docs/schema.md`).
//!
//! The Rust types map to automerge through autosurgeon's `Hydrate` and `Reconcile`.
//! Enums are stored as their snake_case names (`"in_stock"`), the same spelling the
//! JSON API uses.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use autosurgeon::{Counter, Hydrate, HydrateError, Prop, ReadDoc, Reconcile, Reconciler};
use serde::{Deserialize, Serialize};

/// Version of the document layout. A reader refuses a document with a higher version
/// than it knows, rather than misreading it.
pub const SCHEMA_VERSION: u64 = 1;

pub use crate::time::{Millis, month_key};

/// Money in integer minor units (fen; 100 fen = 1 yuan).
pub type Fen = i64;

/// Why a document could not be read as a dealersync document.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// A field is missing or has the wrong type; the message names the path.
    #[error("document does not match the dealersync schema: {0}")]
    Shape(#[from] HydrateError),
    /// The document was written by a newer dealersync than this one.
    #[error("document has schemaVersion {found}, this build reads up to {SCHEMA_VERSION}")]
    NewerVersion {
        /// The version found in the document.
        found: u64,
    },
}

/// A string enum stored in automerge as its snake_case name.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name stored in documents and printed by the API.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownVariant;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                // Accept `test-drive` as well as `test_drive`: people type dashes.
                let norm = s.trim().to_ascii_lowercase().replace('-', "_");
                match norm.as_str() {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownVariant {
                        kind: stringify!($name),
                        found: s.to_string(),
                        expected: &[$($text),+],
                    }),
                }
            }
        }

        impl Reconcile for $name {
            type Key<'a> = autosurgeon::reconcile::NoKey;
            fn reconcile<R: Reconciler>(&self, mut reconciler: R) -> Result<(), R::Error> {
                reconciler.str(self.as_str())
            }
        }

        impl Hydrate for $name {
            fn hydrate<D: ReadDoc>(doc: &D, obj: &automerge::ObjId, prop: Prop<'_>) -> Result<Self, HydrateError> {
                let s = scalar_str::hydrate(doc, obj, prop)?;
                s.parse().map_err(|e: UnknownVariant| HydrateError::unexpected(e.expected_list(), s))
            }
        }
    };
}

/// A string that names none of an enum's variants.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {found:?}; expected one of: {}", expected.join(", "))]
pub struct UnknownVariant {
    /// The enum's name.
    pub kind: &'static str,
    /// What was given.
    pub found: String,
    /// The accepted names.
    pub expected: &'static [&'static str],
}

impl UnknownVariant {
    fn expected_list(&self) -> String {
        format!("one of {}", self.expected.join(", "))
    }
}

string_enum!(
    /// What a site is in the sales network.
    SiteKind {
        /// The 4S store's sales department.
        HeadOffice = "head_office",
        /// A regional distribution centre.
        DistributionCentre = "distribution_centre",
        /// An area, franchise or brand-store agent.
        Agent = "agent",
        /// A showroom.
        Showroom = "showroom",
        /// An outdoor or rural roadshow team.
        Roadshow = "roadshow",
    }
);

string_enum!(
    /// Where a customer lead came from.
    CustomerSource {
        /// Walked into a showroom.
        WalkIn = "walk_in",
        /// Phoned in.
        Phone = "phone",
        /// Met at an outdoor or rural roadshow.
        Roadshow = "roadshow",
        /// Referred by another customer.
        Referral = "referral",
        /// Came from the web.
        Web = "web",
        /// Met at an event (mall display, exhibition).
        Event = "event",
    }
);

string_enum!(
    /// Where a customer is in the sales funnel.
    CustomerStatus {
        /// A new lead.
        Lead = "lead",
        /// Has had a test drive.
        TestDrive = "test_drive",
        /// Negotiating price and terms.
        Negotiating = "negotiating",
        /// Has placed an order.
        Ordered = "ordered",
        /// Has taken delivery.
        Delivered = "delivered",
        /// Lost to a competitor or gone quiet.
        Lost = "lost",
    }
);

string_enum!(
    /// What happened in a customer's history.
    EventKind {
        /// A showroom or roadshow visit.
        Visit = "visit",
        /// A phone call.
        Call = "call",
        /// A test drive.
        TestDrive = "test_drive",
        /// A price quote (amount in fen).
        Quote = "quote",
        /// An order (amount in fen, VIN if allocated).
        Order = "order",
        /// A change to an order.
        OrderChange = "order_change",
        /// A discount asked for (amount in fen).
        DiscountRequest = "discount_request",
        /// A discount approved by a manager (amount in fen).
        DiscountApproved = "discount_approved",
        /// Delivery of the vehicle.
        Delivery = "delivery",
        /// Insurance arranged.
        Insurance = "insurance",
        /// A loan arranged.
        Loan = "loan",
        /// Number plates arranged.
        Plates = "plates",
        /// A used car taken in trade (amount in fen).
        TradeIn = "trade_in",
        /// Financing arranged.
        Financing = "financing",
        /// Accessories sold (amount in fen).
        Accessories = "accessories",
        /// A follow-up contact.
        FollowUp = "follow_up",
        /// A complaint.
        Complaint = "complaint",
        /// The customer referred someone.
        Referral = "referral",
        /// A satisfaction survey (score 1-5 in `score`).
        Survey = "survey",
    }
);

string_enum!(
    /// Where a vehicle is in its lifecycle at a site.
    VehicleStatus {
        /// Ordered from the manufacturer.
        Ordered = "ordered",
        /// On its way to this site.
        InTransit = "in_transit",
        /// At this site, available.
        InStock = "in_stock",
        /// Held for a customer.
        Reserved = "reserved",
        /// Sold, not yet handed over.
        Sold = "sold",
        /// Handed over to the customer.
        Delivered = "delivered",
        /// Sent to another site.
        TransferredOut = "transferred_out",
    }
);

/// Hydrates a string from either a scalar string or a text object, since a JavaScript
/// client on Automerge 3 writes text unless told otherwise.
pub mod scalar_str {
    use super::*;

    /// Reads a scalar string or the contents of a text object.
    pub fn hydrate<D: ReadDoc>(
        doc: &D,
        obj: &automerge::ObjId,
        prop: Prop<'_>,
    ) -> Result<String, HydrateError> {
        match hydrate_opt(doc, obj, prop)? {
            Some(s) => Ok(s),
            None => Err(HydrateError::unexpected("a string", "nothing".to_string())),
        }
    }

    pub(crate) fn hydrate_opt<D: ReadDoc>(
        doc: &D,
        obj: &automerge::ObjId,
        prop: Prop<'_>,
    ) -> Result<Option<String>, HydrateError> {
        use automerge::{ObjType, ScalarValue, Value};
        let got = match &prop {
            Prop::Key(k) => doc.get(obj, k.as_ref()),
            Prop::Index(i) => doc.get(obj, *i as usize),
        }?;
        match got {
            None => Ok(None),
            Some((Value::Scalar(s), _)) => match s.as_ref() {
                ScalarValue::Str(s) => Ok(Some(s.to_string())),
                ScalarValue::Null => Ok(None),
                other => Err(HydrateError::unexpected("a string", format!("{other:?}"))),
            },
            Some((Value::Object(ObjType::Text), id)) => Ok(Some(doc.text(&id)?)),
            Some((Value::Object(t), _)) => Err(HydrateError::unexpected(
                "a string",
                format!("a {t:?} object"),
            )),
        }
    }

    /// Writes a scalar string.
    pub fn reconcile<R: Reconciler>(s: &String, mut reconciler: R) -> Result<(), R::Error> {
        reconciler.str(s)
    }
}

/// Like [`scalar_str`] for optional strings; absent and `null` both read as `None`.
pub mod opt_scalar_str {
    use super::*;

    /// Reads an optional scalar string or text object.
    pub fn hydrate<D: ReadDoc>(
        doc: &D,
        obj: &automerge::ObjId,
        prop: Prop<'_>,
    ) -> Result<Option<String>, HydrateError> {
        scalar_str::hydrate_opt(doc, obj, prop)
    }

    /// Writes a scalar string, or `null` for `None`.
    pub fn reconcile<R: Reconciler>(s: &Option<String>, mut reconciler: R) -> Result<(), R::Error> {
        match s {
            Some(s) => reconciler.str(s),
            None => reconciler.none(),
        }
    }
}

/// A list of strings, each element a scalar string or a text object (a JS client that
/// pushes plain strings onto a list writes text elements).
pub mod scalar_str_list {
    use super::*;

    /// Reads a list whose elements are scalar strings or text objects.
    pub fn hydrate<D: ReadDoc>(
        doc: &D,
        obj: &automerge::ObjId,
        prop: Prop<'_>,
    ) -> Result<Vec<String>, HydrateError> {
        use automerge::{ObjType, Value};
        let got = match &prop {
            Prop::Key(k) => doc.get(obj, k.as_ref()),
            Prop::Index(i) => doc.get(obj, *i as usize),
        }?;
        match got {
            Some((Value::Object(ObjType::List), list)) => (0..doc.length(&list))
                .map(|i| scalar_str::hydrate(doc, &list, Prop::Index(i as u32)))
                .collect(),
            Some((v, _)) => Err(HydrateError::unexpected(
                "a list of strings",
                format!("{v:?}"),
            )),
            None => Err(HydrateError::unexpected(
                "a list of strings",
                "nothing".to_string(),
            )),
        }
    }

    /// Writes a list of scalar strings.
    pub fn reconcile<R: Reconciler>(list: &[String], reconciler: R) -> Result<(), R::Error> {
        list.reconcile(reconciler)
    }
}

/// `schemaVersion`: written as an unsigned integer; read from an unsigned or a
/// non-negative signed one, since a JavaScript client's `schemaVersion: 1` is stored as
/// a signed integer.
pub mod schema_version {
    use super::*;

    /// Reads the version from a `uint` or a non-negative `int`.
    pub fn hydrate<D: ReadDoc>(
        doc: &D,
        obj: &automerge::ObjId,
        prop: Prop<'_>,
    ) -> Result<u64, HydrateError> {
        hydrate_opt(doc, obj, prop)?.ok_or_else(|| {
            HydrateError::unexpected("a schemaVersion integer", "nothing".to_string())
        })
    }

    pub(crate) fn hydrate_opt<D: ReadDoc>(
        doc: &D,
        obj: &automerge::ObjId,
        prop: Prop<'_>,
    ) -> Result<Option<u64>, HydrateError> {
        use automerge::{ScalarValue, Value};
        let got = match &prop {
            Prop::Key(k) => doc.get(obj, k.as_ref()),
            Prop::Index(i) => doc.get(obj, *i as usize),
        }?;
        match got {
            None => Ok(None),
            Some((Value::Scalar(s), _)) => match s.as_ref() {
                ScalarValue::Uint(n) => Ok(Some(*n)),
                ScalarValue::Int(n) if *n >= 0 => Ok(Some(*n as u64)),
                // cbor-x and JS numbers may arrive as whole floats.
                ScalarValue::F64(f) if *f >= 0.0 && f.fract() == 0.0 && *f < 1e15 => {
                    Ok(Some(*f as u64))
                }
                other => Err(HydrateError::unexpected(
                    "a non-negative integer schemaVersion",
                    format!("{other:?}"),
                )),
            },
            Some((v, _)) => Err(HydrateError::unexpected(
                "a non-negative integer schemaVersion",
                format!("{v:?}"),
            )),
        }
    }

    /// Writes the version as an unsigned integer.
    pub fn reconcile<R: Reconciler>(v: &u64, mut reconciler: R) -> Result<(), R::Error> {
        reconciler.u64(*v)
    }
}

/// The `schemaVersion` at the root of a document, if it has one, in either integer
/// form (see [`schema_version`]).
pub fn read_schema_version<D: ReadDoc>(doc: &D) -> Result<Option<u64>, HydrateError> {
    schema_version::hydrate_opt(doc, &automerge::ROOT, "schemaVersion".into())
}

/// Who a site is and where it sits in the network tree.
#[derive(Debug, Clone, PartialEq, Eq, Hydrate, Reconcile, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SiteHeader {
    /// Stable site id, e.g. `hq`, `dc-north`.
    #[autosurgeon(with = "scalar_str")]
    pub id: String,
    /// Display name, e.g. 北区配送中心.
    #[autosurgeon(with = "scalar_str")]
    pub name: String,
    /// What kind of site this is.
    pub kind: SiteKind,
    /// The site above this one; `None` only for head office.
    #[autosurgeon(with = "opt_scalar_str")]
    pub parent: Option<String>,
}

/// One site's document: everything the site's devices edit offline.
#[derive(Debug, Clone, PartialEq, Hydrate, Reconcile, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SiteDocument {
    /// Layout version, see [`SCHEMA_VERSION`].
    #[autosurgeon(rename = "schemaVersion", with = "schema_version")]
    pub schema_version: u64,
    /// The site this document belongs to.
    pub site: SiteHeader,
    /// Customers (leads) by customer id.
    pub customers: BTreeMap<String, Customer>,
    /// Vehicles by VIN.
    pub vehicles: BTreeMap<String, Vehicle>,
    /// Parts and accessories on hand, by part number. Counters, because many devices
    /// adjust them concurrently.
    pub parts: BTreeMap<String, PartCount>,
    /// Demand forecasts: month (`YYYY-MM`) → model code → entry.
    pub forecasts: BTreeMap<String, BTreeMap<String, ForecastEntry>>,
    /// Targets of the site's consultants: consultant → period key → target.
    pub targets: BTreeMap<String, BTreeMap<String, Target>>,
}

/// A customer (lead) and their history.
#[derive(Debug, Clone, PartialEq, Eq, Hydrate, Reconcile, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Customer {
    /// Stable id (a UUID), also the key in `customers`.
    #[autosurgeon(with = "scalar_str")]
    pub id: String,
    /// Full name.
    #[autosurgeon(with = "scalar_str")]
    pub name: String,
    /// Phone number as entered; compare with [`crate::domain`]'s normalisation.
    #[autosurgeon(with = "scalar_str")]
    pub phone: String,
    /// Where the lead came from.
    pub source: CustomerSource,
    /// Model code of interest, from the network catalogue.
    #[autosurgeon(rename = "modelOfInterest", with = "opt_scalar_str")]
    pub model_of_interest: Option<String>,
    /// The consultant (user id) who owns the lead.
    #[autosurgeon(with = "opt_scalar_str")]
    pub consultant: Option<String>,
    /// Funnel status.
    pub status: CustomerStatus,
    /// When the lead was entered.
    #[autosurgeon(rename = "createdAt")]
    pub created_at: Millis,
    /// History, oldest first (concurrent appends merge in a deterministic order).
    pub events: Vec<CustomerEvent>,
    /// Set when this record was found to duplicate another customer (same phone) and
    /// merged into it: the id of the customer that remains. Readers skip merged records
    /// in lists and counts; the record itself is kept for the audit trail.
    #[autosurgeon(rename = "mergedInto", with = "opt_scalar_str")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<String>,
}

/// Something that happened with a customer.
#[derive(Debug, Clone, PartialEq, Eq, Hydrate, Reconcile, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerEvent {
    /// What happened.
    pub kind: EventKind,
    /// When.
    pub at: Millis,
    /// Who recorded it (user id).
    #[autosurgeon(with = "scalar_str")]
    pub by: String,
    /// Free-text note.
    #[autosurgeon(with = "opt_scalar_str")]
    pub note: Option<String>,
    /// Money involved, in fen (quote, order, discount, trade-in, accessories).
    #[autosurgeon(missing = "Default::default")]
    pub amount: Option<Fen>,
    /// The vehicle involved (order, delivery).
    #[autosurgeon(with = "opt_scalar_str")]
    pub vin: Option<String>,
    /// Survey score, 1 to 5.
    #[autosurgeon(missing = "Default::default")]
    pub score: Option<i64>,
}

/// A vehicle at a site, identified by its VIN.
#[derive(Debug, Clone, PartialEq, Eq, Hydrate, Reconcile, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Vehicle {
    /// Vehicle identification number, 17 characters, also the key in `vehicles`.
    #[autosurgeon(with = "scalar_str")]
    pub vin: String,
    /// Model code from the network catalogue.
    #[autosurgeon(with = "scalar_str")]
    pub model: String,
    /// Trim level.
    #[autosurgeon(with = "scalar_str")]
    pub trim: String,
    /// Exterior colour.
    #[autosurgeon(with = "scalar_str")]
    pub colour: String,
    /// What the site paid, in fen.
    pub cost: Fen,
    /// List price, in fen.
    #[autosurgeon(rename = "listPrice")]
    pub list_price: Fen,
    /// Lifecycle status.
    pub status: VehicleStatus,
    /// Expected arrival while ordered or in transit.
    #[autosurgeon(missing = "Default::default")]
    pub eta: Option<Millis>,
    /// When it arrived in stock (days in stock are counted from here).
    #[autosurgeon(rename = "arrivedAt", missing = "Default::default")]
    pub arrived_at: Option<Millis>,
    /// Customer id it is reserved for.
    #[autosurgeon(rename = "reservedFor", with = "opt_scalar_str")]
    pub reserved_for: Option<String>,
    /// Customer id it was sold to.
    #[autosurgeon(rename = "soldTo", with = "opt_scalar_str")]
    pub sold_to: Option<String>,
    /// Consultant (user id) who reserved or sold it.
    #[autosurgeon(with = "opt_scalar_str")]
    pub consultant: Option<String>,
    /// Site it was transferred from, when it came from another site.
    #[autosurgeon(rename = "transferFrom", with = "opt_scalar_str")]
    pub transfer_from: Option<String>,
    /// Site it was transferred to, when it left this one.
    #[autosurgeon(rename = "transferTo", with = "opt_scalar_str")]
    pub transfer_to: Option<String>,
    /// When its status last changed.
    #[autosurgeon(rename = "updatedAt")]
    pub updated_at: Millis,
}

/// One cell of a demand forecast.
#[derive(Debug, Clone, PartialEq, Eq, Hydrate, Reconcile, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ForecastEntry {
    /// Units expected to be sold that month.
    pub quantity: i64,
    /// Who set it (user id).
    #[autosurgeon(with = "scalar_str")]
    pub by: String,
    /// When it was set.
    pub at: Millis,
}

/// A target for a period: units and revenue, and optionally activity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hydrate, Reconcile, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// Units to sell.
    pub units: i64,
    /// Revenue to reach, in fen.
    pub revenue: Fen,
    /// Customer visits to log.
    #[autosurgeon(missing = "Default::default")]
    pub visits: Option<i64>,
    /// Calls to make.
    #[autosurgeon(missing = "Default::default")]
    pub calls: Option<i64>,
    /// Test drives to give.
    #[autosurgeon(rename = "testDrives", missing = "Default::default")]
    pub test_drives: Option<i64>,
}

/// A model in the network catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Hydrate, Reconcile, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VehicleModel {
    /// Model code, e.g. `SDN-A`.
    #[autosurgeon(with = "scalar_str")]
    pub code: String,
    /// Display name.
    #[autosurgeon(with = "scalar_str")]
    pub name: String,
    /// Trim levels on offer.
    #[autosurgeon(with = "scalar_str_list")]
    pub trims: Vec<String>,
    /// Cost to the dealer, in fen.
    pub cost: Fen,
    /// List price, in fen.
    #[autosurgeon(rename = "listPrice")]
    pub list_price: Fen,
}

/// The network document: written by head office, read by every site.
#[derive(Debug, Clone, PartialEq, Hydrate, Reconcile, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkDocument {
    /// Layout version, see [`SCHEMA_VERSION`].
    #[autosurgeon(rename = "schemaVersion", with = "schema_version")]
    pub schema_version: u64,
    /// The site tree, by site id (each header names its parent).
    pub sites: BTreeMap<String, SiteHeader>,
    /// The model catalogue, by model code.
    pub models: BTreeMap<String, VehicleModel>,
    /// Targets per site: site id → period key (see [`Period`]) → target.
    pub targets: BTreeMap<String, BTreeMap<String, Target>>,
    /// Largest discount per vehicle each role may grant without approval, in fen,
    /// by role name (`consultant`, `manager`, ...).
    #[autosurgeon(rename = "discountLimits")]
    pub discount_limits: BTreeMap<String, Fen>,
}

/// A reporting period. Keys in documents: `2026`, `2026-Q1`, `2026-03`, `2026-W09`
/// (ISO week), `2026-03-15` (a day). Periods are in China Standard Time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Period {
    /// A calendar year.
    Year(i32),
    /// A quarter, 1 to 4.
    Quarter(i32, u32),
    /// A month, 1 to 12.
    Month(i32, u32),
    /// An ISO week, 1 to 53.
    Week(i32, u32),
    /// A single day.
    Day(i32, u32, u32),
}

/// A period key that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed period {0:?}: expected YYYY, YYYY-Qn, YYYY-MM, YYYY-Www or YYYY-MM-DD")]
pub struct BadPeriod(pub String);

impl FromStr for Period {
    type Err = BadPeriod;
    fn from_str(s: &str) -> Result<Self, BadPeriod> {
        use chrono::NaiveDate;
        let bad = || BadPeriod(s.to_string());
        let year = |t: &str| -> Result<i32, BadPeriod> {
            if t.len() == 4 && t.bytes().all(|b| b.is_ascii_digit()) {
                t.parse().map_err(|_| bad())
            } else {
                Err(bad())
            }
        };
        let num = |t: &str, len: usize, lo: u32, hi: u32| -> Result<u32, BadPeriod> {
            if t.len() != len || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let n: u32 = t.parse().map_err(|_| bad())?;
            if (lo..=hi).contains(&n) {
                Ok(n)
            } else {
                Err(bad())
            }
        };
        let parts: Vec<&str> = s.split('-').collect();
        match parts.as_slice() {
            [y] => Ok(Period::Year(year(y)?)),
            [y, q] if q.starts_with('Q') => Ok(Period::Quarter(year(y)?, num(&q[1..], 1, 1, 4)?)),
            [y, w] if w.starts_with('W') => {
                let y = year(y)?;
                let w = num(&w[1..], 2, 1, 53)?;
                NaiveDate::from_isoywd_opt(y, w, chrono::Weekday::Mon).ok_or_else(bad)?;
                Ok(Period::Week(y, w))
            }
            [y, m] => Ok(Period::Month(year(y)?, num(m, 2, 1, 12)?)),
            [y, m, d] => {
                let (y, m, d) = (year(y)?, num(m, 2, 1, 12)?, num(d, 2, 1, 31)?);
                NaiveDate::from_ymd_opt(y, m, d).ok_or_else(bad)?;
                Ok(Period::Day(y, m, d))
            }
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Period::Year(y) => write!(f, "{y:04}"),
            Period::Quarter(y, q) => write!(f, "{y:04}-Q{q}"),
            Period::Month(y, m) => write!(f, "{y:04}-{m:02}"),
            Period::Week(y, w) => write!(f, "{y:04}-W{w:02}"),
            Period::Day(y, m, d) => write!(f, "{y:04}-{m:02}-{d:02}"),
        }
    }
}

impl Period {
    /// The half-open range `[start, end)` of the period in UTC milliseconds, with the
    /// period's boundaries at midnight China Standard Time (UTC+8, no daylight saving).
    pub fn range_millis(&self) -> (Millis, Millis) {
        use chrono::{Days, Months, NaiveDate};
        let (start, end): (NaiveDate, NaiveDate) = match *self {
            Period::Year(y) => {
                let s = NaiveDate::from_ymd_opt(y, 1, 1).expect("valid year");
                (s, s + Months::new(12))
            }
            Period::Quarter(y, q) => {
                let s = NaiveDate::from_ymd_opt(y, (q - 1) * 3 + 1, 1).expect("valid quarter");
                (s, s + Months::new(3))
            }
            Period::Month(y, m) => {
                let s = NaiveDate::from_ymd_opt(y, m, 1).expect("valid month");
                (s, s + Months::new(1))
            }
            Period::Week(y, w) => {
                let s = NaiveDate::from_isoywd_opt(y, w, chrono::Weekday::Mon).expect("valid week");
                (s, s + Days::new(7))
            }
            Period::Day(y, m, d) => {
                let s = NaiveDate::from_ymd_opt(y, m, d).expect("valid day");
                (s, s + Days::new(1))
            }
        };
        (
            crate::time::cst_midnight(start),
            crate::time::cst_midnight(end),
        )
    }

    /// Whether `t` (UTC milliseconds) falls in this period.
    pub fn contains(&self, t: Millis) -> bool {
        let (s, e) = self.range_millis();
        s <= t && t < e
    }
}

impl SiteDocument {
    /// An empty document for a new site.
    pub fn new(site: SiteHeader) -> Self {
        SiteDocument {
            schema_version: SCHEMA_VERSION,
            site,
            customers: BTreeMap::new(),
            vehicles: BTreeMap::new(),
            parts: BTreeMap::new(),
            forecasts: BTreeMap::new(),
            targets: BTreeMap::new(),
        }
    }

    /// Reads a site document from automerge, checking its version.
    pub fn read<D: ReadDoc>(doc: &D) -> Result<Self, SchemaError> {
        check_version(doc)?;
        Ok(autosurgeon::hydrate(doc)?)
    }
}

impl NetworkDocument {
    /// An empty network document.
    pub fn new() -> Self {
        NetworkDocument {
            schema_version: SCHEMA_VERSION,
            sites: BTreeMap::new(),
            models: BTreeMap::new(),
            targets: BTreeMap::new(),
            discount_limits: BTreeMap::new(),
        }
    }

    /// Reads the network document from automerge, checking its version.
    pub fn read<D: ReadDoc>(doc: &D) -> Result<Self, SchemaError> {
        check_version(doc)?;
        Ok(autosurgeon::hydrate(doc)?)
    }
}

impl Default for NetworkDocument {
    fn default() -> Self {
        Self::new()
    }
}

fn check_version<D: ReadDoc>(doc: &D) -> Result<(), SchemaError> {
    let v = read_schema_version(doc)?;
    match v {
        Some(found) if found > SCHEMA_VERSION => Err(SchemaError::NewerVersion { found }),
        _ => Ok(()),
    }
}

/// A count of parts on hand, stored as an automerge counter so that concurrent
/// adjustments on several devices add up instead of overwriting each other.
///
/// Reads also accept a plain integer, which a JS client writes when it assigns a
/// number instead of creating an `A.Counter`: one such part must not make the whole
/// site document unreadable. (Adjusting that part is refused with an error naming it.)
#[derive(Debug, Default, Reconcile)]
pub struct PartCount(pub Counter);

impl Hydrate for PartCount {
    fn hydrate_counter(c: i64) -> Result<Self, HydrateError> {
        Counter::hydrate_counter(c).map(PartCount)
    }

    fn hydrate_int(n: i64) -> Result<Self, HydrateError> {
        Ok(PartCount::new(n))
    }

    fn hydrate_uint(n: u64) -> Result<Self, HydrateError> {
        i64::try_from(n).map(PartCount::new).map_err(|_| {
            HydrateError::unexpected("a part count", "an integer which is too large".into())
        })
    }
}

impl PartCount {
    /// A counter starting at `value`.
    pub fn new(value: i64) -> Self {
        PartCount(Counter::with_value(value))
    }

    /// The current count.
    pub fn value(&self) -> i64 {
        self.0.value()
    }
}

impl Clone for PartCount {
    fn clone(&self) -> Self {
        PartCount::new(self.value())
    }
}

impl PartialEq for PartCount {
    fn eq(&self, other: &Self) -> bool {
        self.value() == other.value()
    }
}

impl Serialize for PartCount {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.value())
    }
}

impl<'de> Deserialize<'de> for PartCount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(PartCount::new(i64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;

    fn header() -> SiteHeader {
        SiteHeader {
            id: "rs-1".into(),
            name: "乡镇巡展一队".into(),
            kind: SiteKind::Roadshow,
            parent: Some("dc-north".into()),
        }
    }

    #[test]
    fn site_document_round_trips_through_automerge() {
        let site = SiteDocument::new(header());
        let mut doc = automerge::AutoCommit::new();
        autosurgeon::reconcile(&mut doc, &site).unwrap();
        assert_eq!(SiteDocument::read(&doc).unwrap(), site);
        // Written as scalar strings, not text objects.
        let (v, _) = automerge::ReadDoc::get(&doc, automerge::ROOT, "site")
            .unwrap()
            .unwrap();
        assert!(v.is_object());
        let site_obj = automerge::ReadDoc::get(&doc, automerge::ROOT, "site")
            .unwrap()
            .unwrap()
            .1;
        let (name, _) = automerge::ReadDoc::get(&doc, &site_obj, "name")
            .unwrap()
            .unwrap();
        assert!(
            matches!(name, automerge::Value::Scalar(_)),
            "name is {name:?}"
        );
    }

    #[test]
    fn readers_accept_text_written_by_js_clients() {
        let site = SiteDocument::new(header());
        let mut doc = automerge::AutoCommit::new();
        autosurgeon::reconcile(&mut doc, &site).unwrap();
        let site_obj = automerge::ReadDoc::get(&doc, automerge::ROOT, "site")
            .unwrap()
            .unwrap()
            .1;
        let text = doc
            .put_object(&site_obj, "name", automerge::ObjType::Text)
            .unwrap();
        doc.splice_text(&text, 0, 0, "文本名称").unwrap();
        assert_eq!(SiteDocument::read(&doc).unwrap().site.name, "文本名称");
    }

    /// What a JavaScript client writes with plain assignments: numbers are `int`
    /// (automerge-js never writes `uint` unless told to), list elements may be text,
    /// and optional fields may simply be left out instead of set to `null`.
    #[test]
    fn readers_accept_what_a_js_client_writes() {
        use automerge::{ObjType, ROOT, ScalarValue};
        let mut doc = automerge::AutoCommit::new();
        doc.put(ROOT, "schemaVersion", ScalarValue::Int(1)).unwrap();
        for key in ["sites", "targets", "discountLimits"] {
            doc.put_object(ROOT, key, ObjType::Map).unwrap();
        }
        let models = doc.put_object(ROOT, "models", ObjType::Map).unwrap();
        let m = doc.put_object(&models, "SDN-A", ObjType::Map).unwrap();
        doc.put(&m, "code", "SDN-A").unwrap();
        doc.put(&m, "name", "轿车 A").unwrap();
        doc.put(&m, "cost", 12_000_000).unwrap();
        doc.put(&m, "listPrice", 15_000_000).unwrap();
        let trims = doc.put_object(&m, "trims", ObjType::List).unwrap();
        doc.insert(&trims, 0, "base").unwrap();
        let lux = doc.insert_object(&trims, 1, ObjType::Text).unwrap();
        doc.splice_text(&lux, 0, 0, "lux").unwrap();
        let net = NetworkDocument::read(&doc).unwrap();
        assert_eq!(net.schema_version, 1);
        assert_eq!(net.models["SDN-A"].trims, ["base", "lux"]);

        let mut doc = automerge::AutoCommit::new();
        autosurgeon::reconcile(&mut doc, SiteDocument::new(header())).unwrap();
        doc.put(ROOT, "schemaVersion", ScalarValue::Int(1)).unwrap();
        let vehicles = automerge::ReadDoc::get(&doc, ROOT, "vehicles")
            .unwrap()
            .unwrap()
            .1;
        let v = doc
            .put_object(&vehicles, "LSVAB2BR7NM000001", ObjType::Map)
            .unwrap();
        for (k, val) in [
            ("vin", "LSVAB2BR7NM000001"),
            ("model", "SDN-A"),
            ("trim", "lux"),
            ("colour", "白"),
            ("status", "in_stock"),
        ] {
            doc.put(&v, k, val).unwrap();
        }
        for (k, n) in [
            ("cost", 12_000_000_i64),
            ("listPrice", 15_000_000),
            ("arrivedAt", 1_772_294_400_000_i64),
            ("updatedAt", 1_772_294_400_000),
        ] {
            doc.put(&v, k, n).unwrap();
        }
        let targets = automerge::ReadDoc::get(&doc, ROOT, "targets")
            .unwrap()
            .unwrap()
            .1;
        let wang = doc.put_object(&targets, "wang", ObjType::Map).unwrap();
        let t = doc.put_object(&wang, "2026-03", ObjType::Map).unwrap();
        doc.put(&t, "units", 4).unwrap();
        doc.put(&t, "revenue", 60_000_000).unwrap();
        // A part count assigned as a plain number instead of a counter.
        let parts = automerge::ReadDoc::get(&doc, ROOT, "parts")
            .unwrap()
            .unwrap()
            .1;
        doc.put(&parts, "OIL-5W30", 12).unwrap();
        let site = SiteDocument::read(&doc).unwrap();
        assert_eq!(site.parts["OIL-5W30"].value(), 12);
        let read = &site.vehicles["LSVAB2BR7NM000001"];
        assert_eq!((read.eta, read.arrived_at), (None, Some(1_772_294_400_000)));
        assert_eq!(read.reserved_for, None);
        assert_eq!(site.targets["wang"]["2026-03"].visits, None);
    }

    #[test]
    fn newer_schema_version_is_refused() {
        let mut site = SiteDocument::new(header());
        site.schema_version = SCHEMA_VERSION + 1;
        let mut doc = automerge::AutoCommit::new();
        autosurgeon::reconcile(&mut doc, &site).unwrap();
        assert!(matches!(
            SiteDocument::read(&doc),
            Err(SchemaError::NewerVersion { found }) if found == SCHEMA_VERSION + 1
        ));
    }

    #[test]
    fn enums_parse_and_print_snake_case() {
        assert_eq!(
            "in-stock".parse::<VehicleStatus>().unwrap(),
            VehicleStatus::InStock
        );
        assert_eq!(VehicleStatus::TransferredOut.to_string(), "transferred_out");
        let err = "sold out".parse::<VehicleStatus>().unwrap_err();
        assert!(err.to_string().contains("in_stock"), "{err}");
    }

    #[test]
    fn periods_parse_and_cover_cst_days() {
        for key in ["2026", "2026-Q3", "2026-03", "2026-W09", "2026-02-28"] {
            assert_eq!(key.parse::<Period>().unwrap().to_string(), key);
        }
        for bad in [
            "26",
            "2026-13",
            "2026-Q5",
            "2026-W54",
            "2026-02-30",
            "2026-3",
            "x",
        ] {
            assert!(bad.parse::<Period>().is_err(), "{bad} parsed");
        }
        // 2026-03-01 00:00 CST is 2026-02-28 16:00 UTC.
        let (start, end) = "2026-03".parse::<Period>().unwrap().range_millis();
        assert_eq!(start, 1_772_294_400_000);
        assert_eq!(end - start, 31 * 86_400_000);
        assert_eq!(month_key(start), "2026-03");
        assert_eq!(month_key(start - 1), "2026-02");
        // Any i64 is a month, however absurd, not a panic.
        assert!(month_key(i64::MAX).ends_with("-12"));
        assert!(month_key(i64::MIN).ends_with("-01"));
    }

    #[test]
    fn periods_on_former_daylight_saving_dates_start_at_16_00_utc() {
        // Asia/Shanghai skipped 1940-06-01 00:00 (DST); CST (UTC+8) does not.
        let day = |y, m, d| Period::Day(y, m, d).range_millis();
        let utc = |y, m, d, h| {
            chrono::NaiveDate::from_ymd_opt(y, m, d)
                .unwrap()
                .and_hms_opt(h, 0, 0)
                .unwrap()
                .and_utc()
                .timestamp_millis()
        };
        assert_eq!(day(1940, 6, 1), (utc(1940, 5, 31, 16), utc(1940, 6, 1, 16)));
        assert_eq!(day(1986, 5, 4), (utc(1986, 5, 3, 16), utc(1986, 5, 4, 16)));
        assert_eq!(
            day(1991, 4, 14),
            (utc(1991, 4, 13, 16), utc(1991, 4, 14, 16))
        );
        let (s, e) = Period::Month(1940, 6).range_millis();
        assert_eq!((s, e), (utc(1940, 5, 31, 16), utc(1940, 6, 30, 16)));
        assert_eq!(month_key(s), "1940-06");
        assert_eq!(month_key(s - 1), "1940-05");
        let (s, e) = Period::Year(1946).range_millis();
        assert_eq!((s, e), (utc(1945, 12, 31, 16), utc(1946, 12, 31, 16)));
        assert!(
            Period::Week(1940, 23).range_millis().0 < Period::Quarter(1949, 2).range_millis().0
        );
    }
}
