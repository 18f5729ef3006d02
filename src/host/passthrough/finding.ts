/**
 * One pass-through check on one device (or the host): what `iommu check` shows as an item (a stable check name,
 * ok or not, a message and a hint), and, when something is wrong, the finding `status` and `groups` report
 * (its own stable code). A check that could not read what it needs is ok with severity "warning" and says so;
 * its finding is CHECK_INCOMPLETE (info).
 */
import { problem, type Problem, type Severity } from "../problem.js";

export interface DeviceCheck {
  /** Check name, as `iommu check` lists it: RESET, BOOT_FRAMEBUFFER, … */
  check: string;
  ok: boolean;
  severity: Severity;
  message: string;
  hint: string;
  /** The finding when something is wrong or could not be checked. */
  finding: Problem | null;
}

export function passed(check: string, message: string): DeviceCheck {
  return { check, ok: true, severity: "info", message, hint: "", finding: null };
}

export function failed(check: string, code: string, severity: Severity, message: string, hint: string): DeviceCheck {
  return { check, ok: false, severity, message, hint, finding: problem(code, severity, message, hint) };
}

/** Could not tell: ok (nothing known to be wrong) but flagged, never silently passed. */
export function incomplete(check: string, message: string, hint: string): DeviceCheck {
  return { check, ok: true, severity: "warning", message, hint, finding: problem("CHECK_INCOMPLETE", "info", message, hint) };
}

/** A warning that does not block (ok stays true), reported as a finding too. */
export function noted(check: string, code: string, severity: Severity, message: string, hint: string): DeviceCheck {
  return { check, ok: true, severity, message, hint, finding: problem(code, severity, message, hint) };
}
