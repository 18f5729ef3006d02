/**
 * Scenarios: device assignment on the simulated machine, and the attacks an IOMMU stops (Wojtczuk and
 * Rutkowska, "Following the White Rabbit: Software attacks against Intel VT-d technology", 2011; DMA that
 * outlives its owner). Each scenario runs twice or more on a freshly booted host, once with the protection and
 * once without (or with the hypervisor making the mistake), and every number in the report is read back from
 * the simulation: the requests devices issued, what the IOMMU translated or blocked, the fault records the host
 * kernel read from the fault recording registers, the interrupts the router delivered, and the bytes in memory.
 *
 *   passthrough    a NIC in a VM does DMA with guest-physical addresses; the data lands in the VM's host pages
 *   isolation      a device in VM1 targets VM2's and the host's memory
 *   msi-injection  a device writes arbitrary interrupt messages (0xFEEx_xxxx)
 *   deferred-dma   a device reassigned from a destroyed VM issues a delayed write
 *   lazy-window    memory taken from a VM while the IOTLB still caches its translation
 */
import { IommuError } from "../core/errors.js";
import { hex } from "../core/hex.js";
import { formatRequesterId } from "../core/pci.js";
import type { MachineConfigInput } from "../hw/machine-config.js";
import { DMAR_FEADDR_REG, DMAR_FEDATA_REG, faultReasonName } from "../hw/vtd/spec.js";
import { encodeRemappableMsi } from "../hw/vtd/intremap-format.js";
import { formatLine } from "../os/log.js";

import { Hypervisor, MiB, type HypervisorOptions } from "./hypervisor.js";
import { compatMsi, describeDelivery } from "./interrupts.js";
import { Monitor, type RequestRecord } from "./monitor.js";
import { DeviceFirmware, GuestNicDriver, NicModel } from "./nic.js";
import type { Vm } from "./vm.js";

const PAGE = 4096;
const MS = 1e6;

export interface ScenarioOptions {
  /** Machine preset or configuration for the host; default q35. */
  machine?: string | MachineConfigInput;
}

export interface ScenarioFault {
  unit: string;
  /** Requester id the record names ("00:02.0"). */
  source: string;
  /** "DMA Write", "DMA Read", "INTR-REMAP". */
  type: string;
  /** Faulting page (DMA) or interrupt index (remapping). */
  addr: string;
  reason: string;
  name: string;
  text: string;
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
  /** Fault-record accounting of the remapping units: recorded, overflowed, collapsed into a pending record. */
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

interface Scenario {
  name: string;
  title: string;
  summary: string;
  run(opts: ScenarioOptions): ScenarioRun[];
}

/** A booted host with a bus monitor, and where its logs stood when the scenario began. */
class Run {
  readonly hv: Hypervisor;
  readonly mon: Monitor;
  private readonly faults0: number;
  private readonly log0: number;
  private readonly deliveries0: number;
  private readonly stats0: { recorded: number; overflowed: number; collapsed: number };

  constructor(
    readonly label: string,
    readonly settings: Record<string, string | boolean>,
    opts: HypervisorOptions,
  ) {
    this.hv = Hypervisor.boot(opts);
    checkMachine(this.hv);
    this.mon = new Monitor(this.hv);
    this.faults0 = this.hv.host.driver.faults.length;
    this.log0 = this.hv.bootLogLines;
    this.deliveries0 = this.hv.router.deliveries.length;
    this.stats0 = this.faultStats();
  }

  private faultStats(): { recorded: number; overflowed: number; collapsed: number } {
    let recorded = 0;
    let overflowed = 0;
    let collapsed = 0;
    for (const u of this.hv.machine.units) {
      const s = u.unit.faults.stats;
      recorded += s.recorded;
      overflowed += s.overflowed;
      collapsed += s.collapsed;
    }
    return { recorded, overflowed, collapsed };
  }

  step(text: string): void {
    this.hv.log(text);
  }

