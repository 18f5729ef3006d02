/**
 * VT-d interrupt remapping (VT-d spec chapter 5.1, IRTE format 9.10): turns interrupt requests (DMA writes to
 * 0xFEEx_xxxx) into delivered interrupts through the interrupt remapping table, with an interrupt entry cache.
 *
 * Behaviour, in the order the hardware applies it (VT-d spec 5.1.4):
 *   1. GSTS.IRES clear: every request passes through unchanged (`remapped: false`).
 *   2. Address high half non-zero or address bits 31:20 not 0xFEE: blocked, fault 0x20.
 *   3. Compatibility format (address bit 4 = 0): blocked with fault 0x25 when GSTS.CFIS is clear or
 *      IRTA.EIME is set; otherwise passed through unchanged. QEMU up to 7.2 passes compatibility-format
 *      interrupts through regardless; this model follows the spec (5.1.4), as later QEMU does.
 *   4. Remappable format: interrupt_index = handle, or handle + sub-handle when SHV = 1 (data bits 31:16 must
 *      then be zero, else 0x20). The sum is not truncated: an index of 0x10000 or more is beyond any table.
 *   5. index >= 2^(S+1): 0x21. Entry beyond the host address width, or the reader failing: 0x23.
 *   6. P clear: 0x22. Reserved bits, posted format (unsupported here), xAPIC-mode destination bits outside
 *      47:40, or SVT = 11b: 0x24. Source-id verification (SVT/SQ/SID) fails: 0x26.
 *
 * Fault recording: every blocked request calls `onFault` once, except when the IRTE that was read has FPD set.
 * The spec evaluates FPD irrespective of P (VT-d spec 9.10, FPD), so FPD also silences 0x22 for a non-present
 * entry whose FPD bit is set; such results carry `fpd: true`. Faults detected before an IRTE is read
 * (0x20, 0x21, 0x23, 0x25) are always recorded. `onFault` receives the low 16 bits of the index, the width of
 * FRCD.FI's interrupt_index (VT-d spec 9.9); 0x25, and 0x20 for an address outside 0xFEEx_xxxx, report
 * index 0 because no index can be computed.
 *
 * Output: the delivered interrupt and the compatibility-format MSI QEMU's vtd_ir_remap_msi trace prints for it:
 *   address = 0xFEE00000 | (dest & 0xff) << 12 | RH << 3 | DM << 2 | (request address bits 1:0)
 *   addressHi = dest & 0xffffff00 (QEMU's internal carrier for x2APIC destination bits 31:8)
 *   data = vector | DLM << 8 | 1 << 14 (assert) | TM << 15
 *
 * Posted interrupts (VT-d spec 5.2, 9.11, 9.12), only with `postedInterrupts` (CAP.PI): an IRTE with IM set is a
 * posted-format entry. After the same source-id verification, the request is posted: the entry's vector is set
 * in the descriptor's PIR; then, if ON is clear and either URG is set or SN is clear, ON is set and the
 * notification event (vector NV, physical destination NDST, fixed, edge) is the result (`posted.notified`).
 * Otherwise nothing is delivered. The descriptor is read and written on every request (it is never cached).
 * A descriptor that cannot be read or written blocks the request with 0x23: this model's choice, the spec
 * names no fault for it here.
 *
 * Interrupt entry cache: present, well-formed IRTEs are cached by index (LRU, `cacheSize` entries) together
 * with their decoded results, so a cache hit allocates nothing. Cached entries stay in use after the table in
 * memory changes, until invalidateIndex/invalidateAll (VT-d spec 6.5.2.7); setTable does not invalidate
 * (software must invalidate the cache globally after SIRTP).
 */
