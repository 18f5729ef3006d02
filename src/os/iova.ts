/**
 * The IOVA allocator, designed as Linux's (drivers/iommu/iova.c, v6.x): allocated ranges live in a red-black
 * tree; allocation walks top-down from a cached starting node (one for the 32-bit space, one above) looking for
 * the highest gap that fits a size-aligned power-of-two range; a failed 32-bit allocation remembers its size
 * so later ones of that size or larger fail fast; and freed ranges of orders 0–5 go to per-CPU magazines of 127
 * entries backed by a depot, so the common alloc/free pair never touches the tree.
 *
 * Ranges are page frame numbers (pfn) in units of the domain's granule (4 KiB).
 */
import { RangeNode, RangeTree } from "./rbtree.js";

/** Orders 0..IOVA_RANGE_CACHE_MAX_SIZE-1 are cached (1..32 pages). */
export const IOVA_RANGE_CACHE_MAX_SIZE = 6;
/** Entries per magazine (sized so a magazine fills 1 KiB in Linux). */
export const IOVA_MAG_SIZE = 127;
/** Full magazines kept in each order's depot before extra ones are returned to the tree. */
export const MAX_GLOBAL_MAGS = 32;
/** The anchor node that keeps the tree non-empty: above every real pfn. */
const IOVA_ANCHOR = Number.MAX_SAFE_INTEGER;

export interface IovaDomainOptions {
  /** Lowest allocatable pfn (Linux starts at 1 so that IOVA 0 is never handed out). */
  startPfn?: number;
  /** Page size of a pfn in bytes; 4096. */
  granule?: number;
  /** Number of CPUs with their own magazines. */
  cpus?: number;
  /** Per-CPU range caches on (Linux) or off (the plain tree, as a baseline). */
  rcache?: boolean;
}

export interface IovaStats {
  allocs: number;
  frees: number;
  failures: number;
  /** Tree nodes visited while searching for gaps: the cost that grows with fragmentation. */
  walkSteps: number;
  rcacheHits: number;
  rcacheMisses: number;
  /** Times a 32-bit allocation failed fast because an earlier one of that size had failed. */
  fastFails: number;
}

class Magazine {
  size = 0;
  readonly pfns = new Float64Array(IOVA_MAG_SIZE);
  full(): boolean {
    return this.size === IOVA_MAG_SIZE;
  }
  empty(): boolean {
    return this.size === 0;
  }
}

interface CpuCache {
  loaded: Magazine;
  prev: Magazine;
}

interface RangeCache {
  depot: Magazine[];
  cpus: CpuCache[];
}

export function orderBase2(n: number): number {
  return n <= 1 ? 0 : 32 - Math.clz32(n - 1);
}

export function roundUpPow2(n: number): number {
  return n <= 1 ? 1 : n <= 0x4000_0000 ? 1 << orderBase2(n) : 2 ** orderBase2(n);
}

/** Sizes below this many pages are rounded up to a power of two by the fast paths. */
const ROUND_BELOW = 1 << (IOVA_RANGE_CACHE_MAX_SIZE - 1);

export class IovaDomain {
  readonly granule: number;
  readonly startPfn: number;
  /** First pfn above the 32-bit DMA space (4 GiB / granule). */
  readonly dma32Pfn: number;
  readonly tree = new RangeTree();
  readonly stats: IovaStats = { allocs: 0, frees: 0, failures: 0, walkSteps: 0, rcacheHits: 0, rcacheMisses: 0, fastFails: 0 };
  private readonly anchor: RangeNode;
  private cachedNode: RangeNode;
  private cached32Node: RangeNode;
  /** Smallest size known to fail below 4 GiB; reset when something there is freed. */
  private max32AllocSize: number;
  private readonly rcaches: RangeCache[] | null;

  constructor(options: IovaDomainOptions = {}) {
    this.granule = options.granule ?? 4096;
    this.startPfn = options.startPfn ?? 1;
    this.dma32Pfn = Math.floor(2 ** 32 / this.granule);
    this.max32AllocSize = this.dma32Pfn;
    this.anchor = new RangeNode(IOVA_ANCHOR, IOVA_ANCHOR);
    this.tree.insert(this.anchor);
    this.cachedNode = this.anchor;
    this.cached32Node = this.anchor;
    const cpus = options.cpus ?? 1;
    this.rcaches =
      options.rcache === false
        ? null
        : Array.from({ length: IOVA_RANGE_CACHE_MAX_SIZE }, () => ({
            depot: [],
            cpus: Array.from({ length: cpus }, () => ({ loaded: new Magazine(), prev: new Magazine() })),
          }));
  }