  /** Fault records the host kernel has read (through the fault recording registers) since the run began, naming `bdf`. */
  faultsNaming(bdf: string): number {
    const rid = this.hv.dev(bdf).rid;
    return this.hv.host.driver.faults.slice(this.faults0).filter((f) => f.sourceId === rid).length;
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
    const hv = this.hv;
    const s = this.faultStats();
    return {
      label: this.label,
      settings: this.settings,
      steps: hv.events.map((e) => ({ ns: e.ns, text: e.text })),
      requests: [...this.mon.requests],
      faults: hv.host.driver.faults.slice(this.faults0).map((f) => ({
        unit: f.unit,
        source: formatRequesterId(f.sourceId),
        type: f.type,
        addr: hex(f.addr),
        reason: hex(f.reason, 2),
        name: faultReasonName(f.reason),
        text: f.reasonText,
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

const NIC = "00:02.0";
const OTHER = "00:04.0";

/** The scenarios need q35's layout: a VT-d unit, a NIC-like function at 00:02.0 and another device at 00:04.0. */
function checkMachine(hv: Hypervisor): void {
  const m = hv.machine;
  const bad = (why: string) =>
    new IommuError("SCENARIO_MACHINE", `machine '${m.config.name}' does not fit the scenarios: ${why}`, { hint: "run them on q35 (the default) or a machine with the same devices" });
  if (m.config.iommus.length === 0) throw bad("it has no VT-d unit");
  const nic = m.topology.byBdf(NIC);
  if (nic === undefined || (nic.type !== "endpoint" && nic.type !== "pci") || (nic.bars[0]?.size ?? 0) < 0x4000 || nic.bars[0]?.kind === "io") {
    throw bad(`${NIC} must be a device with a memory BAR 0 of at least 16 KiB (the NIC's registers)`);
  }
  const other = m.topology.byBdf(OTHER);
  if (other === undefined || (other.type !== "endpoint" && other.type !== "pci")) throw bad(`${OTHER} must be a device`);
}

/** A 64-byte frame with a recognisable pattern. */
function frame(seed: number, n = 64): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (seed + i * 7) & 0xff);
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** What the host read about `blocked` blocked requests: a fault record for each, fewer, or none. */
function faultPhrase(records: number, blocked: number, bdf: string): string {
  if (records === 0) return "but the host read no fault record";
  if (records === blocked) return blocked === 1 ? `with a fault record naming ${bdf}` : `each with a fault record naming ${bdf}`;
  return `${plural(records, "fault record")} naming ${bdf} read by the host`;
}

function countDiff(a: Uint8Array, b: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}

/** A VM with the NIC assigned, its guest kernel booted and its NIC driver up. */
function vmWithNic(r: Run, name: string, memory = 32 * MiB, vcpus = 2): { vm: Vm; nic: NicModel; drv: GuestNicDriver } {
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

// ---- passthrough ----

function passthroughRun(opts: ScenarioOptions, iommu: boolean): ScenarioRun {
  const r = new Run(
    iommu ? "IOMMU on: VFIO type1, unmanaged domain" : "no IOMMU: vfio no-IOMMU mode",
    { iommu, cmdline: iommu ? "intel_iommu=on" : "intel_iommu=off" },
    { machine: opts.machine, cmdline: iommu ? "intel_iommu=on" : "intel_iommu=off", noiommu: !iommu },
  );
  const { hv } = r;
  const { vm, nic, drv } = vmWithNic(r, "vm1");
  const buf = drv.rxBuffers[0]!;
  const bufHpa = vm.hpaOf(buf)!;
  // What sits at the host address numerically equal to the GPA (host memory, not the guest's).
  const f1 = frame(0x40);
  r.step(`a 64-byte frame arrives at the NIC`);
  nic.receive(f1);
  const got = drv.poll();
  const guestSaw = got.length === 1 && same(got[0]!.data, f1);
  const hostPageHolds = same(hv.machine.memory.read(bufHpa, f1.length), f1);
  const dataReq = r.mon.requests.find((q) => q.purpose === "RX frame data");
  const landed = dataReq?.translations.map((t) => `${t.hpa} (${t.landed})`).join(", ") ?? "nowhere";
  r.step(`the guest driver polled its ring: ${got.length} frame(s)${guestSaw ? ", bytes equal to what arrived" : ""}`);
  const v0 = vm.vcpus[0]!;
  const v1 = vm.vcpus[1]!;
  const before1 = v1.received.length;
  drv.setAffinity(0, v1);
  r.step(`the guest moves the RX interrupt (MSI-X 0) to vCPU 1`);
  nic.receive(frame(0x80));
  drv.poll();
  const rxOnVcpu1 = v1.received.length - before1;
  const movedOk = rxOnVcpu1 === 1;
  const out = frame(0xc0, 60);
  drv.send(out);
  const sentOk = nic.wire.length === 1 && same(nic.wire[0]!, out);
  r.step(`the guest transmits a 60-byte frame: ${sentOk ? "the device put the guest's bytes on the wire" : `the wire got ${nic.wire[0]?.length ?? 0} bytes that are not the guest's`}`);
  const rx0 = vm.devices[0]!.hostVectors().find((h) => h.index === 0);
  const ok = guestSaw && hostPageHolds && movedOk;
  // Bytes the device wrote into memory that is neither this VM's nor free: the host's own.
  let hostBytes = 0;
  for (const q of r.mon.requests) {
    if (q.op !== "write" || q.outcome !== "ok") continue;
    for (const t of q.translations) if (t.landed === "host memory") hostBytes += t.length;
  }
  return r.finish(
    {
      bufferGpa: hex(buf),
      bufferHpa: hex(bufHpa),
      frameLandedAt: landed,
      guestReceivedFrame: guestSaw,
      vmHostPageHoldsFrame: hostPageHolds,
      bytesWrittenIntoHostMemory: hostBytes,
      rxInterruptsVcpu0: v0.received.length,
      rxInterruptsVcpu1AfterMove: rxOnVcpu1,
      rxIrte: rx0?.irte ?? "none",
      rxHostVector: rx0 === undefined ? "none" : `${hex(rx0.vector, 2)} on CPU ${rx0.apic}`,
      transmittedGuestFrame: sentOk,
      dmaErrors: nic.stats.dmaErrors,
    },
    ok
      ? {
          protected: true,
          summary: `the device used GPA ${hex(buf)}; the IOMMU sent the frame to host page ${hex(bufHpa)}, the VM's; the guest got it, its interrupt reached vCPU ${v0.index}, then vCPU ${v1.index} after the guest moved it`,
        }
      : {
          protected: false,
          summary: `the device used the guest's addresses as host addresses: the frame went to ${landed}, the guest received ${got.length} frame(s), and the device wrote ${hostBytes} bytes into the host's memory`,
        },
  );
}

// ---- isolation ----

function isolationRun(opts: ScenarioOptions, iommu: boolean): ScenarioRun {
  const r = new Run(
    iommu ? "IOMMU on" : "no IOMMU: vfio no-IOMMU mode",
    { iommu, cmdline: iommu ? "intel_iommu=on" : "intel_iommu=off" },
    { machine: opts.machine, cmdline: iommu ? "intel_iommu=on" : "intel_iommu=off", noiommu: !iommu },
  );
  const { hv } = r;
  const mem = hv.machine.memory;
  const vm1 = hv.createVm({ name: "vm1", memory: 32 * MiB });
  const vm2 = hv.createVm({ name: "vm2", memory: 32 * MiB });
  hv.bindVfio(NIC);
  hv.bindVfio(OTHER);
  hv.assign(vm1, NIC);
  hv.assign(vm2, OTHER);
  const fw = r.firmware(NIC);
  // vm2 keeps a secret at GPA 0x1800000; the host kernel keeps one in a page of its own.
  const secretGpa = 0x1800000;
  vm2.ram.fill(secretGpa, PAGE, 0x5a);
  const vm2Hpa = vm2.hpaOf(secretGpa)!;
  const hostPage = hv.host.pages.alloc(1);
  mem.fill(hostPage, PAGE, 0xa5);
  const vm1Same = vm1.hpaOf(secretGpa)!;
  vm1.ram.fill(secretGpa, PAGE, 0x11);
  const before = { vm2: mem.read(vm2Hpa, PAGE), host: mem.read(hostPage, PAGE), vm1: mem.read(vm1Same, PAGE) };
  r.step(`vm2 keeps a secret at GPA ${hex(secretGpa)} (host page ${hex(vm2Hpa)}); the host kernel keeps one at ${hex(hostPage)}; the attacker in vm1 controls the NIC's firmware`);
  const evil = new Uint8Array(PAGE).fill(0xee);
  const attacks: { what: string; ok: boolean }[] = [];
  const w1 = fw.write(vm2Hpa, evil, `attack: write vm2's page (host address ${hex(vm2Hpa)})`);
  attacks.push({ what: "write vm2's page", ok: w1.ok });
  const rd = fw.read(hostPage, 64, `attack: read the host kernel's page ${hex(hostPage)}`);
  const leaked = rd.ok && rd.data !== undefined && rd.data.every((b) => b === 0xa5);
  attacks.push({ what: "read the host's page", ok: rd.ok });
  const w2 = fw.write(hostPage, evil, `attack: write the host kernel's page ${hex(hostPage)}`);
  attacks.push({ what: "write the host's page", ok: w2.ok });
  let rootHit = "none";
  const unit = hv.host.driver.units[0];
  if (iommu && unit !== undefined) {
    const w3 = fw.write(unit.rootTable, evil.subarray(0, 16), `attack: overwrite the IOMMU's root table at ${hex(unit.rootTable)}`);
    attacks.push({ what: "overwrite the IOMMU root table", ok: w3.ok });
    rootHit = w3.ok ? "landed" : "blocked";
  }
  const w4 = fw.write(secretGpa, evil.subarray(0, 64), `write GPA ${hex(secretGpa)}, the same number as vm2's secret, in vm1's own space`);
  const after = { vm2: mem.read(vm2Hpa, PAGE), host: mem.read(hostPage, PAGE), vm1: mem.read(vm1Same, PAGE) };
  const vm2Changed = countDiff(before.vm2, after.vm2);
  const hostChanged = countDiff(before.host, after.host);
  const vm1Changed = countDiff(before.vm1, after.vm1);
  const blocked = attacks.filter((a) => !a.ok).length;
  // An attack address that happens to be one of vm1's own GPAs reaches vm1's own page: no harm to anyone else.
  const own = r.mon.requests.filter((q) => q.purpose.startsWith("attack") && q.outcome === "ok" && q.translations.every((t) => t.landed.startsWith("vm1 "))).length;
  const prot = vm2Changed === 0 && hostChanged === 0 && !leaked;
  return r.finish(
    {
      attacks: attacks.length,
      blocked,
      faultRecordsNamingTheNic: r.faultsNaming(NIC),
      reachedOnlyVm1sOwnMemory: own,
      vm2BytesChanged: vm2Changed,
      hostBytesChanged: hostChanged,
      hostSecretLeaked: leaked,
      rootTableOverwrite: rootHit,
      sameGpaWriteLandedIn: w4.ok ? (r.mon.requests[r.mon.requests.length - 1]?.translations[0]?.landed ?? "?") : "blocked",
      vm1BytesChangedAtThatGpa: vm1Changed,
    },
    prot
      ? {
          protected: true,
          summary: `${blocked} of ${attacks.length} attacks blocked, ${faultPhrase(r.faultsNaming(NIC), blocked, NIC)}${own > 0 ? ` (${own} addressed one of vm1's own GPAs and reached vm1's own page)` : ""}; vm2's and the host's memory unchanged; GPA ${hex(secretGpa)} in vm1's space is vm1's own page (${vm1Changed} bytes there changed), not vm2's`,
        }
      : {
          protected: false,
          summary: `${attacks.length - blocked} of ${attacks.length} attacks landed${unit === undefined ? " (without a remapping unit there is no root table to attack)" : ""}: ${vm2Changed} bytes of vm2's memory and ${hostChanged} of the host's overwritten, the host's secret ${leaked ? "read" : "not read"}`,
        },
  );
}

// ---- msi-injection ----

type MsiVariant = "no-remapping" | "remapping" | "remapping-cfi";

function msiRun(opts: ScenarioOptions, v: MsiVariant): ScenarioRun {
  const cmdline = v === "no-remapping" ? "intel_iommu=on intremap=off" : "intel_iommu=on";
  const label = v === "no-remapping" ? "no interrupt remapping (intremap=off)" : v === "remapping" ? "interrupt remapping, compatibility format blocked (CFI clear, as Linux sets it)" : "interrupt remapping with GCMD.CFI set";
  const r = new Run(label, { cmdline, cfi: v === "remapping-cfi" }, { machine: opts.machine, cmdline, compatibilityFormat: v === "remapping-cfi" });
  const { hv } = r;
  const { vm: vm1, nic, drv } = vmWithNic(r, "vm1");
  const vm2 = hv.createVm({ name: "vm2", memory: 32 * MiB, vcpus: 1 });
  hv.bindVfio(OTHER);
  hv.assign(vm2, OTHER);
  vm2.boot();
  r.step(`vm2: guest kernel booted with ${OTHER} (nvme) assigned; it programmed MSI-X`);
  nic.receive(frame(1));
  drv.poll();
  const legit = vm1.vcpus.reduce((n, c) => n + c.received.length, 0);
  r.step(`baseline: a frame for vm1 raised MSI-X 0; vm1 received ${legit} interrupt(s)`);
  const fw = r.firmware(NIC);
  const attackerSid = fw.port.requesterId;
  const u = hv.host.driver.units[0]!;
  // The host's DMAR fault interrupt, as the unit's registers hold it.
  const feAddr = hv.port.mmioRead32(u.base + DMAR_FEADDR_REG);
  const feVector = hv.port.mmioRead32(u.base + DMAR_FEDATA_REG) & 0xff;
  const feCpu = (feAddr >>> 12) & 0xff;
  const target = vm2.devices[0]!.hostVectors()[0];
  const seq0 = hv.router.deliveries[hv.router.deliveries.length - 1]?.seq ?? 0;
  // Each attack's outcome as the unit reported it: the fault (reason and name) when blocked, else where it went.
  const attacks: { name: string; fault: string | null; outcome: string }[] = [];
  const attack = (name: string, address: number, data: number) => {
    const t = fw.msi(address, data, `attack: ${name}`);
    const rec = r.mon.requests[r.mon.requests.length - 1];
    const fault = !t.ok && t.kind === "interrupt" ? `${hex(t.reason, 2)} ${t.reasonName}` : null;
    const outcome = fault !== null ? `blocked, fault ${fault}` : (rec?.interrupt?.deliveredTo.map((s) => s.split(" -> ")[1]).join("; ") ?? "?");
    attacks.push({ name, fault, outcome });
  };
  attack(`compatibility-format MSI with the host's DMAR fault vector ${hex(feVector, 2)} to CPU ${feCpu}`, compatMsi(feVector, feCpu).address, feVector);
  if (target !== undefined) {
    attack(`compatibility-format MSI with vm2's host vector ${hex(target.vector, 2)} to CPU ${target.apic}`, compatMsi(target.vector, target.apic).address, target.vector);
  }
  const free = u.irtNext + 100;
  const m1 = encodeRemappableMsi(free, 0);
  attack(`remappable MSI naming free table entry ${free}`, m1.address, m1.data);
  const m2 = encodeRemappableMsi(0xffff, 1);
  attack("remappable MSI with handle 0xffff + sub-handle 1 (index 0x10000)", m2.address, m2.data);
  if (target !== undefined && target.irte !== null) {
    const m3 = encodeRemappableMsi(target.irte, 0);
    attack(`remappable MSI naming vm2's table entry ${target.irte}`, m3.address, m3.data);
  }
  // Forged interrupts that reached a CPU: the router saw them arrive from the attacker's requester id.
  const forged = hv.router.deliveries.filter((d) => d.seq > seq0 && d.origin === "device" && d.sid === attackerSid);
  const hostHits = forged.filter((d) => d.target.kind === "host").length;
  const hostHandled = forged.filter((d) => d.target.kind === "host" && d.target.irq !== null).length;
  const vm2Hits = forged.filter((d) => d.target.kind === "vm" && d.target.vm === vm2.name).length;
  const delivered = attacks.filter((a) => a.fault === null).length;
  // After the attacks (counted once the forged ones are): does vm1's own interrupt still arrive?
  const before = vm1.vcpus.reduce((n, c) => n + c.received.length, 0);
  nic.receive(frame(2));
  drv.poll();
  const legitAfter = vm1.vcpus.reduce((n, c) => n + c.received.length, 0) - before;
  const prot = forged.length === 0;
  const numbers: ScenarioRun["numbers"] = {
    attacker: formatRequesterId(attackerSid),
    attacks: attacks.length,
    blocked: attacks.length - delivered,
    forgedInterruptsAtHost: hostHits,
    forgedInterruptsRunningAHostHandler: hostHandled,
    forgedInterruptsInjectedIntoVm2: vm2Hits,
    legitimateVm1Interrupts: legit,
    legitimateVm1InterruptsAfterAttacks: legitAfter,
  };
  attacks.forEach((a, i) => (numbers[`attack${i + 1}`] = `${a.name}: ${a.outcome}`));
  return r.finish(
    numbers,
    prot
      ? { protected: true, summary: `all ${attacks.length} forged interrupts blocked (${attacks.map((a) => a.fault).join(", ")}); the host's handlers and vm2 saw nothing; ${legitAfter > 0 ? "vm1's own interrupt still arrives after them" : "but vm1's own interrupt after them did not arrive"}` }
      : {
          protected: false,
          summary: `${delivered} of ${attacks.length} forged interrupts delivered: ${hostHits} reached the host (${hostHandled} ran a host handler, e.g. the DMAR fault handler for a fault that never happened), ${vm2Hits} ${vm2Hits === 1 ? "was" : "were"} injected into vm2 from a device it does not own`,
        },
  );
}

// ---- deferred-dma ----

function deferredRun(opts: ScenarioOptions, invalidate: boolean): ScenarioRun {
  const r = new Run(
    invalidate ? "strict teardown: reset, unmap + IOTLB invalidation, detach + context invalidation, then reuse" : "teardown that skips the IOTLB and context-cache invalidations",
    { invalidateOnTeardown: invalidate },
    { machine: opts.machine, invalidateOnTeardown: invalidate },
  );
  const { hv } = r;
  const { vm: vm1, nic, drv } = vmWithNic(r, "vm1", 32 * MiB, 1);
  nic.receive(frame(7));
  drv.poll();
  const target = drv.rxBuffers[0]!;
  const oldHpa = vm1.hpaOf(target)!;
  const fw = r.firmware(NIC);
  const payload = new Uint8Array(PAGE).fill(0xd1);
  let outcome: { ok: boolean; landed: string } = { ok: false, landed: "not issued" };
  const delay = 5 * MS;
  fw.writeLater(delay, target, payload, `delayed write armed by vm1 at GPA ${hex(target)}`, (o) => {
    const rec = r.mon.requests[r.mon.requests.length - 1];
    outcome = { ok: o.ok, landed: rec?.translations.map((t) => t.landed).join(", ") ?? "" };
  });
  r.step(`vm1 used its RX buffer at GPA ${hex(target)} (host page ${hex(oldHpa)}) and armed the NIC's firmware to write there again in ${delay / MS} ms`);
  hv.destroyVm(vm1);
  hv.advance(1 * MS);
  const vm2 = hv.createVm({ name: "vm2", memory: 16 * MiB });
  vm2.ram.fill(0, vm2.memory.size, 0x22);
  const owner = hv.describeHpa(oldHpa);
  r.step(`vm2 (16 MiB) created from the pool: vm1's old page ${hex(oldHpa)} is now ${owner}; vm2 filled its RAM with 0x22`);
  hv.advance(1 * MS);
  hv.assign(vm2, NIC);
  const did = vm2.container?.domain ? [...vm2.container.domain.dids.values()].join(",") : "none";
  r.step(`the NIC is reassigned to vm2 (domain id ${did}); GPA ${hex(target)} is beyond vm2's RAM`);
  const snapshot = hv.machine.memory.read(oldHpa, PAGE);
  hv.advance(5 * MS);
  const corrupted = countDiff(snapshot, hv.machine.memory.read(oldHpa, PAGE));
  const prot = !outcome.ok && corrupted === 0;
  return r.finish(
    {
      targetGpa: hex(target),
      vm1OldHpa: hex(oldHpa),
      oldPageNowBelongsTo: owner,
      vm2DomainId: did,
      delayedWriteBlocked: !outcome.ok,
      delayedWriteLandedIn: outcome.ok ? outcome.landed : "nowhere",
      vm2BytesCorrupted: corrupted,
      nicResets: nic.stats.resets,
    },
    prot
      ? { protected: true, summary: `the delayed write to GPA ${hex(target)} was blocked, ${faultPhrase(r.faultsNaming(NIC), 1, NIC)}: vm1's translations were gone before its pages were reused; vm2's memory unchanged` }
      : { protected: false, summary: `the delayed write used vm1's stale translation (cached under domain id ${did}, reused by vm2's domain) and landed in ${outcome.landed}: ${corrupted} bytes of vm2's memory overwritten` },
  );
}

// ---- lazy-window ----

function lazyRun(opts: ScenarioOptions, policy: "strict" | "lazy"): ScenarioRun {
  const r = new Run(
    policy === "strict" ? "strict unmap: IOTLB invalidated before the pages are reused" : "lazy unmap: IOTLB flushed by a flush-queue timer up to 10 ms later",
    { unmap: policy },
    { machine: opts.machine, unmap: policy },
  );
  const { hv } = r;
  const { vm: vm1, nic, drv } = vmWithNic(r, "vm1", 32 * MiB, 1);
  nic.receive(frame(3));
  // The buffer the device just wrote: its translation is in the IOTLB now.
  const target = drv.poll()[0]?.gpa ?? drv.rxBuffers[0]!;
  const region = Math.floor(target / MiB) * MiB;
  const fw = r.firmware(NIC);
  const t0 = hv.now;
  hv.balloon(vm1, region, MiB);
  const c = vm1.container!;
  const vm2 = hv.createVm({ name: "vm2", memory: 16 * MiB });
  vm2.ram.fill(0, vm2.memory.size, 0x22);
  r.step(`vm2 created at once; it got the ballooned pages back from the pool and filled its RAM with 0x22`);
  const probes = 20;
  let landed = 0;
  let lastLanded = -1;
  let firstBlocked = -1;
  for (let i = 1; i <= probes; i++) {
    fw.writeLater(i * MS, target, new Uint8Array(64).fill(i), `vm1's device keeps writing GPA ${hex(target)} (${i} ms after the unmap)`, (o) => {
      if (o.ok) {
        landed++;
        lastLanded = hv.now - t0;
      } else if (firstBlocked < 0) firstBlocked = hv.now - t0;
    });
  }
  r.step(`the device writes GPA ${hex(target)} every 1 ms for ${probes} ms`);
  hv.advance((probes + 1) * MS);
  // The window as observed: up to the last probe that still landed (0 when none did). The flush queue's own
  // record, where there is one, says when the deferred flush happened.
  const windowNs = lastLanded < 0 ? 0 : lastLanded;
  const flushedNs = c.lazyFlushes[c.lazyFlushes.length - 1]?.flushedNs;
  let vm2Corrupted = 0;
  const all = vm2.ram.read(0, vm2.memory.size);
  for (const b of all) if (b !== 0x22) vm2Corrupted++;
  return r.finish(
    {
      unmappedGpa: `${hex(region)}-${hex(region + MiB - 1)}`,
      staleWindowMs: windowNs / MS,
      deferredFlushMsAfterUnmap: flushedNs === undefined || flushedNs === null ? "none" : (flushedNs - t0) / MS,
      writesAfterUnmap: probes,
      writesLanded: landed,
      lastLandedMsAfterUnmap: lastLanded < 0 ? "none" : lastLanded / MS,
      firstBlockedMsAfterUnmap: firstBlocked < 0 ? "none" : firstBlocked / MS,
      vm2BytesCorrupted: vm2Corrupted,
      iotlbInvalidations: c.invalidations,
    },
    landed === 0
      ? { protected: true, summary: `the IOTLB was invalidated when the pages were unmapped: 0 of ${probes} writes landed, ${faultPhrase(r.faultsNaming(NIC), probes, NIC)}` }
      : { protected: false, summary: `the stale IOTLB entry was still used ${(windowNs / MS).toFixed(3)} ms after the unmap: ${landed} of ${probes} writes landed in vm2's memory (${vm2Corrupted} bytes) before the deferred flush` },
  );
}

export const SCENARIOS: readonly Scenario[] = [
  {
    name: "passthrough",
    title: "A NIC in a VM does DMA with guest-physical addresses",
    summary: "the data lands in the VM's host pages; interrupts reach the right vCPU",
    run: (o) => [passthroughRun(o, true), passthroughRun(o, false)],
  },
  {
    name: "isolation",
    title: "A device assigned to vm1 targets vm2's and the host's memory",
    summary: "blocked, and the fault records name the device",
    run: (o) => [isolationRun(o, true), isolationRun(o, false)],
  },
  {
    name: "msi-injection",
    title: "A device writes interrupt messages of its choosing (0xFEEx_xxxx)",
    summary: "without interrupt remapping the host and other VMs receive them",
    run: (o) => [msiRun(o, "no-remapping"), msiRun(o, "remapping"), msiRun(o, "remapping-cfi")],
  },
  {
    name: "deferred-dma",
    title: "A device reassigned from a destroyed VM issues a delayed write",
    summary: "blocked when teardown invalidates before pages are reused",
    run: (o) => [deferredRun(o, true), deferredRun(o, false)],
  },
  {
    name: "lazy-window",
    title: "Memory taken from a VM while the IOTLB still caches it",
    summary: "lazy unmap leaves a measurable window; strict leaves none",
    run: (o) => [lazyRun(o, "strict"), lazyRun(o, "lazy")],
  },
];

export const SCENARIO_NAMES = SCENARIOS.map((s) => s.name);

export function runScenario(name: string, opts: ScenarioOptions = {}): ScenarioReport {
  const s = SCENARIOS.find((x) => x.name === name);
  if (s === undefined) {
    throw new IommuError("UNKNOWN_SCENARIO", `no scenario named '${name}'`, { hint: `scenarios: ${SCENARIO_NAMES.join(", ")}` });
  }
  return { name: s.name, title: s.title, runs: s.run(opts) };
}

function time(ns: number): string {
  return formatLine({ ns, level: 6, text: "" }).trimEnd();
}

/** The story as text: each run's steps, requests, faults, interrupts and verdict, with the numbers. */
export function renderScenario(rep: ScenarioReport): string {
  const out: string[] = [`${rep.name}: ${rep.title}`, ""];
  rep.runs.forEach((run, i) => {
    out.push(`Run ${i + 1}: ${run.label}`);
    for (const s of run.steps) out.push(`  ${time(s.ns)} ${s.text}`);
    if (run.requests.length > 0) {
      out.push("  requests:");
      for (const q of run.requests) {
        const where =
          q.outcome === "blocked"
            ? `BLOCKED fault ${q.fault?.reason} ${q.fault?.name}${q.fault?.recorded === false ? " (not recorded)" : ""}`
            : q.interrupt !== undefined
              ? q.interrupt.deliveredTo.map((s) => s.split(" -> ")[1]).join("; ") || "delivered nowhere"
              : q.outcome === "unsupported"
                ? "unsupported request"
                : q.translations.map((t) => `${t.hpa} (${t.landed})`).join(", ");
        const data = q.data !== undefined ? ` data ${q.data}` : ` ${q.length} B`;
        out.push(`    ${q.device} ${q.op.padEnd(5)} ${q.addr.padStart(12)}${data}  ${q.purpose}  -> ${where}`);
      }
    }
    if (run.faults.length > 0) {
      out.push("  faults the host read from the fault recording registers:");
      for (const f of run.faults) out.push(`    [${f.type}] device ${f.source} ${f.type === "INTR-REMAP" ? "index" : "addr"} ${f.addr}: reason ${f.reason} ${f.name} (${f.text})`);
    }
    const fr = run.faultRecording;
    if (fr.overflowed + fr.collapsed > 0) out.push(`  fault recording: ${fr.recorded} recorded, ${fr.overflowed} overflowed, ${fr.collapsed} collapsed`);
    if (run.interrupts.length > 0) {
      out.push("  interrupts delivered:");
      for (const d of run.interrupts) out.push(`    ${d.source} ${d.posted ? "posted" : d.remapped ? "remapped" : "not remapped"}: vector ${d.vector} on CPU ${d.cpu} -> ${d.to}`);
    }
    out.push("  numbers:");
    for (const [k, v] of Object.entries(run.numbers)) out.push(`    ${k}: ${String(v)}`);
    out.push(`  verdict: ${run.verdict.protected ? "PROTECTED" : "NOT PROTECTED"} — ${run.verdict.summary}`);
    out.push("");
  });
  return out.join("\n");
}

/** One line per scenario, for `iommu scenario` without a name. */
export function listScenarios(): string {
  const w = Math.max(...SCENARIOS.map((s) => s.name.length));
  return SCENARIOS.map((s) => `  ${s.name.padEnd(w)}  ${s.title}: ${s.summary}`).join("\n") + "\n";
}


