//! Site trees that are not well formed.

use super::*;

#[test]
fn odd_site_trees_are_cut_and_reported_not_lost() {
    let mut network = NetworkDocument::new();
    for h in [
        header("hq", SiteKind::HeadOffice, None),
        // A loop: a's parent is b, b's parent is a.
        header("a", SiteKind::Agent, Some("b")),
        header("b", SiteKind::Agent, Some("a")),
        // Hangs below the loop, and sorts before it: the loop is still cut in the loop.
        header("0-below", SiteKind::Showroom, Some("a")),
        header("orphan", SiteKind::Agent, Some("gone")),
    ] {
        network.sites.insert(h.id.clone(), h);
    }
    let mut docs: Vec<SiteDocument> = ["hq", "a", "b", "orphan", "0-below"]
        .iter()
        .map(|id| SiteDocument::new(network.sites[*id].clone()))
        .collect();
    // A site the network document does not list yet, under hq.
    docs.push(SiteDocument::new(header(
        "new",
        SiteKind::Showroom,
        Some("hq"),
    )));
    for (doc, q) in docs.iter_mut().zip([1, 10, 100, 1_000, 100_000, 10_000]) {
        forecast(doc, "2026-05", "SDN-A", q);
    }
    let refs: Vec<&SiteDocument> = docs.iter().collect();
    let r = reports::forecast_rollup(&network, &refs, month(2026, 5)).unwrap();
    let totals: BTreeMap<&str, i64> = r.rows.iter().map(|r| (r.site.as_str(), r.total)).collect();
    // hq 1 + new 10,000; the loop is cut at a (its smallest id), which carries b and
    // 0-below; orphan is its own root. Every forecast is counted exactly once.
    assert_eq!(totals["hq"], 10_001);
    assert_eq!(totals["a"], 100_110);
    assert_eq!(totals["b"], 100);
    assert_eq!(totals["0-below"], 100_000);
    assert_eq!(totals["orphan"], 1_000);
    assert_eq!(r.network_total("SDN-A"), 111_111);
    assert_eq!(
        r.warnings,
        vec![
            ReportWarning::SiteNotInNetwork { site: "new".into() },
            ReportWarning::UnknownParent {
                site: "orphan".into(),
                parent: "gone".into()
            },
            ReportWarning::ParentCycle { site: "a".into() },
        ]
    );

    // The same site twice would count it twice: refused.
    let twice = vec![&docs[0], &docs[0]];
    assert_eq!(
        reports::stock(&network, &twice).unwrap_err(),
        ReportError::DuplicateSite("hq".into())
    );
}
