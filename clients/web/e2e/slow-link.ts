// A phone's first start over a slow link: every byte between the phone and the relay
// goes through a proxy that delays it (tests/tests/field_app.rs starts the relay and the
// proxy). The stock WebSocket adapter calls itself ready one second after it is
// created, answered or not, so on a link whose round trip is longer than that a
// document not yet on the phone would be "unavailable"; the app must keep asking
// until the relay answers. The phone enrols from a link (what a QR code opens), and
// must show the site's data, then take a customer that reaches the relay.
//
//   node --import tsx e2e/slow-link.ts '{"base":"http://127.0.0.1:PROXY","code":"…","dir":"…","shots":"…"}'
//
// Prints one JSON line: {"customers": N, "added": "<id>", "readyMs": T}.

import { mkdirSync } from "node:fs"
import { join } from "node:path"
import { chromium } from "playwright-core"

const config = JSON.parse(process.argv[2])
const DEADLINE = 120_000
mkdirSync(config.shots, { recursive: true })
const log = (...a: unknown[]) => process.stderr.write(`[slow-link] ${a.join(" ")}\n`)

const ctx = await chromium.launchPersistentContext(join(config.dir, "slow"), {
  executablePath: config.chromium ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
  viewport: { width: 390, height: 844 },
  isMobile: true,
  hasTouch: true,
  locale: "zh-CN",
  timezoneId: "Asia/Shanghai",
})
const page = ctx.pages()[0] ?? (await ctx.newPage())
page.on("pageerror", e => log("page error:", e.message))
const started = Date.now()
await page.goto(`${config.base}/app/#code=${encodeURIComponent(config.code)}`, { timeout: DEADLINE })
try {
  await page.waitForSelector("body[data-ready]", { state: "attached", timeout: DEADLINE })
} catch (e) {
  await page.screenshot({ path: join(config.shots, "slow-link-failed.png") })
  const text = (await page.textContent("body"))?.slice(0, 300)
  throw new Error(`the app never became ready over the slow link; the screen says: ${text}`)
}
const readyMs = Date.now() - started
const hook = <T>(f: string, ...args: unknown[]) =>
  page.evaluate(([f, args]) => (window as any).dealersync[f as string](...(args as unknown[])), [f, args] as const) as Promise<T>
// The site's customers arrive from the relay (the demo showroom has some).
const end = Date.now() + DEADLINE
let customers: string[] = []
while (Date.now() < end) {
  customers = await hook<string[]>("customers")
  if (customers.length > 0) break
  await new Promise(r => setTimeout(r, 200))
}
if (customers.length === 0) throw new Error("no customer of the site reached the phone")
await page.screenshot({ path: join(config.shots, "slow-link-today.png") })

// A walk-in entered on the phone reaches the relay: the status bar's count of changes
// not acknowledged goes back to zero.
const before = new Set(customers)
await page.click("nav.tabs [data-tab=customers]")
await page.click(".chips [data-origin=walk_in]")
await page.fill(".sheet input[name=name]", "慢网客户")
await page.fill(".sheet input[name=phone]", "13912345678")
await page.click(".sheet form button[type=submit]")
let added: string | undefined
while (Date.now() < end && !added) {
  added = (await hook<string[]>("customers")).find(c => !before.has(c))
  if (!added) await new Promise(r => setTimeout(r, 200))
}
if (!added) throw new Error("the customer was not saved")
while (Date.now() < end) {
  const unacked = await page.evaluate(() => Number((document.querySelector("header.status[data-online]") as HTMLElement | null)?.dataset.unacked ?? -1))
  if (unacked === 0) break
  await new Promise(r => setTimeout(r, 200))
}
if (Date.now() >= end) throw new Error("the relay never acknowledged the phone's customer")
process.stdout.write(JSON.stringify({ customers: customers.length, added, readyMs }) + "\n")
await ctx.close()
