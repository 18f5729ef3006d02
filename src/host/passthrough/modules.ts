/**
 * Kernel modules and their signatures.
 *
 * - /proc/modules: "name size refcount deps state address (flags)"; the taint flags in parentheses include O
 *   (out-of-tree) and E (unsigned, loaded only because signatures were not enforced).
 * - Secure Boot: the EFI variable SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c under
 *   /sys/firmware/efi/efivars holds 4 bytes of attributes, then one byte, 1 when Secure Boot is on. Without
 *   /sys/firmware/efi the system booted through legacy BIOS (no Secure Boot).
 * - Enforcement: /sys/module/module/parameters/sig_enforce reads Y when the kernel refuses unsigned modules;
 *   /sys/kernel/security/lockdown marks the active mode in brackets ("none [integrity] confidentiality"), and
 *   lockdown refuses unsigned modules too. Distribution kernels switch both on when booted with Secure Boot;
 *   modprobe then fails with "Key was rejected by service" (EKEYREJECTED) or "Operation not permitted".
 * - A signed module file ends with the marker "~Module signature appended~\n" (after the signature). Modules
 *   compressed by the kernel build are signed before compression: a .ko.gz is checked after gunzip, a .ko.xz or
 *   .ko.zst cannot be checked here.
 * Out-of-tree modules (DKMS, akmods) live in /lib/modules/RELEASE/updates[/dkms] or /lib/modules/RELEASE/extra.
 */
import { gunzipSync } from "node:zlib";
import type { SysfsView } from "../sysfs-view.js";
import { existsSafe, listSafe, moduleName, readBytesSafe, readTextSafe } from "./read.js";

export interface LoadedModule {
  name: string;
  taints: string;
}

export interface LoadedModules {
  /** null when /proc/modules could not be read. */
  list: LoadedModule[] | null;
  error: string | null;
}

export function parseProcModules(text: string): LoadedModule[] {
  return text
    .split("\n")
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 6 && f[0])
    .map((f) => {
      const last = f[f.length - 1] ?? "";
      return { name: f[0] ?? "", taints: /^\([A-Z]+\)$/.test(last) ? last.slice(1, -1) : "" };
    });
}

export function readLoadedModules(view: SysfsView): LoadedModules {
  const r = readTextSafe(view, "/proc/modules");
  if (r.text === null) return { list: null, error: r.error ?? "/proc/modules does not exist" };
  return { list: parseProcModules(r.text), error: null };
}

/** Whether a module is loaded: in /proc/modules, or a directory /sys/module/NAME with an initstate (built-in modules have none). */
export function moduleLoaded(view: SysfsView, loaded: LoadedModules, name: string): boolean | null {
  const n = moduleName(name);
  if (loaded.list !== null) return loaded.list.some((m) => m.name === n);
  if (existsSafe(view, `/sys/module/${n}/initstate`)) return true;
  return null;
}

export const SECURE_BOOT_VAR = "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c";

export interface SecureBoot {
  state: "enabled" | "disabled" | "legacy-boot" | "unknown";
  /** What the state was read from, or why it is unknown. */
  detail: string;
  /** Y/N from sig_enforce; null when absent or unreadable. */
  sigEnforce: boolean | null;
  /** Active lockdown mode ("none", "integrity", "confidentiality"); null when unknown. */
  lockdown: string | null;
  /** True when the kernel refuses unsigned modules; null when it cannot be told. */
  enforcing: boolean | null;
}

export function readSecureBoot(view: SysfsView): SecureBoot {
  let state: SecureBoot["state"];
  let detail: string;
  const v = readBytesSafe(view, SECURE_BOOT_VAR);
  if (v.bytes !== null && v.bytes.length >= 5) {
    state = v.bytes[4] === 1 ? "enabled" : "disabled";
    detail = `${SECURE_BOOT_VAR} = ${v.bytes[4] ?? 0}`;
  } else if (v.error !== null) {
    state = "unknown";
    detail = `could not read ${SECURE_BOOT_VAR} (${v.error})`;
  } else if (!existsSafe(view, "/sys/firmware/efi")) {
    state = "legacy-boot";
    detail = "no /sys/firmware/efi: booted without UEFI";
  } else {
    state = "unknown";
    detail = `${SECURE_BOOT_VAR} is missing (efivarfs not mounted?)`;
  }
  const se = readTextSafe(view, "/sys/module/module/parameters/sig_enforce").text?.trim();
  const sigEnforce = se === "Y" ? true : se === "N" ? false : null;
  const ld = readTextSafe(view, "/sys/kernel/security/lockdown").text;
  const lockdown = ld === null ? null : (/\[(\w+)\]/.exec(ld)?.[1] ?? null);
  const enforcing = sigEnforce === true || (lockdown !== null && lockdown !== "none") ? true : sigEnforce === false && lockdown === "none" ? false : null;
  return { state, detail, sigEnforce, lockdown, enforcing };
}

export const SIGNATURE_MARKER = "~Module signature appended~\n";

export interface ModuleFile {
  module: string;
  path: string;
  /** true signed, false unsigned, null cannot tell (compressed with xz/zstd, unreadable). */
  signed: boolean | null;
  why: string | null;
}

const MODULE_DIRS = ["updates/dkms", "updates", "extra", "misc"];

/** Whether a module file carries a signature. */
export function moduleSignature(name: string, bytes: Uint8Array): { signed: boolean | null; why: string | null } {
  let data: Uint8Array = bytes;
  if (name.endsWith(".gz")) {
    try {
      data = gunzipSync(bytes);
    } catch {
      return { signed: null, why: "not valid gzip" };
    }
  } else if (!name.endsWith(".ko")) {
    return { signed: null, why: `compressed (${name.slice(name.lastIndexOf(".") + 1)}): the signature is inside` };
  }
  const tail = Buffer.from(data.buffer, data.byteOffset, data.byteLength).subarray(Math.max(0, data.byteLength - SIGNATURE_MARKER.length)).toString("latin1");
  return { signed: tail === SIGNATURE_MARKER, why: null };
}

/** Out-of-tree module files for the named modules in /lib/modules/RELEASE (updates, extra, misc). */
export function findModuleFiles(view: SysfsView, release: string, modules: string[]): ModuleFile[] {
  const wanted = new Set(modules.map(moduleName));
  const out: ModuleFile[] = [];
  for (const sub of MODULE_DIRS) {
    const dir = `/lib/modules/${release}/${sub}`;
    for (const f of listSafe(view, dir) ?? []) {
      const m = /^(.+)\.ko(?:\.(?:gz|xz|zst))?$/.exec(f);
      if (!m || !wanted.has(moduleName(m[1] ?? "")) || out.some((o) => o.path.endsWith(`/${f}`))) continue;
      const path = `${dir}/${f}`;
      const b = readBytesSafe(view, path);
      const sig = b.bytes === null ? { signed: null, why: b.error ?? "unreadable" } : moduleSignature(f, b.bytes);
      out.push({ module: moduleName(m[1] ?? ""), path, ...sig });
    }
  }
  return out;
}
