//! Which sites a report request covers, and which of their documents the caller may
//! read: the network document cut down to the requested subtree, and the hydrated
//! documents of the readable sites in it. Every other site of the subtree is then
//! "not available" in the core reports.

use std::collections::{BTreeMap, BTreeSet};

use dealersync_core::access::Role;
use dealersync_core::conflicts::{self, Conflict, SiteConflicts};
use dealersync_core::schema::{NetworkDocument, SiteDocument};
use serde_json::json;

use super::read_model::Snapshot;
use super::{Computed, internal};
use crate::api::error::ApiError;
use crate::api::extract::Caller;
use crate::registry::Registry;

/// The sites one report request covers.
pub struct Scope {
    /// The network document with only the sites (and site targets) of the subtree;
    /// its root has no parent.
    pub network: NetworkDocument,
    /// The read model's snapshot the documents come from.
    pub snapshot: Snapshot,
    /// Sites of the subtree whose document the caller may read and the model holds,
    /// in id order.
    pub readable: Vec<String>,
    /// Sites of the subtree whose document the caller may read and whose conflict
    /// inputs the model holds (also those that do not hydrate), in id order.
    pub conflict_sites: Vec<String>,
    /// The subtree's root, `None` for the whole network.
    pub root: Option<String>,
}

impl Scope {
    /// The scope of `caller` asking for the subtree under `site` (by default their
    /// own site, or the whole network for head office and admins).
    pub fn new(
        registry: &Registry,
        caller: &Caller,
        snapshot: &Snapshot,
        site: Option<&str>,
    ) -> Result<Scope, ApiError> {
        let who = caller.principal();
        let tree = registry.tree();
        let root = match (site, who.role) {
            (Some(s), _) => Some(s.to_string()),
            (None, Role::Admin | Role::HeadOffice) => None,
            (None, Role::Manager | Role::Relay | Role::Consultant) => Some(who.site.clone()),
        };
        let full = &snapshot.network;
        if let Some(r) = root.as_deref() {
            let exists = full.sites.contains_key(r) || snapshot.sites.contains_key(r);
            let allowed = match who.role {
                Role::Admin | Role::HeadOffice => true,
                Role::Manager | Role::Relay => tree.is_within(r, &who.site),
                Role::Consultant => r == who.site,
            };
            if !exists || !allowed {
                return Err(ApiError::new(
                    axum::http::StatusCode::NOT_FOUND,
                    "unknown_site",
                    format!("no site {}", crate::telemetry::clip(r)),
                ));
            }
        }
        let parents: BTreeMap<&str, Option<&str>> = full
            .sites
            .iter()
            .map(|(id, h)| (id.as_str(), h.parent.as_deref()))
            .chain(
                snapshot
                    .sites
                    .iter()
                    .filter(|(id, _)| !full.sites.contains_key(*id))
                    .map(|(id, e)| (id.as_str(), e.doc.site.parent.as_deref())),
            )
            .collect();
        let in_scope = |id: &str| root.as_deref().is_none_or(|r| within(&parents, id, r));
        let mut network = NetworkDocument::clone(full);
        network.sites.retain(|id, _| in_scope(id));
        network.targets.retain(|id, _| in_scope(id));
        if let Some(h) = root.as_deref().and_then(|r| network.sites.get_mut(r)) {
            h.parent = None;
        }
        let readable_of = |ids: &mut dyn Iterator<Item = &String>| -> Vec<String> {
            ids.filter(|id| in_scope(id))
                .filter(|id| tree.site_access(&who, id).can_read())
                .cloned()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect()
        };
        let readable = readable_of(&mut snapshot.sites.keys());
        let conflict_sites = readable_of(&mut snapshot.conflicts.keys());
        Ok(Scope {
            network,
            snapshot: snapshot.clone(),
            readable,
            conflict_sites,
            root,
        })
    }

    /// The whole network with every document of `snapshot`: what an admin sees.
    pub fn everything(snapshot: &Snapshot) -> Scope {
        let sorted = |ids: &mut dyn Iterator<Item = &String>| -> Vec<String> {
            ids.cloned().collect::<BTreeSet<_>>().into_iter().collect()
        };
        Scope {
            network: NetworkDocument::clone(&snapshot.network),
            snapshot: snapshot.clone(),
            readable: sorted(&mut snapshot.sites.keys()),
            conflict_sites: sorted(&mut snapshot.conflicts.keys()),
            root: None,
        }
    }

