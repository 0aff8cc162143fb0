//! Forecast submissions against the deadline, and a distribution centre's adjustments.

mod common;

use automerge::ActorId;
use automerge::AutoCommit;
use common::{HOUR, T0, header, network, site};
use dealersync_core::conflicts::{self, ConflictKind};
use dealersync_core::domain::{self, DomainError};
use dealersync_core::reports::{self, SubmissionStatus};
use dealersync_core::schema::{NetworkDocument, Period, SiteDocument, SiteKind};

const DAY: i64 = 24 * HOUR;
const APRIL: Period = Period::Month(2026, 4);

/// A refused operation leaves the document byte-for-byte unchanged.
fn refused(
    doc: &mut AutoCommit,
    op: impl FnOnce(&mut AutoCommit) -> Result<(), DomainError>,
) -> DomainError {
    let before = doc.save();
    let err = op(doc).unwrap_err();
    assert!(doc.save() == before, "document bytes changed after {err}");
    err
}

/// The common network (hq → dc-north → sr-1, rs-1) with April forecasts: sr-1 submits
/// SDN-A 5 on March 11th 10:00 CST and SUV-B 2 at 23:59 on March 25th; rs-1 submits
/// SDN-A 3 at 00:00 CST on March 26th, the first instant after the default deadline;
/// dc-north submits nothing.
fn setup() -> (
    AutoCommit,
    NetworkDocument,
    AutoCommit,
    AutoCommit,
    AutoCommit,
) {
    let (net_doc, net) = network();
    let mut sr1 = site("sr-1");
    let mut rs1 = site("rs-1");
    let mut dc = AutoCommit::new().with_actor(ActorId::from(b"site-dc".to_vec()));
    domain::init_site_document(
        &mut dc,
        &header("dc-north", SiteKind::DistributionCentre, Some("hq")),
        T0,
    )
    .unwrap();
    let f = |d: &mut AutoCommit, model: &str, q: i64, at: i64| {
        domain::set_forecast(d, &net, "2026-04", model, q, "agent", at).unwrap()
    };
    f(&mut sr1, "SDN-A", 5, T0 + 10 * DAY + 10 * HOUR);
    f(&mut sr1, "SUV-B", 2, T0 + 25 * DAY - 60_000);
    f(&mut rs1, "SDN-A", 3, T0 + 25 * DAY);
    (net_doc, net, sr1, rs1, dc)
}

fn read(docs: [&AutoCommit; 3]) -> Vec<SiteDocument> {
    docs.iter()
        .map(|d| SiteDocument::read(*d).unwrap())
        .collect()
}

#[test]
fn who_submitted_by_the_25th() {
    let (_, net, sr1, rs1, dc) = setup();
    let docs = read([&sr1, &rs1, &dc]);
    let refs: Vec<&SiteDocument> = docs.iter().collect();
    // On March 20th: the deadline (end of March 25th CST = 16:00 UTC March 25th) is
    // ahead, so dc-north is pending, not missing.
    let r = reports::forecast_submissions(&net, &refs, APRIL, T0 + 20 * DAY).unwrap();
    assert_eq!(
        (r.deadline_day, r.deadline_date.as_str()),
        (25, "2026-03-25")
    );
    assert_eq!(r.deadline, T0 + 25 * DAY);
    let status: Vec<(&str, SubmissionStatus)> =
        r.rows.iter().map(|x| (x.site.as_str(), x.status)).collect();
    // hq reports to nobody: no row.
    assert_eq!(
        status,
        vec![
            ("dc-north", SubmissionStatus::Pending),
            ("rs-1", SubmissionStatus::Late),
            ("sr-1", SubmissionStatus::OnTime),
        ]
    );
    let sr = r.site("sr-1").unwrap();
    assert_eq!(sr.submitted_at, Some(T0 + 10 * DAY + 10 * HOUR));
    assert_eq!(sr.last_changed_at, Some(T0 + 25 * DAY - 60_000));
    assert_eq!(
        (sr.models, sr.submitted_units, sr.units),
        (Some(2), Some(7), Some(7))
    );

    // On March 26th dc-north is missing.
    let r = reports::forecast_submissions(&net, &refs, APRIL, T0 + 25 * DAY).unwrap();
    assert_eq!(
        r.site("dc-north").unwrap().status,
        SubmissionStatus::Missing
    );
    assert_eq!((r.on_time, r.late, r.missing, r.pending), (1, 1, 1, 0));

    // Without rs-1's document on this device: not available, not missing.
    let some: Vec<&SiteDocument> = docs.iter().filter(|d| d.site.id != "rs-1").collect();
    let r = reports::forecast_submissions(&net, &some, APRIL, T0 + 25 * DAY).unwrap();
    let rs = r.site("rs-1").unwrap();
    assert_eq!(
        (rs.status, rs.models),
        (SubmissionStatus::NotAvailable, None)
    );
    assert_eq!(r.not_available, 1);

    // Only months.
    assert!(reports::forecast_submissions(&net, &refs, Period::Year(2026), T0).is_err());
}

