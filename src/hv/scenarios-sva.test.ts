/**
 * The sva scenario: shared virtual addressing on a VT-d unit in scalable mode (PASID entries with first-stage
 * pointers at processes' own page tables, VT-d 3.6 and 9.6), requests without a PASID and with PASIDs nobody was
 * given, an mmu-notifier invalidation after munmap, and a write with an exited process's PASID.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { renderScenario, runScenario } from "./scenarios.js";
import { VTD_FR_SM_FS_ENTRY_P, VTD_FR_SM_PASID_DIR_P, VTD_FR_SM_PASID_ENTRY_P } from "../spec/vtd/sm-faults.js";
import { hex } from "../core/hex.js";

const rep = runScenario("sva");
const [flushed, stale] = rep.runs;

test("sva: one address, two processes: each PASID reaches its own process's page", () => {
  assert.ok(flushed !== undefined && stale !== undefined);
  for (const r of [flushed, stale]) {
    assert.notEqual(r.numbers.pasidA, r.numbers.pasidB);
    assert.match(String(r.numbers.sameAddressLandedA), /^process A \(pid 1001\) page at 0x7f3a00000000$/);
    assert.match(String(r.numbers.sameAddressLandedB), /^process B \(pid 1002\) page at 0x7f3a00000000$/);
  }
  const writes = flushed.requests.filter((q) => q.op === "write" && q.outcome === "ok");
  assert.deepEqual(writes.map((q) => q.pasid), [flushed.numbers.pasidA, flushed.numbers.pasidB]);
});

test("sva: no PASID, a PASID nobody was given, one beyond the PASID tables, and a page the process unmapped: each blocked with the fault the specification names", () => {
  const r = flushed!;
  assert.equal(r.numbers.withoutPasidBlocked, true);
  assert.equal(r.numbers.strayPasidBlocked, true);
  assert.equal(r.numbers.pasidBeyondTablesBlocked, true);
  assert.equal(r.numbers.writeAfterMunmapBlocked, true);
  const reasons = r.requests.filter((q) => q.outcome === "blocked").map((q) => q.fault?.reason);
  assert.ok(reasons.includes(hex(VTD_FR_SM_PASID_ENTRY_P, 2)), `stray PASID: ${reasons.join(" ")}`);
  assert.ok(reasons.includes(hex(VTD_FR_SM_PASID_DIR_P, 2)), `beyond the tables: ${reasons.join(" ")}`);
  assert.ok(reasons.includes(hex(VTD_FR_SM_FS_ENTRY_P, 2)), `after munmap: ${reasons.join(" ")}`);
  // The host read a fault record for each blocked request, with the PASID it carried.
  const blocked = r.requests.filter((q) => q.outcome === "blocked");
  assert.equal(r.faults.length, blocked.length);
  for (const q of blocked) if (q.pasid !== undefined) assert.ok(r.faults.some((f) => f.pasid === q.pasid), `a record with PASID ${q.pasid}`);
});

test("sva: a write with an exited process's PASID is blocked when unbind invalidates, and lands in the other process's reused page when it does not", () => {
  const f = flushed!;
  const s = stale!;
  assert.ok(Number(f.numbers.aFramesReusedByB) > 0, "process B got process A's frames back");
  assert.equal(f.numbers.delayedWriteBlocked, true);
  assert.equal(f.numbers.bytesOfBOverwritten, 0);
  assert.equal(f.verdict.protected, true, f.verdict.summary);
  assert.equal(s.numbers.delayedWriteBlocked, false);
  assert.match(String(s.numbers.delayedWriteLandedIn), /^process B \(pid 1002\) page at 0x7f3b/);
  assert.equal(s.numbers.bytesOfBOverwritten, 4096);
  assert.equal(s.verdict.protected, false);
  assert.match(s.verdict.summary, /4096 bytes of B's memory overwritten/);
  const text = renderScenario(rep);
  assert.match(text, /PASID \d+ write/);
});

test("sva needs a VT-d machine with a PASID-capable device: other machines are refused with a reason", () => {
  assert.throws(() => runScenario("sva", { machine: "q35" }), /does not fit the sva scenario: .*PASID capability/);
  assert.throws(() => runScenario("sva", { machine: "q35-amd" }), /VT-d scalable mode only/);
});
