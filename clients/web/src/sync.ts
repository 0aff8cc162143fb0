// The app's automerge-repo: IndexedDB storage, the stock WebSocket client adapter to
// the relay's /sync, and what the status bar shows: online or not, the last message
// from the relay, and the changes the relay has not acknowledged yet.
//
// Acknowledged = the relay has sent a sync message whose heads include the change. The
// relay sends its heads only once a change is durable (docs/protocol.md, "Durable
// before acknowledged"), so a change counted here as acknowledged survives a relay
// crash. The relay's last heads are kept in localStorage, so the count is right after a
// reload with no network too.

import * as A from "@automerge/automerge/slim"
import { DocHandle, Repo, cbor, type AutomergeUrl, type DocumentId } from "@automerge/automerge-repo/slim"
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"
import { IndexedDBStorageAdapter } from "@automerge/automerge-repo-storage-indexeddb"
import { pendingChanges } from "./domain/periods"
import type { Enrolment } from "./enrol"

/** What the status bar shows. */
export interface SyncStatus {
  online: boolean
  lastSync: number | null
  unacked: number
  /** Of those, the changes in archives whose grace week is over: the relay no longer takes them. */
  closed: number
  error: string | null
}

const HEADS_KEY = "dealersync.serverHeads"
const LAST_SYNC_KEY = "dealersync.lastSync"

function loadHeads(): Record<string, string[]> {
  try {
    return JSON.parse(localStorage.getItem(HEADS_KEY) ?? "{}")
  } catch {
    return {}
  }
}

/** How long a WebSocket may take to open before another attempt replaces it. */
const OPENING_PATIENCE_MS = 30_000

/** The adapter, watching the relay's sync messages for its heads and `error` frames. */
class WatchedAdapter extends WebSocketClientAdapter {
  onServerHeads: (documentId: string, heads: string[]) => void = () => {}
  onError: (message: string) => void = () => {}
  onOpenClose: () => void = () => {}

  receiveMessage(bytes: Uint8Array) {
    try {
      const msg = cbor.decode(new Uint8Array(bytes)) as Record<string, unknown>
      if (msg?.type === "sync" && msg.data && typeof msg.documentId === "string") {
        const decoded = A.decodeSyncMessage(new Uint8Array(msg.data as Uint8Array))
        this.onServerHeads(msg.documentId, decoded.heads)
      }
      if (msg?.type === "error") this.onError(String(msg.message))
    } catch {
      // Not ours to judge: the stock adapter below reports malformed frames.
    }
    super.receiveMessage(bytes)
  }

  /** When the socket being opened was started; see `connect`. */
  private connectingSince = 0

  connect(peerId: never, peerMetadata?: never) {
    // The stock adapter opens a new socket every `retryInterval` until one opens, and
    // drops the one still opening without closing it. Over 2G a WebSocket takes longer
    // than that to open (TCP, TLS and the upgrade: four round trips of a second or
    // more), so every attempt would be replaced before it opened, for ever. A socket
    // still opening is given `OPENING_PATIENCE_MS`; one that took longer is closed.
    const old = this.socket
    if (old?.readyState === WebSocket.CONNECTING) {
      if (Date.now() - this.connectingSince < OPENING_PATIENCE_MS) return
    }
    super.connect(peerId, peerMetadata)
    if (old && old !== this.socket && old.readyState !== WebSocket.CLOSED) old.close()
    this.connectingSince = Date.now()
    this.socket?.addEventListener("open", () => this.onOpenClose())
    this.socket?.addEventListener("close", () => this.onOpenClose())
  }
}

/** The repo, the two documents, and the sync status. */
export class Sync {
  readonly repo: Repo
  private adapter: WatchedAdapter
  private serverHeads = loadHeads()
  private listeners = new Set<() => void>()
  private handles = new Map<string, DocHandle<unknown>>()
  /** Documents held but no longer synced (archives past their grace week). */
  private unshared = new Set<string>()
  lastError: string | null = null

