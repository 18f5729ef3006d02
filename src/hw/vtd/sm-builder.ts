/**
 * Builds scalable-mode tables in simulated memory for tests and examples (VT-d spec 9.2, 9.4–9.7): the
 * scalable-mode root table, context entries with a PASID directory, PASID entries of every PGTT, and
 * first-stage page tables (4- or 5-level). Second-stage tables come from `VtdTables` (builder.ts), which
 * allocates from the same memory.
 */
import type { PhysicalMemory } from "../../core/memory.js";
import { FS_ENTRY, FS_P, FS_PS, FS_RW, FS_US, fsAddressWidth, fsLevels } from "../../spec/vtd/first-stage.js";
import { ridBus, ridDevfn } from "../../core/pci.js";
import { fieldOfBig, withField } from "../../spec/vtd/fields.js";
import { RTADDR, TTM_SCALABLE } from "../../spec/vtd/registers.js";
import { awForLevels } from "../../spec/vtd/context.js";
import {
  decodePasidDirEntry,
  decodeSmRootEntry,
  encodePasidDirEntry,
  encodePasidEntry,
  encodeSmContextEntry,
  encodeSmRootEntry,
  PASID_DIR_ENTRY_SIZE,
  PASID_ENTRY_SIZE,
  pasidDirEntries,
  pasidDirIndex,
  pasidTableIndex,
  RID_PASID_DEFAULT,
  SM_ROOT_ENTRY_SIZE,
  smContextEntryOffset,
  smUsesUpperTable,
  type PasidEntryFields,
} from "../../spec/vtd/scalable.js";
import { leafLevelForSize, PAGE_SIZE_4K, pfnLevelIndex, SL_ENTRY_SIZE } from "../../spec/vtd/paging.js";
import { VtdTables, type DomainTables } from "./builder.js";

export interface SmContextOptions {
  present?: boolean;
  fpd?: boolean;
  paside?: boolean;
  dte?: boolean;
  /** PASID directory size field (2^(pdts+7) entries); default 7 (every PASID). */
  pdts?: number;
  ridPasid?: number;
}

/** A first-stage address space: top table and paging levels (4 or 5). */
export interface FirstStageTables {
  top: number;
  levels: number;
}

export interface FsMapOptions {
  write?: boolean;
  user?: boolean;
  /** 4096 (default), 2 MiB or 1 GiB. */
  size?: number;
  /** Extra bits for the leaf's low dword (A, D, reserved bits for tests). */
  extraLo?: number;
}

export class ScalableTables {
  readonly sl: VtdTables;
  readonly mem: PhysicalMemory;
  /** The scalable-mode root table (RTADDR with TTM = 01b). */
  get root(): number {
    return this.sl.root;
  }

  constructor(mem: PhysicalMemory, base?: number) {
    this.mem = mem;
    this.sl = new VtdTables(mem, base);
  }

  /** A second-stage domain (tables of `levels` levels). */
  domain(did: number, levels = 4): DomainTables {
    return this.sl.domain(did, levels);
  }

  /** Writes the scalable-mode context entry of `sid` with a fresh PASID directory; returns the directory's address. */
  attach(sid: number, o: SmContextOptions = {}): number {
    const devfn = ridDevfn(sid);
    const upper = smUsesUpperTable(devfn);
    const rootAddr = this.root + ridBus(sid) * SM_ROOT_ENTRY_SIZE;
    const root = decodeSmRootEntry(this.readWords(rootAddr, SM_ROOT_ENTRY_SIZE));
    let ctp = upper ? root.upperTable : root.lowerTable;
    if (!(upper ? root.upperPresent : root.lowerPresent)) {
      ctp = this.sl.allocPage();
      this.writeWords(rootAddr, encodeSmRootEntry(upper ? { ...root, upperPresent: true, upperTable: ctp } : { ...root, lowerPresent: true, lowerTable: ctp }));
    }
    const dir = this.sl.allocPage();
    const pdts = o.pdts ?? 7;
    // A PASID directory of 2^(pdts+7) entries may span several pages: allocate them contiguously.
    for (let n = 1; n < Math.ceil((pasidDirEntries(pdts) * PASID_DIR_ENTRY_SIZE) / PAGE_SIZE_4K); n++) this.sl.allocPage();
    const words = encodeSmContextEntry({
      present: o.present ?? true,
      fpd: o.fpd ?? false,
      paside: o.paside ?? true,
      dte: o.dte ?? false,
      pdts,
      pasidDir: dir,
      ridPasid: o.ridPasid ?? RID_PASID_DEFAULT,
    });
    this.writeWords(ctp + smContextEntryOffset(devfn), words);
    return dir;
  }

