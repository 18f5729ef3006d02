/**
 * The kernel command line, parsed with Linux 6.1's semantics and its reactions to mistakes.
 *
 * - intel_iommu= (drivers/iommu/intel/iommu.c, intel_iommu_setup): a comma list matched by prefix: on, off,
 *   igfx_off, intgpu_off (Debian's patch), forcedac, strict, sp_off, sm_on, sm_off, tboot_noforce; anything else
 *   logs `DMAR: Unknown option - '<rest of the value>'`. With Debian's patches `on` also maps the integrated GPU
 *   again (dmar_map_intgpu = 1); see src/os/default-domain.ts for what the graphics options do.
 * - amd_iommu= (drivers/iommu/amd/init.c): fullflush, force_enable, off, force_isolation, pgtbl_v1, pgtbl_v2;
 *   there is no "on", so `amd_iommu=on` logs `AMD-Vi: Unknown option - 'on'` (on Intel machines too: the option
 *   is parsed whatever the CPU).
 * - amd_iommu_intr= (drivers/iommu/amd/init.c parse_amd_iommu_intr): the first of "legacy" (128-bit entries
 *   without vAPIC: AMD_IOMMU_GUEST_IR_LEGACY_GA) or "vapic" found scanning the value; default vapic.
 * - iommu= (arch/x86/kernel/pci-dma.c): off, force, noforce, soft, pt, nopt, … ; pt and nopt set the default
 *   domain type as given on the command line.
 * - iommu.passthrough=, iommu.strict= (drivers/iommu/iommu.c): booleans (kstrtobool).
 * - intremap= (drivers/iommu/irq_remapping.c): on, off, nosid, no_x2apic_optout, nopost; nointremap = off.
 * - swiotlb=N[,force|noforce] (kernel/dma/swiotlb.c): N slabs of 2 KiB, rounded up to a multiple of 128.
 * Parameters no handler takes and that have no dot are reported, as Linux does, as
 * `Unknown kernel command line parameters "… ", will be passed to user space.`
 *
 * Defaults are Debian 6.1's build (CONFIG_INTEL_IOMMU_DEFAULT_ON_INTGPU_OFF, CONFIG_IOMMU_DEFAULT_DMA_LAZY,
 * CONFIG_INTEL_IOMMU_SCALABLE_MODE_DEFAULT_ON).
 */
import { kernelParams, kstrtobool, normalizedName } from "../core/kernel-cmdline.js";

/** Swiotlb slab: 1 << IO_TLB_SHIFT bytes. */
export const IO_TLB_SHIFT = 11;
export const IO_TLB_SIZE = 1 << IO_TLB_SHIFT;
/** Slabs per segment (a mapping never crosses a segment). */
export const IO_TLB_SEGSIZE = 128;
/** Default pool: 64 MiB. */
export const IO_TLB_DEFAULT_SIZE = 64 << 20;

export interface KernelConfig {
  /** CONFIG_INTEL_IOMMU_DEFAULT_ON (Debian: on, except integrated graphics). */
  intelIommuDefaultOn: boolean;
  /**
   * CONFIG_INTEL_IOMMU_DEFAULT_ON_INTGPU_OFF (Debian): dmar_map_intgpu starts at 0, so an Intel display device on
   * the root bus gets an identity domain unless `intel_iommu=on` is given.
   */
  intgpuOff: boolean;
  /** CONFIG_IOMMU_DEFAULT_PASSTHROUGH. */
  defaultPassthrough: boolean;
  /** CONFIG_IOMMU_DEFAULT_DMA_STRICT (else lazy). */
  defaultStrict: boolean;
  /** CONFIG_INTEL_IOMMU_FLOPPY_WA: ISA bridges get 0-16 MiB identity mapped. */
  floppyWa: boolean;
  /**
   * CONFIG_INTEL_IOMMU_SCALABLE_MODE_DEFAULT_ON: intel_iommu_sm starts at 1, so a unit reporting ECAP.SMTS runs
   * in scalable mode unless `intel_iommu=sm_off` is given (Debian 6.1: =y, config-6.1.0-57-amd64).
   */
  scalableModeDefaultOn: boolean;
}

export const DEBIAN_6_1_CONFIG: Readonly<KernelConfig> = Object.freeze({
  intelIommuDefaultOn: true,
  intgpuOff: true,
  defaultPassthrough: false,
  defaultStrict: false,
  floppyWa: true,
  scalableModeDefaultOn: true,
});

