/**
 * The kernel's physical page allocator over the firmware's usable RAM. Two zones as on x86-64: DMA32 (below
 * 4 GiB) and Normal (above). Ordinary allocations prefer Normal and fall back to DMA32, as GFP_KERNEL does, so on
 * a machine with RAM above 4 GiB buffers land there. Boot-time allocations (the swiotlb pool, memblock style) come
 * from the top of low memory. Pages are zeroed when handed out. The first KERNEL_RESERVED_BYTES hold the kernel
 * image and are never given out.
 */
import type { PhysicalMemory } from "../core/memory.js";
import { IommuError } from "../core/errors.js";
import type { E820Range } from "./port.js";

export const PAGE_SIZE = 4096;
const FOUR_G_PFN = 2 ** 20;
/** The kernel image, its early allocations and low memory (the machine's validation uses the same number). */
export const KERNEL_RESERVED_BYTES = 16 * 2 ** 20;

export type Zone = "normal" | "dma32" | "any";

export class PageAllocator {
  /** 1 = free, 0 = used or not RAM. */
  private readonly free: Uint8Array;
  private readonly maxPfn: number;
  private cursorNormal: number;
  private cursorDma32: number;
  private freePages = 0;
  readonly totalPages: number;

  constructor(
    private readonly memory: PhysicalMemory,
    e820: E820Range[],
  ) {
    const top = Math.max(0, ...e820.filter((r) => r.type === "usable").map((r) => r.end + 1));
    this.maxPfn = Math.ceil(top / PAGE_SIZE);
    this.free = new Uint8Array(this.maxPfn);
    const firstPfn = KERNEL_RESERVED_BYTES / PAGE_SIZE;
    for (const r of e820) {
      if (r.type !== "usable") continue;
      const a = Math.max(firstPfn, Math.ceil(r.base / PAGE_SIZE));
      const b = Math.floor((r.end + 1) / PAGE_SIZE);
      for (let p = a; p < b; p++) this.free[p] = 1;
    }
    let n = 0;
    for (let p = 0; p < this.maxPfn; p++) n += this.free[p] ?? 0;
    this.freePages = n;
    this.totalPages = n;
    this.cursorNormal = FOUR_G_PFN;
    this.cursorDma32 = firstPfn;
  }

  get free_pages(): number {
    return this.freePages;
  }

  /** True when the machine has RAM above 4 GiB. */
  get hasHighMemory(): boolean {
    return this.maxPfn > FOUR_G_PFN;
  }

  /** Highest RAM page frame + 1. */
  get maxPfnNumber(): number {
    return this.maxPfn;
  }

  /** `count` physically contiguous zeroed pages aligned to `alignPages`; their address, or null. */
  tryAlloc(count = 1, zone: Zone = "any", alignPages = 1): number | null {
    const zones: ("normal" | "dma32")[] = zone === "any" ? ["normal", "dma32"] : [zone];
    for (const z of zones) {
      const lo = z === "normal" ? FOUR_G_PFN : 0;
      const hi = z === "normal" ? this.maxPfn : Math.min(this.maxPfn, FOUR_G_PFN);
      if (hi <= lo) continue;
      const start = z === "normal" ? this.cursorNormal : this.cursorDma32;
      const pfn = this.search(Math.max(lo, Math.min(start, hi)), hi, count, alignPages) ?? this.search(lo, Math.min(hi, start + count), count, alignPages);
      if (pfn === null) continue;
      this.take(pfn, count);
      if (z === "normal") this.cursorNormal = pfn + count;
      else this.cursorDma32 = pfn + count;
      this.memory.fill(pfn * PAGE_SIZE, count * PAGE_SIZE, 0);
      return pfn * PAGE_SIZE;
    }
    return null;
  }

  /** As tryAlloc; out of memory is an error (boot-time and table allocations). */
  alloc(count = 1, zone: Zone = "any", alignPages = 1): number {
    const a = this.tryAlloc(count, zone, alignPages);
    if (a === null) throw new IommuError("OUT_OF_MEMORY", `out of memory: ${count} contiguous page(s) in zone ${zone}`);
    return a;
  }

  /** memblock-style: the highest `count` contiguous pages below `limit` (bytes), for boot-time pools. */
  allocTopDown(count: number, limit: number, alignPages = 1): number | null {
    const hi = Math.min(this.maxPfn, Math.floor(limit / PAGE_SIZE));
    for (let p = Math.floor((hi - count) / alignPages) * alignPages; p >= 0; p -= alignPages) {
      if (this.runFree(p, count)) {
        this.take(p, count);
        this.memory.fill(p * PAGE_SIZE, count * PAGE_SIZE, 0);
        return p * PAGE_SIZE;
      }
    }
    return null;
  }

  freeRange(addr: number, count = 1): void {
    const pfn = Math.floor(addr / PAGE_SIZE);
    for (let p = pfn; p < pfn + count; p++) {
      if (this.free[p] === 0) {
        this.free[p] = 1;
        this.freePages++;
      }
    }
  }

  isFree(addr: number): boolean {
    return this.free[Math.floor(addr / PAGE_SIZE)] === 1;
  }

  private runFree(pfn: number, count: number): boolean {
    for (let i = 0; i < count; i++) if (this.free[pfn + i] !== 1) return false;
    return true;
  }

  private search(lo: number, hi: number, count: number, align: number): number | null {
    let p = Math.ceil(lo / align) * align;
    while (p + count <= hi) {
      let ok = true;
      for (let i = 0; i < count; i++) {
        if (this.free[p + i] !== 1) {
          ok = false;
          p = Math.ceil((p + i + 1) / align) * align;
          break;
        }
      }
      if (ok) return p;
    }
    return null;
  }

  private take(pfn: number, count: number): void {
    for (let i = 0; i < count; i++) this.free[pfn + i] = 0;
    this.freePages -= count;
  }
}
