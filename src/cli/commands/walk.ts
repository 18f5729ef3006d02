/** `iommu walk`: follow VT-d translation and interrupt-remapping tables in a memory dump. */
import { IommuError } from "../../core/errors.js";
import { hex, parseHexBig } from "../../core/hex.js";
import { parsePciAddress, requesterId } from "../../core/pci.js";
import { DumpReader } from "../../forensics/dump.js";
import { renderList, renderMsi, renderWalk } from "../../forensics/render.js";
import {
  checkIrtaInDump,
  checkRootInDump,
  forensicCaps,
  listMappings,
  rootTableOf,
  walkIova,
  walkMsi,
  type AddressWidth,
  type CapsOptions,
} from "../../forensics/walk.js";
import { flag, progress, str, toJson, usageError, type Command, type ParsedArgs } from "../command.js";
import { AMD_WALK_HELP, runAmdWalk } from "./walk-amd.js";
import { forensicScalableCaps, walkFirstStageTable } from "../../forensics/walk-scalable.js";

const HELP = `Usage:
  iommu walk --mem FILE --rtaddr HEX --bdf BB:DD.F --iova HEX [--pasid N] [--aw 39|48|57] [--access read|write] [--json]
  iommu walk --mem FILE --rtaddr HEX --bdf BB:DD.F --list [--pasid N] [--aw 39|48|57] [--json]
  iommu walk --mem FILE --first-stage-root HEX --iova HEX [--levels 4|5] [--access read|write] [--json]
  iommu walk --mem FILE --irta HEX --sid BB:DD.F --msi-addr HEX --msi-data HEX [--cfis] [--json]

Follows Intel VT-d tables in a raw memory dump, with the same code as the VT-d hardware model, and prints
every entry on the way and the result (an address, or the fault the hardware would record, with its spec
reason code). Only the pages the walk needs are read from the dump.

RTADDR's translation table mode (bits 11:10) says which tables these are. Legacy mode (TTM 00): root entry,
context entry, each second-level paging entry. Scalable mode (TTM 01, e.g. Linux with intel_iommu=sm_on):
scalable-mode root and context entries, PASID directory and PASID entry — of --pasid N, or of the context
entry's RID_PASID for a request without PASID — then the walk the PASID entry selects: second-stage,
first-stage (the processor's 4/5-level format), nested (first-stage tables read through the second stage) or
pass-through. --first-stage-root walks one bare first-stage table, as a PASID entry's FSPTPTR names it.

The dump is guest-physical memory from address 0 as a raw file, e.g. from the QEMU monitor:
  pmemsave 0 0x40000000 mem.raw          (size = guest RAM below the highest table)
and RTADDR / IRTA are the unit's register values (QEMU monitor: xp /1gx 0xfed90020, xp /1gx 0xfed900b8).

Options:
      --mem FILE          the memory dump (- reads standard input)
      --rtaddr HEX        root table address register (RTADDR_REG), legacy (TTM 00) or scalable (TTM 01)
      --pasid N           scalable mode: the request's PASID (0..1048575, decimal or 0x…); default: a request
                          without PASID, translated through the context entry's RID_PASID
      --first-stage-root HEX  a first-stage table's address (a PASID entry's FSPTPTR); walked without a device
      --levels N          first-stage paging levels: 4 (default) or 5
      --bdf BB:DD.F       the requesting device (or DDDD:BB:DD.F)
      --iova HEX          the address the device puts on the bus
      --list              list every mapping of the device's domain, merged into contiguous ranges
      --access KIND       check the permission of a read or a write (default: report the mapping as it is)
      --aw BITS           the hardware's address width: 39, 48 (default) or 57. QEMU's intel-iommu uses
                          39 unless started with aw-bits=48; use 39 to agree with it on reserved bits.
      --cap HEX           CAP_REG of the unit (overrides --aw: address widths, large pages, FS5LP, FS1GP)
      --ecap HEX          ECAP_REG of the unit (pass-through, device-TLB, snoop control; in scalable mode the
                          PGTTs and PASIDs it supports). Without --cap and --ecap every scalable feature counts.
      --irta HEX          interrupt remapping table address register (IRTA_REG: base, EIME, size)
      --sid BB:DD.F       the device sending the interrupt
      --msi-addr HEX      the MSI address it writes (0xFEEx_xxxx)
      --msi-data HEX      the MSI data it writes
      --cfis              compatibility-format interrupts allowed (GSTS.CFIS set)
  -j, --json              machine-readable output; addresses and 64-bit values are "0x…" strings

Exit status: 0 the walk ends in a translation, 1 it ends in a fault, 2 bad input (missing or short dump,
table address outside the dump, malformed BDF or number).

Examples:
  iommu walk --mem mem.raw --rtaddr 0x7ffd2000 --bdf 00:03.0 --iova 0xffffe000
  iommu walk --mem mem.raw --rtaddr 0x7ffd2000 --bdf 00:03.0 --iova 0xffffe000 --aw 39 --json
  iommu walk --mem mem.raw --rtaddr 0x7ffd2000 --bdf 00:03.0 --list
  iommu walk --mem mem.raw --rtaddr 0x7ffd2400 --bdf 00:03.0 --iova 0xffffe000        (scalable mode, RID_PASID)
  iommu walk --mem mem.raw --rtaddr 0x7ffd2400 --bdf 00:03.0 --pasid 1 --iova 0x7f001000
  iommu walk --mem mem.raw --first-stage-root 0x12345000 --iova 0x7f0012345000 --levels 4 --json
  iommu walk --mem mem.raw --irta 0x7ff00807 --sid 00:03.0 --msi-addr 0xfee00010 --msi-data 0
${AMD_WALK_HELP}`;

