/**
 * The tour: what an IOMMU changes for the operating system, each story run twice on the same machine (without
 * and with the IOMMU, or with the two settings compared), every number measured in the simulation. The command
 * lines follow the machine's kind of IOMMU (VT-d or AMD-Vi), and each run checks the kernel is in the state it
 * describes.
 *
 *   a  one contiguous DMA buffer from scattered pages      (DMA segments needed vs one IOVA range)
 *   b  a 32-bit device with memory above 4 GiB             (swiotlb bounces and bytes copied vs none)
 *   c  a buggy device writing past its buffer              (memory corrupted vs blocked, with the fault the unit logged)
 *   d  two devices, two address spaces                     (same IOVA, different physical pages)
 *   e  iommu=pt vs translated                              (identity domain: no protection, bounces again)
 *   f  strict vs lazy unmap                                (invalidations per unmap, stale window)
 */
import { Machine } from "../hw/machine.js";
import type { MachineConfigInput } from "../hw/machine-config.js";
import { DMA_MAPPING_ERROR } from "./dma.js";
import type { KernelFault } from "./iommu-faults.js";
import type { IommuOps } from "./iommu-ops.js";
import { iommuCmdline } from "./cmdline.js";
import { Kernel } from "./kernel.js";
import { pciName, type KPciDev } from "./pci.js";

export interface TourRun {
  label: string;
  cmdline: string;
  numbers: Record<string, number | string | boolean | null>;
  summary: string;
}

export interface TourStory {
  id: string;
  title: string;
  /** The runs that happened; fewer than two (or none) when the machine lacks what a run needs. */
  runs: TourRun[];
  /** Why runs are missing: the hardware the story needs and the machine does not have. */
  skipped?: string;
}

/**
 * Thrown inside a story when the machine lacks the hardware the story needs, or its kernel is not in the state
 * the run describes; the run is reported as missing, with the reason.
 */
export class StoryNotApplicable extends Error {}

export interface TourOptions {
  /** Machine to run on (preset name or configuration); default q35. */
  machine?: string | MachineConfigInput;
  /** Pages in the scattered buffer of story a. */
  sgPages?: number;
  /** Buffers mapped and unmapped in story f. */
  unmaps?: number;
  /** Sees each run's machine and kernel once booted, before the story runs (to watch what the hardware does). */
  onBoot?: (story: string, m: Machine, k: Kernel) => void;
  /** Sees each run with the machine and kernel it ran on (to check a sentence against the hardware's state). */
  observe?: (story: string, run: TourRun, m: Machine, k: Kernel) => void;
}

/** What every story needs: the machine, the observers, and the machine and kernel of the run in progress. */
interface Ctx {
  machine: string | MachineConfigInput;
  onBoot?: TourOptions["onBoot"];
  observe?: TourOptions["observe"];
  /** The story being run. */
  id?: string;
  last?: { m: Machine; k: Kernel };
}

const PAGE = 4096;

/** What a run asks of the IOMMU: turned off, on (translated), on with identity domains, strict or lazy unmap. */
type Side = "off" | "on" | "pt" | "strict" | "lazy";

/**
 * The command line that asks for each side on the machine's kind of IOMMU: off and on as iommuCmdline has them
 * (intel_iommu=off / on, amd_iommu=off / nothing); `iommu=pt` and `iommu.strict=` belong to the IOMMU core and
 * read the same on both.
 */
function sideCmdline(kind: "vtd" | "amd-vi" | null, side: Side): string {
  if (side === "strict" || side === "lazy") return side === "strict" ? "iommu.strict=1" : "iommu.strict=0";
  return iommuCmdline(kind, side !== "off", side === "pt" ? "iommu=pt" : undefined);
}

interface Booted {
  m: Machine;
  k: Kernel;
  /** The command line the kernel booted with. */
  cmdline: string;
}

/**
 * Boots the kernel with the command line for `side` on this machine's kind of IOMMU (VT-d's when it has none),
 * and checks that the IOMMU is in the state the run describes: off means no driver translates DMA, every other
 * side means one does. A run whose kernel is not in that state is not run, so no sentence describes a state
 * that was not there.
 */
