// Customers: search by name or phone; add from a walk-in, a call in or out, a roadshow
// or a referral (a walk-in who leaves no phone is recorded as a visit all the same);
// a customer's card records what happened, when it happened, and sells a car.

import type { Ctx } from "../context"
import { liveCustomers } from "../domain/figures"
import { linkReferral } from "../domain/care"
import { addCustomer, moveVehicle, recordEvent, recordWalkIn, sellVehicle, setCustomerStatus, type NewEvent } from "../domain/ops"
import { normalisePhone } from "../domain/phone"
import { CUSTOMER_STATUSES, type Customer, type CustomerSource, type EventKind } from "../domain/schema"
import { parseVin } from "../domain/vin"
import { label, t } from "../i18n"
import { h, keepTyped, localInput, money, newId, phoneText, sheet, toast, when, yuanToFen } from "../ui"
import { areaField, careSections, field, timeOf } from "./care"
import { scanning, vinField } from "./vin-field"

type Origin = "walk_in" | "call_in" | "call_out" | "roadshow" | "referral"
const ORIGINS: Origin[] = ["walk_in", "call_in", "call_out", "roadshow", "referral"]
const originLabel = (o: Origin) => ({ walk_in: t("walkIn"), call_in: t("callIn"), call_out: t("callOut"), roadshow: t("roadshow"), referral: t("referral") })[o]

function modelSelect(ctx: Ctx, name: string) {
  const models = Object.values(ctx.net().models ?? {})
  return h("select", { name }, h("option", { value: "" }, `— ${t("none")} —`), models.map(m => h("option", { value: m.code }, `${m.name} (${m.code})`)))
}

function timeFrom(form: HTMLFormElement): number {
  return timeOf(form) ?? Date.now()
}

/** Who referred a new customer (以老带新): one of this site's customers. */
function referrerSelect(ctx: Ctx) {
  const all = liveCustomers(ctx.plain()).sort((a, b) => a.name.localeCompare(b.name, "zh-CN"))
  return h("select", { name: "referrer" }, h("option", { value: "" }, `— ${t("none")} —`),
    all.map(c => h("option", { value: c.id }, `${c.name} ${phoneText(c.phone)}`)))
}

/** The add-customer sheet for one origin. */
function addSheet(ctx: Ctx, origin: Origin, done: (id: string | null) => void) {
  const noPhone = h("input", { type: "checkbox", name: "nophone" }) as HTMLInputElement
  const phoneHint = h("small", { class: "hint" })
  const phone = h("input", { name: "phone", type: "tel", inputmode: "tel", autocomplete: "off" }) as HTMLInputElement
  phone.addEventListener("input", () => {
    const p = normalisePhone(phone.value)
    phoneHint.textContent = phone.value.trim() === "" ? "" : p.ok ? `✓ ${p.phone}` : "✗"
  })
  const party = field(t("partySize"), h("input", { name: "party", type: "number", min: 1, max: 50, value: 1 }))
  party.hidden = true
  const nameField = field(t("name"), h("input", { name: "name", autocomplete: "off" }))
  const phoneField = field(t("phone"), h("div", {}, phone, phoneHint))
  noPhone.addEventListener("change", () => {
    party.hidden = !noPhone.checked
    nameField.hidden = noPhone.checked
    phoneField.hidden = noPhone.checked
  })
  const form = h("form", { class: "form" },
    origin === "walk_in" ? h("label", { class: "check" }, noPhone, t("noPhone")) : null,
    nameField, phoneField, party,
    origin === "referral" ? field(t("referrerHint"), referrerSelect(ctx)) : null,
    field(t("model"), modelSelect(ctx, "model")),
    // A referral records no first contact (the card records one when it happens), so
    // it asks for no time or note that would go nowhere.
    origin === "referral" ? null : field(t("when"), h("input", { name: "at", type: "datetime-local", value: localInput(Date.now()) })),
    origin === "referral" ? null : field(t("note"), h("input", { name: "note", autocomplete: "off" })),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, t("save")))) as HTMLFormElement
  const close = sheet(`${t("add")} · ${originLabel(origin)}`, form)
  form.addEventListener("submit", async e => {
    e.preventDefault()
    const get = (n: string) => (form.elements.namedItem(n) as HTMLInputElement | null)?.value ?? ""
    const at = timeFrom(form)
    const model = get("model") || null
    const note = get("note") || null
    if (origin === "walk_in" && noPhone.checked) {
      const ok = await ctx.write((doc, who) =>
        recordWalkIn(doc, ctx.net(), { id: newId(), at, partySize: Number(get("party")), modelOfInterest: model, note }, who), t("walkInSaved"))
      if (ok) {
        close()
        done(null)
      }
      return
    }
    const id = newId()
    const source: CustomerSource = origin === "call_in" || origin === "call_out" ? "phone" : origin
    const ok = await ctx.write((doc, who) =>
      addCustomer(doc, ctx.net(), { id, name: get("name"), phone: get("phone"), source, modelOfInterest: model, consultant: who.by }, who))
    if (!ok) return
    // The contact that brought the customer, at the time it happened.
    const first: NewEvent | null =
      origin === "walk_in" || origin === "roadshow" ? { kind: "visit", at, note }
      : origin === "call_in" || origin === "call_out" ? { kind: "call", at, note, direction: origin === "call_in" ? "inbound" : "outbound" }
      : null
    if (first) await ctx.write((doc, who) => recordEvent(doc, id, first, who))
    const referrer = origin === "referral" ? get("referrer") : ""
    if (referrer) await ctx.write((doc, who) => linkReferral(doc, id, referrer, who))
    toast(t("saved"))
    close()
    done(id)
  })
}

