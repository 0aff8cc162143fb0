//! KPIs per site and per consultant for a period; the counts the sales board ranks.
//!
//! Every count comes from customer events (their `at` falls in the period, CST), never
//! from vehicle statuses: events carry the time they happened and who did it, while a
//! vehicle's status only says where it is now.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::schema::{Fen, NetworkDocument, Period, SiteChannel, SiteDocument, Target};

use super::aggregate::{AggregateSource, ComputeEach, Figures};
use super::tree::SiteTree;
use super::{ReportError, ReportWarning, Tabular, check_period, ratio};

/// Counts for every site (by tree index) and every consultant of every site.
pub(super) struct Tally<'a> {
    pub(super) tree: SiteTree<'a>,
    pub(super) sites: Vec<Figures>,
    /// Per site index, consultant → figures; includes consultants with only a target.
    pub(super) consultants: Vec<BTreeMap<String, Figures>>,
    pub(super) warnings: Vec<ReportWarning>,
}

/// The tree with every site's counts for `period`, taken from `source` (computed on
/// the spot, or a read model's cached aggregates).
pub(super) fn tally<'a>(
    network: &NetworkDocument,
    docs: &[&'a SiteDocument],
    period: Period,
    source: &dyn AggregateSource,
) -> Result<Tally<'a>, ReportError> {
    check_period(period)?;
    let tree = SiteTree::build(network, docs)?;
    let mut sites = vec![Figures::default(); tree.nodes.len()];
    let mut consultants: Vec<BTreeMap<String, Figures>> = vec![BTreeMap::new(); tree.nodes.len()];
    let mut warnings = tree.warnings.clone();
    for (idx, doc) in tree.docs() {
        let agg = source.aggregate(doc, period);
        sites[idx] = agg.site;
        consultants[idx] = agg.consultants.clone();
        warnings.extend(agg.warnings.iter().cloned());
    }
    warnings.sort();
    warnings.dedup();
    Ok(Tally {
        tree,
        sites,
        consultants,
        warnings,
    })
}

/// Sums over every site's subtree (the site and everything below it).
pub(super) struct Regions {
    /// Figures of the subtree.
    pub(super) figures: Vec<Figures>,
    /// Sum of the site targets set in the subtree; `None` if none is set.
    pub(super) targets: Vec<Option<Target>>,
    /// Consultants counted in the subtree.
    pub(super) consultants: Vec<i64>,
    /// Whether the site has sites below it (only those are regions).
    pub(super) has_children: Vec<bool>,
}

/// Adds a target into a running sum; an activity figure is summed over the targets
/// that set it, and stays `None` when none does.
fn add_target(sum: &mut Option<Target>, t: &Target) {
    let s = sum.get_or_insert_with(Target::default);
    s.units = s.units.saturating_add(t.units);
    s.revenue = s.revenue.saturating_add(t.revenue);
    let opt = |a: Option<i64>, b: Option<i64>| match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
    };
    s.visits = opt(s.visits, t.visits);
    s.calls = opt(s.calls, t.calls);
    s.test_drives = opt(s.test_drives, t.test_drives);
}

impl Tally<'_> {
    /// A site's target for the period key, from the network document.
    pub(super) fn site_target<'n>(
        &self,
        network: &'n NetworkDocument,
        idx: usize,
        key: &str,
    ) -> Option<&'n Target> {
        network
            .targets
            .get(&self.tree.nodes[idx].header.id)
            .and_then(|ts| ts.get(key))
    }

    /// Subtree sums, children before parents (reverse pre-order).
    pub(super) fn regions(&self, network: &NetworkDocument, key: &str) -> Regions {
        let n = self.tree.nodes.len();
        let mut r = Regions {
            figures: self.sites.clone(),
            targets: vec![None; n],
            consultants: self.consultants.iter().map(|c| c.len() as i64).collect(),
            has_children: vec![false; n],
        };
        for idx in (0..n).rev() {
            if let Some(t) = self.site_target(network, idx, key) {
                add_target(&mut r.targets[idx], t);
            }
            if let Some(p) = self.tree.nodes[idx].parent {
                r.has_children[p] = true;
                let f = r.figures[idx];
                r.figures[p].add(&f);
                r.consultants[p] += r.consultants[idx];
                if let Some(t) = r.targets[idx].clone() {
                    add_target(&mut r.targets[p], &t);
                }
            }
        }
        r
    }
}

