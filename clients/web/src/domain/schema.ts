// The site and network documents as docs/schema.md describes them, and the lifecycle
// rules of core/src/domain (core/vectors/lifecycle.json keeps them equal).

export const CUSTOMER_SOURCES = ["walk_in", "phone", "roadshow", "referral", "web", "event"] as const
export const CUSTOMER_STATUSES = ["lead", "test_drive", "negotiating", "ordered", "delivered", "lost"] as const
export const EVENT_KINDS = [
  "visit", "call", "test_drive", "quote", "order", "order_change", "discount_request",
  "discount_approved", "discount_refused", "delivery", "insurance", "loan", "plates",
  "trade_in", "financing", "accessories", "follow_up", "complaint", "referral", "survey",
] as const
export const CALL_DIRECTIONS = ["inbound", "outbound"] as const
export const VEHICLE_STATUSES = [
  "ordered", "in_transit", "in_stock", "reserved", "sold", "delivered", "transferred_out",
] as const
export const SITE_KINDS = ["head_office", "distribution_centre", "agent", "showroom", "roadshow"] as const
/** Where a customer lives: 地州 (the prefectures) or 市区 (the city), the plan's markets. */
export const CUSTOMER_AREAS = ["prefecture", "city"] as const

export type CustomerSource = (typeof CUSTOMER_SOURCES)[number]
export type CustomerStatus = (typeof CUSTOMER_STATUSES)[number]
export type EventKind = (typeof EVENT_KINDS)[number]
export type CallDirection = (typeof CALL_DIRECTIONS)[number]
export type VehicleStatus = (typeof VEHICLE_STATUSES)[number]
export type CustomerArea = (typeof CUSTOMER_AREAS)[number]

/** How far in the future an event's time may be (core's CLOCK_SKEW_MS). */
export const CLOCK_SKEW_MS = 5 * 60_000
/** The largest walk-in party recorded as one batch. */
export const MAX_PARTY_SIZE = 50
/** A car available over this many days is a slow mover (滞销车; core's DEFAULT_SLOW_MOVER_DAYS). */
export const SLOW_MOVER_DAYS = 90

/** Plain (read) shapes: scalar strings read as strings. */
export interface CustomerEvent {
  kind: EventKind
  at: number
  by: string
  note: string | null
  amount: number | null
  vin: string | null
  score: number | null
  direction?: CallDirection
}
export interface Customer {
  id: string
  name: string
  phone: string
  source: CustomerSource
  modelOfInterest: string | null
  consultant: string | null
  status: CustomerStatus
  createdAt: number
  events: CustomerEvent[]
  mergedInto?: string | null
  /** The customer of this site who referred this one (以老带新). */
  referredBy?: string | null
  /** When the next follow-up call is due (UTC ms). */
  nextFollowUp?: number | null
  /** 地州 / 市区. */
  area?: CustomerArea | null
  /** Why the customer was lost, to which competitor, when (written with status lost). */
  lostReason?: string | null
  lostTo?: string | null
  lostAt?: number | null
}
export interface Vehicle {
  vin: string
  model: string
  trim: string
  colour: string
  cost: number
  listPrice: number
  status: VehicleStatus
  eta: number | null
  arrivedAt: number | null
  reservedFor: string | null
  soldTo: string | null
  consultant: string | null
  transferFrom: string | null
  transferTo: string | null
  updatedAt: number
  discountApprovedBy?: string
  discountApprovedAt?: number
  /** The transfer between regions that brought the vehicle here. */
  transferId?: string
}
export interface WalkIn {
  id: string
  at: number
  by: string
  partySize: number
  modelOfInterest: string | null
  note: string | null
}
export interface ForecastEntry {
  quantity: number
  by: string
  at: number
  adjusted?: { quantity: number; by: string; at: number }
}
export interface Target {
  units: number
  revenue: number
  visits: number | null
  calls: number | null
  testDrives: number | null
}
export interface SiteHeader {
  id: string
  name: string
  kind: string
  parent: string | null
  channel?: string
}
export interface SiteDoc {
  schemaVersion: number
  site: SiteHeader
  customers: Record<string, Customer>
  vehicles: Record<string, Vehicle>
  parts: Record<string, unknown>
  forecasts: Record<string, Record<string, ForecastEntry>>
  targets: Record<string, Record<string, Target>>
  walkIns?: Record<string, WalkIn>
  complaints?: Record<string, Complaint>
  transfers?: Record<string, TransferRequest>
}

