// A scripted automerge-repo client: the real @automerge/automerge-repo 2.5 Repo with the
// real WebSocket client adapter, driven by line-delimited JSON commands on stdin, one
// JSON answer per line on stdout. The Rust interop tests spawn it (tests/src/lib.rs,
// `JsClient`); see README.md in this directory for the command reference.
//
//   node client.mjs '{"url":"ws://127.0.0.1:3030/sync?token=..."}'
//
// The only thing added to the stock client is observation: incoming frames are
// counted (and `error` frames kept) before the adapter handles them, so a test can see
// what the server said even where automerge-repo itself only logs it.

import * as A from "@automerge/automerge"
import { Repo } from "@automerge/automerge-repo"
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"
import { cbor } from "@automerge/automerge-repo/slim"
import { createInterface } from "node:readline"
import { isDeepStrictEqual } from "node:util"

const config = parseConfig(process.argv[2])
const log = (...args) => process.stderr.write(`[js-client ${config.name}] ${args.join(" ")}\n`)

/** What the client has seen from the server, for `state` and for `acked`. */
const seen = {
  received: {}, // message type -> count
  errors: [], // `error` frames: their `message`
  closes: [], // socket closes: {code, reason}
  opens: 0,
  socketErrors: [], // transport errors that were survived (reset connections)
  serverHeads: new Map(), // documentId -> latest heads the server advertised in `sync`
  unavailable: new Set(), // documentIds the server answered `doc-unavailable` for
}
const waiters = new Set() // re-checked whenever anything above or a document changes

class ObservedClientAdapter extends WebSocketClientAdapter {
  receiveMessage(bytes) {
    try {
      const msg = cbor.decode(new Uint8Array(bytes))
      const type = typeof msg?.type === "string" ? msg.type : "<malformed>"
      seen.received[type] = (seen.received[type] ?? 0) + 1
      if (type === "error") seen.errors.push(String(msg.message))
      if (type === "doc-unavailable" && msg.documentId) seen.unavailable.add(msg.documentId)
      if (type === "sync" && msg.data && msg.documentId) {
        const decoded = A.decodeSyncMessage(new Uint8Array(msg.data))
        seen.serverHeads.set(msg.documentId, decoded.heads)
      }
    } catch (e) {
      seen.received["<undecodable>"] = (seen.received["<undecodable>"] ?? 0) + 1
    }
    super.receiveMessage(bytes)
    notify()
  }
  connect(peerId, peerMetadata) {
    super.connect(peerId, peerMetadata)
    const socket = this.socket
    socket.addEventListener("open", () => {
      seen.opens += 1
      notify()
    })
    socket.addEventListener("close", ev => {
      seen.closes.push({ code: ev.code, reason: String(ev.reason ?? "") })
      notify()
    })
  }
}

// The stock adapter rethrows any socket error other than ECONNREFUSED from an event
// handler, which would kill the process when a server dies mid-connection. A real
// browser would just reconnect; record it and let the adapter's retry do that.
process.on("uncaughtException", err => {
  const code = err?.code
  if (code === "ECONNRESET" || code === "EPIPE" || code === "ECONNABORTED") {
    seen.socketErrors.push(code)
    return
  }
  log("fatal:", err?.stack ?? String(err))
  process.exit(2)
})

const adapter = new ObservedClientAdapter(config.url, config.retryMs)
const repo = new Repo({
  network: [adapter],
  peerId: config.peerId,
  // Like a browser tab without IndexedDB: the relay is the only other copy.
  isEphemeral: false,
})

/** documentId -> DocHandle of every document this client has found or created. */
const handles = new Map()

function parseConfig(arg) {
  let c
  try {
    c = JSON.parse(arg ?? "")
  } catch {
    process.stderr.write(
      'usage: node client.mjs \'{"url":"ws://HOST:PORT/sync[?token=T]","peerId":"optional","retryMs":500}\'\n'
    )
    process.exit(64)
  }
  if (typeof c.url !== "string") {
    process.stderr.write("client.mjs: config needs a string `url`\n")
    process.exit(64)
  }
  return {
    url: c.url,
    peerId: c.peerId ?? `js-${Math.random().toString(36).slice(2, 10)}`,
    retryMs: c.retryMs ?? 500,
    name: c.name ?? c.peerId ?? "client",
  }
}