#[test]
fn the_deadline_day_is_set_in_the_network_document() {
    let (mut net_doc, _, sr1, rs1, dc) = setup();
    // Day 10: on time means before 00:00 CST March 11th; sr-1 came at 10:00 that day.
    domain::set_forecast_deadline(&mut net_doc, 10, "admin", T0).unwrap();
    let net = NetworkDocument::read(&net_doc).unwrap();
    assert_eq!(net.forecast_deadline_day, Some(10));
    let docs = read([&sr1, &rs1, &dc]);
    let refs: Vec<&SiteDocument> = docs.iter().collect();
    let r = reports::forecast_submissions(&net, &refs, APRIL, T0 + 20 * DAY).unwrap();
    assert_eq!(r.deadline_date, "2026-03-10");
    assert_eq!(r.site("sr-1").unwrap().status, SubmissionStatus::Late);
    assert_eq!(
        r.site("dc-north").unwrap().status,
        SubmissionStatus::Missing
    );

    // A day some month lacks is refused, and the document is unchanged.
    for bad in [0, 29, 31, -1] {
        refused(&mut net_doc, |d| {
            domain::set_forecast_deadline(d, bad, "admin", T0)
        });
    }
}

#[test]
fn a_distribution_centre_adjusts_and_both_figures_stay() {
    let (_, net, mut sr1, rs1, dc) = setup();
    let at = T0 + 27 * DAY;
    domain::adjust_forecast(&mut sr1, "2026-04", "SDN-A", 4, "dc.manager", at).unwrap();
    let doc = SiteDocument::read(&sr1).unwrap();
    let cell = &doc.forecasts["2026-04"]["SDN-A"];
    // The agent's figure, who and when, as submitted; the adjustment beside it.
    assert_eq!((cell.quantity, cell.by.as_str()), (5, "agent"));
    assert_eq!(cell.at, T0 + 10 * DAY + 10 * HOUR);
    let adj = cell.adjusted.as_ref().unwrap();
    assert_eq!(
        (adj.quantity, adj.by.as_str(), adj.at),
        (4, "dc.manager", at)
    );
    assert_eq!(cell.effective(), 4);

    let docs = read([&sr1, &rs1, &dc]);
    let refs: Vec<&SiteDocument> = docs.iter().collect();
    // Submissions: sr-1 submitted 5 + 2 = 7, counts 4 + 2 = 6, one model adjusted;
    // adjusting does not make a submission late.
    let r = reports::forecast_submissions(&net, &refs, APRIL, at).unwrap();
    let sr = r.site("sr-1").unwrap();
    assert_eq!(sr.status, SubmissionStatus::OnTime);
    assert_eq!(
        (sr.submitted_units, sr.units, sr.adjusted_models),
        (Some(7), Some(6), Some(1))
    );
    assert_eq!(sr.last_changed_at, Some(at));
    // The roll-up uses the adjusted figure: dc-north SDN-A = sr-1 4 + rs-1 3 = 7.
    let roll = reports::forecast_rollup(&net, &refs, APRIL).unwrap();
    let dcn = roll
        .rows
        .iter()
        .find(|x| x.site == "dc-north" && x.model == "SDN-A")
        .unwrap();
    assert_eq!(dcn.total, 7);
    assert_eq!(roll.network_total("SDN-A"), 7);

    // Adjusting again replaces the adjustment, never the agent's figure.
    domain::adjust_forecast(&mut sr1, "2026-04", "SDN-A", 6, "dc.manager", at + HOUR).unwrap();
    let cell = SiteDocument::read(&sr1).unwrap().forecasts["2026-04"]["SDN-A"].clone();
    assert_eq!((cell.quantity, cell.effective()), (5, 6));
}

