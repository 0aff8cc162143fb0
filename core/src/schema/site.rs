//! The site document: one site's customers, vehicles, parts, forecasts and targets.

use std::collections::BTreeMap;

use autosurgeon::{Counter, Hydrate, HydrateError, ReadDoc, Reconcile};
use serde::{Deserialize, Serialize};

use super::{
    CallDirection, Complaint, CustomerArea, CustomerSource, CustomerStatus, EventKind, Fen, Millis,
    PartsShipment, SCHEMA_VERSION, SchemaError, SiteChannel, SiteKind, TransferRequest,
    VehicleStatus, check_version, opt_scalar_str, scalar_str, schema_version,
};

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
    /// The sales channel (直销, 总代理, 特许代理, 品牌专卖). Optional: documents
    /// written before channels existed read as `None`, and a site may not have one yet.
    #[autosurgeon(missing = "Default::default")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<SiteChannel>,
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
    /// Walk-in batches (来店批次) who left no phone, by id: visits without a customer.
    /// Absent from documents created before walk-ins were recorded; read as empty.
    #[autosurgeon(rename = "walkIns", missing = "Default::default")]
    #[serde(default)]
    pub walk_ins: BTreeMap<String, WalkIn>,
    /// Requests to send a vehicle of this site to another region, by id. Absent from
    /// older documents; read as empty.
    #[autosurgeon(missing = "Default::default")]
    #[serde(default)]
    pub transfers: BTreeMap<String, TransferRequest>,
    /// Parts shipments this site sent (a distribution centre) or received (an agent),
    /// by id. Absent from older documents; read as empty.
    #[autosurgeon(rename = "partsShipments", missing = "Default::default")]
    #[serde(default)]
    pub parts_shipments: BTreeMap<String, PartsShipment>,
    /// Customers' complaints, by id. Absent from older documents; read as empty.
    #[autosurgeon(missing = "Default::default")]
    #[serde(default)]
    pub complaints: BTreeMap<String, Complaint>,
}

/// A batch of people who came in together and gave no phone number: a visit all the
/// same (the KPIs count it), with no customer record to hang it on.
#[derive(Debug, Clone, PartialEq, Eq, Hydrate, Reconcile, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WalkIn {
    /// Stable id (a UUID), also the key in `walkIns`.
    #[autosurgeon(with = "scalar_str")]
    pub id: String,
    /// When they came.
    pub at: Millis,
    /// The consultant who received them (user id).
    #[autosurgeon(with = "scalar_str")]
    pub by: String,
    /// How many people came together.
    #[autosurgeon(rename = "partySize")]
    pub party_size: i64,
    /// The model they looked at.
    #[autosurgeon(rename = "modelOfInterest", with = "opt_scalar_str")]
    pub model_of_interest: Option<String>,
    /// Free text.
    #[autosurgeon(with = "opt_scalar_str")]
    pub note: Option<String>,
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
    /// Where they live: 地州 or 市区. Absent until asked (and on older records).
    #[autosurgeon(missing = "Default::default")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub area: Option<CustomerArea>,
    /// The customer (id at this site) who referred them (以老带新).
    #[autosurgeon(rename = "referredBy", with = "opt_scalar_str")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referred_by: Option<String>,
    /// When the next follow-up call (回访) is due; absent when none is planned.
    #[autosurgeon(rename = "nextFollowUp", missing = "Default::default")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_follow_up: Option<Millis>,
    /// Why they were lost, once lost.
    #[autosurgeon(rename = "lostReason", with = "opt_scalar_str")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost_reason: Option<String>,
    /// The competitor (brand or dealer) they bought from instead, if known.
    #[autosurgeon(rename = "lostTo", with = "opt_scalar_str")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost_to: Option<String>,
    /// When they were marked lost.
    #[autosurgeon(rename = "lostAt", missing = "Default::default")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost_at: Option<Millis>,
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
    /// Inbound or outbound, on calls only; absent on older events (and read as `None`).
    #[autosurgeon(missing = "Default::default")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<CallDirection>,
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
    /// The manager who approved the discount of its sale, when it was above the
    /// seller's limit; absent otherwise (and on records older than approvals).
    #[autosurgeon(rename = "discountApprovedBy", with = "opt_scalar_str")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discount_approved_by: Option<String>,
    /// When that approval was given.
    #[autosurgeon(rename = "discountApprovedAt", missing = "Default::default")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discount_approved_at: Option<Millis>,
    /// The approved transfer request (between regions) that brought it here, on the
    /// receiving site's record; absent otherwise.
    #[autosurgeon(rename = "transferId", with = "opt_scalar_str")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_id: Option<String>,
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
    /// The distribution centre's correction of this figure, if any. The site's own
    /// figure above stays as submitted; the roll-up uses this one where present.
    /// Absent on documents written before adjustments existed.
    #[autosurgeon(missing = "Default::default")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adjusted: Option<ForecastAdjustment>,
}

impl ForecastEntry {
    /// The figure that counts: the distribution centre's adjustment where there is
    /// one, else the site's own.
    pub fn effective(&self) -> i64 {
        self.adjusted.as_ref().map_or(self.quantity, |a| a.quantity)
    }
}

/// A distribution centre's correction of a site's forecast: who, when, and the figure.
#[derive(Debug, Clone, PartialEq, Eq, Hydrate, Reconcile, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ForecastAdjustment {
    /// Units the distribution centre expects instead.
    pub quantity: i64,
    /// Who adjusted it (user id).
    #[autosurgeon(with = "scalar_str")]
    pub by: String,
    /// When.
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
            walk_ins: BTreeMap::new(),
            transfers: BTreeMap::new(),
            parts_shipments: BTreeMap::new(),
            complaints: BTreeMap::new(),
        }
    }

    /// Reads a site document from automerge, checking its version.
    pub fn read<D: ReadDoc>(doc: &D) -> Result<Self, SchemaError> {
        check_version(doc)?;
        Ok(autosurgeon::hydrate(doc)?)
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