export interface BootParams {
  raw: string;
  /** dmar_disabled. */
  dmarDisabled: boolean;
  /** no_platform_optin (intel_iommu=off). */
  noPlatformOptin: boolean;
  intelIommuExplicit: boolean;
  /** dmar_map_gfx cleared by intel_iommu=igfx_off. */
  igfxOff: boolean;
  /** dmar_map_intgpu (Debian): false by default with CONFIG_INTEL_IOMMU_DEFAULT_ON_INTGPU_OFF, true after intel_iommu=on. */
  mapIntGpu: boolean;
  superpage: boolean;
  scalableMode: boolean;
  forceDac: boolean;
  /** iommu=off (no_iommu). */
  noIommu: boolean;
  /** Default domain type chosen on the command line: "identity", "dma" or null. */
  defaultDomainCmdline: "identity" | "dma" | null;
  /** iommu.strict= given: true strict, false lazy, null not given (iommu_cmd_line's IOMMU_CMD_LINE_STRICT). */
  strictCmdline: boolean | null;
  /**
   * intel_iommu=strict or amd_iommu=fullflush: the driver calls iommu_set_dma_strict(), which makes DMA domains
   * strict without marking the policy as set on the command line (the log line has no "(set via …)").
   */
  strictForced: boolean;
  intremapDisabled: boolean;
  intremapNoSid: boolean;
  /** Swiotlb pool size in slabs. */
  swiotlbSlabs: number;
  swiotlbForce: boolean;
  swiotlbNoForce: boolean;
  /** iommu=soft: software bounce buffering requested. */
  iommuSoft: boolean;
  amdIommuOff: boolean;
  amdIommuForceEnable: boolean;
  amdIommuForceIsolation: boolean;
  /** amd_iommu_pgtable */
  amdIommuPgtable: "v1" | "v2";
  /** amd_iommu_guest_ir as the command line leaves it. */
  amdIommuIntr: "vapic" | "legacy-ga";
  /** Messages of early parameters (printed before "Kernel command line:"). */
  earlyMessages: Msg[];
  /** Messages of __setup parameters (printed after it). */
  setupMessages: Msg[];
  /** Parameters no handler took, as printed in the "Unknown kernel command line parameters" line. */
  unknown: string[];
}

export interface Msg {
  level: "info" | "notice" | "warn" | "err";
  text: string;
}

/** The kernel's parameters (those before "--"), with `raw` as the kernel prints an unknown one (quotes removed). */
export function splitCmdline(text: string): { name: string; value: string | null; raw: string }[] {
  return kernelParams(text).map(({ name, value }) => ({ name, value, raw: value === null ? name : `${name}=${value}` }));
}

/** Parameters a 6.1 kernel (or its built-in modules) take that this model does not act on. */
const KNOWN_IGNORED = new Set([
  "console", "earlycon", "earlyprintk", "root", "rootfstype", "rootflags", "rootwait", "ro", "rw", "init", "rdinit", "quiet",
  "debug", "loglevel", "panic", "nokaslr", "mitigations", "noapic", "nolapic", "nomodeset", "hugepages", "hugepagesz",
  "default_hugepagesz", "mem", "memmap", "nosmp", "maxcpus", "nr_cpus", "isolcpus", "crashkernel", "resume", "noresume",
  "acpi", "pci", "pcie_aspm", "pcie_ports", "video", "selinux", "apparmor", "security", "audit", "systemd", "ignore_loglevel",
  "printk", "initcall_debug", "lpj", "tsc", "clocksource", "nox2apic", "x2apic_phys", "nopti", "pti", "spectre_v2", "noefi",
]);


/** Walks a comma list the way the kernel's option parsers do: each step sees the rest of the string. */
function eachOption(value: string, fn: (rest: string) => void): void {
  let s = value;
  while (s.length > 0) {
    fn(s);
    const c = s.indexOf(",");
    s = c < 0 ? "" : s.slice(c).replace(/^,+/, "");
  }
}

type Say = (level: Msg["level"], text: string) => void;

/** What a parameter handler works on: the parameters being built and the two message lists. */
interface ParamContext {
  p: BootParams;
  /** Messages of early_param handlers (printed before "Kernel command line:"). */
  early: Say;
  /** Messages of __setup handlers (printed after it). */
  setup: Say;
}

