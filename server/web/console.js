// The console for managers and head office: the reports as charts where a person
// would rather look (target achievement, stock ageing, forecast against actual) and
// as tables with exports, the conflicts to resolve, targets and contests to edit, the
// catalogue (head office), and sign-in codes for their people. Every figure and every
// write goes through the relay's API with the session cookie; the API decides what
// the role may see and do.
import {
  el, tr, api, me, topBar, yuanExact, pct, num, isHeadOffice, currentMonth, ROLE_NAMES,
} from "/web/common.js";
import { groupedBars, stackedBars, legend } from "/web/charts.js";
import { conflicts } from "/web/conflicts.js";

const T = {
  title: { zh: "管理控制台", en: "Console" },
  board: { zh: "销售看板", en: "Sales board" },
  apiDocs: { zh: "接口说明", en: "API" },
  achievement: { zh: "目标达成", en: "Target achievement" },
  ageing: { zh: "库存账龄", en: "Stock ageing" },
  forecast: { zh: "预测与实际", en: "Forecast vs actual" },
  reports: { zh: "报表与导出", en: "Reports & exports" },
  conflicts: { zh: "数据冲突", en: "Conflicts" },
  targets: { zh: "目标设定", en: "Targets" },
  contests: { zh: "销售竞赛", en: "Contests" },
  catalogue: { zh: "车型目录", en: "Catalogue" },
  codes: { zh: "登录码", en: "Sign-in codes" },
  period: { zh: "期间", en: "Period" },
  month: { zh: "月份", en: "Month" },
  site: { zh: "网点", en: "Site" },
  consultant: { zh: "销售顾问", en: "Consultant" },
  units: { zh: "销量", en: "Units" },
  revenue: { zh: "销售额", en: "Revenue" },
  targetUnits: { zh: "目标台数", en: "Target units" },
  targetRevenue: { zh: "目标金额（元）", en: "Target revenue (yuan)" },
  unitsAch: { zh: "销量达成", en: "Units achieved" },
  revenueAch: { zh: "金额达成", en: "Revenue achieved" },
  testDrive: { zh: "试驾率", en: "Test-drive rate" },
  closing: { zh: "成交率", en: "Closing rate" },
  notAvailable: { zh: "不可用", en: "not available" },
  csv: { zh: "导出 CSV", en: "Export CSV" },
  xlsx: { zh: "导出 Excel", en: "Export Excel" },
  show: { zh: "查询", en: "Show" },
  save: { zh: "保存", en: "Save" },
  saved: { zh: "已保存", en: "Saved" },
  remove: { zh: "删除", en: "Delete" },
  none: { zh: "暂无数据", en: "Nothing to show" },
  model: { zh: "车型", en: "Model" },
  forecastU: { zh: "预测", en: "Forecast" },
  actualU: { zh: "实际交车", en: "Actual deliveries" },
};

const state = { who: null, tab: "achievement", network: null };

// ---- small builders -------------------------------------------------------------

function table(columns, rows, rowClass) {
  return el(
    "div",
    { class: "scroll" },
    el(
      "table",
      {},
      el("thead", {}, el("tr", {}, columns.map((c) => el("th", { class: c.n ? "n" : "" }, tr(c.title))))),
      el(
        "tbody",
        {},
        rows.length === 0
          ? el("tr", {}, el("td", { colspan: columns.length, class: "muted" }, tr(T.none)))
          : rows.map((r) =>
              el("tr", { class: rowClass ? rowClass(r) : "" }, columns.map((c) => el("td", { class: c.n ? "n" : "" }, c.value(r)))),
            ),
      ),
    ),
  );
}

function exportButtons(kind, query) {
  const q = new URLSearchParams(query);
  const link = (format, label) => {
    const p = new URLSearchParams(q);
    p.set("format", format);
    p.set("lang", document.documentElement.lang === "en" ? "en" : "zh");
    return el("a", { class: "button", href: `/api/reports/${kind}?${p}`, download: "", dataset: { export: `${kind}-${format}` } }, tr(label));
  };
  return [link("csv", T.csv), link("xlsx", T.xlsx)];
}

