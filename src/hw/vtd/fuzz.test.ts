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
  GCMD_SRTP,
  GCMD_TE,
} from "./spec.js";
import { desc, gcmd as gcmdSet, VtdTables } from "./builder.js";
import { VtdUnit } from "./unit.js";
import { seededRandom } from "../../core/random.js";

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
