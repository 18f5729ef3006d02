import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PhysicalMemory } from "../core/memory.js";
import { cli } from "../../test/support/cli.js";
import { encodeIrte, encodeRemappableMsi, writeIrte } from "../hw/vtd/intremap.js";
import { enableTranslation, VtdTables } from "../hw/vtd/builder.js";
import { VtdUnit } from "../hw/vtd/unit.js";
import { DumpReader, writeDumpFile } from "./dump.js";
import { forensicCaps, listMappings, walkIova } from "./walk.js";

const dir = mkdtempSync(join(tmpdir(), "iommu-walk-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

/** Writes simulated memory as a raw dump of `size` bytes (what pmemsave produces). */
function writeDump(mem: PhysicalMemory, name: string, size: number): string {
  const path = join(dir, name);
  writeDumpFile(mem, path, size);
  return path;
}

const SID = 0x0018; // 00:03.0
const SIZE = 16 * 0x100000;

/** A guest image: one device with a few mappings, and one interrupt remapping table. */
function image() {
  const mem = new PhysicalMemory();
  const t = new VtdTables(mem, 0x200000);
  const d = t.domain(7, 3);
  t.attach(SID, d);
  t.map(d, 0xffff_e000, 0x0a0_0000);
  t.map(d, 0xffff_f000, 0x0a0_1000);
  t.map(d, 0x1000_0000, 0x0b0_0000, { write: false });
  t.map(d, 0x4000_0000, 0x0c0_0000, { size: 0x200000 });
  // Pass-through device and a device with FPD and no context.
  t.attach(0x0020, d, { tt: 2 });
  // IRTE 3: vector 0x41 to APIC 1, edge, physical.
  writeIrte(mem, 0x300000, 3, encodeIrte({ vector: 0x41, destination: 1 }, false));
  return { mem, t, d };
}

const img = image();
const dumpPath = writeDump(img.mem, "guest.raw", SIZE);
const rtaddr = "0x" + img.t.root.toString(16);

test("forensics walk agrees with the hardware model's translation (same tables, same answer)", () => {
  const u = new VtdUnit({ memory: img.mem, config: { awBits: 48 } });
  enableTranslation(u, img.t.root);
  const dump = DumpReader.open(dumpPath);
  try {
    for (const iova of [0xffff_e123n, 0xffff_fff8n, 0x1000_0010n, 0x4012_3456n, 0x7000_0000n]) {
      const report = walkIova(dump, { rtaddr: BigInt(img.t.root), sid: SID, iova, caps: forensicCaps({ awBits: 48 }) });
      const model = u.translate({ sid: SID, addr: iova, write: false });
      if (model.ok && model.kind === "dma") {
        assert.equal(report.result, "ok");
        if (report.result === "ok") assert.equal(report.hpa, "0x" + (model.segments[0]?.hpa ?? 0n).toString(16));
      } else {
        assert.equal(report.result, "fault");
        if (report.result === "fault" && !model.ok && model.kind === "dma") assert.equal(report.reason, model.reason);
      }
    }
    // Only the pages the walk touched were read: root, context, three tables per distinct path.
    assert.ok(dump.pagesRead <= 10, `read ${dump.pagesRead} pages`);
  } finally {
    dump.close();
  }
});

test("a dump's page cache is bounded and can be emptied; reads are counted in pages and bytes", () => {
  const caps = forensicCaps({ awBits: 48 });
  const dump = DumpReader.open(dumpPath, { cachePages: 2 });
  try {
    const walk = () => walkIova(dump, { rtaddr: BigInt(img.t.root), sid: SID, iova: 0xffff_e123n, caps });
    const first = walk();
    assert.equal(dump.pagesCached, 2);
    const reads = dump.pagesRead;
    assert.ok(reads >= 4, `a walk reads root, context and table pages: ${reads}`);
    assert.equal(dump.bytesRead, reads * 4096);
    dump.dropCache();
    assert.equal(dump.pagesCached, 0);
    assert.deepEqual(walk(), first);
    assert.equal(dump.pagesRead, 2 * reads, "after dropping the cache the same pages are read again");
  } finally {
    dump.close();
  }
});

test("iommu walk --json: the result, hpa, page size, permissions and every level as 0x strings", async () => {
  const r = await cli(["walk", "--mem", dumpPath, "--rtaddr", rtaddr, "--bdf", "00:03.0", "--iova", "0xffffe010", "--aw", "39", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout) as Record<string, unknown> & { levels: Record<string, unknown>[] };
  assert.equal(j.result, "ok");
  assert.equal(j.iova, "0xffffe010");
  assert.equal(j.hpa, "0xa00010");
  assert.equal(j.pageSize, 4096);
  assert.equal(j.read, true);
  assert.equal(j.write, true);
  assert.equal(j.domainId, 7);
  assert.deepEqual(
    j.levels.map((l) => l.table),
    ["root entry", "context entry", "SL-PDPE", "SL-PDE", "SL-PTE"],
  );
  assert.equal(j.levels[0]?.address, rtaddr);
  assert.equal(j.levels[4]?.next, "0xa00000");
  assert.equal(j.levels[4]?.index, 0x1fe);
});

test("iommu walk: text output explains each level; a 2 MiB page and a read-only page are reported as such", async () => {
  const r = await cli(["walk", "--mem", dumpPath, "--rtaddr", rtaddr, "--bdf", "00:03.0", "--iova", "0x40012345"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /root entry .*present, context table at 0x/s);
  assert.match(r.stdout, /domain 7, multi-level, 3-level tables \(39-bit\)/);
  assert.match(r.stdout, /SL-PDE .*2 MiB page at 0xc00000/s);
  assert.match(r.stdout, /result: 0x40012345 -> 0xc12345 {2}\(2 MiB page, RW, domain 7\)/);
  const ro = await cli(["walk", "--mem", dumpPath, "--rtaddr", rtaddr, "--bdf", "00:03.0", "--iova", "0x10000000", "--access", "write", "--json"]);
  assert.equal(ro.code, 1);
  assert.equal((JSON.parse(ro.stdout) as { reason: number }).reason, 5);
});

test("iommu walk: a not-present page is fault 0x6 READ with the levels walked, exit status 1", async () => {
  const r = await cli(["walk", "--mem", dumpPath, "--rtaddr", rtaddr, "--bdf", "00:03.0", "--iova", "0x7000", "--json"]);
  assert.equal(r.code, 1);
  const j = JSON.parse(r.stdout) as { result: string; reason: number; reasonName: string; levels: unknown[] };
  assert.deepEqual([j.result, j.reason, j.reasonName, j.levels.length], ["fault", 6, "READ", 4]);
  const nodev = await cli(["walk", "--mem", dumpPath, "--rtaddr", rtaddr, "--bdf", "00:05.0", "--iova", "0x7000", "--json"]);
  assert.equal((JSON.parse(nodev.stdout) as { reason: number }).reason, 2);
  const pt = await cli(["walk", "--mem", dumpPath, "--rtaddr", rtaddr, "--bdf", "00:04.0", "--iova", "0x123456", "--json"]);
  assert.deepEqual(JSON.parse(pt.stdout).translationType, "pass-through");
  assert.equal((JSON.parse(pt.stdout) as { hpa: string }).hpa, "0x123456");
});

test("iommu walk --list: every mapping of the domain, merged into contiguous ranges", async () => {
  const dump = DumpReader.open(dumpPath);
  try {
    const rep = listMappings(dump, { rtaddr: BigInt(img.t.root), sid: SID, caps: forensicCaps({ awBits: 39 }) });
    assert.equal(rep.result, "ok");
    if (rep.result !== "ok") return;
    assert.equal(rep.mappings, 4);
    assert.deepEqual(
      rep.ranges.map((x) => [x.iova, x.hpa, x.size, x.read, x.write]),
      [
        ["0x10000000", "0xb00000", "0x1000", true, false],
        ["0x40000000", "0xc00000", "0x200000", true, true],
        ["0xffffe000", "0xa00000", "0x2000", true, true],
      ],
    );
  } finally {
    dump.close();
  }
  const r = await cli(["walk", "--mem", dumpPath, "--rtaddr", rtaddr, "--bdf", "00:03.0", "--list"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /4 page mappings in 3 ranges/);
  assert.match(r.stdout, /0xffffe000 - 0xffffffff\s+-> 0xa00000\s+RW\s+2 x 4 KiB/);
});

test("iommu walk --irta: an interrupt request through the interrupt remapping table", async () => {
  const msi = encodeRemappableMsi(3);
  const r = await cli(["walk", "--mem", dumpPath, "--irta", "0x300007", "--sid", "00:03.0", "--msi-addr", msi.address.toString(16), "--msi-data", "0", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { result: string; vector: number; destination: number; msi: { address: string; data: string } };
  assert.equal(j.result, "ok");
  assert.equal(j.vector, 0x41);
  assert.equal(j.destination, 1);
  assert.equal(j.msi.address, "0xfee01000");
  const missing = await cli(["walk", "--mem", dumpPath, "--irta", "0x300007", "--sid", "00:03.0", "--msi-addr", encodeRemappableMsi(4).address.toString(16), "--msi-data", "0", "--json"]);
  assert.equal(missing.code, 1);
  assert.equal((JSON.parse(missing.stdout) as { reason: number }).reason, 0x22);
  const text = await cli(["walk", "--mem", dumpPath, "--irta", "0x300007", "--sid", "00:03.0", "--msi-addr", msi.address.toString(16), "--msi-data", "0"]);
  assert.match(text.stdout, /remapped through IRTE 3/);
});

test("iommu walk: missing or short dumps, tables outside the dump and malformed input are one-line errors, exit 2", async () => {
  const cases: [string[], RegExp][] = [
    [["--mem", join(dir, "nope.raw"), "--rtaddr", rtaddr, "--bdf", "00:03.0", "--iova", "0"], /no such file.*\[FILE_NOT_FOUND\]/],
    [["--mem", dumpPath, "--rtaddr", "0x40000000", "--bdf", "00:03.0", "--iova", "0"], /outside the dump.*\[RTADDR_OUTSIDE_DUMP\]/],
    [["--mem", dumpPath, "--rtaddr", rtaddr, "--bdf", "00:3", "--iova", "0"], /not a PCI address.*\[BAD_BDF\]/],
    [["--mem", dumpPath, "--rtaddr", "0xzz", "--bdf", "00:03.0", "--iova", "0"], /--rtaddr: '0xzz' is not a hexadecimal number \[BAD_HEX\]/],
    [["--mem", dumpPath, "--rtaddr", rtaddr, "--bdf", "00:03.0"], /missing --iova/],
    [["--mem", dumpPath, "--rtaddr", rtaddr, "--bdf", "00:03.0", "--iova", "0", "--aw", "40"], /\[BAD_ARGUMENT\]/],
    [["--mem", dumpPath, "--rtaddr", "0x200c00", "--bdf", "00:03.0", "--iova", "0"], /abort-DMA.*\[UNSUPPORTED_MODE\]/],
    [["--mem", dumpPath, "--irta", "0x7000000", "--sid", "00:03.0", "--msi-addr", "0xfee00010", "--msi-data", "0"], /\[IRTA_OUTSIDE_DUMP\]/],
    [["--mem", dir, "--rtaddr", rtaddr, "--bdf", "00:03.0", "--iova", "0"], /is a directory/],
  ];
  const empty = join(dir, "empty.raw");
  writeFileSync(empty, "");
  cases.push([["--mem", empty, "--rtaddr", "0", "--bdf", "00:03.0", "--iova", "0"], /empty.*\[DUMP_EMPTY\]/]);
  const short = join(dir, "short.raw");
  writeFileSync(short, new Uint8Array(100));
  cases.push([["--mem", short, "--rtaddr", "0", "--bdf", "00:07.0", "--iova", "0"], /not wholly inside the dump \(100 bytes\).*\[DUMP_TOO_SHORT\]/]);
  for (const [args, want] of cases) {
    const r = await cli(["walk", ...args]);
    assert.equal(r.code, 2, `${args.join(" ")}: exit ${r.code}\n${r.stdout}${r.stderr}`);
    const first = r.stderr.split("\n")[0] ?? "";
    assert.match(first, want, `${args.join(" ")}: ${r.stderr}`);
    assert.equal(r.stdout, "");
  }
});

test("iommu walk: a table pointer beyond the end of a truncated dump is the access-error fault of that level", async () => {
  // Cut the dump where the SL-PD table of 0xffffe000 starts: root, context and SL-PDPT tables stay.
  const pd = img.t.entryAddress(img.d, 0xffffe000, 2) & ~0xfff;
  assert.ok(pd > img.d.top && pd > img.t.root);
  const small = writeDump(img.mem, "cut.raw", pd);
  const r = await cli(["walk", "--mem", small, "--rtaddr", rtaddr, "--bdf", "00:03.0", "--iova", "0xffffe000", "--json"]);
  assert.equal(r.code, 1);
  const j = JSON.parse(r.stdout) as { reason: number; reasonName: string };
  assert.deepEqual([j.reason, j.reasonName], [7, "PAGING_ENTRY_INV"]);
});

test("iommu walk --help shows usage and examples", async () => {
  const r = await cli(["walk", "--help"]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /Examples:/);
  assert.match(r.stdout, /--msi-addr/);
});
