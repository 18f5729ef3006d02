/**
 * QEMU 7.2's amd-iommu as a test oracle for `iommu walk --dtb`.
 *
 * Boots Linux with `-device amd-iommu,intremap=on` and `iommu.strict=1`, NVMe + virtio-net (iommu_platform) +
 * e1000e, tracing every DMA translation (amdvi_translation_result) and every remapped MSI
 * (amdvi_ir_remap_msi_req / amdvi_ir_remap_msi). Once the guest has done DMA it pauses the machine over QMP,
 * reads the device table base, control and extended feature registers with `xp`, saves RAM with `pmemsave`
 * and quits. Then, for the last traced translation of every (device, IOVA):
 *   - walk gives QEMU's address: reproduced;
 *   - walk faults: unmapped since (strict mode unmaps most IOVAs right away) — counted as faulted;
 *   - walk gives another address: remapped since (the IOVA was reused) — counted, not a failure.
 * Every traced MSI remap whose input the walk can replay must give QEMU's output address and data, and the EFR
 * must equal the model's QEMU 7.2 default.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { bootGuest, describeFailure, REPO_DIR, WORK_DIR, type Qmp } from "./qemu.js";
import type { Report } from "./report.js";
import { nvmeImage } from "./scenarios.js";

const MEM_MIB = 512;
const AMDVI_BASE = 0xfed80000;
const SUITE = "oracle amd-vi";
const TRACES = ["amdvi_translation_result", "amdvi_ir_remap_msi_req", "amdvi_ir_remap_msi", "amdvi_ir_target_abort"];

interface Regs {
  dtb: bigint;
  control: bigint;
  efr: bigint;
}

export interface AmdTrace {
  translations: Map<string, { devid: string; iova: bigint; hpa: bigint }>;
  /** `aborted`: QEMU traced a target abort for the request (its remap line then repeats the input). */
  msis: Array<{ devid: number; addr: bigint; data: bigint; outAddr: bigint; outData: bigint; aborted: boolean }>;
}

/** Parses QEMU's trace log: the last translation per (device, IOVA page) and every MSI remap with its device. */
export function parseAmdTrace(text: string): AmdTrace {
  const t: AmdTrace = { translations: new Map(), msis: [] };
  const reT = /amdvi_translation_result\s+devid:\s*([0-9a-f]{2}:[0-9a-f]{2}\.[0-7])\s+gpa\s+0x([0-9a-f]+)\s+hpa\s+0x([0-9a-f]+)/i;
  const reReq = /amdvi_ir_remap_msi_req\s+addr\s+0x([0-9a-f]+)\s+data\s+0x([0-9a-f]+)\s+devid\s+0x([0-9a-f]+)/i;
  const reOut = /amdvi_ir_remap_msi\s+\(addr\s+0x([0-9a-f]+),\s*data\s+0x([0-9a-f]+)\)\s*->\s*\(addr\s+0x([0-9a-f]+),\s*data\s+0x([0-9a-f]+)\)/i;
  let lastDevid: number | null = null;
  let aborted = false;
  for (const line of text.split("\n")) {
    let m = reT.exec(line);
    if (m) {
      const iova = BigInt("0x" + m[2]);
      t.translations.set(`${m[1]} ${iova >> 12n}`, { devid: m[1] ?? "", iova, hpa: BigInt("0x" + m[3]) });
      continue;
    }
    m = reReq.exec(line);
    if (m) {
      lastDevid = parseInt(m[3] ?? "0", 16);
      aborted = false;
      continue;
    }
    if (line.includes("amdvi_ir_target_abort")) aborted = true;
    m = reOut.exec(line);
    if (m && lastDevid !== null) {
      t.msis.push({ devid: lastDevid, addr: BigInt("0x" + m[1]), data: BigInt("0x" + m[2]), outAddr: BigInt("0x" + m[3]), outData: BigInt("0x" + m[4]), aborted });
      lastDevid = null;
    }
  }
  return t;
}

