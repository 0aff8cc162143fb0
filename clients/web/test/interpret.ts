// Runs the steps of core's vectors (core/vectors/*.json) with the app's domain module:
// the same operation names and arguments as core/tests/conformance/documents.rs's `apply_op`.

import * as A from "@automerge/automerge/slim"
import { resolveDoubleBooking, resolveDuplicateCustomer } from "../src/domain/conflicts"
import {
  Actor, DomainError, Mutation, addCustomer, applyTo, moveVehicle, recordEvent, recordWalkIn,
  sellVehicle, setCustomerStatus, setForecast,
} from "../src/domain/ops"
import type { NetworkDoc, SiteDoc } from "../src/domain/schema"
import {
  decideDiscount, linkReferral, markLost, openComplaint, receiveTransfer, recordFollowUp, requestDiscount,
  requestTransfer, setCustomerArea, updateComplaint,
} from "../src/domain/care"

/** One step of a vector. */
export interface Step {
  op: string
  by: string
  role?: string
  now: number
  args: Record<string, any>
  expect: "ok" | { error: string }
}

function mutationFor(doc: A.Doc<SiteDoc>, net: NetworkDoc, s: Step): Mutation {
  const a = s.args
  const who: Actor = { by: s.by, role: s.role ?? "consultant", now: s.now }
  switch (s.op) {
    case "add_customer":
      return addCustomer(doc, net, a as never, who)
    case "record_event":
      return recordEvent(doc, a.customer, a as never, who)
    case "record_walk_in":
      return recordWalkIn(doc, net, a as never, who)
    case "set_customer_status":
      return setCustomerStatus(doc, a.customer, a.status, who)
    case "reserve":
      return moveVehicle(doc, a.vin, "reserve", who, { customer: a.customer })
    case "release":
      return moveVehicle(doc, a.vin, "release", who)
    case "deliver":
      return moveVehicle(doc, a.vin, "deliver", who)
    case "sell":
      return sellVehicle(doc, net, a.vin, { customer: a.customer ?? null, price: a.price ?? null }, who)
    case "set_forecast":
      return setForecast(doc, net, a.month, a.model, a.quantity, who)
    case "resolve_double_booking":
      return resolveDoubleBooking(doc, a.vin, a.customer, who)
    case "resolve_duplicate_customer":
      return resolveDuplicateCustomer(doc, a.duplicate, a.keep, who)
    case "link_referral":
      return linkReferral(doc, a.customer, a.referrer, who)
    case "record_follow_up":
      return recordFollowUp(doc, a.customer, a as never, who)
    case "open_complaint":
      return openComplaint(doc, a as never, who)
    case "update_complaint":
      return updateComplaint(doc, a.id, a as never, who)
    case "request_discount":
      return requestDiscount(doc, a.customer, a.vin, a.amount, who)
    case "decide_discount":
      return decideDiscount(doc, net, a.customer, a.vin, a.decision, who)
    case "request_transfer":
      return requestTransfer(doc, net, a as never, who)
    case "receive_transfer":
      return receiveTransfer(doc, net, a.id, a.eta ?? null, who)
    case "arrive":
      return moveVehicle(doc, a.vin, "arrive", who)
    case "set_area":
      return setCustomerArea(doc, a.customer, a.area ?? null, who)
    case "mark_lost":
      return markLost(doc, a.customer, a.reason, a.competitor ?? null, who)
    default:
      throw new Error(`unknown op ${s.op}`)
  }
}

/** Runs the steps, checking each expected outcome; returns the document. */
export function runSteps(doc: A.Doc<SiteDoc>, net: NetworkDoc, steps: Step[]): A.Doc<SiteDoc> {
  for (const s of steps) {
    const before = A.getHeads(doc)
    let got: string
    try {
      doc = applyTo(doc, mutationFor(doc, net, s))
      got = "ok"
    } catch (e) {
      if (!(e instanceof DomainError)) throw e
      got = e.kind
      if (JSON.stringify(A.getHeads(doc)) !== JSON.stringify(before)) throw new Error(`refused step changed the doc: ${JSON.stringify(s)}`)
    }
    const want = s.expect === "ok" ? "ok" : s.expect.error
    if (got !== want) throw new Error(`step ${JSON.stringify(s)}: got ${got}, expected ${want}`)
  }
  return doc
}

/**
 * The document as core's `schema::typed_json` prints it: scalar strings
 * as strings, text as {"$text"}, floats as {"$f64"}, counters as {"$counter"}.
 */
export function typedWalk(doc: A.Doc<unknown>): unknown {
  const b = A.getBackend(doc as never)
  const value = (v: any[]): unknown => {
    switch (v[0]) {
      case "map":
      case "list":
      case "text":
        return walk(v[1], v[0])
      case "str":
      case "int":
      case "boolean":
        return v[1]
      case "uint":
        return Number(v[1])
      case "null":
        return null
      case "f64":
        return { $f64: v[1] }
      case "counter":
        return { $counter: v[1] }
      case "timestamp":
        return { $timestamp: v[1] instanceof Date ? v[1].getTime() : v[1] }
      default:
        return { $other: String(v[1]) }
    }
  }
  const walk = (obj: string, kind: string): unknown => {
    if (kind === "text") return { $text: b.text(obj) }
    if (kind === "list") {
      const out = []
      for (let i = 0; i < b.length(obj); i++) out.push(value(b.getWithType(obj, i) as any[]))
      return out
    }
    const out: Record<string, unknown> = {}
    for (const k of b.keys(obj)) out[k] = value(b.getWithType(obj, k) as any[])
    return out
  }
  return walk("_root", "map")
}

/** Bytes of a hex string. */
export function fromHex(hex: string): Uint8Array {
  return Uint8Array.from(hex.match(/../g) ?? [], h => parseInt(h, 16))
}
