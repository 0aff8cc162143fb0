//! Consolidation reports for head office: pure functions over the network document and
//! the site documents.
//!
//! Every report takes the hydrated documents (no automerge, no I/O), the period or month
//! it is about and, where ages matter, `now`. Every result is a `Serialize` struct; the
//! tabular ones implement [`Tabular`] so the server can answer `?format=csv` and the CLI
//! can print a table from the same flat rows. The formulas, the time zone and the
//! rounding are defined in `docs/reports.md`; the code follows that page.
//!
//! - [`stock`] and [`ageing`]: network stock by model × site × status, days in stock and
//!   slow movers.
//! - [`pipeline`]: vehicles ordered or in transit, with their arrival dates.
//! - [`forecast_rollup`]: a month's forecasts summed up the site tree.
//! - [`forecast_submissions`]: who submitted next month's forecast by the deadline.
//! - [`order_plan`]: what to order from the manufacturer for a month, and the capital.
//! - [`kpis`]: activity, conversion and achievement per site and per consultant.
//! - [`sales_board`]: target vs achieved ranked for a sales contest.
//!
//! Reports never fail on odd data (a site missing from the tree, a model missing from
//! the catalogue, a loop in the tree): they count what the documents say and list what
//! they had to assume as [`ReportWarning`]s. They fail only on arguments that make no
//! sense ([`ReportError`]).

mod aggregate;
mod board;
mod contest;
mod forecast;
mod kpi;
mod order_plan;
mod stock;
mod submissions;
mod tree;

pub use aggregate::{AggregateSource, ComputeEach, SiteAggregate};
pub use board::{BoardLevel, BoardRow, SalesBoard, sales_board, sales_board_from};
pub use contest::{ContestStanding, TeamStanding, contest_standings};
pub use forecast::{ForecastRollup, ForecastRow, ModelTotal, forecast_rollup};
pub use kpi::{KpiLevel, KpiReport, KpiRow, kpis, kpis_from};
pub use order_plan::{OrderPlan, OrderPlanParams, OrderPlanRow, SafetyStock, order_plan};
pub use stock::{
    AgeingReport, AgeingRow, PipelineReport, PipelineRow, StockParams, StockReport, StockRow,
    ageing, pipeline, stock,
};
pub use submissions::{
    ForecastSubmissions, SubmissionRow, SubmissionStatus, forecast_deadline_day,
    forecast_submissions,
};

use serde::Serialize;

use crate::schema::{Millis, Period};
pub use crate::time::{cst_day, cst_days_between};

/// Slow-mover threshold used when the caller gives none: a vehicle more than 90 days in
/// stock is slow (the work plan's quarterly stock review).
pub const DEFAULT_SLOW_MOVER_DAYS: u32 = 90;

/// Arguments a report cannot work with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// Forecasts and order plans are monthly: the period must be a month (`YYYY-MM`).
    #[error("{report} is monthly: expected a month like 2026-04, got {period}")]
    NotAMonth {
        /// Which report was asked for.
        report: &'static str,
        /// The period given.
        period: Period,
    },
    /// A period built by hand with an impossible value (month 13, week 54, February
    /// 30th); parsed periods are always valid.
    #[error("invalid period {0:?}")]
    InvalidPeriod(Period),
    /// A period key read from a document (a contest's) that is not a period.
    #[error("{0:?} is not a period")]
    BadPeriodKey(String),
    /// Two site documents given for the same site id; figures would be counted twice.
    #[error("two site documents were given for site {0:?}")]
    DuplicateSite(String),
}

/// Something a report had to assume because the documents disagree or lack data. The
/// figures are still computed; the warning says how.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReportWarning {
    /// A site document whose site is not in the network tree: its header (kind,
    /// parent) is used instead, so its figures are not lost.
    SiteNotInNetwork {
        /// The site id.
        site: String,
    },
    /// A site names a parent that does not exist: it is treated as a root.
    UnknownParent {
        /// The site id.
        site: String,
        /// The missing parent.
        parent: String,
    },
    /// The parent links form a loop; the loop is cut above this site, which becomes a
    /// root.
    ParentCycle {
        /// The site where the loop was cut.
        site: String,
    },
    /// A model code not in the catalogue: no unit cost, so no capital for it.
    UnknownModel {
        /// The model code.
        model: String,
    },
    /// A vehicle on hand without an arrival date: no days in stock, never a slow mover.
    MissingArrival {
        /// The site holding it.
        site: String,
        /// Its VIN.
        vin: String,
    },
    /// A delivery whose model could be found neither from its VIN nor from the
    /// customer's model of interest: not counted in sales by model.
    DeliveryWithoutModel {
        /// The site.
        site: String,
        /// The customer id.
        customer: String,
        /// When it was delivered.
        at: Millis,
    },
    /// A delivery with no amount, and no earlier order with one: counted as a unit with
    /// zero revenue.
    UnpricedDelivery {
        /// The site.
        site: String,
        /// The customer id.
        customer: String,
        /// When it was delivered.
        at: Millis,
    },
}

/// A report that is one table of flat rows (strings, numbers, booleans, nulls), so it
/// can be written as CSV or printed as a table as well as sent as JSON.
pub trait Tabular {
    /// One line of the table; a flat struct, serialised with camelCase names.
    type Row: Serialize;
    /// The table's lines, in the report's order.
    fn rows(&self) -> Vec<Self::Row>;
}

/// `num / den` rounded to 4 decimal places, or `None` when the denominator is zero or
/// negative (a rate over nothing is unknown, not zero and not NaN).
pub fn ratio(num: i64, den: i64) -> Option<f64> {
    if den <= 0 {
        return None;
    }
    Some(round4(num as f64 / den as f64))
}

/// Rounds half away from zero to 4 decimal places (0.66666 → 0.6667), the precision
/// every rate in these reports is given at.
pub fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// Sum of money or quantities read from documents. A foreign client can write any
/// integer, so sums saturate at the ends of the i64 range instead of overflowing (a
/// panic in a debug build, a wrapped, meaningless figure in a release build).
pub(crate) fn sat_sum(values: impl IntoIterator<Item = i64>) -> i64 {
    values.into_iter().fold(0, i64::saturating_add)
}

/// Checks a period before computing its range, which would panic on an impossible
/// one: a valid period is exactly one that prints and parses back to itself.
fn check_period(period: Period) -> Result<Period, ReportError> {
    match period.to_string().parse::<Period>() {
        Ok(p) if p == period => Ok(period),
        _ => Err(ReportError::InvalidPeriod(period)),
    }
}

/// The month a monthly report is about, or [`ReportError::NotAMonth`].
fn expect_month(report: &'static str, period: Period) -> Result<(i32, u32), ReportError> {
    match check_period(period)? {
        Period::Month(y, m) => Ok((y, m)),
        other => Err(ReportError::NotAMonth {
            report,
            period: other,
        }),
    }
}

/// The calendar month before `(y, m)`.
fn previous_month(y: i32, m: u32) -> Period {
    if m == 1 {
        Period::Month(y - 1, 12)
    } else {
        Period::Month(y, m - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_rounds_and_refuses_zero_denominators() {
        assert_eq!(ratio(2, 3), Some(0.6667));
        assert_eq!(ratio(1, 8), Some(0.125));
        assert_eq!(ratio(5, 0), None);
        assert_eq!(ratio(0, 0), None);
        assert_eq!(ratio(0, 4), Some(0.0));
    }
}
