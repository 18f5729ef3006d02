/**
 * What the running kernel shows about its IOMMU: the units it registered (/sys/class/iommu), interrupt
 * remapping as seen in /proc/interrupts, VFIO's allow_unsafe_interrupts, and the kernel's build-time defaults.
 *
 * "DMAR: IOMMU enabled" in dmesg only means intel_iommu=on was parsed. The kernel's IOMMU is active when it
 * registered units in /sys/class/iommu and put devices in groups under /sys/kernel/iommu_groups.
 *
 * Interrupt remapping: with it on, x86 kernels name the interrupt chips IR-PCI-MSI / IR-PCI-MSIX-<bdf> /
 * IR-IO-APIC / IR-HPET-MSI, for Intel and AMD alike; without it the same lines read PCI-MSI, IO-APIC.
 */
import { gunzipSync } from "node:zlib";
import { IommuError } from "../core/errors.js";
import { kstrtobool } from "../core/kernel-cmdline.js";
import type { SysfsView } from "./sysfs-view.js";
import {
  decodeAmdCap,
  decodeAmdEfr,
  decodeVtdCap,
  decodeVtdEcap,
  parseAmdFeatures,
  parseRegister,
  type RegField,
} from "./vtd-cap.js";

export const IOMMU_CLASS_DIR = "/sys/class/iommu";
export const ALLOW_UNSAFE_PATH = "/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts";

export interface KernelUnit {
  /** "dmar0", "ivhd0", … */
  name: string;
  kind: "intel" | "amd" | "other";
  /** Intel: register base from intel-iommu/address ("0x…"). */
  registerBase: string | null;
  version: string | null;
  /** Raw registers as "0x…" strings. */
  cap: string | null;
  ecap: string | null;
  /** AMD Extended Feature Register (and EFR2 on newer kernels). */
  efr: string | null;
  efr2: string | null;
  /** What the registers say, as a flat summary. */
  capabilities: {
    interruptRemapping: boolean | null;
    x2apic: boolean | null;
    passThrough: boolean | null;
    queuedInvalidation: boolean | null;
    cachingMode: boolean | null;
    scalableMode: boolean | null;
    addressWidths: number[] | null;
    mgaw: number | null;
    postedInterrupts: boolean | null;
  };
  /** Every decoded field, for `status --verbose` and --json. */
  fields: { cap: RegField[]; ecap: RegField[] };
}

function trimmedText(view: SysfsView, path: string): string | null {
  try {
    const t = view.readText(path);
    return t === null ? null : t.trim();
  } catch (e) {
    if (e instanceof IommuError) return null;
    throw e;
  }
}

const hexOf = (v: bigint | null): string | null => (v === null ? null : `0x${v.toString(16)}`);

function intelUnit(view: SysfsView, name: string): KernelUnit {
  const dir = `${IOMMU_CLASS_DIR}/${name}/intel-iommu`;
  const cap = parseRegister(trimmedText(view, `${dir}/cap`));
  const ecap = parseRegister(trimmedText(view, `${dir}/ecap`));
  const addr = parseRegister(trimmedText(view, `${dir}/address`));
  const c = cap === null ? null : decodeVtdCap(cap);
  const e = ecap === null ? null : decodeVtdEcap(ecap);
  return {
    name,
    kind: "intel",
    registerBase: hexOf(addr),
    version: trimmedText(view, `${dir}/version`),
    cap: hexOf(cap),
    ecap: hexOf(ecap),
    efr: null,
    efr2: null,
    capabilities: {
      interruptRemapping: e?.summary.interruptRemapping ?? null,
      x2apic: e?.summary.x2apic ?? null,
      passThrough: e?.summary.passThrough ?? null,
      queuedInvalidation: e?.summary.queuedInvalidation ?? null,
      cachingMode: c?.summary.cachingMode ?? null,
      scalableMode: e?.summary.scalableMode ?? null,
      addressWidths: c?.summary.addressWidths ?? null,
      mgaw: c?.summary.mgaw ?? null,
      postedInterrupts: c?.summary.postedInterrupts ?? null,
    },
    fields: { cap: c?.fields ?? [], ecap: e?.fields ?? [] },
  };
}

function amdUnit(view: SysfsView, name: string): KernelUnit {
  const dir = `${IOMMU_CLASS_DIR}/${name}/amd-iommu`;
  const cap = parseRegister(trimmedText(view, `${dir}/cap`));
  const feats = parseAmdFeatures(trimmedText(view, `${dir}/features`));
  const c = cap === null ? null : decodeAmdCap(cap);
  const f = feats === null ? null : decodeAmdEfr(feats.efr);
  return {
    name,
    kind: "amd",
    registerBase: null,
    version: null,
    cap: hexOf(cap),
    ecap: null,
    efr: hexOf(feats?.efr ?? null),
    efr2: hexOf(feats?.efr2 ?? null),
    capabilities: {
      // AMD has no single "can remap interrupts" bit: every AMD-Vi unit can; Linux needs the IOAPICs in IVRS.
      interruptRemapping: null,
      x2apic: f?.summary.x2apic ?? null,
      passThrough: null,
      queuedInvalidation: null,
      cachingMode: c?.summary.npCache ?? null,
      scalableMode: null,
      addressWidths: null,
      mgaw: null,
      postedInterrupts: f?.summary.guestVirtualApic ?? null,
    },
    fields: { cap: c?.fields ?? [], ecap: f?.fields ?? [] },
  };
}

