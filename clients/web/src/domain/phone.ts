// Chinese phone numbers normalised to E.164, as core/src/domain/phone.rs
// (core/vectors/phone.json keeps the two equal).

import { debugChar } from "./vin"

/** What is wrong with a phone number. */
export type PhoneError =
  | { kind: "empty" }
  | { kind: "bad_character"; ch: string; position: number }
  | { kind: "mobile"; digits: number; prefix: string }
  | { kind: "landline"; area: string; expected: string; found: number }
  | { kind: "local_prefix"; area: string; first: string }
  | { kind: "unrecognised" }

/** core's message for a phone error. */
export function phoneErrorMessage(e: PhoneError): string {
  switch (e.kind) {
    case "empty":
      return "no digits"
    case "bad_character":
      return `character ${debugChar(e.ch)} at position ${e.position} is not a digit or separator`
    case "mobile":
      return `a mobile number is 11 digits starting 13-19, this has ${e.digits} digits starting ${e.prefix}`
    case "landline":
      return `landline with area code ${e.area} needs a ${e.expected}-digit local number, found ${e.found} digits`
    case "local_prefix":
      return `local number after area code ${e.area} cannot start with ${e.first}`
    case "unrecognised":
      return "not a Chinese mobile (1[3-9] + 9 digits) or landline with area code (0 + area code + number)"
  }
}

// Rust's str::trim: Unicode White_Space (JS's \s adds U+FEFF, which Rust keeps).
const WS = "\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
const TRIM_START = new RegExp(`^[${WS}]+`)
const TRIM_END = new RegExp(`[${WS}]+$`)

/** Normalises a Chinese mobile or landline to `+86…`, or says what is wrong. */
export function normalisePhone(input: string): { ok: true; phone: string } | { ok: false; error: PhoneError } {
  const err = (error: PhoneError) => ({ ok: false as const, error })
  const start = input.replace(TRIM_START, "")
  const skipped = Array.from(input).length - Array.from(start).length
  const trimmed = start.replace(TRIM_END, "")
  let digits = ""
  let plus = false
  const chars = Array.from(trimmed)
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]
    if (ch >= "0" && ch <= "9") digits += ch
    else if (" -.()".includes(ch)) continue
    else if (ch === "+" && digits === "" && !plus) plus = true
    else return err({ kind: "bad_character", ch, position: skipped + i + 1 })
  }
  if (digits === "") return err({ kind: "empty" })
  const afterCc = (rest: string) => (rest.length === 11 && rest.startsWith("1") ? rest : `0${rest.replace(/^0+/, "")}`)
  let national: string
  if (plus) {
    if (!digits.startsWith("86")) return err({ kind: "unrecognised" })
    national = afterCc(digits.slice(2))
  } else if (digits.startsWith("0086")) {
    national = afterCc(digits.slice(4))
  } else if (digits.length === 13 && digits.startsWith("861")) {
    national = digits.slice(2)
  } else {
    national = digits
  }
  if (national.startsWith("1")) {
    if (!(national.length === 11 && national[1] >= "3" && national[1] <= "9"))
      return err({ kind: "mobile", digits: national.length, prefix: national.slice(0, 2) })
    return { ok: true, phone: `+86${national}` }
  }
  if (national.startsWith("0") && national.length > 1 && national[1] !== "0") {
    const short = national.startsWith("010") || national.startsWith("02")
    const [areaLen, expected, lens] = short ? [3, "8", [8]] : [4, "7 or 8", [7, 8]]
    if (national.length <= areaLen) return err({ kind: "unrecognised" })
    const area = national.slice(0, areaLen)
    const local = national.slice(areaLen)
    if (!lens.includes(local.length)) return err({ kind: "landline", area, expected, found: local.length })
    if (local[0] === "0" || local[0] === "1") return err({ kind: "local_prefix", area, first: local[0] })
    return { ok: true, phone: `+86${national.slice(1)}` }
  }
  return err({ kind: "unrecognised" })
}
