/**
 * `dma-map-sg`: map+unmap of 64-page physically scattered lists through the simulated kernel's DMA API, strict
 * and lazy, with IOTLB invalidations per unmap; baseline: the same calls without an IOMMU (direct mapping). The
 * three run on three kernels with their samples alternating (targets: strict ≤ 3× direct, lazy ≤ strict).
 * `scale`, in two processes: the time to build and boot a machine with 256 PCI devices (target ≤ 0.5 s); and
 * the peak resident memory of a process that maps 10 M 4 KiB pages into one domain (target ≤ 2 GiB).
 */
import { Machine } from "../../hw/machine.js";
import type { MachineConfigInput } from "../../hw/machine-config.js";
import type { PciFunctionInput } from "../../hw/pci/topology.js";
import { Kernel } from "../../os/kernel.js";
import type { SgEntry } from "../../os/dma.js";
import { cpuNs, measureInterleaved, result, stats, type BenchCase, type BenchOptions, type CaseResult } from "../harness.js";

const PAGE = 4096;
const SG_PAGES = 64;

function bootQ35(cmdline: string): Kernel {
  return Kernel.boot(Machine.load("q35"), { cmdline });
}

function sgPairs(k: Kernel): { batch: (n: number) => number; iotlbInvalidations: () => number } {
  const dev = k.devices.find((d) => d.driver !== null && d.dmaBits === 64);
  if (!dev) throw new Error("q35 has no 64-bit DMA device");
  const dma = k.dma(dev.name);
  dma.maxSegmentSize = 2 ** 31;
  const sg: SgEntry[] = [];
  for (let i = 0; i < SG_PAGES; i++) {
    sg.push({ phys: k.pages.alloc(1), length: PAGE });
    k.pages.alloc(1); // keep the list physically scattered
  }
  const unit = k.driver.units[0];
  const count = () => (unit ? unit.inv.iotlbPage + unit.inv.iotlbDomain + unit.inv.iotlbGlobal : 0);
  return {
    batch: (n) => {
      let acc = 0;
      for (let i = 0; i < n; i++) {
        const m = dma.mapSg(sg, "to-device");
        if (m === null) throw new Error("map_sg failed");
        acc += m.segments.length;
        dma.unmapSg(m, "to-device");
        k.advance(1000); // 1 µs of simulated time per I/O, so the flush queue's 10 ms timer runs as it would
      }
      return acc;
    },
    iotlbInvalidations: count,
  };
}

export function dmaMapSg(opts: BenchOptions): CaseResult[] {
  const ops = opts.quick ? 50 : 2000;
  const samples = opts.quick ? 3 : 15;
  const direct = sgPairs(bootQ35("intel_iommu=off"));
  const modes = (["strict", "lazy"] as const).map((mode) => sgPairs(bootQ35(`intel_iommu=on iommu.strict=${mode === "strict" ? 1 : 0}`)));
  const before = modes.map((p) => p.iotlbInvalidations());
  const [d, ...timed] = measureInterleaved([direct.batch, ...modes.map((p) => p.batch)], ops, samples, 1);
  const baseline = { name: "no IOMMU (direct mapping)", samples: d!, interleaved: true };
  const unmaps = ops * (samples + 1);
  const rows = (["strict", "lazy"] as const).map((mode, i) =>
    result(`dma-map-sg@${mode}`, timed[i]!, baseline, {
      extra: { pagesPerList: SG_PAGES, invalidationsPerUnmap: (modes[i]!.iotlbInvalidations() - before[i]!) / unmaps },
    }),
  );
  const [strict, lazy] = rows as [CaseResult, CaseResult];
  strict.target = "≤ 3× direct";
  strict.met = strict.ratio !== null && strict.ratio <= 3;
  // Lazy against strict, sample by neighbouring sample as for the ratios.
  const lazyOverStrict = stats(timed[1]!.map((x, i) => x / (timed[0]![i] ?? NaN))).median;
  lazy.target = "≤ strict";
  lazy.met = lazyOverStrict <= 1;
  lazy.extra = { ...lazy.extra, lazyOverStrict };
  return rows;
}

