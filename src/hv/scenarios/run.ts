/**
 * What every scenario shares: the typed result a run produces (rendered as text and as --json), a booted host
 * with a bus monitor that finishes a run by reading back faults, interrupts and logs, and the q35 layout check.
 */
import { IommuError } from "../../core/errors.js";
import { hex } from "../../core/hex.js";
import { formatRequesterId } from "../../core/pci.js";
import { iommuKind, normalizeMachineConfig, type MachineConfigInput } from "../../hw/machine-config.js";
import { Machine } from "../../hw/machine.js";
import { machinePreset } from "../../hw/machine-presets.js";
import { iommuCmdline } from "../../os/cmdline.js";
import { formatLine } from "../../os/log.js";
import { Hypervisor, MiB, type HypervisorOptions } from "../hypervisor.js";
import { describeDelivery } from "../interrupts.js";
import { Monitor, type RequestRecord } from "../monitor.js";
import { DeviceFirmware, GuestNicDriver, NicModel } from "../nic.js";
import type { Vm } from "../vm.js";

export const PAGE = 4096;
export const MS = 1e6;

export interface ScenarioOptions {
  /** Machine preset or configuration for the host; default q35. */
  machine?: string | MachineConfigInput;
}

export interface ScenarioFault {
  unit: string;
  /** Where the host read it: a VT-d fault record or an AMD-Vi event log entry. */
  origin: "vtd-fault-record" | "amdvi-event";
  /** Requester id the record names ("00:02.0"). */
  source: string;
  /** "DMA Write", "DMA Read", "INTR-REMAP", or the AMD-Vi event name of an event that is not a page fault. */
  type: string;
  /** Faulting page (DMA) or interrupt index (remapping). */
  addr: string;
  reason: string;
  name: string;
  text: string;
  /** The PASID the faulting request carried (VT-d scalable mode), when the record has one. */
  pasid?: number;
}

export interface ScenarioInterrupt {
  ns: number;
  source: string;
  remapped: boolean;
  /** Posted into a vCPU's descriptor (CAP.PI) rather than remapped to a host vector. */
  posted: boolean;
  vector: string;
  cpu: number;
  to: string;
}

export interface ScenarioRun {
  label: string;
  settings: Record<string, string | boolean>;
  /** What the hypervisor and the scenario did, in order (simulated time, ns). */
  steps: { ns: number; text: string }[];
  requests: RequestRecord[];
  faults: ScenarioFault[];
  /**
   * Fault accounting of the remapping units: recorded, overflowed, collapsed into a pending record (VT-d fault
   * recording registers), or events written and dropped because the event log was full (AMD-Vi).
   */
  faultRecording: { recorded: number; overflowed: number; collapsed: number };
  interrupts: ScenarioInterrupt[];
  /** The host kernel's log lines the run produced (DMAR fault reports, warnings). */
  hostLog: string[];
  numbers: Record<string, number | string | boolean>;
  verdict: { protected: boolean; summary: string };
}

export interface ScenarioReport {
  name: string;
  title: string;
  runs: ScenarioRun[];
}

export interface Scenario {
  name: string;
  title: string;
  summary: string;
  run(opts: ScenarioOptions): ScenarioRun[];
}

/** Counters of work done: host pages free, in the VM page pool and mapped in VM containers, table walks, translations, invalidation descriptors, device requests and bytes. */
export interface Work {
  hostFree: number;
  pooled: number;
  mapped: number;
  walks: number;
  translations: number;
  descriptors: number;
  requests: number;
  bytes: number;
}

/**
 * The time each unit of work costs in the simulation (a cost model, not a measurement): a host page allocated, freed,
 * pooled or mapped (its entry written), a page-table walk (4 dependent memory reads), an IOTLB lookup, an invalidation
 * descriptor fetched and executed with its wait, a device request's bus latency, and each byte at 4 GB/s.
 */
export const WORK_COST_NS = { page: 20, walk: 360, translation: 5, descriptor: 1000, request: 300, byte: 0.25 } as const;

export function workCostNs(a: Work, b: Work): number {
  const c = WORK_COST_NS;
  const ns =
    (Math.abs(b.hostFree - a.hostFree) + Math.abs(b.pooled - a.pooled) + Math.abs(b.mapped - a.mapped)) * c.page +
    (b.walks - a.walks) * c.walk +
    (b.translations - a.translations) * c.translation +
    (b.descriptors - a.descriptors) * c.descriptor +
    (b.requests - a.requests) * c.request +
    (b.bytes - a.bytes) * c.byte;
  return Math.round(ns);
}

