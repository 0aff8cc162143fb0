// Next month's forecast: one figure per catalogue model, written as core's
// set_forecast writes it (over every concurrent value of the cell).

import type { Ctx } from "../context"
import { monthKey, nextMonth } from "../domain/figures"
import { setForecast } from "../domain/ops"
import { t } from "../i18n"
import { h, when } from "../ui"

/** Renders the Forecast screen. */
export function forecast(ctx: Ctx): HTMLElement {
  const doc = ctx.plain()
  const net = ctx.net()
  const month = nextMonth(monthKey(Date.now()))
  const cells = doc.forecasts?.[month] ?? {}
  const deadline = net.forecastDeadlineDay ?? 25
  const rows = Object.values(net.models ?? {}).map(m => {
    const cell = cells[m.code]
    const input = h("input", { type: "number", min: 0, inputmode: "numeric", value: cell?.quantity ?? "", "data-model": m.code, "aria-label": m.code }) as HTMLInputElement
    return h("li", { class: "forecast-row" },
      h("div", { class: "row-main" }, `${m.name} (${m.code})`,
        h("div", { class: "row-sub" }, cell ? `${t("submitted")} ${when(cell.at)} · ${cell.by}${cell.adjusted ? ` · DC ${cell.adjusted.quantity}` : ""}` : t("notSubmitted"))),
      input,
      h("button", { class: "primary small", onclick: async () => {
        const q = input.value.trim() === "" ? NaN : Number(input.value)
        await ctx.write((d, w) => setForecast(d, net, month, m.code, q, w), t("saved"))
      } }, t("save")))
  })
  return h("div", { class: "screen" },
    h("section", { class: "card" },
      h("h2", {}, `${t("forecastFor")} · ${month}`),
      h("p", { class: "muted" }, `${t("deadline")}: ${monthKey(Date.now())}-${String(deadline).padStart(2, "0")}`),
      h("ul", { class: "list" }, rows)))
}
