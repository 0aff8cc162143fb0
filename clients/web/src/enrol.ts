// Enrolment: a phone becomes a device of one consultant. A manager gives a one-time
// sign-in code (or a link / QR code carrying it); the phone exchanges it at the relay
// for a device token (`POST /api/sign-in/device`, docs/auth.md). A token pasted by hand works
// too. The token, who it is for and the two documents' ids are kept in localStorage;
// the documents themselves in IndexedDB.

/** What the app keeps about its enrolment. */
export interface Enrolment {
  token: string
  sub: string
  role: string
  site: string
  siteName: string
  device: string | null
  siteDocumentId: string
  networkDocumentId: string
}

const KEY = "dealersync.enrolment"

/** The stored enrolment, if this phone is enrolled. */
export function storedEnrolment(): Enrolment | null {
  try {
    const e = JSON.parse(localStorage.getItem(KEY) ?? "null")
    return e && typeof e.token === "string" ? e : null
  } catch {
    return null
  }
}

/** Forgets the enrolment (the documents stay in IndexedDB until the site is cleared). */
export function forgetEnrolment() {
  localStorage.removeItem(KEY)
}

/** A refusal from the relay, with its message. */
export class EnrolError extends Error {}

async function api<T>(path: string, init: RequestInit & { token?: string } = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" }
  if (init.token) headers.Authorization = `Bearer ${init.token}`
  if (init.body) headers["Content-Type"] = "application/json"
  let res: Response
  try {
    res = await fetch(new URL(path, location.href), { ...init, headers })
  } catch {
    throw new EnrolError("offline")
  }
  const text = await res.text()
  let body: any = null
  try {
    body = JSON.parse(text)
  } catch {
    body = { error: text }
  }
  if (!res.ok) throw new EnrolError(body?.error ?? `HTTP ${res.status}`)
  return body as T
}

/** A stable name for this phone, sent with the code so the token is bound to it. */
export function deviceName(): string {
  let d = localStorage.getItem("dealersync.device")
  if (!d) {
    const ua = navigator.userAgent
    const kind = /iPhone|iPad/.test(ua) ? "iphone" : /Android/.test(ua) ? "android" : "browser"
    const rand = Array.from(crypto.getRandomValues(new Uint8Array(4)), b => b.toString(16).padStart(2, "0")).join("")
    d = `${kind}-${rand}`
    localStorage.setItem("dealersync.device", d)
  }
  return d
}

/** Exchanges a one-time code for a token bound to this phone (`POST /api/sign-in/device`). */
export async function tokenForCode(code: string): Promise<string> {
  const body = await api<{ token: string }>("/api/sign-in/device", {
    method: "POST",
    body: JSON.stringify({ code: code.trim(), device: deviceName() }),
  })
  if (typeof body.token !== "string") throw new EnrolError("no token in the answer")
  return body.token
}

/** Looks the token up at the relay and stores the enrolment. */
export async function enrolWithToken(token: string): Promise<Enrolment> {
  token = token.trim()
  const me = await api<{ sub: string; role: string; site: string; device: string | null }>("/api/me", { token })
  const sites = await api<{ id: string; name: string; documentId: string }[]>("/api/sites", { token })
  const own = sites.find(s => s.id === me.site)
  if (!own) throw new EnrolError(`site ${me.site} is not readable with this token`)
  const network = await api<{ documentId: string }>("/api/network", { token })
  const e: Enrolment = {
    token, sub: me.sub, role: me.role, site: me.site, siteName: own.name,
    device: me.device ?? null, siteDocumentId: own.documentId, networkDocumentId: network.documentId,
  }
  localStorage.setItem(KEY, JSON.stringify(e))
  return e
}

/** A code or token carried in the page's link (`#code=…`, `?code=…` or `#token=…`), once. */
export function linkCredential(): { code?: string; token?: string } {
  const params = new URLSearchParams(location.hash.slice(1))
  const query = new URLSearchParams(location.search)
  const code = params.get("code") ?? query.get("code") ?? undefined
  const token = params.get("token") ?? undefined
  if (code || token) history.replaceState(null, "", location.pathname)
  return { code, token }
}
