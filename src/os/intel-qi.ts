/**
 * Queued invalidation as the simulated kernel drives it, after Linux 6.1 (drivers/iommu/intel/dmar.c:
 * dmar_enable_qi, qi_submit_sync, qi_flush_context, qi_flush_iotlb, qi_global_iec, qi_flush_pasid_cache,
 * qi_flush_piotlb; iommu.c: iommu_flush_iotlb_psi): a one-page queue of 128-bit descriptors, or, when the unit
 * reports ECAP.SMTS, a two-page queue of 256-bit descriptors (IQA.DW, QS = 1) whose upper halves are zero; each
 * batch followed by an invalidation wait descriptor whose status write the driver polls. Descriptor formats come
 * from spec/vtd/invalidation.ts.
 */
import { IommuError } from "../core/errors.js";
import {
  descriptorBytes,
  encodeContextCacheDesc,
  encodeIecDesc,
  encodeIotlbDesc,
  encodeIqa,
  encodePasidCacheDesc,
  encodePasidIotlbDesc,
  encodeWaitDesc,
  PIOTLB_G_PAGE,
  PIOTLB_G_PASID,
  queueEntries,
  queueOffset,
  type Descriptor,
} from "../spec/vtd/invalidation.js";
import { PAGE_SHIFT_4K } from "../spec/vtd/paging.js";
import { DMAR_FSTS_REG, DMAR_IQA_REG, DMAR_IQERCD_REG, DMAR_IQT_REG, FSTS_IQE, GCMD_QIE, GSTS_QIES, INV_DEVICE, INV_DOMAIN, INV_GLOBAL, INV_PAGE } from "../spec/vtd/registers.js";
import { hx, type DmarUnit, type DriverContext, type UnitIo } from "./intel-unit.js";

/**
 * IQA.QS: the queue is one 4 KiB page of QI_LENGTH 128-bit descriptors, or, with 256-bit descriptors, two pages
 * holding the same number (dmar_enable_qi allocates an order-1 page when ECAP.SMTS is set).
 */
const QUEUE_PAGES_LOG2 = 0;
export const QI_LENGTH = queueEntries(QUEUE_PAGES_LOG2, false);

/** IQA.QS of a queue of QI_LENGTH descriptors of the given width (0, or 1 for 256-bit descriptors). */
function queuePagesLog2(wide: boolean): number {
  let qs = QUEUE_PAGES_LOG2;
  while (queueEntries(qs, wide) < QI_LENGTH) qs++;
  return qs;
}
/** Linux's software status values of a wait descriptor's status dword (enum QI_FREE, QI_IN_USE, QI_DONE). */
const QI_IN_USE = 1;
const QI_DONE = 2;
/** Bytes per status dword, one per queue slot. */
const STATUS_BYTES = 4;

export class QueuedInvalidation {
  /**
   * Encoded descriptors kept for reuse (the encoders are pure): the wait descriptor of each status address, and
   * the IOTLB descriptor built last. A driver issuing the same invalidation again and again encodes it once.
   */
  private readonly waitDescs = new Map<number, Descriptor>();
  private lastIotlb: { g: number; did: number; addr: number; am: number; drain: boolean; desc: Descriptor } | null = null;

  constructor(
    private readonly ctx: DriverContext,
    private readonly io: UnitIo,
  ) {}

  /**
   * Allocates the queue and the status page, programs IQA and enables queuing (__dmar_enable_qi): QS = 0 and
   * 128-bit descriptors, or, on a unit with ECAP.SMTS (whether or not the kernel then uses scalable mode),
   * DW = 1 and QS = 1.
   */
  enable(u: DmarUnit): void {
    if (u.qiBase !== 0) return;
    const { pages } = this.ctx;
    u.qiWide = u.hasSmts;
    const qs = queuePagesLog2(u.qiWide);
    u.qiBase = pages.alloc(2 ** qs, "any");
    u.qiStatus = pages.alloc(1, "any");
    u.qiTail = 0;
    // Quiesce, program IQA, tail 0, then enable.
    this.io.w32(u, DMAR_IQT_REG, 0);
    this.io.w64(u, DMAR_IQA_REG, Number(encodeIqa(u.qiBase, qs, u.qiWide)));
    u.gcmd |= GCMD_QIE;
    this.io.gcmdWait(u, u.gcmd, GSTS_QIES, true, "queued invalidation enable");
  }

  /** Submits descriptors followed by a wait descriptor with status write, and polls for completion. */
  submit(u: DmarUnit, descs: readonly Descriptor[]): void {
    const mem = this.ctx.port.memory;
    for (const d of descs) this.put(u, d);
    const status = u.qiStatus + u.qiTail * STATUS_BYTES;
    mem.write32(status, QI_IN_USE);
    let wait = this.waitDescs.get(status);
    if (wait === undefined) {
      wait = encodeWaitDesc({ sw: true, data: QI_DONE, addr: status });
      this.waitDescs.set(status, wait);
    }
    this.put(u, wait);
    u.inv.waits++;
    this.io.w32(u, DMAR_IQT_REG, queueOffset(u.qiTail, u.qiWide));
    if (this.ctx.qiWaitNs) this.ctx.advance(this.ctx.qiWaitNs);
    if (mem.read32(status) !== QI_DONE) {
      const fsts = this.io.r32(u, DMAR_FSTS_REG);
      if ((fsts & FSTS_IQE) !== 0) {
        this.ctx.log.err(`DMAR: VT-d detected Invalidation Queue Error: Reason ${hx(this.io.r32(u, DMAR_IQERCD_REG))}`);
        this.io.w32(u, DMAR_FSTS_REG, FSTS_IQE);
      }
      throw new IommuError("DMAR_QI", `${u.name}: invalidation wait did not complete`);
    }
  }