  /** Ranges in the tree, the anchor excluded (cached free ranges count: they stay allocated in the tree). */
  get treeRanges(): number {
    return this.tree.size - 1;
  }

  /** The node to start walking down from for an (inclusive) limit: the 32-bit one when the limit is below 4 GiB. */
  private cachedFor(limitPfn: number): RangeNode {
    return limitPfn < this.dma32Pfn ? this.cached32Node : this.cachedNode;
  }

  private insertUpdate(n: RangeNode): void {
    if (n.hi < this.dma32Pfn) this.cached32Node = n;
    else this.cachedNode = n;
  }

  private deleteUpdate(free: RangeNode): void {
    const c32 = this.cached32Node;
    if (free === c32 || (free.hi < this.dma32Pfn && free.lo >= c32.lo)) this.cached32Node = RangeTree.next(free) ?? this.anchor;
    if (free.lo < this.dma32Pfn) this.max32AllocSize = this.dma32Pfn;
    const c = this.cachedNode;
    if (free === c || free.lo >= c.lo) this.cachedNode = RangeTree.next(free) ?? this.anchor;
  }

  /**
   * Allocates `size` pfns at or below `limitPfn` (inclusive), highest first; size-aligned when asked
   * (Linux aligns to the next power of two of the size). Returns the first pfn, or null.
   */
  alloc(size: number, limitPfn: number, sizeAligned = true): number | null {
    if (!(size >= 1) || !Number.isInteger(size) || limitPfn < this.startPfn) {
      this.stats.failures++;
      return null;
    }
    const align = sizeAligned ? roundUpPow2(size) : 1;
    if (limitPfn < this.dma32Pfn && size >= this.max32AllocSize) {
      this.stats.fastFails++;
      this.stats.failures++;
      return null;
    }
    let lowPfn = this.startPfn;
    let highPfn = limitPfn + 1;
    let curr: RangeNode | null = this.cachedFor(limitPfn);
    const retryPfn = curr.hi;
    let newPfn: number;
    for (let attempt = 0; attempt < 2; attempt++) {
      // Walk down from `curr`, through the gaps below each allocated range, until one fits.
      do {
        this.stats.walkSteps++;
        highPfn = Math.min(highPfn, curr.lo);
        newPfn = highPfn - size;
        // Round down to the alignment (a negative result means no room, caught below).
        newPfn = newPfn >= 0 ? newPfn - (newPfn % align) : -1;
        curr = RangeTree.prev(curr);
      } while (curr && newPfn <= curr.hi && newPfn >= lowPfn);
      if (highPfn >= size && newPfn >= lowPfn) {
        const node = new RangeNode(newPfn, newPfn + size - 1);
        this.tree.insert(node);
        this.insertUpdate(node);
        this.stats.allocs++;
        return newPfn;
      }
      // The cached node may have skipped free space above it: retry once over what lies between it and the limit.
      if (attempt === 0 && lowPfn === this.startPfn && retryPfn < limitPfn) {
        highPfn = limitPfn + 1;
        lowPfn = retryPfn + 1;
        curr = limitPfn >= this.dma32Pfn ? this.anchor : (this.tree.lowerBound(limitPfn + 1) ?? this.anchor);
        continue;
      }
      break;
    }
    // Remembered whatever the limit; only allocations below 4 GiB consult it.
    this.max32AllocSize = size;
    this.stats.failures++;
    return null;
  }

  /** Frees the range that contains `pfn`. Unknown pfns are ignored (returns false). */
  free(pfn: number): boolean {
    const n = this.tree.find(pfn);
    if (!n || n === this.anchor) return false;
    this.deleteUpdate(n);
    this.tree.erase(n);
    this.stats.frees++;
    return true;
  }

  /** The allocated range containing `pfn`. */
  find(pfn: number): { lo: number; hi: number } | null {
    const n = this.tree.find(pfn);
    return n && n !== this.anchor ? { lo: n.lo, hi: n.hi } : null;
  }

  /** Marks [lo, hi] as never to be allocated (reserved regions such as the MSI window). Merges with neighbours it overlaps. */
  reserve(lo: number, hi: number): void {
    let at = lo;
    while (at <= hi) {
      const existing = this.tree.find(at);
      if (existing) {
        at = existing.hi + 1;
        continue;
      }
      const next = this.tree.lowerBound(at);
      const end = Math.min(hi, next ? next.lo - 1 : hi);
      const node = new RangeNode(at, end);
      this.tree.insert(node);
      at = end + 1;
    }
  }