async function readRegs(q: Qmp): Promise<Regs> {
  const xp = async (off: number) => {
    const text = await q.hmp(`xp /1gx 0x${(AMDVI_BASE + off).toString(16)}`);
    const m = /:\s*0x([0-9a-f]+)/i.exec(text);
    if (!m) throw new Error(`cannot parse xp output '${text.trim()}'`);
    return BigInt("0x" + m[1]);
  };
  return { dtb: await xp(0x00), control: await xp(0x18), efr: await xp(0x30) };
}

type Runner = (argv: string[]) => Promise<{ code: number; out: string; err: string }>;

async function loadCli(): Promise<Runner | null> {
  const main = join(REPO_DIR, "dist", "cli", "main.js");
  if (!existsSync(main)) return null;
  const mod = (await import(pathToFileURL(main).href)) as {
    runCliReporting?: (argv: string[], ctx: { debug: boolean; env: Record<string, string | undefined>; out(t: string): void; err(t: string): void }) => Promise<number>;
  };
  const run = mod.runCliReporting;
  if (typeof run !== "function") return null;
  return async (argv) => {
    let out = "";
    let err = "";
    const code = await run(argv, { debug: false, env: process.env, out: (t) => (out += t), err: (t) => (err += t) });
    return { code, out, err };
  };
}

const hex = (v: bigint | number) => "0x" + v.toString(16);

/** Like report.check, but the counts are kept on a pass too. */
function verdict(report: Report, name: string, ok: boolean, detail: string): void {
  if (ok) report.pass(SUITE, name, detail);
  else report.fail(SUITE, name, detail);
}

export async function runAmdOracle(report: Report, o: { echo: boolean; timeoutSec?: number }): Promise<void> {
  const outDir = join(WORK_DIR, "runs", "oracle-amdvi");
  const dumpPath = join(outDir, "mem.raw");
  let regs: Regs | null = null;
  const r = await bootGuest({
    name: "oracle-amdvi",
    memMiB: MEM_MIB,
    // QEMU 7.2 amd-iommu with intremap: the early timer check through the remapped IO-APIC fails under TCG.
    cmdline: "iommu.strict=1 no_timer_check",
    machineArgs: [
      "-device", "amd-iommu,intremap=on",
      "-netdev", "user,id=n0", "-device", "e1000e,netdev=n0,addr=0x2,romfile=",
      "-netdev", "user,id=n1",
      "-device", "virtio-net-pci,netdev=n1,addr=0x3,iommu_platform=on,disable-legacy=on,romfile=",
      "-drive", `file=${nvmeImage()},if=none,format=raw,id=d0,readonly=on`, "-device", "nvme,serial=lab0001,drive=d0,addr=0x4",
      ...TRACES.flatMap((e) => ["-trace", e]),
      "-D", join(outDir, "trace.log"),
    ],
    script: `exec /bin/sh '${join(REPO_DIR, "lab", "guest", "oracle-job.sh")}'\n`,
    timeoutSec: o.timeoutSec ?? 300,
    qmp: true,
    echo: o.echo,
    whileRunning: async (g) => {
      await g.waitForFile("dma-done", (o.timeoutSec ?? 300) - 10);
      const q = await g.qmp();
      await q.execute("stop");
      regs = await readRegs(q);
      await q.execute("pmemsave", { val: 0, size: MEM_MIB * 1024 * 1024, filename: dumpPath });
      await q.quit();
    },
  });
  const got = regs as Regs | null;
  if (r.hookError || got === null || !existsSync(dumpPath)) {
    report.fail(SUITE, "guest does DMA through amd-iommu, is paused and dumped", describeFailure(r));
    return;
  }
  report.pass(SUITE, "guest does DMA through amd-iommu, is paused and dumped", `DTB ${hex(got.dtb)}, control ${hex(got.control)}, EFR ${hex(got.efr)}`);
  const { QEMU_DEFAULT_EFR } = await import(pathToFileURL(join(REPO_DIR, "dist", "spec", "amdvi", "registers.js")).href) as { QEMU_DEFAULT_EFR: bigint };
  report.check(SUITE, "model EFR equals QEMU 7.2's", got.efr === QEMU_DEFAULT_EFR, `QEMU ${hex(got.efr)}, model ${hex(QEMU_DEFAULT_EFR)}`);
  const trace = parseAmdTrace(readFileSync(join(outDir, "trace.log"), "utf8"));
  const cli = await loadCli();
  if (cli === null) {
    report.fail(SUITE, "iommu walk is available", "dist/cli/main.js is missing: run `npm run build`");
    return;
  }
  await translationChecks(report, cli, got, dumpPath, trace);
  await msiChecks(report, cli, got, dumpPath, trace);
}