/// Whether a KPI row is about a whole site or one consultant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KpiLevel {
    /// A site with everything below it, against the sum of the targets set there.
    Region,
    /// A site's own figures (not its children's).
    Site,
    /// One consultant at one site.
    Consultant,
}

/// KPIs of a site or a consultant for a period. Rates are `None` over a zero
/// denominator. Every figure is `None` on a row whose documents this device does not
/// hold (`available` false): a site nobody synced is "not available", never a site that
/// sold nothing.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KpiRow {
    /// Site or consultant row.
    pub level: KpiLevel,
    /// Site id.
    pub site: String,
    /// Site name.
    pub site_name: String,
    /// The site's sales channel, from the network document (`None`: not set).
    pub channel: Option<SiteChannel>,
    /// Consultant user id (consultant rows only).
    pub consultant: Option<String>,
    /// Whether the figures were computed from the site's document (a region: from at
    /// least one document of its subtree). False: every figure is `None`.
    pub available: bool,
    /// Region rows: sites of the subtree whose document is not on this device, so the
    /// sums leave them out (0 on a complete region; `None` on site and consultant rows).
    pub sites_not_available: Option<i64>,
    /// Visit events and walk-in batches (来店批次, visitors who left no phone).
    pub visits: Option<i64>,
    /// Call events, whatever their direction.
    pub calls: Option<i64>,
    /// Of those, calls the customer made (inbound).
    pub calls_inbound: Option<i64>,
    /// Of those, calls the consultant made (outbound). Calls recorded before the
    /// direction was asked count in `calls` only.
    pub calls_outbound: Option<i64>,
    /// Test-drive events.
    pub test_drives: Option<i64>,
    /// Customers whose first visit ever was in the period: the cohort of the rates.
    pub first_visitors: Option<i64>,
    /// Of those, customers who test-drove before the period's end.
    pub first_visitors_test_driven: Option<i64>,
    /// first visitors test-driven / first visitors (0 to 1).
    pub test_drive_rate: Option<f64>,
    /// Order events.
    pub orders: Option<i64>,
    /// Of the first visitors, customers who ordered before the period's end.
    pub first_visitors_ordered: Option<i64>,
    /// Showroom closing rate: first visitors ordered / first visitors (0 to 1).
    pub closing_rate: Option<f64>,
    /// Roadshow-sourced customers entered in the period.
    pub roadshow_leads: Option<i64>,
    /// Of those, customers with an order before the period's end.
    pub roadshow_leads_ordered: Option<i64>,
    /// roadshow leads ordered / roadshow leads.
    pub roadshow_closing_ratio: Option<f64>,
    /// Delivery events: the units sold.
    pub deliveries: Option<i64>,
    /// Revenue of those deliveries, in fen.
    pub revenue: Option<Fen>,
    /// Consultants counted at the site or region (not on consultant rows).
    pub consultants: Option<i64>,
    /// deliveries / consultants (not on consultant rows).
    pub units_per_consultant: Option<f64>,
    /// Target units for the period, if set.
    pub target_units: Option<i64>,
    /// Target revenue for the period in fen, if set.
    pub target_revenue: Option<Fen>,
    /// deliveries / target units (above 1 means the target was beaten).
    pub units_achievement: Option<f64>,
    /// revenue / target revenue.
    pub revenue_achievement: Option<f64>,
    /// Target visits, if the target sets one.
    pub target_visits: Option<i64>,
    /// visits / target visits.
    pub visits_achievement: Option<f64>,
    /// Target calls, if the target sets one.
    pub target_calls: Option<i64>,
    /// calls / target calls.
    pub calls_achievement: Option<f64>,
    /// Target test drives, if the target sets one.
    pub target_test_drives: Option<i64>,
    /// test drives / target test drives.
    pub test_drives_achievement: Option<f64>,
}

