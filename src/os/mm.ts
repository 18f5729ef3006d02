/**
 * A process's address space as the CPU sees it: x86-64 4- or 5-level page tables in RAM (Intel SDM vol. 3A ch. 4;
 * the same format VT-d's first stage reads, spec/vtd/first-stage.ts) and the frames its user pages use. Shared
 * virtual addressing points a PASID entry's first-stage pointer at `pgd`, so a device then translates through
 * exactly these tables.
 *
 * Frames come from a per-CPU list of hot pages before the page allocator, last freed first (mm/page_alloc.c's
 * per-cpu pagesets): a page one process gives back is the next page another one gets.
 */
import { IommuError } from "../core/errors.js";
import { HI_DWORD_OFFSET, TWO32 } from "../core/u64.js";
import { FS_A, FS_D, FS_HI_ADDR_MASK, FS_LO_ADDR_MASK, FS_P, FS_RW, FS_US, fsAddressWidth } from "../spec/vtd/first-stage.js";
import { levelShift, PAGE_SIZE_4K, PTES_PER_TABLE, SL_ENTRY_SIZE } from "../spec/vtd/paging.js";
import type { PhysicalMemory } from "../core/memory.js";
import type { PageAllocator } from "./pages.js";

/** Intermediate entries: present, writable, user (the leaf decides what a page allows). */
const TABLE_FLAGS = FS_P | FS_RW | FS_US;
const ENTRY_SIZE = SL_ENTRY_SIZE;

/** Hot pages, freed last, allocated first. */
export class HotPages {
  private readonly list: number[] = [];

  constructor(private readonly pages: PageAllocator) {}

  alloc(memory: PhysicalMemory): number {
    const p = this.list.pop();
    if (p === undefined) return this.pages.alloc(1, "any");
    memory.fill(p, PAGE_SIZE_4K, 0);
    return p;
  }

  free(frame: number): void {
    this.list.push(frame);
  }
}

/** mmu_notifier_ops: told after pages of the address space were unmapped, and when the address space goes away. */
export interface MmNotifier {
  invalidate(va: number, pages: number): void;
  release(): void;
}

export class Mm {
  /** Physical address of the top-level table (CR3's, and the first-stage pointer of a bound PASID entry). */
  readonly pgd: number;
  /** mm->pasid: given on the first bind to a device, kept for the address space's life; null before. */
  pasid: number | null = null;
  /** Registered mmu notifiers (shared virtual addressing keeps IOTLBs in step with the CPU's tables). */
  readonly notifiers: MmNotifier[] = [];
  private readonly tables: number[] = [];
  /** User pages mapped: virtual page address -> frame. */
  private readonly mapped = new Map<number, number>();

  constructor(
    private readonly memory: PhysicalMemory,
    private readonly hot: HotPages,
    readonly pid: number,
    readonly levels: 4 | 5 = 4,
  ) {
    this.pgd = hot.alloc(memory);
    this.tables.push(this.pgd);
  }

  private entry(table: number, va: number, level: number): number {
    return table + (Math.floor(va / 2 ** levelShift(level)) % PTES_PER_TABLE) * ENTRY_SIZE;
  }

  private readAddr(e: number): number | null {
    const lo = this.memory.read32(e);
    if ((lo & FS_P) === 0) return null;
    const hi = this.memory.read32(e + HI_DWORD_OFFSET);
    return (hi & FS_HI_ADDR_MASK) * TWO32 + ((lo & FS_LO_ADDR_MASK) >>> 0);
  }

  private writeEntry(e: number, addr: number, flags: number): void {
    this.memory.write32(e + HI_DWORD_OFFSET, Math.floor(addr / TWO32));
    this.memory.write32(e, ((addr % TWO32) | flags) >>> 0);
  }

  private checkVa(va: number): void {
    if (!Number.isSafeInteger(va) || va < 0 || va >= 2 ** (fsAddressWidth(this.levels) - 1) || va % PAGE_SIZE_4K !== 0) {
      throw new IommuError("MM_ADDRESS", `pid ${this.pid}: ${va.toString(16)} is not a page-aligned user address`);
    }
  }

  /** The leaf entry's address for `va`, creating the tables above it when `create`. */
  private leaf(va: number, create: boolean): number | null {
    let table = this.pgd;
    for (let level = this.levels; level > 1; level--) {
      const e = this.entry(table, va, level);
      let next = this.readAddr(e);
      if (next === null) {
        if (!create) return null;
        next = this.hot.alloc(this.memory);
        this.tables.push(next);
        this.writeEntry(e, next, TABLE_FLAGS);
      }
      table = next;
    }
    return this.entry(table, va, 1);
  }

  /** Maps `count` user pages from `va` to new frames (mmap and first touch); returns the frames. */
  mmap(va: number, count: number, writable = true): number[] {
    const frames: number[] = [];
    for (let i = 0; i < count; i++) {
      const v = va + i * PAGE_SIZE_4K;
      this.checkVa(v);
      if (this.mapped.has(v)) throw new IommuError("MM_ADDRESS", `pid ${this.pid}: ${v.toString(16)} is already mapped`);
      const frame = this.hot.alloc(this.memory);
      // The CPU's first touch set A (and D for a write); the device's own accesses set them again.
      this.writeEntry(this.leaf(v, true)!, frame, FS_P | FS_US | FS_A | (writable ? FS_RW | FS_D : 0));
      this.mapped.set(v, frame);
      frames.push(frame);
    }
    return frames;
  }

  /** Removes the page at `va` and frees its frame (munmap); returns the frame, or null when nothing was mapped. */
  munmap(va: number): number | null {
    const frame = this.mapped.get(va);
    if (frame === undefined) return null;
    const e = this.leaf(va, false);
    if (e !== null) {
      this.memory.write32(e, 0);
      this.memory.write32(e + HI_DWORD_OFFSET, 0);
    }
    this.mapped.delete(va);
    this.hot.free(frame);
    // The CPU's TLB shootdown's counterpart: secondary TLBs (IOTLBs through PASIDs) invalidated, pages already freed.
    for (const n of [...this.notifiers]) n.invalidate(va, 1);
    return frame;
  }

  /** The frame behind `va` as the CPU would translate it, or null. */
  translate(va: number): number | null {
    const e = this.leaf(va - (va % PAGE_SIZE_4K), false);
    return e === null ? null : this.readAddr(e);
  }

  /** Process exit: notifiers released first (exit_mmap), then every user page and table back to the allocator. */
  exit(): void {
    for (const n of this.notifiers.splice(0)) n.release();
    for (const va of [...this.mapped.keys()]) this.munmap(va);
    for (const t of this.tables.splice(0)) this.hot.free(t);
  }
}
