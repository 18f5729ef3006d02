/**
 * Queued invalidation as the simulated kernel drives it, after Linux 6.1 (drivers/iommu/intel/dmar.c:
 * dmar_enable_qi, qi_submit_sync, qi_flush_context, qi_flush_iotlb, qi_global_iec; iommu.c:
 * iommu_flush_iotlb_psi): a one-page queue of 128-bit descriptors, each batch followed by an invalidation wait
 * descriptor whose status write the driver polls. Descriptor formats come from spec/vtd/invalidation.ts.
 */
import { IommuError } from "../core/errors.js";
import {
  descriptorBytes,
  encodeContextCacheDesc,
  encodeIecDesc,
  encodeIotlbDesc,
  encodeIqa,
  encodeWaitDesc,
  queueEntries,
  queueOffset,
  type Descriptor,
} from "../spec/vtd/invalidation.js";
import { PAGE_SHIFT_4K } from "../spec/vtd/paging.js";
import { DMAR_FSTS_REG, DMAR_IQA_REG, DMAR_IQERCD_REG, DMAR_IQT_REG, FSTS_IQE, GCMD_QIE, GSTS_QIES, INV_DEVICE, INV_DOMAIN, INV_GLOBAL, INV_PAGE } from "../spec/vtd/registers.js";
import { hx, type DmarUnit, type DriverContext, type UnitIo } from "./intel-unit.js";

/** IQA.QS = 0: the queue is one 4 KiB page (Linux: QI_LENGTH descriptors). */
const QUEUE_PAGES_LOG2 = 0;
export const QI_LENGTH = queueEntries(QUEUE_PAGES_LOG2, false);
/** Linux's software status values of a wait descriptor's status dword (enum QI_FREE, QI_IN_USE, QI_DONE). */
const QI_IN_USE = 1;
const QI_DONE = 2;
/** Bytes per status dword, one per queue slot. */
const STATUS_BYTES = 4;
const DESC_BYTES = descriptorBytes(false);

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

  /** Allocates the queue and the status page, programs IQA with QS = 0 and enables queuing (__dmar_enable_qi). */
  enable(u: DmarUnit): void {
    if (u.qiBase !== 0) return;
    const { pages } = this.ctx;
    u.qiBase = pages.alloc(1, "any");
    u.qiStatus = pages.alloc(1, "any");
    u.qiTail = 0;
    // Quiesce, program IQA, tail 0, then enable.
    this.io.w32(u, DMAR_IQT_REG, 0);
    this.io.w64(u, DMAR_IQA_REG, Number(encodeIqa(u.qiBase, QUEUE_PAGES_LOG2)));
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
    this.io.w32(u, DMAR_IQT_REG, queueOffset(u.qiTail, false));
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

  /** Writes one descriptor at the tail and moves the tail on (IQT is written once per batch). */
  private put(u: DmarUnit, d: Descriptor): void {
    const mem = this.ctx.port.memory;
    const at = u.qiBase + u.qiTail * DESC_BYTES;
    for (let i = 0; i < d.length; i++) mem.write32(at + 4 * i, d[i] ?? 0);
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
