/**
 * A bus analyzer for the scenarios: every request a device issues (DMA read, DMA write, MSI), what the IOMMU
 * made of it (translations page by page, or the fault reason and whether it was recorded), where the bytes
 * landed (whose memory the host page belongs to now), and where an interrupt went. Device models issue their
 * requests through a DmaPort from here; the hardware path is the same (machine → platform → VT-d unit).
 */
import { hex } from "../core/hex.js";
import { formatRequesterId } from "../core/pci.js";
import type { DmaOutcome } from "../hw/platform.js";
import { faultReasonDescription } from "../spec/vtd/faults.js";
import type { TranslateResult } from "../hw/vtd/unit.js";
import type { RequestAttributes } from "../hw/vtd/request.js";
import { describeDelivery } from "./interrupts.js";
import type { Hypervisor } from "./hypervisor.js";

export interface Translation {
  iova: string;
  hpa: string;
  length: number;
  /** Whose memory the host page is: "vm1 GPA 0x…", "host memory", … */
  landed: string;
}

export interface FaultInfo {
  /** "0x05" */
  reason: string;
  /** "WRITE" */
  name: string;
  description: string;
  /** False when the fault did not make it into a fault recording register (overflow, collapse, FPD). */
  recorded: boolean;
  /** Faulting page (DMA) or interrupt index (interrupt remapping). */
  addr?: string;
  index?: number;
}

export interface RequestRecord {
  seq: number;
  /** Simulated time, ns. */
  ns: number;
  /** Host BDF of the device ("00:02.0") and the requester id its requests carry at the root complex. */
  device: string;
  sid: string;
  /** Who the device belonged to when it issued the request. */
  owner: string;
  op: "read" | "write" | "msi";
  /** The PASID prefix the request carried (shared virtual addressing), if any; with `privileged` when supervisor. */
  pasid?: number;
  privileged?: boolean;
  addr: string;
  length: number;
  /** MSI data. */
  data?: string;
  /** Why the device issued it ("RX descriptor fetch", "attack: write vm2's page"). */
  purpose: string;
  outcome: "ok" | "blocked" | "unsupported";
  translations: Translation[];
  fault?: FaultInfo;
  /** Interrupt requests: how they were handled and where they went. */
  interrupt?: { remapped: boolean; irte: number | null; deliveredTo: string[] };
}

/** A device's side of the bus, as device models use it. */
export interface DmaPort {
  readonly requesterId: number;
  /** DMA; `attrs` adds a PASID prefix. */
  read(addr: number | bigint, length: number, purpose: string, attrs?: RequestAttributes): DmaOutcome;
  write(addr: number | bigint, data: Uint8Array, purpose: string, attrs?: RequestAttributes): DmaOutcome;
  /** A raw interrupt message (DWORD write to 0xFEEx_xxxx). */
  msi(address: number, data: number, purpose: string): TranslateResult;
  /** MSI / MSI-X vector `index` as programmed; null when not enabled. */
  signal(index: number, purpose: string): TranslateResult | null;
}

export class Monitor {
  readonly requests: RequestRecord[] = [];
  private seq = 0;

  constructor(private readonly hv: Hypervisor) {}

  private owner(bdf: string): string {
    const d = this.hv.dev(bdf);
    const vm = this.hv.vms.find((v) => v.devices.some((x) => x.dev === d));
    if (vm !== undefined) return vm.name;
    return d.driver === "vfio-pci" ? "vfio-pci (no VM)" : `host (${d.driver ?? "no driver"})`;
  }

  private translations(segments: readonly { iova: bigint; hpa: bigint; length: number }[]): Translation[] {
    return segments.map((s) => ({ iova: hex(s.iova), hpa: hex(s.hpa), length: s.length, landed: this.hv.describeHpa(Number(s.hpa)) }));
  }

