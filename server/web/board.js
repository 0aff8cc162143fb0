// The live sales board: for a showroom TV and a phone. Units and revenue against the
// month's and the week's target per team and consultant, test-drive and closing
// rates, the contest ranking, and network stock by model for head office. It listens
// to the relay's change stream (/api/reports/events) and re-reads the reports when a
// change lands, without a reload.
import {
  el, tr, lang, api, me, topBar, money, pct, num, isManager, isHeadOffice,
  currentMonth, monthElapsed, weekElapsed,
} from "/web/common.js";
import { progressBar, stackedBars, legend, paceClass } from "/web/charts.js";

const T = {
  title: { zh: "销售看板", en: "Sales board" },
  console: { zh: "管理控制台", en: "Console" },
  apiDocs: { zh: "接口说明", en: "API" },
  monthUnits: { zh: "本月销量", en: "Units this month" },
  monthRevenue: { zh: "本月销售额", en: "Revenue this month" },
  weekUnits: { zh: "本周销量", en: "Units this week" },
  rates: { zh: "试驾率 · 成交率", en: "Test-drive · closing rate" },
  target: { zh: "目标", en: "target" },
  noTarget: { zh: "未设目标", en: "no target" },
  units: { zh: "台", en: "units" },
  month: { zh: "月", en: "Mo" },
  week: { zh: "周", en: "Wk" },
  teams: { zh: "团队目标达成", en: "Teams against target" },
  region: { zh: "区域", en: "Region" },
  regions: { zh: "区域（含下属网点）", en: "Regions (with the sites below)" },
  teamsOnly: { zh: "各网点团队", en: "Site teams" },
  contest: { zh: "销售竞赛排行", en: "Sales contest ranking" },
  consultants: { zh: "销售顾问排行", en: "Consultants" },
  consultantRule: { zh: "按本月销量目标达成率", en: "by this month's unit target achieved" },
  contestRule: { zh: "未设竞赛：按本月销量目标达成率排名", en: "No contest set: ranked by this month's unit target achieved" },
  bottom: { zh: "待加油", en: "Needs a push" },
  stock: { zh: "全网库存（按车型）", en: "Network stock by model" },
  live: { zh: "实时", en: "Live" },
  offline: { zh: "连接中断，正在重连", en: "Reconnecting" },
  updated: { zh: "更新于", en: "Updated" },
  pace: { zh: "时间进度", en: "Time gone" },
  proRated: { zh: "周目标按月目标折算", en: "week targets pro-rated from the month" },
  notAvailable: { zh: "数据不可用", en: "not available" },
  testDrive: { zh: "试驾率", en: "Test-drive" },
  closing: { zh: "成交率", en: "Closing" },
  firstVisitors: { zh: "首次到店", en: "first visits" },
  people: { zh: "人", en: "" },
  rateBasis: { zh: "按首次到店客户计", en: "of first-time visitors" },
  noRows: { zh: "暂无数据", en: "No figures yet" },
  inStock: { zh: "在库可售", en: "In stock" },
  sold: { zh: "已售待交车", en: "Sold, awaiting delivery" },
  inTransit: { zh: "在途", en: "In transit" },
  ordered: { zh: "已向厂家订车", en: "Ordered from factory" },
};

/** What the first three places are called (equal results share a place). */
const PLACES = [
  { zh: "冠军", en: "1st" },
  { zh: "亚军", en: "2nd" },
  { zh: "季军", en: "3rd" },
];

const state = { who: null, data: null, live: false, updatedAt: null, previous: new Map(), error: null };

/** `2026-W49`: the ISO week of `now` in China Standard Time. */
export function isoWeek(now = Date.now()) {
  const cst = new Date(now + 8 * 3600 * 1000);
  const d = new Date(Date.UTC(cst.getUTCFullYear(), cst.getUTCMonth(), cst.getUTCDate()));
  // The Thursday of this week decides its year and number.
  d.setUTCDate(d.getUTCDate() + 4 - (d.getUTCDay() || 7));
  const yearStart = Date.UTC(d.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((d.getTime() - yearStart) / 86400000 + 1) / 7);
  return `${d.getUTCFullYear()}-W${String(week).padStart(2, "0")}`;
}

