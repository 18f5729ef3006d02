/**
 * Guest RAM: a range of guest-physical addresses (GPA 0 .. size) whose 4 KiB pages are backed by host pages
 * scattered anywhere in host-physical memory (HPA), the way a hypervisor backs a VM with pages from its
 * allocator. Two views:
 * - GuestMemoryMap: the GPA → HPA table (what EPT and the IOMMU's unmanaged domain both encode), with
 *   ballooned-out pages unbacked;
 * - GuestPhysicalMemory: the guest CPU's loads and stores at GPAs, forwarded to the host pages. It is a
 *   PhysicalMemory so the simulated kernel (page allocator, DMA API, swiotlb) runs on it unchanged. Accesses
 *   to unbacked GPAs read as zero and drop writes (the hypervisor would trap them).
 */
import { PhysicalMemory, type PhysAddr } from "../core/memory.js";
import { IommuError } from "../core/errors.js";

const PAGE = 4096;
const NONE = -1;
const BIG_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

export class GuestMemoryMap {
  /** Bytes of guest RAM (GPA 0 .. size - 1). */
  readonly size: number;
  readonly pages: number;
  /** Host page frame of each guest page frame, or -1 when unbacked. */
  private readonly hostPfn: Float64Array;
  private backed = 0;

  constructor(size: number) {
    if (!Number.isSafeInteger(size) || size <= 0 || size % PAGE !== 0) {
      throw new IommuError("VM_CONFIG", `guest RAM size ${size} is not a positive multiple of 4 KiB`);
    }
    this.size = size;
    this.pages = size / PAGE;
    this.hostPfn = new Float64Array(this.pages).fill(NONE);
  }

  /** Pages currently backed by host memory. */
  get backedPages(): number {
    return this.backed;
  }

  /** Backs guest page `gpfn` with host page `hpfn`. */
  back(gpfn: number, hpfn: number): void {
    if (!(gpfn >= 0 && gpfn < this.pages)) throw new RangeError(`guest page ${gpfn} is outside 0..${this.pages - 1}`);
    if (this.hostPfn[gpfn] === NONE) this.backed++;
    this.hostPfn[gpfn] = hpfn;
  }

  /** Removes the backing of guest page `gpfn`; returns the host page it had, or -1. */
  unback(gpfn: number): number {
    const h = this.hostPfn[gpfn] ?? NONE;
    if (h !== NONE) {
      this.hostPfn[gpfn] = NONE;
      this.backed--;
    }
    return h;
  }

  /** Host page frame behind guest page frame `gpfn`, or -1. */
  hostPfnOf(gpfn: number): number {
    return gpfn >= 0 && gpfn < this.pages ? (this.hostPfn[gpfn] ?? NONE) : NONE;
  }

  /** HPA of a GPA, or null when the GPA is outside RAM or unbacked. */
  hpaOf(gpa: number): number | null {
    const gpfn = Math.floor(gpa / PAGE);
    const h = this.hostPfnOf(gpfn);
    return h === NONE ? null : h * PAGE + (gpa % PAGE);
  }

  /** Every backed guest page as [gpfn, hpfn], in GPA order. */
  *entries(): IterableIterator<[number, number]> {
    for (let g = 0; g < this.pages; g++) {
      const h = this.hostPfn[g] ?? NONE;
      if (h !== NONE) yield [g, h];
    }
  }
}

/** The guest CPU's view of its RAM: loads and stores at GPAs land in the backing host pages. */
export class GuestPhysicalMemory extends PhysicalMemory {
  constructor(
    private readonly host: PhysicalMemory,
    readonly map: GuestMemoryMap,
  ) {
    super();
  }

  private hpa(addr: PhysAddr): number {
    // Guest RAM lies below 2^53: a bigint beyond that is outside it (and would round as a number).
    if (typeof addr === "bigint" && !(addr >= 0n && addr < BIG_SAFE)) return NONE;
    const a = typeof addr === "bigint" ? Number(addr) : addr;
    const h = this.map.hostPfnOf(Math.floor(a / PAGE));
    return h === NONE ? NONE : h * PAGE + (a % PAGE);
  }

