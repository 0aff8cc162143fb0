// Shared by the board, the console and the sign-in page: the language, calls to the
// relay's API with the session cookie, number formats, DOM and SVG builders.
// Everything is built with DOM calls (never innerHTML), so a site or person's name
// typed as markup stays text.

const LANG_KEY = "dealersync-lang";

/** The page language: Chinese unless the person chose English. */
export function lang() {
  return localStorage.getItem(LANG_KEY) === "en" ? "en" : "zh";
}

export function setLang(l) {
  localStorage.setItem(LANG_KEY, l === "en" ? "en" : "zh");
  document.documentElement.lang = l === "en" ? "en" : "zh-CN";
}

/** Picks the text for the page language from a `{zh, en}` pair. */
export function tr(pair) {
  return pair[lang()] ?? pair.zh;
}

/** An element: `el("div", {class: "x", onclick: f}, child, "text", ...)`. */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else if (k === "dataset") Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  append(e, children);
  return e;
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** An SVG element, as `el` (attributes are set as given). */
export function svg(tag, attrs = {}, ...children) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    e.setAttribute(k, String(v));
  }
  append(e, children);
  return e;
}

function append(parent, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    parent.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Thrown by `api` for an answer that is not 2xx: the relay's message and kind. */
export class ApiError extends Error {
  constructor(status, kind, message) {
    super(message);
    this.status = status;
    this.kind = kind;
  }
}

/**
 * Calls the relay's API with the session cookie. JSON in and out; a 401 sends the
 * browser to the sign-in page (the session expired or was revoked) unless
 * `noRedirect` is set.
 */
export async function api(path, { method = "GET", body, noRedirect = false } = {}) {
  const init = { method, credentials: "same-origin", headers: { accept: "application/json" } };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  if (resp.status === 401 && !noRedirect) {
    location.href = "/signin?next=" + encodeURIComponent(location.pathname + location.search);
    throw new ApiError(401, "unauthorized", "signed out");
  }
  const text = await resp.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { error: text };
  }
  if (!resp.ok) {
    throw new ApiError(resp.status, data?.kind ?? "error", data?.error ?? resp.statusText);
  }
  return data;
}

/** Who is signed in (`/api/me`), or sends the browser to sign in. */
export function me() {
  return api("/api/me");
}

export const ROLE_NAMES = {
  consultant: { zh: "销售顾问", en: "Consultant" },
  manager: { zh: "经理", en: "Manager" },
  head_office: { zh: "总部", en: "Head office" },
  admin: { zh: "管理员", en: "Admin" },
};

/** Whether a role sees the console (managers and above). */
export function isManager(role) {
  return role === "manager" || role === "head_office" || role === "admin";
}

/** Whether a role sees the whole network (head office pages). */
export function isHeadOffice(role) {
  return role === "head_office" || role === "admin";
}

// ---- numbers ------------------------------------------------------------------

/** Revenue given in fen, for people: 万元 in Chinese, thousands/millions in English. */
export function money(fen) {
  if (fen === null || fen === undefined) return "—";
  const yuan = fen / 100;
  if (lang() === "zh") {
    if (Math.abs(yuan) >= 1e8) return "¥" + (yuan / 1e8).toFixed(2) + "亿";
    if (Math.abs(yuan) >= 1e4) return "¥" + (yuan / 1e4).toFixed(1) + "万";
    return "¥" + yuan.toFixed(0);
  }
  if (Math.abs(yuan) >= 1e6) return "¥" + (yuan / 1e6).toFixed(2) + "M";
  if (Math.abs(yuan) >= 1e3) return "¥" + (yuan / 1e3).toFixed(1) + "k";
  return "¥" + yuan.toFixed(0);
}

/** Yuan with two decimals (tables, where exact figures matter). */
export function yuanExact(fen) {
  if (fen === null || fen === undefined) return "—";
  return "¥" + (fen / 100).toLocaleString("zh-CN", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}

/** A ratio (0.734) as a percentage ("73%"); `—` when there is none. */
export function pct(r, digits = 0) {
  if (r === null || r === undefined || !Number.isFinite(r)) return "—";
  return (r * 100).toFixed(digits) + "%";
}

export function num(n) {
  if (n === null || n === undefined) return "—";
  return Number(n).toLocaleString("zh-CN");
}

// ---- page chrome --------------------------------------------------------------

/**
 * The top bar: title, who is signed in, the language toggle and sign-out. `onLang`
 * re-renders the page in the other language.
 */
export function topBar(title, who, onLang, links = []) {
  const toggle = el(
    "button",
    {
      class: "lang-toggle",
      id: "lang-toggle",
      title: "中文 / English",
      onclick: () => {
        setLang(lang() === "zh" ? "en" : "zh");
        onLang();
      },
    },
    lang() === "zh" ? "English" : "中文",
  );
  const out = el(
    "button",
    {
      class: "sign-out",
      id: "sign-out",
      onclick: async () => {
        await fetch("/api/sign-out", { method: "POST", credentials: "same-origin" });
        location.href = "/signin";
      },
    },
    tr({ zh: "退出", en: "Sign out" }),
  );
  return el(
    "header",
    { class: "top-bar" },
    el("h1", {}, title),
    el("nav", {}, links.map(([href, text]) => el("a", { href }, text))),
    el(
      "div",
      { class: "who" },
      who ? el("span", { id: "who" }, `${who.sub} · ${tr(ROLE_NAMES[who.role] ?? { zh: who.role })} · ${who.site}`) : null,
      toggle,
      who ? out : null,
    ),
  );
}

/** The current month as `YYYY-MM` in China Standard Time (UTC+8). */
export function currentMonth(now = Date.now()) {
  const d = new Date(now + 8 * 3600 * 1000);
  return d.toISOString().slice(0, 7);
}

/** How far through the current CST month `now` is (0..1): the pace a target needs. */
export function monthElapsed(now = Date.now()) {
  const d = new Date(now + 8 * 3600 * 1000);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  const start = Date.UTC(y, m, 1);
  const end = Date.UTC(y, m + 1, 1);
  return (d.getTime() - start) / (end - start);
}

/** How far through the current CST week (Monday to Sunday) `now` is (0..1). */
export function weekElapsed(now = Date.now()) {
  const d = new Date(now + 8 * 3600 * 1000);
  const day = (d.getUTCDay() + 6) % 7; // Monday 0
  const secs = day * 86400 + d.getUTCHours() * 3600 + d.getUTCMinutes() * 60 + d.getUTCSeconds();
  return secs / (7 * 86400);
}
