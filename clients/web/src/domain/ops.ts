// Validated operations on a site document, as core/src/domain writes them: every
// operation checks its whole input first and throws a DomainError (nothing written),
// else returns the mutation to run in one automerge change. Strings are written as
// ImmutableString (scalar strings), money and times as integers, events appended with
// push, one assignment per changed field (docs/schema.md, "Rules for JavaScript
// writers"). core/vectors/site-day.json and conflicts.json hold the cases both run.

import * as A from "@automerge/automerge/slim"
import { normalisePhone, phoneErrorMessage } from "./phone"
import {
  CLOCK_SKEW_MS, CUSTOMER_SOURCES, CustomerSource, CustomerStatus, EVENT_KINDS, EventKind,
  MAX_PARTY_SIZE, NetworkDoc, SiteDoc, VEHICLE_ACTIONS, VehicleAction, VehicleStatus,
  customerTransitionAllowed, parseMonth, vehicleTransitionAllowed,
} from "./schema"
import { parseVin, vinErrorMessage } from "./vin"

/** Why an operation was refused; `kind` is core's DomainError variant. */
export class DomainError extends Error {
  constructor(
    readonly kind: string,
    message: string,
  ) {
    super(message)
  }
}

/** Who acts, with which role, and when (UTC ms). */
export interface Actor {
  by: string
  role: string
  now: number
}

/** A validated write: run `apply` inside one change with `message` and `time` (seconds). */
export interface Mutation {
  message: string
  time: number
  apply: (d: SiteDoc) => void
}

export const S = (s: string) => new A.ImmutableString(s)
export const optS = (s: string | null | undefined) => (s == null ? null : S(s))

/** A scalar string or text value as a JS string; null for anything else. */
export function str(v: unknown): string | null {
  if (v instanceof A.ImmutableString) return v.val
  if (typeof v === "string") return v
  return null
}

export function mutation(message: string, now: number, apply: (d: SiteDoc) => void): Mutation {
  return { message, time: Math.floor(now / 1000), apply }
}

/** Applies a mutation to a plain automerge document (tests, node scripts). */
export function applyTo<T>(doc: A.Doc<T>, m: Mutation): A.Doc<T> {
  return A.change(doc, { message: m.message, time: m.time }, d => m.apply(d as unknown as SiteDoc))
}

export function nonEmpty(field: string, v: string | null | undefined): string {
  const t = (v ?? "").trim()
  if (t === "") throw new DomainError("Invalid", `invalid ${field}: must not be empty`)
  return t
}

export function keyLike(field: string, v: string | null | undefined): string {
  const t = nonEmpty(field, v)
  if (/[\s/]/u.test(t)) throw new DomainError("Invalid", `invalid ${field}: ids cannot contain spaces or '/'`)
  return t
}

export function eventTime(field: string, at: number, now: number) {
  if (!Number.isInteger(at)) throw new DomainError("Invalid", `invalid ${field}: not a time`)
  if (at > now + CLOCK_SKEW_MS) throw new DomainError("Invalid", `invalid ${field}: it is in the future`)
}

function notNegative(field: string, v: number) {
  if (v < 0) throw new DomainError("NegativeQuantity", `${field} cannot be negative, got ${v}`)
}

function checkModel(net: NetworkDoc, model: string | null | undefined, field: string) {
  if (model != null && !net.models[model])
    throw new DomainError("UnknownModel", `unknown model ${JSON.stringify(model)} in ${field}: not in the network catalogue`)
}

function customerOf(doc: SiteDoc, id: string) {
  const c = doc.customers?.[id]
  if (!c) throw new DomainError("UnknownCustomer", `unknown customer ${JSON.stringify(id)} at this site`)
  return c
}

/** A customer that was not merged into another (new history belongs on the survivor). */
export function liveCustomer(doc: SiteDoc, id: string) {
  const c = customerOf(doc, id)
  const into = str(c.mergedInto)
  if (into) throw new DomainError("MergedCustomer", `customer ${JSON.stringify(id)} was merged into ${JSON.stringify(into)}; use that customer`)
  return c
}

export function vehicleOf(doc: SiteDoc, vin: string) {
  const key = vin.trim().replace(/[a-z]/g, c => c.toUpperCase())
  const v = doc.vehicles?.[key]
  if (!v) throw new DomainError("UnknownVehicle", `unknown vehicle ${JSON.stringify(vin)} at site ${str(doc.site?.id)}`)
  return { v, key }
}

