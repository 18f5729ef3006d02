/**
 * The simulated kernel's scalable-mode structures against Linux 6.1's, read from the VT-d oracle's scalable-mode
 * runs (lab/oracle.ts, variants sm-aw39 and sm-aw48: QEMU 7.2 `intel-iommu,intremap=on,caching-mode=on,
 * x-scalable-mode=on`, `intel_iommu=on,sm_on iommu.strict=1`, and sm-default-aw39 without sm_on; the guest paused
 * after DMA and its RAM dumped).
 *
 * For each run the simulated machine is the guest's (the functions of devices.txt as `q35-lab` describes them, the
 * same unit: scalable mode, caching mode, address width, interrupt remapping, DRHD scope), booted with the guest's
 * command line. Then, side by side, from the dump and from the simulated machine's RAM, with one small reader that
 * shares no code with src/ (formats: VT-d spec 9.2 root entry, 9.4 scalable-mode context entry, 9.5 PASID
 * directory entry, 9.6 PASID table entry):
 *
 *   - RTADDR.TTM and GSTS;
 *   - for every function: both halves of its root entry present or not; its context entry's P, FPD, DTE, PASIDE,
 *     PRE, PDTS and RID_PASID, and that its other bits are zero; how many PASID directory entries are present;
 *     the RID_PASID entry's P, FPD, AW, PGTT, SSADE, DID, PWSNP, PGSNP, SRE, ERE, FSPM, WPE, NXE, SMEP, EAFE,
 *     whether it has a second-stage or first-stage table pointer, and that its upper 320 bits are zero;
 *   - the kernel log lines the sim suite compares (lab/sim-compare.ts COMPARED) and the scalable-mode option line.
 *
 * A run that is not there is booted first with the oracle (`lab/run.ts oracle --case sm`).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Machine } from "../src/hw/machine.js";
import { machinePreset } from "../src/hw/machine-presets.js";
import { Kernel } from "../src/os/kernel.js";
import { formatLine } from "../src/os/log.js";
import type { Report } from "./report.js";
import { kernelVersion, REPO_DIR, WORK_DIR } from "./qemu.js";
import { COMPARED, comparedLines } from "./sim-compare.js";
import { Dump } from "./vtd-ref.js";

export const SM_RUNS = ["oracle-sm-aw39", "oracle-sm-aw48", "oracle-sm-default-aw39"];

const ADDR = 0x000f_ffff_ffff_f000n;
const bits = (v: bigint, lsb: number, width: number): number => Number((v >> BigInt(lsb)) & ((1n << BigInt(width)) - 1n));

type Read64 = (addr: bigint) => bigint | null;

/** Fields read as numbers: name, 64-bit word, lowest bit, width (9.4 scalable-mode context entry, 9.6 PASID entry). */
type Fields = readonly (readonly [string, number, number, number])[];
const CONTEXT_FIELDS: Fields = [["P", 0, 0, 1], ["FPD", 0, 1, 1], ["DTE", 0, 2, 1], ["PASIDE", 0, 3, 1], ["PRE", 0, 4, 1], ["PDTS", 0, 9, 3], ["RID_PASID", 1, 0, 20]];
const PASID_FIELDS: Fields = [
  ["P", 0, 0, 1], ["FPD", 0, 1, 1], ["AW", 0, 2, 3], ["PGTT", 0, 6, 3], ["SSADE", 0, 9, 1], ["DID", 1, 0, 16], ["PWSNP", 1, 23, 1],
  ["PGSNP", 1, 24, 1], ["SRE", 2, 0, 1], ["ERE", 2, 1, 1], ["FSPM", 2, 2, 2], ["WPE", 2, 4, 1], ["NXE", 2, 5, 1], ["SMEP", 2, 6, 1], ["EAFE", 2, 7, 1],
];

function fieldFacts(prefix: string, words: bigint[], fields: Fields): Record<string, string> {
  return Object.fromEntries(fields.map(([name, w, lsb, width]) => [`${prefix}.${name}`, String(bits(words[w] ?? 0n, lsb, width))]));
}

