/**
 * VT-d forensics: answer "what does this device's address map to?" from a memory dump, with exactly the table
 * code the hardware model uses (hw/vtd/walk.ts). Three questions:
 *   walkIova      one address of one device: root entry, context entry, each second-level entry, the result
 *   listMappings  every mapping of the device's domain, merged into contiguous ranges
 *   walkMsi       one interrupt request through the interrupt remapping table (hw/vtd/intremap.ts)
 * Reports are plain JSON-able objects: addresses and 64-bit values are "0x…" strings.
 */
import { hex } from "../core/hex.js";
import { IommuError } from "../core/errors.js";
import { formatRequesterId } from "../core/pci.js";
import { walkCaps, type WalkCaps } from "../hw/vtd/config.js";
import { CAP, domainIdBits, ECAP, mgawBits, SAGAW_39, SAGAW_48, SAGAW_57, SLLPS_1G, SLLPS_2M } from "../spec/vtd/capability.js";
import { awWidth, CONTEXT_ENTRY, decodeContextEntry, decodeRootEntry, TABLE_PTR_LO_MASK, TT_PASS_THROUGH } from "../spec/vtd/context.js";
import { faultReasonDescription, faultReasonName, VTD_FR_ADDR_BEYOND_MGAW, VTD_FR_READ } from "../spec/vtd/faults.js";
import { fieldOfBig, joinHalves, maskOf } from "../spec/vtd/fields.js";
import { isLargePage, leafFrameLoMask, PAGE_SIZE_4K, SL_LEVEL_NAMES, SL_PRESENT, SL_PS, SL_R, SL_W } from "../spec/vtd/paging.js";
import { IRTA, RTADDR, TTM_ABORT_DMA, TTM_LEGACY, TTM_SCALABLE } from "../spec/vtd/registers.js";
import { IRTE_SIZE, walkInterrupt } from "../hw/vtd/intremap.js";
import { PROGRESS_EVERY } from "./progress.js";
import {
  ContextOut,
  forEachMapping,
  leafShift,
  lookupContext,
  walkSecondLevel,
  withinAddressWidth,
  WalkOut,
  type TableReader,
  type WalkStep,
} from "../hw/vtd/walk.js";

export type AddressWidth = 39 | 48 | 57;

export interface CapsOptions {
  /** Address width of the hardware (MGAW + 1 and HAW): 39, 48 or 57. Default 48. */
  awBits?: AddressWidth;
  /** CAP_REG as read from the hardware (e.g. /sys/class/iommu/dmar0/intel-iommu/cap): overrides awBits. */
  cap?: bigint;
  /** ECAP_REG as read from the hardware: pass-through, device-TLB and snoop-control support. */
  ecap?: bigint;
}

/**
 * The hardware the dump's tables were written for. Without CAP/ECAP: a unit like QEMU 7.2's intel-iommu with
 * `aw-bits=awBits` (SAGAW up to awBits, 2 MiB and 1 GiB pages, pass-through, no device-TLB, no snoop control).
 */
export function forensicCaps(opts: CapsOptions = {}): WalkCaps {
  const aw = opts.awBits ?? 48;
  let mgaw: number = aw;
  let sagaw = SAGAW_39 | (aw >= 48 ? SAGAW_48 : 0) | (aw >= 57 ? SAGAW_57 : 0);
  let largePages = SLLPS_2M | SLLPS_1G;
  let didBits = CONTEXT_ENTRY.DID.width;
  if (opts.cap !== undefined) {
    mgaw = mgawBits(fieldOfBig(opts.cap, CAP.MGAW));
    sagaw = fieldOfBig(opts.cap, CAP.SAGAW);
    largePages = fieldOfBig(opts.cap, CAP.SLLPS);
    didBits = domainIdBits(fieldOfBig(opts.cap, CAP.ND));
  }
  const ecap = opts.ecap;
  return walkCaps({
    mgawBits: mgaw,
    hawBits: Math.max(32, Math.min(mgaw, 52)),
    sagaw,
    largePages,
    passThrough: ecap === undefined ? true : fieldOfBig(ecap, ECAP.PT) === 1,
    deviceTlb: ecap === undefined ? false : fieldOfBig(ecap, ECAP.DT) === 1,
    snoopControl: ecap === undefined ? false : fieldOfBig(ecap, ECAP.SC) === 1,
    domainIdBits: Math.min(CONTEXT_ENTRY.DID.width, didBits),
  });
}