function hexOption(args: ParsedArgs, name: string): bigint | undefined {
  const text = str(args, name);
  if (text === undefined) return undefined;
  const v = parseHexBig(text);
  if (v === null) {
    throw new IommuError("BAD_HEX", `--${name}: '${text}' is not a hexadecimal number`, { hint: "write it like 0x7ffd2000 or 7ffd2000" });
  }
  if (v >= 1n << 64n) throw new IommuError("BAD_HEX", `--${name}: ${hex(v)} does not fit in 64 bits`);
  return v;
}

function requireHex(args: ParsedArgs, name: string): bigint {
  const v = hexOption(args, name);
  if (v === undefined) throw usageError(`missing --${name}`, "walk");
  return v;
}

function sidOption(args: ParsedArgs, name: string): number {
  const text = str(args, name);
  if (text === undefined) throw usageError(`missing --${name}`, "walk");
  // The segment, if given, only selects the unit; the tables are the unit's own, indexed by bus and devfn.
  return requesterId(parsePciAddress(text));
}

function capsOptions(args: ParsedArgs): CapsOptions {
  const awText = str(args, "aw");
  const o: CapsOptions = {};
  if (awText !== undefined) {
    const aw = Number(awText);
    if (aw !== 39 && aw !== 48 && aw !== 57) {
      throw new IommuError("BAD_ARGUMENT", `--aw: '${awText}' is not an address width this hardware has`, { hint: "use 39, 48 or 57" });
    }
    o.awBits = aw as AddressWidth;
  }
  const cap = hexOption(args, "cap");
  const ecap = hexOption(args, "ecap");
  if (cap !== undefined) o.cap = cap;
  if (ecap !== undefined) o.ecap = ecap;
  return o;
}

function openDump(args: ParsedArgs): DumpReader {
  const path = str(args, "mem");
  if (path === undefined) throw usageError("missing --mem FILE", "walk");
  return DumpReader.open(path);
}

/** --pasid N: a PASID (20 bits), decimal or 0x-prefixed hexadecimal. */
function pasidOption(args: ParsedArgs): number | undefined {
  const text = str(args, "pasid");
  if (text === undefined) return undefined;
  const v = /^0x[0-9a-f]+$/i.test(text) ? Number.parseInt(text, 16) : /^[0-9]+$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(v) || v < 0 || v > 0xfffff) {
    throw new IommuError("BAD_ARGUMENT", `--pasid: '${text}' is not a PASID`, { hint: "a PASID is 0..1048575 (20 bits), decimal or 0x…" });
  }
  return v;
}

function accessOption(args: ParsedArgs): "read" | "write" | undefined {
  const text = str(args, "access");
  if (text !== undefined && text !== "read" && text !== "write") throw new IommuError("BAD_ARGUMENT", `--access: '${text}' is neither read nor write`);
  return text;
}

/** `--first-stage-root HEX --iova HEX [--levels 4|5]`: one address through a bare first-stage table. */
function runFirstStageWalk(args: ParsedArgs, out: (text: string) => void, json: boolean): number {
  for (const n of ["rtaddr", "bdf", "list", "pasid", "irta", "sid", "msi-addr", "msi-data", "cfis"]) {
    if (args.values[n] !== undefined) throw usageError(`--${n} does not go with --first-stage-root (a bare first-stage table)`, "walk");
  }
  const root = requireHex(args, "first-stage-root");
  const iova = requireHex(args, "iova");
  const levelsText = str(args, "levels") ?? "4";
  if (levelsText !== "4" && levelsText !== "5") throw new IommuError("BAD_ARGUMENT", `--levels: '${levelsText}' is not a first-stage paging depth`, { hint: "use 4 or 5" });
  const access = accessOption(args);
  const capsOpts = capsOptions(args);
  const caps = forensicCaps(capsOpts);
  const dump = openDump(args);
  try {
    if (root + 4096n > BigInt(dump.size)) {
      throw new IommuError("ROOT_OUTSIDE_DUMP", `--first-stage-root ${hex(root)}: the table is not wholly inside the dump (${dump.size} bytes)`);
    }
    const report = walkFirstStageTable(dump, { root, iova, levels: Number(levelsText), caps, scalable: forensicScalableCaps(caps, capsOpts), ...(access !== undefined ? { access } : {}) });
    out(json ? toJson(report) : renderWalk(report));
    return report.result === "ok" ? 0 : 1;
  } finally {
    dump.close();
  }
}