  /** Writes the PASID entry of `pasid` under the directory `dir` (the PASID table is created on first use). */
  setPasid(dir: number, pasid: number, e: Partial<PasidEntryFields>): number {
    const de = dir + pasidDirIndex(pasid) * PASID_DIR_ENTRY_SIZE;
    const entry = decodePasidDirEntry(this.readWords(de, PASID_DIR_ENTRY_SIZE));
    let table = entry.table;
    if (!entry.present) {
      table = this.sl.allocPage();
      this.writeWords(de, encodePasidDirEntry({ present: true, table }));
    }
    const addr = table + pasidTableIndex(pasid) * PASID_ENTRY_SIZE;
    this.writeWords(addr, encodePasidEntry({ present: true, ...e }));
    return addr;
  }

  /** A PASID entry for second-stage translation through domain `d`. */
  secondStage(d: DomainTables, extra: Partial<PasidEntryFields> = {}): Partial<PasidEntryFields> {
    return { pgtt: 2, did: d.did, aw: awForLevels(d.levels), ssptptr: d.top, ...extra };
  }

  /** An empty first-stage address space (FSPM 0: 4-level, 1: 5-level). */
  firstStageSpace(fspm = 0): FirstStageTables {
    return { top: this.sl.allocPage(), levels: fsLevels(fspm) };
  }

  /**
   * Maps `va` to `pa` in first-stage tables; tables are created present, writable and user-accessible. In a
   * nested setup the table addresses are guest-physical: pass `gpaOf` to translate the new tables' addresses
   * (and map them in the second stage yourself).
   */
  mapFirstStage(s: FirstStageTables, va: bigint, pa: bigint, o: FsMapOptions = {}): number {
    const size = o.size ?? 4096;
    const leaf = leafLevelForSize(size);
    if (leaf === 0) throw new RangeError(`page size ${size} is not 4 KiB, 2 MiB or 1 GiB`);
    let table = s.top;
    // Bits above the paging width are the sign extension of a canonical address: not an index.
    const pfn = Number(BigInt.asUintN(fsAddressWidth(s.levels), va) / BigInt(PAGE_SIZE_4K));
    for (let lv = s.levels; lv > leaf; lv--) {
      const ea = table + pfnLevelIndex(pfn, lv) * SL_ENTRY_SIZE;
      const e = this.mem.read64(ea);
      if ((e & BigInt(FS_P)) === 0n) {
        const t = this.sl.allocPage();
        this.mem.write64(ea, BigInt(t) | BigInt(FS_P | FS_RW | FS_US));
        table = t;
      } else {
        table = fieldOfBig(e, FS_ENTRY.ADDR) * PAGE_SIZE_4K;
      }
    }
    const ea = table + pfnLevelIndex(pfn, leaf) * SL_ENTRY_SIZE;
    const lo = FS_P | ((o.write ?? true) ? FS_RW : 0) | ((o.user ?? true) ? FS_US : 0) | (leaf > 1 ? FS_PS : 0) | (o.extraLo ?? 0);
    this.mem.write64(ea, pa | BigInt(lo >>> 0));
    return ea;
  }

  private readWords(addr: number, bytes: number): number[] {
    return Array.from({ length: bytes / 4 }, (_, i) => this.mem.read32(addr + 4 * i));
  }

  private writeWords(addr: number, words: readonly number[]): void {
    for (let i = 0; i < words.length; i++) this.mem.write32(addr + 4 * i, words[i] ?? 0);
  }
}

/** RTADDR for a scalable-mode root table: TTM = 01b (10.4.6). */
export function smRtaddr(root: number): bigint {
  return withField(BigInt(root), RTADDR.TTM, TTM_SCALABLE);
}
