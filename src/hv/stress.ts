/**
 * Randomized isolation check: several VMs with assigned devices, VMs destroyed and recreated (their pages
 * reused), memory ballooned away, and devices issuing DMA reads and writes and interrupt messages at random
 * targets: their own memory, other VMs' host pages, the host's tables, freed pages, unmapped and out-of-range
 * addresses, forged interrupts. After every request it checks, from what the hardware did:
 *
 * - escape: a page of the request reached host memory other than what the device's own domain maps that IOVA to
 *   right now (the container's mapping), or an interrupt from the device reached the host or another VM;
 * - accounting: every blocked request left exactly one trace in fault recording, as VT-d 7.2.1 allows: a fault
 *   record, a primary fault overflow, or (a pending record with the same source id) a collapsed fault; on AMD-Vi
 *   an event log entry or an event log overflow, except the interrupt messages the specification target-aborts
 *   without an event (delivery modes the DTE does not pass), which must leave none;
 * - every fault the hardware recorded reaches the host kernel's fault log naming the device's requester id.
 *
 * Host interrupt handling is deferred and drained at random, so fault records pile up and overflow as they do
 * while the host is busy.
 */
import type { MachineConfigInput } from "../hw/machine-config.js";
import { machinePreset } from "../hw/machine-presets.js";
import type { DeviceBus } from "../hw/machine.js";
import type { DmaOutcome } from "../hw/platform.js";
import { encodeRemappableMsi } from "../spec/vtd/intremap.js";
import { encodeCompatMsi, MSI_ADDR_BASE, MSI_ADDR_HEAD_SHIFT } from "../spec/msi.js";
import type { TranslateResult } from "../hw/vtd/unit.js";
import type { AssignedDevice } from "./assigned.js";
import { rng } from "./host-pages.js";
import { Hypervisor, MiB } from "./hypervisor.js";
import type { UnmapPolicy } from "./vfio.js";
import type { Vm } from "./vm.js";

const PAGE = 4096;

export interface StressOptions {
  requests?: number;
  seed?: number;
  unmap?: UnmapPolicy;
  invalidateOnTeardown?: boolean;
  /** Host machine; default q35 with 2 GiB of RAM (boots fast). */
  machine?: string | MachineConfigInput;
  vms?: number;
  /** Guest RAM per VM, bytes. */
  vmMemory?: number;
  /** Requests between lifecycle events (VM recreated, memory ballooned) on average. */
  eventEvery?: number;
}

export interface StressResult {
  requests: number;
  dma: number;
  /** DMA requests that reached memory (wholly or up to their first fault). */
  landed: number;
  blocked: number;
  unsupported: number;
  interrupts: number;
  interruptsDelivered: number;
  /** Pages that reached memory outside the device's own domain's mappings. */
  escapes: number;
  /** Interrupts from a device that reached the host or another VM. */
  interruptEscapes: number;
  faults: { recorded: number; overflowed: number; collapsed: number };
  /** Blocked requests that left no trace, or more than one (or a trace where the specification wants none). */
  unaccounted: number;
  /** AMD-Vi: interrupt messages target-aborted without an event, as the specification wants for their delivery mode. */
  silentAborts: number;
  /** Recorded faults missing from the host kernel's fault log (or logged with another source id). */
  unlogged: number;
  /** Faults by reason, e.g. {"0x05": 123}. */
  reasons: Record<string, number>;
  vmsCreated: number;
  vmsDestroyed: number;
  balloons: number;
  firstEscape: string | null;
}

interface Dev {
  bdf: string;
  bus: DeviceBus;
  sid: number;
  vm: Vm | null;
}

/** The devices of the q35 preset a VM can own, by group ([00:06.0, 00:06.1] share one). */
const GROUPS: string[][] = [["00:02.0"], ["00:03.0"], ["00:04.0"], ["00:07.0"], ["02:01.0"], ["00:06.0", "00:06.1"]];

export function runStress(opts: StressOptions = {}): StressResult {
  return new StressRun(opts).run(opts.requests ?? 100_000, opts.eventEvery ?? 2500);
}

type FaultCounts = { recorded: number; overflowed: number; collapsed: number };

