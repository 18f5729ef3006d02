/**
 * Doctor end to end: boots each scenario (lab/scenarios.ts), records the guest's sysfs tree, runs this
 * repository's `iommu status --json` and `iommu groups --json` inside the guest against its own kernel, and checks
 * the verdicts. In scenario (a) it also moves the e1000e to vfio-pci with `iommu bind` and back with
 * `iommu unbind`. Scenarios g and h check the pass-through findings against the real kernel and VFIO
 * (lab/doctor-passthrough.ts). A CLI command whose `--help` fails, or that the guest did not run, fails every check that needs it,
 * with the reason.
 *
 * Three kinds of checks per scenario:
 *   guest: the scenario itself is what it claims (dmesg lines, interrupt chips, groups) — independent of the CLI;
 *   cli:   the doctor's JSON agrees with that ground truth and with the expected verdict;
 *   bind:  the device really changes driver and /dev/vfio/N appears.
 */
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bootGuest, describeFailure, kernelVersion, qemuVersion, REPO_DIR, tail, type BootResult } from "./qemu.js";
import { at } from "./json-path.js";
import type { Report } from "./report.js";
import { earlyBindChecks, memlockChecks, overrideChecks, passthroughJobEnv, resetChecks } from "./doctor-passthrough.js";
import { E1000E_BDF, machineArgs, type Scenario } from "./scenarios.js";
import { simChecks } from "./sim-compare.js";

export interface DoctorOptions {
  scenarios: Scenario[];
  /** Copy the recorded trees into test/fixtures/hosts/qemu-* and rewrite its README. */
  updateFixtures: boolean;
  echo: boolean;
  timeoutSec?: number;
}

/** The CLI commands the doctor suite runs in the guest. */
const DOCTOR_COMMANDS = ["status", "groups", "bind", "unbind", "check"];

/**
 * Why each CLI command the doctor suite uses cannot be used on this machine: `iommu NAME --help` must exit 0 and
 * not report an unknown command. Commands missing from the map are usable.
 */
export function cliCommands(): { problems: Map<string, string> } {
  const bin = join(REPO_DIR, "bin", "iommu.js");
  const problems = new Map<string, string>();
  for (const name of DOCTOR_COMMANDS) {
    const r = spawnSync(process.execPath, [bin, name, "--help"], { encoding: "utf8" });
    if (r.status !== 0 || /unknown command/.test(r.stderr)) {
      problems.set(name, `'iommu ${name} --help' exited ${r.status ?? r.signal}: ${tail(r.stderr || r.stdout || "(no output)", 3)}`);
    }
  }
  return { problems };
}

interface CmdResult {
  rc: number;
  ms: number;
  out: string;
  err: string;
}

function readCmd(dir: string, name: string): CmdResult | null {
  const rcFile = join(dir, "cmd", `${name}.rc`);
  if (!existsSync(rcFile)) return null;
  const [rc, ms] = readFileSync(rcFile, "utf8").trim().split(/\s+/).map(Number);
  return {
    rc: rc ?? -1,
    ms: ms ?? 0,
    out: readFileSync(join(dir, "cmd", `${name}.out`), "utf8"),
    err: readFileSync(join(dir, "cmd", `${name}.err`), "utf8"),
  };
}


function problemCodes(status: unknown): { code: string; severity: string }[] {
  const list = at(status, "problems");
  if (!Array.isArray(list)) return [];
  return list.map((p) => ({ code: String(at(p, "code")), severity: String(at(p, "severity")) }));
}