function status() {
  return el("span", { class: "status", role: "status" });
}

function say(node, ok, text) {
  node.className = "status " + (ok ? "ok" : "error");
  node.textContent = text;
}

function periodInput(value, type = "month") {
  return el("input", { type, value, name: "period" });
}

/** A site's name (from /api/sites), or its id. */
function siteLabel(id) {
  return (state.sites || []).find((s) => s.id === id)?.name ?? id;
}

function siteSelect(name = "site", includeEmpty = false) {
  const sites = state.sites || [];
  return el(
    "select",
    { name },
    includeEmpty ? el("option", { value: "" }, "—") : null,
    sites.map((s) => el("option", { value: s.id }, `${s.name} (${s.id})`)),
  );
}

function card(...children) {
  return el("section", { class: "card" }, ...children);
}

async function guarded(target, f) {
  try {
    await f();
  } catch (e) {
    target.replaceChildren(el("p", { class: "error" }, e.message));
  }
}

// ---- tabs -------------------------------------------------------------------------

async function achievementTab(main) {
  const month = periodInput(currentMonth());
  const out = el("div");
  const show = () =>
    guarded(out, async () => {
      const kpi = await api(`/api/reports/kpi?period=${month.value}&level=region,site`);
      const rows = kpi.rows;
      const sites = rows.filter((r) => r.level === "site" && r.targetUnits);
      const chart = groupedBars(
        sites.map((r) => ({ label: r.siteName, values: [r.unitsAchievement, r.revenueAchievement].map((v) => (v === null ? null : v * 100)) })),
        { width: 1400, height: 360, format: (v) => v.toFixed(0) + "%", reference: 100, referenceLabel: tr({ zh: "目标 100%", en: "target 100%" }) },
      );
      out.replaceChildren(
        card(el("h3", {}, tr(T.achievement)), legend([tr(T.unitsAch), tr(T.revenueAch)]), el("div", { class: "chart", id: "achievement-chart" }, chart)),
        card(
          el("div", { class: "toolbar" }, exportButtons("kpi", { period: month.value })),
          table(
            [
              { title: T.site, value: (r) => (r.level === "region" ? el("strong", {}, r.siteName + tr({ zh: "（区域合计）", en: " (region total)" })) : r.siteName) },
              { title: T.units, n: 1, value: (r) => num(r.deliveries) },
              { title: T.targetUnits, n: 1, value: (r) => num(r.targetUnits) },
              { title: T.unitsAch, n: 1, value: (r) => pct(r.unitsAchievement) },
              { title: T.revenue, n: 1, value: (r) => yuanExact(r.revenue) },
              { title: T.revenueAch, n: 1, value: (r) => pct(r.revenueAchievement) },
              { title: T.testDrive, n: 1, value: (r) => pct(r.testDriveRate) },
              { title: T.closing, n: 1, value: (r) => pct(r.closingRate) },
            ],
            rows,
            (r) => (r.available ? "" : "unavailable"),
          ),
        ),
      );
    });
  main.replaceChildren(
    el("h2", {}, tr(T.achievement)),
    el("div", { class: "toolbar" }, el("label", {}, tr(T.month), " ", month), el("button", { class: "primary", onclick: show }, tr(T.show))),
    out,
  );
  await show();
}

const AGE_BUCKETS = [
  [0, 30, "0–30"],
  [31, 60, "31–60"],
  [61, 90, "61–90"],
  [91, Infinity, "> 90"],
];

