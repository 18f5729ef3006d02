import { test } from "node:test";
import assert from "node:assert/strict";
import { PhysicalMemory } from "../../core/memory.js";
import type { VtdConfig } from "./config.js";
import { declareRegisters, frcdOffset } from "./registers.js";
import {
  DMAR_FSTS_REG,
  DMAR_GCMD_REG,
  DMAR_GSTS_REG,
  DMAR_IQA_REG,
  DMAR_IRTA_REG,
  DMAR_RTADDR_REG,
  GCMD_COMMAND_MASK,
  GCMD_QIE,
  GCMD_SRTP,
  GCMD_TE,
} from "../../spec/vtd/registers.js";
import { desc, gcmd as gcmdSet, VtdTables } from "./builder.js";
import { VtdUnit } from "./unit.js";
import { seededRandom } from "../../core/random.js";
import { ScalableTables } from "./sm-builder.js";
import { pasidDirIndex } from "../../spec/vtd/scalable.js";
import { encodePasidCacheDesc, encodePasidDeviceTlbDesc, encodePasidIotlbDesc } from "../../spec/vtd/invalidation.js";

/** The whole run is reproducible from its seed. */
function rng(seed: number) {
  const next = seededRandom(seed);
  return {
    u32: () => Math.floor(next() * 0x1_0000_0000) >>> 0,
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)] as T,
    chance: (p: number) => next() < p,
  };
}

const DMA_REASONS = new Set([0x1, 0x2, 0x3, 0x4, 0x5, 0x6, 0x7, 0x8, 0x9, 0xa, 0xb, 0xc, 0xd, 0xe]);
const IR_REASONS = new Set([0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26]);
const SEED = 0x5eed_1234;
const ROUNDS = 400;

