//! Transfers between regions and where each one stands: asked, decided by head office,
//! sent, received.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::schema::{Millis, NetworkDocument, SiteDocument, TransferVerdict};

use super::tree::SiteTree;
use super::{ReportError, ReportWarning, Tabular};

/// Where a transfer request stands, in the order it moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferStatus {
    /// Waiting for head office.
    Pending,
    /// Approved; the sending site has not let the vehicle go (as far as this device
    /// knows).
    Approved,
    /// The sending site recorded it leaving.
    Dispatched,
    /// The receiving site has it on its books (in transit or arrived).
    Received,
    /// Head office said no; the vehicle stays.
    Refused,
}

/// One transfer request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferRow {
    /// Request id.
    pub id: String,
    /// Where it stands.
    pub status: TransferStatus,
    /// VIN.
    pub vin: String,
    /// Model code.
    pub model: String,
    /// Sending site.
    pub from: String,
    /// Receiving site.
    pub to: String,
    /// The manager who asked; `None` when only the decision is on this device.
    pub requested_by: Option<String>,
    /// When they asked.
    pub requested_at: Option<Millis>,
    /// Why they asked.
    pub note: Option<String>,
    /// Who at head office decided.
    pub decided_by: Option<String>,
    /// When.
    pub decided_at: Option<Millis>,
    /// The decision's note (a refusal's reason).
    pub decision_note: Option<String>,
    /// When the sending site let it go.
    pub dispatched_at: Option<Millis>,
    /// When it arrived in stock at the receiving site.
    pub arrived_at: Option<Millis>,
}

/// Every transfer request the documents on this device show.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TransfersReport {
    /// Pending first (oldest first), then approved, dispatched, received, refused.
    pub rows: Vec<TransferRow>,
    /// Requests waiting for head office.
    pub pending: i64,
    /// Approved and not yet dispatched.
    pub approved_not_sent: i64,
    /// Sites whose document this device holds, in tree order.
    pub sites_covered: Vec<String>,
    /// Sites whose document is not on this device: their requests appear only once
    /// head office has decided them (from the network document).
    pub sites_not_available: Vec<String>,
    /// What had to be assumed.
    pub warnings: Vec<ReportWarning>,
}

impl Tabular for TransfersReport {
    type Row = TransferRow;
    fn rows(&self) -> Vec<TransferRow> {
        self.rows.clone()
    }
}

/// The transfer requests in the given site documents, with head office's decisions
/// from the network document (and decided requests whose sender is not on this
/// device), and what the receiving site's document says.
pub fn transfers(
    network: &NetworkDocument,
    sites: &[&SiteDocument],
) -> Result<TransfersReport, ReportError> {
    let tree = SiteTree::build(network, sites)?;
    let (sites_covered, sites_not_available) = tree.coverage();
    let mut rows: BTreeMap<String, TransferRow> = BTreeMap::new();
    for (_, doc) in tree.docs() {
        for r in doc.transfers.values() {
            rows.insert(
                r.id.clone(),
                TransferRow {
                    id: r.id.clone(),
                    status: TransferStatus::Pending,
                    vin: r.vin.clone(),
                    model: r.model.clone(),
                    from: r.from.clone(),
                    to: r.to.clone(),
                    requested_by: Some(r.requested_by.clone()),
                    requested_at: Some(r.requested_at),
                    note: r.note.clone(),
                    decided_by: None,
                    decided_at: None,
                    decision_note: None,
                    dispatched_at: r.dispatched_at,
                    arrived_at: None,
                },
            );
        }
    }
    for d in network.transfer_decisions.values() {
        let row = rows.entry(d.id.clone()).or_insert_with(|| TransferRow {
            id: d.id.clone(),
            status: TransferStatus::Pending,
            vin: d.vin.clone(),
            model: d.model.clone(),
            from: d.from.clone(),
            to: d.to.clone(),
            requested_by: None,
            requested_at: None,
            note: None,
            decided_by: None,
            decided_at: None,
            decision_note: None,
            dispatched_at: None,
            arrived_at: None,
        });
        row.decided_by = Some(d.by.clone());
        row.decided_at = Some(d.at);
        row.decision_note = d.note.clone();
        row.status = match d.verdict {
            TransferVerdict::Approved => TransferStatus::Approved,
            TransferVerdict::Refused => TransferStatus::Refused,
        };
    }
    // What the receiving sites' documents on this device show.
    let received: BTreeMap<&str, Option<Millis>> = tree
        .docs()
        .flat_map(|(_, d)| d.vehicles.values())
        .filter_map(|v| v.transfer_id.as_deref().map(|id| (id, v.arrived_at)))
        .collect();
    for row in rows.values_mut() {
        if row.status == TransferStatus::Refused {
            continue;
        }
        if row.dispatched_at.is_some() {
            row.status = TransferStatus::Dispatched;
        }
        if let Some(arrived) = received.get(row.id.as_str()) {
            row.status = TransferStatus::Received;
            row.arrived_at = *arrived;
        }
    }
    let mut rows: Vec<TransferRow> = rows.into_values().collect();
    rows.sort_by(|a, b| {
        a.status
            .cmp(&b.status)
            .then(a.requested_at.cmp(&b.requested_at))
            .then(a.id.cmp(&b.id))
    });
    let count = |s| rows.iter().filter(|r| r.status == s).count() as i64;
    Ok(TransfersReport {
        pending: count(TransferStatus::Pending),
        approved_not_sent: count(TransferStatus::Approved),
        rows,
        sites_covered,
        sites_not_available,
        warnings: tree.warnings,
    })
}
