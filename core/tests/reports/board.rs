//! The sales board.

use super::*;

#[test]
fn sales_board_ranks_regions_teams_and_consultants() {
    let f = fixture();
    let b = reports::sales_board(&f.network, &f.sites(), month(2026, 3)).unwrap();
    let table = |rows: &[reports::BoardRow]| -> Vec<(u32, String, i64, Option<f64>)> {
        rows.iter()
            .map(|r| (r.rank, r.id.clone(), r.units.unwrap(), r.units_achievement))
            .collect()
    };
    let s = |x: &str| x.to_string();

    // Regions, against the sum of the targets set in them:
    // dc-n = ag-1 1 unit / ag-1's target 2 = 0.5;
    // hq = 3 units (hq, ag-1, ag-3) / (4 + 2 + 3 + 1 = 10) = 0.3;
    // dc-s = ag-3 1 unit / (dc-s 3 + ag-3 1 = 4) = 0.25.
    assert_eq!(
        table(&b.regions),
        vec![
            (1, s("dc-n"), 1, Some(0.5)),
            (2, s("hq"), 3, Some(0.3)),
            (3, s("dc-s"), 1, Some(0.25)),
        ]
    );
    let hq = &b.regions[1];
    // Revenue 115,000 + 165,000 + 0 = 280,000 of 500,000 + 300,000 + 400,000 + 0 =
    // 1,200,000 yuan: 0.2333.
    assert_eq!(
        (hq.revenue, hq.target_revenue),
        (Some(28 * WAN), Some(120 * WAN))
    );
    assert_eq!(hq.revenue_achievement, Some(0.2333));

    // Teams, each site's own: ag-3 1/1, ag-1 1/2, hq 1/4, dc-s 0/3, then the sites
    // with no target, tied at 0 units: one shared rank, by site id.
    assert_eq!(
        table(&b.teams),
        vec![
            (1, s("ag-3"), 1, Some(1.0)),
            (2, s("ag-1"), 1, Some(0.5)),
            (3, s("hq"), 1, Some(0.25)),
            (4, s("dc-s"), 0, Some(0.0)),
            (5, s("ag-2"), 0, None),
            (5, s("dc-n"), 0, None),
            (5, s("rs-1"), 0, None),
        ]
    );

    // Consultants: wang 1/2; li 0/1 and zhou 0/1 tie; then the ones without a target
    // by units and revenue: zhao (1 unit, 165,000), sun (1 unit, 0), chen (0).
    assert_eq!(
        table(&b.consultants),
        vec![
            (1, s("wang"), 1, Some(0.5)),
            (2, s("li"), 0, Some(0.0)),
            (2, s("zhou"), 0, Some(0.0)),
            (4, s("zhao"), 1, None),
            (5, s("sun"), 1, None),
            (6, s("chen"), 0, None),
        ]
    );
    assert_eq!(b.consultants[3].site, "ag-1");

    // The flat table holds the three, in that order.
    let rows = b.rows();
    assert_eq!(rows.len(), 3 + 7 + 6);
    assert_eq!(rows[0].level, BoardLevel::Region);
    assert_eq!(rows[3].level, BoardLevel::Team);
    assert_eq!(rows[10].level, BoardLevel::Consultant);
}
