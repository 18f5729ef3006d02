/** `iommu walk --dtb …`: AMD-Vi device table, I/O page tables and interrupt remapping tables in a memory dump. */
import { IommuError } from "../../core/errors.js";
import { hex, parseHexBig } from "../../core/hex.js";
import { parsePciAddress, requesterId } from "../../core/pci.js";
import { DumpReader } from "../../forensics/dump.js";
import { listAmdMappings, walkAmdIova, walkAmdMsi } from "../../forensics/amdvi-walk.js";
import { renderList, renderMsi, renderWalk } from "../../forensics/render.js";
import { flag, progress, str, toJson, usageError, type Context, type ParsedArgs } from "../command.js";

export const AMD_WALK_HELP = `
AMD-Vi (with --dtb instead of --rtaddr / --irta):
  iommu walk --mem FILE --dtb HEX --bdf BB:DD.F --iova HEX [--access read|write] [--json]
  iommu walk --mem FILE --dtb HEX --bdf BB:DD.F --list [--json]
  iommu walk --mem FILE --dtb HEX --sid BB:DD.F --msi-addr HEX --msi-data HEX [--ga] [--json]
      --dtb HEX           device table base register (MMIO 0x0000: base and size field)
      --ga                128-bit IRTEs (Control.GAEn set)
`;

function hexArg(args: ParsedArgs, name: string, required: boolean): bigint | undefined {
  const text = str(args, name);
  if (text === undefined) {
    if (required) throw usageError(`missing --${name}`, "walk");
    return undefined;
  }
  const v = parseHexBig(text);
  if (v === null) throw new IommuError("BAD_HEX", `--${name}: '${text}' is not a hexadecimal number`, { hint: "write it like 0x7ffd2000 or 7ffd2000" });
  if (v >= 1n << 64n) throw new IommuError("BAD_HEX", `--${name}: ${hex(v)} does not fit in 64 bits`);
  return v;
}

function devidArg(args: ParsedArgs, name: string): number {
  const text = str(args, name);
  if (text === undefined) throw usageError(`missing --${name} BB:DD.F`, "walk");
  return requesterId(parsePciAddress(text));
}

export function runAmdWalk(args: ParsedArgs, ctx: Context): number {
  const json = flag(args, "json");
  for (const n of ["rtaddr", "irta", "cap", "ecap", "aw", "cfis"]) {
    if (args.values[n] !== undefined) throw usageError(`--${n} is a VT-d option; it does not go with --dtb`, "walk");
  }
  const dtb = hexArg(args, "dtb", true) ?? 0n;
  const interrupt = str(args, "msi-addr") !== undefined || str(args, "sid") !== undefined;
  if (interrupt) {
    for (const n of ["bdf", "iova", "list", "access"]) if (args.values[n] !== undefined) throw usageError(`--${n} does not go with an interrupt walk (--sid)`, "walk");
    const devid = devidArg(args, "sid");
    const msiAddr = hexArg(args, "msi-addr", true) ?? 0n;
    const msiData = hexArg(args, "msi-data", true) ?? 0n;
    if (msiData > 0xffff_ffffn) throw new IommuError("BAD_HEX", `--msi-data: ${hex(msiData)} does not fit in 32 bits`);
    const dump = DumpReader.open(str(args, "mem") ?? failMem());
    try {
      const report = walkAmdMsi(dump, { dtb, devid, msiAddr, msiData: Number(msiData), ga: flag(args, "ga") });
      ctx.out(json ? toJson(report) : renderMsi(report));
      return report.result === "ok" ? 0 : 1;
    } finally {
      dump.close();
    }
  }
  if (args.values["ga"] !== undefined) throw usageError("--ga belongs to an interrupt walk (with --sid)", "walk");
  const devid = devidArg(args, "bdf");
  const list = flag(args, "list");
  const iova = hexArg(args, "iova", false);
  if (list && iova !== undefined) throw usageError("give either --iova or --list, not both", "walk");
  if (!list && iova === undefined) throw usageError("missing --iova HEX (or --list)", "walk");
  const access = str(args, "access");
  if (access !== undefined && access !== "read" && access !== "write") throw new IommuError("BAD_ARGUMENT", `--access: '${access}' is neither read nor write`);
  const dump = DumpReader.open(str(args, "mem") ?? failMem());
  try {
    if (list) {
      const p = progress(ctx, args);
      const report = listAmdMappings(dump, dtb, devid, (n) => p.show(`walk --list: ${n} mappings so far`));
      p.done();
      ctx.out(json ? toJson(report) : renderList(report));
      return report.result === "ok" ? 0 : 1;
    }
    const report = walkAmdIova(dump, { dtb, devid, iova: iova ?? 0n, ...(access !== undefined ? { access } : {}) });
    ctx.out(json ? toJson(report) : renderWalk(report));
    return report.result === "ok" ? 0 : 1;
  } finally {
    dump.close();
  }
}

function failMem(): never {
  throw usageError("missing --mem FILE", "walk");
}