  /**
   * alloc_iova_fast: sizes below 32 pages are rounded up to a power of two; the CPU's magazines are tried first,
   * then the tree; on failure, optionally flush every cache back to the tree and try once more.
   */
  allocFast(size: number, limitPfn: number, cpu = 0, flushRcache = true): number | null {
    if (size < ROUND_BELOW) size = roundUpPow2(size);
    const cached = this.rcacheGet(size, limitPfn, cpu);
    if (cached !== null) return cached;
    let pfn = this.alloc(size, limitPfn, true);
    if (pfn === null && flushRcache && this.rcaches) {
      this.flushAllCaches();
      pfn = this.alloc(size, limitPfn, true);
    }
    return pfn;
  }

  /** free_iova_fast: back to this CPU's magazine when it has room (the range stays in the tree), else to the tree. */
  freeFast(pfn: number, size: number, cpu = 0): void {
    if (size < ROUND_BELOW) size = roundUpPow2(size);
    if (this.rcacheInsert(pfn, size, cpu)) return;
    this.free(pfn);
  }

  private rcacheGet(size: number, limitPfn: number, cpu: number): number | null {
    const order = orderBase2(size);
    if (!this.rcaches || order >= IOVA_RANGE_CACHE_MAX_SIZE) return null;
    const rc = this.rcaches[order]!;
    const cc = rc.cpus[cpu % rc.cpus.length]!;
    if (cc.loaded.empty()) {
      if (!cc.prev.empty()) {
        const t = cc.loaded;
        cc.loaded = cc.prev;
        cc.prev = t;
      } else if (rc.depot.length > 0) {
        cc.loaded = rc.depot.pop()!;
      } else {
        this.stats.rcacheMisses++;
        return null;
      }
    }
    // Pop the newest entry that fits under the limit; only if none does, fall back to the tree.
    const m = cc.loaded;
    for (let i = m.size - 1; i >= 0; i--) {
      const pfn = m.pfns[i]!;
      if (pfn + size - 1 <= limitPfn) {
        m.pfns[i] = m.pfns[m.size - 1]!;
        m.size--;
        this.stats.rcacheHits++;
        return pfn;
      }
    }
    this.stats.rcacheMisses++;
    return null;
  }

  private rcacheInsert(pfn: number, size: number, cpu: number): boolean {
    const order = orderBase2(size);
    if (!this.rcaches || order >= IOVA_RANGE_CACHE_MAX_SIZE) return false;
    const rc = this.rcaches[order]!;
    const cc = rc.cpus[cpu % rc.cpus.length]!;
    if (cc.loaded.full()) {
      if (!cc.prev.full()) {
        const t = cc.loaded;
        cc.loaded = cc.prev;
        cc.prev = t;
      } else {
        if (rc.depot.length < MAX_GLOBAL_MAGS) rc.depot.push(cc.loaded);
        else this.drainMagazine(cc.loaded);
        cc.loaded = new Magazine();
      }
    }
    cc.loaded.pfns[cc.loaded.size++] = pfn;
    return true;
  }

  private drainMagazine(m: Magazine): void {
    for (let i = 0; i < m.size; i++) this.free(m.pfns[i]!);
    m.size = 0;
  }

  /** Returns every cached range to the tree (free_cpu_cached_iovas + free_global_cached_iovas). */
  flushAllCaches(): void {
    if (!this.rcaches) return;
    for (const rc of this.rcaches) {
      for (const cc of rc.cpus) {
        this.drainMagazine(cc.loaded);
        this.drainMagazine(cc.prev);
      }
      for (const m of rc.depot) this.drainMagazine(m);
      rc.depot.length = 0;
    }
  }

  /** Ranges sitting in magazines (allocated in the tree, free for reuse). */
  cachedRanges(): number {
    if (!this.rcaches) return 0;
    let n = 0;
    for (const rc of this.rcaches) {
      for (const cc of rc.cpus) n += cc.loaded.size + cc.prev.size;
      for (const m of rc.depot) n += m.size;
    }
    return n;
  }
}

/**
 * How the DMA layer asks for IOVA space for a device (iommu_dma_alloc_iova): PCI devices whose mask allows
 * more than 32 bits first try below 4 GiB, without flushing caches, and only then the whole range.
 * Returns the first pfn or null.
 */
export function allocDeviceIova(
  domain: IovaDomain,
  pages: number,
  dmaLimitPfn: number,
  options: { isPci: boolean; forceDac?: boolean; cpu?: number },
): number | null {
  const cpu = options.cpu ?? 0;
  if (dmaLimitPfn >= domain.dma32Pfn && options.isPci && !options.forceDac) {
    const low = domain.allocFast(pages, domain.dma32Pfn - 1, cpu, false);
    if (low !== null) return low;
  }
  return domain.allocFast(pages, dmaLimitPfn, cpu, true);
}
