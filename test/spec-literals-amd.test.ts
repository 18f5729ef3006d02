/**
 * No AMD-Vi bit position outside src/spec/: the modules that read or write AMD-Vi registers, tables, commands,
 * events or IVRS structures are scanned with the same rules as the VT-d modules (test/spec-literals.test.ts, whose
 * header lists the categories and the idioms that pass; the scan is test/support/literal-scan.ts).
 *
 * Each number the scan reports needs a name in spec/amdvi (or core/pci-regs), a place in ALLOWED_CONSTANTS with
 * the reason it is not an AMD-Vi fact, or, while the conversion is under way, a count in NOT_YET_CONVERTED. That
 * count must match the scan exactly: it cannot grow, and when a file's literals move to spec/ the count is lowered
 * (or the entry removed) in the same change.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { scanLiterals, scanSource, type Finding } from "./support/literal-scan.js";
import { parse, runtimeImports, sourceFiles } from "./support/program.js";

/** AMD-Vi modules outside hw/amdvi, os/amd-*, acpi/ivrs* and lab/amdvi-*. */
const AMD_ALSO = new Set(["src/forensics/amdvi-walk.ts", "src/ui/amdvi-data.ts", "src/hw/machine-ivrs.ts", "src/hw/machine-config-amd.ts"]);

/** The modules that handle AMD-Vi layouts: the unit model, the kernel's driver, the IVRS codec, the walker, the lab. */
function amdModules(): string[] {
  return sourceFiles(["src", "lab"], false).filter(
    (f) =>
      f.startsWith("src/hw/amdvi/") ||
      /^src\/os\/amd-[^/]+\.ts$/.test(f) ||
      /^src\/acpi\/ivrs[^/]*\.ts$/.test(f) ||
      /^lab\/amdvi-[^/]+\.ts$/.test(f) ||
      AMD_ALSO.has(f),
  );
}

/**
 * Modules outside the scan that import spec/amdvi or hw/amdvi at run time: they use AMD-Vi only through names,
 * and their own numbers belong to other layouts. A new importer must be added to the scan or here, with the reason.
 */
const NOT_AMD_LAYOUT: Readonly<Record<string, string>> = {
  "src/bench/cases/amdvi-translate.ts": "benchmark: builds tables with hw/amdvi/builder.ts and drives the unit; its numbers are addresses, sizes and counts",
  "src/hv/scenarios/msi-injection.ts": "writes AMD-Vi DTEs through spec/amdvi field names; its numbers are attack parameters",
  "src/hw/machine.ts": "wires the AMD-Vi unit's PCI function and request sources into the machine; its numbers are the machine's memory map",
  "src/hw/platform.ts": "routes requests to AMD-Vi units through hw/amdvi; its numbers are the machine's memory map",
  "src/os/iommu-faults.ts": "names AMD-Vi event codes through spec/amdvi/events.ts; no layout",
};

/** Module-level names whose numbers are not AMD-Vi facts ("file:NAME" → why). */
const ALLOWED_CONSTANTS: Readonly<Record<string, string>> = {
  "src/forensics/amdvi-walk.ts:MAX_MAPPINGS": "how many mappings the walker lists before it stops (2^20), a bound of the tool",
  "src/hw/amdvi/builder.ts:DEV_TABLE": "where the test bench places its device table (1 MiB), not an AMD-Vi value",
  "src/hw/amdvi/builder.ts:CMD_BUF": "where the test bench places its command buffer",
  "src/hw/amdvi/builder.ts:EVENT_LOG": "where the test bench places its event log",
  "src/hw/amdvi/registers.ts:EFFECT_CONTROL": "the model's side-effect ids, dispatched in hw/amdvi/unit.ts",
  "src/hw/amdvi/registers.ts:EFFECT_CMD_TAIL": "the model's side-effect ids",
  "src/hw/amdvi/registers.ts:EFFECT_CMD_BASE": "the model's side-effect ids",
  "src/hw/amdvi/registers.ts:EFFECT_EVENT_BASE": "the model's side-effect ids",
  "src/hw/amdvi/registers.ts:EFFECT_DEV_TABLE": "the model's side-effect ids",
  "src/os/amd-events.ts:RATELIMIT_INTERVAL_NS": "Linux's printk rate limit (DEFAULT_RATELIMIT_INTERVAL, 5 s)",
  "src/os/amd-events.ts:RATELIMIT_BURST": "Linux's printk rate limit (DEFAULT_RATELIMIT_BURST, 10)",
  "src/os/amd-iommu.ts:MAX_DOMAIN_ID": "how many domain ids Linux's allocator hands out (MAX_DOMAIN_ID in amd_iommu_types.h)",
  "src/os/amd-irq.ts:MAX_IRQS_PER_TABLE": "Linux's choice of interrupt table size (MAX_IRQS_PER_TABLE 256)",
  "src/os/amd-irq.ts:IOAPIC_RESERVED": "Linux's reserved IRTE entries for the IOAPIC (32), a driver policy",
  "src/os/amd-pgtable.ts:DEFAULT_PGTABLE_LEVEL": "Linux's default page-table depth (amd_iommu_pgtable level 3), a driver policy",
  "src/os/amd-pgtable.ts:PAGE": "the x86 page the kernel allocates (4096)",
  "src/os/amd-unit.ts:KERN_ALERT": "a printk log level",
  "src/os/amd-unit.ts:CMD_BUFFER_SIZE": "Linux's command buffer size (CMD_BUFFER_SIZE 8192), a driver choice",
  "src/os/amd-unit.ts:EVT_BUFFER_SIZE": "Linux's event buffer size (EVT_BUFFER_SIZE 8192), a driver choice",
  "src/os/amd-unit.ts:LOOP_TIMEOUT": "how long the driver polls (LOOP_TIMEOUT in amd/iommu.c)",
};