/** intel_iommu= options (drivers/iommu/intel/iommu.c intel_iommu_setup): matched by prefix, in this order. */
const INTEL_IOMMU_OPTIONS: [string, (c: ParamContext) => void][] = [
  ["on", ({ p, setup }) => {
    p.dmarDisabled = false;
    p.mapIntGpu = true;
    p.intelIommuExplicit = true;
    setup("info", "DMAR: IOMMU enabled");
  }],
  ["off", ({ p, setup }) => {
    p.dmarDisabled = true;
    p.noPlatformOptin = true;
    p.intelIommuExplicit = true;
    setup("info", "DMAR: IOMMU disabled");
  }],
  ["igfx_off", ({ p, setup }) => {
    p.igfxOff = true;
    setup("info", "DMAR: Disable GFX device mapping");
  }],
  ["intgpu_off", ({ p, setup }) => {
    p.mapIntGpu = false;
    setup("info", "DMAR: Disable integrated GPU device mapping");
  }],
  ["forcedac", ({ p, setup }) => {
    p.forceDac = true;
    setup("warn", "DMAR: intel_iommu=forcedac deprecated; use iommu.forcedac instead");
  }],
  ["strict", ({ p, setup }) => {
    p.strictForced = true;
    setup("warn", "DMAR: intel_iommu=strict deprecated; use iommu.strict=1 instead");
  }],
  ["sp_off", ({ p, setup }) => {
    p.superpage = false;
    setup("info", "DMAR: Disable supported super page");
  }],
  ["sm_on", ({ p, setup }) => {
    p.scalableMode = true;
    setup("info", "DMAR: Enable scalable mode if hardware supports");
  }],
  ["sm_off", ({ p, setup }) => {
    p.scalableMode = false;
    setup("info", "DMAR: Scalable mode is disallowed");
  }],
  ["tboot_noforce", ({ setup }) => {
    setup("info", "DMAR: Intel-IOMMU: not forcing on after tboot. This could expose security risk for tboot");
  }],
];

/** amd_iommu= options the AMD driver takes without a message (drivers/iommu/amd/init.c parse_amd_iommu_options). */
const AMD_IOMMU_QUIET_OPTIONS: [string, (p: BootParams) => void][] = [
  ["force_enable", (p) => (p.amdIommuForceEnable = true)],
  ["force_isolation", (p) => (p.amdIommuForceIsolation = true)],
  ["pgtbl_v1", (p) => (p.amdIommuPgtable = "v1")],
  ["pgtbl_v2", (p) => (p.amdIommuPgtable = "v2")],
];

/** The handlers of the parameters this model acts on, by name ('-' written as '_'). */
const PARAM_HANDLERS: Record<string, (c: ParamContext, value: string | null) => void> = {
  intel_iommu: (c, value) =>
    eachOption(value ?? "", (s) => {
      const option = INTEL_IOMMU_OPTIONS.find(([prefix]) => s.startsWith(prefix));
      if (option !== undefined) option[1](c);
      else c.setup("notice", `DMAR: Unknown option - '${s}'`);
    }),
  amd_iommu: ({ p, setup }, value) =>
    eachOption(value ?? "", (s) => {
      if (s.startsWith("fullflush")) {
        p.strictForced = true;
        setup("warn", "AMD-Vi: amd_iommu=fullflush deprecated; use iommu.strict=1 instead");
      } else if (s.startsWith("off")) {
        p.amdIommuOff = true;
      } else {
        const quiet = AMD_IOMMU_QUIET_OPTIONS.find(([o]) => s.startsWith(o));
        if (quiet !== undefined) quiet[1](p);
        else setup("notice", `AMD-Vi: Unknown option - '${s}'`);
      }
    }),
  amd_iommu_intr: ({ p }, value) => {
    const v = value ?? "";
    for (let i = 0; i < v.length; i++) {
      if (v.startsWith("legacy", i)) {
        p.amdIommuIntr = "legacy-ga";
        break;
      }
      if (v.startsWith("vapic", i)) {
        p.amdIommuIntr = "vapic";
        break;
      }
    }
  },
  iommu: ({ p, early }, value) => {
    for (const o of (value ?? "").split(",")) {
      if (o === "off") p.noIommu = true;
      else if (o === "pt") p.defaultDomainCmdline = "identity";
      else if (o === "nopt") p.defaultDomainCmdline = "dma";
      else if (o === "soft") p.iommuSoft = true;
      else if (o === "forcesac") early("warn", "PCI-DMA: iommu=forcesac is deprecated");
    }
  },
  "iommu.passthrough": ({ p }, value) => {
    const b = kstrtobool(value);
    if (b !== null) p.defaultDomainCmdline = b ? "identity" : "dma";
  },
  "iommu.strict": ({ p }, value) => {
    const b = kstrtobool(value);
    if (b !== null) p.strictCmdline = b;
  },
  intremap: ({ p }, value) =>
    eachOption(value ?? "", (s) => {
      if (s.startsWith("on")) p.intremapDisabled = false;
      else if (s.startsWith("off")) p.intremapDisabled = true;
      else if (s.startsWith("nosid")) p.intremapNoSid = true;
    }),
  nointremap: ({ p, early }) => {
    p.intremapDisabled = true;
    early("warn", "nointremap: Please use 'intremap=off' instead of 'nointremap'");
  },
  swiotlb: ({ p }, value) => {
    const [num, ...flags] = (value ?? "").split(",");
    if (num !== undefined && /^\d+$/.test(num)) {
      const slabs = Number(num);
      p.swiotlbSlabs = Math.max(IO_TLB_SEGSIZE, Math.ceil(slabs / IO_TLB_SEGSIZE) * IO_TLB_SEGSIZE);
    }
    if (flags.includes("force") || num === "force") p.swiotlbForce = true;
    if (flags.includes("noforce") || num === "noforce") p.swiotlbNoForce = true;
  },
};