test("7.1.3/6.5.2.10 never throws: random registers, random table bytes and random descriptors give only spec faults and status bits", () => {
  const r = rng(SEED);
  const seenReasons = new Set<number>();
  for (let round = 0; round < ROUNDS; round++) {
    const config: Partial<VtdConfig> = {
      awBits: r.pick([39, 48, 57] as const),
      faultRecords: 1 + r.int(8),
      cachingMode: r.chance(0.5),
      passThrough: r.chance(0.8),
      deviceTlb: r.chance(0.3),
      snoopControl: r.chance(0.3),
      largePages: r.int(4),
      extendedInterruptMode: r.chance(0.3),
      wideDescriptors: r.chance(0.3),
      pagingStructureCache: r.chance(0.5) ? { sets: 4, ways: 2, policy: "random", seed: round + 1 } : null,
      iotlb: { sets: 4, ways: 2, policy: r.pick(["lru", "fifo", "random"] as const) },
    };
    const mem = new PhysicalMemory();
    // Half the rounds have 16 MiB of RAM: tables beyond it are access errors (0x7, 0x8, 0x9, 0x3, 0x23).
    const ram = 16 * 0x100000;
    const reader = r.chance(0.5) ? { read32: (a: number | bigint) => mem.read32(a), canRead: (a: number, n: number) => a + n <= ram } : undefined;
    const u = new VtdUnit({ memory: mem, config, ...(reader !== undefined ? { reader } : {}) });
    const ctx = `round ${round} seed 0x${SEED.toString(16)}`;

    // Well-formed tables as a starting point, then random bytes over some of them.
    const t = new VtdTables(mem, 0x10_0000);
    const d = t.domain(1 + r.int(4), r.pick([3, 4, 5]));
    const sids: number[] = [];
    for (let i = 0; i < 4; i++) {
      const sid = r.int(0x10000);
      sids.push(sid);
      t.attach(sid, d, { tt: r.chance(0.7) ? 0 : r.int(4), fpd: r.chance(0.2), present: r.chance(0.9) });
    }
    const iovas: bigint[] = [];
    for (let i = 0; i < 8; i++) {
      const iova = BigInt(r.int(0x4000)) << 12n;
      iovas.push(iova);
      const out = r.chance(0.1) ? 0xfee0_0000n : r.chance(0.1) ? BigInt(r.u32()) << 20n : BigInt(r.int(0x8000)) << 12n;
      const size = r.pick([4096, 4096, 0x200000]);
      t.map(d, iova, out & ~BigInt(size - 1), { read: r.chance(0.8), write: r.chance(0.8), size });
    }
    // Random bytes over the tables: mostly a few words, sometimes a lot.
    const corrupt = r.chance(0.5) ? r.int(8) : r.int(400);
    const tableBytes = 0x40_000; // the tables built above live in the first 256 KiB from 1 MiB
    for (let i = 0; i < corrupt; i++) mem.write32(0x10_0000 + r.int(tableBytes / 4) * 4, r.chance(0.5) ? r.u32() : (mem.read32(0x10_0000) ^ (1 << r.int(32))) >>> 0);
    // Invalidation descriptors, some valid, some random.
    for (let i = 0; i < 64; i++) {
      const words = r.chance(0.5) ? r.pick([desc.context(r.int(4), r.int(4)), desc.iotlb(r.int(4), r.int(4), r.u32(), r.int(64), r.chance(0.5)), desc.iec(r.chance(0.5), r.int(256), r.int(32)), desc.wait({ sw: r.chance(0.5), iflag: r.chance(0.5), data: r.u32(), addr: r.int(0x20_0000) })]) : [r.u32(), r.u32(), r.u32(), r.u32()];
      for (let k = 0; k < 4; k++) mem.write32(0x30_0000 + i * 16 + k * 4, words[k] ?? 0);
    }
    for (let i = 0; i < 64; i++) mem.write32(0x40_0000 + r.int(0x1000) * 4, r.u32()); // interrupt remapping table

    // Sensible pointers most of the time, random ones otherwise.
    u.mmioWrite(DMAR_RTADDR_REG, 8, r.chance(0.8) ? BigInt(t.root) : (BigInt(r.u32()) << 32n) | BigInt(r.u32()));
    u.mmioWrite(DMAR_IQA_REG, 8, r.chance(0.8) ? 0x30_0000n | BigInt(r.int(2) << 11) : (BigInt(r.u32()) << 32n) | BigInt(r.u32()));
    u.mmioWrite(DMAR_IRTA_REG, 8, r.chance(0.8) ? 0x40_0000n | BigInt(r.int(16)) : (BigInt(r.u32()) << 32n) | BigInt(r.u32()));

    if (r.chance(0.9)) {
      gcmdSet(u, GCMD_SRTP);
      gcmdSet(u, GCMD_TE);
    }
    const decls = declareRegisters(u.config);
    for (let step = 0; step < 200; step++) {
      const what = r.int(10);
      if (what < 2) {
        // Any register, any value, whole or half.
        const dcl = r.pick(decls);
        if (dcl.size === 8 && r.chance(0.5)) u.mmioWrite(dcl.offset, 8, (BigInt(r.u32()) << 32n) | BigInt(r.u32()));
        else u.mmioWrite(dcl.offset + (dcl.size === 8 ? r.int(2) * 4 : 0), 4, r.u32());
      } else if (what === 3) {
        // Any offset, any size, aligned or not.
        u.mmioWrite(r.int(u.mmioSize + 64) - 32, r.pick([1, 2, 4, 8, 3]), r.u32());
        u.mmioRead(r.int(u.mmioSize + 64) - 32, r.pick([1, 2, 4, 8]));
      } else if (what === 4) {
        // A GCMD command the way drivers issue them, or garbage.
        const sts = u.mmioRead(DMAR_GSTS_REG, 4);
        u.mmioWrite(DMAR_GCMD_REG, 4, r.chance(0.7) ? ((sts & 0x96ffffff) ^ (1 << (23 + r.int(9)))) >>> 0 : r.u32());
      } else if (what === 5) {
        u.mmioWrite(0x88, 8, BigInt(r.int(80) << 4)); // IQT
      } else {
        const sid = r.chance(0.8) ? r.pick(sids) : r.int(0x10000);
        const addr = r.chance(0.2)
          ? BigInt(0xfee0_0000 + r.int(0x10_0000))
          : r.chance(0.7)
            ? (r.chance(0.6) ? r.pick(iovas) : BigInt(r.int(0x4000)) << 12n) | BigInt(r.int(4096))
            : (BigInt(r.u32()) << 32n) | BigInt(r.u32());
        const res = u.translate({
          sid,
          addr,
          length: r.pick([0, 1, 4, 8, 4096, 9000]),
          write: r.chance(0.5),
          data: r.u32(),
          at: r.pick(["untranslated", "untranslated", "translation-request", "translated"] as const),
        });
        if (!res.ok) {
          if (res.kind === "dma") {
            assert.ok(DMA_REASONS.has(res.reason), `${ctx}: DMA fault reason 0x${res.reason.toString(16)}`);
            seenReasons.add(res.reason);
          } else if (res.kind === "interrupt") {
            assert.ok(IR_REASONS.has(res.reason), `${ctx}: interrupt fault reason 0x${res.reason.toString(16)}`);
            seenReasons.add(res.reason);
          }
        }
        // The fast path on the same request agrees with itself and never throws either.
        const f = u.translateFast(sid, Number(addr & 0xffffffffn), Number((addr >> 32n) & 0xffffffffn), r.chance(0.5));
        assert.ok(f === 0 || f === -1 || f === -2 || DMA_REASONS.has(f), `${ctx}: translateFast returned ${f}`);
      }
      if (r.chance(0.01)) u.reset();
    }
    // Only spec-defined status: FSTS bits 31:16 and 7 are reserved, GSTS only has command status bits.
    const fsts = u.mmioRead(DMAR_FSTS_REG, 4);
    assert.equal(fsts & 0xffff0080, 0, `${ctx}: FSTS 0x${fsts.toString(16)}`);
    assert.equal(u.mmioRead(DMAR_GSTS_REG, 4) & ~GCMD_COMMAND_MASK, 0, ctx);
    for (let i = 0; i < u.config.faultRecords; i++) {
      const hi = u.mmioRead(frcdOffset(u.config, i) + 8, 8);
      if (hi >> 63n === 1n) {
        const reason = Number((hi >> 32n) & 0xffn);
        assert.ok(DMA_REASONS.has(reason) || IR_REASONS.has(reason), `${ctx}: recorded reason 0x${reason.toString(16)}`);
      }
    }
  }
  if (process.env.FUZZ_VERBOSE === "1") console.log([...seenReasons].sort((a, b) => a - b).map((x) => x.toString(16)).join(","));
  // The run exercised a good spread of fault reasons (guards against a fuzzer that tests nothing).
  assert.ok(seenReasons.size >= 12, `only saw reasons ${[...seenReasons].map((x) => x.toString(16)).join(",")}`);
});

