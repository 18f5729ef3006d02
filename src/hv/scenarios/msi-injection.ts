import { hex } from "../../core/hex.js";
import { formatRequesterId } from "../../core/pci.js";
import { MiB } from "../hypervisor.js";
import { DMAR_FEADDR_REG, DMAR_FEDATA_REG } from "../../spec/vtd/registers.js";
import { encodeRemappableMsi } from "../../spec/vtd/intremap.js";
import { compatMsi } from "../interrupts.js";
import { decodeCompatMsi } from "../../spec/msi.js";
import { type ScenarioOptions, type ScenarioRun, Run, NIC, OTHER, frame, vmWithNic } from "./run.js";

/** Scenario msi-injection. */

type MsiVariant = "no-remapping" | "remapping" | "remapping-cfi";

export function msiRun(opts: ScenarioOptions, v: MsiVariant): ScenarioRun {
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
  const fe = decodeCompatMsi(hv.port.mmioRead32(u.base + DMAR_FEADDR_REG), hv.port.mmioRead32(u.base + DMAR_FEDATA_REG));
  const feVector = fe.vector;
  const feCpu = fe.destination;
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
