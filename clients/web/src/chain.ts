// The site's chain of monthly documents on this phone (docs/growth.md): the working
// document the app writes, named by the site's header in the network document once the
// relay has carried the site over, and the archives it left that still hold changes the
// relay has not acknowledged. An archive is synced until the relay has them (then let
// go) or its grace week ends (then kept, counted, not synced: the relay would refuse
// them). What to do is decided by domain/periods.ts; this module opens and persists.

import type { DocHandle } from "@automerge/automerge-repo/slim"
import { archiveClosed, archiveState, followChain, type HeldArchive, type HeldChain } from "./domain/periods"
import type { NetworkDoc, SiteDoc } from "./domain/schema"
import type { Enrolment } from "./enrol"
import type { Sync } from "./sync"

const KEY = "dealersync.siteChain"

function stored(enrolment: Enrolment): HeldChain {
  try {
    const held = JSON.parse(localStorage.getItem(KEY) ?? "null") as HeldChain | null
    if (held && held.site === enrolment.site && typeof held.document === "string" && Array.isArray(held.archives)) return held
  } catch {
    // A damaged entry: start again from the enrolment (the header will be followed).
  }
  return { site: enrolment.site, document: enrolment.siteDocumentId, archives: [] }
}

/** The working document and the archives of the enrolled site. */
export class SiteChain {
  private held: HeldChain
  private reviewing = false
  private moving = false

  private constructor(
    private readonly sync: Sync,
    private network: DocHandle<NetworkDoc> | null,
    /** The working document open now. */
    public site: DocHandle<SiteDoc>,
    held: HeldChain,
    private readonly onMove: (site: DocHandle<SiteDoc>) => void,
  ) {
    this.held = held
  }

  /**
   * Opens the site's working document: the one the network document on the phone names
   * (else the one held, else the enrolment's), and the archives still held. Then follows
   * the header as it changes, calling `onMove` with the new working document. A site
   * document not on the phone yet is waited for (`waiting` is called once, to say so).
   */
  static async open(
    sync: Sync,
    enrolment: Enrolment,
    network: DocHandle<NetworkDoc> | null,
    onMove: (site: DocHandle<SiteDoc>) => void,
    waiting: () => void,
  ): Promise<SiteChain> {
    let held = stored(enrolment)
    let site: DocHandle<SiteDoc> | null = null
    const next = network ? followChain(held, network.doc()) : null
    if (next) {
      // Not on the phone and no network: keep working in the document held (an archive
      // takes changes through its grace week); the header is followed once online.
      site = await sync.open<SiteDoc>(next.document).catch(() => null)
      if (site) held = next
    }
    site ??= await sync.open<SiteDoc>(held.document, waiting)
    const chain = new SiteChain(sync, network, site, held, onMove)
    chain.save()
    // The archives are for handing changes in and counting them, not for the first screen.
    for (const a of held.archives) {
      // (Not offered from the start if closed: the relay would refuse its changes.)
      if (archiveClosed(a, Date.now())) sync.stopSharing(a.document)
      sync.open(a.document).then(() => chain.review(), e => console.warn(`archive ${a.document}:`, e))
    }
    // On every change of a document or of the status: the network document's header
    // followed (a move that failed with no network is tried again once online), and
    // archives let go as the relay acknowledges their changes.
    sync.subscribe(() => {
      chain.review()
      void chain.follow()
    })
    chain.review()
    return chain
  }

  /** The network document, when it reached the phone after the chain was opened. */
  takeNetwork(network: DocHandle<NetworkDoc>) {
    this.network = network
    void this.follow()
  }

  /** The archives still held (for support and the end-to-end test). */
  archives(): HeldArchive[] {
    return this.held.archives.map(a => ({ ...a }))
  }

  private save() {
    localStorage.setItem(KEY, JSON.stringify(this.held))
  }

  /** Moves to the working document the header names, if another; one move at a time. */
  private async follow() {
    if (this.moving || !this.network) return
    const next = followChain(this.held, this.network.doc())
    if (!next) return
    this.moving = true
    let site: DocHandle<SiteDoc>
    try {
      site = await this.sync.open<SiteDoc>(next.document)
    } catch (e) {
      // Unavailable right now (no connection): tried again on the next status change.
      console.warn(`working document ${next.document}:`, e)
      return
    } finally {
      this.moving = false
    }
    // Archives may have been let go while it opened: move from what is held now (and
    // if the header moved on meanwhile, the next status change follows it).
    const moved = followChain(this.held, this.network.doc())
    if (!moved || moved.document !== next.document) return
    this.held = moved
    this.site = site
    this.save()
    this.onMove(site)
    this.review()
  }

  /** Lets go of the archives the relay has every change of; stops offering those closed. */
  private review() {
    if (this.reviewing) return
    this.reviewing = true
    try {
      const now = Date.now()
      const keep: HeldArchive[] = []
      for (const a of this.held.archives) {
        const pending = this.sync.pending(a.document)
        // Not open (never stored on this phone, or still loading): keep it for later.
        if (pending === null) {
          keep.push(a)
          continue
        }
        const state = archiveState(a, pending, now)
        if (state === "handed_in") {
          void this.sync.close(a.document)
          continue
        }
        if (state === "closed") this.sync.stopSharing(a.document)
        keep.push(a)
      }
      if (keep.length !== this.held.archives.length) {
        this.held = { ...this.held, archives: keep }
        this.save()
      }
    } finally {
      this.reviewing = false
    }
  }
}
