//! Parts distribution (配件配送): what each distribution centre shipped to each of its
//! agents in a period, what arrived, and what the agents now hold.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::schema::{Millis, NetworkDocument, PartsShipment, Period, SiteDocument};

use super::tree::SiteTree;
use super::{ReportError, ReportWarning, Tabular, check_period, sat_sum};

/// One part shipped from one distribution centre to one agent in the period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartsRow {
    /// The distribution centre.
    pub from: String,
    /// The agent.
    pub to: String,
    /// Part number.
    pub part: String,
    /// Shipments carrying it.
    pub shipments: i64,
    /// Units shipped.
    pub shipped: i64,
    /// Of those, units the agent has recorded as arrived.
    pub received: i64,
    /// Units still on the way (shipped − received).
    pub in_transit: i64,
    /// The agent's count of the part now; `None` when its document is not on this
    /// device.
    pub agent_on_hand: Option<i64>,
}

/// Units shipped by one distribution centre in the period, all agents and parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartsCentreTotal {
    /// The distribution centre.
    pub from: String,
    /// Shipments sent.
    pub shipments: i64,
    /// Units shipped.
    pub shipped: i64,
    /// Units arrived.
    pub received: i64,
    /// Units on the way.
    pub in_transit: i64,
}

/// The parts distribution roll-up for a period.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartsReport {
    /// The period's key.
    pub period: String,
    /// By distribution centre (tree order), agent (tree order), part number.
    pub rows: Vec<PartsRow>,
    /// Per distribution centre.
    pub centres: Vec<PartsCentreTotal>,
    /// Sites whose document this device holds, in tree order.
    pub sites_covered: Vec<String>,
    /// Sites whose document is not on this device: a shipment is known from either
    /// end's document, and is missing only when neither is held.
    pub sites_not_available: Vec<String>,
    /// What had to be assumed.
    pub warnings: Vec<ReportWarning>,
}

impl Tabular for PartsReport {
    type Row = PartsRow;
    fn rows(&self) -> Vec<PartsRow> {
        self.rows.clone()
    }
}

/// Parts shipped in `period` (by `shippedAt`, CST), from the shipment records of every
/// document given: the sender's and the receiver's copies are one shipment, received
/// when either copy says so.
pub fn parts_distribution(
    network: &NetworkDocument,
    sites: &[&SiteDocument],
    period: Period,
) -> Result<PartsReport, ReportError> {
    let period = check_period(period)?;
    let tree = SiteTree::build(network, sites)?;
    let (sites_covered, sites_not_available) = tree.coverage();
    let (start, end) = period.range_millis();
    let mut shipments: BTreeMap<&str, (&PartsShipment, Option<Millis>)> = BTreeMap::new();
    for (_, doc) in tree.docs() {
        for s in doc.parts_shipments.values() {
            if s.shipped_at < start || s.shipped_at >= end {
                continue;
            }
            let e = shipments.entry(s.id.as_str()).or_insert((s, None));
            e.1 = e.1.or(s.received_at);
        }
    }
    let order: BTreeMap<&str, usize> = tree
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.header.id.as_str(), i))
        .collect();
    let pos = |site: &str| order.get(site).copied().unwrap_or(usize::MAX);
    let held: BTreeMap<&str, &SiteDocument> =
        tree.docs().map(|(_, d)| (d.site.id.as_str(), d)).collect();
    // (from position, from, to position, to, part) → (shipments, shipped, received)
    type Key<'k> = (usize, &'k str, usize, &'k str, &'k str);
    let mut cells: BTreeMap<Key<'_>, (i64, i64, i64)> = BTreeMap::new();
    let mut centres: BTreeMap<(usize, &str), (i64, i64, i64)> = BTreeMap::new();
    for (s, received_at) in shipments.values() {
        let from = s.from.as_str();
        let to = s.to.as_str();
        let c = centres.entry((pos(from), from)).or_default();
        c.0 += 1;
        for (part, &qty) in &s.lines {
            let cell = cells
                .entry((pos(from), from, pos(to), to, part.as_str()))
                .or_default();
            cell.0 += 1;
            cell.1 = cell.1.saturating_add(qty);
            c.1 = c.1.saturating_add(qty);
            if received_at.is_some() {
                cell.2 = cell.2.saturating_add(qty);
                c.2 = c.2.saturating_add(qty);
            }
        }
    }
    let rows = cells
        .into_iter()
        .map(
            |((_, from, _, to, part), (n, shipped, received))| PartsRow {
                from: from.to_string(),
                to: to.to_string(),
                part: part.to_string(),
                shipments: n,
                shipped,
                received,
                in_transit: shipped - received,
                agent_on_hand: held
                    .get(to)
                    .map(|d| d.parts.get(part).map_or(0, |c| c.value())),
            },
        )
        .collect::<Vec<_>>();
    let centres = centres
        .into_iter()
        .map(|((_, from), (n, shipped, received))| PartsCentreTotal {
            from: from.to_string(),
            shipments: n,
            shipped,
            received,
            in_transit: sat_sum([shipped, -received]),
        })
        .collect();
    Ok(PartsReport {
        period: period.to_string(),
        rows,
        centres,
        sites_covered,
        sites_not_available,
        warnings: tree.warnings,
    })
}
