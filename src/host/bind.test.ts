import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { IommuError } from "../core/errors.js";
import { FakeHost, type FakeDevice, type FakeHostOptions } from "../../test/support/fake-host.js";
import { bindVfio, renderBind, unbindVfio } from "./bind.js";
import { persistedAddresses, udevRuleLine, updatePersist, UDEV_RULES_PATH } from "./bind-persist.js";
import { defaultRouteInterfaces, findHostUses, parseMountinfo } from "./host-use.js";
import { listPciDevices } from "./pci.js";
import { RootView } from "./views/root-view.js";
import { cli } from "../../test/support/cli.js";

const isCode = (code: string) => (e: unknown) => e instanceof IommuError && e.code === code;

const ROOT_PORT: FakeDevice = { address: "0000:00:1c.0", classCode: 0x060400, driver: "pcieport", nativeDriver: "pcieport", group: 8 };
const NIC: FakeDevice = { address: "0000:00:02.0", classCode: 0x020000, vendor: 0x8086, device: 0x10d3, driver: "e1000e", nativeDriver: "e1000e", group: 3 };
const GPU: FakeDevice = { address: "0000:01:00.0", parent: "0000:00:1c.0", classCode: 0x030000, vendor: 0x10de, driver: "nouveau", nativeDriver: "nouveau", group: 8 };
const AUDIO: FakeDevice = { address: "0000:01:00.1", parent: "0000:00:1c.0", classCode: 0x040300, vendor: 0x10de, driver: "snd_hda_intel", nativeDriver: "snd_hda_intel", group: 8 };

function withHost(opts: Partial<FakeHostOptions>, fn: (h: FakeHost) => void): void {
  const h = new FakeHost({ devices: [NIC, ROOT_PORT, GPU, AUDIO], ...opts });
  try {
    fn(h);
  } finally {
    h.dispose();
  }
}

test("bind moves an e1000e to vfio-pci with driver_override, unbind, drivers_probe; /dev/vfio/N appears", () => {
  withHost({}, (h) => {
    const r = bindVfio(h.view, "00:02.0");
    assert.deepEqual(h.writes, [
      '/sys/bus/pci/devices/0000:00:02.0/driver_override <- "vfio-pci\\n"',
      '/sys/bus/pci/drivers/e1000e/unbind <- "0000:00:02.0"',
      '/sys/bus/pci/drivers_probe <- "0000:00:02.0"',
    ]);
    assert.deepEqual(r.devices.map((d) => [d.address, d.before, d.after, d.changed]), [["0000:00:02.0", "e1000e", "vfio-pci", true]]);
    assert.equal(r.vfioDevice, "/dev/vfio/3");
    assert.equal(r.vfioDevicePresent, true);
    assert.deepEqual(h.vfioNodes(), ["3", "vfio"]);
    assert.match(renderBind(r), /^0000:00:02\.0: e1000e -> vfio-pci\nVFIO group device: \/dev\/vfio\/3\n$/);

    h.writes.length = 0;
    const again = bindVfio(h.view, "0000:00:02.0");
    assert.equal(again.devices[0]?.changed, false);
    assert.deepEqual(h.writes, [], "binding a bound device writes nothing");

    const u = unbindVfio(h.view, "00:02.0");
    assert.deepEqual(h.writes, [
      '/sys/bus/pci/devices/0000:00:02.0/driver_override <- "\\n"',
      '/sys/bus/pci/drivers/vfio-pci/unbind <- "0000:00:02.0"',
      '/sys/bus/pci/drivers_probe <- "0000:00:02.0"',
    ]);
    assert.deepEqual(u.devices.map((d) => [d.before, d.after]), [["vfio-pci", "e1000e"]]);
    assert.equal(h.view.readText("/sys/bus/pci/devices/0000:00:02.0/driver_override"), "(null)\n");
    assert.deepEqual(h.vfioNodes(), ["vfio"], "/dev/vfio/3 goes away with the last device");
  });
});

