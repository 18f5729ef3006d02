/**
 * Builders for AMD-Vi in-memory structures (tests, benchmarks, examples): a device table, I/O page tables, interrupt tables and
 * command buffer entries, written into PhysicalMemory with the spec field descriptors.
 */
import type { PhysicalMemory } from "../../core/memory.js";
import { encodeFields } from "../../spec/amdvi/fields.js";
import { DTE_FIELDS } from "../../spec/amdvi/dte.js";
import { PTE_FIELDS, encodeExplicitSize, levelShift } from "../../spec/amdvi/pte.js";
import { CTRL_CMD_BUF_EN, CTRL_EVENT_LOG_EN, CTRL_IOMMU_EN, MMIO_CMD_BUF_BASE, MMIO_CMD_TAIL, MMIO_CONTROL, MMIO_DEV_TABLE_BASE, MMIO_EVENT_LOG_BASE } from "../../spec/amdvi/registers.js";
import type { AmdViUnit } from "./unit.js";

export const DEV_TABLE = 0x10_0000;
export const CMD_BUF = 0x20_0000;
export const EVENT_LOG = 0x21_0000;

export function writeDwords(mem: PhysicalMemory, addr: number, dw: ArrayLike<number>): void {
  for (let i = 0; i < dw.length; i++) mem.write32(addr + i * 4, dw[i] ?? 0);
}

export function writeDte(mem: PhysicalMemory, devid: number, values: Record<string, bigint | number | boolean>): void {
  writeDwords(mem, DEV_TABLE + devid * 32, encodeFields(8, DTE_FIELDS, values));
}

/** Page tables: each table a fresh 4 KiB page from `next`. */
export class AmdTables {
  private next = 0x100_0000;
  constructor(readonly mem: PhysicalMemory) {}

  alloc(): number {
    const a = this.next;
    this.next += 4096;
    return a;
  }

  entry(table: number, index: number, values: Record<string, bigint | number | boolean>): void {
    writeDwords(this.mem, table + index * 8, encodeFields(2, PTE_FIELDS, values));
  }

  /** Maps one 4 KiB page through `levels` levels from `root`, creating tables. */
  map4k(root: number, levels: number, iova: bigint, hpa: bigint, ir = true, iw = true): void {
    let table = root;
    for (let l = levels; l > 1; l--) {
      const idx = Number((iova >> BigInt(levelShift(l))) & 0x1ffn);
      const lo = this.mem.read32(table + idx * 8);
      let next: number;
      if ((lo & 1) === 1) next = (lo & 0xffff_f000) >>> 0;
      else {
        next = this.alloc();
        this.entry(table, idx, { PR: 1, NextLevel: l - 1, Address: BigInt(next >>> 12), IR: 1, IW: 1 });
      }
      table = next;
    }
    const idx = Number((iova >> 12n) & 0x1ffn);
    this.entry(table, idx, { PR: 1, NextLevel: 0, Address: hpa >> 12n, IR: ir, IW: iw });
  }

  /** An explicit-size PTE (NextLevel 7) at `table[index]`. */
  explicit(table: number, index: number, hpa: bigint, shift: number): void {
    this.entry(table, index, { PR: 1, NextLevel: 7, Address: encodeExplicitSize(hpa, shift) >> 12n, IR: 1, IW: 1 });
  }
}

/** Programs the unit: device table (size field `size`), command buffer and event log (256 entries), enabled. */
export function enable(unit: AmdViUnit, extraCtrl = 0, size = 0x1ff): void {
  unit.mmioWrite(MMIO_DEV_TABLE_BASE, 8, DEV_TABLE | size, 0);
  unit.mmioWrite(MMIO_CMD_BUF_BASE, 8, CMD_BUF, 8 << 24);
  unit.mmioWrite(MMIO_EVENT_LOG_BASE, 8, EVENT_LOG, 8 << 24);
  unit.mmioWrite(MMIO_CONTROL, 8, CTRL_IOMMU_EN | CTRL_EVENT_LOG_EN | CTRL_CMD_BUF_EN | extraCtrl, 0);
}

/** Appends commands at the tail and rings it. */
export function submit(unit: AmdViUnit, ...cmds: Uint32Array[]): void {
  let tail = unit.mmioRead32(MMIO_CMD_TAIL);
  for (const c of cmds) {
    writeDwords(unit.mem, CMD_BUF + tail, c);
    tail = (tail + 16) % (256 * 16);
  }
  unit.mmioWrite(MMIO_CMD_TAIL, 8, tail, 0);
}

/** Event log entries written so far, as dword quadruples. */
export function loggedEvents(unit: AmdViUnit, count: number): Uint32Array[] {
  const out: Uint32Array[] = [];
  for (let i = 0; i < count; i++) {
    const a = EVENT_LOG + i * 16;
    out.push(Uint32Array.of(unit.mem.read32(a), unit.mem.read32(a + 4), unit.mem.read32(a + 8), unit.mem.read32(a + 12)));
  }
  return out;
}
