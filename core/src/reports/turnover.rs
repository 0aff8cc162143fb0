//! Days of supply and capital turnover (资金周转率) per model and site: how long the
//! cars on hand last at the period's pace of sales, and how many times the capital in
//! stock was sold through.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::schema::{Fen, Millis, NetworkDocument, Period, SiteDocument};
use crate::time::DAY_MS;

use super::deliveries::{delivered_cost, deliveries};
use super::stock::is_on_hand;
use super::tree::SiteTree;
use super::{ReportError, ReportWarning, Tabular, check_period, round4, sat_sum};

/// One model at one site.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TurnoverRow {
    /// Site id.
    pub site: String,
    /// Model code.
    pub model: String,
    /// Cars on hand at `asOf` (in stock or reserved).
    pub on_hand: i64,
    /// Their recorded cost, in fen: the capital tied up.
    pub on_hand_cost: Fen,
    /// Cars delivered in the period by this site's customers.
    pub sold: i64,
    /// Their cost, in fen (the vehicle's record, else the catalogue's).
    pub sold_cost: Fen,
    /// onHand × days ÷ sold, to one decimal; `None` when nothing sold.
    pub days_of_supply: Option<f64>,
    /// soldCost ÷ onHandCost for the period, 4 decimals; `None` with nothing on hand.
    pub capital_turnover: Option<f64>,
    /// capitalTurnover × 365 ÷ days: the same pace over a year.
    pub annual_turnover: Option<f64>,
}

/// Days of supply and capital turnover for a period.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TurnoverReport {
    /// The period's key.
    pub period: String,
    /// The instant stock is counted at.
    pub as_of: Millis,
    /// Days of the period elapsed at `asOf` (all of it once it has ended), at least 1.
    pub days: i64,
    /// One row per site (tree order) and model (code order) with stock or sales.
    pub rows: Vec<TurnoverRow>,
    /// The same figures per model over every site covered.
    pub models: Vec<TurnoverRow>,
    /// Sites whose document this device holds, in tree order.
    pub sites_covered: Vec<String>,
    /// Sites whose document is not on this device: in none of the figures.
    pub sites_not_available: Vec<String>,
    /// What had to be assumed.
    pub warnings: Vec<ReportWarning>,
}

impl Tabular for TurnoverReport {
    type Row = TurnoverRow;
    fn rows(&self) -> Vec<TurnoverRow> {
        self.rows.clone()
    }
}

#[derive(Default)]
struct Cell {
    on_hand: i64,
    on_hand_cost: Fen,
    sold: i64,
    sold_cost: Fen,
}

fn row(site: &str, model: &str, c: &Cell, days: i64) -> TurnoverRow {
    let raw = (c.on_hand_cost > 0).then(|| c.sold_cost as f64 / c.on_hand_cost as f64);
    TurnoverRow {
        site: site.to_string(),
        model: model.to_string(),
        on_hand: c.on_hand,
        on_hand_cost: c.on_hand_cost,
        sold: c.sold,
        sold_cost: c.sold_cost,
        days_of_supply: (c.sold > 0)
            .then(|| ((c.on_hand * days) as f64 / c.sold as f64 * 10.0).round() / 10.0),
        capital_turnover: raw.map(round4),
        annual_turnover: raw.map(|t| round4(t * 365.0 / days as f64)),
    }
}

/// Days of supply and capital turnover per model and site for `period`, stock counted
/// at `now`.
pub fn turnover(
    network: &NetworkDocument,
    sites: &[&SiteDocument],
    period: Period,
    now: Millis,
) -> Result<TurnoverReport, ReportError> {
    let period = check_period(period)?;
    let tree = SiteTree::build(network, sites)?;
    let (sites_covered, sites_not_available) = tree.coverage();
    let (start, end) = period.range_millis();
    let elapsed = end.min(now).saturating_sub(start);
    let days = ((elapsed + DAY_MS - 1) / DAY_MS).max(1);
    let mut cells: BTreeMap<(usize, &str), Cell> = BTreeMap::new();
    for (idx, doc) in tree.docs() {
        for v in doc.vehicles.values().filter(|v| is_on_hand(v.status)) {
            let c = cells.entry((idx, v.model.as_str())).or_default();
            c.on_hand += 1;
            c.on_hand_cost = c.on_hand_cost.saturating_add(v.cost);
        }
    }
    let (sold, mut warnings) = deliveries(&tree, period);
    for d in &sold {
        let catalogue = network.models.get(d.model).map(|m| m.cost);
        let cost = delivered_cost(d, catalogue);
        if cost.is_none() {
            warnings.push(ReportWarning::UnknownModel {
                model: d.model.to_string(),
            });
        }
        let c = cells.entry((d.site, d.model)).or_default();
        c.sold += 1;
        c.sold_cost = c.sold_cost.saturating_add(cost.unwrap_or(0));
    }
    let mut per_model: BTreeMap<&str, Cell> = BTreeMap::new();
    let mut rows = Vec::with_capacity(cells.len());
    for ((idx, model), c) in &cells {
        rows.push(row(&tree.nodes[*idx].header.id, model, c, days));
        let m = per_model.entry(model).or_default();
        m.on_hand += c.on_hand;
        m.on_hand_cost = sat_sum([m.on_hand_cost, c.on_hand_cost]);
        m.sold += c.sold;
        m.sold_cost = sat_sum([m.sold_cost, c.sold_cost]);
    }
    let models = per_model
        .iter()
        .map(|(model, c)| row("", model, c, days))
        .collect();
    warnings.extend(tree.warnings.iter().cloned());
    warnings.sort();
    warnings.dedup();
    Ok(TurnoverReport {
        period: period.to_string(),
        as_of: now,
        days,
        rows,
        models,
        sites_covered,
        sites_not_available,
        warnings,
    })
}
