/**
 * The AMD-Vi oracle's interrupt checks. Every distinct traced remap (its last occurrence) is replayed:
 *   1. through `iommu walk --sid … --msi-addr … --msi-data …` on the dump: it must give QEMU's output address
 *      and data (or a fault where QEMU aborted);
 *   2. when it does not, through the model (AmdViUnit from dist/) with the unit's registers as the trace shows
 *      them at the time of the remap (as reset when no register had been touched yet; Control as last written)
 *      and the device table entry and interrupt table from the dump — the source chosen as the hardware does: a
 *      PCI function by its requester id, the IOAPIC by the DeviceID of the guest's IVHD special-device entry.
 *      Equal output counts as reproduced in the state of its time;
 *   3. otherwise the trace must show the tables changed after the remap: the IRTE QEMU read differs from the
 *      one in the dump, or the DTE was invalidated afterwards. Anything else is a failure.
 * Separately: the requests with no PCI function behind them must carry the DeviceID the IVRS gives the IOAPIC.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { AmdMsiTrace, AmdTrace, RegisterState } from "./amdvi-trace.js";
import { registerStateAt } from "./amdvi-trace.js";
import { REPO_DIR } from "./qemu.js";
import type { Report } from "./report.js";

type Runner = (argv: string[]) => Promise<{ code: number; out: string; err: string }>;
type UnitModule = typeof import("../src/hw/amdvi/unit.js");
type MemoryModule = typeof import("../src/core/memory.js");
type SourcesModule = typeof import("../src/hw/amdvi/sources.js");
type IvrsModule = typeof import("../src/acpi/ivrs.js");
type SourceIds = import("../src/hw/amdvi/sources.js").SourceIds;

const SUITE = "oracle amd-vi";
const hex = (v: bigint | number): string => "0x" + v.toString(16);

/** Like report.check, but the detail (the counts) is kept on a pass too. */
function verdict(report: Report, name: string, ok: boolean, detail: string): void {
  if (ok) report.pass(SUITE, name, detail);
  else report.fail(SUITE, name, detail);
}

async function dist<T>(path: string): Promise<T> {
  return (await import(pathToFileURL(join(REPO_DIR, "dist", path)).href)) as T;
}

export interface MsiContext {
  cli: Runner;
  dtb: bigint;
  control: bigint;
  dumpPath: string;
  outDir: string;
  trace: AmdTrace;
  /** Requester ids of the guest's PCI functions. */
  pciFunctions: Set<number>;
}

function bdfOf(devid: number): string {
  const h = (n: number): string => n.toString(16).padStart(2, "0");
  return `${h(devid >> 8)}:${h((devid >> 3) & 0x1f)}.${devid & 7}`;
}

/** The dump's bytes at [addr, addr + n), zero-filled past its end. */
function dumpBytes(dump: Buffer, addr: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  if (addr < dump.length) out.set(dump.subarray(addr, Math.min(dump.length, addr + n)));
  return out;
}

/**
 * The model's answer for one traced remap with the registers of its time: the DTE of the DeviceID and the
 * interrupt table it points to are copied from the dump into the model's memory.
 */
async function replay(ctx: MsiContext, dump: Buffer, sources: SourceIds, m: AmdMsiTrace, state: RegisterState): Promise<{ kind: string; address: number; data: number; deviceId: number }> {
  const { AmdViUnit } = await dist<UnitModule>("hw/amdvi/unit.js");
  const { PhysicalMemory } = await dist<MemoryModule>("core/memory.js");
  const mem = new PhysicalMemory();
  const base = Number(ctx.dtb & 0x000f_ffff_ffff_f000n);
  const dte = dumpBytes(dump, base + m.devid * 32, 32);
  mem.write(base + m.devid * 32, dte);
  const d = new DataView(dte.buffer);
  const root = (d.getUint32(16, true) & 0xffff_ffc0) + (d.getUint32(20, true) & 0xfffff) * 2 ** 32;
  const len = (d.getUint32(16, true) >>> 1) & 0xf;
  if (root > 0 && len <= 0xb) mem.write(root, dumpBytes(dump, root, (1 << len) * 16));
  const unit = new AmdViUnit(mem, { sources });
  if (!state.untouched && state.devTabProgrammed) unit.mmioWrite(0x00, 8, Number(ctx.dtb & 0xffff_ffffn), Number(ctx.dtb >> 32n));
  if (state.control !== 0n) unit.mmioWrite(0x18, 8, Number(state.control & 0xffff_ffffn), Number(state.control >> 32n));
  const ioapic = [...sources.ioapic].find(([, dev]) => dev === m.devid);
  const source = ctx.pciFunctions.has(m.devid) || ioapic === undefined ? { kind: "pci" as const, rid: m.devid } : { kind: "ioapic" as const, id: ioapic[0] };
  const r = unit.remapInterrupt(source, Number(m.addr), Number(m.data));
  return { kind: r.kind, address: r.address >>> 0, data: r.data >>> 0, deviceId: r.deviceId };
}

