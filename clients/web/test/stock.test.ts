// The Stock screen's days in stock: CST calendar days, as core's ageing report counts
// them (docs/reports.md, "Ageing and slow movers").

import assert from "node:assert/strict"
import { test } from "node:test"
import { daysInStock } from "../src/domain/figures"

const cst = (y: number, m: number, d: number, h: number, min = 0) => Date.UTC(y, m - 1, d, h - 8, min)

test("0 on the arrival day, 1 from the next CST midnight, whatever the hour", () => {
  const arrived = cst(2026, 3, 31, 23, 30)
  assert.equal(daysInStock(arrived, cst(2026, 3, 31, 23, 59)), 0)
  assert.equal(daysInStock(arrived, cst(2026, 4, 1, 0, 30)), 1) // the UTC date is still March 31st
  assert.equal(daysInStock(cst(2026, 1, 1, 9), cst(2026, 4, 1, 9)), 90)
  assert.equal(daysInStock(cst(2026, 4, 2, 9), cst(2026, 4, 1, 9)), 0) // a future arrival (clock skew)
  assert.equal(daysInStock(null, cst(2026, 4, 1, 9)), null)
})
