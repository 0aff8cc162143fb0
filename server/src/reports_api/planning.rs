//! Targets, the model catalogue, discount limits and sales contests, written by the
//! people who own them through validated `core::domain` operations that go through
//! the relay's engine ([`crate::relay::RelayDocuments`]: durable before the answer,
//! pushed to connected devices at once).
//!
//! Who may write what (on top of the document policy of `core::access`):
//! - a site's target (network document): head office and admins for any site; a
//!   manager for the sites strictly below his own (his own target is head office's);
//! - a consultant's target (the site document): whoever may write the site document
//!   (the site's manager or one above, admins);
//! - the catalogue and discount limits: head office and admins;
//! - a contest: head office and admins anywhere, a manager for his subtree.
//!
//! Every write is logged with the caller, the automerge change it makes carries the
//! caller's user id in its message, and the change is recorded in the audit table
//! (`GET /api/audit`) under the caller's user and device, like a change a device sends.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post, put};
use chrono::NaiveDate;
use dealersync_core::access::{Access, Role};
use dealersync_core::domain::{self, SplitCheck, check_split, split_target, sub_periods};
use dealersync_core::protocol::DocumentId;
use dealersync_core::reports::{AggregateSource, ContestStanding, contest_standings};
use dealersync_core::schema::{
    Contest, ContestMembers, ContestMetric, ContestTeam, Fen, Period, Target, VehicleModel,
};
use dealersync_core::time::now_ms;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{ReportsState, Scope};
use crate::api::error::ApiError;
use crate::api::extract::{Body, Caller, blocking};
use crate::registry::{Author, RegistryError};

/// The planning routes.
pub fn routes() -> Router<ReportsState> {
    Router::new()
        .route("/api/targets", get(list_targets).put(put_targets))
        .route("/api/targets/split", post(split))
        .route("/api/targets/check", get(check))
        .route("/api/catalogue", get(catalogue))
        .route("/api/catalogue/{model}", put(put_model))
        .route("/api/discount-limits/{role}", put(put_discount_limit))
        .route("/api/contests", get(list_contests))
        .route(
            "/api/contests/{id}",
            put(put_contest).delete(delete_contest),
        )
}

/// The standings of every contest of the scope (defined for a site in it).
pub fn standings(scope: &Scope) -> Vec<ContestStanding> {
    let docs = scope.docs();
    scope
        .snapshot
        .network
        .contests
        .values()
        .filter(|c| scope.network.sites.contains_key(&c.site))
        .filter_map(|c| match contest_standings(c, &docs, &scope.snapshot) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(contest = %c.id, error = %e, "contest skipped");
                None
            }
        })
        .collect()
}

/// One target to write.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetEntry {
    /// The site.
    pub site: String,
    /// A consultant of the site; absent for the site's own target.
    pub consultant: Option<String>,
    /// Period key.
    pub period: String,
    /// The target.
    #[serde(flatten)]
    pub target: Target,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetsBody {
    targets: Vec<TargetEntry>,
}

/// The network document's id, or 404.
fn network_id(st: &ReportsState) -> Result<DocumentId, ApiError> {
    st.registry.network_document()?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "the network has not been set up yet",
        )
    })
}

fn site_doc(st: &ReportsState, site: &str) -> Result<DocumentId, ApiError> {
    Ok(st.registry.site(site)?.document_id)
}

/// Whether `caller` may set the target of `site` (in the network document).
fn may_set_site_target(st: &ReportsState, caller: &Caller, site: &str) -> bool {
    let who = caller.principal();
    match who.role {
        Role::Admin | Role::HeadOffice => true,
        Role::Manager => site != who.site && st.registry.tree().is_within(site, &who.site),
        Role::Relay | Role::Consultant => false,
    }
}

fn forbid(what: &str) -> ApiError {
    ApiError::forbidden(format!("this token may not {what}"))
}

/// Writes a network-document edit through the relay, logged with the caller.
fn edit_network(
    st: &ReportsState,
    caller: &Caller,
    what: &str,
    mut edit: impl FnMut(&mut automerge::AutoCommit, &str, i64) -> Result<(), domain::DomainError>,
) -> Result<(), ApiError> {
    let id = network_id(st)?;
    let author = Author::of(&caller.0);
    st.documents.edit_as(id, Some(&author), &mut |doc| {
        edit(doc, &author.user, now_ms()).map_err(RegistryError::from)
    })?;
    // Read your own write: the model follows commits anyway, a moment later.
    st.model.apply(&[id])?;
    tracing::info!(user = %caller.0.sub, role = %caller.0.role, what, "planning write");
    Ok(())
}

