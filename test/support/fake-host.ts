/**
 * Test support: a small sysfs tree in a temporary directory and a fake kernel that reacts to writes the way
 * Linux's PCI core does (drivers/pci/pci-sysfs.c driver_override, drivers/base/bus.c unbind and drivers_probe):
 * - driver_override stores a driver name; an empty write (or "\n") clears it and reads back "(null)";
 * - DRIVER/unbind detaches the named device when DRIVER is bound to it, else fails (ENODEV);
 * - drivers_probe offers an unbound device to the loaded drivers: only the override driver when one is set,
 *   otherwise the device's native driver; vfio-pci refuses devices without an IOMMU group and, when it binds,
 *   /dev/vfio/GROUP appears (and goes away when the last device of the group leaves vfio-pci).
 * Links are relative, as in real sysfs, so the tree reads through RootView exactly like a recorded host.
 */
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, writeFileSync, existsSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import { IommuError } from "../../src/core/errors.js";
import type { WritableSysfsView } from "../../src/host/sysfs-view.js";
import { RootView } from "../../src/host/views/root-view.js";

export interface FakeDevice {
  address: string;
  /** Upstream bridge address, or undefined for a device on the root bus. */
  parent?: string;
  classCode: number;
  vendor?: number;
  device?: number;
  /** Driver bound now. */
  driver: string | null;
  /** Driver that claims it on drivers_probe when no override is set. */
  nativeDriver: string | null;
  group: number | null;
  bootVga?: boolean;
  /** vfio-pci's probe fails for this device (as when its reset or config space is broken). */
  vfioProbeFails?: boolean;
}

export interface FakeHostOptions {
  devices: FakeDevice[];
  /** Drivers whose directories exist under /sys/bus/pci/drivers (vfio-pci unless left out). */
  loadedDrivers?: string[];
  /** Block devices: a partition NAME on DISK of device ON, mounted at MOUNT (via /proc/self/mountinfo). */
  mounts?: Array<{ on: string; disk: string; partition: string; devno: string; mountPoint: string; fsType?: string }>;
  /** Network interfaces of PCI devices, and which of them carry the default route. */
  nics?: Array<{ on: string; iface: string }>;
  /** Linux bridges: name → member interfaces. */
  bridges?: Record<string, string[]>;
  defaultRoute?: string[];
}

const rel = (fromViewDir: string, toView: string) => posix.relative(fromViewDir, toView);

export class FakeHost {
  readonly root: string;
  readonly view: WritableSysfsView;
  /** Every write the kernel saw: "PATH <- VALUE". */
  readonly writes: string[] = [];
  private readonly devs = new Map<string, FakeDevice>();
  private readonly paths = new Map<string, string>();
  private readonly inner: RootView;

  /** Builds a tree from `opts`, or (with `copyOf`) copies a recorded host tree and reacts to writes on it. */
  constructor(opts: FakeHostOptions, copyOf?: string) {
    this.root = mkdtempSync(join(tmpdir(), "iommu-fakehost-"));
    this.inner = new RootView(this.root);
    if (copyOf === undefined) {
      for (const d of opts.devices) this.devs.set(d.address, { ...d });
      this.build(opts);
    } else {
      cpSync(copyOf, this.root, { recursive: true, verbatimSymlinks: true });
      mkdirSync(this.host("/dev/vfio"), { recursive: true });
      this.file("/dev/vfio/vfio", "");
      this.adopt(opts.devices);
    }
    const inner = this.inner;
    this.view = {
      description: inner.description,
      readText: (p) => inner.readText(p),
      readBytes: (p) => inner.readBytes(p),
      readLink: (p) => inner.readLink(p),
      list: (p) => inner.list(p),
      exists: (p) => inner.exists(p),
      writeText: (p, text) => {
        this.writes.push(`${p} <- ${JSON.stringify(text)}`);
        this.onWrite(p, text);
      },
    };
  }

  dispose(): void {
    rmSync(this.root, { recursive: true, force: true });
  }

  private host(p: string): string {
    return join(this.root, p);
  }

  private file(p: string, text: string): void {
    mkdirSync(posix.dirname(this.host(p)), { recursive: true });
    writeFileSync(this.host(p), text);
  }

  private link(at: string, target: string): void {
    mkdirSync(posix.dirname(this.host(at)), { recursive: true });
    symlinkSync(rel(posix.dirname(at), target), this.host(at));
  }

