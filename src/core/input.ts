/**
 * "-" for standard input wherever a command takes a file. Whole-file readers read fd 0; readers that need random
 * access (memory dumps) get a path: standard input itself when it is a regular file (`< mem.raw`), otherwise a
 * temporary copy of what arrived on the pipe.
 */
import { closeSync, fstatSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const STDIN = "-";

/** The name to print for an input path. */
export function inputName(path: string): string {
  return path === STDIN ? "standard input" : path;
}

let stdinBytes: Buffer | null = null;

/**
 * A whole file, or all of standard input for "-" (read once and kept: a command that loads the same input twice,
 * as `tour --machine -` and `ui --machine -` do, sees it twice). Errors are Node's (the caller names the input).
 */
export function readInput(path: string): Buffer {
  if (path !== STDIN) return readFileSync(path);
  stdinBytes ??= readFileSync(0);
  return stdinBytes;
}

export function readInputText(path: string): string {
  return readInput(path).toString("utf8");
}

let spooled: string | null = null;

/**
 * A path that random-access readers can open for `path`: itself, or for "-" standard input (`/dev/stdin` when it
 * is a regular file, else a temporary file holding everything read from the pipe, removed at exit).
 */
export function seekableInputPath(path: string): string {
  if (path !== STDIN) return path;
  if (fstatSync(0).isFile()) return "/dev/stdin";
  if (spooled !== null) return spooled;
  const dir = mkdtempSync(join(tmpdir(), "iommu-stdin-"));
  const file = join(dir, "stdin");
  const fd = openSync(file, "w", 0o600);
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      let n: number;
      try {
        n = readSync(0, buf, 0, buf.length, null);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "EAGAIN") continue;
        if ((e as NodeJS.ErrnoException).code === "EOF") break;
        throw e;
      }
      if (n === 0) break;
      writeSync(fd, buf, 0, n);
    }
  } finally {
    closeSync(fd);
  }
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  spooled = file;
  return file;
}