/** A booted host with a bus monitor, and where its logs stood when the scenario began. */
export class Run {
  readonly hv: Hypervisor;
  readonly mon: Monitor;
  private readonly faults0: number;
  private readonly log0: number;
  private readonly deliveries0: number;
  private readonly stats0: { recorded: number; overflowed: number; collapsed: number };
  /** The work counters at the last step: time is charged for what was done since. */
  private charged: Work;

  constructor(
    readonly label: string,
    readonly settings: Record<string, string | boolean>,
    opts: HypervisorOptions,
  ) {
    this.hv = Hypervisor.boot(opts);
    checkMachine(this.hv);
    this.mon = new Monitor(this.hv);
    this.faults0 = this.hv.host.faultCount;
    this.log0 = this.hv.bootLogLines;
    this.deliveries0 = this.hv.router.deliveries.length;
    this.stats0 = this.hv.faultCounters();
    this.charged = this.work();
    this.hv.beforeLog = () => this.charge();
  }

  /** What the host, the remapping units and the devices have done so far, as counters the model keeps. */
  work(): Work {
    let mapped = 0;
    for (const vm of this.hv.vms) mapped += vm.container?.mappedPages ?? 0;
    const w: Work = { hostFree: this.hv.host.pages.free_pages, pooled: this.hv.pool.pooled, mapped, walks: 0, translations: 0, descriptors: 0, requests: this.mon.requests.length, bytes: 0 };
    for (const u of this.hv.machine.iommus) {
      if (u.kind === "amd-vi") {
        const t = u.unit.iotlb;
        w.walks += t.misses;
        w.translations += t.hits + t.misses;
        for (const n of u.unit.commands.executed.values()) w.descriptors += n;
        continue;
      }
      const st = u.unit.stats();
      w.walks += st.walks;
      w.translations += st.translations;
      w.descriptors += st.invalidation.descriptors;
    }
    for (const q of this.mon.requests) w.bytes += q.length;
    return w;
  }

  /** Advances simulated time by the cost of the work done since the last charge (WORK_COST_NS); returns ns. */
  charge(): number {
    const now = this.work();
    const ns = workCostNs(this.charged, now);
    this.charged = now;
    if (ns > 0) this.hv.advance(ns);
    return ns;
  }

  step(text: string): void {
    this.hv.log(text);
  }

  /** Faults the host kernel has read (VT-d fault records, AMD-Vi events) since the run began, naming `bdf`. */
  faultsNaming(bdf: string): number {
    const rid = this.hv.dev(bdf).rid;
    return this.hv.host.faultsSince(this.faults0).filter((f) => f.sourceId === rid).length;
  }

  /** What the host reads a fault from on this machine: "fault record" (VT-d) or "event log entry" (AMD-Vi). */
  get faultWord(): string {
    return this.hv.machine.iommuKind === "amd-vi" ? "event log entry" : "fault record";
  }

  /** A NIC model on the function at `bdf`, issuing its requests through the monitor. */
  nic(bdf: string): NicModel {
    const d = this.hv.dev(bdf);
    const nic = new NicModel(this.mon.port(bdf), () => (this.hv.port.configRead(d.rid, 0x04, 2) & 0x4) !== 0);
    this.hv.setModel(bdf, nic);
    return nic;
  }

  firmware(bdf: string): DeviceFirmware {
    return new DeviceFirmware(this.mon.port(bdf), this.hv.host.clock);
  }

  finish(numbers: ScenarioRun["numbers"], verdict: ScenarioRun["verdict"]): ScenarioRun {
    this.charge();
    const hv = this.hv;
    const s = this.hv.faultCounters();
    return {
      label: this.label,
      settings: this.settings,
      steps: hv.events.map((e) => ({ ns: e.ns, text: e.text })),
      requests: [...this.mon.requests],
      faults: hv.host.faultsSince(this.faults0).map((f) => ({
        unit: f.unit,
        origin: f.origin,
        source: formatRequesterId(f.sourceId),
        type: f.type,
        addr: hex(f.addr),
        reason: hex(f.reason, 2),
        name: f.name,
        text: f.text,
        ...(f.pasid !== null ? { pasid: f.pasid } : {}),
      })),
      faultRecording: { recorded: s.recorded - this.stats0.recorded, overflowed: s.overflowed - this.stats0.overflowed, collapsed: s.collapsed - this.stats0.collapsed },
      interrupts: hv.router.deliveries
        .slice(this.deliveries0)
        .filter((d) => d.origin === "device")
        .map((d) => ({ ns: d.ns, source: d.sid === null ? "-" : formatRequesterId(d.sid), remapped: d.remapped, posted: d.posted, vector: hex(d.vector, 2), cpu: d.apic, to: describeDelivery(d).split(" -> ")[1] ?? "" })),
      hostLog: hv.host.log.lines.slice(this.log0).map(formatLine),
      numbers,
      verdict,
    };
  }
}

