/**
 * Reading inputs that may be missing or unreadable, keeping the difference: a check that could not read what it
 * needs says so ("could not read /proc/iomem: permission denied") instead of passing.
 */
import { IommuError } from "../../core/errors.js";
import type { SysfsView } from "../sysfs-view.js";

export interface TextRead {
  path: string;
  /** The contents, or null when the file is absent or could not be read. */
  text: string | null;
  /** Why it could not be read (permission denied, not recorded in a snapshot, …); null when read or absent. */
  error: string | null;
}

function why(e: IommuError): string {
  return e.message.replace(/^\S+: /, "");
}

export function readTextSafe(view: SysfsView, path: string): TextRead {
  try {
    return { path, text: view.readText(path), error: null };
  } catch (e) {
    if (e instanceof IommuError) return { path, text: null, error: why(e) };
    throw e;
  }
}

export function readBytesSafe(view: SysfsView, path: string): { bytes: Uint8Array | null; error: string | null } {
  try {
    return { bytes: view.readBytes(path), error: null };
  } catch (e) {
    if (e instanceof IommuError) return { bytes: null, error: why(e) };
    throw e;
  }
}

export function listSafe(view: SysfsView, path: string): string[] | null {
  try {
    return view.list(path);
  } catch (e) {
    if (e instanceof IommuError) return null;
    throw e;
  }
}

export function linkSafe(view: SysfsView, path: string): string | null {
  try {
    return view.readLink(path);
  } catch (e) {
    if (e instanceof IommuError) return null;
    throw e;
  }
}

export function existsSafe(view: SysfsView, path: string): boolean {
  try {
    return view.exists(path);
  } catch (e) {
    if (e instanceof IommuError) return false;
    throw e;
  }
}

/** "could not read PATH (REASON)" or "PATH does not exist", for messages about a failed read. */
export function unreadableText(r: TextRead): string {
  return r.error !== null ? `could not read ${r.path} (${r.error})` : `${r.path} does not exist`;
}

/** Kernel module names treat "-" and "_" alike; modprobe and /proc/modules use "_". */
export const moduleName = (name: string): string => name.replace(/-/g, "_");

/** Byte counts the way people read them: "8 MiB", "1.5 GiB", "512 KiB". */
export function formatBytes(n: number): string {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const digits = Number.isInteger(v) ? String(v) : v.toFixed(1).replace(/\.0$/, "");
  return `${digits} ${units[i] ?? "bytes"}`;
}
