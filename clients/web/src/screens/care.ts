// Customer care on a customer's card: where they live (地州 / 市区), who referred them
// (以老带新) and whom they referred, a follow-up call with the next one planned, a satisfaction survey, their
// complaints (投诉: status, owner, resolution), a discount request above the
// consultant's limit with where it stands, and a lost customer's reason and competitor.

import type { Ctx } from "../context"
import {
  discountState, markLost, openComplaint, recordFollowUp, requestDiscount, setCustomerArea, updateComplaint,
} from "../domain/care"
import { recordEvent } from "../domain/ops"
import {
  COMPLAINT_STATUSES, CUSTOMER_AREAS, type Complaint, type ComplaintStatus, type Customer, type CustomerArea, type SiteDoc,
} from "../domain/schema"
import { parseVin } from "../domain/vin"
import { label, t } from "../i18n"
import { h, localInput, money, newId, when, yuanToFen } from "../ui"

/** A labelled input. */
export function field(labelText: string, input: HTMLElement) {
  return h("label", { class: "field" }, h("span", {}, labelText), input)
}

/** The time typed in a form's datetime-local input `name` (now when empty). */
export function timeOf(form: HTMLFormElement, name = "at"): number | null {
  const v = (form.elements.namedItem(name) as HTMLInputElement | null)?.value
  return v ? new Date(v).getTime() : null
}

function value(form: HTMLFormElement, name: string): string {
  return (form.elements.namedItem(name) as HTMLInputElement).value
}

function submitForm(form: HTMLFormElement, run: () => Promise<boolean>, after: () => void) {
  form.addEventListener("submit", async e => {
    e.preventDefault()
    if (await run()) {
      form.reset() // saved: what was typed is not carried into the re-rendered card
      after()
    }
  })
  return form
}

/** One complaint: its status, owner and resolution, changed in place. */
export function complaintItem(ctx: Ctx, k: Complaint, customerName: string | null, rerender: () => void): HTMLElement {
  const status = h("select", { name: "status" }, COMPLAINT_STATUSES.map(s => h("option", { value: s, selected: s === k.status }, label(s, "_c"))))
  const form = h("form", { class: "form", "data-complaint": k.id },
    field(t("status"), status),
    field(t("owner"), h("input", { name: "owner", value: k.owner, autocomplete: "off" })),
    field(t("resolution"), h("input", { name: "resolution", value: k.resolution ?? "", autocomplete: "off" })),
    h("div", { class: "actions" }, h("button", { type: "submit" }, t("update")))) as HTMLFormElement
  submitForm(form, () => ctx.write((d, who) => updateComplaint(d, k.id, {
    status: value(form, "status") as ComplaintStatus,
    owner: value(form, "owner").trim() || null,
    resolution: value(form, "resolution") || null,
  }, who), t("saved")), rerender)
  return h("li", { class: `complaint ${k.status}` },
    h("div", { class: "row-main" }, customerName ? `${customerName} · ${k.summary}` : k.summary,
      h("span", { class: `pill ${k.status}` }, label(k.status, "_c"))),
    h("div", { class: "row-sub" }, `${when(k.openedAt)} · ${t("by")} ${k.openedBy} · ${t("owner")} ${k.owner}`,
      k.resolvedAt ? ` · ${label("resolved", "_c")} ${when(k.resolvedAt)}` : ""),
    h("details", {}, h("summary", {}, t("update")), form))
}

/** The complaints of one customer, newest first, and the form to record one. */
function complaints(ctx: Ctx, doc: SiteDoc, c: Customer, rerender: () => void): HTMLElement[] {
  const mine = Object.values(doc.complaints ?? {}).filter(k => k.customer === c.id).sort((a, b) => b.openedAt - a.openedAt)
  const form = h("form", { class: "form", "data-form": "complaint" },
    field(t("summary"), h("input", { name: "summary", autocomplete: "off" })),
    field(t("when"), h("input", { name: "at", type: "datetime-local", value: localInput(Date.now()) })),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, t("newComplaint")))) as HTMLFormElement
  submitForm(form, () => ctx.write((d, who) => openComplaint(d, {
    id: newId(), customer: c.id, summary: value(form, "summary"), owner: null, at: timeOf(form) ?? who.now,
  }, who), t("saved")), rerender)
  return [h("h3", {}, `${t("complaints")} (${mine.length})`),
    h("ul", { class: "list" }, mine.map(k => complaintItem(ctx, k, null, rerender))), form]
}

/** A follow-up call (with the next one planned) and a satisfaction survey. */
function followUps(ctx: Ctx, c: Customer, rerender: () => void): (HTMLElement | null)[] {
  const follow = h("form", { class: "form", "data-form": "follow-up" },
    field(t("when"), h("input", { name: "at", type: "datetime-local", value: localInput(Date.now()) })),
    field(t("note"), h("input", { name: "note", autocomplete: "off" })),
    field(t("nextFollowUp"), h("input", { name: "next", type: "datetime-local", value: localInput(Date.now() + 7 * 86_400_000) })),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, t("record")))) as HTMLFormElement
  submitForm(follow, () => ctx.write((d, who) => recordFollowUp(d, c.id, {
    at: timeOf(follow) ?? who.now, note: value(follow, "note") || null, next: timeOf(follow, "next"),
  }, who), t("saved")), rerender)
  const survey = h("form", { class: "form", "data-form": "survey" },
    field(t("score"), h("select", { name: "score" }, [5, 4, 3, 2, 1].map(n => h("option", { value: n }, "★".repeat(n))))),
    field(t("when"), h("input", { name: "at", type: "datetime-local", value: localInput(Date.now()) })),
    field(t("note"), h("input", { name: "note", autocomplete: "off" })),
    h("div", { class: "actions" }, h("button", { type: "submit" }, t("record")))) as HTMLFormElement
  submitForm(survey, () => ctx.write((d, who) => recordEvent(d, c.id, {
    kind: "survey", at: timeOf(survey) ?? who.now, score: Number(value(survey, "score")), note: value(survey, "note") || null,
  }, who), t("saved")), rerender)
  const next = c.nextFollowUp ? h("p", { class: "hint" }, `${t("nextFollowUp")}: ${when(c.nextFollowUp)}`) : null
  return [h("h3", {}, t("followUp")), next, follow, h("details", {}, h("summary", {}, t("surveyTitle")), survey)]
}

