/**
 * No VT-d bit position outside src/spec/ (issue 12, item 1): the modules that read or write VT-d registers,
 * tables or descriptors take every offset, field position and mask from spec/vtd (or spec/msi), by name. This test
 * parses them and fails on a numeric literal that is used the way a bit position, a mask or a register offset is:
 *
 *   bitwise   an operand of & | ^ << >> >>> (or their assignments) or of ~
 *   scale     an operand of * / %  (entry sizes: `bus * 16`, `index * 8`; field formulas: `4 + 2 * nd`)
 *   offset    the address argument of a register or memory access, or a number added to it (`ce + 8`, `r32(u, 0xb0)`)
 *   constant  a module-level constant made of numbers only (`const QI_IOTLB_TYPE = 0x2`)
 *   hex       any other number written in hex or binary (`reason >= 0x20`)
 *
 * What passes, and why (IDIOMS): 0; `x >>> 0` and `x | 0` (to unsigned / signed 32 bits); a shift by 32 and a
 * mask of 0xffffffff or 2^64 - 1 (moving between the 32-bit halves of a 64-bit value); `1 << n` with n computed (a
 * power of two); 4 as a factor (bytes per dword: `4 * i` walks the dwords of an entry); 4096 (the
 * x86 page the kernel allocates); 1000, 1e6, 1e9, 100 (time units, percent); 2^32 (the weight of a high half);
 * the access size (4 or 8) of an MMIO access. Anything else needs a name in ALLOWED_CONSTANTS below, with the
 * reason it is not a VT-d fact, or an entry in EXCLUDED_FILES / NOT_VTD_LAYOUT.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { scanLiterals, scanSource, type Finding } from "./support/literal-scan.js";
import { parse, runtimeImports, sourceFiles } from "./support/program.js";

/** The modules that handle VT-d layouts: hw/vtd, the kernel's VT-d driver, the VT-d walker, the doctor's decoder. */
function vtdModules(): string[] {
  return sourceFiles(["src"], false).filter(
    (f) => f.startsWith("src/hw/vtd/") || /^src\/os\/intel-[^/]+\.ts$/.test(f) || VTD_ALSO.has(f),
  );
}

/** VT-d modules outside those directories. */
const VTD_ALSO = new Set([
  "src/os/mm.ts",
  "src/cli/commands/sim.ts",
  "src/forensics/walk.ts",
  "src/forensics/walk-scalable.ts",
  "src/forensics/steps.ts",
  "src/forensics/ranges.ts",
  "src/host/vtd-cap.ts",
  "src/hv/interrupts.ts",
  "src/os/iommu-faults.ts",
]);

/** VT-d modules with no VT-d format in them, left out of the scan. */
const EXCLUDED_FILES: Readonly<Record<string, string>> = {
  "src/hw/vtd/cache.ts": "the generic set-associative store under the caches (replacement policies, a hash): no VT-d format",
  "src/hw/vtd/regfile.ts": "the generic declarative register file (dword indexing of any MMIO window): every VT-d register is declared in hw/vtd/registers.ts",
};

/**
 * Modules outside the scan that import spec/vtd or hw/vtd at run time: they use VT-d only through names, and their
 * own numbers belong to other layouts. A new importer must be added to the scan or here, with the reason.
 */
const NOT_VTD_LAYOUT: Readonly<Record<string, string>> = {
  "src/api/vtd.ts": "re-exports the VT-d model's API",
  "src/bench/cases/dump-walk.ts": "benchmark: builds tables with hw/vtd/builder.ts; its numbers are sizes and counts",
  "src/bench/cases/translate.ts": "benchmark: drives a unit through hw/vtd/builder.ts; its numbers are addresses, sizes and counts (the baseline walker's layout is in bench/flat-pages.ts, checked against spec/ by bench.test.ts)",
  "src/hw/amdvi/unit.ts": "the AMD-Vi unit; uses the generic register file that lives in hw/vtd",
  "src/hw/platform.ts": "builds VT-d units and routes requests to them; its numbers are the machine's memory map",
  "src/hw/machine-config.ts": "the machine's configuration: takes the interrupt remapping table's size from spec/vtd; its numbers are the memory map",
  "src/ui/data.ts": "the browser view's data: reads VT-d registers and builds MSI addresses through spec/vtd names; its numbers are demo addresses",
  "src/hv/hypervisor.ts": "VT-d through spec names (GCMD.CFI, GSTS.CFIS); its numbers are PCI configuration space and guest memory layout",
  "src/hv/monitor.ts": "names fault reasons through spec/vtd; no layout",
  "src/hv/scenarios/msi-injection.ts": "VT-d through spec names and encoders; its numbers are attack parameters",
  "src/hv/stress.ts": "VT-d through spec encoders; its numbers are PCI MSI/MSI-X programming and test data",
};

