/**
 * A memory dump as physical memory: a raw file of guest-physical memory from address 0 (what QEMU's
 * `pmemsave 0 SIZE FILE` or `dump-guest-memory`-style raw images hold). Pages are read from the file on demand
 * and kept in a bounded cache (oldest out first), so walking a few tables in a multi-gigabyte dump reads a few
 * pages and listing every mapping of a large domain does not hold the whole dump. Addresses past the end of the
 * file cannot be read (`canRead` says so; `read32` there throws RangeError, which the walkers never trigger).
 */
import { closeSync, fstatSync, ftruncateSync, openSync, readSync, writeSync } from "node:fs";
import { fsError, IommuError } from "../core/errors.js";
import { inputName, seekableInputPath } from "../core/input.js";
import type { PhysAddr, PhysicalMemory } from "../core/memory.js";
import type { TableReader } from "../hw/vtd/walk.js";

const PAGE = 4096;
/** Pages kept by default: 64 MiB of the dump. */
const DEFAULT_CACHE_PAGES = 16384;

export interface DumpReaderOptions {
  /** Pages kept in memory (default 16384, i.e. 64 MiB); at least 1. */
  cachePages?: number;
}

export class DumpReader implements TableReader {
  readonly path: string;
  /** File size in bytes: the dump covers physical addresses [0, size). */
  readonly size: number;
  private reads = 0;
  private bytes = 0;
  private fd: number | null;
  private readonly pages = new Map<number, DataView>();
  private readonly cachePages: number;

  private constructor(path: string, fd: number, size: number, cachePages: number) {
    this.path = path;
    this.fd = fd;
    this.size = size;
    this.cachePages = cachePages;
  }

  /** Opens a dump file ("-": standard input). Missing, unreadable, directory or empty: IommuError naming the path. */
  static open(file: string, opts: DumpReaderOptions = {}): DumpReader {
    const path = inputName(file);
    const cachePages = Math.max(1, Math.floor(opts.cachePages ?? DEFAULT_CACHE_PAGES)) || DEFAULT_CACHE_PAGES;
    let fd: number;
    try {
      fd = openSync(seekableInputPath(file), "r");
    } catch (e) {
      throw fsError(e, path, "open");
    }
    let size: number;
    try {
      const st = fstatSync(fd);
      if (st.isDirectory()) {
        closeSync(fd);
        throw new IommuError("IS_A_DIRECTORY", `${path}: is a directory, expected a memory dump file`);
      }
      size = st.size;
    } catch (e) {
      if (e instanceof IommuError) throw e;
      closeSync(fd);
      throw fsError(e, path, "stat");
    }
    if (size === 0) {
      closeSync(fd);
      throw new IommuError("DUMP_EMPTY", `${path}: the memory dump is empty (0 bytes)`, {
        hint: "dump guest memory from address 0, e.g. QEMU monitor: pmemsave 0 0x40000000 mem.raw",
      });
    }
    return new DumpReader(path, fd, size, cachePages);
  }

  /** Pages read from the file since opening (a page read again after leaving the cache counts again). */
  get pagesRead(): number {
    return this.reads;
  }

  /** Bytes read from the file since opening. */
  get bytesRead(): number {
    return this.bytes;
  }

  /** Pages in the cache now. */
  get pagesCached(): number {
    return this.pages.size;
  }

  /** Empties the cache: the next reads go to the file again. */
  dropCache(): void {
    this.pages.clear();
  }

  canRead(addr: number, length: number): boolean {
    return Number.isFinite(addr) && addr >= 0 && addr + length <= this.size;
  }

  private page(pfn: number): DataView {
    let v = this.pages.get(pfn);
    if (v !== undefined) return v;
    if (this.fd === null) throw new IommuError("DUMP_CLOSED", `${this.path}: the dump was closed`);
    const buf = new Uint8Array(PAGE);
    let got = 0;
    try {
      while (got < PAGE) {
        const n = readSync(this.fd, buf, got, PAGE - got, pfn * PAGE + got);
        if (n === 0) break;
        got += n;
      }
    } catch (e) {
      throw fsError(e, this.path, `read at byte offset 0x${(pfn * PAGE).toString(16)}`);
    }
    this.reads++;
    this.bytes += got;
    v = new DataView(buf.buffer);
    if (this.pages.size >= this.cachePages) {
      const oldest = this.pages.keys().next();
      if (oldest.done !== true) this.pages.delete(oldest.value);
    }
    this.pages.set(pfn, v);
    return v;
  }

  read32(addr: PhysAddr): number {
    const a = typeof addr === "bigint" ? Number(addr) : addr;
    if (!this.canRead(a, 4)) throw new RangeError(`address 0x${a.toString(16)} is outside the dump (${this.size} bytes)`);
    const pfn = Math.floor(a / PAGE);
    const off = a - pfn * PAGE;
    if (off <= PAGE - 4) return this.page(pfn).getUint32(off, true);
    let v = 0;
    for (let i = 3; i >= 0; i--) {
      const b = a + i;
      const p = Math.floor(b / PAGE);
      v = v * 256 + this.page(p).getUint8(b - p * PAGE);
    }
    return v >>> 0;
  }

  /** A 64-bit little-endian value as a bigint (edge use). */
  read64(addr: number): bigint {
    return (BigInt(this.read32(addr + 4)) << 32n) | BigInt(this.read32(addr));
  }

  close(): void {
    if (this.fd !== null) {
      closeSync(this.fd);
      this.fd = null;
    }
  }
}

/**
 * Writes simulated memory as a raw dump of `size` bytes, the layout `pmemsave 0 SIZE FILE` produces: a sparse
 * file with the memory's written pages at their physical offsets (pages at or beyond `size` are left out).
 */
export function writeDumpFile(mem: PhysicalMemory, path: string, size: number): void {
  let fd: number;
  try {
    fd = openSync(path, "w");
  } catch (e) {
    throw fsError(e, path, "write");
  }
  try {
    ftruncateSync(fd, size);
    for (const pfn of mem.backedPageNumbers()) {
      if ((pfn + 1) * PAGE > size) continue;
      writeSync(fd, mem.read(pfn * PAGE, PAGE), 0, PAGE, pfn * PAGE);
    }
  } catch (e) {
    throw fsError(e, path, "write");
  } finally {
    closeSync(fd);
  }
}
