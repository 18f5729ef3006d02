/**
 * The tour: what an IOMMU changes for the operating system, each story run twice on the same machine (without
 * and with the IOMMU, or with the two settings compared), every number measured in the simulation.
 *
 *   a  one contiguous DMA buffer from scattered pages      (DMA segments needed vs one IOVA range)
 *   b  a 32-bit device with memory above 4 GiB             (swiotlb bounces and bytes copied vs none)
 *   c  a buggy device writing past its buffer              (memory corrupted vs blocked, with the fault record)
 *   d  two devices, two address spaces                     (same IOVA, different physical pages)
 *   e  iommu=pt vs translated                              (identity domain: no protection, bounces again)
 *   f  strict vs lazy unmap                                (invalidations per unmap, stale window)
 */
import { Machine } from "../hw/machine.js";
import type { MachineConfigInput } from "../hw/machine-config.js";
import { DMA_MAPPING_ERROR } from "./dma.js";
import { Kernel } from "./kernel.js";

export interface TourRun {
  label: string;
  cmdline: string;
  numbers: Record<string, number | string | boolean>;
  summary: string;
}

export interface TourStory {
  id: string;
  title: string;
  runs: TourRun[];
}

export interface TourOptions {
  /** Machine to run on (preset name or configuration); default q35. */
  machine?: string | MachineConfigInput;
  /** Pages in the scattered buffer of story a. */
  sgPages?: number;
  /** Buffers mapped and unmapped in story f. */
  unmaps?: number;
}

const PAGE = 4096;

function boot(machine: string | MachineConfigInput, cmdline: string): { m: Machine; k: Kernel } {
  const m = typeof machine === "string" ? Machine.load(machine) : new Machine(machine);
  return { m, k: Kernel.boot(m, { cmdline }) };
}

/** The first driver-bound function with the given DMA reach (64 or 32 bits), preferring PCIe. */
function pick(k: Kernel, bits: (b: number) => boolean, skip: string[] = []): string {
  const d = k.devices.find((x) => x.driver !== null && x.dmaBits !== null && bits(x.dmaBits) && !skip.includes(x.name));
  if (d === undefined) throw new Error("the machine has no suitable DMA-capable device for this story");
  return d.name;
}

const OFF = "intel_iommu=off";
const ON = "intel_iommu=on";

function storyA(machine: string | MachineConfigInput, n: number): TourStory {
  const run = (cmdline: string, label: string): TourRun => {
    const { k } = boot(machine, cmdline);
    const bdf = pick(k, (b) => b === 64);
    const dma = k.dma(bdf);
    dma.maxSegmentSize = 2 ** 31; // the driver raises it (dma_set_max_seg_size), as storage drivers do
    const pages: number[] = [];
    for (let i = 0; i < n; i++) {
      pages.push(k.pages.alloc(1));
      k.pages.alloc(1); // someone else's page in between: physically scattered
    }
    const m = dma.mapSg(pages.map((p) => ({ phys: p, length: PAGE })), "to-device");
    let contiguous = 0;
    for (let i = 1; i < pages.length; i++) if (pages[i] === (pages[i - 1] ?? 0) + PAGE) contiguous++;
    const segs = m?.segments.length ?? 0;
    return {
      label,
      cmdline,
      numbers: { device: bdf, bytes: n * PAGE, physicalRuns: n - contiguous, dmaSegments: segs, iovaRanges: m?.iovaRanges ?? 0 },
      summary: m?.iovaRanges ? `${n} scattered pages -> ${segs} DMA segment (one IOVA range at 0x${m.segments[0]!.dmaAddress.toString(16)})` : `${n} scattered pages -> ${segs} DMA segments (scatter-gather entries the device must walk)`,
    };
  };
  return { id: "a", title: "One contiguous DMA buffer from scattered pages", runs: [run(OFF, "without IOMMU"), run(ON, "with IOMMU")] };
}

