//! Records added to the documents after the first layout: transfers between regions
//! and their approvals, parts shipments, complaints. Every map holding them is optional (absent on
//! older documents, read as empty), so the layout stays additive.

use std::collections::BTreeMap;

use autosurgeon::{Hydrate, Reconcile};
use serde::{Deserialize, Serialize};

use super::{ComplaintStatus, Fen, Millis, TransferVerdict, opt_scalar_str, scalar_str};

/// A manager's request to move a vehicle from their site to a site of another region,
/// kept in the sending site's document (`transfers`, by id). The vehicle moves only
/// once head office has approved it in the network document ([`TransferDecision`]).
#[derive(Debug, Clone, PartialEq, Eq, Hydrate, Reconcile, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferRequest {
    /// Stable id (a UUID), also the key in `transfers` and `transferDecisions`.
    #[autosurgeon(with = "scalar_str")]
    pub id: String,
    /// The vehicle.
    #[autosurgeon(with = "scalar_str")]
    pub vin: String,
    /// Its model, for lists read without the vehicle record.
    #[autosurgeon(with = "scalar_str")]
    pub model: String,
    /// The sending site (this document's).
    #[autosurgeon(with = "scalar_str")]
    pub from: String,
    /// The receiving site.
    #[autosurgeon(with = "scalar_str")]
    pub to: String,
    /// The manager who asked (user id).
    #[autosurgeon(rename = "requestedBy", with = "scalar_str")]
    pub requested_by: String,
    /// When.
    #[autosurgeon(rename = "requestedAt")]
    pub requested_at: Millis,
    /// Why ("南区缺 SUV-C，北区库存 120 天").
    #[autosurgeon(with = "opt_scalar_str")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// When the approved vehicle left the sending site; absent until then.
    #[autosurgeon(rename = "dispatchedAt", missing = "Default::default")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatched_at: Option<Millis>,
    /// Who sent it off.
    #[autosurgeon(rename = "dispatchedBy", with = "opt_scalar_str")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatched_by: Option<String>,
}

/// Head office's answer to a [`TransferRequest`], kept in the network document
/// (`transferDecisions`, by the request's id), which every site reads: the receiving
/// site takes the vehicle's details from here, since it may not read the sender's
/// document.
#[derive(Debug, Clone, PartialEq, Eq, Hydrate, Reconcile, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferDecision {
    /// The request's id.
    #[autosurgeon(with = "scalar_str")]
    pub id: String,
    /// Approved or refused.
    pub verdict: TransferVerdict,
    /// Who decided (a head office user id).
    #[autosurgeon(with = "scalar_str")]
    pub by: String,
    /// When.
    pub at: Millis,
    /// The reason, for a refusal above all.
    #[autosurgeon(with = "opt_scalar_str")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The vehicle.
    #[autosurgeon(with = "scalar_str")]
    pub vin: String,
    /// The sending site.
    #[autosurgeon(with = "scalar_str")]
    pub from: String,
    /// The receiving site.
    #[autosurgeon(with = "scalar_str")]
    pub to: String,
    /// Model code, as the sender recorded it.
    #[autosurgeon(with = "scalar_str")]
    pub model: String,
    /// Trim.
    #[autosurgeon(with = "scalar_str")]
    pub trim: String,
    /// Colour.
    #[autosurgeon(with = "scalar_str")]
    pub colour: String,
    /// Recorded cost, in fen.
    pub cost: Fen,
    /// List price, in fen.
    #[autosurgeon(rename = "listPrice")]
    pub list_price: Fen,
}

/// Parts a distribution centre sends to one of its agents (配件配送). The same record
/// is written into both documents (`partsShipments`, by id) when it is sent; the agent
/// records its arrival on its own copy, which is when its counts go up.
#[derive(Debug, Clone, PartialEq, Eq, Hydrate, Reconcile, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartsShipment {
    /// Stable id (a UUID).
    #[autosurgeon(with = "scalar_str")]
    pub id: String,
    /// The sending distribution centre.
    #[autosurgeon(with = "scalar_str")]
    pub from: String,
    /// The receiving agent.
    #[autosurgeon(with = "scalar_str")]
    pub to: String,
    /// Part number → quantity sent (each above zero).
    pub lines: BTreeMap<String, i64>,
    /// When it was sent.
    #[autosurgeon(rename = "shippedAt")]
    pub shipped_at: Millis,
    /// Who sent it (user id).
    #[autosurgeon(rename = "shippedBy", with = "scalar_str")]
    pub shipped_by: String,
    /// When the agent recorded its arrival; absent while on the way.
    #[autosurgeon(rename = "receivedAt", missing = "Default::default")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_at: Option<Millis>,
    /// Who recorded the arrival.
    #[autosurgeon(rename = "receivedBy", with = "opt_scalar_str")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_by: Option<String>,
    /// Free text (the waybill number).
    #[autosurgeon(with = "opt_scalar_str")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A customer's complaint (投诉), kept in the site's document (`complaints`, by id):
/// who owns it, where it stands, and how it was settled.
#[derive(Debug, Clone, PartialEq, Eq, Hydrate, Reconcile, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Complaint {
    /// Stable id (a UUID).
    #[autosurgeon(with = "scalar_str")]
    pub id: String,
    /// The customer who complained (an id at this site).
    #[autosurgeon(with = "scalar_str")]
    pub customer: String,
    /// What they complained about.
    #[autosurgeon(with = "scalar_str")]
    pub summary: String,
    /// Where it stands.
    pub status: ComplaintStatus,
    /// Who is on it (user id).
    #[autosurgeon(with = "scalar_str")]
    pub owner: String,
    /// When it was received.
    #[autosurgeon(rename = "openedAt")]
    pub opened_at: Millis,
    /// Who recorded it.
    #[autosurgeon(rename = "openedBy", with = "scalar_str")]
    pub opened_by: String,
    /// How it was settled; required to resolve it.
    #[autosurgeon(with = "opt_scalar_str")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    /// When it was resolved.
    #[autosurgeon(rename = "resolvedAt", missing = "Default::default")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<Millis>,
    /// Who resolved it.
    #[autosurgeon(rename = "resolvedBy", with = "opt_scalar_str")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<String>,
}