/** One entry of the walk, decoded. */
export interface LevelReport {
  /** "root entry", "context entry", or the paging entry name (SL-PML4E … SL-PTE). */
  table: string;
  /** Paging level (5 … 1); absent for root and context entries. */
  level?: number;
  /** Index in its table: bus (root), devfn (context), or the 9-bit address slice. */
  index: number;
  /** Physical address of the entry. */
  address: string;
  /** The entry (paging entries), or its low quad (root and context entries). */
  value: string;
  /** Upper quad of root and context entries. */
  valueHi?: string;
  present: boolean;
  /** Paging entries: the R and W bits of this entry. */
  read?: boolean;
  write?: boolean;
  /** Leaf entries: the page size in bytes. */
  pageSize?: number;
  /** Address this entry points to: the next table, or the page frame of a leaf. */
  next?: string;
  /** Context entries. */
  fpd?: boolean;
  translationType?: string;
  addressWidth?: number;
  domainId?: number;
}

export type WalkReport =
  | {
      result: "ok";
      bdf: string;
      iova: string;
      hpa: string;
      pageSize: number;
      read: boolean;
      write: boolean;
      translationType: string;
      domainId: number;
      levels: LevelReport[];
    }
  | {
      result: "fault";
      bdf: string;
      iova: string;
      reason: number;
      reasonName: string;
      description: string;
      levels: LevelReport[];
    };

const TT_NAMES = ["multi-level", "device-tlb", "pass-through", "reserved"] as const;

function hex64(lo: number, hi: number): string {
  return hex(joinHalves(lo, hi));
}

/** Decodes one step of a walk for people and JSON. */
function decodeStep(step: WalkStep, caps: WalkCaps): LevelReport {
  const w = step.words;
  const w0 = w[0] ?? 0;
  const w1 = w[1] ?? 0;
  const w2 = w[2] ?? 0;
  const w3 = w[3] ?? 0;
  const address = hex(step.address);
  if (step.kind === "root") {
    const e = decodeRootEntry(w);
    return { table: "root entry", index: step.index, address, value: hex64(w0, w1), valueHi: hex64(w2, w3), present: e.present, next: hex64(w0 & TABLE_PTR_LO_MASK, w1) };
  }
  if (step.kind === "context") {
    const e = decodeContextEntry(w);
    return {
      table: "context entry",
      index: step.index,
      address,
      value: hex64(w0, w1),
      valueHi: hex64(w2, w3),
      present: e.present,
      fpd: e.fpd,
      translationType: TT_NAMES[e.tt] ?? "reserved",
      addressWidth: awWidth(e.aw),
      domainId: e.did,
      next: hex64(w0 & TABLE_PTR_LO_MASK, w1),
    };
  }
  const lv = step.level;
  const present = (w0 & SL_PRESENT) !== 0;
  const ps = (w0 & SL_PS) !== 0 && isLargePage(lv, caps.largePages);
  const leaf = lv === 1 || ps;
  const frameMask = leaf ? leafFrameLoMask(lv) : TABLE_PTR_LO_MASK;
  const r: LevelReport = {
    table: SL_LEVEL_NAMES[lv] ?? `level-${lv}`,
    level: lv,
    index: step.index,
    address,
    value: hex64(w0, w1),
    present,
    read: (w0 & SL_R) !== 0,
    write: (w0 & SL_W) !== 0,
  };
  if (present) {
    r.next = hex64(w0 & frameMask, w1 & caps.addrHiMask);
    if (leaf) r.pageSize = 2 ** leafShift(lv);
  }
  return r;
}

function bdfOf(sid: number): string {
  return formatRequesterId(sid);
}

/** Splits a root table address register value: RTA (4 KiB aligned) and TTM; scalable mode is not walked yet. */
export function rootTableOf(rtaddr: bigint): bigint {
  const ttm = fieldOfBig(rtaddr, RTADDR.TTM);
  if (ttm !== TTM_LEGACY) {
    throw new IommuError("UNSUPPORTED_MODE", `RTADDR ${hex(rtaddr)} selects ${ttm === TTM_SCALABLE ? "scalable" : ttm === TTM_ABORT_DMA ? "abort-DMA" : "reserved"} translation mode (TTM ${ttm}); only legacy mode (TTM 0) can be walked`);
  }
  return rtaddr & maskOf(RTADDR.RTA);
}

/**
 * Checks that the root table lies inside the dump: a dump shorter than the root table's end is too short
 * (DUMP_TOO_SHORT), a root table starting beyond the dump is a wrong RTADDR (RTADDR_OUTSIDE_DUMP).
 */
export function checkRootInDump(reader: { size: number }, rta: bigint): void {
  const size = BigInt(reader.size);
  const hint = "the dump must hold guest-physical memory from address 0 (QEMU: pmemsave 0 <RAM size> FILE); check that RTADDR was read from this guest";
  if (rta >= size) {
    throw new IommuError("RTADDR_OUTSIDE_DUMP", `RTADDR ${hex(rta)}: the root table is outside the dump (${reader.size} bytes)`, { hint });
  }
  if (rta + BigInt(PAGE_SIZE_4K) > size) {
    throw new IommuError("DUMP_TOO_SHORT", `RTADDR ${hex(rta)}: the root table (4 KiB) is not wholly inside the dump (${reader.size} bytes)`, { hint });
  }
}