/** One randomized run: the host, its VMs, the devices they own, and the tally kept while requests are issued. */
class StressRun {
  private readonly rand: () => number;
  private readonly hv: Hypervisor;
  private readonly vmMemory: number;
  readonly res: StressResult = {
    requests: 0, dma: 0, landed: 0, blocked: 0, unsupported: 0, interrupts: 0, interruptsDelivered: 0, escapes: 0, interruptEscapes: 0,
    faults: { recorded: 0, overflowed: 0, collapsed: 0 }, unaccounted: 0, silentAborts: 0, unlogged: 0, reasons: {}, vmsCreated: 0, vmsDestroyed: 0, balloons: 0, firstEscape: null,
  };
  private readonly devs: Dev[] = [];
  private readonly vms: Vm[] = [];
  private serial = 0;
  /** GPAs each VM's devices reached lately, and GPAs ballooned away from each VM. */
  private readonly recent = new Map<Vm, number[]>();
  private readonly ballooned = new Map<Vm, number[]>();
  private readonly groupsOf = new Map<Vm, string[][]>();
  /** Recorded faults the host has not read yet: requester id and reason. */
  private expected: { sid: number; reason: number }[] = [];
  private logged: number;
  /** Targets outside any VM: the host's IOMMU tables and some of its pages. */
  private readonly hostTargets: number[];
  /** The host's IOMMU is AMD-Vi (one MSI format, per-device interrupt tables, faults as event log entries). */
  private readonly amd: boolean;

  constructor(opts: StressOptions) {
    this.rand = rng(opts.seed ?? 1);
    const machine = opts.machine ?? { ...machinePreset("q35")!, name: "q35-2g", ram: { size: "2G" } };
    this.hv = Hypervisor.boot({
      machine,
      deferHostInterrupts: true,
      unmap: opts.unmap ?? "strict",
      invalidateOnTeardown: opts.invalidateOnTeardown ?? true,
      seed: opts.seed ?? 1,
    });
    this.vmMemory = opts.vmMemory ?? 8 * MiB;
    const nvm = Math.min(opts.vms ?? 4, GROUPS.length);
    for (const g of GROUPS) for (const bdf of g) {
      this.hv.bindVfio(bdf);
      const bus = this.hv.machine.device(bdf);
      this.devs.push({ bdf, bus, sid: bus.requesterId, vm: null });
    }
    for (let i = 0; i < nvm; i++) this.vms.push(this.createVm(GROUPS.filter((_, j) => j % nvm === i)));
    const k = this.hv.host;
    this.logged = k.faultCount;
    this.amd = this.hv.machine.iommuKind === "amd-vi";
    // The IOMMU's own structures in host memory: VT-d root table, interrupt table and invalidation queue; AMD-Vi
    // device table, command buffer and event log.
    const vtd = k.driver.units[0];
    const amd = k.amd.units[0];
    const tables = vtd !== undefined ? [vtd.rootTable, vtd.irt, vtd.qiBase] : amd !== undefined ? [amd.devTable, amd.cmdBuf, amd.evtBuf] : [];
    this.hostTargets = [...tables, k.pages.alloc(1), k.pages.alloc(1)];
  }

  private pick<T>(a: readonly T[]): T {
    return a[Math.floor(this.rand() * a.length)]!;
  }

  private int(n: number): number {
    return Math.floor(this.rand() * n);
  }

  run(total: number, every: number): StressResult {
    const s0 = this.unitStats();
    for (let n = 0; n < total; n++) {
      if (this.int(every) === 0) this.lifecycleEvent();
      if (this.int(8) === 0) this.drain();
      this.hv.advance(1000); // 1 µs between requests: lazy flushes come due every 10,000 requests
      const d = this.pick(this.devs);
      this.res.requests++;
      const before = this.unitStats();
      if (this.rand() < 0.12) this.interruptRequest(d, before);
      else this.dmaRequest(d, before);
    }
    this.drain();
    const s1 = this.unitStats();
    this.res.faults = { recorded: s1.recorded - s0.recorded, overflowed: s1.overflowed - s0.overflowed, collapsed: s1.collapsed - s0.collapsed };
    return this.res;
  }

  /** What the guest driver does: MSI / MSI-X vector 0 to vCPU 0 with guest vector 0x30 + the VM's number. */
  private programMsi(vm: Vm, ad: AssignedDevice): void {
    const p = vm.port;
    const d = ad.dev;
    const addr = MSI_ADDR_BASE;
    const data = 0x30 + (this.serial % 16);
    if (d.msixCap !== 0) {
      p.mmioWrite(ad.guestBar0, 4, addr);
      p.mmioWrite(ad.guestBar0 + 4, 4, 0);
      p.mmioWrite(ad.guestBar0 + 8, 4, data);
      p.mmioWrite(ad.guestBar0 + 12, 4, 0);
      p.configWrite(ad.guestRid, d.msixCap + 2, 2, p.configRead(ad.guestRid, d.msixCap + 2, 2) | 0x8000);
    } else if (d.msiCap !== 0) {
      p.configWrite(ad.guestRid, d.msiCap + 4, 4, addr);
      p.configWrite(ad.guestRid, d.msiCap + 8, 4, 0);
      p.configWrite(ad.guestRid, d.msiCap + 12, 2, data);
      p.configWrite(ad.guestRid, d.msiCap + 2, 2, p.configRead(ad.guestRid, d.msiCap + 2, 2) | 1);
    }
  }

