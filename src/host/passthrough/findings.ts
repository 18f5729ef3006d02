/**
 * The pass-through checks put together: per device (what `iommu check` lists and `iommu groups` tags) and for
 * the host (what `iommu status` reports). Status reports a device's findings when the device is meant for a VM
 * (on vfio-pci, driver_override vfio-pci, or named by vfio-pci's ids), and a dead device (D3cold, all ones)
 * whatever it is; their severity there is at most "warning", since they stop that device, not the host.
 */
import { isAnyBridge } from "../bind-targets.js";
import type { PciDevice } from "../pci.js";
import type { Problem } from "../problem.js";
import type { SysfsView } from "../sysfs-view.js";
import { companionsCheck, driverOverrideCheck, earlyBindingCheck } from "./binding-checks.js";
import { amdResetCheck, framebufferCheck, powerCheck, resetCheck } from "./device-checks.js";
import { isPassthroughCandidate, type PassthroughFacts } from "./facts.js";
import type { DeviceCheck } from "./finding.js";
import { backendProblems, builtinOptionsProblems, memlockCheck, secureBootProblems } from "./host-checks.js";
import { moduleLoaded } from "./modules.js";
import { existsSafe } from "./read.js";

/** Every pass-through check that applies to an endpoint device, in the order `iommu check` shows them. */
export function deviceChecks(view: SysfsView, facts: PassthroughFacts, d: PciDevice): DeviceCheck[] {
  if (isAnyBridge(d)) return [];
  const all = [
    powerCheck(view, d),
    resetCheck(view, facts, d),
    amdResetCheck(view, facts, d),
    framebufferCheck(view, facts, d),
    earlyBindingCheck(view, facts, d),
    driverOverrideCheck(facts, d),
    companionsCheck(facts, d),
  ];
  return all.filter((c): c is DeviceCheck => c !== null);
}

/** The findings of a device's checks (what is wrong or could not be checked). */
export function deviceFindings(view: SysfsView, facts: PassthroughFacts, d: PciDevice): Problem[] {
  return deviceChecks(view, facts, d).flatMap((c) => (c.finding === null ? [] : [c.finding]));
}

const DEAD = new Set(["DEVICE_IN_D3COLD", "DEVICE_NOT_RESPONDING"]);

export interface HostContext {
  /** vfio_iommu_type1's allow_unsafe_interrupts as status found it. */
  type1AllowUnsafe: boolean | null;
  /** Interrupt remapping as status found it. */
  interruptRemapping: string;
}

/** Host-wide pass-through problems. */
export function hostPassthroughProblems(view: SysfsView, facts: PassthroughFacts, ctx: HostContext): Problem[] {
  const loaded = (m: string) => moduleLoaded(view, facts.loaded, m);
  const memlock = memlockCheck(facts, null).finding;
  return [
    ...secureBootProblems(facts, existsSafe(view, "/var/lib/dkms/mok.pub"), loaded),
    ...builtinOptionsProblems(facts),
    ...backendProblems(facts, ctx.type1AllowUnsafe, ctx.interruptRemapping),
    // Status reports a memlock limit only when it is known to be low; "could not read" belongs to check.
    ...(memlock !== null && memlock.code !== "CHECK_INCOMPLETE" ? [memlock] : []),
  ];
}

/** What `iommu status` reports: host problems, the findings of devices meant for a VM, and dead devices. */
export function statusPassthroughProblems(view: SysfsView, facts: PassthroughFacts, ctx: HostContext): Problem[] {
  const out = hostPassthroughProblems(view, facts, ctx);
  for (const d of facts.devices) {
    const candidate = isPassthroughCandidate(facts, d);
    for (const p of deviceFindings(view, facts, d)) {
      if (!candidate && !DEAD.has(p.code)) continue;
      out.push(p.severity === "error" ? { ...p, severity: "warning" } : p);
    }
  }
  return out;
}
