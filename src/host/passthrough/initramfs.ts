/**
 * Which tool builds this system's initramfs, which modules its configuration puts in it (and loads early), and
 * the command that rebuilds it. A host driver loaded from the initramfs claims its device before anything in
 * the root file system runs, so vfio-pci must be in the initramfs too for early binding to win.
 *
 * - initramfs-tools (Debian, Ubuntu): /etc/initramfs-tools/modules, one module per line; `update-initramfs -u -k all`.
 * - dracut (Fedora, RHEL, openSUSE): force_drivers+=" … " in /etc/dracut.conf or /etc/dracut.conf.d/*.conf (force_drivers
 *   both includes and loads them; add_drivers only includes); `dracut --regenerate-all --force`.
 * - mkinitcpio (Arch): MODULES=(…) in /etc/mkinitcpio.conf or /etc/mkinitcpio.conf.d/*.conf; the modconf hook
 *   copies modprobe.d into the image; `mkinitcpio -P`.
 */
import type { SysfsView } from "../sysfs-view.js";
import type { At } from "./modprobe.js";
import { existsSafe, listSafe, moduleName, readTextSafe } from "./read.js";

export type InitramfsTool = "initramfs-tools" | "dracut" | "mkinitcpio";

export interface InitramfsInfo {
  tool: InitramfsTool | null;
  /** What showed the tool: its configuration and its program. */
  evidence: string[];
  /** The file a module line goes into. */
  configFile: string | null;
  /** Modules the configuration loads early, with where. */
  modules: Array<{ module: string; at: At }>;
  /** mkinitcpio: whether HOOKS has modconf (modprobe.d inside the image); null for other tools or unknown. */
  modconf: boolean | null;
  regenerate: string[] | null;
}

/** The modules early binding needs in the initramfs, in load order. */
export const VFIO_EARLY_MODULES = ["vfio", "vfio_iommu_type1", "vfio_pci"];

interface Candidate {
  tool: InitramfsTool;
  configs: string[];
  programs: string[];
  configFile: string;
  regenerate: string[];
}

const CANDIDATES: Candidate[] = [
  {
    tool: "mkinitcpio",
    configs: ["/etc/mkinitcpio.conf", "/etc/mkinitcpio.conf.d"],
    programs: ["/usr/bin/mkinitcpio", "/usr/sbin/mkinitcpio"],
    configFile: "/etc/mkinitcpio.conf",
    regenerate: ["mkinitcpio", "-P"],
  },
  {
    tool: "dracut",
    configs: ["/etc/dracut.conf", "/etc/dracut.conf.d"],
    programs: ["/usr/bin/dracut", "/usr/sbin/dracut", "/sbin/dracut"],
    configFile: "/etc/dracut.conf.d/10-vfio.conf",
    regenerate: ["dracut", "--regenerate-all", "--force"],
  },
  {
    tool: "initramfs-tools",
    configs: ["/etc/initramfs-tools/initramfs.conf", "/etc/initramfs-tools/modules"],
    programs: ["/usr/sbin/update-initramfs", "/sbin/update-initramfs"],
    configFile: "/etc/initramfs-tools/modules",
    regenerate: ["update-initramfs", "-u", "-k", "all"],
  },
];

function confFiles(view: SysfsView, main: string, dir: string): string[] {
  const extra = (listSafe(view, dir) ?? []).filter((n) => n.endsWith(".conf")).sort().map((n) => `${dir}/${n}`);
  return [main, ...extra];
}

function lines(view: SysfsView, file: string): Array<{ line: number; text: string }> {
  const t = readTextSafe(view, file).text;
  return t === null ? [] : t.split("\n").map((text, i) => ({ line: i + 1, text }));
}

function initramfsToolsModules(view: SysfsView): InitramfsInfo["modules"] {
  const file = "/etc/initramfs-tools/modules";
  return lines(view, file)
    .map((l) => ({ l, word: l.text.trim().split(/\s+/)[0] ?? "" }))
    .filter(({ word }) => word !== "" && !word.startsWith("#"))
    .map(({ l, word }) => ({ module: moduleName(word), at: { file, line: l.line } }));
}

/** Words of shell assignments NAME="…" / NAME+="…" / NAME=(…) for the given names. */
function assignedWords(view: SysfsView, files: string[], names: string[]): InitramfsInfo["modules"] {
  const out: InitramfsInfo["modules"] = [];
  const re = new RegExp(`^\\s*(${names.join("|")})\\+?=\\s*(?:"([^"]*)"|'([^']*)'|\\(([^)]*)\\))`);
  for (const file of files) {
    for (const l of lines(view, file)) {
      const m = re.exec(l.text);
      if (!m) continue;
      const words = (m[2] ?? m[3] ?? m[4] ?? "").split(/\s+/).filter((w) => w !== "" && !w.startsWith("#"));
      for (const w of words) out.push({ module: moduleName(w.replace(/^["']|["']$/g, "")), at: { file, line: l.line } });
    }
  }
  return out;
}

function modconfHook(view: SysfsView, files: string[]): boolean | null {
  let seen: boolean | null = null;
  for (const file of files) {
    for (const l of lines(view, file)) {
      const m = /^\s*HOOKS=\(([^)]*)\)/.exec(l.text);
      if (m) seen = (m[1] ?? "").split(/\s+/).includes("modconf");
    }
  }
  return seen;
}

export function readInitramfs(view: SysfsView): InitramfsInfo {
  const found = CANDIDATES.map((c) => ({
    c,
    configs: c.configs.filter((p) => existsSafe(view, p)),
    programs: c.programs.filter((p) => existsSafe(view, p)),
  }));
  // The tool whose program is installed wins; with several installed, the one that is also configured.
  const pick = found.find((f) => f.programs.length > 0 && f.configs.length > 0) ?? found.find((f) => f.programs.length > 0) ?? found.find((f) => f.configs.length > 0);
  if (pick === undefined) return { tool: null, evidence: [], configFile: null, modules: [], modconf: null, regenerate: null };
  const { c } = pick;
  let modules: InitramfsInfo["modules"];
  let modconf: boolean | null = null;
  if (c.tool === "initramfs-tools") modules = initramfsToolsModules(view);
  else if (c.tool === "dracut") modules = assignedWords(view, confFiles(view, "/etc/dracut.conf", "/etc/dracut.conf.d"), ["force_drivers"]);
  else {
    const files = confFiles(view, "/etc/mkinitcpio.conf", "/etc/mkinitcpio.conf.d");
    modules = assignedWords(view, files, ["MODULES"]);
    modconf = modconfHook(view, files);
  }
  return { tool: c.tool, evidence: [...pick.configs, ...pick.programs], configFile: c.configFile, modules, modconf, regenerate: c.regenerate };
}

/** The line that puts the given modules in the initramfs, in the tool's own syntax. */
export function initramfsModuleLine(tool: InitramfsTool, modules: string[]): string {
  if (tool === "dracut") return `force_drivers+=" ${modules.join(" ")} "`;
  if (tool === "mkinitcpio") return `MODULES=(${modules.join(" ")} …)  # keep the modules already listed after these`;
  return modules.join("\n");
}
