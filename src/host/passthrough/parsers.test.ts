/** The readers behind the pass-through checks, on the exact text formats the kernel and the tools use. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { SnapshotView } from "../views/snapshot-view.js";
import type { SnapshotEntry } from "../views/snapshot-format.js";
import { amdResetBugFamily } from "./amd-reset.js";
import { vfioIdRules } from "./facts.js";
import { analyzeCmdline } from "../cmdline.js";
import { parseIomem } from "./iomem.js";
import { parseMemlockLimit, parseSize } from "./memlock.js";
import { moduleOption, parseModprobeFile, readModprobeConfig, softdepBefore, type ModprobeConfig } from "./modprobe.js";
import { moduleSignature, parseProcModules, SIGNATURE_MARKER } from "./modules.js";
import { formatBytes } from "./read.js";

const view = (files: Record<string, string>) => {
  const entries: Record<string, SnapshotEntry> = {};
  for (const [p, text] of Object.entries(files)) entries[p] = { kind: "file", text };
  return new SnapshotView({ format: "iommu-kit-snapshot", version: 2, createdBy: "test", host: {}, entries });
};

test("modprobe.d: continuation lines, comments, '-' and '_' alike, softdep pre/post", () => {
  const cfg: ModprobeConfig = { files: [], options: [], softdeps: [], blacklist: [], unreadable: [] };
  parseModprobeFile("/etc/modprobe.d/vfio.conf", "# GPU\noptions vfio-pci \\\n  ids=10de:2504,10de:228e disable_vga=1\nsoftdep nvidia pre: vfio-pci post: snd-hda-intel\nblacklist nouveau\n", cfg);
  assert.deepEqual(moduleOption(cfg, "vfio_pci", "ids"), { value: "10de:2504,10de:228e", at: { file: "/etc/modprobe.d/vfio.conf", line: 2 } });
  assert.equal(moduleOption(cfg, "vfio-pci", "disable-vga")?.value, "1");
  assert.deepEqual(softdepBefore(cfg, "nvidia", "vfio-pci")?.post, ["snd_hda_intel"]);
  assert.equal(softdepBefore(cfg, "nouveau", "vfio_pci"), null);
  assert.deepEqual(cfg.blacklist.map((b) => [b.module, b.at.line]), [["nouveau", 5]]);
});

test("modprobe.d: a file in /etc hides the same name in /usr/lib; files apply in name order", () => {
  const cfg = readModprobeConfig(view({
    "/usr/lib/modprobe.d/vfio.conf": "options vfio-pci ids=1111:2222\n",
    "/etc/modprobe.d/vfio.conf": "options vfio-pci ids=10de:2504\n",
    "/usr/lib/modprobe.d/99-late.conf": "options vfio-pci ids=3333:4444\n",
  }));
  assert.deepEqual(cfg.files, ["/usr/lib/modprobe.d/99-late.conf", "/etc/modprobe.d/vfio.conf"]);
  assert.equal(moduleOption(cfg, "vfio_pci", "ids")?.value, "10de:2504", "the later file (by name) wins");
});

test("vfio-pci id rules: vendor:device[:subvendor[:subdevice]], ffffffff for any; junk is ignored", () => {
  const cfg: ModprobeConfig = { files: [], options: [], softdeps: [], blacklist: [], unreadable: [] };
  parseModprobeFile("/etc/modprobe.d/v.conf", "options vfio_pci ids=10de:2504:1462:397d,8086:ffffffff:ffffffff,zz:1\n", cfg);
  const rules = vfioIdRules(analyzeCmdline("vfio-pci.ids=1002:67df"), cfg);
  assert.deepEqual(rules.map((r) => [r.vendor, r.device, r.subvendor, r.subdevice, r.fromCmdline]), [
    [0x1002, 0x67df, null, null, true],
    [0x10de, 0x2504, 0x1462, 0x397d, false],
    [0x8086, null, null, null, false],
  ]);
});

test("/proc/iomem: nesting by two spaces, 64-bit addresses", () => {
  const e = parseIomem("00000000-00000fff : Reserved\n4000000000-400fffffff : PCI Bus 0000:01\n  4000000000-400fffffff : 0000:01:00.0\n    4000000000-40002fffff : BOOTFB\n");
  assert.deepEqual(e.map((x) => [x.depth, x.name, x.start.toString(16), x.end.toString(16)]), [
    [0, "Reserved", "0", "fff"],
    [0, "PCI Bus 0000:01", "4000000000", "400fffffff"],
    [1, "0000:01:00.0", "4000000000", "400fffffff"],
    [2, "BOOTFB", "4000000000", "40002fffff"],
  ]);
});

test("/proc/modules taint flags, memlock limits, sizes", () => {
  assert.deepEqual(parseProcModules("vendor_reset 114688 0 - Live 0x0000000000000000 (OE)\nvfio 49152 3 vfio_pci, Live 0xffffffffc04ac000\n"), [
    { name: "vendor_reset", taints: "OE" },
    { name: "vfio", taints: "" },
  ]);
  assert.deepEqual(parseMemlockLimit("Max locked memory         unlimited            unlimited            bytes\n"), { soft: null, hard: null });
  assert.deepEqual(parseMemlockLimit("Max locked memory         65536                131072               bytes\n"), { soft: 65536, hard: 131072 });
  assert.equal(parseSize("16G"), 16 * 1024 ** 3);
  assert.equal(parseSize("8192"), 8192 * 1024 ** 2);
  assert.equal(parseSize("1.5GiB"), 1.5 * 1024 ** 3);
  assert.equal(parseSize("lots"), null);
  assert.equal(formatBytes(8388608), "8 MiB");
});

test("module signatures: the marker at the end, looked for inside .ko.gz; .ko.xz cannot be told", () => {
  const signed = Buffer.concat([Buffer.from("\x7fELF body"), Buffer.from(SIGNATURE_MARKER, "latin1")]);
  assert.equal(moduleSignature("a.ko", signed).signed, true);
  assert.equal(moduleSignature("a.ko", Buffer.from("\x7fELF body")).signed, false);
  assert.equal(moduleSignature("a.ko.gz", gzipSync(signed)).signed, true);
  assert.equal(moduleSignature("a.ko.gz", Buffer.from("not gzip")).signed, null);
  assert.equal(moduleSignature("a.ko.zst", signed).signed, null);
});

test("the AMD reset-bug table knows Polaris, Vega and Navi 1x ids, and nothing of other vendors", () => {
  assert.equal(amdResetBugFamily(0x1002, 0x67df)?.family, "Polaris 10");
  assert.equal(amdResetBugFamily(0x1002, 0x687f)?.family, "Vega 10");
  assert.equal(amdResetBugFamily(0x1002, 0x731f)?.family, "Navi 10");
  assert.equal(amdResetBugFamily(0x1002, 0x73bf), null, "Navi 21 resets properly");
  assert.equal(amdResetBugFamily(0x10de, 0x67df), null);
});