function periodLabel(month, week) {
  const [y, m] = month.split("-").map(Number);
  const w = Number(week.split("-W")[1]);
  if (lang() === "zh") return `${y}年${m}月 · 第${w}周`;
  const name = new Date(Date.UTC(y, m - 1, 1)).toLocaleString("en", { month: "long", timeZone: "UTC" });
  return `${name} ${y} · week ${w}`;
}

function daysInMonth(month) {
  const [y, m] = month.split("-").map(Number);
  return new Date(Date.UTC(y, m, 0)).getUTCDate();
}

/** Reads every report the board shows, in parallel. */
async function load() {
  const month = currentMonth();
  const week = isoWeek();
  const hq = isHeadOffice(state.who.role);
  const [board, weekBoard, kpi, stock] = await Promise.all([
    api(`/api/reports/board?period=${month}`),
    api(`/api/reports/board?period=${week}`),
    api(`/api/reports/kpi?period=${month}`),
    hq ? api("/api/reports/stock?group=model,status") : Promise.resolve(null),
  ]);
  return { month, week, board, weekBoard, kpi, stock };
}

function byKey(rows) {
  const m = new Map();
  for (const r of rows || []) m.set(`${r.level}:${r.site}:${r.id}`, r);
  return m;
}

/** The KPI row of a team (`site` level) or consultant, for its rates. */
function kpiRow(kpi, level, site, consultant) {
  const want = level === "team" ? "site" : level;
  return (kpi.rows || []).find(
    (r) => r.level === want && r.site === site && (level !== "consultant" || r.consultant === consultant),
  );
}

/** The week's target for a row: the one set for the week, else the month's pro-rated. */
function weekTarget(weekRow, monthRow, month) {
  if (weekRow?.targetUnits !== null && weekRow?.targetUnits !== undefined) {
    return { units: weekRow.targetUnits, proRated: false };
  }
  if (monthRow?.targetUnits === null || monthRow?.targetUnits === undefined) return null;
  return { units: (monthRow.targetUnits * 7) / daysInMonth(month), proRated: true };
}

function ratio(a, b) {
  return a === null || a === undefined || !b ? null : a / b;
}

function rateLine(k) {
  if (!k) return null;
  return el(
    "span",
    { class: "rates-inline" },
    `${tr(T.testDrive)} ${pct(k.testDriveRate)} · ${tr(T.closing)} ${pct(k.closingRate)}`,
  );
}

/** Did this figure change since the last render? Then it flashes once. */
function changed(key, value) {
  const before = state.previous.get(key);
  state.previous.set(key, value);
  return before !== undefined && before !== value;
}

function targetRow(row, weekRow, kpi, d, paces, tag) {
  const wt = weekTarget(weekRow, row, d.month);
  const weekUnits = weekRow?.units ?? null;
  const key = `${row.level}:${row.site}:${row.id}`;
  const flash = changed(key, `${row.units}/${row.revenue}/${weekUnits}`);
  const k = kpiRow(d.kpi, row.level, row.site, row.id);
  const unitsText = row.available ? num(row.units) : "—";
  return el(
    "div",
    {
      class: `target-row rank-${row.rank}${row.available ? "" : " unavailable"}${flash ? " updated-flash" : ""}`,
      dataset: { level: row.level, id: row.id, site: row.site },
    },
    el("div", { class: "rank" }, row.rank),
    el(
      "div",
      { class: "name" },
      row.name,
      el("span", { class: "site" }, tag ? `${tag} · ` : "", row.available ? rateLine(k) ?? "" : tr(T.notAvailable)),
    ),
    el(
      "div",
      { class: "bars" },
      progressBar(tr(T.month), row.unitsAchievement, paces.month, `${row.units ?? "—"} / ${row.targetUnits ?? "—"}`),
      progressBar(
        tr(T.week),
        wt ? ratio(weekUnits, wt.units) : null,
        paces.week,
        wt ? `${weekUnits ?? "—"} / ${wt.units.toFixed(1)}${wt.proRated ? " (" + tr(T.proRated) + ")" : ""}` : tr(T.noTarget),
      ),
    ),
    el(
      "div",
      { class: "figure" },
      el("span", { class: "big units", dataset: { units: row.units ?? "" } }, unitsText),
      el("span", { class: "of" }, row.targetUnits !== null && row.targetUnits !== undefined ? ` / ${row.targetUnits}` : ""),
      el("div", { class: "of revenue" }, money(row.revenue)),
    ),
  );
}