export const walkCommand: Command = {
  name: "walk",
  summary: "follow VT-d translation or interrupt-remapping tables in a memory dump",
  help: HELP,
  options: {
    mem: { type: "string" },
    rtaddr: { type: "string" },
    bdf: { type: "string" },
    iova: { type: "string" },
    list: { type: "boolean" },
    access: { type: "string" },
    aw: { type: "string" },
    cap: { type: "string" },
    ecap: { type: "string" },
    irta: { type: "string" },
    sid: { type: "string" },
    "msi-addr": { type: "string" },
    "msi-data": { type: "string" },
    cfis: { type: "boolean" },
    dtb: { type: "string" },
    ga: { type: "boolean" },
    pasid: { type: "string" },
    "first-stage-root": { type: "string" },
    levels: { type: "string" },
    json: { type: "boolean", short: "j" },
  },
  positionals: [0, 0],
  run(args, ctx) {
    if (args.values["dtb"] !== undefined) return runAmdWalk(args, ctx);
    const json = flag(args, "json");
    if (str(args, "first-stage-root") !== undefined) return runFirstStageWalk(args, ctx.out, json);
    for (const n of ["levels"]) if (args.values[n] !== undefined) throw usageError(`--${n} belongs to a first-stage walk (with --first-stage-root)`, "walk");
    const interrupt = str(args, "irta") !== undefined;
    if (interrupt) {
      for (const n of ["rtaddr", "bdf", "iova", "list", "access", "pasid"]) {
        if (args.values[n] !== undefined) throw usageError(`--${n} does not go with --irta (an interrupt walk)`, "walk");
      }
      const irta = requireHex(args, "irta");
      const sid = sidOption(args, "sid");
      const msiAddr = requireHex(args, "msi-addr");
      const msiData = requireHex(args, "msi-data");
      if (msiData > 0xffffffffn) throw new IommuError("BAD_HEX", `--msi-data: ${hex(msiData)} does not fit in 32 bits`);
      const caps = capsOptions(args);
      const dump = openDump(args);
      try {
        checkIrtaInDump(dump, irta);
        const report = walkMsi(dump, {
          irta,
          sid,
          msiAddr,
          msiData: Number(msiData),
          cfis: flag(args, "cfis"),
          ...(caps.awBits !== undefined ? { hostAddressWidth: caps.awBits } : {}),
        });
        ctx.out(json ? toJson(report) : renderMsi(report));
        return report.result === "ok" ? 0 : 1;
      } finally {
        dump.close();
      }
    }
    for (const n of ["sid", "msi-addr", "msi-data", "cfis"]) {
      if (args.values[n] !== undefined) throw usageError(`--${n} belongs to an interrupt walk (with --irta)`, "walk");
    }
    const list = flag(args, "list");
    const rtaddr = requireHex(args, "rtaddr");
    const bdfText = str(args, "bdf");
    if (bdfText === undefined) throw usageError("missing --bdf BB:DD.F", "walk");
    const sid = sidOption(args, "bdf");
    const iova = hexOption(args, "iova");
    if (list && iova !== undefined) throw usageError("give either --iova or --list, not both", "walk");
    if (!list && iova === undefined) throw usageError("missing --iova HEX (or --list)", "walk");
    const accessText = str(args, "access");
    if (accessText !== undefined && accessText !== "read" && accessText !== "write") {
      throw new IommuError("BAD_ARGUMENT", `--access: '${accessText}' is neither read nor write`);
    }
    const capsOpts = capsOptions(args);
    const caps = forensicCaps(capsOpts);
    const pasid = pasidOption(args);
    const scalable = forensicScalableCaps(caps, capsOpts);
    const sm = { scalable, ...(pasid !== undefined ? { pasid } : {}) };
    const rta = rootTableOf(rtaddr);
    const dump = openDump(args);
    try {
      checkRootInDump(dump, rta);
      if (list) {
        const p = progress(ctx, args);
        const report = listMappings(dump, { rtaddr, sid, caps, ...sm, progress: (n) => p.show(`walk --list: ${n} mappings so far`) });
        p.done();
        ctx.out(json ? toJson(report) : renderList(report));
        return report.result === "ok" ? 0 : 1;
      }
      const report = walkIova(dump, { rtaddr, sid, iova: iova ?? 0n, caps, ...sm, ...(accessText !== undefined ? { access: accessText } : {}) });
      ctx.out(json ? toJson(report) : renderWalk(report));
      return report.result === "ok" ? 0 : 1;
    } finally {
      dump.close();
    }
  },
};
