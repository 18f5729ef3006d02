// The simulated kernel against Linux 6.1 without QEMU: each test/fixtures/sim-vs-real/*.json holds a machine the
// lab captured from a real guest (lab/sim-machine.ts), the command line it booted with, and what Linux 6.1 made of
// it (groups, members, default domain types, reserved regions, the IOMMU log lines). test/fixtures/sim-vs-real-amd
// holds the same for QEMU's amd-iommu under several command lines. Re-record with
// `node --import tsx lab/run.ts sim --update-fixtures` (lab/README.md).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { MachineConfigInput } from "../hw/machine-config.js";
import { Machine } from "../hw/machine.js";
import { Kernel } from "./kernel.js";

const DIR = "test/fixtures/sim-vs-real";
const AMD_DIR = "test/fixtures/sim-vs-real-amd";

interface Fixture {
  cmdline: string;
  machine: MachineConfigInput;
  groups: { id: number; devices: string[]; type: string; reservedRegions: string[] }[];
  linePatterns: string[];
  lines: string[];
}

const hx16 = (n: number) => "0x" + n.toString(16).padStart(16, "0");
const jsonFiles = (dir: string) => readdirSync(dir).filter((f) => f.endsWith(".json")).sort();
const files = jsonFiles(DIR);
const amdFiles = jsonFiles(AMD_DIR);

test("the fixtures cover several topologies and command lines", () => {
  assert.ok(files.length >= 10, `${files.length} fixtures in ${DIR}`);
  assert.ok(new Set(files.map((f) => f.split("-")[0])).size >= 3, "three topologies");
});

test("the AMD-Vi fixtures cover amd_iommu=on, iommu=pt, iommu.strict=1 and amd_iommu=off", () => {
  const cmdlines = amdFiles.map((f) => (JSON.parse(readFileSync(join(AMD_DIR, f), "utf8")) as Fixture).cmdline);
  for (const p of ["amd_iommu=on", "iommu=pt", "iommu.strict=1", "amd_iommu=off"]) {
    assert.ok(cmdlines.some((c) => c.split(/\s+/).includes(p)), `a fixture booted with ${p}`);
  }
});

const cases = [...files.map((f) => ({ dir: DIR, file: f, amd: false })), ...amdFiles.map((f) => ({ dir: AMD_DIR, file: f, amd: true }))];
for (const { dir, file, amd } of cases) {
  test(`${amd ? "amd-vi " : ""}${file}: same groups, types, reserved regions and IOMMU log lines as Linux 6.1`, () => {
    const fx = JSON.parse(readFileSync(join(dir, file), "utf8")) as Fixture;
    const k = Kernel.boot(new Machine(fx.machine), { cmdline: fx.cmdline });
    const sim = [...k.groups].sort((a, b) => a.id - b.id);
    assert.deepEqual(sim.map((g) => [g.id, g.devices.map((d) => d.name).sort()]), fx.groups.map((g) => [g.id, g.devices]), "groups");
    assert.deepEqual(sim.map((g) => g.type), fx.groups.map((g) => g.type), "default domain types");
    assert.deepEqual(
      sim.map((g) => k.iommu.groupReservedRegions(g, amd ? undefined : k.driver).map((r) => `${hx16(r.start)} ${hx16(r.end)} ${r.type}`)),
      fx.groups.map((g) => g.reservedRegions),
      "reserved regions",
    );
    const patterns = fx.linePatterns.map((p) => new RegExp(p));
    const lines = k.log.lines.map((l) => l.text.trimEnd()).filter((l) => patterns.some((re) => re.test(l)));
    assert.deepEqual(lines, fx.lines, "IOMMU log lines in order");
  });
}
