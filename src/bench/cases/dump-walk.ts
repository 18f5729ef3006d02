/**
 * `dump-walk`: 100,000 `iommu walk` queries against a 512 MiB memory dump file (pages read on demand), next to
 * the same queries over the same tables in memory; and `dump-list`: the full mapping list of one device.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PhysicalMemory } from "../../core/memory.js";
import { VtdTables } from "../../hw/vtd/builder.js";
import { DumpReader, writeDumpFile } from "../../forensics/dump.js";
import { forensicCaps, listMappings, walkIova } from "../../forensics/walk.js";
import type { TableReader } from "../../hw/vtd/walk.js";
import { measure, result, rng, type BenchCase, type BenchOptions, type CaseResult } from "../harness.js";

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
    const run = (reader: TableReader) => (n: number) => {
      let acc = 0;
      for (let k = 0; k < n; k++) {
        const r = walkIova(reader, { rtaddr, sid: SID, iova: queries[k & 4095]!, caps });
        acc += r.result === "ok" ? 1 : 0;
      }
      if (acc !== n) throw new Error("a mapped IOVA did not translate in the dump");
      return acc;
    };
    const total = opts.quick ? 300 : 100_000;
    const samples = opts.quick ? 3 : 10;
    const dump = DumpReader.open(path);
    const fromFile = measure(run(dump), Math.ceil(total / samples), samples, 1);
    const inMemory = measure(run(mem), Math.ceil(total / samples), samples, 1);
    const walk = result("dump-walk", fromFile, { name: "same walks over in-memory tables", samples: inMemory }, {
      extra: { dumpBytes: DUMP_SIZE, mappedPages: pages },
    });
    const listTimes: number[] = [];
    let ranges = 0;
    let mappings = 0;
    for (let i = 0; i < (opts.quick ? 2 : 5); i++) {
      const fresh = DumpReader.open(path);
      const t0 = process.hrtime.bigint();
      const l = listMappings(fresh, { rtaddr, sid: SID, caps });
      listTimes.push(Number(process.hrtime.bigint() - t0) / 1e6);
      fresh.close();
      if (l.result !== "ok") throw new Error("listing the device's mappings faulted");
      ranges = l.ranges.length;
      mappings = l.mappings;
    }
    dump.close();
    const list = result("dump-walk@list", listTimes, null, { unit: "ms", extra: { mappings, ranges } });
    list.opsPerSec = 1000 / list.median;
    return [walk, list];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const dumpWalkCase: BenchCase = {
  name: "dump-walk",
  summary: "iommu walk queries and a full mapping list against a 512 MiB dump file",
  run: (opts) => dumpWalk(opts),
};
