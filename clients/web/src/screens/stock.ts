// Stock: the site's vehicles by model, found by VIN; reserve or sell one to a customer
// (a vehicle in stock is reserved and sold in one change), deliver a sold one.

import type { Ctx } from "../context"
import { daysInStock, liveCustomers } from "../domain/figures"
import { moveVehicle, sellVehicle } from "../domain/ops"
import { SLOW_MOVER_DAYS, type SiteDoc, type Vehicle } from "../domain/schema"
import { parseVin } from "../domain/vin"
import { label, t } from "../i18n"
import { h, money, phoneText, sheet, when, yuanToFen } from "../ui"
import { scanButton, vinProblem } from "./vin-field"

/** A customer's name for a car's line, its id when the record is not here. */
function customerName(customers: SiteDoc["customers"], id: string): string {
  return customers[id]?.name ?? id
}

/** Where a car on the list stands in time: when it is due (on order, on the way), or
 *  how long it has been here (in stock, reserved), with 滞销 past the slow-mover line. */
function age(v: Vehicle, now: number): (string | HTMLElement)[] {
  if ((v.status === "ordered" || v.status === "in_transit") && v.eta) return [` · ${t("eta")} ${when(v.eta)}`]
  const days = v.status === "in_stock" || v.status === "reserved" ? daysInStock(v.arrivedAt, now) : null
  if (days == null) return []
  const slow = v.status === "in_stock" && days > SLOW_MOVER_DAYS
  return [` · ${t("daysInStock")} ${days}`, slow ? h("span", { class: "pill slow" }, t("slowMover")) : ""]
}

function vehicleSheet(ctx: Ctx, v: Vehicle, refresh: () => void) {
  const doc = ctx.plain()
  const customers = liveCustomers(doc).sort((a, b) => a.name.localeCompare(b.name, "zh-CN"))
  const who = h("select", { name: "customer" }, h("option", { value: "" }, `— ${t("chooseCustomer")} —`),
    customers.map(c => h("option", { value: c.id, selected: c.id === v.reservedFor }, `${c.name} ${phoneText(c.phone)}`))) as HTMLSelectElement
  const price = h("input", { name: "price", inputmode: "decimal", placeholder: `${t("list")} ${v.listPrice / 100}` }) as HTMLInputElement
  let close = () => {}
  const act = async (f: () => Promise<boolean>) => {
    if (await f()) {
      close()
      refresh()
    }
  }
  const actions: HTMLElement[] = []
  if (v.status === "in_stock" || v.status === "reserved") {
    if (v.status === "in_stock")
      actions.push(h("button", { type: "button", onclick: () => act(() => ctx.write((d, w) => moveVehicle(d, v.vin, "reserve", w, { customer: who.value }), t("saved"))) }, t("reserve")))
    else actions.push(h("button", { type: "button", onclick: () => act(() => ctx.write((d, w) => moveVehicle(d, v.vin, "release", w), t("saved"))) }, t("release")))
    actions.push(h("button", { type: "button", class: "primary", onclick: () => act(() =>
      ctx.write((d, w) => sellVehicle(d, ctx.net(), v.vin, { customer: who.value || null, price: yuanToFen(price.value) }, w), t("saved"))) }, t("sell")))
  }
  if (v.status === "ordered" || v.status === "in_transit")
    actions.push(h("button", { type: "button", class: "primary", onclick: () => act(() => ctx.write((d, w) => moveVehicle(d, v.vin, "arrive", w), t("saved"))) }, t("arrive")))
  if (v.status === "sold") actions.push(h("button", { type: "button", class: "primary", onclick: () => act(() => ctx.write((d, w) => moveVehicle(d, v.vin, "deliver", w), t("saved"))) }, t("deliver")))
  const body = h("div", { class: "form" },
    h("div", { class: "card-head" }, h("div", { class: "big mono" }, v.vin),
      h("div", {}, `${v.model} · ${v.trim} · ${v.colour} · ${t("list")} ${money(v.listPrice)}`),
      h("div", {}, label(v.status, "_v"), v.reservedFor || v.soldTo ? ` · ${customerName(doc.customers, v.reservedFor ?? v.soldTo ?? "")}` : "")),
    v.status === "in_stock" || v.status === "reserved" ? [h("label", { class: "field" }, h("span", {}, t("customer")), who),
      h("label", { class: "field" }, h("span", {}, t("price")), price), h("p", { class: "hint" }, t("sellHint"))] : null,
    h("div", { class: "actions" }, actions))
  close = sheet(t("stock"), body)
}

/** Renders the Stock screen. */
export function stock(ctx: Ctx, state: { vin: string; status: string }, refresh: () => void): HTMLElement {
  const doc = ctx.plain()
  const now = Date.now()
  const list = h("div", {})
  const hint = h("small", { class: "hint" })
  const fill = () => {
    const q = state.vin.trim().toUpperCase()
    const p = parseVin(q)
    hint.textContent = q.length >= 17 && !p.ok ? `✗ ${vinProblem(p.error)}` : ""
    const vehicles = Object.values(doc.vehicles)
      .filter(v => v.status !== "transferred_out" && v.status !== "delivered")
      .filter(v => !state.status || v.status === state.status)
      .filter(v => !q || v.vin.includes(q))
    const byModel = new Map<string, Vehicle[]>()
    for (const v of vehicles) byModel.set(v.model, [...(byModel.get(v.model) ?? []), v])
    const models = ctx.net().models
    list.replaceChildren(
      ...(vehicles.length === 0 ? [h("p", { class: "muted" }, t("stockEmpty"))] : []),
      ...[...byModel.keys()].sort().map(model =>
        h("section", { class: "card" },
          h("h2", {}, `${models[model]?.name ?? model} (${model}) · ${byModel.get(model)!.length}`),
          h("ul", { class: "list" }, byModel.get(model)!.sort((a, b) => a.vin.localeCompare(b.vin)).map(v =>
            h("li", { onclick: () => vehicleSheet(ctx, v, refresh), "data-vin": v.vin },
              h("div", { class: "row-main mono" }, v.vin, h("span", { class: `pill ${v.status}` }, label(v.status, "_v"))),
              h("div", { class: "row-sub" }, `${v.trim} · ${v.colour} · ${money(v.listPrice)}`, ...age(v, now),
                v.soldTo || v.reservedFor ? ` · ${customerName(doc.customers, v.soldTo ?? v.reservedFor ?? "")}` : "")))))))
  }
  const search = h("input", { type: "search", placeholder: t("vin"), value: state.vin, class: "mono", "aria-label": t("vin") }) as HTMLInputElement
  search.addEventListener("input", () => {
    state.vin = search.value
    fill()
  })
  const statuses = ["", "in_stock", "reserved", "sold", "in_transit", "ordered"]
  const filter = h("select", { "aria-label": t("status"), onchange: (e: Event) => {
    state.status = (e.target as HTMLSelectElement).value
    fill()
  } }, statuses.map(s => h("option", { value: s, selected: s === state.status }, s ? label(s, "_v") : t("allStatuses"))))
  fill()
  // A scanned VIN finds the car; when it is on the list, its sheet opens.
  const scan = scanButton(vin => {
    state.vin = search.value = vin
    fill()
    const found = doc.vehicles[vin]
    if (found && found.status !== "transferred_out" && found.status !== "delivered") vehicleSheet(ctx, found, refresh)
  }, failed => {
    hint.textContent = `✗ ${failed}`
  })
  return h("div", { class: "screen" }, h("div", { class: "toolbar" }, search, scan, filter), hint, list)
}
