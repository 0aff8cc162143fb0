//! The monthly order plan: how many of each model head office orders from the
//! manufacturer, and the capital it ties up.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::schema::{Fen, Millis, NetworkDocument, Period, SiteDocument, VehicleStatus};

use super::deliveries::deliveries_by_model;
use super::forecast::rollup_on;
use super::stock::is_slow_mover;
use super::tree::SiteTree;
use super::{
    DEFAULT_SLOW_MOVER_DAYS, ReportError, ReportWarning, Tabular, expect_month, previous_month,
    sat_sum,
};

/// How much buffer stock to plan above the forecast, per model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "camelCase")]
pub enum SafetyStock {
    /// A fixed number of units for every model with a positive forecast.
    Units(u32),
    /// A percentage of the model's network forecast, rounded up to whole vehicles.
    PercentOfForecast(u32),
}

impl Default for SafetyStock {
    /// 10 % of the forecast: the buffer grows with demand (a fixed count over-stocks
    /// slow models and under-covers the best sellers), and rounding up keeps at least
    /// one vehicle of buffer on any model somebody expects to sell.
    fn default() -> Self {
        SafetyStock::PercentOfForecast(10)
    }
}

impl SafetyStock {
    /// Safety stock for a model with this forecast; none for a model nobody expects to
    /// sell.
    pub fn for_forecast(self, forecast: i64) -> i64 {
        if forecast <= 0 {
            return 0;
        }
        match self {
            SafetyStock::Units(n) => i64::from(n),
            SafetyStock::PercentOfForecast(p) => {
                // Integer ceiling of forecast × p / 100: no float rounding surprises.
                forecast.saturating_mul(i64::from(p)).saturating_add(99) / 100
            }
        }
    }
}

/// Parameters of the order plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderPlanParams {
    /// Buffer above the forecast.
    pub safety_stock: SafetyStock,
    /// Threshold for the slow-mover flags.
    pub slow_mover_days: u32,
}

impl Default for OrderPlanParams {
    fn default() -> Self {
        OrderPlanParams {
            safety_stock: SafetyStock::default(),
            slow_mover_days: DEFAULT_SLOW_MOVER_DAYS,
        }
    }
}

/// One model in the order plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderPlanRow {
    /// Model code.
    pub model: String,
    /// Name from the catalogue, if the model is in it.
    pub model_name: Option<String>,
    /// Network forecast for the month (root totals of the roll-up).
    pub forecast: i64,
    /// Safety stock for this model.
    pub safety_stock: i64,
    /// Available vehicles (status `in_stock`) across the network.
    pub in_stock: i64,
    /// Vehicles on the way to a site (status `in_transit`).
    pub in_transit: i64,
    /// Vehicles ordered from the manufacturer, not yet shipped (status `ordered`).
    pub on_order: i64,
    /// Units the slow movers take off the order: one per slow mover (see
    /// docs/reports.md).
    pub slow_mover_reduction: i64,
    /// Units to order: forecast + safety stock − in stock − in transit − on order −
    /// slow-mover reduction, not below zero.
    pub quantity: i64,
    /// Catalogue cost per unit, in fen; `None` for a model not in the catalogue.
    pub unit_cost: Option<Fen>,
    /// quantity × unit cost, in fen.
    pub capital: Option<Fen>,
    /// Available vehicles of this model older than the slow-mover threshold.
    pub slow_movers: i64,
    /// Deliveries of this model in the last full month (`salesMonth`), for context.
    pub last_month_sales: i64,
}

/// The order plan for a month.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderPlan {
    /// The month ordered for, `YYYY-MM`.
    pub month: String,
    /// The month whose deliveries are shown as `lastMonthSales`: the last calendar
    /// month that had ended at `asOf` (CST), and before the plan month.
    pub sales_month: String,
    /// The instant stock and ages are measured at.
    pub as_of: Millis,
    /// Parameters used.
    pub params: OrderPlanParams,
    /// One row per model in the catalogue, forecast or stock, by model code.
    pub rows: Vec<OrderPlanRow>,
    /// Units to order in all.
    pub total_quantity: i64,
    /// Capital tied up by the order, in fen (models with a known cost).
    pub total_capital: Fen,
    /// Sites whose document this device holds, in tree order.
    pub sites_covered: Vec<String>,
    /// Sites whose document is not on this device, in tree order: their vehicles are
    /// in none of the figures (not zero: unknown).
    pub sites_not_available: Vec<String>,
    /// What had to be assumed.
    pub warnings: Vec<ReportWarning>,
}

