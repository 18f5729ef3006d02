/**
 * Is the host itself using a PCI device? Taking such a device away (binding it to vfio-pci) blanks the console,
 * pulls the disk from under mounted file systems or cuts the network the administrator is logged in over.
 *
 * - boot display: /sys/bus/pci/devices/X/boot_vga = 1 (the firmware's VGA device, usually the console);
 * - storage: every mounted file system (/proc/self/mountinfo, else /proc/mounts) and active swap (/proc/swaps)
 *   is traced to its block device, through device-mapper and md layers (/sys/class/block/NAME/slaves), and the
 *   block device's place in the device tree (/sys/class/block/NAME → /sys/devices/pci…/BDF/…) names the PCI
 *   devices above it;
 * - network: the interfaces carrying a default route (/proc/net/route destination 0 / mask 0, and ::/0 in
 *   /proc/net/ipv6_route) are traced the same way through /sys/class/net/IF, following bridge ports (brif/) and
 *   lower devices (lower_*) of bonds, VLANs and bridges;
 * - bridges and host bridges, which belong to the host's PCI topology.
 */
import { posix } from "node:path";
import { IommuError } from "../core/errors.js";
import type { PciDevice } from "./pci.js";
import type { SysfsView } from "./sysfs-view.js";
import { isAnyBridge, isHostBridge } from "./bind-targets.js";

export type HostUseKind = "boot-vga" | "mounted-storage" | "swap" | "default-route" | "bridge";

export interface HostUse {
  kind: HostUseKind;
  /** "backs / (ext4 on nvme0n1p2)", "carries the default route (eno1)", … */
  detail: string;
}

const BDF = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/i;

/** Reads a file that may be unreadable; unreadable counts as absent (the check is then simply not possible). */
function readOptional(view: SysfsView, path: string): string | null {
  try {
    return view.readText(path);
  } catch (e) {
    if (e instanceof IommuError) return null;
    throw e;
  }
}

/** PCI addresses along the device-tree path a class link (/sys/class/block/X, /sys/class/net/X) points to. */
export function pciChain(view: SysfsView, classLink: string): string[] {
  const target = view.readLink(classLink);
  if (target === null) return [];
  const resolved = posix.resolve(posix.dirname(classLink), target);
  return resolved.split("/").filter((c) => BDF.test(c)).map((c) => c.toLowerCase());
}

/** Block device names beneath NAME, through dm/md slaves (NAME itself included). */
function blockLayers(view: SysfsView, name: string, seen = new Set<string>()): string[] {
  if (seen.has(name) || seen.size > 64) return [];
  seen.add(name);
  const out = [name];
  for (const s of view.list(`/sys/class/block/${name}/slaves`) ?? []) out.push(...blockLayers(view, s, seen));
  // a partition's slaves live on its disk: /sys/class/block/nvme0n1p2 → …/nvme0n1/nvme0n1p2
  const link = view.readLink(`/sys/class/block/${name}`);
  if (link !== null && view.exists(`/sys/class/block/${name}/partition`)) {
    const disk = posix.basename(posix.dirname(link));
    if (disk !== name) for (const s of view.list(`/sys/class/block/${disk}/slaves`) ?? []) out.push(...blockLayers(view, s, seen));
  }
  return out;
}

/** Block device name for a mount source ("/dev/nvme0n1p2", "/dev/mapper/vg-root", "/dev/dm-0"), or null. */
function blockNameOfSource(view: SysfsView, source: string, dmNames: Map<string, string>): string | null {
  if (!source.startsWith("/dev/")) return null;
  if (source.startsWith("/dev/mapper/")) return dmNames.get(source.slice("/dev/mapper/".length)) ?? null;
  const link = source.startsWith("/dev/disk/") ? view.readLink(source) : null;
  const name = posix.basename(link ?? source);
  return view.exists(`/sys/class/block/${name}`) ? name : null;
}

function blockNameOfDevno(view: SysfsView, devno: string): string | null {
  if (!/^\d+:\d+$/.test(devno) || devno.startsWith("0:")) return null;
  const link = view.readLink(`/sys/dev/block/${devno}`);
  return link === null ? null : posix.basename(link);
}

interface Mount {
  source: string;
  mountPoint: string;
  fsType: string;
  devno: string | null;
}

/** Unescapes the octal escapes (\040 for space) mount tables use. */
const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));

export function parseMountinfo(text: string): Mount[] {
  const out: Mount[] = [];
  for (const line of text.split("\n")) {
    const f = line.split(" ");
    const sep = f.indexOf("-");
    if (sep < 6 || f.length < sep + 3) continue;
    out.push({ devno: f[2] ?? null, mountPoint: unescape(f[4] ?? ""), fsType: f[sep + 1] ?? "", source: unescape(f[sep + 2] ?? "") });
  }
  return out;
}

