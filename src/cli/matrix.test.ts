/**
 * The command matrix: every command of the command table (a new one must add its recipe below, or this test
 * fails), on every machine preset and a JSON machine file, as text and as --json. Exit codes are only those the
 * README documents (0, 1, 2) and "internal error" never appears; --json output parses.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cli } from "../../test/support/cli.js";
import { corpusDir } from "../../test/support/iasl.js";
import { Machine } from "../hw/machine.js";
import { recordSnapshot } from "../host/snapshot.js";
import { Kernel } from "../os/kernel.js";
import { kernelSysfsView } from "../os/sysfs.js";
import { machinePreset, PRESET_NAMES } from "../hw/machine-presets.js";
import { ALL_SCENARIO_NAMES } from "../hv/scenarios.js";
import type { Command } from "./command.js";
import { commands } from "./commands/index.js";

const tmp = mkdtempSync(join(tmpdir(), "iommu-matrix-"));
const machineFile = join(tmp, "machine.json");
writeFileSync(machineFile, JSON.stringify({ ...machinePreset("q35")!, name: "from-a-file" }));
const MACHINES = [...PRESET_NAMES, machineFile];
const dump = join(tmp, "zeros.bin");
writeFileSync(dump, new Uint8Array(1 << 20));
const dmarDir = corpusDir("dmar");
const dmarFile = join(dmarDir, readdirSync(dmarDir).find((f) => f.endsWith(".bin"))!);

interface Case {
  machine: string;
  /** A PCI function of the machine that has a driver (a device a user would pass through). */
  bdf: string;
  index: number;
}

/** A snapshot of the machine booted by the simulated kernel, recorded once, for `ui --snapshot`. */
function snapshotOf(c: Case): string {
  const file = join(tmp, `ui-snap-${c.index}.json`);
  if (!existsSync(file)) {
    const view = kernelSysfsView(Kernel.boot(Machine.load(c.machine), { cmdline: "intel_iommu=on" }), `simulated ${c.machine}`);
    writeFileSync(file, JSON.stringify(recordSnapshot(view, { createdBy: "matrix", dmesg: null })));
  }
  return file;
}

/**
 * How each command is run in the matrix; `per: "machine"` recipes run on every machine. `alternate` (the heavy
 * ones: whole boots with stories, scenarios or pages) runs as text on every other machine and as --json on the
 * rest, so both forms run on every kind of machine without booting each twice.
 */
type Recipe = { per: "machine" | "once"; argv: (c: Case) => string[][]; alternate?: true };

