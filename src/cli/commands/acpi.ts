/** `iommu acpi`: decode and encode the firmware tables that describe IOMMUs (DMAR, IVRS). */
import { IommuError, fsError } from "../../core/errors.js";
import { atomicWriteFile } from "../../core/fs.js";
import { inputName, readInputText } from "../../core/input.js";
import { decodeTable, encodeTable, loadTables, renderTableText, type IommuTable } from "../../acpi/index.js";
import { flag, str, toJson, usageError, type Command } from "../command.js";

const decode: Command = {
  name: "decode",
  summary: "decode a DMAR or IVRS table (raw file, acpidump text, or the sysfs tables directory)",
  help: `Usage: iommu acpi decode [FILE] [--json] [--table SIG]

Decodes the ACPI tables that describe IOMMUs: Intel's DMAR and AMD's IVRS. FILE may be
  - a raw table, as the kernel exposes it:      /sys/firmware/acpi/tables/DMAR  (the default, needs root)
  - a directory of raw tables:                  /sys/firmware/acpi/tables
  - an acpidump text dump (several tables; the DMAR/IVRS ones are picked)
  - -, for standard input (any of the above but a directory)
Text output is laid out like 'iasl -d': byte offset, field, value and the names of structure types.
A wrong checksum is reported as a warning and the table is decoded anyway, as Linux does.

Options:
  -j, --json         machine-readable output (64-bit values as "0x…" strings)
      --table SIG    only the table with this signature (DMAR or IVRS)

Examples:
  sudo iommu acpi decode
  iommu acpi decode dmar.bin --json | jq '.tables[0].structures[] | select(.type=="DRHD")'
  sudo acpidump > tables.txt && iommu acpi decode tables.txt
`,
  options: { json: { type: "boolean", short: "j" }, table: { type: "string" } },
  positionals: [0, 1],
  run(args, ctx) {
    const path = args.positionals[0] ?? "/sys/firmware/acpi/tables";
    const want = str(args, "table")?.toUpperCase();
    let sources = loadTables(path);
    if (want) {
      sources = sources.filter((s) => s.signature === want);
      if (sources.length === 0) throw new IommuError("ACPI_NO_SUCH_TABLE", `${path}: no ${want} table`);
    }
    const decoded = sources.map((s) => {
      try {
        return { source: s.origin, ...decodeTable(s.bytes) };
      } catch (e) {
        if (e instanceof IommuError) throw new IommuError(e.code, `${s.origin}: ${e.message}`, { hint: e.hint, cause: e });
        throw e;
      }
    });
    for (const d of decoded) for (const w of d.warnings) ctx.err(`warning: ${w}\n`);
    if (flag(args, "json")) {
      ctx.out(toJson({ tables: decoded.map((d) => ({ source: d.source, warnings: d.warnings, ...d.table })) }));
    } else {
      ctx.out(decoded.map((d) => `/* ${d.source} */\n\n${renderTableText(d.table)}`).join("\n"));
    }
    return 0;
  },
};

const encode: Command = {
  name: "encode",
  summary: "build a table's bytes from its decoded JSON (length and checksum computed)",
  help: `Usage: iommu acpi encode FILE.json -o OUT [--keep-checksum] [--json]

Encodes a table from the JSON that 'iommu acpi decode --json' prints (either the whole output, whose first
table is used, or a single table object). Lengths and the checksum are computed; offsets in the JSON are ignored.
Edit the JSON to build firmware for a test machine, then load it with QEMU's -acpitable or a simulated machine.

Options:
  -o, --output OUT     where to write the raw table (written to a temporary file, then renamed); - = stdout
      --keep-checksum  write the stored checksum byte instead of computing it (reproduces a bad table)
  -j, --json           print {file, signature, length, checksum} of what was written
FILE.json may be - to read standard input.

Examples:
  iommu acpi decode dmar.bin --json > dmar.json && iommu acpi encode dmar.json -o dmar2.bin && cmp dmar.bin dmar2.bin
  iommu acpi decode dmar.bin --json | iommu acpi encode - -o - | xxd | head
`,
  options: { output: { type: "string", short: "o" }, "keep-checksum": { type: "boolean" }, json: { type: "boolean", short: "j" } },
  positionals: [1, 1],
  run(args, ctx) {
    const path = args.positionals[0] ?? "";
    const out = str(args, "output");
    if (!out) throw new IommuError("USAGE", "missing -o OUT", { hint: "see 'iommu acpi encode --help'" });
    if (out === "-" && flag(args, "json")) throw usageError("--json and -o - both write to standard output: choose one", "acpi encode");
    let text: string;
    try {
      text = readInputText(path);
    } catch (e) {
      throw fsError(e, inputName(path));
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      throw new IommuError("BAD_JSON", `${path}: not JSON: ${(e as Error).message}`);
    }
    if (parsed === null || typeof parsed !== "object") {
      throw new IommuError("BAD_JSON", `${path}: expected a table object or 'iommu acpi decode --json' output, not ${parsed === null ? "null" : typeof parsed}`);
    }
    const obj = parsed as { tables?: unknown[]; signature?: unknown };
    const table = (Array.isArray(obj.tables) ? obj.tables[0] : obj) as IommuTable | undefined;
    if (!table || (table.signature !== "DMAR" && table.signature !== "IVRS")) {
      throw new IommuError("BAD_JSON", `${path}: no DMAR or IVRS table object (expected "signature": "DMAR" or "IVRS")`);
    }
    let bytes: Uint8Array;
    try {
      bytes = encodeTable(table, { keepChecksum: flag(args, "keep-checksum") });
    } catch (e) {
      if (e instanceof IommuError) throw e;
      throw new IommuError("BAD_TABLE_JSON", `${path}: cannot encode: ${(e as Error).message}`, {
        hint: "start from the output of 'iommu acpi decode --json' and change values, keeping field names and types",
      });
    }
    if (out === "-") {
      if (ctx.outBytes === undefined) throw new IommuError("USAGE", "this output cannot take binary data: write to a file with -o FILE");
      ctx.outBytes(bytes);
      return 0;
    }
    atomicWriteFile(out, bytes);
    if (flag(args, "json")) ctx.out(toJson({ file: out, signature: table.signature, length: bytes.length, checksum: "0x" + (bytes[9] ?? 0).toString(16).padStart(2, "0") }));
    else ctx.err(`wrote ${bytes.length} bytes (${table.signature}) to ${out}\n`);
    return 0;
  },
};

export const acpiCommand: Command = {
  name: "acpi",
  summary: "decode and encode the firmware tables that describe IOMMUs (DMAR, IVRS)",
  help: `Usage: iommu acpi <command> [options]

The firmware tells the operating system where the IOMMUs are and which devices each one covers through ACPI
tables: DMAR on Intel (VT-d), IVRS on AMD (AMD-Vi). These commands decode them exactly and build them back.
`,
  subcommands: [decode, encode],
};
