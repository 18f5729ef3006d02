/**
 * The package as users get it: `npm pack`, the tarball installed into a new project, every examples/*.mjs run
 * there (importing `iommu-kit` by name) and its output checked against what the source tree computes.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeDmar } from "../src/acpi/dmar.js";
import { gatherStatus } from "../src/host/status.js";
import { RootView } from "../src/host/views/root-view.js";
import { corpusDir } from "./support/iasl.js";
import { REPO } from "./support/program.js";

const EXAMPLES = join(REPO, "examples");
let project = "";
let stage = "";
let packed: string[] = [];

/** What `npm pack` (and its `prepare` build) reads, copied so the build runs outside the repository. */
const STAGED = ["package.json", "package-lock.json", "README.md", "LICENSE", "tsconfig.json", "tsconfig.build.json", "bin", "src", "web"];

function run(cmd: string, args: string[], cwd: string): { code: number; stdout: string; stderr: string } {
  const env = { ...process.env };
  delete env.IOMMU_KIT_TEST; // run as users do
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", env });
  if (r.error !== undefined) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function example(name: string, ...args: string[]): { code: number; stdout: string } {
  const r = run(process.execPath, [name, ...args], project);
  assert.equal(r.stderr, "", `${name} wrote to stderr`);
  return r;
}

before(() => {
  project = mkdtempSync(join(tmpdir(), "iommu-kit-consumer-"));
  // The build's first step removes dist/; run in the repository, it would pull the browser view's script from
  // under tests that serve it at the same time. A staged copy builds its own dist/.
  stage = mkdtempSync(join(tmpdir(), "iommu-kit-stage-"));
  for (const f of STAGED) if (existsSync(join(REPO, f))) cpSync(join(REPO, f), join(stage, f), { recursive: true });
  symlinkSync(join(REPO, "node_modules"), join(stage, "node_modules"), "dir");
  const pack = run("npm", ["pack", "--json", "--pack-destination", project], stage);
  assert.equal(pack.code, 0, `npm pack failed:\n${pack.stderr}`);
  // `prepare` (the build) prints before the JSON report.
  const report = JSON.parse(pack.stdout.slice(pack.stdout.indexOf("[\n"))) as { filename: string; files: { path: string }[] }[];
  const tarball = report[0]!.filename.replace(/^@[^/]+\//, "").replace("/", "-");
  packed = report[0]!.files.map((f) => f.path);
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
  const install = run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", `./${tarball}`], project);
  assert.equal(install.code, 0, `npm install of the tarball failed:\n${install.stderr}`);
  for (const f of readdirSync(EXAMPLES)) if (f.endsWith(".mjs")) copyFileSync(join(EXAMPLES, f), join(project, f));
});

after(() => {
  if (project !== "") rmSync(project, { recursive: true, force: true });
  if (stage !== "") rmSync(stage, { recursive: true, force: true });
});

test("the tarball holds what runs: the build, its declarations, the CLI; no tests, test support, fixtures or maps", () => {
  assert.ok(packed.includes("bin/iommu.js"));
  assert.ok(packed.includes("dist/cli/main.js"));
  const bad = packed.filter((p) => /\.test\.|(^|\/)test\/|support|fixtures|corpus|\.map$|^src\//.test(p));
  assert.deepEqual(bad, []);
  const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { exports: Record<string, string | Record<string, string>> };
  for (const [entry, target] of Object.entries(pkg.exports)) {
    for (const file of typeof target === "string" ? [target] : Object.values(target)) {
      assert.ok(packed.includes(file.replace(/^\.\//, "")), `exports["${entry}"] points at ${file}, which is not in the package`);
    }
  }
});

test("the entry points carry types: a TypeScript consumer compiles, and a misuse is a type error", () => {
  writeFileSync(
    join(project, "consumer.ts"),
    [
      'import { Machine, VtdTables, type TranslateResult } from "iommu-kit/vtd";',
      'import { decodeDmar, type DmarTable } from "iommu-kit/acpi";',
      'import { gatherStatus, type StatusReport } from "iommu-kit/doctor";',
      'import { Kernel } from "iommu-kit/kernel";',
      'import { Hypervisor } from "iommu-kit/hypervisor";',
      'import { walkIova } from "iommu-kit/walk";',
      'import { IommuError } from "iommu-kit";',
      "const m: Machine = Machine.load(\"q35\");",
      "const t: VtdTables = new VtdTables(m.memory);",
      "const r: TranslateResult = m.platform.translate(0, 0, 4, false);",
      "const d: (b: Uint8Array) => DmarTable = decodeDmar;",
      "const s: (v: Parameters<typeof gatherStatus>[0]) => StatusReport = gatherStatus;",
      "export { t, r, d, s, Kernel, Hypervisor, walkIova, IommuError };",
    ].join("\n"),
  );
  const tsc = join(REPO, "node_modules", "typescript", "bin", "tsc");
  const flags = ["--noEmit", "--strict", "--module", "nodenext", "--moduleResolution", "nodenext", "--target", "es2022", "--skipLibCheck", "--types", "node", "--typeRoots", join(REPO, "node_modules", "@types")];
  const ok = run(process.execPath, [tsc, ...flags, "consumer.ts"], project);
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  writeFileSync(join(project, "misuse.ts"), 'import { Machine } from "iommu-kit/vtd";\nexport const n: number = Machine.load("q35");\n');
  const bad = run(process.execPath, [tsc, ...flags, "misuse.ts"], project);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stdout, /TS2322/);
});

test("the installed package's `iommu` command runs and knows its version", () => {
  const version = (JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string }).version;
  const r = run(join(project, "node_modules", ".bin", "iommu"), ["--version"], project);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `iommu-kit ${version}\n`);
});

test("every example is checked here", () => {
  const checked = ["translate-and-fault.mjs", "decode-dmar.mjs", "judge-host.mjs", "kernel-dma.mjs", "walk-tables.mjs", "assign-device.mjs"];
  assert.deepEqual(readdirSync(EXAMPLES).filter((f) => f.endsWith(".mjs")).sort(), checked.sort());
});

test("translate-and-fault: the mapped write lands in the host page, the stray one leaves a fault record", () => {
  const r = example("translate-and-fault.mjs");
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^dmar0 at 0xfed90000: translation enabled/m);
  // The example maps IOVA 0x80000000 to HPA 0x40000000 and writes de ad be ef at +0x10.
  assert.match(r.stdout, /IOVA 0x80000010 -> HPA 0x40000010, memory holds 0xefbeadde/);
  assert.match(r.stdout, /stray write: blocked/);
  assert.match(r.stdout, /primary pending fault 1, record 0/);
  // A write through a non-present second-level entry is fault reason 05h (VT-d spec, appendix A).
  assert.match(r.stdout, /fault record: source 00:04\.0, write at 0x80001000, reason 0x05/);
});

test("decode-dmar: the units and reserved regions of corpus tables, and an exact re-encoding", () => {
  const dir = corpusDir("dmar");
  const files = readdirSync(dir).filter((f) => f.endsWith(".bin")).sort().slice(0, 3);
  assert.equal(files.length, 3);
  for (const f of files) {
    const table = decodeDmar(new Uint8Array(readFileSync(join(dir, f))));
    const r = example("decode-dmar.mjs", join(dir, f));
    assert.equal(r.code, 0);
    const lines = r.stdout.trim().split("\n");
    assert.match(lines[0]!, new RegExp(`host address width ${table.hostAddressWidth} bits`));
    const drhds = table.structures.filter((s) => s.type === "DRHD");
    const rmrrs = table.structures.filter((s) => s.type === "RMRR");
    assert.deepEqual(
      lines.filter((l) => l.startsWith("DRHD")).map((l) => /registers at (\S+):/.exec(l)?.[1]),
      drhds.map((d) => d.registerBase),
      f,
    );
    assert.deepEqual(
      lines.filter((l) => l.startsWith("RMRR")).map((l) => /^RMRR (\S+)-/.exec(l)?.[1]),
      rmrrs.map((m) => m.base),
      f,
    );
    assert.equal(lines.at(-1), `re-encoded: identical (${table.length} bytes)`);
  }
});

test("judge-host: each recorded host gets the verdict and problems the doctor computes in the source tree", () => {
  const hosts = join(REPO, "test", "fixtures", "hosts");
  const recorded = readdirSync(hosts).filter((h) => h.startsWith("qemu-"));
  assert.ok(recorded.length >= 4);
  let ready = 0;
  for (const h of recorded) {
    const want = gatherStatus(new RootView(join(hosts, h)));
    const r = example("judge-host.mjs", join(hosts, h));
    assert.equal(r.code, want.ready ? 0 : 1, h);
    assert.match(r.stdout, new RegExp(`^verdict: ${want.ready ? "ready" : "not ready"}`, "m"), h);
    assert.match(r.stdout, new RegExp(`^interrupt remapping: ${want.kernel.interruptRemapping}$`, "m"), h);
    for (const p of want.problems) assert.ok(r.stdout.includes(`${p.severity}: ${p.code}: `), `${h}: ${p.code} not reported`);
    if (want.ready) ready++;
  }
  assert.ok(ready > 0 && ready < recorded.length, "the recorded hosts include ready and not-ready ones");
});

test("kernel-dma: the DMA API maps through the IOMMU when it is on, and the device's write lands in the buffer", () => {
  const on = example("kernel-dma.mjs");
  assert.equal(on.code, 0);
  assert.match(on.stdout, /\(through the IOMMU\)/);
  assert.match(on.stdout, /device write: landed, buffer holds 0x4030201/);
  assert.match(on.stdout, /doctor: DMA remapping on, .*default domain DMA-FQ/);
  const off = example("kernel-dma.mjs", "intel_iommu=off");
  const m = /physical (0x[0-9a-f]+) mapped at DMA address (0x[0-9a-f]+) \(untranslated\)/.exec(off.stdout);
  assert.ok(m, off.stdout);
  assert.equal(m[1], m[2], "without an IOMMU the DMA address is the physical address");
  assert.match(off.stdout, /verdict: not ready/);
});

test("walk-tables: the forensic walk and the hardware model give the same answer for every request", () => {
  const r = example("walk-tables.mjs");
  assert.equal(r.code, 0);
  const lines = r.stdout.trim().split("\n");
  assert.equal(lines.length, 4);
  assert.ok(!r.stdout.includes("differs"), r.stdout);
  // 0x212345 is 0x12345 into the 2 MiB page at IOVA 0x200000, mapped to 0x400000; the PTE walk stops at the PDE.
  assert.match(lines[0]!, /^write 0x212345: walk 0x412345 via root entry -> context entry -> SL-PDPE -> SL-PDE; hardware 0x412345$/);
  assert.match(lines[1]!, /^read 0x1000: walk 0x9000 .*SL-PTE; hardware 0x9000$/);
  assert.match(lines[2]!, /^write 0x1000: walk fault 0x05 .*hardware fault 0x05$/);
  assert.match(lines[3]!, /^read 0x5000: walk fault 0x06 .*hardware fault 0x06$/);
});

test("assign-device: the device reaches the VM's page through the GPA and is blocked outside the VM", () => {
  const r = example("assign-device.mjs");
  assert.equal(r.code, 0);
  const m = /^GPA 0x100000 is HPA (0x[0-9a-f]+); the device's write landed at (0x[0-9a-f]+) \(vm1 GPA 0x100000\)$/m.exec(r.stdout);
  assert.ok(m, r.stdout);
  assert.equal(m[1], m[2]);
  assert.notEqual(m[1], "0x100000", "guest pages are not identity-mapped on the host");
  assert.match(r.stdout, /^host memory there holds 0xdf0feca$/m);
  assert.match(r.stdout, /^write to GPA 0x4000000: blocked, fault reason 0x05$/m);
  assert.match(r.stdout, /^host kernel: DMA Write fault from 00:04\.0 at 0x4000000, reason 0x05$/m);
});