  private createVm(groups: string[][]): Vm {
    const vm = this.hv.createVm({ name: `vm${this.serial++}`, memory: this.vmMemory, vcpus: 2 });
    this.res.vmsCreated++;
    this.groupsOf.set(vm, groups);
    for (const g of groups) for (const bdf of g) {
      const ad = this.hv.assign(vm, bdf);
      this.programMsi(vm, ad);
      this.devs.find((x) => x.bdf === bdf)!.vm = vm;
    }
    return vm;
  }

  /** Destroys a VM (a new one, built from the pool, gets its devices) or balloons pages out of one. */
  private lifecycleEvent(): void {
    const { hv, res, vms } = this;
    if (this.rand() < 0.5) {
      const i = this.int(vms.length);
      const old = vms[i]!;
      const groups = this.groupsOf.get(old)!;
      hv.destroyVm(old);
      res.vmsDestroyed++;
      for (const d of this.devs) if (d.vm === old) d.vm = null;
      vms[i] = this.createVm(groups);
    } else {
      // Balloon out pages the VM's devices used a moment ago (their translations are likely cached).
      const vm = this.pick(vms);
      const used = this.recent.get(vm) ?? [];
      const at = used.length > 0 ? Math.floor(this.pick(used) / PAGE) * PAGE : this.int(vm.memory.pages - 16) * PAGE;
      const pages = 1 + this.int(16);
      hv.balloon(vm, at, Math.min(pages * PAGE, vm.memory.size - at));
      this.ballooned.set(vm, [...(this.ballooned.get(vm) ?? []), at]);
      res.balloons++;
    }
  }

  private unitStats(): FaultCounts {
    return this.hv.faultCounters();
  }

  private drain(): void {
    const k = this.hv.host;
    this.hv.router.drainHost();
    const got = k.faultsSince(this.logged);
    this.logged = k.faultCount;
    // Every recorded fault is read once, in recording order (one record, cleared each time).
    for (const e of this.expected) {
      const i = got.findIndex((f) => f.sourceId === e.sid && f.reason === e.reason);
      if (i < 0) this.res.unlogged++;
      else got.splice(i, 1);
    }
    this.expected = [];
  }

  private escape(what: string): void {
    this.res.escapes++;
    this.res.firstEscape ??= what;
  }

  /** Checks every page a request reached against the device's current mappings. */
  private checkSegments(d: Dev, segs: readonly { iova: bigint; hpa: bigint; length: number }[]): void {
    const c = d.vm?.container ?? null;
    for (const s of segs) {
      const iova0 = Number(s.iova);
      const hpa0 = Number(s.hpa);
      for (let off = 0; off < s.length; off += PAGE - ((iova0 + off) % PAGE)) {
        const iova = iova0 + off;
        const want = c === null ? -1 : c.lookup(Math.floor(iova / PAGE));
        const got = Math.floor((hpa0 + off) / PAGE);
        if (want !== got) this.escape(`${d.bdf} (${d.vm?.name ?? "no VM"}) reached host page 0x${(got * PAGE).toString(16)} through IOVA 0x${iova.toString(16)}, mapped to ${want < 0 ? "nothing" : "0x" + (want * PAGE).toString(16)}`);
      }
    }
  }

  private account(d: Dev, before: FaultCounts, reason: number, kind: "dma" | "interrupt"): void {
    const after = this.unitStats();
    const dr = after.recorded - before.recorded;
    const dn = dr + (after.overflowed - before.overflowed) + (after.collapsed - before.collapsed);
    if (this.amd && kind === "interrupt" && reason === 0) {
      // AMD-Vi 2.2.5: a message of a delivery mode the DTE does not pass (NMI, INIT, ExtINT, SMI, …) is target
      // aborted without an event; it must have left none.
      this.res.silentAborts++;
      if (dn !== 0) this.res.unaccounted++;
      return;
    }
    if (dn !== 1) this.res.unaccounted++;
    if (dr === 1) this.expected.push({ sid: d.sid, reason });
    const key = "0x" + reason.toString(16).padStart(2, "0");
    this.res.reasons[key] = (this.res.reasons[key] ?? 0) + 1;
  }