function boot(ctx: Ctx, side: Side): Booted {
  const m = typeof ctx.machine === "string" ? Machine.load(ctx.machine) : new Machine(ctx.machine);
  const cmdline = sideCmdline(m.iommuKind, side);
  const k = Kernel.boot(m, { cmdline });
  ctx.last = { m, k };
  ctx.onBoot?.(ctx.id ?? "", m, k);
  const translating = k.ops !== null || k.dmaRemapping;
  if (side === "off" && translating) throw new StoryNotApplicable(`'${cmdline}' left the IOMMU translating`);
  if (side !== "off" && !translating) throw new StoryNotApplicable("the kernel found no active IOMMU on this machine");
  return { m, k, cmdline };
}

type RunSpec = [side: Side, label: string];

/** Runs each side of a story; a side the machine cannot run is left out and the reason recorded. */
function story(ctx: Ctx, id: string, title: string, specs: RunSpec[], run: (side: Side, label: string) => TourRun): TourStory {
  const runs: TourRun[] = [];
  const missing: [label: string, why: string][] = [];
  ctx.id = id;
  for (const [side, label] of specs) {
    try {
      ctx.last = undefined;
      const r = run(side, label);
      runs.push(r);
      const last = ctx.last as Ctx["last"]; // set by boot() inside run
      if (last !== undefined) ctx.observe?.(id, r, last.m, last.k);
    } catch (e) {
      if (!(e instanceof StoryNotApplicable)) throw e;
      missing.push([label, e.message]);
    }
  }
  if (missing.length === 0) return { id, title, runs };
  // When no run happened for one reason, the reason is enough; otherwise each missing run names its own.
  const reasons = new Set(missing.map(([, why]) => why));
  const skipped = runs.length === 0 && reasons.size === 1 ? missing[0]![1] : missing.map(([l, why]) => `${l}: ${why}`).join("; ");
  return { id, title, runs, skipped };
}

/** The first driver-bound function with the given DMA reach (64 or 32 bits), preferring PCIe. */
function pick(k: Kernel, bits: (b: number) => boolean, what: string, skip: string[] = [], also: (d: KPciDev) => boolean = () => true): string {
  const d = k.devices.find((x) => x.driver !== null && x.dmaBits !== null && bits(x.dmaBits) && !skip.includes(x.name) && also(x));
  if (d === undefined) throw new StoryNotApplicable(`needs ${what}; this machine has none`);
  return d.name;
}

const BOTH: RunSpec[] = [["off", "without IOMMU"], ["on", "with IOMMU"]];
const DEV64 = "a driver-bound device with 64-bit DMA";
const DEV32 = "a driver-bound device limited to 32-bit DMA";


function storyA(ctx: Ctx, n: number): TourStory {
  const run = (side: Side, label: string): TourRun => {
    const { k, cmdline } = boot(ctx, side);
    const bdf = pick(k, (b) => b === 64, DEV64);
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
      summary: m?.iovaRanges
        ? `${n} scattered pages -> ${plural(segs, "DMA segment")} (${plural(m.iovaRanges, "IOVA range")}, the first at 0x${m.segments[0]!.dmaAddress.toString(16)})`
        : `${n} scattered pages -> ${plural(segs, "DMA segment")} (scatter-gather entries the device must walk)`,
    };
  };
  return story(ctx, "a", "One contiguous DMA buffer from scattered pages", BOTH, run);
}

function storyB(ctx: Ctx): TourStory {
  const run = (side: Side, label: string): TourRun => {
    const { m, k, cmdline } = boot(ctx, side);
    const bdf = pick(k, (b) => b <= 32, DEV32);
    const dma = k.dma(bdf);
    const buffers = 16;
    let above = 0;
    let errors = 0;
    let arrived = 0;
    const dev = m.device(bdf);
    const data = new Uint8Array(64).fill(0x22);
    for (let i = 0; i < buffers; i++) {
      const p = k.pages.alloc(1);
      if (p >= 2 ** 32) above++;
      m.memory.fill(p, PAGE, 0x11);
      const a = dma.mapSingle(p, PAGE, "bidirectional");
      if (a === DMA_MAPPING_ERROR) {
        errors++;
        continue;
      }
      dev.write(a, data);
      dma.unmapSingle(a, PAGE, "bidirectional");
      // Read back: the device's bytes are in the driver's buffer (copied back by swiotlb where it bounced).
      if (m.memory.read(p, data.length).every((b) => b === 0x22)) arrived++;
    }
    const s = k.swiotlb?.stats;
    return {
      label,
      cmdline,
      numbers: { device: bdf, dmaBits: dma.maskBits, buffers, buffersAbove4G: above, bounces: s?.bounces ?? 0, bytesCopied: s?.bytesCopied ?? 0, mappingErrors: errors, deviceWritesArrived: arrived },
      summary: `${buffers} buffers (${above} above 4 GiB): ${plural(s?.bounces ?? 0, "bounce")}, ${s?.bytesCopied ?? 0} bytes copied; ${arrived} of ${buffers} device writes arrived in the buffer`,
    };
  };
  return story(ctx, "b", "A 32-bit device with memory above 4 GiB", BOTH, run);
}