async function ageingTab(main) {
  const out = el("div");
  main.replaceChildren(el("h2", {}, tr(T.ageing)), out);
  await guarded(out, async () => {
    const [ageing, cat] = await Promise.all([api("/api/reports/ageing"), api("/api/catalogue").catch(() => ({ models: [] }))]);
    const models = new Map((Array.isArray(cat.models) ? cat.models : Object.values(cat.models || {})).map((m) => [m.code, m.name]));
    const byModel = new Map();
    for (const r of ageing.rows) {
      if (!byModel.has(r.model)) byModel.set(r.model, { label: models.get(r.model) ?? r.model, values: AGE_BUCKETS.map(() => 0) });
      const i = AGE_BUCKETS.findIndex(([lo, hi]) => r.daysInStock >= lo && r.daysInStock <= hi);
      byModel.get(r.model).values[i] += 1;
    }
    const slow = ageing.rows.filter((r) => r.slowMover);
    out.replaceChildren(
      card(
        el("h3", {}, tr({ zh: "在库天数分布（按车型，台）", en: "Days in stock by model (units)" })),
        legend(AGE_BUCKETS.map((b) => b[2] + tr({ zh: " 天", en: " days" }))),
        el("div", { class: "chart", id: "ageing-chart" }, stackedBars([...byModel.values()], { width: 1400, rowHeight: 34, labelWidth: 190 })),
      ),
      card(
        el("div", { class: "toolbar" }, el("strong", {}, tr({ zh: `滞销车（在库超过 ${ageing.slowMoverDays} 天）`, en: `Slow movers (over ${ageing.slowMoverDays} days)` })), exportButtons("ageing", {})),
        table(
          [
            { title: T.site, value: (r) => siteLabel(r.site) },
            { title: { zh: "车架号", en: "VIN" }, value: (r) => r.vin },
            { title: T.model, value: (r) => models.get(r.model) ?? r.model },
            { title: { zh: "在库天数", en: "Days" }, n: 1, value: (r) => num(r.daysInStock) },
            { title: { zh: "成本", en: "Cost" }, n: 1, value: (r) => yuanExact(r.cost) },
          ],
          slow,
        ),
      ),
    );
  });
}

function nextMonth(m) {
  const [y, mo] = m.split("-").map(Number);
  return mo === 12 ? `${y + 1}-01` : `${y}-${String(mo + 1).padStart(2, "0")}`;
}

async function forecastTab(main) {
  const month = periodInput(currentMonth());
  const out = el("div");
  const show = () =>
    guarded(out, async () => {
      // Actual deliveries of a month are what the next month's order plan reports as
      // its last full month's sales.
      const [forecast, plan] = await Promise.all([
        api(`/api/reports/forecast?period=${month.value}`),
        api(`/api/reports/order-plan?period=${nextMonth(month.value)}`),
      ]);
      const root = forecast.rows.find((r) => r.depth === 0)?.site;
      const fc = new Map();
      for (const r of forecast.rows.filter((r) => r.site === root)) fc.set(r.model, (fc.get(r.model) || 0) + (r.total ?? 0));
      const models = plan.rows.map((r) => ({ label: r.modelName || r.model, model: r.model, forecast: fc.get(r.model) ?? null, actual: r.lastMonthSales }));
      out.replaceChildren(
        card(
          el("h3", {}, tr({ zh: `${month.value} 预测与实际交车（台）`, en: `${month.value}: forecast and actual deliveries (units)` })),
          fc.size === 0 ? el("p", { class: "muted" }, tr({ zh: "该月没有提交的预测。", en: "No forecast was submitted for this month." })) : null,
          legend([tr(T.forecastU), tr(T.actualU)]),
          el("div", { class: "chart", id: "forecast-chart" }, groupedBars(models.map((m) => ({ label: m.label, values: [m.forecast, m.actual] })), { width: 1400, height: 340, format: (v) => v.toFixed(0) })),
        ),
        card(
          el("div", { class: "toolbar" }, exportButtons("forecast", { period: month.value })),
          table(
            [
              { title: T.model, value: (r) => r.label },
              { title: T.forecastU, n: 1, value: (r) => num(r.forecast) },
              { title: T.actualU, n: 1, value: (r) => num(r.actual) },
              { title: { zh: "偏差", en: "Difference" }, n: 1, value: (r) => (r.forecast === null ? "—" : num(r.actual - r.forecast)) },
            ],
            models,
          ),
        ),
      );
    });
  main.replaceChildren(
    el("h2", {}, tr(T.forecast)),
    el("div", { class: "toolbar" }, el("label", {}, tr(T.month), " ", month), el("button", { class: "primary", onclick: show }, tr(T.show))),
    out,
  );
  await show();
}