/** Normalises a phone number for customer `id`, or refuses as core does. */
function phoneFor(id: string, input: string): string {
  const p = normalisePhone(input)
  if (!p.ok) throw new DomainError("InvalidPhone", `invalid phone number ${JSON.stringify(input)} for customer ${id}: ${phoneErrorMessage(p.error)}`)
  return p.phone
}

/** A new customer as entered. */
export interface NewCustomer {
  id: string
  name: string
  phone: string
  source: CustomerSource
  modelOfInterest?: string | null
  consultant?: string | null
}

/** Adds a customer as a new lead, phone stored normalised. */
export function addCustomer(doc: SiteDoc, net: NetworkDoc, c: NewCustomer, who: Actor): Mutation {
  const id = keyLike("customer id", c.id)
  const name = nonEmpty(`customer ${id} name`, c.name)
  const phone = phoneFor(id, c.phone)
  if (!CUSTOMER_SOURCES.includes(c.source)) throw new DomainError("Invalid", `invalid source ${c.source}`)
  checkModel(net, c.modelOfInterest, `customer ${id} modelOfInterest`)
  const consultant = c.consultant == null ? null : keyLike(`customer ${id} consultant`, c.consultant)
  if (doc.customers[id] !== undefined) throw new DomainError("CustomerExists", `customer ${JSON.stringify(id)} already exists`)
  return mutation(`${who.by}: add customer ${id}`, who.now, d => {
    d.customers[id] = {
      id: S(id), name: S(name), phone: S(phone), source: S(c.source),
      modelOfInterest: optS(c.modelOfInterest), consultant: optS(consultant),
      status: S("lead"), createdAt: who.now, events: [], mergedInto: null,
    } as never
  })
}

/** An event to record on a customer. */
export interface NewEvent {
  kind: EventKind
  at: number
  note?: string | null
  amount?: number | null
  vin?: string | null
  score?: number | null
  direction?: "inbound" | "outbound" | null
}

export function eventRecord(e: {
  kind: string; at: number; by: string; note?: string | null; amount?: number | null
  vin?: string | null; score?: number | null; direction?: string | null
}) {
  const rec: Record<string, unknown> = {
    kind: S(e.kind), at: e.at, by: S(e.by), note: optS(e.note ?? null),
    amount: e.amount ?? null, vin: optS(e.vin ?? null), score: e.score ?? null,
  }
  // Only calls carry a direction; other events leave the key out, as core does.
  if (e.direction) rec.direction = S(e.direction)
  return rec
}

/** Appends an event to a customer's history (a delivery is the vehicle's: see deliver). */
export function recordEvent(doc: SiteDoc, customer: string, e: NewEvent, who: Actor): Mutation {
  const by = keyLike("event by", who.by)
  const c = liveCustomer(doc, customer)
  if (!EVENT_KINDS.includes(e.kind)) throw new DomainError("Invalid", `invalid event kind ${e.kind}`)
  if (e.amount != null) notNegative(`${e.kind} event amount of customer ${customer}`, e.amount)
  eventTime(`${e.kind} event of customer ${customer}`, e.at, who.now)
  if (e.direction && e.kind !== "call")
    throw new DomainError("Invalid", `invalid ${e.kind} event direction of customer ${customer}: only calls are inbound or outbound`)
  if (e.kind === "survey") {
    if (e.score == null || !(e.score >= 1 && e.score <= 5))
      throw new DomainError("Invalid", `invalid survey score of customer ${customer}: a survey needs a score from 1 to 5`)
  } else if (e.score != null) {
    throw new DomainError("Invalid", `invalid ${e.kind} event score of customer ${customer}: only surveys have a score`)
  }
  let vin: string | null = null
  if (e.vin != null) {
    const p = parseVin(e.vin)
    if (!p.ok) throw new DomainError("InvalidVin", `invalid VIN ${JSON.stringify(e.vin)}: ${vinErrorMessage(p.error)}`)
    vin = p.vin
  }
  if (e.kind === "discount_approved" || e.kind === "discount_refused")
    throw new DomainError("Invalid", `invalid ${e.kind} event of customer ${customer}: a discount is approved or refused by a manager`)
  if (e.kind === "delivery") {
    if (!vin) throw new DomainError("Invalid", `invalid delivery event of customer ${customer}: a delivery names the vehicle handed over (its VIN)`)
    const { v } = vehicleOf(doc, vin)
    if (str(v.status) !== "sold" || str(v.soldTo) !== customer)
      throw new DomainError("Invalid", `invalid delivery of vehicle ${vin} to customer ${customer}: it is not sold to this customer`)
    return moveVehicle(doc, vin, "deliver", who, { at: e.at, note: e.note, amount: e.amount })
  }
  void c
  const note = e.note?.trim() || null
  return mutation(`${by}: ${e.kind} event for customer ${customer}`, who.now, d => {
    d.customers[customer].events.push(eventRecord({ ...e, by, note, vin }) as never)
  })
}

