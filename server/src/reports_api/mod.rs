//! Head office's reports served by the relay: `GET /api/reports/{kind}` as JSON, CSV or
//! XLSX, computed by `dealersync_core::reports` (the same code as the field CLI) over
//! the [`ReadModel`], and `GET /api/reports/events`, the change stream live boards
//! re-fetch on. Targets, the catalogue and contests are written through
//! [`planning`].
//!
//! Access: a report covers the documents the caller may read under the one policy
//! (`core::access`): a consultant his site, a manager his subtree, head office and
//! admins everything. Its scope is a subtree (`?site=`, by default the caller's own
//! site for consultants and managers, the whole network otherwise); a site of the
//! scope whose document the caller may not read or that is missing is reported as
//! not available, never as zeros. A `site` outside what the caller may read is
//! answered 404, exactly as one that does not exist.

pub mod conflicts;
pub mod events;
pub mod export;
mod incremental;
pub mod openapi;
pub mod planning;

pub mod read_model;
mod scope;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRef, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use dealersync_core::reports::{self, OrderPlanParams, SafetyStock, StockParams, Tabular};
use dealersync_core::schema::Period;
use dealersync_core::time::{month_key, now_ms};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::error::ApiError;
use crate::api::extract::{Caller, blocking};
use crate::auth::Authenticator;
use crate::registry::{DocumentWriter, Registry};
use crate::storage::SqliteStore;
pub use read_model::{ReadModel, ReportChange, UpdateCounts};
pub use scope::Scope;

/// The report kinds `GET /api/reports/{kind}` answers.
pub const KINDS: [&str; 9] = [
    "stock",
    "ageing",
    "pipeline",
    "forecast",
    "forecast-submissions",
    "order-plan",
    "kpi",
    "board",
    "conflicts",
];

/// How long a request waits for the read model's first load before it is answered 503.
const LOAD_WAIT: Duration = Duration::from_secs(30);

/// What the report and planning handlers share.
#[derive(Clone)]
pub struct ReportsState {
    /// Verifies tokens.
    pub auth: Arc<Authenticator>,
    /// The site tree and the access policy.
    pub registry: Arc<Registry>,
    /// Hydrated documents and aggregates.
    pub model: Arc<ReadModel>,
    /// Writes through the relay's engine: durable before acknowledged, pushed to
    /// connected devices.
    pub documents: Arc<dyn DocumentWriter>,
}

impl FromRef<ReportsState> for Arc<Authenticator> {
    fn from_ref(s: &ReportsState) -> Self {
        s.auth.clone()
    }
}

impl FromRef<ReportsState> for Arc<Registry> {
    fn from_ref(s: &ReportsState) -> Self {
        s.registry.clone()
    }
}

/// Opens the read model's store connection in `data_dir`, and starts
/// following `relay`'s commits (on a thread of its own); returns the routes.
pub fn start(
    auth: Arc<Authenticator>,
    registry: Arc<Registry>,
    data_dir: &std::path::Path,
    relay: &crate::relay::RelayHandle,
    documents: Arc<dyn DocumentWriter>,
) -> Result<Router, crate::storage::OpenError> {
    let options = crate::storage::StoreOptions::default();
    let model = ReadModel::new(SqliteStore::open(data_dir, &options)?, registry.clone());
    model.start_following(relay.subscribe_commits());
    Ok(router(ReportsState {
        auth,
        registry,
        model,
        documents,
    }))
}

/// The `/api/reports/*` and planning routes.
pub fn router(state: ReportsState) -> Router {
    Router::new()
        .route("/api/openapi.json", get(openapi::serve))
        .route("/api/reports/events", get(events::stream))
        .route("/api/reports/{kind}", get(report))
        .merge(planning::routes())
        .merge(conflicts::routes())
        .with_state(state)
}

/// The query of every report route; each report uses what applies to it.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReportQuery {
    /// `2026`, `2026-Q4`, `2026-11`, `2026-W45`, `2026-11-03` (CST); the current
    /// month when absent. Forecasts and the order plan need a month.
    pub period: Option<String>,
    /// The subtree to report on.
    pub site: Option<String>,
    /// KPI and board rows of these levels only (comma-separated: `region`, `site`,
    /// `team`, `consultant`).
    pub level: Option<String>,
    /// Stock: sum the rows by these columns (comma-separated: `model`, `site`,
    /// `status`).
    pub group: Option<String>,
    /// `json` (default), `csv` or `xlsx`.
    pub format: Option<String>,
    /// Spreadsheet headers: `zh` (default) or `en`.
    pub lang: Option<String>,
    /// Ageing and order plan: the slow-mover threshold in days.
    pub slow_mover_days: Option<u32>,
    /// Order plan: safety stock as a percentage of the forecast.
    pub safety_percent: Option<u32>,
    /// Order plan: safety stock as a fixed number of units per model.
    pub safety_units: Option<u32>,
    /// The token, for clients that cannot set a header (an `EventSource`).
    pub token: Option<String>,
}

/// A computed report: the JSON answer, and its flat rows for spreadsheets.
pub struct Computed {
    /// The report as JSON.
    pub json: Value,
    /// Flat rows (objects), in order, for CSV and XLSX.
    pub rows: Vec<Value>,
}

