/**
 * `iommu ui`: the browser view of the simulated machine (its address spaces, page walks, the tour's stories and
 * the scenarios), or of a host recorded in a snapshot with the doctor's findings on its devices.
 */
import { spawn } from "node:child_process";
import { DEFAULT_MACHINE, PRESET_NAMES } from "../../hw/machine-presets.js";
import { loadPciIds } from "../../host/pciids.js";
import { SnapshotView } from "../../host/views/snapshot-view.js";
import { buildUi, type UiData, type UiSession } from "../../ui/data.js";
import { buildHostUi } from "../../ui/host-data.js";
import { exportSite, renderPage, servePage, viewScript } from "../../ui/server.js";
import { flag, str, toJson, usageError, type Command, type Context, type ParsedArgs } from "../command.js";

function intOption(text: string | undefined, name: string, max: number): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) > max) throw usageError(`--${name}: '${text}' is not a number from 0 to ${max}`, "ui");
  return Number(text);
}

function openBrowser(url: string, ctx: Context): void {
  try {
    const child = spawn("xdg-open", [url], { detached: true, stdio: "ignore" });
    child.on("error", () => ctx.err(`iommu: could not start xdg-open; open ${url} yourself\n`));
    child.unref();
  } catch {
    ctx.err(`iommu: could not start xdg-open; open ${url} yourself\n`);
  }
}

/** Resolves after `seconds` (if given) or on SIGINT/SIGTERM. */
function untilStopped(seconds: number | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      process.off("SIGINT", done);
      process.off("SIGTERM", done);
      if (timer !== undefined) clearTimeout(timer);
      resolve();
    };
    const timer = seconds === undefined ? undefined : setTimeout(done, seconds * 1000);
    process.once("SIGINT", done);
    process.once("SIGTERM", done);
  });
}

/** The page's data: the machine booted here, or the host a snapshot recorded (no walks to serve then). */
function session(args: ParsedArgs): { data: UiData; walk?: UiSession["walk"] } {
  const snapshot = str(args, "snapshot");
  if (snapshot === undefined) {
    if (str(args, "pci-ids") !== undefined) throw usageError("--pci-ids names a recorded host's devices: it needs --snapshot FILE", "ui");
    return buildUi({ machine: str(args, "machine") ?? DEFAULT_MACHINE, noStories: flag(args, "no-stories") });
  }
  if (str(args, "machine") !== undefined) throw usageError("--snapshot and --machine cannot be used together: each names what the page shows", "ui");
  const view = SnapshotView.load(snapshot);
  const s = view.snapshot;
  const recording = {
    ...(s.host.hostname === undefined ? {} : { hostname: s.host.hostname }),
    ...(s.host.kernel === undefined ? {} : { kernel: s.host.kernel }),
    ...(s.createdAt === undefined ? {} : { createdAt: s.createdAt }),
    createdBy: s.createdBy,
  };
  return { data: buildHostUi(view, { ids: loadPciIds(str(args, "pci-ids")), recording }) };
}

function exportSummary(path: string, data: UiData): { text: string; json: Record<string, unknown> } {
  if (data.host !== null) {
    const problems = data.host.problems.length;
    const json = { path, source: data.host.source, host: data.machine, devices: data.devices.length, groups: data.groups.length, problems, ready: data.host.ready };
    return { json, text: `Wrote ${path}: ${json.devices} PCI devices, ${json.groups} groups and ${problems} of the doctor's findings of ${data.host.source}.\n` };
  }
  const json = { path, machine: data.machine, devices: data.devices.length, groups: data.groups.length, stories: data.stories.length, scenarios: data.scenarios.length };
  return { json, text: `Wrote ${path}: ${json.devices} PCI functions, ${json.groups} groups, ${json.stories} stories and ${json.scenarios} scenarios of '${data.machine}'.\n` };
}