function notify() {
  for (const check of [...waiters]) check()
}

/** Errors a command answers with; `kind` lets a test tell them apart without parsing. */
class CommandError extends Error {
  constructor(kind, message) {
    super(message)
    this.kind = kind
  }
}

// ---- values: JSON in, automerge out, and back -------------------------------------

/**
 * A JSON value to what we store: strings are scalar (ImmutableString), per the
 * project's schema rule; {"$text": s} asks for a collaborative text, {"$counter": n}
 * for a counter, {"$timestamp": ms} for a timestamp, {"$bytes": hex} for bytes.
 */
function toAutomerge(v) {
  if (typeof v === "string") return new A.ImmutableString(v)
  if (v === null || typeof v === "number" || typeof v === "boolean") return v
  if (Array.isArray(v)) return v.map(toAutomerge)
  if (typeof v === "object") {
    const keys = Object.keys(v)
    if (keys.length === 1) {
      const [k] = keys
      if (k === "$text") return String(v.$text)
      if (k === "$counter") return new A.Counter(Number(v.$counter))
      if (k === "$timestamp") return new Date(Number(v.$timestamp))
      if (k === "$bytes") return Uint8Array.from(Buffer.from(String(v.$bytes), "hex"))
    }
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toAutomerge(x)]))
  }
  throw new CommandError("bad-command", `cannot store value ${JSON.stringify(v)}`)
}

/** A document (or part of it) as plain JSON: scalar strings and texts both as strings. */
function toJson(v) {
  if (v === null || v === undefined) return null
  if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") return v
  if (v instanceof A.ImmutableString) return v.val
  if (v instanceof A.Counter) return v.value
  if (v instanceof Date) return { $timestamp: v.getTime() }
  if (v instanceof Uint8Array) return { $bytes: Buffer.from(v).toString("hex") }
  if (Array.isArray(v)) return v.map(toJson)
  if (typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toJson(x)]))
  return String(v)
}

function at(doc, path) {
  let cur = doc
  for (const p of path) {
    if (cur === null || typeof cur !== "object") return undefined
    cur = cur[p]
  }
  return cur
}

function applyOp(d, op) {
  if (!Array.isArray(op.path) || op.path.length === 0) {
    throw new CommandError("bad-command", `op needs a non-empty path: ${JSON.stringify(op)}`)
  }
  const parentPath = op.path.slice(0, -1)
  const key = op.path[op.path.length - 1]
  let parent = d
  for (const p of parentPath) {
    if (parent[p] === undefined || parent[p] === null) parent[p] = {}
    parent = parent[p]
  }
  switch (op.op) {
    case "set":
      parent[key] = toAutomerge(op.value)
      break
    case "delete":
      delete parent[key]
      break
    case "increment":
      if (!(parent[key] instanceof A.Counter)) {
        throw new CommandError("bad-command", `${JSON.stringify(op.path)} is not a counter`)
      }
      parent[key].increment(op.by ?? 1)
      break
    default:
      throw new CommandError("bad-command", `unknown op ${JSON.stringify(op.op)}`)
  }
}

// ---- documents --------------------------------------------------------------------

function docIdOf(doc) {
  if (typeof doc !== "string") throw new CommandError("bad-command", "`doc` must be a string")
  const bare = doc.replace(/^automerge:/, "").split("#")[0]
  return bare
}