function tile(id, label, value, small, sub, extra) {
  return el(
    "div",
    { class: "kpi", id },
    el("div", { class: "label" }, label),
    el("div", { class: "value" }, value, small ? el("small", {}, small) : null),
    extra || null,
    sub ? el("div", { class: "sub" }, sub) : null,
  );
}

function tiles(d, paces) {
  const root = state.who.site;
  const k =
    (d.kpi.rows || []).find((r) => r.level === "region" && r.site === root) ||
    (d.kpi.rows || []).find((r) => r.level === "site" && r.site === root) ||
    {};
  const monthRow =
    d.board.regions.find((r) => r.id === root) || d.board.teams.find((r) => r.id === root) || {};
  const weekRow =
    d.weekBoard.regions.find((r) => r.id === root) || d.weekBoard.teams.find((r) => r.id === root) || {};
  const wt = weekTarget(weekRow, monthRow, d.month);
  const flash = changed("tiles", `${k.deliveries}/${k.revenue}/${weekRow.units}`);
  const out = el(
    "section",
    { class: "kpis" + (flash ? " updated-flash" : ""), id: "kpis" },
    tile(
      "kpi-units",
      tr(T.monthUnits),
      el("span", { class: "units", dataset: { units: k.deliveries ?? "" } }, num(k.deliveries)),
      k.targetUnits !== null && k.targetUnits !== undefined ? `/ ${k.targetUnits} ${tr(T.units)}` : tr(T.noTarget),
      null,
      progressBar("", k.unitsAchievement, paces.month),
    ),
    tile(
      "kpi-revenue",
      tr(T.monthRevenue),
      money(k.revenue),
      k.targetRevenue ? `/ ${money(k.targetRevenue)}` : tr(T.noTarget),
      null,
      progressBar("", k.revenueAchievement, paces.month),
    ),
    tile(
      "kpi-week",
      tr(T.weekUnits),
      num(weekRow.units),
      wt ? `/ ${wt.units.toFixed(wt.proRated ? 1 : 0)} ${tr(T.units)}` : tr(T.noTarget),
      wt?.proRated ? tr(T.proRated) : null,
      progressBar("", wt ? ratio(weekRow.units, wt.units) : null, paces.week),
    ),
    tile(
      "kpi-rates",
      tr(T.rates),
      `${pct(k.testDriveRate)} · ${pct(k.closingRate)}`,
      null,
      `${tr(T.firstVisitors)} ${num(k.firstVisitors)} ${tr(T.people)} · ${tr(T.rateBasis)}`,
    ),
  );
  return out;
}

function teamsPanel(d, paces) {
  const root = state.who.site;
  const weekRows = byKey([...d.weekBoard.regions, ...d.weekBoard.teams]);
  const rows = [];
  const regions = d.board.regions.filter((r) => r.id !== root);
  if (regions.length) {
    rows.push(el("h3", { class: "sub-head" }, tr(T.regions)));
    for (const r of regions) {
      rows.push(targetRow(r, weekRows.get(`region:${r.site}:${r.id}`), d.kpi, d, paces, tr(T.region)));
    }
    rows.push(el("h3", { class: "sub-head" }, tr(T.teamsOnly)));
  }
  for (const r of d.board.teams) {
    rows.push(targetRow(r, weekRows.get(`team:${r.site}:${r.id}`), d.kpi, d, paces, null));
  }
  return el(
    "section",
    { class: "panel", id: "teams" },
    el("h2", {}, tr(T.teams), el("span", { class: "note" }, `${tr(T.month)} / ${tr(T.week)} · ${tr(T.pace)} ▏`)),
    rows.length ? rows : el("p", { class: "empty" }, tr(T.noRows)),
  );
}

function score(r) {
  if (r.unitsAchievement !== null && r.unitsAchievement !== undefined) return pct(r.unitsAchievement);
  return `${num(r.units)} ${tr(T.units)}`;
}

const METRICS = {
  units: { zh: "交车台数", en: "units delivered" },
  revenue: { zh: "交车销售额", en: "revenue" },
  test_drives: { zh: "试驾次数", en: "test drives" },
  visits: { zh: "到店客户", en: "visits" },
  calls: { zh: "电话回访", en: "calls" },
  orders: { zh: "订单数", en: "orders" },
};

function metricValue(metric, v) {
  if (v === null || v === undefined) return tr(T.notAvailable);
  return metric === "revenue" ? money(v) : num(v);
}

