// What the browser scenarios share (e2e/phones.ts, e2e/carry-over.ts): their
// configuration (the JSON given as the one argument), phones as persistent Chromium
// profiles with a phone's viewport, waits with deadlines that say what they waited
// for, the status bar read from the page, the app's read-only hooks and the few
// screen steps several scenarios take.

import { mkdirSync } from "node:fs"
import { join } from "node:path"
import { chromium, type BrowserContext, type Page } from "playwright-core"
import { fakeBarcodeDetector } from "./camera"

export const config = JSON.parse(process.argv[2])
export const base: string = config.base
export const shots: string = config.shots
export const DEADLINE = 60_000
mkdirSync(shots, { recursive: true })
export const log = (...a: unknown[]) => process.stderr.write(`[${process.argv[1]?.split("/").pop()}] ${a.map(x => (typeof x === "string" ? x : JSON.stringify(x))).join(" ")}\n`)

/** A phone (its own browser and profile); `camera`: a Y4M file its camera films, with a
 *  barcode detector in the page (e2e/camera.ts). */
export async function phone(name: string, offline = false, camera?: string): Promise<{ ctx: BrowserContext; page: Page }> {
  const cameraArgs = camera
    ? ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", `--use-file-for-fake-video-capture=${camera}`]
    : []
  const ctx = await chromium.launchPersistentContext(join(config.dir, name), {
    executablePath: config.chromium ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-dev-shm-usage", ...cameraArgs],
    permissions: camera ? ["camera"] : [],
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 1,
    isMobile: true,
    hasTouch: true,
    locale: "zh-CN",
    timezoneId: "Asia/Shanghai",
    offline,
  })
  if (camera) await ctx.addInitScript({ content: fakeBarcodeDetector() })
  const page = ctx.pages()[0] ?? (await ctx.newPage())
  page.on("pageerror", e => log(name, "page error:", e.message))
  // (Failed socket attempts while offline are expected; their URL carries the token.)
  page.on("console", m => m.type() === "error" && !m.text().includes("WebSocket connection") && log(name, "console:", m.text()))
  return { ctx, page }
}

export async function until<T>(what: string, f: () => Promise<T | undefined | false>, ms = DEADLINE): Promise<T> {
  const end = Date.now() + ms
  let last: unknown
  while (Date.now() < end) {
    try {
      const v = await f()
      if (v !== undefined && v !== false) return v as T
    } catch (e) {
      last = e
    }
    await new Promise(r => setTimeout(r, 150))
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${last}` : ""}`)
}

export type Status = { online: boolean; unacked: number; conflicts: number }
export async function status(page: Page): Promise<Status | undefined> {
  return page.evaluate(() => {
    const h = document.querySelector("header.status[data-online]") as HTMLElement | null
    if (!h) return undefined
    return { online: h.dataset.online === "true", unacked: Number(h.dataset.unacked), conflicts: Number(h.dataset.conflicts) }
  })
}
export async function waitStatus(name: string, page: Page, want: Partial<Status> & { unackedAbove?: number }) {
  return until(`${name} status ${JSON.stringify(want)}`, async () => {
    const s = await status(page)
    if (!s) return undefined
    if (want.online !== undefined && s.online !== want.online) return undefined
    if (want.unacked !== undefined && s.unacked !== want.unacked) return undefined
    if (want.unackedAbove !== undefined && !(s.unacked > want.unackedAbove)) return undefined
    if (want.conflicts !== undefined && s.conflicts !== want.conflicts) return undefined
    return s
  })
}

export const ready = (page: Page) => page.waitForSelector("body[data-ready]", { state: "attached", timeout: DEADLINE })
export const hook = <T>(page: Page, f: string, ...args: unknown[]) =>
  page.evaluate(([f, args]) => (window as any).dealersync[f as string](...(args as unknown[])), [f, args] as const) as Promise<T>
export const shot = (page: Page, name: string) => page.screenshot({ path: join(shots, `${name}.png`) })

/** Enrols through the enrolment screen: the code typed, or (admin) the token pasted. */
export async function enrolByHand(page: Page, cred: { code?: string; token?: string }, shotName?: string) {
  await page.goto(`${base}/app/`)
  await page.waitForSelector("form.enrol", { timeout: DEADLINE })
  if (cred.code) await page.fill("form.enrol input[name=code]", cred.code)
  else {
    await page.click("form.enrol summary")
    await page.fill("form.enrol textarea[name=token]", cred.token!)
  }
  if (shotName) await shot(page, shotName)
  await page.click("form.enrol button[type=submit]")
  await ready(page)
}

/** Enrols through a link carrying the code or token (what a QR code opens). */
/** Enrols through a link carrying the code or token (what a QR code opens): the
 *  relay's own (`link`, the API's `appUrl`), or one made here. */
export async function enrolByLink(page: Page, cred: { code?: string; token?: string; link?: string }) {
  const frag = cred.code ? `code=${encodeURIComponent(cred.code)}` : `token=${encodeURIComponent(cred.token!)}`
  await page.goto(cred.link ?? `${base}/app/#${frag}`)
  await ready(page)
}

export async function tab(page: Page, name: string) {
  await page.click(`nav.tabs [data-tab=${name}]`)
  await page.waitForSelector(`main[data-screen=${name}]`, { timeout: DEADLINE })
}

/** Adds a customer from the Customers screen; returns its id (the card stays open). */
export async function addCustomer(page: Page, origin: string, name: string, phoneNumber: string): Promise<string> {
  const before = new Set(await hook<string[]>(page, "customers"))
  await tab(page, "customers")
  await page.click(`.chips [data-origin=${origin}]`)
  await page.fill(".sheet input[name=name]", name)
  await page.fill(".sheet input[name=phone]", phoneNumber)
  await page.click(".sheet form button[type=submit]")
  const id = await until(`customer ${name} saved`, async () => (await hook<string[]>(page, "customers")).find(c => !before.has(c)))
  await page.waitForSelector(".sheet .customer", { timeout: DEADLINE })
  return id
}

export async function closeSheets(page: Page) {
  while ((await page.locator(".sheet-head button").count()) > 0) await page.locator(".sheet-head button").last().click()
}