async fn put_targets(
    State(st): State<ReportsState>,
    caller: Caller,
    Body(body): Body<TargetsBody>,
) -> Result<Response, ApiError> {
    if body.targets.is_empty() {
        return Err(ApiError::bad_request("no targets given"));
    }
    let n = body.targets.len();
    blocking(move || {
        let who = caller.principal();
        // Check every entry before writing any.
        for t in &body.targets {
            st.registry.site(&t.site)?;
            t.period
                .parse::<Period>()
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
            let allowed = match &t.consultant {
                None => may_set_site_target(&st, &caller, &t.site),
                Some(_) => st.registry.tree().site_access(&who, &t.site) == Access::ReadWrite,
            };
            if !allowed {
                return Err(forbid(&format!("set targets of site {}", t.site)));
            }
        }
        let (site_targets, consultant_targets): (Vec<_>, Vec<_>) =
            body.targets.iter().partition(|t| t.consultant.is_none());
        if !site_targets.is_empty() {
            edit_network(&st, &caller, "site targets", |doc, by, now| {
                for t in &site_targets {
                    domain::set_site_target(doc, &t.site, &t.period, &t.target, by, now)?;
                }
                Ok(())
            })?;
        }
        let mut by_site: std::collections::BTreeMap<&str, Vec<&TargetEntry>> = Default::default();
        for t in consultant_targets {
            by_site.entry(t.site.as_str()).or_default().push(t);
        }
        for (site, entries) in by_site {
            let author = Author::of(&caller.0);
            let doc_id = site_doc(&st, site)?;
            st.documents.edit_as(doc_id, Some(&author), &mut |doc| {
                for t in &entries {
                    let who = t.consultant.as_deref().unwrap_or_default();
                    domain::set_consultant_target(
                        doc,
                        who,
                        &t.period,
                        &t.target,
                        &author.user,
                        now_ms(),
                    )?;
                }
                Ok(())
            })?;
            st.model.apply(&[doc_id])?;
            tracing::info!(user = %caller.0.sub, site, "planning write: consultant targets");
        }
        Ok(())
    })
    .await?;
    Ok(Json(json!({ "written": n })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TargetQuery {
    site: Option<String>,
    period: Option<String>,
    token: Option<String>,
}

async fn list_targets(
    State(st): State<ReportsState>,
    caller: Caller,
    Query(q): Query<TargetQuery>,
) -> Result<Response, ApiError> {
    super::loaded(&st).await?;
    let _ = q.token;
    let out = blocking(move || {
        let scope = Scope::new(&st.registry, &caller, &st.model.snapshot(), q.site.as_deref())?;
        let keep = |p: &str| q.period.as_deref().is_none_or(|w| w == p);
        let mut rows = Vec::new();
        for (site, ts) in &scope.network.targets {
            for (period, t) in ts.iter().filter(|(p, _)| keep(p)) {
                rows.push(json!({"site": site, "consultant": null, "period": period, "target": t}));
            }
        }
        for doc in scope.docs() {
            for (who, ts) in &doc.targets {
                for (period, t) in ts.iter().filter(|(p, _)| keep(p)) {
                    rows.push(json!({"site": doc.site.id, "consultant": who, "period": period, "target": t}));
                }
            }
        }
        Ok(rows)
    })
    .await?;
    Ok(Json(json!({ "targets": out })).into_response())
}

/// How a split is weighted.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Basis {
    /// Working days of each sub-period (periods only).
    WorkingDays,
    /// Last year's deliveries in the same sub-period, site or consultant.
    LastYear,
    /// Equal parts.
    Even,
    /// The weights given.
    Weights,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum SplitInto {
    Periods,
    Sites,
    Consultants,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SplitBody {
    site: String,
    consultant: Option<String>,
    period: String,
    into: SplitInto,
    basis: Basis,
    /// The total to split; by default the stored target.
    total: Option<Target>,
    /// Public holidays (`YYYY-MM-DD`) not counted as working days.
    #[serde(default)]
    holidays: Vec<String>,
    #[serde(default)]
    weights: Vec<u64>,
    /// Consultants to split among (default: last year's and this period's).
    #[serde(default)]
    members: Vec<String>,
}

/// One proposed part.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Part {
    site: String,
    consultant: Option<String>,
    period: String,
    weight: u64,
    #[serde(flatten)]
    target: Target,
}

/// Proposes a split (nothing is written): the parts, the basis used and the check.
async fn split(
    State(st): State<ReportsState>,
    caller: Caller,
    Body(b): Body<SplitBody>,
) -> Result<Response, ApiError> {
    super::loaded(&st).await?;
    let out = blocking(move || {
        let snapshot = st.model.snapshot();
        let scope = Scope::new(&st.registry, &caller, &snapshot, Some(&b.site))?;
        let bad = |m: String| ApiError::bad_request(m);
        let period: Period = b.period.parse().map_err(|e| bad(format!("{e}")))?;
        let stored = match &b.consultant {
            None => scope.network.targets.get(&b.site).and_then(|t| t.get(&b.b_period())),
            Some(c) => snapshot
                .sites
                .get(&b.site)
                .and_then(|e| e.doc.targets.get(c))
                .and_then(|t| t.get(&b.b_period())),
        };
        let total = b
            .total
            .clone()
            .or_else(|| stored.cloned())
            .ok_or_else(|| bad(format!("no target of {} for {period} to split; give `total`", b.site)))?;
        let holidays = b
            .holidays
            .iter()
            .map(|d| {
                NaiveDate::parse_from_str(d, "%Y-%m-%d")
                    .map_err(|_| bad(format!("holiday {:?} is not a date (YYYY-MM-DD)", crate::telemetry::clip(d))))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let entry = snapshot.sites.get(&b.site);
        let last_year = |p: Period| last_year_of(p);
        // (site, consultant, period) of each part, and its last-year deliveries.
        let mut keys: Vec<(String, Option<String>, Period, u64)> = Vec::new();
        match b.into {
            SplitInto::Periods => {
                for p in sub_periods(period).map_err(RegistryError::from)? {
                    let last = last_year(p)
                        .map(|lp| match (&b.consultant, entry) {
                            (_, None) => 0,
                            (None, Some(e)) => snapshot.aggregate(&e.doc, lp).deliveries(),
                            (Some(c), Some(e)) => {
                                snapshot.aggregate(&e.doc, lp).consultant_deliveries(c)
                            }
                        })
                        .unwrap_or(0);
                    keys.push((b.site.clone(), b.consultant.clone(), p, last.max(0) as u64));
                }
            }
            SplitInto::Sites => {
                for (id, h) in &scope.network.sites {
                    if h.parent.as_deref() == Some(b.site.as_str()) {
                        let last = last_year(period)
                            .zip(snapshot.sites.get(id))
                            .map_or(0, |(lp, e)| snapshot.aggregate(&e.doc, lp).deliveries());
                        keys.push((id.clone(), None, period, last.max(0) as u64));
                    }
                }
            }
            SplitInto::Consultants => {
                let e = entry.ok_or_else(|| bad(format!("no document of site {}", b.site)))?;
                let lp = last_year(period);
                let before = lp.map(|lp| snapshot.aggregate(&e.doc, lp));
                let mut members = b.members.clone();
                if members.is_empty() {
                    let now = snapshot.aggregate(&e.doc, period);
                    members.extend(now.consultants().map(String::from));
                    if let Some(a) = &before {
                        members.extend(a.consultants().map(String::from));
                    }
                    members.sort();
                    members.dedup();
                }
                for m in members {
                    let last = before.as_ref().map_or(0, |a| a.consultant_deliveries(&m));
                    keys.push((b.site.clone(), Some(m), period, last.max(0) as u64));
                }
            }
        }
        if keys.is_empty() {
            return Err(bad("nothing to split into".into()));
        }
        let (weights, basis): (Vec<u64>, Basis) = match b.basis {
            Basis::Weights if b.weights.len() == keys.len() => (b.weights.clone(), Basis::Weights),
            Basis::Weights => {
                return Err(bad(format!("give {} weights", keys.len())));
            }
            Basis::LastYear if keys.iter().any(|k| k.3 > 0) => {
                (keys.iter().map(|k| k.3).collect(), Basis::LastYear)
            }
            Basis::WorkingDays | Basis::LastYear if b.into == SplitInto::Periods => (
                keys.iter()
                    .map(|k| domain::working_days(k.2, &holidays))
                    .collect::<Result<_, _>>()
                    .map_err(RegistryError::from)?,
                Basis::WorkingDays,
            ),
            _ => (vec![1; keys.len()], Basis::Even),
        };
        let targets = split_target(&total, &weights);
        let check = check_split(&total, &targets);
        let parts: Vec<Part> = keys
            .into_iter()
            .zip(weights)
            .zip(targets)
            .map(|(((site, consultant, p, _), weight), target)| Part {
                site,
                consultant,
                period: p.to_string(),
                weight,
                target,
            })
            .collect();
        Ok(json!({ "total": total, "basis": basis, "requested": b.basis, "parts": parts, "check": check }))
    })
    .await?;
    Ok(Json(out).into_response())
}

impl SplitBody {
    fn b_period(&self) -> String {
        self.period
            .parse::<Period>()
            .map_or_else(|_| self.period.clone(), |p| p.to_string())
    }
}

/// The same period a year earlier (ISO week 53 has none when last year had 52).
fn last_year_of(p: Period) -> Option<Period> {
    let shifted = match p {
        Period::Year(y) => Period::Year(y - 1),
        Period::Quarter(y, q) => Period::Quarter(y - 1, q),
        Period::Month(y, m) => Period::Month(y - 1, m),
        Period::Week(y, w) => Period::Week(y - 1, w),
        Period::Day(y, m, d) => Period::Day(y - 1, m, d),
    };
    shifted
        .to_string()
        .parse::<Period>()
        .ok()
        .filter(|q| *q == shifted)
}

/// The sum of a target's parts against it: the sub-periods present and the children's
/// site targets. `parts` is `None` when no part is set.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Check {
    site: String,
    period: String,
    total: Option<Target>,
    periods: Option<SplitCheck>,
    sites: Option<SplitCheck>,
}

async fn check(
    State(st): State<ReportsState>,
    caller: Caller,
    Query(q): Query<TargetQuery>,
) -> Result<Response, ApiError> {
    super::loaded(&st).await?;
    let out = blocking(move || {
        let site = q
            .site
            .clone()
            .ok_or_else(|| ApiError::bad_request("missing ?site="))?;
        let period: Period = q
            .period
            .as_deref()
            .ok_or_else(|| ApiError::bad_request("missing ?period="))?
            .parse()
            .map_err(|e| ApiError::bad_request(format!("{e}")))?;
        let scope = Scope::new(&st.registry, &caller, &st.model.snapshot(), Some(&site))?;
        let targets = |s: &str| scope.network.targets.get(s);
        let total = targets(&site)
            .and_then(|t| t.get(&period.to_string()))
            .cloned();
        let versus = |parts: Vec<Target>| {
            total
                .as_ref()
                .filter(|_| !parts.is_empty())
                .map(|t| check_split(t, &parts))
        };
        let periods: Vec<Target> = sub_periods(period)
            .unwrap_or_default()
            .iter()
            .filter_map(|p| targets(&site).and_then(|t| t.get(&p.to_string())).cloned())
            .collect();
        let children: Vec<Target> = scope
            .network
            .sites
            .iter()
            .filter(|(_, h)| h.parent.as_deref() == Some(site.as_str()))
            .filter_map(|(id, _)| {
                targets(id)
                    .and_then(|t| t.get(&period.to_string()))
                    .cloned()
            })
            .collect();
        Ok(Check {
            site: site.clone(),
            period: period.to_string(),
            periods: versus(periods),
            sites: versus(children),
            total,
        })
    })
    .await?;
    Ok(Json(out).into_response())
}

async fn catalogue(State(st): State<ReportsState>, _caller: Caller) -> Result<Response, ApiError> {
    super::loaded(&st).await?;
    let net = st.model.snapshot().network;
    Ok(
        Json(json!({ "models": net.models, "discountLimits": net.discount_limits }))
            .into_response(),
    )
}

fn require_head_office(caller: &Caller) -> Result<(), ApiError> {
    match caller.0.role {
        Role::Admin | Role::HeadOffice => Ok(()),
        _ => Err(forbid(
            "edit the catalogue or discount limits (head office only)",
        )),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ModelBody {
    name: String,
    #[serde(default)]
    trims: Vec<String>,
    cost: Fen,
    list_price: Fen,
}

async fn put_model(
    State(st): State<ReportsState>,
    caller: Caller,
    Path(code): Path<String>,
    Body(b): Body<ModelBody>,
) -> Result<Response, ApiError> {
    require_head_office(&caller)?;
    let model = VehicleModel {
        code,
        name: b.name,
        trims: b.trims,
        cost: b.cost,
        list_price: b.list_price,
    };
    let out = model.clone();
    blocking(move || {
        edit_network(&st, &caller, "catalogue", |doc, by, now| {
            domain::put_model(doc, &model, by, now)
        })
    })
    .await?;
    Ok(Json(out).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitBody {
    limit: Fen,
}

async fn put_discount_limit(
    State(st): State<ReportsState>,
    caller: Caller,
    Path(role): Path<String>,
    Body(b): Body<LimitBody>,
) -> Result<Response, ApiError> {
    require_head_office(&caller)?;
    let answer = json!({ "role": role, "limit": b.limit });
    blocking(move || {
        edit_network(&st, &caller, "discount limit", |doc, by, now| {
            domain::set_discount_limit(doc, &role, b.limit, by, now)
        })
    })
    .await?;
    Ok(Json(answer).into_response())
}

async fn list_contests(
    State(st): State<ReportsState>,
    caller: Caller,
    Query(q): Query<TargetQuery>,
) -> Result<Response, ApiError> {
    super::loaded(&st).await?;
    let out = blocking(move || {
        let scope = Scope::new(
            &st.registry,
            &caller,
            &st.model.snapshot(),
            q.site.as_deref(),
        )?;
        Ok(standings(&scope))
    })
    .await?;
    Ok(Json(json!({ "contests": out })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ContestBody {
    name: String,
    period: String,
    metric: ContestMetric,
    members: ContestMembers,
    teams: Vec<ContestTeam>,
    /// The subtree it covers: by default the caller's site.
    site: Option<String>,
}

/// Whether `caller` may define or remove a contest for `site` with `teams`.
fn may_run_contest(
    st: &ReportsState,
    caller: &Caller,
    site: &str,
    members: ContestMembers,
    teams: &[ContestTeam],
) -> Result<(), ApiError> {
    let who = caller.principal();
    let tree = st.registry.tree();
    let ok = match who.role {
        Role::Admin | Role::HeadOffice => true,
        Role::Manager => {
            tree.is_within(site, &who.site)
                && (members == ContestMembers::Consultants
                    || teams
                        .iter()
                        .flat_map(|t| &t.members)
                        .all(|m| tree.is_within(m, &who.site)))
        }
        Role::Relay | Role::Consultant => false,
    };
    if ok {
        Ok(())
    } else {
        Err(forbid(&format!(
            "run contests for site {site} or its teams"
        )))
    }
}

async fn put_contest(
    State(st): State<ReportsState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(b): Body<ContestBody>,
) -> Result<Response, ApiError> {
    super::loaded(&st).await?;
    let contest = Contest {
        id,
        name: b.name,
        period: b.period,
        metric: b.metric,
        members: b.members,
        teams: b.teams,
        site: b.site.unwrap_or_else(|| caller.0.site.clone()),
        created_by: caller.0.sub.clone(),
    };
    let out = contest.clone();
    blocking(move || {
        st.registry.site(&contest.site)?;
        if contest.members == ContestMembers::Sites {
            for m in contest.teams.iter().flat_map(|t| &t.members) {
                st.registry.site(m)?;
            }
        }
        may_run_contest(&st, &caller, &contest.site, contest.members, &contest.teams)?;
        if let Some(old) = st.model.snapshot().network.contests.get(&contest.id) {
            may_run_contest(&st, &caller, &old.site, old.members, &old.teams)?;
        }
        edit_network(&st, &caller, "contest", |doc, by, now| {
            domain::put_contest(doc, &contest, by, now)
        })
    })
    .await?;
    Ok(Json(out).into_response())
}

async fn delete_contest(
    State(st): State<ReportsState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    super::loaded(&st).await?;
    blocking(move || {
        let net = st.model.snapshot().network;
        let old = net.contests.get(&id).ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no contest {}", crate::telemetry::clip(&id)),
            )
        })?;
        may_run_contest(&st, &caller, &old.site, old.members, &old.teams)?;
        edit_network(&st, &caller, "remove contest", |doc, by, now| {
            domain::remove_contest(doc, &id, by, now)
        })
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
