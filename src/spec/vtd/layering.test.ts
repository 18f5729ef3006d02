import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

const src = new URL("../..", import.meta.url).pathname;

function files(dir: string): string[] {
  return readdirSync(join(src, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith(".ts") && !e.name.endsWith(".test.ts"))
    .map((e) => join(e.parentPath, e.name));
}

/** os/tour.ts builds a whole machine to tell its stories; the driver itself reaches hardware only through MMIO and memory. */
const MACHINE_BUILDERS = new Set(["tour.ts"]);

test("the simulated kernel (os/) does not import the hardware model (hw/)", () => {
  const offenders = files("os")
    .filter((f) => !MACHINE_BUILDERS.has(f.slice(f.lastIndexOf("/") + 1)))
    .filter((f) => /from "\.\.\/hw\//.test(readFileSync(f, "utf8")));
  assert.deepEqual(offenders, []);
});

test("os/, forensics/ and host/ take VT-d register layouts from spec/vtd, never from hw/vtd's private constants", () => {
  const offenders = ["os", "forensics", "host"]
    .flatMap(files)
    .filter((f) => /from "\.\.\/hw\/vtd\/(registers|faults|regfile|config|unit)\.js"/.test(readFileSync(f, "utf8")) && !f.endsWith("forensics/walk.ts"));
  assert.deepEqual(offenders, []);
});
