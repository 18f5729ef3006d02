/**
 * The AMD-Vi command buffer (spec #48882 sections 2.4 and 3.4.2, 3.4.10): commands fetched from head to tail
 * while CmdBufEn and IommuEn are set. An unknown opcode or set reserved bits log ILLEGAL_COMMAND_ERROR and stop
 * fetching (2.5.6); a memory error logs COMMAND_HARDWARE_ERROR (2.5.7).
 */
import type { PhysReader } from "../../core/memory.js";

/** Memory the unit reads and writes (reads and writes may fail, as bus errors). */
export interface UnitMemory extends PhysReader {
  write32(addr: number, v: number): void;
}
import type { RegisterFile } from "../vtd/regfile.js";
import {
  CMD_BYTES,
  CMD_COMPLETION_WAIT,
  CMD_INVALIDATE_DEVTAB_ENTRY,
  CMD_INVALIDATE_INTERRUPT_TABLE,
  CMD_INVALIDATE_IOMMU_ALL,
  CMD_INVALIDATE_IOMMU_PAGES,
  CMD_INVALIDATE_IOTLB_PAGES,
  CMD_COMPLETE_PPR_REQUEST,
  CMD_PREFETCH_IOMMU_PAGES,
  CMD_RESERVED,
  invalidationRange,
} from "../../spec/amdvi/commands.js";
import { COMMAND_HARDWARE_ERROR, ILLEGAL_COMMAND_ERROR, type AmdEvent } from "../../spec/amdvi/events.js";
import {
  CTRL_CMD_BUF_EN,
  CTRL_COM_WAIT_INT_EN,
  CTRL_IOMMU_EN,
  EFR_PPR_SUP,
  EFR_PREF_SUP,
  MMIO_CMD_BUF_BASE,
  MMIO_CMD_HEAD,
  MMIO_CMD_TAIL,
  MMIO_CONTROL,
  MMIO_EXT_FEATURE,
  MMIO_STATUS,
  PTR_MASK,
  STATUS_CMD_BUF_RUN,
  STATUS_COM_WAIT_INT,
  baseRegAddress,
  logBytes,
} from "../../spec/amdvi/registers.js";
import { HI_DWORD_OFFSET, TWO32 } from "../../core/u64.js";


/** What commands act on. */
export interface CommandTarget {
  invalidateDte(devid: number): void;
  invalidatePages(domain: number, base: bigint, shift: number, pde: boolean): void;
  invalidateInterruptTable(devid: number): void;
  invalidateAll(): void;
  record(e: AmdEvent): void;
  raiseCompletion(): void;
}

export class CommandBuffer {
  readonly executed = new Map<number, number>();
  private readonly cmd = new Uint32Array(4);

  constructor(
    private readonly regs: RegisterFile,
    private readonly mem: UnitMemory,
    private readonly target: CommandTarget,
  ) {}

  /** Runs commands from head to tail while the buffer is enabled and running. */
  run(): void {
    const ctrl = this.regs.get32(MMIO_CONTROL);
    if ((ctrl & CTRL_IOMMU_EN) === 0 || (ctrl & CTRL_CMD_BUF_EN) === 0) return;
    if ((this.regs.get32(MMIO_STATUS) & STATUS_CMD_BUF_RUN) === 0) return;
    const baseLo = this.regs.get32(MMIO_CMD_BUF_BASE);
    const baseHi = this.regs.get32(MMIO_CMD_BUF_BASE + HI_DWORD_OFFSET);
    const bytes = logBytes(baseLo, baseHi, CMD_BYTES);
    const base = baseRegAddress(baseLo, baseHi);
    const tail = (this.regs.get32(MMIO_CMD_TAIL) & PTR_MASK) % bytes;
    let head = (this.regs.get32(MMIO_CMD_HEAD) & PTR_MASK) % bytes;
    for (let n = 0; head !== tail && n < bytes / CMD_BYTES; n++) {
      const addr = base + head;
      if (!this.fetch(addr)) {
        this.stop(COMMAND_HARDWARE_ERROR, addr);
        return;
      }
      if (!this.execute(addr)) {
        this.stop(ILLEGAL_COMMAND_ERROR, addr);
        return;
      }
      head = (head + CMD_BYTES) % bytes;
      this.regs.set32(MMIO_CMD_HEAD, head);
    }
  }