/** Module-level names whose numbers are not VT-d facts ("file:NAME" → why). */
const ALLOWED_CONSTANTS: Readonly<Record<string, string>> = {
  "src/hw/vtd/builder.ts:DEFAULT_TABLE_BASE": "where the test bench places its tables (1 MiB), not a VT-d value",
  "src/hw/vtd/sm-translate.ts:CAPACITY": "how many entries the model's PASID cache and PASID IOTLB keep at most, not a VT-d value",
  "src/hw/vtd/caches.ts:TAG_DID_SHIFT": "the caches' own tag layout (domain id, level, page number), not a VT-d format",
  "src/hw/vtd/caches.ts:TAG_LEVEL_SHIFT": "the caches' own tag layout",
  "src/hw/vtd/caches.ts:TAG_VPN_HI_MASK": "the caches' own tag layout",
  "src/hw/vtd/caches.ts:HASH_LEVEL_SHIFT": "the caches' set-index hash",
  "src/hw/vtd/caches.ts:CONTEXT_HASH_SALT": "the caches' set-index hash",
  "src/hw/vtd/caches.ts:FRONT_DID_MIX": "the IOTLB lookup accelerator's hash",
  "src/hw/vtd/caches.ts:NEG_NOT_PRESENT": "the model's marker for a cached not-present leaf (not a fault reason)",
  "src/hw/vtd/caches.ts:FRONT_MIN": "size bounds of the IOTLB lookup accelerator",
  "src/hw/vtd/caches.ts:FRONT_MAX": "size bounds of the IOTLB lookup accelerator",
  "src/hw/vtd/config.ts:QEMU_7_2_DEFAULT": "the configuration QEMU 7.2 reports (FRO 0x220, IRO 0xf0, MHMV 0xf, cache sizes): values of one implementation, measured",
  "src/hw/vtd/config.ts:MAX_SETS": "the largest cache the model builds",
  "src/hw/vtd/config.ts:MAX_WAYS": "the largest cache the model builds",
  "src/hw/vtd/faults.ts:REQ_READ": "the model's request kinds (how FRCD's T1/T2 get set is spec/vtd/faults.ts)",
  "src/hw/vtd/faults.ts:REQ_TRANSLATION": "the model's request kinds",
  "src/hw/vtd/intremap.ts:DEFAULT_CACHE_SIZE": "the interrupt entry cache size of the model",
  "src/hw/vtd/intremap.ts:PROBE_MASK_MAX": "when index-selective invalidation probes instead of scanning the cache",
  "src/hw/vtd/intremap.ts:DEFAULT_HAW": "QEMU's default host address width (VTD_HOST_ADDRESS_WIDTH 39), a configuration",
  "src/hw/vtd/intremap.ts:FORENSIC_HAW": "x86's physical address limit (52 bits), assumed for dumps",
  "src/hw/vtd/registers.ts:EFFECT_GCMD": "the model's side-effect ids, dispatched in hw/vtd/commands.ts",
  "src/hw/vtd/registers.ts:EFFECT_CCMD": "the model's side-effect ids",
  "src/hw/vtd/registers.ts:EFFECT_IOTLB": "the model's side-effect ids",
  "src/hw/vtd/registers.ts:EFFECT_FSTS": "the model's side-effect ids",
  "src/hw/vtd/registers.ts:EFFECT_FECTL": "the model's side-effect ids",
  "src/hw/vtd/registers.ts:EFFECT_IQT": "the model's side-effect ids",
  "src/hw/vtd/registers.ts:EFFECT_IQA": "the model's side-effect ids",
  "src/hw/vtd/registers.ts:EFFECT_ICS": "the model's side-effect ids",
  "src/hw/vtd/registers.ts:EFFECT_IECTL": "the model's side-effect ids",
  "src/hw/vtd/registers.ts:EFFECT_FRCD": "the model's side-effect ids",
  "src/hw/vtd/unit.ts:DWORD": "interrupt requests are 4-byte writes (an access size)",
  "src/hw/vtd/unit.ts:INTERRUPT_REQUEST": "translateFast's own return codes",
  "src/hw/vtd/unit.ts:UNSUPPORTED_REQUEST": "translateFast's own return codes",
  "src/os/intel-iommu.ts:ADDR_DIGITS": "the width of addresses in Linux's DMAR log lines",
  "src/os/intel-pgtable.ts:UNDER_SUPERPAGE": "the page-table code's own answer for an address under a superpage, not a VT-d value",
  "src/os/intel-qi.ts:QI_IN_USE": "Linux's software status values (enum QI_FREE, QI_IN_USE, QI_DONE), written by the wait descriptor",
  "src/os/intel-qi.ts:QI_DONE": "Linux's software status values",
  "src/os/intel-qi.ts:STATUS_BYTES": "Linux's desc_status[] entries are ints",
  "src/os/intel-unit.ts:WAIT_POLLS": "how long the driver polls GSTS",
  "src/hv/interrupts.ts:FIRST_DEVICE_VECTOR": "x86 vector numbers the simulated kernel hands out",
  "src/hv/interrupts.ts:LAST_DEVICE_VECTOR": "x86 vector numbers the simulated kernel hands out",
  "src/hv/interrupts.ts:POSTED_INTR_VECTOR": "Linux's posted-interrupt notification vector (0xf2), an x86 vector",
  "src/hv/interrupts.ts:VECTORS": "x86 has 256 vectors per local APIC",
};