// Follow-ups, surveys and complaints have forms of their own (screens/care.ts).
const RECORDABLE: EventKind[] = ["visit", "call", "test_drive", "quote", "referral", "delivery"]

/** A customer's card: details, status, what happened, selling a car. */
export function customerCard(ctx: Ctx, id: string, onChange: () => void) {
  const body = h("div", {})
  const render = () => {
    const doc = ctx.plain()
    const c = doc.customers[id]
    if (!c) return
    const next = customerBody(ctx, c, render)
    keepTyped(body, next)
    body.replaceChildren(next)
  }
  render()
  const unsubscribe = ctx.sync.subscribe(() => {
    if (!body.contains(document.activeElement) && !scanning()) render()
  })
  sheet(t("customer"), body, () => {
    unsubscribe()
    onChange()
  })
}

function customerBody(ctx: Ctx, c: Customer, rerender: () => void): HTMLElement {
  const doc = ctx.plain()
  // No name: a refused move is not carried over as if typed (ui.ts keepTyped).
  const statusSel = h("select", { "aria-label": t("status"), onchange: async (e: Event) => {
    const to = (e.target as HTMLSelectElement).value as Customer["status"]
    await ctx.write((d, who) => setCustomerStatus(d, c.id, to, who), t("saved"))
    rerender()
  } }, CUSTOMER_STATUSES
    // A customer is lost with a reason (the form below), not from this list.
    .filter(s => s !== "lost" || c.status === "lost")
    .map(s => h("option", { value: s, selected: s === c.status }, label(s))))
  const kind = h("select", { name: "kind" }, RECORDABLE.map(k => h("option", { value: k }, label(k, k === "referral" ? "_e" : "")))) as HTMLSelectElement
  const direction = field(t("direction"), h("select", { name: "direction" }, h("option", { value: "inbound" }, t("inbound")), h("option", { value: "outbound" }, t("outbound"))))
  const amount = field(t("amount"), h("input", { name: "amount", inputmode: "decimal" }))
  const sold = Object.values(doc.vehicles).filter(v => v.status === "sold" && v.soldTo === c.id)
  const vinSel = field(t("vin"), h("select", { name: "vin" }, sold.map(v => h("option", { value: v.vin }, `${v.vin} ${v.model}`))))
  const sync = () => {
    direction.hidden = kind.value !== "call"
    amount.hidden = kind.value !== "quote"
    vinSel.hidden = kind.value !== "delivery"
  }
  kind.addEventListener("change", sync)
  const eventForm = h("form", { class: "form", "data-form": "event" },
    field(t("kind"), kind), direction, amount, vinSel,
    field(t("when"), h("input", { name: "at", type: "datetime-local", value: localInput(Date.now()) })),
    field(t("note"), h("input", { name: "note", autocomplete: "off" })),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, t("record")))) as HTMLFormElement
  sync()
  eventForm.addEventListener("submit", async e => {
    e.preventDefault()
    const get = (n: string) => (eventForm.elements.namedItem(n) as HTMLInputElement).value
    const k = kind.value as EventKind
    const fen = k === "quote" ? yuanToFen(get("amount")) : null
    const ev: NewEvent = {
      kind: k, at: timeFrom(eventForm), note: get("note") || null, amount: fen,
      direction: k === "call" ? (get("direction") as "inbound" | "outbound") : null,
      vin: k === "delivery" ? get("vin") || null : null,
    }
    if (await ctx.write((d, who) => recordEvent(d, c.id, ev, who), t("saved"))) {
      eventForm.reset()
      rerender()
    }
  })

  // Sell a car: VIN checked as core checks it, then sold from stock in one change.
  const vin = vinField(ctx)
  const price = h("input", { name: "price", inputmode: "decimal", placeholder: "" }) as HTMLInputElement
  vin.input.addEventListener("input", () => {
    const p = parseVin(vin.input.value)
    const v = p.ok ? doc.vehicles[p.vin] : undefined
    if (v && !price.value) price.placeholder = `${t("list")} ${v.listPrice / 100}`
  })
  const sellForm = h("form", { class: "form", "data-form": "sell" },
    h("p", { class: "hint" }, t("sellHint")),
    field(t("vin"), vin.element), field(t("price"), price),
    h("div", { class: "actions" },
      h("button", { type: "button", onclick: async () => {
        const p = parseVin(vin.input.value)
        if (!p.ok) return vin.check()
        if (await ctx.write((d, who) => moveVehicle(d, p.vin, "reserve", who, { customer: c.id }), t("saved"))) rerender()
      } }, t("reserve")),
      h("button", { type: "submit", class: "primary" }, t("sell")))) as HTMLFormElement
  sellForm.addEventListener("submit", async e => {
    e.preventDefault()
    const p = parseVin(vin.input.value)
    if (!p.ok) return vin.check()
    const fen = yuanToFen(price.value)
    if (await ctx.write((d, who) => sellVehicle(d, ctx.net(), p.vin, { customer: c.id, price: fen }, who), t("saved"))) {
      sellForm.reset()
      rerender()
    }
  })

  const events = [...c.events].sort((a, b) => b.at - a.at)
  // The cars this customer has: reserved, sold or delivered to them.
  const cars = Object.values(doc.vehicles).filter(v => v.soldTo === c.id || (v.status === "reserved" && v.reservedFor === c.id))
  return h("div", { class: "customer" },
    h("div", { class: "card-head" },
      h("div", { class: "big" }, c.name),
      h("div", {}, h("a", { href: `tel:${c.phone}` }, phoneText(c.phone)), " · ", label(c.source, "_s"),
        c.modelOfInterest ? ` · ${c.modelOfInterest}` : "", c.mergedInto ? ` · ${t("merged")}` : ""),
      events[0] ? h("div", { class: "row-sub" }, `${t("lastContact")} ${when(events[0].at)} · ${label(events[0].kind, events[0].kind === "referral" ? "_e" : "")}`) : null,
      cars.map(v => h("div", { class: "car" }, h("span", { class: `pill ${v.status}` }, label(v.status, "_v")), " ", h("span", { class: "mono" }, v.vin), ` ${v.model}`))),
    field(t("status"), statusSel), areaField(ctx, c, rerender),
    h("h3", {}, t("record")), eventForm,
    h("h3", {}, t("sell")), sellForm,
    ...careSections(ctx, c, rerender),
    h("h3", {}, t("events")),
    h("ul", { class: "list history" }, events.map(e =>
      h("li", {},
        h("div", { class: "row-main" }, `${when(e.at)} · ${label(e.kind, e.kind === "referral" ? "_e" : "")}`,
          e.direction ? ` (${label(e.direction)})` : "", e.amount != null ? ` · ${money(e.amount)}` : "", e.vin ? ` · ${e.vin}` : ""),
        h("div", { class: "row-sub" }, `${t("by")} ${e.by}`, e.note ? ` · ${e.note}` : "")))))
}