test("--group binds every endpoint of the group and leaves the bridge on pcieport", () => {
  withHost({}, (h) => {
    const r = bindVfio(h.view, "01:00.0", { group: true });
    assert.deepEqual(r.devices.map((d) => [d.address, d.before, d.after]), [
      ["0000:01:00.0", "nouveau", "vfio-pci"],
      ["0000:01:00.1", "snd_hda_intel", "vfio-pci"],
    ]);
    assert.deepEqual(r.skipped, [{ address: "0000:00:1c.0", reason: "bridge (stays with pcieport)" }]);
    assert.equal(h.view.readLink("/sys/bus/pci/devices/0000:00:1c.0/driver")?.endsWith("/pcieport"), true);
    assert.deepEqual(r.notes, []);
    unbindVfio(h.view, "01:00.0", { group: true });
    assert.deepEqual(listPciDevices(h.view).map((d) => d.driver), ["e1000e", "pcieport", "nouveau", "snd_hda_intel"]);
  });
});

test("binding one device of a shared group says the rest of the group must follow", () => {
  withHost({}, (h) => {
    const r = bindVfio(h.view, "01:00.0");
    assert.equal(r.notes.length, 1);
    assert.match(r.notes[0] ?? "", /group 8 also holds 0000:01:00\.1 \(snd_hda_intel\).*--group/);
  });
});

test("host-critical devices are refused without --force, before anything is written", () => {
  withHost({ devices: [NIC, ROOT_PORT, { ...GPU, bootVga: true }, AUDIO] }, (h) => {
    assert.throws(() => bindVfio(h.view, "01:00.0"), (e: unknown) => isCode("HOST_DEVICE")(e) && /boot display/.test((e as Error).message));
    assert.deepEqual(h.writes, []);
    const r = bindVfio(h.view, "01:00.0", { force: true });
    assert.deepEqual(r.forced, [{ address: "0000:01:00.0", uses: [{ kind: "boot-vga", detail: "is the boot display (boot_vga=1)" }] }]);
    assert.match(renderBind(r), /warning: forced: 0000:01:00\.0 is the boot display/);
  });
  const nvme: FakeDevice = { address: "0000:02:00.0", classCode: 0x010802, driver: "nvme", nativeDriver: "nvme", group: 5 };
  withHost(
    {
      devices: [NIC, nvme],
      mounts: [{ on: "0000:02:00.0", disk: "nvme0n1", partition: "nvme0n1p2", devno: "259:2", mountPoint: "/" }],
      nics: [{ on: "0000:00:02.0", iface: "eno1" }],
      bridges: { br0: ["eno1"] },
      defaultRoute: ["br0"],
    },
    (h) => {
      assert.throws(() => bindVfio(h.view, "02:00.0"), (e: unknown) => isCode("HOST_DEVICE")(e) && /backs \/ \(ext4\) \(nvme0n1p2\)/.test((e as Error).message));
      assert.throws(() => bindVfio(h.view, "00:02.0"), (e: unknown) => isCode("HOST_DEVICE")(e) && /carries the default route \(br0\)/.test((e as Error).message));
      assert.deepEqual(h.writes, []);
    },
  );
});

test("preconditions fail before any write: vfio-pci not loaded, no IOMMU group, unknown device, bridge", () => {
  withHost({ loadedDrivers: ["e1000e", "pcieport", "nouveau", "snd_hda_intel"] }, (h) => {
    assert.throws(() => bindVfio(h.view, "00:02.0"), (e: unknown) => isCode("VFIO_PCI_NOT_LOADED")(e) && (e as IommuError).hint === "run 'modprobe vfio-pci' and try again");
    assert.deepEqual(h.writes, []);
  });
  withHost({ devices: [{ ...NIC, group: null }] }, (h) => {
    assert.throws(() => bindVfio(h.view, "00:02.0"), isCode("NO_IOMMU_GROUP"));
    assert.throws(() => bindVfio(h.view, "00:05.0"), isCode("DEVICE_NOT_FOUND"));
    assert.deepEqual(h.writes, []);
  });
  withHost({}, (h) => {
    assert.throws(() => bindVfio(h.view, "00:1c.0"), isCode("DEVICE_IS_BRIDGE"));
  });
});

test("when vfio-pci does not take the device it is given back to its own driver", () => {
  withHost({ devices: [{ ...NIC, vfioProbeFails: true }] }, (h) => {
    assert.throws(() => bindVfio(h.view, "00:02.0"), (e: unknown) => isCode("BIND_FAILED")(e) && /driver is now e1000e/.test((e as Error).message));
    assert.equal(h.view.readLink("/sys/bus/pci/devices/0000:00:02.0/driver")?.endsWith("/e1000e"), true);
    assert.equal(h.view.readText("/sys/bus/pci/devices/0000:00:02.0/driver_override"), "(null)\n");
  });
});

