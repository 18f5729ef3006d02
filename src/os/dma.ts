/**
 * The DMA API of the simulated kernel, after Linux 6.1's kernel/dma/{mapping,direct,swiotlb}.c and
 * drivers/iommu/dma-iommu.c:
 * - dma-direct (no IOMMU, or an identity domain): the DMA address is the physical address; a buffer the device
 *   cannot reach with its mask is bounced through the swiotlb pool below 4 GiB, with real copies (on map, and back
 *   on unmap / sync for the CPU when the device may have written); a full pool fails the mapping cleanly.
 * - dma-iommu (DMA / DMA-FQ domains): an IOVA range from the allocator (PCI devices try below 4 GiB first), pages
 *   mapped in the domain's tables; scatterlists get one contiguous IOVA range, merged into as few DMA segments as
 *   the device's maximum segment size allows. Unmap is strict (IOTLB invalidated before it returns) or lazy (the
 *   IOVA waits in a per-CPU flush queue of IOVA_FQ_SIZE entries until a domain-wide flush, at the latest
 *   IOVA_FQ_TIMEOUT ms later; until then the device can still reach the old pages through a stale IOTLB entry).
 *
 * Hot paths (map/unmap) use numbers only.
 */
import { IommuError } from "../core/errors.js";
import { allocDeviceIova, IovaDomain } from "./iova.js";
import { IO_TLB_SEGSIZE, IO_TLB_SHIFT, IO_TLB_SIZE } from "./cmdline.js";
import { IOMMU_READ, IOMMU_WRITE, type IommuOps } from "./iommu-ops.js";
import type { IommuDomain, IommuGroup, ReservedRegion } from "./iommu.js";
import type { Clock, KernelLog } from "./log.js";
import type { PageAllocator } from "./pages.js";
import type { KPciDev } from "./pci.js";
import type { MachinePort } from "./port.js";

export type DmaDirection = "to-device" | "from-device" | "bidirectional";
/** DMA_MAPPING_ERROR */
export const DMA_MAPPING_ERROR = -1;
export const IOVA_FQ_SIZE = 256;
export const IOVA_FQ_TIMEOUT_MS = 10;
const PAGE = 4096;
const FOUR_G = 2 ** 32;

/**
 * x % PAGE, computed without a floating-point remainder (addresses above 2^31 are doubles, and `%` on doubles
 * is a library call): the same value for every finite x.
 */
function pageOffset(x: number): number {
  return x - Math.trunc(x / PAGE) * PAGE;
}

export interface SgEntry {
  phys: number;
  length: number;
}

export interface SgMapping {
  /** DMA segments handed to the device (after merging). */
  segments: { dmaAddress: number; length: number }[];
  /** Number of IOVA ranges allocated (1 for the whole list with an IOMMU; 0 without). */
  iovaRanges: number;
}

export interface SwiotlbStats {
  bounces: number;
  bytesCopied: number;
  failures: number;
  slotsUsed: number;
  slotsTotal: number;
}

/** The software IO TLB: a pool of 2 KiB slabs below 4 GiB, allocated in segments of 128. */
export class Swiotlb {
  readonly start: number;
  readonly nslabs: number;
  private readonly used: Uint8Array;
  /** Original buffer of each mapping, by first slot. */
  private readonly orig = new Map<number, { phys: number; size: number; slots: number }>();
  readonly stats: SwiotlbStats;
  private index = 0;

  constructor(
    private readonly mem: MachinePort["memory"],
    start: number,
    nslabs: number,
  ) {
    this.start = start;
    this.nslabs = nslabs;
    this.used = new Uint8Array(nslabs);
    this.stats = { bounces: 0, bytesCopied: 0, failures: 0, slotsUsed: 0, slotsTotal: nslabs };
  }

  get end(): number {
    return this.start + this.nslabs * IO_TLB_SIZE;
  }

  contains(addr: number): boolean {
    return addr >= this.start && addr < this.end;
  }

