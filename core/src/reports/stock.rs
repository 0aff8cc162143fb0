//! Network stock by model × site × status, and its ageing.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::schema::{Fen, Millis, NetworkDocument, SiteDocument, Vehicle, VehicleStatus};

use super::tree::SiteTree;
use super::{
    DEFAULT_SLOW_MOVER_DAYS, ReportError, ReportWarning, Tabular, cst_days_between, sat_sum,
};

/// Statuses that are stock of a site: ordered for it, on the way, or there. Delivered
/// and transferred-out vehicles are history at that site, not stock.
pub(crate) fn is_stock(status: VehicleStatus) -> bool {
    !matches!(
        status,
        VehicleStatus::Delivered | VehicleStatus::TransferredOut
    )
}

/// Statuses of a vehicle standing at the site unsold, whose days in stock matter.
pub(crate) fn is_on_hand(status: VehicleStatus) -> bool {
    matches!(status, VehicleStatus::InStock | VehicleStatus::Reserved)
}

/// Days in stock at `now` (CST calendar days since arrival), if the arrival is known.
pub(crate) fn days_in_stock(v: &Vehicle, now: Millis) -> Option<i64> {
    v.arrived_at.map(|a| cst_days_between(a, now))
}

/// Whether a vehicle is a slow mover: available (in stock, not reserved) for more than
/// `threshold` days.
pub(crate) fn is_slow_mover(v: &Vehicle, now: Millis, threshold: u32) -> bool {
    v.status == VehicleStatus::InStock
        && days_in_stock(v, now).is_some_and(|d| d > i64::from(threshold))
}

/// Parameters of the ageing report and of slow-mover flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StockParams {
    /// A vehicle available for more than this many days is a slow mover.
    pub slow_mover_days: u32,
}

impl Default for StockParams {
    fn default() -> Self {
        StockParams {
            slow_mover_days: DEFAULT_SLOW_MOVER_DAYS,
        }
    }
}

/// Vehicles of one model at one site in one status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StockRow {
    /// Model code.
    pub model: String,
    /// Model name from the catalogue, if the model is in it.
    pub model_name: Option<String>,
    /// Site id.
    pub site: String,
    /// Site name.
    pub site_name: String,
    /// Vehicle status.
    pub status: VehicleStatus,
    /// Number of vehicles.
    pub count: i64,
    /// Sum of the vehicles' own recorded cost, in fen.
    pub cost_value: Fen,
}

/// Network stock: one row per model × site × status that has vehicles.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StockReport {
    /// Rows by model code, then site in tree order, then status in lifecycle order.
    pub rows: Vec<StockRow>,
    /// Vehicles counted.
    pub total_count: i64,
    /// Their cost, in fen.
    pub total_cost_value: Fen,
    /// Sites whose document this device holds, in tree order.
    pub sites_covered: Vec<String>,
    /// Sites whose document is not on this device, in tree order: their vehicles are
    /// in none of the figures (not zero: unknown).
    pub sites_not_available: Vec<String>,
    /// What had to be assumed.
    pub warnings: Vec<ReportWarning>,
}

impl Tabular for StockReport {
    type Row = StockRow;
    fn rows(&self) -> Vec<StockRow> {
        self.rows.clone()
    }
}

/// Network stock by model × site × status (delivered and transferred-out vehicles are
/// not stock). Stock is a snapshot of the vehicle statuses now, so it needs no period.
pub fn stock(
    network: &NetworkDocument,
    sites: &[&SiteDocument],
) -> Result<StockReport, ReportError> {
    let tree = SiteTree::build(network, sites)?;
    let (sites_covered, sites_not_available) = tree.coverage();
    // (model, site index, status) → (count, cost)
    let mut cells: BTreeMap<(&str, usize, VehicleStatus), (i64, Fen)> = BTreeMap::new();
    for (idx, doc) in tree.docs() {
        for v in doc.vehicles.values().filter(|v| is_stock(v.status)) {
            let cell = cells.entry((&v.model, idx, v.status)).or_default();
            cell.0 += 1;
            cell.1 = cell.1.saturating_add(v.cost);
        }
    }
    let rows: Vec<StockRow> = cells
        .into_iter()
        .map(|((model, idx, status), (count, cost_value))| StockRow {
            model: model.to_string(),
            model_name: network.models.get(model).map(|m| m.name.clone()),
            site: tree.nodes[idx].header.id.clone(),
            site_name: tree.nodes[idx].header.name.clone(),
            status,
            count,
            cost_value,
        })
        .collect();
    Ok(StockReport {
        sites_covered,
        sites_not_available,
        total_count: rows.iter().map(|r| r.count).sum(),
        total_cost_value: sat_sum(rows.iter().map(|r| r.cost_value)),
        rows,
        warnings: tree.warnings,
    })
}

