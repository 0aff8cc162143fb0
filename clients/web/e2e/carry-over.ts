// A phone across the relay's monthly carry-over, in headless Chromium against the real
// relay (docs/growth.md): driven by tests/tests/field_app_periods.rs.
//
//   node --import tsx e2e/carry-over.ts '{"base":"http://127.0.0.1:PORT","token":"…","admin":"…","site":"showroom","dir":"…","shots":"…"}'
//
// The phone enrols and syncs. Offline, it adds a customer while the relay carries the
// site over into a month long past: back online, it moves to the new document and keeps
// the change the closed archive would refuse, counted and not offered. Offline again, it
// adds a customer while the relay carries the site over into next month (`POST
// /api/admin/archive`, as the operator's timer does); the phone comes back online: its customer reaches the archive (the relay's KPI report
// counts its visit), the phone moves to the new working document (the one the relay
// lists) with the carried customers and the late one the relay forwarded from the archive, lets the archive go
// once the relay has its changes, and a customer added
// then lands in the working document, also after a reload with no network. Prints one
// JSON line for the Rust side.

import type { BrowserContext, Page } from "playwright-core"
import { monthKey, nextMonth } from "../src/domain/figures"
import { addCustomer, base, closeSheets, config, hook, log, phone, ready, shot, tab, until, waitStatus } from "./harness"

const who = "wang.fang"

/** The first object in `v` (depth first) whose `consultant` is `name`. */
function findRow(v: unknown, name: string): Record<string, unknown> | undefined {
  if (Array.isArray(v)) return v.map(x => findRow(x, name)).find(Boolean)
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>
    return o.consultant === name ? o : Object.values(o).map(x => findRow(x, name)).find(Boolean)
  }
  return undefined
}

