/**
 * AMD-Vi structures in a memory dump: the device table entry of a device, its I/O page tables, its mappings as
 * ranges, and its interrupt remapping table — read with the same walk code as the AMD-Vi hardware model
 * (hw/amdvi/translate.ts, intremap.ts). Reports have the shape of the VT-d forensic walks.
 */
import { IommuError } from "../core/errors.js";
import { hex } from "../core/hex.js";
import { formatRequesterId } from "../core/pci.js";
import type { TableReader } from "../hw/vtd/walk.js";
import { remapMsi } from "../hw/amdvi/intremap.js";
import { walkDte, WalkOut, type WalkStep } from "../hw/amdvi/translate.js";
import { getField } from "../spec/amdvi/fields.js";
import { BASE_ADDR_MASK_HI, BASE_ADDR_MASK_LO, DEV_TABLE_SIZE } from "../spec/amdvi/registers.js";
import { MSI_DATA_INDEX_MASK } from "../spec/amdvi/irte.js";
import { decodeCompatMsi } from "../spec/msi.js";
import { DTE_BYTES, DTE_DOMAIN_ID, DTE_IR, DTE_IW, DTE_MODE, dtePageTableRoot, DTE_TV, DTE_V } from "../spec/amdvi/dte.js";
import { eventName, EVF_PE } from "../spec/amdvi/events.js";
import { explicitPageShift, levelShift, NEXT_LEVEL_EXPLICIT, NEXT_LEVEL_PTE, levelIndex, pteAddress, PTE_BYTES, PTE_HI_OFFSET, PTE_IR, PTE_IW, PTE_NEXT_LEVEL, PTE_PR } from "../spec/amdvi/pte.js";
import { PROGRESS_EVERY } from "./progress.js";
import type { LevelReport, ListReport, MappingRange, MsiReport, WalkReport } from "./walk.js";

const EVENT_DESCRIPTIONS: Readonly<Record<number, string>> = {
  1: "the device table entry is malformed (reserved mode or reserved bits set)",
  2: "the page is not mapped, or not with the permission asked for",
  3: "the device table entry could not be read (outside the dump)",
  4: "a page table could not be read (outside the dump)",
  8: "the request is not allowed for this device",
};

/** Device table base register: base bits 51:12, size field bits 8:0 (3.4.1). */
export function deviceTableOf(dtb: bigint): { base: number; entries: number } {
  const reg = [Number(dtb & 0xffff_ffffn), Number(dtb >> 32n)];
  const base = ((reg[1] ?? 0) & BASE_ADDR_MASK_HI) * 2 ** 32 + (((reg[0] ?? 0) & BASE_ADDR_MASK_LO) >>> 0);
  return { base, entries: ((getField(reg, DEV_TABLE_SIZE) + 1) * 4096) / DTE_BYTES };
}

/** Reads the DTE of `devid`; a DeviceID beyond the table or a DTE outside the dump is bad input (exit 2). */
export function readDteFromDump(reader: TableReader & { size: number }, dtb: bigint, devid: number): Uint32Array {
  const t = deviceTableOf(dtb);
  if (devid >= t.entries) {
    throw new IommuError("DEVICE_BEYOND_TABLE", `DeviceID ${formatRequesterId(devid)} is beyond the device table (${t.entries} entries from DTB ${hex(dtb)})`);
  }
  const a = t.base + devid * DTE_BYTES;
  if (a + 32 > reader.size) {
    throw new IommuError("DTE_OUTSIDE_DUMP", `DTB ${hex(dtb)}: the device table entry at ${hex(a)} is outside the dump (${reader.size} bytes)`, {
      hint: "the dump must hold guest-physical memory from address 0; check that the DTB was read from this guest",
    });
  }
  const dte = new Uint32Array(8);
  for (let i = 0; i < 8; i++) dte[i] = reader.read32(a + i * 4);
  return dte;
}

/** The DTE of `devid`: its index in the device table is the DeviceID. */
function dteLevel(dte: Uint32Array, address: number, devid: number): LevelReport {
  const q = (i: number): string => hex((BigInt(dte[i + 1] ?? 0) << 32n) | BigInt(dte[i] ?? 0));
  const present = getField(dte, DTE_V) === 1;
  const mode = getField(dte, DTE_MODE);
  const tv = getField(dte, DTE_TV) === 1;
  return {
    table: "device table entry",
    index: devid,
    address: hex(address),
    value: q(0),
    valueHi: q(2),
    present,
    read: getField(dte, DTE_IR) === 1,
    write: getField(dte, DTE_IW) === 1,
    translationType: !present || !tv ? "untranslated" : mode === 0 ? "pass-through" : `${mode}-level`,
    domainId: getField(dte, DTE_DOMAIN_ID),
    next: hex(dtePageTableRoot(dte)),
  };
}