export const uiCommand: Command = {
  name: "ui",
  summary: "a browser view: PCI tree and groups, address spaces, page walks, stories and scenarios; or a recorded host",
  help: `Usage: iommu ui [--machine NAME|FILE] [--port N] [--open] [--for SECONDS] [--json]
       iommu ui --snapshot FILE [--pci-ids FILE] [--port N] [--open] [--for SECONDS] [--json]
       iommu ui --export DIR [--machine NAME|FILE | --snapshot FILE] [--json]

Boots the simulated kernel on the machine, runs the tour and the scenarios, and shows the results as one page:
  1. the PCI topology (root ports, bridges, functions) coloured by IOMMU group, why devices share a group,
     and the IOMMU units with their scopes;
  2. a device's address space: a buffer of scattered host pages mapped through the DMA API, the IOVA ranges
     and the host pages they reach, reserved regions, identity or translated domain;
  3. page walks: root entry, context entry, each page-table level and the leaf, decoded, with the fault
     reason where a walk stops; an MSI through the interrupt remapping table, one that lands and one that faults
     (on an AMD-Vi machine: the device table entry, the I/O page tables and the event the unit would log; the
     device's own interrupt remapping table);
  4. the tour's stories, each run without and with the IOMMU side by side;
  5. the scenarios ('iommu scenario --list') as timelines on simulated time, the runs side by side: the steps,
     the device's requests, the fault records the host read, the interrupts, the memory written, the verdict.
With --snapshot, the host a snapshot recorded ('iommu snapshot -o FILE'): its PCI devices coloured by group,
why they share one, its units, the doctor's status problems, and each device's check ('iommu check BDF')
on that device. A recording holds no IOMMU tables: address spaces, walks, stories and scenarios are absent.
The page needs no network: its script and data are inside the HTML file.

Without --export the page is served on http://127.0.0.1:PORT/ (the URL is printed) until Ctrl-C.

Options:
  -m, --machine NAME|FILE  a preset (${PRESET_NAMES.join(", ")}) or a JSON machine configuration; default ${DEFAULT_MACHINE}
      --snapshot FILE      show the host recorded in FILE instead of a simulated machine (- reads standard input)
      --pci-ids FILE       with --snapshot: device names from this pci.ids file
      --export DIR         write DIR/index.html (works from file://) and exit
  -p, --port N             port to serve on (default 0: any free port)
      --open               open the page in the desktop's browser (xdg-open)
      --for SECONDS        stop serving after this many seconds
      --no-stories         leave out the tour's stories and the scenarios (faster)
  -j, --json               print {url}, or what --export wrote: {path, machine, devices, groups, stories,
                           scenarios} or, with --snapshot, {path, source, host, devices, groups, problems, ready}

Examples:
  iommu ui --open
  iommu ui --export site -m q35 && xdg-open site/index.html
  sudo iommu snapshot -o host.json && iommu ui --snapshot host.json --open
`,
  options: {
    machine: { type: "string", short: "m" },
    snapshot: { type: "string" },
    "pci-ids": { type: "string" },
    export: { type: "string" },
    port: { type: "string", short: "p" },
    open: { type: "boolean" },
    for: { type: "string" },
    "no-stories": { type: "boolean" },
    json: { type: "boolean", short: "j" },
  },
  positionals: [0, 0],
  async run(args, ctx) {
    const port = intOption(str(args, "port"), "port", 65535) ?? 0;
    const seconds = intOption(str(args, "for"), "for", 86400);
    const dir = str(args, "export");
    if (dir === "") throw usageError("--export needs a directory", "ui");
    const script = viewScript();
    const { data, walk } = session(args);
    const html = renderPage(data, script, data.machine);
    if (dir !== undefined) {
      const summary = exportSummary(exportSite(dir, html), data);
      ctx.out(flag(args, "json") ? toJson(summary.json) : summary.text);
      return 0;
    }
    const { server, url } = await servePage(html, port, walk);
    ctx.out(flag(args, "json") ? toJson({ url }) : `Serving the view of ${data.host?.source ?? `'${data.machine}'`} at ${url} (Ctrl-C to stop)\n`);
    if (flag(args, "open")) openBrowser(url, ctx);
    await untilStopped(seconds);
    await new Promise<void>((resolve) => server.close(() => resolve()));
    return 0;
  },
};