  /**
   * Writes one descriptor at the tail and moves the tail on (IQT is written once per batch). In a 256-bit queue
   * the descriptor's upper 128 bits are written as zeros (qi_submit_sync copies qw2 and qw3, zero for every
   * descriptor this driver sends).
   */
  private put(u: DmarUnit, d: Descriptor): void {
    const mem = this.ctx.port.memory;
    const bytes = descriptorBytes(u.qiWide);
    const at = u.qiBase + u.qiTail * bytes;
    for (let i = 0; i < d.length; i++) mem.write32(at + 4 * i, d[i] ?? 0);
    for (let i = d.length; 4 * i < bytes; i++) mem.write32(at + 4 * i, 0);
    u.qiTail = (u.qiTail + 1) % QI_LENGTH;
  }

  contextGlobal(u: DmarUnit): void {
    u.inv.contextGlobal++;
    this.submit(u, [encodeContextCacheDesc({ g: INV_GLOBAL })]);
  }

  contextDevice(u: DmarUnit, did: number, sid: number): void {
    u.inv.contextDevice++;
    this.submit(u, [encodeContextCacheDesc({ g: INV_DEVICE, did, sid })]);
  }

  private iotlbDesc(u: DmarUnit, g: number, did: number, addr: number, am: number): Descriptor {
    const l = this.lastIotlb;
    if (l !== null && l.g === g && l.did === did && l.addr === addr && l.am === am && l.drain === u.drain) return l.desc;
    const desc = encodeIotlbDesc({ g, did, addr, am, dr: u.drain, dw: u.drain });
    this.lastIotlb = { g, did, addr, am, drain: u.drain, desc };
    return desc;
  }

  iotlbGlobal(u: DmarUnit): void {
    u.inv.iotlbGlobal++;
    this.submit(u, [this.iotlbDesc(u, INV_GLOBAL, 0, 0, 0)]);
  }

  iotlbDomain(u: DmarUnit, did: number): void {
    u.inv.iotlbDomain++;
    this.submit(u, [this.iotlbDesc(u, INV_DOMAIN, did, 0, 0)]);
  }

  /** iommu_flush_iotlb_psi: page-selective with the covering power-of-two mask, or domain-selective. */
  iotlbPsi(u: DmarUnit, did: number, pfn: number, pages: number): void {
    // The hardware invalidates the naturally aligned block of 2^mask pages that holds the address, so the mask
    // must make one aligned block cover the whole range, even when the range itself is not aligned.
    const last = pfn + Math.max(1, pages) - 1;
    let mask = 0;
    while (Math.floor(pfn / 2 ** mask) !== Math.floor(last / 2 ** mask)) mask++;
    if (!u.pageSelective || mask > u.maxAddressMask) {
      this.iotlbDomain(u, did);
      return;
    }
    u.inv.iotlbPage++;
    const addr = (pfn - (pfn % 2 ** mask)) * 2 ** PAGE_SHIFT_4K;
    this.submit(u, [this.iotlbDesc(u, INV_PAGE, did, addr, mask)]);
  }

  /** qi_flush_pasid_cache: granularity PC_G_DOMAIN (every PASID of `did`), PC_G_PASID or PC_G_GLOBAL. */
  pasidCache(u: DmarUnit, g: number, did: number, pasid: number): void {
    u.inv.pasidCache++;
    this.submit(u, [encodePasidCacheDesc({ g, did, pasid })]);
  }

  /**
   * qi_flush_piotlb: every translation of (did, pasid) when `pages` is null, else page-selective within the
   * PASID with the mask of `pages` rounded up to a power of two, the address aligned down to it.
   */
  piotlb(u: DmarUnit, did: number, pasid: number, pfn: number, pages: number | null, ih = false): void {
    u.inv.piotlb++;
    if (pages === null) {
      this.submit(u, [encodePasidIotlbDesc({ g: PIOTLB_G_PASID, did, pasid })]);
      return;
    }
    let mask = 0;
    while (2 ** mask < pages) mask++;
    const addr = (pfn - (pfn % 2 ** mask)) * 2 ** PAGE_SHIFT_4K;
    this.submit(u, [encodePasidIotlbDesc({ g: PIOTLB_G_PAGE, did, pasid, addr, am: mask, ih })]);
  }

  iecGlobal(u: DmarUnit): void {
    u.inv.iec++;
    this.submit(u, [encodeIecDesc({ global: true })]);
  }

  /** Index-selective interrupt entry cache invalidation (qi_flush_iec with mask 0). */
  iecIndex(u: DmarUnit, index: number): void {
    u.inv.iec++;
    this.submit(u, [encodeIecDesc({ global: false, index })]);
  }
}