/** The IRTE in the dump at the address QEMU read, compared with the value QEMU traced. */
function irteChanged(dump: Buffer, m: AmdMsiTrace): string | null {
  if (m.irte === null) return null;
  const a = Number(m.irte.addr);
  const b = Buffer.from(dumpBytes(dump, a, 16));
  const lo = b.readBigUInt64LE(0);
  const hi = b.readBigUInt64LE(8);
  const same = lo === m.irte.lo && (m.irte.hi === null || hi === m.irte.hi);
  return same ? null : `IRTE at ${hex(a)}: QEMU read ${m.irte.hi !== null ? hex(m.irte.hi) + ":" : ""}${hex(m.irte.lo)}, the dump holds ${hex(hi)}:${hex(lo)}`;
}

function describeState(s: RegisterState): string {
  if (s.untouched) return "before any AMD-Vi register access (unit as reset: no device table, Control 0)";
  return `${s.devTabProgrammed ? "device table programmed" : "device table base not yet written"}, Control ${hex(s.control)}`;
}

async function ivrsSources(ctx: MsiContext): Promise<{ ids: SourceIds; note: string } | null> {
  const path = join(ctx.outDir, "ivrs.bin");
  if (!existsSync(path)) return null;
  const { decodeIvrs } = await dist<IvrsModule>("acpi/ivrs.js");
  const { sourceIdsFromIvhd } = await dist<SourcesModule>("hw/amdvi/sources.js");
  const t = decodeIvrs(new Uint8Array(readFileSync(path)));
  const ivhd = t.blocks.find((b) => b.type === "IVHD");
  if (ivhd === undefined || ivhd.type !== "IVHD") return null;
  const ids = sourceIdsFromIvhd(ivhd);
  return { ids, note: `IVHD ${hex(ivhd.typeCode)}: IOAPIC ${[...ids.ioapic].map(([id, dev]) => `${id} at ${bdfOf(dev)}`).join(", ") || "none"}` };
}

