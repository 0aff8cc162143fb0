//! A site's counts for one period, the unit the KPIs and the sales board add up: a
//! read model keeps them per site and recomputes only the site whose document changed
//! ([`AggregateSource`]), so that a report over hundreds of sites does not walk every
//! customer again.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::schema::{
    CallDirection, Customer, CustomerEvent, CustomerSource, EventKind, Fen, Period, SiteDocument,
};

use super::{ReportError, ReportWarning, check_period};

/// One site's counts (and each consultant's at the site) for one period, computed from
/// its document alone. Opaque: the KPIs and the board turn it into rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteAggregate {
    pub(super) site: Figures,
    /// Consultant → figures; includes consultants with only a target for the period.
    pub(super) consultants: BTreeMap<String, Figures>,
    pub(super) warnings: Vec<ReportWarning>,
}

/// Where the KPIs and the board take each site's aggregate from: [`ComputeEach`]
/// computes it from the document on the spot (the CLI); the relay's read model
/// answers from aggregates it keeps up to date as documents change.
pub trait AggregateSource {
    /// The aggregate of `doc` for `period` (a valid period: the reports check it
    /// before asking).
    fn aggregate(&self, doc: &SiteDocument, period: Period) -> Arc<SiteAggregate>;
}

/// Computes every aggregate from the document, every time.
#[derive(Debug, Clone, Copy, Default)]
pub struct ComputeEach;

impl AggregateSource for ComputeEach {
    fn aggregate(&self, doc: &SiteDocument, period: Period) -> Arc<SiteAggregate> {
        Arc::new(site_counts(doc, period))
    }
}

impl SiteAggregate {
    /// The counts of `doc` for `period` (rules in `docs/reports.md`, *KPIs*).
    pub fn compute(doc: &SiteDocument, period: Period) -> Result<SiteAggregate, ReportError> {
        Ok(site_counts(doc, check_period(period)?))
    }

    /// Units delivered at the site in the period (the board's headline figure).
    pub fn deliveries(&self) -> i64 {
        self.site.deliveries
    }

    /// Revenue of those deliveries, in fen.
    pub fn revenue(&self) -> i64 {
        self.site.revenue
    }

    /// Units delivered by `consultant` at the site in the period.
    pub fn consultant_deliveries(&self, consultant: &str) -> i64 {
        self.consultants.get(consultant).map_or(0, |f| f.deliveries)
    }

    /// The consultants counted at the site in the period (activity or a target).
    pub fn consultants(&self) -> impl Iterator<Item = &str> {
        self.consultants.keys().map(String::as_str)
    }
}

