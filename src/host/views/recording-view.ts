/**
 * A SysfsView that passes every read to another view and remembers what it saw, so `iommu snapshot` can write
 * exactly what the commands read. Reads that fail (permission denied) are recorded as "unreadable" and the
 * error is passed on, so a replay answers the same way.
 */
import { IommuError } from "../../core/errors.js";
import type { SysfsView } from "../sysfs-view.js";
import { normalizeViewPath } from "./root-view.js";
import {
  SNAPSHOT_FORMAT,
  SNAPSHOT_VERSION,
  type SnapshotEntry,
  type SnapshotFile,
  type SnapshotHost,
} from "./snapshot-format.js";

/** Text is kept as text when it round-trips through UTF-8 and holds no NUL; anything else is base64. */
function fileEntry(bytes: Uint8Array): SnapshotEntry {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const text = b.toString("utf8");
  if (!text.includes("\0") && Buffer.from(text, "utf8").equals(b)) return { kind: "file", text };
  return { kind: "file", base64: b.toString("base64") };
}

function failure(e: unknown): SnapshotEntry | null {
  if (!(e instanceof IommuError)) return null;
  return e.hint === undefined
    ? { kind: "unreadable", code: e.code, message: e.message }
    : { kind: "unreadable", code: e.code, message: e.message, hint: e.hint };
}

export class RecordingView implements SysfsView {
  readonly description: string;
  readonly inner: SysfsView;
  private readonly entries = new Map<string, SnapshotEntry>();

  constructor(inner: SysfsView) {
    this.inner = inner;
    this.description = inner.description;
  }

  /** Number of paths recorded so far. */
  get size(): number {
    return this.entries.size;
  }

  private record<T>(path: string, read: () => T, entry: (v: T) => SnapshotEntry, keep?: (old: SnapshotEntry) => boolean): T {
    const p = normalizeViewPath(path);
    let v: T;
    try {
      v = read();
    } catch (e) {
      const f = failure(e);
      if (f !== null && !this.entries.has(p)) this.entries.set(p, f);
      throw e;
    }
    const old = this.entries.get(p);
    if (old === undefined || old.kind === "absent" || !(keep?.(old) ?? false)) this.entries.set(p, entry(v));
    return v;
  }

  readBytes(path: string): Uint8Array | null {
    return this.record(path, () => this.inner.readBytes(path), (b) => (b === null ? { kind: "absent" } : fileEntry(b)));
  }

  readText(path: string): string | null {
    return this.record(
      path,
      () => this.inner.readText(path),
      (t) => (t === null ? { kind: "absent" } : { kind: "file", text: t }),
      // A binary read already recorded the exact bytes: keep them.
      (old) => old.kind === "file" && "base64" in old,
    );
  }

  readLink(path: string): string | null {
    const target = this.record(
      path,
      () => this.inner.readLink(path),
      (t) => (t === null ? { kind: "absent" } : { kind: "link", target: t }),
      // Not a link, but already recorded as a file or directory: that is the better answer.
      (old) => old.kind === "file" || old.kind === "dir",
    );
    // Not a link: record what the path is instead, so a replayed exists() agrees.
    if (target === null) this.exists(path);
    return target;
  }

  list(path: string): string[] | null {
    return this.record(
      path,
      () => this.inner.list(path),
      (names) => (names === null ? { kind: "absent" } : { kind: "dir", names: [...names] }),
      (old) => old.kind === "link" || old.kind === "file",
    );
  }

  exists(path: string): boolean {
    const p = normalizeViewPath(path);
    const found = this.inner.exists(path);
    if (!found && !this.entries.has(p)) this.entries.set(p, { kind: "absent" });
    if (found && (!this.entries.has(p) || this.entries.get(p)?.kind === "absent")) this.probe(p);
    return found;
  }

  /** Records what an existing path is, so a replayed exists() answers true. */
  private probe(p: string): void {
    try {
      const target = this.inner.readLink(p);
      if (target !== null) return void this.entries.set(p, { kind: "link", target });
      const names = this.inner.list(p);
      if (names !== null) return void this.entries.set(p, { kind: "dir", names: [...names] });
      const bytes = this.inner.readBytes(p);
      if (bytes !== null) this.entries.set(p, fileEntry(bytes));
    } catch (e) {
      const f = failure(e);
      if (f !== null) this.entries.set(p, f);
    }
  }

  /** Records a path on purpose (bootloader files, /boot/config-*) without failing when it cannot be read. */
  capture(path: string): void {
    try {
      this.readBytes(path);
    } catch {
      // recorded as unreadable
    }
  }

  /** Adds an entry the view did not read itself (dmesg lines from a command, for example). */
  addEntry(path: string, entry: SnapshotEntry): void {
    this.entries.set(normalizeViewPath(path), entry);
  }

  /** The recording as a snapshot document, entries sorted by path. */
  toSnapshot(createdBy: string, host: SnapshotHost, createdAt = new Date().toISOString()): SnapshotFile {
    const entries: Record<string, SnapshotEntry> = {};
    for (const p of [...this.entries.keys()].sort()) entries[p] = this.entries.get(p) as SnapshotEntry;
    return { format: SNAPSHOT_FORMAT, version: SNAPSHOT_VERSION, createdBy, createdAt, host, entries };
  }
}
