// What issue 9 added that the app does too, as core/src/domain writes it: referrals,
// follow-ups, a customer's area and a lost customer's reason (care.rs), complaints (care.rs), discount requests and a manager's
// decision (discounts.rs), a transfer request between regions and an incoming
// transfer put on the books (transfers.rs). core/vectors/care.json holds the cases
// both run; every operation refuses before anything is written.

import {
  Actor, DomainError, Mutation, S, discountLimit, eventRecord, eventTime, keyLike, liveCustomer,
  mutation, nonEmpty, optS, str, vehicleOf,
} from "./ops"
import {
  COMPLAINT_STATUSES, CUSTOMER_AREAS, ComplaintStatus, CustomerArea, CustomerStatus, NetworkDoc, SiteDoc,
  customerTransitionAllowed,
} from "./schema"

const clean = (t: string | null | undefined) => t?.trim() || null

/** Links `customer` to the customer of this site who referred them (以老带新). */
export function linkReferral(doc: SiteDoc, customer: string, referrer: string, who: Actor): Mutation {
  const by = keyLike("referral by", who.by)
  if (customer === referrer)
    throw new DomainError("Invalid", `invalid referrer of customer ${customer}: a customer does not refer themselves`)
  liveCustomer(doc, customer)
  const r = liveCustomer(doc, referrer)
  if (str(r.referredBy) === customer)
    throw new DomainError("Invalid", `invalid referrer of customer ${customer}: ${customer} referred ${referrer}: the link would go both ways`)
  return mutation(`${by}: customer ${customer} referred by ${referrer}`, who.now, d => {
    d.customers[customer].referredBy = S(referrer) as never
  })
}

/** Sets (or with null clears) where a customer lives: 地州 or 市区. */
export function setCustomerArea(doc: SiteDoc, customer: string, area: CustomerArea | null, who: Actor): Mutation {
  const by = keyLike("area by", who.by)
  liveCustomer(doc, customer)
  if (area != null && !CUSTOMER_AREAS.includes(area)) throw new DomainError("Invalid", `invalid area of customer ${customer}: ${area}`)
  return mutation(`${by}: area of customer ${customer}`, who.now, d => {
    d.customers[customer].area = optS(area) as never
  })
}

/** Marks a customer lost, saying why and (if known) to which competitor, in one change
 *  with the status; a reason is needed, and the funnel must allow the move. */
export function markLost(doc: SiteDoc, customer: string, reason: string, competitor: string | null, who: Actor): Mutation {
  const by = keyLike("lost by", who.by)
  const why = nonEmpty(`lost reason of customer ${customer}`, reason)
  const c = liveCustomer(doc, customer)
  const from = str(c.status) as CustomerStatus
  if (!customerTransitionAllowed(from, "lost"))
    throw new DomainError("IllegalCustomerTransition", `customer ${customer} cannot move from ${from} to lost`)
  const to = clean(competitor)
  const now = who.now
  return mutation(`${by}: customer ${customer} ${from} -> lost`, now, d => {
    const w = d.customers[customer]
    w.status = S("lost") as never
    w.lostReason = S(why) as never
    w.lostTo = optS(to) as never
    w.lostAt = now
  })
}

/** Records a follow-up call made at `at` and plans the next one (or none), in one change. */
export function recordFollowUp(
  doc: SiteDoc,
  customer: string,
  f: { at: number; note?: string | null; next?: number | null },
  who: Actor,
): Mutation {
  const by = keyLike("follow-up by", who.by)
  liveCustomer(doc, customer)
  eventTime(`follow-up of customer ${customer}`, f.at, who.now)
  const next = f.next ?? null
  if (next != null && next <= f.at)
    throw new DomainError("Invalid", `invalid next follow-up of customer ${customer}: must be after the follow-up just made`)
  return mutation(`${by}: follow-up of customer ${customer}`, who.now, d => {
    const c = d.customers[customer]
    c.events.push(eventRecord({ kind: "follow_up", at: f.at, by, note: clean(f.note) }) as never)
    c.nextFollowUp = next
  })
}

/** A complaint as it is taken down. */
export interface NewComplaint {
  id: string
  customer: string
  summary: string
  owner?: string | null
  at: number
}

/** Records a customer's complaint, open, owned by `owner` (default: the recorder). */
export function openComplaint(doc: SiteDoc, c: NewComplaint, who: Actor): Mutation {
  const by = keyLike("complaint by", who.by)
  const id = keyLike("complaint id", c.id)
  liveCustomer(doc, c.customer)
  const summary = nonEmpty(`complaint ${id} summary`, c.summary)
  const owner = c.owner == null ? by : keyLike(`complaint ${id} owner`, c.owner)
  eventTime(`complaint ${id}`, c.at, who.now)
  if (doc.complaints?.[id] !== undefined) throw new DomainError("Invalid", `invalid complaint ${id}: already recorded`)
  return mutation(`${by}: complaint ${id} of customer ${c.customer}`, who.now, d => {
    if (!d.complaints) d.complaints = {}
    d.complaints[id] = {
      id: S(id), customer: S(c.customer), summary: S(summary), status: S("open"), owner: S(owner),
      openedAt: c.at, openedBy: S(by), resolution: null, resolvedAt: null, resolvedBy: null,
    } as never
  })
}