  constructor(readonly enrolment: Enrolment) {
    const url = new URL("/sync", location.href)
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:"
    url.searchParams.set("token", enrolment.token)
    this.adapter = new WatchedAdapter(url.toString(), 3000)
    this.adapter.onServerHeads = (id, heads) => {
      this.serverHeads[id] = heads
      localStorage.setItem(HEADS_KEY, JSON.stringify(this.serverHeads))
      localStorage.setItem(LAST_SYNC_KEY, String(Date.now()))
      this.notify()
    }
    this.adapter.onError = m => {
      this.lastError = m
      this.notify()
    }
    this.adapter.onOpenClose = () => this.notify()
    this.repo = new Repo({
      storage: new IndexedDBStorageAdapter("dealersync"),
      network: [this.adapter],
      // Every document is offered to the relay but the archives closed for changes.
      shareConfig: {
        announce: async (_peer, documentId) => !this.unshared.has(documentId ?? ""),
        access: async (_peer, documentId) => !this.unshared.has(documentId),
      },
    })
    // A phone that loses its network says so; the socket would otherwise wait for a
    // keepalive to notice. It reconnects as soon as the network is back.
    addEventListener("offline", () => {
      this.adapter.disconnect()
      this.notify()
    })
    addEventListener("online", () => {
      if (this.adapter.socket?.readyState !== WebSocket.OPEN) this.adapter.connect(this.repo.peerId as never, this.adapter.peerMetadata as never)
      this.notify()
    })
    if (!navigator.onLine) queueMicrotask(() => this.adapter.disconnect())
  }

  /**
   * A document by its bare id, from IndexedDB or the relay. One not on the phone yet
   * waits for the relay when `waiting` is given (called once, to say so), and fails
   * at once otherwise: the stock adapter calls itself ready one second after it starts,
   * answered or not, and over a slow link (2G, a village on a roadshow) the relay
   * answers later than that, so "unavailable" then only means "not yet".
   */
  async open<T>(documentId: string, waiting?: () => void): Promise<DocHandle<T>> {
    const url = `automerge:${documentId}` as AutomergeUrl
    const handle = await this.repo.find<T>(url, { allowableStates: ["ready", "unavailable"] })
    if (!handle.isReady()) {
      if (!waiting) throw new Error(`Document ${documentId} is not on this phone`)
      waiting()
      // The handle turns ready when a peer sends the document; `whenReady` gives up
      // after its own timeout, so ask again until it does.
      while (!handle.isReady()) await handle.whenReady(["ready"]).catch(() => undefined)
    }
    handle.on("change", () => this.notify())
    this.handles.set(documentId, handle as DocHandle<unknown>)
    return handle
  }

  /** Stops syncing a document and lets it go from memory (it stays in IndexedDB). */
  async close(documentId: string): Promise<void> {
    if (!this.handles.delete(documentId)) return
    this.unshared.delete(documentId)
    delete this.serverHeads[documentId]
    localStorage.setItem(HEADS_KEY, JSON.stringify(this.serverHeads))
    await this.repo.removeFromCache(documentId as DocumentId)
    this.notify()
  }

  /** Keeps a document on the phone, counted, without offering it to the relay any more. */
  stopSharing(documentId: string) {
    if (this.unshared.has(documentId)) return
    this.unshared.add(documentId)
    this.repo.shareConfigChanged()
    this.notify()
  }

  /** Changes to an open document the relay has not acknowledged; null when it is not open. */
  pending(documentId: string): number | null {
    const doc = this.handles.get(documentId)?.doc()
    return doc ? pendingChanges(doc as A.Doc<unknown>, this.serverHeads[documentId] ?? []) : null
  }

  /** Calls `f` whenever a document or the status changes. */
  subscribe(f: () => void): () => void {
    this.listeners.add(f)
    return () => this.listeners.delete(f)
  }

  private notify() {
    for (const f of this.listeners) f()
  }

  /** Saves pending changes to IndexedDB now (before a tab is closed). */
  flush(): Promise<void> {
    return this.repo.flush()
  }

  /** Online, last sync, unacknowledged changes. */
  status(): SyncStatus {
    // Every open document: the working one, the network document and the archives
    // left at a carry-over that still hold changes of this phone.
    let unacked = 0
    let closed = 0
    for (const id of this.handles.keys()) {
      const n = this.pending(id) ?? 0
      unacked += n
      if (this.unshared.has(id)) closed += n
    }
    const last = localStorage.getItem(LAST_SYNC_KEY)
    return {
      // The socket open and the relay answered (the adapter's own "ready" also turns true
      // when the first attempt gives up, so it does not say online).
      online: navigator.onLine && this.adapter.socket?.readyState === WebSocket.OPEN && this.adapter.remotePeerId !== undefined,
      lastSync: last ? Number(last) : null,
      unacked,
      closed,
      error: this.lastError,
    }
  }
}
