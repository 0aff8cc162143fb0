//! Who has and has not submitted next month's forecast by the deadline.
//!
//! Every site below head office reports its demand forecast upward each month (agents
//! to their distribution centre, distribution centres to head office) by the deadline
//! day of the network document, China Standard Time. Head office needs to know who is
//! late before it places the order with the manufacturer.

use chrono::NaiveDate;
use serde::Serialize;

use crate::schema::{
    DEFAULT_FORECAST_DEADLINE_DAY, Millis, NetworkDocument, Period, SiteChannel, SiteDocument,
    SiteKind,
};
use crate::time::cst_midnight;

use super::tree::SiteTree;
use super::{ReportError, ReportWarning, Tabular, expect_month, previous_month, sat_sum};

/// One day in milliseconds.
const DAY_MS: Millis = 86_400_000;

/// Where a site stands with its forecast for the month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubmissionStatus {
    /// Submitted before the deadline ended.
    OnTime,
    /// Submitted, but only after the deadline.
    Late,
    /// Nothing submitted and the deadline has passed.
    Missing,
    /// Nothing submitted yet, and there is still time.
    Pending,
    /// The site's document is not on this device: unknown, neither submitted nor not.
    NotAvailable,
}

/// One site's forecast submission for the month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmissionRow {
    /// Site id.
    pub site: String,
    /// Site name.
    pub site_name: String,
    /// Site kind.
    pub kind: SiteKind,
    /// Sales channel, if set.
    pub channel: Option<SiteChannel>,
    /// The site it reports to.
    pub parent: Option<String>,
    /// Depth in the tree (1 for a distribution centre), for indenting.
    pub depth: u32,
    /// On time, late, missing, pending or not available.
    pub status: SubmissionStatus,
    /// The earliest time written on the month's cells: when the site submitted.
    pub submitted_at: Option<Millis>,
    /// The latest: when the site last changed its forecast.
    pub last_changed_at: Option<Millis>,
    /// Models forecast.
    pub models: Option<i64>,
    /// Units the site submitted.
    pub submitted_units: Option<i64>,
    /// Models whose figure a distribution centre adjusted.
    pub adjusted_models: Option<i64>,
    /// Units that count in the roll-up: the adjusted figure where there is one.
    pub units: Option<i64>,
}

/// The forecast submissions for one month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ForecastSubmissions {
    /// The month forecast, `YYYY-MM`.
    pub month: String,
    /// The deadline's day of the month (in the month before).
    pub deadline_day: i64,
    /// The last CST day on which a submission is on time, `YYYY-MM-DD`.
    pub deadline_date: String,
    /// The first instant that is late: CST midnight after the deadline day (UTC ms).
    pub deadline: Millis,
    /// Every site below head office, in tree order.
    pub rows: Vec<SubmissionRow>,
    /// Sites on time.
    pub on_time: i64,
    /// Sites late.
    pub late: i64,
    /// Sites missing (deadline passed).
    pub missing: i64,
    /// Sites with time left.
    pub pending: i64,
    /// Sites whose document is not on this device.
    pub not_available: i64,
    /// What had to be assumed.
    pub warnings: Vec<ReportWarning>,
}

impl Tabular for ForecastSubmissions {
    type Row = SubmissionRow;
    fn rows(&self) -> Vec<SubmissionRow> {
        self.rows.clone()
    }
}

impl ForecastSubmissions {
    /// The row of a site.
    pub fn site(&self, site: &str) -> Option<&SubmissionRow> {
        self.rows.iter().find(|r| r.site == site)
    }

    /// Keeps the rows `keep` accepts (a manager's subtree) and recounts the totals.
    pub fn retain(&mut self, keep: impl Fn(&SubmissionRow) -> bool) {
        self.rows.retain(keep);
        self.count();
    }

    fn count(&mut self) {
        let n = |s: SubmissionStatus| self.rows.iter().filter(|r| r.status == s).count() as i64;
        (
            self.on_time,
            self.late,
            self.missing,
            self.pending,
            self.not_available,
        ) = (
            n(SubmissionStatus::OnTime),
            n(SubmissionStatus::Late),
            n(SubmissionStatus::Missing),
            n(SubmissionStatus::Pending),
            n(SubmissionStatus::NotAvailable),
        );
    }
}

