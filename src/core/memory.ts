/**
 * Physical memory: sparse 4 KiB pages, little-endian accessors, addresses up to 2^57. Untouched memory reads
 * as zero and costs nothing; a page holds storage only while some byte of it is not zero (a page written back
 * to all zeros returns its storage to a pool, from which the next page is served).
 *
 * Where pages live: inside the RAM ranges of the memory map (without a map: below 64 GiB) a page is found by
 * index — a directory of 2 MiB chunks, each a table of 512 pages — so a load costs a few array reads and no
 * hashing, which is what keeps table walks cheap. Pages anywhere else (the PCI hole, the top of a 57-bit space)
 * live in a sparse map. Where a page lives changes nothing a caller can observe but speed.
 *
 * Addresses are numbers on hot paths or bigints. A number must be a safe integer (below 2^53, where every
 * integer is exact); above that only a bigint is exact, so an unsafe number is refused rather than rounded.
 * A negative address, an unsafe or fractional number, or an address at or above 2^57 is a RangeError: callers
 * that take addresses from guest-controlled input check the address width first, as the hardware does.
 */

import { nonzeroWords, type Page, PAGE_BYTES as PAGE, PAGE_WORDS, PagePool } from "./page-pool.js";

export const PHYS_ADDR_LIMIT = 2n ** 57n;
const PAGE_SHIFT = 12;
/** Pages per chunk of the directory (2 MiB). */
const CHUNK_SHIFT = 9;
const CHUNK_PAGES = 1 << CHUNK_SHIFT;
const CHUNK_BYTES = PAGE * CHUNK_PAGES;
/** Page frames of a 57-bit physical address space. */
const PAGE_LIMIT = 2 ** 45;
/** Without a memory map, addresses below this are found by index. */
const DEFAULT_DIRECT_BYTES = 2 ** 36;
/** At most this much of the address space is found by index (a directory of 2^20 chunks); the rest is sparse. */
const MAX_DIRECT_BYTES = 2 ** 41;
const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const MAX_SAFE_BIG = BigInt(Number.MAX_SAFE_INTEGER);
/** Word views read little-endian values only on a little-endian host; elsewhere bytes are assembled. */
const HOST_LE = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

export type PhysAddr = number | bigint;

/** A range of physical addresses: [base, base + size). */
export interface MemoryRange {
  base: number;
  size: number;
}

export interface PhysicalMemoryOptions {
  /**
   * The RAM ranges of the memory map: pages there are found by index. Default: everything below 64 GiB.
   * Addresses outside still read and write (from a sparse map); whether they are RAM is the platform's business.
   */
  ram?: readonly MemoryRange[];
}

/** 512 pages of indexed RAM: the page storage, and its word views for the load path. */
class Chunk {
  readonly words: (Uint32Array | undefined)[] = new Array<Uint32Array | undefined>(CHUNK_PAGES).fill(undefined);
  readonly pages: (Page | undefined)[] = new Array<Page | undefined>(CHUNK_PAGES).fill(undefined);
}

/**
 * Checks an address: a safe non-negative integer number, or a bigint in 0..2^57 (returned as a number when it
 * is below 2^53). Throws RangeError otherwise.
 */
export function checkPhysAddr(addr: PhysAddr): PhysAddr {
  if (typeof addr === "number") {
    if (!(addr >= 0 && addr <= MAX_SAFE) || !Number.isInteger(addr)) {
      const what = Number.isInteger(addr) && addr > MAX_SAFE ? "beyond 2^53, where numbers are not exact: pass a bigint" : "not an address";
      throw new RangeError(`physical address ${addr} is ${what}`);
    }
    return addr;
  }
  if (typeof addr !== "bigint") throw new RangeError(`physical address ${String(addr)} is not a number or bigint`);
  if (addr < 0n || addr >= PHYS_ADDR_LIMIT) throw new RangeError(`physical address 0x${addr.toString(16)} is outside 0..2^57`);
  return addr <= MAX_SAFE_BIG ? Number(addr) : addr;
}

/** addr + n, exactly: a number while the sum is a safe integer, a bigint beyond. */
export function addPhys(addr: PhysAddr, n: number): PhysAddr {
  if (typeof addr === "number") {
    const s = addr + n;
    return s <= MAX_SAFE ? s : BigInt(addr) + BigInt(n);
  }
  return addr + BigInt(n);
}

/** Page frame number and offset of a checked address. */
function pfnOf(a: PhysAddr): number {
  return typeof a === "number" ? Math.floor(a / PAGE) : Number(a >> 12n);
}

function offOf(a: PhysAddr): number {
  return typeof a === "number" ? a % PAGE : Number(a & 0xfffn);
}