  private base(bdf: string, op: RequestRecord["op"], addr: number | bigint, length: number, purpose: string, attrs?: RequestAttributes): RequestRecord {
    const bus = this.hv.machine.device(bdf);
    const prefix = attrs?.pasid === undefined ? {} : { pasid: attrs.pasid, ...(attrs.privileged === true ? { privileged: true } : {}) };
    return {
      seq: ++this.seq,
      ns: this.hv.now,
      device: bdf,
      sid: formatRequesterId(bus.requesterId),
      owner: this.owner(bdf),
      op,
      ...prefix,
      addr: hex(addr),
      length,
      purpose,
      outcome: "ok",
      translations: [],
    };
  }

  private dmaRecord(r: RequestRecord, o: DmaOutcome): void {
    if (o.ok) {
      r.translations = this.translations(o.segments);
      return;
    }
    const t = o.result;
    if (t.kind === "dma" && !t.ok) {
      r.outcome = "blocked";
      r.translations = this.translations(t.segments);
      r.fault = { reason: hex(t.reason, 2), name: t.reasonName, description: faultReasonDescription(t.reason), recorded: t.recorded, addr: hex(t.faultAddr) };
    } else if (t.kind === "interrupt" && !t.ok) {
      r.outcome = "blocked";
      r.fault = { reason: hex(t.reason, 2), name: t.reasonName, description: faultReasonDescription(t.reason), recorded: true, index: t.index };
    } else {
      r.outcome = "unsupported";
    }
  }

  private interruptRecord(r: RequestRecord, t: TranslateResult, before: number): void {
    const delivered = this.hv.router.deliveries.filter((d) => d.seq > before).map(describeDelivery);
    if (t.kind === "interrupt" && t.ok) {
      r.interrupt = { remapped: t.remap.remapped, irte: t.remap.index ?? null, deliveredTo: delivered };
    } else if (t.kind === "interrupt") {
      r.outcome = "blocked";
      r.fault = { reason: hex(t.reason, 2), name: t.reasonName, description: faultReasonDescription(t.reason), recorded: true, index: t.index };
      r.interrupt = { remapped: false, irte: null, deliveredTo: delivered };
    } else if (t.kind === "dma") {
      this.dmaRecord(r, t.ok ? { ok: true, segments: t.segments, unsupportedBytes: 0 } : { ok: false, result: t });
    } else {
      r.outcome = "unsupported";
    }
  }

  private lastDelivery(): number {
    const d = this.hv.router.deliveries;
    return d[d.length - 1]?.seq ?? 0;
  }

  private push(r: RequestRecord): void {
    this.requests.push(r);
    if (this.requests.length > 10_000) this.requests.shift();
  }

  /** The monitored bus port of the device at host `bdf`. */
  port(bdf: string): DmaPort {
    const bus = this.hv.machine.device(bdf);
    const platform = this.hv.machine.platform;
    return {
      requesterId: bus.requesterId,
      read: (addr, length, purpose, attrs) => {
        const r = this.base(bdf, "read", addr, length, purpose, attrs);
        const o = bus.read(addr, length, attrs);
        this.dmaRecord(r, o);
        this.push(r);
        return o;
      },
      write: (addr, data, purpose, attrs) => {
        const r = this.base(bdf, "write", addr, data.length, purpose, attrs);
        const before = this.lastDelivery();
        const o = bus.write(addr, data, attrs);
        if (o.ok || o.result.kind !== "interrupt") this.dmaRecord(r, o);
        else this.interruptRecord(r, o.result, before);
        this.push(r);
        return o;
      },
      msi: (address, data, purpose) => {
        const r = this.base(bdf, "msi", address, 4, purpose);
        r.data = hex(data >>> 0);
        const before = this.lastDelivery();
        const t = platform.msi(bus.requesterId, address, data);
        this.interruptRecord(r, t, before);
        this.push(r);
        return t;
      },
      signal: (index, purpose) => {
        const m = this.hv.machine.msiMessage(bus.fn, index);
        if (m === null) return null;
        const r = this.base(bdf, "msi", m.address, 4, purpose);
        r.data = hex(m.data >>> 0);
        const before = this.lastDelivery();
        const t = platform.msi(bus.requesterId, m.address, m.data);
        this.interruptRecord(r, t, before);
        this.push(r);
        return t;
      },
    };
  }
}
