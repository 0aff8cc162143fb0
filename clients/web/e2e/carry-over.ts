// A phone across the relay's monthly carry-over, in headless Chromium against the real
// relay (docs/growth.md): driven by tests/tests/field_app_periods.rs.
//
//   node --import tsx e2e/carry-over.ts '{"base":"http://127.0.0.1:PORT","token":"…","admin":"…","site":"showroom","dir":"…","shots":"…"}'
//
// The phone enrols and syncs, goes offline and adds a customer; the relay carries the
// site over into next month (`POST /api/admin/archive`, as the operator's timer does);
// the phone comes back online: its customer reaches the archive (the relay's KPI report
// counts its visit), the phone moves to the new working document (the one the relay
// lists) with the carried customers, lets the archive go once the relay has its changes, and a customer added
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

  // Offline, a walk-in (a visit) entered in this month's document.
  await context.setOffline(true)
  await waitStatus("phone", p, { online: false })
  const offline = await addCustomer(p, "walk_in", "陈静", "13911112222")
  await closeSheets(p)
  const offlineStatus = await waitStatus("phone", p, { online: false, unackedAbove: 0 })

  // The month ends at the relay.
  const done: { site: string; documentId: string; archived: string | null }[] = await api("/api/admin/archive", {
    method: "POST",
    body: JSON.stringify({ month }),
  })
  const carried = done.find(s => s.site === config.site)
  if (!carried || carried.archived !== first) throw new Error(`the carry-over did not archive ${first}: ${JSON.stringify(done)}`)
  const working = carried.documentId
  log("carried over", first, "→", working, "for", month)

  // Back online: the late customer reaches the archive, the phone moves on.
  await context.setOffline(false)
  await until("the phone works in the new document", async () => (await hook<string>(p, "document")) === working)
  await waitStatus("phone", p, { online: true, unacked: 0 })
  await until("the phone lets the archive go once the relay has its changes", async () => (await hook<unknown[]>(p, "archives")).length === 0)
  const listed = (await api("/api/sites")).find((s: { id: string }) => s.id === config.site)
  if (listed?.documentId !== working) throw new Error(`the relay lists ${JSON.stringify(listed)}, not the working document ${working}`)
  const visitsAfter = await until("the relay's report counts the visit recorded offline", async () => {
    const n = await visits()
    return n === visitsBefore + 1 && n
  })
  const after = await hook<string[]>(p, "customers")
  const missing = open.filter(id => !after.includes(id))
  if (missing.length) throw new Error(`open customers not carried: ${missing}`)
  if (after.includes(offline)) throw new Error("the customer entered offline should stay in the archive it was written to")
  await tab(p, "customers")
  await shot(p, "20-carried-over")

  // Work goes on in the new document, also after a reload with no network.
  const later = await addCustomer(p, "call_in", "刘洋", "13922223333")
  await closeSheets(p)
  await waitStatus("phone", p, { online: true, unacked: 0 })
  await context.setOffline(true)
  await waitStatus("phone", p, { online: false })
  await p.reload()
  await ready(p)
  const reopened = await hook<string>(p, "document")
  if (reopened !== working) throw new Error(`reopened offline in ${reopened}, not ${working}`)
  if (!(await hook<string[]>(p, "customers")).includes(later)) throw new Error("the new customer is gone after the reload")
  await tab(p, "today")
  await shot(p, "21-new-month-offline")
  await context.setOffline(false)
  await waitStatus("phone", p, { online: true, unacked: 0 })

  process.stdout.write(JSON.stringify({
    ok: true, month, first, working, offline, later, carried: open.length, customersBefore: before.length,
    offlineUnacked: offlineStatus.unacked, visitsBefore, visitsAfter,
  }) + "\n")
} catch (e) {
  log("failed:", (e as Error).stack ?? String(e))
  if (page) await shot(page, "failed-carry-over").catch(() => {})
  process.exitCode = 1
} finally {
  await context?.close().catch(() => {})
}