export async function msiChecks(report: Report, ctx: MsiContext): Promise<void> {
  const ga = ((ctx.control >> 17n) & 1n) === 1n;
  const last = new Map<string, AmdMsiTrace>();
  for (const m of ctx.trace.msis) last.set(`${m.devid} ${m.addr} ${m.data}`, m);
  const ivrs = await ivrsSources(ctx);
  verdict(report, "the guest's IVRS names the IOAPIC's DeviceID", ivrs !== null && ivrs.ids.ioapic.size > 0, ivrs?.note ?? "no ivrs.bin or no IVHD in it");
  const dump = readFileSync(ctx.dumpPath);
  const counts = { matched: 0, abortedBoth: 0, replayed: 0, irteChanged: 0, dteChanged: 0 };
  const notes: string[] = [];
  const bad: string[] = [];
  for (const m of last.values()) {
    const bdf = bdfOf(m.devid);
    const w = await ctx.cli(["walk", "--mem", ctx.dumpPath, "--dtb", hex(ctx.dtb), "--sid", bdf, "--msi-addr", hex(m.addr), "--msi-data", hex(m.data), "--json", ...(ga ? ["--ga"] : [])]);
    let j: { result?: string; msi?: { address: string; data: string } } = {};
    try {
      j = JSON.parse(w.out) as typeof j;
    } catch {
      bad.push(`${bdf} data ${hex(m.data)}: exit ${w.code} ${w.err.trim()}`);
      continue;
    }
    if (m.aborted && j.result === "fault") counts.abortedBoth++;
    else if (!m.aborted && j.result === "ok" && j.msi && BigInt(j.msi.address) === m.outAddr && BigInt(j.msi.data) === m.outData) counts.matched++;
    else {
      const what = `${bdf} (${hex(m.addr)}, ${hex(m.data)}) at trace line ${m.line}: QEMU (${hex(m.outAddr)}, ${hex(m.outData)})`;
      const state = registerStateAt(ctx.trace, m.line);
      const r = ivrs === null ? null : await replay(ctx, dump, ivrs.ids, m, state);
      const irte = irteChanged(dump, m);
      const inval = (ctx.trace.devtabInvals.get(m.devid) ?? []).find((l) => l > m.line);
      if (r !== null && !m.aborted && (r.kind === "passed" || r.kind === "remapped") && r.address === Number(m.outAddr) && r.data === Number(m.outData)) {
        counts.replayed++;
        notes.push(`${what}; ${describeState(state)}: the model, given the request as from ${bdfOf(r.deviceId)}, ${r.kind === "passed" ? "forwards it unchanged" : "remaps it the same way"} too`);
      } else if (irte !== null) {
        counts.irteChanged++;
        notes.push(`${what}; ${irte}`);
      } else if (inval !== undefined) {
        counts.dteChanged++;
        notes.push(`${what}; the DTE was invalidated at line ${inval}, after it`);
      } else bad.push(`${what}, walk ${w.out.trim().slice(0, 160)}${r ? `, model at the time: ${r.kind} (${hex(r.address)}, ${hex(r.data)})` : ""}`);
    }
  }
  // Where QEMU and the model part: QEMU remaps once a device table is set, the model (as the spec) once IommuEn is.
  const window = ctx.trace.msis.filter((m) => {
    const s = registerStateAt(ctx.trace, m.line);
    return s.devTabProgrammed && (s.control & 1n) === 0n;
  }).length;
  verdict(report, "every traced MSI remap equals QEMU's output (on the dump, or with the registers of its time)", bad.length === 0 && last.size > 0,
    `${last.size} distinct traced remaps of ${ctx.trace.msis.length} (GA ${ga ? "on" : "off"}; ${window} traced between the device table write and IommuEn): ` +
    `${counts.matched} equal on the dump, ${counts.abortedBoth} aborted by both, ` +
    `${counts.replayed} equal in the register state of their time, ${counts.irteChanged} whose IRTE changed since, ${counts.dteChanged} whose DTE changed since; ` +
    `${bad.length} differ${bad.length ? ": " + bad.slice(0, 5).join("; ") : ""}${notes.length ? ". " + notes.join("; ") : ""}`);
  sourceCheck(report, ctx, ivrs?.ids ?? null);
}

/** Every remap request from something that is no PCI function carries the IVRS IOAPIC's DeviceID. */
function sourceCheck(report: Report, ctx: MsiContext, ids: SourceIds | null): void {
  const counts = new Map<number, number>();
  for (const m of ctx.trace.msis) if (!ctx.pciFunctions.has(m.devid)) counts.set(m.devid, (counts.get(m.devid) ?? 0) + 1);
  const ioapicIds = new Set(ids?.ioapic.values() ?? []);
  const stray = [...counts.keys()].filter((d) => !ioapicIds.has(d));
  verdict(report, "interrupts without a PCI function carry the DeviceID of the IVHD IOAPIC entry", ids !== null && counts.size > 0 && stray.length === 0,
    `${[...counts].map(([d, n]) => `${n} requests from ${bdfOf(d)}`).join(", ") || "none"}; IVHD IOAPIC DeviceIDs ${[...ioapicIds].map(bdfOf).join(", ") || "none"}` +
    (stray.length ? `; not in the IVHD: ${stray.map(bdfOf).join(", ")}` : ""));
}
