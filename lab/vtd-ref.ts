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

/**
 * Scalable mode (RTADDR.TTM = 01): root entry halves (9.2), 256-bit context entries (9.4), PASID directory (9.5)
 * and 512-bit PASID entries (9.6); a request without PASID uses the context entry's RID_PASID. Second-stage
 * (PGTT 010) walks as in legacy mode with the PASID entry's AW and table; pass-through (PGTT 100) is identity.
 * First-stage and nested PGTTs are reported as not handled (QEMU 7.2 has neither).
 */
export function refTranslateScalable(dump: Dump, rtaddr: bigint, sid: number, iova: bigint, pasid?: number): RefWalk {
  const pages: bigint[] = [];
  const read = (a: bigint): bigint | null => {
    pages.push(a & ~0xfffn);
    return dump.u64(a);
  };
  if (((rtaddr >> 10n) & 3n) !== 1n) return { ok: false, why: "not scalable mode (RTADDR.TTM != 1)", pagesRead: pages };
  const bus = BigInt(sid >> 8);
  const devfn = sid & 0xff;
  const half = read((rtaddr & ADDR_MASK) + bus * 16n + (devfn >= 128 ? 8n : 0n));
  if (half === null) return { ok: false, why: "root table outside the dump", pagesRead: pages };
  if ((half & 1n) === 0n) return { ok: false, why: "root entry half not present", pagesRead: pages };
  const ctx = (half & ADDR_MASK) + BigInt(devfn % 128) * 32n;
  const c0 = read(ctx);
  const c1 = read(ctx + 8n);
  if (c0 === null || c1 === null) return { ok: false, why: "context table outside the dump", pagesRead: pages };
  if ((c0 & 1n) === 0n) return { ok: false, why: "context entry not present", pagesRead: pages };
  const p = BigInt(pasid ?? Number(c1 & 0xfffffn)); // RID_PASID: bits 83:64
  const dirEntries = 1n << (((c0 >> 9n) & 7n) + 7n);
  if (p >> 6n >= dirEntries) return { ok: false, why: "PASID beyond the directory", pagesRead: pages };
  const de = read((c0 & ADDR_MASK) + (p >> 6n) * 8n);
  if (de === null || (de & 1n) === 0n) return { ok: false, why: "PASID directory entry not present", pagesRead: pages };
  const pe0 = read((de & ADDR_MASK) + (p & 0x3fn) * 64n);
  if (pe0 === null || (pe0 & 1n) === 0n) return { ok: false, why: "PASID entry not present", pagesRead: pages };
  const pgtt = Number((pe0 >> 6n) & 7n);
  if (pgtt === 4) return { ok: true, hpa: iova, pageSize: 4096, read: true, write: true, passThrough: true, pagesRead: pages };
  if (pgtt !== 2) return { ok: false, why: `PGTT ${pgtt} is not second-stage or pass-through`, pagesRead: pages };
  return walkSecondStage(read, pe0 & ADDR_MASK, Number((pe0 >> 2n) & 7n) + 2, iova, pages);
}

/** A second-level walk from `table` with `levels` levels (9.8). */
function walkSecondStage(read: (a: bigint) => bigint | null, top: bigint, levels: number, iova: bigint, pages: bigint[]): RefWalk {
  let table = top;
  for (let lv = levels; ; lv--) {
    const shift = 12n + 9n * BigInt(lv - 1);
    const e = read(table + ((iova >> shift) & 0x1ffn) * 8n);
    if (e === null) return { ok: false, why: `level ${lv} table outside the dump`, pagesRead: pages };
    const r = (e & 1n) !== 0n;
    const w = (e & 2n) !== 0n;
    if (!r && !w) return { ok: false, why: `level ${lv} entry not present`, pagesRead: pages };
    if (lv === 1 || (e & 0x80n) !== 0n) {
      const size = 1n << shift;
      return { ok: true, hpa: (e & ADDR_MASK & ~(size - 1n)) | (iova & (size - 1n)), pageSize: Number(size), read: r, write: w, passThrough: false, pagesRead: pages };
    }
    table = e & ADDR_MASK;
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
