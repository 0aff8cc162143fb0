// Writes automerge documents with the app's domain module, for core to read back
// (tests/tests/web_domain.rs): the day of core/vectors/site-day.json and the care steps
// of core/vectors/care.json replayed on their initial documents, and the conflicts of
// core/vectors/conflicts.json resolved.
//
//   node --import tsx scripts/write-vector-docs.ts OUT_DIR
//
// Writes OUT_DIR/site-day.automerge, OUT_DIR/care.automerge and
// OUT_DIR/conflicts-resolved.automerge.

import "@automerge/automerge"
import * as A from "@automerge/automerge/slim"
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { detectConflicts } from "../src/domain/conflicts"
import { Step, fromHex, runSteps } from "../test/interpret"

const out = process.argv[2]
if (!out) {
  process.stderr.write("usage: write-vector-docs.ts OUT_DIR\n")
  process.exit(2)
}
const vector = (name: string) => JSON.parse(readFileSync(new URL(`../../../core/vectors/${name}`, import.meta.url), "utf8"))

const day = vector("site-day.json")
const written = runSteps(A.load(fromHex(day.initial)), day.network, day.steps as Step[])
writeFileSync(join(out, "site-day.automerge"), A.save(written))

const care = vector("care.json")
writeFileSync(join(out, "care.automerge"), A.save(runSteps(A.load(fromHex(care.initial)), care.network, care.steps as Step[])))

const c = vector("conflicts.json")
const resolved = runSteps(A.load(fromHex(c.merged)), c.network, c.resolutions as Step[])
if (detectConflicts(resolved as never).length !== 0) throw new Error("the app still lists conflicts after resolving")
writeFileSync(join(out, "conflicts-resolved.automerge"), A.save(resolved))
process.stdout.write(JSON.stringify({ ok: true }) + "\n")
