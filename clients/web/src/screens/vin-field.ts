// A VIN input checked as core checks it (core/src/domain/vin.rs, through the shared
// vectors), with the camera's barcode detector where the browser has one.

import type { Ctx } from "../context"
import { parseVin, vinFromScan, type VinError } from "../domain/vin"
import { language } from "../i18n"
import { h } from "../ui"

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

/** A VIN input with its live check; `check()` shows the problem and focuses it. */
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
  const Detector = (globalThis as unknown as { BarcodeDetector?: new (o: unknown) => { detect(s: unknown): Promise<{ rawValue: string }[]> } }).BarcodeDetector
  const scan = Detector
    ? h("button", { type: "button", class: "chip", onclick: async () => {
        try {
          const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } })
          const video = h("video", { autoplay: true, playsinline: true }) as HTMLVideoElement
          video.srcObject = stream
          await video.play()
          const detector = new Detector({ formats: ["code_39", "code_128", "data_matrix", "qr_code"] })
          for (let i = 0; i < 100; i++) {
            const found = await detector.detect(video)
            const vin = vinFromScan(found.map(f => f.rawValue))
            if (vin) {
              input.value = vin
              break
            }
            await new Promise(r => setTimeout(r, 150))
          }
          stream.getTracks().forEach(t => t.stop())
          check()
        } catch {
          hint.textContent = language() === "zh" ? "✗ 无法打开相机，请手动输入车架号" : "✗ the camera could not be opened; type the VIN"
        }
      }, "aria-label": language() === "zh" ? "扫描车架号" : "scan the VIN", "data-scan": "vin" }, "📷")
    : null
  return { input, check, element: h("div", { class: "vin-field" }, h("div", { class: "row" }, input, scan), hint) }
}
