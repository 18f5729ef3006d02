/**
 * What the AMD-Vi cases of the simulated-vs-real suite compare besides groups, types and reserved regions
 * (lab/sim-compare.ts):
 *
 * - which kernel log lines count (AMD_COMPARED): every line Linux 6.1's AMD IOMMU driver prints
 *   (drivers/iommu/amd/*.c all use the pr_fmt prefix "AMD-Vi: ", printed alone or after the device name of a
 *   dev_* message) and every line of the IOMMU core (drivers/iommu/iommu.c: the "iommu: " prefix and its two
 *   per-device messages). The same rule as the VT-d list in sim-compare.ts (the DMAR driver and the core), with
 *   the prefix as the criterion rather than a list of messages: a line the simulated kernel adds or misses under
 *   those prefixes is a difference.
 * - that the simulated machine is the captured one: its firmware's IVRS decodes to the same blocks and device
 *   entries as the guest's (ivrsFacts), and its PCI functions' configuration spaces parse to the same facts as
 *   the guest's dumps (sim-machine.ts parseConfig), read through the simulated ECAM — for the machine built from the capture and for a preset
 *   that claims to be that machine (q35-amd-lab).
 * - the functions the unit translates for (/sys/class/iommu/ivhd0/devices) and its amd-iommu/cap and
 *   amd-iommu/features files, in the guest and in the simulated kernel's sysfs view.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { decodeIvrs } from "../src/acpi/ivrs.js";
import type { MachineConfigInput } from "../src/hw/machine-config.js";
import { Machine } from "../src/hw/machine.js";
import type { Kernel } from "../src/os/kernel.js";
import { kernelSysfsView } from "../src/os/sysfs.js";
import { parseConfig, type CapturedFunction } from "./sim-machine.js";

export const AMD_COMPARED = [
  /^AMD-Vi: /,
  /^pci [0-9a-f:.]+: AMD-Vi: /,
  /^iommu: /,
  /^pci [0-9a-f:.]+: Adding to iommu group \d+$/,
  /^pci [0-9a-f:.]+: Device needs domain type /,
];

const OMIT = new Set(["offset", "length", "entries"]);

/** A decoded IVRS node without offsets and lengths (they follow from the rest), bit fields as their raw value. */
function strip(o: object): string {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (OMIT.has(k)) continue;
    out[k] = v !== null && typeof v === "object" && "raw" in v ? (v as { raw: unknown }).raw : v;
  }
  return JSON.stringify(out);
}

/**
 * The IVRS as facts: the revision, IVinfo and every block and device entry with all their fields (bit fields as
 * raw values), except offsets, lengths, the checksum and the OEM/creator identity, which Linux does not act on.
 */
export function ivrsFacts(bytes: Uint8Array): string[] {
  const t = decodeIvrs(bytes);
  const facts = [`revision ${t.revision}`, `IVinfo 0x${t.ivInfo.raw.toString(16)}`];
  if (t.reserved !== undefined) facts.push(`reserved ${t.reserved}`);
  t.blocks.forEach((b, i) => {
    facts.push(`block ${i}: ${strip(b)}`);
    if (b.type === "IVHD") b.entries.forEach((e, j) => facts.push(`block ${i} entry ${j}: ${strip(e)}`));
  });
  if (t.trailing !== undefined) facts.push(`trailing ${t.trailing}`);
  return facts;
}

/**
 * One function as a fact. The header type's multifunction bit counts on function 0 only: Linux 6.1 reads it there
 * to decide whether to scan functions 1–7 and marks every function it finds after 0 multifunction itself
 * (drivers/pci/probe.c, pci_scan_slot), so the bit's value on other functions changes nothing.
 */
const fnFact = (f: CapturedFunction) => {
  const header = /\.0$/.test(f.bdf) ? f.headerType : f.headerType & 0x7f;
  return `${f.bdf.replace(/^0000:/, "")} ${f.vendor.toString(16).padStart(4, "0")}:${f.device.toString(16).padStart(4, "0")} class ${f.classCode.toString(16).padStart(6, "0")} ` +
    `header ${header.toString(16)} pcie ${f.pcieType ?? "-"} acs ${f.acs} secondary ${f.secondaryBus ?? "-"}`;
};

/** The captured functions as facts (pci/BDF.config), sorted by BDF. */
export function capturedFunctionFacts(dir: string, names: string[]): string[] {
  return names.map((n) => fnFact(parseConfig(n, readFileSync(join(dir, "pci", `${n}.config`))))).sort();
}

/**
 * What the guest would capture from a simulated machine: every function that answers an ECAM read (the whole
 * configuration space, as the config file of each /sys/bus/pci/devices entry gives it; whatever the platform attaches is included),
 * parsed as the guest's dumps are, and the firmware's IVRS (null when it has none). Throws what the
 * configuration lacks.
 */
export function simulatedMachineFacts(cfg: MachineConfigInput): { functions: string[]; ivrs: Uint8Array | null } {
  const m = new Machine(cfg);
  const functions: string[] = [];
  for (let rid = 0; rid < 0x10000; rid++) {
    if ((m.configRead(rid, 0, 4) & 0xffff) === 0xffff) continue;
    const b = Buffer.alloc(4096);
    for (let off = 0; off < 4096; off += 4) b.writeUInt32LE(m.configRead(rid, off, 4) >>> 0, off);
    const bdf = `${(rid >> 8).toString(16).padStart(2, "0")}:${((rid >> 3) & 0x1f).toString(16).padStart(2, "0")}.${rid & 7}`;
    functions.push(fnFact(parseConfig(bdf, b)));
  }
  return { functions: functions.sort(), ivrs: m.firmware.acpi.IVRS ?? null };
}

/** Functions under /sys/class/iommu/ivhdN/devices, per unit, in the guest (capture/amd-devices: ivhd0 only). */
export function capturedUnitMembers(dir: string): string[] | null {
  const f = join(dir, "amd-devices");
  return existsSync(f) ? readFileSync(f, "utf8").split("\n").map((l) => l.trim()).filter(Boolean).sort() : null;
}

/** The same list in the simulated kernel's sysfs view. */
export function simulatedUnitMembers(k: Kernel): string[] {
  return (kernelSysfsView(k).list("/sys/class/iommu/ivhd0/devices") ?? []).slice().sort();
}

/**
 * ivhd0's amd-iommu/cap (the capability header) and amd-iommu/features (EFR2:EFR, as Linux 6.1 prints them):
 * from the capture (amd-cap, amd-features) or the simulated kernel's sysfs view; "(absent)" when there is none.
 */
export function unitRegisterFacts(read: (name: "cap" | "features") => string | null): string[] {
  return (["cap", "features"] as const).map((n) => `${n}: ${read(n)?.trim() ?? "(absent)"}`);
}

export function capturedUnitRegisters(dir: string): string[] {
  return unitRegisterFacts((n) => (existsSync(join(dir, `amd-${n}`)) ? readFileSync(join(dir, `amd-${n}`), "utf8") : null));
}

export function simulatedUnitRegisters(k: Kernel): string[] {
  const v = kernelSysfsView(k);
  return unitRegisterFacts((n) => v.readText(`/sys/class/iommu/ivhd0/amd-iommu/${n}`));
}
