/**
 * Snapshots and the pass-through checks: format version 2 records what the checks read, so a snapshot of a
 * failing host reports the same findings; a version 1 snapshot, which never recorded those inputs, is still
 * read, and the checks say they could not tell instead of passing.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { FAILURE_TREES } from "../../test/support/failure-trees.js";
import { FIXTURE_HOSTS } from "../../test/support/status-trees.js";
import { checkDevice } from "./check.js";
import { gatherGroups } from "./groups.js";
import { recordSnapshot } from "./snapshot.js";
import { gatherStatus } from "./status.js";
import { RootView } from "./views/root-view.js";
import { SnapshotView } from "./views/snapshot-view.js";
import { isV2Path, parseSnapshot, SNAPSHOT_VERSION, type SnapshotFile } from "./views/snapshot-format.js";

const strip = <T extends { source: string }>(r: T): T => ({ ...r, source: "" });

test("a version 2 snapshot of each failure tree reports what the tree reports", () => {
  assert.equal(SNAPSHOT_VERSION, 2);
  for (const t of FAILURE_TREES) {
    const root = new RootView(`${FIXTURE_HOSTS}/${t.name}`);
    const doc = recordSnapshot(root, { createdBy: "test" });
    assert.equal(doc.version, 2);
    const snap = new SnapshotView(parseSnapshot(JSON.parse(JSON.stringify(doc)), t.name));
    assert.deepEqual(strip(gatherStatus(snap)), strip(gatherStatus(root)), t.name);
    assert.deepEqual(strip(gatherGroups(snap, { ids: null })), strip(gatherGroups(root, { ids: null })), t.name);
  }
});

test("the snapshot records the pass-through inputs: /proc/iomem, modprobe.d, the initramfs tool, efivars, module files", () => {
  const paths = (tree: string) => Object.keys(recordSnapshot(new RootView(`${FIXTURE_HOSTS}/${tree}`), { createdBy: "test" }).entries);
  const boot = paths("qemu-a-bootfb-in-bar");
  for (const p of ["/proc/iomem", "/proc/self/limits", "/sys/bus/pci/devices/0000:00:06.0/resource", "/dev/iommu"]) assert.ok(boot.includes(p), p);
  const early = paths("qemu-a-early-bind-lost");
  for (const p of ["/etc/modprobe.d/vfio.conf", "/etc/initramfs-tools/modules", "/usr/sbin/update-initramfs", "/sys/bus/pci/drivers/e1000/module"]) assert.ok(early.includes(p), p);
  const sb = paths("qemu-a-secure-boot");
  for (const p of ["/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c", "/sys/module/module/parameters/sig_enforce", "/lib/modules/6.1.0-56-amd64/updates/dkms/vendor-reset.ko"]) {
    assert.ok(sb.includes(p), p);
  }
});

/** The same recording as format version 1 wrote it: without the paths version 2 added. */
function asVersion1(doc: SnapshotFile): SnapshotFile {
  const entries = Object.fromEntries(Object.entries(doc.entries).filter(([p]) => !isV2Path(p)));
  return parseSnapshot(JSON.parse(JSON.stringify({ ...doc, version: 1, entries })), "old.json");
}

test("a version 1 snapshot is still read; checks whose inputs it lacks say so instead of passing", () => {
  const root = new RootView(`${FIXTURE_HOSTS}/qemu-a-bootfb-in-bar`);
  const old = new SnapshotView(asVersion1(recordSnapshot(root, { createdBy: "test" })));
  const status = gatherStatus(old);
  assert.equal(status.ready, true);
  assert.ok(!status.problems.some((p) => p.code === "BOOT_FRAMEBUFFER_IN_BAR"));
  const incomplete = status.problems.find((p) => p.code === "CHECK_INCOMPLETE");
  assert.match(incomplete?.message ?? "", /could not read \/proc\/iomem \(not recorded \(snapshot format version 1 predates the check that reads it\)\)/);
  const fb = checkDevice(old, "00:06.0").checks.find((c) => c.code === "BOOT_FRAMEBUFFER");
  assert.deepEqual([fb?.ok, fb?.severity], [true, "warning"]);
  const mem = checkDevice(old, "00:06.0").checks.find((c) => c.code === "MEMLOCK");
  assert.match(mem?.message ?? "", /not recorded/);
  // Paths version 1 did record still answer as before.
  assert.equal(old.readText("/proc/cmdline"), root.readText("/proc/cmdline"));
  assert.equal(old.exists("/sys/bus/pci/devices/0000:00:06.0"), true);
});
