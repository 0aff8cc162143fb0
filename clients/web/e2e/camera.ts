// A camera for the VIN scan in headless Chromium, which has neither a camera nor a
// barcode detector: Chromium's fake capture device plays a Y4M file in which VIN labels
// are printed as Code 39 barcodes (what a VIN plate on a door pillar carries), and the
// page is given a `BarcodeDetector` that decodes Code 39 from the video frames it is
// handed. So the app's path runs for real — the 📷 button, getUserMedia, the live
// preview, frames into the detector, the decoded texts through the VIN check, the field
// filled — but the decoder is this file's, not the phone's (Chrome on Android's).

import { writeFileSync } from "node:fs"

/** Code 39: each character is 5 bars and 4 spaces, alternating (here 1 = narrow,
 *  2 = wide; three of the nine are wide), followed by a narrow gap; `*` starts and
 *  ends the code. */
const CODE39: Record<string, string> = {
  "0": "111221211", "1": "211211112", "2": "112211112", "3": "212211111", "4": "111221112",
  "5": "211221111", "6": "112221111", "7": "111211212", "8": "211211211", "9": "112211211",
  A: "211112112", B: "112112112", C: "212112111", D: "111122112", E: "211122111",
  F: "112122111", G: "111112212", H: "211112211", I: "112112211", J: "111122211",
  K: "211111122", L: "112111122", M: "212111121", N: "111121122", O: "211121121",
  P: "112121121", Q: "111111222", R: "211111221", S: "112111221", T: "111121221",
  U: "221111112", V: "122111112", W: "222111111", X: "121121112", Y: "221121111",
  Z: "122121111", "-": "121111212", ".": "221111211", " ": "122111211", "*": "121121211",
}

const [W, H, NARROW, WIDE] = [1280, 720, 3, 8]

/** The bar widths (pixels) of `text` as Code 39: bar, space, bar, ... */
function bars(text: string): number[] {
  const out: number[] = []
  for (const ch of `*${text}*`) {
    const p = CODE39[ch]
    if (!p) throw new Error(`no Code 39 for ${JSON.stringify(ch)}`)
    if (out.length > 0) out.push(NARROW) // the gap between characters (a space)
    for (const w of p) out.push(w === "2" ? WIDE : NARROW)
  }
  return out
}

/**
 * Writes a Y4M video (two identical frames, which Chromium loops) of `labels`, one
 * Code 39 barcode per horizontal band, top to bottom, black on white.
 */
export function writeVinLabels(path: string, labels: string[]) {
  const y = Buffer.alloc(W * H, 235) // white (BT.601 video range)
  const band = Math.floor(H / labels.length)
  labels.forEach((text, i) => {
    const widths = bars(text)
    const total = widths.reduce((a, b) => a + b, 0)
    if (total > W - 40) throw new Error(`${text} does not fit in ${W} px`)
    let x = Math.floor((W - total) / 2)
    widths.forEach((w, k) => {
      if (k % 2 === 0)
        for (let row = i * band + band * 0.2; row < (i + 1) * band - band * 0.2; row++) y.fill(16, Math.floor(row) * W + x, Math.floor(row) * W + x + w)
      x += w
    })
  })
  const chroma = Buffer.alloc((W / 2) * (H / 2) * 2, 128)
  const frame = Buffer.concat([Buffer.from("FRAME\n"), y, chroma])
  writeFileSync(path, Buffer.concat([Buffer.from(`YUV4MPEG2 W${W} H${H} F10:1 Ip A1:1 C420jpeg\n`), frame, frame]))
}

/**
 * The page's `BarcodeDetector`, as a script for `addInitScript` (plain JavaScript
 * source, so that no transpiler helper is needed in the page): it decodes the Code 39
 * barcodes in a frame of the video it is handed, one scan line through the middle of
 * each band the labels may be printed in, and logs each call's texts in
 * `window.__scans` for the test. No frame (a video not playing yet), no texts; none
 * either until the test sets `window.__scanGo`, so the preview can be looked at first.
 */
export function fakeBarcodeDetector(): string {
  return `(() => {
  const byPattern = new Map(Object.entries(${JSON.stringify(CODE39)}).map(([ch, p]) => [p, ch]))
  const scans = []
  window.__scans = scans
  // The Code 39 text on one row of grey levels, or null.
  const decodeRow = grey => {
    const lo = Math.min(...grey), hi = Math.max(...grey)
    if (hi - lo < 60) return null
    const dark = grey.map(g => g < (lo + hi) / 2)
    let i = dark.indexOf(true)
    const last = dark.lastIndexOf(true)
    if (i < 0) return null
    const runs = []
    while (i <= last) {
      let n = 0
      const v = dark[i]
      while (i <= last && dark[i] === v) { n++; i++ }
      runs.push(n)
    }
    let text = ""
    for (let k = 0; k + 9 <= runs.length; k += 10) {
      const chunk = runs.slice(k, k + 9)
      const wide = [...chunk].sort((a, b) => b - a)[2] // the three widest are the wide ones
      const ch = byPattern.get(chunk.map(w => (w >= wide ? "2" : "1")).join(""))
      if (ch === undefined) return null
      text += ch
    }
    return text.length >= 3 && text.startsWith("*") && text.endsWith("*") ? text.slice(1, -1) : null
  }
  window.BarcodeDetector = class {
    static async getSupportedFormats() { return ["code_39"] }
    constructor(_options) {}
    async detect(video) {
      if (!(video instanceof HTMLVideoElement) || video.readyState < 2 || video.videoWidth === 0) return []
      if (!window.__scanGo) return []
      const canvas = document.createElement("canvas")
      canvas.width = video.videoWidth
      canvas.height = video.videoHeight
      const g = canvas.getContext("2d", { willReadFrequently: true })
      g.drawImage(video, 0, 0)
      const texts = []
      for (const bands of [1, 2, 3, 4]) {
        for (let b = 0; b < bands; b++) {
          const row = Math.floor(((b + 0.5) * canvas.height) / bands)
          const px = g.getImageData(0, row, canvas.width, 1).data
          const grey = []
          for (let x = 0; x < px.length; x += 4) grey.push((px[x] + px[x + 1] + px[x + 2]) / 3)
          const text = decodeRow(grey)
          if (text !== null && !texts.includes(text)) texts.push(text)
        }
      }
      scans.push(texts)
      return texts.map(rawValue => ({ rawValue, format: "code_39" }))
    }
  }
})()`
}