  private copy(from: number, to: number, size: number): void {
    this.mem.write(to, this.mem.read(from, size));
    this.stats.bytesCopied += size;
  }

  /** swiotlb_tbl_map_single: a slot run for `size` bytes; the original is copied in. Null when full. */
  map(phys: number, size: number): number | null {
    const offset = pageOffset(phys);
    const alloc = size + (size >= PAGE ? 0 : 0);
    const nslots = Math.ceil((offset % IO_TLB_SIZE + alloc) / IO_TLB_SIZE);
    const stride = alloc >= PAGE ? PAGE / IO_TLB_SIZE : 1;
    if (nslots > IO_TLB_SEGSIZE) return null;
    for (let tries = 0, i = Math.ceil(this.index / stride) * stride; tries < this.nslabs; tries += stride, i += stride) {
      if (i + nslots > this.nslabs) i = 0;
      if (Math.floor(i / IO_TLB_SEGSIZE) !== Math.floor((i + nslots - 1) / IO_TLB_SEGSIZE)) continue;
      let free = true;
      for (let k = 0; k < nslots; k++) if (this.used[i + k] !== 0) { free = false; break; }
      if (!free) continue;
      for (let k = 0; k < nslots; k++) this.used[i + k] = 1;
      this.stats.slotsUsed += nslots;
      this.index = i + nslots;
      const tlb = this.start + i * IO_TLB_SIZE + (offset % IO_TLB_SIZE);
      this.orig.set(i, { phys, size, slots: nslots });
      this.stats.bounces++;
      // 6.1 always copies the original in, so data the device does not overwrite is preserved.
      this.copy(phys, tlb, size);
      return tlb;
    }
    this.stats.failures++;
    return null;
  }

  private slotOf(tlb: number): number {
    return Math.floor((tlb - this.start) / IO_TLB_SIZE);
  }

  /** Copies the bounce buffer back to the original (device wrote it). */
  syncForCpu(tlb: number): void {
    const m = this.orig.get(this.slotOf(tlb));
    if (m !== undefined) this.copy(tlb, m.phys, m.size);
  }

  /** Copies the original into the bounce buffer (CPU wrote it). */
  syncForDevice(tlb: number): void {
    const m = this.orig.get(this.slotOf(tlb));
    if (m !== undefined) this.copy(m.phys, tlb, m.size);
  }

  unmap(tlb: number, dir: DmaDirection): void {
    const slot = this.slotOf(tlb);
    const m = this.orig.get(slot);
    if (m === undefined) return;
    if (dir !== "to-device") this.copy(tlb, m.phys, m.size);
    for (let k = 0; k < m.slots; k++) this.used[slot + k] = 0;
    this.stats.slotsUsed -= m.slots;
    this.orig.delete(slot);
  }
}

interface FqEntry {
  pfn: number;
  pages: number;
  counter: number;
  queuedNs: number;
  /** Page-table pages emptied by the unmap, freed after the flush. */
  freelist: number[];
}

export interface FlushQueueStats {
  queued: number;
  /** Domain-wide IOTLB flushes: by the timer, and because a queue was full. */
  timerFlushes: number;
  fullFlushes: number;
  /** IOVAs given back after their flush. */
  freed: number;
  /** Longest time an unmapped IOVA stayed translatable (unmap to flush), ns. */
  maxStaleNs: number;
  lastStaleNs: number;
}

/** The per-domain DMA state: IOVA allocator and, for DMA-FQ, the flush queues (iommu_dma_cookie). */
export class DmaCookie {
  readonly iova: IovaDomain;
  readonly fq: { ring: (FqEntry | null)[]; head: number; tail: number }[] | null;
  private flushStartCnt = 0;
  private flushFinishCnt = 0;
  private timerOn = false;
  readonly fqStats: FlushQueueStats = { queued: 0, timerFlushes: 0, fullFlushes: 0, freed: 0, maxStaleNs: 0, lastStaleNs: 0 };

