import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PhysicalMemory } from "../core/memory.js";
import { cli } from "../../test/support/cli.js";
import { ScalableTables, smRtaddr } from "../hw/vtd/sm-builder.js";
import { VtdUnit } from "../hw/vtd/unit.js";
import { gcmd } from "../hw/vtd/builder.js";
import { DMAR_RTADDR_REG, GCMD_SRTP, GCMD_TE } from "../spec/vtd/registers.js";
import { PGTT_FIRST_STAGE, PGTT_PASS_THROUGH } from "../spec/vtd/scalable.js";
import { DumpReader, writeDumpFile } from "./dump.js";
import { forensicCaps, walkIova } from "./walk.js";

const dir = mkdtempSync(join(tmpdir(), "iommu-walk-sm-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
const SID = 0x0018;
const SID_HI = 0x00a0; // devfn 0xa0: the upper context table
const SIZE = 16 * 0x100000;

/** A scalable-mode image: RID_PASID 0 second-stage, PASID 5 first-stage, an upper-table device in pass-through. */
function image() {
  const mem = new PhysicalMemory();
  const t = new ScalableTables(mem, 0x20_0000);
  const d = t.domain(3, 4);
  t.sl.map(d, 0xffff_e000, 0xa0_0000);
  t.sl.map(d, 0x4000_0000, 0xc0_0000, { size: 0x20_0000 });
  const pdir = t.attach(SID);
  t.setPasid(pdir, 0, t.secondStage(d));
  const fs = t.firstStageSpace(0);
  t.mapFirstStage(fs, 0x7f00_1234_5000n, 0xd0_0000n);
  t.mapFirstStage(fs, 0x7f00_1234_6000n, 0xd0_1000n, { write: false });
  t.setPasid(pdir, 5, { pgtt: PGTT_FIRST_STAGE, did: 9, fsptptr: fs.top });
  t.setPasid(t.attach(SID_HI), 0, { pgtt: PGTT_PASS_THROUGH, did: 4 });
  const path = join(dir, `sm-${Math.random().toString(36).slice(2)}.raw`);
  writeDumpFile(mem, path, SIZE);
  return { mem, t, fs, path, rtaddr: smRtaddr(t.root) };
}

test("walk reads RTADDR's TTM and agrees with the unit in scalable mode: RID_PASID second stage, PASID first stage, upper context table", () => {
  const { mem, path, rtaddr } = image();
  const u = new VtdUnit({ memory: mem, config: { awBits: 48, scalableMode: true, firstStage: true, pasidBits: 20 } });
  u.mmioWrite(DMAR_RTADDR_REG, 8, rtaddr);
  gcmd(u, GCMD_SRTP);
  gcmd(u, GCMD_TE);
  const dump = DumpReader.open(path);
  try {
    const caps = forensicCaps({ awBits: 48 });
    const cases: { sid: number; iova: bigint; pasid?: number }[] = [
      { sid: SID, iova: 0xffff_e123n },
      { sid: SID, iova: 0x4001_2345n },
      { sid: SID, iova: 0x7f00_1234_5678n, pasid: 5 },
      { sid: SID, iova: 0x7f00_1234_6000n, pasid: 5 },
      { sid: SID_HI, iova: 0x1234_5678n },
      { sid: SID, iova: 0x5000_0000n },
      { sid: SID, iova: 0x1000n, pasid: 6 },
    ];
    for (const c of cases) {
      const w = walkIova(dump, { rtaddr, sid: c.sid, iova: c.iova, caps, ...(c.pasid !== undefined ? { pasid: c.pasid } : {}) });
      const m = u.translate({ sid: c.sid, addr: c.iova, write: false, ...(c.pasid !== undefined ? { pasid: c.pasid } : {}) });
      if (m.ok && m.kind === "dma") {
        assert.equal(w.result, "ok", `${c.iova.toString(16)}: ${JSON.stringify(w)}`);
        if (w.result === "ok") assert.equal(BigInt(w.hpa), m.segments[0]?.hpa);
      } else {
        assert.ok(!m.ok && m.kind === "dma");
        assert.equal(w.result, "fault");
        if (w.result === "fault") assert.equal(w.reason, m.reason);
      }
    }
    const rid = walkIova(dump, { rtaddr, sid: SID, iova: 0xffff_e000n, caps });
    assert.ok(rid.result === "ok" && rid.pasid === 0 && rid.translationType === "second-stage" && rid.domainId === 3);
    assert.deepEqual(rid.levels.slice(0, 4).map((l) => l.table), ["scalable-mode root entry", "scalable-mode context entry", "PASID directory entry", "PASID entry"]);
  } finally {
    dump.close();
  }
});

test("iommu walk --pasid and --first-stage-root: same report shape, text with every entry, bad input in one line", async () => {
  const { path, rtaddr, fs } = image();
  const rt = `0x${rtaddr.toString(16)}`;
  const r = await cli(["walk", "--mem", path, "--rtaddr", rt, "--bdf", "00:03.0", "--pasid", "5", "--iova", "0x7f0012345678", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { result: string; hpa: string; pasid: number; translationType: string; levels: { table: string }[] };
  assert.deepEqual([j.result, j.hpa, j.pasid, j.translationType], ["ok", "0xd00678", 5, "first-stage"]);
  assert.deepEqual(j.levels.slice(4).map((l) => l.table), ["FS-PML4E", "FS-PDPE", "FS-PDE", "FS-PTE"]);
  const text = await cli(["walk", "--mem", path, "--rtaddr", rt, "--bdf", "00:03.0", "--iova", "0xffffe000"]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /PASID entry .*\n.*present, domain 3, second-stage, second stage 48-bit/);
  const bare = await cli(["walk", "--mem", path, "--first-stage-root", `0x${fs.top.toString(16)}`, "--iova", "0x7f0012346010", "--access", "write", "--json"]);
  assert.equal(bare.code, 1);
  const b = JSON.parse(bare.stdout) as { result: string; reasonName: string; levels: unknown[] };
  assert.deepEqual([b.result, b.reasonName, b.levels.length], ["fault", "SM_WRITE", 4]);
  const ok = await cli(["walk", "--mem", path, "--first-stage-root", `0x${fs.top.toString(16)}`, "--iova", "0x7f0012346010"]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /^first-stage table {2}iova 0x7f0012346010/);
  assert.match(ok.stdout, /result: 0x7f0012346010 -> 0xd01010 {2}\(4 KiB page, R-\)/);
  for (const bad of [
    ["--pasid", "0x100000"],
    ["--levels", "6"],
  ]) {
    const e = await cli(["walk", "--mem", path, "--first-stage-root", `0x${fs.top.toString(16)}`, "--iova", "0", ...bad]);
    assert.equal(e.code, 2);
    assert.equal(e.stderr.trim().split("\n").length <= 2, true, e.stderr);
    assert.doesNotMatch(e.stderr, /at .*\.ts:/);
  }
  const p = await cli(["walk", "--mem", path, "--rtaddr", rt, "--bdf", "00:03.0", "--iova", "0", "--pasid", "x"]);
  assert.equal(p.code, 2);
  assert.match(p.stderr, /--pasid: 'x' is not a PASID/);
});