/** Records a walk-in batch who left no phone: one visit in the KPIs. */
export function recordWalkIn(
  doc: SiteDoc,
  net: NetworkDoc,
  w: { id: string; at: number; partySize: number; modelOfInterest?: string | null; note?: string | null },
  who: Actor,
): Mutation {
  const by = keyLike("walk-in by", who.by)
  const id = keyLike("walk-in id", w.id)
  if (!(Number.isInteger(w.partySize) && w.partySize >= 1 && w.partySize <= MAX_PARTY_SIZE))
    throw new DomainError("Invalid", `invalid walk-in ${id} party size: must be 1 to ${MAX_PARTY_SIZE}, got ${w.partySize}`)
  checkModel(net, w.modelOfInterest, `walk-in ${id} modelOfInterest`)
  eventTime(`walk-in ${id} at`, w.at, who.now)
  if (doc.walkIns?.[id] !== undefined) throw new DomainError("Invalid", `invalid walk-in ${id}: already recorded`)
  const note = w.note?.trim() || null
  return mutation(`${by}: walk-in ${id} (${w.partySize} people)`, who.now, d => {
    // Created only when absent (documents older than walk-ins); a map created
    // concurrently elsewhere is folded in by core's next write.
    if (!d.walkIns) d.walkIns = {}
    d.walkIns[id] = {
      id: S(id), at: w.at, by: S(by), partySize: w.partySize,
      modelOfInterest: optS(w.modelOfInterest), note: optS(note),
    } as never
  })
}

/** Moves a customer along the funnel, if it allows the move. */
export function setCustomerStatus(doc: SiteDoc, customer: string, to: CustomerStatus, who: Actor): Mutation {
  const c = liveCustomer(doc, customer)
  const from = str(c.status) as CustomerStatus
  if (!customerTransitionAllowed(from, to))
    throw new DomainError("IllegalCustomerTransition", `customer ${customer} cannot move from ${from} to ${to}`)
  return mutation(`${who.by}: customer ${customer} ${from} -> ${to}`, who.now, d => {
    d.customers[customer].status = S(to) as never
  })
}

/** What a sale or delivery writes on the customer: the event, and the funnel step. */
function customerSide(doc: SiteDoc, customer: string, kind: "order" | "delivery") {
  const c = liveCustomer(doc, customer)
  const from = str(c.status) as CustomerStatus
  const to: CustomerStatus = kind === "delivery" ? "delivered" : "ordered"
  return from !== to && customerTransitionAllowed(from, to) ? to : null
}

function checkStep(doc: SiteDoc, vin: string, action: VehicleAction) {
  const { v, key } = vehicleOf(doc, vin)
  const from = str(v.status) as VehicleStatus
  const { from: starts, to } = VEHICLE_ACTIONS[action]
  if (!vehicleTransitionAllowed(from, to))
    throw new DomainError("IllegalVehicleTransition", `vehicle ${key} cannot move from ${from} to ${to}`)
  if (!starts.includes(from))
    throw new DomainError("WrongVehicleAction", `vehicle ${key} is ${from}: ${action} applies only to a vehicle that is ${starts.join(" or ")}`)
  return { v, key, from, to, reservedFor: str(v.reservedFor), soldTo: str(v.soldTo) }
}

