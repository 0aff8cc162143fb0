// Two phones against the real relay, in headless Chromium (playwright-core): driven by
// tests/tests/field_app.rs, which starts the relay and checks the result with the CLI.
//
//   node --import tsx e2e/phones.ts '{"base":"http://127.0.0.1:PORT","a":{...},"b":{...},"dir":"...","shots":"..."}'
//
// a / b / m: {"token": "..."}, {"code": "..."} (a one-time sign-in code) or {"link": "..."}
// (the relay's phone link for a code, `appUrl`). Prints one JSON
// line with what happened (the VIN, customer ids, conflict ids) for the Rust side.
// Every wait has a deadline and says what it waited for.

import { join } from "node:path"
import type { BrowserContext, Page } from "playwright-core"
import {
  DEADLINE, addCustomer, base, closeSheets, config, enrolByHand, enrolByLink, hook, log, phone, ready, shot, tab, until, waitStatus,
} from "./harness"
import { writeVinLabels } from "./camera"

/** Sells `vin` to the customer whose card is open, checking the VIN field first. */
async function sellFromCard(page: Page, vin: string, customer: string) {
  const form = page.locator(".sheet form", { has: page.locator("input[name=vin]") })
  // A mistyped VIN is refused as core refuses it (check digit), before anything is written.
  const typo = vin.slice(0, 16) + (vin[16] === "1" ? "2" : "1")
  await form.locator("input[name=vin]").fill(typo)
  await form.locator("button[type=submit]").click()
  await until("the typo refused", async () => ((await form.locator(".hint.bad").textContent()) ?? "").includes("✗"))
  await form.locator("input[name=vin]").fill(vin.toLowerCase())
  await form.locator("button[type=submit]").click()
  await until(`${vin} sold to ${customer}`, async () => (await hook<any>(page, "vehicle", vin))?.soldTo === customer)
}