/** The facts of one function's scalable-mode entries, as strings "name=value" (null: not reachable). */
export function entryFacts(read: Read64, rtaddr: bigint, bus: number, devfn: number): Record<string, string> {
  const f: Record<string, string> = {};
  const re = (rtaddr & ADDR) + BigInt(bus) * 16n;
  const lo = read(re);
  const hi = read(re + 8n);
  f["root.lower.P"] = lo === null ? "?" : String(bits(lo, 0, 1));
  f["root.upper.P"] = hi === null ? "?" : String(bits(hi, 0, 1));
  const half = devfn >= 128 ? hi : lo;
  if (half === null || bits(half, 0, 1) === 0) return f;
  const ce = (half & ADDR) + BigInt(devfn % 128) * 32n;
  const c = [0n, 8n, 16n, 24n].map((o) => read(ce + o) ?? 0n);
  const [c0 = 0n, c1 = 0n, c2 = 0n, c3 = 0n] = c;
  Object.assign(f, fieldFacts("context", c, CONTEXT_FIELDS), {
    "context.other bits": String(((c0 & ~(ADDR | 0xe1fn)) | (c1 & ~0x1fffffn) | c2 | c3) === 0n ? "zero" : "set"),
  });
  if (bits(c0, 0, 1) === 0) return f;
  const dir = c0 & ADDR;
  const dirEntries = 1 << (bits(c0, 9, 3) + 7);
  let present = 0;
  for (let i = 0; i < dirEntries; i++) if (((read(dir + BigInt(i) * 8n) ?? 0n) & 1n) !== 0n) present++;
  f["pasid-dir.present entries"] = String(present);
  const ridPasid = bits(c1, 0, 20);
  const de = read(dir + BigInt(ridPasid >> 6) * 8n) ?? 0n;
  if ((de & 1n) === 0n) return f;
  const pe = Array.from({ length: 8 }, (_, i) => read((de & ADDR) + BigInt(ridPasid & 0x3f) * 64n + BigInt(i) * 8n) ?? 0n);
  const [p0 = 0n, , p2 = 0n] = pe;
  Object.assign(f, fieldFacts("pasid", pe, PASID_FIELDS), {
    "pasid.SSPTPTR set": String((p0 & ADDR) !== 0n),
    "pasid.FSPTPTR set": String((p2 & ADDR) !== 0n),
    "pasid.bits 511:192": pe.slice(3).every((x) => x === 0n) ? "zero" : "set",
  });
  return f;
}

export interface RunFacts {
  registers: Record<string, string>;
  devices: Record<string, Record<string, string>>;
  lines: string[];
}

/** What the sim-sm fixtures (test/fixtures/sim-sm/NAME.json) hold: the run's inputs and Linux's facts. */
export interface SmFixture {
  recorded: { qemuArgs: string; kernel: string };
  names: string[];
  awBits: number;
  cmdline: string;
  real: RunFacts;
}

export const SM_FIXTURES_DIR = join(REPO_DIR, "test", "fixtures", "sim-sm");

const SM_LINES = [...COMPARED, /^DMAR: (Enable scalable mode if hardware supports|Scalable mode is disallowed)$/];