/**
 * Moves a complaint along (open → in progress → resolved; a resolved one may be
 * reopened), hands it to another owner, or records its resolution. Resolving needs a
 * resolution and records who and when; reopening clears them.
 */
export function updateComplaint(
  doc: SiteDoc,
  id: string,
  u: { status?: ComplaintStatus | null; owner?: string | null; resolution?: string | null },
  who: Actor,
): Mutation {
  const by = keyLike("complaint by", who.by)
  const c = doc.complaints?.[id]
  if (!c) throw new DomainError("Invalid", `invalid complaint ${id}: no such complaint at this site`)
  const owner = u.owner == null ? null : keyLike(`complaint ${id} owner`, u.owner)
  const resolution = clean(u.resolution) ?? str(c.resolution)
  const from = str(c.status) as ComplaintStatus
  const to = u.status ?? from
  if (!COMPLAINT_STATUSES.includes(to)) throw new DomainError("Invalid", `invalid complaint ${id} status ${to}`)
  if (to === "resolved" && !resolution)
    throw new DomainError("Invalid", `invalid complaint ${id}: say how it was resolved (a resolution)`)
  const resolving = to === "resolved" && from !== "resolved"
  const reopening = from === "resolved" && to !== "resolved"
  const now = who.now
  return mutation(`${by}: complaint ${id} ${to}`, now, d => {
    const w = d.complaints![id]
    // One assignment per changed field, as core's reconcile writes only what changed.
    if (owner != null && owner !== str(w.owner)) w.owner = S(owner) as never
    if (resolution != null && resolution !== str(w.resolution)) w.resolution = S(resolution) as never
    if (to !== from) w.status = S(to) as never
    if (resolving) {
      w.resolvedAt = now
      w.resolvedBy = S(by) as never
    }
    if (reopening) {
      w.resolvedAt = null
      w.resolvedBy = null
    }
  })
}

type DiscountKind = "discount_request" | "discount_approved" | "discount_refused"

/** Where the discount on `vin` for `customer` stands: the last request or decision. */
export function discountState(doc: SiteDoc, customer: string, vin: string): { kind: DiscountKind; amount: number; by: string; at: number } | null {
  let last = null
  for (const e of doc.customers[customer]?.events ?? []) {
    const kind = str(e.kind)
    if (str(e.vin) !== vin) continue
    if (kind === "discount_request" || kind === "discount_approved" || kind === "discount_refused")
      last = { kind: kind as DiscountKind, amount: e.amount ?? 0, by: str(e.by) ?? "", at: e.at }
  }
  return last
}

/** The VIN key and list price of a car that can still be sold to `customer`. */
function discountable(doc: SiteDoc, customer: string, vin: string) {
  liveCustomer(doc, customer)
  const { v, key } = vehicleOf(doc, vin)
  const status = str(v.status)
  const reservedFor = str(v.reservedFor)
  if (status === "in_stock" || status === "ordered" || status === "in_transit") return { key, listPrice: v.listPrice }
  if (status === "reserved" && reservedFor === customer) return { key, listPrice: v.listPrice }
  throw new DomainError("Invalid", `invalid discount on vehicle ${key} for customer ${customer}: ${status === "reserved" ? `it is reserved for customer ${reservedFor}` : `it is ${status}, no longer for sale`}`)
}

function discountMutation(customer: string, kind: DiscountKind, key: string, amount: number, by: string, now: number): Mutation {
  return mutation(`${by}: ${kind === "discount_request" ? "discount request" : kind} ${amount} fen on ${key}`, now, d => {
    d.customers[customer].events.push(eventRecord({ kind, at: now, by, amount, vin: key }) as never)
  })
}

/** Asks for a discount of `amount` fen on `vin` for `customer`, above one's own limit. */
export function requestDiscount(doc: SiteDoc, customer: string, vin: string, amount: number, who: Actor): Mutation {
  const by = keyLike("discount request by", who.by)
  const { key, listPrice } = discountable(doc, customer, vin)
  if (!(Number.isInteger(amount) && amount > 0 && amount <= listPrice))
    throw new DomainError("Invalid", `invalid discount on vehicle ${key} for customer ${customer}: must be more than 0 and at most the list price ${listPrice} fen, got ${amount}`)
  return discountMutation(customer, "discount_request", key, amount, by, who.now)
}

/** A manager approves (up to their own limit) or refuses the pending request. */
export function decideDiscount(
  doc: SiteDoc,
  net: NetworkDoc,
  customer: string,
  vin: string,
  decision: "approve" | "refuse",
  who: Actor,
): Mutation {
  const by = keyLike("discount decision by", who.by)
  const { key } = discountable(doc, customer, vin)
  const field = `invalid discount on vehicle ${key} for customer ${customer}`
  if (who.role === "consultant") throw new DomainError("Invalid", `${field}: a discount is approved or refused by a manager`)
  const state = discountState(doc, customer, key)
  if (state?.kind !== "discount_request")
    throw new DomainError("Invalid", `${field}: ${state ? "no request is pending" : "no discount was requested"}`)
  if (decision === "approve") {
    const limit = discountLimit(net, who.role)
    if (state.amount > limit)
      throw new DomainError("Invalid", `${field}: ${state.amount} fen is above the ${who.role} limit of ${limit} fen; it needs a higher approval`)
  }
  return discountMutation(customer, decision === "approve" ? "discount_approved" : "discount_refused", key, state.amount, by, who.now)
}

