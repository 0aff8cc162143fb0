//! Planning: splitting a target into smaller periods or among sites and consultants
//! (assisted, then edited by people, and checked), and the sales contests of the
//! network document.
//!
//! A split never loses a fen or a unit: the parts are the total shared by weights with
//! the largest-remainder rule, so they always add up exactly; [`check_split`] shows
//! the difference once people have edited the parts.

use automerge::{AutoCommit, ROOT, transaction::Transactable};
use chrono::{Datelike, NaiveDate, Weekday};
use serde::Serialize;

use crate::schema::{Contest, Millis, Period, Target};

use super::{DomainError, Result, commit_write, key_like, non_empty, writable_map};

/// The periods a period is split into: a year into its quarters, a quarter into its
/// months, a month into the ISO weeks whose Thursday falls in it (ISO's rule for
/// which month a week belongs to, so that every week is in exactly one month).
pub fn sub_periods(period: Period) -> Result<Vec<Period>> {
    Ok(match period {
        Period::Year(y) => (1..=4).map(|q| Period::Quarter(y, q)).collect(),
        Period::Quarter(y, q) => (1..=3).map(|i| Period::Month(y, (q - 1) * 3 + i)).collect(),
        Period::Month(..) => days(period)?
            .into_iter()
            .filter(|d| d.weekday() == Weekday::Thu)
            .map(|d| Period::Week(d.iso_week().year(), d.iso_week().week()))
            .collect(),
        Period::Week(..) | Period::Day(..) => {
            return Err(DomainError::Invalid {
                field: format!("split of {period}"),
                reason: "weeks and days are not split further".into(),
            });
        }
    })
}

/// The calendar days of a period.
fn days(period: Period) -> Result<Vec<NaiveDate>> {
    let bad = || DomainError::Invalid {
        field: "period".into(),
        reason: format!("{period} is not a valid period"),
    };
    let (first, after) = match period {
        Period::Year(y) => (
            NaiveDate::from_ymd_opt(y, 1, 1),
            NaiveDate::from_ymd_opt(y + 1, 1, 1),
        ),
        Period::Quarter(y, q) if (1..=4).contains(&q) => (
            NaiveDate::from_ymd_opt(y, (q - 1) * 3 + 1, 1),
            if q == 4 {
                NaiveDate::from_ymd_opt(y + 1, 1, 1)
            } else {
                NaiveDate::from_ymd_opt(y, q * 3 + 1, 1)
            },
        ),
        Period::Month(y, m) => (
            NaiveDate::from_ymd_opt(y, m, 1),
            if m == 12 {
                NaiveDate::from_ymd_opt(y + 1, 1, 1)
            } else {
                NaiveDate::from_ymd_opt(y, m + 1, 1)
            },
        ),
        Period::Week(y, w) => {
            let monday = NaiveDate::from_isoywd_opt(y, w, Weekday::Mon);
            (
                monday,
                monday.and_then(|d| d.checked_add_days(chrono::Days::new(7))),
            )
        }
        Period::Day(y, m, d) => {
            let day = NaiveDate::from_ymd_opt(y, m, d);
            (day, day.and_then(|d| d.succ_opt()))
        }
        _ => (None, None),
    };
    let (first, after) = (first.ok_or_else(bad)?, after.ok_or_else(bad)?);
    Ok(first.iter_days().take_while(|d| *d < after).collect())
}

/// Working days in a period: Monday to Friday, less the given public holidays (the
/// State Council publishes them each year; pass the ones that apply).
pub fn working_days(period: Period, holidays: &[NaiveDate]) -> Result<u64> {
    Ok(days(period)?
        .into_iter()
        .filter(|d| !matches!(d.weekday(), Weekday::Sat | Weekday::Sun))
        .filter(|d| !holidays.contains(d))
        .count() as u64)
}

/// Shares `total` among parts in proportion to `weights`, in whole units, with the
/// largest-remainder rule: the parts always add up to `total` exactly; ties in the
/// remainder go to the earlier part. All weights zero shares evenly.
pub fn share(total: i64, weights: &[u64]) -> Vec<i64> {
    if weights.is_empty() {
        return Vec::new();
    }
    let even = vec![1u64; weights.len()];
    let weights = if weights.iter().all(|w| *w == 0) {
        &even
    } else {
        weights
    };
    let sum: u128 = weights.iter().map(|w| u128::from(*w)).sum();
    let negative = total < 0;
    let t = u128::from(total.unsigned_abs());
    let mut parts: Vec<u128> = weights.iter().map(|w| t * u128::from(*w) / sum).collect();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    // Largest remainder first; the earlier part on a tie.
    order.sort_by_key(|&i| (std::cmp::Reverse(t * u128::from(weights[i]) % sum), i));
    let given: u128 = parts.iter().sum();
    for &i in order.iter().take((t - given) as usize) {
        parts[i] += 1;
    }
    parts
        .into_iter()
        .map(|p| {
            let p = i64::try_from(p).unwrap_or(i64::MAX);
            if negative { -p } else { p }
        })
        .collect()
}