/// One vehicle on hand and its age.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgeingRow {
    /// Site id.
    pub site: String,
    /// VIN.
    pub vin: String,
    /// Model code.
    pub model: String,
    /// `in_stock` or `reserved`.
    pub status: VehicleStatus,
    /// Arrival, UTC milliseconds.
    pub arrived_at: Option<Millis>,
    /// CST calendar days from arrival to now; `None` without an arrival date.
    pub days_in_stock: Option<i64>,
    /// The vehicle's recorded cost, in fen.
    pub cost: Fen,
    /// Available for more than the threshold.
    pub slow_mover: bool,
}

/// Days in stock of every vehicle on hand, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgeingReport {
    /// The instant ages are measured at.
    pub as_of: Millis,
    /// The slow-mover threshold used.
    pub slow_mover_days: u32,
    /// Vehicles by days in stock, oldest first (unknown ages last), then site and VIN.
    pub rows: Vec<AgeingRow>,
    /// Number of slow movers.
    pub slow_movers: i64,
    /// Their cost, in fen: the capital they tie up.
    pub slow_mover_cost: Fen,
    /// Sites whose document this device holds, in tree order.
    pub sites_covered: Vec<String>,
    /// Sites whose document is not on this device, in tree order: their vehicles are
    /// in none of the figures (not zero: unknown).
    pub sites_not_available: Vec<String>,
    /// What had to be assumed.
    pub warnings: Vec<ReportWarning>,
}

impl Tabular for AgeingReport {
    type Row = AgeingRow;
    fn rows(&self) -> Vec<AgeingRow> {
        self.rows.clone()
    }
}

/// Days in stock of every vehicle in stock or reserved, and the slow movers among them.
pub fn ageing(
    network: &NetworkDocument,
    sites: &[&SiteDocument],
    now: Millis,
    params: &StockParams,
) -> Result<AgeingReport, ReportError> {
    let tree = SiteTree::build(network, sites)?;
    let (sites_covered, sites_not_available) = tree.coverage();
    let mut warnings = tree.warnings.clone();
    let mut keyed: Vec<((Option<i64>, usize), AgeingRow)> = Vec::new();
    for (idx, doc) in tree.docs() {
        for v in doc.vehicles.values().filter(|v| is_on_hand(v.status)) {
            let days = days_in_stock(v, now);
            if days.is_none() {
                warnings.push(ReportWarning::MissingArrival {
                    site: doc.site.id.clone(),
                    vin: v.vin.clone(),
                });
            }
            let row = AgeingRow {
                site: tree.nodes[idx].header.id.clone(),
                vin: v.vin.clone(),
                model: v.model.clone(),
                status: v.status,
                arrived_at: v.arrived_at,
                days_in_stock: days,
                cost: v.cost,
                slow_mover: is_slow_mover(v, now, params.slow_mover_days),
            };
            keyed.push(((days, idx), row));
        }
    }
    // Oldest first; `None` (unknown) after every known age.
    keyed.sort_by(|((da, ia), ra), ((db, ib), rb)| {
        let age = |d: &Option<i64>| d.map_or(i64::MIN, |d| d);
        age(db)
            .cmp(&age(da))
            .then(ia.cmp(ib))
            .then(ra.vin.cmp(&rb.vin))
    });
    let rows: Vec<AgeingRow> = keyed.into_iter().map(|(_, r)| r).collect();
    warnings.sort();
    Ok(AgeingReport {
        sites_covered,
        sites_not_available,
        as_of: now,
        slow_mover_days: params.slow_mover_days,
        slow_movers: rows.iter().filter(|r| r.slow_mover).count() as i64,
        slow_mover_cost: sat_sum(rows.iter().filter(|r| r.slow_mover).map(|r| r.cost)),
        rows,
        warnings,
    })
}

