//! The site tree every report walks: the network document's sites, completed by site
//! documents it does not list, with dangling parents and loops cut so that every site
//! is visited exactly once.

use std::collections::{BTreeMap, BTreeSet};

use crate::schema::{NetworkDocument, SiteDocument, SiteHeader};

use super::{ReportError, ReportWarning};

/// One site in walking order.
pub(crate) struct Node<'a> {
    /// The site's header (from the network document when it lists the site).
    pub header: SiteHeader,
    /// The site's document, when one was given.
    pub doc: Option<&'a SiteDocument>,
    /// Depth in the tree: 0 for a root (head office).
    pub depth: u32,
    /// Index in [`SiteTree::nodes`] of the parent the figures roll up to.
    pub parent: Option<usize>,
}

/// The sites in depth-first pre-order (a parent before its children, children by id),
/// so that summing in reverse order rolls every figure up to the root.
pub(crate) struct SiteTree<'a> {
    pub nodes: Vec<Node<'a>>,
    pub warnings: Vec<ReportWarning>,
}

impl<'a> SiteTree<'a> {
    /// The site ids whose document was given and those whose document was not, both
    /// in tree order: what a report computed on a device that holds only some
    /// documents covers.
    pub fn coverage(&self) -> (Vec<String>, Vec<String>) {
        let (held, missing): (Vec<&Node<'_>>, Vec<&Node<'_>>) =
            self.nodes.iter().partition(|n| n.doc.is_some());
        let ids = |v: Vec<&Node<'_>>| v.into_iter().map(|n| n.header.id.clone()).collect();
        (ids(held), ids(missing))
    }

    /// Builds the tree; fails only when two documents claim the same site.
    pub fn build(
        network: &NetworkDocument,
        sites: &[&'a SiteDocument],
    ) -> Result<SiteTree<'a>, ReportError> {
        let mut warnings = Vec::new();
        let mut headers: BTreeMap<String, SiteHeader> = network
            .sites
            .iter()
            .map(|(id, h)| {
                // The map key is the id other documents refer to; trust it over a
                // header that disagrees.
                let mut h = h.clone();
                h.id = id.clone();
                (id.clone(), h)
            })
            .collect();
        let mut docs: BTreeMap<String, &'a SiteDocument> = BTreeMap::new();
        for doc in sites {
            let id = doc.site.id.clone();
            if docs.insert(id.clone(), doc).is_some() {
                return Err(ReportError::DuplicateSite(id));
            }
            if let std::collections::btree_map::Entry::Vacant(slot) = headers.entry(id.clone()) {
                warnings.push(ReportWarning::SiteNotInNetwork { site: id });
                slot.insert(doc.site.clone());
            }
        }

        // Effective parent links: a missing parent makes a root.
        let mut children: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let mut parent_of: BTreeMap<&str, &str> = BTreeMap::new();
        let mut roots: Vec<&str> = Vec::new();
        for (id, h) in &headers {
            match h.parent.as_deref() {
                Some(p) if p != id && headers.contains_key(p) => {
                    children.entry(p).or_default().push(id);
                    parent_of.insert(id, p);
                }
                Some(p) if p != id => {
                    warnings.push(ReportWarning::UnknownParent {
                        site: id.clone(),
                        parent: p.to_string(),
                    });
                    roots.push(id);
                }
                Some(_) => {
                    // A site that is its own parent is the smallest loop.
                    warnings.push(ReportWarning::ParentCycle { site: id.clone() });
                    roots.push(id);
                }
                None => roots.push(id),
            }
        }

        let mut tree = SiteTree {
            nodes: Vec::with_capacity(headers.len()),
            warnings: Vec::new(),
        };
        let mut visited: BTreeSet<&str> = BTreeSet::new();
        for root in &roots {
            walk(
                root,
                &headers,
                &docs,
                &children,
                &mut tree.nodes,
                &mut visited,
            );
        }
        // Whatever is left is a loop (A's parent is B, B's parent is A) or hangs below
        // one. Cut each loop at its smallest id, so the result is the same on every
        // replica; what hangs below it then follows.
        while let Some(start) = headers
            .keys()
            .map(String::as_str)
            .find(|id| !visited.contains(id))
        {
            let cut = loop_above(start, &parent_of);
            warnings.push(ReportWarning::ParentCycle {
                site: cut.to_string(),
            });
            walk(
                cut,
                &headers,
                &docs,
                &children,
                &mut tree.nodes,
                &mut visited,
            );
        }
        warnings.sort();
        warnings.dedup();
        tree.warnings = warnings;
        Ok(tree)
    }

    /// Every site document in the tree, with its node index.
    pub fn docs(&self) -> impl Iterator<Item = (usize, &'a SiteDocument)> + '_ {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.doc.map(|d| (i, d)))
    }
}

/// The smallest id of the loop found by climbing parent links from `start`. Only
/// called on a site no root reaches: every site above it has a parent too, so the
/// climb must come back to a site it has seen, and that site is on the loop.
fn loop_above<'h>(start: &'h str, parent_of: &BTreeMap<&'h str, &'h str>) -> &'h str {
    let mut seen = BTreeSet::new();
    let mut on_loop = start;
    while seen.insert(on_loop) {
        on_loop = parent_of[on_loop];
    }
    let mut smallest = on_loop;
    let mut site = parent_of[on_loop];
    while site != on_loop {
        smallest = smallest.min(site);
        site = parent_of[site];
    }
    smallest
}

/// Appends the subtree under `root` in pre-order, skipping sites already placed (which
/// is how a loop in the parent links is cut).
fn walk<'h, 'a>(
    root: &'h str,
    headers: &'h BTreeMap<String, SiteHeader>,
    docs: &BTreeMap<String, &'a SiteDocument>,
    children: &BTreeMap<&'h str, Vec<&'h str>>,
    nodes: &mut Vec<Node<'a>>,
    visited: &mut BTreeSet<&'h str>,
) {
    // Iterative: a deep tree must not overflow the stack.
    let mut stack: Vec<(&'h str, Option<usize>, u32)> = vec![(root, None, 0)];
    while let Some((id, parent, depth)) = stack.pop() {
        if !visited.insert(id) {
            continue;
        }
        let idx = nodes.len();
        nodes.push(Node {
            header: headers[id].clone(),
            doc: docs.get(id).copied(),
            depth,
            parent,
        });
        if let Some(kids) = children.get(id) {
            for kid in kids.iter().rev() {
                stack.push((*kid, Some(idx), depth + 1));
            }
        }
    }
}