/**
 * Story c's sentence, from what was read back: the write's outcome, the bytes changed and the first fault the
 * kernel read after it, named as the hardware reported it (a VT-d fault record, an AMD-Vi event log entry).
 */
function summaryC(written: boolean, corrupted: number, f: KernelFault | undefined, kind: IommuOps["kind"] | undefined): string {
  const damage = corrupted === 0 ? "nothing of the kernel's next page changed" : `${plural(corrupted, "byte")} of the kernel's next page overwritten`;
  if (written) return `${damage}${corrupted === 0 ? "" : ", nothing noticed"}`;
  let record: string;
  if (f === undefined) record = kind === "amd" ? "no event log entry was read" : "no fault record was read";
  else if (f.origin === "vtd-fault-record") record = `[fault reason ${hex2(f.reason)}] ${f.text} at 0x${f.addr.toString(16)}`;
  else record = `event log entry [${f.name}, code ${hex2(f.reason)}] for ${pciName(f.sourceId)}, ${f.type} at 0x${f.addr.toString(16)}`;
  return `blocked: ${record}; ${damage}`;
}

const hex2 = (n: number): string => "0x" + n.toString(16).padStart(2, "0");

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function storyC(ctx: Ctx): TourStory {
  const run = (side: Side, label: string): TourRun => {
    const { m, k, cmdline } = boot(ctx, side);
    const bdf = pick(k, (b) => b === 64, DEV64);
    const dma = k.dma(bdf);
    const buf = k.pages.alloc(2);
    const victim = buf + PAGE; // the kernel's next page
    m.memory.fill(victim, PAGE, 0x5a);
    const a = dma.mapSingle(buf, PAGE, "from-device");
    const seen = k.faultCount;
    const r = m.device(bdf).write(a + PAGE, new Uint8Array(256).fill(0xee));
    let corrupted = 0;
    const after = m.memory.read(victim, PAGE);
    for (const b of after) if (b !== 0x5a) corrupted++;
    const f = k.faultsSince(seen)[0];
    return {
      label,
      cmdline,
      numbers: {
        device: bdf,
        strayWriteAt: "0x" + (a + PAGE).toString(16),
        bytesCorrupted: corrupted,
        blocked: !r.ok,
        faultReason: f ? hex2(f.reason) : "none",
        faultText: f?.text ?? "none",
        faultAddr: f ? "0x" + f.addr.toString(16) : "none",
      },
      summary: summaryC(r.ok, corrupted, f, k.ops?.kind),
    };
  };
  return story(ctx, "c", "A buggy device writing outside its buffer", BOTH, run);
}

function storyD(ctx: Ctx): TourStory {
  const run = (side: Side, label: string): TourRun => {
    const { m, k, cmdline } = boot(ctx, side);
    const a = pick(k, (b) => b === 64, DEV64);
    const b = pick(k, (x) => x === 64, "two driver-bound devices with 64-bit DMA", [a]);
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
      summary:
        (ia === ib
          ? `both use bus address 0x${ia.toString(16)}, which is 0x${pa.toString(16)} for one and 0x${pb.toString(16)} for the other`
          : `bus addresses 0x${ia.toString(16)} and 0x${ib.toString(16)} for physical 0x${pa.toString(16)} and 0x${pb.toString(16)}`) +
        `; ${a} ${cross.ok && crossHit ? "can write" : "cannot reach"} ${b}'s buffer`,
    };
  };
  return story(ctx, "d", "Two devices, two address spaces", BOTH, run);
}