async function translationChecks(report: Report, cli: Runner, regs: Regs, dumpPath: string, trace: AmdTrace): Promise<void> {
  let reproduced = 0;
  let faulted = 0;
  let remapped = 0;
  const bad: string[] = [];
  for (const t of trace.translations.values()) {
    const w = await cli(["walk", "--mem", dumpPath, "--dtb", hex(regs.dtb), "--bdf", t.devid, "--iova", hex(t.iova), "--json"]);
    let j: { result?: string; hpa?: string } = {};
    try {
      j = JSON.parse(w.out) as typeof j;
    } catch {
      bad.push(`${t.devid} ${hex(t.iova)}: exit ${w.code}, ${w.err.trim()}`);
      continue;
    }
    if (j.result === "fault" && w.code === 1) faulted++;
    else if (j.result === "ok" && j.hpa !== undefined && BigInt(j.hpa) === t.hpa) reproduced++;
    // QEMU traces the translated page frame; the walk adds the offset.
    else if (j.result === "ok" && j.hpa !== undefined && (BigInt(j.hpa) & ~0xfffn) === (t.hpa & ~0xfffn)) reproduced++;
    else if (j.result === "ok") remapped++;
    else bad.push(`${t.devid} ${hex(t.iova)}: QEMU ${hex(t.hpa)}, walk ${w.out.trim().slice(0, 120)}`);
  }
  const total = trace.translations.size;
  verdict(report, "every traced translation is reproduced, faults, or was remapped since", bad.length === 0 && total > 0 && reproduced > 0,
    `${total} traced (device, IOVA page): ${reproduced} reproduced, ${faulted} unmapped since (walk faults), ${remapped} remapped since; ${bad.length} wrong${bad.length ? ": " + bad.slice(0, 5).join("; ") : ""}`);
}

async function msiChecks(report: Report, cli: Runner, regs: Regs, dumpPath: string, trace: AmdTrace): Promise<void> {
  const ga = ((regs.control >> 17n) & 1n) === 1n;
  const last = new Map<string, AmdTrace["msis"][number]>();
  for (const m of trace.msis) last.set(`${m.devid} ${m.addr} ${m.data}`, m);
  let matched = 0;
  let abortedBoth = 0;
  const bad: string[] = [];
  for (const m of last.values()) {
    const bdf = `00:${((m.devid >> 3) & 0x1f).toString(16).padStart(2, "0")}.${m.devid & 7}`;
    const argv = ["walk", "--mem", dumpPath, "--dtb", hex(regs.dtb), "--sid", bdf, "--msi-addr", hex(m.addr), "--msi-data", hex(m.data), "--json", ...(ga ? ["--ga"] : [])];
    const w = await cli(argv);
    let j: { result?: string; msi?: { address: string; data: string } } = {};
    try {
      j = JSON.parse(w.out) as typeof j;
    } catch {
      bad.push(`${bdf} data ${hex(m.data)}: exit ${w.code} ${w.err.trim()}`);
      continue;
    }
    if (m.aborted && j.result === "fault") abortedBoth++;
    else if (!m.aborted && j.result === "ok" && j.msi && BigInt(j.msi.address) === m.outAddr && BigInt(j.msi.data) === m.outData) matched++;
    else bad.push(`${bdf} (${hex(m.addr)}, ${hex(m.data)}): QEMU (${hex(m.outAddr)}, ${hex(m.outData)}), walk ${w.out.trim().slice(0, 160)}`);
  }
  verdict(report, "every traced MSI remap equals QEMU's output", bad.length === 0 && last.size > 0,
    `${last.size} distinct traced remaps (GA ${ga ? "on" : "off"}): ${matched} matched, ${abortedBoth} aborted by both; ${bad.length} differ${bad.length ? ": " + bad.slice(0, 5).join("; ") : ""}`);
}
