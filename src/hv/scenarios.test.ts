import { test } from "node:test";
import assert from "node:assert/strict";
import { cli } from "../../test/support/cli.js";
import { isIommuError } from "../core/errors.js";
import { machinePreset } from "../hw/machine-presets.js";
import { renderScenario, runScenario, SCENARIO_NAMES, type ScenarioRun } from "./scenarios.js";
import { WORK_COST_NS } from "./scenarios/run.js";

const HEX = /^0x[0-9a-f]+$/;

/** Every address-like field in the JSON is a "0x…" string, and nothing is a bigint. */
function checkJson(run: ScenarioRun): void {
  const text = JSON.stringify(run);
  assert.ok(text.length > 0);
  for (const q of run.requests) {
    assert.match(q.addr, HEX);
    for (const t of q.translations) {
      assert.match(t.iova, HEX);
      assert.match(t.hpa, HEX);
    }
    if (q.fault !== undefined) assert.match(q.fault.reason, /^0x[0-9a-f]{2}$/);
  }
  for (const f of run.faults) {
    assert.match(f.addr, HEX);
    assert.match(f.reason, /^0x[0-9a-f]{2}$/);
  }
}

test("passthrough: GPAs land in the VM's scattered host pages; without the IOMMU they land in the host's memory", () => {
  const rep = runScenario("passthrough");
  const [on, off] = rep.runs;
  assert.ok(on !== undefined && off !== undefined);
  rep.runs.forEach(checkJson);
  assert.equal(on.verdict.protected, true);
  assert.equal(on.numbers.guestReceivedFrame, true);
  assert.equal(on.numbers.vmHostPageHoldsFrame, true);
  assert.equal(on.numbers.transmittedGuestFrame, true);
  assert.notEqual(on.numbers.bufferHpa, on.numbers.bufferGpa, "the host page is not the GPA");
  assert.equal(on.numbers.bytesWrittenIntoHostMemory, 0);
  assert.equal(on.numbers.rxInterruptsVcpu1AfterMove, 1, "after the guest moved the vector, vCPU 1 got it");
  const data = on.requests.find((q) => q.purpose === "RX frame data")!;
  assert.equal(data.addr, on.numbers.bufferGpa);
  assert.equal(data.translations[0]!.hpa, on.numbers.bufferHpa);
  assert.match(data.translations[0]!.landed, /^vm1 GPA /);
  assert.ok(on.interrupts.length >= 2 && on.interrupts.every((d) => d.remapped && /^vm1 vCPU [01] vector 0x/.test(d.to)));
  assert.equal(on.faults.length, 0);
  assert.equal(off.verdict.protected, false);
  assert.equal(off.numbers.guestReceivedFrame, false);
  assert.ok(Number(off.numbers.bytesWrittenIntoHostMemory) > 0);
  assert.match(String(off.numbers.frameLandedAt), /host memory/);
  assert.match(renderScenario(rep), /verdict: PROTECTED — the device used GPA 0x1002000; the IOMMU sent the frame to host page 0x[0-9a-f]+, the VM's/);
});

test("isolation: vm1's device cannot reach vm2's or the host's memory; the fault records name it", () => {
  const [on, off] = runScenario("isolation").runs;
  assert.ok(on !== undefined && off !== undefined);
  checkJson(on);
  assert.equal(on.verdict.protected, true);
  assert.equal(on.numbers.blocked, on.numbers.attacks);
  assert.equal(on.numbers.vm2BytesChanged, 0);
  assert.equal(on.numbers.hostBytesChanged, 0);
  assert.equal(on.numbers.hostSecretLeaked, false);
  assert.equal(on.numbers.rootTableOverwrite, "blocked");
  assert.equal(on.numbers.sameGpaWriteLandedIn, "vm1 GPA 0x1800000", "a GPA means vm1's own page in vm1's domain");
  assert.equal(on.faults.length, on.numbers.attacks);
  assert.ok(on.faults.every((f) => f.source === "00:02.0" && (f.reason === "0x05" || f.reason === "0x06")));
  assert.deepEqual(on.faults.map((f) => f.type), ["DMA Write", "DMA Read", "DMA Write", "DMA Write"]);
  const blocked = on.requests.filter((q) => q.outcome === "blocked");
  assert.deepEqual(blocked.map((q) => q.fault!.addr), on.faults.map((f) => f.addr), "each blocked request left its fault record");
  assert.equal(off.verdict.protected, false);
  assert.equal(off.numbers.vm2BytesChanged, 4096);
  assert.equal(off.numbers.hostBytesChanged, 4096);
  assert.equal(off.numbers.hostSecretLeaked, true);
  assert.equal(off.faults.length, 0);
  assert.match(off.verdict.summary, /^3 of 3 attacks landed/);
});

test("msi-injection: forged interrupts reach the host and vm2 without remapping; with it they fault 0x25/0x22/0x21/0x26 unless CFI is set", () => {
  const [noir, ir, cfi] = runScenario("msi-injection").runs;
  assert.ok(noir !== undefined && ir !== undefined && cfi !== undefined);
  [noir, ir, cfi].forEach(checkJson);
  assert.equal(noir.verdict.protected, false);
  assert.ok(Number(noir.numbers.forgedInterruptsAtHost) >= 1);
  assert.equal(noir.numbers.forgedInterruptsRunningAHostHandler, 1, "the DMAR fault handler ran for the forged vector");
  assert.equal(noir.numbers.forgedInterruptsInjectedIntoVm2, 1);
  assert.ok(noir.interrupts.some((d) => /^host irq \d+ \(dmar0\)$/.test(d.to) && !d.remapped));
  assert.equal(ir.verdict.protected, true);
  assert.equal(ir.numbers.blocked, ir.numbers.attacks);
  assert.equal(ir.numbers.forgedInterruptsAtHost, 0);
  assert.equal(ir.numbers.forgedInterruptsInjectedIntoVm2, 0);
  const reasons = ir.requests.filter((q) => q.purpose.startsWith("attack")).map((q) => q.fault?.reason);
  assert.deepEqual(reasons, ["0x25", "0x25", "0x22", "0x21", "0x26"]);
  assert.deepEqual(ir.faults.map((f) => [f.type, f.source, f.reason]), reasons.map((r) => ["INTR-REMAP", "00:02.0", r]));
  assert.ok(ir.hostLog.some((l) => /DMAR: \[INTR-REMAP\] Request device \[00:02\.0\] fault index 0x0 \[fault reason 0x25\] Blocked a compatibility format interrupt request/.test(l)));
  assert.equal(ir.numbers.legitimateVm1Interrupts, 1, "the VM's own interrupts still arrive");
  // CFI set: compatibility format passes again; remappable forgeries are still caught.
  assert.equal(cfi.verdict.protected, false);
  const cr = cfi.requests.filter((q) => q.purpose.startsWith("attack")).map((q) => q.fault?.reason ?? "delivered");
  assert.deepEqual(cr, ["delivered", "delivered", "0x22", "0x21", "0x26"]);
  assert.equal(cfi.numbers.forgedInterruptsInjectedIntoVm2, 1);
  assert.ok(cfi.hostLog.some((l) => l.includes("Compatibility-format IRQs enabled despite intr remapping")));
});

test("deferred-dma: the delayed write is blocked after a strict teardown; without invalidation it lands in vm2 through a reused domain id", () => {
  const [strict, skip] = runScenario("deferred-dma").runs;
  assert.ok(strict !== undefined && skip !== undefined);
  [strict, skip].forEach(checkJson);
  assert.equal(strict.verdict.protected, true);
  assert.equal(strict.numbers.delayedWriteBlocked, true);
  assert.equal(strict.numbers.vm2BytesCorrupted, 0);
  assert.match(String(strict.numbers.oldPageNowBelongsTo), /^vm2 GPA /, "vm1's page was reused by vm2");
  const f = strict.faults.find((x) => x.addr === strict.numbers.targetGpa);
  assert.ok(f !== undefined && f.source === "00:02.0" && f.reason === "0x05");
  assert.equal(skip.verdict.protected, false);
  assert.equal(skip.numbers.delayedWriteBlocked, false);
  assert.equal(skip.numbers.vm2BytesCorrupted, 4096);
  assert.equal(skip.numbers.delayedWriteLandedIn, skip.numbers.oldPageNowBelongsTo);
  assert.equal(skip.numbers.vm2DomainId, strict.numbers.vm2DomainId, "the domain id was reused in both runs");
  const req = skip.requests.find((q) => q.purpose.startsWith("delayed write"))!;
  assert.equal(req.translations[0]!.hpa, skip.numbers.vm1OldHpa);
});

test("lazy-window: lazy unmap leaves the stale IOTLB entry usable until the deferred flush; strict leaves none", () => {
  const [strict, lazy] = runScenario("lazy-window").runs;
  assert.ok(strict !== undefined && lazy !== undefined);
  [strict, lazy].forEach(checkJson);
  assert.equal(strict.verdict.protected, true);
  assert.equal(strict.numbers.writesLanded, 0);
  assert.equal(strict.numbers.staleWindowMs, 0);
  assert.equal(strict.numbers.vm2BytesCorrupted, 0);
  assert.equal(strict.faults.length, 20);
  assert.equal(lazy.verdict.protected, false);
  assert.equal(lazy.numbers.deferredFlushMsAfterUnmap, 10, "IOVA_FQ_TIMEOUT_MS");
  assert.equal(lazy.numbers.staleWindowMs, 9, "observed: the last write that landed");
  assert.equal(strict.numbers.deferredFlushMsAfterUnmap, "none");
  assert.equal(lazy.numbers.writesLanded, 9, "writes 1..9 ms after the unmap");
  assert.equal(lazy.numbers.lastLandedMsAfterUnmap, 9);
  assert.equal(lazy.numbers.firstBlockedMsAfterUnmap, 10);
  assert.ok(Number(lazy.numbers.vm2BytesCorrupted) > 0);
  assert.equal(lazy.faults.length, 11);
});

test("iommu scenario: lists the scenarios, rejects unknown names, prints JSON", async () => {
  const list = await cli(["scenario"]);
  assert.equal(list.code, 0);
  for (const n of SCENARIO_NAMES) assert.ok(list.stdout.includes(n));
  const bad = await cli(["scenario", "nope"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown scenario 'nope'.*\[USAGE\]/);
  const j = await cli(["scenario", "passthrough", "--json"]);
  assert.equal(j.code, 0, j.stderr);
  const rep = JSON.parse(j.stdout) as { name: string; runs: ScenarioRun[] };
  assert.equal(rep.name, "passthrough");
  assert.deepEqual(rep.runs.map((r) => r.verdict.protected), [true, false]);
  assert.ok(rep.runs[0]!.steps.some((s) => s.text.includes("assigned as guest 00:03.0")));
});

test("a machine without an IOMMU or without the scenarios' devices is refused with one line", () => {
  const q35 = machinePreset("q35")!;
  const noUnit = { ...q35, name: "small-noiommu", ram: { size: "1G" }, iommus: [] };
  assert.throws(() => runScenario("isolation", { machine: noUnit }), (e: unknown) => isIommuError(e) && e.code === "SCENARIO_MACHINE" && /it has no IOMMU/.test(e.message));
  const devices = (q35.devices as { bdf: string }[]).filter((d) => d.bdf !== "00:04.0");
  const noOther = { ...q35, name: "small", ram: { size: "1G" }, devices };
  assert.throws(() => runScenario("isolation", { machine: noOther }), (e: unknown) => isIommuError(e) && /00:04\.0 must be a device/.test(e.message));
  assert.throws(() => runScenario("nope"), (e: unknown) => isIommuError(e) && e.code === "UNKNOWN_SCENARIO");
});

test("passthrough on a unit with posted interrupts: the guest's vectors are posted, and moving one to vCPU 1 rewrites its entry", () => {
  const rep = runScenario("passthrough", { machine: "q35-pi" });
  const on = rep.runs.find((r) => r.verdict.protected)!;
  assert.equal(on.numbers.rxInterruptsVcpu1AfterMove, 1, "after the guest moved the vector, vCPU 1 got it");
  assert.ok(on.interrupts.length > 0);
  assert.ok(on.interrupts.every((i) => i.vector === "0xf2"), `device interrupts arrive as posting notifications: ${on.interrupts.map((i) => i.vector).join(",")}`);
});

test("simulated time advances with the work done, and the steps show it", () => {
  for (const name of ["passthrough", "isolation"]) {
    for (const run of runScenario(name).runs) {
      const ns = run.steps.map((s) => s.ns);
      for (let i = 1; i < ns.length; i++) assert.ok(ns[i]! >= ns[i - 1]!, `${name}: time never goes back`);
      assert.ok(new Set(ns).size > ns.length / 3, `${name} (${run.label}): ${new Set(ns).size} distinct stamps over ${ns.length} steps`);
      // Mapping a 32 MiB VM (8192 pages) is stamped at least 8192 page costs after the step before it.
      const i = run.steps.findIndex((s) => /8192 pages mapped/.test(s.text));
      if (i > 0) assert.ok(ns[i]! - ns[i - 1]! >= 8192 * WORK_COST_NS.page, `${name}: mapping took ${ns[i]! - ns[i - 1]!} ns`);
    }
  }
});