function storyE(ctx: Ctx): TourStory {
  const run = (side: Side, label: string): TourRun => {
    const { m, k, cmdline } = boot(ctx, side);
    const bdf = pick(k, (b) => b === 64, DEV64);
    const dma = k.dma(bdf);
    const buf = k.pages.alloc(2);
    const a = dma.mapSingle(buf, PAGE, "from-device");
    const stray = m.device(bdf).write(a + PAGE, new Uint8Array([1]));
    const d32 = k.dma(pick(k, (b) => b <= 32, DEV32));
    const p = k.pages.alloc(1);
    const a32 = d32.mapSingle(p, PAGE, "to-device");
    const types = [...new Set(k.groups.map((g) => g.type))].join(",");
    return {
      label,
      cmdline,
      numbers: { groupTypes: types, dmaIsPhysical: a === buf, strayWriteBlocked: !stray.ok, bounces32: k.swiotlb?.stats.bounces ?? 0, dma32Address: "0x" + a32.toString(16) },
      summary: `groups ${types}; bus address ${a === buf ? "=" : "!="} physical; stray write ${stray.ok ? "lands" : "blocked"}; 32-bit device: ${plural(k.swiotlb?.stats.bounces ?? 0, "bounce")}`,
    };
  };
  return story(ctx, "e", "iommu=pt versus translated", [["pt", "iommu=pt (identity)"], ["on", "translated"]], run);
}

/** IOTLB invalidations and the waits for them, as the driver counted what it queued. */
interface InvalidationCounter {
  read(): { iotlb: number; waits: number };
  /** What one IOTLB invalidation is called in the summary. */
  what: string;
  /** The number's key for the waits: VT-d's invalidation wait descriptors, AMD-Vi's COMPLETION_WAIT commands. */
  waitKey: string;
  /** The number's key for invalidations issued after maps (AMD-Vi units caching non-present entries). */
  mapKey?: string;
}

/**
 * VT-d: the page-, domain- and global-selective IOTLB invalidations of every remapping unit (the device's own
 * unit is the one that flushes). AMD-Vi: the INVALIDATE_IOMMU_PAGES (and INVALIDATE_IOMMU_ALL) commands of every
 * unit, since the driver flushes a domain on each unit it has devices behind.
 */
function invalidationCounter(k: Kernel): InvalidationCounter {
  if (k.ops?.kind === "amd") {
    const units = k.amd.units;
    return {
      read: () => ({
        iotlb: units.reduce((t, u) => t + u.counts.invalidatePages + u.counts.invalidateAll, 0),
        waits: units.reduce((t, u) => t + u.counts.completionWait, 0),
      }),
      what: "IOTLB invalidation command",
      waitKey: "completionWaits",
      mapKey: "invalidationsAfterMap",
    };
  }
  const units = k.driver.units;
  if (units.length === 0) throw new StoryNotApplicable("needs an active remapping unit");
  return {
    read: () => ({
      iotlb: units.reduce((t, u) => t + u.inv.iotlbPage + u.inv.iotlbDomain + u.inv.iotlbGlobal, 0),
      waits: units.reduce((t, u) => t + u.inv.waits, 0),
    }),
    what: "IOTLB invalidation",
    waitKey: "waitDescriptors",
  };
}