    /// The readable documents, for the core reports.
    pub fn docs(&self) -> Vec<&SiteDocument> {
        self.readable
            .iter()
            .filter_map(|id| self.snapshot.sites.get(id))
            .map(|e| &e.doc)
            .collect()
    }

    /// Site ids of the scope, readable or not, in id order.
    pub fn sites(&self) -> impl Iterator<Item = &String> {
        self.network.sites.keys()
    }

    /// The business-rule conflicts across the readable documents of the scope, and the
    /// sites covered, from the conflict inputs the read model keeps per site (they need
    /// every concurrent value, which hydration discards).
    pub fn detect_conflicts(&self) -> (Vec<Conflict>, Vec<String>) {
        let inputs: Vec<&SiteConflicts> = self
            .conflict_sites
            .iter()
            .filter_map(|s| self.snapshot.conflicts.get(s))
            .map(|c| c.as_ref())
            .collect();
        let mut found = conflicts::detect_across(&inputs);
        // Head office's concurrent transfer decisions live in the network document;
        // listed to whoever's scope holds the sending or the receiving site.
        let decisions = &self.snapshot.network.transfer_decisions;
        found.extend(
            self.snapshot
                .network_conflicts
                .iter()
                .filter(|c| {
                    c.records
                        .iter()
                        .filter_map(|r| r.strip_prefix("transfer "))
                        .filter_map(|id| decisions.get(id))
                        .any(|d| {
                            self.network.sites.contains_key(&d.from)
                                || self.network.sites.contains_key(&d.to)
                        })
                })
                .cloned(),
        );
        let covered = inputs.iter().map(|c| c.site().to_string()).collect();
        (found, covered)
    }

    /// The conflict report: each conflict with the options that settle it
    /// ([`Conflict::choices`]), the names of the customers it involves, and whether
    /// `caller` may settle it here ([`super::conflicts::may_resolve`]).
    pub fn conflicts(&self, registry: &Registry, caller: &Caller) -> Result<Computed, ApiError> {
        let (found, covered) = self.detect_conflicts();
        let missing: Vec<&String> = self.sites().filter(|s| !covered.contains(s)).collect();
        let rows = found
            .iter()
            .map(|c| {
                json!({
                    "id": c.id,
                    "kind": c.kind,
                    "records": c.records.join("; "),
                    "sites": c.values.iter().map(|v| v.site.as_str()).collect::<BTreeSet<_>>().into_iter().collect::<Vec<_>>().join("; "),
                    "values": c.values.len(),
                    "summary": c.summary,
                })
            })
            .collect();
        let mut listed = Vec::with_capacity(found.len());
        for c in &found {
            let mut v = serde_json::to_value(c).map_err(internal)?;
            v["choices"] = serde_json::to_value(c.choices()).map_err(internal)?;
            v["names"] = json!(self.customer_names(c));
            v["resolvable"] = json!(super::conflicts::may_resolve(registry, caller, c).is_ok());
            listed.push(v);
        }
        Ok(Computed {
            json: json!({
                "conflicts": listed,
                "sitesCovered": covered,
                "sitesNotAvailable": missing,
            }),
            rows,
        })
    }

    /// Customer id → name for the customers a conflict names, from the hydrated
    /// documents of its sites (a person recognises a name, not an id).
    fn customer_names(&self, c: &Conflict) -> BTreeMap<String, String> {
        let sites: BTreeSet<&str> = c.values.iter().map(|v| v.site.as_str()).collect();
        c.records
            .iter()
            .filter_map(|r| r.strip_prefix("customer "))
            .filter_map(|id| {
                sites.iter().find_map(|s| {
                    let e = self.snapshot.sites.get(*s)?;
                    let name = &e.doc.customers.get(id)?.name;
                    Some((id.to_string(), name.clone()))
                })
            })
            .collect()
    }
}

/// Whether `site` is `root` or below it, following `parents`; a loop ends the walk.
fn within(parents: &BTreeMap<&str, Option<&str>>, site: &str, root: &str) -> bool {
    let mut current = Some(site);
    for _ in 0..=parents.len() {
        match current {
            Some(s) if s == root => return true,
            Some(s) => current = parents.get(s).copied().flatten(),
            None => return false,
        }
    }
    false
}
