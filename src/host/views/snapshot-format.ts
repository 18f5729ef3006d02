/**
 * The snapshot file: everything the doctor read from one host, in one JSON document, so a report can be
 * reproduced elsewhere (`--snapshot FILE`) and attached to a bug report.
 *
 *   { "format": "iommu-kit-snapshot", "version": 1, "createdBy": "iommu-kit 0.1.0", "createdAt": "…",
 *     "host": { "hostname": "…", "kernel": "6.1.0-…", "source": "live system" },
 *     "entries": { "/proc/cmdline": { "kind": "file", "text": "…" },
 *                  "/sys/firmware/acpi/tables/DMAR": { "kind": "file", "base64": "…" },
 *                  "/sys/bus/pci/devices/0000:00:02.0": { "kind": "link", "target": "../../../devices/…" },
 *                  "/sys/kernel/iommu_groups": { "kind": "dir", "names": ["0", "1"] },
 *                  "/sys/module/vfio_iommu_type1": { "kind": "absent" },
 *                  "/sys/firmware/acpi/tables/IVRS": { "kind": "unreadable", "code": "PERMISSION_DENIED", … } } }
 *
 * "unreadable" records a read that failed on the host (not root), so replaying gives the same answer.
 *
 * Versions. 1: what status, groups, bootargs and check read until the pass-through checks came. 2: the same
 * layout, plus the pass-through checks' inputs (V2_PATHS: /proc/iomem, modprobe.d beyond /etc, initramfs
 * configuration, efivars, module signing, /proc/self/limits, iommufd, sysfs resource files, driver module
 * links). Version 1 files are still read; since they never recorded those paths, reading one of them from a
 * version 1 snapshot fails with NOT_RECORDED (the check then says it could not tell) instead of answering
 * "absent", which would pass checks that were never made.
 */
import { inputName, readInputText } from "../../core/input.js";
import { fsError, IommuError } from "../../core/errors.js";

export const SNAPSHOT_FORMAT = "iommu-kit-snapshot";
export const SNAPSHOT_VERSION = 2;

/** Paths first recorded by format version 2 (see above). */
export const V2_PATHS: readonly RegExp[] = [
  /^\/proc\/(iomem|meminfo|self\/limits|self\/status)$/,
  /^\/sys\/firmware\/efi(\/|$)/,
  /^\/sys\/module\/module\/parameters\/sig_enforce$/,
  /^\/sys\/kernel\/security\/lockdown$/,
  /^\/sys\/module\/iommufd(\/|$)/,
  /^\/dev\/(iommu|vfio\/devices)$/,
  /^\/etc\/(initramfs-tools|dracut\.conf|mkinitcpio\.conf)/,
  /^\/(usr\/)?s?bin\/(update-initramfs|dracut|mkinitcpio)$/,
  /^\/(run|usr\/local\/lib|usr\/lib|lib)\/modprobe\.d(\/|$)/,
  /^\/lib\/modules\/[^/]+\/(updates|extra|misc)(\/|$)/,
  /^\/var\/lib\/dkms(\/|$)/,
  /^\/sys\/bus\/pci\/devices\/[^/]+\/resource$/,
  /^\/sys\/devices\/pci[^/]*\/.*\/resource$/,
  /^\/sys\/bus\/pci\/drivers\/[^/]+\/module$/,
];

export const isV2Path = (path: string): boolean => V2_PATHS.some((re) => re.test(path));

export type SnapshotEntry =
  | { kind: "file"; text: string }
  | { kind: "file"; base64: string }
  | { kind: "link"; target: string }
  | { kind: "dir"; names: string[] }
  | { kind: "absent" }
  | { kind: "unreadable"; code: string; message: string; hint?: string };

export interface SnapshotHost {
  hostname?: string;
  kernel?: string;
  /** Where the recording was made from: "live system", "root /mnt". */
  source?: string;
}

export interface SnapshotFile {
  format: typeof SNAPSHOT_FORMAT;
  version: number;
  createdBy: string;
  createdAt?: string;
  host: SnapshotHost;
  entries: Record<string, SnapshotEntry>;
}

