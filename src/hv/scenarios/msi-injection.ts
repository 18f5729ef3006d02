import { hex } from "../../core/hex.js";
import { formatRequesterId } from "../../core/pci.js";
import { MiB } from "../hypervisor.js";
import { DMAR_FEADDR_REG, DMAR_FEDATA_REG } from "../../spec/vtd/registers.js";
import { encodeRemappableMsi } from "../../spec/vtd/intremap.js";
import { compatMsi } from "../interrupts.js";
import { getField } from "../../spec/amdvi/fields.js";
import { DTE_INT_TAB_LEN, DTE_IV } from "../../spec/amdvi/dte.js";
import { decodeCompatMsi } from "../../spec/msi.js";
import { type ScenarioOptions, type ScenarioRun, Run, machineIommuKind, scenarioCmdline, NIC, OTHER, frame, vmWithNic } from "./run.js";

/** Scenario msi-injection. */

type MsiVariant = "no-remapping" | "remapping" | "remapping-cfi";

/** The runs of the scenario on a machine whose IOMMU is of `kind`: GCMD.CFI exists only on VT-d. */
export function msiVariants(kind: "vtd" | "amd-vi" | null): MsiVariant[] {
  return kind === "amd-vi" ? ["no-remapping", "remapping"] : ["no-remapping", "remapping", "remapping-cfi"];
}

export function msiRun(opts: ScenarioOptions, v: MsiVariant): ScenarioRun {
  const amd = machineIommuKind(opts.machine) === "amd-vi";
  const cmdline = scenarioCmdline(opts.machine, true, v === "no-remapping" ? "intremap=off" : undefined);
  const label =
    v === "no-remapping"
      ? "no interrupt remapping (intremap=off)"
      : v === "remapping-cfi"
        ? "interrupt remapping with GCMD.CFI set"
        : amd
          ? "interrupt remapping: every MSI looked up in the device's own table (DTE IntCtl=remap)"
          : "interrupt remapping, compatibility format blocked (CFI clear, as Linux sets it)";
  // GCMD.CFI is VT-d's: an AMD-Vi run has no such setting to show.
  const settings: Record<string, string | boolean> = amd ? { cmdline } : { cmdline, cfi: v === "remapping-cfi" };
  const r = new Run(label, settings, { machine: opts.machine, cmdline, compatibilityFormat: v === "remapping-cfi" });
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
  // The IOMMU's own interrupt as the host programmed it: VT-d's fault event registers, AMD-Vi's MSI capability.
  const fe = iommuInterrupt(r);
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
  for (const m of forgedMessages(r, amd, fe, target)) attack(m.name, m.address, m.data);
  // Interrupts the attacker made arrive: the router saw them come from its requester id. One that reached vm1,
  // the attacker's own VM, through one of the NIC's own entries harms no one else.
  const fromAttacker = hv.router.deliveries.filter((d) => d.seq > seq0 && d.origin === "device" && d.sid === attackerSid);
  const ownVm = fromAttacker.filter((d) => d.target.kind === "vm" && d.target.vm === vm1.name).length;
  const forged = fromAttacker.filter((d) => !(d.target.kind === "vm" && d.target.vm === vm1.name));
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
    deliveredToOthers: forged.length,
    forgedInterruptsAtHost: hostHits,
    forgedInterruptsRunningAHostHandler: hostHandled,
    forgedInterruptsInjectedIntoVm2: vm2Hits,
    attackerInterruptsReachingItsOwnVm: ownVm,
    legitimateVm1Interrupts: legit,
    legitimateVm1InterruptsAfterAttacks: legitAfter,
  };
  attacks.forEach((a, i) => (numbers[`attack${i + 1}`] = `${a.name}: ${a.outcome}`));
  return r.finish(
    numbers,
    prot
      ? {
          protected: true,
          summary:
            (ownVm === 0
              ? `all ${attacks.length} forged interrupts blocked (${attacks.map((a) => a.fault).join(", ")})`
              : `${attacks.length - ownVm} of ${attacks.length} forged interrupts blocked (${attacks.filter((a) => a.fault !== null).map((a) => a.fault).join(", ")}); ${ownVm} reached only vm1, through the NIC's own table entry`) +
            `; the host's handlers and vm2 saw nothing; ${legitAfter > 0 ? "vm1's own interrupt still arrives after them" : "but vm1's own interrupt after them did not arrive"}`,
        }
      : {
          protected: false,
          summary: `${forged.length} of ${attacks.length} forged interrupts delivered to the host or another VM: ${hostHits} reached the host (${hostHandled} ran a host handler, e.g. the ${fe.name} handler for a fault that never happened), ${vm2Hits} ${vm2Hits === 1 ? "was" : "were"} injected into vm2 from a device it does not own`,
        },
  );
}

