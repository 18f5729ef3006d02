#!/usr/bin/env node
// Copies what the doctor reads from a running Linux system into a root-prefix tree DEST, preserving symbolic
// links exactly as stored (sysfs links are relative, e.g. /sys/bus/pci/devices/0000:00:02.0 ->
// ../../../devices/pci0000:00/0000:00:02.0) and recording their targets too, so every link resolves in DEST.
// Plain JavaScript with no dependencies: it runs with any Node >= 18 on the system being recorded.
//
// Usage: node record-sysfs.mjs DEST [--root ROOT]      (as root; only reads the system; ROOT defaults to /)
//
// Recorded:
//   /sys/bus/pci/devices/* links and, for every PCI function: vendor device subsystem_vendor subsystem_device
//     class revision reset_method driver_override boot_vga config, and the links driver, iommu_group, iommu
//   /sys/bus/pci/drivers/*: links to bound devices and the module link; bind, unbind, new_id, remove_id and
//     /sys/bus/pci/drivers_probe as empty files (they are write-only: recorded so their existence is visible)
//   /sys/kernel/iommu_groups/*/{type,reserved_regions,devices/*}
//   /sys/class/iommu/* links and their targets' attribute files (intel-iommu/*, amd-iommu/*, devices/* links)
//   /sys/firmware/acpi/tables/{DMAR,IVRS}
//   /proc/{cmdline,interrupts,cpuinfo,modules}
//   /sys/module/vfio*/{initstate,parameters/*}, and initstate (built in: uevent) of the modules drivers link to
//   the kernel log as DEST/dmesg.txt (from `dmesg`)
import { execFileSync } from "node:child_process";
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, realpathSync, symlinkSync, writeFileSync, rmSync } from "node:fs";
import { dirname, join, posix } from "node:path";

const args = process.argv.slice(2);
const dest = args[0];
const rootIdx = args.indexOf("--root");
const root = rootIdx >= 0 ? args[rootIdx + 1] ?? "/" : "/";
if (!dest || dest.startsWith("--")) {
  process.stderr.write("usage: node record-sysfs.mjs DEST [--root ROOT]\n");
  process.exit(2);
}

const src = (p) => join(root, p);
const out = (p) => join(dest, p);
let files = 0;
let links = 0;
let unreadable = 0;

function kind(p) {
  try {
    const st = lstatSync(src(p));
    return st.isSymbolicLink() ? "link" : st.isDirectory() ? "dir" : st.isFile() ? "file" : "other";
  } catch {
    return null;
  }
}

function list(p) {
  try {
    return readdirSync(src(p)).sort();
  } catch {
    return [];
  }
}

/** Real path inside the recorded system (absolute, without ROOT). */
function real(p) {
  const r = realpathSync(src(p));
  return root === "/" ? r : "/" + posix.relative(root, r);
}

function copyFile(p) {
  if (kind(p) !== "file") return;
  let data;
  try {
    data = readFileSync(src(p));
  } catch {
    unreadable++;
    return;
  }
  mkdirSync(dirname(out(p)), { recursive: true });
  writeFileSync(out(p), data);
  files++;
}

function touchFile(p) {
  if (kind(p) === null) return;
  mkdirSync(dirname(out(p)), { recursive: true });
  writeFileSync(out(p), "");
  files++;
}

function copyLink(p) {
  if (kind(p) !== "link") return;
  mkdirSync(dirname(out(p)), { recursive: true });
  rmSync(out(p), { force: true });
  symlinkSync(readlinkSync(src(p)), out(p));
  links++;
}

/** A file reached through links (e.g. /sys/bus/pci/drivers/e1000e/module/initstate), recorded at its real path. */
function copyRealFile(p) {
  try {
    copyFile(real(p));
  } catch {
    // absent
  }
}

// ---- PCI devices -------------------------------------------------------------------------------------------
const DEVICE_FILES = ["vendor", "device", "subsystem_vendor", "subsystem_device", "class", "revision",
  "reset_method", "driver_override", "boot_vga", "config"];
for (const name of list("/sys/bus/pci/devices")) {
  const link = `/sys/bus/pci/devices/${name}`;
  copyLink(link);
  const dev = real(link);
  for (const f of DEVICE_FILES) copyFile(`${dev}/${f}`);
  for (const l of ["driver", "iommu_group", "iommu"]) copyLink(`${dev}/${l}`);
}
for (const drv of list("/sys/bus/pci/drivers")) {
  const d = `/sys/bus/pci/drivers/${drv}`;
  for (const e of list(d)) if (/^[0-9a-f]{4}:/.test(e)) copyLink(`${d}/${e}`);
  copyLink(`${d}/module`);
  // initstate for loadable modules; built-in ones have none, so their uevent keeps the link target present
  if (kind(`${d}/module`) === "link") {
    if (kind(`${d}/module/initstate`) !== null) copyRealFile(`${d}/module/initstate`);
    else touchFile(`${real(`${d}/module`)}/uevent`); // write-only, recorded empty
  }
  for (const f of ["bind", "unbind", "new_id", "remove_id"]) touchFile(`${d}/${f}`);
}
touchFile("/sys/bus/pci/drivers_probe");

// ---- IOMMU groups and units --------------------------------------------------------------------------------
for (const g of list("/sys/kernel/iommu_groups")) {
  const d = `/sys/kernel/iommu_groups/${g}`;
  copyFile(`${d}/type`);
  copyFile(`${d}/reserved_regions`);
  for (const e of list(`${d}/devices`)) copyLink(`${d}/devices/${e}`);
}
for (const u of list("/sys/class/iommu")) {
  const link = `/sys/class/iommu/${u}`;
  copyLink(link);
  const r = real(link);
  for (const sub of ["", "/intel-iommu", "/amd-iommu"]) for (const f of list(r + sub)) copyFile(`${r}${sub}/${f}`);
  for (const e of list(`${r}/devices`)) copyLink(`${r}/devices/${e}`);
}

// ---- firmware, kernel ---------------------------------------------------------------------------------------
copyFile("/sys/firmware/acpi/tables/DMAR");
copyFile("/sys/firmware/acpi/tables/IVRS");
for (const f of ["cmdline", "interrupts", "cpuinfo", "modules"]) copyFile(`/proc/${f}`);
for (const m of list("/sys/module").filter((n) => n.startsWith("vfio"))) {
  copyFile(`/sys/module/${m}/initstate`);
  for (const p of list(`/sys/module/${m}/parameters`)) copyFile(`/sys/module/${m}/parameters/${p}`);
}
if (root === "/") {
  try {
    writeFileSync(join(dest, "dmesg.txt"), execFileSync("dmesg", { maxBuffer: 64 << 20 }));
    files++;
  } catch (e) {
    process.stderr.write(`record-sysfs: dmesg failed: ${e.message}\n`);
  }
}
process.stdout.write(`record-sysfs: ${files} files, ${links} links${unreadable ? `, ${unreadable} unreadable` : ""} -> ${dest}\n`);
