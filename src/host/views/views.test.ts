/**
 * One suite, run against every SysfsView source: a root prefix over a fixture tree, a snapshot recorded from it,
 * and the recording view itself. All must answer the same reads the same way.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { REPO } from "../../../test/support/program.js";
import { permissionCheckedCommand } from "../../../test/support/unprivileged.js";
import { IommuError } from "../../core/errors.js";
import type { SysfsView } from "../sysfs-view.js";
import { RecordingView } from "./recording-view.js";
import { RootView } from "./root-view.js";
import { SnapshotView } from "./snapshot-view.js";
import { openView, openWritableView, requireSysfs } from "./open.js";
import { parseSnapshot, SNAPSHOT_VERSION } from "./snapshot-format.js";

const FIXTURE = "test/fixtures/hosts/intel-ready";
const GPU = "/sys/bus/pci/devices/0000:01:00.0";

/** The reads the suite makes; a recording of them is enough for the snapshot view to answer the same. */
function exercise(v: SysfsView): void {
  v.readText("/proc/cmdline");
  v.readBytes("/sys/firmware/acpi/tables/DMAR");
  v.readText(`${GPU}/vendor`);
  v.readLink(`${GPU}/iommu_group`);
  v.readLink(`${GPU}/driver`);
  v.readLink(GPU);
  v.list("/sys/kernel/iommu_groups");
  v.list("/sys/kernel/iommu_groups/12/devices");
  v.readText("/sys/class/iommu/dmar0/intel-iommu/ecap");
  v.readText("/sys/no/such/file");
  v.exists("/sys/kernel/iommu_groups/12");
  v.exists("/sys/kernel/iommu_groups/99");
}

function recordedSnapshot(): SnapshotView {
  const rec = new RecordingView(new RootView(FIXTURE));
  exercise(rec);
  return new SnapshotView(rec.toSnapshot("iommu-kit test", { hostname: "fixture" }), "recorded");
}

const sources: [string, () => SysfsView][] = [
  ["root prefix", () => new RootView(FIXTURE)],
  ["recording", () => new RecordingView(new RootView(FIXTURE))],
  ["snapshot", recordedSnapshot],
];

for (const [name, make] of sources) {
  describe(`SysfsView contract: ${name}`, () => {
    it("reads text files", () => {
      const v = make();
      assert.match(v.readText("/proc/cmdline") ?? "", /intel_iommu=on iommu=pt/);
      assert.equal(v.readText(`${GPU}/vendor`), "0x10de\n");
      assert.equal(v.readText("/sys/class/iommu/dmar0/intel-iommu/ecap"), "f050da\n");
    });
    it("reads binary files byte-exact", () => {
      const b = make().readBytes("/sys/firmware/acpi/tables/DMAR");
      assert.ok(b !== null);
      assert.equal(String.fromCharCode(...b.subarray(0, 4)), "DMAR");
      assert.equal(b.length, 136);
      assert.equal(b.reduce((s, x) => (s + x) & 0xff, 0), 0, "checksum survives");
    });
    it("reads links as stored (relative)", () => {
      const v = make();
      assert.equal(v.readLink(`${GPU}/iommu_group`), "../../../../kernel/iommu_groups/12");
      assert.equal(v.readLink(`${GPU}/driver`), "../../../../bus/pci/drivers/vfio-pci");
      assert.equal(v.readLink(GPU), "../../../devices/pci0000:00/0000:00:1c.0/0000:01:00.0");
    });
    it("lists directories sorted", () => {
      const v = make();
      assert.deepEqual(v.list("/sys/kernel/iommu_groups"), ["0", "1", "12", "2", "3"]);
      assert.deepEqual(v.list("/sys/kernel/iommu_groups/12/devices"), ["0000:01:00.0", "0000:01:00.1"]);
    });
    it("answers absent paths with null / false", () => {
      const v = make();
      assert.equal(v.readText("/sys/no/such/file"), null);
      assert.equal(v.exists("/sys/kernel/iommu_groups/99"), false);
      assert.equal(v.exists("/sys/kernel/iommu_groups/12"), true);
    });
  });
}