import { PHYS_ADDR_LIMIT, type PhysAddr, type PhysReader } from "../../core/memory.js";
import { RID_MASK } from "../../core/pci.js";
import { hiOf, loOf, SAFE_HI, TWO32 } from "../../core/u64.js";
import { fieldOf } from "../../spec/vtd/fields.js";
import { IRTA } from "../../spec/vtd/registers.js";
import {
  IR_FAULT_NAMES,
  IRTE_DM,
  IRTE_FPD,
  IRTE_IM,
  IRTE_P,
  IRTE_PDA_LO_MASK,
  IRTE_RH,
  IRTE_SIZE,
  IRTE_TM,
  IRTE_URG,
  type IrFaultReason,
  irteDestination,
  irteReservedViolation,
  MSI_ADDR_IF_REMAPPABLE,
  MSI_ADDR_SHV,
  MSI_DATA_RSVD_WHEN_SHV,
  MSI_DATA_SUBHANDLE_MASK,
  msiHandle,
  PID_CONTROL_OFFSET,
  PID_SIZE,
  PID_NDST_OFFSET,
  PID_ON,
  PID_SN,
  pidDestination,
  pidNotificationVector,
  pirBit,
  pirOffset,
  postedIrteReservedViolation,
  irteSource,
  irteSourceVerified,
  irtaEntries,
  IR_INDEX_BITS,
  IRTE,
  SVT_VERIFY_BUS,
  SVT_VERIFY_SID_SQ,
  VTD_FR_IR_ENTRY_P,
  VTD_FR_IR_INDEX_OVER,
  VTD_FR_IR_IRTE_RSVD,
  VTD_FR_IR_REQ_COMPAT,
  VTD_FR_IR_REQ_RSVD,
  VTD_FR_IR_ROOT_INVAL,
  VTD_FR_IR_SID_ERR,
} from "../../spec/vtd/intremap.js";
import { PAGE_SIZE_4K } from "../../spec/vtd/paging.js";

import { decodeCompatMsi, encodeCompatMsi, isInterruptAddress, MSI_ADDR_IGNORED, type MsiInterrupt } from "../../spec/msi.js";

export * from "../../spec/vtd/intremap.js";

/** The interrupt as the local APICs receive it. */
export type DeliveredInterrupt = MsiInterrupt;

/** A compatibility-format MSI message. */
export interface MsiMessage {
  /** Low 32 bits of the address. */
  readonly address: number;
  readonly addressHi: number;
  readonly data: number;
}

export interface RemapOk {
  readonly ok: true;
  readonly irq: DeliveredInterrupt;
  readonly msi: MsiMessage;
  /** False when the request passed through without remapping (IRE off, or allowed compatibility format). */
  readonly remapped: boolean;
  /** The IRTE index used, when remapped. */
  readonly index?: number;
  /**
   * Present when the entry was a posted-format one: `irq` and `msi` are then the notification event, which
   * is delivered only when `notified` is true.
   */
  readonly posted?: PostedOutcome;
}

export interface PostedOutcome {
  /** Posted-interrupt descriptor address. */
  readonly descriptor: bigint;
  /** The vector set in the PIR. */
  readonly vector: number;
  readonly urgent: boolean;
  /** The PIR bit was already set. */
  readonly alreadyPending: boolean;
  /** ON was clear and (URG set or SN clear): ON was set and the notification event sent. */
  readonly notified: boolean;
}

export interface RemapFault {
  readonly ok: false;
  /** VT-d fault reason 0x20..0x26. */
  readonly reason: IrFaultReason;
  /** Short stable name, e.g. "IR_ENTRY_P". */
  readonly reasonName: string;
  /** interrupt_index computed for the request (0 when there is none). */
  readonly index: number;
  /** Present and true when the IRTE's FPD bit suppressed fault recording. */
  readonly fpd?: boolean;
  /** What exactly was wrong, for people. */
  readonly detail: string;
}

export type RemapResult = RemapOk | RemapFault;

export interface IrFault {
  sid: number;
  reason: number;
  index: number;
}

export interface InterruptRemapperOptions {
  /** Interrupt entry cache capacity in IRTEs; 0 disables caching. Default 256. */
  cacheSize?: number;
  /**
   * Host address width in bits (ACPI DMAR "Host Address Width" + 1). IRTEs at or above 2^HAW cannot be read
   * (fault 0x23). Default 39, the width QEMU's intel-iommu uses unless told otherwise.
   */
  hostAddressWidth?: number;
  /** CAP.PI: IRTEs with IM set are posted-format entries (default false: IM is reserved, fault 0x24). */
  postedInterrupts?: boolean;
  /** Writes posted-interrupt descriptors; without it posted-format entries cannot be used (fault 0x23). */
  writer?: { write32(addr: PhysAddr, v: number): void };
}

