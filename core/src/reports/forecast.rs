//! A month's demand forecasts summed up the site tree: agents → distribution centre →
//! head office.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::schema::{NetworkDocument, Period, SiteChannel, SiteDocument, SiteKind};

use super::tree::SiteTree;
use super::{ReportError, ReportWarning, Tabular, expect_month};

/// One site's forecast for one model, its own and with everything below it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ForecastRow {
    /// Site id.
    pub site: String,
    /// Site name.
    pub site_name: String,
    /// Site kind.
    pub kind: SiteKind,
    /// The site's sales channel, from the network document (`None`: not set).
    pub channel: Option<SiteChannel>,
    /// The site the total rolls up to (`None` for head office).
    pub parent: Option<String>,
    /// Depth in the tree, 0 for head office, for indenting.
    pub depth: u32,
    /// Model code.
    pub model: String,
    /// Whether the site's document is on this device. False: `own` is unknown and
    /// `total` is only what the sites below it that are held forecast.
    pub available: bool,
    /// The site's own forecast (0 when it set none; `None` when its document is not
    /// on this device: unknown, not zero).
    pub own: Option<i64>,
    /// Own forecast plus the totals of the sites directly below it (of the documents
    /// held).
    pub total: i64,
}

/// A model's forecast for the whole network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelTotal {
    /// Model code.
    pub model: String,
    /// Units.
    pub quantity: i64,
}

/// Forecast roll-up for one month.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ForecastRollup {
    /// The month, `YYYY-MM`.
    pub month: String,
    /// Sites in tree order (a parent before its children), models by code within a
    /// site; a row for every model forecast by the site or anywhere below it.
    pub rows: Vec<ForecastRow>,
    /// Per model, the sum of the root totals: what the network as a whole expects.
    pub network_totals: Vec<ModelTotal>,
    /// Sites whose document this device holds, in tree order.
    pub sites_covered: Vec<String>,
    /// Sites whose document is not on this device, in tree order: their forecasts are
    /// missing from every total above them.
    pub sites_not_available: Vec<String>,
    /// What had to be assumed.
    pub warnings: Vec<ReportWarning>,
}

impl Tabular for ForecastRollup {
    type Row = ForecastRow;
    fn rows(&self) -> Vec<ForecastRow> {
        self.rows.clone()
    }
}

impl ForecastRollup {
    /// The network total for a model (0 when nobody forecast it).
    pub fn network_total(&self, model: &str) -> i64 {
        self.network_totals
            .iter()
            .find(|t| t.model == model)
            .map_or(0, |t| t.quantity)
    }
}

/// Rolls up the forecasts of `month` along the site tree of the network document.
/// Every kind of site (agents, showrooms, roadshow teams, distribution centres) rolls
/// up to its parent the same way.
pub fn forecast_rollup(
    network: &NetworkDocument,
    sites: &[&SiteDocument],
    month: Period,
) -> Result<ForecastRollup, ReportError> {
    expect_month("the forecast roll-up", month)?;
    let tree = SiteTree::build(network, sites)?;
    Ok(rollup_on(&tree, month))
}

/// The roll-up on an already built tree (the order plan reuses its own).
pub(crate) fn rollup_on(tree: &SiteTree<'_>, month: Period) -> ForecastRollup {
    let key = month.to_string();
    let own: Vec<BTreeMap<String, i64>> = tree
        .nodes
        .iter()
        .map(|n| {
            n.doc
                .and_then(|d| d.forecasts.get(&key))
                .map(|cells| {
                    cells
                        .iter()
                        // A distribution centre's adjustment replaces the site's figure.
                        .map(|(model, e)| (model.clone(), e.effective()))
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect();
    // Nodes are in pre-order, so walking backwards finishes every child before its
    // parent: add each subtree total into the parent's.
    let mut total = own.clone();
    for idx in (0..tree.nodes.len()).rev() {
        if let Some(parent) = tree.nodes[idx].parent {
            let child = std::mem::take(&mut total[idx]);
            for (model, q) in &child {
                let sum = total[parent].entry(model.clone()).or_default();
                *sum = sum.saturating_add(*q);
            }
            total[idx] = child;
        }
    }

    let mut rows = Vec::new();
    let mut network_totals: BTreeMap<String, i64> = BTreeMap::new();
    for (idx, node) in tree.nodes.iter().enumerate() {
        for (model, &t) in &total[idx] {
            rows.push(ForecastRow {
                site: node.header.id.clone(),
                site_name: node.header.name.clone(),
                kind: node.header.kind,
                channel: node.header.channel,
                parent: node.parent.map(|p| tree.nodes[p].header.id.clone()),
                depth: node.depth,
                model: model.clone(),
                available: node.doc.is_some(),
                own: node.doc.map(|_| own[idx].get(model).copied().unwrap_or(0)),
                total: t,
            });
            if node.parent.is_none() {
                let sum = network_totals.entry(model.clone()).or_default();
                *sum = sum.saturating_add(t);
            }
        }
    }
    let (sites_covered, sites_not_available) = tree.coverage();
    ForecastRollup {
        month: key,
        sites_covered,
        sites_not_available,
        rows,
        network_totals: network_totals
            .into_iter()
            .map(|(model, quantity)| ModelTotal { model, quantity })
            .collect(),
        warnings: tree.warnings.clone(),
    }
}