async function handleFor(doc, timeoutMs) {
  const id = docIdOf(doc)
  const known = handles.get(id)
  if (known) return known
  let handle
  const started = Date.now()
  try {
    handle = await repo.find(`automerge:${id}`, {
      signal: AbortSignal.timeout(timeoutMs),
      allowableStates: ["ready", "unavailable"],
    })
    // The stock adapter calls itself ready one second after it starts, answered or not:
    // "unavailable" before the relay answered (a busy machine, a slow link) only means
    // "not yet". The handle turns ready when the relay sends the document; a refusal is
    // the relay's `doc-unavailable` for it.
    if (!handle.isReady()) {
      await until(() => (handle.isReady() || seen.unavailable.has(id) ? true : undefined), Math.max(0, timeoutMs - (Date.now() - started)), () => `document ${id} not ready (state ${handle.state}, peer ${adapter.remotePeerId ?? "none"}, received ${JSON.stringify(seen.received)})`)
      if (!handle.isReady()) throw new CommandError("unavailable", `document ${id} is unavailable`)
    }
  } catch (e) {
    if (e instanceof CommandError) throw e
    if (e?.name === "TimeoutError" || e?.name === "AbortError") {
      throw new CommandError("timeout", `document ${id} not ready within ${timeoutMs} ms`)
    }
    if (/unavailable/i.test(String(e?.message))) {
      throw new CommandError("unavailable", `document ${id} is unavailable`)
    }
    throw e
  }
  handles.set(id, handle)
  handle.on("change", notify)
  handle.on("heads-changed", notify)
  return handle
}

function snapshot(handle) {
  const doc = handle.doc()
  return { documentId: handle.documentId, heads: A.getHeads(doc), doc: toJson(doc) }
}

/** Resolve when `check()` returns a value other than undefined, or fail at the deadline. */
function until(check, timeoutMs, what) {
  return new Promise((resolve, reject) => {
    const run = () => {
      let r
      try {
        r = check()
      } catch (e) {
        done()
        reject(e)
        return
      }
      if (r !== undefined) {
        done()
        resolve(r)
      }
    }
    const timer = setTimeout(() => {
      done()
      reject(new CommandError("timeout", `${what()} within ${timeoutMs} ms`))
    }, timeoutMs)
    // Some state (the document applying a received message) settles after the event
    // we hear about, so re-check on a short tick too; the deadline still bounds it.
    const tick = setInterval(run, 25)
    const done = () => {
      clearTimeout(timer)
      clearInterval(tick)
      waiters.delete(run)
    }
    waiters.add(run)
    run()
  })
}

/** Has `doc` seen every change in `heads` (hex hashes)? */
function hasAll(doc, heads) {
  try {
    return A.hasHeads(doc, heads)
  } catch {
    return false
  }
}

// ---- commands -------------------------------------------------------------------