export interface InterruptRemapperStats {
  /** Interrupt entry cache hits / misses (a miss reads the IRTE from memory). */
  hits: number;
  misses: number;
  /** Entries dropped to make room. */
  evictions: number;
  /** Entries removed by invalidateIndex / invalidateAll. */
  invalidated: number;
  remapped: number;
  passedThrough: number;
  blocked: number;
  faultsRecorded: number;
  /** Blocked requests whose fault FPD kept from being recorded. */
  faultsSuppressed: number;
  /** Requests posted into a descriptor, and the notification events they sent. */
  posted: number;
  notifications: number;
}

const DEFAULT_CACHE_SIZE = 256;
/** Interrupt indexes are 16 bits (5.1.2.2: handle[15:0]); the IEC descriptor's IM masks up to all of them. */
const INDEX_BITS = IR_INDEX_BITS;
const INDEX_MASK = 2 ** INDEX_BITS - 1;
/** Index-selective invalidations of up to 2^4 entries probe each index instead of scanning the cache. */
const PROBE_MASK_MAX = 4;
/** hi halves of physical addresses stay below 2^(57-32): memory addresses are below 2^57. */
const PHYS_HI_MAX = Number(PHYS_ADDR_LIMIT >> 32n) - 1;
/** What a failed source-id verification means, by SVT. */
const SID_MISMATCH: Readonly<Record<number, string>> = {
  [SVT_VERIFY_SID_SQ]: "requester id does not match SID under SQ",
  [SVT_VERIFY_BUS]: "requester bus outside [start bus, end bus]",
};
const DEFAULT_HAW = 39;
/** Architectural limit of x86 physical addresses (MAXPHYADDR <= 52): the walkInterrupt default. */
const FORENSIC_HAW = 52;

/** A cached IRTE: its words (for forensics), the decoded interrupt and, lazily, one result per address bits 1:0. */
interface IecEntry {
  readonly w0: number;
  readonly w1: number;
  readonly w2: number;
  readonly w3: number;
  readonly fpd: boolean;
  readonly irq: DeliveredInterrupt;
  readonly results: (RemapOk | undefined)[];
  /** Use stamp for LRU eviction: a hit writes a number instead of reordering the map. */
  lastUse: number;
  /** Posted-format entry: descriptor address halves and URG (irq.vector is the posted vector). */
  readonly posted: { readonly pdaLo: number; readonly pdaHi: number; readonly urgent: boolean } | null;
}

export class InterruptRemapper {
  readonly stats: InterruptRemapperStats = {
    hits: 0,
    misses: 0,
    evictions: 0,
    invalidated: 0,
    remapped: 0,
    passedThrough: 0,
    blocked: 0,
    faultsRecorded: 0,
    faultsSuppressed: 0,
    posted: 0,
    notifications: 0,
  };

  private readonly reader: PhysReader & { canRead?(addr: number, length: number): boolean };
  private readonly onFault: (f: IrFault) => void;
  private readonly cacheSize: number;
  private readonly haw: number;
  private readonly pi: boolean;
  private readonly writer: { write32(addr: PhysAddr, v: number): void } | null;
  /** Entries must lie below 2^haw: the high half must stay below hiLimit (and lo below loLimit when hi is 0). */
  private readonly hiLimit: number;
  private readonly loLimit: number;
  // Interrupt entry cache, least recently used entry evicted first.
  private readonly cache = new Map<number, IecEntry>();
  private useClock = 0;

  private baseLo = 0;
  private baseHi = 0;
  private eime = false;
  private entries = 2;
  private enabled = false;
  private cfis = false;

  // One-entry memo of the last pass-through result: with remapping off every interrupt takes this path.
  private lastPtLo = -1;
  private lastPtHi = -1;
  private lastPtData = -1;
  private lastPt: RemapOk | undefined;

