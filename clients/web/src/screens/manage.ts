// The manager's screen (shown to managers, head office and admins): discount requests
// above the consultants' limit to approve or refuse, the site's open complaints, a
// transfer to another region for head office to decide, incoming transfers to put on
// the books, and ordered or in-transit cars to mark arrived.

import type { Ctx } from "../context"
import { decideDiscount, discountState, receiveTransfer, regionOf, requestTransfer } from "../domain/care"
import { moveVehicle } from "../domain/ops"
import type { NetworkDoc, SiteDoc } from "../domain/schema"
import { label, t } from "../i18n"
import { h, money, newId, when } from "../ui"
import { complaintItem, field } from "./care"

/** Whether the enrolled user decides discounts and transfers (not a consultant). */
export function isManager(ctx: Ctx): boolean {
  return ctx.enrolment.role !== "consultant"
}

function section(title: string, count: number, items: HTMLElement[], extra?: HTMLElement) {
  return h("section", { class: "card" },
    h("h2", {}, `${title} (${count})`),
    items.length ? h("ul", { class: "list" }, items) : h("p", { class: "muted" }, t("nothing")),
    extra ?? null)
}

/** Pending discount requests at this site, each with approve / refuse. */
function approvals(ctx: Ctx, doc: SiteDoc, refresh: () => void): HTMLElement {
  const items: HTMLElement[] = []
  for (const c of Object.values(doc.customers)) {
    const vins = new Set(c.events.filter(e => e.kind === "discount_request" && e.vin).map(e => e.vin!))
    for (const vin of vins) {
      const s = discountState(doc, c.id, vin)
      if (s?.kind !== "discount_request") continue
      const v = doc.vehicles[vin]
      const decide = (d: "approve" | "refuse") => async () => {
        if (await ctx.write((sd, who) => decideDiscount(sd, ctx.net(), c.id, vin, d, who), t("saved"))) refresh()
      }
      items.push(h("li", { "data-approval": `${c.id}/${vin}` },
        h("div", { class: "row-main" }, `${c.name} · ${money(s.amount)}`),
        h("div", { class: "row-sub" }, `${vin} ${v?.model ?? ""} · ${t("list")} ${v ? money(v.listPrice) : "?"} · ${s.by} ${when(s.at)}`),
        h("div", { class: "actions" },
          h("button", { type: "button", onclick: decide("refuse") }, t("refuse")),
          h("button", { type: "button", class: "primary", onclick: decide("approve") }, t("approve")))))
    }
  }
  return section(t("approvals"), items.length, items)
}

/** Sites of other regions a car may be sent to (head office decides). */
function otherRegions(net: NetworkDoc, here: string): { id: string; name: string }[] {
  const mine = regionOf(net, here)
  return Object.values(net.sites ?? {})
    .filter(s => s.id !== here && s.kind !== "head_office" && regionOf(net, s.id) !== mine)
    .map(s => ({ id: s.id, name: s.name }))
    .sort((a, b) => a.id.localeCompare(b.id))
}