/**
 * Findings per file not yet converted to spec/amdvi names (see the header). The total the scan found when this
 * test was added, before any conversion: 435.
 */
const NOT_YET_CONVERTED: Readonly<Record<string, number>> = {
  "lab/amdvi-msi.ts": 17,
  "lab/amdvi-oracle.ts": 10,
  "lab/amdvi-trace.ts": 3,
  "src/acpi/ivrs-decode.ts": 1,
  "src/acpi/ivrs-encode.ts": 13,
  "src/acpi/ivrs-fields.ts": 10,
  "src/acpi/ivrs-format.ts": 29,
  "src/acpi/ivrs-text.ts": 11,
  "src/hw/amdvi/builder.ts": 23,
  "src/hw/amdvi/caches.ts": 10,
  "src/hw/amdvi/commands.ts": 12,
  "src/hw/amdvi/intremap.ts": 27,
  "src/hw/amdvi/pci-function.ts": 38,
  "src/hw/amdvi/platform-unit.ts": 5,
  "src/hw/amdvi/registers.ts": 5,
  "src/hw/amdvi/sources.ts": 2,
  "src/hw/amdvi/translate.ts": 22,
  "src/hw/amdvi/unit.ts": 28,
  "src/hw/machine-config-amd.ts": 17,
  "src/hw/machine-ivrs.ts": 41,
  "src/os/amd-events.ts": 3,
  "src/os/amd-iommu.ts": 22,
  "src/os/amd-ivrs.ts": 3,
  "src/os/amd-unit.ts": 11,
  "src/ui/amdvi-data.ts": 4,
};

function allowed(f: Finding): boolean {
  return ALLOWED_CONSTANTS[`${f.file}:${f.owner}`] !== undefined;
}

function findings(): Finding[] {
  return amdModules().flatMap((f) => scanLiterals(f, parse(f))).filter((f) => !allowed(f));
}

test("the AMD-Vi modules hold no AMD-Vi bit position, mask or register offset as a number, beyond the counted remainder", () => {
  const files = amdModules();
  assert.ok(files.length >= 25, `only ${files.length} AMD-Vi modules found`);
  const counts: Record<string, number> = {};
  for (const f of findings()) counts[f.file] = (counts[f.file] ?? 0) + 1;
  assert.deepEqual(counts, NOT_YET_CONVERTED);
});

test("every module that imports spec/amdvi or hw/amdvi at run time is scanned, or says why its numbers are not AMD-Vi's", () => {
  const scanned = new Set(amdModules());
  const importers = sourceFiles(["src", "lab"], false)
    .filter((f) => !f.startsWith("src/spec/") && !scanned.has(f))
    .filter((f) => runtimeImports(f).some((t) => t.startsWith("src/spec/amdvi/") || t.startsWith("src/hw/amdvi/")));
  assert.deepEqual(importers.filter((f) => NOT_AMD_LAYOUT[f] === undefined), []);
  for (const f of Object.keys(NOT_AMD_LAYOUT)) assert.ok(importers.includes(f), `${f} no longer imports AMD-Vi at run time: remove it from NOT_AMD_LAYOUT`);
});

test("each allowed constant still exists (the list shrinks as names move to spec/)", () => {
  const declared = new Set(amdModules().flatMap((f) => scanLiterals(f, parse(f)).map((x) => `${x.file}:${x.owner}`)));
  assert.deepEqual(Object.keys(ALLOWED_CONSTANTS).filter((k) => !declared.has(k)), []);
});

test("the scan catches a hand-written device-table-entry shift, an event code written as a number, a register read by offset", () => {
  const rules = (text: string): string[] => scanSource("src/os/amd-iommu.ts", text).filter((f) => !allowed(f)).map((f) => f.rule);
  // The page-table root's high bits into DTE dword 1, with V set by hand.
  assert.deepEqual(rules("export function f(mem, dte, root) { mem.write32(dte + 4, (root >>> 20) | 1); }\n"), ["offset", "bitwise", "bitwise"]);
  assert.deepEqual(rules("export function f(dw) { return (dw[0] >>> 9) & 7; }\n"), ["bitwise", "bitwise"]);
  // IO_PAGE_FAULT (2.5.3) as a number, as a constant and as a comparison.
  assert.deepEqual(rules("const IO_PAGE_FAULT = 0x2;\n"), ["constant"]);
  assert.deepEqual(rules("export function f(ev) { return ev.code === 0x2; }\n"), ["hex"]);
  assert.deepEqual(rules("export function f(d1) { return d1 >>> 28; }\n"), ["bitwise"]);
  // The Status register (3.4.11) read by its offset.
  assert.deepEqual(rules("export function f(io, u) { return io.r32(u, 0x2020); }\n"), ["offset"]);
  assert.deepEqual(rules("export function f(regs) { return regs.get32(0x2000 + 8); }\n"), ["offset", "offset"]);
  // The idioms pass.
  assert.deepEqual(rules("export function f(v, lo, hi, n, reg, i) { return [v >>> 0, lo & 0xffffffff, hi >> 32n, 1 << n, reg.read32(lo + 4 * i), 2 ** 32]; }\n"), []);
});