/** The region of a site: the distribution centre at or above it (or the tree's root). */
export function regionOf(net: NetworkDoc, site: string): string | null {
  const sites = net.sites ?? {}
  let at = sites[site]
  if (!at) return null
  for (let i = 0; i <= Object.keys(sites).length; i++) {
    if (str(at.kind) === "distribution_centre") return str(at.id)
    const parent = str(at.parent)
    if (!parent || !sites[parent]) return str(at.id)
    at = sites[parent]
  }
  return str(at.id)
}

/** Asks head office to move a car in stock here to a site of another region. */
export function requestTransfer(
  doc: SiteDoc,
  net: NetworkDoc,
  t: { id: string; vin: string; to: string; note?: string | null },
  who: Actor,
): Mutation {
  const by = keyLike("requested by", who.by)
  const id = keyLike("transfer id", t.id)
  const from = str(doc.site.id) ?? ""
  const { v, key } = vehicleOf(doc, t.vin)
  const status = str(v.status)
  if (status !== "in_stock")
    throw new DomainError("WrongVehicleAction", `vehicle ${key} is ${status}: a transfer applies only to a vehicle that is in_stock`)
  const to = keyLike("transfer to", t.to)
  if (to === from) throw new DomainError("Invalid", `invalid transfer of vehicle ${key}: it is already at site ${from}`)
  const [fromRegion, toRegion] = [regionOf(net, from), regionOf(net, to)]
  if (fromRegion == null) throw new DomainError("UnknownSite", `unknown site ${from}`)
  if (toRegion == null) throw new DomainError("UnknownSite", `unknown site ${to}`)
  if (fromRegion === toRegion)
    throw new DomainError("Invalid", `invalid transfer of vehicle ${key} to ${to}: ${from} and ${to} are both in region ${fromRegion}: a manager of the region moves it directly, without head office`)
  const existing = doc.transfers ?? {}
  if (existing[id] !== undefined) throw new DomainError("Invalid", `invalid transfer ${id}: already requested`)
  for (const r of Object.values(existing)) {
    const decision = net.transferDecisions?.[str(r.id) ?? ""]
    if (str(r.vin) === key && r.dispatchedAt == null && (!decision || str(decision.verdict) === "approved"))
      throw new DomainError("Invalid", `invalid transfer of vehicle ${key}: request ${str(r.id)} to ${str(r.to)} is still open`)
  }
  const note = clean(t.note)
  const now = who.now
  return mutation(`${by}: request transfer ${id} of vehicle ${key} to ${to}`, now, d => {
    if (!d.transfers) d.transfers = {}
    d.transfers[id] = {
      id: S(id), vin: S(key), model: S(str(v.model) ?? ""), from: S(from), to: S(to),
      requestedBy: S(by), requestedAt: now, note: optS(note), dispatchedAt: null, dispatchedBy: null,
    } as never
  })
}

/** Puts a car head office approved for this site on the books, in transit; `arrive` stocks it. */
export function receiveTransfer(doc: SiteDoc, net: NetworkDoc, id: string, eta: number | null, who: Actor): Mutation {
  const by = keyLike("received by", who.by)
  const decision = net.transferDecisions?.[id]
  if (!decision || str(decision.verdict) !== "approved")
    throw new DomainError("Invalid", `invalid transfer ${id}: ${decision ? `refused by ${str(decision.by)}` : "head office has not approved it (yet): the vehicle stays until it does"}`)
  const here = str(doc.site.id)
  const to = str(decision.to)
  if (to !== here) throw new DomainError("Invalid", `invalid transfer ${id}: it goes to ${to}, not to ${here}`)
  const vin = str(decision.vin) ?? ""
  const existing = doc.vehicles[vin]
  if (existing) {
    const status = str(existing.status)
    if (status !== "transferred_out" && status !== "delivered")
      throw new DomainError("VehicleExists", `vehicle ${vin} already exists at site ${here} (${status})`)
  }
  const now = who.now
  return mutation(`${by}: vehicle ${vin} in transit from ${str(decision.from)} (transfer ${id})`, now, d => {
    d.vehicles[vin] = {
      vin: S(vin), model: S(str(decision.model) ?? ""), trim: S(str(decision.trim) ?? ""),
      colour: S(str(decision.colour) ?? ""), cost: decision.cost, listPrice: decision.listPrice,
      status: S("in_transit"), eta, arrivedAt: null, reservedFor: null, soldTo: null, consultant: null,
      transferFrom: S(str(decision.from) ?? ""), transferTo: null, updatedAt: now, transferId: S(id),
    } as never
  })
}
