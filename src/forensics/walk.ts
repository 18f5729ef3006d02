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
import { CONTEXT_ENTRY, TT_PASS_THROUGH } from "../spec/vtd/context.js";
import { faultReasonDescription, faultReasonName, VTD_FR_ADDR_BEYOND_MGAW, VTD_FR_READ } from "../spec/vtd/faults.js";
import { fieldOfBig, joinHalves, maskOf } from "../spec/vtd/fields.js";
import { PAGE_SIZE_4K } from "../spec/vtd/paging.js";
import { IRTA, RTADDR, TTM_ABORT_DMA, TTM_LEGACY, TTM_SCALABLE } from "../spec/vtd/registers.js";
import { IRTE_SIZE, walkInterrupt } from "../hw/vtd/intremap.js";
import { decodeStep, TT_NAMES } from "./steps.js";
import { listMappingsScalable, walkIovaScalable } from "./walk-scalable.js";
import { secondStageRanges } from "./ranges.js";
import {
  ContextOut,
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

export type { LevelReport } from "./steps.js";
export type { ListOptions, ListReport, MappingRange, WalkIovaOptions, WalkReport } from "./reports.js";
import type { ListOptions, ListReport, WalkIovaOptions, WalkReport } from "./reports.js";


function bdfOf(sid: number): string {
  return formatRequesterId(sid);
}

/** The root table address of an RTADDR value (4 KiB aligned); legacy (TTM 00) and scalable (TTM 01) mode walk. */
export function rootTableOf(rtaddr: bigint): bigint {
  const ttm = fieldOfBig(rtaddr, RTADDR.TTM);
  if (ttm !== TTM_LEGACY && ttm !== TTM_SCALABLE) {
    throw new IommuError("UNSUPPORTED_MODE", `RTADDR ${hex(rtaddr)} selects ${ttm === TTM_ABORT_DMA ? "abort-DMA" : "reserved"} translation mode (TTM ${ttm}); legacy (TTM 0) and scalable (TTM 1) tables can be walked`);
  }
  return rtaddr & maskOf(RTADDR.RTA);
}

/** True when RTADDR's translation table mode (10.4.6) is scalable. */
export function isScalableRtaddr(rtaddr: bigint): boolean {
  return fieldOfBig(rtaddr, RTADDR.TTM) === TTM_SCALABLE;
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


/** Walks one address of one device through legacy or scalable-mode tables. Never throws on table contents. */
export function walkIova(reader: TableReader, o: WalkIovaOptions): WalkReport {
  const rta = rootTableOf(o.rtaddr);
  if (isScalableRtaddr(o.rtaddr)) return walkIovaScalable(reader, o, rta);
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




/** Every mapping of the device's domain, merged into ranges. Never throws on table contents. */
export function listMappings(reader: TableReader, o: ListOptions): ListReport {
  const rta = rootTableOf(o.rtaddr);
  if (isScalableRtaddr(o.rtaddr)) return listMappingsScalable(reader, o, rta);
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
  const limit = 1n << BigInt(Math.min(ctx.agaw, caps.mgawBits));
  return { result: "ok", ...base, pagingLevels: ctx.levels, ...secondStageRanges(reader, caps, ctx.ptLo, ctx.ptHi & caps.addrHiMask, ctx.levels, limit, o) };
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
