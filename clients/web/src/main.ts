// The field app: enrolment, then five screens over the site document, with the sync
// status always on top. Works offline from the first successful enrolment on: the app
// shell comes from the service worker, the documents from IndexedDB.

import * as A from "@automerge/automerge/slim"
import { initializeWasm } from "@automerge/automerge-repo/slim"
import wasmUrl from "@automerge/automerge/automerge.wasm?url"
import { SiteChain } from "./chain"
import { Ctx } from "./context"
import type { NetworkDoc } from "./domain/schema"
import { EnrolError, enrolWithToken, forgetEnrolment, linkCredential, storedEnrolment, tokenForCode, type Enrolment } from "./enrol"
import { language, setLanguage, t } from "./i18n"
import { conflicts, waiting } from "./screens/conflicts"
import { customerCard, customers } from "./screens/customers"
import { forecast } from "./screens/forecast"
import { isManager, manage } from "./screens/manage"
import { stock } from "./screens/stock"
import { today } from "./screens/today"
import { Sync } from "./sync"
import { h, when } from "./ui"
import "./style.css"

type Screen = "today" | "customers" | "stock" | "forecast" | "conflicts" | "manager"
const SCREENS: [Screen, string][] = [["today", "◎"], ["customers", "☺"], ["stock", "▤"], ["forecast", "↗"], ["conflicts", "⚠"], ["manager", "✓"]]

const root = document.getElementById("app")!

function statusBar(ctx: Ctx | null, sync: Sync | null): HTMLElement {
  const s = sync?.status()
  const n = ctx ? waiting(ctx).length : 0
  const lang = h("button", { class: "link lang", onclick: () => {
    setLanguage(language() === "zh" ? "en" : "zh")
    rerender()
  } }, language() === "zh" ? "EN" : "中文")
  if (!s) return h("header", { class: "status" }, h("strong", {}, t("appName")), lang)
  return h("header", { class: "status", "data-online": String(s.online), "data-unacked": String(s.unacked), "data-closed": String(s.closed), "data-conflicts": String(n) },
    h("span", { class: `dot ${s.online ? "on" : "off"}` }),
    h("span", { class: "state" }, s.online ? t("online") : t("offline")),
    h("span", { class: "sync" }, `${t("lastSync")} ${s.lastSync ? when(s.lastSync) : t("never")}`),
    h("span", { class: `unacked ${s.unacked ? "warn" : ""}`, title: s.unacked ? t("pending") : t("allSaved") },
      s.unacked ? `↑${s.unacked} ${t("pending")}` : `✓ ${t("allSaved")}`),
    n ? h("button", { class: "link conflicts-badge", onclick: () => show("conflicts") }, `⚠ ${n} ${t("conflictsWaiting")}`) : null,
    lang,
    s.closed ? h("span", { class: "closed" }, `⚠ ${s.closed} ${t("closedMonth")}`) : null)
}

let current: Screen = (localStorage.getItem("dealersync.screen") as Screen) || "today"
let ctx: Ctx | null = null
let sync: Sync | null = null
const customerState = { query: "" }
const stockState = { vin: "", status: "" }
let rerender = () => {}

function show(screen: Screen) {
  current = screen
  localStorage.setItem("dealersync.screen", screen)
  rerender()
}

function openCustomer(id: string) {
  if (ctx) customerCard(ctx, id, () => rerender())
}

function renderApp() {
  if (!ctx) return
  const c = ctx
  if (current === "manager" && !isManager(c)) current = "today"
  const body =
    current === "today" ? today(c, openCustomer)
    : current === "customers" ? customers(c, customerState, openCustomer, () => rerender())
    : current === "stock" ? stock(c, stockState, () => rerender())
    : current === "forecast" ? forecast(c)
    : current === "manager" ? manage(c, () => rerender())
    : conflicts(c, () => rerender())
  const n = waiting(c).length
  root.replaceChildren(
    statusBar(c, sync),
    h("div", { class: "who" }, `${c.enrolment.siteName} · ${c.enrolment.sub}`,
      h("button", { class: "link", onclick: () => {
        if (confirm(t("signOut") + "?")) {
          forgetEnrolment()
          location.reload()
        }
      } }, t("signOut"))),
    h("main", { "data-screen": current }, body),
    h("nav", { class: "tabs" }, SCREENS.filter(([s]) => s !== "manager" || isManager(c)).map(([s, icon]) =>
      h("button", { class: s === current ? "active" : "", "data-tab": s, onclick: () => show(s) },
        h("span", { class: "icon" }, icon), h("span", {}, t(s)), s === "conflicts" && n ? h("span", { class: "badge" }, n) : null))))
}

/** Re-renders on changes unless the consultant is typing in the screen. */
function liveRender() {
  const active = document.activeElement
  if (active && root.querySelector("main")?.contains(active) && (active.tagName === "INPUT" || active.tagName === "SELECT")) {
    root.querySelector("header.status")?.replaceWith(statusBar(ctx, sync))
    return
  }
  renderApp()
}

