/**
 * `iommu bind --persist --early` on a copy of the recorded tree whose e1000 functions lost the boot race to
 * e1000: the modprobe.d file, the initramfs configuration of the tool found, the rebuild command, and an undo
 * that puts every byte back.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cli } from "../../test/support/cli.js";
import { treeListing } from "../../test/support/failure-trees.js";
import { FIXTURE_HOSTS } from "../../test/support/status-trees.js";
import { EARLY_JOURNAL, EARLY_MODPROBE_PATH, planEarlyBind } from "./bind-early.js";
import { resolveTargets } from "./bind-targets.js";
import { applyBootargs, undoBootargs, type Runner } from "./bootargs-apply.js";
import { IommuError } from "../core/errors.js";
import { gatherStatusWithFacts } from "./status.js";
import { RootView } from "./views/root-view.js";

const TREE = join(FIXTURE_HOSTS, "qemu-a-early-bind-lost");

/** Writes files into a tree copy (parents created). */
function put(dir: string, files: Record<string, string>): void {
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(join(dir, p, ".."), { recursive: true });
    writeFileSync(join(dir, p), text);
  }
}

/** The copy without Debian's initramfs-tools. */
function noInitramfsTools(dir: string): void {
  rmSync(join(dir, "etc/initramfs-tools"), { recursive: true });
  rmSync(join(dir, "usr/sbin/update-initramfs"));
}

