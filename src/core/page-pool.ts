/**
 * Storage for the pages of simulated physical memory. Pages are carved from slabs (one buffer for up to 512
 * pages, which costs host memory only where it is touched) and recycled: a page whose contents are all zero
 * again goes back to the pool and is handed out again as it is — already zero, already touched by the host.
 * Memory that churns through physical pages (a kernel allocating and freeing page tables at ever new
 * addresses) then costs what it holds, not every page it ever wrote.
 */

export const PAGE_BYTES = 4096;
export const PAGE_WORDS = PAGE_BYTES / 4;
/** Pages per slab: the first slabs are small (many memories hold a few pages), then they double up to this. */
const MAX_SLAB_PAGES = 512;
const FIRST_SLAB_PAGES = 8;

/** One 4 KiB page: dword and byte views of the same bytes, and how many of its dwords are not zero. */
export class Page {
  nonzero = 0;

  constructor(
    readonly words: Uint32Array,
    readonly bytes: Uint8Array,
  ) {}
}

/** Number of dwords in words[from, to) that are not zero. */
export function nonzeroWords(words: Uint32Array, from: number, to: number): number {
  let n = 0;
  for (let k = from; k < to; k++) if (words[k] !== 0) n++;
  return n;
}

export class PagePool {
  private readonly spare: Page[] = [];
  private nextSlabPages = FIRST_SLAB_PAGES;

  /** A zero page. */
  take(): Page {
    const p = this.spare.pop();
    if (p !== undefined) return p;
    this.addSlab();
    return this.spare.pop()!;
  }

  /**
   * A new slab, all its pages made at once: their objects then sit together in the heap, which keeps the
   * loads of a table walk (page object, then data) close to each other.
   */
  private addSlab(): void {
    const n = this.nextSlabPages;
    this.nextSlabPages = Math.min(MAX_SLAB_PAGES, n * 2);
    const slab = new ArrayBuffer(n * PAGE_BYTES);
    // Handed out lowest first (pop takes from the end).
    for (let i = n - 1; i >= 0; i--) {
      this.spare.push(new Page(new Uint32Array(slab, i * PAGE_BYTES, PAGE_WORDS), new Uint8Array(slab, i * PAGE_BYTES, PAGE_BYTES)));
    }
  }

  /** Takes back a page whose every dword is zero. */
  give(p: Page): void {
    p.nonzero = 0;
    this.spare.push(p);
  }

  /** Pages waiting to be handed out again. */
  get spares(): number {
    return this.spare.length;
  }
}
