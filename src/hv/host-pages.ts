/**
 * Where guest RAM comes from: host pages taken from the host kernel's page allocator, handed to VMs in a
 * scattered order (guest-contiguous memory is not host-contiguous), and a pool of pages VMs gave back. The
 * pool is last-in first-out, as a hypervisor's free lists are: the pages a destroyed or ballooned VM released
 * are the first ones the next VM gets. That reuse is what makes a stale translation dangerous. Pages are zeroed
 * when handed out.
 */
import type { PhysicalMemory } from "../core/memory.js";
import type { PageAllocator } from "../os/pages.js";
import { seededRandom } from "../core/random.js";

const PAGE = 4096;

/** The page scattering is reproducible from a seed. */
export const rng = seededRandom;

export class HostPagePool {
  /** Host page frames given back by VMs, most recent last. */
  private readonly free: number[] = [];
  private readonly freeSet = new Set<number>();
  private readonly random: () => number;
  /** Pages taken from the host kernel so far. */
  taken = 0;

  constructor(
    private readonly pages: PageAllocator,
    private readonly memory: PhysicalMemory,
    seed = 1,
  ) {
    this.random = rng(seed);
  }

  /** Pages waiting in the pool. */
  get pooled(): number {
    return this.free.length;
  }

  /**
   * `count` zeroed host page frames: first from the pool (most recently released first), then fresh ones from
   * the host kernel, shuffled so that consecutive guest pages do not sit on consecutive host pages.
   */
  alloc(count: number): number[] {
    const out: number[] = [];
    while (out.length < count && this.free.length > 0) {
      const p = this.free.pop()!;
      this.freeSet.delete(p);
      out.push(p);
    }
    const fresh: number[] = [];
    while (out.length + fresh.length < count) {
      const a = this.pages.alloc(1);
      fresh.push(a / PAGE);
      this.taken++;
    }
    for (let i = fresh.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1));
      const t = fresh[i]!;
      fresh[i] = fresh[j]!;
      fresh[j] = t;
    }
    out.push(...fresh);
    for (const p of out) this.memory.fill(p * PAGE, PAGE, 0);
    return out;
  }

  /** Gives pages back to the pool (the caller has made sure no device can reach them, or has not). */
  release(hpfns: Iterable<number>): void {
    for (const p of hpfns) {
      if (this.freeSet.has(p)) continue;
      this.free.push(p);
      this.freeSet.add(p);
    }
  }

  /** True when the page is waiting in the pool. */
  isPooled(hpfn: number): boolean {
    return this.freeSet.has(hpfn);
  }
}