  constructor(
    readonly domain: IommuDomain,
    cpus: number,
    private readonly env: DmaEnv,
  ) {
    this.iova = new IovaDomain({ startPfn: 1, cpus });
    this.fq =
      domain.type === "DMA-FQ"
        ? Array.from({ length: cpus }, () => ({ ring: new Array<FqEntry | null>(IOVA_FQ_SIZE).fill(null), head: 0, tail: 0 }))
        : null;
  }

  /** iova_reserve_iommu_regions: the host bridge windows and every reserved region. */
  reserve(regions: ReservedRegion[], windows: [number, number][]): void {
    for (const [lo, hi] of windows) this.iova.reserve(Math.floor(lo / PAGE), Math.floor(hi / PAGE));
    for (const r of regions) {
      if (r.type === "sw-msi") continue;
      this.iova.reserve(Math.floor(r.start / PAGE), Math.floor(r.end / PAGE));
    }
  }

  private fqFull(q: { head: number; tail: number }): boolean {
    return (q.tail + 1) % IOVA_FQ_SIZE === q.head;
  }

  private ringFree(q: { ring: (FqEntry | null)[]; head: number; tail: number }): void {
    while (q.head !== q.tail) {
      const e = q.ring[q.head];
      if (e === null || e === undefined || e.counter >= this.flushFinishCnt) break;
      this.iova.freeFast(e.pfn, e.pages);
      for (const t of e.freelist) this.env.pages.freeRange(t, 1);
      this.fqStats.freed++;
      q.ring[q.head] = null;
      q.head = (q.head + 1) % IOVA_FQ_SIZE;
    }
  }

  /** fq_flush_iotlb: one domain-wide IOTLB invalidation on every unit of the domain. */
  private flushIotlb(): void {
    this.flushStartCnt++;
    const now = this.env.clock.ns;
    for (const q of this.fq ?? []) {
      for (let i = q.head; i !== q.tail; i = (i + 1) % IOVA_FQ_SIZE) {
        const e = q.ring[i];
        if (e && e.counter < this.flushStartCnt) {
          const stale = now - e.queuedNs;
          this.fqStats.lastStaleNs = stale;
          if (stale > this.fqStats.maxStaleNs) this.fqStats.maxStaleNs = stale;
        }
      }
    }
    this.env.driver.flushIotlbAll(this.domain);
    this.flushFinishCnt++;
  }

  /** queue_iova */
  queue(pfn: number, pages: number, cpu: number, freelist: number[] = []): void {
    const fq = this.fq;
    if (fq === null) return;
    const q = fq[cpu % fq.length]!;
    this.ringFree(q);
    if (this.fqFull(q)) {
      this.fqStats.fullFlushes++;
      this.flushIotlb();
      this.ringFree(q);
    }
    q.ring[q.tail] = { pfn, pages, counter: this.flushStartCnt, queuedNs: this.env.clock.ns, freelist };
    q.tail = (q.tail + 1) % IOVA_FQ_SIZE;
    this.fqStats.queued++;
    if (!this.timerOn) {
      this.timerOn = true;
      this.env.clock.schedule(IOVA_FQ_TIMEOUT_MS * 1e6, () => this.timeout());
    }
  }

  /** fq_flush_timeout */
  private timeout(): void {
    this.timerOn = false;
    this.fqStats.timerFlushes++;
    this.flushIotlb();
    for (const q of this.fq ?? []) this.ringFree(q);
  }

  /** Entries waiting in the flush queues. */
  pending(): number {
    let n = 0;
    for (const q of this.fq ?? []) n += (q.tail - q.head + IOVA_FQ_SIZE) % IOVA_FQ_SIZE;
    return n;
  }
}

