import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { PhysicalMemory } from "../../core/memory.js";
import { EVENT_NAMES } from "../../spec/amdvi/events.js";
import { MMIO_CMD_BUF_BASE, MMIO_CMD_TAIL, MMIO_CONTROL, MMIO_DEV_TABLE_BASE, MMIO_EVENT_LOG_BASE } from "../../spec/amdvi/registers.js";
import { AmdViUnit } from "./unit.js";

const OFFSETS = [0x0, 0x8, 0x10, 0x18, 0x20, 0x28, 0x30, 0x38, 0x2000, 0x2008, 0x2010, 0x2018, 0x2020, 0x2030, 0x2038, 0x1c, 0x3ffc, 0x4000, -4, 3];
const KNOWN = new Set(Object.keys(EVENT_NAMES).map(Number));

const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const regWrite = fc.record({ offset: fc.constantFrom(...OFFSETS), size: fc.constantFrom(1, 4, 8), lo: u32, hi: u32 });
const blob = fc.record({ page: fc.integer({ min: 0, max: 63 }), words: fc.array(u32, { minLength: 1, maxLength: 64 }) });
/** Well-formed-looking DTEs and page-table entries pointing into the same 64 pages, so walks go deep. */
const dte = fc.record({ page: fc.integer({ min: 0, max: 63 }), mode: fc.integer({ min: 0, max: 7 }), root: fc.integer({ min: 0, max: 64 }), hi: u32 });
const pte = fc.record({ page: fc.integer({ min: 0, max: 63 }), idx: fc.integer({ min: 0, max: 3 }), next: fc.integer({ min: 0, max: 7 }), target: fc.integer({ min: 0, max: 64 }), hi: u32, pr: fc.boolean() });
/** Device ids whose DTE sits at the start of a random page, or anywhere. */
const devid = fc.oneof(fc.integer({ min: 0, max: 63 }).map((p) => p * 128), fc.integer({ min: 0, max: 0x1_0001 }));
const smallIova = fc.integer({ min: 0, max: 0x3fff });
const op = fc.oneof(
  fc.record({ kind: fc.constant("dma" as const), devid, lo: smallIova, hi: fc.constant(0), write: fc.boolean() }),
  fc.record({ kind: fc.constant("dma" as const), devid, lo: u32, hi: u32, write: fc.boolean() }),
  fc.record({ kind: fc.constant("msi" as const), devid, lo: u32, hi: u32, write: fc.boolean() }),
  fc.record({ kind: fc.constant("atr" as const), devid, lo: u32, hi: u32, write: fc.boolean() }),
);

test("never throws: random register writes, DTEs, page tables and command buffers give only spec events", () => {
  const seen = new Set<number>();
  fc.assert(
    fc.property(fc.array(regWrite, { maxLength: 12 }), fc.array(blob, { maxLength: 12 }), fc.array(dte, { maxLength: 8 }), fc.array(pte, { maxLength: 24 }), fc.array(op, { maxLength: 40 }), fc.boolean(), (writes, blobs, dtes, ptes, ops, ramLimit) => {
      const mem = new PhysicalMemory();
      const unit = new AmdViUnit(mem, { ramSize: ramLimit ? 0x20_0000 : undefined, iotlbSize: 8, dteCacheSize: 4 });
      // Everything lives in the first 256 KiB so random pointers often land on the random bytes.
      for (const b of blobs) b.words.forEach((w, i) => mem.write32(b.page * 4096 + i * 4, w));
      for (const d of dtes) {
        mem.write32(d.page * 4096, (3 | (d.mode << 9) | (d.root << 12)) >>> 0);
        mem.write32(d.page * 4096 + 4, d.hi & (d.hi & 1 ? 0xffff_ffff : 0xf000_0000));
      }
      for (const e of ptes) {
        const a = e.page * 4096 + e.idx * 8;
        mem.write32(a, ((e.pr ? 1 : 0) | (e.next << 9) | (e.target << 12)) >>> 0);
        mem.write32(a + 4, e.hi & (e.hi & 1 ? 0xffff_ffff : 0x6000_0000));
      }
      unit.mmioWrite(MMIO_DEV_TABLE_BASE, 8, 0x1ff, 0);
      unit.mmioWrite(MMIO_CMD_BUF_BASE, 8, 0x1_0000, 8 << 24);
      unit.mmioWrite(MMIO_EVENT_LOG_BASE, 8, 0x3_0000, 8 << 24);
      unit.mmioWrite(MMIO_CONTROL, 8, 0x2_1007, 0);
      for (const w of writes) unit.mmioWrite(w.offset, w.size, w.lo, w.hi);
      unit.mmioWrite(MMIO_CMD_TAIL, 8, 0x400, 0);
      for (const o of ops) {
        const code =
          o.kind === "dma"
            ? unit.translateFast(o.devid, o.lo, o.hi, o.write)
            : o.kind === "atr"
              ? unit.translatedRequest(o.devid, o.lo, o.hi, o.write)
              : unit.remapMsi(o.devid, (0xfee0_0000 | (o.lo & 0xf_ffff)) >>> 0, o.hi & 0xffff).event;
        if (code !== 0) {
          assert.ok(KNOWN.has(code), `unknown event ${code}`);
          seen.add(code);
        }
      }
    }),
    { numRuns: 300, seed: 0x5eed_a3d1 },
  );
  assert.ok(seen.size >= 5, `the random inputs reached only ${seen.size} kinds of event`);
});
