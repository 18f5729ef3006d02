import { hex } from "../../core/hex.js";
import { MiB } from "../hypervisor.js";
import { PAGE, MS, type ScenarioOptions, type ScenarioRun, Run, machineIommuKind, NIC, frame, faultPhrase, countDiff, vmWithNic } from "./run.js";

/** Scenario deferred-dma. */

export function deferredRun(opts: ScenarioOptions, invalidate: boolean): ScenarioRun {
  // What teardown invalidates besides the IOTLB: VT-d's context cache, AMD-Vi's cached device table entries (DTEs).
  const label = (entry: string): string =>
    invalidate ? `strict teardown: reset, unmap + IOTLB invalidation, detach + ${entry} invalidation, then reuse` : `teardown that skips the IOTLB and ${entry} invalidations`;
  const entry = machineIommuKind(opts.machine) === "amd-vi" ? "DTE" : invalidate ? "context" : "context-cache";
  const r = new Run(label(entry), { invalidateOnTeardown: invalidate }, { machine: opts.machine, invalidateOnTeardown: invalidate });
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
  const vm1Did = vm1.container?.domain ? vm1.container.domain.domainIds().join(",") : "none";
  hv.destroyVm(vm1);
  hv.advance(1 * MS);
  const vm2 = hv.createVm({ name: "vm2", memory: 16 * MiB });
  vm2.ram.fill(0, vm2.memory.size, 0x22);
  const owner = hv.describeHpa(oldHpa);
  r.step(`vm2 (16 MiB) created from the pool: vm1's old page ${hex(oldHpa)} is now ${owner}; vm2 filled its RAM with 0x22`);
  hv.advance(1 * MS);
  hv.assign(vm2, NIC);
  const did = vm2.container?.domain ? vm2.container.domain.domainIds().join(",") : "none";
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
      vm1DomainId: vm1Did,
      vm2DomainId: did,
      delayedWriteBlocked: !outcome.ok,
      delayedWriteLandedIn: outcome.ok ? outcome.landed : "nowhere",
      vm2BytesCorrupted: corrupted,
      nicResets: nic.stats.resets,
    },
    prot
      ? { protected: true, summary: `the delayed write to GPA ${hex(target)} was blocked, ${faultPhrase(r.faultsNaming(NIC), 1, NIC, r.faultWord)}: vm1's translations were gone before its pages were reused; vm2's memory unchanged` }
      : {
          protected: false,
          summary:
            `the delayed write used vm1's stale translation (cached under domain id ${vm1Did}, ${vm1Did === did ? "which vm2's domain reuses" : `while vm2's domain has ${did}`}) ` +
            `and landed in ${outcome.landed}: ${corrupted} bytes of vm2's memory overwritten`,
        },
  );
}
