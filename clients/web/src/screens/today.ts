// Today: the consultant's own figures this month and this week against the targets set
// for them, then the customers waiting for a follow-up.

import type { Ctx } from "../context"
import { Figures, followUpsDue, isoWeek, monthKey, monthRange, ownFigures, targetFor } from "../domain/figures"
import type { Target } from "../domain/schema"
import { t } from "../i18n"
import { h, money, phoneText, when } from "../ui"

type Row = { name: string; get: (f: Figures) => number; goal: (t: Target) => number | null; fmt: (n: number) => string }

const ROWS: () => Row[] = () => [
  { name: t("units"), get: f => f.units, goal: g => g.units, fmt: String },
  { name: t("revenue"), get: f => f.revenue, goal: g => g.revenue, fmt: money },
  { name: t("visits"), get: f => f.visits, goal: g => g.visits, fmt: String },
  { name: t("calls"), get: f => f.calls, goal: g => g.calls, fmt: String },
  { name: t("testDrives"), get: f => f.testDrives, goal: g => g.testDrives, fmt: String },
  { name: t("orders"), get: f => f.orders, goal: () => null, fmt: String },
]

function cell(row: Row, f: Figures, target: Target | null) {
  const v = row.get(f)
  const goal = target ? row.goal(target) : null
  return h("td", {},
    h("div", { class: "fig-value" }, row.fmt(v)),
    goal ? h("div", { class: "fig-goal" }, `/ ${row.fmt(goal)}`) : null,
    goal ? h("div", { class: "bar" }, h("div", { class: "bar-fill", style: `width:${Math.min(100, Math.round((v / goal) * 100))}%` })) : null)
}

/** Renders the Today screen; `openCustomer` shows a customer's card. */
export function today(ctx: Ctx, openCustomer: (id: string) => void): HTMLElement {
  const doc = ctx.plain()
  const me = ctx.enrolment.sub
  const now = Date.now()
  const month = monthKey(now)
  const week = isoWeek(now)
  const due = followUpsDue(doc, me, now)
  const mf = ownFigures(doc, me, monthRange(month))
  const wf = ownFigures(doc, me, week.range)
  const mt = targetFor(doc, me, month)
  const wt = targetFor(doc, me, week.key)
  return h("div", { class: "screen" },
    h("section", { class: "card" },
      h("table", { class: "figures" },
        h("thead", {}, h("tr", {}, h("th", {}), h("th", {}, t("month"), h("small", {}, ` ${month}`)), h("th", {}, t("week"), h("small", {}, ` ${week.key.slice(5)}`)))),
        h("tbody", {}, ROWS().map(r => h("tr", {}, h("th", {}, r.name), cell(r, mf, mt), cell(r, wf, wt))))),
      mt || wt ? null : h("p", { class: "muted small" }, t("noTarget"))),
    h("section", { class: "card" },
      h("h2", {}, `${t("followUps")} (${due.length})`),
      due.length === 0 ? h("p", { class: "muted" }, t("followUpsNone")) : null,
      h("ul", { class: "list" }, due.slice(0, 50).map(({ customer, last, due }) =>
        h("li", { onclick: () => openCustomer(customer.id), "data-due": customer.id },
          h("div", { class: "row-main" }, customer.name, h("span", { class: "muted normal" }, phoneText(customer.phone))),
          h("div", { class: "row-sub" }, due != null ? `${t("nextFollowUp")} ${when(due)}` : `${Math.floor((now - last) / 86_400_000)} ${t("daysAgo")}`))))))
}
