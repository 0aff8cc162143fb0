// The app's domain module against core's conformance vectors (core/vectors/).

import "@automerge/automerge" // initialises the wasm in node; the app uses the slim build
import * as A from "@automerge/automerge/slim"
import assert from "node:assert/strict"
import { readFileSync } from "node:fs"
import { test } from "node:test"
import { detectConflicts } from "../src/domain/conflicts"
import { followUpsDue, isoWeek, monthKey, monthRange, ownFigures } from "../src/domain/figures"
import { normalisePhone, phoneErrorMessage } from "../src/domain/phone"
import * as schema from "../src/domain/schema"
import { parseVin, vinErrorMessage, vinFromScan } from "../src/domain/vin"
import { Step, fromHex, runSteps, typedWalk } from "./interpret"

const vector = (name: string) => JSON.parse(readFileSync(new URL(`../../../core/vectors/${name}`, import.meta.url), "utf8"))

test("VIN cases give core's result, normalised form and error", () => {
  const { cases } = vector("vin.json")
  assert.ok(cases.length > 30)
  for (const c of cases) {
    const got = parseVin(c.input, c.policy)
    if (c.ok) assert.deepEqual(got, { ok: true, vin: c.vin }, c.input)
    else {
      assert.equal(got.ok, false, c.input)
      if (!got.ok) {
        assert.deepEqual(got.error, c.error, c.input)
        assert.equal(vinErrorMessage(got.error), c.message, c.input)
      }
    }
  }
})

test("a scanned VIN goes through the same check: the first valid one, normalised; misreads never fill the field", () => {
  const { cases } = vector("vin.json")
  const good = cases.filter((c: { ok: boolean; policy: string }) => c.ok && c.policy === "enforce")
  const bad = cases.filter((c: { ok: boolean; policy: string }) => !c.ok && c.policy === "enforce")
  assert.ok(good.length > 2 && bad.length > 2)
  assert.equal(vinFromScan(bad.map((c: { input: string }) => c.input)), null)
  assert.equal(vinFromScan([bad[0].input, "https://example.com/x", good[1].input, good[2].input]), good[1].vin)
  assert.equal(vinFromScan([]), null)
})

test("phone cases give core's normalised number or error", () => {
  const { cases } = vector("phone.json")
  for (const c of cases) {
    const got = normalisePhone(c.input)
    if (c.ok) assert.deepEqual(got, { ok: true, phone: c.phone }, c.input)
    else {
      assert.equal(got.ok, false, c.input)
      if (!got.ok) {
        assert.deepEqual(got.error, c.error, c.input)
        assert.equal(phoneErrorMessage(got.error), c.message, c.input)
      }
    }
  }
})

test("lifecycle transitions, steps and enums are core's", () => {
  const v = vector("lifecycle.json")
  for (const t of v.customer) assert.equal(schema.customerTransitionAllowed(t.from, t.to), t.allowed, `${t.from}>${t.to}`)
  for (const t of v.vehicle) assert.equal(schema.vehicleTransitionAllowed(t.from, t.to), t.allowed, `${t.from}>${t.to}`)
  for (const a of v.vehicleActions) {
    assert.deepEqual(schema.VEHICLE_ACTIONS[a.action as schema.VehicleAction], { from: a.from, to: a.to }, a.action)
  }
  assert.deepEqual([...schema.CUSTOMER_SOURCES], v.enums.customerSource)
  assert.deepEqual([...schema.CUSTOMER_STATUSES], v.enums.customerStatus)
  assert.deepEqual([...schema.EVENT_KINDS], v.enums.eventKind)
  assert.deepEqual([...schema.CALL_DIRECTIONS], v.enums.callDirection)
  assert.deepEqual([...schema.VEHICLE_STATUSES], v.enums.vehicleStatus)
  assert.deepEqual([...schema.SITE_KINDS], v.enums.siteKind)
  assert.deepEqual([...schema.CUSTOMER_AREAS], v.enums.customerArea)
  assert.equal(schema.CLOCK_SKEW_MS, v.clockSkewMs)
  assert.equal(schema.MAX_PARTY_SIZE, v.maxPartySize)
  assert.equal(schema.SLOW_MOVER_DAYS, v.slowMoverDays)
})

test("a day's operations write the document core writes, and refuse what core refuses", () => {
  const v = vector("site-day.json")
  const doc = runSteps(A.load(fromHex(v.initial)), v.network, v.steps as Step[])
  assert.deepEqual(typedWalk(doc), v.document)
})

test("referrals, follow-ups, surveys, areas, lost customers, complaints, discounts, transfers, arrivals and a forecast over an adjustment write what core writes", () => {
  const v = vector("care.json")
  assert.ok(v.steps.length > 30)
  const doc = runSteps(A.load(fromHex(v.initial)), v.network, v.steps as Step[])
  assert.deepEqual(typedWalk(doc), v.document)
})

test("conflicts on the merged offline copies are core's, ids included, and the resolutions clear them", () => {
  const v = vector("conflicts.json")
  let doc = A.load<schema.SiteDoc>(fromHex(v.merged))
  assert.deepEqual(typedWalk(doc), v.document)
  assert.deepEqual(detectConflicts(doc), v.conflicts)
  doc = runSteps(doc, v.network, v.refusals)
  v.resolutions.forEach((step: Step, i: number) => {
    doc = runSteps(doc, v.network, [step])
    assert.deepEqual(detectConflicts(doc), v.after[i].conflicts, `after ${step.op}`)
    assert.deepEqual(typedWalk(doc), v.after[i].document, `document after ${step.op}`)
  })
})

test("the Today screen's own figures are the KPI report's, on core's CST calendar", () => {
  const v = vector("figures.json")
  const day = vector(v.document)
  const doc = runSteps(A.load(fromHex(day.initial)), day.network, day.steps as Step[])
  const plain = JSON.parse(JSON.stringify(doc, (_k, x) => (typeof x === "bigint" ? Number(x) : x)))
  assert.equal(monthKey(v.at), v.monthOfAt)
  const week = isoWeek(v.at)
  for (const p of v.periods) {
    if (p.period.includes("W")) {
      assert.equal(week.key, p.period)
      assert.deepEqual(week.range, [p.start, p.end])
    } else {
      assert.deepEqual(monthRange(p.period), [p.start, p.end], p.period)
    }
    const { period, start, end, ...want } = p
    assert.deepEqual(ownFigures(plain, v.consultant, [start, end]), want, period)
  }
})

test("the Today screen's planned follow-ups are core's follow-ups report, by CST day", () => {
  const v = vector("follow-ups.json")
  const care = vector(v.document)
  const doc = runSteps(A.load(fromHex(care.initial)), care.network, care.steps as Step[])
  const plain = JSON.parse(JSON.stringify(doc, (_k, x) => (typeof x === "bigint" ? Number(x) : x)))
  assert.ok(v.days.some((d: { due: string[] }) => d.due.length === 0) && v.days.some((d: { due: string[] }) => d.due.length > 0))
  for (const d of v.days) {
    const planned = followUpsDue(plain, v.consultant, d.at).filter(x => x.due != null).map(x => x.customer.id)
    assert.deepEqual(planned, d.due, `at ${d.at}`)
  }
})
