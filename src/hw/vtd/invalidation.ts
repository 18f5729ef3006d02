/**
 * Cache invalidation: the register-based interface (VT-d spec 6.5.1: CCMD_REG 10.4.7, IOTLB_REG/IVA_REG 10.4.8)
 * and the queued interface (6.5.2: IQA/IQH/IQT 10.4.22–10.4.24, descriptors 6.5.2.1–6.5.2.8). Invalidations
 * complete synchronously, so the fence flag (FN) of an invalidation wait descriptor has nothing left to order.
 *
 * Queue errors (6.5.2.10): a tail beyond the queue, a misaligned tail with 256-bit descriptors, a descriptor
 * that cannot be fetched, an unknown or unsupported type, or a reserved field set. Hardware then sets FSTS.IQE
 * (with IQERCD.IQEI saying which), raises the fault event and stops with IQH at the bad descriptor; it resumes
 * from there when software clears IQE. Legacy-mode hardware has no PASID descriptors (types 6–8): they are
 * unsupported types here. QEMU 7.2 accepts types 6 and 7 silently and rejects a wait descriptor with neither SW
 * nor IF; the spec allows that descriptor (a plain fence), and so does this model.
 */
import type { TableReader } from "./walk.js";
import type { VtdConfig } from "./config.js";
import type { FaultReporting } from "./faults.js";
import type { RegisterFile } from "./regfile.js";
import {
  CCMD_HI_CAIG_MASK,
  CCMD_HI_CAIG_SHIFT,
  CCMD_HI_CIRG_SHIFT,
  CCMD_HI_ICC,
  DMAR_CCMD_REG,
  DMAR_FSTS_REG,
  DMAR_IQA_REG,
  DMAR_IQH_REG,
  DMAR_IQT_REG,
  INV_DESC_CC,
  INV_DESC_DEVICE_IOTLB,
  INV_DESC_IEC,
  INV_DESC_IOTLB,
  INV_DESC_WAIT,
  INV_DEVICE,
  INV_DOMAIN,
  INV_GLOBAL,
  INV_PAGE,
  FSTS_IQE,
  IOTLB_HI_IAIG_MASK,
  IOTLB_HI_IAIG_SHIFT,
  IOTLB_HI_IIRG_SHIFT,
  IOTLB_HI_IVT,
  IOTLB_REG_FROM_IVA,
  IQ_QH_SHIFT_128,
  IQ_QH_SHIFT_256,
  IQ_QT_MASK,
  IQA_DW,
  IQA_QS_MASK,
  IQEI_FETCH_ERROR,
  IQEI_INVALID_TAIL,
  IQEI_INVALID_TYPE,
  IQEI_RESERVED_FIELD,
  IQEI_TAIL_MISALIGNED,
  IVA_AM_MASK,
  IVA_IH,
  WAIT_IF,
  WAIT_SW,
} from "../../spec/vtd/registers.js";
import { TWO32 } from "../../core/u64.js";

/** What invalidations act on: the unit's caches and the interrupt entry cache. */
export interface InvalidationTarget {
  contextGlobal(): void;
  contextDomain(did: number): void;
  contextDevice(sid: number, fm: number): void;
  iotlbGlobal(): void;
  iotlbDomain(did: number): void;
  /** 2^am pages from addr of domain did; ih = only leaf entries changed (paging-structure caches may stay). */
  iotlbPages(did: number, addrLo: number, addrHi: number, am: number, ih: boolean): void;
  /** Device-TLB invalidation: nothing in the unit caches it; recorded for the device models. */
  deviceIotlb(sid: number, addrLo: number, addrHi: number, size: boolean): void;
  iecGlobal(): void;
  iecIndex(index: number, indexMask: number): void;
}

/** Physical memory as the queue sees it: descriptors are read, wait status is written. */
export interface QueueMemory extends TableReader {
  write32(addr: number, value: number): void;
}

export interface InvalidationStats {
  contextGlobal: number;
  contextDomain: number;
  contextDevice: number;
  iotlbGlobal: number;
  iotlbDomain: number;
  iotlbPage: number;
  deviceIotlb: number;
  iec: number;
  waits: number;
  descriptors: number;
  queueErrors: number;
}


export class Invalidation {
  private readonly regs: RegisterFile;
  private readonly cfg: VtdConfig;
  private readonly target: InvalidationTarget;
  private readonly faults: FaultReporting;
  private readonly mem: QueueMemory;
  // Queued invalidation state, latched when GCMD.QIE enables the queue.
  private qiEnabled = false;
  private baseLo = 0;
  private baseHi = 0;
  /** Number of descriptors in the queue. */
  private size = 0;
  private wide = false;
  private head = 0;
  private readonly desc = new Uint32Array(8);
  readonly stats: InvalidationStats = emptyStats();

