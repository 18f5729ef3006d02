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

const TWO32 = 0x1_0000_0000;

export class Iotlb {
  private readonly domains = new Map<number, Map<number, IotlbEntry>>();
  private count = 0;
  hits = 0;
  misses = 0;
  constructor(readonly capacity: number) {}

  lookup(domain: number, pfn: number): IotlbEntry | undefined {
    const e = this.domains.get(domain)?.get(pfn);
    if (e === undefined) this.misses++;
    else this.hits++;
    return e;
  }

  insert(domain: number, pfn: number, e: IotlbEntry): void {
    if (this.capacity <= 0) return;
    if (this.count >= this.capacity) this.clear();
    let m = this.domains.get(domain);
    if (m === undefined) {
      m = new Map();
      this.domains.set(domain, m);
    }
    if (!m.has(pfn)) this.count++;
    m.set(pfn, e);
  }

  /** Drops a domain's entries whose page lies in [base, base + 2^shift) (shift 64 = the whole domain). */
  invalidateRange(domain: number, base: bigint, shift: number): void {
    const m = this.domains.get(domain);
    if (m === undefined) return;
    if (shift >= 52) {
      this.count -= m.size;
      this.domains.delete(domain);
      return;
    }
    const first = Number(base >> 12n);
    const pages = 2 ** (shift - 12);
    if (pages < m.size) {
      for (let p = 0; p < pages; p++) if (m.delete(first + p)) this.count--;
      return;
    }
    for (const k of [...m.keys()]) {
      if (k >= first && k < first + pages) {
        m.delete(k);
        this.count--;
      }
    }
  }

  clear(): void {
    this.domains.clear();
    this.count = 0;
  }

  get size(): number {
    return this.count;
  }
}

export { TWO32 };