/** A discount request on a car for this customer, and where earlier ones stand. */
function discount(ctx: Ctx, doc: SiteDoc, c: Customer, rerender: () => void): (HTMLElement | null)[] {
  const forSale = Object.values(doc.vehicles).filter(v =>
    ["in_stock", "ordered", "in_transit"].includes(v.status) || (v.status === "reserved" && v.reservedFor === c.id))
  const asked = [...new Set(c.events.filter(e => e.kind.startsWith("discount_") && e.vin).map(e => e.vin!))]
  const states = asked.map(vin => {
    const s = discountState(doc, c.id, vin)!
    return h("li", { "data-discount": vin },
      h("div", { class: "row-main mono" }, vin, h("span", { class: `pill ${s.kind}` }, label(s.kind, "_d"))),
      h("div", { class: "row-sub" }, `${money(s.amount)} · ${s.by} · ${when(s.at)}`))
  })
  const form = h("form", { class: "form", "data-form": "discount" },
    field(t("vin"), h("select", { name: "vin" }, h("option", { value: "" }, `— ${t("chooseVehicle")} —`),
      forSale.map(v => h("option", { value: v.vin }, `${v.vin.slice(-6)} ${v.model} ${money(v.listPrice)}`)))),
    field(t("discountAmount"), h("input", { name: "amount", inputmode: "decimal", autocomplete: "off" })),
    h("div", { class: "actions" }, h("button", { type: "submit" }, t("requestDiscount")))) as HTMLFormElement
  submitForm(form, () => {
    const vin = parseVin(value(form, "vin"))
    return ctx.write((d, who) => requestDiscount(d, c.id, vin.ok ? vin.vin : value(form, "vin"), yuanToFen(value(form, "amount")) ?? 0, who), t("saved"))
  }, rerender)
  return [h("h3", {}, t("discountTitle")), states.length ? h("ul", { class: "list" }, states) : null, form]
}

/** Where the customer lives (地州 / 市区), changed as soon as it is chosen. */
export function areaField(ctx: Ctx, c: Customer, rerender: () => void): HTMLElement {
  const select = h("select", { "aria-label": t("area"), "data-field": "area", onchange: async (e: Event) => {
    const v = (e.target as HTMLSelectElement).value
    await ctx.write((d, who) => setCustomerArea(d, c.id, v ? (v as CustomerArea) : null, who), t("saved"))
    rerender()
  } }, h("option", { value: "", selected: !c.area }, `— ${t("areaUnknown")} —`),
  CUSTOMER_AREAS.map(a => h("option", { value: a, selected: a === c.area }, label(a))))
  return field(t("area"), select)
}

/** A lost customer's reason and competitor; for one not lost, the form that marks it
 *  (the reports count lost customers by reason and competitor). */
function lost(ctx: Ctx, c: Customer, rerender: () => void): (HTMLElement | null)[] {
  if (c.status === "lost")
    return [h("p", { class: "hint bad", "data-lost": c.id }, `${t("lostInfo")}: ${c.lostReason ?? "?"}`,
      c.lostTo ? ` → ${c.lostTo}` : "", c.lostAt ? ` · ${when(c.lostAt)}` : "")]
  const reasons = h("datalist", { id: `lost-reasons-${c.id}` }, t("lostReasons").split(",").map(r => h("option", { value: r })))
  const form = h("form", { class: "form", "data-form": "lost" },
    field(t("lostReason"), h("input", { name: "reason", list: `lost-reasons-${c.id}`, autocomplete: "off" })), reasons,
    field(t("competitor"), h("input", { name: "competitor", autocomplete: "off" })),
    h("div", { class: "actions" }, h("button", { type: "submit" }, t("markLost")))) as HTMLFormElement
  submitForm(form, () => ctx.write((d, who) =>
    markLost(d, c.id, value(form, "reason"), value(form, "competitor") || null, who), t("saved")), rerender)
  return [h("details", {}, h("summary", {}, t("lostTitle")), form)]
}

/** The care sections of a customer's card. */
export function careSections(ctx: Ctx, c: Customer, rerender: () => void): (HTMLElement | null)[] {
  const doc = ctx.plain()
  const referrer = c.referredBy ? doc.customers[c.referredBy] : null
  const referred = Object.values(doc.customers).filter(x => x.referredBy === c.id && !x.mergedInto)
  return [
    referrer || referred.length
      ? h("div", { class: "referrals" },
          referrer ? h("div", {}, `${t("referredBy")}: ${referrer.name}`) : null,
          referred.length ? h("div", {}, `${t("referredOthers")}: ${referred.map(x => x.name).join("、")}`) : null)
      : null,
    ...followUps(ctx, c, rerender),
    ...complaints(ctx, doc, c, rerender),
    ...discount(ctx, doc, c, rerender),
    ...lost(ctx, c, rerender),
  ]
}
