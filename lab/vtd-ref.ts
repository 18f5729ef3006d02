/**
 * A deliberately small, independent reader of Intel VT-d legacy-mode tables in a raw memory dump, used by the
 * oracle (lab/oracle.ts) to tell which of QEMU's traced translations are still in the tables at the pause, and
 * which interrupt remapping entry a traced MSI used. It shares no code with src/ so that it can judge it.
 *
 * Formats (Intel VT-d specification 9.1 root entry, 9.3 context entry, 9.8 second-level paging entries, 9.10
 * interrupt remapping table entry, 5.1.2.2 remappable MSI address/data).
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";

export class Dump {
  private readonly fd: number;
  readonly size: number;

  constructor(path: string) {
    this.fd = openSync(path, "r");
    this.size = fstatSync(this.fd).size;
  }

  /** Little-endian 64-bit value at a physical address, or null outside the dump. */
  u64(addr: bigint): bigint | null {
    if (addr < 0n || addr + 8n > BigInt(this.size)) return null;
    const b = Buffer.alloc(8);
    readSync(this.fd, b, 0, 8, Number(addr));
    return b.readBigUInt64LE(0);
  }

  /** Bytes [addr, addr+len) (for copying pages out), or null outside the dump. */
  bytes(addr: bigint, len: number): Buffer | null {
    if (addr < 0n || addr + BigInt(len) > BigInt(this.size)) return null;
    const b = Buffer.alloc(len);
    readSync(this.fd, b, 0, len, Number(addr));
    return b;
  }

  close(): void {
    closeSync(this.fd);
  }
}

const ADDR_MASK = 0x000f_ffff_ffff_f000n; // bits 51:12

export type RefWalk =
  | { ok: true; hpa: bigint; pageSize: number; read: boolean; write: boolean; passThrough: boolean; pagesRead: bigint[] }
  | { ok: false; why: string; pagesRead: bigint[] };

/** Translates `iova` for requester `sid` (bus << 8 | devfn) through the tables at RTADDR (legacy mode only). */
export function refTranslate(dump: Dump, rtaddr: bigint, sid: number, iova: bigint): RefWalk {
  const pages: bigint[] = [];
  const read = (a: bigint): bigint | null => {
    pages.push(a & ~0xfffn);
    return dump.u64(a);
  };
  if (((rtaddr >> 10n) & 3n) !== 0n) return { ok: false, why: "not legacy mode (RTADDR.TTM != 0)", pagesRead: pages };
  const bus = BigInt(sid >> 8);
  const devfn = BigInt(sid & 0xff);
  const root = read((rtaddr & ADDR_MASK) + bus * 16n);
  if (root === null) return { ok: false, why: "root table outside the dump", pagesRead: pages };
  if ((root & 1n) === 0n) return { ok: false, why: "root entry not present", pagesRead: pages };
  const ctxAddr = (root & ADDR_MASK) + devfn * 16n;
  const ctxLo = read(ctxAddr);
  const ctxHi = read(ctxAddr + 8n);
  if (ctxLo === null || ctxHi === null) return { ok: false, why: "context table outside the dump", pagesRead: pages };
  if ((ctxLo & 1n) === 0n) return { ok: false, why: "context entry not present", pagesRead: pages };
  const tt = Number((ctxLo >> 2n) & 3n);
  if (tt === 2) return { ok: true, hpa: iova, pageSize: 4096, read: true, write: true, passThrough: true, pagesRead: pages };
  const aw = Number(ctxHi & 7n); // 1: 39-bit 3-level, 2: 48-bit 4-level, 3: 57-bit 5-level
  let levels = aw + 2;
  let table = ctxLo & ADDR_MASK;
  for (;;) {
    const shift = 12n + 9n * BigInt(levels - 1);
    const idx = (iova >> shift) & 0x1ffn;
    const e = read(table + idx * 8n);
    if (e === null) return { ok: false, why: `level ${levels} table outside the dump`, pagesRead: pages };
    const r = (e & 1n) !== 0n;
    const w = (e & 2n) !== 0n;
    if (!r && !w) return { ok: false, why: `level ${levels} entry not present`, pagesRead: pages };
    const big = levels > 1 && (e & 0x80n) !== 0n;
    if (levels === 1 || big) {
      const size = 1n << shift;
      return { ok: true, hpa: (e & ADDR_MASK & ~(size - 1n)) | (iova & (size - 1n)), pageSize: Number(size), read: r, write: w, passThrough: false, pagesRead: pages };
    }
    table = e & ADDR_MASK;
    levels--;
  }
}

export interface Irte {
  index: number;
  present: boolean;
  vector: number;
  destination: number;
  /** 0: no source check, 1: requester id check (SID, SQ), 2: bus range (SID = start << 8 | end). */
  svt: number;
  sid: number;
  posted: boolean;
  page: bigint;
  lo: bigint;
  hi: bigint;
}

/** The IRTE a remappable-format MSI names (null for compatibility format or outside the table/dump). */
export function refIrte(dump: Dump, irta: bigint, msiAddr: bigint, msiData: number): Irte | null {
  if ((msiAddr & 0x10n) === 0n) return null; // bit 4: interrupt format, 1 = remappable
  let index = Number(((msiAddr >> 5n) & 0x7fffn) | (((msiAddr >> 2n) & 1n) << 15n));
  if ((msiAddr & 0x8n) !== 0n) index = (index + (msiData & 0xffff)) & 0xffff; // SHV: sub-handle in data
  const entries = 2 ** (Number(irta & 0xfn) + 1);
  if (index >= entries) return null;
  const at = (irta & ADDR_MASK) + BigInt(index) * 16n;
  const lo = dump.u64(at);
  const hi = dump.u64(at + 8n);
  if (lo === null || hi === null) return null;
  return {
    index,
    present: (lo & 1n) !== 0n,
    posted: (lo & 0x8000n) !== 0n,
    vector: Number((lo >> 16n) & 0xffn),
    destination: Number((lo >> 32n) & 0xffff_ffffn),
    svt: Number((hi >> 18n) & 3n),
    sid: Number(hi & 0xffffn),
    page: at & ~0xfffn,
    lo,
    hi,
  };
}

/** A requester id the IRTE accepts. */
export function sidFor(irte: Irte): number {
  return irte.svt === 2 ? irte.sid & 0xff00 : irte.sid;
}

export function bdfText(sid: number): string {
  const b = (sid >> 8).toString(16).padStart(2, "0");
  const d = ((sid >> 3) & 0x1f).toString(16).padStart(2, "0");
  return `${b}:${d}.${sid & 7}`;
}
