//! The same customer registered at two sites (业务重叠): customers of different site
//! documents with the same phone number, listed to the managers concerned.
//!
//! Within one document a duplicate is a merge conflict (`core::conflicts`) resolved by
//! merging; across documents nobody below head office sees both, so it is a report over
//! the documents a manager (or head office, or the relay) holds.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::domain::normalise_phone;
use crate::schema::{CustomerStatus, Millis, NetworkDocument, SiteDocument};

use super::tree::SiteTree;
use super::{ReportError, ReportWarning, Tabular};

/// One customer record in a group of duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DuplicateRow {
    /// The phone number, normalised (the group's key).
    pub phone: String,
    /// The site holding this record.
    pub site: String,
    /// Customer id at that site.
    pub customer: String,
    /// Name as entered there.
    pub name: String,
    /// The consultant who owns the lead there.
    pub consultant: Option<String>,
    /// Funnel status there.
    pub status: CustomerStatus,
    /// When the lead was entered there.
    pub created_at: Millis,
    /// The latest event there, if any.
    pub last_event_at: Option<Millis>,
    /// The nearest site above (or equal to) every site of the group: its manager sees
    /// all the records and settles who keeps the customer.
    pub settled_by: String,
}

/// Customers registered at more than one site.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DuplicatesReport {
    /// By phone, then site in tree order, then customer id.
    pub rows: Vec<DuplicateRow>,
    /// Phone numbers registered at two sites or more.
    pub groups: i64,
    /// Sites whose document this device holds, in tree order.
    pub sites_covered: Vec<String>,
    /// Sites whose document is not on this device: a duplicate there is not seen.
    pub sites_not_available: Vec<String>,
    /// What had to be assumed.
    pub warnings: Vec<ReportWarning>,
}

impl Tabular for DuplicatesReport {
    type Row = DuplicateRow;
    fn rows(&self) -> Vec<DuplicateRow> {
        self.rows.clone()
    }
}

/// Every phone number held by live (not merged) customers of two or more different
/// sites among the documents given. A number that does not normalise is compared as
/// typed, trimmed.
pub fn duplicate_customers(
    network: &NetworkDocument,
    sites: &[&SiteDocument],
) -> Result<DuplicatesReport, ReportError> {
    let tree = SiteTree::build(network, sites)?;
    let (sites_covered, sites_not_available) = tree.coverage();
    let mut by_phone: BTreeMap<String, Vec<(usize, &crate::schema::Customer)>> = BTreeMap::new();
    for (idx, doc) in tree.docs() {
        for c in doc.customers.values().filter(|c| c.merged_into.is_none()) {
            let key = normalise_phone(&c.phone).unwrap_or_else(|_| c.phone.trim().to_string());
            if key.is_empty() {
                continue;
            }
            by_phone.entry(key).or_default().push((idx, c));
        }
    }
    let mut rows = Vec::new();
    let mut groups = 0;
    for (phone, mut list) in by_phone {
        let distinct: BTreeSet<usize> = list.iter().map(|(i, _)| *i).collect();
        if distinct.len() < 2 {
            continue;
        }
        groups += 1;
        let settled_by = common_ancestor(&tree, &distinct);
        list.sort_by(|(ia, a), (ib, b)| ia.cmp(ib).then(a.id.cmp(&b.id)));
        for (idx, c) in list {
            rows.push(DuplicateRow {
                phone: phone.clone(),
                site: tree.nodes[idx].header.id.clone(),
                customer: c.id.clone(),
                name: c.name.clone(),
                consultant: c.consultant.clone(),
                status: c.status,
                created_at: c.created_at,
                last_event_at: c.events.iter().map(|e| e.at).max(),
                settled_by: settled_by.clone(),
            });
        }
    }
    Ok(DuplicatesReport {
        rows,
        groups,
        sites_covered,
        sites_not_available,
        warnings: tree.warnings,
    })
}

/// The deepest site at or above every site in `idx` (tree indices); the first root
/// when they share none (a forest after a broken parent link).
fn common_ancestor(tree: &SiteTree<'_>, idx: &BTreeSet<usize>) -> String {
    let chain = |mut i: usize| {
        let mut up = vec![i];
        while let Some(p) = tree.nodes[i].parent {
            up.push(p);
            i = p;
        }
        up
    };
    let mut iter = idx.iter();
    let first = chain(*iter.next().expect("a group has two sites"));
    let others: Vec<BTreeSet<usize>> = iter.map(|&i| chain(i).into_iter().collect()).collect();
    first
        .into_iter()
        .find(|a| others.iter().all(|o| o.contains(a)))
        .map_or_else(
            || tree.nodes[0].header.id.clone(),
            |a| tree.nodes[a].header.id.clone(),
        )
}