const browsers: BrowserContext[] = []
const pages: Page[] = []
try {
  let { ctx: ctxA, page: a } = await phone("phone-a")
  const { ctx: ctxB, page: b } = await phone("phone-b")
  browsers.push(ctxA, ctxB)
  pages.push(a, b)

  // Enrol: A types its code (or token) on the enrolment screen, B opens a link.
  await enrolByHand(a, config.a, "01-enrol")
  await enrolByLink(b, config.b)
  for (const [n, p] of [["a", a], ["b", b]] as const) {
    await waitStatus(n, p, { online: true, unacked: 0 })
    await until(`${n}'s service worker controls the page`, () => p.evaluate(() => navigator.serviceWorker.controller !== null))
  }
  await shot(a, "02-today")
  // Installable (manifest, icons, a service worker with a fetch handler): Chromium's own check.
  const cdp = await ctxA.newCDPSession(a)
  const { installabilityErrors } = (await cdp.send("Page.getInstallabilityErrors")) as { installabilityErrors: unknown[] }
  await cdp.detach()
  if (installabilityErrors.length > 0) throw new Error(`the app is not installable: ${JSON.stringify(installabilityErrors)}`)
  const vin = (await hook<string[]>(a, "inStock"))[0]
  if (!vin) throw new Error("the showroom has no vehicle in stock")
  log("selling", vin)

  // Both lose the network, and reload the app with none: the service worker serves it.
  for (const [n, ctx, p] of [["a", ctxA, a], ["b", ctxB, b]] as const) {
    await ctx.setOffline(true)
    await waitStatus(n, p, { online: false })
    await p.reload()
    await ready(p)
    await waitStatus(n, p, { online: false, unacked: 0 })
  }
  await shot(b, "03-offline-after-reload")

  // Offline, each enters a customer (the same person: one phone, typed differently) and
  // sells them the same car.
  const custA = await addCustomer(a, "walk_in", "张伟", "13800001111")
  await sellFromCard(a, vin, custA)
  await shot(a, "04-customer-card-sold")
  await closeSheets(a)
  const custB = await addCustomer(b, "call_in", "张伟", "138 0000 1111")
  await sellFromCard(b, vin, custB)
  await closeSheets(b)
  // A walk-in who gives no phone still counts as a visit.
  await tab(a, "customers")
  await a.click(".chips [data-origin=walk_in]")
  await a.check(".sheet input[name=nophone]")
  await a.fill(".sheet input[name=party]", "2")
  await a.click(".sheet form button[type=submit]")
  await a.waitForSelector(".sheet", { state: "detached", timeout: DEADLINE })
  const offlineA = await waitStatus("a", a, { online: false, unackedAbove: 0 })
  const offlineB = await waitStatus("b", b, { online: false, unackedAbove: 0 })
  await shot(a, "05-customers-offline-unacked")

  // Back online: both converge and both list the double sale (and the duplicate).
  await ctxA.setOffline(false)
  await ctxB.setOffline(false)
  await waitStatus("a", a, { online: true, unacked: 0, conflicts: 2 })
  await waitStatus("b", b, { online: true, unacked: 0, conflicts: 2 })
  const heads = await until("both phones hold the same changes", async () => {
    const [ha, hb] = [await hook<string[]>(a, "heads"), await hook<string[]>(b, "heads")]
    return JSON.stringify([...ha].sort()) === JSON.stringify([...hb].sort()) && ha
  })
  const conflictsA = await hook<string[]>(a, "conflicts")
  const conflictsB = await hook<string[]>(b, "conflicts")
  if (JSON.stringify(conflictsA) !== JSON.stringify(conflictsB)) throw new Error(`phones list different conflicts: ${conflictsA} / ${conflictsB}`)
  await tab(a, "conflicts")
  await shot(a, "06-conflicts")

  // A gives the car to B's customer; the double sale clears on both.
  await a.click(`[data-conflict^=double_booking] button[data-customer="${custB}"]`)
  await waitStatus("a", a, { conflicts: 1, unacked: 0 })
  await waitStatus("b", b, { conflicts: 1 })
  // B keeps the record of the person entered twice that bought the car; that clears
  // on both too.
  await tab(b, "conflicts")
  await b.click(`[data-conflict^=duplicate_customer] button[data-keep="${custB}"]`)
  await waitStatus("b", b, { conflicts: 0, unacked: 0 })
  await waitStatus("a", a, { conflicts: 0 })
  await shot(b, "07-conflicts-resolved")
  const sold = await hook<any>(b, "vehicle", vin)
  if (sold?.soldTo !== custB || sold?.status !== "sold") throw new Error(`after the resolution the car is ${JSON.stringify(sold)}`)

  // Data survives: A enters a customer offline, closes the app, reopens it offline.
  await ctxA.setOffline(true)
  await waitStatus("a", a, { online: false })
  const later = await addCustomer(a, "roadshow", "王芳", "13912340000")
  await closeSheets(a)
  await waitStatus("a", a, { unackedAbove: 0 })
  await ctxA.close()
  // A reopens with a camera filming two VIN labels: the car A will sell at a discount,
  // and above it the same VIN with its last character misprinted (a misread).
  const [discountVin] = (await hook<string[]>(b, "inStock")).filter(v => v !== vin)
  const misread = discountVin.slice(0, 16) + (discountVin[16] === "1" ? "2" : "1")
  const camera = join(config.dir, "vin-labels.y4m")
  writeVinLabels(camera, [misread, discountVin])
  ;({ ctx: ctxA, page: a } = await phone("phone-a", true, camera))
  browsers[0] = ctxA
  pages[0] = a
  await a.goto(`${base}/app/`)
  await ready(a)
  const kept = await hook<string[]>(a, "customers")
  if (!kept.includes(later)) throw new Error("the customer entered offline is gone after reopening")
  const reopened = await waitStatus("a", a, { online: false, unackedAbove: 0 })
  await tab(a, "customers")
  await a.fill("main input[type=search]", "王芳")
  await shot(a, "08-reopened-offline")
  await ctxA.setOffline(false)
  await waitStatus("a", a, { online: true, unacked: 0 })
  await until("B receives the customer entered offline", async () => (await hook<string[]>(b, "customers")).includes(later))

  // Customer care on the phones (issue 9): A adds a customer referred by the one it
  // entered offline (以老带新), records a follow-up with the next one planned and a
  // complaint; B receives both and resolves the complaint; A sees it resolved.
  await tab(a, "customers")
  const beforeRef = new Set(await hook<string[]>(a, "customers"))
  await a.click(".chips [data-origin=referral]")
  await a.fill(".sheet input[name=name]", "赵敏")
  await a.fill(".sheet input[name=phone]", "13700002222")
  await a.selectOption(".sheet select[name=referrer]", later)
  await shot(a, "12-add-referral")
  await a.click(".sheet form button[type=submit]")
  const referred = await until("the referred customer saved", async () => (await hook<string[]>(a, "customers")).find(c => !beforeRef.has(c)))
  await until("the referral linked", async () => (await hook<any>(a, "customer", referred))?.referredBy === later)
  await a.waitForSelector(".sheet .customer", { timeout: DEADLINE })
  const follow = a.locator(".sheet form[data-form=follow-up]")
  await follow.locator("input[name=note]").fill("约周六试驾")
  await follow.locator("button[type=submit]").click()
  await until("the follow-up recorded", async () => {
    const c = await hook<any>(a, "customer", referred)
    return c?.nextFollowUp > Date.now() && c.events.some((e: any) => e.kind === "follow_up" && e.note === "约周六试驾")
  })
  const complaintForm = a.locator(".sheet form[data-form=complaint]")
  await complaintForm.locator("button[type=submit]").click()
  await until("an empty complaint refused", async () =>
    (await a.locator(".toast.error").allTextContents()).some(x => x.includes("summary")))
  await complaintForm.locator("input[name=summary]").fill("试驾车不干净")
  await complaintForm.locator("button[type=submit]").click()
  const complaint = await until("the complaint recorded", async () =>
    (await hook<any[]>(a, "complaints")).find(k => k.customer === referred && k.status === "open"))
  // (The card re-renders as the change syncs: find the heading afresh.)
  await until("the complaints in view", () => a.evaluate(() => {
    const heading = Array.from(document.querySelectorAll(".sheet .customer h3")).find(x => x.textContent?.startsWith("投诉"))
    heading?.scrollIntoView()
    return !!heading
  }))
  await shot(a, "13-customer-care")
  await closeSheets(a)
  await waitStatus("a", a, { unacked: 0 })
  await until("B receives the referral and the complaint", async () =>
    (await hook<any>(b, "customer", referred))?.referredBy === later
    && (await hook<any[]>(b, "complaints")).some(k => k.id === complaint.id))
  await tab(b, "customers")
  await b.fill("main input[type=search]", "赵敏")
  await b.click(`main [data-customer="${referred}"]`)
  const onB = b.locator(`.sheet [data-complaint="${complaint.id}"]`)
  // (A sync re-rendering the card closes the details: open them and fill in again.)
  await until("B resolves the complaint on the card", async () => {
    // (`has` is matched inside the outer element: the inner locator names only the form.)
    const details = b.locator(".sheet li.complaint details", { has: b.locator(`[data-complaint="${complaint.id}"]`) })
    if (!(await details.evaluate(d => (d as HTMLDetailsElement).open))) await details.locator("summary").click()
    await onB.locator("select[name=status]").selectOption("resolved", { timeout: 2000 })
    await onB.locator("input[name=resolution]").fill("已道歉并重新清洁", { timeout: 2000 })
    await onB.locator("button[type=submit]").click({ timeout: 2000 })
    return true
  })
  await until("A sees the complaint resolved", async () =>
    (await hook<any[]>(a, "complaints")).find(k => k.id === complaint.id)?.status === "resolved")
  await closeSheets(b)
  // B sets where 王芳 lives (地州) and marks her lost to a competitor, with why: the
  // care report's mix counts both.
  await b.fill("main input[type=search]", "王芳")
  await b.click(`main [data-customer="${later}"]`)
  await b.locator(".sheet select[data-field=area]").selectOption("prefecture")
  await until("the area saved", async () => (await hook<any>(b, "customer", later))?.area === "prefecture")
  await until("B marks 王芳 lost", async () => {
    const lostForm = b.locator(".sheet form[data-form=lost]")
    const details = b.locator(".sheet details", { has: b.locator("form[data-form=lost]") })
    if (!(await details.evaluate(d => (d as HTMLDetailsElement).open))) await details.locator("summary").click()
    await lostForm.locator("input[name=reason]").fill("价格", { timeout: 2000 })
    await lostForm.locator("input[name=competitor]").fill("比亚迪", { timeout: 2000 })
    await lostForm.locator("button[type=submit]").click({ timeout: 2000 })
    return true
  })
  await until("王芳 lost, with the reason", async () => {
    const c = await hook<any>(b, "customer", later)
    return c?.status === "lost" && c.lostReason === "价格" && c.lostTo === "比亚迪"
  })
  await b.waitForSelector(`.sheet [data-lost="${later}"]`, { timeout: DEADLINE })
  await closeSheets(b)
  await b.fill("main input[type=search]", "")

  // A discount above the consultant's limit: A asks, the manager's phone approves, A sells.
  const mgr = await phone("phone-m")
  browsers.push(mgr.ctx)
  pages.push(mgr.page)
  const m = mgr.page
  await enrolByLink(m, config.m)
  await waitStatus("m", m, { online: true, unacked: 0 })
  const list = (await hook<any>(a, "vehicle", discountVin)).listPrice as number
  const discountFen = 800_000
  await tab(a, "customers")
  await a.fill("main input[type=search]", "赵敏")
  await a.click(`main [data-customer="${referred}"]`)
  const sellForm = a.locator(".sheet form", { has: a.locator("input[name=vin]") })
  // The VIN comes from the camera: 📷 opens the preview, the misprinted label is read
  // and skipped (its check digit fails), the good one fills the field.
  await sellForm.locator("[data-scan=vin]").click()
  await a.waitForSelector(".sheet video.scan-video", { timeout: DEADLINE })
  await until("the camera's preview plays", () => a.evaluate(() => {
    const v = document.querySelector("video.scan-video") as HTMLVideoElement | null
    return !!v && v.readyState >= 2 && v.videoWidth > 0
  }).catch(() => false))
  await shot(a, "16-scan-vin")
  await a.evaluate(() => { (window as any).__scanGo = true })
  await until(`the scanned ${discountVin} in the VIN field`, async () =>
    (await sellForm.locator("input[name=vin]").inputValue()) === discountVin
    && ((await sellForm.locator(".vin-field .hint").textContent()) ?? "").startsWith("✓"))
  const scans = await a.evaluate(() => (window as any).__scans as string[][])
  if (!scans.some(texts => texts.includes(misread) && texts.includes(discountVin)))
    throw new Error(`the detector did not read both labels from the camera: ${JSON.stringify(scans)}`)
  if ((await a.locator("video.scan-video").count()) > 0) throw new Error("the camera sheet stays open after the scan")
  await sellForm.locator("input[name=price]").fill(String((list - discountFen) / 100))
  await sellForm.locator("button[type=submit]").click()
  await until("the sale above the limit refused", async () => ((await a.locator(".toast.error").last().textContent()) ?? "").includes("经理"))
  const discountForm = a.locator(".sheet form[data-form=discount]")
  await discountForm.locator("select[name=vin]").selectOption(discountVin)
  await discountForm.locator("input[name=amount]").fill(String(discountFen / 100))
  await discountForm.locator("button[type=submit]").click()
  await a.waitForSelector(`.sheet [data-discount="${discountVin}"] .pill.discount_request`, { timeout: DEADLINE })
  await waitStatus("a", a, { unacked: 0 })
  await tab(m, "manager")
  const approval = m.locator(`[data-approval="${referred}/${discountVin}"]`)
  await approval.waitFor({ timeout: DEADLINE })
  await shot(m, "14-manager-approvals")
  await approval.locator("button.primary").click()
  await a.waitForSelector(`.sheet [data-discount="${discountVin}"] .pill.discount_approved`, { timeout: DEADLINE })
  await sellForm.locator("button[type=submit]").click()
  await until(`${discountVin} sold at the approved discount`, async () => (await hook<any>(a, "vehicle", discountVin))?.soldTo === referred)
  await closeSheets(a)

  // The manager asks head office for a transfer to another region and marks a car arrived.
  const [transferVin] = (await hook<string[]>(m, "inStock")).filter(v => v !== vin && v !== discountVin)
  const transferForm = m.locator("form[data-form=transfer]")
  await transferForm.locator("select[name=vin]").selectOption(transferVin)
  await transferForm.locator("input[name=note]").fill("南区缺货")
  await transferForm.locator("button[type=submit]").click()
  const transfer = await until("the transfer requested", async () => (await hook<any[]>(m, "transfers")).find(r => r.vin === transferVin))
  const arriving = m.locator("[data-arriving]").first()
  let arrived: string | null = null
  if ((await arriving.count()) > 0) {
    arrived = await arriving.getAttribute("data-arriving")
    await arriving.locator("button").click()
    await until(`${arrived} arrived`, async () => (await hook<any>(m, "vehicle", arrived))?.status === "in_stock")
  }
  await m.locator("main").evaluate(el => el.scrollTo(0, 0))
  await shot(m, "15-manager")
  await waitStatus("m", m, { unacked: 0 })

  for (const s of ["today", "stock", "forecast"]) {
    await tab(b, s)
    await shot(b, `09-${s}`)
  }
  await tab(b, "customers")
  await b.click(`main [data-customer="${custB}"]`)
  await shot(b, "10-customer-card")
  await closeSheets(b)
  await b.click("header.status .lang")
  await tab(b, "today")
  await shot(b, "11-today-english")

  const enrolmentB = await b.evaluate(() => JSON.parse(localStorage.getItem("dealersync.enrolment") ?? "null"))
  process.stdout.write(
    JSON.stringify({ ok: true, scannedVin: discountVin, referred, complaint: complaint.id, discountVin, transfer: transfer.id, transferVin, transferTo: transfer.to, arrived, enrolmentB: { device: enrolmentB?.device, token: enrolmentB?.token }, vin, customerA: custA, customerB: custB, later, conflicts: conflictsA, heads, offlineA, offlineB, reopened }) + "\n",
  )
} catch (e) {
  log("failed:", (e as Error).stack ?? String(e))
  for (const [i, p] of pages.entries()) await shot(p, `failed-${"ab"[i]}`).catch(() => {})
  process.exitCode = 1
} finally {
  for (const c of browsers) await c.close().catch(() => {})
}