const REPORTS = [
  ["stock", { zh: "库存", en: "Stock" }],
  ["pipeline", { zh: "在途与订车", en: "Pipeline" }],
  ["order-plan", { zh: "订车计划", en: "Order plan" }],
  ["forecast-submissions", { zh: "预测提交情况", en: "Forecast submissions" }],
  ["kpi", { zh: "关键指标", en: "KPIs" }],
  ["board", { zh: "销售看板", en: "Sales board" }],
];

/** Any report as a plain table of its rows (the same columns as its CSV). */
async function reportsTab(main) {
  const kind = el("select", { name: "kind" }, REPORTS.map(([k, name]) => el("option", { value: k }, tr(name))));
  const month = periodInput(currentMonth());
  const out = el("div");
  const show = () =>
    guarded(out, async () => {
      const data = await api(`/api/reports/${kind.value}?period=${month.value}`);
      const rows = data.rows || [...(data.regions || []), ...(data.teams || []), ...(data.consultants || [])];
      const keys = [...new Set(rows.flatMap((r) => Object.keys(r)))].filter((k) => typeof rows[0]?.[k] !== "object" || rows[0][k] === null);
      const fmt = (k, v) => {
        if (v === null || v === undefined) return "—";
        if (/revenue|cost|capital|price|value/i.test(k) && typeof v === "number") return yuanExact(v);
        if (/rate|achievement|ratio/i.test(k) && typeof v === "number") return pct(v, 1);
        return String(v);
      };
      out.replaceChildren(
        card(
          el("div", { class: "toolbar" }, exportButtons(kind.value, { period: month.value })),
          table(keys.map((k) => ({ title: { zh: k, en: k }, value: (r) => fmt(k, r[k]) })), rows, (r) => (r.available === false ? "unavailable" : "")),
        ),
      );
    });
  main.replaceChildren(
    el("h2", {}, tr(T.reports)),
    el("div", { class: "toolbar" }, kind, el("label", {}, tr(T.period), " ", month), el("button", { class: "primary", onclick: show }, tr(T.show))),
    out,
  );
  await show();
}

async function conflictsTab(main) {
  await conflicts(main, {
    T, siteLabel, card, table, status, say, guarded,
    onLive: (stop) => { state.stopLive = stop; },
  });
}