impl KpiRow {
    /// A row; `f` is `None` when the documents behind it are not on this device, and
    /// then every figure and rate is `None` (the targets, set in other documents, stay).
    fn new(
        level: KpiLevel,
        site: (&str, &str, Option<SiteChannel>),
        consultant: Option<&str>,
        f: Option<&Figures>,
        target: Option<&Target>,
    ) -> KpiRow {
        let g = |x: fn(&Figures) -> i64| f.map(x);
        let r = |num: fn(&Figures) -> i64, den: fn(&Figures) -> i64| {
            f.and_then(|f| ratio(num(f), den(f)))
        };
        let ach = |num: fn(&Figures) -> i64, den: Option<i64>| {
            f.zip(den).and_then(|(f, d)| ratio(num(f), d))
        };
        KpiRow {
            level,
            site: site.0.to_string(),
            site_name: site.1.to_string(),
            channel: site.2,
            consultant: consultant.map(str::to_string),
            available: f.is_some(),
            sites_not_available: None,
            visits: g(|f| f.visits),
            calls: g(|f| f.calls),
            calls_inbound: g(|f| f.calls_inbound),
            calls_outbound: g(|f| f.calls_outbound),
            test_drives: g(|f| f.test_drives),
            first_visitors: g(|f| f.first_visitors),
            first_visitors_test_driven: g(|f| f.first_visitors_test_driven),
            test_drive_rate: r(|f| f.first_visitors_test_driven, |f| f.first_visitors),
            orders: g(|f| f.orders),
            first_visitors_ordered: g(|f| f.first_visitors_ordered),
            closing_rate: r(|f| f.first_visitors_ordered, |f| f.first_visitors),
            roadshow_leads: g(|f| f.roadshow_leads),
            roadshow_leads_ordered: g(|f| f.roadshow_leads_ordered),
            roadshow_closing_ratio: r(|f| f.roadshow_leads_ordered, |f| f.roadshow_leads),
            deliveries: g(|f| f.deliveries),
            revenue: g(|f| f.revenue),
            consultants: None,
            units_per_consultant: None,
            target_units: target.map(|t| t.units),
            target_revenue: target.map(|t| t.revenue),
            units_achievement: ach(|f| f.deliveries, target.map(|t| t.units)),
            revenue_achievement: ach(|f| f.revenue, target.map(|t| t.revenue)),
            target_visits: target.and_then(|t| t.visits),
            visits_achievement: ach(|f| f.visits, target.and_then(|t| t.visits)),
            target_calls: target.and_then(|t| t.calls),
            calls_achievement: ach(|f| f.calls, target.and_then(|t| t.calls)),
            target_test_drives: target.and_then(|t| t.test_drives),
            test_drives_achievement: ach(|f| f.test_drives, target.and_then(|t| t.test_drives)),
        }
    }
}

/// KPIs for a period.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KpiReport {
    /// The period key, e.g. `2026-03`.
    pub period: String,
    /// Sites whose document this device holds, in tree order: what the figures cover.
    pub sites_covered: Vec<String>,
    /// Sites of the network whose document is not on this device, in tree order: their
    /// rows say "not available" and the region sums leave them out.
    pub sites_not_available: Vec<String>,
    /// Sites in tree order: for a site with sites below it its region row first, then
    /// its own site row, then its consultants by user id.
    pub rows: Vec<KpiRow>,
    /// What had to be assumed.
    pub warnings: Vec<ReportWarning>,
}