  /**
   * A recorded host: every device under /sys/bus/pci/devices, with its current driver as the one that
   * claims it on a probe; `overrides` adjusts individual devices (e.g. vfioProbeFails).
   */
  static fromTree(dir: string, overrides: Array<Partial<FakeDevice> & { address: string }> = []): FakeHost {
    return new FakeHost({ devices: overrides as FakeDevice[] }, dir);
  }

  private adopt(overrides: FakeDevice[]): void {
    for (const addr of this.inner.list("/sys/bus/pci/devices") ?? []) {
      const target = this.inner.readLink(`/sys/bus/pci/devices/${addr}`);
      if (target === null) continue;
      this.paths.set(addr, posix.resolve("/sys/bus/pci/devices", target));
      const drv = this.inner.readLink(`/sys/bus/pci/devices/${addr}/driver`);
      const grp = this.inner.readLink(`/sys/bus/pci/devices/${addr}/iommu_group`);
      const driver = drv === null ? null : posix.basename(drv);
      const cls = parseInt(this.inner.readText(`/sys/bus/pci/devices/${addr}/class`) ?? "0", 16);
      const o = overrides.find((x) => x.address === addr) ?? {};
      this.devs.set(addr, { address: addr, classCode: cls, driver, nativeDriver: driver, group: grp === null ? null : Number(posix.basename(grp)), ...o });
    }
  }

  devicePath(address: string): string {
    const known = this.paths.get(address);
    if (known !== undefined) return known;
    const d = this.devs.get(address);
    if (!d) throw new Error(`no fake device ${address}`);
    const up = d.parent === undefined ? `/sys/devices/pci${address.slice(0, 4)}:${address.slice(5, 7)}` : this.devicePath(d.parent);
    const path = `${up}/${address}`;
    this.paths.set(address, path);
    return path;
  }

  private build(opts: FakeHostOptions): void {
    const loaded = opts.loadedDrivers ?? ["vfio-pci", ...new Set(opts.devices.flatMap((d) => [d.driver, d.nativeDriver]).filter((x): x is string => x !== null && x !== "vfio-pci"))];
    for (const drv of loaded) {
      mkdirSync(this.host(`/sys/bus/pci/drivers/${drv}`), { recursive: true });
      this.file(`/sys/bus/pci/drivers/${drv}/unbind`, "");
      this.file(`/sys/bus/pci/drivers/${drv}/bind`, "");
    }
    this.file("/sys/bus/pci/drivers_probe", "");
    mkdirSync(this.host("/dev/vfio"), { recursive: true });
    this.file("/dev/vfio/vfio", "");
    for (const d of opts.devices) {
      const dir = this.devicePath(d.address);
      mkdirSync(this.host(dir), { recursive: true });
      this.file(`${dir}/vendor`, `0x${(d.vendor ?? 0x8086).toString(16).padStart(4, "0")}\n`);
      this.file(`${dir}/device`, `0x${(d.device ?? 0x10d3).toString(16).padStart(4, "0")}\n`);
      this.file(`${dir}/class`, `0x${d.classCode.toString(16).padStart(6, "0")}\n`);
      this.file(`${dir}/driver_override`, "(null)\n");
      if (d.classCode >>> 8 === 0x0300) this.file(`${dir}/boot_vga`, d.bootVga ? "1\n" : "0\n");
      this.link(`/sys/bus/pci/devices/${d.address}`, dir);
      if (d.group !== null) {
        mkdirSync(this.host(`/sys/kernel/iommu_groups/${d.group}/devices`), { recursive: true });
        this.file(`/sys/kernel/iommu_groups/${d.group}/type`, "DMA\n");
        this.file(`/sys/kernel/iommu_groups/${d.group}/reserved_regions`, "0x00000000fee00000 0x00000000feefffff msi\n");
        this.link(`/sys/kernel/iommu_groups/${d.group}/devices/${d.address}`, dir);
        this.link(`${dir}/iommu_group`, `/sys/kernel/iommu_groups/${d.group}`);
      }
      if (d.driver !== null) this.attach(d, d.driver);
    }
    const mountinfo: string[] = [];
    for (const [i, m] of (opts.mounts ?? []).entries()) {
      const disk = `${this.devicePath(m.on)}/nvme/nvme0/${m.disk}`;
      const part = `${disk}/${m.partition}`;
      mkdirSync(this.host(part), { recursive: true });
      this.file(`${part}/partition`, "1\n");
      this.link(`/sys/class/block/${m.disk}`, disk);
      this.link(`/sys/class/block/${m.partition}`, part);
      this.link(`/sys/dev/block/${m.devno}`, part);
      mountinfo.push(`${20 + i} 1 ${m.devno} / ${m.mountPoint} rw,relatime shared:1 - ${m.fsType ?? "ext4"} /dev/${m.partition} rw`);
    }
    mountinfo.push("22 1 0:21 / /proc rw,nosuid shared:5 - proc proc rw");
    this.file("/proc/self/mountinfo", mountinfo.join("\n") + "\n");
    for (const n of opts.nics ?? []) {
      const dir = `${this.devicePath(n.on)}/net/${n.iface}`;
      mkdirSync(this.host(dir), { recursive: true });
      this.link(`/sys/class/net/${n.iface}`, dir);
    }
    for (const [br, members] of Object.entries(opts.bridges ?? {})) {
      const dir = `/sys/devices/virtual/net/${br}`;
      mkdirSync(this.host(`${dir}/brif`), { recursive: true });
      for (const m of members) this.link(`${dir}/brif/${m}`, `/sys/class/net/${m}/brport`);
      this.link(`/sys/class/net/${br}`, dir);
    }
    const routes = (opts.defaultRoute ?? []).map((i) => `${i}\t00000000\t0102A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0`);
    this.file("/proc/net/route", ["Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT", ...routes].join("\n") + "\n");
  }

