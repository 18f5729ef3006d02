/**
 * One AMD-Vi IOMMU as the simulated kernel's driver knows it (struct amd_iommu in Linux 6.1), and the driver's
 * access to it: MMIO registers (64-bit control read-modify-writes, as iommu_feature_enable does), and the command
 * buffer (iommu_queue_command: write at the tail, ring it; iommu_completion_wait: a COMPLETION_WAIT that stores
 * an increasing value to a semaphore in memory, polled until it arrives).
 *
 * Command layouts come from spec/amdvi/commands.ts; register offsets and bits from spec/amdvi/registers.ts.
 */
import { IommuError } from "../core/errors.js";
import { TWO32 } from "../core/u64.js";
import {
  CMD_BYTES,
  CMD_COMPLETION_WAIT,
  CMD_INVALIDATE_DEVTAB_ENTRY,
  CMD_INVALIDATE_INTERRUPT_TABLE,
  CMD_INVALIDATE_IOMMU_ALL,
  CMD_INVALIDATE_IOMMU_PAGES,
  CW_S,
  IP_PDE,
  IP_S,
  encodeCommand,
  IP_ALL_PAGES_HI,
  IP_ALL_PAGES_LO,
} from "../spec/amdvi/commands.js";
import { MMIO_CMD_HEAD, MMIO_CMD_TAIL, MMIO_CONTROL } from "../spec/amdvi/registers.js";
import type { KernelLog } from "./log.js";
import type { PageAllocator } from "./pages.js";
import type { MachinePort } from "./port.js";

/** pr_alert */
const KERN_ALERT = 1;

/** CMD_BUFFER_SIZE / EVT_BUFFER_SIZE / PPR_LOG_SIZE: 8 KiB, 512 entries of 16 bytes (length code 9). */
export const CMD_BUFFER_SIZE = 8192;
export const EVT_BUFFER_SIZE = 8192;
export const LOG_LEN_512 = 9;
/** How often the driver polls the completion semaphore before giving up (LOOP_TIMEOUT). */
const LOOP_TIMEOUT = 100_000;

export interface AmdDriverContext {
  port: MachinePort;
  log: KernelLog;
  pages: PageAllocator;
  advance(ns: number): void;
  /** The simulated time in ns. */
  now(): number;
}

/** Commands the driver issued, by kind (for tests and the strict/lazy comparison). */
export interface AmdCommandCounts {
  completionWait: number;
  invalidateDevtab: number;
  invalidatePages: number;
  invalidateIrt: number;
  invalidateAll: number;
}

export class AmdIommuUnit {
  /** "ivhd0": the class device name (iommu_device_sysfs_add "ivhd%d"). */
  readonly name: string;
  /** Device table, command buffer, event log, PPR log, completion semaphore (physical addresses). */
  devTable = 0;
  devTableSize = 0;
  cmdBuf = 0;
  evtBuf = 0;
  pprLog = 0;
  cmdSem = 0;
  cmdSemVal = 0;
  cmdTail = 0;
  /** Capability header (pci config at cap_ptr), EFR and EFR2. */
  cap = 0;
  efr = 0n;
  efr2 = 0n;
  enabled = false;
  /** Interrupt vector and CPU of the event interrupt, when set up. */
  vector: number | null = null;
  readonly counts: AmdCommandCounts = { completionWait: 0, invalidateDevtab: 0, invalidatePages: 0, invalidateIrt: 0, invalidateAll: 0 };

  constructor(
    readonly seq: number,
    readonly base: number,
    /** The IOMMU's own PCI requester id (IVHD device id). */
    readonly devid: number,
    readonly capOffset: number,
    readonly ivhdFlags: number,
  ) {
    this.name = `ivhd${seq}`;
  }

  hasFeature(bit: number): boolean {
    return ((this.efr >> BigInt(bit)) & 1n) === 1n;
  }
}

export class AmdIo {
  constructor(private readonly ctx: AmdDriverContext) {}

  r32(u: AmdIommuUnit, off: number): number {
    return this.ctx.port.mmioRead32(u.base + off) >>> 0;
  }

  r64(u: AmdIommuUnit, off: number): bigint {
    return BigInt(this.r32(u, off)) | (BigInt(this.r32(u, off + 4)) << 32n);
  }

  w32(u: AmdIommuUnit, off: number, v: number): void {
    this.ctx.port.mmioWrite(u.base + off, 4, v >>> 0);
  }

  w64(u: AmdIommuUnit, off: number, v: bigint): void {
    this.ctx.port.mmioWrite(u.base + off, 8, v);
  }

  /** iommu_feature_enable / iommu_feature_disable: read-modify-write of one control bit. */
  control(u: AmdIommuUnit, bits: number, on: boolean): void {
    const ctrl = this.r64(u, MMIO_CONTROL);
    const b = BigInt(bits >>> 0);
    this.w64(u, MMIO_CONTROL, on ? ctrl | b : ctrl & ~b);
  }

