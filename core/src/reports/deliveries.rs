//! Deliveries as the reports count them: customer `delivery` events, one per VIN and
//! customer, with the model and cost of the car where the documents know them.

use std::collections::BTreeMap;

use crate::schema::{EventKind, Fen, Period, Vehicle};

use super::ReportWarning;
use super::tree::SiteTree;

/// One car handed over in a period.
pub(crate) struct Delivered<'a> {
    /// Index in the tree of the site whose customer took it.
    pub site: usize,
    /// The delivered VIN's model (looked up in every site document, since the vehicle
    /// may have been transferred), else the customer's model of interest.
    pub model: &'a str,
    /// The delivered vehicle's record, when a document given holds it.
    pub vehicle: Option<&'a Vehicle>,
}

/// Every delivery in `period`, and a warning for each whose model is unknown (those
/// are not returned).
pub(crate) fn deliveries<'a>(
    tree: &SiteTree<'a>,
    period: Period,
) -> (Vec<Delivered<'a>>, Vec<ReportWarning>) {
    // The latest record of each VIN wins only if it is delivered; else any record.
    let mut by_vin: BTreeMap<&'a str, &'a Vehicle> = BTreeMap::new();
    for (_, d) in tree.docs() {
        for v in d.vehicles.values() {
            by_vin
                .entry(v.vin.as_str())
                .and_modify(|old| {
                    if v.status == crate::schema::VehicleStatus::Delivered {
                        *old = v;
                    }
                })
                .or_insert(v);
        }
    }
    let (start, end) = period.range_millis();
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    for (idx, doc) in tree.docs() {
        for c in doc.customers.values() {
            let mut seen: Vec<&str> = Vec::new();
            for e in &c.events {
                if e.kind != EventKind::Delivery || e.at < start || e.at >= end {
                    continue;
                }
                // One delivery per VIN and customer, as in the KPIs.
                if let Some(vin) = e.vin.as_deref() {
                    if seen.contains(&vin) {
                        continue;
                    }
                    seen.push(vin);
                }
                let vehicle = e.vin.as_deref().and_then(|vin| by_vin.get(vin).copied());
                match vehicle
                    .map(|v| v.model.as_str())
                    .or(c.model_of_interest.as_deref())
                {
                    Some(model) => out.push(Delivered {
                        site: idx,
                        model,
                        vehicle,
                    }),
                    None => warnings.push(ReportWarning::DeliveryWithoutModel {
                        site: doc.site.id.clone(),
                        customer: c.id.clone(),
                        at: e.at,
                    }),
                }
            }
        }
    }
    (out, warnings)
}

/// Deliveries per model in `month`.
pub(crate) fn deliveries_by_model(
    tree: &SiteTree<'_>,
    month: Period,
) -> (BTreeMap<String, i64>, Vec<ReportWarning>) {
    let (list, warnings) = deliveries(tree, month);
    let mut sales: BTreeMap<String, i64> = BTreeMap::new();
    for d in list {
        *sales.entry(d.model.to_string()).or_default() += 1;
    }
    (sales, warnings)
}

/// The cost of a delivered car: its record's, else the catalogue's for its model.
pub(crate) fn delivered_cost(d: &Delivered<'_>, catalogue_cost: Option<Fen>) -> Option<Fen> {
    d.vehicle.map(|v| v.cost).or(catalogue_cost)
}
