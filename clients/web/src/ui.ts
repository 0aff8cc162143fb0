// A few DOM helpers: no framework, the screens are small.

type Child = Node | string | number | null | undefined | false
type Attrs = Record<string, string | number | boolean | null | undefined | ((e: Event) => void)>

/** Creates an element: attributes (`on…` are listeners) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: (Child | Child[])[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue
    if (typeof v === "function") el.addEventListener(k.slice(2).toLowerCase(), v)
    else if (k === "value" && "value" in el) (el as HTMLInputElement).value = String(v)
    else el.setAttribute(k, v === true ? "" : String(v))
  }
  for (const c of children.flat()) {
    if (c == null || c === false) continue
    el.append(typeof c === "number" ? String(c) : c)
  }
  return el
}

/** Fen as yuan, e.g. ¥148,000. */
export function money(fen: number): string {
  const yuan = fen / 100
  return `¥${yuan.toLocaleString("zh-CN", { maximumFractionDigits: 2 })}`
}

/** A stored (E.164) number as people read it: 138 1234 5678, 010 6234 5678. */
export function phoneText(e164: string): string {
  const m = /^\+86(1\d{2})(\d{4})(\d{4})$/.exec(e164)
  if (m) return `${m[1]} ${m[2]} ${m[3]}`
  const l = /^\+86(\d+)$/.exec(e164)
  if (l) {
    const n = l[1]
    const area = n.startsWith("10") || n.startsWith("2") ? 2 : 3
    return `0${n.slice(0, area)} ${n.slice(area)}`
  }
  return e164
}

/** Yuan typed by a person as integer fen, or null. */
export function yuanToFen(input: string): number | null {
  const s = input.replace(/[,，\s¥]/g, "")
  if (s === "") return null
  const n = Number(s)
  return Number.isFinite(n) ? Math.round(n * 100) : NaN
}

/** A time in the phone's local time (the consultant's, CST in China). */
export function when(t: number): string {
  const d = new Date(t)
  const p = (n: number) => String(n).padStart(2, "0")
  return `${d.getMonth() + 1}/${d.getDate()} ${p(d.getHours())}:${p(d.getMinutes())}`
}

/** The value for a datetime-local input at `t`. */
export function localInput(t: number): string {
  const d = new Date(t - new Date(t).getTimezoneOffset() * 60_000)
  return d.toISOString().slice(0, 16)
}

/** Shows a short message at the bottom of the screen, in place of the one before it
 *  (two toasts in one spot would hide each other). */
export function toast(message: string, kind: "ok" | "error" = "ok") {
  document.querySelectorAll(".toast").forEach((old) => old.remove())
  const el = h("div", { class: `toast ${kind}`, role: "status" }, message)
  document.body.append(el)
  setTimeout(() => el.remove(), kind === "error" ? 6000 : 2500)
}

/** Opens a bottom sheet; returns a function that closes it. */
export function sheet(title: string, body: Node, onClose?: () => void): () => void {
  const close = () => {
    wrap.remove()
    onClose?.()
  }
  const wrap: HTMLDivElement = h("div", { class: "sheet-wrap", onclick: (e: Event) => e.target === wrap && close() },
    h("div", { class: "sheet", role: "dialog", "aria-label": title },
      h("div", { class: "sheet-head" }, h("h2", {}, title), h("button", { class: "link", onclick: close, "aria-label": "close" }, "✕")),
      body))
  document.body.append(wrap)
  return close
}

/** A fresh id for a new record (UUID). */
export function newId(): string {
  if (crypto.randomUUID) return crypto.randomUUID()
  const b = crypto.getRandomValues(new Uint8Array(16))
  return Array.from(b, x => x.toString(16).padStart(2, "0")).join("")
}

/**
 * Carries what a person typed (or chose) in the forms of `from` over to the same
 * fields in `to`, a re-rendering of the same view: a sync arriving while a consultant
 * fills in a card must not wipe the VIN or the price already typed. Fields are matched
 * by their form's `data-form` (or position) and their name.
 */
export function keepTyped(from: Element, to: Element) {
  const key = (f: HTMLFormElement, i: number, name: string) => `${f.dataset.form ?? f.dataset.complaint ?? i}/${name}`
  const typed = new Map<string, string>()
  from.querySelectorAll("form").forEach((f, i) => {
    for (const el of Array.from(f.elements) as HTMLInputElement[]) {
      if (!el.name) continue
      const changed = el instanceof HTMLSelectElement
        ? Array.from(el.options).some(o => o.selected !== o.defaultSelected)
        : el.value !== el.defaultValue
      if (changed) typed.set(key(f, i, el.name), el.value)
    }
  })
  if (typed.size === 0) return
  to.querySelectorAll("form").forEach((f, i) => {
    for (const el of Array.from(f.elements) as HTMLInputElement[]) {
      const v = el.name ? typed.get(key(f, i, el.name)) : undefined
      if (v !== undefined) el.value = v
    }
  })
}
