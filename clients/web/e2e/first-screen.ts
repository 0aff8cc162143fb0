// How fast the first screen comes up on a mid-range phone: Chromium with its CPU
// slowed down (DevTools' CPU throttling, 4x by default) and a phone viewport, against a
// relay serving /app/. Prints figures; asserts nothing (docs/field-app.md has the ones
// measured).
//
//   node --import tsx e2e/first-screen.ts '{"base":"http://127.0.0.1:3030","token":"…","rate":4}'
//
// Two kinds of load: the first (enrolment from the link, everything over the network)
// and reloads (the app shell from the service worker, the documents from IndexedDB),
// each measured from navigation to the Today screen drawn with the site's data.

import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { chromium } from "playwright-core"

const config = JSON.parse(process.argv[2])
const rate = config.rate ?? 4
const ctx = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "first-screen-")), {
  executablePath: config.chromium ?? "/usr/bin/chromium",
  args: ["--no-sandbox"],
  viewport: { width: 390, height: 844 },
  isMobile: true,
  hasTouch: true,
})
const page = ctx.pages()[0] ?? (await ctx.newPage())
const cdp = await ctx.newCDPSession(page)
await cdp.send("Emulation.setCPUThrottlingRate", { rate })

async function measure(load: () => Promise<unknown>): Promise<number> {
  const start = Date.now()
  await load()
  await page.waitForSelector("body[data-ready]", { state: "attached", timeout: 120_000 })
  return Date.now() - start
}

const first = await measure(() => page.goto(`${config.base}/app/#token=${encodeURIComponent(config.token)}`))
await page.waitForFunction(() => navigator.serviceWorker.controller !== null, undefined, { timeout: 60_000 })
const reloads: number[] = []
for (let i = 0; i < 3; i++) reloads.push(await measure(() => page.reload()))
const customers = await page.evaluate(() => (window as any).dealersync.customers().length)
process.stdout.write(JSON.stringify({ cpuThrottling: rate, customers, firstLoadMs: first, reloadMs: reloads }) + "\n")
await ctx.close()