/** "00:02.0" / "0000:00:02.0" / {bdf: …} -> "0000:00:02.0". */
function normBdf(v: unknown): string {
  let s = typeof v === "string" ? v : String(at(v, "bdf") ?? at(v, "address") ?? at(v, "id") ?? at(v, "name") ?? "");
  s = s.toLowerCase();
  return /^[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/.test(s) ? `0000:${s}` : s;
}

/** Groups from the recorded tree: id -> sorted device BDFs. */
function truthGroups(tree: string): Map<number, string[]> {
  const base = join(tree, "sys", "kernel", "iommu_groups");
  const m = new Map<number, string[]>();
  for (const g of existsSync(base) ? readdirSync(base) : []) {
    const devs = existsSync(join(base, g, "devices")) ? readdirSync(join(base, g, "devices")).sort() : [];
    m.set(Number(g), devs);
  }
  return m;
}

/** Groups from `iommu groups --json`, tolerant of the top-level shape ([…] or {groups: […]}). */
function cliGroups(json: unknown): Map<number, string[]> | null {
  const list = Array.isArray(json) ? json : at(json, "groups");
  if (!Array.isArray(list)) return null;
  const m = new Map<number, string[]>();
  for (const g of list) {
    const id = Number(at(g, "id") ?? at(g, "group") ?? at(g, "number"));
    const devs = at(g, "devices");
    if (!Number.isInteger(id) || !Array.isArray(devs)) return null;
    m.set(id, devs.map(normBdf).sort());
  }
  return m;
}

function sameGroups(a: Map<number, string[]>, b: Map<number, string[]>): string | null {
  const ids = [...new Set([...a.keys(), ...b.keys()])].sort((x, y) => x - y);
  for (const id of ids) {
    const x = (a.get(id) ?? []).join(",");
    const y = (b.get(id) ?? []).join(",");
    if (!a.has(id) || !b.has(id) || x !== y) return `group ${id}: cli [${y === "" && !b.has(id) ? "absent" : y}] vs sysfs [${x === "" && !a.has(id) ? "absent" : x}]`;
  }
  return null;
}

interface Truth {
  dmesg: string;
  interrupts: string;
  groups: Map<number, string[]>;
  groupTypes: string[];
  hasDmar: boolean;
  hasIvrs: boolean;
  units: string[];
  allowUnsafe: string | null;
}

function readTruth(tree: string): Truth {
  const f = (p: string) => (existsSync(join(tree, p)) ? readFileSync(join(tree, p), "utf8") : "");
  const cls = join(tree, "sys", "class", "iommu");
  return {
    dmesg: f("dmesg.txt"),
    interrupts: f("proc/interrupts"),
    groups: truthGroups(tree),
    groupTypes: [...truthGroups(tree).keys()].map((g) => f(`sys/kernel/iommu_groups/${g}/type`).trim()),
    hasDmar: existsSync(join(tree, "sys/firmware/acpi/tables/DMAR")),
    hasIvrs: existsSync(join(tree, "sys/firmware/acpi/tables/IVRS")),
    units: existsSync(cls) ? readdirSync(cls) : [],
    allowUnsafe: existsSync(join(tree, "sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts"))
      ? f("sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts").trim()
      : null,
  };
}

type Expect = [name: string, test: (s: unknown, rc: number) => boolean, shown: (s: unknown, rc: number) => string];

const show = (path: string) => (s: unknown) => `${path} = ${JSON.stringify(at(s, path))}`;
const hasProblem = (code: string, severity?: string): Expect => [
  `problem ${code}${severity ? ` (${severity})` : ""} reported`,
  (s) => problemCodes(s).some((p) => p.code === code && (!severity || p.severity === severity)),
  (s) => `problems: ${problemCodes(s).map((p) => `${p.code}/${p.severity}`).join(", ") || "none"}`,
];
const field = (path: string, want: unknown): Expect => [
  `${path} is ${JSON.stringify(want)}`,
  (s) => at(s, path) === want,
  show(path),
];
const exitCode = (want: number): Expect => [`exit code ${want}`, (_s, rc) => rc === want, (_s, rc) => `exit code ${rc}`];

/** What `iommu status --json` must say in each scenario (field names: src/host/status.ts StatusReport). */
const STATUS_EXPECT: Record<string, Expect[]> = {
  a: [
    field("ready", true),
    field("kernel.iommuActive", true),
    field("kernel.defaultDomain", "identity"),
    field("kernel.interruptRemapping", "enabled"),
    field("platform.firmwareTable", "DMAR"),
    exitCode(0),
  ],
  b: [
    field("kernel.iommuActive", true),
    field("kernel.interruptRemapping", "disabled"),
    field("ready", false),
    hasProblem("INTERRUPT_REMAPPING_DISABLED", "error"),
    exitCode(1),
  ],
  c: [
    field("kernel.iommuActive", false),
    field("ready", false),
    field("platform.firmwareTable", "DMAR"),
    hasProblem("IOMMU_DISABLED_BY_CMDLINE", "error"),
  ],
  d: [
    field("platform.firmwareTable", null),
    field("kernel.iommuActive", false),
    field("ready", false),
    hasProblem("NO_IOMMU_FIRMWARE", "error"),
  ],
  e: [
    field("kernel.iommuActive", true),
    field("platform.firmwareTable", "IVRS"),
    hasProblem("AMD_IOMMU_ON_INVALID", "warning"),
    field("kernel.interruptRemapping", "enabled"),
    field("ready", true),
  ],
  f: [
    field("kernel.iommuActive", true),
    field("kernel.interruptRemapping", "disabled"),
    field("kernel.allowUnsafeInterrupts", true),
    field("ready", true),
    hasProblem("UNSAFE_INTERRUPTS_ALLOWED", "warning"),
    exitCode(0),
  ],
  g: [
    field("ready", true),
    field("kernel.iommuActive", true),
    field("kernel.interruptRemapping", "enabled"),
    exitCode(0),
  ],
  h: [
    field("kernel.iommuActive", true),
    field("kernel.interruptRemapping", "enabled"),
    hasProblem("EARLY_BIND_LOST", "warning"),
  ],
};

/** The scenario itself, from the recorded tree (no CLI involved). */
function guestChecks(report: Report, suite: string, sc: Scenario, t: Truth): void {
  const irChip = /IR-PCI-MSI/.test(t.interrupts);
  const c = (name: string, ok: boolean, detail: string) => report.check(suite, `guest: ${name}`, ok, detail);
  switch (sc.id) {
    case "g":
    case "h":
      c("groups exist", t.groups.size > 0, "no /sys/kernel/iommu_groups/*");
      c("IR-PCI-MSI interrupts", irChip, "no IR-PCI-MSI in /proc/interrupts");
      break;
    case "a":
      c("DMAR table present", t.hasDmar, "no /sys/firmware/acpi/tables/DMAR");
      c("dmesg: IRQ remapping enabled", /DMAR-IR: Enabled IRQ remapping/.test(t.dmesg), "no 'DMAR-IR: Enabled IRQ remapping'");
      c("dmesg: default domain passthrough", /iommu: Default domain type: Passthrough/.test(t.dmesg), grepLine(t.dmesg, /Default domain type/));
      c("IR-PCI-MSI interrupts", irChip, "no IR-PCI-MSI in /proc/interrupts");
      c("groups exist", t.groups.size > 0, "no /sys/kernel/iommu_groups/*");
      break;
    case "b":
      c("IOMMU unit registered", t.units.includes("dmar0"), `units: ${t.units.join(",") || "none"}`);
      c("no IR-PCI-MSI interrupts", !irChip && /PCI-MSI/.test(t.interrupts), "IR-PCI-MSI present or no MSI at all");
      c("groups exist", t.groups.size > 0, "no groups");
      break;
    case "f":
      c("no IR-PCI-MSI interrupts", !irChip && /PCI-MSI/.test(t.interrupts), "IR-PCI-MSI present or no MSI at all");
      c("vfio_iommu_type1 allow_unsafe_interrupts=Y", t.allowUnsafe === "Y", `allow_unsafe_interrupts: ${t.allowUnsafe ?? "absent"}`);
      c("groups exist", t.groups.size > 0, "no groups");
      break;
    case "c":
      c("DMAR table present", t.hasDmar, "no DMAR");
      c("dmesg: IOMMU disabled", /DMAR: IOMMU disabled/.test(t.dmesg), grepLine(t.dmesg, /DMAR:/));
      c("no groups", t.groups.size === 0, `${t.groups.size} groups`);
      break;
    case "d":
      c("no DMAR or IVRS", !t.hasDmar && !t.hasIvrs, "a DMAR/IVRS table exists");
      c("no groups", t.groups.size === 0, `${t.groups.size} groups`);
      break;
    case "e":
      c("IVRS table present", t.hasIvrs, "no IVRS");
      c("dmesg: Unknown option 'on'", /AMD-Vi: Unknown option - 'on'/.test(t.dmesg), grepLine(t.dmesg, /AMD-Vi/));
      c("dmesg: AMD-Vi interrupt remapping", /AMD-Vi: Interrupt remapping enabled/.test(t.dmesg), grepLine(t.dmesg, /AMD-Vi/));
      c("groups exist", t.groups.size > 0, "no groups");
      break;
  }
}

function grepLine(text: string, re: RegExp): string {
  return text.split("\n").find((l) => re.test(l))?.trim() ?? `no line matching ${re}`;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** True when a CLI result is usable; otherwise records the failure and why. */
function cmdUsable(report: Report, suite: string, what: string, command: string, cli: ReturnType<typeof cliCommands>, r: CmdResult | null): boolean {
  const problem = cli.problems.get(command);
  if (problem !== undefined) {
    report.fail(suite, what, problem);
    return false;
  }
  if (r === null) {
    report.fail(suite, what, `'iommu ${command}' was not run in the guest (see job.log)`);
    return false;
  }
  if (/unknown command/.test(r.err)) {
    report.fail(suite, what, `the guest's CLI does not know '${command}' (dist/ out of date? run npm run build)`);
    return false;
  }
  return true;
}

function statusChecks(report: Report, suite: string, sc: Scenario, dir: string, t: Truth, cli: ReturnType<typeof cliCommands>): void {
  const r = readCmd(dir, "status");
  if (!cmdUsable(report, suite, "status --json", "status", cli, r) || r === null) return;
  const json = parseJson(r.out);
  if (json === undefined || json === null || typeof json !== "object") {
    report.fail(suite, "status --json", `not JSON (exit ${r.rc}): ${tail(r.err || r.out, 3)}`);
    return;
  }
  for (const [name, test, shown] of STATUS_EXPECT[sc.id] ?? []) {
    report.check(suite, `status: ${name}`, test(json, r.rc), shown(json, r.rc));
  }
  // Cross-checks against the guest's own sysfs.
  report.check(suite, `status: kernel.groupCount is ${t.groups.size} (as in sysfs)`, at(json, "kernel.groupCount") === t.groups.size,
    show("kernel.groupCount")(json));
  const types = new Map<string, number>();
  for (const ty of t.groupTypes) types.set(ty, (types.get(ty) ?? 0) + 1);
  const majority = [...types.entries()].sort((x, y) => y[1] - x[1])[0]?.[0] ?? null;
  report.check(suite, `status: kernel.defaultDomain is ${JSON.stringify(majority)} (as in sysfs)`, at(json, "kernel.defaultDomain") === majority,
    show("kernel.defaultDomain")(json));
}

function groupsChecks(report: Report, suite: string, dir: string, t: Truth, cli: ReturnType<typeof cliCommands>): void {
  const r = readCmd(dir, "groups");
  if (!cmdUsable(report, suite, "groups --json", "groups", cli, r) || r === null) return;
  const json = parseJson(r.out);
  if (json === undefined) {
    report.fail(suite, "groups --json", `not JSON (exit ${r.rc}): ${tail(r.err || r.out, 3)}`);
    return;
  }
  const g = cliGroups(json);
  if (g === null) {
    report.fail(suite, "groups: JSON has groups with id and devices", `unrecognised shape: ${JSON.stringify(json).slice(0, 200)}`);
    return;
  }
  const diff = sameGroups(t.groups, g);
  report.check(suite, `groups: same ${t.groups.size} groups and members as /sys/kernel/iommu_groups`, diff === null, diff ?? "");
}

function parseState(dir: string, file: string): { driver: string; group: string; vfio: string[] } | null {
  const p = join(dir, file);
  if (!existsSync(p)) return null;
  const s = readFileSync(p, "utf8");
  const get = (k: string) => new RegExp(`${k}=(\\S*)`).exec(s)?.[1] ?? "";
  return { driver: get("driver"), group: get("group"), vfio: (/vfio=(.*)$/m.exec(s)?.[1] ?? "").trim().split(/\s+/).filter(Boolean) };
}

function bindChecks(report: Report, suite: string, dir: string, cli: ReturnType<typeof cliCommands>): void {
  const before = parseState(dir, "state-before.txt");
  report.check(suite, `bind: ${E1000E_BDF} starts on e1000e`, before?.driver === "e1000e", `before: ${JSON.stringify(before)}`);
  const b = readCmd(dir, "bind");
  if (!cmdUsable(report, suite, `bind ${E1000E_BDF}`, "bind", cli, b) || b === null) return;
  const bound = parseState(dir, "state-bound.txt");
  report.check(suite, "bind: exit code 0", b.rc === 0, `exit ${b.rc}: ${tail(b.err || b.out, 3)}`);
  report.check(suite, "bind: driver is vfio-pci", bound?.driver === "vfio-pci", `after bind: driver ${bound?.driver || "none"}`);
  report.check(suite, "bind: /dev/vfio/<group> appears", !!bound?.group && bound.vfio.includes(bound.group),
    `group ${bound?.group ?? "?"}, /dev/vfio: ${bound?.vfio.join(" ") ?? "?"}`);
  const u = readCmd(dir, "unbind");
  if (!cmdUsable(report, suite, `unbind ${E1000E_BDF}`, "unbind", cli, u) || u === null) return;
  const after = parseState(dir, "state-unbound.txt");
  report.check(suite, "unbind: exit code 0", u.rc === 0, `exit ${u.rc}: ${tail(u.err || u.out, 3)}`);
  report.check(suite, "unbind: driver is e1000e again", after?.driver === "e1000e", `after unbind: driver ${after?.driver || "none"}`);
}

/** Scenarios g and h: early binding, and in g the reset methods and the locked-memory limit. */
function passthroughChecks(report: Report, suite: string, sc: Scenario, dir: string, tree: string, cli: ReturnType<typeof cliCommands>): void {
  if (sc.id !== "g" && sc.id !== "h") return;
  for (const name of ["check", "status", "groups"]) {
    const why = cli.problems.get(name);
    if (why !== undefined) return report.fail(suite, `pass-through checks need 'iommu ${name}'`, why);
  }
  const cmd = (name: string) => readCmd(dir, name);
  earlyBindChecks(report, suite, sc, dir, tree, cmd);
  if (sc.id === "h") overrideChecks(report, suite, dir, cmd);
  if (sc.id !== "g") return;
  resetChecks(report, suite, dir, tree, cmd);
  memlockChecks(report, suite, dir, cmd);
}

function guestScript(sc: Scenario): string {
  return [
    `export REPO='${REPO_DIR}'`,
    sc.id === "a" ? `export BIND_BDF='${E1000E_BDF}'` : "",
    ...passthroughJobEnv(sc),
    `exec /bin/sh "$REPO/lab/guest/doctor-job.sh"`,
    "",
  ].join("\n");
}

/** Extracts RUN/tree.tar into RUN/tree. */
function extractTree(r: BootResult): string | null {
  const tar = join(r.outDir, "tree.tar");
  if (!existsSync(tar)) return null;
  const x = spawnSync("tar", ["-C", r.outDir, "-xf", tar]);
  return x.status === 0 ? join(r.outDir, "tree") : null;
}

export const FIXTURES_DIR = join(REPO_DIR, "test", "fixtures", "hosts");

function copyFixture(sc: Scenario, tree: string): void {
  const dst = join(FIXTURES_DIR, sc.fixture);
  rmSync(dst, { recursive: true, force: true });
  mkdirSync(dst, { recursive: true });
  cpSync(tree, dst, { recursive: true, verbatimSymlinks: true });
}

export async function runDoctor(report: Report, o: DoctorOptions): Promise<void> {
  const cli = cliCommands();
  for (const [name, why] of cli.problems) report.note(`CLI command '${name}' is not usable: ${why}`);
  const recorded: { sc: Scenario; args: string }[] = [];
  for (const sc of o.scenarios) {
    const suite = `doctor ${sc.id}`;
    const r = await bootGuest({
      name: `doctor-${sc.id}`,
      machineArgs: machineArgs(sc),
      cmdline: sc.cmdline,
      script: guestScript(sc),
      timeoutSec: o.timeoutSec ?? 300,
      echo: o.echo,
    });
    if (r.jobExit !== 0) {
      report.fail(suite, "guest boots and runs the job", describeFailure(r));
      continue;
    }
    const timing = existsSync(join(r.outDir, "timing.txt")) ? readFileSync(join(r.outDir, "timing.txt"), "utf8").trim().replace(/\n/g, ", ") : "";
    report.pass(suite, "guest boots and runs the job", `boot ${r.bootSec?.toFixed(1) ?? "?"} s, total ${r.elapsedSec.toFixed(1)} s; ${timing}`);
    const tree = extractTree(r);
    if (tree === null) {
      report.fail(suite, "sysfs tree recorded", `no usable tree.tar in ${r.outDir}`);
      continue;
    }
    const t = readTruth(tree);
    guestChecks(report, suite, sc, t);
    simChecks(report, suite, sc, tree, t.groups);
    if (o.updateFixtures) {
      copyFixture(sc, tree);
      recorded.push({ sc, args: readFileSync(join(r.outDir, "qemu-args.txt"), "utf8").trim() });
    }
    statusChecks(report, suite, sc, r.outDir, t, cli);
    groupsChecks(report, suite, r.outDir, t, cli);
    if (sc.id === "a") bindChecks(report, suite, r.outDir, cli);
    passthroughChecks(report, suite, sc, r.outDir, tree, cli);
    const times = ["status", "groups", "bind", "unbind", "check"]
      .map((n) => [n, readCmd(r.outDir, n)] as const)
      .filter(([, c]) => c !== null && !/unknown command/.test(c.err))
      .map(([n, c]) => `${n} ${c?.ms} ms`);
    if (times.length) report.note(`${suite}: CLI times in the guest: ${times.join(", ")}`);
  }
  if (o.updateFixtures && recorded.length) await writeFixturesReadme(recorded);
}

/** Rewrites only the "qemu-* trees" section of test/fixtures/hosts/README.md (the rest belongs to other trees). */
async function writeFixturesReadme(recorded: { sc: Scenario; args: string }[]): Promise<void> {
  const path = join(FIXTURES_DIR, "README.md");
  const qemu = await qemuVersion();
  const kpkg = readFileSync(join(REPO_DIR, "lab", "work", "kernel", "PACKAGE"), "utf8").trim();
  const text = existsSync(path) ? readFileSync(path, "utf8") : "# Host fixtures\n";
  const HEADING = "## qemu-* trees: recorded from a real Linux kernel";
  const at0 = text.indexOf(HEADING);
  const nextHeading = at0 < 0 ? -1 : text.slice(at0 + HEADING.length).search(/^## /m);
  const before = at0 < 0 ? text.trimEnd() + "\n\n" : text.slice(0, at0);
  const after = at0 < 0 || nextHeading < 0 ? "" : text.slice(at0 + HEADING.length + nextHeading);
  const section = at0 < 0 ? "" : text.slice(at0, after ? at0 + HEADING.length + nextHeading : undefined);
  // Keep the entries of scenarios not re-recorded this time.
  const recordedWith = `${qemu}; kernel ${kernelVersion()} (Debian package ${kpkg})`;
  const entries = new Map<string, string>();
  for (const m of section.matchAll(/^### (qemu-[\w-]+)\n([\s\S]*?)(?=^### |(?![\s\S]))/gm)) entries.set(m[1] ?? "", `${(m[2] ?? "").trimEnd()}\n\n`);
  for (const { sc, args } of recorded) {
    const shown = args.replace(/\/\S*\/lab\/work\//g, "lab/work/");
    entries.set(sc.fixture, `${sc.title}. Kernel command line: \`${sc.cmdline || "(nothing added)"}\`. Recorded with ${recordedWith}.\n\n\`\`\`\nqemu-system-x86_64 ${shown}\n\`\`\`\n\n`);
  }
  const body = [...entries.keys()].sort().map((k) => `### ${k}\n${entries.get(k)}`).join("");
  const mine = `${HEADING}

The \`qemu-*\` trees were recorded by the lab (\`lab/\`): Debian's kernel booted under QEMU (TCG) with an emulated
IOMMU; inside the guest, \`lab/guest/record-sysfs.mjs\` copied what the doctor reads, links kept exactly as sysfs
stores them (relative) and their targets recorded too, so every link resolves inside the tree. The guest's full
kernel log is \`dmesg.txt\` at the root of each tree.

- Each entry below names the QEMU and kernel it was recorded with.
- Re-record one: \`bash lab/setup.sh && node --import tsx lab/run.ts doctor --scenario a --update-fixtures\`
  (only this section of this README is rewritten).
- What is recorded: see the header of \`lab/guest/record-sysfs.mjs\`. Write-only sysfs files (\`bind\`, \`unbind\`,
  \`new_id\`, \`remove_id\`, \`drivers_probe\`, a built-in module's \`uevent\`) are recorded as empty files so that
  their existence is visible.
- Devices (same BDFs in every tree): 00:02.0 e1000e, 00:03.0 virtio-net (iommu_platform), 00:04.0 NVMe,
  00:05.0 PCIe root port -> 01:00.0 PCIe-to-PCI bridge -> 02:01.0 e1000, 00:06.0 + 00:06.1 e1000 (one
  multifunction slot), 00:10.0 and 00:11.0 virtio-9p (the lab's shares), and q35's own 00:00.0 and 00:1f.{0,2,3};
  \`qemu-g-*\` has a second e1000 at 02:02.0.
- The command lines below are the lab's, with its paths shortened to \`lab/work/...\`; the guest's /init is
  \`lab/guest/init\` (its kernel command line gets \`console=ttyS0 panic=-1 loglevel=6\` first).

${body}`;
  writeFileSync(path, before + mine.trimEnd() + "\n" + (after ? "\n" + after : ""));
}