/** The contest to show: one of this month or week first, else the latest defined. */
function currentContest(d) {
  const all = d.board.contests || [];
  return all.find((c) => c.period === d.month || c.period === d.week) || all[0] || null;
}

/** A contest defined by a manager (销售竞赛): its teams ranked, leaders and bottom. */
function definedContestPanel(d, c) {
  const teams = c.teams || [];
  const bottom = new Set(c.bottom || []);
  const podium = teams.slice(0, 3);
  const rest = teams.slice(3);
  return el(
    "section",
    { class: "panel", id: "contest", dataset: { contest: c.id } },
    el("h2", {}, `${tr(T.contest)} · ${c.name}`),
    el("p", { class: "contest-title" }, `${tr(METRICS[c.metric] ?? { zh: c.metric })} · ${c.period}`),
    el(
      "div",
      { class: "podium" },
      podium.map((t) =>
        el(
          "div",
          { class: `place p${Math.min(t.rank, 3)}`, dataset: { team: t.name } },
          el("div", { class: "medal" }, tr(PLACES[Math.min(t.rank, 3) - 1])),
          el("div", { class: "who" }, t.name),
          el("div", { class: "muted" }, t.members.map((m) => siteName(d, m)).join("、")),
          el("div", { class: "score" }, metricValue(c.metric, t.value)),
        ),
      ),
    ),
    el(
      "ol",
      { class: "ranking" },
      rest.map((t) =>
        el(
          "li",
          { class: bottom.has(t.name) ? "bottom" : "", dataset: { team: t.name } },
          el("span", { class: "r" }, t.rank),
          el("span", {}, t.name, el("span", { class: "muted" }, ` · ${t.members.map((m) => siteName(d, m)).join("、")}`)),
          el("span", { class: "s" }, metricValue(c.metric, t.value)),
        ),
      ),
    ),
  );
}

/**
 * The consultants ranked by this month's unit target achieved: with a podium when no
 * contest is running (then this is the contest), as a compact table beside one.
 */
function consultantsPanel(d, withPodium) {
  const rows = d.board.consultants.filter((r) => r.available);
  const podium = withPodium ? rows.slice(0, 3) : [];
  const rest = rows.slice(podium.length);
  const showTop = withPodium ? 4 : 5;
  const bottom = rest.length > showTop + 3 ? rest.slice(-3) : [];
  const middle = bottom.length ? rest.slice(0, showTop) : rest;
  const item = (r, cls) =>
    el(
      "li",
      { class: cls || "", dataset: { id: r.id, site: r.site } },
      el("span", { class: "r" }, r.rank),
      el("span", {}, r.name, el("span", { class: "muted" }, ` · ${siteName(d, r.site)}`)),
      el("span", { class: "s" }, score(r), el("span", { class: "muted" }, ` ${num(r.units)}/${r.targetUnits ?? "—"}`)),
    );
  return el(
    "section",
    { class: "panel", id: withPodium ? "contest" : "consultants" },
    el("h2", {}, withPodium ? tr(T.contest) : tr(T.consultants)),
    el("p", { class: "contest-title" }, withPodium ? tr(T.contestRule) : tr(T.consultantRule)),
    rows.length === 0
      ? el("p", { class: "empty" }, tr(T.noRows))
      : [
          podium.length === 0 ? null : el(
            "div",
            { class: "podium" },
            podium.map((r, i) =>
              el(
                "div",
                { class: `place p${Math.min(r.rank, 3)}` },
                el("div", { class: "medal" }, tr(PLACES[Math.min(r.rank, 3) - 1])),
                el("div", { class: "who" }, r.name),
                el("div", { class: "muted" }, siteName(d, r.site)),
                el("div", { class: "score " + paceClass(r.unitsAchievement, monthElapsed()) }, score(r)),
              ),
            ),
          ),
          el(
            "ol",
            { class: "ranking" },
            middle.map((r) => item(r)),
            bottom.length ? [el("li", { class: "gap" }, `⋯ ${tr(T.bottom)} ⋯`), bottom.map((r) => item(r, "bottom"))] : [],
          ),
        ],
  );
}

/** The contest running (if one is), the consultants, and network stock for head office. */
function rightColumn(d) {
  const contest = currentContest(d);
  return [contest ? definedContestPanel(d, contest) : null, consultantsPanel(d, !contest), stockPanel(d)];
}