/** The parameters before the command line is read: the kernel configuration's defaults. */
function defaultParams(raw: string, config: KernelConfig): BootParams {
  return {
    raw,
    dmarDisabled: !config.intelIommuDefaultOn,
    noPlatformOptin: false,
    intelIommuExplicit: false,
    igfxOff: false,
    mapIntGpu: !config.intgpuOff,
    superpage: true,
    scalableMode: config.scalableModeDefaultOn,
    forceDac: false,
    noIommu: false,
    defaultDomainCmdline: null,
    strictCmdline: null,
    strictForced: false,
    intremapDisabled: false,
    intremapNoSid: false,
    swiotlbSlabs: IO_TLB_DEFAULT_SIZE >> IO_TLB_SHIFT,
    swiotlbForce: false,
    swiotlbNoForce: false,
    iommuSoft: false,
    amdIommuOff: false,
    amdIommuForceEnable: false,
    amdIommuForceIsolation: false,
    amdIommuPgtable: "v1",
    amdIommuIntr: "vapic",
    earlyMessages: [],
    setupMessages: [],
    unknown: [],
  };
}

export function parseBootParams(raw: string, config: KernelConfig = DEBIAN_6_1_CONFIG): BootParams {
  const p = defaultParams(raw, config);
  const c: ParamContext = {
    p,
    early: (level, text) => p.earlyMessages.push({ level, text }),
    setup: (level, text) => p.setupMessages.push({ level, text }),
  };
  for (const { name, value, raw: tok } of splitCmdline(raw)) {
    const n = normalizedName(name);
    const handler = Object.hasOwn(PARAM_HANDLERS, n) ? PARAM_HANDLERS[n] : undefined;
    if (handler !== undefined) handler(c, value);
    else if (!KNOWN_IGNORED.has(n) && !n.includes(".")) p.unknown.push(tok);
  }
  return p;
}

/**
 * The command line that turns the IOMMU of a machine's kind on or off, as Linux 6.1 takes it, followed by
 * `extra`. VT-d: intel_iommu=on says it explicitly (Debian builds it on by default, but with an integrated GPU
 * left out, dmar_map_intgpu, until intel_iommu=on), intel_iommu=off turns it off. AMD-Vi: on by default and
 * amd_iommu= has no "on" ("AMD-Vi: Unknown option - 'on'"), so nothing; amd_iommu=off turns it off
 * (intel_iommu=off would leave it on). A machine without an IOMMU is given VT-d's options.
 */
export function iommuCmdline(kind: "vtd" | "amd-vi" | null, on: boolean, extra?: string): string {
  const base = kind === "amd-vi" ? (on ? "" : "amd_iommu=off") : on ? "intel_iommu=on" : "intel_iommu=off";
  return [base, extra ?? ""].filter((x) => x !== "").join(" ");
}
