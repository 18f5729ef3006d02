import { test } from "node:test";
import assert from "node:assert/strict";
import { cli } from "../../test/support/cli.js";
import { machinePreset } from "../hw/machine-presets.js";
import { runTour } from "./tour.js";

test("the tour's numbers come from the simulation: changing the machine changes them", () => {
  const small = { sgPages: 8, unmaps: 300 };
  const q35 = runTour(small);
  const n = (id: string, run: number) => q35.find((s) => s.id === id)!.runs[run]!.numbers;
  assert.equal(n("a", 0).dmaSegments, 8);
  assert.equal(n("a", 1).dmaSegments, 1);
  assert.equal(n("b", 0).bounces, 16);
  assert.equal(n("b", 0).bytesCopied, 16 * 2 * 4096, "copied in on map and back on unmap");
  assert.equal(n("b", 1).bounces, 0);
  assert.equal(n("c", 0).bytesCorrupted, 256);
  assert.equal(n("c", 1).faultReason, "0x05");
  assert.equal(n("d", 1).sameAddress, true);
  assert.equal(n("d", 1).aReachesB, false);
  assert.equal(n("e", 0).strayWriteBlocked, false);
  assert.equal(n("f", 0).invalidationsPerUnmap, 1);
  assert.ok(Number(n("f", 1).iotlbInvalidations) < 5);
  assert.ok(Number(n("f", 1).staleAccessesAfterUnmap) > 0);
  // All RAM below 4 GiB: nothing to bounce for the 32-bit device, with or without the IOMMU.
  const low = { ...machinePreset("q35")!, ram: { size: "2G" } };
  const t2 = runTour({ ...small, machine: low });
  const b = t2.find((s) => s.id === "b")!;
  assert.equal(b.runs[0]!.numbers.bounces, 0);
  assert.equal(b.runs[0]!.numbers.buffersAbove4G, 0);
});

test("iommu sim boot and iommu tour on the command line", async () => {
  const r = await cli(["sim", "boot", "--machine", "q35-lab", "--cmdline", "intel_iommu=on iommu=pt", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { groups: { id: number; type: string; devices: string[] }[]; log: string[] };
  assert.equal(j.groups.length, 10);
  assert.ok(j.log.some((l) => l.endsWith("] DMAR: Intel(R) Virtualization Technology for Directed I/O")));
  const bad = await cli(["sim", "boot", "--machine", "/nonexistent.json"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /no such file/);
  const t = await cli(["sim", "boot"]);
  assert.match(t.stdout, /IOMMU group \d+ \[DMA-FQ\] domain id \d+: 0000:01:00\.0 0000:02:01\.0/);
});

test("iommu tour includes the virtual-machine stories, unprotected run first, each with its verdict", async () => {
  const r = await cli(["tour", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const stories = JSON.parse(r.stdout) as { id: string; runs: { summary: string }[] }[];
  assert.deepEqual(stories.map((s) => s.id), ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"]);
  for (const s of stories.slice(6)) {
    assert.match(s.runs[0]!.summary, /^NOT protected: /, s.id);
    assert.match(s.runs[s.runs.length - 1]!.summary, /^protected: /, s.id);
  }
  const kernelOnly = await cli(["tour", "--no-vm", "--json"]);
  assert.equal((JSON.parse(kernelOnly.stdout) as unknown[]).length, 6);
});