const commands = {
  async create(c) {
    const handle = repo.create(c.value === undefined ? {} : toAutomerge(c.value))
    handles.set(handle.documentId, handle)
    handle.on("change", notify)
    return { url: handle.url, ...snapshot(handle) }
  },

  async find(c) {
    return snapshot(await handleFor(c.doc, c.timeoutMs ?? 10000))
  },

  async change(c) {
    const handle = await handleFor(c.doc, c.timeoutMs ?? 10000)
    if (!Array.isArray(c.ops)) throw new CommandError("bad-command", "`ops` must be an array")
    handle.change(d => {
      for (const op of c.ops) applyOp(d, op)
    })
    return snapshot(handle)
  },

  /** Wait until the value at `path` equals `value`, and/or the doc contains `heads`. */
  async wait(c) {
    const timeoutMs = c.timeoutMs ?? 10000
    const started = Date.now()
    const handle = await handleFor(c.doc, timeoutMs)
    const left = Math.max(1, timeoutMs - (Date.now() - started))
    const wantValue = Array.isArray(c.path)
    const wantHeads = Array.isArray(c.heads)
    if (!wantValue && !wantHeads) throw new CommandError("bad-command", "wait needs `path` or `heads`")
    return until(
      () => {
        const doc = handle.doc()
        if (wantValue && !isDeepStrictEqual(toJson(at(doc, c.path)), c.value)) return undefined
        if (wantHeads && !hasAll(doc, c.heads)) return undefined
        return snapshot(handle)
      },
      left,
      () => {
        const doc = handle.doc()
        const parts = []
        if (wantValue) {
          parts.push(
            `${JSON.stringify(c.path)} is ${JSON.stringify(toJson(at(doc, c.path)) ?? null)}, not ${JSON.stringify(c.value)}`
          )
        }
        if (wantHeads) parts.push(`heads ${JSON.stringify(c.heads)} not all received (have ${JSON.stringify(A.getHeads(doc))})`)
        return parts.join("; ")
      }
    )
  },

  /**
   * Wait until the server has advertised, in a `sync` message, heads that include
   * `heads` (default: this client's current heads) — what a user would take as "saved".
   */
  async acked(c) {
    const timeoutMs = c.timeoutMs ?? 10000
    const handle = await handleFor(c.doc, timeoutMs)
    const target = c.heads ?? A.getHeads(handle.doc())
    return until(
      () => {
        const server = seen.serverHeads.get(handle.documentId)
        if (!server) return undefined
        const doc = handle.doc()
        if (target.length > 0) {
          if (server.length === 0 || !hasAll(doc, server)) return undefined
          // Acknowledged = every target change is an ancestor of (or one of) the
          // server's heads, i.e. none is among the changes since them. (Not
          // hasHeads on A.view(doc, server): that answers for the whole document.)
          const since = new Set(A.getChangesMetaSince(doc, server).map(c => c.hash))
          if (target.some(h => since.has(h))) return undefined
        }
        return { documentId: handle.documentId, heads: target, serverHeads: server }
      },
      timeoutMs,
      () =>
        `server did not acknowledge ${JSON.stringify(target)} (last advertised ${JSON.stringify(
          seen.serverHeads.get(handle.documentId) ?? null
        )})`
    )
  },

  /** Wait until the socket has been (re)opened at least `opens` times. */
  async connected(c) {
    const want = c.opens ?? 1
    return until(
      () => (seen.opens >= want ? { opens: seen.opens } : undefined),
      c.timeoutMs ?? 10000,
      () => `socket opened ${seen.opens} times, wanted ${want}`
    )
  },

  /** Drops the connection (a device losing signal): edits stay local until `online`. */
  async offline() {
    adapter.disconnect()
    return { online: false }
  },

  /** Reconnects after `offline`, as the adapter does after a lost connection. */
  async online(c) {
    const opens = seen.opens
    adapter.connect(repo.peerId, adapter.peerMetadata)
    return until(
      () => (seen.opens > opens && adapter.remotePeerId && repo.peers.length > 0 ? { online: true } : undefined),
      c.timeoutMs ?? 10000,
      () => "no connection to the server"
    )
  },

  async state(c) {
    const out = {
      peerId: repo.peerId,
      peers: repo.peers,
      received: seen.received,
      errors: seen.errors,
      closes: seen.closes,
      opens: seen.opens,
      socketErrors: seen.socketErrors,
    }
    if (c.doc !== undefined) {
      const known = handles.get(docIdOf(c.doc))
      if (known) Object.assign(out, snapshot(known))
    }
    return out
  },

  async close() {
    return { closing: true }
  },
}

// ---- the command loop ------------------------------------------------------------

function reply(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n")
}

let failed = 0
const pending = new Set()
let closing = false

async function run(line) {
  let c
  try {
    c = JSON.parse(line)
  } catch {
    failed += 1
    reply({ id: null, ok: false, error: "bad-command", message: `not JSON: ${line}` })
    return
  }
  const fn = commands[c.cmd]
  if (!fn) {
    failed += 1
    reply({ id: c.id ?? null, ok: false, error: "bad-command", message: `unknown cmd ${JSON.stringify(c.cmd)}` })
    return
  }
  try {
    const result = await fn(c)
    reply({ id: c.id ?? null, ok: true, ...result })
  } catch (e) {
    failed += 1
    const kind = e instanceof CommandError ? e.kind : "exception"
    reply({ id: c.id ?? null, ok: false, error: kind, message: String(e?.message ?? e) })
  }
  if (c.cmd === "close") closing = true
}

let shuttingDown = false
async function shutdown() {
  if (shuttingDown) return
  shuttingDown = true
  await Promise.allSettled([...pending])
  try {
    await repo.shutdown()
  } catch (e) {
    log("shutdown:", String(e))
  }
  process.exit(failed === 0 ? 0 : 1)
}

const lines = createInterface({ input: process.stdin })
lines.on("line", line => {
  if (line.trim() === "" || closing) return
  const p = run(line).finally(() => {
    pending.delete(p)
    if (closing) shutdown()
  })
  pending.add(p)
})
// End of input ends the script once its commands are answered: `echo ... | node
// client.mjs CONFIG` is the one-shot mode.
lines.on("close", () => {
  closing = true
  shutdown()
})