export function parseMounts(text: string): Mount[] {
  return text
    .split("\n")
    .map((l) => l.split(" "))
    .filter((f) => f.length >= 3)
    .map((f) => ({ source: unescape(f[0] ?? ""), mountPoint: unescape(f[1] ?? ""), fsType: f[2] ?? "", devno: null }));
}

/** Interfaces with a default route: IPv4 destination and mask 0, or IPv6 ::/0. */
export function defaultRouteInterfaces(route: string | null, ipv6Route: string | null): string[] {
  const out = new Set<string>();
  for (const line of (route ?? "").split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 8 && f[1] === "00000000" && f[7] === "00000000" && f[0]) out.add(f[0]);
  }
  for (const line of (ipv6Route ?? "").split("\n")) {
    const f = line.trim().split(/\s+/);
    const iface = f[9];
    if (f.length >= 10 && /^0{32}$/.test(f[0] ?? "") && f[1] === "00" && iface && iface !== "lo") out.add(iface);
  }
  return [...out];
}

/** PCI devices under a network interface, following bridge ports and lower devices of virtual interfaces. */
function netChains(view: SysfsView, iface: string, seen = new Set<string>()): string[][] {
  if (seen.has(iface) || seen.size > 64) return [];
  seen.add(iface);
  const base = `/sys/class/net/${iface}`;
  const chain = pciChain(view, base);
  if (chain.length > 0) return [chain];
  const out: string[][] = [];
  for (const port of view.list(`${base}/brif`) ?? []) out.push(...netChains(view, port, seen));
  for (const entry of view.list(base) ?? []) {
    if (entry.startsWith("lower_")) out.push(...netChains(view, entry.slice("lower_".length), seen));
  }
  return out;
}

export interface HostUseReport {
  /** Address → reasons the host needs the device. */
  uses: Map<string, HostUse[]>;
  /** What could not be examined (e.g. /proc/self/mountinfo missing in a snapshot). */
  unknown: string[];
}

/** Examines mounts, swap, default routes, boot_vga and bridges; `devices` supplies boot_vga and class. */
export function findHostUses(view: SysfsView, devices: readonly PciDevice[]): HostUseReport {
  const uses = new Map<string, HostUse[]>();
  const add = (addr: string, u: HostUse) => {
    const list = uses.get(addr) ?? [];
    if (!list.some((x) => x.kind === u.kind && x.detail === u.detail)) list.push(u);
    uses.set(addr, list);
  };
  const unknown: string[] = [];

  for (const d of devices) {
    if (d.bootVga === true) add(d.address, { kind: "boot-vga", detail: "is the boot display (boot_vga=1)" });
    if (isAnyBridge(d)) add(d.address, { kind: "bridge", detail: isHostBridge(d) ? "is a host bridge" : "is a bridge" });
  }

  const dmNames = new Map<string, string>();
  for (const name of view.list("/sys/class/block") ?? []) {
    if (!name.startsWith("dm-")) continue;
    const n = readOptional(view, `/sys/class/block/${name}/dm/name`)?.trim();
    if (n) dmNames.set(n, name);
  }
  const mountinfo = readOptional(view, "/proc/self/mountinfo");
  const mountsText = mountinfo === null ? readOptional(view, "/proc/mounts") : null;
  if (mountinfo === null && mountsText === null) unknown.push("mounted file systems (/proc/self/mountinfo and /proc/mounts are not available)");
  const mounts = mountinfo !== null ? parseMountinfo(mountinfo) : parseMounts(mountsText ?? "");
  const traceBlock = (name: string, kind: HostUseKind, what: string) => {
    for (const layer of blockLayers(view, name)) {
      const chain = pciChain(view, `/sys/class/block/${layer}`);
      const endpoint = chain[chain.length - 1];
      if (endpoint !== undefined) add(endpoint, { kind, detail: `${what} (${layer === name ? name : `${name} on ${layer}`})` });
    }
  };
  for (const m of mounts) {
    const name = blockNameOfSource(view, m.source, dmNames) ?? (m.devno === null ? null : blockNameOfDevno(view, m.devno));
    if (name !== null) traceBlock(name, "mounted-storage", `backs ${m.mountPoint} (${m.fsType})`);
  }
  const swaps = readOptional(view, "/proc/swaps");
  for (const line of (swaps ?? "").split("\n").slice(1)) {
    const src = line.trim().split(/\s+/)[0];
    if (!src) continue;
    const name = blockNameOfSource(view, src, dmNames);
    if (name !== null) traceBlock(name, "swap", "holds active swap");
  }

  const route = readOptional(view, "/proc/net/route");
  const route6 = readOptional(view, "/proc/net/ipv6_route");
  if (route === null && route6 === null) unknown.push("default routes (/proc/net/route is not available)");
  for (const iface of defaultRouteInterfaces(route, route6)) {
    for (const chain of netChains(view, iface)) {
      const endpoint = chain[chain.length - 1];
      if (endpoint !== undefined) add(endpoint, { kind: "default-route", detail: `carries the default route (${iface})` });
    }
  }
  return { uses, unknown };
}
