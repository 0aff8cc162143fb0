// VIN rules, as core/src/domain/vin.rs: 17 characters of 0-9 and A-Z without I, O, Q;
// trimmed and upper-cased; check digit at position 9 (ISO 3779 / GB 16735) enforced
// unless the policy says to ignore it. core/vectors/vin.json keeps the two equal.

/** How the check digit at position 9 is treated (default: enforce). */
export type CheckDigitPolicy = "enforce" | "ignore"

/** What is wrong with a VIN; positions are 1-based, as printed on the vehicle. */
export type VinError =
  | { kind: "length"; len: number }
  | { kind: "forbidden_letter"; ch: string; position: number }
  | { kind: "bad_character"; ch: string; position: number }
  | { kind: "check_digit"; expected: string; found: string }

const WEIGHTS = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2]

function value(c: string): number {
  if (c >= "0" && c <= "9") return c.charCodeAt(0) - 48
  if (c >= "A" && c <= "H") return c.charCodeAt(0) - 64
  if (c >= "J" && c <= "N") return c.charCodeAt(0) - 73
  if (c === "P") return 7
  if (c === "R") return 9
  if (c >= "S" && c <= "Z") return c.charCodeAt(0) - 81
  return 0
}

/** The check digit of a 17-character VIN of allowed characters. */
export function checkDigit(vin: string): string {
  let sum = 0
  for (let i = 0; i < 17; i++) sum += value(vin[i]) * WEIGHTS[i]
  const n = sum % 11
  return n === 10 ? "X" : String(n)
}

/** Rust's `{:?}` of a char, for messages equal to core's. */
export function debugChar(ch: string): string {
  if (ch === "'") return "'\\''"
  if (ch === "\\") return "'\\\\'"
  return `'${ch}'`
}

/** core's message for a VIN error (English; the UI translates by kind). */
export function vinErrorMessage(e: VinError): string {
  switch (e.kind) {
    case "length":
      return `a VIN has 17 characters, this one has ${e.len}`
    case "forbidden_letter":
      return `character ${debugChar(e.ch)} at position ${e.position} is not allowed in a VIN (I, O and Q are never used)`
    case "bad_character":
      return `character ${debugChar(e.ch)} at position ${e.position} is not a digit or letter A-Z`
    case "check_digit":
      return `check digit at position 9 is ${debugChar(e.found)} but the VIN's other characters give ${debugChar(e.expected)}`
  }
}

/** Validates a VIN: the stored form, or what is wrong. */
export function parseVin(
  input: string,
  policy: CheckDigitPolicy = "enforce",
): { ok: true; vin: string } | { ok: false; error: VinError } {
  // Rust's to_ascii_uppercase leaves non-ASCII letters alone.
  const vin = input.trim().replace(/[a-z]/g, c => c.toUpperCase())
  const chars = Array.from(vin)
  if (chars.length !== 17) return { ok: false, error: { kind: "length", len: chars.length } }
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]
    if (ch === "I" || ch === "O" || ch === "Q")
      return { ok: false, error: { kind: "forbidden_letter", ch, position: i + 1 } }
    if (!/^[0-9A-Z]$/.test(ch)) return { ok: false, error: { kind: "bad_character", ch, position: i + 1 } }
  }
  if (policy === "enforce") {
    const expected = checkDigit(vin)
    if (vin[8] !== expected) return { ok: false, error: { kind: "check_digit", expected, found: vin[8] } }
  }
  return { ok: true, vin }
}

/**
 * The VIN among the texts a barcode scan decoded (a door-pillar label often carries
 * other codes too), checked as typed VINs are: the first that passes the check,
 * normalised; null when none does, so a misread never fills the field.
 */
export function vinFromScan(decoded: string[]): string | null {
  for (const text of decoded) {
    const p = parseVin(text)
    if (p.ok) return p.vin
  }
  return null
}