/** "0000:00:02.0" -> bus, devfn. */
function bdfParts(name: string): { bus: number; devfn: number; short: string } {
  const m = /^[0-9a-f]{4}:([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/.exec(name);
  if (m === null) throw new Error(`not a PCI address: ${name}`);
  return { bus: parseInt(m[1]!, 16), devfn: parseInt(m[2]!, 16) * 8 + Number(m[3]), short: name.slice(5) };
}

function realFacts(dir: string, names: string[]): RunFacts {
  const regs = JSON.parse(readFileSync(join(dir, "registers.json"), "utf8")) as Record<string, string>;
  const rtaddr = BigInt(regs.rtaddr ?? "0");
  const dump = new Dump(join(dir, "mem.raw"));
  try {
    const devices = Object.fromEntries(names.map((n) => {
      const { bus, devfn } = bdfParts(n);
      return [n, entryFacts((a) => dump.u64(a), rtaddr, bus, devfn)];
    }));
    const registers = { "RTADDR.TTM": String(bits(rtaddr, 10, 2)), GSTS: `0x${BigInt(regs.gsts ?? "0").toString(16)}` };
    return { registers, devices, lines: comparedLines(readFileSync(join(dir, "dmesg.txt"), "utf8").split("\n"), SM_LINES) };
  } finally {
    dump.close();
  }
}

/** The guest's machine: q35-lab's description of the functions the guest had, and the oracle's unit. */
function simMachine(names: string[], awBits: number): Machine {
  const lab = machinePreset("q35-lab")!;
  const want = new Set(names.map((n) => bdfParts(n).short));
  const devices = (lab.devices as { bdf: string }[]).filter((d) => want.has(d.bdf));
  const missing = [...want].filter((b) => !devices.some((d) => d.bdf === b));
  if (missing.length > 0) throw new Error(`q35-lab has no function ${missing.join(", ")}`);
  const scope = devices.map((d) => d.bdf).filter((b) => b.startsWith("00:"));
  const unit = { base: "0xfed90000", scope, interruptRemapping: true, cachingMode: true, scalableMode: true, awBits };
  return new Machine({ name: `oracle-sm-aw${awBits}`, ram: { size: "512M" }, cpus: 2, devices, iommus: [unit] });
}

/** The simulated kernel's facts on the guest's machine booted with `cmdline`. */
export function simFacts(names: string[], awBits: number, cmdline: string): RunFacts {
  const m = simMachine(names, awBits);
  const k = Kernel.boot(m, { cmdline });
  const u = k.driver.units[0];
  if (u === undefined) throw new Error("the simulated kernel registered no VT-d unit");
  const r32 = (off: number): bigint => BigInt(k.port.mmioRead32(u.base + off) >>> 0);
  const rtaddr = r32(0x20) | (r32(0x24) << 32n);
  const read: Read64 = (a) => BigInt(m.memory.read32(Number(a)) >>> 0) | (BigInt(m.memory.read32(Number(a) + 4) >>> 0) << 32n);
  const devices = Object.fromEntries(names.map((n) => {
    const { bus, devfn } = bdfParts(n);
    return [n, entryFacts(read, rtaddr, bus, devfn)];
  }));
  const registers = { "RTADDR.TTM": String(bits(rtaddr, 10, 2)), GSTS: `0x${r32(0x1c).toString(16)}` };
  return { registers, devices, lines: comparedLines(k.log.lines.map(formatLine), SM_LINES) };
}

function diff(a: Record<string, string>, b: Record<string, string>): string[] {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
  return keys.filter((k) => a[k] !== b[k]).map((k) => `${k}: real ${a[k] ?? "(absent)"}, simulated ${b[k] ?? "(absent)"}`);
}

/** One check of a comparison: its name, how many facts it covers, and the differences. */
export interface SmCheck {
  name: string;
  facts: number;
  differences: string[];
}

/** Linux's facts against the simulated kernel's, check by check. */
export function compareFacts(real: RunFacts, sim: RunFacts): SmCheck[] {
  const out: SmCheck[] = [{ name: "RTADDR.TTM and GSTS", facts: Object.keys(real.registers).length, differences: diff(real.registers, sim.registers) }];
  for (const [n, r] of Object.entries(real.devices)) {
    out.push({ name: `${n}: root, context, PASID directory and RID_PASID entries`, facts: Object.keys(r).length, differences: diff(r, sim.devices[n] ?? {}) });
  }
  const same = real.lines.length === sim.lines.length && real.lines.every((l, i) => l === sim.lines[i]);
  out.push({ name: `the ${real.lines.length} compared kernel log lines, in order`, facts: real.lines.length, differences: same ? [] : [`real ${JSON.stringify(real.lines)}, simulated ${JSON.stringify(sim.lines)}`] });
  return out;
}

/** Compares one oracle run's real structures with the simulated kernel's; returns [facts compared, differing]. */
export function compareSmRun(report: Report, name: string, updateFixtures = false): [number, number] {
  const suite = `sim-sm ${name}`;
  const dir = join(WORK_DIR, "runs", name);
  for (const f of ["registers.json", "mem.raw", "devices.txt", "dmesg.txt", "qemu-args.txt"]) {
    if (!existsSync(join(dir, f))) {
      report.fail(suite, "the oracle's scalable-mode run is there", `${join(dir, f)} is missing (lab/run.ts oracle --case sm)`);
      return [0, 0];
    }
  }
  const names = readFileSync(join(dir, "devices.txt"), "utf8").split("\n").map((l) => l.split(" ")[0] ?? "").filter((n) => n !== "");
  const args = readFileSync(join(dir, "qemu-args.txt"), "utf8");
  const awBits = /aw-bits=48/.test(args) ? 48 : 39;
  const cmdline = (/-append "([^"]*)"/.exec(args)?.[1] ?? "").replace(/^console=ttyS0 panic=-1 loglevel=6 /, "");
  const real = realFacts(dir, names);
  let sim: RunFacts;
  try {
    sim = simFacts(names, awBits, cmdline);
  } catch (e) {
    report.fail(suite, "the simulated kernel boots the guest's machine", (e as Error).message);
    return [0, 0];
  }
  let facts = 0;
  let differing = 0;
  for (const c of compareFacts(real, sim)) {
    facts += c.facts;
    differing += c.differences.length;
    report.check(suite, c.name, c.differences.length === 0, c.differences.join("; "));
  }
  report.note(`${suite}: ${names.length} functions, cmdline "${cmdline}", aw-bits ${awBits}: ${facts} facts compared, ${differing} differ`);
  if (updateFixtures) {
    const device = / -device (intel-iommu\S*)/.exec(args)?.[1] ?? "";
    const fixture: SmFixture = { recorded: { qemuArgs: `-device ${device}`, kernel: kernelVersion() }, names, awBits, cmdline, real };
    mkdirSync(SM_FIXTURES_DIR, { recursive: true });
    const path = join(SM_FIXTURES_DIR, `${name}.json`);
    writeFileSync(path, JSON.stringify(fixture, null, 1) + "\n");
    report.note(`${suite}: wrote ${path.slice(REPO_DIR.length + 1)}`);
  }
  return [facts, differing];
}

export async function runSimSm(report: Report, o: { echo: boolean; timeoutSec?: number; updateFixtures?: boolean }): Promise<void> {
  const missing = SM_RUNS.filter((r) => !existsSync(join(WORK_DIR, "runs", r, "mem.raw")));
  if (missing.length > 0) {
    const { runOracle } = await import("./oracle.js");
    await runOracle(report, { echo: o.echo, only: ["sm"], ...(o.timeoutSec ? { timeoutSec: o.timeoutSec } : {}) });
  }
  let facts = 0;
  let differing = 0;
  for (const r of SM_RUNS) {
    const [f, d] = compareSmRun(report, r, o.updateFixtures ?? false);
    facts += f;
    differing += d;
  }
  report.note(`sim-sm: ${SM_RUNS.length} scalable-mode runs, ${facts} facts compared, ${differing} differ`);
}
