/**
 * Sparse physical memory: 4 KiB pages allocated on first write, little-endian accessors, addresses up to 2^57.
 * Untouched memory reads as zero and costs nothing. Addresses are numbers on hot paths (exact up to 2^53) or
 * bigint for the top of a 57-bit space. Accesses past 2^57 are a programming error (RangeError): callers that
 * take addresses from guest-controlled input check the address width first, as the hardware does.
 */

export const PHYS_ADDR_LIMIT = 2n ** 57n;
const PAGE = 4096;
const NUM_LIMIT = 2 ** 57;

export type PhysAddr = number | bigint;

interface Page {
  bytes: Uint8Array;
  view: DataView;
}

export class PhysicalMemory {
  private readonly pages = new Map<number, Page>();
  // One-entry cache of the last page touched: table walks and ring accesses stay on a page for a while.
  private lastPfn = -1;
  private lastPage: Page | undefined;

  /** Number of 4 KiB pages that have been written (backed). */
  get backedPages(): number {
    return this.pages.size;
  }

  /** Page frame numbers of backed pages, ascending. */
  backedPageNumbers(): number[] {
    return [...this.pages.keys()].sort((a, b) => a - b);
  }

  private split(addr: PhysAddr): [pfn: number, off: number] {
    if (typeof addr === "number") {
      if (!(addr >= 0 && addr < NUM_LIMIT) || !Number.isInteger(addr)) {
        throw new RangeError(`physical address ${addr} is outside 0..2^57`);
      }
      const pfn = Math.floor(addr / PAGE);
      return [pfn, addr - pfn * PAGE];
    }
    if (addr < 0n || addr >= PHYS_ADDR_LIMIT) throw new RangeError(`physical address 0x${addr.toString(16)} is outside 0..2^57`);
    return [Number(addr >> 12n), Number(addr & 0xfffn)];
  }

  private page(pfn: number): Page | undefined {
    if (pfn === this.lastPfn) return this.lastPage;
    const p = this.pages.get(pfn);
    if (p !== undefined) {
      this.lastPfn = pfn;
      this.lastPage = p;
    }
    return p;
  }

  private pageForWrite(pfn: number): Page {
    let p = this.page(pfn);
    if (p === undefined) {
      const bytes = new Uint8Array(PAGE);
      p = { bytes, view: new DataView(bytes.buffer) };
      this.pages.set(pfn, p);
      this.lastPfn = pfn;
      this.lastPage = p;
    }
    return p;
  }

  read8(addr: PhysAddr): number {
    const [pfn, off] = this.split(addr);
    return this.page(pfn)?.bytes[off] ?? 0;
  }

  write8(addr: PhysAddr, v: number): void {
    const [pfn, off] = this.split(addr);
    this.pageForWrite(pfn).bytes[off] = v & 0xff;
  }

  read16(addr: PhysAddr): number {
    const [pfn, off] = this.split(addr);
    if (off <= PAGE - 2) return this.page(pfn)?.view.getUint16(off, true) ?? 0;
    return this.readLE(addr, 2);
  }

  write16(addr: PhysAddr, v: number): void {
    const [pfn, off] = this.split(addr);
    if (off <= PAGE - 2) this.pageForWrite(pfn).view.setUint16(off, v & 0xffff, true);
    else this.writeLE(addr, 2, v);
  }

  /** Hot path: a 32-bit little-endian load at a number address. */
  read32(addr: PhysAddr): number {
    if (typeof addr === "number" && addr >= 0 && addr < NUM_LIMIT) {
      const pfn = Math.floor(addr / PAGE);
      const off = addr - pfn * PAGE;
      if (off <= PAGE - 4) {
        const p = pfn === this.lastPfn ? this.lastPage : this.page(pfn);
        return p === undefined ? 0 : p.view.getUint32(off, true);
      }
    }
    const [pfn, off] = this.split(addr);
    if (off <= PAGE - 4) return this.page(pfn)?.view.getUint32(off, true) ?? 0;
    return this.readLE(addr, 4);
  }

  write32(addr: PhysAddr, v: number): void {
    const [pfn, off] = this.split(addr);
    if (off <= PAGE - 4) this.pageForWrite(pfn).view.setUint32(off, v >>> 0, true);
    else this.writeLE(addr, 4, v >>> 0);
  }

  /** 64-bit load as bigint (edge use). Hot paths read two 32-bit halves. */
  read64(addr: PhysAddr): bigint {
    const lo = this.read32(addr);
    const hi = this.read32(add(addr, 4));
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  write64(addr: PhysAddr, v: bigint): void {
    this.write32(addr, Number(v & 0xffff_ffffn));
    this.write32(add(addr, 4), Number((v >> 32n) & 0xffff_ffffn));
  }

  /** Copies `length` bytes starting at `addr` into a new array (zero where never written). */
  read(addr: PhysAddr, length: number): Uint8Array {
    const out = new Uint8Array(length);
    this.readInto(addr, out);
    return out;
  }

  readInto(addr: PhysAddr, out: Uint8Array): void {
    let [pfn, off] = this.split(addr);
    let done = 0;
    if (out.length > 0) this.split(add(addr, out.length - 1)); // bounds check of the last byte
    while (done < out.length) {
      const n = Math.min(PAGE - off, out.length - done);
      const p = this.page(pfn);
      if (p === undefined) out.fill(0, done, done + n);
      else out.set(p.bytes.subarray(off, off + n), done);
      done += n;
      pfn += 1;
      off = 0;
    }
  }

  write(addr: PhysAddr, data: Uint8Array): void {
    let [pfn, off] = this.split(addr);
    if (data.length > 0) this.split(add(addr, data.length - 1));
    let done = 0;
    while (done < data.length) {
      const n = Math.min(PAGE - off, data.length - done);
      this.pageForWrite(pfn).bytes.set(data.subarray(done, done + n), off);
      done += n;
      pfn += 1;
      off = 0;
    }
  }

  fill(addr: PhysAddr, length: number, value: number): void {
    let [pfn, off] = this.split(addr);
    if (length > 0) this.split(add(addr, length - 1));
    let done = 0;
    while (done < length) {
      const n = Math.min(PAGE - off, length - done);
      if (value === 0 && this.page(pfn) === undefined) {
        // Untouched memory already reads as zero.
      } else {
        this.pageForWrite(pfn).bytes.fill(value & 0xff, off, off + n);
      }
      done += n;
      pfn += 1;
      off = 0;
    }
  }

  private readLE(addr: PhysAddr, n: number): number {
    let v = 0;
    for (let i = n - 1; i >= 0; i--) v = v * 256 + this.read8(add(addr, i));
    return v;
  }

  private writeLE(addr: PhysAddr, n: number, v: number): void {
    for (let i = 0; i < n; i++) {
      this.write8(add(addr, i), v & 0xff);
      v = Math.floor(v / 256);
    }
  }
}

function add(a: PhysAddr, n: number): PhysAddr {
  return typeof a === "number" ? a + n : a + BigInt(n);
}

/**
 * The read side of physical memory. Table walkers take this rather than PhysicalMemory so the same code walks
 * live simulated memory and a memory dump file read on demand.
 */
export interface PhysReader {
  read32(addr: PhysAddr): number;
}