async function start(enrolment: Enrolment) {
  const s = new Sync(enrolment)
  sync = s
  root.replaceChildren(statusBar(null, null), h("p", { class: "muted center" }, t("loading")))
  // The network document (catalogue, limits, which document is the site's working one)
  // is read-only here; the app works without it and takes it when it arrives.
  const network = await s.open<NetworkDoc>(enrolment.networkDocumentId).catch(() => null)
  let chain: SiteChain
  try {
    // After a carry-over the screens move to the new working document as one. A first
    // start waits for the relay however slow the link; with no network at all it says
    // so, and goes on as soon as the phone is online.
    chain = await SiteChain.open(
      s,
      enrolment,
      network,
      site => {
        if (ctx) ctx.site = site
        liveRender()
      },
      () => root.replaceChildren(statusBar(null, null), h("p", { class: "muted center" }, t(navigator.onLine ? "waitingForRelay" : "notOnPhone"))),
    )
  } catch {
    root.replaceChildren(statusBar(null, null), h("p", { class: "muted center" }, t("notOnPhone")))
    return
  }
  ctx = new Ctx(enrolment, s, chain.site, network)
  if (!network) {
    void s.open<NetworkDoc>(enrolment.networkDocumentId, () => {}).then(n => {
      ctx = new Ctx(enrolment, s, chain.site, n)
      chain.takeNetwork(n)
      rerender()
    })
  }
  rerender = renderApp
  sync.subscribe(liveRender)
  renderApp()
  // Read-only facts for support and for the end-to-end test: what this copy holds.
  ;(window as unknown as { dealersync: unknown }).dealersync = {
    heads: () => A.getHeads(ctx!.site.doc() as A.Doc<unknown>),
    document: () => ctx!.site.documentId,
    archives: () => chain.archives(),
    conflicts: () => waiting(ctx!).map(c => c.id),
    customers: () => Object.keys(ctx!.plain().customers),
    vehicle: (vin: string) => ctx!.plain().vehicles[vin] ?? null,
    inStock: () => Object.values(ctx!.plain().vehicles).filter(v => v.status === "in_stock").map(v => v.vin).sort(),
    customer: (id: string) => ctx!.plain().customers[id] ?? null,
    complaints: () => Object.values(ctx!.plain().complaints ?? {}),
    transfers: () => Object.values(ctx!.plain().transfers ?? {}),
  }
  document.body.dataset.ready = "true"
}

function enrolScreen(message?: string) {
  const code = h("input", { name: "code", autocomplete: "one-time-code", inputmode: "text", autocapitalize: "characters", class: "mono big-input" }) as HTMLInputElement
  const token = h("textarea", { name: "token", rows: 3 }) as HTMLTextAreaElement
  const tokenBox = h("details", {}, h("summary", {}, t("tokenInstead")), h("label", { class: "field" }, h("span", {}, t("token")), token))
  const error = h("p", { class: "error" }, message ?? "")
  const form = h("form", { class: "form enrol" },
    h("h1", {}, t("enrolTitle")), h("p", {}, t("enrolHint")),
    h("label", { class: "field" }, h("span", {}, t("code")), code),
    tokenBox, error,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, t("enrol")))) as HTMLFormElement
  form.addEventListener("submit", async e => {
    e.preventDefault()
    await enrol({ code: code.value.trim() || undefined, token: token.value.trim() || undefined }, error)
  })
  rerender = () => enrolScreen(error.textContent ?? undefined)
  root.replaceChildren(statusBar(null, null), h("main", {}, form))
}

async function enrol(cred: { code?: string; token?: string }, error?: HTMLElement) {
  try {
    const token = cred.token ?? (cred.code ? await tokenForCode(cred.code) : null)
    if (!token) return
    await start(await enrolWithToken(token))
  } catch (e) {
    const msg = e instanceof EnrolError && e.message === "offline" ? t("needNetwork") : `${t("enrolFailed")}: ${(e as Error).message}`
    if (error) error.textContent = msg
    else enrolScreen(msg)
  }
}

async function boot() {
  setLanguage(language())
  await initializeWasm(wasmUrl)
  if ("serviceWorker" in navigator && import.meta.env.PROD) {
    navigator.serviceWorker.register(new URL("sw.js", location.href.replace(/[^/]*$/, "")), { scope: "./" }).catch(e => console.error("service worker:", e))
  }
  const link = linkCredential()
  const stored = storedEnrolment()
  if (link.code || link.token) await enrol(link)
  else if (stored) await start(stored)
  else enrolScreen()
  // Changes are saved to IndexedDB as they are made; this is for the debounced rest.
  addEventListener("pagehide", () => void sync?.flush())
}

boot()
