//! Target splitting, its check, and sales contests: every expected figure worked out by
//! hand in the comments.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use dealersync_core::domain::{
    self, check_split, put_contest, remove_contest, share, split_target, sub_periods, working_days,
};
use dealersync_core::reports::{ComputeEach, contest_standings};
use dealersync_core::schema::{
    Contest, ContestMembers, ContestMetric, ContestTeam, Customer, CustomerEvent, CustomerSource,
    CustomerStatus, EventKind, NetworkDocument, Period, SiteDocument, SiteHeader, SiteKind, Target,
};

fn p(s: &str) -> Period {
    s.parse().unwrap()
}

#[test]
fn shares_always_add_up_by_largest_remainder() {
    // 10 / 3 = 3 rest 1: the remainders are equal, the first part takes the unit.
    assert_eq!(share(10, &[1, 1, 1]), [4, 3, 3]);
    // 100 by 1:2:3 = 16.67, 33.33, 50: remainders .67 (first) and .33 → 17, 33, 50.
    assert_eq!(share(100, &[1, 2, 3]), [17, 33, 50]);
    // All weights zero: evenly.
    assert_eq!(share(7, &[0, 0]), [4, 3]);
    assert_eq!(share(0, &[5, 5]), [0, 0]);
    assert!(share(5, &[]).is_empty());
    for total in [1, 99, 1_000_003, 123_456_789] {
        let w = [3, 0, 7, 11, 2];
        assert_eq!(share(total, &w).iter().sum::<i64>(), total);
    }
}

#[test]
fn periods_split_year_to_quarters_to_months_to_iso_weeks() {
    assert_eq!(
        sub_periods(p("2026")).unwrap(),
        [p("2026-Q1"), p("2026-Q2"), p("2026-Q3"), p("2026-Q4")]
    );
    assert_eq!(
        sub_periods(p("2026-Q4")).unwrap(),
        [p("2026-10"), p("2026-11"), p("2026-12")]
    );
    // Thursdays of November 2026: the 5th, 12th, 19th, 26th → ISO weeks 45 to 48.
    assert_eq!(
        sub_periods(p("2026-11")).unwrap(),
        [p("2026-W45"), p("2026-W46"), p("2026-W47"), p("2026-W48")]
    );
    // December 2026: Thursdays 3rd..31st → W49..W53 (2026 has 53 ISO weeks).
    assert_eq!(sub_periods(p("2026-12")).unwrap().len(), 5);
    assert!(sub_periods(p("2026-W45")).is_err());
}

#[test]
fn working_days_count_weekdays_less_holidays() {
    // November 2026 starts on a Sunday: four full weeks (20) and Monday the 30th.
    assert_eq!(working_days(p("2026-11"), &[]).unwrap(), 21);
    // February 2026: Monday 2nd to Friday 27th, four weeks.
    assert_eq!(working_days(p("2026-02"), &[]).unwrap(), 20);
    // National Day week 2026: October 1st (Thursday) to 7th (Wednesday) has five
    // weekdays off; October has 22 weekdays, 17 remain.
    let national_day: Vec<NaiveDate> = (1..=7)
        .map(|d| NaiveDate::from_ymd_opt(2026, 10, d).unwrap())
        .collect();
    assert_eq!(working_days(p("2026-10"), &[]).unwrap(), 22);
    assert_eq!(working_days(p("2026-10"), &national_day).unwrap(), 17);
}

#[test]
fn a_target_split_by_working_days_adds_up_and_edits_show_the_difference() {
    let month = Target {
        units: 10,
        revenue: 10_000_000,
        visits: Some(90),
        calls: None,
        test_drives: None,
    };
    let weeks = sub_periods(p("2026-11")).unwrap();
    let weights: Vec<u64> = weeks
        .iter()
        .map(|w| working_days(*w, &[]).unwrap())
        .collect();
    assert_eq!(weights, [5, 5, 5, 5]);
    let parts = split_target(&month, &weights);
    let units: Vec<i64> = parts.iter().map(|t| t.units).collect();
    assert_eq!(units, [3, 3, 2, 2]);
    assert!(parts.iter().all(|t| t.revenue == 2_500_000));
    // 90 visits / 4 = 22.5: the first two weeks take the halves.
    let visits: Vec<Option<i64>> = parts.iter().map(|t| t.visits).collect();
    assert_eq!(visits, [Some(23), Some(23), Some(22), Some(22)]);
    assert!(parts.iter().all(|t| t.calls.is_none()));
    let check = check_split(&month, &parts);
    assert!(check.adds_up, "{check:?}");

    // A manager moves a unit to the last week and adds ¥1,000: 1 unit and 100,000 fen
    // over.
    let mut edited = parts.clone();
    edited[3].units += 2;
    edited[0].units -= 1;
    edited[3].revenue += 100_000;
    let check = check_split(&month, &edited);
    assert!(!check.adds_up);
    assert_eq!(check.units, 1);
    assert_eq!(check.revenue, 100_000);
    assert_eq!(check.visits, Some(0));
    assert_eq!(check.calls, None);
}

fn contest(teams: Vec<(&str, Vec<&str>)>, members: ContestMembers) -> Contest {
    Contest {
        id: "nov-push".into(),
        name: "十一月冲刺".into(),
        period: "2026-11".into(),
        metric: ContestMetric::Units,
        members,
        teams: teams
            .into_iter()
            .map(|(n, m)| ContestTeam {
                name: n.into(),
                members: m.into_iter().map(Into::into).collect(),
            })
            .collect(),
        site: "hq".into(),
        created_by: "zhou".into(),
    }
}