export const COMPLAINT_STATUSES = ["open", "in_progress", "resolved"] as const
export type ComplaintStatus = (typeof COMPLAINT_STATUSES)[number]

/** A customer's complaint (投诉), its owner and how it was settled. */
export interface Complaint {
  id: string
  customer: string
  summary: string
  status: ComplaintStatus
  owner: string
  openedAt: number
  openedBy: string
  resolution: string | null
  resolvedAt: number | null
  resolvedBy: string | null
}

/** A manager's request to send a car to another region (the sender's document). */
export interface TransferRequest {
  id: string
  vin: string
  model: string
  from: string
  to: string
  requestedBy: string
  requestedAt: number
  note: string | null
  dispatchedAt: number | null
  dispatchedBy: string | null
}

/** Head office's decision on a transfer (the network document). */
export interface TransferDecision {
  id: string
  verdict: "approved" | "refused"
  by: string
  at: number
  note?: string
  vin: string
  from: string
  to: string
  model: string
  trim: string
  colour: string
  cost: number
  listPrice: number
}
export interface VehicleModel {
  code: string
  name: string
  trims: string[]
  cost: number
  listPrice: number
}
/** The parts of the network document the app reads. */
export interface NetworkDoc {
  schemaVersion?: number
  sites?: Record<string, SiteHeader>
  models: Record<string, VehicleModel>
  targets?: Record<string, Record<string, Target>>
  discountLimits?: Record<string, number>
  forecastDeadlineDay?: number
  transferDecisions?: Record<string, TransferDecision>
}

const RANK: Record<CustomerStatus, number> = {
  lead: 0, test_drive: 1, negotiating: 2, ordered: 3, delivered: 4, lost: 99,
}

/** Whether the sales funnel allows a customer to move from `from` to `to`. */
export function customerTransitionAllowed(from: CustomerStatus, to: CustomerStatus): boolean {
  if (from === "lost") return to === "lead"
  if (to === "lost") return true
  if (to === "delivered") return from === "ordered"
  return RANK[to] > RANK[from]
}

const VEHICLE_MOVES = new Set([
  "ordered>in_transit", "ordered>in_stock", "in_transit>in_stock", "in_stock>reserved",
  "reserved>sold", "sold>delivered", "reserved>in_stock", "in_stock>transferred_out",
])

/** Whether a vehicle may move from `from` to `to`. */
export function vehicleTransitionAllowed(from: VehicleStatus, to: VehicleStatus): boolean {
  return VEHICLE_MOVES.has(`${from}>${to}`)
}

/** A lifecycle step at a site, as core's `VehicleAction`. */
export type VehicleAction = "ship" | "arrive" | "reserve" | "release" | "sell" | "deliver"

/** The status a step starts from (arrive: also from ordered) and the one it ends in. */
export const VEHICLE_ACTIONS: Record<VehicleAction, { from: VehicleStatus[]; to: VehicleStatus }> = {
  ship: { from: ["ordered"], to: "in_transit" },
  arrive: { from: ["ordered", "in_transit"], to: "in_stock" },
  reserve: { from: ["in_stock"], to: "reserved" },
  release: { from: ["reserved"], to: "in_stock" },
  sell: { from: ["reserved"], to: "sold" },
  deliver: { from: ["sold"], to: "delivered" },
}

/** A month key `YYYY-MM` (months 01-12), or null. */
export function parseMonth(input: string): string | null {
  const m = /^(\d{4})-(\d{2})$/.exec(input.trim())
  if (!m) return null
  const month = Number(m[2])
  return month >= 1 && month <= 12 ? `${m[1]}-${m[2]}` : null
}
