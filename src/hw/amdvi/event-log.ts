/**
 * The AMD-Vi event log (spec #48882 sections 2.5 and 3.4.3, 3.4.10, 3.4.11): entries written at the tail while
 * the log is enabled, overflow when the tail would meet the head, the event-log interrupt when enabled.
 */
import type { UnitMemory } from "./commands.js";
import type { RegisterFile } from "../vtd/regfile.js";
import { encodeEvent, EVENT_BYTES, type AmdEvent } from "../../spec/amdvi/events.js";
import {
  CTRL_EVENT_INT_EN,
  CTRL_EVENT_LOG_EN,
  CTRL_IOMMU_EN,
  MMIO_CONTROL,
  MMIO_EVENT_HEAD,
  MMIO_EVENT_LOG_BASE,
  MMIO_EVENT_TAIL,
  MMIO_STATUS,
  PTR_MASK,
  STATUS_EVENT_LOG_INT,
  STATUS_EVENT_OVERFLOW,
  baseRegAddress,
  logBytes,
} from "../../spec/amdvi/registers.js";
import { HI_DWORD_OFFSET } from "../../core/u64.js";


export class EventLog {
  /** Events written, dropped for overflow, dropped because the log was off, and per-code counts. */
  written = 0;
  overflowed = 0;
  dropped = 0;
  readonly byCode = new Map<number, number>();
  private readonly buf = new Uint32Array(4);

  constructor(
    private readonly regs: RegisterFile,
    private readonly mem: UnitMemory,
    private readonly raise: () => void,
  ) {}

  record(e: AmdEvent): void {
    this.byCode.set(e.code, (this.byCode.get(e.code) ?? 0) + 1);
    const ctrl = this.regs.get32(MMIO_CONTROL);
    if ((ctrl & CTRL_IOMMU_EN) === 0 || (ctrl & CTRL_EVENT_LOG_EN) === 0) {
      this.dropped++;
      return;
    }
    const baseLo = this.regs.get32(MMIO_EVENT_LOG_BASE);
    const baseHi = this.regs.get32(MMIO_EVENT_LOG_BASE + HI_DWORD_OFFSET);
    const bytes = logBytes(baseLo, baseHi, EVENT_BYTES);
    const base = baseRegAddress(baseLo, baseHi);
    const tail = this.regs.get32(MMIO_EVENT_TAIL) & PTR_MASK;
    const head = this.regs.get32(MMIO_EVENT_HEAD) & PTR_MASK;
    const next = (tail + EVENT_BYTES) % bytes;
    if (next === head % bytes) {
      this.overflowed++;
      this.regs.update32(MMIO_STATUS, STATUS_EVENT_OVERFLOW, 0);
      return;
    }
    encodeEvent(e, this.buf);
    const a = base + (tail % bytes);
    try {
      for (let i = 0; i < 4; i++) this.mem.write32(a + i * 4, this.buf[i] ?? 0);
    } catch {
      this.dropped++;
      return;
    }
    this.written++;
    this.regs.set32(MMIO_EVENT_TAIL, next);
    this.regs.update32(MMIO_STATUS, STATUS_EVENT_LOG_INT, 0);
    if ((ctrl & CTRL_EVENT_INT_EN) !== 0) this.raise();
  }
}