/// The deadline day in force: the network document's when it is a day every month has
/// (1 to 28), else [`DEFAULT_FORECAST_DEADLINE_DAY`].
pub fn forecast_deadline_day(network: &NetworkDocument) -> i64 {
    network
        .forecast_deadline_day
        .filter(|d| (1..=28).contains(d))
        .unwrap_or(DEFAULT_FORECAST_DEADLINE_DAY)
}

/// Who has submitted the forecast for `month` by the deadline, at `now`: every site
/// that has a site above it (head office reports to nobody). A submission is on time
/// when its earliest cell was written before CST midnight ending the deadline day of
/// the month before `month`.
pub fn forecast_submissions(
    network: &NetworkDocument,
    sites: &[&SiteDocument],
    month: Period,
    now: Millis,
) -> Result<ForecastSubmissions, ReportError> {
    let (y, m) = expect_month("forecast submissions", month)?;
    let tree = SiteTree::build(network, sites)?;
    let key = month.to_string();
    let day = forecast_deadline_day(network);
    let Period::Month(py, pm) = previous_month(y, m) else {
        unreachable!("the month before a month is a month")
    };
    let last_day =
        NaiveDate::from_ymd_opt(py, pm, day as u32).ok_or(ReportError::InvalidPeriod(month))?;
    let deadline = cst_midnight(last_day).saturating_add(DAY_MS);
    let mut rows = Vec::new();
    for node in tree.nodes.iter().filter(|n| n.parent.is_some()) {
        let cells = node.doc.map(|d| d.forecasts.get(&key));
        let (status, figures) = match cells {
            None => (SubmissionStatus::NotAvailable, None),
            Some(None) => (missing_or_pending(now, deadline), Some(Vec::new())),
            Some(Some(c)) if c.is_empty() => (missing_or_pending(now, deadline), Some(Vec::new())),
            Some(Some(c)) => {
                let first = c.values().map(|e| e.at).min().unwrap_or(Millis::MAX);
                let status = if first < deadline {
                    SubmissionStatus::OnTime
                } else {
                    SubmissionStatus::Late
                };
                (status, Some(c.values().collect::<Vec<_>>()))
            }
        };
        let count = |f: &dyn Fn(&crate::schema::ForecastEntry) -> bool| {
            figures
                .as_ref()
                .map(|v| v.iter().filter(|e| f(e)).count() as i64)
        };
        rows.push(SubmissionRow {
            site: node.header.id.clone(),
            site_name: node.header.name.clone(),
            kind: node.header.kind,
            channel: node.header.channel,
            parent: node.parent.map(|p| tree.nodes[p].header.id.clone()),
            depth: node.depth,
            status,
            submitted_at: figures.as_ref().and_then(|v| v.iter().map(|e| e.at).min()),
            last_changed_at: figures.as_ref().and_then(|v| {
                v.iter()
                    .map(|e| e.adjusted.as_ref().map_or(e.at, |a| a.at.max(e.at)))
                    .max()
            }),
            models: count(&|_| true),
            submitted_units: figures
                .as_ref()
                .map(|v| sat_sum(v.iter().map(|e| e.quantity))),
            adjusted_models: count(&|e| e.adjusted.is_some()),
            units: figures
                .as_ref()
                .map(|v| sat_sum(v.iter().map(|e| e.effective()))),
        });
    }
    let mut report = ForecastSubmissions {
        month: key,
        deadline_day: day,
        deadline_date: last_day.format("%Y-%m-%d").to_string(),
        deadline,
        on_time: 0,
        late: 0,
        missing: 0,
        pending: 0,
        not_available: 0,
        rows,
        warnings: tree.warnings.clone(),
    };
    report.count();
    Ok(report)
}

/// Nothing submitted: missing once the deadline has passed, pending before.
fn missing_or_pending(now: Millis, deadline: Millis) -> SubmissionStatus {
    if now >= deadline {
        SubmissionStatus::Missing
    } else {
        SubmissionStatus::Pending
    }
}