impl Tabular for KpiReport {
    type Row = KpiRow;
    fn rows(&self) -> Vec<KpiRow> {
        self.rows.clone()
    }
}

impl KpiReport {
    /// The site row of a site.
    pub fn site(&self, site: &str) -> Option<&KpiRow> {
        self.rows
            .iter()
            .find(|r| r.level == KpiLevel::Site && r.site == site)
    }

    /// The region row of a site with sites below it.
    pub fn region(&self, site: &str) -> Option<&KpiRow> {
        self.rows
            .iter()
            .find(|r| r.level == KpiLevel::Region && r.site == site)
    }

    /// The row of a consultant at a site.
    pub fn consultant(&self, site: &str, consultant: &str) -> Option<&KpiRow> {
        self.rows.iter().find(|r| {
            r.level == KpiLevel::Consultant
                && r.site == site
                && r.consultant.as_deref() == Some(consultant)
        })
    }
}

/// KPIs per region (a site with everything below it), per site (its own figures) and
/// per consultant for `period`, with achievement against the site targets of the
/// network document and the consultant targets of the site documents, for exactly that
/// period key.
pub fn kpis(
    network: &NetworkDocument,
    sites: &[&SiteDocument],
    period: Period,
) -> Result<KpiReport, ReportError> {
    kpis_from(network, sites, period, &ComputeEach)
}

/// [`kpis`] with each site's counts taken from `source` (a read model's aggregates).
pub fn kpis_from(
    network: &NetworkDocument,
    sites: &[&SiteDocument],
    period: Period,
    source: &dyn AggregateSource,
) -> Result<KpiReport, ReportError> {
    let key = period.to_string();
    let t = tally(network, sites, period, source)?;
    let regions = t.regions(network, &key);
    let nodes = &t.tree.nodes;
    // Per subtree: sites with and without their document on this device.
    let mut held = vec![0i64; nodes.len()];
    let mut missing = vec![0i64; nodes.len()];
    for idx in (0..nodes.len()).rev() {
        if nodes[idx].doc.is_some() {
            held[idx] += 1;
        } else {
            missing[idx] += 1;
        }
        if let Some(p) = nodes[idx].parent {
            held[p] += held[idx];
            missing[p] += missing[idx];
        }
    }
    let mut rows = Vec::new();
    for (idx, node) in nodes.iter().enumerate() {
        let site = (
            node.header.id.as_str(),
            node.header.name.as_str(),
            node.header.channel,
        );
        if regions.has_children[idx] {
            let f = (held[idx] > 0).then_some(&regions.figures[idx]);
            let mut row = KpiRow::new(
                KpiLevel::Region,
                site,
                None,
                f,
                regions.targets[idx].as_ref(),
            );
            row.sites_not_available = Some(missing[idx]);
            if let Some(f) = f {
                row.consultants = Some(regions.consultants[idx]);
                row.units_per_consultant = ratio(f.deliveries, regions.consultants[idx]);
            }
            rows.push(row);
        }
        let target = t.site_target(network, idx, &key);
        let f = node.doc.map(|_| &t.sites[idx]);
        let mut row = KpiRow::new(KpiLevel::Site, site, None, f, target);
        if node.doc.is_some() {
            let n = t.consultants[idx].len() as i64;
            row.consultants = Some(n);
            row.units_per_consultant = ratio(t.sites[idx].deliveries, n);
        }
        rows.push(row);
        for (who, f) in &t.consultants[idx] {
            let target = node
                .doc
                .and_then(|d| d.targets.get(who))
                .and_then(|ts| ts.get(&key));
            rows.push(KpiRow::new(
                KpiLevel::Consultant,
                site,
                Some(who),
                Some(f),
                target,
            ));
        }
    }
    let (covered, not_available) = t.tree.coverage();
    Ok(KpiReport {
        period: key,
        sites_covered: covered,
        sites_not_available: not_available,
        rows,
        warnings: t.warnings,
    })
}