  constructor(reader: PhysReader & { canRead?(addr: number, length: number): boolean }, onFault: (f: { sid: number; reason: number; index: number }) => void, options: InterruptRemapperOptions = {}) {
    this.reader = reader;
    this.onFault = onFault;
    const size = options.cacheSize ?? DEFAULT_CACHE_SIZE;
    this.cacheSize = Number.isInteger(size) && size > 0 ? size : 0;
    const haw = options.hostAddressWidth ?? DEFAULT_HAW;
    this.haw = Number.isInteger(haw) ? Math.min(64, Math.max(12, haw)) : DEFAULT_HAW;
    this.hiLimit = this.haw > 32 ? 2 ** (this.haw - 32) : 1;
    this.loLimit = this.haw >= 32 ? TWO32 : 2 ** this.haw;
    this.pi = options.postedInterrupts === true;
    this.writer = options.writer ?? null;
  }

  /** IRTA_REG as latched by GCMD.SIRTP: base bits 63:12, EIME bit 11, S bits 3:0 (2^(S+1) entries). */
  setTable(irtaLo: number, irtaHi: number): void {
    this.baseLo = fieldOf(irtaLo, 0, IRTA.IRTA) * PAGE_SIZE_4K;
    this.baseHi = irtaHi >>> 0;
    this.eime = fieldOf(irtaLo, irtaHi, IRTA.EIME) === 1;
    this.entries = irtaEntries(fieldOf(irtaLo, irtaHi, IRTA.S));
  }

  /** GSTS.IRES. */
  setEnabled(ire: boolean): void {
    this.enabled = ire;
  }

  /** GSTS.CFIS. */
  setCompatibilityAllowed(cfis: boolean): void {
    this.cfis = cfis;
  }

  /** Global interrupt entry cache invalidation (VT-d spec 6.5.2.7, G = 0). */
  invalidateAll(): void {
    this.stats.invalidated += this.cache.size;
    this.cache.clear();
  }

  /**
   * Index-selective invalidation (VT-d spec 6.5.2.7, G = 1): the 2^indexMask entries whose index equals
   * `index` in all but the low `indexMask` bits.
   */
  invalidateIndex(index: number, indexMask: number): void {
    const m = indexMask >>> 0;
    if (m >= INDEX_BITS) {
      this.invalidateAll();
      return;
    }
    const keep = ~((1 << m) - 1) & INDEX_MASK;
    const want = index & keep;
    if (m <= PROBE_MASK_MAX) {
      // Small ranges: probe each index instead of scanning the cache.
      const n = 1 << m;
      for (let i = 0; i < n; i++) {
        if (this.cache.delete(want + i)) this.stats.invalidated++;
      }
      return;
    }
    for (const k of this.cache.keys()) {
      if ((k & keep) === want) {
        this.cache.delete(k);
        this.stats.invalidated++;
      }
    }
  }

  /** Number of IRTEs currently cached. */
  get cachedEntries(): number {
    return this.cache.size;
  }

