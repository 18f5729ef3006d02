import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PhysicalMemory } from "../core/memory.js";
import { cli } from "../../test/support/cli.js";
import { encodeFields } from "../spec/amdvi/fields.js";
import { IRTE32_FIELDS } from "../spec/amdvi/irte.js";
import { AmdTables, DEV_TABLE, enable, writeDte, writeDwords } from "../hw/amdvi/builder.js";
import { AmdViUnit } from "../hw/amdvi/unit.js";
import { DumpReader, writeDumpFile } from "./dump.js";
import { listAmdMappings, walkAmdIova } from "./amdvi-walk.js";

const dir = mkdtempSync(join(tmpdir(), "iommu-amdwalk-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
const SIZE = 32 * 0x10_0000;
const DTB = `0x${(DEV_TABLE | 0x1ff).toString(16)}`;
const IRT = 0x40_0000;

function image() {
  const mem = new PhysicalMemory();
  const t = new AmdTables(mem);
  const root = t.alloc();
  writeDte(mem, 0x18, { V: 1, TV: 1, Mode: 4, HostPageTableRootPtr: BigInt(root >>> 12), IR: 1, IW: 1, DomainID: 9, IV: 1, IntCtl: 2, IntTabLen: 3, IntTableRootPtr: BigInt(IRT >>> 6) });
  t.map4k(root, 4, 0xffff_e000n, 0xa0_0000n);
  t.map4k(root, 4, 0xffff_f000n, 0xa0_1000n);
  t.map4k(root, 4, 0x1000_0000n, 0xb0_0000n, true, false);
  writeDte(mem, 0x20, { V: 1, TV: 1, Mode: 0, IR: 1, IW: 1 });
  writeDwords(mem, IRT + 5 * 4, encodeFields(1, IRTE32_FIELDS, { RemapEn: 1, Destination: 2, Vector: 0x51 }));
  const path = join(dir, "amd.raw");
  writeDumpFile(mem, path, SIZE);
  return { mem, path };
}

test("walk over a dump agrees with the unit for every address tried", () => {
  const { mem, path } = image();
  const unit = new AmdViUnit(mem);
  enable(unit);
  const dump = DumpReader.open(path);
  try {
    for (const iova of [0xffff_e010n, 0xffff_f000n, 0x1000_0123n, 0x2000n, 0x1_0000_0000n, 1n << 48n]) {
      for (const access of ["read", "write"] as const) {
        const u = unit.translate(0x18, iova, access === "write");
        const w = walkAmdIova(dump, { dtb: BigInt(DTB), devid: 0x18, iova, access });
        assert.equal(w.result, u.result, `0x${iova.toString(16)} ${access}`);
        if (w.result === "ok" && u.result === "ok") assert.equal(BigInt(w.hpa), u.hpa);
        if (w.result === "fault" && u.result === "fault") assert.equal(w.reason, u.event);
      }
    }
    // The DTE is entry 0x18 of the device table; a walk that stops at a non-present entry names no page size.
    const miss = walkAmdIova(dump, { dtb: BigInt(DTB), devid: 0x18, iova: 0x2000n });
    assert.deepEqual([miss.levels[0]?.index, miss.levels[0]?.address], [0x18, `0x${(DEV_TABLE + 0x18 * 32).toString(16)}`]);
    const stop = miss.levels.at(-1);
    assert.deepEqual([stop?.level, stop?.present, stop?.pageSize, stop?.table], [2, false, undefined, "PDE/PTE (level 2, not present)"]);
    const list = listAmdMappings(dump, BigInt(DTB), 0x18);
    assert.equal(list.result === "ok" ? list.mappings : -1, 3);
    assert.deepEqual(list.result === "ok" ? list.ranges.map((r) => [r.iova, r.size]) : [], [
      ["0x10000000", "0x1000"],
      ["0xffffe000", "0x2000"],
    ]);
  } finally {
    dump.close();
  }
});

test("iommu walk --dtb: ok exits 0 with the hpa, a fault exits 1 naming the event, bad input exits 2", async () => {
  const { path } = image();
  const ok = await cli(["walk", "--mem", path, "--dtb", DTB, "--bdf", "00:03.0", "--iova", "0xffffe010", "--json"]);
  assert.equal(ok.code, 0);
  assert.equal(JSON.parse(ok.stdout).hpa, "0xa00010");
  const f = await cli(["walk", "--mem", path, "--dtb", DTB, "--bdf", "00:03.0", "--iova", "0x10000000", "--access", "write", "--json"]);
  assert.equal(f.code, 1);
  assert.equal(JSON.parse(f.stdout).reasonName, "IO_PAGE_FAULT");
  const text = await cli(["walk", "--mem", path, "--dtb", DTB, "--bdf", "00:03.0", "--list"]);
  assert.match(text.stdout, /3 page mappings in 2 ranges/);
  const msi = await cli(["walk", "--mem", path, "--dtb", DTB, "--sid", "00:03.0", "--msi-addr", "0xfee00000", "--msi-data", "5", "--json"]);
  assert.equal(msi.code, 0);
  assert.deepEqual(JSON.parse(msi.stdout).msi, { address: "0xfee02000", addressHi: "0x0", data: "0x4051" });
  const beyond = await cli(["walk", "--mem", path, "--dtb", "0x7ff0000000", "--bdf", "00:03.0", "--iova", "0"]);
  assert.equal(beyond.code, 2);
  assert.doesNotMatch(beyond.stderr, /at .*\.ts:/);
  const bad = await cli(["walk", "--mem", path, "--dtb", DTB, "--bdf", "00:03.0", "--iova", "zz"]);
  assert.equal(bad.code, 2);
});

test("a device table entry whose page-table root is above the first 16 TiB lists and reports that root, not a truncated one", () => {
  const mem = new PhysicalMemory();
  const t = new AmdTables(mem);
  // HostPageTableRootPtr is 40 bits (address bits 51:12); this root needs bits above 43.
  const root = 0x2345_6789_a000;
  writeDte(mem, 0x18, { V: 1, TV: 1, Mode: 2, HostPageTableRootPtr: BigInt(root) >> 12n, IR: 1, IW: 1, DomainID: 3 });
  t.map4k(root, 2, 0x4000n, 0xc0_0000n);
  const reader = { read32: (a: number | bigint) => mem.read32(a), size: Number.MAX_SAFE_INTEGER };
  const list = listAmdMappings(reader, BigInt(DTB), 0x18);
  assert.deepEqual(list.result === "ok" ? list.ranges.map((r) => [r.iova, r.hpa, r.size]) : list, [["0x4000", "0xc00000", "0x1000"]]);
  const w = walkAmdIova(reader, { dtb: BigInt(DTB), devid: 0x18, iova: 0x4010n });
  assert.deepEqual([w.result, w.result === "ok" ? w.hpa : "", w.levels[0]?.next], ["ok", "0xc00010", `0x${root.toString(16)}`]);
});
