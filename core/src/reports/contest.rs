//! Sales contest standings (销售竞赛): each team's figure for the contest's metric over
//! its period, from the same per-site counts as the KPIs, ranked, with the leaders and
//! the bottom of the table.

use serde::Serialize;

use crate::schema::{Contest, ContestMembers, ContestMetric, Period, SiteDocument};

use super::aggregate::AggregateSource;
use super::aggregate::Figures;
use super::{ReportError, check_period};

/// One team's place in a contest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TeamStanding {
    /// 1 first; equal figures share a place ("1, 2, 2, 4"); teams without a figure
    /// come last.
    pub rank: u32,
    /// Team name.
    pub name: String,
    /// The metric summed over the members whose documents were given; `None` when
    /// none was (not available, never zero).
    pub value: Option<i64>,
    /// The members.
    pub members: Vec<String>,
    /// Member sites whose documents were not given: the value leaves them out.
    pub members_not_available: Vec<String>,
}

/// A contest's table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContestStanding {
    /// Contest id.
    pub id: String,
    /// Contest name.
    pub name: String,
    /// Period key.
    pub period: String,
    /// What is ranked.
    pub metric: ContestMetric,
    /// Sites or consultants.
    pub members: ContestMembers,
    /// The teams, best first.
    pub teams: Vec<TeamStanding>,
    /// Names of the teams in first place.
    pub leaders: Vec<String>,
    /// Names of the teams in last place among those with a figure (empty when all
    /// share first place).
    pub bottom: Vec<String>,
}

fn metric_of(f: &Figures, m: ContestMetric) -> i64 {
    match m {
        ContestMetric::Units => f.deliveries,
        ContestMetric::Revenue => f.revenue,
        ContestMetric::TestDrives => f.test_drives,
        ContestMetric::Visits => f.visits,
        ContestMetric::Calls => f.calls,
        ContestMetric::Orders => f.orders,
    }
}

/// The standings of `contest` over its own period, from the given site documents.
/// A site member is counted from its own document (its own team, not its children);
/// a consultant member from every given document where they recorded activity.
pub fn contest_standings(
    contest: &Contest,
    sites: &[&SiteDocument],
    source: &dyn AggregateSource,
) -> Result<ContestStanding, ReportError> {
    let period = contest
        .period
        .parse::<Period>()
        .map_err(|_| ReportError::BadPeriodKey(contest.period.clone()))?;
    let period = check_period(period)?;
    let aggs: Vec<_> = sites
        .iter()
        .map(|d| (d.site.id.as_str(), source.aggregate(d, period)))
        .collect();
    let mut teams: Vec<TeamStanding> = contest
        .teams
        .iter()
        .map(|team| {
            let mut value: Option<i64> = None;
            let mut missing = Vec::new();
            let mut add = |v: i64| value = Some(value.unwrap_or(0).saturating_add(v));
            for m in &team.members {
                match contest.members {
                    ContestMembers::Sites => match aggs.iter().find(|(id, _)| id == m) {
                        Some((_, a)) => add(metric_of(&a.site, contest.metric)),
                        None => missing.push(m.clone()),
                    },
                    ContestMembers::Consultants => {
                        add(0);
                        for (_, a) in &aggs {
                            if let Some(f) = a.consultants.get(m) {
                                add(metric_of(f, contest.metric));
                            }
                        }
                    }
                }
            }
            TeamStanding {
                rank: 0,
                name: team.name.clone(),
                value,
                members: team.members.clone(),
                members_not_available: missing,
            }
        })
        .collect();
    let score = |t: &TeamStanding| t.value.map_or(i128::MIN, i128::from);
    teams.sort_by(|a, b| score(b).cmp(&score(a)).then(a.name.cmp(&b.name)));
    for i in 0..teams.len() {
        teams[i].rank = if i > 0 && score(&teams[i]) == score(&teams[i - 1]) {
            teams[i - 1].rank
        } else {
            i as u32 + 1
        };
    }
    let names = |rank: u32| {
        teams
            .iter()
            .filter(|t| t.rank == rank && t.value.is_some())
            .map(|t| t.name.clone())
            .collect::<Vec<_>>()
    };
    let leaders = names(1);
    let last = teams
        .iter()
        .filter(|t| t.value.is_some())
        .map(|t| t.rank)
        .max()
        .unwrap_or(1);
    let bottom = if last > 1 { names(last) } else { Vec::new() };
    Ok(ContestStanding {
        id: contest.id.clone(),
        name: contest.name.clone(),
        period: period.to_string(),
        metric: contest.metric,
        members: contest.members,
        teams,
        leaders,
        bottom,
    })
}
