//! Customer care: follow-ups due per consultant (客户回访), complaints (投诉), surveys,
//! referrals (以老带新), lead sources, lost reasons and competitors, customer areas.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::schema::{
    ComplaintStatus, CustomerStatus, EventKind, Millis, NetworkDocument, Period, SiteDocument,
};

use super::tree::SiteTree;
use super::{ReportError, ReportWarning, Tabular, check_period, cst_day, ratio};

/// One customer whose follow-up call is due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FollowUpRow {
    /// Site id.
    pub site: String,
    /// The consultant who owns the customer (empty when none does).
    pub consultant: String,
    /// Customer id.
    pub customer: String,
    /// Name.
    pub name: String,
    /// Phone, to call.
    pub phone: String,
    /// Funnel status.
    pub status: CustomerStatus,
    /// When the follow-up was due.
    pub due_at: Millis,
    /// Whole CST days it is late (0: due today).
    pub days_overdue: i64,
}

/// Follow-ups due per consultant at an instant.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FollowUpsReport {
    /// The instant judged at.
    pub as_of: Millis,
    /// By site (tree order), consultant, due time.
    pub rows: Vec<FollowUpRow>,
    /// Site → consultant → follow-ups due.
    pub per_consultant: BTreeMap<String, BTreeMap<String, i64>>,
    /// Sites whose document this device holds, in tree order.
    pub sites_covered: Vec<String>,
    /// Sites whose document is not on this device.
    pub sites_not_available: Vec<String>,
    /// What had to be assumed.
    pub warnings: Vec<ReportWarning>,
}

impl Tabular for FollowUpsReport {
    type Row = FollowUpRow;
    fn rows(&self) -> Vec<FollowUpRow> {
        self.rows.clone()
    }
}

/// Customers whose `nextFollowUp` falls on or before the CST day of `now`, not lost and
/// not merged.
pub fn follow_ups_due(
    network: &NetworkDocument,
    sites: &[&SiteDocument],
    now: Millis,
) -> Result<FollowUpsReport, ReportError> {
    let tree = SiteTree::build(network, sites)?;
    let (sites_covered, sites_not_available) = tree.coverage();
    let today = cst_day(now);
    let mut rows = Vec::new();
    let mut per_consultant: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for (idx, doc) in tree.docs() {
        let site = tree.nodes[idx].header.id.clone();
        let mut here: Vec<FollowUpRow> = doc
            .customers
            .values()
            .filter(|c| c.merged_into.is_none() && c.status != CustomerStatus::Lost)
            .filter_map(|c| {
                let due = c.next_follow_up?;
                (cst_day(due) <= today).then(|| FollowUpRow {
                    site: site.clone(),
                    consultant: c.consultant.clone().unwrap_or_default(),
                    customer: c.id.clone(),
                    name: c.name.clone(),
                    phone: c.phone.clone(),
                    status: c.status,
                    due_at: due,
                    days_overdue: today - cst_day(due),
                })
            })
            .collect();
        here.sort_by(|a, b| {
            (&a.consultant, a.due_at, &a.customer).cmp(&(&b.consultant, b.due_at, &b.customer))
        });
        for r in &here {
            *per_consultant
                .entry(site.clone())
                .or_default()
                .entry(r.consultant.clone())
                .or_default() += 1;
        }
        rows.extend(here);
    }
    Ok(FollowUpsReport {
        as_of: now,
        rows,
        per_consultant,
        sites_covered,
        sites_not_available,
        warnings: tree.warnings,
    })
}

/// One complaint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComplaintRow {
    /// Site id.
    pub site: String,
    /// Complaint id.
    pub id: String,
    /// Customer id.
    pub customer: String,
    /// Where it stands.
    pub status: ComplaintStatus,
    /// Who is on it.
    pub owner: String,
    /// What it is about.
    pub summary: String,
    /// When it was received.
    pub opened_at: Millis,
    /// CST days from receipt to resolution, or to `asOf` while unresolved.
    pub days_open: i64,
    /// How it was settled.
    pub resolution: Option<String>,
    /// When.
    pub resolved_at: Option<Millis>,
}