function storyB(machine: string | MachineConfigInput): TourStory {
  const run = (cmdline: string, label: string): TourRun => {
    const { m, k } = boot(machine, cmdline);
    const bdf = pick(k, (b) => b <= 32);
    const dma = k.dma(bdf);
    const buffers = 16;
    let above = 0;
    let errors = 0;
    const dev = m.device(bdf);
    for (let i = 0; i < buffers; i++) {
      const p = k.pages.alloc(1);
      if (p >= 2 ** 32) above++;
      m.memory.fill(p, PAGE, 0x11);
      const a = dma.mapSingle(p, PAGE, "bidirectional");
      if (a === DMA_MAPPING_ERROR) {
        errors++;
        continue;
      }
      dev.write(a, new Uint8Array(64).fill(0x22));
      dma.unmapSingle(a, PAGE, "bidirectional");
    }
    const s = k.swiotlb?.stats;
    return {
      label,
      cmdline,
      numbers: { device: bdf, dmaBits: dma.maskBits, buffers, buffersAbove4G: above, bounces: s?.bounces ?? 0, bytesCopied: s?.bytesCopied ?? 0, mappingErrors: errors },
      summary: `${buffers} buffers (${above} above 4 GiB): ${s?.bounces ?? 0} bounces, ${s?.bytesCopied ?? 0} bytes copied`,
    };
  };
  return { id: "b", title: "A 32-bit device with memory above 4 GiB", runs: [run(OFF, "without IOMMU"), run(ON, "with IOMMU")] };
}

function storyC(machine: string | MachineConfigInput): TourStory {
  const run = (cmdline: string, label: string): TourRun => {
    const { m, k } = boot(machine, cmdline);
    const bdf = pick(k, (b) => b === 64);
    const dma = k.dma(bdf);
    const buf = k.pages.alloc(2);
    const victim = buf + PAGE; // the kernel's next page
    m.memory.fill(victim, PAGE, 0x5a);
    const a = dma.mapSingle(buf, PAGE, "from-device");
    const r = m.device(bdf).write(a + PAGE, new Uint8Array(256).fill(0xee));
    let corrupted = 0;
    const after = m.memory.read(victim, PAGE);
    for (const b of after) if (b !== 0x5a) corrupted++;
    const f = k.driver.faults[0];
    return {
      label,
      cmdline,
      numbers: {
        device: bdf,
        strayWriteAt: "0x" + (a + PAGE).toString(16),
        bytesCorrupted: corrupted,
        blocked: !r.ok,
        faultReason: f ? "0x" + f.reason.toString(16).padStart(2, "0") : "none",
        faultText: f?.reasonText ?? "none",
        faultAddr: f ? "0x" + f.addr.toString(16) : "none",
      },
      summary: r.ok ? `${corrupted} bytes of the kernel's next page overwritten, nothing noticed` : `blocked: [fault reason 0x${f?.reason.toString(16).padStart(2, "0")}] ${f?.reasonText} at 0x${f?.addr.toString(16)}, 0 bytes corrupted`,
    };
  };
  return { id: "c", title: "A buggy device writing outside its buffer", runs: [run(OFF, "without IOMMU"), run(ON, "with IOMMU")] };
}

function storyD(machine: string | MachineConfigInput): TourStory {
  const run = (cmdline: string, label: string): TourRun => {
    const { m, k } = boot(machine, cmdline);
    const a = pick(k, (b) => b === 64);
    const b = pick(k, (x) => x === 64, [a]);
    const da = k.dma(a);
    const db = k.dma(b);
    const pa = k.pages.alloc(1);
    const pb = k.pages.alloc(1);
    const ia = da.mapSingle(pa, PAGE, "from-device");
    const ib = db.mapSingle(pb, PAGE, "from-device");
    // Device a writes where device b's buffer is, as device b's bus address.
    const cross = m.device(a).write(ib, new Uint8Array([0x99]));
    const crossHit = m.memory.read8(pb) === 0x99;
    return {
      label,
      cmdline,
      numbers: { deviceA: a, deviceB: b, dmaA: "0x" + ia.toString(16), dmaB: "0x" + ib.toString(16), sameAddress: ia === ib, physA: "0x" + pa.toString(16), physB: "0x" + pb.toString(16), aReachesB: cross.ok && crossHit },
      summary: ia === ib ? `both use bus address 0x${ia.toString(16)}, which is 0x${pa.toString(16)} for one and 0x${pb.toString(16)} for the other; ${a} cannot reach ${b}'s buffer` : `one address space: bus address = physical address; ${a} ${crossHit ? "can" : "cannot"} write ${b}'s buffer`,
    };
  };
  return { id: "d", title: "Two devices, two address spaces", runs: [run(OFF, "without IOMMU"), run(ON, "with IOMMU")] };
}

