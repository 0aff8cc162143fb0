// Propagation clients for dealersync-load (tests/src/bin/dealersync-load): the stock
// JavaScript automerge-repo 2.5 client, one Repo with its own WebSocketClientAdapter per
// connection (as every phone or browser tab has), all in this one node process so that
// send and receive times come from one clock.
//
//   node load-clients.mjs '{"url":"ws://127.0.0.1:PORT/sync?token=T","docs":["<id>",..],
//                          "connsPerDoc":3,"rate":600,"totalConns":300,"firstConn":0,
//                          "durationMs":30000,"drainMs":10000,"setupMs":60000}'
//
// Protocol with the tool: once every client has its document, one line
// `{"ready":N,"failed":M,"firstError":..}` on stdout; the tool answers `start` on stdin
// (a shared start so that several node processes begin together); the clients then
// write for durationMs and wait up to drainMs for the others' changes; the last line is
// `{"result":{written, missing, latencies, timeline, errors}}` (latencies in µs).
// Logs go to stderr.
//
// The load is the tool's own (see propagation.rs): connection g of the run writes key
// "<slot>:<seq>" = its send time in µs at rate/totalConns changes per second, its first
// write staggered by g/rate seconds, and records when the other slots' keys of its
// document first appear in its copy.

import { Repo } from "@automerge/automerge-repo"
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"
import { createInterface } from "node:readline"

const config = JSON.parse(process.argv[2] ?? "{}")
const log = (...a) => process.stderr.write(`[load-clients] ${a.join(" ")}\n`)
for (const k of ["url", "docs", "connsPerDoc", "rate", "totalConns", "durationMs", "drainMs"]) {
  if (config[k] === undefined) {
    log(`config needs \`${k}\``)
    process.exit(64)
  }
}
const firstConn = config.firstConn ?? 0
const setupMs = config.setupMs ?? 60000

// Microseconds on the wall clock's scale (monotonic within the process), so that the
// tool's per-window view lines up the runs of several node processes.
const micros = () => Math.round((performance.timeOrigin + performance.now()) * 1000)

// A reset socket is a failed client, not a dead process (the stock adapter rethrows).
const socketErrors = []
process.on("uncaughtException", err => {
  if (["ECONNRESET", "EPIPE", "ECONNABORTED"].includes(err?.code)) {
    socketErrors.push(err.code)
    return
  }
  log("fatal:", err?.stack ?? String(err))
  process.exit(2)
})

/** One connection: its repo, its document handle, what it wrote and saw. */
function makeClient(g, docId) {
  const slot = (g - firstConn) % config.connsPerDoc
  const adapter = new WebSocketClientAdapter(config.url, 1000)
  const repo = new Repo({ network: [adapter], isEphemeral: false })
  return {
    g,
    slot,
    docId,
    repo,
    handle: null,
    written: 0,
    finalWritten: null,
    nextSeq: new Array(config.connsPerDoc).fill(0),
    latencies: [],
    timeline: [],
    errors: [],
  }
}

const clients = []
config.docs.forEach((docId, d) => {
  for (let s = 0; s < config.connsPerDoc; s++) {
    clients.push(makeClient(firstConn + d * config.connsPerDoc + s, docId))
  }
})
const byDoc = new Map()
for (const c of clients) {
  if (!byDoc.has(c.docId)) byDoc.set(c.docId, [])
  byDoc.get(c.docId).push(c)
}

function observe(c) {
  const doc = c.handle.doc()
  if (!doc) return
  const now = micros()
  for (let s = 0; s < config.connsPerDoc; s++) {
    if (s === c.slot) continue
    for (;;) {
      const sent = doc[`${s}:${c.nextSeq[s]}`]
      if (typeof sent !== "number") break
      const lat = Math.max(0, now - sent)
      c.latencies.push(lat)
      c.timeline.push([sent, lat])
      c.nextSeq[s] += 1
    }
  }
}