  /** Writes one command at the tail and rings it (iommu_queue_command), waiting for room as Linux does. */
  queue(u: AmdIommuUnit, cmd: Uint32Array): void {
    const mem = this.ctx.port.memory;
    const next = (u.cmdTail + CMD_BYTES) % CMD_BUFFER_SIZE;
    for (let i = 0; ; i++) {
      const head = this.r32(u, MMIO_CMD_HEAD);
      const left = (head - next + CMD_BUFFER_SIZE) % CMD_BUFFER_SIZE;
      if (left > 0x20 || head === u.cmdTail) break;
      if (i >= LOOP_TIMEOUT) throw new IommuError("AMDVI_CMD", `${u.name}: command buffer full (head 0x${head.toString(16)})`);
      this.ctx.advance(1000);
    }
    for (let i = 0; i < 4; i++) mem.write32(u.cmdBuf + u.cmdTail + 4 * i, cmd[i] ?? 0);
    u.cmdTail = next;
    this.w32(u, MMIO_CMD_TAIL, u.cmdTail);
  }

  /** iommu_completion_wait: COMPLETION_WAIT storing the next semaphore value, then polls the semaphore. */
  completionWait(u: AmdIommuUnit): void {
    const data = ++u.cmdSemVal;
    const hi = Math.floor(u.cmdSem / TWO32);
    const lo = (u.cmdSem - hi * TWO32) | (1 << CW_S.lsb);
    this.queue(u, encodeCommand(CMD_COMPLETION_WAIT, lo, hi, data, 0));
    u.counts.completionWait++;
    const mem = this.ctx.port.memory;
    for (let i = 0; i < LOOP_TIMEOUT; i++) {
      if (mem.read32(u.cmdSem) >>> 0 === data) return;
      this.ctx.advance(1000);
    }
    this.ctx.log.print(KERN_ALERT, "AMD-Vi: Completion-Wait loop timed out");
    throw new IommuError("AMDVI_CMD", `${u.name}: COMPLETION_WAIT did not complete`);
  }

  /** INVALIDATE_DEVTAB_ENTRY (iommu_flush_dte). */
  flushDte(u: AmdIommuUnit, devid: number): void {
    this.queue(u, encodeCommand(CMD_INVALIDATE_DEVTAB_ENTRY, devid & 0xffff));
    u.counts.invalidateDevtab++;
  }

  /** INVALIDATE_INTERRUPT_TABLE (iommu_flush_irt). */
  flushIrt(u: AmdIommuUnit, devid: number): void {
    this.queue(u, encodeCommand(CMD_INVALIDATE_INTERRUPT_TABLE, devid & 0xffff));
    u.counts.invalidateIrt++;
  }

  /** INVALIDATE_IOMMU_ALL (amd_iommu_flush_all, units with EFR.IASup). */
  flushAll(u: AmdIommuUnit): void {
    this.queue(u, encodeCommand(CMD_INVALIDATE_IOMMU_ALL));
    u.counts.invalidateAll++;
  }

  /**
   * INVALIDATE_IOMMU_PAGES for `pages` pages at `pfn` (build_inv_iommu_pages / build_inv_address): one page
   * exactly; more as the naturally aligned power-of-two range holding them (S=1, low bits set); everything
   * when `pfn` is null. `pde` also drops cached directory entries.
   */
  flushPages(u: AmdIommuUnit, domid: number, pfn: number | null, pages: number, pde: boolean): void {
    let lo: number;
    let hi: number;
    let s = true;
    if (pfn === null) {
      [lo, hi] = [IP_ALL_PAGES_LO, IP_ALL_PAGES_HI];
    } else if (pages === 1) {
      s = false;
      const a = pfn * 4096;
      hi = Math.floor(a / TWO32);
      lo = a - hi * TWO32;
    } else {
      const first = BigInt(pfn) << 12n;
      const end = first + (BigInt(pages) << 12n) - 1n;
      const msb = (first ^ end).toString(2).length - 1;
      const a = msb > 51 ? 0x7fff_ffff_ffff_f000n : (first | ((1n << BigInt(msb)) - 1n)) & ~0xfffn;
      lo = Number(a & 0xffff_ffffn);
      hi = Number(a >> 32n);
    }
    const dw2 = (lo | (s ? 1 << (IP_S.lsb - 64) : 0) | (pde ? 1 << (IP_PDE.lsb - 64) : 0)) >>> 0;
    this.queue(u, encodeCommand(CMD_INVALIDATE_IOMMU_PAGES, 0, domid & 0xffff, dw2, hi));
    u.counts.invalidatePages++;
  }
}