/** One lifecycle step (reserve, release, deliver, ship, arrive; sell: see sellVehicle). */
export function moveVehicle(
  doc: SiteDoc,
  vin: string,
  action: Exclude<VehicleAction, "sell">,
  who: Actor,
  opts: { customer?: string; at?: number; note?: string | null; amount?: number | null; eta?: number | null } = {},
): Mutation {
  const by = keyLike("consultant", who.by)
  const step = checkStep(doc, vin, action)
  if (action === "reserve") liveCustomer(doc, opts.customer ?? "")
  let delivery: { customer: string; status: CustomerStatus | null } | null = null
  if (action === "deliver") {
    const customer = step.soldTo ?? step.reservedFor
    if (!customer) throw new DomainError("Invalid", `invalid vehicle ${step.key} soldTo: a sold vehicle must name its customer before it is delivered`)
    delivery = { customer, status: customerSide(doc, customer, "delivery") }
  }
  const { key, from, to } = step
  const now = who.now
  const message = delivery
    ? `${by}: vehicle ${key} ${from} -> ${to}, delivery for customer ${delivery.customer}`
    : `${by}: vehicle ${key} ${from} -> ${to}`
  return mutation(message, now, d => {
    const v = d.vehicles[key]
    v.status = S(to) as never
    v.updatedAt = now
    if (action === "ship") v.eta = opts.eta ?? null
    if (action === "arrive") {
      v.arrivedAt = now
      v.eta = null
    }
    if (action === "reserve") {
      v.reservedFor = S(opts.customer!) as never
      v.consultant = S(by) as never
    }
    if (action === "release") {
      v.reservedFor = null
      v.consultant = null
    }
    if (delivery) {
      const c = d.customers[delivery.customer]
      c.events.push(eventRecord({
        kind: "delivery", at: opts.at ?? now, by, note: opts.note?.trim() || null,
        amount: opts.amount ?? null, vin: key,
      }) as never)
      if (delivery.status) c.status = S(delivery.status) as never
    }
  })
}

/** The limit of a role (fen) in the network's discount policy. */
export function discountLimit(net: NetworkDoc, role: string): number {
  return Math.max(0, net.discountLimits?.[role] ?? 0)
}

/** The approval covering `discount` on `vin` for a customer, as core's discount_state. */
function approval(doc: SiteDoc, customer: string, vin: string, discount: number): { by: string; at: number } | null {
  const events = doc.customers[customer]?.events ?? []
  let last: { kind: string; amount: number | null; by: string; at: number } | null = null
  for (const e of events) {
    const kind = str(e.kind)
    if (str(e.vin) !== vin) continue
    if (kind === "discount_request" || kind === "discount_approved" || kind === "discount_refused")
      last = { kind, amount: e.amount, by: str(e.by) ?? "", at: e.at }
  }
  return last?.kind === "discount_approved" && (last.amount ?? 0) >= discount ? { by: last.by, at: last.at } : null
}

/**
 * Sells a vehicle: a reserved one to its customer, or one in stock to `customer`
 * (reserved and sold in the same change), recording the customer's `order` event with
 * the price (default: list price) in that change.
 */
export function sellVehicle(
  doc: SiteDoc,
  net: NetworkDoc,
  vin: string,
  sale: { customer?: string | null; price?: number | null },
  who: Actor,
): Mutation {
  const by = keyLike("consultant", who.by)
  const { v, key } = vehicleOf(doc, vin)
  const from = str(v.status) as VehicleStatus
  if (sale.price != null) notNegative(`sale price of vehicle ${key}`, sale.price)
  let buyer: string
  if (from === "in_stock") {
    if (!sale.customer) throw new DomainError("Invalid", `invalid sale of vehicle ${key}: it is in stock, not reserved: name the customer who buys it`)
    liveCustomer(doc, sale.customer)
    buyer = sale.customer
  } else {
    const step = checkStep(doc, key, "sell")
    if (!step.reservedFor) throw new DomainError("Invalid", `invalid vehicle ${key} reservedFor: a reserved vehicle must name its customer before it is sold`)
    if (sale.customer && sale.customer !== step.reservedFor)
      throw new DomainError("Invalid", `invalid sale of vehicle ${key}: it is reserved for customer ${step.reservedFor}; release it first to sell it to ${sale.customer}`)
    buyer = step.reservedFor
  }
  const listPrice = v.listPrice
  const discount = sale.price == null ? 0 : Math.max(0, listPrice - sale.price)
  const limit = discountLimit(net, who.role)
  let approved: { by: string; at: number } | null = null
  if (discount > limit) {
    approved = approval(doc, buyer, key, discount)
    if (!approved)
      throw new DomainError("DiscountNotApproved", `vehicle ${key}: a discount of ${discount} fen is above the ${who.role} limit of ${limit} fen; request a discount and have a manager approve it`)
  }
  const status = customerSide(doc, buyer, "order")
  const price = sale.price ?? listPrice
  const now = who.now
  return mutation(`${by}: vehicle ${key} ${from} -> sold, order for customer ${buyer}`, now, d => {
    const w = d.vehicles[key]
    w.status = S("sold") as never
    w.updatedAt = now
    if (from === "in_stock") w.reservedFor = S(buyer) as never
    w.soldTo = S(buyer) as never
    w.consultant = S(by) as never
    if (approved) {
      w.discountApprovedBy = S(approved.by) as never
      w.discountApprovedAt = approved.at
    }
    const c = d.customers[buyer]
    c.events.push(eventRecord({ kind: "order", at: now, by, amount: price, vin: key }) as never)
    if (status) c.status = S(status) as never
  })
}