/// The per-site part of the KPIs; `period` must be valid.
fn site_counts(doc: &SiteDocument, period: Period) -> SiteAggregate {
    let key = period.to_string();
    // The range once, not a time-zone conversion per event.
    let (start, end) = period.range_millis();
    let in_period = |t| start <= t && t < end;
    let mut site = Figures::default();
    // Keys borrow from the document: no allocation per event.
    let mut mine: BTreeMap<&str, Figures> = BTreeMap::new();
    let mut warnings = Vec::new();
    for (consultant, targets) in &doc.targets {
        if targets.contains_key(&key) {
            mine.entry(consultant.as_str()).or_default();
        }
    }
    // Walk-in batches who left no phone are visits too (one per batch, whatever
    // its size), credited to the consultant who received them.
    for w in doc.walk_ins.values().filter(|w| in_period(w.at)) {
        site.visits += 1;
        if !w.by.is_empty() {
            mine.entry(w.by.as_str()).or_default().visits += 1;
        }
    }
    for c in doc.customers.values() {
        // Roadshow closing ratio: the cohort of roadshow leads entered in the
        // period, and how many of them ordered before the period ended. A record
        // merged into another is the same person entered twice: not a second lead
        // (its events still count below, they happened).
        if c.source == CustomerSource::Roadshow
            && c.merged_into.is_none()
            && in_period(c.created_at)
        {
            let ordered = c
                .events
                .iter()
                .any(|e| e.kind == EventKind::Order && e.at < end);
            let count = |f: &mut Figures| {
                f.roadshow_leads += 1;
                f.roadshow_leads_ordered += i64::from(ordered);
            };
            count(&mut site);
            if let Some(who) = c.consultant.as_deref().filter(|w| !w.is_empty()) {
                count(mine.entry(who).or_default());
            }
        }
        // Closing rate and test-drive rate: the cohort of customers whose first
        // visit ever falls in the period, credited to whoever received that visit,
        // and whether they ordered (test-drove) before the period ended. A person
        // is counted once however often they came or ordered, so the rate cannot
        // exceed 100 %. Merged records are the same person: not a second visitor.
        let first_visit = c
            .events
            .iter()
            .filter(|e| e.kind == EventKind::Visit)
            .min_by_key(|e| e.at);
        if let Some(first) = first_visit.filter(|e| c.merged_into.is_none() && in_period(e.at)) {
            let before_end = |k: EventKind| c.events.iter().any(|e| e.kind == k && e.at < end);
            let cohort = Figures {
                first_visitors: 1,
                first_visitors_ordered: i64::from(before_end(EventKind::Order)),
                first_visitors_test_driven: i64::from(before_end(EventKind::TestDrive)),
                ..Figures::default()
            };
            site.add(&cohort);
            if !first.by.is_empty() {
                mine.entry(first.by.as_str()).or_default().add(&cohort);
            }
        }
        // A sale is recorded once, by the vehicle's sell and deliver steps; an order
        // or a delivery of the same VIN seen again on this customer (a copy entered
        // by hand on an old device, or both sides of an offline edit) is the same
        // sale and counts once.
        let mut seen: Vec<(EventKind, &str)> = Vec::new();
        for e in c.events.iter().filter(|e| in_period(e.at)) {
            if let (EventKind::Order | EventKind::Delivery, Some(vin)) = (e.kind, e.vin.as_deref())
            {
                if seen.contains(&(e.kind, vin)) {
                    continue;
                }
                seen.push((e.kind, vin));
            }
            let mut delta = Figures::default();
            match e.kind {
                EventKind::Visit => delta.visits = 1,
                EventKind::Call => {
                    delta.calls = 1;
                    match e.direction {
                        Some(CallDirection::Inbound) => delta.calls_inbound = 1,
                        Some(CallDirection::Outbound) => delta.calls_outbound = 1,
                        None => {}
                    }
                }
                EventKind::TestDrive => delta.test_drives = 1,
                EventKind::Order => delta.orders = 1,
                EventKind::Delivery => {
                    delta.deliveries = 1;
                    delta.revenue = delivery_revenue(c, e).unwrap_or_else(|| {
                        warnings.push(ReportWarning::UnpricedDelivery {
                            site: doc.site.id.clone(),
                            customer: c.id.clone(),
                            at: e.at,
                        });
                        0
                    });
                }
                _ => continue,
            }
            site.add(&delta);
            // Credit whoever recorded the event: history does not move when a
            // customer is later reassigned to another consultant.
            if !e.by.is_empty() {
                mine.entry(e.by.as_str()).or_default().add(&delta);
            }
        }
    }
    warnings.sort();
    warnings.dedup();
    SiteAggregate {
        site,
        consultants: mine.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        warnings,
    }
}

/// The revenue of a delivery: its own amount, else the amount of the customer's latest
/// order at or before it (the agreed price), else `None`.
pub(super) fn delivery_revenue(customer: &Customer, delivery: &CustomerEvent) -> Option<Fen> {
    delivery.amount.or_else(|| {
        customer
            .events
            .iter()
            .enumerate()
            .filter(|(_, e)| e.kind == EventKind::Order && e.at <= delivery.at)
            .filter_map(|(i, e)| e.amount.map(|a| (e.at, i, a)))
            .max()
            .map(|(_, _, a)| a)
    })
}

/// Raw counts for a site or a consultant in a period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Figures {
    pub(super) visits: i64,
    pub(super) calls: i64,
    pub(super) calls_inbound: i64,
    pub(super) calls_outbound: i64,
    pub(super) test_drives: i64,
    pub(super) orders: i64,
    pub(super) deliveries: i64,
    pub(super) revenue: Fen,
    pub(super) roadshow_leads: i64,
    pub(super) roadshow_leads_ordered: i64,
    /// Customers whose first visit ever is in the period: the closing-rate cohort.
    pub(super) first_visitors: i64,
    /// Of those, customers with an order before the period's end.
    pub(super) first_visitors_ordered: i64,
    /// Of those, customers with a test drive before the period's end.
    pub(super) first_visitors_test_driven: i64,
}

impl Figures {
    pub(super) fn add(&mut self, o: &Figures) {
        self.visits += o.visits;
        self.calls += o.calls;
        self.calls_inbound += o.calls_inbound;
        self.calls_outbound += o.calls_outbound;
        self.test_drives += o.test_drives;
        self.orders += o.orders;
        self.deliveries += o.deliveries;
        self.revenue = self.revenue.saturating_add(o.revenue);
        self.roadshow_leads += o.roadshow_leads;
        self.roadshow_leads_ordered += o.roadshow_leads_ordered;
        self.first_visitors += o.first_visitors;
        self.first_visitors_ordered += o.first_visitors_ordered;
        self.first_visitors_test_driven += o.first_visitors_test_driven;
    }
}