describe("RootView", () => {
  it("resolves absolute links inside the root, never on the host", () => {
    const dir = mkdtempSync(join(tmpdir(), "iommu-view-"));
    try {
      mkdirSync(join(dir, "etc"), { recursive: true });
      writeFileSync(join(dir, "etc/hostname"), "inside\n");
      symlinkSync("/etc/hostname", join(dir, "name"));
      symlinkSync("../../etc", join(dir, "up"));
      const v = new RootView(dir);
      assert.equal(v.readText("/name"), "inside\n");
      assert.equal(v.readText("/up/hostname"), "inside\n", "'..' cannot climb out of the root");
      assert.equal(v.readLink("/name"), "/etc/hostname");
      assert.equal(v.readLink("/etc/hostname"), null, "a regular file is not a link");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("reports an unreadable file as PERMISSION_DENIED naming the view path", () => {
    const dir = mkdtempSync(join(tmpdir(), "iommu-view-"));
    try {
      mkdirSync(join(dir, "sys/firmware/acpi/tables"), { recursive: true });
      writeFileSync(join(dir, "sys/firmware/acpi/tables/DMAR"), "DMAR");
      chmodSync(join(dir, "sys/firmware/acpi/tables/DMAR"), 0o000);
      // In a child that file permissions bind (as root too), so the refusal is real.
      const read = `import("./src/host/views/root-view.ts").then(({ RootView }) => {
        try { new RootView(${JSON.stringify(dir)}).readBytes("/sys/firmware/acpi/tables/DMAR"); console.log("read"); }
        catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }
      })`;
      const [cmd, args] = permissionCheckedCommand(["--import", "tsx", "-e", read]);
      const r = spawnSync(cmd, args, { cwd: REPO, encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      const e = JSON.parse(r.stdout) as { code: string; message: string };
      assert.equal(e.code, "PERMISSION_DENIED");
      assert.ok(e.message.startsWith("/sys/firmware/acpi/tables/DMAR"), e.message);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("writes through a writable view", () => {
    const dir = mkdtempSync(join(tmpdir(), "iommu-view-"));
    try {
      mkdirSync(join(dir, "sys/bus/pci/devices/0000:01:00.0"), { recursive: true });
      const v = openWritableView({ root: dir });
      v.writeText("/sys/bus/pci/devices/0000:01:00.0/driver_override", "vfio-pci");
      assert.equal(v.readText("/sys/bus/pci/devices/0000:01:00.0/driver_override"), "vfio-pci");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("RecordingView", () => {
  it("records failures so a replay fails the same way", () => {
    const denied: SysfsView = {
      description: "test",
      readText: () => {
        throw new IommuError("PERMISSION_DENIED", "/sys/x: permission denied", { hint: "run as root" });
      },
      readBytes: () => null,
      readLink: () => null,
      list: () => null,
      exists: () => true,
    };
    const rec = new RecordingView(denied);
    assert.throws(() => rec.readText("/sys/x"), /permission denied/);
    const snap = new SnapshotView(rec.toSnapshot("t", {}));
    assert.throws(
      () => snap.readText("/sys/x"),
      (e: unknown) => e instanceof IommuError && e.code === "PERMISSION_DENIED" && e.hint === "run as root",
    );
  });

  it("records an existing non-link path probed with readLink as what it is", () => {
    const rec = new RecordingView(new RootView(FIXTURE));
    assert.equal(rec.readLink("/proc/cmdline"), null);
    const snap = new SnapshotView(rec.toSnapshot("t", {}));
    assert.equal(snap.exists("/proc/cmdline"), true);
    assert.match(snap.readText("/proc/cmdline") ?? "", /^BOOT_IMAGE=/);
  });
});

describe("SnapshotView", () => {
  const doc = (entries: Record<string, unknown>, version = SNAPSHOT_VERSION) => ({
    format: "iommu-kit-snapshot",
    version,
    createdBy: "hand",
    host: {},
    entries,
  });

  it("follows recorded links on path prefixes and lists implicit directories", () => {
    const v = new SnapshotView(
      parseSnapshot(
        doc({
          "/sys/bus/pci/devices/0000:00:02.0": { kind: "link", target: "../../../devices/pci0000:00/0000:00:02.0" },
          "/sys/devices/pci0000:00/0000:00:02.0/vendor": { kind: "file", text: "0x8086\n" },
          "/sys/devices/pci0000:00/0000:00:02.0/device": { kind: "file", text: "0x4680\n" },
        }),
        "hand.json",
      ),
    );
    assert.equal(v.readText("/sys/bus/pci/devices/0000:00:02.0/vendor"), "0x8086\n");
    assert.deepEqual(v.list("/sys/bus/pci/devices/0000:00:02.0"), ["device", "vendor"]);
    assert.deepEqual(v.list("/sys/bus/pci/devices"), ["0000:00:02.0"]);
    assert.equal(v.exists("/sys/devices"), true);
  });

  it("resolves a relative link from its real directory when the parent is itself a link", () => {
    const v = new SnapshotView(
      parseSnapshot(
        doc({
          "/sys/bus/pci/devices/0000:01:00.0": { kind: "link", target: "../../../devices/pci0000:00/0000:00:1c.0/0000:01:00.0" },
          "/sys/bus/pci/devices/0000:01:00.0/iommu_group": { kind: "link", target: "../../../../kernel/iommu_groups/12" },
          "/sys/kernel/iommu_groups/12/type": { kind: "file", text: "DMA\n" },
        }),
        "links.json",
      ),
    );
    assert.equal(v.readText("/sys/bus/pci/devices/0000:01:00.0/iommu_group/type"), "DMA\n");
    assert.deepEqual(v.list("/sys/bus/pci/devices/0000:01:00.0/iommu_group"), ["type"]);
    assert.equal(v.exists("/sys/bus/pci/devices/0000:01:00.0/iommu_group"), true);
  });

  it("rejects a snapshot from a newer format version", () => {
    assert.throws(
      () => parseSnapshot(doc({}, SNAPSHOT_VERSION + 1), "new.json"),
      (e: unknown) => e instanceof IommuError && e.code === "SNAPSHOT_VERSION" && e.exitCode === 2 && /new\.json/.test(e.message),
    );
  });

  it("rejects documents that are not snapshots, naming the bad entry", () => {
    assert.throws(() => parseSnapshot({ hello: 1 }, "x.json"), /x\.json: not an iommu-kit snapshot/);
    assert.throws(() => parseSnapshot(doc({ "/a": { kind: "weird" } }), "x.json"), /entry '\/a' has unknown kind 'weird'/);
    assert.throws(() => parseSnapshot(doc({ "proc/cmdline": { kind: "absent" } }), "x.json"), /x\.json: entry 'proc\/cmdline' is not an absolute path/);
  });

  it("loads from disk with clear errors for missing and malformed files", () => {
    const dir = mkdtempSync(join(tmpdir(), "iommu-snap-"));
    try {
      assert.throws(() => SnapshotView.load(join(dir, "none.json")), (e: unknown) => e instanceof IommuError && e.code === "FILE_NOT_FOUND");
      writeFileSync(join(dir, "bad.json"), "{");
      assert.throws(() => SnapshotView.load(join(dir, "bad.json")), (e: unknown) => e instanceof IommuError && e.code === "SNAPSHOT_INVALID");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("openView", () => {
  it("refuses --root with --snapshot, a missing root, and a tree without /sys", () => {
    assert.throws(() => openView({ root: "/", snapshot: "x.json" }), (e: unknown) => e instanceof IommuError && e.code === "USAGE");
    assert.throws(() => openView({ root: "/no/such/dir" }), (e: unknown) => e instanceof IommuError && e.code === "ROOT_NOT_FOUND");
    const dir = mkdtempSync(join(tmpdir(), "iommu-empty-"));
    try {
      assert.throws(() => requireSysfs(openView({ root: dir })), (e: unknown) => e instanceof IommuError && e.code === "NO_SYSFS");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    assert.doesNotThrow(() => requireSysfs(openView({ root: FIXTURE })));
  });
  it("refuses to write to a snapshot", () => {
    assert.throws(() => openWritableView({ snapshot: "x.json" }), (e: unknown) => e instanceof IommuError && e.code === "READ_ONLY_VIEW");
  });
});