function stepLevel(s: WalkStep, iovaIndex: number): LevelReport {
  const e = [s.lo, s.hi];
  const present = getField(e, PTE_PR) === 1;
  const next = getField(e, PTE_NEXT_LEVEL);
  // A non-present entry's other bits mean nothing: it is neither a table pointer nor a page.
  const leaf = present && (next === NEXT_LEVEL_PTE || next === NEXT_LEVEL_EXPLICIT);
  const shift = next === NEXT_LEVEL_EXPLICIT ? explicitPageShift(s.lo, s.hi) : levelShift(s.level);
  return {
    table: !present ? `PDE/PTE (level ${s.level}, not present)` : leaf ? `PTE (level ${s.level})` : `PDE (level ${s.level} -> ${next})`,
    level: s.level,
    index: iovaIndex,
    address: hex(s.addr),
    value: hex((BigInt(s.hi >>> 0) << 32n) | BigInt(s.lo >>> 0)),
    present,
    read: getField(e, PTE_IR) === 1,
    write: getField(e, PTE_IW) === 1,
    ...(leaf ? { pageSize: 2 ** shift } : {}),
    next: hex(pteAddress(e)),
  };
}

export interface AmdWalkOptions {
  dtb: bigint;
  devid: number;
  iova: bigint;
  access?: "read" | "write";
  /** Host page-table levels the hardware supports (EFR.HATS; QEMU 7.2: 6). */
  maxLevels?: number;
}

export function walkAmdIova(reader: TableReader & { size: number }, o: AmdWalkOptions): WalkReport {
  const dte = readDteFromDump(reader, o.dtb, o.devid);
  const t = deviceTableOf(o.dtb);
  const iova = BigInt.asUintN(64, o.iova);
  const lo = Number(iova & 0xffff_ffffn);
  const hi = Number(iova >> 32n);
  const out = new WalkOut();
  const base = { bdf: formatRequesterId(o.devid), iova: hex(iova) };
  const walk = (write: boolean): number => {
    out.trace = [];
    return walkDte(reader, dte, lo, hi, write, o.maxLevels ?? 6, out);
  };
  let code = walk(o.access === "write");
  if (o.access === undefined && code === 2 && (out.flags & EVF_PE) !== 0) code = walk(true);
  const levels = [dteLevel(dte, t.base + o.devid * DTE_BYTES, o.devid), ...(out.trace ?? []).map((s) => stepLevel(s, levelIndex(iova, s.level)))];
  if (code !== 0) {
    return { result: "fault", ...base, reason: code, reasonName: eventName(code), description: EVENT_DESCRIPTIONS[code] ?? "fault", levels };
  }
  const pageMask = (1n << BigInt(out.shift)) - 1n;
  const page = (BigInt(out.outHi) << 32n) | BigInt(out.outLo);
  const hpa = (page & ~pageMask) | (iova & pageMask);
  const first = levels[0];
  return {
    result: "ok",
    ...base,
    hpa: hex(hpa),
    pageSize: 2 ** out.shift,
    read: out.read,
    write: out.write,
    translationType: first?.translationType ?? "?",
    domainId: getField(dte, DTE_DOMAIN_ID),
    levels,
  };
}

export interface AmdMsiOptions {
  dtb: bigint;
  devid: number;
  msiAddr: bigint;
  msiData: number;
  /** Control.GAEn: 128-bit IRTEs. */
  ga?: boolean;
}

export function walkAmdMsi(reader: TableReader & { size: number }, o: AmdMsiOptions): MsiReport {
  const dte = readDteFromDump(reader, o.dtb, o.devid);
  const bdf = formatRequesterId(o.devid);
  const address = Number(o.msiAddr & 0xffff_ffffn);
  const r = remapMsi(reader, dte, address, o.msiData, o.ga === true);
  const index = r.index ?? o.msiData & MSI_DATA_INDEX_MASK;
  if (r.kind === "fault" || r.kind === "aborted") {
    const reason = r.kind === "fault" ? r.event : 0;
    return {
      result: "fault",
      bdf,
      reason,
      reasonName: r.kind === "fault" ? eventName(r.event) : "TARGET_ABORT",
      description: r.kind === "fault" ? (EVENT_DESCRIPTIONS[r.event] ?? "fault") : "the interrupt is blocked by the device table entry",
      index,
      detail: r.irteAddr !== undefined ? `IRTE at ${hex(r.irteAddr)}` : "no IRTE read",
    };
  }
  return {
    result: "ok",
    bdf,
    ...decodeCompatMsi(r.address, r.data),
    remapped: r.kind === "remapped",
    ...(r.index !== undefined ? { index: r.index } : {}),
    msi: { address: hex(r.address >>> 0), addressHi: hex(0), data: hex(r.data >>> 0) },
  };
}