/// A target shared by weights, each figure on its own (units, revenue and each
/// activity target the total sets).
pub fn split_target(total: &Target, weights: &[u64]) -> Vec<Target> {
    let units = share(total.units, weights);
    let revenue = share(total.revenue, weights);
    let opt = |v: Option<i64>| v.map(|v| share(v, weights));
    let (visits, calls, drives) = (opt(total.visits), opt(total.calls), opt(total.test_drives));
    (0..weights.len())
        .map(|i| Target {
            units: units[i],
            revenue: revenue[i],
            visits: visits.as_ref().map(|v| v[i]),
            calls: calls.as_ref().map(|v| v[i]),
            test_drives: drives.as_ref().map(|v| v[i]),
        })
        .collect()
}

/// How far the parts of a split are from the total they were split from: each figure
/// is Σ parts − total (0: they add up). An activity figure the total does not set is
/// `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SplitCheck {
    /// Whether every figure adds up.
    pub adds_up: bool,
    /// Units over (positive) or short (negative).
    pub units: i64,
    /// Revenue over or short, in fen.
    pub revenue: i64,
    /// Visits over or short.
    pub visits: Option<i64>,
    /// Calls over or short.
    pub calls: Option<i64>,
    /// Test drives over or short.
    pub test_drives: Option<i64>,
}

/// Compares edited parts with the total they should add up to.
pub fn check_split(total: &Target, parts: &[Target]) -> SplitCheck {
    let sum = |f: fn(&Target) -> i64| parts.iter().map(f).fold(0i64, i64::saturating_add);
    let opt = |t: Option<i64>, f: fn(&Target) -> Option<i64>| {
        t.map(|t| {
            parts
                .iter()
                .filter_map(f)
                .fold(0i64, i64::saturating_add)
                .saturating_sub(t)
        })
    };
    let mut c = SplitCheck {
        adds_up: false,
        units: sum(|t| t.units).saturating_sub(total.units),
        revenue: sum(|t| t.revenue).saturating_sub(total.revenue),
        visits: opt(total.visits, |t| t.visits),
        calls: opt(total.calls, |t| t.calls),
        test_drives: opt(total.test_drives, |t| t.test_drives),
    };
    c.adds_up = c.units == 0
        && c.revenue == 0
        && [c.visits, c.calls, c.test_drives]
            .iter()
            .all(|d| d.unwrap_or(0) == 0);
    c
}

/// Adds or replaces a sales contest in the network document, after checking it: an
/// id, a name, a valid period, at least two teams, each named and with members, and
/// no member in two teams.
pub fn put_contest(
    net_doc: &mut AutoCommit,
    contest: &Contest,
    by: &str,
    now: Millis,
) -> Result<()> {
    let id = key_like("contest id", &contest.id)?;
    non_empty(format!("contest {id} name"), &contest.name)?;
    let period: Period = contest.period.parse()?;
    key_like(format!("contest {id} site"), &contest.site)?;
    if contest.teams.len() < 2 {
        return Err(DomainError::Invalid {
            field: format!("contest {id} teams"),
            reason: "a contest needs at least two teams".into(),
        });
    }
    let mut seen: Vec<&str> = Vec::new();
    for team in &contest.teams {
        non_empty(format!("contest {id} team name"), &team.name)?;
        if team.members.is_empty() {
            return Err(DomainError::Invalid {
                field: format!("contest {id} team {}", team.name),
                reason: "a team needs at least one member".into(),
            });
        }
        for m in &team.members {
            key_like(format!("contest {id} member"), m)?;
            if seen.contains(&m.as_str()) {
                return Err(DomainError::Invalid {
                    field: format!("contest {id} member {m}"),
                    reason: "a member may be in one team only".into(),
                });
            }
            seen.push(m);
        }
    }
    let mut stored = contest.clone();
    stored.id = id.clone();
    stored.period = period.to_string();
    commit_write(net_doc, format!("{by}: put contest {id}"), now, |doc| {
        let contests = writable_map::<Contest>(doc, &ROOT, "contests")?;
        autosurgeon::reconcile_prop(doc, &contests, id.as_str(), &stored)?;
        Ok(())
    })
}

/// Removes a sales contest; an unknown id is an error.
pub fn remove_contest(net_doc: &mut AutoCommit, id: &str, by: &str, now: Millis) -> Result<()> {
    let contests = super::map_at(net_doc, &ROOT, "contests")?;
    let known = match &contests {
        Some(c) => automerge::ReadDoc::get(net_doc, c, id)?.is_some(),
        None => false,
    };
    let Some(contests) = contests.filter(|_| known) else {
        return Err(DomainError::Invalid {
            field: format!("contest {id}"),
            reason: "no such contest".into(),
        });
    };
    commit_write(net_doc, format!("{by}: remove contest {id}"), now, |doc| {
        doc.delete(&contests, id)?;
        Ok(())
    })
}