/// A site's customer care figures for a period.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CareRow {
    /// Site id.
    pub site: String,
    /// Customers entered in the period (leads), merged records left out.
    pub leads: i64,
    /// Of those, leads linked to the customer who referred them.
    pub referrals: i64,
    /// Of those referrals, customers with an order before the period's end.
    pub referrals_ordered: i64,
    /// Customers marked lost in the period.
    pub lost: i64,
    /// Survey events in the period.
    pub surveys: i64,
    /// Their mean score (1-5), 2 decimals.
    pub average_score: Option<f64>,
    /// Share of surveys scoring 4 or 5.
    pub satisfied_rate: Option<f64>,
    /// Complaints received in the period.
    pub complaints_opened: i64,
    /// Complaints resolved in the period.
    pub complaints_resolved: i64,
    /// Complaints not resolved at the period's end (or now, if sooner).
    pub complaints_open: i64,
    /// Follow-up calls made in the period.
    pub follow_ups_done: i64,
}

/// A count under one heading: a lead source, a lost reason, a competitor, an area.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MixRow {
    /// Site id.
    pub site: String,
    /// `source`, `lostReason`, `competitor` or `area`.
    pub dimension: &'static str,
    /// The value (`walk_in`, `价格`, `比亚迪`, `prefecture`, or `unknown`).
    pub value: String,
    /// How many customers.
    pub count: i64,
}

/// One customer who referred others (以老带新).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReferrerRow {
    /// Site id.
    pub site: String,
    /// The referring customer's id.
    pub referrer: String,
    /// Their name (empty if the record is not found).
    pub name: String,
    /// Customers they referred, entered in the period.
    pub referred: i64,
    /// Of those, customers with an order before the period's end.
    pub ordered: i64,
}

/// Customer care for a period.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CareReport {
    /// The period's key.
    pub period: String,
    /// Per site, tree order.
    pub rows: Vec<CareRow>,
    /// Lead source mix (leads entered in the period), lost reasons and competitors
    /// (customers lost in the period), areas (leads entered in the period).
    pub mix: Vec<MixRow>,
    /// Who referred whom, entered in the period.
    pub referrers: Vec<ReferrerRow>,
    /// Every complaint open at `asOf` or received or resolved in the period.
    pub complaints: Vec<ComplaintRow>,
    /// Sites whose document this device holds, in tree order.
    pub sites_covered: Vec<String>,
    /// Sites whose document is not on this device.
    pub sites_not_available: Vec<String>,
    /// What had to be assumed.
    pub warnings: Vec<ReportWarning>,
}

impl Tabular for CareReport {
    type Row = CareRow;
    fn rows(&self) -> Vec<CareRow> {
        self.rows.clone()
    }
}

