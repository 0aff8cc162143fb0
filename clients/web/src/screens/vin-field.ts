// A VIN input checked as core checks it (core/src/domain/vin.rs, through the shared
// vectors), with the camera's barcode detector where the browser has one.

import type { Ctx } from "../context"
import { parseVin, vinFromScan, type VinError } from "../domain/vin"
import { language, t } from "../i18n"
import { h, sheet } from "../ui"

/** What is wrong with a VIN, in the consultant's language. */
export function vinProblem(e: VinError): string {
  const zh = language() === "zh"
  switch (e.kind) {
    case "length":
      return zh ? `车架号是 17 位，这里是 ${e.len} 位` : `a VIN has 17 characters, this one has ${e.len}`
    case "forbidden_letter":
      return zh ? `第 ${e.position} 位的 ${e.ch} 不会出现在车架号里（没有 I、O、Q）` : `'${e.ch}' at position ${e.position} is never used in a VIN (no I, O, Q)`
    case "bad_character":
      return zh ? `第 ${e.position} 位的 “${e.ch}” 不是数字或字母` : `'${e.ch}' at position ${e.position} is not a digit or letter`
    case "check_digit":
      return zh ? `校验位（第 9 位）应为 ${e.expected}，输入的是 ${e.found}：可能有字抄错了` : `check digit (position 9) should be ${e.expected}, not ${e.found}: a character is probably mistyped`
  }
}

type Detected = { rawValue: string }
type DetectorClass = new (o: { formats: string[] }) => { detect(source: HTMLVideoElement): Promise<Detected[]> }

/** The browser's barcode detector (Chrome on Android has one), or undefined. */
function barcodeDetector(): DetectorClass | undefined {
  const d = (globalThis as unknown as { BarcodeDetector?: DetectorClass }).BarcodeDetector
  return d && typeof navigator.mediaDevices?.getUserMedia === "function" ? d : undefined
}

/** The symbologies VIN labels carry: Code 39 on the door pillar, Code 128, Data
 *  Matrix or QR on stickers and papers. */
const VIN_FORMATS = ["code_39", "code_128", "data_matrix", "qr_code"]
/** How long the camera looks for a VIN before giving up. */
const SCAN_MS = 30_000

type ScanResult = { vin: string } | { failed: "cancelled" | "timeout" | "camera" }

/** Whether the camera sheet is open: a card under it must not be drawn again meanwhile,
 *  or the VIN would be filled into a field no longer on screen. */
export const scanning = () => document.querySelector(".form.scan") !== null

/**
 * Scans a VIN with the rear camera: a sheet shows what the camera sees (so it can be
 * aimed) until a decoded text passes the VIN check — a misread, or another barcode,
 * never fills anything —, the consultant cancels, or `SCAN_MS` pass.
 */
function scanVin(Detector: DetectorClass): Promise<ScanResult> {
  return new Promise(resolve => {
    let stream: MediaStream | null = null
    let over = false
    const video = h("video", { autoplay: true, playsinline: true, muted: true, class: "scan-video" }) as HTMLVideoElement
    const status = h("p", { class: "hint", "data-scan-status": "" }, t("scanAim"))
    const finish = (r: ScanResult) => {
      if (over) return
      over = true
      stream?.getTracks().forEach(track => track.stop())
      close()
      resolve(r)
    }
    const close = sheet(t("scanTitle"), h("div", { class: "form scan" }, video, status,
      h("div", { class: "actions" }, h("button", { type: "button", onclick: () => finish({ failed: "cancelled" }) }, t("cancel")))),
    () => finish({ failed: "cancelled" }))
    void (async () => {
      try {
        stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false })
        if (over) return stream.getTracks().forEach(track => track.stop())
        video.muted = true
        video.srcObject = stream
        await video.play()
        const detector = new Detector({ formats: VIN_FORMATS })
        const end = Date.now() + SCAN_MS
        while (!over && Date.now() < end) {
          const texts = (await detector.detect(video)).map(d => d.rawValue)
          const vin = vinFromScan(texts)
          if (vin) return finish({ vin })
          // Something was read that is not a VIN: say so, keep looking.
          if (texts.length > 0) status.textContent = `${t("scanNotVin")}: ${texts[0].slice(0, 30)}`
          await new Promise(r => setTimeout(r, 150))
        }
        finish({ failed: "timeout" })
      } catch {
        finish({ failed: "camera" })
      }
    })()
  })
}

/** A VIN input with its live check; `check()` shows the problem and focuses it.
 *  Where the browser has a barcode detector, 📷 beside it scans the VIN label. */
export function vinField(_ctx: Ctx) {
  const input = h("input", { name: "vin", autocomplete: "off", autocapitalize: "characters", spellcheck: "false", maxlength: 20, class: "mono" }) as HTMLInputElement
  const hint = h("small", { class: "hint" })
  const check = () => {
    const p = parseVin(input.value)
    hint.textContent = input.value.trim() === "" ? "" : p.ok ? `✓ ${p.vin}` : `✗ ${vinProblem(p.error)}`
    hint.className = `hint ${p.ok ? "good" : "bad"}`
    if (!p.ok) input.focus()
  }
  input.addEventListener("input", () => {
    const p = parseVin(input.value)
    hint.textContent = input.value.trim() === "" ? "" : p.ok ? `✓ ${p.vin}` : Array.from(input.value.trim()).length < 17 ? "" : `✗ ${vinProblem(p.error)}`
    hint.className = `hint ${p.ok ? "good" : "bad"}`
  })
  const scan = scanButton(vin => {
    input.value = vin
    check()
  }, failed => {
    hint.textContent = `✗ ${failed}`
    hint.className = "hint bad"
  })
  return { input, check, element: h("div", { class: "vin-field" }, h("div", { class: "row" }, input, scan), hint) }
}

/** The 📷 button that scans a VIN into `onVin` (`onFail` gets what went wrong, in the
 *  consultant's language); null where the browser has no barcode detector. */
export function scanButton(onVin: (vin: string) => void, onFail: (message: string) => void): HTMLElement | null {
  const Detector = barcodeDetector()
  if (!Detector) return null
  return h("button", { type: "button", class: "chip scan", "aria-label": t("scanVin"), "data-scan": "vin", onclick: async () => {
    const r = await scanVin(Detector)
    if ("vin" in r) onVin(r.vin)
    else if (r.failed !== "cancelled") onFail(t(r.failed === "timeout" ? "scanTimeout" : "cameraFailed"))
  } }, "📷")
}
