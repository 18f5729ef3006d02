/** `iommu ui`: the browser view of the simulated machine, its address spaces, page walks and the tour's stories. */
import { spawn } from "node:child_process";
import { DEFAULT_MACHINE, PRESET_NAMES } from "../../hw/machine-presets.js";
import { buildUi } from "../../ui/data.js";
import { exportSite, renderPage, servePage, viewScript } from "../../ui/server.js";
import { flag, str, toJson, usageError, type Command, type Context } from "../command.js";

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

export const uiCommand: Command = {
  name: "ui",
  summary: "a browser view: PCI tree and groups, address spaces, page walks, the tour's stories",
  help: `Usage: iommu ui [--machine NAME|FILE] [--port N] [--open] [--for SECONDS] [--json]
       iommu ui --export DIR [--machine NAME|FILE] [--json]

Boots the simulated kernel on the machine, runs the tour, and shows the results as one page:
  1. the PCI topology (root ports, bridges, functions) coloured by IOMMU group, why devices share a group,
     and the IOMMU units with their scopes;
  2. a device's address space: a buffer of scattered host pages mapped through the DMA API, the IOVA ranges
     and the host pages they reach, reserved regions, identity or translated domain;
  3. page walks: root entry, context entry, each page-table level and the leaf, decoded, with the fault
     reason where a walk stops; an MSI through the interrupt remapping table, one that lands and one that faults;
  4. the tour's stories, each run without and with the IOMMU side by side.
The page needs no network: its script and data are inside the HTML file.

Without --export the page is served on http://127.0.0.1:PORT/ (the URL is printed) until Ctrl-C.

Options:
  -m, --machine NAME|FILE  a preset (${PRESET_NAMES.join(", ")}) or a JSON machine configuration; default ${DEFAULT_MACHINE}
      --export DIR         write DIR/index.html (works from file://) and exit
  -p, --port N             port to serve on (default 0: any free port)
      --open               open the page in the desktop's browser (xdg-open)
      --for SECONDS        stop serving after this many seconds
      --no-stories         leave out the tour's stories (faster)
  -j, --json               print {url} or {path, machine, devices, groups, stories} as JSON

Examples:
  iommu ui --open
  iommu ui --export site -m q35 && xdg-open site/index.html
`,
  options: {
    machine: { type: "string", short: "m" },
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
    const session = buildUi({ machine: str(args, "machine") ?? DEFAULT_MACHINE, noStories: flag(args, "no-stories") });
    const data = session.data;
    const html = renderPage(data, script, data.machine);
    if (dir !== undefined) {
      const path = exportSite(dir, html);
      const summary = { path, machine: data.machine, devices: data.devices.length, groups: data.groups.length, stories: data.stories.length };
      ctx.out(flag(args, "json") ? toJson(summary) : `Wrote ${path}: ${summary.devices} PCI functions, ${summary.groups} groups, ${summary.stories} stories of '${data.machine}'.\n`);
      return 0;
    }
    const { server, url } = await servePage(html, port, session.walk);
    ctx.out(flag(args, "json") ? toJson({ url }) : `Serving the view of '${data.machine}' at ${url} (Ctrl-C to stop)\n`);
    if (flag(args, "open")) openBrowser(url, ctx);
    await untilStopped(seconds);
    await new Promise<void>((resolve) => server.close(() => resolve()));
    return 0;
  },
};