/// The report as JSON, and its flat rows when `q` asks for a spreadsheet (a JSON
/// answer does not pay for them).
fn computed<R: Serialize + Tabular>(r: &R, q: &ReportQuery) -> Result<Computed, ApiError> {
    let json = serde_json::to_value(r).map_err(internal)?;
    let spreadsheet = matches!(q.format.as_deref(), Some("csv" | "xlsx"));
    let rows = if spreadsheet {
        r.rows()
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<_, _>>()
            .map_err(internal)?
    } else {
        Vec::new()
    };
    Ok(Computed { json, rows })
}

pub(crate) fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
}

fn report_error(e: reports::ReportError) -> ApiError {
    ApiError::bad_request(e.to_string())
}

/// The period of `?period=`, the current CST month by default.
pub fn period_of(q: &ReportQuery, now: i64) -> Result<Period, ApiError> {
    let text = q.period.clone().unwrap_or_else(|| month_key(now));
    text.parse::<Period>().map_err(|e| {
        ApiError::bad_request(format!(
            "bad period {:?}: {e}; use 2026, 2026-Q4, 2026-11, 2026-W45 or 2026-11-03",
            crate::telemetry::clip(&text)
        ))
    })
}

async fn report(
    State(st): State<ReportsState>,
    caller: Caller,
    Path(kind): Path<String>,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    if !KINDS.contains(&kind.as_str()) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "no report {:?}; reports: {}",
                crate::telemetry::clip(&kind),
                KINDS.join(", ")
            ),
        ));
    }
    let format = export::ReportFormat::parse(q.format.as_deref(), q.lang.as_deref())?;
    loaded(&st).await?;
    let name = kind.clone();
    let computed = blocking(move || {
        let snapshot = st.model.snapshot();
        let scope = Scope::new(&st.registry, &caller, &snapshot, q.site.as_deref())?;
        compute(&name, &q, &scope, Some((&st.registry, &caller)))
    })
    .await?;
    export::respond(&kind, computed, format)
}

/// Waits for the read model's first load, at most [`LOAD_WAIT`]: then 503 `loading`.
pub(crate) async fn loaded(st: &ReportsState) -> Result<(), ApiError> {
    match tokio::time::timeout(LOAD_WAIT, st.model.wait_ready()).await {
        Ok(()) => Ok(()),
        Err(_) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "loading",
            "the reports are still loading the documents; retry in a moment",
        )),
    }
}

/// Computes report `kind` for `scope`. The conflict report says what the caller may
/// settle, which needs the registry and the caller; without them it is refused.
pub fn compute(
    kind: &str,
    q: &ReportQuery,
    scope: &Scope,
    access: Option<(&Registry, &Caller)>,
) -> Result<Computed, ApiError> {
    let now = now_ms();
    let net = &scope.network;
    let docs = scope.docs();
    let slow = q
        .slow_mover_days
        .unwrap_or(reports::DEFAULT_SLOW_MOVER_DAYS);
    let mut out = match kind {
        "stock" => {
            let mut c = computed(&reports::stock(net, &docs).map_err(report_error)?, q)?;
            if let Some(group) = q.group.as_deref() {
                let all = c.json["rows"].as_array().cloned().unwrap_or_default();
                let grouped = export::group_rows(&all, group, &["count", "costValue"])?;
                if !c.rows.is_empty() {
                    c.rows = grouped.clone();
                }
                c.json["rows"] = Value::Array(grouped);
            }
            c
        }
        "ageing" => {
            let params = StockParams {
                slow_mover_days: slow,
            };
            computed(
                &reports::ageing(net, &docs, now, &params).map_err(report_error)?,
                q,
            )?
        }
        "pipeline" => computed(
            &reports::pipeline(net, &docs, now).map_err(report_error)?,
            q,
        )?,
        "forecast" => {
            let p = period_of(q, now)?;
            computed(
                &reports::forecast_rollup(net, &docs, p).map_err(report_error)?,
                q,
            )?
        }
        "forecast-submissions" => {
            let p = period_of(q, now)?;
            computed(
                &reports::forecast_submissions(net, &docs, p, now).map_err(report_error)?,
                q,
            )?
        }
        "order-plan" => {
            let p = period_of(q, now)?;
            let safety_stock = match (q.safety_percent, q.safety_units) {
                (Some(_), Some(_)) => {
                    return Err(ApiError::bad_request(
                        "give safetyPercent or safetyUnits, not both",
                    ));
                }
                (Some(p), None) => SafetyStock::PercentOfForecast(p),
                (None, Some(n)) => SafetyStock::Units(n),
                (None, None) => SafetyStock::default(),
            };
            let params = OrderPlanParams {
                safety_stock,
                slow_mover_days: slow,
            };
            computed(
                &reports::order_plan(net, &docs, p, now, &params).map_err(report_error)?,
                q,
            )?
        }
        "kpi" => {
            let p = period_of(q, now)?;
            computed(
                &reports::kpis_from(net, &docs, p, &scope.snapshot).map_err(report_error)?,
                q,
            )?
        }
        "board" => {
            let p = period_of(q, now)?;
            let board =
                reports::sales_board_from(net, &docs, p, &scope.snapshot).map_err(report_error)?;
            let mut c = computed(&board, q)?;
            c.json["contests"] =
                serde_json::to_value(planning::standings(scope)).map_err(internal)?;
            c
        }
        "conflicts" => match access {
            Some((registry, caller)) => scope.conflicts(registry, caller)?,
            None => {
                return Err(internal(
                    "the conflict report needs the registry and the caller",
                ));
            }
        },
        other => return Err(ApiError::bad_request(format!("no report {other}"))),
    };
    if let Some(levels) = q.level.as_deref() {
        export::keep_levels(&mut out, levels)?;
    }
    Ok(out)
}