  /**
   * Processes one interrupt request: a DMA write of `data` to (addrHi:addrLo) from requester `sid`.
   * Never throws; a blocked request yields `{ ok: false, reason }`.
   */
  remap(sid: number, addrLo: number, addrHi: number, data: number): RemapResult {
    const lo = addrLo >>> 0;
    const hi = addrHi >>> 0;
    const d = data >>> 0;
    const source = sid & RID_MASK;

    if (!this.enabled) return this.passThrough(lo, hi, d);

    const remappable = (lo & MSI_ADDR_IF_REMAPPABLE) !== 0;
    const shv = (lo & MSI_ADDR_SHV) !== 0;
    const index = remappable ? msiHandle(lo) + (shv ? d & MSI_DATA_SUBHANDLE_MASK : 0) : 0;

    // VT-d spec 5.1.4: reserved fields of the request first.
    if (hi !== 0) return this.fault(source, VTD_FR_IR_REQ_RSVD, remappable ? index : 0, false, "address bits 63:32 are not zero");
    if (!isInterruptAddress(lo)) return this.fault(source, VTD_FR_IR_REQ_RSVD, 0, false, "address is outside 0xFEEx_xxxx");

    if (!remappable) {
      // VT-d spec 5.1.4: compatibility format is blocked when EIME is set or CFIS is clear.
      if (this.eime || !this.cfis) {
        return this.fault(source, VTD_FR_IR_REQ_COMPAT, 0, false, this.eime ? "compatibility format with EIME set" : "compatibility format with CFIS clear");
      }
      return this.passThrough(lo, hi, d);
    }

    if (shv && (d & MSI_DATA_RSVD_WHEN_SHV) !== 0) return this.fault(source, VTD_FR_IR_REQ_RSVD, index, false, "data bits 31:16 are not zero with SHV set");
    if (index >= this.entries) return this.fault(source, VTD_FR_IR_INDEX_OVER, index, false, `index ${index} >= table size ${this.entries}`);

    let entry = this.cacheSize > 0 ? this.cache.get(index) : undefined;
    if (entry !== undefined) {
      this.stats.hits++;
      entry.lastUse = ++this.useClock;
    } else {
      this.stats.misses++;
      const fetched = this.fetch(source, index);
      if (!isEntry(fetched)) return fetched;
      entry = fetched;
      if (this.cacheSize > 0) {
        if (this.cache.size >= this.cacheSize) this.evictLeastRecentlyUsed();
        entry.lastUse = ++this.useClock;
        this.cache.set(index, entry);
      }
    }

    // Source-id verification happens per request (VT-d spec 9.10, SVT/SQ/SID).
    if (!irteSourceVerified(entry.w2, source)) {
      return this.fault(source, VTD_FR_IR_SID_ERR, index, entry.fpd, SID_MISMATCH[irteSource(entry.w2).svt] ?? "source-id verification failed");
    }

    if (entry.posted !== null) return this.post(source, index, entry.irq.vector, entry.posted);

    this.stats.remapped++;
    const variant = lo & MSI_ADDR_IGNORED;
    let r = entry.results[variant];
    if (r === undefined) {
      r = Object.freeze({ ok: true, irq: entry.irq, msi: compatMsi(entry.irq, variant), remapped: true, index });
      entry.results[variant] = r;
    }
    return r;
  }

  private evictLeastRecentlyUsed(): void {
    let victim = -1;
    let oldest = Infinity;
    for (const [k, e] of this.cache) {
      if (e.lastUse < oldest) {
        oldest = e.lastUse;
        victim = k;
      }
    }
    if (victim >= 0 && this.cache.delete(victim)) this.stats.evictions++;
  }