// The stock WebSocketClientAdapter declares itself ready one second after it is
// created whether or not the server has answered, and `find` then gives up with
// "unavailable" when no peer is known yet. Three hundred repos opened in the same
// instant keep this one thread busy for longer than that, so the clients are set up a
// batch at a time (as phones arrive over minutes, not in one millisecond), and a find
// that still gave up is tried again once its socket has a peer: what a real app does.
const setupBatch = config.setupBatch ?? 25
let setupRetries = 0

async function setup(c, started) {
  for (;;) {
    const left = started + setupMs - performance.now()
    const deadline = new Promise((_, reject) =>
      setTimeout(() => reject(new Error("timed out finding the document")), Math.max(0, left))
    )
    try {
      c.handle = await Promise.race([c.repo.find(`automerge:${c.docId}`), deadline])
      break
    } catch (e) {
      const unavailable = /unavailable/i.test(String(e?.message ?? e))
      if (!unavailable || performance.now() - started > setupMs) throw e
      setupRetries += 1
      await new Promise(r => setTimeout(r, 250))
    }
  }
  c.handle.on("change", () => observe(c))
}

const setupStarted = performance.now()
const results = []
for (let i = 0; i < clients.length; i += setupBatch) {
  const batch = clients.slice(i, i + setupBatch)
  results.push(...(await Promise.allSettled(batch.map(c => setup(c, setupStarted)))))
}
const failed = results.filter(r => r.status === "rejected")
results.forEach((r, i) => {
  if (r.status === "rejected") clients[i].errors.push(String(r.reason?.message ?? r.reason))
})
process.stdout.write(
  JSON.stringify({
    ready: results.length - failed.length,
    failed: failed.length,
    firstError: failed.length ? String(failed[0].reason?.message ?? failed[0].reason) : null,
    setupRetries,
  }) + "\n"
)

const lines = createInterface({ input: process.stdin })
await new Promise(resolve => lines.once("line", resolve))
const t0 = performance.now() + 200
const stopAt = t0 + config.durationMs
const periodMs = (config.totalConns / config.rate) * 1000

function writer(c) {
  if (!c.handle) {
    c.finalWritten = 0
    return
  }
  let next = t0 + (c.g / config.rate) * 1000
  const tick = () => {
    const now = performance.now()
    if (now >= stopAt) {
      c.finalWritten = c.written
      return
    }
    try {
      const key = `${c.slot}:${c.written}`
      const value = micros()
      c.handle.change(d => {
        d[key] = value
      })
      c.written += 1
    } catch (e) {
      c.errors.push(String(e?.message ?? e))
      c.finalWritten = c.written
      return
    }
    next += periodMs
    setTimeout(tick, Math.max(0, next - performance.now()))
  }
  setTimeout(tick, Math.max(0, next - performance.now()))
}
clients.forEach(writer)

// Done when every client saw every other's final count, or the drain ran out.
function allSeen() {
  for (const group of byDoc.values()) {
    for (const c of group) {
      for (const o of group) {
        if (o === c) continue
        if (o.finalWritten === null || c.nextSeq[o.slot] < o.finalWritten) return false
      }
    }
  }
  return true
}
await new Promise(resolve => {
  const check = () => {
    const now = performance.now()
    if ((now >= stopAt && allSeen()) || now >= stopAt + config.drainMs) resolve()
    else setTimeout(check, 50)
  }
  setTimeout(check, config.durationMs + 200)
})

let missing = 0
for (const group of byDoc.values()) {
  for (const c of group) {
    for (const o of group) {
      if (o !== c) missing += Math.max(0, (o.finalWritten ?? o.written) - c.nextSeq[o.slot])
    }
  }
}
const result = {
  written: clients.reduce((n, c) => n + c.written, 0),
  missing,
  latencies: clients.flatMap(c => c.latencies),
  timeline: clients.flatMap(c => c.timeline),
  errors: [...clients.flatMap(c => c.errors), ...socketErrors.map(e => `socket: ${e}`)],
}
// A pipe takes 64 KiB at a time: wait until the whole line is written, or the exit
// below would cut it short.
await new Promise(resolve => process.stdout.write(JSON.stringify({ result }) + "\n", resolve))
await Promise.all(clients.map(c => c.repo.shutdown().catch(() => {})))
process.exit(0)
