import { hex } from "../../core/hex.js";
import { type ScenarioOptions, type ScenarioRun, Run, scenarioCmdline, frame, same, vmWithNic } from "./run.js";

/** Scenario passthrough. */

export function passthroughRun(opts: ScenarioOptions, iommu: boolean): ScenarioRun {
  const r = new Run(
    iommu ? "IOMMU on: VFIO type1, unmanaged domain" : "no IOMMU: vfio no-IOMMU mode",
    { iommu, cmdline: scenarioCmdline(opts.machine, iommu) },
    { machine: opts.machine, cmdline: scenarioCmdline(opts.machine, iommu), noiommu: !iommu },
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