function storyE(machine: string | MachineConfigInput): TourStory {
  const run = (cmdline: string, label: string): TourRun => {
    const { m, k } = boot(machine, cmdline);
    const bdf = pick(k, (b) => b === 64);
    const dma = k.dma(bdf);
    const buf = k.pages.alloc(2);
    const a = dma.mapSingle(buf, PAGE, "from-device");
    const stray = m.device(bdf).write(a + PAGE, new Uint8Array([1]));
    const d32 = k.dma(pick(k, (b) => b <= 32));
    const p = k.pages.alloc(1);
    const a32 = d32.mapSingle(p, PAGE, "to-device");
    const types = [...new Set(k.groups.map((g) => g.type))].join(",");
    return {
      label,
      cmdline,
      numbers: { groupTypes: types, dmaIsPhysical: a === buf, strayWriteBlocked: !stray.ok, bounces32: k.swiotlb?.stats.bounces ?? 0, dma32Address: "0x" + a32.toString(16) },
      summary: `groups ${types}; bus address ${a === buf ? "=" : "!="} physical; stray write ${stray.ok ? "lands" : "blocked"}; 32-bit device: ${k.swiotlb?.stats.bounces ?? 0} bounce(s)`,
    };
  };
  return { id: "e", title: "iommu=pt versus translated", runs: [run(`${ON} iommu=pt`, "iommu=pt (identity)"), run(ON, "translated (DMA-FQ)")] };
}

function storyF(machine: string | MachineConfigInput, n: number): TourStory {
  const run = (cmdline: string, label: string): TourRun => {
    const { m, k } = boot(machine, cmdline);
    const bdf = pick(k, (b) => b === 64);
    const dma = k.dma(bdf);
    const dev = m.device(bdf);
    const unit = k.driver.units[0]!;
    const before = { ...unit.inv };
    const buf = k.pages.alloc(1);
    let staleHits = 0;
    const t0 = k.clock.ns;
    for (let i = 0; i < n; i++) {
      const a = dma.mapSingle(buf, PAGE, "from-device");
      dev.write(a, new Uint8Array([i & 0xff]));
      dma.unmapSingle(a, PAGE, "from-device");
      if (dev.write(a, new Uint8Array([0xff])).ok) staleHits++; // the device still reaches the page after unmap
      k.advance(10_000); // 10 µs between I/Os
    }
    const busy = k.clock.ns - t0;
    k.advance(20e6);
    const inv = unit.inv;
    const iotlbInv = inv.iotlbPage - before.iotlbPage + (inv.iotlbDomain - before.iotlbDomain) + (inv.iotlbGlobal - before.iotlbGlobal);
    const cookie = k.dma(bdf).domain?.cookie as { fqStats?: { maxStaleNs: number; timerFlushes: number; fullFlushes: number } } | null;
    const fq = cookie?.fqStats;
    return {
      label,
      cmdline,
      numbers: {
        unmaps: n,
        iotlbInvalidations: iotlbInv,
        invalidationsPerUnmap: Math.round((iotlbInv / n) * 1000) / 1000,
        waitDescriptors: inv.waits - before.waits,
        staleAccessesAfterUnmap: staleHits,
        maxStaleWindowUs: Math.round((fq?.maxStaleNs ?? 0) / 1000),
        queueFullFlushes: fq?.fullFlushes ?? 0,
        timerFlushes: fq?.timerFlushes ?? 0,
        busyUs: Math.round(busy / 1000),
      },
      summary: `${n} unmaps: ${iotlbInv} IOTLB invalidations (${(iotlbInv / n).toFixed(3)} per unmap); ${staleHits} DMA writes reached unmapped pages; stale window up to ${((fq?.maxStaleNs ?? 0) / 1e6).toFixed(2)} ms`,
    };
  };
  return { id: "f", title: "Strict versus lazy unmap", runs: [run("iommu.strict=1", "strict"), run("iommu.strict=0", "lazy (flush queue)")] };
}

/** Runs every story; every number comes from the simulation. */
export function runTour(opts: TourOptions = {}): TourStory[] {
  const machine = opts.machine ?? "q35";
  return [
    storyA(machine, opts.sgPages ?? 64),
    storyB(machine),
    storyC(machine),
    storyD(machine),
    storyE(machine),
    storyF(machine, opts.unmaps ?? 1000),
  ];
}

export function renderTour(stories: TourStory[]): string {
  const out: string[] = [];
  for (const s of stories) {
    out.push(`(${s.id}) ${s.title}`);
    for (const r of s.runs) {
      // Short labels share the line with their summary; long ones get a line of their own.
      if (r.label.length < 24) out.push(`    ${(r.label + ":").padEnd(24)} ${r.summary}`);
      else out.push(`    ${r.label}:`, `        ${r.summary}`);
    }
    out.push("");
  }
  return out.join("\n");
}
