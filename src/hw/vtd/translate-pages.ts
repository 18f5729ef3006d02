/**
 * A DMA request split into pages and translated one page at a time by a VT-d unit (VT-d spec 3.6–3.9: each page
 * is translated on its own), stopping at the first fault; contiguous pages merge into segments.
 */
import { joinHalves } from "../../spec/vtd/fields.js";
import { PAGE_SIZE_4K } from "../../spec/vtd/paging.js";
import { TWO32 } from "../../core/u64.js";
import { isInterruptAddress } from "../../spec/msi.js";
import { faultReasonName } from "../../spec/vtd/faults.js";
import type { DmaRequest, DmaSegment, TranslateResult } from "./request.js";

/** What translatePages needs of a unit: the one-page translation and its outputs. */
export interface PageTranslator {
  translateFast(sid: number, lo: number, hi: number, write: boolean, at: number, pasid: number, supervisor: boolean): number;
  readonly outLo: number;
  readonly outHi: number;
  readonly outShift: number;
  readonly outRead: boolean;
  readonly outWrite: boolean;
  readonly lastFaultRecorded: boolean;
}

/** Translates a DMA request page by page. Throws RangeError only for a malformed request object. */
export function translatePages(u: PageTranslator, req: DmaRequest, addr: bigint, at: number): TranslateResult {
  const length = req.length ?? 1;
  if (!Number.isInteger(length) || length < 0 || length > TWO32) throw new RangeError(`DMA length ${length} is not an integer in 0..2^32`);
  const segments: DmaSegment[] = [];
  let cur = addr;
  let left = Math.max(length, 1);
  while (left > 0) {
    const clo = Number(cur & 0xffffffffn);
    const chi = Number((cur >> 32n) & 0xffffffffn);
    if (isInterruptAddress(clo, chi)) {
      // A request that runs into the interrupt range: the part there is not DMA.
      return { ok: false, kind: "unsupported", detail: `request crosses into the interrupt address range at 0x${cur.toString(16)}` };
    }
    const r = u.translateFast(req.sid, clo, chi, req.write, at, req.pasid ?? -1, req.privileged ?? false);
    if (r !== 0) {
      return {
        ok: false,
        kind: "dma",
        reason: r,
        reasonName: faultReasonName(r),
        faultAddr: cur - (cur % BigInt(PAGE_SIZE_4K)),
        recorded: u.lastFaultRecorded,
        segments,
      };
    }
    const pageSize = 2 ** u.outShift;
    const inPage = pageSize - Number(cur & BigInt(pageSize - 1));
    const n = Math.min(left, inPage);
    const hpa = joinHalves(u.outLo, u.outHi);
    const prev = segments[segments.length - 1];
    if (prev !== undefined && prev.hpa + BigInt(prev.length) === hpa && prev.read === u.outRead && prev.write === u.outWrite && prev.pageSize === pageSize) {
      prev.length += n;
    } else {
      segments.push({ iova: cur, hpa, length: n, pageSize, read: u.outRead, write: u.outWrite });
    }
    left -= n;
    cur = BigInt.asUintN(64, cur + BigInt(n));
    if (cur === 0n && left > 0) break; // wrapped past 2^64: the rest is beyond any width
  }
  return { ok: true, kind: "dma", segments };
}

/** The request's address as a 64-bit bigint; RangeError for a number that is not a non-negative safe integer. */
export function requestAddress(req: DmaRequest): bigint {
  if (typeof req.addr === "bigint") return BigInt.asUintN(64, req.addr);
  if (!Number.isSafeInteger(req.addr) || req.addr < 0) throw new RangeError(`DMA address ${req.addr} is not a non-negative safe integer`);
  return BigInt(req.addr);
}
