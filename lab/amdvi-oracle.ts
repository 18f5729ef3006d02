/**
 * QEMU 7.2's amd-iommu as a test oracle for `iommu walk --dtb` and the AMD-Vi model.
 *
 * Boots Linux with `-device amd-iommu,intremap=on` and `iommu.strict=1`, NVMe + virtio-net (iommu_platform) +
 * e1000e, tracing every DMA translation, every interrupt remap with what QEMU read on the way, and the register
 * accesses and invalidations around them (amdvi-trace.ts). The guest also saves the IOMMU's PCI configuration
 * space and the IVRS. Once the guest has done DMA the host pauses it over QMP, reads the device table base,
 * control and extended feature registers with `xp`, saves RAM with `pmemsave` and quits. Then, for the last
 * traced translation of every (device, IOVA):
 *   - walk gives QEMU's address: reproduced;
 *   - walk faults: unmapped since (strict mode unmaps most IOVAs right away) — counted as faulted;
 *   - walk gives another address: remapped since (the IOVA was reused) — counted, not a failure.
 * The interrupt remaps are checked in amdvi-msi.ts. The EFR must equal the model's QEMU 7.2 default, and the
 * model's PCI function (capability block at the IVHD's offset) must read as QEMU's once the guest's writes to
 * it are applied.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { msiChecks } from "./amdvi-msi.js";
import { parseAmdTrace, type AmdTrace } from "./amdvi-trace.js";
import { loadCli, runDmaGuest, type CliRunner as Runner } from "./dma-guest.js";
import { describeFailure, REPO_DIR, type Qmp } from "./qemu.js";
import type { Report } from "./report.js";

const MEM_MIB = 512;
const AMDVI_BASE = 0xfed80000;
const SUITE = "oracle amd-vi";
const TRACES = [
  "amdvi_translation_result", "amdvi_ir_remap_msi_req", "amdvi_ir_remap_msi", "amdvi_ir_target_abort",
  // What QEMU did inside each remap, and what software changed around it: register writes, DTE and interrupt
  // table invalidations.
  "amdvi_ir_intctl", "amdvi_ir_irte", "amdvi_ir_irte_val", "amdvi_ir_irte_ga_val", "amdvi_ir_delivery_mode", "amdvi_ir_err",
  "amdvi_mmio_write", "amdvi_mmio_read", "amdvi_control_status", "amdvi_devtab_inval", "amdvi_intr_inval",
];

interface Regs {
  dtb: bigint;
  control: bigint;
  efr: bigint;
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


const hex = (v: bigint | number) => "0x" + v.toString(16);

/** Like report.check, but the counts are kept on a pass too. */
function verdict(report: Report, name: string, ok: boolean, detail: string): void {
  if (ok) report.pass(SUITE, name, detail);
  else report.fail(SUITE, name, detail);
}

export async function runAmdOracle(report: Report, o: { echo: boolean; timeoutSec?: number }): Promise<void> {
  const { boot: r, outDir, dumpPath, regs: got } = await runDmaGuest({
    name: "oracle-amdvi",
    memMiB: MEM_MIB,
    // QEMU 7.2 amd-iommu with intremap: the early timer check through the remapped IO-APIC fails under TCG.
    cmdline: "iommu.strict=1 no_timer_check",
    iommuDevice: "amd-iommu,intremap=on",
    traces: TRACES,
    readRegisters: readRegs,
    ...(o.timeoutSec !== undefined ? { timeoutSec: o.timeoutSec } : {}),
    echo: o.echo,
  });
  if (got === null) {
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
  await msiChecks(report, { cli, dtb: got.dtb, control: got.control, dumpPath, outDir, trace, pciFunctions: pciFunctionsOf(outDir) });
  await pciFunctionCheck(report, outDir);
}

/** Requester ids of the guest's PCI functions (devices.txt, written by the guest job). */
function pciFunctionsOf(outDir: string): Set<number> {
  const out = new Set<number>();
  const path = join(outDir, "devices.txt");
  if (!existsSync(path)) return out;
  for (const m of readFileSync(path, "utf8").matchAll(/^[0-9a-f]{4}:([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])/gim)) {
    out.add((parseInt(m[1] ?? "0", 16) << 8) | (parseInt(m[2] ?? "0", 16) << 3) | parseInt(m[3] ?? "0", 16));
  }
  return out;
}

/**
 * The model's IOMMU PCI function against the one the guest read: the guest's writes (command register, MSI
 * capability) are applied to the model, then all 256 bytes must be equal.
 */
async function pciFunctionCheck(report: Report, outDir: string): Promise<void> {
  const name = readdirSync(outDir).find((f) => /^iommu-config-.*\.bin$/.test(f));
  if (name === undefined) {
    report.fail(SUITE, "the model's IOMMU PCI function reads as QEMU's", "the guest saved no configuration space of a class 0806h function");
    return;
  }
  const guest = new Uint8Array(readFileSync(join(outDir, name)));
  const { AmdViPciFunction } = (await import(pathToFileURL(join(REPO_DIR, "dist", "hw", "amdvi", "pci-function.js")).href)) as typeof import("../src/hw/amdvi/pci-function.js");
  const g = new DataView(guest.buffer, guest.byteOffset, guest.byteLength);
  const fn = new AmdViPciFunction({ deviceId: g.getUint16(2, true) });
  fn.write(0x04, 2, g.getUint16(0x04, true));
  for (const off of [4, 8, 12]) fn.write(fn.msiOffset + off, 4, g.getUint32(fn.msiOffset + off, true));
  fn.write(fn.msiOffset + 2, 2, g.getUint16(fn.msiOffset + 2, true));
  const diff: string[] = [];
  for (let i = 0; i < 256; i++) if (fn.config[i] !== guest[i]) diff.push(`0x${i.toString(16)}: QEMU ${hex(guest[i] ?? 0)}, model ${hex(fn.config[i] ?? 0)}`);
  const cap = fn.capability();
  const capFile = join(outDir, "amd-iommu-cap.txt");
  const sysfsCap = existsSync(capFile) ? readFileSync(capFile, "utf8").trim() : "?";
  verdict(report, "the model's IOMMU PCI function reads as QEMU's", guest.length >= 256 && diff.length === 0,
    `${name}: ${diff.length} of 256 bytes differ${diff.length ? ": " + diff.slice(0, 8).join("; ") : ""}; capability at ${hex(fn.capOffset)}, ` +
    `header ${hex(g.getUint32(fn.capOffset, true))} (sysfs amd-iommu/cap ${sysfsCap}), base ${hex(cap.baseAddress)}, PAsize ${cap.paSize}, VAsize ${cap.vaSize}`);
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

