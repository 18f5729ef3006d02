/**
 * A set-associative tag store with a configurable replacement policy (LRU, FIFO, seeded random), used for the
 * IOTLB, the context cache and the paging-structure cache (VT-d spec 6.2 describes what each caches; their
 * geometry is implementation-specific). Tags are two 32-bit words; payloads live in the owner's typed arrays,
 * indexed by the slot number this store hands out. Lookups allocate nothing.
 */
import type { CacheGeometry, ReplacementPolicy } from "./config.js";

export interface CacheStats {
  /** Lookups that found an entry. */
  hits: number;
  /** Lookups that found none. */
  misses: number;
  /** Valid entries replaced to make room. */
  evictions: number;
  /** Entries filled. */
  fills: number;
  /** Entries removed by invalidation. */
  invalidations: number;
  /** Valid entries now. */
  entries: number;
  capacity: number;
}

export class SetAssocStore {
  readonly sets: number;
  readonly ways: number;
  readonly capacity: number;
  readonly policy: ReplacementPolicy;
  private readonly lru: boolean;
  private readonly setMask: number;
  private readonly tag0: Uint32Array;
  private readonly tag1: Uint32Array;
  private readonly valid: Uint8Array;
  /** LRU: last use; FIFO: fill time. */
  private readonly stamp: Float64Array;
  private clock = 0;
  private rng: number;
  private readonly seed: number;
  /**
   * Changes whenever an entry may have left or changed tag (eviction, invalidation, reset): lookup
   * accelerators in front of this store (see Iotlb) are valid only while it stays the same.
   */
  epoch = 1;
  /** Number of valid entries. */
  count = 0;
  hits = 0;
  misses = 0;
  evictions = 0;
  fills = 0;
  invalidations = 0;

  constructor(g: CacheGeometry) {
    this.sets = g.sets;
    this.ways = g.ways;
    this.capacity = g.sets * g.ways;
    this.policy = g.policy;
    this.lru = g.policy === "lru";
    this.setMask = g.sets - 1;
    this.tag0 = new Uint32Array(this.capacity);
    this.tag1 = new Uint32Array(this.capacity);
    this.valid = new Uint8Array(this.capacity);
    this.stamp = new Float64Array(this.capacity);
    this.seed = (g.seed ?? 0x2545f491) >>> 0 || 1;
    this.rng = this.seed;
  }

  /** Set index for a hash value. */
  setOf(hash: number): number {
    return hash & this.setMask;
  }

  /** Slot of the entry tagged (t0, t1) in `set`, or -1. Counts nothing; call `hit(slot)` on use. */
  find(set: number, t0: number, t1: number): number {
    const base = set * this.ways;
    const end = base + this.ways;
    for (let s = base; s < end; s++) {
      if (this.valid[s] === 1 && this.tag0[s] === t0 && this.tag1[s] === t1) return s;
    }
    return -1;
  }

  /** Marks a slot used (LRU bookkeeping). */
  touch(slot: number): void {
    if (this.lru) this.stamp[slot] = ++this.clock;
  }

  /**
   * Slot for a new entry tagged (t0, t1) in `set`: the existing entry with that tag, else a free way, else a
   * victim chosen by the policy (counted as an eviction). The caller writes the payload.
   */
  allocate(set: number, t0: number, t1: number): number {
    const base = set * this.ways;
    const end = base + this.ways;
    let free = -1;
    for (let s = base; s < end; s++) {
      if (this.valid[s] === 1) {
        if (this.tag0[s] === t0 && this.tag1[s] === t1) {
          this.stamp[s] = ++this.clock;
          this.fills++;
          return s;
        }
      } else if (free < 0) {
        free = s;
      }
    }
    let slot = free;
    if (slot < 0) {
      slot = this.victim(base);
      this.evictions++;
      this.count--;
      this.epoch++;
    }
    this.valid[slot] = 1;
    this.tag0[slot] = t0 >>> 0;
    this.tag1[slot] = t1 >>> 0;
    this.stamp[slot] = ++this.clock;
    this.count++;
    this.fills++;
    return slot;
  }

  private victim(base: number): number {
    if (this.policy === "random") {
      // xorshift32: reproducible for a given seed.
      let x = this.rng;
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      this.rng = x >>> 0;
      return base + (this.rng % this.ways);
    }
    // LRU (stamp = last use) and FIFO (stamp = fill time) both replace the smallest stamp.
    let best = base;
    let bestStamp = this.stamp[base] ?? 0;
    for (let s = base + 1; s < base + this.ways; s++) {
      const st = this.stamp[s] ?? 0;
      if (st < bestStamp) {
        best = s;
        bestStamp = st;
      }
    }
    return best;
  }

  isValid(slot: number): boolean {
    return this.valid[slot] === 1;
  }

  tagOf0(slot: number): number {
    return this.tag0[slot] ?? 0;
  }

  tagOf1(slot: number): number {
    return this.tag1[slot] ?? 0;
  }

  invalidate(slot: number): void {
    if (this.valid[slot] === 1) {
      this.valid[slot] = 0;
      this.count--;
      this.invalidations++;
      this.epoch++;
    }
  }

  /** Invalidates every slot for which `pred(slot)` holds; returns how many. */
  invalidateWhere(pred: (slot: number) => boolean): number {
    if (this.count === 0) return 0;
    let n = 0;
    for (let s = 0; s < this.capacity; s++) {
      if (this.valid[s] === 1 && pred(s)) {
        this.valid[s] = 0;
        n++;
      }
    }
    this.count -= n;
    this.invalidations += n;
    if (n > 0) this.epoch++;
    return n;
  }

  invalidateAll(): number {
    const n = this.count;
    this.valid.fill(0);
    this.count = 0;
    this.invalidations += n;
    this.epoch++;
    return n;
  }

  /** Empties the store and its counters, and restarts the random generator (hardware reset). */
  reset(): void {
    this.valid.fill(0);
    this.stamp.fill(0);
    this.count = 0;
    this.clock = 0;
    this.epoch++;
    this.rng = this.seed;
    this.hits = this.misses = this.evictions = this.fills = this.invalidations = 0;
  }

  stats(): CacheStats {
    return {
      hits: this.hits,
      misses: this.misses,
      evictions: this.evictions,
      fills: this.fills,
      invalidations: this.invalidations,
      entries: this.count,
      capacity: this.capacity,
    };
  }
}

/** Spreads a key over the sets (Fibonacci hashing of two words). */
export function mixHash(a: number, b: number): number {
  const h = Math.imul(a ^ Math.imul(b, 0x9e3779b1), 0x85ebca6b);
  return (h ^ (h >>> 15)) >>> 0;
}
