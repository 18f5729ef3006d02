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
import { TWO32 } from "../../core/u64.js";
import { hawHiMask } from "../../spec/vtd/context.js";
import { fieldOf, withField } from "../../spec/vtd/fields.js";
import {
  decodeContextCacheDesc,
  decodeDeviceTlbDesc,
  decodeIecDesc,
  decodeIotlbDesc,
  decodePasidCacheDesc,
  decodePasidDeviceTlbDesc,
  decodePasidIotlbDesc,
  decodeWaitDesc,
  descriptorBytes,
  descriptorType,
  INV_DESC_CC,
  INV_DESC_DEVICE_IOTLB,
  INV_DESC_IEC,
  INV_DESC_IOTLB,
  INV_DESC_P_DEVICE_IOTLB,
  INV_DESC_PC,
  INV_DESC_PIOTLB,
  INV_DESC_WAIT,
  PC_G_DOMAIN,
  PC_G_GLOBAL,
  PC_G_PASID,
  PIOTLB_G_PAGE,
  PIOTLB_G_PASID,
  queueEntries,
  queueIndex,
  queueOffset,
  tailMisaligned,
} from "../../spec/vtd/invalidation.js";
import {
  CCMD,
  DMAR_CCMD_REG,
  DMAR_FSTS_REG,
  DMAR_IQA_REG,
  DMAR_IQH_REG,
  DMAR_IQT_REG,
  FSTS_IQE,
  INV_DEVICE,
  INV_DOMAIN,
  INV_GLOBAL,
  INV_PAGE,
  IOTLB,
  IOTLB_REG_FROM_IVA,
  IQA,
  IQEI_FETCH_ERROR,
  IQEI_INVALID_TAIL,
  IQEI_INVALID_TYPE,
  IQEI_RESERVED_FIELD,
  IQEI_TAIL_MISALIGNED,
  IVA,
  REG_HI,
} from "../../spec/vtd/registers.js";
import { PAGE_SHIFT_4K } from "../../spec/vtd/paging.js";

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
  /** PASID-cache invalidation (6.5.2.2): G 0 every PASID of did, 1 (did, pasid), 3 everything. */
  pasidCache(g: number, did: number, pasid: number): void;
  /** PASID-based IOTLB invalidation (6.5.2.4): every page of (did, pasid), or 2^am pages from addr. */
  pasidIotlb(did: number, pasid: number, page: { addrLo: number; addrHi: number; am: number } | null): void;
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
  pasidCache: number;
  pasidIotlb: number;
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
    const lo = this.regs.get32(DMAR_CCMD_REG);
    const hi = this.regs.get32(DMAR_CCMD_REG + REG_HI);
    if (fieldOf(lo, hi, CCMD.ICC) === 0) return;
    // With queued invalidation enabled, register-based commands are not allowed (6.5.2); like QEMU, ignore.
    if (this.qiEnabled) return;
    const cirg = fieldOf(lo, hi, CCMD.CIRG);
    let caig = 0;
    if (cirg === INV_GLOBAL) {
      this.target.contextGlobal();
      this.stats.contextGlobal++;
      caig = INV_GLOBAL;
    } else if (cirg === INV_DOMAIN) {
      this.target.contextDomain(fieldOf(lo, hi, CCMD.DID));
      this.stats.contextDomain++;
      caig = INV_DOMAIN;
    } else if (cirg === INV_DEVICE) {
      this.target.contextDevice(fieldOf(lo, hi, CCMD.SID), fieldOf(lo, hi, CCMD.FM));
      this.stats.contextDevice++;
      caig = INV_DEVICE;
    }
    // CIRG 00 is reserved: nothing is invalidated and CAIG reads 00.
    const done = withField(withField(joinHi(hi), CCMD.ICC, 0), CCMD.CAIG, caig);
    this.regs.set32(DMAR_CCMD_REG + REG_HI, Number(done >> 32n));
  }

  /** IOTLB_REG high half written: with IVT set, invalidate per IIRG (and IVA_REG) and report IAIG. */
  onIotlbWrite(): void {
    const regOff = this.cfg.iotlbRegOffset + IOTLB_REG_FROM_IVA;
    const hi = this.regs.get32(regOff + REG_HI);
    if (fieldOf(0, hi, IOTLB.IVT) === 0) return;
    if (this.qiEnabled) return;
    const iirg = fieldOf(0, hi, IOTLB.IIRG);
    const did = fieldOf(0, hi, IOTLB.DID);
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
      const ivaHi = this.regs.get32(this.cfg.iotlbRegOffset + REG_HI);
      const am = fieldOf(ivaLo, ivaHi, IVA.AM);
      if (am <= this.cfg.maxAddressMask) {
        this.target.iotlbPages(did, fieldOf(ivaLo, 0, IVA.ADDR) * 2 ** PAGE_SHIFT_4K, ivaHi, am, fieldOf(ivaLo, ivaHi, IVA.IH) === 1);
        this.stats.iotlbPage++;
        iaig = INV_PAGE;
      }
      // AM above CAP.MAMV: not performed, IAIG reads 00.
    }
    const done = withField(withField(joinHi(hi), IOTLB.IVT, 0), IOTLB.IAIG, iaig);
    this.regs.set32(regOff + REG_HI, Number(done >> 32n));
  }

  // ---- Queued invalidation (6.5.2) ----

  /** GCMD.QIE changed. Enabling latches IQA; disabling resets IQH to 0 (10.4.22). */
  setQueueEnabled(enable: boolean): void {
    if (enable === this.qiEnabled) return;
    if (enable) {
      const lo = this.regs.get32(DMAR_IQA_REG);
      const hi = this.regs.get32(DMAR_IQA_REG + REG_HI);
      this.wide = this.cfg.wideDescriptors && fieldOf(lo, hi, IQA.DW) === 1;
      this.baseLo = fieldOf(lo, 0, IQA.IQA) * 2 ** PAGE_SHIFT_4K;
      this.baseHi = (hi & hawHiMask(this.cfg.hawBits)) >>> 0;
      this.size = queueEntries(fieldOf(lo, hi, IQA.QS), this.wide);
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
    if (tailMisaligned(tailReg, this.wide)) {
      this.error(IQEI_TAIL_MISALIGNED);
      return;
    }
    const tail = queueIndex(tailReg, this.wide);
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
    this.regs.set64(DMAR_IQH_REG, queueOffset(this.head, this.wide), 0);
  }

  private error(iqei: number): void {
    this.stats.queueErrors++;
    this.faults.queueError(iqei);
  }

  /** Fetches and executes the descriptor at IQH; returns 0 or the IQEI code of the error. */
  private processOne(): number {
    const bytes = descriptorBytes(this.wide);
    const addr = (this.baseHi >>> 0) * TWO32 + this.baseLo + this.head * bytes;
    if (this.mem.canRead !== undefined && !this.mem.canRead(addr, bytes)) return IQEI_FETCH_ERROR;
    const d = this.desc;
    d.fill(0);
    for (let i = 0; i < bytes / 4; i++) d[i] = this.mem.read32(addr + 4 * i) >>> 0;
    this.stats.descriptors++;
    // Legacy descriptors leave the upper 128 bits of a 256-bit descriptor reserved.
    if (this.wide && d.subarray(LEGACY_WORDS).some((w) => w !== 0)) return IQEI_RESERVED_FIELD;
    const legacy = d.subarray(0, LEGACY_WORDS);
    switch (descriptorType(d[0] ?? 0)) {
      case INV_DESC_CC:
        return this.contextCacheDesc(legacy);
      case INV_DESC_IOTLB:
        return this.iotlbDesc(legacy);
      case INV_DESC_DEVICE_IOTLB:
        return this.deviceIotlbDesc(legacy);
      case INV_DESC_IEC:
        return this.iecDesc(legacy);
      case INV_DESC_WAIT:
        return this.waitDesc(legacy);
      case INV_DESC_PC:
      case INV_DESC_PIOTLB:
      case INV_DESC_P_DEVICE_IOTLB:
        return this.pasidDesc(legacy);
      default:
        return IQEI_INVALID_TYPE;
    }
  }

  /** 6.5.2.1: G global, domain (DID) or device (SID, FM). */
  private contextCacheDesc(w: Uint32Array): number {
    const d = decodeContextCacheDesc(w);
    if (d.reserved) return IQEI_RESERVED_FIELD;
    if (d.g === INV_GLOBAL) {
      this.target.contextGlobal();
      this.stats.contextGlobal++;
    } else if (d.g === INV_DOMAIN) {
      this.target.contextDomain(d.did);
      this.stats.contextDomain++;
    } else if (d.g === INV_DEVICE) {
      this.target.contextDevice(d.sid, d.fm);
      this.stats.contextDevice++;
    } else {
      return IQEI_RESERVED_FIELD;
    }
    return 0;
  }

  /** 6.5.2.3: G global, domain (DID) or page-selective (ADDR, AM, IH); DW and DR need no action here. */
  private iotlbDesc(w: Uint32Array): number {
    const d = decodeIotlbDesc(w);
    if (d.reserved) return IQEI_RESERVED_FIELD;
    if (d.g === INV_GLOBAL) {
      this.target.iotlbGlobal();
      this.stats.iotlbGlobal++;
    } else if (d.g === INV_DOMAIN || (d.g === INV_PAGE && !this.cfg.pageSelectiveInvalidation)) {
      this.target.iotlbDomain(d.did);
      this.stats.iotlbDomain++;
    } else if (d.g === INV_PAGE) {
      if (d.am > this.cfg.maxAddressMask) return IQEI_RESERVED_FIELD;
      this.target.iotlbPages(d.did, d.addrLo, d.addrHi, d.am, d.ih);
      this.stats.iotlbPage++;
    } else {
      return IQEI_RESERVED_FIELD;
    }
    return 0;
  }

  /**
   * The PASID-granular descriptors, defined in scalable mode only (ECAP.SMTS; an invalid type otherwise):
   * PASID cache (6.5.2.2), PASID-based IOTLB (6.5.2.4), PASID-based device-TLB (6.5.2.6, recorded for devices).
   */
  private pasidDesc(w: Uint32Array): number {
    if (!this.cfg.scalableMode) return IQEI_INVALID_TYPE;
    const type = descriptorType(w[0] ?? 0);
    if (type === INV_DESC_PC) {
      const d = decodePasidCacheDesc(w);
      if (d.reserved || (d.g !== PC_G_DOMAIN && d.g !== PC_G_PASID && d.g !== PC_G_GLOBAL)) return IQEI_RESERVED_FIELD;
      this.target.pasidCache(d.g, d.did, d.pasid);
      this.stats.pasidCache++;
    } else if (type === INV_DESC_PIOTLB) {
      const d = decodePasidIotlbDesc(w);
      if (d.reserved || (d.g !== PIOTLB_G_PASID && d.g !== PIOTLB_G_PAGE) || d.am > this.cfg.maxAddressMask) return IQEI_RESERVED_FIELD;
      this.target.pasidIotlb(d.did, d.pasid, d.g === PIOTLB_G_PAGE ? { addrLo: d.addrLo, addrHi: d.addrHi, am: d.am } : null);
      this.stats.pasidIotlb++;
    } else {
      if (!this.cfg.deviceTlb) return IQEI_INVALID_TYPE;
      const d = decodePasidDeviceTlbDesc(w);
      if (d.reserved) return IQEI_RESERVED_FIELD;
      this.target.deviceIotlb(d.sid, d.addrLo, d.addrHi, d.size);
      this.stats.deviceIotlb++;
    }
    return 0;
  }

  /** 6.5.2.5: SID, ADDR and S; nothing in the unit caches it (recorded for device models). */
  private deviceIotlbDesc(w: Uint32Array): number {
    if (!this.cfg.deviceTlb) return IQEI_INVALID_TYPE;
    const d = decodeDeviceTlbDesc(w);
    if (d.reserved) return IQEI_RESERVED_FIELD;
    this.target.deviceIotlb(d.sid, d.addrLo, d.addrHi, d.size);
    this.stats.deviceIotlb++;
    return 0;
  }

  /** 6.5.2.7: G 0 global, 1 index-selective (IIDX with index mask IM). */
  private iecDesc(w: Uint32Array): number {
    if (!this.cfg.interruptRemapping) return IQEI_INVALID_TYPE;
    const d = decodeIecDesc(w);
    if (d.reserved) return IQEI_RESERVED_FIELD;
    if (d.global) this.target.iecGlobal();
    else this.target.iecIndex(d.index, d.im);
    this.stats.iec++;
    return 0;
  }

  /**
   * 6.5.2.8: IF, SW, FN, PD (page drain: needs page requests, reserved here), status data and status address.
   * The fence has nothing to order: invalidations complete synchronously.
   */
  private waitDesc(w: Uint32Array): number {
    const d = decodeWaitDesc(w);
    if (d.reserved || d.drain) return IQEI_RESERVED_FIELD;
    this.stats.waits++;
    if (d.sw) {
      // Status write: the 32-bit status data to the dword-aligned address (within HAW).
      const addr = (d.addrHi & hawHiMask(this.cfg.hawBits)) * TWO32 + d.addrLo;
      if (this.mem.canRead === undefined || this.mem.canRead(addr, 4)) this.mem.write32(addr, d.data);
    }
    if (d.iflag) this.faults.completionEvent();
    return 0;
  }
}

/** A legacy descriptor's 128 bits, in dwords. */
const LEGACY_WORDS = descriptorBytes(false) / 4;

/** A register's upper dword as a bigint in place (the lower dword left 0). */
function joinHi(hi: number): bigint {
  return BigInt(hi >>> 0) << 32n;
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
    pasidCache: 0,
    pasidIotlb: 0,
    descriptors: 0,
    queueErrors: 0,
  };
}

export { hawHiMask };
