// The business conflicts a merge can leave in a site document, read from every
// concurrent value as core/src/conflicts does, with the same ids (FNV-1a over the kind,
// records and sorted values) so the app and the relay's reports name a conflict alike.
// The app checks the two kinds a consultant can cause alone on one site: a vehicle
// booked for two customers, and one person entered twice. (Stock at two sites, forecast
// edits and part counters are listed by the CLI and the reports.)
// core/vectors/conflicts.json holds the cases both run.

import * as A from "@automerge/automerge/slim"
import { normalisePhone } from "./phone"
import { Actor, DomainError, Mutation, mergeCustomer, str } from "./ops"
import type { SiteDoc } from "./schema"

/** One of the values competing in a conflict, and who wrote it when. */
export interface CompetingValue {
  site: string
  record: string
  field: string
  value: string
  actor: string | null
  at: number | null
  hidden: boolean
}

/** A conflict, shaped as core's `Conflict` serialises. */
export interface Conflict {
  id: string
  kind: "double_booking" | "duplicate_customer"
  records: string[]
  values: CompetingValue[]
  summary: string
}

type Backend = ReturnType<typeof A.getBackend>
type Full = [string, unknown, string?]

const utf8 = new TextEncoder()

/** FNV-1a 64 over each string and a 0 byte, as core's `Fnv`. */
function fnv(parts: string[]): string {
  let h = 0xcbf29ce484222325n
  const prime = 0x100000001b3n
  for (const s of parts) {
    for (const b of [...utf8.encode(s), 0]) {
      h ^= BigInt(b)
      h = (h * prime) & 0xffffffffffffffffn
    }
  }
  return h.toString(16).padStart(16, "0")
}

/** Rust's `str::cmp`: byte order of UTF-8 (JS compares UTF-16 code units). */
function byteCmp(a: string, b: string): number {
  const x = utf8.encode(a)
  const y = utf8.encode(b)
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i]
  return x.length - y.length
}

function sortedUnique(xs: string[]): string[] {
  return [...new Set(xs)].sort(byteCmp)
}

function conflict(kind: Conflict["kind"], records: string[], values: CompetingValue[], summary: string): Conflict {
  const recs = sortedUnique(records)
  const keyed = sortedUnique(values.map(v => `${v.site}\u001f${v.record}\u001f${v.field}\u001f${v.value}`))
  return { id: `${kind}-${fnv([kind, ...recs, ...keyed])}`, kind, records: recs, values, summary }
}

const actorOf = (opId: string | undefined) => (opId && opId.includes("@") ? opId.slice(opId.indexOf("@") + 1) : null)

function textOf(b: Backend, v: Full): string | null {
  switch (v[0]) {
    case "str":
      return v[1] as string
    case "int":
    case "uint":
    case "f64":
    case "counter":
      return String(v[1])
    case "text":
      return b.text(v[1] as string)
    default:
      return null
  }
}

function intOf(v: Full): number | null {
  if (v[0] === "int" || v[0] === "uint") return Number(v[1])
  if (v[0] === "f64" && Number.isInteger(v[1])) return v[1] as number
  return null
}

const all = (b: Backend, obj: string, key: string) => b.getAll(obj, key) as unknown as Full[]
const opOf = (v: Full) => (v[0] === "map" || v[0] === "list" || v[0] === "text" ? (v[1] as string) : v[2]!)
const maps = (b: Backend, obj: string, key: string) => all(b, obj, key).filter(v => v[0] === "map").map(v => v[1] as string)
function mapOf(b: Backend, obj: string, key: string): string | null {
  const v = b.getWithType(obj, key) as Full | null
  return v && v[0] === "map" ? (v[1] as string) : null
}

/**
 * The time written in `obj.timeKey` alongside the op: the value written by the same
 * actor (each actor has one visible value per key, written in the same change by the
 * domain operations).
 */
function timeOf(b: Backend, obj: string, timeKey: string, op: string): number | null {
  const actor = actorOf(op)
  const times = all(b, obj, timeKey)
  for (let i = times.length - 1; i >= 0; i--) if (actorOf(opOf(times[i])) === actor) return intOf(times[i])
  return null
}

/** Every concurrent reservedFor / soldTo value of a VIN, across concurrent records. */
function bookingCandidates(b: Backend, site: string, vehicles: string, vin: string): CompetingValue[] {
  const winner = mapOf(b, vehicles, vin)
  const out: CompetingValue[] = []
  for (const obj of maps(b, vehicles, vin)) {
    const objHidden = obj !== winner
    for (const field of ["reservedFor", "soldTo"]) {
      const vals = all(b, obj, field)
      vals.forEach((v, i) => {
        const value = textOf(b, v)
        if (value == null) return
        const op = opOf(v)
        out.push({
          site, record: `vehicle ${vin}`, field, value, actor: actorOf(op),
          at: timeOf(b, obj, "updatedAt", op), hidden: objHidden || i !== vals.length - 1,
        })
      })
    }
  }
  return out
}

