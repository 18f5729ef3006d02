/**
 * The pass-through failures on host trees derived from the QEMU recordings (test/support/failure-trees.ts says
 * what each changes): one test per finding, through status, check and groups as a user would run them.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildFailureTree, FAILURE_TREES, RELEASE, treeListing } from "../../test/support/failure-trees.js";
import { FIXTURE_HOSTS, variant, type TreeEdits } from "../../test/support/status-trees.js";
import { checkDevice, type CheckReport } from "./check.js";
import { gatherGroups, renderGroupsText } from "./groups.js";
import type { Problem } from "./problem.js";
import { gatherStatus } from "./status.js";
import { RootView } from "./views/root-view.js";

const DEV = "sys/devices/pci0000:00";

interface Seen {
  status: Problem[];
  check: CheckReport | null;
  groupsText: string;
  findings: Map<string, string[]>;
}

/** Status, check of one device and groups on a tree, or on a variant of it. */
function look(tree: string, bdf: string | null, edits: TreeEdits = {}, guestMemory?: number): Seen {
  const v = variant(tree, edits);
  try {
    const view = new RootView(v.root);
    const groups = gatherGroups(view, { ids: null });
    const findings = new Map(groups.groups.flatMap((g) => g.devices).map((d) => [d.address, d.findings.map((f) => f.code)]));
    return {
      status: gatherStatus(view).problems,
      check: bdf === null ? null : checkDevice(view, bdf, { guestMemory: guestMemory ?? null }),
      groupsText: renderGroupsText(groups),
      findings,
    };
  } finally {
    v.cleanup();
  }
}

const codes = (ps: Problem[]) => ps.map((p) => p.code);
const find = (ps: Problem[], code: string) => ps.find((p) => p.code === code);
const item = (r: CheckReport | null, code: string) => r?.checks.find((c) => c.code === code);

