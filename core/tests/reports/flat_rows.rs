//! Rows as tables (CSV, spreadsheets).

use super::*;

/// Every tabular report's rows are flat objects of scalars, so CSV and tables work.
#[test]
fn tabular_rows_are_flat() {
    fn assert_flat<T: Tabular>(report: &T) -> usize {
        let rows = report.rows();
        for row in &rows {
            let v = serde_json::to_value(row).unwrap();
            let obj = v.as_object().expect("a row is an object");
            for (k, field) in obj {
                assert!(
                    !field.is_object() && !field.is_array(),
                    "field {k} is nested: {field}"
                );
            }
        }
        rows.len()
    }
    let f = fixture();
    let s = f.sites();
    let (n, m) = (&f.network, month(2026, 3));
    assert_eq!(assert_flat(&reports::stock(n, &s).unwrap()), 9);
    assert_eq!(
        assert_flat(&reports::ageing(n, &s, now(), &StockParams::default()).unwrap()),
        6
    );
    assert_eq!(
        assert_flat(&reports::forecast_rollup(n, &s, month(2026, 5)).unwrap()),
        13
    );
    assert_eq!(
        assert_flat(
            &reports::order_plan(n, &s, month(2026, 5), now(), &OrderPlanParams::default())
                .unwrap()
        ),
        4
    );
    assert_eq!(assert_flat(&reports::kpis(n, &s, m).unwrap()), 16);
    assert_eq!(assert_flat(&reports::pipeline(n, &s, now()).unwrap()), 3);
    assert_eq!(assert_flat(&reports::sales_board(n, &s, m).unwrap()), 16);
    // Names on the wire are camelCase, enums snake_case.
    let stock = serde_json::to_value(&reports::stock(n, &s).unwrap().rows[0]).unwrap();
    assert_eq!(stock["costValue"], 8 * WAN);
    assert_eq!(stock["status"], "in_stock");
}
