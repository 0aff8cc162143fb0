// The console's conflicts tab: each business conflict in the dealer's words, the
// options that settle it (from core::conflicts, via /api/reports/conflicts), a
// confirmation, then `POST /api/conflicts/{id}/resolve`; the list follows the change
// stream, so a conflict settled here or elsewhere disappears without a reload.
import { el, tr, api } from "/web/common.js";

/** The console's builders (table, card, site names, status line), given by console.js. */
let ui = null;

/** A customer as a person knows them: the name, with the id. */
function customerLabel(c, id) {
  const name = c.names?.[id];
  return name ? `${name}（${id}）` : id;
}

/** The first record of a kind (`vehicle`, `part`, `forecast`) a conflict names. */
function recordOf(c, kind) {
  const r = (c.records || []).find((x) => x.startsWith(kind + " "));
  return r ? r.slice(kind.length + 1) : "";
}

/** What the conflict is, in the dealer's words. */
function conflictTitle(c) {
  const sites = [...new Set((c.values || []).map((v) => ui.siteLabel(v.site)))].join("、");
  const vin = recordOf(c, "vehicle");
  switch (c.kind) {
    case "double_booking":
      return tr({ zh: `${sites}：车辆 ${vin} 同时被预订或售给了不同的客户`, en: `${sites}: vehicle ${vin} was booked or sold to different customers at once` });
    case "stock_at_two_sites":
      return tr({ zh: `车辆 ${vin} 同时在多个网点的库存中：${sites}`, en: `Vehicle ${vin} is in stock at several sites: ${sites}` });
    case "duplicate_customer":
      return tr({ zh: `${sites}：同一电话登记了多位客户`, en: `${sites}: one phone number registered for several customers` });
    case "forecast_edit":
      return tr({ zh: `${sites}：预测 ${recordOf(c, "forecast")} 被同时改成了不同的数量`, en: `${sites}: forecast ${recordOf(c, "forecast")} was set to different quantities at once` });
    case "forecast_adjustment":
      return tr({ zh: `${sites}：配送中心对预测 ${recordOf(c, "forecast")} 做了不同的调整`, en: `${sites}: distribution centres adjusted forecast ${recordOf(c, "forecast")} differently` });
    case "part_count_collision":
      return tr({ zh: `${sites}：配件 ${recordOf(c, "part")} 在两台设备上同时建了库存`, en: `${sites}: part ${recordOf(c, "part")} was first stocked on two devices at once` });
    default:
      return c.summary;
  }
}

/** One option of a conflict, in the dealer's words. */
function optionLabel(c, o) {
  const when = o.at ? ` · ${new Date(o.at).toLocaleString(tr({ zh: "zh-CN", en: "en-GB" }))}` : "";
  switch (c.kind) {
    case "double_booking": {
      const sold = o.status === "sold";
      return tr({
        zh: `车辆归 ${customerLabel(c, o.value)}（${sold ? "已售" : "已预订"}${when}）`,
        en: `The car goes to ${customerLabel(c, o.value)} (${sold ? "sold" : "reserved"}${when})`,
      });
    }
    case "duplicate_customer":
      return tr({
        zh: `保留 ${customerLabel(c, o.value)}，其他记录并入该客户`,
        en: `Keep ${customerLabel(c, o.value)}; the other records are merged into it`,
      });
    case "stock_at_two_sites":
      return tr({
        zh: `车辆留在 ${ui.siteLabel(o.value)}，其他网点记为调出到此`,
        en: `The car stays at ${ui.siteLabel(o.value)}; the other sites record it as transferred there`,
      });
    case "part_count_collision":
      return tr({ zh: `实际库存 ${o.value} 件`, en: `${o.value} on the shelf` });
    default:
      return tr({ zh: `预测数量 ${o.value} 台${when}`, en: `Forecast ${o.value} units${when}` });
  }
}

