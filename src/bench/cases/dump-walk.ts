/**
 * `dump-walk`: `iommu walk` queries against a 512 MiB memory dump file, next to the same queries over the same
 * tables in simulated memory. Cold: the reader's page cache is emptied before every query, so each one reads
 * its root, context and table pages from the file (through the operating system's file cache, which holds the
 * dump after the first pass); warm: every page a query needs is already cached by the reader. Bytes read from
 * the file are reported. `dump-walk@list`: the full mapping list of one device from a freshly opened dump.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PhysicalMemory } from "../../core/memory.js";
import { VtdTables } from "../../hw/vtd/builder.js";
import { DumpReader, writeDumpFile } from "../../forensics/dump.js";
import { forensicCaps, listMappings, walkIova } from "../../forensics/walk.js";
import type { TableReader } from "../../hw/vtd/walk.js";
import { cpuNs, measureInterleaved, result, rng, type BenchCase, type BenchOptions, type CaseResult } from "../harness.js";

const DUMP_SIZE = 512 * 1024 * 1024;
const SID = 0x0020; // 00:04.0
const IOVA_BASE = 0xff_e000_0000; // high in a 48-bit space, like Linux's top-down allocator
const HPA_BASE = 0x1000_0000;

export function dumpWalk(opts: BenchOptions): CaseResult[] {
  const pages = opts.quick ? 2048 : 65536;
  const mem = new PhysicalMemory();
  const tables = new VtdTables(mem, 0x100000);
  const d = tables.domain(7, 4);
  tables.attach(SID, d);
  const rand = rng(0xd0d0);
  for (let i = 0; i < pages; i++) {
    // Scattered host pages, as a real domain has.
    tables.map(d, IOVA_BASE + i * 4096, HPA_BASE + Math.floor(rand() * 0x4000) * 0x1000 * 4 + (i % 4) * 4096);
  }
  const dir = mkdtempSync(join(tmpdir(), "iommu-kit-bench-"));
  const path = join(dir, "guest.ram");
  try {
    opts.progress(`dump-walk: writing a ${DUMP_SIZE >> 20} MiB dump with ${pages} mapped pages…`);
    writeDumpFile(mem, path, DUMP_SIZE);
    const caps = forensicCaps({ awBits: 48 });
    const rtaddr = BigInt(tables.root);
    const queries = Array.from({ length: 4096 }, () => BigInt(IOVA_BASE + Math.floor(rand() * pages) * 4096 + 0x10));
    const run = (reader: TableReader, before?: () => void) => {
      let q = 0;
      return (n: number) => {
        let acc = 0;
        for (let k = 0; k < n; k++) {
          before?.();
          const r = walkIova(reader, { rtaddr, sid: SID, iova: queries[q++ & 4095]!, caps });
          acc += r.result === "ok" ? 1 : 0;
        }
        if (acc !== n) throw new Error("a mapped IOVA did not translate in the dump");
        return acc;
      };
    };
    const total = opts.quick ? 300 : 30_000;
    const samples = opts.quick ? 3 : 10;
    const cold = DumpReader.open(path);
    const warm = DumpReader.open(path);
    run(warm)(4096); // every page the queries need, in the warm reader's cache
    const coldReadsBefore = { pages: cold.pagesRead, bytes: cold.bytesRead };
    const warmReadsBefore = warm.bytesRead;
    const [fromFile, fromCache, inMemory] = measureInterleaved(
      [run(cold, () => cold.dropCache()), run(warm), run(mem)],
      Math.ceil(total / samples),
      samples,
      1,
    );
    const queriesRun = Math.ceil(total / samples) * (samples + 1);
    const baseline = { name: "same walks, simulated memory", samples: inMemory!, interleaved: true };
    const coldRow = result("dump-walk@cold", fromFile!, baseline, {
      extra: {
        dumpBytes: DUMP_SIZE,
        mappedPages: pages,
        pagesReadPerQuery: (cold.pagesRead - coldReadsBefore.pages) / queriesRun,
        bytesReadPerQuery: (cold.bytesRead - coldReadsBefore.bytes) / queriesRun,
      },
    });
    const warmRow = result("dump-walk@warm", fromCache!, baseline, {
      extra: { bytesReadPerQuery: (warm.bytesRead - warmReadsBefore) / queriesRun, pagesCached: warm.pagesCached },
    });
    cold.close();
    warm.close();
    const listTimes: number[] = [];
    let ranges = 0;
    let mappings = 0;
    let listBytes = 0;
    for (let i = 0; i < (opts.quick ? 2 : 5); i++) {
      const fresh = DumpReader.open(path);
      const t0 = cpuNs();
      const l = listMappings(fresh, { rtaddr, sid: SID, caps });
      listTimes.push((cpuNs() - t0) / 1e6);
      listBytes = fresh.bytesRead;
      fresh.close();
      if (l.result !== "ok") throw new Error("listing the device's mappings faulted");
      ranges = l.ranges.length;
      mappings = l.mappings;
    }
    const list = result("dump-walk@list", listTimes, null, { unit: "ms", extra: { mappings, ranges, bytesRead: listBytes } });
    list.opsPerSec = 1000 / list.median;
    return [coldRow, warmRow, list];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const dumpWalkCase: BenchCase = {
  name: "dump-walk",
  summary: "iommu walk queries against a 512 MiB dump file, cold and warm, vs simulated memory; a full mapping list",
  run: (opts) => dumpWalk(opts),
};
