import { test } from "node:test";
import assert from "node:assert/strict";
import { machinePreset } from "../hw/machine-presets.js";
import { runStress } from "./stress.js";

test("randomized, strict unmap: 0 escapes over 100,000 requests; every blocked request recorded, overflowed or collapsed", () => {
  const r = runStress({ requests: 100_000, seed: 7 });
  assert.equal(r.requests, 100_000);
  assert.equal(r.escapes, 0, r.firstEscape ?? "");
  assert.equal(r.interruptEscapes, 0);
  assert.equal(r.unaccounted, 0, "each blocked request left exactly one trace in fault recording");
  assert.equal(r.unlogged, 0, "each recorded fault reached the host's fault log with the device's requester id");
  assert.equal(r.blocked, r.faults.recorded + r.faults.overflowed + r.faults.collapsed);
  // The run exercised what it claims to: DMA that landed and DMA that did not, every recording outcome,
  // forged and genuine interrupts, VMs recreated on reused pages, memory ballooned away.
  assert.ok(r.landed > 20_000 && r.blocked > 40_000, JSON.stringify(r));
  assert.ok(r.faults.recorded > 1000 && r.faults.overflowed > 1000 && r.faults.collapsed > 100, JSON.stringify(r.faults));
  assert.ok(r.interruptsDelivered > 500);
  for (const reason of ["0x04", "0x05", "0x06", "0x22", "0x25", "0x26"]) assert.ok((r.reasons[reason] ?? 0) > 0, `fault ${reason} seen`);
  assert.ok(r.vmsDestroyed >= 5 && r.balloons >= 5, `${r.vmsDestroyed} VMs destroyed, ${r.balloons} balloons`);
});

test("randomized: the same check finds escapes when unmaps are lazy or teardown skips invalidation", () => {
  const lazy = runStress({ requests: 30_000, seed: 7, unmap: "lazy", eventEvery: 1000 });
  assert.ok(lazy.escapes > 0, "stale IOTLB entries reach ballooned pages before the deferred flush");
  assert.match(lazy.firstEscape ?? "", /mapped to nothing/);
  assert.equal(lazy.unaccounted, 0);
  const skip = runStress({ requests: 30_000, seed: 7, invalidateOnTeardown: false, eventEvery: 1000 });
  assert.ok(skip.escapes > 0, "stale translations of destroyed VMs are used under a reused domain id");
  assert.equal(skip.unaccounted, 0);
});

test("randomized on AMD-Vi (q35-amd), strict unmap: 0 escapes; every blocked request leaves one event, or none where the specification target-aborts", () => {
  const machine = { ...machinePreset("q35-amd")!, name: "q35-amd-2g", ram: { size: "2G" } };
  const r = runStress({ requests: 100_000, seed: 7, machine });
  assert.equal(r.escapes, 0, r.firstEscape ?? "");
  assert.equal(r.interruptEscapes, 0);
  assert.equal(r.unaccounted, 0, "each blocked request left exactly one event (an entry or an overflow), silent aborts none");
  assert.equal(r.unlogged, 0, "each event reached the host's log naming the device");
  assert.equal(r.blocked, r.faults.recorded + r.faults.overflowed + r.silentAborts);
  assert.equal(r.faults.collapsed, 0, "AMD-Vi has no fault collapsing");
  assert.ok(r.landed > 20_000 && r.blocked > 40_000, JSON.stringify(r));
  // Faults are IO_PAGE_FAULT events (code 2), for DMA and for interrupts alike.
  assert.deepEqual(Object.keys(r.reasons), ["0x02"]);
  assert.ok(r.silentAborts > 0 && r.interruptsDelivered > 500, JSON.stringify(r));
  assert.ok(r.vmsDestroyed >= 5 && r.balloons >= 5);
  const lazy = runStress({ requests: 30_000, seed: 7, unmap: "lazy", eventEvery: 1000, machine });
  assert.ok(lazy.escapes > 0, "the same check finds stale IOTLB entries reaching ballooned pages before the deferred flush");
  assert.equal(lazy.unaccounted, 0);
});