/** The IOMMU's own interrupt as the host programmed it, read back from the hardware: vector, CPU and what it is. */
function iommuInterrupt(r: Run): { vector: number; destination: number; name: string } {
  const { hv } = r;
  const vtd = hv.host.driver.units[0];
  if (vtd !== undefined) {
    const m = decodeCompatMsi(hv.port.mmioRead32(vtd.base + DMAR_FEADDR_REG), hv.port.mmioRead32(vtd.base + DMAR_FEDATA_REG));
    return { vector: m.vector, destination: m.destination, name: "DMAR fault" };
  }
  const amd = hv.host.amd.units[0];
  const fn = amd === undefined ? undefined : hv.host.devices.find((d) => d.rid === amd.devid);
  if (fn === undefined || fn.msiCap === 0) return { vector: 0, destination: 0, name: "IOMMU" };
  // The unit's MSI capability is 64-bit: address at +4 (high half at +8), data at +12.
  const address = hv.port.configRead(fn.rid, fn.msiCap + 4, 4);
  const data = hv.port.configRead(fn.rid, fn.msiCap + 12, 2);
  const m = decodeCompatMsi(address, data);
  return { vector: m.vector, destination: m.destination, name: "AMD-Vi event log" };
}

/** A forged message with what it tries. */
interface Forged {
  name: string;
  address: number;
  data: number;
}

const msg = (name: string, address: number, data: number): Forged => ({ name, address, data });

/**
 * The messages the attacker's firmware writes: the host's own IOMMU vector and vm2's host vector in
 * compatibility format, then messages that select table entries as the machine's IOMMU reads them (VT-d:
 * remappable format with a handle; AMD-Vi: the data's low bits index the sending device's own table).
 */
function forgedMessages(r: Run, amd: boolean, fe: { vector: number; destination: number; name: string }, target: { vector: number; apic: number; irte: number | null } | undefined): Forged[] {
  const { hv } = r;
  const feVector = fe.vector;
  const feCpu = fe.destination;
  const out: Forged[] = [];
  out.push(msg(`compatibility-format MSI with the host's ${fe.name} vector ${hex(feVector, 2)} to CPU ${feCpu}`, compatMsi(feVector, feCpu).address, feVector));
  if (target !== undefined) {
    out.push(msg(`compatibility-format MSI with vm2's host vector ${hex(target.vector, 2)} to CPU ${target.apic}`, compatMsi(target.vector, target.apic).address, target.vector));
  }
  if (amd) {
    // AMD-Vi has one format: the data's low 11 bits index the sending device's own table (DTE IntTableLen entries).
    const base = compatMsi(0, 0).address;
    out.push(msg("MSI with data 200, an entry of the NIC's table that is not in use", base, 200));
    // One past the end of the NIC's table, as its DTE's IntTabLen sizes it (data bits 10:8 then read as delivery mode 1 or 0).
    const dte = hv.host.amd.readDte(hv.dev(NIC).rid);
    if (getField(dte, DTE_IV) === 1) {
      const entries = 2 ** getField(dte, DTE_INT_TAB_LEN);
      out.push(msg(`MSI with data ${hex(entries)}, index ${entries}, one past the NIC's ${entries}-entry table (DTE IntTabLen)`, base, entries));
    } else {
      out.push(msg("MSI with data 0x100 (the NIC's DTE names no interrupt table: IV=0)", base, 0x100));
    }
    if (target !== undefined && target.irte !== null) {
      out.push(msg(`MSI with data ${target.irte}, the index of vm2's entry in vm2's device's table`, base, target.irte));
    }
  } else {
    const u = hv.host.driver.units[0]!;
    const free = u.irtNext + 100;
    const m1 = encodeRemappableMsi(free, 0);
    out.push(msg(`remappable MSI naming free table entry ${free}`, m1.address, m1.data));
    const m2 = encodeRemappableMsi(0xffff, 1);
    out.push(msg("remappable MSI with handle 0xffff + sub-handle 1 (index 0x10000)", m2.address, m2.data));
    if (target !== undefined && target.irte !== null) {
      const m3 = encodeRemappableMsi(target.irte, 0);
      out.push(msg(`remappable MSI naming vm2's table entry ${target.irte}`, m3.address, m3.data));
    }
  }
  return out;
}