export class PhysicalMemory {
  /** Indexed RAM by chunk number (grown on first write), and the chunks' word views for the load path. */
  private readonly chunks: (Chunk | undefined)[] = [];
  private readonly chunkWords: ((Uint32Array | undefined)[] | undefined)[] = [];
  /** Chunks below this number are indexed when `directMask` says so (null: all of them). */
  private readonly directChunks: number;
  private readonly directMask: Uint8Array | null;
  /** Byte address and page frame below which the fast paths may look in the directory. */
  private readonly directLimit: number;
  private readonly directPages: number;
  private readonly sparse = new Map<number, Page>();
  private readonly pool = new PagePool();
  private held = 0;

  constructor(opts: PhysicalMemoryOptions = {}) {
    const ranges = (opts.ram ?? []).filter((r) => Number.isSafeInteger(r.base) && Number.isSafeInteger(r.size) && r.base >= 0 && r.size > 0);
    if (opts.ram === undefined) {
      this.directChunks = DEFAULT_DIRECT_BYTES / CHUNK_BYTES;
      this.directMask = null;
    } else {
      const top = Math.min(MAX_DIRECT_BYTES, Math.max(0, ...ranges.map((r) => r.base + r.size)));
      this.directChunks = Math.ceil(top / CHUNK_BYTES);
      this.directMask = new Uint8Array(this.directChunks);
      for (const r of ranges) {
        const last = Math.min(this.directChunks, Math.ceil((r.base + r.size) / CHUNK_BYTES));
        for (let c = Math.floor(r.base / CHUNK_BYTES); c < last; c++) this.directMask[c] = 1;
      }
    }
    this.directLimit = this.directChunks * CHUNK_BYTES;
    this.directPages = this.directChunks * CHUNK_PAGES;
  }

  /** Number of 4 KiB pages holding data (a page whose bytes are all zero again holds none). */
  get backedPages(): number {
    return this.held;
  }

  /** Pages holding data outside the indexed RAM ranges. */
  get sparsePages(): number {
    return this.sparse.size;
  }

  /** Page frame numbers of the pages holding data, ascending. */
  backedPageNumbers(): number[] {
    const out: number[] = [];
    this.chunks.forEach((c, ci) => c?.pages.forEach((p, i) => p !== undefined && out.push(ci * CHUNK_PAGES + i)));
    out.push(...this.sparse.keys());
    return out.sort((a, b) => a - b);
  }

  private isDirect(ci: number): boolean {
    return ci < this.directChunks && (this.directMask === null || this.directMask[ci] === 1);
  }

  /** The storage of page `pfn` (a safe integer), or undefined when it holds nothing. */
  private page(pfn: number): Page | undefined {
    const ci = Math.floor(pfn / CHUNK_PAGES);
    if (this.isDirect(ci)) return this.chunks[ci]?.pages[pfn % CHUNK_PAGES];
    return this.sparse.get(pfn);
  }

  /** Gives page `pfn` storage (a zero page from the pool). */
  private attach(pfn: number): Page {
    const p = this.pool.take();
    const ci = Math.floor(pfn / CHUNK_PAGES);
    if (this.isDirect(ci)) {
      let c = this.chunks[ci];
      if (c === undefined) {
        while (this.chunks.length <= ci) {
          this.chunks.push(undefined);
          this.chunkWords.push(undefined);
        }
        c = new Chunk();
        this.chunks[ci] = c;
        this.chunkWords[ci] = c.words;
      }
      c.pages[pfn % CHUNK_PAGES] = p;
      c.words[pfn % CHUNK_PAGES] = p.words;
    } else {
      this.sparse.set(pfn, p);
    }
    this.held++;
    return p;
  }

  /** Page `pfn` is all zeros again: its storage goes back to the pool. */
  private detach(pfn: number, p: Page): void {
    const ci = Math.floor(pfn / CHUNK_PAGES);
    const c = this.isDirect(ci) ? this.chunks[ci] : undefined;
    if (c !== undefined) {
      c.pages[pfn % CHUNK_PAGES] = undefined;
      c.words[pfn % CHUNK_PAGES] = undefined;
    } else {
      this.sparse.delete(pfn);
    }
    this.held--;
    this.pool.give(p);
  }

  /**
   * Changes bytes [off, off + n) of page `pfn` with `apply`, keeping the count of nonzero dwords. `zero`: the
   * change only writes zero bytes, so a page holding nothing stays as it is.
   */
  private mutate(pfn: number, off: number, n: number, zero: boolean, apply: (bytes: Uint8Array) => void): void {
    let p = this.page(pfn);
    if (p === undefined) {
      if (zero) return;
      p = this.attach(pfn);
    }
    const from = off >>> 2;
    const to = (off + n + 3) >>> 2;
    const before = nonzeroWords(p.words, from, to);
    apply(p.bytes);
    p.nonzero += nonzeroWords(p.words, from, to) - before;
    if (p.nonzero === 0) this.detach(pfn, p);
  }

