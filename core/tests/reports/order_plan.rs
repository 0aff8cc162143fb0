//! The order plan.

use super::*;

#[test]
fn order_plan_nets_forecast_and_safety_stock_against_stock_and_pipeline() {
    let f = fixture();
    let plan = reports::order_plan(
        &f.network,
        &f.sites(),
        month(2026, 5),
        now(),
        &OrderPlanParams::default(),
    )
    .unwrap();
    assert_eq!(plan.month, "2026-05");
    // Made on April 15th: the last full month is March, not half of April.
    assert_eq!(plan.sales_month, "2026-03");
    let row = |m: &str| plan.rows.iter().find(|r| r.model == m).unwrap();

    // SDN-A: forecast 11; safety ⌈11 × 10 %⌉ = ⌈1.1⌉ = 2; in stock V01, V02 (hq) and
    // V11 (ag-1) = 3 (V10 is sold); on order V05 = 1.
    // One slow mover (V01) takes one more unit off:
    // 11 + 2 − 3 − 0 − 1 − 1 = 8 units × 100,000 yuan = 800,000 yuan.
    let a = row("SDN-A");
    assert_eq!(
        (
            a.forecast,
            a.safety_stock,
            a.in_stock,
            a.in_transit,
            a.on_order
        ),
        (11, 2, 3, 0, 1)
    );
    assert_eq!(a.slow_movers, 1, "V01, 104 days");
    assert_eq!(a.slow_mover_reduction, 1);
    assert_eq!(a.quantity, 8);
    assert_eq!(a.capital, Some(80 * WAN));
    // March sales: V06, delivered 23:30 CST March 31st. V13 (00:30 CST April 1st,
    // still March 31st in UTC) is an April sale.
    assert_eq!(a.last_month_sales, 1);

    // SUV-B: forecast 7; safety ⌈0.7⌉ = 1; in stock V07 = 1 (V03 is reserved); in
    // transit V04 + V08 = 2. 7 + 1 − 1 − 2 − 0 = 5 × 150,000 yuan = 750,000 yuan.
    let b = row("SUV-B");
    assert_eq!(
        (
            b.forecast,
            b.safety_stock,
            b.in_stock,
            b.in_transit,
            b.on_order
        ),
        (7, 1, 1, 2, 0)
    );
    assert_eq!((b.quantity, b.capital), (5, Some(75 * WAN)));
    assert_eq!((b.slow_movers, b.slow_mover_reduction), (0, 0));
    // March: V12 (c10) and c4's delivery, which has no VIN: its model of interest
    // (SUV-B) is used.
    assert_eq!(b.last_month_sales, 2);

    // EV-C: nobody expects to sell one, so no safety stock and nothing to order.
    let c = row("EV-C");
    assert_eq!(
        (c.forecast, c.safety_stock, c.quantity, c.capital),
        (0, 0, 0, Some(0))
    );

    // OLD-X: 0 + 0 − 1 would be −1: never below zero. Not catalogued: no capital.
    let x = row("OLD-X");
    assert_eq!((x.quantity, x.unit_cost, x.capital), (0, None, None));
    assert_eq!(x.slow_movers, 1);

    assert_eq!(plan.total_quantity, 13);
    assert_eq!(plan.total_capital, 155 * WAN);
    assert_eq!(
        plan.warnings,
        vec![ReportWarning::UnknownModel {
            model: "OLD-X".into()
        }]
    );

    // The same plan made on May 3rd shows April: V13 (SDN-A), c11's SUV-B (model of
    // interest), and c13's delivery whose model nobody knows.
    let may = reports::order_plan(
        &f.network,
        &f.sites(),
        month(2026, 5),
        cst(2026, 5, 3, 9, 0),
        &OrderPlanParams::default(),
    )
    .unwrap();
    assert_eq!(may.sales_month, "2026-04");
    let sales = |m: &str| {
        may.rows
            .iter()
            .find(|r| r.model == m)
            .unwrap()
            .last_month_sales
    };
    assert_eq!((sales("SDN-A"), sales("SUV-B")), (1, 1));
    assert_eq!(
        may.warnings,
        vec![
            ReportWarning::UnknownModel {
                model: "OLD-X".into()
            },
            ReportWarning::DeliveryWithoutModel {
                site: "ag-2".into(),
                customer: "c13".into(),
                at: cst(2026, 4, 5, 10, 0)
            },
        ]
    );

    // Safety stock as a fixed 3 units per forecast model:
    // SDN-A 11 + 3 − 3 − 1 − 1 (slow) = 9; SUV-B 7 + 3 − 1 − 2 = 7; EV-C forecast 0 → 0.
    let fixed = reports::order_plan(
        &f.network,
        &f.sites(),
        month(2026, 5),
        now(),
        &OrderPlanParams {
            safety_stock: SafetyStock::Units(3),
            ..OrderPlanParams::default()
        },
    )
    .unwrap();
    let q: Vec<(&str, i64)> = fixed
        .rows
        .iter()
        .map(|r| (r.model.as_str(), r.quantity))
        .collect();
    assert_eq!(
        q,
        vec![("EV-C", 0), ("OLD-X", 0), ("SDN-A", 9), ("SUV-B", 7)]
    );
    // 9 × 100,000 + 7 × 150,000 = 1,950,000 yuan.
    assert_eq!(fixed.total_capital, 195 * WAN);
}