/** Lists the double bookings and duplicate customers of one site document. */
export function detectConflicts(doc: A.Doc<SiteDoc>): Conflict[] {
  const b = A.getBackend(doc as never)
  const site = str(doc.site?.id) ?? ""
  const out: Conflict[] = []
  const vehicles = mapOf(b, "_root", "vehicles")
  if (vehicles) {
    for (const vin of b.keys(vehicles)) {
      const values = bookingCandidates(b, site, vehicles, vin)
      const customers = sortedUnique(values.map(v => v.value))
      if (customers.length < 2) continue
      out.push(conflict(
        "double_booking",
        [`vehicle ${vin}`, ...customers.map(c => `customer ${c}`)],
        values,
        `vehicle ${vin} at ${site} was reserved or sold to ${customers.length} customers concurrently: ${customers.join(", ")}`,
      ))
    }
  }
  const customers = mapOf(b, "_root", "customers")
  if (customers) {
    const byPhone = new Map<string, { name: string; v: CompetingValue }[]>()
    for (const id of b.keys(customers)) {
      const obj = mapOf(b, customers, id)
      if (!obj) continue
      const get = (k: string) => b.getWithType(obj, k) as Full | null
      const merged = get("mergedInto")
      if (merged && textOf(b, merged) != null) continue
      const phoneV = get("phone")
      const phone = phoneV ? textOf(b, phoneV) : null
      if (phone == null) continue
      const n = normalisePhone(phone)
      const key = n.ok ? n.phone : phone.replace(/[^0-9]/g, "")
      if (key === "") continue
      const nameV = get("name")
      const createdV = get("createdAt")
      const entry = {
        name: (nameV && textOf(b, nameV)) ?? "",
        v: {
          site, record: `customer ${id}`, field: "phone", value: phone, actor: actorOf(obj),
          at: createdV ? intOf(createdV) : null, hidden: false,
        },
      }
      byPhone.set(key, [...(byPhone.get(key) ?? []), entry])
    }
    for (const phone of [...byPhone.keys()].sort(byteCmp)) {
      const group = byPhone.get(phone)!
      if (group.length < 2) continue
      const who = group.map(g => `${g.v.record} (${g.name})`).join(", ")
      out.push(conflict(
        "duplicate_customer",
        group.map(g => g.v.record),
        group.map(g => g.v),
        `${group.length} customers at ${site} share phone ${phone}: ${who}`,
      ))
    }
  }
  const rank = { double_booking: 0, duplicate_customer: 2 }
  return out.sort((x, y) => rank[x.kind] - rank[y.kind] || cmpList(x.records, y.records) || byteCmp(x.id, y.id))
}

function cmpList(a: string[], b: string[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const c = byteCmp(a[i], b[i])
    if (c) return c
  }
  return a.length - b.length
}

/**
 * Resolves a double booking: the vehicle goes to `customer`, one of the competing
 * customers; sold if some device sold it to them, else reserved; the consultant who
 * booked it for them. Plain puts supersede every concurrent value.
 */
export function resolveDoubleBooking(doc: A.Doc<SiteDoc>, vin: string, customer: string, who: Actor): Mutation {
  const b = A.getBackend(doc as never)
  const site = str(doc.site?.id) ?? ""
  const key = vin.trim().toUpperCase()
  const vehicles = mapOf(b, "_root", "vehicles")
  if (!vehicles || !doc.vehicles[key]) throw new DomainError("UnknownVehicle", `unknown vehicle ${JSON.stringify(key)} at site ${site}`)
  const candidates = bookingCandidates(b, site, vehicles, key)
  if (!candidates.some(c => c.value === customer)) {
    const names = sortedUnique(candidates.map(c => c.value)).join(", ")
    throw new DomainError("Invalid", `invalid resolution of vehicle ${key}: customer ${customer} is not one of the competing customers (${names})`)
  }
  const sold = candidates.some(c => c.field === "soldTo" && c.value === customer)
  let consultant: string | null = null
  const objs = maps(b, vehicles, key)
  for (const obj of objs) {
    for (const v of [...all(b, obj, "reservedFor"), ...all(b, obj, "soldTo")]) {
      if (textOf(b, v) !== customer) continue
      const actor = actorOf(opOf(v))
      for (const c of all(b, obj, "consultant")) {
        const name = textOf(b, c)
        if (name != null && actorOf(opOf(c)) === actor) consultant = name
      }
    }
  }
  const chosen = consultant ?? who.by
  const status = sold ? "sold" : "reserved"
  if (objs.length > 1) throw new DomainError("Invalid", `vehicle ${key} was received on two devices at once; resolve it with the CLI`)
  const now = who.now
  return {
    message: `${who.by}: resolve double booking of ${key}: ${customer}`,
    time: Math.floor(now / 1000),
    apply: d => {
      const v = d.vehicles[key]
      v.status = new A.ImmutableString(status) as never
      v.reservedFor = new A.ImmutableString(customer) as never
      v.soldTo = (sold ? new A.ImmutableString(customer) : null) as never
      v.consultant = new A.ImmutableString(chosen) as never
      v.updatedAt = now
    },
  }
}

/** Resolves a duplicate customer by merging `duplicate` into `keep`. */
export function resolveDuplicateCustomer(doc: SiteDoc, duplicate: string, keep: string, who: Actor): Mutation {
  return mergeCustomer(doc, duplicate, keep, who)
}
