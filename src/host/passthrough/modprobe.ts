/**
 * modprobe configuration (modprobe.d(5)): which options and soft dependencies apply when modules load, read the
 * way kmod reads it. Files named *.conf in /etc/modprobe.d, /run/modprobe.d, /usr/local/lib/modprobe.d,
 * /usr/lib/modprobe.d and /lib/modprobe.d; a file name in an earlier directory hides the same name in a later one;
 * files are applied in the order of their names. A line ending in "\" continues on the next; "#" starts a comment.
 * Commands used here:
 *   options MODULE OPTION...               (options vfio-pci ids=10de:2504,10de:228e)
 *   softdep MODULE pre: MODULE... post: MODULE...   (softdep amdgpu pre: vfio-pci: vfio-pci loads first)
 *   blacklist MODULE                       (no automatic loading by alias)
 * "-" and "_" are the same in module names.
 */
import type { SysfsView } from "../sysfs-view.js";
import { listSafe, moduleName, readTextSafe } from "./read.js";

export const MODPROBE_DIRS = ["/etc/modprobe.d", "/run/modprobe.d", "/usr/local/lib/modprobe.d", "/usr/lib/modprobe.d", "/lib/modprobe.d"];

/** Where a line came from: "/etc/modprobe.d/vfio.conf:3". */
export interface At {
  file: string;
  line: number;
}

export const atText = (a: At): string => `${a.file}:${a.line}`;

export interface ModprobeOptions {
  module: string;
  options: string[];
  at: At;
}

export interface Softdep {
  module: string;
  pre: string[];
  post: string[];
  at: At;
}

export interface ModprobeConfig {
  /** Files read, in the order they apply. */
  files: string[];
  options: ModprobeOptions[];
  softdeps: Softdep[];
  blacklist: Array<{ module: string; at: At }>;
  /** Files that exist but could not be read, with why. */
  unreadable: string[];
}

/** Logical lines of one file (continuations joined), with the number of the line each starts on. */
function logicalLines(text: string): Array<{ line: number; text: string }> {
  const out: Array<{ line: number; text: string }> = [];
  let buf = "";
  let start = 0;
  text.split("\n").forEach((raw, i) => {
    if (buf === "") start = i + 1;
    if (raw.endsWith("\\")) {
      buf += raw.slice(0, -1) + " ";
      return;
    }
    buf += raw;
    out.push({ line: start, text: buf });
    buf = "";
  });
  if (buf !== "") out.push({ line: start, text: buf });
  return out;
}

/** Parses one modprobe.d file into `into`. */
export function parseModprobeFile(file: string, text: string, into: ModprobeConfig): void {
  for (const { line, text: l } of logicalLines(text)) {
    const t = l.trim();
    if (t === "" || t.startsWith("#")) continue;
    const [cmd, mod, ...rest] = t.split(/\s+/);
    if (mod === undefined) continue;
    const at = { file, line };
    const module = moduleName(mod);
    if (cmd === "options") into.options.push({ module, options: rest, at });
    else if (cmd === "blacklist") into.blacklist.push({ module, at });
    else if (cmd === "softdep") {
      const dep: Softdep = { module, pre: [], post: [], at };
      let list: string[] | null = null;
      for (const w of rest) {
        if (w === "pre:") list = dep.pre;
        else if (w === "post:") list = dep.post;
        else list?.push(moduleName(w));
      }
      into.softdeps.push(dep);
    }
  }
}

export function readModprobeConfig(view: SysfsView): ModprobeConfig {
  const cfg: ModprobeConfig = { files: [], options: [], softdeps: [], blacklist: [], unreadable: [] };
  const chosen = new Map<string, string>();
  for (const dir of MODPROBE_DIRS) {
    for (const name of listSafe(view, dir) ?? []) {
      if (name.endsWith(".conf") && !chosen.has(name)) chosen.set(name, `${dir}/${name}`);
    }
  }
  for (const name of [...chosen.keys()].sort()) {
    const path = chosen.get(name) as string;
    const r = readTextSafe(view, path);
    if (r.error !== null) cfg.unreadable.push(`${path} (${r.error})`);
    if (r.text === null) continue;
    cfg.files.push(path);
    parseModprobeFile(path, r.text, cfg);
  }
  return cfg;
}

/** The value of OPTION=… for a module, last one winning, with where it was set; null when not set. */
export function moduleOption(cfg: ModprobeConfig, module: string, option: string): { value: string; at: At } | null {
  let found: { value: string; at: At } | null = null;
  for (const o of cfg.options) {
    if (o.module !== moduleName(module)) continue;
    for (const kv of o.options) {
      const eq = kv.indexOf("=");
      if (eq > 0 && moduleName(kv.slice(0, eq)) === moduleName(option)) found = { value: kv.slice(eq + 1).replace(/^"(.*)"$/, "$1"), at: o.at };
    }
  }
  return found;
}

/** The soft dependency lines of a module that load `dep` before it. */
export function softdepBefore(cfg: ModprobeConfig, module: string, dep: string): Softdep | null {
  return cfg.softdeps.find((s) => s.module === moduleName(module) && s.pre.includes(moduleName(dep))) ?? null;
}