export interface DmaEnv {
  port: MachinePort;
  log: KernelLog;
  clock: Clock;
  pages: PageAllocator;
  /** The IOMMU driver (iommu_ops) flushes go through. */
  driver: IommuOps;
  swiotlb: Swiotlb | null;
  swiotlbForce: boolean;
  forceDac: boolean;
  cpus: number;
  /** Host bridge memory windows, reserved in every IOVA space (iova_reserve_pci_windows). */
  windows: [number, number][];
}

export interface DmaStats {
  maps: number;
  unmaps: number;
  /** IOTLB invalidations issued by unmaps (strict) and flush-queue flushes (lazy). */
  errors: number;
}

/** What a driver holds for its device: its masks and how its DMA is done. */
export class DmaDevice {
  /** Address bits of the streaming and coherent masks. */
  maskBits = 32;
  maxSegmentSize = 65536;
  readonly stats: DmaStats = { maps: 0, unmaps: 0, errors: 0 };
  private readonly bounced = new Map<number, number>();
  private errOnce = false;

  constructor(
    readonly dev: KPciDev,
    readonly group: IommuGroup | null,
    private readonly env: DmaEnv,
  ) {}

  /** The driver's name for messages: "e1000e 0000:00:02.0". */
  get label(): string {
    return `${this.dev.driver ?? "pci"} ${this.dev.name}`;
  }

  get domain(): IommuDomain | null {
    return this.group?.domain ?? null;
  }

  /** True when DMA goes through the IOMMU's translation (dma-iommu ops). */
  get translated(): boolean {
    const t = this.domain?.type;
    return t === "DMA" || t === "DMA-FQ";
  }

  private get limit(): number {
    return this.maskBits >= 53 ? Number.MAX_SAFE_INTEGER : 2 ** this.maskBits - 1;
  }

  /** dma_set_mask_and_coherent */
  setMask(bits: number): void {
    this.maskBits = bits;
  }

  private cookie(): DmaCookie {
    const c = this.domain?.cookie;
    if (!(c instanceof DmaCookie)) throw new IommuError("DMA_NO_COOKIE", `${this.label}: DMA domain without IOVA space`);
    return c;
  }

  private prot(dir: DmaDirection): number {
    return dir === "to-device" ? IOMMU_READ : dir === "from-device" ? IOMMU_WRITE : IOMMU_READ | IOMMU_WRITE;
  }

  /** dma_map_single / dma_map_page. Returns the DMA address or DMA_MAPPING_ERROR. */
  mapSingle(phys: number, size: number, dir: DmaDirection, cpu = 0): number {
    this.stats.maps++;
    return this.translated ? this.iommuMap(phys, size, dir, cpu) : this.directMap(phys, size);
  }

  private directMap(phys: number, size: number): number {
    const sw = this.env.swiotlb;
    if (sw !== null && (this.env.swiotlbForce || phys + size - 1 > this.limit)) {
      const tlb = sw.map(phys, size);
      if (tlb === null) {
        this.env.log.warn(
          `${this.label}: swiotlb buffer is full (sz: ${size} bytes), total ${sw.nslabs} (slots), used ${sw.stats.slotsUsed} (slots)`,
        );
        this.stats.errors++;
        return DMA_MAPPING_ERROR;
      }
      if (tlb + size - 1 > this.limit) {
        sw.unmap(tlb, "to-device");
        this.stats.errors++;
        return DMA_MAPPING_ERROR;
      }
      this.bounced.set(tlb, phys);
      return tlb;
    }
    if (phys + size - 1 > this.limit) {
      if (!this.errOnce) {
        this.errOnce = true;
        this.env.log.err(
          `${this.label}: DMA addr 0x${phys.toString(16).padStart(16, "0")}+${size} overflow (mask ${this.limit.toString(16)}, bus limit 0).`,
        );
      }
      this.stats.errors++;
      return DMA_MAPPING_ERROR;
    }
    return phys;
  }

