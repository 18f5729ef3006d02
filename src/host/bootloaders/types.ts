/**
 * What every boot-loader adapter provides. An adapter recognises its boot loader from files seen through a
 * SysfsView, reports the kernel parameters the configuration passes today, and turns a parameter proposal into
 * concrete changes: whole-file rewrites (applied atomically with a backup) and/or commands to run (grubby,
 * rpm-ostree, kernelstub own their configuration and are driven through their command line).
 */
import type { SysfsView } from "../sysfs-view.js";

export type BootloaderId = "grub" | "systemd-boot" | "kernelstub" | "grubby" | "rpm-ostree";

export const BOOTLOADER_IDS: readonly BootloaderId[] = ["rpm-ostree", "kernelstub", "grubby", "systemd-boot", "grub"];

/** A file rewrite: the full text before and after. Paths are absolute, as on the target system. */
export interface FileEdit {
  path: string;
  before: string;
  after: string;
}

export interface BootloaderPlan {
  id: BootloaderId;
  /** Human name: "GRUB (/etc/default/grub)". */
  name: string;
  /** Files that identified the boot loader. */
  evidence: string[];
  /** Where `currentArgs` were read from. */
  argsSource: string;
  /** Kernel parameters the configuration passes today. */
  currentArgs: string[];
  fileEdits: FileEdit[];
  /** Commands that make the change (for tools that own their configuration). */
  commands: string[][];
  /** Commands that reverse `commands`. */
  undoCommands: string[][];
  /** Command that rebuilds the boot menu after file edits, or null when none is needed. */
  regenerate: string[] | null;
  notes: string[];
}

export interface ParamEdit {
  add: readonly string[];
  remove: readonly string[];
}

export interface Bootloader {
  id: BootloaderId;
  /** Paths that show this boot loader is in charge, or null when it is not. */
  detect(view: SysfsView): string[] | null;
  /** The parameters the configuration currently passes and where they came from. */
  currentArgs(view: SysfsView): { source: string; args: string[] };
  plan(view: SysfsView, edit: ParamEdit, evidence: string[]): BootloaderPlan;
}

/** First of `paths` that exists in the view, or null. */
export function firstExisting(view: SysfsView, paths: readonly string[]): string | null {
  for (const p of paths) if (view.exists(p)) return p;
  return null;
}

export const SBIN_DIRS = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] as const;

/** Absolute path of a program in the usual system directories, or null. */
export function findProgram(view: SysfsView, name: string): string | null {
  return firstExisting(
    view,
    SBIN_DIRS.map((d) => `${d}/${name}`),
  );
}
