/**
 * A SysfsView over a directory tree: the live system (root "/") or a root prefix such as a mounted disk image,
 * a guest's 9p root or a hand-made fixture tree. Under a prefix, symbolic links are resolved inside the prefix
 * (an absolute target "/sys/devices/…" means "<root>/sys/devices/…", as it would after chroot), so a tree
 * copied from another machine reads the same as on that machine.
 */
import { lstatSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from "node:fs";
import { posix, resolve } from "node:path";
import { IommuError, fsError } from "../../core/errors.js";
import type { WritableSysfsView } from "../sysfs-view.js";

/** Follows at most this many links while resolving one path (Linux's own limit is 40). */
const MAX_LINKS = 40;

/** Error codes that mean "this path does not exist" (including a file used as a directory). */
function isMissing(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException)?.code;
  return code === "ENOENT" || code === "ENOTDIR";
}

/** Normalises a view path: absolute, "." and ".." collapsed, no trailing slash (except "/"). */
export function normalizeViewPath(path: string): string {
  if (!path.startsWith("/")) {
    throw new IommuError("BAD_VIEW_PATH", `'${path}' is not an absolute path`, {
      hint: "view paths are absolute, as on the examined system: /sys/…, /proc/…",
    });
  }
  return posix.normalize(path).replace(/(.)\/+$/, "$1");
}

export class RootView implements WritableSysfsView {
  readonly description: string;
  /** Absolute host directory the view reads under; "/" for the live system. */
  readonly root: string;
  private readonly live: boolean;

  constructor(root = "/") {
    this.root = resolve(root);
    this.live = this.root === "/";
    this.description = this.live ? "live system" : `root ${root}`;
  }

  /**
   * Maps a view path to a host path. Under a prefix every link along the way is resolved inside the prefix;
   * with `followLast` false the last component is left as is (for readLink and lstat).
   */
  hostPath(path: string, followLast = true): string {
    const p = normalizeViewPath(path);
    if (this.live) return p;
    const parts = p.split("/").filter((s) => s !== "");
    const done: string[] = [];
    let links = 0;
    while (parts.length > 0) {
      const name = parts.shift() as string;
      if (name === ".") continue;
      if (name === "..") {
        done.pop();
        continue;
      }
      const candidate = [...done, name];
      if (parts.length === 0 && !followLast) {
        done.push(name);
        break;
      }
      const host = this.root + "/" + candidate.join("/");
      let target: string | null = null;
      try {
        if (lstatSync(host).isSymbolicLink()) target = readlinkSync(host);
      } catch (e) {
        if (!isMissing(e)) throw fsError(e, p);
      }
      if (target === null) {
        done.push(name);
        continue;
      }
      if (++links > MAX_LINKS) {
        throw new IommuError("IO_ERROR", `${p}: too many levels of symbolic links`);
      }
      parts.unshift(...target.split("/").filter((s) => s !== ""));
      if (target.startsWith("/")) done.length = 0;
    }
    return this.root + "/" + done.join("/");
  }

  readText(path: string): string | null {
    const b = this.readBytes(path);
    return b === null ? null : Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("utf8");
  }

  readBytes(path: string): Uint8Array | null {
    const p = normalizeViewPath(path);
    try {
      const b = readFileSync(this.hostPath(p));
      return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    } catch (e) {
      if (isMissing(e)) return null;
      if (e instanceof IommuError) throw e;
      throw fsError(e, p);
    }
  }

  readLink(path: string): string | null {
    const p = normalizeViewPath(path);
    try {
      const host = this.hostPath(p, false);
      if (!lstatSync(host).isSymbolicLink()) return null;
      return readlinkSync(host);
    } catch (e) {
      if (isMissing(e)) return null;
      if (e instanceof IommuError) throw e;
      throw fsError(e, p);
    }
  }

  list(path: string): string[] | null {
    const p = normalizeViewPath(path);
    try {
      return readdirSync(this.hostPath(p)).sort();
    } catch (e) {
      if (isMissing(e)) return null;
      if (e instanceof IommuError) throw e;
      throw fsError(e, p, "list");
    }
  }

  exists(path: string): boolean {
    const p = normalizeViewPath(path);
    try {
      lstatSync(this.hostPath(p, false));
      return true;
    } catch (e) {
      if (isMissing(e)) return false;
      if (e instanceof IommuError) throw e;
      throw fsError(e, p, "stat");
    }
  }

  writeText(path: string, text: string): void {
    const p = normalizeViewPath(path);
    try {
      writeFileSync(this.hostPath(p), text);
    } catch (e) {
      if (e instanceof IommuError) throw e;
      throw fsError(e, p, "write");
    }
  }
}