export interface WalkIovaOptions {
  /** Root table address register value (RTADDR_REG). */
  rtaddr: bigint;
  sid: number;
  iova: bigint;
  /** Check the permission of this access; default: report the mapping whatever its R/W bits. */
  access?: "read" | "write";
  caps: WalkCaps;
}

/** Walks one address of one device through the legacy tables. Never throws on table contents. */
export function walkIova(reader: TableReader, o: WalkIovaOptions): WalkReport {
  const rta = rootTableOf(o.rtaddr);
  const caps = o.caps;
  const iova = BigInt.asUintN(64, o.iova);
  const lo = Number(iova & 0xffffffffn);
  const hi = Number(iova >> 32n);
  const trace: WalkStep[] = [];
  const ctx = new ContextOut();
  const base = { bdf: bdfOf(o.sid), iova: hex(iova) };
  const fault = (reason: number, steps: WalkStep[]): WalkReport => ({
    result: "fault",
    ...base,
    reason,
    reasonName: faultReasonName(reason),
    description: faultReasonDescription(reason),
    levels: steps.map((s) => decodeStep(s, caps)),
  });
  const r = lookupContext(reader, caps, Number(rta & 0xffffffffn), Number(rta >> 32n), o.sid, ctx, trace);
  if (r !== 0) return fault(r, trace);
  const tt = TT_NAMES[ctx.tt] ?? "reserved";
  if (ctx.tt === TT_PASS_THROUGH) {
    return { result: "ok", ...base, hpa: hex(iova), pageSize: PAGE_SIZE_4K, read: true, write: true, translationType: tt, domainId: ctx.did, levels: trace.map((s) => decodeStep(s, caps)) };
  }
  if (!withinAddressWidth(caps, ctx, lo, hi)) return fault(VTD_FR_ADDR_BEYOND_MGAW, trace);
  const out = new WalkOut();
  const ctxSteps = trace.length;
  const walk = (write: boolean): number => {
    trace.length = ctxSteps;
    return walkSecondLevel(reader, caps, ctx.ptLo, ctx.ptHi & caps.addrHiMask, ctx.levels, ctx.levels, lo, hi, write, true, true, out, trace);
  };
  let reason = walk(o.access === "write");
  // Without an access to check, a present entry that is only writable is still a mapping.
  if (o.access === undefined && reason === VTD_FR_READ && !out.notPresent) reason = walk(true);
  if (reason !== 0) return fault(reason, trace);
  const shift = leafShift(out.level);
  const frame = joinHalves(out.frameLo, out.frameHi);
  const hpa = frame | (iova & ((1n << BigInt(shift)) - 1n));
  return {
    result: "ok",
    ...base,
    hpa: hex(hpa),
    pageSize: 2 ** shift,
    read: out.read,
    write: out.write,
    translationType: tt,
    domainId: ctx.did,
    levels: trace.map((s) => decodeStep(s, caps)),
  };
}

/** A run of mappings contiguous in both iova and hpa, with the same permissions and page size. */
export interface MappingRange {
  iova: string;
  hpa: string;
  /** Bytes. */
  size: string;
  pageSize: number;
  pages: number;
  read: boolean;
  write: boolean;
}

export type ListReport =
  | {
      result: "ok";
      bdf: string;
      domainId: number;
      translationType: string;
      /** Paging levels of the domain's tables (0 for pass-through). */
      pagingLevels: number;
      addressWidth: number;
      mappings: number;
      ranges: MappingRange[];
      /** True when the scan stopped early (tables that point back into themselves, or too many mappings). */
      truncated: boolean;
      entriesRead: number;
    }
  | { result: "fault"; bdf: string; reason: number; reasonName: string; description: string; levels: LevelReport[] };

export interface ListOptions {
  rtaddr: bigint;
  sid: number;
  caps: WalkCaps;
  maxLeaves?: number;
  /** Called with the number of mappings found so far, every PROGRESS_EVERY of them (a long list shows progress). */
  progress?: (mappings: number) => void;
}

