/**
 * The five scenarios on an AMD-Vi host (q35-amd): the same stories, with the protection coming from AMD-Vi's
 * device table, I/O page tables and per-device interrupt tables, and the evidence from its event log.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { renderScenario, runScenario, SCENARIO_NAMES } from "./scenarios.js";

const M = { machine: "q35-amd" };
const NIC_EVENT = /^Event logged \[IO_PAGE_FAULT domain=0x[0-9a-f]{4} address=0x[0-9a-f]+ flags=0x[0-9a-f]{4}\]$/;

test("q35-amd: every scenario runs, the protected run protects and the unprotected one does not", () => {
  for (const name of SCENARIO_NAMES) {
    const rep = runScenario(name, M);
    assert.ok(rep.runs.length >= 2, name);
    const prot = rep.runs.filter((r) => r.verdict.protected);
    assert.ok(prot.length >= 1 && prot.length < rep.runs.length, `${name}: ${rep.runs.map((r) => `${r.label}: ${r.verdict.summary}`).join(" | ")}`);
    // Every fault the host read is an AMD-Vi event, none a VT-d fault record.
    for (const r of rep.runs) for (const f of r.faults) assert.equal(f.origin, "amdvi-event", `${name}: ${JSON.stringify(f)}`);
    assert.doesNotMatch(renderScenario(rep), /fault recording registers|DMAR/, name);
  }
});

test("q35-amd isolation: the host boots without intel_iommu; blocked attacks each leave an IO_PAGE_FAULT event naming the NIC", () => {
  const [on, off] = runScenario("isolation", M).runs;
  assert.ok(on !== undefined && off !== undefined);
  assert.equal(on.settings.cmdline, "", "AMD-Vi is on by default");
  assert.equal(off.settings.cmdline, "amd_iommu=off");
  assert.equal(on.numbers.blocked, on.numbers.attacks);
  assert.equal(on.numbers.rootTableOverwrite, "blocked", "a write to the device table is refused");
  assert.equal(on.faults.length, on.numbers.blocked);
  for (const f of on.faults) {
    assert.equal(f.source, "00:02.0");
    assert.equal(f.name, "IO_PAGE_FAULT");
    assert.match(f.type, /^DMA (Read|Write)$/);
    assert.match(f.text, NIC_EVENT);
  }
  assert.equal(on.faultRecording.recorded, on.faults.length, "the unit's event log counter agrees with what the host read");
  assert.match(on.verdict.summary, /each with an event log entry naming 00:02\.0/);
  assert.equal(off.verdict.protected, false);
  assert.equal(off.faults.length, 0);
});

test("q35-amd msi-injection: without remapping forged MSIs reach the host and vm2; with it none does and no CFI run exists", () => {
  const rep = runScenario("msi-injection", M);
  assert.deepEqual(rep.runs.map((r) => r.settings.cmdline), ["intremap=off", ""]);
  const [off, on] = rep.runs;
  assert.ok(off !== undefined && on !== undefined);
  assert.equal(off.verdict.protected, false);
  assert.ok(Number(off.numbers.forgedInterruptsAtHost) > 0 && Number(off.numbers.forgedInterruptsInjectedIntoVm2) > 0);
  assert.equal(on.numbers.forgedInterruptsAtHost, 0);
  assert.equal(on.numbers.forgedInterruptsInjectedIntoVm2, 0);
  // Each faulted attack is an IO_PAGE_FAULT event with the interrupt flag, read from the event log.
  const faulted = Object.entries(on.numbers).filter(([k, v]) => k.startsWith("attack") && /blocked, fault 0x02/.test(String(v))).length;
  assert.ok(faulted >= 3);
  assert.equal(on.faults.filter((f) => f.type === "INTR-REMAP").length, faulted);
  assert.equal(on.numbers.legitimateVm1InterruptsAfterAttacks, 1);
});

test("q35-amd deferred-dma and lazy-window: the stale translation is used only when the invalidation is skipped or deferred", () => {
  const [strict, skip] = runScenario("deferred-dma", M).runs;
  assert.ok(strict !== undefined && skip !== undefined);
  assert.equal(strict.numbers.delayedWriteBlocked, true);
  assert.equal(skip.numbers.delayedWriteBlocked, false);
  assert.ok(Number(skip.numbers.vm2BytesCorrupted) > 0);
  // The sentence about domain-id reuse is what the ids say.
  const reused = skip.numbers.vm1DomainId === skip.numbers.vm2DomainId;
  assert.match(skip.verdict.summary, reused ? /which vm2's domain reuses/ : /while vm2's domain has/);
  const [s, l] = runScenario("lazy-window", M).runs;
  assert.ok(s !== undefined && l !== undefined);
  assert.equal(s.verdict.protected, true);
  assert.equal(l.verdict.protected, false);
});