/** The transfer request form and this site's requests with head office's answer. */
function transfers(ctx: Ctx, doc: SiteDoc, refresh: () => void): HTMLElement {
  const net = ctx.net()
  const here = doc.site.id
  const decisions = net.transferDecisions ?? {}
  const items = Object.values(doc.transfers ?? {}).sort((a, b) => b.requestedAt - a.requestedAt).map(r => {
    const d = decisions[r.id]
    const state = r.dispatchedAt ? t("dispatched") : d?.verdict === "approved" ? t("hqApproved") : d ? t("hqRefused") : t("awaitingHq")
    return h("li", { "data-transfer": r.id },
      h("div", { class: "row-main mono" }, r.vin, h("span", { class: `pill ${d?.verdict ?? "pending"}` }, state)),
      h("div", { class: "row-sub" }, `${r.model} → ${net.sites?.[r.to]?.name ?? r.to} · ${r.requestedBy} ${when(r.requestedAt)}`,
        d?.note ? ` · ${d.note}` : r.note ? ` · ${r.note}` : ""))
  })
  const inStock = Object.values(doc.vehicles).filter(v => v.status === "in_stock").sort((a, b) => a.vin.localeCompare(b.vin))
  const form = h("form", { class: "form", "data-form": "transfer" },
    field(t("vin"), h("select", { name: "vin" }, h("option", { value: "" }, `— ${t("chooseVehicle")} —`),
      inStock.map(v => h("option", { value: v.vin }, `${v.vin} ${v.model}`)))),
    field(t("toSite"), h("select", { name: "to" }, otherRegions(net, here).map(s => h("option", { value: s.id }, `${s.name} (${s.id})`)))),
    field(t("note"), h("input", { name: "note", autocomplete: "off" })),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, t("requestTransfer")))) as HTMLFormElement
  form.addEventListener("submit", async e => {
    e.preventDefault()
    const get = (n: string) => (form.elements.namedItem(n) as HTMLInputElement).value
    const ok = await ctx.write((d, who) => requestTransfer(d, ctx.net(), { id: newId(), vin: get("vin"), to: get("to"), note: get("note") || null }, who), t("saved"))
    if (ok) refresh()
  })
  return h("section", { class: "card" }, h("h2", {}, t("transferOut")), form,
    h("h3", {}, `${t("transfersMine")} (${items.length})`), items.length ? h("ul", { class: "list" }, items) : h("p", { class: "muted" }, t("nothing")))
}

/** Approved transfers to this site not yet on its books. */
function incoming(ctx: Ctx, doc: SiteDoc, refresh: () => void): HTMLElement {
  const net = ctx.net()
  const items = Object.values(net.transferDecisions ?? {})
    .filter(d => d.verdict === "approved" && d.to === doc.site.id && doc.vehicles[d.vin]?.transferId !== d.id)
    .map(d => h("li", { "data-incoming": d.id },
      h("div", { class: "row-main mono" }, d.vin, h("span", { class: "muted normal" }, d.model)),
      h("div", { class: "row-sub" }, `${net.sites?.[d.from]?.name ?? d.from} · ${d.by} ${when(d.at)}`),
      h("div", { class: "actions" }, h("button", { type: "button", class: "primary", onclick: async () => {
        if (await ctx.write((sd, who) => receiveTransfer(sd, ctx.net(), d.id, null, who), t("saved"))) refresh()
      } }, t("receive")))))
  return section(t("incoming"), items.length, items)
}

/** Cars on order or on the way (incoming transfers included), to mark arrived. */
export function arrivals(ctx: Ctx, doc: SiteDoc, refresh: () => void): HTMLElement {
  const items = Object.values(doc.vehicles)
    .filter(v => v.status === "ordered" || v.status === "in_transit")
    .sort((a, b) => (a.eta ?? Infinity) - (b.eta ?? Infinity))
    .map(v => h("li", { "data-arriving": v.vin },
      h("div", { class: "row-main mono" }, v.vin, h("span", { class: `pill ${v.status}` }, label(v.status, "_v"))),
      h("div", { class: "row-sub" }, `${v.model} · ${v.colour}`, v.eta ? ` · ${t("eta")} ${when(v.eta)}` : "",
        v.transferFrom ? ` · ← ${v.transferFrom}` : ""),
      h("div", { class: "actions" }, h("button", { type: "button", class: "primary", onclick: async () => {
        if (await ctx.write((d, who) => moveVehicle(d, v.vin, "arrive", who), t("saved"))) refresh()
      } }, t("arrive")))))
  return section(t("arrivals"), items.length, items)
}

/** Renders the manager's screen. */
export function manage(ctx: Ctx, refresh: () => void): HTMLElement {
  const doc = ctx.plain()
  const open = Object.values(doc.complaints ?? {}).filter(k => k.status !== "resolved").sort((a, b) => a.openedAt - b.openedAt)
  return h("div", { class: "screen" },
    approvals(ctx, doc, refresh),
    section(t("openComplaints"), open.length, open.map(k => complaintItem(ctx, k, doc.customers[k.customer]?.name ?? k.customer, refresh))),
    transfers(ctx, doc, refresh),
    incoming(ctx, doc, refresh),
    arrivals(ctx, doc, refresh))
}