  private iommuMap(phys: number, size: number, dir: DmaDirection, cpu: number): number {
    const d = this.domain!;
    const c = this.cookie();
    const off = pageOffset(phys);
    const pages = Math.ceil((off + size) / PAGE);
    const limit = Math.min(this.limit, d.apertureEnd);
    const pfn = allocDeviceIova(c.iova, pages, Math.floor(limit / PAGE), { isPci: true, forceDac: this.env.forceDac, cpu });
    if (pfn === null) {
      this.stats.errors++;
      return DMA_MAPPING_ERROR;
    }
    d.tables!.map(pfn, Math.floor(phys / PAGE), pages, this.prot(dir));
    // Caching mode: a non-present to present change must be invalidated too (iotlb_sync_map).
    this.env.driver.iotlbSyncMap(d, pfn, pages);
    return pfn * PAGE + off;
  }

  /** dma_unmap_single / dma_unmap_page. */
  unmapSingle(dma: number, size: number, dir: DmaDirection, cpu = 0): void {
    this.stats.unmaps++;
    if (this.translated) {
      this.iommuUnmap(dma, size, cpu);
      return;
    }
    const sw = this.env.swiotlb;
    if (sw !== null && this.bounced.has(dma)) {
      sw.unmap(dma, dir);
      this.bounced.delete(dma);
    }
  }

  private iommuUnmap(dma: number, size: number, cpu: number): void {
    const d = this.domain!;
    const c = this.cookie();
    const pfn = Math.floor(dma / PAGE);
    const pages = Math.ceil((pageOffset(dma) + size) / PAGE);
    const range = c.iova.find(pfn);
    const rangePages = range === null ? pages : range.hi - range.lo + 1;
    const freelist = d.tables!.unmap(pfn, pages);
    if (c.fq !== null) {
      c.queue(range?.lo ?? pfn, rangePages, cpu, freelist);
      return;
    }
    this.env.driver.iotlbSync(d, pfn, pages);
    for (const t of freelist) this.env.pages.freeRange(t, 1);
    c.iova.freeFast(range?.lo ?? pfn, rangePages, cpu);
  }

  /** dma_sync_single_for_cpu: bounce back what the device wrote. */
  syncForCpu(dma: number, dir: DmaDirection): void {
    if (!this.translated && dir !== "to-device" && this.bounced.has(dma)) this.env.swiotlb?.syncForCpu(dma);
  }

  /** dma_sync_single_for_device: bounce what the CPU wrote. */
  syncForDevice(dma: number, dir: DmaDirection): void {
    if (!this.translated && dir !== "from-device" && this.bounced.has(dma)) this.env.swiotlb?.syncForDevice(dma);
  }

  /** dma_map_sg: one IOVA range for the whole list with the IOMMU; one mapping per entry without. */
  mapSg(sg: SgEntry[], dir: DmaDirection, cpu = 0): SgMapping | null {
    this.stats.maps++;
    if (!this.translated) {
      const segments: SgMapping["segments"] = [];
      for (const e of sg) {
        const a = this.directMap(e.phys, e.length);
        if (a === DMA_MAPPING_ERROR) {
          for (const s of segments) this.unmapSingle(s.dmaAddress, s.length, dir, cpu);
          return null;
        }
        if (a !== e.phys) this.bounced.set(a, e.phys);
        segments.push({ dmaAddress: a, length: e.length });
      }
      return { segments, iovaRanges: 0 };
    }
    const d = this.domain!;
    const c = this.cookie();
    // Each entry occupies whole pages of IOVA space, one after another.
    let total = 0;
    for (const e of sg) total += Math.ceil((pageOffset(e.phys) + e.length) / PAGE);
    const limit = Math.min(this.limit, d.apertureEnd);
    const pfn = allocDeviceIova(c.iova, total, Math.floor(limit / PAGE), { isPci: true, forceDac: this.env.forceDac, cpu });
    if (pfn === null) {
      this.stats.errors++;
      return null;
    }
    let at = pfn;
    const segments: SgMapping["segments"] = [];
    const prot = this.prot(dir);
    for (const e of sg) {
      const off = pageOffset(e.phys);
      const n = Math.ceil((off + e.length) / PAGE);
      d.tables!.map(at, Math.floor(e.phys / PAGE), n, prot);
      const dmaAddress = at * PAGE + off;
      const last = segments[segments.length - 1];
      // __finalise_sg: concatenate while contiguous in IOVA and within the maximum segment size.
      if (last !== undefined && last.dmaAddress + last.length === dmaAddress && last.length + e.length <= this.maxSegmentSize) {
        last.length += e.length;
      } else {
        segments.push({ dmaAddress, length: e.length });
      }
      at += n;
    }
    this.env.driver.iotlbSyncMap(d, pfn, total);
    return { segments, iovaRanges: 1 };
  }