const RECIPES: Record<string, Recipe> = {
  status: { per: "machine", argv: (c) => [["status", "--sim", c.machine]] },
  groups: { per: "machine", argv: (c) => [["groups", "--sim", c.machine]] },
  check: { per: "machine", argv: (c) => [["check", c.bdf, "--sim", c.machine]] },
  bootargs: { per: "machine", argv: (c) => [["bootargs", "--sim", c.machine]] },
  bind: { per: "machine", argv: (c) => [["bind", c.bdf, "--sim", c.machine]] },
  unbind: { per: "machine", argv: (c) => [["unbind", c.bdf, "--sim", c.machine]] },
  "libvirt-xml": { per: "machine", argv: (c) => [["libvirt-xml", c.bdf, "--sim", c.machine]] },
  snapshot: { per: "machine", argv: (c) => [["snapshot", "--sim", c.machine, "--no-dmesg", "-o", join(tmp, `snap-${c.index}.json`)]] },
  "acpi decode": { per: "once", argv: () => [["acpi", "decode", dmarFile]] },
  "acpi encode": { per: "once", argv: () => [["acpi", "encode", join(tmp, "dmar.json"), "-o", join(tmp, "dmar.bin")]] },
  walk: {
    per: "once",
    argv: () => [
      ["walk", "--mem", dump, "--rtaddr", "0x1000", "--bdf", "00:02.0", "--iova", "0x1000"],
      ["walk", "--mem", dump, "--rtaddr", "0x1000", "--bdf", "00:02.0", "--list"],
      ["walk", "--mem", dump, "--irta", "0x2007", "--sid", "00:02.0", "--msi-addr", "0xfee00010", "--msi-data", "0"],
    ],
  },
  tour: { per: "machine", alternate: true, argv: (c) => [["tour", "-m", c.machine, ...(c.index % 4 < 2 ? [] : ["--no-vm"])]] },
  "sim boot": { per: "machine", argv: (c) => [["sim", "boot", "--machine", c.machine]] },
  // One scenario per machine, a different one each time: all of them run, on every kind of machine.
  scenario: { per: "machine", alternate: true, argv: (c) => [["scenario", ALL_SCENARIO_NAMES[c.index % ALL_SCENARIO_NAMES.length]!, "--machine", c.machine]] },
  bench: { per: "once", argv: () => [["bench", "translate-hit", "--quick"]] },
  ui: {
    per: "machine",
    alternate: true,
    argv: (c) => [
      ["ui", "--export", join(tmp, `ui-${c.index}`), "-m", c.machine, "--no-stories"],
      ["ui", "-m", c.machine, "--no-stories", "--for", "0"],
      ["ui", "--snapshot", snapshotOf(c), "--export", join(tmp, `ui-snap-${c.index}`)],
      ["ui", "--snapshot", snapshotOf(c), "--for", "0"],
    ],
  },
};

/** Every runnable command path in the table ("acpi decode", "status", …). */
function leaves(list: Command[], prefix = ""): string[] {
  return list.flatMap((c) => {
    const path = prefix ? `${prefix} ${c.name}` : c.name;
    return c.subcommands ? leaves(c.subcommands, path) : [path];
  });
}

function aDevice(machine: string): string {
  const m = Machine.load(machine);
  const fn = m.topology.functions.find((f) => f.type === "endpoint" || f.type === "pci");
  return fn?.bdf ?? "00:00.0";
}

test("every command on every machine, as text and --json: documented exit codes, no internal error, JSON that parses", async () => {
  const paths = leaves(commands);
  const missing = paths.filter((p) => RECIPES[p] === undefined);
  assert.deepEqual(missing, [], "every command needs a matrix recipe");
  const dec = await cli(["acpi", "decode", dmarFile, "--json"]);
  writeFileSync(join(tmp, "dmar.json"), dec.stdout);
  let cases = 0;
  const failures: string[] = [];
  for (const path of paths) {
    const recipe = RECIPES[path]!;
    const machines = recipe.per === "machine" ? MACHINES : [MACHINES[0]!];
    for (const [index, machine] of machines.entries()) {
      for (const argv of recipe.argv({ machine, bdf: aDevice(machine), index })) {
        for (const json of recipe.alternate === true ? [index % 2 === 1] : [false, true]) {
          const args = json ? [...argv, "--json"] : argv;
          const r = await cli(args);
          cases++;
          const shown = `iommu ${args.join(" ")} → ${r.code}`;
          if (![0, 1, 2].includes(r.code)) failures.push(`${shown}: undocumented exit code\n${r.stderr}`);
          if (/internal error/.test(r.stderr)) failures.push(`${shown}: ${r.stderr}`);
          if (r.code === 2 && !/^iommu: error: .+ \[[A-Z_]+\]$/m.test(r.stderr)) failures.push(`${shown}: an error without its one line: ${r.stderr}`);
          if (json && r.code !== 2 && r.stdout.trim() !== "") {
            try {
              JSON.parse(r.stdout);
            } catch {
              failures.push(`${shown}: --json output does not parse: ${r.stdout.slice(0, 200)}`);
            }
          }
        }
      }
    }
  }
  assert.deepEqual(failures, []);
  assert.ok(cases >= 150, `${cases} cases`);
  console.log(`# command matrix: ${cases} cases over ${paths.length} commands and ${MACHINES.length} machines`);
});