/** The IOMMU units the kernel registered, sorted by name (dmar2 before dmar10). */
export function readKernelUnits(view: SysfsView): KernelUnit[] {
  const names = view.list(IOMMU_CLASS_DIR) ?? [];
  const sorted = [...names].sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
  return sorted.map((name) => {
    if (view.exists(`${IOMMU_CLASS_DIR}/${name}/intel-iommu`)) return intelUnit(view, name);
    if (view.exists(`${IOMMU_CLASS_DIR}/${name}/amd-iommu`)) return amdUnit(view, name);
    return {
      name, kind: "other", registerBase: null, version: null, cap: null, ecap: null, efr: null, efr2: null,
      capabilities: {
        interruptRemapping: null, x2apic: null, passThrough: null, queuedInvalidation: null, cachingMode: null,
        scalableMode: null, addressWidths: null, mgaw: null, postedInterrupts: null,
      },
      fields: { cap: [], ecap: [] },
    };
  });
}

export interface InterruptEvidence {
  /** "enabled": remapped chips seen; "disabled": MSI/IO-APIC chips seen, none remapped; "unknown": no data. */
  state: "enabled" | "disabled" | "unknown";
  /** Distinct chip names seen, e.g. ["IR-IO-APIC", "IR-PCI-MSI"]. */
  remappedChips: string[];
  plainChips: string[];
}

const IR_CHIP = /^IR-(PCI-MSIX?|IO-APIC|HPET-MSI|HPET)(?:-|$)/;
const PLAIN_CHIP = /^(PCI-MSIX?|IO-APIC|HPET-MSI)(?:-|$)/;

/** Reads the chip column of /proc/interrupts (the first token after the per-CPU counts). */
export function parseInterrupts(text: string | null): InterruptEvidence {
  if (text === null) return { state: "unknown", remappedChips: [], plainChips: [] };
  const remapped = new Set<string>();
  const plain = new Set<string>();
  for (const line of text.split("\n")) {
    const m = /^\s*(\d+):\s+((?:\d+\s+)*)(\S+)/.exec(line);
    if (!m) continue;
    const chip = m[3] ?? "";
    const ir = IR_CHIP.exec(chip);
    if (ir) remapped.add(`IR-${ir[1] ?? ""}`);
    const p = PLAIN_CHIP.exec(chip);
    if (p) plain.add(p[1] ?? "");
  }
  const state = remapped.size > 0 ? "enabled" : plain.size > 0 ? "disabled" : "unknown";
  return { state, remappedChips: [...remapped].sort(), plainChips: [...plain].sort() };
}

export function readInterrupts(view: SysfsView): InterruptEvidence {
  try {
    return parseInterrupts(view.readText("/proc/interrupts"));
  } catch (e) {
    if (e instanceof IommuError) return { state: "unknown", remappedChips: [], plainChips: [] };
    throw e;
  }
}

/** vfio_iommu_type1's allow_unsafe_interrupts: true/false, or null when the module is not loaded. */
export function readAllowUnsafe(view: SysfsView): boolean | null {
  return kstrtobool(trimmedText(view, ALLOW_UNSAFE_PATH));
}

/** Kernel release (uname -r) of the examined system. */
export function readRelease(view: SysfsView): string | null {
  return trimmedText(view, "/proc/sys/kernel/osrelease");
}

/** Build options that decide IOMMU defaults. */
export const CONFIG_KEYS = [
  "CONFIG_IOMMU_SUPPORT",
  "CONFIG_INTEL_IOMMU",
  "CONFIG_INTEL_IOMMU_DEFAULT_ON",
  "CONFIG_INTEL_IOMMU_SCALABLE_MODE_DEFAULT_ON",
  "CONFIG_AMD_IOMMU",
  "CONFIG_IRQ_REMAP",
  "CONFIG_IOMMU_DEFAULT_DMA_STRICT",
  "CONFIG_IOMMU_DEFAULT_DMA_LAZY",
  "CONFIG_IOMMU_DEFAULT_PASSTHROUGH",
  "CONFIG_VFIO",
  "CONFIG_VFIO_PCI",
  "CONFIG_VFIO_CONTAINER",
  "CONFIG_VFIO_IOMMU_TYPE1",
  "CONFIG_VFIO_DEVICE_CDEV",
  "CONFIG_IOMMUFD",
  "CONFIG_IOMMUFD_VFIO_CONTAINER",
] as const;

export interface KernelConfig {
  /** Where it came from: /boot/config-RELEASE or /proc/config.gz. */
  source: string;
  /** "y", "m", "n" (not set) or a string value, for the keys in CONFIG_KEYS that appear. */
  values: Partial<Record<(typeof CONFIG_KEYS)[number], string>>;
}

export function parseKernelConfig(text: string, source: string): KernelConfig {
  const values: KernelConfig["values"] = {};
  const wanted = new Set<string>(CONFIG_KEYS);
  for (const line of text.split("\n")) {
    const set = /^(CONFIG_\w+)=(.*)$/.exec(line);
    const unset = /^# (CONFIG_\w+) is not set/.exec(line);
    const key = set?.[1] ?? unset?.[1];
    if (key === undefined || !wanted.has(key)) continue;
    values[key as (typeof CONFIG_KEYS)[number]] = set ? (set[2] ?? "").replace(/^"(.*)"$/, "$1") : "n";
  }
  return { source, values };
}

/** Reads /boot/config-RELEASE, falling back to /proc/config.gz; null when neither is readable. */
export function readKernelConfig(view: SysfsView, release: string | null): KernelConfig | null {
  if (release !== null) {
    const path = `/boot/config-${release}`;
    const text = trimmedText(view, path);
    if (text !== null) return parseKernelConfig(text, path);
  }
  try {
    const gz = view.readBytes("/proc/config.gz");
    if (gz !== null) return parseKernelConfig(gunzipSync(gz).toString("utf8"), "/proc/config.gz");
  } catch {
    // unreadable or not gzip: no config
  }
  return null;
}