  /** Reads and checks IRTE `index`: the cacheable entry, or the fault. */
  private fetch(source: number, index: number): IecEntry | RemapFault {
    // Entry address = base + index * 16, as 32-bit halves; index * 16 < 2^21 so one carry at most.
    const sum = this.baseLo + index * IRTE_SIZE;
    const lo = sum >>> 0;
    const hi = this.baseHi + (sum >= TWO32 ? 1 : 0);
    if (hi >= this.hiLimit || (hi === 0 && lo >= this.loLimit)) {
      return this.fault(source, VTD_FR_IR_ROOT_INVAL, index, false, `IRTE address beyond the ${this.haw}-bit host address width`);
    }
    // Outside memory the read is an access error (fault 0x23); anything else thrown here is a bug and propagates.
    if (!this.readable(hi, lo, IRTE_SIZE)) return this.fault(source, VTD_FR_IR_ROOT_INVAL, index, false, "IRTE read failed");
    const a: PhysAddr = hi < SAFE_HI ? hi * TWO32 + lo : (BigInt(hi) << 32n) | BigInt(lo);
    const dword = (i: number): number =>
      this.reader.read32(typeof a === "number" ? a + 4 * i : a + BigInt(4 * i)) >>> 0;
    const w0 = dword(0);
    const w1 = dword(1);
    const w2 = dword(2);
    const w3 = dword(3);
    const fpd = (w0 & IRTE_FPD) !== 0;
    if ((w0 & IRTE_P) === 0) return this.fault(source, VTD_FR_IR_ENTRY_P, index, fpd, "IRTE present bit clear");
    if (this.pi && (w0 & IRTE_IM) !== 0) {
      const pbad = postedIrteReservedViolation(w0, w1, w2, w3, this.haw);
      if (pbad !== null) return this.fault(source, VTD_FR_IR_IRTE_RSVD, index, fpd, pbad);
      // irq holds only the posted vector; what is delivered is the descriptor's notification event.
      const irq: DeliveredInterrupt = Object.freeze({
        vector: fieldOf(w0, w1, IRTE.V),
        destination: 0,
        destinationMode: "physical",
        deliveryMode: 0,
        triggerMode: "edge",
        redirectionHint: false,
      });
      const posted = Object.freeze({ pdaLo: (w1 & IRTE_PDA_LO_MASK) >>> 0, pdaHi: w3, urgent: (w0 & IRTE_URG) !== 0 });
      return { w0, w1, w2, w3, fpd, irq, results: [], lastUse: 0, posted };
    }
    const bad = irteReservedViolation(w0, w1, w2, w3, this.eime);
    if (bad !== null) return this.fault(source, VTD_FR_IR_IRTE_RSVD, index, fpd, bad);
    const irq: DeliveredInterrupt = Object.freeze({
      vector: fieldOf(w0, w1, IRTE.V),
      destination: irteDestination(w1, this.eime),
      destinationMode: (w0 & IRTE_DM) !== 0 ? "logical" : "physical",
      deliveryMode: fieldOf(w0, w1, IRTE.DLM),
      triggerMode: (w0 & IRTE_TM) !== 0 ? "level" : "edge",
      redirectionHint: (w0 & IRTE_RH) !== 0,
    });
    return { w0, w1, w2, w3, fpd, irq, results: [undefined, undefined, undefined, undefined], lastUse: 0, posted: null };
  }

  /**
   * Whether `length` bytes at hi:lo are memory the unit can read: below the 2^57 physical addresses memory has, and
   * where the reader says so (a platform with limited RAM, a dump with holes; such readers give sizes below 2^53).
   */
  private readable(hi: number, lo: number, length: number): boolean {
    // hi:lo + length <= 2^57, i.e. hi below 2^25 with no carry out of the last 4 GiB.
    if (hi > PHYS_HI_MAX || (hi === PHYS_HI_MAX && lo + length > TWO32)) return false;
    const can = this.reader.canRead;
    if (can === undefined) return true;
    return hi < SAFE_HI && can.call(this.reader, hi * TWO32 + lo, length);
  }

  /**
   * Posts `vector` into the descriptor (VT-d spec 5.2.3): PIR bit set; then, when ON is clear and (URG or SN
   * clear), ON set and the notification event returned. One read-modify-write of the descriptor, as the
   * hardware's atomic update.
   */
  private post(source: number, index: number, vector: number, p: { pdaLo: number; pdaHi: number; urgent: boolean }): RemapResult {
    const w = this.writer;
    if (w === null) return this.fault(source, VTD_FR_IR_ROOT_INVAL, index, false, "posted-interrupt descriptor cannot be written");
    const at = (off: number): PhysAddr => (p.pdaHi < SAFE_HI ? p.pdaHi * TWO32 + p.pdaLo + off : ((BigInt(p.pdaHi) << 32n) | BigInt(p.pdaLo)) + BigInt(off));
    // A descriptor outside memory is an access error (fault 0x23); anything else thrown here is a bug and propagates.
    if (!this.readable(p.pdaHi, p.pdaLo, PID_SIZE)) {
      return this.fault(source, VTD_FR_IR_ROOT_INVAL, index, false, "posted-interrupt descriptor access failed");
    }
    let notified = false;
    const pirAt = at(pirOffset(vector));
    const bit = pirBit(vector);
    const pir = this.reader.read32(pirAt) >>> 0;
    const alreadyPending = (pir & bit) !== 0;
    if (!alreadyPending) w.write32(pirAt, (pir | bit) >>> 0);
    const ctl = this.reader.read32(at(PID_CONTROL_OFFSET)) >>> 0;
    const ndst = this.reader.read32(at(PID_NDST_OFFSET)) >>> 0;
    if ((ctl & PID_ON) === 0 && (p.urgent || (ctl & PID_SN) === 0)) {
      w.write32(at(PID_CONTROL_OFFSET), (ctl | PID_ON) >>> 0);
      notified = true;
    }
    this.stats.posted++;
    if (notified) this.stats.notifications++;
    const irq: DeliveredInterrupt = Object.freeze({
      vector: pidNotificationVector(ctl),
      destination: pidDestination(ndst, this.eime),
      destinationMode: "physical",
      deliveryMode: 0,
      triggerMode: "edge",
      redirectionHint: false,
    });
    const descriptor = (BigInt(p.pdaHi) << 32n) | BigInt(p.pdaLo);
    return Object.freeze({
      ok: true,
      irq,
      msi: compatMsi(irq, 0),
      remapped: true,
      index,
      posted: Object.freeze({ descriptor, vector, urgent: p.urgent, alreadyPending, notified }),
    });
  }