/** Renders the Customers screen. */
export function customers(ctx: Ctx, state: { query: string }, openCustomer: (id: string) => void, refresh: () => void): HTMLElement {
  const list = h("ul", { class: "list" })
  const fill = () => {
    const q = state.query.trim().toLowerCase()
    const digits = q.replace(/\D/g, "")
    const all = liveCustomers(ctx.plain())
      .filter(c => !q || c.name.toLowerCase().includes(q) || (digits.length >= 3 && c.phone.replace(/\D/g, "").includes(digits)))
      .sort((a, b) => Math.max(b.createdAt, ...b.events.map(e => e.at)) - Math.max(a.createdAt, ...a.events.map(e => e.at)))
    list.replaceChildren(...all.slice(0, 100).map(c =>
      h("li", { onclick: () => openCustomer(c.id), "data-customer": c.id },
        h("div", { class: "row-main" }, c.name, h("span", { class: `pill ${c.status}` }, label(c.status))),
        h("div", { class: "row-sub" }, phoneText(c.phone), c.modelOfInterest ? ` · ${c.modelOfInterest}` : ""))))
  }
  const search = h("input", { type: "search", placeholder: t("search"), value: state.query, "aria-label": t("search") }) as HTMLInputElement
  search.addEventListener("input", () => {
    state.query = search.value
    fill()
  })
  fill()
  return h("div", { class: "screen" },
    h("div", { class: "toolbar" }, search),
    h("div", { class: "chips" }, ORIGINS.map(o =>
      h("button", { class: "chip", "data-origin": o, onclick: () => addSheet(ctx, o, id => (id ? openCustomer(id) : refresh())) }, `+ ${originLabel(o)}`))),
    list)
}
