// The Today screen's list of customers waiting for a call: the order a consultant works
// down it in (which customers are on it is held to core by core/vectors/follow-ups.json).

import assert from "node:assert/strict"
import { test } from "node:test"
import { followUpsDue } from "../src/domain/figures"
import type { Customer, SiteDoc } from "../src/domain/schema"

const DAY = 86_400_000
const NOW = Date.UTC(2026, 11, 2, 4) // 2026-12-02 12:00 CST

function customer(id: string, lastContact: number, nextFollowUp: number | null, status: Customer["status"] = "lead"): Customer {
  return {
    id, name: id, phone: "+8613800000000", source: "walk_in", modelOfInterest: null, consultant: "wang",
    status, createdAt: lastContact, events: [], nextFollowUp,
  }
}

test("calls promised to customers come first, most overdue first; then the longest silent", () => {
  const doc = {
    customers: {
      silent100: customer("silent100", NOW - 100 * DAY, null),
      silent5: customer("silent5", NOW - 5 * DAY, null),
      recent: customer("recent", NOW - 1 * DAY, null),
      dueToday: customer("dueToday", NOW - 20 * DAY, NOW - 2 * 3_600_000),
      due3: customer("due3", NOW - 30 * DAY, NOW - 3 * DAY),
      later: customer("later", NOW - 200 * DAY, NOW + 2 * DAY),
      delivered: customer("delivered", NOW - 50 * DAY, null, "delivered"),
      lost: customer("lost", NOW - 50 * DAY, NOW - DAY, "lost"),
    },
  } as unknown as SiteDoc
  const order = followUpsDue(doc, "wang", NOW).map(x => x.customer.id)
  assert.deepEqual(order, ["due3", "dueToday", "silent100", "silent5"])
})