async function targetsTab(main) {
  const period = el("input", { name: "period", value: currentMonth(), placeholder: "2026-12 / 2026-Q4 / 2026-W49" });
  const out = el("div");
  const list = () =>
    guarded(out, async () => {
      const data = await api(`/api/targets?period=${encodeURIComponent(period.value)}`);
      out.replaceChildren(
        card(
          table(
            [
              { title: T.site, value: (r) => siteLabel(r.site) },
              { title: T.consultant, value: (r) => r.consultant ?? "—" },
              { title: T.period, value: (r) => r.period },
              { title: T.targetUnits, n: 1, value: (r) => num(r.target.units) },
              { title: T.revenue, n: 1, value: (r) => yuanExact(r.target.revenue) },
            ],
            data.targets,
          ),
        ),
      );
    });
  // One target: site (and consultant), period, units, revenue.
  const f = {
    site: siteSelect(),
    consultant: el("input", { name: "consultant", placeholder: tr({ zh: "留空为网点目标", en: "empty: the site's own" }) }),
    period: el("input", { name: "period", value: currentMonth(), required: true }),
    units: el("input", { name: "units", type: "number", min: "0", required: true }),
    revenue: el("input", { name: "revenue", type: "number", min: "0", step: "0.01", required: true }),
  };
  const saved = status();
  const form = el(
    "form",
    {
      class: "grid",
      id: "target-form",
      onsubmit: async (ev) => {
        ev.preventDefault();
        try {
          await api("/api/targets", {
            method: "PUT",
            body: {
              targets: [
                {
                  site: f.site.value,
                  consultant: f.consultant.value.trim() || null,
                  period: f.period.value.trim(),
                  units: Number(f.units.value),
                  revenue: Math.round(Number(f.revenue.value) * 100),
                },
              ],
            },
          });
          say(saved, true, tr(T.saved));
          period.value = f.period.value.trim();
          list();
        } catch (e) {
          say(saved, false, e.message);
        }
      },
    },
    el("label", {}, tr(T.site), f.site),
    el("label", {}, tr(T.consultant), f.consultant),
    el("label", {}, tr(T.period), f.period),
    el("label", {}, tr(T.targetUnits), f.units),
    el("label", {}, tr(T.targetRevenue), f.revenue),
    el("div", {}, el("button", { class: "primary", type: "submit" }, tr(T.save)), " ", saved),
  );
  // Splitting a target down: proposed by the server, edited here, then saved.
  const s = {
    site: siteSelect(),
    period: el("input", { name: "period", value: currentMonth() }),
    into: el("select", { name: "into" }, [["periods", { zh: "按时间（季/月/周）", en: "into periods" }], ["sites", { zh: "到下属网点", en: "into sites below" }], ["consultants", { zh: "到销售顾问", en: "into consultants" }]].map(([v, t]) => el("option", { value: v }, tr(t)))),
    basis: el("select", { name: "basis" }, [["working_days", { zh: "按工作日", en: "working days" }], ["last_year", { zh: "按去年同期", en: "last year" }], ["even", { zh: "平均", en: "even" }]].map(([v, t]) => el("option", { value: v }, tr(t)))),
  };
  const parts = el("div");
  const split = el(
    "form",
    {
      class: "grid",
      id: "split-form",
      onsubmit: async (ev) => {
        ev.preventDefault();
        await guarded(parts, async () => {
          const p = await api("/api/targets/split", {
            method: "POST",
            body: { site: s.site.value, period: s.period.value.trim(), into: s.into.value, basis: s.basis.value },
          });
          const inputs = p.parts.map((part) => ({
            part,
            units: el("input", { type: "number", value: part.units, min: "0" }),
            revenue: el("input", { type: "number", value: (part.revenue / 100).toFixed(2), step: "0.01" }),
          }));
          const sum = el("p", { class: "muted" });
          const recheck = () => {
            const u = inputs.reduce((a, i) => a + Number(i.units.value), 0);
            const r = inputs.reduce((a, i) => a + Math.round(Number(i.revenue.value) * 100), 0);
            const du = u - p.total.units;
            const dr = r - p.total.revenue;
            sum.className = du === 0 && dr === 0 ? "ok" : "error";
            sum.textContent = `${tr({ zh: "合计", en: "Sum" })}: ${u} / ${p.total.units} ${tr({ zh: "台", en: "units" })}, ${yuanExact(r)} / ${yuanExact(p.total.revenue)}` + (du || dr ? ` — ${tr({ zh: "差额", en: "difference" })} ${du} ${tr({ zh: "台", en: "units" })}, ${yuanExact(dr)}` : " ✓");
          };
          inputs.forEach((i) => {
            i.units.addEventListener("input", recheck);
            i.revenue.addEventListener("input", recheck);
          });
          recheck();
          const savedSplit = status();
          parts.replaceChildren(
            table(
              [
                { title: T.site, value: (i) => i.part.site },
                { title: T.consultant, value: (i) => i.part.consultant ?? "—" },
                { title: T.period, value: (i) => i.part.period },
                { title: T.targetUnits, value: (i) => i.units },
                { title: T.targetRevenue, value: (i) => i.revenue },
              ],
              inputs,
            ),
            sum,
            el(
              "button",
              {
                class: "primary",
                onclick: async () => {
                  try {
                    await api("/api/targets", {
                      method: "PUT",
                      body: {
                        targets: inputs.map((i) => ({
                          site: i.part.site,
                          consultant: i.part.consultant ?? null,
                          period: i.part.period,
                          units: Number(i.units.value),
                          revenue: Math.round(Number(i.revenue.value) * 100),
                        })),
                      },
                    });
                    say(savedSplit, true, tr(T.saved));
                  } catch (e) {
                    say(savedSplit, false, e.message);
                  }
                },
              },
              tr({ zh: "保存全部", en: "Save all" }),
            ),
            " ",
            savedSplit,
          );
        });
      },
    },
    el("label", {}, tr(T.site), s.site),
    el("label", {}, tr(T.period), s.period),
    el("label", {}, tr({ zh: "拆分到", en: "Split" }), s.into),
    el("label", {}, tr({ zh: "依据", en: "Basis" }), s.basis),
    el("div", {}, el("button", { type: "submit" }, tr({ zh: "生成拆分建议", en: "Propose a split" }))),
  );
  main.replaceChildren(
    el("h2", {}, tr(T.targets)),
    card(el("h3", {}, tr({ zh: "设定一个目标", en: "Set a target" })), form),
    card(el("h3", {}, tr({ zh: "目标拆分（年→季→月→周，或到网点、顾问）", en: "Split a target (year → quarter → month → week, or to sites, consultants)" })), split, parts),
    el("div", { class: "toolbar" }, el("label", {}, tr(T.period), " ", period), el("button", { onclick: list }, tr(T.show))),
    out,
  );
  await list();
}

