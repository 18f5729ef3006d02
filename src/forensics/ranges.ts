/** The mappings of a second-stage table tree, merged into ranges contiguous in both address spaces. */
import { hex } from "../core/hex.js";
import type { WalkCaps } from "../hw/vtd/walk.js";
import { forEachMapping, type TableReader } from "../hw/vtd/walk.js";
import { PROGRESS_EVERY } from "./progress.js";
import type { MappingRange } from "./reports.js";

/** Every mapping of a second-stage table tree below `limit`, merged into ranges. */
export function secondStageRanges(
  reader: TableReader,
  caps: WalkCaps,
  ptLo: number,
  ptHi: number,
  levels: number,
  limit: bigint,
  o: { maxLeaves?: number; progress?: (mappings: number) => void },
): { mappings: number; ranges: MappingRange[]; truncated: boolean; entriesRead: number } {
  const ranges: { iova: bigint; hpa: bigint; size: bigint; pageSize: number; pages: number; read: boolean; write: boolean }[] = [];
  let count = 0;
  const scan = forEachMapping(
    reader,
    caps,
    ptLo,
    ptHi,
    levels,
    (m) => {
      if (m.iova >= limit) return; // beyond the address width: no request can reach it
      count++;
      if (count % PROGRESS_EVERY === 0) o.progress?.(count);
      const size = 1n << BigInt(m.shift);
      const last = ranges[ranges.length - 1];
      if (
        last !== undefined &&
        last.iova + last.size === m.iova &&
        last.hpa + last.size === m.hpa &&
        last.read === m.read &&
        last.write === m.write &&
        last.pageSize === 2 ** m.shift
      ) {
        last.size += size;
        last.pages++;
      } else {
        ranges.push({ iova: m.iova, hpa: m.hpa, size, pageSize: 2 ** m.shift, pages: 1, read: m.read, write: m.write });
      }
    },
    { maxLeaves: o.maxLeaves ?? 1_000_000 },
  );
  return {
    mappings: count,
    ranges: ranges.map((x) => ({ iova: hex(x.iova), hpa: hex(x.hpa), size: hex(x.size), pageSize: x.pageSize, pages: x.pages, read: x.read, write: x.write })),
    truncated: scan.truncated,
    entriesRead: scan.entriesRead,
  };
}

