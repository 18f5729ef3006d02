/**
 * The data the browser view renders, for a simulated machine booted on the spot or a host recorded in a
 * snapshot. Plain JSON (addresses as "0x…" strings) so it can be embedded in a static page; web/app.ts declares
 * the same shapes.
 */
import type { ListReport, MsiReport, WalkReport } from "../forensics/walk.js";
import type { ScenarioReport } from "../hv/scenarios/run.js";
import type { TourStory } from "../os/tour.js";
import type { Severity } from "../host/problem.js";

/** One item of the doctor's check of a device (`iommu check BDF`). */
export interface UiFinding {
  code: string;
  ok: boolean;
  severity: Severity;
  message: string;
  hint: string;
  /** "host" when the item is about the whole host (IOMMU on, interrupt remapping, vfio-pci), not this device. */
  scope: "host" | "device";
}

export interface UiDevice {
  bdf: string;
  name: string;
  type: string;
  parent: string | null;
  /** ACS isolating on this function; null when the recording does not say (config space not readable). */
  acs: boolean | null;
  multifunction: boolean;
  aliases: number[];
  group: number | null;
  unit: string | null;
  driver: string | null;
  /** A recorded host's devices: "8086:10d3 [0200]"; null on a simulated machine. */
  ids: string | null;
  /** The doctor's check of the device on a recorded host; null for bridges and on a simulated machine. */
  check: { ready: boolean; findings: UiFinding[]; nextSteps: string[] } | null;
}

export interface UiGroup {
  id: number;
  type: string | null;
  /** Domain ids the units use for the group's domain; null when not known (a recorded host does not show them). */
  domainIds: number[] | null;
  devices: string[];
  /** Why these devices share a group (empty for a group of one). */
  why: string[];
  reserved: { start: string; end: string; type: string }[];
}

/** What an AMD-Vi unit adds: it is a PCI function of its own, and reports its features in EFR (no CAP/ECAP). */
export interface UiAmdVi {
  /** The IOMMU's own PCI function ("00:01.0"). */
  bdf: string;
  /** The Extended Feature Register as the unit reports it. */
  efr: string;
  /** EFR's one-bit features that are set, by their spec names ("PPRSup", "GASup", …). */
  features: string[];
  /** Host page-table levels the unit walks (EFR.HATS). */
  hostLevels: number;
}

export interface UiUnit {
  name: string;
  base: string;
  /** Translating; null when not known. */
  translation: boolean | null;
  irqRemapping: boolean | null;
  scope: string[];
  /** Present on AMD-Vi units only (a VT-d unit's data has no such key). */
  amdVi?: UiAmdVi;
}

export interface UiSpace {
  bdf: string;
  domainType: string | null;
  /** The demo buffer mapped through the DMA API: host pages it reaches. */
  bufferPages: string[];
  mappings: ListReport;
  reserved: { start: string; end: string; type: string }[];
  walks: WalkReport[];
  msi: MsiReport[];
}

/** A recorded host as the doctor judges it (`iommu status`). */
export interface UiHost {
  /** Where the recording came from: "snapshot host.json". */
  source: string;
  hostname: string | null;
  kernel: string | null;
  recordedAt: string | null;
  recordedBy: string | null;
  ready: boolean;
  iommuActive: boolean;
  interruptRemapping: string;
  dmaPolicy: string | null;
  problems: { code: string; severity: Severity; message: string; hint: string }[];
}

export interface UiData {
  /** "machine": a simulated machine booted here; "snapshot": a host recorded with `iommu snapshot`. */
  source: "machine" | "snapshot";
  /** The machine's name, or the recorded host's name. */
  machine: string;
  cmdline: string;
  devices: UiDevice[];
  units: UiUnit[];
  groups: UiGroup[];
  spaces: UiSpace[];
  stories: TourStory[];
  scenarios: ScenarioReport[];
  /** Why the scenarios did not run on this machine (it lacks the devices they need); null when they ran or were left out. */
  scenariosSkipped: string | null;
  /** The recorded host's status; null on a simulated machine. */
  host: UiHost | null;
  /** Why address spaces, walks, stories and scenarios are absent (a recording has no IOMMU tables); null when present. */
  absent: string | null;
}
