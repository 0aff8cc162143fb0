//! Properties that hold for any network.

use super::*;

use proptest::prelude::*;

/// A random network: each site's parent is nobody, any site (loops included) or a
/// site that does not exist; some sites are missing from the network document.
fn arb_network() -> impl Strategy<Value = (NetworkDocument, Vec<SiteDocument>)> {
    (1usize..10)
        .prop_flat_map(|n| {
            (
                prop::collection::vec((0usize..n + 2, any::<bool>()), n),
                prop::collection::vec(prop::collection::vec(0i64..50, 3), n),
            )
        })
        .prop_map(|(links, quantities)| {
            let n = links.len();
            let mut network = NetworkDocument::new();
            let mut docs = Vec::new();
            for (i, ((parent, listed), qs)) in links.into_iter().zip(quantities).enumerate() {
                let parent = match parent {
                    p if p < n => Some(format!("s{p}")),
                    p if p == n => None,
                    _ => Some("ghost".to_string()),
                };
                let h = SiteHeader {
                    id: format!("s{i}"),
                    name: format!("site {i}"),
                    kind: SiteKind::Agent,
                    parent,
                    channel: None,
                };
                if listed {
                    network.sites.insert(h.id.clone(), h.clone());
                }
                let mut doc = SiteDocument::new(h);
                for (model, q) in ["M1", "M2", "M3"].iter().zip(qs) {
                    forecast(&mut doc, "2026-05", model, q);
                }
                docs.push(doc);
            }
            (network, docs)
        })
}

proptest! {
    /// Whatever the shape of the tree, every forecast is counted exactly once at
    /// the top, each total is its own forecast plus its children's totals, and the
    /// order the documents are given in does not matter.
    #[test]
    fn rollup_counts_every_forecast_once((network, docs) in arb_network()) {
        let refs: Vec<&SiteDocument> = docs.iter().collect();
        let r = reports::forecast_rollup(&network, &refs, month(2026, 5)).unwrap();
        for model in ["M1", "M2", "M3"] {
            let own_sum: i64 = docs
                .iter()
                .map(|d| d.forecasts["2026-05"][model].quantity)
                .sum();
            prop_assert_eq!(r.network_total(model), own_sum);
            for row in r.rows.iter().filter(|x| x.model == model) {
                let children: i64 = r
                    .rows
                    .iter()
                    .filter(|c| c.model == model && c.parent.as_deref() == Some(&row.site))
                    .map(|c| c.total)
                    .sum();
                prop_assert_eq!(row.total, row.own.unwrap_or(0) + children);
            }
        }
        prop_assert_eq!(r.rows.len(), docs.len() * 3);
        // A loop is cut at a site on the loop: climbing its parents leads back to it.
        let parent: BTreeMap<&str, Option<&str>> = docs
            .iter()
            .map(|d| (d.site.id.as_str(), d.site.parent.as_deref()))
            .collect();
        for w in &r.warnings {
            if let ReportWarning::ParentCycle { site } = w {
                let mut at = parent[site.as_str()];
                for _ in 0..docs.len() {
                    if at == Some(site.as_str()) {
                        break;
                    }
                    at = at.and_then(|p| parent.get(p).copied().flatten());
                }
                prop_assert_eq!(at, Some(site.as_str()), "{} is on no loop", site);
            }
        }
        let reversed: Vec<&SiteDocument> = docs.iter().rev().collect();
        let again = reports::forecast_rollup(&network, &reversed, month(2026, 5)).unwrap();
        prop_assert_eq!(again, r);
    }
}