/// Customer care figures per site for `period`, complaints judged at `now`.
pub fn customer_care(
    network: &NetworkDocument,
    sites: &[&SiteDocument],
    period: Period,
    now: Millis,
) -> Result<CareReport, ReportError> {
    let period = check_period(period)?;
    let tree = SiteTree::build(network, sites)?;
    let (sites_covered, sites_not_available) = tree.coverage();
    let (start, end) = period.range_millis();
    let in_p = |t: Millis| start <= t && t < end;
    let cutoff = end.min(now);
    let (mut rows, mut mix, mut referrers, mut complaints) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (idx, doc) in tree.docs() {
        let site = tree.nodes[idx].header.id.clone();
        let live = || doc.customers.values().filter(|c| c.merged_into.is_none());
        let ordered = |c: &crate::schema::Customer| {
            c.events
                .iter()
                .any(|e| e.kind == EventKind::Order && e.at < end)
        };
        let leads: Vec<_> = live().filter(|c| in_p(c.created_at)).collect();
        let mut tallies: BTreeMap<(&'static str, String), i64> = BTreeMap::new();
        let mut by_referrer: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
        for c in &leads {
            *tallies.entry(("source", c.source.to_string())).or_default() += 1;
            let area = c.area.map_or("unknown".to_string(), |a| a.to_string());
            *tallies.entry(("area", area)).or_default() += 1;
            if let Some(r) = c.referred_by.as_deref() {
                let e = by_referrer.entry(r).or_default();
                e.0 += 1;
                e.1 += i64::from(ordered(c));
            }
        }
        let lost: Vec<_> = live()
            .filter(|c| c.status == CustomerStatus::Lost && c.lost_at.is_some_and(in_p))
            .collect();
        for c in &lost {
            let reason = c.lost_reason.clone().unwrap_or_else(|| "unknown".into());
            *tallies.entry(("lostReason", reason)).or_default() += 1;
            if let Some(to) = &c.lost_to {
                *tallies.entry(("competitor", to.clone())).or_default() += 1;
            }
        }
        let scores: Vec<i64> = live()
            .flat_map(|c| &c.events)
            .filter(|e| e.kind == EventKind::Survey && in_p(e.at))
            .filter_map(|e| e.score)
            .collect();
        let follow_ups_done = live()
            .flat_map(|c| &c.events)
            .filter(|e| e.kind == EventKind::FollowUp && in_p(e.at))
            .count() as i64;
        let open_at_cutoff = |c: &crate::schema::Complaint| {
            c.opened_at < cutoff && c.resolved_at.is_none_or(|r| r >= cutoff)
        };
        for c in doc.complaints.values() {
            if open_at_cutoff(c) || in_p(c.opened_at) || c.resolved_at.is_some_and(in_p) {
                let until = c.resolved_at.unwrap_or(now);
                complaints.push(ComplaintRow {
                    site: site.clone(),
                    id: c.id.clone(),
                    customer: c.customer.clone(),
                    status: c.status,
                    owner: c.owner.clone(),
                    summary: c.summary.clone(),
                    opened_at: c.opened_at,
                    days_open: (cst_day(until) - cst_day(c.opened_at)).max(0),
                    resolution: c.resolution.clone(),
                    resolved_at: c.resolved_at,
                });
            }
        }
        let referred: i64 = by_referrer.values().map(|v| v.0).sum();
        rows.push(CareRow {
            site: site.clone(),
            leads: leads.len() as i64,
            referrals: referred,
            referrals_ordered: by_referrer.values().map(|v| v.1).sum(),
            lost: lost.len() as i64,
            surveys: scores.len() as i64,
            average_score: (!scores.is_empty()).then(|| {
                (scores.iter().sum::<i64>() as f64 / scores.len() as f64 * 100.0).round() / 100.0
            }),
            satisfied_rate: ratio(
                scores.iter().filter(|s| **s >= 4).count() as i64,
                scores.len() as i64,
            ),
            complaints_opened: doc
                .complaints
                .values()
                .filter(|c| in_p(c.opened_at))
                .count() as i64,
            complaints_resolved: doc
                .complaints
                .values()
                .filter(|c| c.resolved_at.is_some_and(in_p))
                .count() as i64,
            complaints_open: doc
                .complaints
                .values()
                .filter(|c| open_at_cutoff(c))
                .count() as i64,
            follow_ups_done,
        });
        mix.extend(
            tallies
                .into_iter()
                .map(|((dimension, value), count)| MixRow {
                    site: site.clone(),
                    dimension,
                    value,
                    count,
                }),
        );
        referrers.extend(by_referrer.into_iter().map(|(r, (n, o))| {
            ReferrerRow {
                site: site.clone(),
                referrer: r.to_string(),
                name: doc
                    .customers
                    .get(r)
                    .map(|c| c.name.clone())
                    .unwrap_or_default(),
                referred: n,
                ordered: o,
            }
        }));
    }
    // Open complaints first, oldest first.
    complaints.sort_by_key(|c| (c.status == ComplaintStatus::Resolved, c.opened_at));
    Ok(CareReport {
        period: period.to_string(),
        rows,
        mix,
        referrers,
        complaints,
        sites_covered,
        sites_not_available,
        warnings: tree.warnings,
    })
}
