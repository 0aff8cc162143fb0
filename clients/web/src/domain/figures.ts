// What the Today screen shows: a consultant's own figures for this month and this week
// against the targets set for them, and the customers waiting for a follow-up. Counted
// as core's KPI report counts them (core/src/reports/kpi.rs): from customer events by
// who recorded them and when they happened, in China Standard Time; walk-in batches are
// visits; units are deliveries, revenue the delivery's amount or the order's price.

import { str } from "./ops"
import type { Customer, CustomerEvent, SiteDoc, Target } from "./schema"

const CST_MS = 8 * 3_600_000
const DAY_MS = 86_400_000

/** `YYYY-MM` of an instant, in CST. */
export function monthKey(t: number): string {
  const d = new Date(t + CST_MS)
  return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, "0")}`
}

/** The month after `YYYY-MM`. */
export function nextMonth(month: string): string {
  const [y, m] = month.split("-").map(Number)
  return m === 12 ? `${y + 1}-01` : `${y}-${String(m + 1).padStart(2, "0")}`
}

/** Start (inclusive) and end (exclusive) of a CST month, in UTC ms. */
export function monthRange(month: string): [number, number] {
  const [y, m] = month.split("-").map(Number)
  return [Date.UTC(y, m - 1, 1) - CST_MS, Date.UTC(y, m, 1) - CST_MS]
}

/** The ISO week key (`2026-W09`) of an instant in CST, and the week's range. */
export function isoWeek(t: number): { key: string; range: [number, number] } {
  const d = new Date(t + CST_MS)
  const day = (d.getUTCDay() + 6) % 7 // Monday 0
  const monday = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() - day)
  const thursday = new Date(monday + 3 * DAY_MS)
  const year = thursday.getUTCFullYear()
  const week = Math.floor((thursday.getTime() - Date.UTC(year, 0, 1)) / (7 * DAY_MS)) + 1
  return { key: `${year}-W${String(week).padStart(2, "0")}`, range: [monday - CST_MS, monday - CST_MS + 7 * DAY_MS] }
}

/** One period's own figures. */
export interface Figures {
  visits: number
  calls: number
  testDrives: number
  orders: number
  units: number
  revenue: number
}

/** A live (not merged) customer list. */
export function liveCustomers(doc: SiteDoc): Customer[] {
  return Object.values(doc.customers ?? {}).filter(c => !str(c.mergedInto))
}

function deliveryRevenue(c: Customer, d: CustomerEvent): number {
  if (d.amount != null) return d.amount
  let best: { at: number; amount: number } | null = null
  for (const e of c.events) {
    if (str(e.kind) === "order" && e.at <= d.at && e.amount != null && (!best || e.at >= best.at)) best = { at: e.at, amount: e.amount }
  }
  return best?.amount ?? 0
}

/** `by`'s figures in [start, end). */
export function ownFigures(doc: SiteDoc, by: string, [start, end]: [number, number]): Figures {
  const f: Figures = { visits: 0, calls: 0, testDrives: 0, orders: 0, units: 0, revenue: 0 }
  const inside = (t: number) => t >= start && t < end
  for (const c of liveCustomers(doc)) {
    const delivered = new Set<string>()
    for (const e of c.events) {
      if (str(e.by) !== by || !inside(e.at)) continue
      switch (str(e.kind)) {
        case "visit":
          f.visits++
          break
        case "call":
          f.calls++
          break
        case "test_drive":
          f.testDrives++
          break
        case "order":
          f.orders++
          break
        case "delivery": {
          const vin = str(e.vin) ?? ""
          if (vin && delivered.has(vin)) break
          delivered.add(vin)
          f.units++
          f.revenue += deliveryRevenue(c, e)
          break
        }
      }
    }
  }
  for (const w of Object.values(doc.walkIns ?? {})) if (str(w.by) === by && inside(w.at)) f.visits++
  return f
}

/** The consultant's target for a period key, if set. */
export function targetFor(doc: SiteDoc, by: string, period: string): Target | null {
  return doc.targets?.[by]?.[period] ?? null
}

/** How long a customer may wait for the next contact before the app lists them. */
export const FOLLOW_UP_AFTER_MS = 3 * DAY_MS

/** Days a car has been in stock here, as core's ageing report counts them: CST calendar
 *  days from its arrival to `now` (0 on the arrival day); null without an arrival. */
export function daysInStock(arrivedAt: number | null | undefined, now: number): number | null {
  return arrivedAt == null ? null : Math.max(0, cstDay(now) - cstDay(arrivedAt))
}

/** The CST day number of an instant (days since 1970-01-01 in CST). */
export function cstDay(t: number): number {
  return Math.floor((t + CST_MS) / DAY_MS)
}

/**
 * The consultant's customers waiting for a call: first those whose planned follow-up
 * (`nextFollowUp`) falls on or before today in CST, as core's follow-ups report counts
 * them (any status but lost, after-sales calls included), most overdue first — a call
 * promised to the customer comes before the rest; then, with no call planned, open
 * customers (not ordered, delivered or lost) with no contact for three days, the
 * longest silent first.
 */
export function followUpsDue(doc: SiteDoc, by: string, now: number): { customer: Customer; last: number; due: number | null }[] {
  const out: { customer: Customer; last: number; due: number | null }[] = []
  for (const c of liveCustomers(doc)) {
    const status = str(c.status)
    if (str(c.consultant) !== by || status === "lost") continue
    const last = Math.max(c.createdAt, ...c.events.map(e => e.at))
    const planned = c.nextFollowUp ?? null
    if (planned != null) {
      if (cstDay(planned) <= cstDay(now)) out.push({ customer: c, last, due: planned })
    } else if (status !== "ordered" && status !== "delivered" && now - last >= FOLLOW_UP_AFTER_MS) {
      out.push({ customer: c, last, due: null })
    }
  }
  return out.sort((a, b) => Number(a.due == null) - Number(b.due == null) || (a.due ?? a.last) - (b.due ?? b.last))
}