  /** An interrupt message: the device's own, another VM's, a host vector, or a forged one. */
  private interruptRequest(d: Dev, before: FaultCounts): void {
    const { hv, res, vms } = this;
    const vm = d.vm!;
    res.interrupts++;
    const own = vm.devices.find((x) => x.dev.name.endsWith(d.bdf))?.hostVectors()[0];
    const others = vms.flatMap((v) => v.devices.flatMap((x) => x.hostVectors()));
    const other = others.length > 0 ? this.pick(others) : undefined;
    let address: number;
    let data: number;
    const m = this.rand();
    // The message that selects a table entry: VT-d's remappable format (a handle in the address); on AMD-Vi the
    // index is the data's low bits, looked up in the sending device's own table.
    const select = (index: number): { address: number; data: number } => (this.amd ? { address: MSI_ADDR_BASE, data: index } : encodeRemappableMsi(index, 0));
    if (m < 0.3 && own !== undefined && own.irte !== null) ({ address, data } = select(own.irte));
    else if (m < 0.5 && other !== undefined && other.irte !== null) ({ address, data } = select(other.irte));
    else if (m < 0.7 && other !== undefined) ({ address, data } = { address: encodeCompatMsi({ vector: 0, destination: other.apic }).address, data: other.vector });
    else {
      // Any dword in the interrupt address range, any data.
      const offset = this.int(2 ** MSI_ADDR_HEAD_SHIFT);
      ({ address, data } = { address: (MSI_ADDR_BASE + offset - (offset % 4)) >>> 0, data: this.int(0x1_0000_0000) });
    }
    const seq0 = hv.router.deliveries[hv.router.deliveries.length - 1]?.seq ?? 0;
    const t: TranslateResult = hv.machine.platform.msi(d.sid, address, data);
    for (const x of hv.router.deliveries) {
      if (x.seq <= seq0 || x.sid !== d.sid) continue;
      res.interruptsDelivered++;
      if (x.target.kind !== "vm" || x.target.vm !== vm.name) res.interruptEscapes++;
    }
    if (!t.ok && (t.kind === "interrupt" || t.kind === "dma")) {
      res.blocked++;
      this.account(d, before, t.reason, t.kind);
    } else if (!t.ok) res.unsupported++;
  }

  /** A DMA read or write at a random target: the VM's memory, ballooned pages, other VMs', the host's, far away. */
  private dmaRequest(d: Dev, before: FaultCounts): void {
    const { res, vms } = this;
    const vm = d.vm!;
    res.dma++;
    let addr: number;
    const tk = this.rand();
    const gone = this.ballooned.get(vm) ?? [];
    if (tk < 0.05 && gone.length > 0) addr = this.pick(gone) + this.int(PAGE);
    else if (tk < 0.35) addr = this.int(vm.memory.size);
    else if (tk < 0.5) addr = this.int(4 * this.vmMemory);
    else if (tk < 0.65) {
      const v = this.pick(vms);
      const g = this.int(v.memory.pages);
      addr = Math.max(0, v.memory.hostPfnOf(g)) * PAGE + this.int(PAGE);
    } else if (tk < 0.75) addr = this.pick(this.hostTargets) + this.int(PAGE);
    else if (tk < 0.85) addr = this.int(2 ** 39);
    else if (tk < 0.9) addr = 2 ** 39 + this.int(2 ** 40);
    else addr = this.int(2 ** 31) * PAGE;
    const len = 1 + (this.rand() < 0.8 ? this.int(256) : this.int(3 * PAGE));
    const write = this.rand() < 0.5;
    const o: DmaOutcome = write ? d.bus.write(addr, new Uint8Array(len).fill(0xee)) : d.bus.read(addr, len);
    const r = o.ok ? null : o.result;
    const segs = o.ok ? o.segments : r !== null && r.kind === "dma" ? r.segments : [];
    if (segs.length > 0) {
      res.landed++;
      const list = this.recent.get(vm) ?? [];
      list.push(addr);
      if (list.length > 64) list.shift();
      this.recent.set(vm, list);
    }
    this.checkSegments(d, segs);
    if (r === null) return;
    if ((r.kind === "dma" || r.kind === "interrupt") && !r.ok) {
      res.blocked++;
      this.account(d, before, r.reason, r.kind);
    } else if (!r.ok) res.unsupported++;
  }
}