impl Tabular for OrderPlan {
    type Row = OrderPlanRow;
    fn rows(&self) -> Vec<OrderPlanRow> {
        self.rows.clone()
    }
}

/// The last calendar month wholly before both `now` (CST) and the plan month `(y, m)`:
/// a plan for May made on April 15th shows March, not half of April.
fn last_full_month(y: i32, m: u32, now: Millis) -> Period {
    let before_plan = previous_month(y, m);
    let before_now = match crate::time::month_key(now).parse::<Period>() {
        Ok(Period::Month(ny, nm)) => previous_month(ny, nm),
        _ => before_plan,
    };
    before_plan.min(before_now)
}

/// The order plan for `month`, from the forecasts for that month, the stock and
/// pipeline at `now`, and the last full month's deliveries.
pub fn order_plan(
    network: &NetworkDocument,
    sites: &[&SiteDocument],
    month: Period,
    now: Millis,
    params: &OrderPlanParams,
) -> Result<OrderPlan, ReportError> {
    let (y, m) = expect_month("the order plan", month)?;
    let sales_month = last_full_month(y, m, now);
    let tree = SiteTree::build(network, sites)?;
    let (sites_covered, sites_not_available) = tree.coverage();
    let rollup = rollup_on(&tree, month);
    let mut warnings = tree.warnings.clone();

    #[derive(Default)]
    struct Stock {
        in_stock: i64,
        in_transit: i64,
        on_order: i64,
        slow: i64,
    }
    let mut stock: BTreeMap<&str, Stock> = BTreeMap::new();
    for (_, doc) in tree.docs() {
        for v in doc.vehicles.values() {
            let s = stock.entry(&v.model).or_default();
            match v.status {
                VehicleStatus::InStock => s.in_stock += 1,
                VehicleStatus::InTransit => s.in_transit += 1,
                VehicleStatus::Ordered => s.on_order += 1,
                // Reserved and sold cars cover no future demand; delivered and
                // transferred-out ones are gone. The model still gets a row.
                _ => {}
            }
            if is_slow_mover(v, now, params.slow_mover_days) {
                s.slow += 1;
            }
        }
    }
    let (sales, sales_warnings) = deliveries_by_model(&tree, sales_month);
    warnings.extend(sales_warnings);

    let models: BTreeSet<&str> = network
        .models
        .keys()
        .map(String::as_str)
        .chain(rollup.network_totals.iter().map(|t| t.model.as_str()))
        .chain(stock.keys().copied())
        .chain(sales.keys().map(String::as_str))
        .collect();
    let mut rows = Vec::with_capacity(models.len());
    for model in models {
        let catalogue = network.models.get(model);
        if catalogue.is_none() {
            warnings.push(ReportWarning::UnknownModel {
                model: model.to_string(),
            });
        }
        let forecast = rollup.network_total(model);
        let safety_stock = params.safety_stock.for_forecast(forecast);
        let s = stock.get(model);
        let (in_stock, in_transit, on_order, slow_movers) = s.map_or((0, 0, 0, 0), |s| {
            (s.in_stock, s.in_transit, s.on_order, s.slow)
        });
        // A car unsold for months says the model is over-supplied: each slow mover
        // takes one more unit off the order, on top of covering demand as stock.
        let slow_mover_reduction = slow_movers;
        let quantity = forecast
            .saturating_add(safety_stock)
            .saturating_sub(in_stock)
            .saturating_sub(in_transit)
            .saturating_sub(on_order)
            .saturating_sub(slow_mover_reduction)
            .max(0);
        let unit_cost = catalogue.map(|c| c.cost);
        rows.push(OrderPlanRow {
            model: model.to_string(),
            model_name: catalogue.map(|c| c.name.clone()),
            forecast,
            safety_stock,
            in_stock,
            in_transit,
            on_order,
            slow_mover_reduction,
            quantity,
            unit_cost,
            capital: unit_cost.map(|c| c.saturating_mul(quantity)),
            slow_movers,
            last_month_sales: sales.get(model).copied().unwrap_or(0),
        });
    }
    warnings.sort();
    warnings.dedup();
    Ok(OrderPlan {
        sites_covered,
        sites_not_available,
        month: month.to_string(),
        sales_month: sales_month.to_string(),
        as_of: now,
        params: *params,
        total_quantity: sat_sum(rows.iter().map(|r| r.quantity)),
        total_capital: sat_sum(rows.iter().filter_map(|r| r.capital)),
        rows,
        warnings,
    })
}
