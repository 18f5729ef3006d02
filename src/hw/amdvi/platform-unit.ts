/**
 * An AMD-Vi unit as the platform sees it (hw/iommu-unit.ts): MMIO to its register file, device requests
 * translated page by page into the platform's result shape, MSIs remapped through the interrupt remapping table
 * of the DeviceID the request carries (its requester id, or the alias the IVHD names), and interrupts from
 * IOAPICs and HPETs by their special-entry DeviceID. Faults are what the unit logs as events; `reason` in a
 * fault result is the event code (spec #48882 section 2.5), `reasonName` its name.
 */
import type { InterruptMessage, InterruptSink } from "../interrupt-message.js";
import type { IommuKind, PlatformUnit } from "../iommu-unit.js";
import type { DmaRequest, DmaSegment, TranslateResult } from "../vtd/request.js";
import { decodeCompatMsi, isInterruptAddress } from "../../spec/msi.js";
import { eventName } from "../../spec/amdvi/events.js";
import { MMIO_WINDOW_SIZE } from "../../spec/amdvi/registers.js";
import type { MsiOutcome } from "./intremap.js";
import { deviceIdOf, type RequestSource } from "./sources.js";
import type { AmdViUnit } from "./unit.js";
import { TWO32 } from "../../core/u64.js";

const PAGE = 4096n;

export class AmdViPlatformUnit implements PlatformUnit {
  readonly kind: IommuKind = "amd-vi";
  readonly mmioSize = MMIO_WINDOW_SIZE;

  constructor(
    readonly unit: AmdViUnit,
    readonly name: string,
    private readonly sink: InterruptSink,
    /** False: the unit has no interrupt remapping (IVRS without it); MSIs pass unchanged. */
    private readonly interruptRemapping: boolean,
  ) {}

  mmioRead(offset: number, size: 4 | 8): number | bigint {
    return size === 8 ? this.unit.mmioRead64(offset) : this.unit.mmioRead32(offset);
  }

  mmioWrite(offset: number, size: 4 | 8, value: number | bigint): void {
    if (typeof value === "number") {
      this.unit.mmioWrite(offset, size, value >>> 0, size === 8 ? Math.floor(value / TWO32) >>> 0 : 0);
      return;
    }
    const v = BigInt.asUintN(64, value);
    this.unit.mmioWrite(offset, size, Number(v & 0xffff_ffffn), Number(v >> 32n));
  }

  /** The DeviceID a request from requester id `sid` carries at this unit. */
  deviceId(sid: number): number {
    return deviceIdOf(this.unit.sources, { kind: "pci", rid: sid }) ?? sid & 0xffff;
  }

  translate(req: DmaRequest): TranslateResult {
    const addr = typeof req.addr === "bigint" ? BigInt.asUintN(64, req.addr) : BigInt(req.addr);
    const lo = Number(addr & 0xffff_ffffn);
    const hi = Number(addr >> 32n);
    const devid = this.deviceId(req.sid);
    // Requests with a PASID go through the DTE's GCR3 table on AMD-Vi, which this model does not have.
    if (req.pasid !== undefined) return { ok: false, kind: "unsupported", detail: "requests with a PASID (GCR3 tables) are not modelled on AMD-Vi" };
    if (isInterruptAddress(lo, hi)) {
      const length = req.length ?? 4;
      if (!req.write || length !== 4 || lo % 4 !== 0) {
        return { ok: false, kind: "unsupported", detail: "only DWORD writes to 0xFEEx_xxxx are interrupt requests" };
      }
      return this.interrupt(devid, req.sid & 0xffff, lo, (req.data ?? 0) >>> 0);
    }
    const length = req.length ?? 1;
    if (!Number.isInteger(length) || length < 0 || length > TWO32) throw new RangeError(`DMA length ${length} is not an integer in 0..2^32`);
    return this.dma(devid, addr, Math.max(length, 1), req.write);
  }

  private dma(devid: number, addr: bigint, length: number, write: boolean): TranslateResult {
    const unit = this.unit;
    const o = unit.out;
    const segments: DmaSegment[] = [];
    let cur = addr;
    let left = length;
    while (left > 0) {
      const clo = Number(cur & 0xffff_ffffn);
      const chi = Number((cur >> 32n) & 0xffff_ffffn);
      if (isInterruptAddress(clo, chi)) {
        return { ok: false, kind: "unsupported", detail: `request crosses into the interrupt address range at 0x${cur.toString(16)}` };
      }
      const logged = unit.events.written;
      const r = unit.translateFast(devid, clo, chi, write);
      if (r !== 0) {
        return { ok: false, kind: "dma", reason: r, reasonName: eventName(r), faultAddr: cur - (cur % PAGE), recorded: unit.events.written > logged, segments };
      }
      const shift = o.untranslated ? 12 : o.shift;
      const pageSize = 2 ** shift;
      const n = Math.min(left, pageSize - Number(cur & BigInt(pageSize - 1)));
      const hpa = BigInt(o.outHi) * 0x1_0000_0000n + BigInt(o.outLo) + (cur & 0xfffn);
      const read = o.untranslated || o.read;
      const wr = o.untranslated || o.write;
      const prev = segments[segments.length - 1];
      if (prev !== undefined && prev.hpa + BigInt(prev.length) === hpa && prev.read === read && prev.write === wr && prev.pageSize === pageSize) prev.length += n;
      else segments.push({ iova: cur, hpa, length: n, pageSize, read, write: wr });
      left -= n;
      cur = BigInt.asUintN(64, cur + BigInt(n));
      if (cur === 0n && left > 0) break;
    }
    return { ok: true, kind: "dma", segments };
  }

  /** An interrupt from an IOAPIC or HPET, by the DeviceID its special entry names; null when none does. */
  sourceInterrupt(source: RequestSource, address: number, data: number): TranslateResult | null {
    const devid = deviceIdOf(this.unit.sources, source);
    return devid === null ? null : this.interrupt(devid, devid, address >>> 0, data >>> 0);
  }

  /** Whether an IOAPIC or HPET is wired to this unit (has a special entry). */
  hasSource(source: RequestSource): boolean {
    return deviceIdOf(this.unit.sources, source) !== null;
  }

  private interrupt(devid: number, sid: number, address: number, data: number): TranslateResult {
    const r: MsiOutcome = this.interruptRemapping ? this.unit.remapMsi(devid, address, data) : { kind: "passed", address, data, event: 0, flags: 0 };
    if (r.kind === "fault") return { ok: false, kind: "interrupt", reason: r.event, reasonName: eventName(r.event), index: r.index ?? 0 };
    if (r.kind === "aborted") {
      return { ok: false, kind: "interrupt", reason: 0, reasonName: "target abort (the device table entry blocks this interrupt)", index: r.index ?? 0 };
    }
    const remapped = r.kind === "remapped";
    const irq = decodeCompatMsi(r.address, r.data);
    const message: InterruptMessage = { addressLo: r.address >>> 0, addressHi: 0, data: r.data >>> 0, origin: "device", unit: this.name, sid, irq, remapped };
    this.sink(message);
    const msi = { address: r.address >>> 0, addressHi: 0, data: r.data >>> 0 };
    return { ok: true, kind: "interrupt", remap: { ok: true, irq, msi, remapped, ...(r.index !== undefined ? { index: r.index } : {}) }, message };
  }
}
