// A site's monthly documents (docs/growth.md): at a month's start the relay carries a
// site's open work over into a new working document and names it in the site's header
// in the network document (`sites[id].document`, `sites[id].periods`). The readers are
// core's (`current_site_document`, `site_chain`, `archive_writable_until`, held equal by
// core/vectors/periods.json); `followChain` and `archiveState` decide what the phone
// opens and how long it keeps handing changes in to the document it left, as the field
// CLI does (clients/cli/src/periods.rs).

import * as A from "@automerge/automerge/slim"
import { monthRange } from "./figures"
import { DomainError, str } from "./ops"
import { parseMonth } from "./schema"

/** Days into the new month an archive still takes devices' late changes (core's ARCHIVE_GRACE_DAYS). */
export const ARCHIVE_GRACE_DAYS = 7
const DAY_MS = 86_400_000

/** One document of a site's chain: the first month it records (`null`: from the site's start). */
export interface PeriodLink {
  month: string | null
  document: string
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof A.ImmutableString)
}

function header(net: unknown, site: string): Record<string, unknown> | null {
  const sites = isMap(net) ? net.sites : undefined
  const h = isMap(sites) ? sites[site] : undefined
  return isMap(h) ? h : null
}

/** The site's current working document as its header names it; null when never carried over. */
export function currentSiteDocument(net: unknown, site: string): string | null {
  return str(header(net, site)?.document)
}

/** The site's chain, oldest first (the last is the working document); empty when never carried over. */
export function siteChain(net: unknown, site: string): PeriodLink[] {
  const list = header(net, site)?.periods
  if (!Array.isArray(list)) return []
  const out: PeriodLink[] = []
  for (const entry of list) {
    if (!isMap(entry)) continue
    const document = str(entry.document)
    if (document !== null) out.push({ month: str(entry.month), document })
  }
  return out
}

/** Until when (UTC ms) the archive of the month before `next` takes late changes: the grace week from `next`'s first midnight, CST. */
export function archiveWritableUntil(next: string): number {
  const month = parseMonth(next)
  if (month === null) throw new DomainError("MalformedMonth", `malformed month ${JSON.stringify(next)}: expected YYYY-MM`)
  return monthRange(month)[0] + ARCHIVE_GRACE_DAYS * DAY_MS
}

/** A document the phone left for a newer one, until the relay has its changes. */
export interface HeldArchive {
  document: string
  /** When the relay stops taking changes to it (null: unknown, kept until handed in). */
  writableUntil: number | null
}

/** What the phone works on for its site: the working document and the archives it still hands changes in to. */
export interface HeldChain {
  site: string
  document: string
  archives: HeldArchive[]
}

/**
 * Where the phone goes when the network document names another working document for its
 * site: that document, with the one it leaves kept as an archive (writable until the
 * grace week of the month that followed it). Null when the phone is where the header
 * says, or the header names none (a site never carried over).
 */
export function followChain(held: HeldChain, net: unknown): HeldChain | null {
  const current = currentSiteDocument(net, held.site)
  if (current === null || current === held.document) return null
  const chain = siteChain(net, held.site)
  const at = chain.findIndex(l => l.document === held.document)
  // The month after the one left; a document the chain does not list (an older network
  // document) gets the working document's month: its grace week cannot end later.
  const next = (at >= 0 ? chain[at + 1] : undefined) ?? chain.find(l => l.document === current)
  let writableUntil: number | null = null
  try {
    writableUntil = next?.month ? archiveWritableUntil(next.month) : null
  } catch {
    // A month that does not parse: unknown, kept until the relay has its changes.
  }
  const others = held.archives.filter(a => a.document !== current && a.document !== held.document)
  return { site: held.site, document: current, archives: [...others, { document: held.document, writableUntil }] }
}

/** Changes in `doc` that are not behind the relay's last advertised heads (its heads this phone lacks are the relay's, not ours). */
export function pendingChanges(doc: A.Doc<unknown>, relayHeads: readonly string[]): number {
  const known = relayHeads.filter(h => A.hasHeads(doc, [h]))
  return A.getChangesMetaSince(doc, known).length
}

/**
 * What becomes of an archive: `handed_in` once the relay has every change of this phone
 * (stop syncing it), `syncing` while it has not and the archive still takes changes,
 * `closed` after the grace week with changes the relay will refuse (not synced; they
 * stay on the phone and in the not-acknowledged count).
 */
export function archiveState(a: HeldArchive, pending: number, now: number): "handed_in" | "syncing" | "closed" {
  if (pending === 0) return "handed_in"
  return archiveClosed(a, now) ? "closed" : "syncing"
}

/** Whether the archive's grace week is over: the relay refuses changes to it. */
export function archiveClosed(a: HeldArchive, now: number): boolean {
  return a.writableUntil !== null && now >= a.writableUntil
}