const METRIC_NAMES = {
  units: { zh: "交车台数", en: "Units" },
  revenue: { zh: "销售额", en: "Revenue" },
  test_drives: { zh: "试驾次数", en: "Test drives" },
  visits: { zh: "到店客户", en: "Visits" },
  calls: { zh: "电话回访", en: "Calls" },
  orders: { zh: "订单数", en: "Orders" },
};

async function contestsTab(main) {
  const out = el("div");
  const list = () =>
    guarded(out, async () => {
      const data = await api("/api/contests");
      const contests = data.contests ?? data;
      out.replaceChildren(
        card(
          table(
            [
              { title: { zh: "竞赛", en: "Contest" }, value: (c) => c.name },
              { title: T.period, value: (c) => c.period },
              { title: { zh: "指标", en: "Metric" }, value: (c) => tr(METRIC_NAMES[c.metric] ?? { zh: c.metric }) },
              { title: { zh: "参赛队", en: "Teams" }, value: (c) => c.teams.map((t) => `${t.name}: ${t.members.join("、")}`).join(" ｜ ") },
              {
                title: { zh: "", en: "" },
                value: (c) =>
                  el("button", {
                    onclick: async () => {
                      await api(`/api/contests/${encodeURIComponent(c.id)}`, { method: "DELETE" }).catch((e) => alert(e.message));
                      list();
                    },
                  }, tr(T.remove)),
              },
            ],
            Array.isArray(contests) ? contests : Object.values(contests || {}),
          ),
        ),
      );
    });
  const f = {
    id: el("input", { name: "id", required: true, pattern: "[a-z0-9\\-]+", placeholder: "double-11" }),
    name: el("input", { name: "name", required: true, placeholder: "双十一冲刺" }),
    period: el("input", { name: "period", required: true, value: currentMonth() }),
    metric: el("select", { name: "metric" }, Object.entries(METRIC_NAMES).map(([k, v]) => el("option", { value: k }, tr(v)))),
    members: el("select", { name: "members" }, el("option", { value: "sites" }, tr({ zh: "网点组队", en: "Teams of sites" })), el("option", { value: "consultants" }, tr({ zh: "顾问组队", en: "Teams of consultants" }))),
    teams: el("textarea", { name: "teams", rows: 4, required: true, placeholder: "北区: agent-n1, agent-n2\n南区: agent-s1, rs-2" }),
  };
  const saved = status();
  const form = el(
    "form",
    {
      class: "grid",
      id: "contest-form",
      onsubmit: async (ev) => {
        ev.preventDefault();
        const teams = f.teams.value
          .split("\n")
          .map((l) => l.trim())
          .filter(Boolean)
          .map((l) => {
            const [name, rest = ""] = l.split(/[:：]/);
            return { name: name.trim(), members: rest.split(/[,，、\s]+/).map((m) => m.trim()).filter(Boolean) };
          });
        try {
          await api(`/api/contests/${encodeURIComponent(f.id.value.trim())}`, {
            method: "PUT",
            body: { name: f.name.value.trim(), period: f.period.value.trim(), metric: f.metric.value, members: f.members.value, teams },
          });
          say(saved, true, tr(T.saved));
          list();
        } catch (e) {
          say(saved, false, e.message);
        }
      },
    },
    el("label", {}, "ID", f.id),
    el("label", {}, tr({ zh: "名称", en: "Name" }), f.name),
    el("label", {}, tr(T.period), f.period),
    el("label", {}, tr({ zh: "指标", en: "Metric" }), f.metric),
    el("label", {}, tr({ zh: "组队方式", en: "Teams of" }), f.members),
    el("label", {}, tr({ zh: "参赛队（每行：队名: 成员, 成员）", en: "Teams (one a line: name: member, member)" }), f.teams),
    el("div", {}, el("button", { class: "primary", type: "submit" }, tr(T.save)), " ", saved),
  );
  main.replaceChildren(el("h2", {}, tr(T.contests)), card(form), out);
  await list();
}

