//! The live sales board: target against achieved per region, team and consultant,
//! ranked for a sales contest, from the same counts as the KPIs.

use serde::Serialize;

use crate::schema::{Fen, NetworkDocument, Period, SiteDocument};

use super::aggregate::Figures;
use super::aggregate::{AggregateSource, ComputeEach};
use super::kpi::tally;
use super::{ReportError, ReportWarning, Tabular, ratio};

/// Which table of the sales board a row belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BoardLevel {
    /// A site with everything below it (head office, a distribution centre's region).
    Region,
    /// One site's own team.
    Team,
    /// One consultant.
    Consultant,
}

/// One competitor on the sales board.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BoardRow {
    /// Region, team or consultant.
    pub level: BoardLevel,
    /// Place in the contest within its level, 1 first; equal results share a place.
    pub rank: u32,
    /// Site id (region, team) or consultant user id.
    pub id: String,
    /// Site name, or the consultant's user id.
    pub name: String,
    /// The site (for a consultant, the site they sell for).
    pub site: String,
    /// Whether the documents behind the row are on this device (a region: at least
    /// one of its subtree). False: units and revenue are `None`, and the row is ranked
    /// after every row with figures.
    pub available: bool,
    /// Target units; `None` when no target is set.
    pub target_units: Option<i64>,
    /// Units delivered (`None`: not available on this device).
    pub units: Option<i64>,
    /// units / target units.
    pub units_achievement: Option<f64>,
    /// Target revenue in fen; `None` when no target is set.
    pub target_revenue: Option<Fen>,
    /// Revenue delivered, in fen (`None`: not available on this device).
    pub revenue: Option<Fen>,
    /// revenue / target revenue.
    pub revenue_achievement: Option<f64>,
}

/// The live sales board for a period: each table ranked for a sales contest.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SalesBoard {
    /// The period key.
    pub period: String,
    /// Sites that have sites below them, with their whole subtree.
    pub regions: Vec<BoardRow>,
    /// Every site's own figures.
    pub teams: Vec<BoardRow>,
    /// Every consultant with sales, activity or a target.
    pub consultants: Vec<BoardRow>,
    /// What had to be assumed.
    pub warnings: Vec<ReportWarning>,
}

impl Tabular for SalesBoard {
    type Row = BoardRow;
    /// Regions, then teams, then consultants.
    fn rows(&self) -> Vec<BoardRow> {
        [&self.regions, &self.teams, &self.consultants]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }
}

fn board_row(
    level: BoardLevel,
    (id, name, site): (&str, &str, &str),
    f: Option<&Figures>,
    target: Option<(i64, Fen)>,
) -> BoardRow {
    BoardRow {
        level,
        rank: 0,
        id: id.to_string(),
        name: name.to_string(),
        site: site.to_string(),
        available: f.is_some(),
        target_units: target.map(|t| t.0),
        units: f.map(|f| f.deliveries),
        units_achievement: f.zip(target).and_then(|(f, t)| ratio(f.deliveries, t.0)),
        target_revenue: target.map(|t| t.1),
        revenue: f.map(|f| f.revenue),
        revenue_achievement: f.zip(target).and_then(|(f, t)| ratio(f.revenue, t.1)),
    }
}

/// Sorts for a contest: highest unit achievement first (no target last), then most
/// units, then most revenue, rows not available on this device last of all; equal
/// results share a rank ("1, 2, 2, 4").
fn rank(rows: &mut [BoardRow]) {
    let score = |r: &BoardRow| {
        (
            r.units_achievement.unwrap_or(-1.0),
            r.units.unwrap_or(-1),
            r.revenue.unwrap_or(-1),
        )
    };
    rows.sort_by(|a, b| {
        let (sa, sb) = (score(a), score(b));
        sb.0.total_cmp(&sa.0)
            .then(sb.1.cmp(&sa.1))
            .then(sb.2.cmp(&sa.2))
            .then(a.site.cmp(&b.site))
            .then(a.id.cmp(&b.id))
    });
    for i in 0..rows.len() {
        rows[i].rank = if i > 0 && score(&rows[i]) == score(&rows[i - 1]) {
            rows[i - 1].rank
        } else {
            i as u32 + 1
        };
    }
}

/// The sales board for `period`: regions (a site and everything below it, against the
/// sum of the targets set for those sites), teams (each site's own figures against its
/// target) and consultants (against their targets), each ranked.
pub fn sales_board(
    network: &NetworkDocument,
    sites: &[&SiteDocument],
    period: Period,
) -> Result<SalesBoard, ReportError> {
    sales_board_from(network, sites, period, &ComputeEach)
}

/// [`sales_board`] with each site's counts taken from `source` (a read model's
/// aggregates).
pub fn sales_board_from(
    network: &NetworkDocument,
    sites: &[&SiteDocument],
    period: Period,
    source: &dyn AggregateSource,
) -> Result<SalesBoard, ReportError> {
    let key = period.to_string();
    let t = tally(network, sites, period, source)?;
    let nodes = &t.tree.nodes;
    let site_target = |idx: usize| {
        t.site_target(network, idx, &key)
            .map(|t| (t.units, t.revenue))
    };
    let sub = t.regions(network, &key);
    // A region is available when any document of its subtree is on this device.
    let mut held = vec![false; nodes.len()];
    for idx in (0..nodes.len()).rev() {
        held[idx] |= nodes[idx].doc.is_some();
        if let Some(p) = nodes[idx].parent {
            held[p] |= held[idx];
        }
    }

    let label = |idx: usize| {
        let h = &nodes[idx].header;
        (h.id.as_str(), h.name.as_str(), h.id.as_str())
    };
    let mut regions: Vec<BoardRow> = (0..nodes.len())
        .filter(|&i| sub.has_children[i])
        .map(|i| {
            let target = sub.targets[i].as_ref().map(|t| (t.units, t.revenue));
            let f = held[i].then_some(&sub.figures[i]);
            board_row(BoardLevel::Region, label(i), f, target)
        })
        .collect();
    let mut teams: Vec<BoardRow> = (0..nodes.len())
        .map(|i| {
            let f = nodes[i].doc.map(|_| &t.sites[i]);
            board_row(BoardLevel::Team, label(i), f, site_target(i))
        })
        .collect();
    let mut consultants: Vec<BoardRow> = t
        .consultants
        .iter()
        .enumerate()
        .flat_map(|(idx, mine)| mine.iter().map(move |(who, f)| (idx, who.as_str(), f)))
        .map(|(idx, who, f)| {
            let target = nodes[idx]
                .doc
                .and_then(|d| d.targets.get(who))
                .and_then(|ts| ts.get(&key))
                .map(|t| (t.units, t.revenue));
            let site = nodes[idx].header.id.as_str();
            board_row(BoardLevel::Consultant, (who, who, site), Some(f), target)
        })
        .collect();
    rank(&mut regions);
    rank(&mut teams);
    rank(&mut consultants);
    Ok(SalesBoard {
        period: key,
        regions,
        teams,
        consultants,
        warnings: t.warnings,
    })
}