/** Every mapping of the device's domain, merged into ranges. Never throws on table contents. */
export function listMappings(reader: TableReader, o: ListOptions): ListReport {
  const rta = rootTableOf(o.rtaddr);
  const caps = o.caps;
  const trace: WalkStep[] = [];
  const ctx = new ContextOut();
  const r = lookupContext(reader, caps, Number(rta & 0xffffffffn), Number(rta >> 32n), o.sid, ctx, trace);
  if (r !== 0) {
    return { result: "fault", bdf: bdfOf(o.sid), reason: r, reasonName: faultReasonName(r), description: faultReasonDescription(r), levels: trace.map((s) => decodeStep(s, caps)) };
  }
  const base = { bdf: bdfOf(o.sid), domainId: ctx.did, translationType: TT_NAMES[ctx.tt] ?? "reserved", addressWidth: Math.min(ctx.agaw, caps.mgawBits) };
  if (ctx.tt === TT_PASS_THROUGH) {
    return { result: "ok", ...base, pagingLevels: 0, mappings: 0, ranges: [], truncated: false, entriesRead: 0 };
  }
  const ranges: { iova: bigint; hpa: bigint; size: bigint; pageSize: number; pages: number; read: boolean; write: boolean }[] = [];
  let count = 0;
  const limit = 1n << BigInt(Math.min(ctx.agaw, caps.mgawBits));
  const scan = forEachMapping(
    reader,
    caps,
    ctx.ptLo,
    ctx.ptHi & caps.addrHiMask,
    ctx.levels,
    (m) => {
      if (m.iova >= limit) return; // beyond the address width: no request can reach it
      count++;
      if (count % PROGRESS_EVERY === 0) o.progress?.(count);
      const size = 1n << BigInt(m.shift);
      const last = ranges[ranges.length - 1];
      if (
        last !== undefined &&
        last.iova + last.size === m.iova &&
        last.hpa + last.size === m.hpa &&
        last.read === m.read &&
        last.write === m.write &&
        last.pageSize === 2 ** m.shift
      ) {
        last.size += size;
        last.pages++;
      } else {
        ranges.push({ iova: m.iova, hpa: m.hpa, size, pageSize: 2 ** m.shift, pages: 1, read: m.read, write: m.write });
      }
    },
    { maxLeaves: o.maxLeaves ?? 1_000_000 },
  );
  return {
    result: "ok",
    ...base,
    pagingLevels: ctx.levels,
    mappings: count,
    ranges: ranges.map((x) => ({ iova: hex(x.iova), hpa: hex(x.hpa), size: hex(x.size), pageSize: x.pageSize, pages: x.pages, read: x.read, write: x.write })),
    truncated: scan.truncated,
    entriesRead: scan.entriesRead,
  };
}

export type MsiReport =
  | {
      result: "ok";
      bdf: string;
      vector: number;
      destination: number;
      destinationMode: string;
      deliveryMode: number;
      triggerMode: string;
      redirectionHint: boolean;
      remapped: boolean;
      index?: number;
      msi: { address: string; addressHi: string; data: string };
    }
  | { result: "fault"; bdf: string; reason: number; reasonName: string; description: string; index: number; detail: string };

export interface MsiOptions {
  /** IRTA_REG value: table base, EIME, size. */
  irta: bigint;
  sid: number;
  msiAddr: bigint;
  msiData: number;
  /** GSTS.CFIS: let compatibility-format interrupts through. */
  cfis?: boolean;
  hostAddressWidth?: number;
}

/** Checks that the interrupt remapping table's first entry lies inside the dump. */
export function checkIrtaInDump(reader: { size: number }, irta: bigint): void {
  const base = irta & maskOf(IRTA.IRTA);
  if (base + BigInt(IRTE_SIZE) > BigInt(reader.size)) {
    throw new IommuError("IRTA_OUTSIDE_DUMP", `IRTA ${hex(irta)}: the interrupt remapping table at ${hex(base)} is outside the dump (${reader.size} bytes)`, {
      hint: "the dump must hold guest-physical memory from address 0; check that IRTA was read from this guest",
    });
  }
}

/** Walks one interrupt request through the interrupt remapping table. Never throws on table contents. */
export function walkMsi(reader: TableReader, o: MsiOptions): MsiReport {
  const r = walkInterrupt(reader, o.irta, o.sid, o.msiAddr, o.msiData, {
    ...(o.cfis !== undefined ? { cfis: o.cfis } : {}),
    ...(o.hostAddressWidth !== undefined ? { hostAddressWidth: o.hostAddressWidth } : {}),
  });
  const bdf = bdfOf(o.sid);
  if (!r.ok) return { result: "fault", bdf, reason: r.reason, reasonName: r.reasonName, description: faultReasonDescription(r.reason), index: r.index, detail: r.detail };
  return {
    result: "ok",
    bdf,
    vector: r.irq.vector,
    destination: r.irq.destination,
    destinationMode: r.irq.destinationMode,
    deliveryMode: r.irq.deliveryMode,
    triggerMode: r.irq.triggerMode,
    redirectionHint: r.irq.redirectionHint,
    remapped: r.remapped,
    ...(r.index !== undefined ? { index: r.index } : {}),
    msi: { address: hex(r.msi.address >>> 0), addressHi: hex(r.msi.addressHi >>> 0), data: hex(r.msi.data >>> 0) },
  };
}
