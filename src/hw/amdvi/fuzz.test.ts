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
const op = fc.oneof(
  fc.record({ kind: fc.constant("dma" as const), devid: fc.integer({ min: 0, max: 0x1_0001 }), lo: u32, hi: u32, write: fc.boolean() }),
  fc.record({ kind: fc.constant("msi" as const), devid: fc.integer({ min: 0, max: 0xffff }), lo: u32, hi: u32, write: fc.boolean() }),
  fc.record({ kind: fc.constant("atr" as const), devid: fc.integer({ min: 0, max: 0xffff }), lo: u32, hi: u32, write: fc.boolean() }),
);

test("never throws: random register writes, DTEs, page tables and command buffers give only spec events", () => {
  const seen = new Set<number>();
  fc.assert(
    fc.property(fc.array(regWrite, { maxLength: 12 }), fc.array(blob, { maxLength: 12 }), fc.array(op, { maxLength: 40 }), fc.boolean(), (writes, blobs, ops, ramLimit) => {
      const mem = new PhysicalMemory();
      const unit = new AmdViUnit(mem, { ramSize: ramLimit ? 0x20_0000 : undefined, iotlbSize: 8, dteCacheSize: 4 });
      // Everything lives in the first 256 KiB so random pointers often land on the random bytes.
      for (const b of blobs) b.words.forEach((w, i) => mem.write32(b.page * 4096 + i * 4, w));
      unit.mmioWrite(MMIO_DEV_TABLE_BASE, 8, 0x1ff, 0);
      unit.mmioWrite(MMIO_CMD_BUF_BASE, 8, 0x1_0000, 8 << 24);
      unit.mmioWrite(MMIO_EVENT_LOG_BASE, 8, 0x3_0000, 8 << 24);
      unit.mmioWrite(MMIO_CONTROL, 8, 0x2_1007, 0);
      for (const w of writes) unit.mmioWrite(w.offset, w.size, w.lo, w.hi);
      unit.mmioWrite(MMIO_CMD_TAIL, 8, 0x400, 0);
      for (const o of ops) {
        let code = 0;
        if (o.kind === "dma") code = unit.translateFast(o.devid, o.lo, o.hi, o.write);
        else if (o.kind === "atr") code = unit.translatedRequest(o.devid, o.lo, o.hi, o.write);
        else code = unit.remapMsi(o.devid, (0xfee0_0000 | (o.lo & 0xf_ffff)) >>> 0, o.hi & 0xffff).event;
        if (code !== 0) {
          assert.ok(KNOWN.has(code), `unknown event ${code}`);
          seen.add(code);
        }
      }
    }),
    { numRuns: 300, seed: 0x5eed_a3d1 },
  );
  assert.ok(seen.size >= 2, `the random inputs reached only ${seen.size} kinds of event`);
});
