/**
 * Mutation tests: switch a mechanism off in the hardware model (fault recording, IOTLB invalidation) and check
 * that the verdicts, numbers and sentences of the scenarios and the tour change with it. A sentence that stayed
 * the same would be one not computed from the state it describes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { FaultReporting } from "../hw/vtd/faults.js";
import { Iotlb } from "../hw/vtd/caches.js";
import { runTour } from "../os/tour.js";
import { runScenario, type ScenarioRun } from "./scenarios.js";

/** Runs `fn` with `proto[method]` replaced, restoring it afterwards. */
function mutated<T>(proto: object, method: string, replacement: (...args: never[]) => unknown, fn: () => T): T {
  const target = proto as Record<string, unknown>;
  const original = target[method];
  assert.equal(typeof original, "function", `${method} exists`);
  target[method] = replacement;
  try {
    return fn();
  } finally {
    target[method] = original;
  }
}

const noFaultRecording = <T>(fn: () => T): T => mutated(FaultReporting.prototype, "record", () => false, fn);
/** The IOTLB ignores every invalidation (global, domain and page-selective). */
function noIotlbInvalidation<T>(fn: () => T): T {
  const p = Object.getPrototypeOf(Iotlb.prototype) as object;
  return mutated(p, "invalidatePages", () => 0, () => mutated(p, "invalidateDomain", () => 0, () => mutated(p, "invalidateAll", () => 0, fn)));
}

function protectedRun(name: string): ScenarioRun {
  const r = runScenario(name).runs.find((x) => x.verdict.protected);
  assert.ok(r !== undefined, `${name} has a protected run`);
  return r;
}

test("isolation: without fault recording the attacks are still blocked, and the sentence no longer claims fault records", () => {
  const base = protectedRun("isolation");
  assert.match(base.verdict.summary, /each with a fault record naming 00:02\.0/);
  assert.ok(Number(base.numbers.faultRecordsNamingTheNic) > 0);
  const m = noFaultRecording(() => protectedRun("isolation"));
  assert.equal(m.numbers.faultRecordsNamingTheNic, 0);
  assert.equal(m.faults.length, 0);
  assert.doesNotMatch(m.verdict.summary, /fault record naming/);
  assert.match(m.verdict.summary, /but the host read no fault record/);
});

test("deferred-dma and lazy-window: the fault-record clause follows the records the host read", () => {
  for (const name of ["deferred-dma", "lazy-window"]) {
    const base = protectedRun(name);
    assert.match(base.verdict.summary, /fault record/);
    assert.doesNotMatch(base.verdict.summary, /no fault record/);
    const m = noFaultRecording(() => protectedRun(name));
    assert.match(m.verdict.summary, /but the host read no fault record/, name);
  }
});

test("lazy-window and deferred-dma: with IOTLB invalidation switched off, the strict runs are no longer protected", () => {
  const strict = () => runScenario("lazy-window").runs.find((r) => r.settings.unmap === "strict")!;
  assert.equal(strict().verdict.protected, true);
  const m = noIotlbInvalidation(strict);
  assert.equal(m.verdict.protected, false);
  assert.ok(Number(m.numbers.writesLanded) > 0);
  assert.ok(Number(m.numbers.staleWindowMs) > 0, "the window is observed, not assumed");

  const teardown = () => runScenario("deferred-dma").runs.find((r) => r.settings.invalidateOnTeardown === true)!;
  assert.equal(teardown().verdict.protected, true);
  const d = noIotlbInvalidation(teardown);
  assert.equal(d.verdict.protected, false);
  assert.ok(Number(d.numbers.vm2BytesCorrupted) > 0);
});

test("tour stories c and f follow the model: no fault record read, stale DMA after a strict unmap", () => {
  const small = { sgPages: 4, unmaps: 50 };
  const c = (stories: ReturnType<typeof runTour>) => stories.find((s) => s.id === "c")!.runs[1]!;
  const f = (stories: ReturnType<typeof runTour>) => stories.find((s) => s.id === "f")!.runs[0]!;
  const base = runTour(small);
  assert.match(c(base).summary, /^blocked: \[fault reason 0x05\]/);
  assert.equal(f(base).numbers.staleAccessesAfterUnmap, 0);

  const nf = noFaultRecording(() => runTour(small));
  assert.equal(c(nf).numbers.faultReason, "none");
  assert.match(c(nf).summary, /^blocked: no fault record was read/);

  const ni = noIotlbInvalidation(() => runTour(small));
  assert.ok(Number(f(ni).numbers.staleAccessesAfterUnmap) > 0);
  assert.match(f(ni).summary, /[1-9]\d* of 50 DMA writes after unmap reached the page/);
});