  constructor(regs: RegisterFile, cfg: VtdConfig, target: InvalidationTarget, faults: FaultReporting, mem: QueueMemory) {
    this.regs = regs;
    this.cfg = cfg;
    this.target = target;
    this.faults = faults;
    this.mem = mem;
  }

  reset(): void {
    this.qiEnabled = false;
    this.baseLo = this.baseHi = this.size = this.head = 0;
    this.wide = false;
    Object.assign(this.stats, emptyStats());
  }

  get queueEnabled(): boolean {
    return this.qiEnabled;
  }

  // ---- Register-based invalidation (6.5.1) ----

  /** CCMD_REG high half written: with ICC set, invalidate per CIRG and report CAIG, then clear ICC. */
  onCcmdWrite(): void {
    const hi = this.regs.get32(DMAR_CCMD_REG + 4);
    if ((hi & CCMD_HI_ICC) === 0) return;
    // With queued invalidation enabled, register-based commands are not allowed (6.5.2); like QEMU, ignore.
    if (this.qiEnabled) return;
    const lo = this.regs.get32(DMAR_CCMD_REG);
    const cirg = (hi >>> CCMD_HI_CIRG_SHIFT) & 3;
    const did = lo & 0xffff;
    let caig = 0;
    if (cirg === INV_GLOBAL) {
      this.target.contextGlobal();
      this.stats.contextGlobal++;
      caig = INV_GLOBAL;
    } else if (cirg === INV_DOMAIN) {
      this.target.contextDomain(did);
      this.stats.contextDomain++;
      caig = INV_DOMAIN;
    } else if (cirg === INV_DEVICE) {
      this.target.contextDevice(lo >>> 16, hi & 3);
      this.stats.contextDevice++;
      caig = INV_DEVICE;
    }
    // CIRG 00 is reserved: nothing is invalidated and CAIG reads 00.
    this.regs.update32(DMAR_CCMD_REG + 4, (caig << CCMD_HI_CAIG_SHIFT) >>> 0, (CCMD_HI_ICC | CCMD_HI_CAIG_MASK) >>> 0);
  }

  /** IOTLB_REG high half written: with IVT set, invalidate per IIRG (and IVA_REG) and report IAIG. */
  onIotlbWrite(): void {
    const regOff = this.cfg.iotlbRegOffset + IOTLB_REG_FROM_IVA;
    const hi = this.regs.get32(regOff + 4);
    if ((hi & IOTLB_HI_IVT) === 0) return;
    if (this.qiEnabled) return;
    const iirg = (hi >>> IOTLB_HI_IIRG_SHIFT) & 3;
    const did = hi & 0xffff;
    let iaig = 0;
    if (iirg === INV_GLOBAL) {
      this.target.iotlbGlobal();
      this.stats.iotlbGlobal++;
      iaig = INV_GLOBAL;
    } else if (iirg === INV_DOMAIN || (iirg === INV_PAGE && !this.cfg.pageSelectiveInvalidation)) {
      // Without CAP.PSI a page-selective request is carried out domain-wide, and IAIG says so.
      this.target.iotlbDomain(did);
      this.stats.iotlbDomain++;
      iaig = INV_DOMAIN;
    } else if (iirg === INV_PAGE) {
      const ivaLo = this.regs.get32(this.cfg.iotlbRegOffset);
      const ivaHi = this.regs.get32(this.cfg.iotlbRegOffset + 4);
      const am = ivaLo & IVA_AM_MASK;
      if (am <= this.cfg.maxAddressMask) {
        this.target.iotlbPages(did, ivaLo & 0xfffff000, ivaHi, am, (ivaLo & IVA_IH) !== 0);
        this.stats.iotlbPage++;
        iaig = INV_PAGE;
      }
      // AM above CAP.MAMV: not performed, IAIG reads 00.
    }
    this.regs.update32(regOff + 4, (iaig << IOTLB_HI_IAIG_SHIFT) >>> 0, (IOTLB_HI_IVT | IOTLB_HI_IAIG_MASK) >>> 0);
  }

  // ---- Queued invalidation (6.5.2) ----

