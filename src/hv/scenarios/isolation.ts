import { hex } from "../../core/hex.js";
import { MiB } from "../hypervisor.js";
import { PAGE, type ScenarioOptions, type ScenarioRun, Run, scenarioCmdline, NIC, OTHER, faultPhrase, countDiff } from "./run.js";

/** Scenario isolation. */

export function isolationRun(opts: ScenarioOptions, iommu: boolean): ScenarioRun {
  const r = new Run(
    iommu ? "IOMMU on" : "no IOMMU: vfio no-IOMMU mode",
    { iommu, cmdline: scenarioCmdline(opts.machine, iommu) },
    { machine: opts.machine, cmdline: scenarioCmdline(opts.machine, iommu), noiommu: !iommu },
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
  // The table the IOMMU starts every translation from: VT-d's root table, AMD-Vi's device table.
  const vtd = hv.host.driver.units[0];
  const amd = hv.host.amd.units[0];
  const top = vtd !== undefined ? { addr: vtd.rootTable, name: "root table" } : amd !== undefined ? { addr: amd.devTable, name: "device table" } : null;
  if (iommu && top !== null) {
    const w3 = fw.write(top.addr, evil.subarray(0, 16), `attack: overwrite the IOMMU's ${top.name} at ${hex(top.addr)}`);
    attacks.push({ what: `overwrite the IOMMU ${top.name}`, ok: w3.ok });
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
          summary: `${blocked} of ${attacks.length} attacks blocked, ${faultPhrase(r.faultsNaming(NIC), blocked, NIC, r.faultWord)}${own > 0 ? ` (${own} addressed one of vm1's own GPAs and reached vm1's own page)` : ""}; vm2's and the host's memory unchanged; GPA ${hex(secretGpa)} in vm1's space is vm1's own page (${vm1Changed} bytes there changed), not vm2's`,
        }
      : {
          protected: false,
          summary: `${attacks.length - blocked} of ${attacks.length} attacks landed${top === null ? ` (without a remapping unit there is no ${hv.machine.iommuKind === "amd-vi" ? "device" : "root"} table to attack)` : ""}: ${vm2Changed} bytes of vm2's memory and ${hostChanged} of the host's overwritten, the host's secret ${leaked ? "read" : "not read"}`,
        },
  );
}