/**
 * Declarations that belong to AMD-Vi in a shared module (host/vtd-cap.ts decodes both vendors' sysfs registers):
 * their bit positions are checked with the AMD-Vi part of the same issue item.
 */
const OTHER_VENDOR = /^(AMD_|Amd|amd|decodeAmd|parseAmd)/;

function allowed(f: Finding): boolean {
  return ALLOWED_CONSTANTS[`${f.file}:${f.owner}`] !== undefined || OTHER_VENDOR.test(f.owner);
}

function scanText(text: string, file = "src/os/intel-iommu.ts"): Finding[] {
  return scanSource(file, text).filter((f) => !allowed(f));
}

test("the VT-d modules hold no VT-d bit position, mask or register offset as a number", () => {
  const files = vtdModules().filter((f) => EXCLUDED_FILES[f] === undefined);
  assert.ok(files.length >= 15, `only ${files.length} VT-d modules found`);
  const findings = files.flatMap((f) => scanLiterals(f, parse(f))).filter((f) => !allowed(f));
  assert.deepEqual(findings.map((f) => `${f.file}:${f.line} [${f.rule}] ${f.text}`), []);
});

test("every module that imports spec/vtd or hw/vtd at run time is scanned, or says why its numbers are not VT-d's", () => {
  const scanned = new Set(vtdModules());
  const importers = sourceFiles(["src"], false)
    .filter((f) => !f.startsWith("src/spec/") && !scanned.has(f))
    .filter((f) => runtimeImports(f).some((t) => t.startsWith("src/spec/vtd/") || t.startsWith("src/hw/vtd/")));
  assert.deepEqual(importers.filter((f) => NOT_VTD_LAYOUT[f] === undefined), []);
  for (const f of Object.keys(NOT_VTD_LAYOUT)) assert.ok(importers.includes(f), `${f} no longer imports VT-d at run time: remove it from NOT_VTD_LAYOUT`);
  for (const f of Object.keys(EXCLUDED_FILES)) assert.ok(scanned.has(f), `${f} is not a VT-d module: remove it from EXCLUDED_FILES`);
});

test("each allowed constant still exists (the list shrinks as names move to spec/)", () => {
  const declared = new Set(vtdModules().flatMap((f) => scanLiterals(f, parse(f)).map((x) => `${x.file}:${x.owner}`)));
  assert.deepEqual(Object.keys(ALLOWED_CONSTANTS).filter((k) => !declared.has(k)), []);
});

test("the scan catches a hand-written descriptor type, a context entry written by offset and shift, a register read by number", () => {
  const rules = (text: string): string[] => scanText(text).map((f) => f.rule);
  assert.deepEqual(rules("const QI_IOTLB_TYPE = 0x2;\n"), ["constant"]);
  assert.deepEqual(rules("export function f(mem, ce, did) { mem.write32(ce + 8, (did << 8) >>> 0); }\n"), ["offset", "bitwise"]);
  assert.deepEqual(rules("export function f(u) { return this.r32(u, 0xb0); }\n"), ["offset"]);
  assert.deepEqual(rules("export function f(fsts) { return (fsts >>> 8) & 0xff; }\n"), ["bitwise", "bitwise"]);
  assert.deepEqual(rules("export function f(apic) { return (0xfee00000 | (apic << 12)) >>> 0; }\n"), ["bitwise", "bitwise"]);
  assert.deepEqual(rules("export function f(nd) { return 2 ** (4 + 2 * nd); }\n"), ["scale"]);
  assert.deepEqual(rules("export function f(reason) { return reason >= 0x20; }\n"), ["hex"]);
  assert.deepEqual(rules("export function f(bus) { return bus * 16; }\n"), ["scale"]);
  // The idioms pass.
  assert.deepEqual(rules("export function f(v, lo, hi, n, reg, i) { return [v >>> 0, lo & 0xffffffff, hi >> 32n, 1 << n, reg.read32(lo + 4 * i), 2 ** 32]; }\n"), []);
});