  private attach(d: FakeDevice, drv: string): void {
    const dir = this.devicePath(d.address);
    this.link(`${dir}/driver`, `/sys/bus/pci/drivers/${drv}`);
    this.link(`/sys/bus/pci/drivers/${drv}/${d.address}`, dir);
    d.driver = drv;
    if (drv === "vfio-pci" && d.group !== null) this.file(`/dev/vfio/${d.group}`, "");
  }

  private detach(d: FakeDevice): void {
    const drv = d.driver;
    if (drv === null) return;
    unlinkSync(this.host(`${this.devicePath(d.address)}/driver`));
    unlinkSync(this.host(`/sys/bus/pci/drivers/${drv}/${d.address}`));
    d.driver = null;
    if (drv === "vfio-pci" && d.group !== null) {
      const still = [...this.devs.values()].some((o) => o.group === d.group && o.driver === "vfio-pci");
      if (!still && existsSync(this.host(`/dev/vfio/${d.group}`))) unlinkSync(this.host(`/dev/vfio/${d.group}`));
    }
  }

  private override(d: FakeDevice): string | null {
    const t = this.inner.readText(`${this.devicePath(d.address)}/driver_override`)?.trim() ?? "(null)";
    return t === "(null)" ? null : t;
  }

  private fail(p: string, why: string): never {
    throw new IommuError("IO_ERROR", `${p}: cannot write: ${why}`);
  }

  private onWrite(p: string, text: string): void {
    const value = text.trim();
    let m = /^\/sys\/bus\/pci\/devices\/([^/]+)\/driver_override$/.exec(p);
    if (m) {
      const d = this.devs.get(m[1] ?? "") ?? this.fail(p, "no such device");
      this.file(`${this.devicePath(d.address)}/driver_override`, value === "" ? "(null)\n" : `${value}\n`);
      return;
    }
    m = /^\/sys\/bus\/pci\/drivers\/([^/]+)\/unbind$/.exec(p);
    if (m) {
      if (!existsSync(this.host(`/sys/bus/pci/drivers/${m[1]}`))) this.fail(p, "no such file or directory");
      const d = this.devs.get(value);
      if (!d || d.driver !== m[1]) this.fail(p, "No such device");
      this.detach(d);
      return;
    }
    if (p === "/sys/bus/pci/drivers_probe") {
      const d = this.devs.get(value) ?? this.fail(p, "No such device");
      if (d.driver !== null) return;
      const want = this.override(d) ?? d.nativeDriver;
      if (want === null || !existsSync(this.host(`/sys/bus/pci/drivers/${want}`))) return;
      // vfio-pci: probe fails (-EINVAL without an IOMMU group); the device stays unbound
      if (want === "vfio-pci" && (d.group === null || d.vfioProbeFails === true)) return;
      this.attach(d, want);
      return;
    }
    this.fail(p, "Permission denied");
  }

  /** Names under /dev/vfio, for assertions. */
  vfioNodes(): string[] {
    return readdirSync(this.host("/dev/vfio")).sort();
  }
}