async function api(path: string, init: RequestInit = {}): Promise<any> {
  const res = await fetch(`${base}${path}`, {
    ...init,
    headers: { Authorization: `Bearer ${config.admin}`, "Content-Type": "application/json" },
  })
  const text = await res.text()
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status} ${text}`)
  return JSON.parse(text)
}

/** The consultant's visits this month in the relay's KPI report (the site read as its whole chain). */
async function visits(): Promise<number> {
  const row = findRow(await api(`/api/reports/kpi?level=consultant&site=${config.site}`), who)
  return Number(row?.visits ?? 0)
}

/** Carries every site over into `month` at the relay; the site's new working document (the one it left must be `from`). */
async function carryOver(month: string, from: string): Promise<string> {
  const done: { site: string; documentId: string; archived: string | null }[] = await api("/api/admin/archive", {
    method: "POST",
    body: JSON.stringify({ month }),
  })
  const carried = done.find(s => s.site === config.site)
  if (!carried || carried.archived !== from) throw new Error(`the carry-over into ${month} did not archive ${from}: ${JSON.stringify(done)}`)
  log("carried over", from, "→", carried.documentId, "for", month)
  return carried.documentId
}

let context: BrowserContext | undefined
let page: Page | undefined
try {
  const month = nextMonth(monthKey(Date.now()))
  ;({ ctx: context, page } = await phone("carry-over"))
  const p = page
  await p.goto(`${base}/app/#token=${encodeURIComponent(config.token)}`)
  await ready(p)
  await waitStatus("phone", p, { online: true, unacked: 0 })
  await until("the service worker controls the page", () => p.evaluate(() => navigator.serviceWorker.controller !== null))
  const first = await hook<string>(p, "document")
  const before = await hook<string[]>(p, "customers")
  const open: string[] = []
  for (const id of before) {
    const c = await hook<any>(p, "customer", id)
    if (!["delivered", "lost"].includes(c.status) && !c.mergedInto) open.push(id)
  }
  if (open.length === 0 || open.length === before.length) throw new Error(`the demo showroom should have open and closed customers: ${open.length} of ${before.length}`)
  const visitsBefore = await visits()

  // First a carry-over into a month long past, while the phone is offline with a
  // customer entered: the archive's grace week is over when the phone is back, so the
  // phone moves on, keeps that change (counted as not at head office) and stops
  // offering the archive, which the relay would refuse.
  await context.setOffline(true)
  await waitStatus("phone", p, { online: false })
  const stranded = await addCustomer(p, "walk_in", "孙丽", "13933334444")
  await closeSheets(p)
  const strandedPending = (await waitStatus("phone", p, { online: false, unackedAbove: 0 })).unacked
  const second = await carryOver("2020-01", first)
  await context.setOffline(false)
  await until("the phone works in the document after the past month", async () => (await hook<string>(p, "document")) === second)
  const closed = await until("the phone keeps the closed archive", async () => {
    const held = await hook<{ document: string; writableUntil: number | null }[]>(p, "archives")
    return held.length === 1 && held[0].document === first && held[0].writableUntil! < Date.now() && held
  })
  await waitStatus("phone", p, { online: true, unacked: strandedPending })
  await until("the status bar says which changes are in a closed month", () =>
    p.evaluate(n => document.querySelector("header.status")?.getAttribute("data-closed") === String(n), strandedPending))
  await shot(p, "19-closed-archive-pending")

  // Offline again, a walk-in (a visit) entered in the working document.
  await context.setOffline(true)
  await waitStatus("phone", p, { online: false })
  const offline = await addCustomer(p, "walk_in", "陈静", "13911112222")
  await closeSheets(p)
  const offlineStatus = await waitStatus("phone", p, { online: false, unackedAbove: strandedPending })

  // The month ends at the relay.
  const working = await carryOver(month, second)

  // Back online: the late customer reaches the archive (in its grace week), the phone
  // moves on; only the closed archive's change is still not at head office.
  await context.setOffline(false)
  await until("the phone works in the new document", async () => (await hook<string>(p, "document")) === working)
  await waitStatus("phone", p, { online: true, unacked: strandedPending })
  await until("the phone lets the archive go once the relay has its changes", async () => {
    const held = await hook<{ document: string }[]>(p, "archives")
    return held.length === 1 && held[0].document === first
  })
  const listed = (await api("/api/sites")).find((s: { id: string }) => s.id === config.site)
  if (listed?.documentId !== working) throw new Error(`the relay lists ${JSON.stringify(listed)}, not the working document ${working}`)
  const visitsAfter = await until("the relay's report counts the visit recorded offline", async () => {
    const n = await visits()
    return n === visitsBefore + 1 && n
  })
  // The relay forwards the customer the archive took in its grace week into the working
  // document (docs/growth.md, late changes forward); the one the closed archive refused
  // stays on the phone only.
  const after = await until("the relay forwards the late customer into the working document", async () => {
    const list = await hook<string[]>(p, "customers")
    return list.includes(offline) && list
  })
  const missing = open.filter(id => !after.includes(id))
  if (missing.length) throw new Error(`open customers not carried: ${missing}`)
  if (after.includes(stranded)) throw new Error("the customer the closed archive refused should not be in the working document")
  await tab(p, "customers")
  await shot(p, "20-carried-over")

  // Work goes on in the new document, also after a reload with no network.
  const later = await addCustomer(p, "call_in", "刘洋", "13922223333")
  await closeSheets(p)
  await waitStatus("phone", p, { online: true, unacked: strandedPending })
  await context.setOffline(true)
  await waitStatus("phone", p, { online: false })
  await p.reload()
  await ready(p)
  const reopened = await hook<string>(p, "document")
  if (reopened !== working) throw new Error(`reopened offline in ${reopened}, not ${working}`)
  if (!(await hook<string[]>(p, "customers")).includes(later)) throw new Error("the new customer is gone after the reload")
  await tab(p, "today")
  await shot(p, "21-new-month-offline")
  await waitStatus("phone", p, { online: false, unacked: strandedPending })
  if ((await hook<unknown[]>(p, "archives")).length !== 1) throw new Error("the closed archive is not kept after the reload")
  await context.setOffline(false)
  await waitStatus("phone", p, { online: true, unacked: strandedPending })

  process.stdout.write(JSON.stringify({
    ok: true, month, first, second, working, stranded, offline, later, carried: open.length, customersBefore: before.length,
    strandedPending, closed, offlineUnacked: offlineStatus.unacked, visitsBefore, visitsAfter,
  }) + "\n")
} catch (e) {
  log("failed:", (e as Error).stack ?? String(e))
  if (page) await shot(page, "failed-carry-over").catch(() => {})
  process.exitCode = 1
} finally {
  await context?.close().catch(() => {})
}