test("--persist writes one udev rule per device and unbind removes it", () => {
  withHost({}, (h) => {
    const root = new RootView(h.root);
    const r1 = updatePersist(root, ["0000:01:00.0", "0000:01:00.1"], []);
    assert.deepEqual(r1.added, ["0000:01:00.0", "0000:01:00.1"]);
    const text = readFileSync(join(h.root, UDEV_RULES_PATH), "utf8");
    assert.deepEqual(persistedAddresses(text), ["0000:01:00.0", "0000:01:00.1"]);
    assert.ok(text.includes(udevRuleLine("0000:01:00.0")));
    assert.match(udevRuleLine("0000:01:00.0"), /^ACTION=="add", SUBSYSTEM=="pci", KERNEL=="0000:01:00\.0", ATTR\{driver_override\}="vfio-pci", RUN\+="\/bin\/sh -c '.*drivers_probe'"$/);
    assert.equal(updatePersist(root, ["0000:01:00.0"], []).changed, false);
    updatePersist(root, [], ["0000:01:00.0"]);
    assert.deepEqual(persistedAddresses(readFileSync(join(h.root, UDEV_RULES_PATH), "utf8")), ["0000:01:00.1"]);
    updatePersist(root, [], ["0000:01:00.1"]);
    assert.equal(existsSync(join(h.root, UDEV_RULES_PATH)), false, "no rules left: the file goes");
  });
});

test("mount tables and routing tables parse as the kernel prints them", () => {
  assert.deepEqual(parseMountinfo("36 35 98:0 /mnt1 /mnt\\040two rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n"), [
    { devno: "98:0", mountPoint: "/mnt two", fsType: "ext3", source: "/dev/root" },
  ]);
  const route = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n" +
    "eno1\t0000A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n" +
    "wlp3s0\t00000000\t0102A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n";
  const v6 = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 enp5s0\n" +
    "00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200 lo\n";
  assert.deepEqual(defaultRouteInterfaces(route, v6), ["wlp3s0", "enp5s0"]);
});

test("the recorded Intel host: its NVMe drive is not flagged without mounts, the GPU is not the boot display", () => {
  const view = new RootView("test/fixtures/hosts/intel-ready");
  const r = findHostUses(view, listPciDevices(view));
  assert.deepEqual(r.uses.get("0000:01:00.0"), undefined);
  assert.deepEqual(r.uses.get("0000:00:02.0")?.map((u) => u.kind), ["boot-vga"]);
  assert.ok(r.unknown.length > 0, "a tree without /proc/self/mountinfo says what it could not check");
});

test("CLI: bind refuses a snapshot, reports errors in one line, and --json describes a no-op", async () => {
  const snap = await cli(["bind", "01:00.0", "--snapshot", "nonexistent.json"]);
  assert.equal(snap.code, 2);
  assert.match(snap.stderr, /\[READ_ONLY_VIEW\]/);
  const missing = await cli(["unbind", "0000:09:00.0", "--root", "test/fixtures/hosts/intel-ready"]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /^iommu: error: no PCI device 0000:09:00\.0 in root test\/fixtures\/hosts\/intel-ready \[DEVICE_NOT_FOUND\]\n/);
  const noop = await cli(["bind", "01:00.0", "--group", "--json", "--root", "test/fixtures/hosts/intel-ready"]);
  assert.equal(noop.code, 0, noop.stderr);
  const j = JSON.parse(noop.stdout) as { group: number; vfioDevice: string; devices: Array<{ changed: boolean }> };
  assert.equal(j.group, 12);
  assert.equal(j.vfioDevice, "/dev/vfio/12");
  assert.deepEqual(j.devices.map((d) => d.changed), [false, false]);
});

test("a failing unbind write leaves no stale override behind", () => {
  withHost({}, (h) => {
    // the kernel rejects the unbind (as when the driver refuses): the override must be cleared again
    const real = h.view.writeText.bind(h.view);
    h.view.writeText = (p, t) => {
      if (p.endsWith("/unbind")) throw new IommuError("IO_ERROR", `${p}: cannot write: Device or resource busy`);
      real(p, t);
    };
    assert.throws(() => bindVfio(h.view, "00:02.0"), /Device or resource busy/);
    assert.equal(h.view.readText("/sys/bus/pci/devices/0000:00:02.0/driver_override"), "(null)\n");
    assert.equal(h.view.readLink("/sys/bus/pci/devices/0000:00:02.0/driver")?.endsWith("/e1000e"), true);
  });
});
