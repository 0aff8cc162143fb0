// What every screen gets: the enrolment, the two documents and a way to write. The
// site's document is the working one of its chain (chain.ts): every read and write
// goes through `site` at the time it is made, so a carry-over moves them all.

import type { DocHandle } from "@automerge/automerge-repo/slim"
import { DomainError, type Actor, type Mutation } from "./domain/ops"
import type { NetworkDoc, SiteDoc } from "./domain/schema"
import type { Enrolment } from "./enrol"
import { language, t } from "./i18n"
import type { Sync } from "./sync"
import { toast } from "./ui"

/** What a refusal means, in Chinese; core's own words follow in brackets. */
const REFUSAL_ZH: Record<string, string> = {
  InvalidPhone: "电话号码不对",
  InvalidVin: "车架号不对",
  UnknownModel: "车型不在目录里",
  UnknownCustomer: "找不到这位客户",
  MergedCustomer: "这位客户已合并到另一条记录",
  CustomerExists: "客户已存在",
  UnknownVehicle: "本店没有这辆车",
  IllegalCustomerTransition: "客户状态不能这样改",
  IllegalVehicleTransition: "这辆车当前的状态不能这样操作",
  WrongVehicleAction: "这辆车当前的状态不能这样操作",
  DiscountNotApproved: "折扣超出您的权限，需经理批准",
  NegativeQuantity: "数量或金额不能为负",
  MalformedMonth: "月份格式不对",
  UnknownSite: "网络里没有这个网点",
  VehicleExists: "这辆车已在本店的库存里",
  Invalid: "输入有误",
}

/** A document as plain JSON: scalar strings as strings, counters and unsigned integers as numbers. */
export function plainJson(doc: unknown): unknown {
  return JSON.parse(JSON.stringify(doc, (_k, v) => (typeof v === "bigint" ? Number(v) : v)))
}

/** The app's state as the screens see it. */
export class Ctx {
  constructor(
    readonly enrolment: Enrolment,
    readonly sync: Sync,
    /** The site's working document; replaced when the relay carries the site over into a new month (`SiteChain`). */
    public site: DocHandle<SiteDoc>,
    readonly network: DocHandle<NetworkDoc> | null,
  ) {}

  /** The site document as automerge holds it (for the domain module). */
  doc(): SiteDoc {
    return this.site.doc() as SiteDoc
  }

  /** The site document as plain JSON (scalar strings as strings), for display. */
  plain(): SiteDoc {
    return plainJson(this.site.doc()) as SiteDoc
  }

  /** The network document (catalogue, discount limits), empty until it is on the phone. */
  net(): NetworkDoc {
    const n = this.network?.doc()
    return n ? (plainJson(n) as NetworkDoc) : { models: {} }
  }

  /** Who acts, now. */
  actor(): Actor {
    return { by: this.enrolment.sub, role: this.enrolment.role, now: Date.now() }
  }

  /**
   * Validates and writes one operation (`make` throws a DomainError when the core's
   * rules refuse it), then saves to IndexedDB at once. Returns whether it was written;
   * a refusal is shown to the consultant as the core words it.
   */
  async write(make: (doc: SiteDoc, who: Actor) => Mutation, done?: string): Promise<boolean> {
    let m: Mutation
    try {
      m = make(this.doc(), this.actor())
    } catch (e) {
      if (e instanceof DomainError) {
        const why = language() === "zh" ? REFUSAL_ZH[e.kind] : undefined
        toast(`${t("refused")}: ${why ? `${why}（${e.message}）` : e.message}`, "error")
        return false
      }
      throw e
    }
    this.site.change(d => m.apply(d as SiteDoc), { message: m.message, time: m.time })
    await this.sync.flush()
    if (done) toast(done)
    return true
  }
}