function bad(file: string, what: string): IommuError {
  return new IommuError("SNAPSHOT_INVALID", `${file}: ${what}`, {
    hint: "give a file written by 'iommu snapshot -o FILE'",
  });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function checkEntry(file: string, path: string, e: unknown): SnapshotEntry {
  if (!isRecord(e)) throw bad(file, `entry '${path}' is not an object`);
  switch (e.kind) {
    case "file":
      if (typeof e.text === "string") return { kind: "file", text: e.text };
      if (typeof e.base64 === "string") return { kind: "file", base64: e.base64 };
      throw bad(file, `file entry '${path}' has neither "text" nor "base64"`);
    case "link":
      if (typeof e.target !== "string") throw bad(file, `link entry '${path}' has no "target"`);
      return { kind: "link", target: e.target };
    case "dir":
      if (!Array.isArray(e.names) || !e.names.every((n) => typeof n === "string")) {
        throw bad(file, `dir entry '${path}' has no "names" list`);
      }
      return { kind: "dir", names: [...(e.names as string[])].sort() };
    case "absent":
      return { kind: "absent" };
    case "unreadable":
      return {
        kind: "unreadable",
        code: typeof e.code === "string" ? e.code : "IO_ERROR",
        message: typeof e.message === "string" ? e.message : `${path}: could not be read`,
        ...(typeof e.hint === "string" ? { hint: e.hint } : {}),
      };
    default:
      throw bad(file, `entry '${path}' has unknown kind '${String(e.kind)}'`);
  }
}

/** Validates a parsed snapshot document; `file` names it in errors. */
export function parseSnapshot(doc: unknown, file: string): SnapshotFile {
  if (!isRecord(doc) || doc.format !== SNAPSHOT_FORMAT) throw bad(file, "not an iommu-kit snapshot");
  const version = doc.version;
  if (typeof version !== "number" || !Number.isInteger(version) || version < 1) {
    throw bad(file, `snapshot version '${String(version)}' is not a positive integer`);
  }
  if (version > SNAPSHOT_VERSION) {
    throw new IommuError(
      "SNAPSHOT_VERSION",
      `${file}: snapshot format version ${version} is newer than this iommu-kit reads (up to ${SNAPSHOT_VERSION})`,
      { hint: "upgrade iommu-kit, or record the snapshot again with this version" },
    );
  }
  if (!isRecord(doc.entries)) throw bad(file, 'no "entries" object');
  const entries: Record<string, SnapshotEntry> = {};
  for (const [path, e] of Object.entries(doc.entries)) {
    if (!path.startsWith("/")) throw bad(file, `entry '${path}' is not an absolute path`);
    entries[path] = checkEntry(file, path, e);
  }
  const host = isRecord(doc.host) ? doc.host : {};
  return {
    format: SNAPSHOT_FORMAT,
    version,
    createdBy: typeof doc.createdBy === "string" ? doc.createdBy : "unknown",
    ...(typeof doc.createdAt === "string" ? { createdAt: doc.createdAt } : {}),
    host: {
      ...(typeof host.hostname === "string" ? { hostname: host.hostname } : {}),
      ...(typeof host.kernel === "string" ? { kernel: host.kernel } : {}),
      ...(typeof host.source === "string" ? { source: host.source } : {}),
    },
    entries,
  };
}

/** Reads and validates a snapshot file from disk. */
export function loadSnapshotFile(path: string): SnapshotFile {
  const file = inputName(path);
  let text: string;
  try {
    text = readInputText(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException)?.code;
    if (code === "ENOENT") {
      throw new IommuError("FILE_NOT_FOUND", `${file}: no such snapshot file`, {
        hint: "record one with 'iommu snapshot -o FILE'",
      });
    }
    if (code === "EISDIR") {
      throw new IommuError("IS_A_DIRECTORY", `${file}: is a directory, expected a snapshot file`, {
        hint: "a recorded sysfs tree is read with --root DIR; a snapshot file with --snapshot FILE",
      });
    }
    throw fsError(e, file, "read snapshot");
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw bad(file, `not valid JSON (${(e as Error).message})`);
  }
  return parseSnapshot(doc, file);
}