#[test]
fn adjustment_refusals_leave_the_document_unchanged() {
    let (_, _, mut sr1, _, _) = setup();
    let err = refused(&mut sr1, |d| {
        domain::adjust_forecast(d, "2026-04", "EV-C", 1, "dc.manager", T0)
    });
    assert!(matches!(err, DomainError::NoForecast { .. }), "{err}");
    let err = refused(&mut sr1, |d| {
        domain::adjust_forecast(d, "2026-05", "SDN-A", 1, "dc.manager", T0)
    });
    assert!(matches!(err, DomainError::NoForecast { .. }), "{err}");
    refused(&mut sr1, |d| {
        domain::adjust_forecast(d, "2026-04", "SDN-A", -1, "dc.manager", T0)
    });
    refused(&mut sr1, |d| {
        domain::adjust_forecast(d, "April", "SDN-A", 1, "dc.manager", T0)
    });
    refused(&mut sr1, |d| {
        domain::adjust_forecast(d, "2026-04", "SDN-A", 1, "", T0)
    });
}

/// Two distribution centre managers adjust sr-1's SDN-A forecast offline, both before
/// any adjustment existed (two `adjusted` records) and again on one record (two
/// quantities): each time a `forecast_adjustment` conflict with both figures, the
/// site's own figure untouched, resolved by adjusting again.
#[test]
fn concurrent_adjustments_of_one_forecast_are_a_conflict() {
    let (_, net) = network();
    let mut doc = site("sr-1");
    domain::set_forecast(&mut doc, &net, "2026-04", "SDN-A", 5, "wang", T0).unwrap();
    let detect = |d: &AutoCommit| {
        conflicts::detect(&[("sr-1", d)])
            .into_iter()
            .filter(|c| c.kind == ConflictKind::ForecastAdjustment)
            .collect::<Vec<_>>()
    };
    for round in 0..2 {
        let mut a = doc
            .fork()
            .with_actor(ActorId::from(format!("dc-a-{round}").into_bytes()));
        let mut b = doc
            .fork()
            .with_actor(ActorId::from(format!("dc-b-{round}").into_bytes()));
        domain::adjust_forecast(&mut a, "2026-04", "SDN-A", 7, "ma.li", T0 + HOUR).unwrap();
        domain::adjust_forecast(&mut b, "2026-04", "SDN-A", 3, "sun.hao", T0 + 2 * HOUR).unwrap();
        a.merge(&mut b).unwrap();
        let found = detect(&a);
        assert_eq!(found.len(), 1, "round {round}: {found:?}");
        let c = &found[0];
        assert_eq!(c.records, ["forecast 2026-04/SDN-A"]);
        let mut values: Vec<(&str, bool)> = c
            .values
            .iter()
            .map(|v| (v.value.as_str(), v.hidden))
            .collect();
        values.sort();
        // Both figures, one of them hidden by automerge's winner.
        assert_eq!(values.len(), 2);
        assert_eq!((values[0].0, values[1].0), ("3", "7"));
        assert_eq!(values.iter().filter(|v| v.1).count(), 1);
        assert!(c.values.iter().all(|v| v.field == "adjusted.quantity"));
        assert!(
            c.summary.contains("adjusted concurrently to 3 and 7"),
            "{}",
            c.summary
        );
        // The same conflict, with the same id, on the other device.
        b.merge(&mut a).unwrap();
        assert_eq!(detect(&b)[0].id, c.id);
        // No forecast_edit: the site's own figure was not touched.
        assert!(
            conflicts::detect(&[("sr-1", &a)])
                .iter()
                .all(|c| c.kind != ConflictKind::ForecastEdit)
        );
        conflicts::resolve_forecast_adjustment(
            &mut a,
            "2026-04",
            "SDN-A",
            6,
            "zhou",
            T0 + 3 * HOUR,
        )
        .unwrap();
        assert!(detect(&a).is_empty());
        let cell = &SiteDocument::read(&a).unwrap().forecasts["2026-04"]["SDN-A"];
        assert_eq!((cell.quantity, cell.effective()), (5, 6));
        doc = a;
    }
}
