/**
 * The AMD-Vi translation caches: a device table cache (per DeviceID) and an IOTLB tagged by DomainID and
 * 4 KiB page (spec #48882 sections 2.4.2, 2.4.3, 2.4.8 name what each invalidation drops). Capacity-bounded,
 * oldest entry evicted first.
 */
export interface IotlbEntry {
  outLo: number;
  outHi: number;
  shift: number;
  read: boolean;
  write: boolean;
}

export class DteCache {
  private readonly map = new Map<number, Uint32Array>();
  hits = 0;
  misses = 0;
  constructor(readonly capacity: number) {}
  get(devid: number): Uint32Array | undefined {
    const e = this.map.get(devid);
    if (e === undefined) this.misses++;
    else this.hits++;
    return e;
  }
  put(devid: number, dte: Uint32Array): void {
    if (this.capacity <= 0) return;
    if (this.map.size >= this.capacity && !this.map.has(devid)) {
      const first = this.map.keys().next();
      if (first.done !== true) this.map.delete(first.value);
    }
    this.map.set(devid, Uint32Array.from(dte));
  }
  invalidate(devid: number): void {
    this.map.delete(devid);
  }
  clear(): void {
    this.map.clear();
  }
  get size(): number {
    return this.map.size;
  }
}


/**
 * IOTLB: a direct-mapped array of `capacity` entries (rounded down to a power of two) tagged by DomainID and
 * 4 KiB page number, in typed arrays so lookups allocate nothing. A conflicting insert replaces the entry.
 */
export class Iotlb {
  private readonly mask: number;
  private readonly tagDom: Int32Array;
  private readonly tagLo: Uint32Array;
  private readonly tagHi: Uint32Array;
  private readonly outLo: Uint32Array;
  private readonly outHi: Uint32Array;
  /** bits 0..6: shift; bit 7: read; bit 8: write. */
  private readonly meta: Uint16Array;
  private count = 0;
  hits = 0;
  misses = 0;
  readonly capacity: number;
  /** The entry a successful lookup found. */
  readonly hit: IotlbEntry = { outLo: 0, outHi: 0, shift: 12, read: false, write: false };

  constructor(capacity: number) {
    const n = capacity <= 0 ? 0 : 2 ** Math.floor(Math.log2(capacity));
    this.capacity = n;
    this.mask = n - 1;
    this.tagDom = new Int32Array(n).fill(-1);
    this.tagLo = new Uint32Array(n);
    this.tagHi = new Uint32Array(n);
    this.outLo = new Uint32Array(n);
    this.outHi = new Uint32Array(n);
    this.meta = new Uint16Array(n);
  }

  private slot(domain: number, pfnLo: number): number {
    return ((pfnLo ^ (domain * 0x9e37)) & this.mask) >>> 0;
  }

  /** Page (pfnLo = IOVA bits 43:12 as 32 bits, pfnHi = the rest) of a domain; fills `hit` when found. */
  lookup(domain: number, pfnLo: number, pfnHi: number): boolean {
    if (this.capacity === 0) {
      this.misses++;
      return false;
    }
    const i = this.slot(domain, pfnLo);
    if (this.tagDom[i] !== domain || this.tagLo[i] !== pfnLo || this.tagHi[i] !== pfnHi) {
      this.misses++;
      return false;
    }
    this.hits++;
    const m = this.meta[i] ?? 0;
    this.hit.outLo = this.outLo[i] ?? 0;
    this.hit.outHi = this.outHi[i] ?? 0;
    this.hit.shift = m & 0x7f;
    this.hit.read = (m & 0x80) !== 0;
    this.hit.write = (m & 0x100) !== 0;
    return true;
  }

  insert(domain: number, pfnLo: number, pfnHi: number, e: IotlbEntry): void {
    if (this.capacity === 0) return;
    const i = this.slot(domain, pfnLo);
    if (this.tagDom[i] === -1) this.count++;
    this.tagDom[i] = domain;
    this.tagLo[i] = pfnLo;
    this.tagHi[i] = pfnHi;
    this.outLo[i] = e.outLo;
    this.outHi[i] = e.outHi;
    this.meta[i] = (e.shift & 0x7f) | (e.read ? 0x80 : 0) | (e.write ? 0x100 : 0);
  }

  /** Drops a domain's entries whose page lies in [base, base + 2^shift) (shift ≥ 64 = the whole domain). */
  invalidateRange(domain: number, base: bigint, shift: number): void {
    const first = base >> 12n;
    const last = shift >= 64 ? 1n << 52n : first + (1n << BigInt(Math.max(0, shift - 12)));
    for (let i = 0; i < this.capacity; i++) {
      if (this.tagDom[i] !== domain) continue;
      const pfn = (BigInt(this.tagHi[i] ?? 0) << 32n) | BigInt(this.tagLo[i] ?? 0);
      if (pfn >= first && pfn < last) {
        this.tagDom[i] = -1;
        this.count--;
      }
    }
  }

  clear(): void {
    this.tagDom.fill(-1);
    this.count = 0;
  }

  get size(): number {
    return this.count;
  }
}