/// The CST calendar date of an instant, `YYYY-MM-DD`, for people reading an ETA.
fn cst_date(t: Millis) -> String {
    let days = super::cst_day(t);
    chrono::NaiveDate::from_num_days_from_ce_opt(
        i32::try_from(days + 719_163).unwrap_or(i32::MAX), // 0001-01-01 → 1970-01-01
    )
    .map_or_else(|| "?".to_string(), |d| d.format("%Y-%m-%d").to_string())
}

/// One vehicle on its way: ordered from the manufacturer or in transit to a site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineRow {
    /// The site it is for.
    pub site: String,
    /// VIN.
    pub vin: String,
    /// Model code.
    pub model: String,
    /// `ordered` or `in_transit`.
    pub status: VehicleStatus,
    /// Expected arrival, UTC milliseconds.
    pub eta: Option<Millis>,
    /// Expected arrival date in CST, `YYYY-MM-DD`.
    pub eta_date: Option<String>,
    /// The site sending it, for a transfer between sites.
    pub transfer_from: Option<String>,
    /// Its recorded cost, in fen.
    pub cost: Fen,
    /// The expected arrival has passed.
    pub overdue: bool,
}

/// In-transit and on-order vehicles with their arrival dates.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineReport {
    /// The instant overdue is judged at.
    pub as_of: Millis,
    /// Soonest arrival first (unknown last), then site in tree order, then VIN.
    pub rows: Vec<PipelineRow>,
    /// Vehicles in transit.
    pub in_transit: i64,
    /// Vehicles ordered, not yet shipped.
    pub on_order: i64,
    /// Vehicles past their expected arrival.
    pub overdue: i64,
    /// Cost of the whole pipeline, in fen.
    pub cost_value: Fen,
    /// Sites whose document this device holds, in tree order.
    pub sites_covered: Vec<String>,
    /// Sites whose document is not on this device, in tree order: their vehicles are
    /// in none of the figures (not zero: unknown).
    pub sites_not_available: Vec<String>,
    /// What had to be assumed.
    pub warnings: Vec<ReportWarning>,
}

impl Tabular for PipelineReport {
    type Row = PipelineRow;
    fn rows(&self) -> Vec<PipelineRow> {
        self.rows.clone()
    }
}

/// Every vehicle ordered or in transit, with its expected arrival; overdue when the
/// arrival is before `now`.
pub fn pipeline(
    network: &NetworkDocument,
    sites: &[&SiteDocument],
    now: Millis,
) -> Result<PipelineReport, ReportError> {
    let tree = SiteTree::build(network, sites)?;
    let (sites_covered, sites_not_available) = tree.coverage();
    let mut keyed: Vec<((Option<Millis>, usize), PipelineRow)> = Vec::new();
    for (idx, doc) in tree.docs() {
        let incoming = doc
            .vehicles
            .values()
            .filter(|v| matches!(v.status, VehicleStatus::Ordered | VehicleStatus::InTransit));
        for v in incoming {
            let row = PipelineRow {
                site: tree.nodes[idx].header.id.clone(),
                vin: v.vin.clone(),
                model: v.model.clone(),
                status: v.status,
                eta: v.eta,
                eta_date: v.eta.map(cst_date),
                transfer_from: v.transfer_from.clone(),
                cost: v.cost,
                overdue: v.eta.is_some_and(|e| e < now),
            };
            keyed.push(((v.eta, idx), row));
        }
    }
    keyed.sort_by(|((ea, ia), ra), ((eb, ib), rb)| {
        let eta = |e: &Option<Millis>| e.unwrap_or(Millis::MAX);
        eta(ea)
            .cmp(&eta(eb))
            .then(ia.cmp(ib))
            .then(ra.vin.cmp(&rb.vin))
    });
    let rows: Vec<PipelineRow> = keyed.into_iter().map(|(_, r)| r).collect();
    let count = |s: VehicleStatus| rows.iter().filter(|r| r.status == s).count() as i64;
    Ok(PipelineReport {
        sites_covered,
        sites_not_available,
        as_of: now,
        in_transit: count(VehicleStatus::InTransit),
        on_order: count(VehicleStatus::Ordered),
        overdue: rows.iter().filter(|r| r.overdue).count() as i64,
        cost_value: sat_sum(rows.iter().map(|r| r.cost)),
        rows,
        warnings: tree.warnings,
    })
}