  /** GCMD.QIE changed. Enabling latches IQA; disabling resets IQH to 0 (10.4.22). */
  setQueueEnabled(enable: boolean): void {
    if (enable === this.qiEnabled) return;
    if (enable) {
      const lo = this.regs.get32(DMAR_IQA_REG);
      const hi = this.regs.get32(DMAR_IQA_REG + 4);
      this.wide = this.cfg.wideDescriptors && (lo & IQA_DW) !== 0;
      this.baseLo = (lo & 0xfffff000) >>> 0;
      this.baseHi = (hi & hawHiMask(this.cfg.hawBits)) >>> 0;
      // 2^QS pages of 4 KiB: 256 descriptors of 128 bits, or 128 of 256 bits, per page.
      this.size = (1 << (lo & IQA_QS_MASK)) * (this.wide ? 128 : 256);
      this.head = 0;
      this.writeHead();
      this.qiEnabled = true;
      this.process();
    } else {
      this.qiEnabled = false;
      this.head = 0;
      this.writeHead();
    }
  }

  /** IQT written (or IQE cleared): process descriptors from IQH up to IQT. */
  process(): void {
    if (!this.qiEnabled) return;
    if ((this.regs.get32(DMAR_FSTS_REG) & FSTS_IQE) !== 0) return; // stopped until software clears IQE
    const tailReg = this.regs.get32(DMAR_IQT_REG);
    if (this.wide && (tailReg & 0x10) !== 0) {
      this.error(IQEI_TAIL_MISALIGNED);
      return;
    }
    const tail = (tailReg & IQ_QT_MASK) >>> (this.wide ? IQ_QH_SHIFT_256 : IQ_QH_SHIFT_128);
    if (tail >= this.size) {
      this.error(IQEI_INVALID_TAIL);
      return;
    }
    // At most one lap: the queue cannot hold more than `size` pending descriptors.
    for (let n = 0; this.head !== tail && n < this.size; n++) {
      const iqei = this.processOne();
      if (iqei !== 0) {
        this.error(iqei);
        return;
      }
      this.head = (this.head + 1) % this.size;
      this.writeHead();
    }
  }

  private writeHead(): void {
    const shift = this.wide ? IQ_QH_SHIFT_256 : IQ_QH_SHIFT_128;
    this.regs.set64(DMAR_IQH_REG, (this.head << shift) & IQ_QT_MASK, 0);
  }

  private error(iqei: number): void {
    this.stats.queueErrors++;
    this.faults.queueError(iqei);
  }

  /** Fetches and executes the descriptor at IQH; returns 0 or the IQEI code of the error. */
  private processOne(): number {
    const bytes = this.wide ? 32 : 16;
    const addr = (this.baseHi >>> 0) * TWO32 + this.baseLo + this.head * bytes;
    if (this.mem.canRead !== undefined && !this.mem.canRead(addr, bytes)) return IQEI_FETCH_ERROR;
    const d = this.desc;
    for (let i = 0; i < bytes / 4; i++) d[i] = this.mem.read32(addr + 4 * i) >>> 0;
    for (let i = bytes / 4; i < 8; i++) d[i] = 0;
    this.stats.descriptors++;
    const d0 = d[0] ?? 0;
    const d1 = d[1] ?? 0;
    const d2 = d[2] ?? 0;
    const d3 = d[3] ?? 0;
    // Legacy descriptors leave the upper 128 bits of a 256-bit descriptor reserved.
    if (this.wide && ((d[4] ?? 0) | (d[5] ?? 0) | (d[6] ?? 0) | (d[7] ?? 0)) !== 0) return IQEI_RESERVED_FIELD;
    const type = (d0 & 0xf) | (((d0 >>> 9) & 7) << 4);
    switch (type) {
      case INV_DESC_CC:
        return this.contextCacheDesc(d0, d1, d2, d3);
      case INV_DESC_IOTLB:
        return this.iotlbDesc(d0, d1, d2, d3);
      case INV_DESC_DEVICE_IOTLB:
        return this.deviceIotlbDesc(d0, d1, d2, d3);
      case INV_DESC_IEC:
        return this.iecDesc(d0, d1, d2, d3);
      case INV_DESC_WAIT:
        return this.waitDesc(d0, d1, d2, d3);
      default:
        return IQEI_INVALID_TYPE;
    }
  }

  /** 6.5.2.1: G 5:4, DID 31:16, SID 47:32, FM 49:48; bits 15:6 (less the type) and 127:50 reserved. */
  private contextCacheDesc(d0: number, d1: number, d2: number, d3: number): number {
    if ((d0 & 0xf1c0) !== 0 || (d1 & 0xfffc0000) !== 0 || (d2 | d3) !== 0) return IQEI_RESERVED_FIELD;
    const g = (d0 >>> 4) & 3;
    const did = d0 >>> 16;
    if (g === INV_GLOBAL) {
      this.target.contextGlobal();
      this.stats.contextGlobal++;
    } else if (g === INV_DOMAIN) {
      this.target.contextDomain(did);
      this.stats.contextDomain++;
    } else if (g === INV_DEVICE) {
      this.target.contextDevice(d1 & 0xffff, (d1 >>> 16) & 3);
      this.stats.contextDevice++;
    } else {
      return IQEI_RESERVED_FIELD;
    }
    return 0;
  }