#[test]
fn contests_are_validated_stored_and_removed() {
    let mut net = domain::create_network_document(0).unwrap();
    let ok = contest(
        vec![("北区", vec!["a1", "a2"]), ("南区", vec!["b1"])],
        ContestMembers::Sites,
    );
    put_contest(&mut net, &ok, "zhou", 1).unwrap();
    let read = NetworkDocument::read(&net).unwrap();
    assert_eq!(read.contests["nov-push"], ok);

    let before = net.save();
    for bad in [
        contest(vec![("only", vec!["a1"])], ContestMembers::Sites),
        contest(
            vec![("x", vec!["a1"]), ("y", vec![])],
            ContestMembers::Sites,
        ),
        contest(
            vec![("x", vec!["a1"]), ("y", vec!["a1"])],
            ContestMembers::Sites,
        ),
        Contest {
            period: "2026-13".into(),
            ..ok.clone()
        },
        Contest {
            name: " ".into(),
            ..ok.clone()
        },
    ] {
        assert!(put_contest(&mut net, &bad, "zhou", 2).is_err(), "{bad:?}");
    }
    assert_eq!(
        net.save(),
        before,
        "a refused contest leaves the document unchanged"
    );

    remove_contest(&mut net, "nov-push", "zhou", 3).unwrap();
    assert!(NetworkDocument::read(&net).unwrap().contests.is_empty());
    assert!(remove_contest(&mut net, "nov-push", "zhou", 4).is_err());
}

fn site(id: &str, deliveries: &[(&str, u32)]) -> SiteDocument {
    let mut doc = SiteDocument::new(SiteHeader {
        id: id.into(),
        name: id.into(),
        kind: SiteKind::Agent,
        parent: Some("hq".into()),
        channel: None,
    });
    let at = |d: u32| {
        NaiveDate::from_ymd_opt(2026, 11, d)
            .unwrap()
            .and_hms_opt(4, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp_millis()
    };
    let mut customers = BTreeMap::new();
    for (i, (by, day)) in deliveries.iter().enumerate() {
        let id = format!("{id}-c{i}");
        customers.insert(
            id.clone(),
            Customer {
                id,
                name: "x".into(),
                phone: "13800000000".into(),
                source: CustomerSource::WalkIn,
                model_of_interest: None,
                consultant: Some((*by).into()),
                status: CustomerStatus::Delivered,
                created_at: at(*day),
                events: vec![CustomerEvent {
                    kind: EventKind::Delivery,
                    at: at(*day),
                    by: (*by).into(),
                    note: None,
                    amount: Some(100),
                    vin: None,
                    score: None,
                    direction: None,
                }],
                merged_into: None,
            },
        );
    }
    doc.customers = customers;
    doc
}

#[test]
fn contest_standings_rank_teams_and_name_leaders_and_bottom() {
    // a1 delivers 3 (zhao 2, qian 1), a2 delivers 1 (qian), b1 delivers 4 (sun);
    // c1 is a site whose document is not given.
    let a1 = site("a1", &[("zhao", 3), ("zhao", 4), ("qian", 5)]);
    let a2 = site("a2", &[("qian", 6)]);
    let b1 = site("b1", &[("sun", 7), ("sun", 8), ("sun", 9), ("sun", 10)]);
    let docs = [&a1, &a2, &b1];

    // Sites: 北区 = a1 + a2 = 4, 南区 = b1 = 4 (shared first), 西区 = c1 not given.
    let sites = contest(
        vec![
            ("北区", vec!["a1", "a2"]),
            ("南区", vec!["b1"]),
            ("西区", vec!["c1"]),
        ],
        ContestMembers::Sites,
    );
    let s = contest_standings(&sites, &docs, &ComputeEach).unwrap();
    let table: Vec<(u32, &str, Option<i64>)> = s
        .teams
        .iter()
        .map(|t| (t.rank, t.name.as_str(), t.value))
        .collect();
    assert_eq!(
        table,
        [
            (1, "北区", Some(4)),
            (1, "南区", Some(4)),
            (3, "西区", None)
        ]
    );
    assert_eq!(s.teams[2].members_not_available, ["c1"]);
    assert_eq!(s.leaders, ["北区", "南区"]);
    assert!(
        s.bottom.is_empty(),
        "all teams with figures share first place"
    );

    // Consultants, across sites: qian 1 + 1 = 2; zhao 2 → tie at 2, then sun 4 alone.
    let people = contest(
        vec![("A", vec!["zhao"]), ("B", vec!["qian"]), ("C", vec!["sun"])],
        ContestMembers::Consultants,
    );
    let s = contest_standings(&people, &docs, &ComputeEach).unwrap();
    let table: Vec<(u32, &str, Option<i64>)> = s
        .teams
        .iter()
        .map(|t| (t.rank, t.name.as_str(), t.value))
        .collect();
    assert_eq!(
        table,
        [(1, "C", Some(4)), (2, "A", Some(2)), (2, "B", Some(2))]
    );
    assert_eq!(s.leaders, ["C"]);
    assert_eq!(s.bottom, ["A", "B"]);
}