/** The options of one conflict, a confirmation step, and the resolution request. */
function resolveForm(c, reload) {
  const choose = c.choices?.choose;
  const figure = choose === "quantity" || choose === "count";
  const name = "keep-" + c.id;
  const radios = (c.choices?.options || []).map((o) =>
    el("label", { class: "option" }, el("input", { type: "radio", name, value: o.value }), " ", optionLabel(c, o)),
  );
  const other = figure ? el("input", { type: "number", min: "0", step: "1", class: "other-figure", "aria-label": tr({ zh: "其他数量", en: "Another figure" }) }) : null;
  if (other) {
    radios.push(el("label", { class: "option" }, el("input", { type: "radio", name, value: "" }), " ", tr({ zh: "其他：", en: "Other: " }), other));
    other.addEventListener("focus", () => { radios[radios.length - 1].querySelector("input").checked = true; });
  }
  const note = ui.status();
  const actions = el("div", { class: "actions" });
  const form = el("div", { class: "resolve", dataset: { conflict: c.id } }, el("p", { class: "muted" }, tr({ zh: "请选择保留哪一个：", en: "Choose what to keep:" })), radios, actions, note);
  const chosen = () => {
    const r = form.querySelector(`input[name="${CSS.escape(name)}"]:checked`);
    if (!r) return null;
    if (r.value === "" && other) return other.value.trim() === "" ? null : { keep: other.value.trim(), label: tr({ zh: `数量 ${other.value.trim()}`, en: `${other.value.trim()}` }) };
    const o = c.choices.options.find((x) => x.value === r.value);
    return { keep: r.value, label: optionLabel(c, o) };
  };
  const ask = () => {
    const pick = chosen();
    if (!pick) {
      ui.say(note, false, tr({ zh: "请先选择一项。", en: "Choose an option first." }));
      return;
    }
    ui.say(note, true, "");
    form.classList.add("confirming");
    actions.replaceChildren(
      el("p", { class: "confirm" }, tr({ zh: "确认处理：", en: "Confirm: " }), el("strong", {}, pick.label), tr({ zh: "？此更改将同步到所有设备。", en: "? The change goes to every device." })),
      el("button", { class: "primary confirm-resolve", onclick: () => send(pick) }, tr({ zh: "确认", en: "Confirm" })),
      el("button", { onclick: () => { form.classList.remove("confirming"); idle(); } }, tr({ zh: "取消", en: "Cancel" })),
    );
  };
  const send = async (pick) => {
    actions.querySelectorAll("button").forEach((b) => (b.disabled = true));
    try {
      await api(`/api/conflicts/${encodeURIComponent(c.id)}/resolve`, { method: "POST", body: { keep: pick.keep } });
      form.classList.remove("confirming");
      ui.say(note, true, tr({ zh: "已处理。", en: "Settled." }));
      await reload();
    } catch (e) {
      form.classList.remove("confirming");
      idle();
      ui.say(note, false, e.message);
    }
  };
  const idle = () => actions.replaceChildren(el("button", { class: "primary resolve-button", onclick: ask }, tr({ zh: "处理", en: "Resolve" })));
  idle();
  return form;
}

export async function conflicts(main, given) {
  ui = given;
  const { T, card, table, guarded } = ui;
  const out = el("div", { id: "conflict-list" });
  main.replaceChildren(el("h2", {}, tr(T.conflicts)), out);
  const show = async () => {
    // A person in the middle of confirming keeps the form; the list catches up after.
    if (out.querySelector(".confirming")) return;
    const data = await api("/api/reports/conflicts");
    const list = data.conflicts || [];
    // `el` flattens lists and skips nulls; the DOM's replaceChildren would print them.
    out.replaceChildren(el(
      "div",
      {},
      el("p", { class: "muted" }, tr({
        zh: "离线修改合并后可能出现冲突（同一辆车卖给两位客户等）。选择保留哪一个并确认，更改会同步到所有设备，冲突随即消失。",
        en: "Conflicts appear when offline edits merge (one car sold to two customers, ...). Choose what to keep and confirm: the change goes to every device and the conflict disappears.",
      })),
      list.length === 0 ? card(el("p", { class: "ok", id: "no-conflicts" }, tr({ zh: "没有待处理的冲突。", en: "No conflicts to resolve." }))) : null,
      list.map((c) =>
        el(
          "section",
          { class: "card conflict", dataset: { conflict: c.id, kind: c.kind } },
          el("h3", {}, conflictTitle(c)),
          table(
            [
              { title: T.site, value: (v) => ui.siteLabel(v.site) },
              { title: { zh: "记录", en: "Record" }, value: (v) => v.record },
              { title: { zh: "字段", en: "Field" }, value: (v) => v.field },
              { title: { zh: "值", en: "Value" }, value: (v) => (c.names?.[v.value] ? customerLabel(c, v.value) : v.value) },
              { title: { zh: "时间", en: "At" }, value: (v) => (v.at ? new Date(v.at).toLocaleString("zh-CN") : "—") },
            ],
            c.values || [],
          ),
          c.resolvable
            ? resolveForm(c, show)
            : el("p", { class: "muted" }, tr({
                zh: `总部只能查看；由该网点的经理处理（或在网点设备上：dealersync conflicts resolve ${c.id} --keep …）。`,
                en: `View only: the site's manager settles it (or on a device of the site: dealersync conflicts resolve ${c.id} --keep …).`,
              })),
        ),
      ),
    ));
  };
  await guarded(out, show);
  // Live: a conflict settled elsewhere, or a new one, shows without a reload.
  const events = new EventSource("/api/reports/events");
  events.addEventListener("change", () => guarded(out, show));
  ui.onLive(() => events.close());
}