  /** 6.5.2.3: G 5:4, DW 6, DR 7, DID 31:16; AM 69:64, IH 70, ADDR 127:76; bits 8, 15:12, 63:32, 75:71 reserved. */
  private iotlbDesc(d0: number, d1: number, d2: number, d3: number): number {
    if ((d0 & 0xf100) !== 0 || d1 !== 0 || (d2 & 0xf80) !== 0) return IQEI_RESERVED_FIELD;
    const g = (d0 >>> 4) & 3;
    const did = d0 >>> 16;
    if (g === INV_GLOBAL) {
      this.target.iotlbGlobal();
      this.stats.iotlbGlobal++;
    } else if (g === INV_DOMAIN || (g === INV_PAGE && !this.cfg.pageSelectiveInvalidation)) {
      this.target.iotlbDomain(did);
      this.stats.iotlbDomain++;
    } else if (g === INV_PAGE) {
      const am = d2 & IVA_AM_MASK;
      if (am > this.cfg.maxAddressMask) return IQEI_RESERVED_FIELD;
      this.target.iotlbPages(did, d2 & 0xfffff000, d3, am, (d2 & IVA_IH) !== 0);
      this.stats.iotlbPage++;
    } else {
      return IQEI_RESERVED_FIELD;
    }
    return 0;
  }

  /** 6.5.2.5: PFSID 15:12 and 63:52, MIP 20:16, SID 47:32; S 64, ADDR 127:76; reserved 8:4, 31:21, 51:48, 75:65. */
  private deviceIotlbDesc(d0: number, d1: number, d2: number, d3: number): number {
    if (!this.cfg.deviceTlb) return IQEI_INVALID_TYPE;
    if ((d0 & 0xffe001f0) !== 0 || (d1 & 0x000f0000) !== 0 || (d2 & 0xffe) !== 0) return IQEI_RESERVED_FIELD;
    this.target.deviceIotlb(d1 & 0xffff, d2 & 0xfffff000, d3, (d2 & 1) !== 0);
    this.stats.deviceIotlb++;
    return 0;
  }

  /** 6.5.2.7: G 4 (0 global, 1 index-selective), IM 31:27, IIDX 47:32; reserved 8:5, 26:12, 63:48, 127:64. */
  private iecDesc(d0: number, d1: number, d2: number, d3: number): number {
    if (!this.cfg.interruptRemapping) return IQEI_INVALID_TYPE;
    if ((d0 & 0x07fff1e0) !== 0 || (d1 & 0xffff0000) !== 0 || (d2 | d3) !== 0) return IQEI_RESERVED_FIELD;
    if ((d0 & 0x10) === 0) this.target.iecGlobal();
    else this.target.iecIndex(d1 & 0xffff, d0 >>> 27);
    this.stats.iec++;
    return 0;
  }

  /**
   * 6.5.2.8: IF 4, SW 5, FN 6, PD 7 (page drain: needs page requests, reserved here), status data 63:32,
   * status address 127:66; bits 8, 31:12 and 65:64 reserved.
   */
  private waitDesc(d0: number, d1: number, d2: number, d3: number): number {
    if ((d0 & 0xfffff180) !== 0 || (d2 & 3) !== 0) return IQEI_RESERVED_FIELD;
    this.stats.waits++;
    if ((d0 & WAIT_SW) !== 0) {
      // Status write: the 32-bit status data to the dword-aligned address (within HAW).
      const hi = d3 & hawHiMask(this.cfg.hawBits);
      const addr = hi * TWO32 + (d2 & 0xfffffffc);
      if (this.mem.canRead === undefined || this.mem.canRead(addr, 4)) this.mem.write32(addr, d1);
    }
    if ((d0 & WAIT_IF) !== 0) this.faults.completionEvent();
    return 0;
  }
}

function emptyStats(): InvalidationStats {
  return {
    contextGlobal: 0,
    contextDomain: 0,
    contextDevice: 0,
    iotlbGlobal: 0,
    iotlbDomain: 0,
    iotlbPage: 0,
    deviceIotlb: 0,
    iec: 0,
    waits: 0,
    descriptors: 0,
    queueErrors: 0,
  };
}

/** Bits HAW-1:32 of an address, as a mask of the high dword. */
export function hawHiMask(haw: number): number {
  return haw <= 32 ? 0 : haw >= 64 ? 0xffffffff : (0xffffffff >>> (64 - haw)) >>> 0;
}