async function catalogueTab(main) {
  const out = el("div");
  main.replaceChildren(el("h2", {}, tr(T.catalogue)), out);
  await guarded(out, async () => {
    const cat = await api("/api/catalogue");
    const models = Array.isArray(cat.models) ? cat.models : Object.values(cat.models || {});
    out.replaceChildren(
      card(
        table(
          [
            { title: { zh: "代码", en: "Code" }, value: (m) => m.code },
            { title: { zh: "名称", en: "Name" }, value: (m) => m.name },
            { title: { zh: "成本（元）", en: "Cost (yuan)" }, value: (m) => (m.costInput = el("input", { type: "number", step: "0.01", value: (m.cost / 100).toFixed(2) })) },
            { title: { zh: "指导价（元）", en: "List price (yuan)" }, value: (m) => (m.priceInput = el("input", { type: "number", step: "0.01", value: (m.listPrice / 100).toFixed(2) })) },
            {
              title: { zh: "", en: "" },
              value: (m) => {
                const st = status();
                return el("span", {}, el("button", {
                  onclick: async () => {
                    try {
                      await api(`/api/catalogue/${encodeURIComponent(m.code)}`, {
                        method: "PUT",
                        body: { name: m.name, trims: m.trims || [], cost: Math.round(Number(m.costInput.value) * 100), listPrice: Math.round(Number(m.priceInput.value) * 100) },
                      });
                      say(st, true, tr(T.saved));
                    } catch (e) {
                      say(st, false, e.message);
                    }
                  },
                }, tr(T.save)), " ", st);
              },
            },
          ],
          models,
        ),
      ),
    );
  });
}