/** Sets next month's forecast for a model, over every concurrent value of the cell. */
export function setForecast(doc: SiteDoc, net: NetworkDoc, month: string, model: string, quantity: number, who: Actor): Mutation {
  const m = parseMonth(month)
  if (!m) throw new DomainError("MalformedMonth", `malformed month ${JSON.stringify(month)}: expected YYYY-MM, e.g. 2026-03`)
  checkModel(net, model, `forecast ${m}`)
  notNegative(`forecast ${m}/${model} quantity`, quantity)
  if (!Number.isInteger(quantity)) throw new DomainError("Invalid", `invalid forecast ${m}/${model} quantity: a whole number`)
  const by = keyLike("forecast by", who.by)
  const now = who.now
  const backend = A.getBackend(doc as never)
  const forecastsId = A.getObjectId(doc.forecasts as never) as string
  const months = backend.getAll(forecastsId, m).filter(v => v[0] === "map")
  const soleMonth = months.length === 1 && backend.getAll(forecastsId, m).length === 1
  return mutation(`${by}: forecast ${m}/${model} = ${quantity}`, now, d => {
    if (months.length > 0 && !soleMonth) {
      // Created concurrently on two devices: one fresh map with every cell, later maps
      // winning ties, as core's writable_map.
      const cells: Record<string, unknown> = {}
      for (const [, id] of months) {
        for (const k of backend.keys(id as string)) {
          const full = backend.getWithType(id as string, k)
          if (full && full[0] === "map") cells[k] = backend.materialize(full[1] as string)
        }
      }
      d.forecasts[m] = {}
      for (const [k, cell] of Object.entries(cells)) d.forecasts[m][k] = restring(cell) as never
    } else if (months.length === 0) {
      d.forecasts[m] = {}
    }
    const monthObj = d.forecasts[m]
    const cellId = A.getObjectId(monthObj as never) as string
    const cellValues = A.getBackend(d as never).getAll(cellId, model)
    if (cellValues.length === 1 && cellValues[0][0] === "map") {
      const cell = monthObj[model]
      cell.quantity = quantity
      cell.by = S(by) as never
      cell.at = now
    } else {
      monthObj[model] = { quantity, by: S(by), at: now } as never
    }
  })
}

/** A materialised value with its strings made scalar again, to write it back. */
function restring(v: unknown): unknown {
  if (typeof v === "string") return S(v)
  if (Array.isArray(v)) return v.map(restring)
  if (v && typeof v === "object" && !(v instanceof A.ImmutableString))
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, restring(x)]))
  return v
}

/** Marks `duplicate` as merged into `into` (the same person entered twice). */
export function mergeCustomer(doc: SiteDoc, duplicate: string, into: string, who: Actor): Mutation {
  if (duplicate === into) throw new DomainError("Invalid", `invalid merge of customer ${duplicate}: a customer cannot be merged into itself`)
  customerOf(doc, duplicate)
  const keep = customerOf(doc, into)
  const other = str(keep.mergedInto)
  if (other) throw new DomainError("Invalid", `invalid merge of customer ${duplicate}: customer ${into} was itself merged into ${other}; merge into that one`)
  return mutation(`${who.by}: merge customer ${duplicate} into ${into}`, who.now, d => {
    d.customers[duplicate].mergedInto = S(into) as never
  })
}

export { parseMonth }
export type { CustomerSource, CustomerStatus, EventKind }
