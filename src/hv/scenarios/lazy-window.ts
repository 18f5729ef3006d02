import { hex } from "../../core/hex.js";
import { MiB } from "../hypervisor.js";
import { MS, type ScenarioOptions, type ScenarioRun, Run, NIC, frame, faultPhrase, vmWithNic } from "./run.js";

/** Scenario lazy-window. */

export function lazyRun(opts: ScenarioOptions, policy: "strict" | "lazy"): ScenarioRun {
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
  r.charge(); // time for the work so far, so that t0 is the instant of the unmap
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
    // Scheduled i ms after the unmap itself (the balloon and vm2's creation took simulated time since).
    fw.writeLater(Math.max(0, t0 + i * MS - hv.now), target, new Uint8Array(64).fill(i), `vm1's device keeps writing GPA ${hex(target)} (${i} ms after the unmap)`, (o) => {
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
      ? { protected: true, summary: `the IOTLB was invalidated when the pages were unmapped: 0 of ${probes} writes landed, ${faultPhrase(r.faultsNaming(NIC), probes, NIC, r.faultWord)}` }
      : { protected: false, summary: `the stale IOTLB entry was still used ${(windowNs / MS).toFixed(3)} ms after the unmap: ${landed} of ${probes} writes landed in vm2's memory (${vm2Corrupted} bytes) before the deferred flush` },
  );
}
