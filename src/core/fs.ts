/**
 * Writing files so that a reader (or a crash) never sees a half-written one: a temporary file in the same
 * directory, fsync, rename over the target, fsync of the directory.
 */
import { chownSync, closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync, mkdirSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { IommuError, fsError } from "./errors.js";

export interface AtomicWriteOptions {
  /** Permission bits of the new file (default 0644). */
  mode?: number;
  /** Owner to give the new file when running as root (keeps an edited system file's owner). */
  uid?: number;
  gid?: number;
  /** Create missing parent directories. */
  mkdirs?: boolean;
  /** The path to name in error messages (e.g. the path inside --root); default the real path. */
  shown?: string;
  /** Called after each durable step ("temp-written", "renamed"); tests use it to inject failures and kills. */
  hooks?: { step?(name: "temp-written" | "renamed", path: string): void };
}

/** Makes a directory entry change (rename, unlink) durable. */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, "r");
    fsyncSync(fd);
  } catch {
    // some file systems (vfat ESPs among them) do not support fsync on directories; the rename is still atomic
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Replaces `real` with `data` atomically. Errors are IommuErrors naming `shown`. */
export function atomicWriteFile(real: string, data: Uint8Array | string, opts: AtomicWriteOptions = {}): void {
  const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  const dir = dirname(real);
  const tmp = join(dir, `.${basename(real)}.iommu-kit.tmp`);
  const shown = opts.shown ?? real;
  let renamed = false;
  try {
    if (opts.mkdirs) mkdirSync(dir, { recursive: true });
    const fd = openSync(tmp, "w", opts.mode ?? 0o644);
    try {
      let off = 0;
      while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (opts.uid !== undefined && opts.gid !== undefined && process.getuid?.() === 0) chownSync(tmp, opts.uid, opts.gid);
    opts.hooks?.step?.("temp-written", shown);
    renameSync(tmp, real);
    renamed = true;
    fsyncDir(dir);
    opts.hooks?.step?.("renamed", shown);
  } catch (e) {
    if (!renamed) {
      try {
        unlinkSync(tmp);
      } catch {
        // nothing to clean up
      }
    }
    if (e instanceof IommuError) throw e;
    if ((e as NodeJS.ErrnoException)?.code !== undefined) throw fsError(e, shown, "write");
    throw e;
  }
}
