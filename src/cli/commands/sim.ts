/** `iommu sim boot`: boot the simulated Linux-like kernel on a machine and show its log, groups and domains. */
import { hex } from "../../core/hex.js";
import { Machine } from "../../hw/machine.js";
import { DEFAULT_MACHINE, PRESET_NAMES } from "../../hw/machine-presets.js";
import { Kernel } from "../../os/kernel.js";
import { formatLine } from "../../os/log.js";
import { DMAR_RTADDR_REG, RTADDR, TTM_LEGACY, TTM_SCALABLE } from "../../spec/vtd/registers.js";
import { fieldOf } from "../../spec/vtd/fields.js";
import { hiOf, loOf } from "../../core/u64.js";
import { PGTT_NAMES } from "../../spec/vtd/scalable.js";
import { flag, str, toJson, type Command } from "../command.js";

export interface SimBootReport {
  machine: string;
  cmdline: string;
  log: string[];
  /**
   * VT-d units (cap, ecap registers) or AMD-Vi units (cap: the PCI capability header; efr, efr2: the Extended
   * Feature Registers).
   */
  units: {
    name: string;
    kind: "vtd" | "amd-vi";
    base: string;
    cap: string;
    ecap?: string;
    efr?: string;
    efr2?: string;
    domainsUsed: number;
    irqRemapping: boolean;
    translation: boolean;
    /** VT-d: RTADDR_REG and GSTS_REG as read back, and the translation table mode RTADDR.TTM selects. */
    rtaddr?: string;
    gsts?: string;
    tableMode?: "legacy" | "scalable" | "reserved";
  }[];
  /** pasidEntries (VT-d scalable mode): each device's RID_PASID entry type (PGTT), e.g. "second-stage". */
  groups: { id: number; type: string | null; domainIds: number[]; devices: string[]; pasidEntries?: Record<string, string> }[];
}

/** RTADDR.TTM as a word. */
function tableMode(ttm: number): "legacy" | "scalable" | "reserved" {
  return ttm === TTM_LEGACY ? "legacy" : ttm === TTM_SCALABLE ? "scalable" : "reserved";
}

/** The RID_PASID entry types of a group's devices, when their unit runs in scalable mode. */
function pasidEntries(k: Kernel, devices: Kernel["devices"]): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const d of devices) {
    if (k.driver.unitFor(d)?.sm !== true) continue;
    const e = k.driver.pasid.readEntry(d);
    out[d.name] = e === null || !e.present ? "not present" : (PGTT_NAMES[e.pgtt] ?? `reserved (${e.pgtt})`);
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

export function simBoot(machine: string, cmdline: string): SimBootReport {
  const m = Machine.load(machine);
  const k = Kernel.boot(m, { cmdline });
  return {
    machine: m.config.name,
    cmdline,
    log: k.log.lines.map(formatLine),
    units: [
      ...k.driver.units.map((u) => {
        const rtaddr = k.port.mmioRead(u.base + DMAR_RTADDR_REG, 8);
        return {
          name: u.name,
          kind: "vtd" as const,
          base: hex(u.base),
          cap: hex(u.cap),
          ecap: hex(u.ecap),
          domainsUsed: u.domainIds.length > 0 ? u.domainsUsed() : 0,
          irqRemapping: u.irEnabled,
          translation: u.translationEnabled,
          rtaddr: hex(rtaddr),
          gsts: hex(k.driver.gsts(u) >>> 0),
          tableMode: tableMode(fieldOf(loOf(rtaddr), hiOf(rtaddr), RTADDR.TTM)),
        };
      }),
      ...k.amd.units.map((u) => ({
        name: u.name,
        kind: "amd-vi" as const,
        base: hex(u.base),
        cap: hex(u.cap),
        efr: hex(u.efr),
        efr2: hex(u.efr2),
        // Protection domain ids are global on AMD-Vi: the domains allocated so far.
        domainsUsed: k.iommu.domains.filter((d) => d.pdId !== null).length,
        irqRemapping: k.amd.irEnabled,
        translation: u.enabled && k.dmaRemapping,
      })),
    ],
    groups: k.groups.map((g) => {
      const pe = pasidEntries(k, g.devices);
      return { id: g.id, type: g.type, domainIds: g.domain?.domainIds() ?? [], devices: g.devices.map((d) => d.name), ...(pe === undefined ? {} : { pasidEntries: pe }) };
    }),
  };
}

const bootCommand: Command = {
  name: "boot",
  summary: "boot the simulated kernel on a machine: log, groups, domains",
  help: `Usage: iommu sim boot [--machine NAME|FILE] [--cmdline "…"] [--json]

Boots a Linux-like kernel (Linux 6.1's IOMMU code paths and messages) on a simulated machine and prints its
kernel log, then the IOMMU groups with their default domain type and domain ids.

Options:
  -m, --machine NAME|FILE  a preset (${PRESET_NAMES.join(", ")}) or a JSON machine configuration (- reads it from standard input)
                           (format in the README); default ${DEFAULT_MACHINE}
  -c, --cmdline TEXT       kernel command line, e.g. "intel_iommu=on iommu=pt"
  -j, --json               {machine, cmdline, log, units, groups}; VT-d units carry rtaddr, gsts and tableMode
                           (legacy or scalable), and in scalable mode groups carry each device's RID_PASID
                           entry type (pasidEntries)

Examples:
  iommu sim boot
  iommu sim boot --cmdline "intel_iommu=on iommu.strict=1"
  iommu sim boot --machine q35-sm --cmdline "iommu=pt"
  iommu sim boot --machine my-box.json --json | jq '.groups[] | select(.devices | length > 1)'
`,
  options: { machine: { type: "string", short: "m" }, cmdline: { type: "string", short: "c" }, json: { type: "boolean", short: "j" } },
  run(args, ctx) {
    const r = simBoot(str(args, "machine") ?? DEFAULT_MACHINE, str(args, "cmdline") ?? "");
    if (flag(args, "json")) {
      ctx.out(toJson(r));
      return 0;
    }
    const lines = [...r.log, ""];
    for (const u of r.units) {
      const regs = u.rtaddr === undefined ? "" : `, ${u.tableMode} mode (RTADDR ${u.rtaddr}, GSTS ${u.gsts})`;
      lines.push(`${u.name} at ${u.base}: translation ${u.translation ? "on" : "off"}, interrupt remapping ${u.irqRemapping ? "on" : "off"}, ${u.domainsUsed} domain ids used${regs}`);
    }
    if (r.groups.length === 0) lines.push("No IOMMU groups (DMA remapping is off).");
    for (const g of r.groups) {
      const pe = g.pasidEntries === undefined ? "" : ` (RID_PASID: ${g.devices.map((d) => `${d} ${g.pasidEntries?.[d] ?? "-"}`).join(", ")})`;
      lines.push(`IOMMU group ${g.id} [${g.type}] domain id ${g.domainIds.join(",") || "-"}: ${g.devices.join(" ")}${pe}`);
    }
    ctx.out(lines.join("\n") + "\n");
    return 0;
  },
};

export const simCommand: Command = {
  name: "sim",
  summary: "the simulated machine and kernel",
  help: `Usage: iommu sim <command>

Runs the Linux-like kernel on a simulated machine with VT-d or AMD-Vi remapping units.
`,
  subcommands: [bootCommand],
};
