// Conflicts: what the merges broke (the same vehicle sold to two customers, one
// person entered twice) with the resolutions core offers; resolving on one phone
// clears the conflict on every device once they sync.

import type { Ctx } from "../context"
import { detectConflicts, resolveDoubleBooking, resolveDuplicateCustomer, type Conflict } from "../domain/conflicts"
import { label, t } from "../i18n"
import { h, money, phoneText, when } from "../ui"

/** The conflicts waiting on this phone's copy of the site document. */
export function waiting(ctx: Ctx): Conflict[] {
  return detectConflicts(ctx.site.doc() as never)
}

/** Renders the Conflicts screen. */
export function conflicts(ctx: Ctx, refresh: () => void): HTMLElement {
  const doc = ctx.plain()
  const name = (id: string) => doc.customers[id]?.name ?? id
  const list = waiting(ctx)
  const card = (c: Conflict) => {
    if (c.kind === "double_booking") {
      const vin = c.records.find(r => r.startsWith("vehicle "))!.slice(8)
      const buyers = [...new Set(c.values.map(v => v.value))]
      return h("section", { class: "card conflict", "data-conflict": c.id },
        h("h2", {}, `⚠ ${t("doubleSale")}`),
        h("div", { class: "mono" }, vin),
        h("p", {}, t("conflictExplainSale")),
        h("div", { class: "actions column" }, buyers.map(b => {
          // Who sold it to this customer, for how much and when: the customer's order.
          const order = [...(doc.customers[b]?.events ?? [])].reverse().find(e => e.kind === "order" && e.vin === vin)
          const v = c.values.find(x => x.value === b && x.field === "soldTo") ?? c.values.find(x => x.value === b)!
          const detail = order
            ? `${order.by} ${t("soldFor")} ${money(order.amount ?? 0)} · ${when(order.at)}`
            : v.at ? when(v.at) : ""
          return h("button", { class: "primary", "data-customer": b, onclick: async () => {
            if (await ctx.write((_, w) => resolveDoubleBooking(ctx.site.doc() as never, vin, b, w), t("resolved"))) refresh()
          } }, h("div", {}, `${t("giveTo")} ${name(b)} · ${phoneText(doc.customers[b]?.phone ?? "")}`), h("small", {}, detail))
        })))
    }
    const ids = c.records.map(r => r.slice(9))
    return h("section", { class: "card conflict", "data-conflict": c.id },
      h("h2", {}, `⚠ ${t("duplicateCustomer")}`),
      h("p", {}, t("conflictExplainDup")),
      h("div", { class: "actions column" }, ids.map(keep => {
        const k = doc.customers[keep]
        return h("button", { class: "primary", "data-keep": keep, onclick: async () => {
          // Every other record of the person is merged into the one kept.
          for (const dup of ids.filter(i => i !== keep)) {
            if (!(await ctx.write((d, w) => resolveDuplicateCustomer(d, dup, keep, w)))) return
          }
          refresh()
        } }, h("div", {}, `${t("keep")} ${k?.name ?? keep} · ${phoneText(k?.phone ?? "")}`),
          h("small", {}, k ? `${k.consultant ?? ""} ${t("entered")} ${when(k.createdAt)} · ${label(k.source, "_s")} · ${k.events.length} ${t("eventsCount")}` : ""))
      })))
  }
  return h("div", { class: "screen" }, list.length === 0 ? h("p", { class: "muted center" }, t("conflictsNone")) : list.map(card))
}