  private passThrough(lo: number, hi: number, d: number): RemapOk {
    this.stats.passedThrough++;
    if (this.lastPt !== undefined && lo === this.lastPtLo && hi === this.lastPtHi && d === this.lastPtData) return this.lastPt;
    const irq: DeliveredInterrupt = Object.freeze(decodeCompatMsi(lo, d, hi));
    const r: RemapOk = Object.freeze({ ok: true, irq, msi: Object.freeze({ address: lo, addressHi: hi, data: d }), remapped: false });
    this.lastPtLo = lo;
    this.lastPtHi = hi;
    this.lastPtData = d;
    this.lastPt = r;
    return r;
  }

  private fault(source: number, reason: IrFaultReason, index: number, fpd: boolean, detail: string): RemapFault {
    this.stats.blocked++;
    if (fpd) {
      this.stats.faultsSuppressed++;
      return { ok: false, reason, reasonName: IR_FAULT_NAMES[reason], index, fpd: true, detail };
    }
    this.stats.faultsRecorded++;
    this.onFault({ sid: source, reason, index: index & INDEX_MASK });
    return { ok: false, reason, reasonName: IR_FAULT_NAMES[reason], index, detail };
  }
}

function isEntry(x: IecEntry | RemapFault): x is IecEntry {
  return "irq" in x;
}

/** The compatibility-format MSI QEMU's x86_iommu_irq_to_msi_message builds for a remapped interrupt. */
function compatMsi(irq: DeliveredInterrupt, addrLow2: number): MsiMessage {
  return Object.freeze(encodeCompatMsi({ ...irq, levelAssert: true, addressLow2: addrLow2 }));
}

export interface WalkInterruptOptions {
  /** GSTS.CFIS: let compatibility-format requests pass (unless EIME is set). Default false. */
  cfis?: boolean;
  /** Host address width in bits; default 52 (the x86 physical address limit). */
  hostAddressWidth?: number;
}

/**
 * Stateless walk of one interrupt request through the table IRTA points at, with remapping enabled and no
 * cache: for forensics over a memory dump. `irta` and `msiAddr` are taken modulo 2^64. Never throws on any
 * table contents or request.
 */
export function walkInterrupt(reader: PhysReader, irta: bigint, sid: number, msiAddr: bigint, msiData: number, options: WalkInterruptOptions = {}): RemapResult {
  const r = new InterruptRemapper(reader, () => {}, { cacheSize: 0, hostAddressWidth: options.hostAddressWidth ?? FORENSIC_HAW });
  const irta64 = BigInt.asUintN(64, irta);
  const addr64 = BigInt.asUintN(64, msiAddr);
  r.setTable(loOf(irta64), hiOf(irta64));
  r.setEnabled(true);
  r.setCompatibilityAllowed(options.cfis ?? false);
  return r.remap(sid, loOf(addr64), hiOf(addr64), msiData);
}
