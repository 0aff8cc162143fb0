// Following a site's monthly documents: core's readers (core/vectors/periods.json) and
// the app's decisions on what to open and how long to keep the document it left.

import "@automerge/automerge" // initialises the wasm in node; the app uses the slim build
import * as A from "@automerge/automerge/slim"
import assert from "node:assert/strict"
import { readFileSync } from "node:fs"
import { test } from "node:test"
import { DomainError } from "../src/domain/ops"
import {
  ARCHIVE_GRACE_DAYS, HeldChain, archiveClosed, archiveState, archiveWritableUntil, currentSiteDocument, followChain, pendingChanges,
  siteChain,
} from "../src/domain/periods"
import { fromHex } from "./interpret"

const vector = JSON.parse(readFileSync(new URL("../../../core/vectors/periods.json", import.meta.url), "utf8"))
const net = A.load(fromHex(vector.network))

test("the current document and the chain read from the network document are core's", () => {
  assert.equal(ARCHIVE_GRACE_DAYS, vector.graceDays)
  assert.ok(vector.sites.some((s: { chain: unknown[] }) => s.chain.length === 3))
  for (const s of vector.sites) {
    assert.equal(currentSiteDocument(net, s.site), s.current, s.site)
    assert.deepEqual(siteChain(net, s.site), s.chain, s.site)
  }
})

test("an archive takes late changes until core says", () => {
  for (const c of vector.writableUntil) {
    if ("until" in c) assert.equal(archiveWritableUntil(c.next), c.until, c.next)
    else assert.throws(() => archiveWritableUntil(c.next), (e: unknown) => e instanceof DomainError && e.kind === c.error, c.next)
  }
})

const sr1 = vector.sites.find((s: { site: string }) => s.site === "sr-1")

test("a phone on the first document follows to the working one and keeps the one it left until the next month's grace week ends", () => {
  const held: HeldChain = { site: "sr-1", document: sr1.chain[0].document, archives: [] }
  const moved = followChain(held, net)!
  assert.equal(moved.document, sr1.current)
  assert.deepEqual(moved.archives, [{ document: sr1.chain[0].document, writableUntil: archiveWritableUntil(sr1.chain[1].month) }])
  // Already there: nothing to do; a site never carried over: nothing either.
  assert.equal(followChain(moved, net), null)
  assert.equal(followChain({ site: "rs-1", document: "x", archives: [] }, net), null)
  // Moving again keeps the earlier archive once, and never lists the working document.
  const again = followChain({ site: "sr-1", document: sr1.chain[1].document, archives: [{ document: sr1.current, writableUntil: 1 }, ...moved.archives] }, net)!
  assert.deepEqual(again.archives.map(a => a.document), [sr1.chain[0].document, sr1.chain[1].document])
  // A document the chain does not name gets the working document's month.
  const stray = followChain({ site: "sr-1", document: "unknown", archives: [] }, net)!
  assert.deepEqual(stray.archives, [{ document: "unknown", writableUntil: archiveWritableUntil(sr1.chain[2].month) }])
})

test("an archive is synced while it has changes the relay lacks and takes them, then dropped or closed", () => {
  const a = { document: "d", writableUntil: 1_000 }
  assert.equal(archiveState(a, 0, 0), "handed_in")
  assert.equal(archiveState(a, 0, 5_000), "handed_in")
  assert.equal(archiveState(a, 2, 999), "syncing")
  assert.equal(archiveState(a, 2, 1_000), "closed")
  assert.equal(archiveState({ document: "d", writableUntil: null }, 2, Number.MAX_SAFE_INTEGER), "syncing")
  assert.equal(archiveClosed(a, 999), false)
  assert.equal(archiveClosed(a, 1_000), true)
  assert.equal(archiveClosed({ document: "d", writableUntil: null }, Number.MAX_SAFE_INTEGER), false)
})

test("pending changes are those not behind the relay's heads, whatever heads of the relay's own the phone lacks", () => {
  let doc = A.from<{ n: number }>({ n: 0 }, { actor: "aa" })
  const acked = A.getHeads(doc)
  doc = A.change(doc, d => {
    d.n = 1
  })
  doc = A.change(doc, d => {
    d.n = 2
  })
  assert.equal(pendingChanges(doc, acked), 2)
  assert.equal(pendingChanges(doc, [...acked, "00".repeat(32)]), 2)
  assert.equal(pendingChanges(doc, A.getHeads(doc)), 0)
  assert.equal(pendingChanges(doc, []), 3)
})
