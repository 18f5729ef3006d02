/** `iommu snapshot -o FILE`: record what the doctor reads from this host into one JSON file. */
import { spawnSync } from "node:child_process";
import { IommuError } from "../../core/errors.js";
import { atomicWriteFile } from "../../core/fs.js";
import { recordSnapshot } from "../../host/snapshot.js";
import type { SysfsView } from "../../host/sysfs-view.js";
import { VIEW_OPTIONS, VIEW_OPTIONS_HELP, requireSysfs, viewFromArgs, viewOptionsFrom } from "../../host/views/open.js";
import { version } from "../version.js";
import { flag, str, toJson, usageError, type Command, type Context } from "../command.js";

/** The kernel log: `dmesg` on the live system, /var/log/dmesg under --root; null when not readable. */
function kernelLog(view: SysfsView, live: boolean, ctx: Context): string | null {
  if (live) {
    const r = spawnSync("dmesg", [], { encoding: "utf8", timeout: 10_000, maxBuffer: 64 * 1024 * 1024 });
    if (r.status === 0 && typeof r.stdout === "string") return r.stdout;
    ctx.err("iommu: note: the kernel log is not readable (kernel.dmesg_restrict, or no dmesg); recorded without it\n");
    return null;
  }
  try {
    return view.readText("/var/log/dmesg");
  } catch {
    return null;
  }
}

export const snapshotCommand: Command = {
  name: "snapshot",
  summary: "record what the doctor reads from this host into one JSON file (for --snapshot and bug reports)",
  help: `Usage: iommu snapshot -o FILE [--no-dmesg] [--root DIR | --snapshot FILE]

Records everything 'iommu status', 'groups', 'check', 'bootargs' and 'bind' read from this host (sysfs
attributes and links, /proc/cmdline, /proc/interrupts, /proc/cpuinfo, the ACPI DMAR/IVRS table, the
kernel config, bootloader files, modprobe options) and the IOMMU-related kernel log lines, into one JSON
file. Any command then answers from it with --snapshot FILE, on any machine. Run as root so the firmware
table and PCI extended config space are included; what could not be read is recorded as unreadable.
The file holds the host name, the kernel command line and mount points: review it before sharing.

Options:
  -o, --output FILE   where to write the snapshot ("-" for standard output)
  -j, --json          print {file, entries, bytes} of what was written (with -o -, the snapshot itself)
      --no-dmesg      do not record kernel log lines
${VIEW_OPTIONS_HELP}

Examples:
  sudo iommu snapshot -o host.json
  iommu status --snapshot host.json
  iommu groups --snapshot host.json --json
`,
  options: { ...VIEW_OPTIONS, output: { type: "string", short: "o" }, "no-dmesg": { type: "boolean" }, json: { type: "boolean", short: "j" } },
  positionals: [0, 0],
  run(args, ctx) {
    const output = str(args, "output");
    if (output === undefined) throw usageError("missing -o FILE (where to write the snapshot)", "snapshot");
    const opts = viewOptionsFrom(args);
    const view = viewFromArgs(args);
    requireSysfs(view);
    const live = opts.root === undefined && opts.snapshot === undefined;
    const started = Date.now();
    let announced = false;
    const snapshot = recordSnapshot(view, {
      createdBy: `iommu-kit ${version()}`,
      dmesg: flag(args, "no-dmesg") ? null : kernelLog(view, live, ctx),
      progress: (m) => {
        if (Date.now() - started < 1000) return;
        if (!announced) ctx.err("iommu: recording (this host has many devices)…\n");
        announced = true;
        ctx.err(`  ${m}\n`);
      },
      onReaderError: (name, e) => {
        const msg = e instanceof IommuError ? `${e.message} [${e.code}]` : (e as Error)?.message ?? String(e);
        ctx.err(`iommu: note: '${name}' stopped early on this host (${msg}); what it read so far is recorded\n`);
      },
    });
    const text = toJson(snapshot);
    const n = Object.keys(snapshot.entries).length;
    if (output === "-") {
      ctx.out(text); // the snapshot is JSON already: --json changes nothing here
      return 0;
    }
    atomicWriteFile(output, text);
    if (flag(args, "json")) ctx.out(toJson({ file: output, entries: n, bytes: Buffer.byteLength(text) }));
    else ctx.err(`iommu: wrote ${output}: ${n} entries, ${Math.round(text.length / 1024)} KiB\n`);
    return 0;
  },
};