  private fetch(addr: number): boolean {
    try {
      for (let i = 0; i < 4; i++) this.cmd[i] = this.mem.read32(addr + i * 4);
      return true;
    } catch {
      return false;
    }
  }

  private stop(code: number, addr: number): void {
    this.regs.update32(MMIO_STATUS, 0, STATUS_CMD_BUF_RUN);
    this.target.record({ code, deviceId: 0, domainId: 0, flags: 0, addrLo: addr % TWO32 >>> 0, addrHi: Math.floor(addr / TWO32) >>> 0 });
  }

  /** Executes the fetched command; false when it is illegal. */
  private execute(addr: number): boolean {
    const [d0 = 0, d1 = 0, d2 = 0, d3 = 0] = this.cmd;
    const op = d1 >>> 28;
    const rsv = CMD_RESERVED[op];
    if (rsv === undefined) return false;
    if ((d0 & rsv[0]) !== 0 || (d1 & rsv[1]) !== 0 || (d2 & rsv[2]) !== 0 || (d3 & rsv[3]) !== 0) return false;
    const ok = this.dispatch(op, addr, d0, d1, d2, d3);
    if (ok) this.executed.set(op, (this.executed.get(op) ?? 0) + 1);
    return ok;
  }

  private dispatch(op: number, addr: number, d0: number, d1: number, d2: number, d3: number): boolean {
    switch (op) {
      case CMD_COMPLETION_WAIT:
        return this.completionWait(addr, d0, d1, d2, d3);
      case CMD_INVALIDATE_DEVTAB_ENTRY:
        this.target.invalidateDte(d0 & 0xffff);
        return true;
      case CMD_INVALIDATE_IOMMU_PAGES: {
        const a = (BigInt(d3) << 32n) | BigInt((d2 & 0xffff_f000) >>> 0);
        const [b, shift] = invalidationRange(a, (d2 & 1) === 1);
        this.target.invalidatePages(d1 & 0xffff, b, shift, (d2 & 2) !== 0);
        return true;
      }
      case CMD_INVALIDATE_IOTLB_PAGES:
        // Device TLBs are not modelled: accepted and completed (2.4.4).
        return true;
      case CMD_INVALIDATE_INTERRUPT_TABLE:
        this.target.invalidateInterruptTable(d0 & 0xffff);
        return true;
      case CMD_INVALIDATE_IOMMU_ALL:
        this.target.invalidateAll();
        return true;
      case CMD_PREFETCH_IOMMU_PAGES:
        // A hint to load translations; nothing is prefetched (2.4.6). Legal only with PreFSup.
        return (this.regs.get32(MMIO_EXT_FEATURE) & EFR_PREF_SUP) !== 0;
      case CMD_COMPLETE_PPR_REQUEST:
        // Peripheral page requests are not modelled; the completion is accepted (2.4.7). Legal only with PPRSup.
        return (this.regs.get32(MMIO_EXT_FEATURE) & EFR_PPR_SUP) !== 0;
      default:
        return false;
    }
  }

  private completionWait(_addr: number, d0: number, d1: number, d2: number, d3: number): boolean {
    if ((d0 & 1) !== 0) {
      const store = ((d0 & 0xffff_fff8) >>> 0) + (d1 & 0xfffff) * TWO32;
      try {
        this.mem.write32(store, d2);
        this.mem.write32(store + 4, d3);
      } catch {
        return true;
      }
    }
    if ((d0 & 2) !== 0) {
      this.regs.update32(MMIO_STATUS, STATUS_COM_WAIT_INT, 0);
      if ((this.regs.get32(MMIO_CONTROL) & CTRL_COM_WAIT_INT_EN) !== 0) this.target.raiseCompletion();
    }
    return true;
  }
}