test("the derived trees on disk are exactly what their specs make (so their NOTES.md are true)", () => {
  const tmp = mkdtempSync(join(tmpdir(), "iommu-failure-trees-"));
  try {
    for (const t of FAILURE_TREES) {
      buildFailureTree(t, join(tmp, t.name));
      assert.deepEqual(treeListing(join(FIXTURE_HOSTS, t.name)), treeListing(join(tmp, t.name)), `${t.name} differs: run node --import tsx test/support/failure-trees.ts`);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test("DEVICE_IN_D3COLD: a device whose config space reads all ones while power_state says D3cold", () => {
  const s = look("qemu-a-d3cold", "00:04.0");
  const p = find(s.status, "DEVICE_IN_D3COLD");
  assert.equal(p?.severity, "warning", "status: it stops that device, not the host");
  assert.match(p?.message ?? "", /0000:00:04\.0 is in D3cold .*Unknown header type 7f/);
  assert.match(p?.hint ?? "", /echo 0 \| sudo tee \/sys\/bus\/pci\/devices\/0000:00:04\.0\/d3cold_allowed/);
  const c = item(s.check, "DEVICE_POWER");
  assert.deepEqual([c?.ok, c?.severity], [false, "error"]);
  assert.equal(s.check?.ready, false);
  assert.match(s.groupsText, /0000:00:04\.0 .* d3cold/);
});

test("DEVICE_NOT_RESPONDING: all ones while the kernel still thinks the device is in D0", () => {
  const s = look("qemu-a-d3cold", "00:04.0", { [`${DEV}/0000:00:04.0/power_state`]: "D0\n" });
  assert.match(find(s.status, "DEVICE_NOT_RESPONDING")?.message ?? "", /does not answer: .* while the kernel thinks it is in D0/);
  assert.ok(!codes(s.status).includes("DEVICE_IN_D3COLD"));
  assert.equal(item(s.check, "DEVICE_POWER")?.ok, false);
  // The recorded device answers.
  assert.equal(item(look("qemu-a-intel-pt-ir", "00:04.0").check, "DEVICE_POWER")?.ok, true);
});

test("RESET_NONE: the recorded e1000 has no reset method; status reports it once the device is meant for a VM", () => {
  const rec = look("qemu-a-intel-pt-ir", "00:06.0");
  const r = item(rec.check, "RESET");
  assert.deepEqual([r?.ok, r?.severity], [false, "warning"]);
  assert.match(r?.message ?? "", /0000:00:06\.0 has no reset method/);
  assert.ok(!codes(rec.status).includes("RESET_NONE"), "not meant for a VM: status stays quiet");
  const amd = look("qemu-a-amd-gpu-reset", null);
  assert.ok(amd.status.some((p) => p.code === "RESET_NONE" && p.message.startsWith("0000:00:06.0")));
});

test("a bus reset is enough for a device alone on its bus (RESET_BUS_ONLY with a neighbour: passthrough-recorded.test.ts)", () => {
  const alone = item(look("qemu-a-intel-pt-ir", "02:01.0").check, "RESET");
  assert.deepEqual([alone?.ok, alone?.message], [true, "reset available: bus"]);
});

test("AMD_GPU_RESET_BUG: a Polaris GPU on vfio-pci without vendor-reset", () => {
  const s = look("qemu-a-amd-gpu-reset", "00:06.0");
  const p = find(s.status, "AMD_GPU_RESET_BUG");
  assert.match(p?.message ?? "", /AMD Polaris 10 GPU \(RX 470\/480\/570\/580\/590\).*vendor-reset module is not installed for kernel 6\.1\.0-56-amd64/);
  assert.match(p?.hint ?? "", /echo device_specific \| sudo tee \/sys\/bus\/pci\/devices\/0000:00:06\.0\/reset_method/);
  assert.equal(item(s.check, "GPU_RESET")?.ok, false);
  assert.match(s.groupsText, /0000:00:06\.0 .*amd-reset-bug/);
  // Installed but not loaded: load it.
  const installed = look("qemu-a-amd-gpu-reset", "00:06.0", { [`lib/modules/${RELEASE}/updates/dkms/vendor-reset.ko`]: "ELF" });
  assert.match(item(installed.check, "GPU_RESET")?.message ?? "", /vendor-reset is installed \(\/lib\/modules\/6\.1\.0-56-amd64\/updates\/dkms\/vendor-reset\.ko\) but not loaded/);
  assert.match(item(installed.check, "GPU_RESET")?.hint ?? "", /^sudo modprobe vendor-reset/);
});

test("VENDOR_RESET_NOT_SELECTED: vendor-reset loaded, but reset_method does not start with device_specific", () => {
  const modules = "vendor_reset 114688 0 - Live 0x0000000000000000 (OE)\n";
  const bus = look("qemu-a-amd-gpu-reset", "00:06.0", { "proc/modules": modules, [`${DEV}/0000:00:06.0/reset_method`]: "bus\n" });
  assert.match(find(bus.status, "VENDOR_RESET_NOT_SELECTED")?.message ?? "", /reset_method is "bus", so the kernel uses bus instead/);
  assert.ok(!codes(bus.status).includes("AMD_GPU_RESET_BUG"));
  const chosen = look("qemu-a-amd-gpu-reset", "00:06.0", { "proc/modules": modules, [`${DEV}/0000:00:06.0/reset_method`]: "device_specific bus\n" });
  assert.equal(item(chosen.check, "GPU_RESET")?.ok, true);
  assert.ok(!codes(chosen.status).some((c) => c.includes("RESET_BUG") || c === "VENDOR_RESET_NOT_SELECTED"));
});

test("BOOT_FRAMEBUFFER_IN_BAR: BOOTFB inside the GPU's BAR 1 blocks vfio-pci", () => {
  const s = look("qemu-a-bootfb-in-bar", "00:06.0");
  const c = item(s.check, "BOOT_FRAMEBUFFER");
  assert.deepEqual([c?.ok, c?.severity], [false, "error"]);
  assert.equal(c?.message, 'BOOTFB (0xe0000000-0xe07e8fff) holds memory inside BAR 1 (0xe0000000-0xefffffff) of 0000:00:06.0: vfio-pci cannot reserve it ("vfio-pci 0000:00:06.0: BAR 1: can\'t reserve") and the VM fails to start');
  assert.match(c?.hint ?? "", /^add initcall_blacklist=sysfb_init to the kernel command line/);
  assert.equal(s.check?.ready, false);
  assert.equal(find(s.status, "BOOT_FRAMEBUFFER_IN_BAR")?.severity, "warning");
  assert.match(s.groupsText, /0000:00:06\.0 .*bootfb-in-bar/);
  // efifb names its own parameter.
  const efifb = look("qemu-a-bootfb-in-bar", "00:06.0", { "proc/iomem": "40000000-febfffff : PCI Bus 0000:00\n  e0000000-efffffff : 0000:00:06.0\n    e0000000-e07e8fff : efifb\n" });
  assert.match(item(efifb.check, "BOOT_FRAMEBUFFER")?.hint ?? "", /^add video=efifb:off/);
});

test("CHECK_INCOMPLETE: /proc/iomem read without root shows no addresses, and the check says so", () => {
  const zero = "00000000-00000000 : PCI Bus 0000:00\n  00000000-00000000 : 0000:00:06.0\n    00000000-00000000 : BOOTFB\n";
  const s = look("qemu-a-bootfb-in-bar", "00:06.0", { "proc/iomem": zero });
  const c = item(s.check, "BOOT_FRAMEBUFFER");
  assert.deepEqual([c?.ok, c?.severity], [true, "warning"]);
  assert.match(c?.message ?? "", /shows every address as 0 to non-root readers/);
  assert.ok(s.status.some((p) => p.code === "CHECK_INCOMPLETE" && /0000:00:06\.0's memory/.test(p.message)));
});

test("EARLY_BIND_LOST: vfio-pci ids in modprobe.d, but e1000 claimed the devices; the hint is this system's fix", () => {
  const s = look("qemu-a-early-bind-lost", "00:06.0");
  const lost = s.status.filter((p) => p.code === "EARLY_BIND_LOST");
  assert.deepEqual(lost.map((p) => p.message.slice(0, 12)), ["0000:00:06.0", "0000:00:06.1", "0000:02:01.0"]);
  const p = lost[0]!;
  assert.match(p.message, /is listed for vfio-pci \(\/etc\/modprobe\.d\/vfio\.conf:2 \(options vfio-pci ids=8086:100e\)\) but e1000 claimed it first/);
  assert.equal(
    p.hint,
    "1. add the line 'softdep e1000 pre: vfio-pci' to /etc/modprobe.d/vfio.conf (vfio-pci then loads before e1000); " +
      "2. put these lines in /etc/initramfs-tools/modules: vfio, vfio_iommu_type1, vfio_pci; 3. rebuild the initramfs: sudo update-initramfs -u -k all; 4. reboot",
  );
  assert.equal(item(s.check, "EARLY_BINDING")?.ok, false);
  assert.match(s.groupsText, /0000:00:06\.0 .*vfio-ids-lost/);
  // With the softdep and the modules in place, only the rebuild is left.
  const done = look("qemu-a-early-bind-lost", null, {
    "etc/modprobe.d/vfio.conf": "options vfio-pci ids=8086:100e\nsoftdep e1000 pre: vfio-pci\n",
    "etc/initramfs-tools/modules": "vfio\nvfio_iommu_type1\nvfio_pci\n",
  });
  assert.equal(find(done.status, "EARLY_BIND_LOST")?.hint, "1. rebuild the initramfs: sudo update-initramfs -u -k all; 2. reboot");
});

test("EARLY_BIND_LOST on mkinitcpio and dracut systems: their own file, syntax and rebuild command", () => {
  const gone = { "etc/initramfs-tools": null, "usr/sbin/update-initramfs": null };
  const arch = look("qemu-a-early-bind-lost", null, {
    ...gone,
    "etc/mkinitcpio.conf": "MODULES=(ext4)\nHOOKS=(base udev autodetect modconf block filesystems)\n",
    "usr/bin/mkinitcpio": "",
  });
  assert.match(find(arch.status, "EARLY_BIND_LOST")?.hint ?? "", /in \/etc\/mkinitcpio\.conf: MODULES=\(vfio vfio_iommu_type1 vfio_pci ext4\); 3\. rebuild the initramfs: sudo mkinitcpio -P/);
  const fedora = look("qemu-a-early-bind-lost", null, { ...gone, "etc/dracut.conf.d/50-local.conf": 'hostonly="yes"\n', "usr/bin/dracut": "" });
  assert.match(find(fedora.status, "EARLY_BIND_LOST")?.hint ?? "", /in \/etc\/dracut\.conf\.d\/10-vfio\.conf: force_drivers\+=" vfio vfio_iommu_type1 vfio_pci "; 3\. rebuild the initramfs: sudo dracut --regenerate-all --force/);
});

test("VFIO_PCI_OPTIONS_IGNORED: modprobe.d options for a vfio-pci built into the kernel", () => {
  const s = look("qemu-a-early-bind-lost", null, { "proc/sys/kernel/osrelease": `${RELEASE}\n`, [`boot/config-${RELEASE}`]: "CONFIG_VFIO=y\nCONFIG_VFIO_PCI=y\n" });
  const p = find(s.status, "VFIO_PCI_OPTIONS_IGNORED");
  assert.match(p?.message ?? "", /^\/etc\/modprobe\.d\/vfio\.conf:2 sets 'options vfio-pci ids=8086:100e', but vfio-pci is built into this kernel/);
  assert.equal(p?.hint, "put them on the kernel command line instead: vfio-pci.ids=8086:100e");
  assert.match(find(s.status, "EARLY_BIND_LOST")?.hint ?? "", /put vfio-pci\.ids=8086:100e on the kernel command line/);
});

test("EARLY_BIND_UNCLAIMED and a satisfied early binding", () => {
  const s = look("qemu-a-early-bind-lost", "00:06.0", { [`${DEV}/0000:00:06.0/driver`]: null, "sys/bus/pci/drivers/e1000/0000:00:06.0": null });
  assert.match(find(s.status, "EARLY_BIND_UNCLAIMED")?.message ?? "", /^0000:00:06\.0 is listed for vfio-pci .* but no driver has it/);
  // The recorded intel-ready host lists its GPU on the command line and vfio-pci has it.
  assert.equal(item(look("intel-ready", "01:00.0").check, "EARLY_BINDING")?.ok, true);
});

test("DRIVER_OVERRIDE_OTHER: driver_override naming another driver keeps vfio-pci's ids from taking the device", () => {
  const s = look("qemu-a-early-bind-lost", "00:06.0", { [`${DEV}/0000:00:06.0/driver_override`]: "e1000\n" });
  const p = find(s.status, "DRIVER_OVERRIDE_OTHER");
  assert.match(p?.message ?? "", /^driver_override of 0000:00:06\.0 is "e1000": only e1000 may bind it, so vfio-pci's ids .* cannot take it/);
  assert.match(p?.hint ?? "", /echo \| sudo tee \/sys\/bus\/pci\/devices\/0000:00:06\.0\/driver_override/);
  assert.equal(item(s.check, "DRIVER_OVERRIDE")?.ok, false);
});

test("GPU_COMPANION_ON_HOST: the GPU went to vfio-pci, its HDMI audio function did not", () => {
  const s = look("qemu-a-amd-gpu-reset", "00:06.0");
  const p = find(s.status, "GPU_COMPANION_ON_HOST");
  assert.match(p?.message ?? "", /0000:00:06\.0 is a GPU whose slot also holds 0000:00:06\.1 \(HDMI\/DP audio, snd_hda_intel\)/);
  assert.match(p?.hint ?? "", /sudo iommu bind 0000:00:06\.1 \(or list their ids 1002:aaf0 for vfio-pci too\)/);
  assert.equal(item(s.check, "GPU_COMPANIONS")?.ok, false);
  assert.match(s.groupsText, /0000:00:06\.0 .*companion-on-host/);
});

test("SECURE_BOOT_UNSIGNED_MODULE: an unsigned vendor-reset.ko under Secure Boot; the signed kvmfr.ko is fine", () => {
  const s = look("qemu-a-secure-boot", null);
  const p = s.status.filter((x) => x.code === "SECURE_BOOT_UNSIGNED_MODULE");
  assert.equal(p.length, 1);
  assert.match(p[0]!.message, /^\/lib\/modules\/6\.1\.0-56-amd64\/updates\/dkms\/vendor-reset\.ko is not signed and Secure Boot is on .*sig_enforce=Y.*"Key was rejected by service"/);
  assert.match(p[0]!.hint, /sudo mokutil --import \/var\/lib\/dkms\/mok\.pub/);
  const off = look("qemu-a-secure-boot", null, { "sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c": new Uint8Array([6, 0, 0, 0, 0]) });
  assert.ok(!codes(off.status).includes("SECURE_BOOT_UNSIGNED_MODULE"), "Secure Boot off: unsigned modules load");
  const lax = look("qemu-a-secure-boot", null, { "sys/module/module/parameters/sig_enforce": "N\n", "sys/kernel/security/lockdown": "[none] integrity confidentiality\n" });
  assert.ok(!codes(lax.status).includes("SECURE_BOOT_UNSIGNED_MODULE"), "not enforcing: they load (tainting the kernel)");
  const xz = look("qemu-a-secure-boot", null, {
    [`lib/modules/${RELEASE}/updates/dkms/vendor-reset.ko`]: null,
    [`lib/modules/${RELEASE}/updates/dkms/vendor-reset.ko.xz`]: "xz",
  });
  assert.ok(xz.status.some((x) => x.code === "CHECK_INCOMPLETE" && /could not tell whether .*vendor-reset\.ko\.xz is signed/.test(x.message)));
});

test("MEMLOCK_LIMIT_LOW: an 8 MiB RLIMIT_MEMLOCK against the host's RAM, or the guest's with --guest-memory", () => {
  const s = look("qemu-a-memlock", "00:02.0");
  assert.match(find(s.status, "MEMLOCK_LIMIT_LOW")?.message ?? "", /is 8 MiB, below this host's 981\.3 MiB of RAM: .*VFIO_MAP_DMA: ENOMEM/);
  const m = item(s.check, "MEMLOCK");
  assert.deepEqual([m?.ok, m?.severity], [false, "warning"]);
  const guest = look("qemu-a-memlock", "00:02.0", {}, 512 * 1024 * 1024);
  assert.deepEqual([item(guest.check, "MEMLOCK")?.severity, guest.check?.ready], ["error", false]);
  assert.match(item(guest.check, "MEMLOCK")?.message ?? "", /below the guest's 512 MiB/);
  const root = look("qemu-a-memlock", "00:02.0", { "proc/self/status": "CapEff:\t000001ffffffffff\n" });
  assert.match(item(root.check, "MEMLOCK")?.message ?? "", /has CAP_IPC_LOCK/);
  assert.ok(!codes(root.status).includes("MEMLOCK_LIMIT_LOW"));
});

test("IOMMUFD_REFUSES_UNSAFE_INTERRUPTS: type1 accepts unsafe interrupts, iommufd does not", () => {
  const s = look("qemu-f-iommufd", null);
  assert.match(find(s.status, "IOMMUFD_REFUSES_UNSAFE_INTERRUPTS")?.message ?? "", /allow_unsafe_interrupts is Y, but \/dev\/iommu exists and .*iommufd.* is N/);
  const both = look("qemu-f-iommufd", null, { "sys/module/iommufd/parameters/allow_unsafe_interrupts": "Y\n" });
  assert.ok(!codes(both.status).includes("IOMMUFD_REFUSES_UNSAFE_INTERRUPTS"));
});

test("VFIO_TYPE1_PARAMETER_IGNORED: with iommufd as the VFIO container, the type1 switch does nothing and the host is not ready", () => {
  const v = variant("qemu-f-iommufd", {
    "proc/sys/kernel/osrelease": `${RELEASE}\n`,
    [`boot/config-${RELEASE}`]: "CONFIG_VFIO=y\nCONFIG_IOMMUFD=y\nCONFIG_IOMMUFD_VFIO_CONTAINER=y\n# CONFIG_VFIO_CONTAINER is not set\n",
    "sys/module/vfio_iommu_type1": null,
  });
  try {
    const r = gatherStatus(new RootView(v.root));
    assert.ok(codes(r.problems).includes("VFIO_TYPE1_PARAMETER_IGNORED"));
    assert.equal(r.kernel.vfio.container, "iommufd");
    assert.equal(r.kernel.allowUnsafeInterrupts, false, "iommufd's own switch is N");
    assert.equal(r.ready, false);
    assert.ok(codes(r.problems).includes("INTERRUPT_REMAPPING_DISABLED"));
  } finally {
    v.cleanup();
  }
});
