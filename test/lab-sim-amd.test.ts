// The lab's AMD-Vi comparison rules (lab/sim-amd.ts, lab/sim-status.ts) on the tree the lab recorded from Linux 6.1
// under QEMU's amd-iommu (test/fixtures/hosts/qemu-e-amd-on): which log lines count, the IVRS as facts, the status
// facts. The lab itself needs QEMU; these run in `npm test`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { decodeIvrs, encodeIvrs } from "../src/acpi/ivrs.js";
import { AMD_COMPARED, ivrsFacts } from "../lab/sim-amd.js";
import { comparedLines } from "../lab/sim-compare.js";
import { statusFacts } from "../lab/sim-status.js";

const TREE = "test/fixtures/hosts/qemu-e-amd-on";
const ivrs = readFileSync(join(TREE, "sys/firmware/acpi/tables/IVRS"));

test("a pr_cont fragment split off by another CPU's message is put back on its line", () => {
  const lines = [
    "[    1.397201] AMD-Vi: Extended features (0x29d3, 0x0):",
    "[    1.397189] Trying to unpack rootfs image as initramfs...",
    "[    1.397237]  PreF PPR GT IA GA HE",
    "[    1.397675] AMD-Vi: Interrupt remapping enabled",
    "[    0.000000]   DMA      [mem 0x0000000000001000-0x0000000000ffffff]",
  ];
  assert.deepEqual(comparedLines(lines, AMD_COMPARED), ["AMD-Vi: Extended features (0x29d3, 0x0): PreF PPR GT IA GA HE", "AMD-Vi: Interrupt remapping enabled"]);
  assert.equal(comparedLines(["[    1.0] AMD-Vi: Extended features (0x29d3, 0x0): PreF PPR GT IA GA HE"], AMD_COMPARED).length, 1, "a whole line stays as it is");
});

test("AMD log lines: every AMD-Vi and IOMMU-core line of the real log, nothing else", () => {
  const dmesg = readFileSync(join(TREE, "dmesg.txt"), "utf8").split("\n");
  const picked = comparedLines(dmesg, AMD_COMPARED);
  assert.equal(picked[0], "AMD-Vi: Unknown option - 'on'");
  assert.ok(picked.includes("pci 0000:00:01.0: AMD-Vi: Found IOMMU cap 0x40"));
  assert.ok(picked.includes("iommu: Default domain type: Translated"), "trailing blanks are dropped");
  assert.ok(picked.some((l) => /^pci 0000:00:06\.1: Adding to iommu group \d+$/.test(l)));
  assert.ok(!picked.some((l) => l.startsWith("ACPI: IVRS")), "the firmware table listing is not a driver line");
  // Every line the rule leaves out has neither prefix.
  const all = dmesg.map((l) => l.replace(/^\[[^\]]*\]\s*/, "").trimEnd());
  for (const l of all.filter((x) => !picked.includes(x))) assert.ok(!/(^|: )(AMD-Vi|iommu): /.test(l), l);
});

test("IVRS facts: re-encoding keeps them; one changed device entry is one differing fact", () => {
  const facts = ivrsFacts(ivrs);
  assert.ok(facts.length > 10, `${facts.length} facts`);
  assert.deepEqual(ivrsFacts(encodeIvrs(decodeIvrs(ivrs))), facts);
  const t = decodeIvrs(ivrs);
  const blk = t.blocks[0];
  assert.ok(blk?.type === "IVHD");
  const e = blk.entries.find((x) => x.deviceId === "00:06.1");
  assert.ok(e !== undefined);
  e.deviceId = "00:07.1";
  const changed = ivrsFacts(encodeIvrs(t));
  assert.equal(changed.length, facts.length);
  assert.equal(changed.filter((f, i) => f !== facts[i]).length, 1);
});

test("status facts: the verdict, problems without the CPU's, and the kernel facts", () => {
  const doc = {
    ready: true,
    platform: { firmwareTable: "IVRS" },
    kernel: { iommuActive: true, unitCount: 1, groupCount: 10, defaultDomain: "DMA", dmaPolicy: "strict", interruptRemapping: "enabled" },
    problems: [{ code: "RUNNING_IN_VM", severity: "info" }, { code: "AMD_IOMMU_ON_INVALID", severity: "warning" }],
  };
  const s = statusFacts(doc);
  assert.deepEqual(s.setAside, ["RUNNING_IN_VM/info"]);
  assert.equal(s.facts[0], "ready: true");
  assert.equal(s.facts[1], "problems: AMD_IOMMU_ON_INVALID/warning");
  assert.ok(s.facts.includes('kernel.dmaPolicy: "strict"'));
  const other = statusFacts({ ...doc, ready: false });
  assert.equal(other.facts.filter((f, i) => f !== s.facts[i]).length, 1);
});