/** A machine with `n` PCI endpoints: root ports, each with one multifunction device of 8 functions. */
export function manyDevices(n: number): MachineConfigInput {
  const devices: PciFunctionInput[] = [{ bdf: "00:00.0", type: "host-bridge" }];
  const ports = Math.ceil(n / 8);
  for (let p = 0; p < ports; p++) {
    const bus = p + 1;
    // Root ports are functions of multifunction slots on bus 0, as on real chipsets (00:1c.0–00:1c.7).
    const slot = (1 + Math.floor(p / 8)).toString(16).padStart(2, "0");
    devices.push({ bdf: `00:${slot}.${p % 8}`, type: "root-port", secondaryBus: bus, acs: true });
    for (let f = 0; f < 8 && p * 8 + f < n; f++) {
      devices.push({ bdf: `${bus.toString(16).padStart(2, "0")}:00.${f}`, type: "endpoint", id: "8086:10d3", class: "0x020000", driver: "e1000e", msi: "msix", msiVectors: 2 });
    }
  }
  return { name: `many-${n}`, ram: { size: "4G" }, cpus: 4, devices, iommus: [{ base: "0xfed90000", scope: "all", interruptRemapping: true }] };
}

/** Build and boot a 256-device machine (build the machine and its firmware, boot the kernel with groups and domains). */
function scaleBoot(opts: BenchOptions): CaseResult {
  const cfg = manyDevices(256);
  const bootMs: number[] = [];
  for (let i = 0; i < (opts.quick ? 2 : 7); i++) {
    const t0 = cpuNs();
    const k = Kernel.boot(new Machine(cfg), { cmdline: "intel_iommu=on" });
    bootMs.push((cpuNs() - t0) / 1e6);
    if (k.devices.length < 256) throw new Error(`expected 256 devices, the kernel found ${k.devices.length}`);
  }
  const boot = result("scale@boot-256", bootMs, null, { unit: "ms", target: "≤ 500 ms", met: stats(bootMs).median <= 500 });
  boot.opsPerSec = 1000 / boot.median;
  return boot;
}

/** Peak RSS of this process (it runs nothing else) with 10 M mapped 4 KiB pages in one domain's second-level tables. */
function scaleRss(opts: BenchOptions): CaseResult {
  const pages = opts.quick ? 1 << 16 : 10_000_000;
  const k = bootQ35("intel_iommu=on iommu.strict=1");
  const dev = k.devices.find((d) => d.driver !== null && d.dmaBits === 64);
  const tables = dev ? k.dma(dev.name).domain?.tables : null;
  if (!tables) throw new Error("no translated domain to map into");
  const rssBefore = process.memoryUsage().rss;
  const t0 = cpuNs();
  const chunk = 1 << 16;
  const physBase = 0x1_0000_0; // pfn of 4 GiB: map to RAM above 4 GiB, repeating over 1 GiB of it
  for (let done = 0; done < pages; done += chunk) {
    const n = Math.min(chunk, pages - done);
    tables.map(0x10_0000 + done, physBase + (done % (1 << 18)), n, 3);
    if (!opts.quick && done % (1 << 21) === 0) opts.progress(`scale: ${(done / 1e6).toFixed(1)} M pages mapped…`);
  }
  const mapNs = cpuNs() - t0;
  const peakRss = process.resourceUsage().maxRSS * 1024;
  const rss = result("scale@rss-10m", [peakRss], null, {
    unit: "bytes",
    target: "≤ 2 GiB peak RSS",
    met: peakRss <= 2 ** 31,
    extra: { mappedPages: pages, tablePages: tables.tablePages, rssAfterBootMiB: Math.round(rssBefore / 2 ** 20), mapNsPerPage: mapNs / pages },
  });
  rss.opsPerSec = 0;
  return rss;
}

export function scale(opts: BenchOptions, part?: string): CaseResult[] {
  if (part === "boot-256") return [scaleBoot(opts)];
  if (part === "rss-10m") return [scaleRss(opts)];
  return [scaleBoot(opts), scaleRss(opts)];
}

export const dmaMapSgCase: BenchCase = {
  name: "dma-map-sg",
  summary: "map+unmap of 64-page scattered lists, strict and lazy, vs no IOMMU; invalidations per unmap",
  run: (opts) => dmaMapSg(opts),
};

export const scaleCase: BenchCase = {
  name: "scale",
  summary: "boot time of a 256-device machine; peak RSS of a process with 10 M mapped pages (each in its own process)",
  parts: ["boot-256", "rss-10m"],
  run: (opts, part) => scale(opts, part),
};