  unmapSg(m: SgMapping, dir: DmaDirection, cpu = 0): void {
    if (!this.translated) {
      for (const s of m.segments) this.unmapSingle(s.dmaAddress, s.length, dir, cpu);
      return;
    }
    const first = m.segments[0];
    if (first === undefined) return;
    const last = m.segments[m.segments.length - 1]!;
    this.stats.unmaps++;
    this.iommuUnmap(first.dmaAddress - pageOffset(first.dmaAddress), last.dmaAddress + last.length - (first.dmaAddress - pageOffset(first.dmaAddress)), cpu);
  }

  /** dma_alloc_coherent: memory the CPU and device share; its CPU (physical) and DMA addresses. */
  allocCoherent(size: number, cpu = 0): { phys: number[]; dma: number } | null {
    const pages = Math.ceil(size / PAGE);
    if (!this.translated) {
      const zone = this.maskBits < 33 && this.env.pages.hasHighMemory ? "dma32" : "any";
      const phys = this.env.pages.tryAlloc(pages, zone);
      if (phys === null || phys + size - 1 > this.limit) return null;
      return { phys: [phys], dma: phys };
    }
    // iommu_dma_alloc_remap: pages from anywhere, made contiguous in IOVA space.
    const phys: number[] = [];
    for (let i = 0; i < pages; i++) {
      const p = this.env.pages.tryAlloc(1, "any");
      if (p === null) return null;
      phys.push(p);
    }
    const sg = phys.map((p) => ({ phys: p, length: PAGE }));
    const m = this.mapSg(sg, "bidirectional", cpu);
    if (m === null) return null;
    return { phys, dma: m.segments[0]!.dmaAddress };
  }

  freeCoherent(c: { phys: number[]; dma: number }, size: number, cpu = 0): void {
    if (this.translated) {
      this.stats.unmaps++;
      this.iommuUnmap(c.dma, Math.ceil(size / PAGE) * PAGE, cpu);
      for (const p of c.phys) this.env.pages.freeRange(p, 1);
    } else {
      for (const p of c.phys) this.env.pages.freeRange(p, Math.ceil(size / PAGE));
    }
  }
}

/** The host bridge memory windows of a q35-like machine, from its e820 map (what ACPI _CRS would say). */
export function hostBridgeWindows(e820: { base: number; end: number; type: string }[]): [number, number][] {
  const lowTop = Math.max(0x100000, ...e820.filter((r) => r.type === "usable" && r.end < FOUR_G).map((r) => r.end + 1));
  const highTop = Math.max(FOUR_G, ...e820.filter((r) => r.type === "usable").map((r) => r.end + 1));
  const lowStart = Math.ceil(lowTop / 0x10000000) * 0x10000000;
  const w: [number, number][] = [[0xa0000, 0xbffff]];
  if (lowStart < 0xb0000000) w.push([lowStart, 0xafffffff]);
  w.push([0xc0000000, 0xfebfffff]);
  const high = Math.ceil(highTop / 2 ** 30) * 2 ** 30;
  w.push([high, high + 32 * 2 ** 30 - 1]);
  return w;
}

export { IO_TLB_SHIFT };
