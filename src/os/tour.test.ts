import { test } from "node:test";
import assert from "node:assert/strict";
import { cli } from "../../test/support/cli.js";
import { machinePreset, PRESET_NAMES } from "../hw/machine-presets.js";
import { runCliReporting } from "../cli/main.js";
import { vmStories } from "../hv/tour.js";
import { renderStory, runTour } from "./tour.js";

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

test("the tour runs on every preset: a story the machine cannot run says why, and nothing crashes", () => {
  for (const machine of PRESET_NAMES) {
    const stories = runTour({ machine, sgPages: 4, unmaps: 40 });
    assert.deepEqual(stories.map((s) => s.id), ["a", "b", "c", "d", "e", "f"], machine);
    for (const s of stories) {
      assert.ok(s.runs.length === 2 || (s.skipped !== undefined && s.skipped.length > 0), `${machine} story ${s.id}: a missing run has a reason`);
      if (s.runs.length < 2) assert.match(renderStory(s), /(skipped|not run): /);
    }
  }
  // Without an IOMMU, the stories show the side without it and say why the other is missing.
  const noiommu = runTour({ machine: "q35-noiommu", sgPages: 4, unmaps: 40 });
  const c = noiommu.find((s) => s.id === "c")!;
  assert.equal(c.runs.length, 1);
  assert.equal(c.runs[0]!.label, "without IOMMU");
  assert.match(c.skipped!, /with IOMMU: the kernel found no active IOMMU/);
  assert.equal(noiommu.find((s) => s.id === "f")!.runs.length, 0);
  const vm = vmStories("q35-noiommu");
  assert.ok(vm.every((s) => s.runs.length === 0 && /no IOMMU/.test(s.skipped ?? "")));
});

test("iommu tour prints each story as soon as it has run; --json is one document", async () => {
  for (const [machine, json] of [["q35-noiommu", false], ["switch", false], ["q35-noiommu", true]] as const) {
    const chunks: string[] = [];
    let stderr = "";
    const argv = ["tour", "--no-vm", "-m", machine, ...(json ? ["--json"] : [])];
    const code = await runCliReporting(argv, { debug: false, env: {}, out: (t) => void chunks.push(t), err: (t) => void (stderr += t) });
    assert.equal(code, 0, stderr);
    assert.equal(stderr, "");
    if (json) {
      assert.equal(chunks.length, 1);
      const stories = JSON.parse(chunks[0]!) as { id: string; skipped?: string }[];
      assert.equal(stories.length, 6);
    } else {
      assert.equal(chunks.length, 7, "a header, then one write per story");
      assert.match(chunks[1]!, /^\(a\) /);
      assert.match(chunks[6]!, /^\(f\) /);
    }
  }
});

test("story sentences follow what was read back", () => {
  const stories = runTour({ sgPages: 4, unmaps: 40 });
  const c = stories.find((s) => s.id === "c")!;
  assert.match(c.runs[0]!.summary, /^256 bytes of the kernel's next page overwritten/);
  assert.match(c.runs[1]!.summary, /^blocked: \[fault reason 0x05\].*nothing of the kernel's next page changed$/);
  const f = stories.find((s) => s.id === "f")!;
  assert.equal(f.runs[0]!.numbers.maxStaleWindowUs, null, "no flush queue: the stale window is not claimed");
  assert.match(f.runs[0]!.summary, /0 of 40 DMA writes after unmap reached the page$/);
  assert.match(f.runs[1]!.summary, /flush queue up to/);
});