  /**
   * The 1024 little-endian dwords of 4 KiB page `pfn`, or undefined when the page holds nothing (it reads as
   * zero). The array is the page itself: read only, and valid until memory is next written. Table walks index
   * entries in it directly.
   */
  pageWords(pfn: number): Uint32Array | undefined {
    if (HOST_LE && (pfn | 0) === pfn && pfn >= 0 && pfn < this.directPages) {
      const words = this.chunkWords[pfn >>> CHUNK_SHIFT];
      if (words !== undefined) return words[pfn & (CHUNK_PAGES - 1)];
      if (this.isDirect(pfn >>> CHUNK_SHIFT)) return undefined;
    }
    if (!(Number.isInteger(pfn) && pfn >= 0 && pfn < PAGE_LIMIT)) throw new RangeError(`page frame ${pfn} is outside 0..2^45`);
    const p = this.page(pfn);
    if (p === undefined || HOST_LE) return p?.words;
    const out = new Uint32Array(PAGE_WORDS);
    const v = new DataView(p.bytes.buffer, p.bytes.byteOffset, PAGE);
    for (let i = 0; i < out.length; i++) out[i] = v.getUint32(i * 4, true);
    return out;
  }

  read8(addr: PhysAddr): number {
    const a = checkPhysAddr(addr);
    return this.page(pfnOf(a))?.bytes[offOf(a)] ?? 0;
  }

  write8(addr: PhysAddr, v: number): void {
    const a = checkPhysAddr(addr);
    const off = offOf(a);
    const b = v & 0xff;
    this.mutate(pfnOf(a), off, 1, b === 0, (bytes) => (bytes[off] = b));
  }

  read16(addr: PhysAddr): number {
    const a = checkPhysAddr(addr);
    const off = offOf(a);
    if (off > PAGE - 2) return this.readLE(a, 2);
    const b = this.page(pfnOf(a))?.bytes;
    return b === undefined ? 0 : (b[off] ?? 0) | ((b[off + 1] ?? 0) << 8);
  }

  write16(addr: PhysAddr, v: number): void {
    const a = checkPhysAddr(addr);
    const off = offOf(a);
    if (off > PAGE - 2) return this.writeLE(a, 2, v & 0xffff);
    const h = v & 0xffff;
    this.mutate(pfnOf(a), off, 2, h === 0, (bytes) => {
      bytes[off] = h & 0xff;
      bytes[off + 1] = h >>> 8;
    });
  }

  /**
   * Hot path: a 32-bit little-endian load. An aligned number address in an indexed range costs three array
   * reads; anything else takes the general path.
   */
  read32(addr: PhysAddr): number {
    if (typeof addr === "number" && HOST_LE && addr >= 0 && addr < this.directLimit && (addr & 3) === 0 && addr === Math.floor(addr)) {
      const chunk = this.chunkWords[(addr / CHUNK_BYTES) | 0];
      if (chunk !== undefined) {
        const w = chunk[(addr >>> PAGE_SHIFT) & (CHUNK_PAGES - 1)];
        return w === undefined ? 0 : (w[(addr & (PAGE - 1)) >>> 2] ?? 0);
      }
    }
    return this.read32Slow(addr);
  }

  private read32Slow(addr: PhysAddr): number {
    const a = checkPhysAddr(addr);
    const off = offOf(a);
    if (off > PAGE - 4) return this.readLE(a, 4);
    const p = this.page(pfnOf(a));
    if (p === undefined) return 0;
    if (HOST_LE && (off & 3) === 0) return p.words[off >>> 2] ?? 0;
    const b = p.bytes;
    return ((b[off] ?? 0) | ((b[off + 1] ?? 0) << 8) | ((b[off + 2] ?? 0) << 16) | ((b[off + 3] ?? 0) << 24)) >>> 0;
  }

  /** Hot path: a 32-bit little-endian store, as cheap as the load where the page already holds data. */
  write32(addr: PhysAddr, v: number): void {
    if (typeof addr === "number" && HOST_LE && addr >= 0 && addr < this.directLimit && (addr & 3) === 0 && addr === Math.floor(addr)) {
      const c = this.chunks[(addr / CHUNK_BYTES) | 0];
      const p = c?.pages[(addr >>> PAGE_SHIFT) & (CHUNK_PAGES - 1)];
      if (p !== undefined) {
        const k = (addr & (PAGE - 1)) >>> 2;
        const old = p.words[k];
        const nv = v >>> 0;
        p.words[k] = nv;
        if (old === 0) {
          if (nv !== 0) p.nonzero++;
        } else if (nv === 0 && --p.nonzero === 0) {
          this.detach(Math.floor(addr / PAGE), p);
        }
        return;
      }
      // Zero into a page that holds nothing: nothing changes.
      if (c !== undefined && v >>> 0 === 0) return;
    }
    const a = checkPhysAddr(addr);
    const off = offOf(a);
    const nv = v >>> 0;
    if (off > PAGE - 4) return this.writeLE(a, 4, nv);
    const pfn = pfnOf(a);
    if (nv === 0 && this.page(pfn) === undefined) return;
    this.mutate(pfn, off, 4, nv === 0, (b) => {
      b[off] = nv & 0xff;
      b[off + 1] = (nv >>> 8) & 0xff;
      b[off + 2] = (nv >>> 16) & 0xff;
      b[off + 3] = nv >>> 24;
    });
  }

