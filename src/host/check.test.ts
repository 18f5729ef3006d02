import { test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkDevice, driverKeepsGroupViable, type CheckReport } from "./check.js";
import { RootView } from "./views/root-view.js";
import { FakeHost } from "../../test/support/fake-host.js";
import { cli } from "../../test/support/cli.js";

const HOSTS = "test/fixtures/hosts";
const INTEL = `${HOSTS}/intel-ready`;

const byCode = (r: CheckReport, code: string) => r.checks.find((c) => c.code === code);

function withCopy(name: string, edit: (dir: string) => void, fn: (view: RootView) => void): void {
  const dir = mkdtempSync(join(tmpdir(), "iommu-check-"));
  try {
    cpSync(join(HOSTS, name), dir, { recursive: true, verbatimSymlinks: true });
    edit(dir);
    fn(new RootView(dir));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("a GPU already on vfio-pci in a clean group is ready; next step is the XML", () => {
  const r = checkDevice(new RootView(INTEL), "01:00.0");
  assert.equal(r.ready, true);
  assert.deepEqual(r.device, { address: "0000:01:00.0", ids: "10de:2504", class: "0300", driver: "vfio-pci", group: 12 });
  assert.deepEqual(r.group?.members.map((m) => [m.address, m.driver, m.viable]), [
    ["0000:01:00.0", "vfio-pci", true],
    ["0000:01:00.1", "vfio-pci", true],
  ]);
  assert.deepEqual(
    r.checks.map((c) => [c.code, c.ok]),
    [
      ["IOMMU_ACTIVE", true],
      ["INTERRUPT_REMAPPING", true],
      ["IOMMU_GROUP", true],
      ["HOST_IN_USE", true],
      ["DEVICE_DRIVER", true],
      ["GROUP_VIABLE", true],
      ["RESERVED_REGIONS", true],
      ["DEVICE_POWER", true],
      ["RESET", true],
      ["BOOT_FRAMEBUFFER", true],
      ["EARLY_BINDING", true],
      ["GPU_COMPANIONS", true],
      ["VFIO_PCI_LOADED", true],
      ["MEMLOCK", true],
    ],
  );
  assert.equal(byCode(r, "RESET")?.message, "reset available: flr, bus");
  assert.match(byCode(r, "EARLY_BINDING")?.message ?? "", /claimed by vfio-pci at boot \(kernel command line \(vfio-pci\.ids=10de:2504,10de:228e\)\)/);
  assert.match(byCode(r, "GPU_COMPANIONS")?.message ?? "", /0000:01:00\.1 \(HDMI\/DP audio, vfio-pci\)/);
  // No /proc/self/limits in this tree: the limit is not known, and the check says so rather than passing.
  assert.equal(byCode(r, "MEMLOCK")?.severity, "warning");
  assert.match(byCode(r, "MEMLOCK")?.message ?? "", /could not check the locked-memory limit/);
  // Two devices are two documents: the step writes one file each, which is what virsh attach-device takes.
  assert.deepEqual(r.nextSteps, [
    "iommu libvirt-xml 0000:01:00.0 --group --out-dir hostdev/   # one <hostdev> file for each of the 2 devices, for virsh attach-device (or --qemu for QEMU arguments)",
  ]);
});

test("the boot display is not ready: the host uses it", () => {
  const r = checkDevice(new RootView(INTEL), "00:02.0");
  assert.equal(r.ready, false);
  assert.deepEqual(byCode(r, "HOST_IN_USE"), {
    code: "HOST_IN_USE",
    ok: false,
    severity: "error",
    message: "the host uses 0000:00:02.0: it is the boot display (boot_vga=1)",
    hint: "pick another device, or move the host off it first",
  });
});

test("a 'direct' reserved region blocks assignment, 'direct-relaxable' does not", () => {
  const rr = "sys/kernel/iommu_groups/12/reserved_regions";
  withCopy("intel-ready", (d) => writeFileSync(join(d, rr), "0x000000007c000000 0x000000007fffffff direct\n0x00000000fee00000 0x00000000feefffff msi\n"), (view) => {
    const r = checkDevice(view, "01:00.0");
    assert.equal(r.ready, false);
    const c = byCode(r, "RESERVED_REGIONS");
    assert.equal(c?.ok, false);
    assert.match(c?.message ?? "", /0x7c000000-0x7fffffff/);
  });
  withCopy("intel-ready", (d) => writeFileSync(join(d, rr), "0x0000000000000000 0x0000000000ffffff direct-relaxable\n"), (view) => {
    const r = checkDevice(view, "01:00.0");
    assert.equal(r.ready, true);
    assert.match(byCode(r, "RESERVED_REGIONS")?.message ?? "", /relaxable direct regions \(0x00000000-0x00ffffff\)/);
  });
});

test("a group member on a host driver must follow: bind with --group is the next step", () => {
  const dev = "sys/devices/pci0000:00/0000:00:1c.0/0000:01:00.1";
  withCopy(
    "intel-ready",
    (d) => {
      unlinkSync(join(d, dev, "driver"));
      mkdirSync(join(d, "sys/bus/pci/drivers/snd_hda_intel"), { recursive: true });
      symlinkSync("../../../../bus/pci/drivers/snd_hda_intel", join(d, dev, "driver"));
    },
    (view) => {
      const r = checkDevice(view, "01:00.0");
      const g = byCode(r, "GROUP_VIABLE");
      assert.equal(g?.ok, false);
      assert.equal(g?.severity, "warning");
      assert.match(g?.message ?? "", /0000:01:00\.1 \(snd_hda_intel\)/);
      assert.equal(r.ready, true, "binding is a step, not a blocker");
      assert.deepEqual(r.nextSteps.slice(0, 1), ["sudo iommu bind 0000:01:00.0 --group"]);
    },
  );
});

test("a group that holds the host's root disk is not viable", () => {
  const h = new FakeHost({
    devices: [
      { address: "0000:02:00.0", classCode: 0x010802, driver: "nvme", nativeDriver: "nvme", group: 5 },
      { address: "0000:02:00.1", classCode: 0x020000, driver: "igb", nativeDriver: "igb", group: 5 },
    ],
    mounts: [{ on: "0000:02:00.0", disk: "nvme0n1", partition: "nvme0n1p2", devno: "259:2", mountPoint: "/" }],
  });
  try {
    const r = checkDevice(h.view, "02:00.1");
    assert.equal(r.ready, false);
    assert.equal(byCode(r, "HOST_IN_USE")?.ok, true);
    const g = byCode(r, "GROUP_VIABLE");
    assert.equal(g?.severity, "error");
    assert.match(g?.message ?? "", /0000:02:00\.0 \(backs \/ \(ext4\) \(nvme0n1p2\)\)/);
  } finally {
    h.dispose();
  }
});

test("viability follows the drivers that set driver_managed_dma", () => {
  assert.equal(driverKeepsGroupViable(null, false), true);
  assert.equal(driverKeepsGroupViable("vfio-pci", false), true);
  assert.equal(driverKeepsGroupViable("pci-stub", false), true);
  assert.equal(driverKeepsGroupViable("mlx5_vfio_pci", false), true);
  assert.equal(driverKeepsGroupViable("pcieport", true), true);
  assert.equal(driverKeepsGroupViable("shpchp", true), false);
  assert.equal(driverKeepsGroupViable("e1000e", false), false);
});

test("CLI: exit 0 ready, 1 not ready, 2 for a bad address, a missing device, no sysfs or a newer snapshot", async () => {
  const ok = await cli(["check", "01:00.0", "--root", INTEL, "--json"]);
  assert.equal(ok.code, 0);
  const j = JSON.parse(ok.stdout) as Record<string, unknown>;
  assert.deepEqual(Object.keys(j).sort(), ["checks", "device", "group", "nextSteps", "ready", "source"]);
  assert.deepEqual(Object.keys((j.checks as object[])[0] ?? {}).sort(), ["code", "hint", "message", "ok", "severity"]);
  const vga = await cli(["check", "00:02.0", "--root", INTEL]);
  assert.equal(vga.code, 1);
  assert.match(vga.stdout, /\[FAIL\] the host uses 0000:00:02\.0/);
  assert.match(vga.stdout, /Not ready for pass-through\./);

  const missing = await cli(["check", "0000:42:00.0", "--root", INTEL]);
  assert.equal(missing.code, 2);
  assert.equal(missing.stderr.split("\n")[0], `iommu: error: no PCI device 0000:42:00.0 in root ${INTEL} [DEVICE_NOT_FOUND]`);
  const bad = await cli(["check", "zz:00.0", "--root", INTEL]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /'zz:00\.0' is not a PCI address \[BAD_BDF\]/);

  const empty = mkdtempSync(join(tmpdir(), "iommu-nosys-"));
  try {
    const nosys = await cli(["check", "01:00.0", "--root", empty]);
    assert.equal(nosys.code, 2);
    assert.match(nosys.stderr, /\[NO_SYSFS\]/);
    const snap = join(empty, "new.json");
    writeFileSync(snap, JSON.stringify({ format: "iommu-kit-snapshot", version: 99, entries: {} }));
    const newer = await cli(["check", "01:00.0", "--snapshot", snap]);
    assert.equal(newer.code, 2);
    assert.match(newer.stderr, /^iommu: error: .*version 99 .* \[SNAPSHOT_VERSION\]\nhint: .*\n$/);
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
  for (const r of [missing, bad]) assert.doesNotMatch(r.stderr, /\n\s+at /);
});
