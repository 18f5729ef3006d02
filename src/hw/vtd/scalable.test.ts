/**
 * Scalable-mode translation in the VT-d unit. QEMU 7.2 has no first-stage or nested translation, so these
 * paths follow the specification: 3.4.3 (scalable-mode lookup, RID_PASID), 3.6 (first-stage: 3.6.1 canonical
 * addresses and permissions, 3.6.2 accessed/dirty flags), 3.8 (nested), 6.2.1–6.2.4 and 6.5.2.2/6.5.2.4
 * (PASID cache, PASID-granular invalidation), 7.1.3 (scalable-mode fault reasons), 10.4.14 (PP/PV in FRCD).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { PhysicalMemory } from "../../core/memory.js";
import { DMAR_RTADDR_REG, GCMD_SRTP, GCMD_TE } from "../../spec/vtd/registers.js";
import { encodePasidCacheDesc, encodePasidIotlbDesc, PC_G_PASID, PIOTLB_G_PAGE, PIOTLB_G_PASID } from "../../spec/vtd/invalidation.js";
import { FS_A, FS_D } from "../../spec/vtd/first-stage.js";
import { PGTT_FIRST_STAGE, PGTT_NESTED, PGTT_PASS_THROUGH } from "../../spec/vtd/scalable.js";
import { decodeFaultRecord } from "../../spec/vtd/faults.js";
import { gcmd, InvalidationQueue, enableTranslation } from "./builder.js";
import { ScalableTables, smRtaddr } from "./sm-builder.js";
import { VtdUnit, type TranslateResult } from "./unit.js";
import type { VtdConfig } from "./config.js";
import { frcdOffset } from "./registers.js";

const SID = 0x0018; // 00:03.0
const FULL: Partial<VtdConfig> = { awBits: 48, scalableMode: true, firstStage: true, nested: true, pasidBits: 20, firstStage1G: true, firstStage5Level: true, faultRecords: 4, collapseFaults: false };

function setup(config: Partial<VtdConfig> = FULL) {
  const mem = new PhysicalMemory();
  const u = new VtdUnit({ memory: mem, config });
  const t = new ScalableTables(mem);
  const q = new InvalidationQueue(u, mem, 0x80_0000, 0, true);
  q.enable();
  return { mem, u, t, q };
}

function start(u: VtdUnit, root: number): void {
  u.mmioWrite(DMAR_RTADDR_REG, 8, smRtaddr(root));
  gcmd(u, GCMD_SRTP);
  gcmd(u, GCMD_TE);
}

function hpa(r: TranslateResult): bigint {
  assert.ok(r.ok && r.kind === "dma", JSON.stringify(r, (_, v: unknown) => (typeof v === "bigint" ? `0x${v.toString(16)}` : v)));
  return r.segments[0]?.hpa ?? -1n;
}

function reason(r: TranslateResult): number {
  assert.ok(!r.ok && r.kind === "dma", "expected a DMA fault");
  return r.reason;
}

test("3.4.3: a request without PASID uses the context entry's RID_PASID; second-stage and pass-through PGTT", () => {
  const { u, t } = setup({ awBits: 48, scalableMode: true });
  const d = t.domain(5, 4);
  t.sl.map(d, 0x1000n, 0x7654_3000n);
  const dir = t.attach(SID, { ridPasid: 3 });
  t.setPasid(dir, 3, t.secondStage(d));
  start(u, t.root);
  assert.equal(hpa(u.translate({ sid: SID, addr: 0x1234, write: false })), 0x7654_3234n);
  // RID_PASID 3 is what counts: PASID 0 has no entry.
  t.setPasid(dir, 3, { pgtt: PGTT_PASS_THROUGH, did: 5 });
  u.contextGlobal(); // context-cache invalidation drops the PASID-cache entries derived from it (6.5.2.1)
  u.iotlbGlobal();
  assert.equal(hpa(u.translate({ sid: SID, addr: 0x1234, write: true })), 0x1234n);
  // QEMU 7.2's x-scalable-mode=on has neither first-stage nor PASID support: PGTT first-stage is invalid (0x5B).
  t.setPasid(dir, 3, { pgtt: PGTT_FIRST_STAGE, did: 5 });
  u.contextGlobal();
  assert.equal(reason(u.translate({ sid: SID, addr: 0x1234, write: false })), 0x5b);
});

test("7.1.3: scalable-mode faults carry the PASID (FRCD PP/PV) and FPD in the PASID entry suppresses them", () => {
  const { u, t } = setup();
  const dir = t.attach(SID);
  start(u, t.root);
  assert.equal(reason(u.translate({ sid: SID, addr: 0x5000, write: false, pasid: 9 })), 0x51); // no PASID table yet
  const rec = decodeFaultRecord(...([0, 4, 8, 12].map((o) => u.mmioRead(frcdOffset(u.config, 0) + o, 4)) as [number, number, number, number]));
  assert.equal(rec.reason, 0x51);
  assert.equal(rec.fiLo, 0x5000);
  const w2 = u.mmioRead(frcdOffset(u.config, 0) + 8, 4);
  const w3 = u.mmioRead(frcdOffset(u.config, 0) + 12, 4);
  assert.equal((w2 >>> 31) & 1, 1, "PP");
  assert.equal((w3 >>> 8) & 0xfffff, 9, "PV");
  t.setPasid(dir, 10, { present: false, fpd: true });
  const r = u.translate({ sid: SID, addr: 0x5000, write: false, pasid: 10 });
  assert.ok(!r.ok && r.kind === "dma" && r.reason === 0x59 && !r.recorded);
  // Legacy root table: a request with a PASID faults 0x31; without PASIDE, 0x45.
  const t2 = setup();
  enableTranslation(t2.u, t2.t.root);
  assert.equal(reason(t2.u.translate({ sid: SID, addr: 0, write: false, pasid: 1 })), 0x31);
  const dir2 = t2.t.attach(SID, { paside: false });
  t2.t.setPasid(dir2, 1, { pgtt: PGTT_PASS_THROUGH });
  start(t2.u, t2.t.root);
  assert.equal(reason(t2.u.translate({ sid: SID, addr: 0, write: false, pasid: 1 })), 0x45);
});

test("3.6.1/3.6.2: first-stage 4-level: U/S, R/W, WPE, XD ignored for DMA, A/D updates, 2 MiB and 1 GiB pages", () => {
  const { u, t, mem } = setup();
  const dir = t.attach(SID);
  const fs = t.firstStageSpace(0);
  const leaf = t.mapFirstStage(fs, 0x4000_1000n, 0x1234_5000n);
  t.mapFirstStage(fs, 0x4000_2000n, 0x2000_0000n, { write: false });
  t.mapFirstStage(fs, 0x4000_3000n, 0x3000_0000n, { user: false });
  const xd = t.mapFirstStage(fs, 0x4000_4000n, 0x4000_0000n);
  mem.write32(xd + 4, (mem.read32(xd + 4) | 0x8000_0000) >>> 0); // XD
  t.mapFirstStage(fs, 0x8020_0000n, 0x5000_0000n, { size: 0x20_0000 });
  t.mapFirstStage(fs, 0x1_4000_0000n, 0x8000_0000n, { size: 0x4000_0000 });
  t.setPasid(dir, 7, { pgtt: PGTT_FIRST_STAGE, did: 2, fsptptr: fs.top, sre: true });
  start(u, t.root);
  const req = (addr: bigint, write: boolean, privileged = false) => u.translate({ sid: SID, addr, write, pasid: 7, privileged });
  assert.equal(mem.read32(leaf) & (FS_A | FS_D), 0);
  assert.equal(hpa(req(0x4000_1abcn, false)), 0x1234_5abcn);
  assert.equal(mem.read32(leaf) & (FS_A | FS_D), FS_A, "a read sets A, not D");
  assert.equal(hpa(req(0x4000_1abcn, true)), 0x1234_5abcn);
  assert.equal(mem.read32(leaf) & (FS_A | FS_D), FS_A | FS_D, "a write sets D in the leaf");
  assert.equal(mem.read32(fs.top) & FS_A, FS_A, "A in the top-level entry");
  assert.equal(reason(req(0x4000_2000n, true)), 0x85, "write to a read-only page");
  assert.equal(hpa(req(0x4000_2000n, true, true)), 0x2000_0000n, "supervisor write, WPE = 0: R/W not enforced");
  assert.equal(reason(req(0x4000_3000n, false)), 0x81, "user request to a supervisor page");
  assert.equal(hpa(req(0x4000_3000n, false, true)), 0x3000_0000n);
  assert.equal(hpa(req(0x4000_4010n, false)), 0x4000_0010n, "XD does not stop a DMA read");
  const big = req(0x8021_2345n, false);
  assert.equal(hpa(big), 0x5001_2345n);
  assert.ok(big.ok && big.kind === "dma" && big.segments[0]?.pageSize === 0x20_0000);
  assert.equal(hpa(req(0x1_7fff_0000n, false)), 0xbfff_0000n, "1 GiB page");
  assert.equal(reason(req(0x0000_8000_0000_0000n, false)), 0x80, "non-canonical for 4-level paging");
  assert.equal(reason(req(0x5000_0000n, false)), 0x71, "not present");
  t.setPasid(dir, 8, { pgtt: PGTT_FIRST_STAGE, did: 2, fsptptr: fs.top, wpe: true, sre: true });
  assert.equal(reason(u.translate({ sid: SID, addr: 0x4000_2000n, write: true, pasid: 8, privileged: true })), 0x85, "WPE = 1");
  t.setPasid(dir, 9, { pgtt: PGTT_FIRST_STAGE, did: 2, fsptptr: fs.top });
  assert.equal(reason(u.translate({ sid: SID, addr: 0x4000_1000n, write: false, pasid: 9, privileged: true })), 0x5d, "SRE clear");
});

test("3.6: 5-level first-stage paging translates canonical upper-half addresses", () => {
  const { u, t } = setup();
  const dir = t.attach(SID);
  const fs = t.firstStageSpace(1);
  t.mapFirstStage(fs, 0xff00_1234_5678_9000n, 0x6000_0000n);
  t.setPasid(dir, 1, { pgtt: PGTT_FIRST_STAGE, did: 3, fsptptr: fs.top, fspm: 1 });
  start(u, t.root);
  assert.equal(hpa(u.translate({ sid: SID, addr: 0xff00_1234_5678_9010n, write: false, pasid: 1 })), 0x6000_0010n);
  assert.equal(reason(u.translate({ sid: SID, addr: 0xfe00_0000_0000_0000n, write: false, pasid: 1 })), 0x80);
});

test("3.8: nested translation: first-stage tables are read through the second stage, and so is the output", () => {
  const { u, t } = setup();
  const dir = t.attach(SID);
  const d = t.domain(4, 4);
  const fs = t.firstStageSpace(0);
  // Guest-physical = host-physical + 1 GiB for the guest's RAM, mapped page by page below.
  const G = 0x4000_0000n;
  // Both mappings are built first (the builder follows host addresses), then every table pointer is rewritten
  // as the guest-physical address host + G, and the second stage maps each table page back.
  t.mapFirstStage(fs, 0x10_0000n, 0x2000n + G);
  t.mapFirstStage(fs, 0x10_1000n, 0x3000n + G);
  const rewrite = (table: number, levels: number): void => {
    for (let i = 0; i < 512; i++) {
      const e = t.mem.read64(table + 8 * i);
      if ((e & 1n) === 0n || levels === 1) continue;
      const next = Number(e & 0x000f_ffff_ffff_f000n);
      t.mem.write64(table + 8 * i, (e & ~0x000f_ffff_ffff_f000n) | (BigInt(next) + G));
      rewrite(next, levels - 1);
    }
  };
  rewrite(fs.top, 4);
  const tables = [0, 1, 2, 3].map((i) => fs.top + i * 0x1000); // PML4, PDPT, PD, PT, allocated in that order
  for (const p of tables) t.sl.map(d, BigInt(p) + G, BigInt(p));
  t.sl.map(d, 0x2000n + G, 0x9_9000n);
  t.setPasid(dir, 5, { pgtt: PGTT_NESTED, did: 4, aw: 2, ssptptr: d.top, fsptptr: fs.top + Number(G) });
  start(u, t.root);
  assert.equal(hpa(u.translate({ sid: SID, addr: 0x10_0123n, write: false, pasid: 5 })), 0x9_9123n);
  assert.equal(t.mem.read32(tables[3]! + 0x100 * 8) & FS_A, FS_A, "A set in the leaf, written at its host address");
  // The first-stage output is a guest-physical address the second stage does not map: 0x86.
  assert.equal(reason(u.translate({ sid: SID, addr: 0x10_1000n, write: false, pasid: 5 })), 0x86);
  // The leaf table becomes read-only in the second stage: a write, which must set D there, faults 0x77.
  t.sl.map(d, BigInt(tables[3]!) + G, BigInt(tables[3]!), { write: false });
  u.iotlbGlobal();
  assert.equal(reason(u.translate({ sid: SID, addr: 0x10_0123n, write: true, pasid: 5 })), 0x77);
  // The second stage does not map the first stage's top table at its guest-physical address: 0x75.
  t.setPasid(dir, 6, { pgtt: PGTT_NESTED, did: 4, aw: 2, ssptptr: d.top, fsptptr: 0x7000_0000 });
  assert.equal(reason(u.translate({ sid: SID, addr: 0x10_0123n, write: false, pasid: 6 })), 0x75);
});

test("6.5.2.2/6.5.2.4: the PASID cache and PASID IOTLB keep translations until PASID-granular invalidation", () => {
  const { u, t, q } = setup();
  const dir = t.attach(SID);
  const fs = t.firstStageSpace(0);
  const leaf = t.mapFirstStage(fs, 0x1000n, 0xa000n);
  t.mapFirstStage(fs, 0x20_0000n, 0xb000n);
  t.setPasid(dir, 2, { pgtt: PGTT_FIRST_STAGE, did: 6, fsptptr: fs.top });
  start(u, t.root);
  assert.equal(hpa(u.translate({ sid: SID, addr: 0x1000n, write: false, pasid: 2 })), 0xa000n);
  // Software changes the leaf: the PASID IOTLB still has the old translation.
  t.mem.write64(leaf, 0xc000n | 0x27n);
  assert.equal(hpa(u.translate({ sid: SID, addr: 0x1000n, write: false, pasid: 2 })), 0xa000n);
  // Page-selective for another page, or another PASID, leaves it; the right page drops it.
  q.submit(encodePasidIotlbDesc({ g: PIOTLB_G_PAGE, did: 6, pasid: 2, addr: 0x20_0000 }));
  q.submit(encodePasidIotlbDesc({ g: PIOTLB_G_PASID, did: 6, pasid: 3 }));
  assert.equal(hpa(u.translate({ sid: SID, addr: 0x1000n, write: false, pasid: 2 })), 0xa000n);
  q.submit(encodePasidIotlbDesc({ g: PIOTLB_G_PAGE, did: 6, pasid: 2, addr: 0x1000 }));
  assert.equal(hpa(u.translate({ sid: SID, addr: 0x1000n, write: false, pasid: 2 })), 0xc000n);
  // The PASID entry changes (a different first-stage table): cached until a PASID-cache invalidation.
  const fs2 = t.firstStageSpace(0);
  t.mapFirstStage(fs2, 0x1000n, 0xd000n);
  t.setPasid(dir, 2, { pgtt: PGTT_FIRST_STAGE, did: 7, fsptptr: fs2.top });
  assert.equal(hpa(u.translate({ sid: SID, addr: 0x1000n, write: false, pasid: 2 })), 0xc000n);
  q.submit(encodePasidCacheDesc({ g: PC_G_PASID, did: 7, pasid: 2 }));
  assert.equal(hpa(u.translate({ sid: SID, addr: 0x1000n, write: false, pasid: 2 })), 0xc000n, "the cached entry is tagged with DID 6");
  q.submit(encodePasidCacheDesc({ g: PC_G_PASID, did: 6, pasid: 2 }));
  assert.equal(hpa(u.translate({ sid: SID, addr: 0x1000n, write: false, pasid: 2 })), 0xd000n);
  assert.equal(u.invalidation.stats.pasidCache, 2);
  assert.equal(u.invalidation.stats.pasidIotlb, 3);
  assert.equal(u.invalidation.stats.queueErrors, 0);
});