function storyF(ctx: Ctx, n: number): TourStory {
  const run = (side: Side, label: string): TourRun => {
    const { m, k, cmdline } = boot(ctx, side);
    // Unmap policy matters only where the IOMMU translates: a device in an identity domain (the graphics device
    // Linux maps 1:1, say) reaches every page whatever is unmapped.
    const translated = (d: KPciDev): boolean => k.iommu.groupFor(d)?.domain?.type.startsWith("DMA") ?? false;
    const bdf = pick(k, (b) => b === 64, `${DEV64} in a translated (DMA) domain`, [], translated);
    const dma = k.dma(bdf);
    const dev = m.device(bdf);
    const counter = invalidationCounter(k);
    const before = counter.read();
    const buf = k.pages.alloc(1);
    let staleHits = 0;
    // Invalidations a map needed (units caching non-present entries) are counted apart from those of unmaps.
    let afterMap = 0;
    for (let i = 0; i < n; i++) {
      const x = counter.read().iotlb;
      const a = dma.mapSingle(buf, PAGE, "from-device");
      afterMap += counter.read().iotlb - x;
      dev.write(a, new Uint8Array([i & 0xff]));
      dma.unmapSingle(a, PAGE, "from-device");
      if (dev.write(a, new Uint8Array([0xff])).ok) staleHits++; // the device still reaches the page after unmap
      k.advance(10_000); // 10 µs between I/Os
    }
    k.advance(20e6);
    const after = counter.read();
    const iotlbInv = after.iotlb - before.iotlb - afterMap;
    const domain = k.dma(bdf).domain;
    const cookie = domain?.cookie as { fqStats?: { maxStaleNs: number; timerFlushes: number; fullFlushes: number } } | null;
    // Only a flush-queue (DMA-FQ) domain defers invalidation; a strict domain has no queue to measure.
    const fq = domain?.type === "DMA-FQ" ? cookie?.fqStats : undefined;
    // Asked for lazy unmap, the kernel may still have made the domain strict (a unit that caches non-present
    // entries, as an emulated IOMMU does): the run then says so, with the kernel's reason where it logged one.
    const keptStrict = side === "lazy" && domain?.type === "DMA";
    const why = k.log.lines.find((l) => /strict mode|batching disallowed/.test(l.text))?.text;
    return {
      label: keptStrict ? `${cmdline} (kept strict)` : label,
      cmdline,
      numbers: {
        unmaps: n,
        iotlbInvalidations: iotlbInv,
        invalidationsPerUnmap: Math.round((iotlbInv / n) * 1000) / 1000,
        ...(counter.mapKey === undefined ? {} : { [counter.mapKey]: afterMap }),
        [counter.waitKey]: after.waits - before.waits,
        staleAccessesAfterUnmap: staleHits,
        maxStaleWindowUs: fq === undefined ? null : Math.round(fq.maxStaleNs / 1000),
        queueFullFlushes: fq?.fullFlushes ?? 0,
        timerFlushes: fq?.timerFlushes ?? 0,
      },
      // The queue's own statistic says how long an unmapped IOVA stayed reachable; without a queue, only the probes say.
      summary:
        (keptStrict ? `the kernel kept unmaps strict${why === undefined ? "" : ` ("${why}")`}; ` : "") +
        `${n} unmaps: ${plural(iotlbInv, counter.what)} (${(iotlbInv / n).toFixed(3)} per unmap` +
        (afterMap === 0 ? "" : `, plus ${afterMap} after maps`) +
        `); ${staleHits} of ${n} DMA writes after unmap reached the page` +
        (fq === undefined ? "" : `; unmapped IOVAs stayed in the flush queue up to ${(fq.maxStaleNs / 1e6).toFixed(2)} ms`),
    };
  };
  return story(ctx, "f", "Strict versus lazy unmap", [["strict", "strict"], ["lazy", "lazy (flush queue)"]], run);
}

/**
 * Runs every story; every number comes from the simulation. `onStory` sees each story as soon as it has run
 * (the CLI prints it then, so a long tour shows its progress).
 */
export function runTour(opts: TourOptions = {}, onStory?: (s: TourStory) => void): TourStory[] {
  const ctx: Ctx = { machine: opts.machine ?? "q35", onBoot: opts.onBoot, observe: opts.observe };
  const stories = [
    () => storyA(ctx, opts.sgPages ?? 64),
    () => storyB(ctx),
    () => storyC(ctx),
    () => storyD(ctx),
    () => storyE(ctx),
    () => storyF(ctx, opts.unmaps ?? 1000),
  ];
  return stories.map((run) => {
    const s = run();
    onStory?.(s);
    return s;
  });
}

/** One story as text: its title, one line per run, and why a run did not happen. */
export function renderStory(s: TourStory): string {
  const out = [`(${s.id}) ${s.title}`];
  for (const r of s.runs) {
    // Short labels share the line with their summary; long ones get a line of their own.
    if (r.label.length < 24) out.push(`    ${(r.label + ":").padEnd(24)} ${r.summary}`);
    else out.push(`    ${r.label}:`, `        ${r.summary}`);
  }
  if (s.skipped !== undefined) out.push(`    ${s.runs.length === 0 ? "skipped" : "not run"}: ${s.skipped}`);
  out.push("");
  return out.join("\n") + "\n";
}

export function renderTour(stories: TourStory[]): string {
  return stories.map(renderStory).join("");
}