async function codesTab(main) {
  const f = {
    user: el("input", { name: "user", required: true, placeholder: "li.na" }),
    role: el("select", { name: "role" }, ["consultant", "manager", ...(isHeadOffice(state.who.role) ? ["head_office"] : [])].map((r) => el("option", { value: r }, tr(ROLE_NAMES[r])))),
    site: siteSelect(),
    device: el("input", { name: "device", placeholder: tr({ zh: "手机登记时填写（可选）", en: "for a phone (optional)" }) }),
  };
  const result = el("div");
  const form = el(
    "form",
    {
      class: "grid",
      id: "code-form",
      onsubmit: async (ev) => {
        ev.preventDefault();
        await guarded(result, async () => {
          const c = await api("/api/admin/sign-in-codes", {
            method: "POST",
            body: { user: f.user.value.trim(), role: f.role.value, site: f.site.value, device: f.device.value.trim() || null },
          });
          result.replaceChildren(
            card(
              el("div", { class: "code-box", id: "issued-code" }, c.code),
              // The phone app: scan the QR code with the phone's camera, or type the code in the app.
              c.appQrSvg ? el("img", { class: "qr", id: "issued-qr", alt: c.appUrl, src: "data:image/svg+xml;charset=utf-8," + encodeURIComponent(c.appQrSvg) }) : null,
              el("p", {}, tr({ zh: "手机应用（扫码或输入登录码）：", en: "Phone app (scan, or type the code): " }), el("a", { href: c.appUrl, id: "issued-app-link" }, c.appUrl)),
              el("p", {}, tr({ zh: "浏览器（看板、控制台）：", en: "Browser (board, console): " }), el("a", { href: c.signInUrl }, c.signInUrl)),
              el("p", { class: "muted" }, tr({ zh: "一次有效，", en: "Good once, until " }) + new Date(c.expiresAt * 1000).toLocaleTimeString("zh-CN") + tr({ zh: " 前有效。", en: "." })),
            ),
          );
        });
      },
    },
    el("label", {}, tr({ zh: "用户", en: "User" }), f.user),
    el("label", {}, tr({ zh: "角色", en: "Role" }), f.role),
    el("label", {}, tr(T.site), f.site),
    el("label", {}, tr({ zh: "设备", en: "Device" }), f.device),
    el("div", {}, el("button", { class: "primary", type: "submit" }, tr({ zh: "生成登录码", en: "Issue a code" }))),
  );
  main.replaceChildren(
    el("h2", {}, tr(T.codes)),
    el("p", { class: "muted" }, tr({ zh: "为您的员工生成一次性登录码：10 分钟内有效，只能使用一次。", en: "A one-time code for one of your people: good for 10 minutes, once." })),
    card(form),
    result,
  );
}

const TABS = [
  ["achievement", T.achievement, achievementTab],
  ["ageing", T.ageing, ageingTab],
  ["forecast", T.forecast, forecastTab],
  ["reports", T.reports, reportsTab],
  ["conflicts", T.conflicts, conflictsTab],
  ["targets", T.targets, targetsTab],
  ["contests", T.contests, contestsTab],
  ["catalogue", T.catalogue, catalogueTab, "head_office"],
  ["codes", T.codes, codesTab],
];

async function render() {
  const app = document.getElementById("app");
  // A tab's live stream ends with the tab.
  state.stopLive?.();
  state.stopLive = null;
  const tabs = TABS.filter((t) => !t[3] || isHeadOffice(state.who.role));
  if (!tabs.some((t) => t[0] === state.tab)) state.tab = tabs[0][0];
  const main = el("main", { id: "tab-" + state.tab });
  const aside = el(
    "aside",
    {},
    tabs.map(([id, name]) =>
      el(
        "button",
        {
          class: id === state.tab ? "active" : "",
          id: "tab-button-" + id,
          onclick: () => {
            state.tab = id;
            history.replaceState(null, "", "#" + id);
            render();
          },
        },
        tr(name),
      ),
    ),
  );
  app.replaceChildren(
    topBar(tr(T.title), state.who, render, [["/board", tr(T.board)], ["/console", tr(T.title)], ["/api-docs", tr(T.apiDocs)]]),
    el("div", { class: "console-layout" }, aside, main),
  );
  const tab = tabs.find((t) => t[0] === state.tab);
  await tab[2](main);
  main.dataset.ready = "1";
}

async function main() {
  state.who = await me();
  state.sites = await api("/api/sites").catch(() => []);
  const fromHash = location.hash.slice(1);
  if (fromHash) state.tab = fromHash;
  await render();
}

main().catch((e) => {
  document.getElementById("app").replaceChildren(el("p", { class: "error" }, e.message));
});