function withCopy(fn: (dir: string, view: RootView) => void, edit: (dir: string) => void = () => {}): void {
  const dir = mkdtempSync(join(tmpdir(), "iommu-early-"));
  try {
    cpSync(TREE, dir, { recursive: true, verbatimSymlinks: true });
    edit(dir);
    fn(dir, new RootView(dir));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function plan(view: RootView, bdf = "00:06.0", group = true) {
  const t = resolveTargets(view, bdf, group);
  return planEarlyBind(view, gatherStatusWithFacts(view).facts, t.devices.map((d) => ({ device: d, hostDriver: d.driver })));
}

test("--early on initramfs-tools: modprobe.d options and softdep, the modules file, update-initramfs; undo restores every byte", () => {
  withCopy((dir, view) => {
    const before = treeListing(dir);
    const p = plan(view);
    assert.deepEqual(p.ids, ["8086:100e"]);
    assert.deepEqual(p.softdeps, ["e1000"]);
    assert.equal(p.initramfs, "initramfs-tools");
    assert.match(p.notes.join("\n"), /0000:02:01\.0 \(8086:100e, e1000\) will go to vfio-pci at boot too/);
    const ran: string[][] = [];
    const run: Runner = (argv) => (ran.push([...argv]), { status: 0, stdout: "", stderr: "" });
    const r = applyBootargs(p.plan, { root: view, execute: true, run, journal: EARLY_JOURNAL });
    assert.deepEqual(ran, [["update-initramfs", "-u", "-k", "all"]]);
    assert.deepEqual(r.files.map((f) => f.path), [EARLY_MODPROBE_PATH, "/etc/initramfs-tools/modules"]);
    assert.equal(
      readFileSync(join(dir, EARLY_MODPROBE_PATH), "utf8"),
      "# Written by 'iommu bind --persist --early': vfio-pci claims these devices at boot, before their drivers.\n" +
        "# 'iommu bind --early --undo' restores the files this changed.\noptions vfio-pci ids=8086:100e\nsoftdep e1000 pre: vfio-pci\n",
    );
    assert.match(readFileSync(join(dir, "etc/initramfs-tools/modules"), "utf8"), /in the order below\.\nvfio\nvfio_iommu_type1\nvfio_pci\n$/);
    assert.ok(existsSync(join(dir, "etc/initramfs-tools/modules.iommu-kit.bak")));
    // The doctor now sees the configuration in place: only the reboot is left (the devices are still on e1000).
    const lost = gatherStatusWithFacts(view).report.problems.find((x) => x.code === "EARLY_BIND_LOST");
    assert.equal(lost?.hint, "1. rebuild the initramfs: sudo update-initramfs -u -k all; 2. reboot");
    // Running it again changes nothing.
    assert.equal(plan(view).plan.fileEdits.length, 0);
    ran.length = 0;
    const u = undoBootargs({ root: view, execute: true, run, journal: EARLY_JOURNAL });
    assert.equal(u.changed, true);
    assert.deepEqual(ran, [["update-initramfs", "-u", "-k", "all"]]);
    assert.deepEqual(treeListing(dir), before, "every file as it was, the created one gone, no journal or backup left");
  });
});

test("--early on mkinitcpio and dracut systems edits their own configuration", () => {
  const arch = (dir: string) => {
    noInitramfsTools(dir);
    put(dir, { "etc/mkinitcpio.conf": "# vim:set ft=sh\nMODULES=(ext4)\nHOOKS=(base udev autodetect modconf block filesystems)\n", "usr/bin/mkinitcpio": "" });
  };
  withCopy((dir, view) => {
    const p = plan(view, "00:06.0", false);
    assert.equal(p.initramfs, "mkinitcpio");
    assert.deepEqual(p.plan.regenerate, ["mkinitcpio", "-P"]);
    applyBootargs(p.plan, { root: view, execute: false, journal: EARLY_JOURNAL });
    assert.equal(readFileSync(join(dir, "etc/mkinitcpio.conf"), "utf8"), "# vim:set ft=sh\nMODULES=(vfio vfio_iommu_type1 vfio_pci ext4)\nHOOKS=(base udev autodetect modconf block filesystems)\n");
  }, arch);
  withCopy((dir, view) => {
    const p = plan(view, "00:06.0", false);
    assert.equal(p.initramfs, "dracut");
    const r = applyBootargs(p.plan, { root: view, execute: false, journal: EARLY_JOURNAL });
    assert.deepEqual(r.pending, [["dracut", "--regenerate-all", "--force"]], "under --root the rebuild is printed, not run");
    assert.equal(readFileSync(join(dir, "etc/dracut.conf.d/10-iommu-kit-vfio.conf"), "utf8"), 'force_drivers+=" vfio vfio_iommu_type1 vfio_pci "\n');
  }, (dir) => {
    noInitramfsTools(dir);
    put(dir, { "etc/dracut.conf": "", "usr/bin/dracut": "" });
  });
});

test("--early refuses a vfio-pci built into the kernel before writing anything", () => {
  withCopy((dir, view) => {
    const before = treeListing(dir);
    assert.throws(() => plan(view), (e: unknown) => e instanceof IommuError && e.code === "VFIO_PCI_BUILTIN" && /vfio-pci\.ids=8086:100e on the kernel command line/.test(e.hint ?? ""));
    assert.deepEqual(treeListing(dir), before);
  }, (dir) => put(dir, { "proc/sys/kernel/osrelease": "6.1.0-56-amd64\n", "boot/config-6.1.0-56-amd64": "CONFIG_VFIO=y\nCONFIG_VFIO_PCI=y\n" }));
});

test("CLI: bind --early --undo restores under --root; --early needs --persist; --undo needs --early and no device", async () => {
  const dir = mkdtempSync(join(tmpdir(), "iommu-early-cli-"));
  try {
    cpSync(TREE, dir, { recursive: true, verbatimSymlinks: true });
    const before = treeListing(dir);
    const view = new RootView(dir);
    applyBootargs(plan(view).plan, { root: view, execute: false, journal: EARLY_JOURNAL });
    const again = await cli(["bind", "--early", "--undo", "--root", dir]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /early binding: restored \/etc\/modprobe\.d\/iommu-kit-vfio\.conf\n/);
    assert.match(again.stdout, /not run \(--root examines another system\), run inside it: update-initramfs -u -k all/);
    assert.deepEqual(treeListing(dir), before);
    const nothing = await cli(["bind", "--early", "--undo", "--root", dir]);
    assert.equal(nothing.code, 2);
    assert.match(nothing.stderr, /\[NOTHING_TO_UNDO\]/);
    for (const argv of [["bind", "00:06.0", "--early", "--root", dir], ["bind", "--undo", "--root", dir], ["bind", "00:06.0", "--early", "--undo", "--root", dir], ["bind", "--root", dir]]) {
      const r = await cli(argv);
      assert.equal(r.code, 2, argv.join(" "));
      assert.match(r.stderr, /\[USAGE\]/);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
