/**
 * A SysfsView that answers from a recorded snapshot. Paths are answered as recorded; a path below a recorded
 * link (/sys/bus/pci/devices/0000:00:02.0/vendor when the device link and /sys/devices/…/vendor were recorded)
 * is found by following the link, and a directory that was never listed but has recorded children lists them.
 * Anything not recorded reads as absent.
 */
import { IommuError } from "../../core/errors.js";
import { inputName } from "../../core/input.js";
import type { SysfsView } from "../sysfs-view.js";
import { normalizeViewPath } from "./root-view.js";
import { isV2Path, loadSnapshotFile, type SnapshotEntry, type SnapshotFile } from "./snapshot-format.js";

const MAX_LINKS = 40;

export class SnapshotView implements SysfsView {
  readonly description: string;
  readonly snapshot: SnapshotFile;
  private readonly entries: Map<string, SnapshotEntry>;

  /** `description` names the source in messages; by default "snapshot NAME". */
  constructor(snapshot: SnapshotFile, name = "snapshot", description = `snapshot ${name}`) {
    this.snapshot = snapshot;
    this.description = description;
    this.entries = new Map();
    for (const [p, e] of Object.entries(snapshot.entries)) this.entries.set(normalizeViewPath(p), e);
  }

  static load(file: string): SnapshotView {
    return new SnapshotView(loadSnapshotFile(file), inputName(file));
  }

  /** The entry for a path (following recorded links), plus the path it was found under. */
  private lookup(path: string, followLast: boolean): { path: string; entry: SnapshotEntry | undefined } {
    const p = normalizeViewPath(path);
    const direct = this.entries.get(p);
    if (direct !== undefined && (direct.kind !== "link" || !followLast)) return { path: p, entry: direct };
    const resolved = this.resolve(p, followLast);
    const entry = this.entries.get(resolved);
    if (entry === undefined && this.snapshot.version < 2 && (isV2Path(p) || isV2Path(resolved))) {
      throw new IommuError("NOT_RECORDED", `${p}: not recorded (snapshot format version ${this.snapshot.version} predates the check that reads it)`, {
        hint: "record the snapshot again with this iommu-kit ('iommu snapshot -o FILE')",
      });
    }
    return { path: resolved, entry };
  }

  /**
   * Resolves recorded links along a path, component by component, as the kernel would: a relative target is
   * taken from the link's real directory. A link may have been recorded under the path as asked
   * (/sys/bus/pci/devices/X/iommu_group) or under its real path; both are checked.
   */
  private resolve(path: string, followLast: boolean): string {
    const original = path.split("/").filter((s) => s !== "");
    const parts: { name: string; literal: number | null }[] = original.map((name, i) => ({ name, literal: i }));
    const done: string[] = [];
    let hops = 0;
    while (parts.length > 0) {
      const { name, literal } = parts.shift() as { name: string; literal: number | null };
      if (name === ".") continue;
      if (name === "..") {
        done.pop();
        continue;
      }
      if (parts.length === 0 && !followLast) {
        done.push(name);
        break;
      }
      const canonical = "/" + [...done, name].join("/");
      const asked = literal === null ? undefined : "/" + original.slice(0, literal + 1).join("/");
      const e = this.entries.get(canonical) ?? (asked === undefined ? undefined : this.entries.get(asked));
      if (e?.kind !== "link") {
        done.push(name);
        continue;
      }
      if (++hops > MAX_LINKS) {
        throw new IommuError("SNAPSHOT_INVALID", `${path}: too many levels of links in ${this.description}`);
      }
      parts.unshift(...e.target.split("/").filter((s) => s !== "").map((n) => ({ name: n, literal: null })));
      if (e.target.startsWith("/")) done.length = 0;
    }
    return "/" + done.join("/");
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
    return this.implicitChildren(normalizeViewPath(path), p);
  }

  exists(path: string): boolean {
    const { path: p, entry } = this.lookup(path, false);
    if (entry !== undefined) return entry.kind !== "absent";
    return this.implicitChildren(normalizeViewPath(path), p) !== null;
  }

  /** Names directly below the directories (as asked, and resolved) among recorded paths; null when none. */
  private implicitChildren(...dirs: string[]): string[] | null {
    const names = new Set<string>();
    for (const dir of new Set(dirs)) {
      const prefix = dir === "/" ? "/" : dir + "/";
      for (const [p, e] of this.entries) {
        if (!p.startsWith(prefix) || e.kind === "absent") continue;
        const name = p.slice(prefix.length).split("/")[0];
        if (name) names.add(name);
      }
    }
    return names.size === 0 ? null : [...names].sort();
  }
}
