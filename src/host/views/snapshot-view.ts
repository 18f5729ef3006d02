/**
 * A SysfsView that answers from a recorded snapshot. Paths are answered as recorded; a path below a recorded
 * link (/sys/bus/pci/devices/0000:00:02.0/vendor when the device link and /sys/devices/…/vendor were recorded)
 * is found by following the link, and a directory that was never listed but has recorded children lists them.
 * Anything not recorded reads as absent.
 */
import { posix } from "node:path";
import { IommuError } from "../../core/errors.js";
import type { SysfsView } from "../sysfs-view.js";
import { normalizeViewPath } from "./root-view.js";
import { loadSnapshotFile, type SnapshotEntry, type SnapshotFile } from "./snapshot-format.js";

const MAX_LINKS = 40;

export class SnapshotView implements SysfsView {
  readonly description: string;
  readonly snapshot: SnapshotFile;
  private readonly entries: Map<string, SnapshotEntry>;

  constructor(snapshot: SnapshotFile, name = "snapshot") {
    this.snapshot = snapshot;
    this.description = `snapshot ${name}`;
    this.entries = new Map();
    for (const [p, e] of Object.entries(snapshot.entries)) this.entries.set(normalizeViewPath(p), e);
  }

  static load(file: string): SnapshotView {
    return new SnapshotView(loadSnapshotFile(file), file);
  }

  /** The entry for a path (following recorded links), plus the path it was found under. */
  private lookup(path: string, followLast: boolean): { path: string; entry: SnapshotEntry | undefined } {
    let p = normalizeViewPath(path);
    for (let hops = 0; hops <= MAX_LINKS; hops++) {
      const direct = this.entries.get(p);
      if (direct !== undefined && (direct.kind !== "link" || !followLast)) return { path: p, entry: direct };
      if (direct?.kind === "link") {
        p = posix.resolve(posix.dirname(p), direct.target);
        continue;
      }
      // A recorded link on a proper prefix: substitute its target and look again.
      const parts = p.split("/");
      let moved = false;
      for (let n = parts.length - 1; n > 1; n--) {
        const prefix = parts.slice(0, n).join("/");
        const e = this.entries.get(prefix);
        if (e?.kind === "link") {
          p = posix.join(posix.resolve(posix.dirname(prefix), e.target), ...parts.slice(n));
          moved = true;
          break;
        }
        if (e !== undefined) break;
      }
      if (!moved) return { path: p, entry: undefined };
    }
    throw new IommuError("SNAPSHOT_INVALID", `${path}: too many levels of links in ${this.description}`);
  }

  private fail(e: SnapshotEntry & { kind: "unreadable" }): never {
    throw new IommuError(e.code, e.message, e.hint === undefined ? {} : { hint: e.hint });
  }

  readBytes(path: string): Uint8Array | null {
    const { entry } = this.lookup(path, true);
    if (entry === undefined || entry.kind !== "file") {
      if (entry?.kind === "unreadable") this.fail(entry);
      if (entry?.kind === "dir") {
        throw new IommuError("IS_A_DIRECTORY", `${path}: is a directory, expected a file`);
      }
      return null;
    }
    if ("text" in entry) return new Uint8Array(Buffer.from(entry.text, "utf8"));
    const b = Buffer.from(entry.base64, "base64");
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  }

  readText(path: string): string | null {
    const { entry } = this.lookup(path, true);
    if (entry?.kind === "file" && "text" in entry) return entry.text;
    const b = this.readBytes(path);
    return b === null ? null : Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("utf8");
  }

  readLink(path: string): string | null {
    const { entry } = this.lookup(path, false);
    if (entry?.kind === "unreadable") this.fail(entry);
    return entry?.kind === "link" ? entry.target : null;
  }

  list(path: string): string[] | null {
    const { path: p, entry } = this.lookup(path, true);
    if (entry?.kind === "dir") return [...entry.names];
    if (entry?.kind === "unreadable") this.fail(entry);
    if (entry !== undefined) return null;
    return this.implicitChildren(p);
  }

  exists(path: string): boolean {
    const { path: p, entry } = this.lookup(path, false);
    if (entry !== undefined) return entry.kind !== "absent";
    return this.implicitChildren(p) !== null;
  }

  /** Names directly below `dir` among recorded paths, or null when nothing was recorded below it. */
  private implicitChildren(dir: string): string[] | null {
    const prefix = dir === "/" ? "/" : dir + "/";
    const names = new Set<string>();
    for (const [p, e] of this.entries) {
      if (!p.startsWith(prefix) || e.kind === "absent") continue;
      const name = p.slice(prefix.length).split("/")[0];
      if (name) names.add(name);
    }
    return names.size === 0 ? null : [...names].sort();
  }
}