  /**
   * Hot path: a 64-bit little-endian store given as 32-bit halves (a table entry), one page lookup for both
   * where the entry lies in a page that holds data.
   */
  write64Halves(addr: number, lo: number, hi: number): void {
    if (typeof addr === "number" && HOST_LE && addr >= 0 && addr < this.directLimit && (addr & 7) === 0 && addr === Math.floor(addr)) {
      const p = this.chunks[(addr / CHUNK_BYTES) | 0]?.pages[(addr >>> PAGE_SHIFT) & (CHUNK_PAGES - 1)];
      if (p !== undefined) {
        const w = p.words;
        const k = (addr & (PAGE - 1)) >>> 2;
        const nlo = lo >>> 0;
        const nhi = hi >>> 0;
        const before = (w[k] !== 0 ? 1 : 0) + (w[k + 1] !== 0 ? 1 : 0);
        w[k] = nlo;
        w[k + 1] = nhi;
        p.nonzero += (nlo !== 0 ? 1 : 0) + (nhi !== 0 ? 1 : 0) - before;
        if (p.nonzero === 0) this.detach(Math.floor(addr / PAGE), p);
        return;
      }
    }
    this.write32(addr, lo);
    this.write32(addPhys(checkPhysAddr(addr), 4), hi);
  }

  /** 64-bit load as bigint (edge use). Hot paths read two 32-bit halves. */
  read64(addr: PhysAddr): bigint {
    const a = checkPhysAddr(addr);
    const lo = this.read32(a);
    const hi = this.read32(addPhys(a, 4));
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  write64(addr: PhysAddr, v: bigint): void {
    const a = checkPhysAddr(addr);
    this.write32(a, Number(v & 0xffff_ffffn));
    this.write32(addPhys(a, 4), Number((v >> 32n) & 0xffff_ffffn));
  }

  /** Copies `length` bytes starting at `addr` into a new array (zero where never written). */
  read(addr: PhysAddr, length: number): Uint8Array {
    const out = new Uint8Array(length);
    this.readInto(addr, out);
    return out;
  }

  readInto(addr: PhysAddr, out: Uint8Array): void {
    this.forEachPiece(addr, out.length, (pfn, off, at, n) => {
      const p = this.page(pfn);
      if (p === undefined) out.fill(0, at, at + n);
      else out.set(p.bytes.subarray(off, off + n), at);
    });
  }

  write(addr: PhysAddr, data: Uint8Array): void {
    this.forEachPiece(addr, data.length, (pfn, off, at, n) => {
      this.mutate(pfn, off, n, false, (bytes) => bytes.set(data.subarray(at, at + n), off));
    });
  }

  fill(addr: PhysAddr, length: number, value: number): void {
    const b = value & 0xff;
    this.forEachPiece(addr, length, (pfn, off, _at, n) => this.mutate(pfn, off, n, b === 0, (bytes) => bytes.fill(b, off, off + n)));
  }

  /** Calls fn(pfn, offset in page, offset in the request, bytes) for each page piece of [addr, addr + length). */
  private forEachPiece(addr: PhysAddr, length: number, fn: (pfn: number, off: number, at: number, n: number) => void): void {
    const a = checkPhysAddr(addr);
    if (length > 0) checkPhysAddr(addPhys(a, length - 1)); // bounds check of the last byte
    let pfn = pfnOf(a);
    let off = offOf(a);
    let at = 0;
    while (at < length) {
      const n = Math.min(PAGE - off, length - at);
      fn(pfn, off, at, n);
      at += n;
      pfn += 1;
      off = 0;
    }
  }

  private readLE(addr: PhysAddr, n: number): number {
    let v = 0;
    for (let i = n - 1; i >= 0; i--) v = v * 256 + this.read8(addPhys(addr, i));
    return v;
  }

  private writeLE(addr: PhysAddr, n: number, v: number): void {
    for (let i = 0; i < n; i++) {
      this.write8(addPhys(addr, i), v & 0xff);
      v = Math.floor(v / 256);
    }
  }
}

/**
 * The read side of physical memory. Table walkers take this rather than PhysicalMemory so the same code walks
 * live simulated memory and a memory dump file read on demand.
 */
export interface PhysReader {
  read32(addr: PhysAddr): number;
}