function siteName(d, site) {
  return d.board.teams.find((t) => t.id === site)?.name ?? site;
}

function stockPanel(d) {
  if (!d.stock) return null;
  const statuses = ["in_stock", "sold", "in_transit", "ordered"];
  const byModel = new Map();
  for (const r of d.stock.rows || []) {
    if (!byModel.has(r.model)) byModel.set(r.model, { label: r.modelName || r.model, values: statuses.map(() => 0) });
    const i = statuses.indexOf(r.status);
    if (i >= 0) byModel.get(r.model).values[i] += r.count;
  }
  const rows = [...byModel.values()].filter((r) => r.values.some((v) => v > 0));
  return el(
    "section",
    { class: "panel stock-chart", id: "stock" },
    el("h2", {}, tr(T.stock), el("span", { class: "note" }, `${num(rows.reduce((a, r) => a + r.values[0], 0))} ${tr(T.units)} ${tr(T.inStock)}`)),
    legend([tr(T.inStock), tr(T.sold), tr(T.inTransit), tr(T.ordered)]),
    rows.length ? stackedBars(rows, { width: 700, rowHeight: 30, labelWidth: 170 }) : el("p", { class: "empty" }, tr(T.noRows)),
  );
}

function render() {
  const app = document.getElementById("app");
  const who = state.who;
  const links = [["/board", tr(T.title)]];
  if (isManager(who.role)) links.push(["/console", tr(T.console)]);
  links.push(["/api-docs", tr(T.apiDocs)]);
  const bar = topBar(tr(T.title), who, render, links);
  const d = state.data;
  if (!d) {
    app.replaceChildren(bar, el("p", { class: state.error ? "error board" : "empty board" }, state.error || "…"));
    return;
  }
  const paces = { month: monthElapsed(), week: weekElapsed() };
  const live = el(
    "span",
    { class: "live" + (state.live ? " on" : ""), id: "live" },
    state.live ? tr(T.live) : tr(T.offline),
  );
  const head = el(
    "div",
    { class: "board-head" },
    el("span", { class: "period" }, periodLabel(d.month, d.week)),
    el("span", { class: "pace" }, `${tr(T.pace)}: ${tr(T.month)} ${pct(paces.month)} · ${tr(T.week)} ${pct(paces.week)}`),
    live,
    el("span", { class: "pace", id: "updated" }, `${tr(T.updated)} ${state.updatedAt?.toLocaleTimeString("zh-CN", { hour12: false }) ?? ""}`),
    state.error ? el("span", { class: "error" }, state.error) : null,
  );
  const warnings = [...(d.board.warnings || []), ...(d.kpi.warnings || [])];
  app.replaceChildren(
    bar,
    el(
      "main",
      { class: "board" },
      head,
      tiles(d, paces),
      el(
        "div",
        { class: "panels" },
        el("div", { class: "column" }, teamsPanel(d, paces)),
        el("div", { class: "column" }, ...rightColumn(d)),
      ),
      warnings.length ? el("p", { class: "warnings" }, warnings.map((w) => w.message ?? JSON.stringify(w)).join(" · ")) : null,
    ),
  );
}

/** Re-reads the reports; a change arriving meanwhile triggers one more read after. */
let loading = null;
let again = false;
async function refresh() {
  if (loading) {
    again = true;
    return loading;
  }
  loading = (async () => {
    do {
      again = false;
      try {
        state.data = await load();
        state.updatedAt = new Date();
        state.error = null;
      } catch (e) {
        state.error = e.message;
      }
      render();
    } while (again);
    loading = null;
  })();
  return loading;
}

function listen() {
  const events = new EventSource("/api/reports/events");
  events.addEventListener("ready", () => {
    state.live = true;
    // Whatever changed while the stream was down.
    refresh();
  });
  events.addEventListener("change", () => refresh());
  events.onerror = () => {
    state.live = false;
    render();
    // The stream ends when the session expires or is revoked: check, and go to the
    // sign-in page if so (api() does that on 401).
    if (events.readyState === EventSource.CLOSED) {
      me().then(() => setTimeout(listen, 2000));
    }
  };
}

async function main() {
  state.who = await me();
  render();
  await refresh();
  listen();
  // The pace marks move with the clock even when no sale lands.
  setInterval(render, 60_000);
}

main().catch((e) => {
  document.getElementById("app").replaceChildren(el("p", { class: "error board" }, e.message));
});