/** The IOMMU kind of the machine a scenario runs on (its runs and command lines depend on it). */
export function machineIommuKind(m: ScenarioOptions["machine"]): "vtd" | "amd-vi" | null {
  const input = m === undefined ? machinePreset("q35") : typeof m === "string" ? machinePreset(m) : m;
  if (input === null) return Machine.load(m as string).iommuKind;
  return iommuKind(normalizeMachineConfig(input).config);
}

/** The host command line of a run with the IOMMU on or off on `machine`, and `extra` options. */
export function scenarioCmdline(machine: ScenarioOptions["machine"], on: boolean, extra?: string): string {
  return iommuCmdline(machineIommuKind(machine), on, extra);
}

export const NIC = "00:02.0";
export const OTHER = "00:04.0";

/** The scenarios need q35's layout: an IOMMU (VT-d or AMD-Vi), a NIC-like function at 00:02.0 and another device at 00:04.0. */
export function checkMachine(hv: Hypervisor): void {
  const m = hv.machine;
  const bad = (why: string) =>
    new IommuError("SCENARIO_MACHINE", `machine '${m.config.name}' does not fit the scenarios: ${why}`, { hint: "run them on q35 (the default) or a machine with the same devices" });
  if (m.config.iommus.length === 0) throw bad("it has no IOMMU");
  const nic = m.topology.byBdf(NIC);
  if (nic === undefined || (nic.type !== "endpoint" && nic.type !== "pci") || (nic.bars[0]?.size ?? 0) < 0x4000 || nic.bars[0]?.kind === "io") {
    throw bad(`${NIC} must be a device with a memory BAR 0 of at least 16 KiB (the NIC's registers)`);
  }
  const other = m.topology.byBdf(OTHER);
  if (other === undefined || (other.type !== "endpoint" && other.type !== "pci")) throw bad(`${OTHER} must be a device`);
}

/** A 64-byte frame with a recognisable pattern. */
export function frame(seed: number, n = 64): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (seed + i * 7) & 0xff);
}

export function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/**
 * What the host read about `blocked` blocked requests: a fault report for each, fewer, or none; `word` names the
 * report as the machine's IOMMU keeps it ("fault record", "event log entry").
 */
export function faultPhrase(records: number, blocked: number, bdf: string, word = "fault record"): string {
  const plural = word.endsWith("y") ? word.slice(0, -1) + "ies" : word + "s";
  if (records === 0) return `but the host read no ${word}`;
  const a = /^[aeiou]/.test(word) ? "an" : "a";
  if (records === blocked) return blocked === 1 ? `with ${a} ${word} naming ${bdf}` : `each with ${a} ${word} naming ${bdf}`;
  return `${records} ${records === 1 ? word : plural} naming ${bdf} read by the host`;
}

export function countDiff(a: Uint8Array, b: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}

/** A VM with the NIC assigned, its guest kernel booted and its NIC driver up. */
export function vmWithNic(r: Run, name: string, memory = 32 * MiB, vcpus = 2): { vm: Vm; nic: NicModel; drv: GuestNicDriver } {
  const nic = r.nic(NIC);
  const vm = r.hv.createVm({ name, memory, vcpus });
  r.hv.bindVfio(NIC);
  r.hv.assign(vm, NIC);
  vm.boot();
  r.step(`${name}: guest kernel booted; it found the NIC at guest 00:03.0 and programmed MSI-X with its own vectors and APIC ids`);
  const drv = new GuestNicDriver(vm, "00:03.0");
  r.step(`${name}: guest NIC driver: RX ring at GPA ${hex(drv.rxRing)}, TX ring at GPA ${hex(drv.txRing)}, ${drv.ringSize} receive buffers from GPA ${hex(drv.rxBuffers[0]!)}`);
  return { vm, nic, drv };
}