const SM_REASONS = new Set([0x30, 0x31, 0x38, 0x39, 0x3a, 0x40, 0x41, 0x42, 0x44, 0x45, 0x46, 0x50, 0x51, 0x52, 0x58, 0x59, 0x5b, 0x5d, 0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x7a, 0x7b, 0x80, 0x81, 0x83, 0x85, 0x86, 0x87]);

test("7.1.3 never throws in scalable mode: random scalable-mode root/context entries, PASID directories, PASID entries, first-stage and nested tables, PASID-granular descriptors", () => {
  const r = rng(SEED + 1);
  const seen = new Set<number>();
  for (let round = 0; round < ROUNDS / 2; round++) {
    const fs = r.chance(0.8);
    const config: Partial<VtdConfig> = {
      awBits: r.pick([39, 48, 57] as const),
      scalableMode: true,
      firstStage: fs,
      nested: fs && r.chance(0.7),
      pasidBits: r.pick([0, 8, 20]),
      firstStage1G: r.chance(0.5),
      firstStage5Level: r.chance(0.5),
      faultRecords: 1 + r.int(8),
      deviceTlb: r.chance(0.3),
      largePages: r.int(4),
    };
    const mem = new PhysicalMemory();
    const ram = 16 * 0x100000;
    const reader = r.chance(0.5) ? { read32: (a: number | bigint) => mem.read32(a), canRead: (a: number, n: number) => a + n <= ram } : undefined;
    const u = new VtdUnit({ memory: mem, config, ...(reader !== undefined ? { reader } : {}) });
    const ctx = `scalable round ${round} seed 0x${(SEED + 1).toString(16)}`;
    const t = new ScalableTables(mem, 0x10_0000);
    const d = t.domain(1 + r.int(4), r.pick([3, 4, 5]));
    const space = t.firstStageSpace(r.int(2));
    const sids: number[] = [];
    const pasids: number[] = [];
    for (let i = 0; i < 3; i++) {
      const sid = r.int(0x10000);
      sids.push(sid);
      const dir = t.attach(sid, { pdts: r.int(8), ridPasid: r.int(4), paside: r.chance(0.8), fpd: r.chance(0.1), present: r.chance(0.9) });
      for (let k = 0; k < 3; k++) {
        const pasid = r.chance(0.5) ? r.int(4) : r.int(0x100000);
        pasids.push(pasid);
        if (pasidDirIndex(pasid) >= 2 ** 14) continue;
        t.setPasid(dir, pasid, {
          ...t.secondStage(d),
          pgtt: r.int(8),
          fsptptr: r.chance(0.9) ? space.top : r.u32() << 12,
          fspm: r.int(4),
          sre: r.chance(0.5),
          wpe: r.chance(0.5),
          fpd: r.chance(0.1),
          present: r.chance(0.9),
        });
      }
    }
    const iovas: bigint[] = [];
    for (let i = 0; i < 8; i++) {
      const iova = BigInt(r.int(0x4000)) << 12n;
      iovas.push(iova);
      const out = r.chance(0.1) ? 0xfee0_0000n : BigInt(r.int(0x8000)) << 12n;
      const size = r.pick([4096, 4096, 0x200000, 0x4000_0000]);
      t.sl.map(d, iova, out & ~BigInt(size - 1), { read: r.chance(0.8), write: r.chance(0.8), size: size === 0x4000_0000 ? 4096 : size });
      t.mapFirstStage(space, iova, out & ~BigInt(size - 1), { write: r.chance(0.8), user: r.chance(0.8), size, extraLo: r.chance(0.1) ? 1 << r.int(12) : 0 });
      t.sl.map(d, BigInt(space.top), BigInt(space.top)); // the first-stage top table, identity-mapped for nesting
    }
    const corrupt = r.chance(0.5) ? r.int(8) : r.int(400);
    for (let i = 0; i < corrupt; i++) mem.write32(0x10_0000 + r.int(0x80_000 / 4) * 4, r.chance(0.5) ? r.u32() : (mem.read32(0x10_0000) ^ (1 << r.int(32))) >>> 0);
    for (let i = 0; i < 64; i++) {
      const g = r.int(4);
      const words = r.chance(0.6)
        ? r.pick([encodePasidCacheDesc({ g, did: r.int(4), pasid: r.pick(pasids) }), encodePasidIotlbDesc({ g, did: r.int(4), pasid: r.pick(pasids), addr: r.pick(iovas), am: r.int(20), ih: r.chance(0.5) }), encodePasidDeviceTlbDesc({ sid: r.pick(sids), pasid: r.pick(pasids), addr: r.pick(iovas), global: r.chance(0.5) }), desc.context(r.int(4), r.int(4), r.pick(sids)), desc.iotlb(r.int(4), r.int(4))])
        : [r.u32(), r.u32(), r.u32(), r.u32()];
      for (let k = 0; k < 8; k++) mem.write32(0x30_0000 + i * 32 + k * 4, k < 4 ? (words[k] ?? 0) : r.chance(0.05) ? r.u32() : 0);
    }
    u.mmioWrite(DMAR_RTADDR_REG, 8, r.chance(0.8) ? BigInt(t.root) | BigInt(r.chance(0.9) ? 1 << 10 : r.int(4) << 10) : (BigInt(r.u32()) << 32n) | BigInt(r.u32()));
    u.mmioWrite(DMAR_IQA_REG, 8, 0x30_0000n | (1n << 11n));
    gcmdSet(u, GCMD_QIE);
    if (r.chance(0.95)) {
      gcmdSet(u, GCMD_SRTP);
      gcmdSet(u, GCMD_TE);
    }
    for (let step = 0; step < 150; step++) {
      if (r.chance(0.1)) u.mmioWrite(0x88, 8, BigInt(r.int(64) << 5)); // IQT
      const sid = r.chance(0.8) ? r.pick(sids) : r.int(0x10000);
      const hiBits = r.chance(0.1) ? (BigInt(r.u32()) << 32n) : r.chance(0.1) ? 0xffff_8000_0000_0000n : 0n;
      const addr = hiBits | (r.chance(0.7) ? r.pick(iovas) | BigInt(r.int(4096)) : BigInt(r.u32()));
      const res = u.translate({ sid, addr, length: r.pick([1, 8, 4096, 9000]), write: r.chance(0.5), data: r.u32(), at: r.pick(["untranslated", "untranslated", "translation-request", "translated"] as const), ...(r.chance(0.6) ? { pasid: r.pick(pasids), privileged: r.chance(0.3) } : {}) });
      if (!res.ok && res.kind === "dma") {
        // TTM 00 (some rounds write it) puts the unit in legacy mode: legacy reasons are spec faults then.
        assert.ok(SM_REASONS.has(res.reason) || DMA_REASONS.has(res.reason), `${ctx}: DMA fault reason 0x${res.reason.toString(16)}`);
        seen.add(res.reason);
      }
      if (r.chance(0.005)) u.reset();
    }
    const fsts = u.mmioRead(DMAR_FSTS_REG, 4);
    assert.equal(fsts & 0xffff0080, 0, `${ctx}: FSTS 0x${fsts.toString(16)}`);
  }
  if (process.env.FUZZ_VERBOSE === "1") console.log([...seen].sort((a, b) => a - b).map((x) => x.toString(16)).join(","));
  assert.ok(seen.size >= 20, `only saw reasons ${[...seen].map((x) => x.toString(16)).join(",")}`);
});