  override get backedPages(): number {
    return this.map.backedPages;
  }

  override backedPageNumbers(): number[] {
    return [...this.map.entries()].map(([g]) => g);
  }

  /** The host page behind guest page `pfn` (undefined when unbacked or never written: it reads as zero). */
  override pageWords(pfn: number): Uint32Array | undefined {
    const h = this.map.hostPfnOf(pfn);
    return h === NONE ? undefined : this.host.pageWords(h);
  }

  override read8(addr: PhysAddr): number {
    const h = this.hpa(addr);
    return h === NONE ? 0 : this.host.read8(h);
  }

  override write8(addr: PhysAddr, v: number): void {
    const h = this.hpa(addr);
    if (h !== NONE) this.host.write8(h, v);
  }

  override read16(addr: PhysAddr): number {
    return this.read8(addr) | (this.read8(add(addr, 1)) << 8);
  }

  override write16(addr: PhysAddr, v: number): void {
    this.write8(addr, v);
    this.write8(add(addr, 1), v >>> 8);
  }

  override read32(addr: PhysAddr): number {
    const a = typeof addr === "bigint" ? Number(addr) : addr;
    if (a % PAGE <= PAGE - 4) {
      const h = this.hpa(a);
      return h === NONE ? 0 : this.host.read32(h);
    }
    return (this.read16(a) | (this.read16(a + 2) << 16)) >>> 0;
  }

  override write32(addr: PhysAddr, v: number): void {
    const a = typeof addr === "bigint" ? Number(addr) : addr;
    if (a % PAGE <= PAGE - 4) {
      const h = this.hpa(a);
      if (h !== NONE) this.host.write32(h, v);
      return;
    }
    this.write16(a, v & 0xffff);
    this.write16(a + 2, (v >>> 16) & 0xffff);
  }

  override read64(addr: PhysAddr): bigint {
    const a = typeof addr === "bigint" ? Number(addr) : addr;
    return (BigInt(this.read32(a + 4)) << 32n) | BigInt(this.read32(a));
  }

  override write64(addr: PhysAddr, v: bigint): void {
    const a = typeof addr === "bigint" ? Number(addr) : addr;
    this.write32(a, Number(v & 0xffff_ffffn));
    this.write32(a + 4, Number((v >> 32n) & 0xffff_ffffn));
  }

  override readInto(addr: PhysAddr, out: Uint8Array): void {
    this.eachPage(addr, out.length, (h, at, n) => {
      if (h === NONE) out.fill(0, at, at + n);
      else out.set(this.host.read(h, n), at);
    });
  }

  override read(addr: PhysAddr, length: number): Uint8Array {
    const out = new Uint8Array(length);
    this.readInto(addr, out);
    return out;
  }

  override write(addr: PhysAddr, data: Uint8Array): void {
    this.eachPage(addr, data.length, (h, at, n) => {
      if (h !== NONE) this.host.write(h, data.subarray(at, at + n));
    });
  }

  override fill(addr: PhysAddr, length: number, value: number): void {
    this.eachPage(addr, length, (h, _at, n) => {
      if (h !== NONE) this.host.fill(h, n, value);
    });
  }

  /** Calls fn(hpa or -1, offset into the request, bytes) for each page piece of [addr, addr + length). */
  private eachPage(addr: PhysAddr, length: number, fn: (hpa: number, at: number, n: number) => void): void {
    let a = typeof addr === "bigint" ? Number(addr) : addr;
    let at = 0;
    while (at < length) {
      const n = Math.min(PAGE - (a % PAGE), length - at);
      fn(this.hpa(a), at, n);
      at += n;
      a += n;
    }
  }
}

function add(a: PhysAddr, n: number): PhysAddr {
  return typeof a === "bigint" ? a + BigInt(n) : a + n;
}