const MAX_MAPPINGS = 1 << 20;

/** Lists the device's mappings, merged into ranges contiguous in IOVA and HPA. */
/** `progress` is called with the number of mappings found so far, every PROGRESS_EVERY of them. */
export function listAmdMappings(reader: TableReader & { size: number }, dtb: bigint, devid: number, progress?: (mappings: number) => void): ListReport {
  const dte = readDteFromDump(reader, dtb, devid);
  const t = deviceTableOf(dtb);
  const bdf = formatRequesterId(devid);
  const mode = getField(dte, DTE_MODE);
  const domainId = getField(dte, DTE_DOMAIN_ID);
  const head = dteLevel(dte, t.base + devid * DTE_BYTES, devid);
  if (getField(dte, DTE_V) === 0 || getField(dte, DTE_TV) === 0 || mode === 0) {
    return { result: "ok", bdf, domainId, translationType: "pass-through", pagingLevels: 0, addressWidth: 64, mappings: 0, ranges: [], truncated: false, entriesRead: 1 };
  }
  if (mode === 7) return { result: "fault", bdf, reason: 1, reasonName: eventName(1), description: EVENT_DESCRIPTIONS[1] ?? "", levels: [head] } as ListReport;
  const ranges: Array<{ iova: bigint; hpa: bigint; size: bigint; pageSize: number; pages: number; read: boolean; write: boolean }> = [];
  const state = { entries: 0, mappings: 0, truncated: false, seen: new Set<number>() };
  const visit = (table: number, level: number, iovaBase: bigint, r: boolean, w: boolean): void => {
    if (state.seen.has(table) || state.truncated) {
      state.truncated = state.truncated || state.seen.has(table);
      return;
    }
    state.seen.add(table);
    for (let i = 0; i < (level === 6 ? 128 : 512); i++) {
      let lo: number;
      let hi: number;
      try {
        lo = reader.read32(table + i * PTE_BYTES);
        hi = reader.read32(table + i * PTE_BYTES + PTE_HI_OFFSET);
      } catch {
        return;
      }
      state.entries++;
      const e = [lo, hi];
      if (getField(e, PTE_PR) === 0) continue;
      const er = r && getField(e, PTE_IR) === 1;
      const ew = w && getField(e, PTE_IW) === 1;
      const next = getField(e, PTE_NEXT_LEVEL);
      const iova = iovaBase + (BigInt(i) << BigInt(levelShift(level)));
      const addr = pteAddress(e);
      if (next === NEXT_LEVEL_PTE || next === NEXT_LEVEL_EXPLICIT) {
        const shift = next === NEXT_LEVEL_PTE ? levelShift(level) : explicitPageShift(lo, hi);
        if (shift === 0) continue;
        const size = 1n << BigInt(shift);
        const pIova = iova & ~(size - 1n);
        const pHpa = addr & ~(size - 1n);
        const last = ranges.at(-1);
        if (last !== undefined && last.pageSize === 2 ** shift && pIova < last.iova + last.size) continue; // same explicit page
        if (++state.mappings > MAX_MAPPINGS) {
          state.truncated = true;
          return;
        }
        if (state.mappings % PROGRESS_EVERY === 0) progress?.(state.mappings);
        if (last !== undefined && last.iova + last.size === pIova && last.hpa + last.size === pHpa && last.read === er && last.write === ew && last.pageSize === 2 ** shift) {
          last.size += size;
          last.pages++;
        } else ranges.push({ iova: pIova, hpa: pHpa, size, pageSize: 2 ** shift, pages: 1, read: er, write: ew });
      } else if (next < level) visit(Number(addr), next, iova, er, ew);
    }
  };
  visit(Number(dtePageTableRoot(dte)), mode, 0n, getField(dte, DTE_IR) === 1, getField(dte, DTE_IW) === 1);
  const out: MappingRange[] = ranges.map((x) => ({ iova: hex(x.iova), hpa: hex(x.hpa), size: hex(x.size), pageSize: x.pageSize, pages: x.pages, read: x.read, write: x.write }));
  return { result: "ok", bdf, domainId, translationType: `${mode}-level`, pagingLevels: mode, addressWidth: Math.min(64, levelShift(mode) + 9), mappings: state.mappings, ranges: out, truncated: state.truncated, entriesRead: state.entries };
}
