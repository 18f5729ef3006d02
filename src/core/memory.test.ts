import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { PhysicalMemory } from "./memory.js";

test("untouched memory reads as zero and allocates nothing", () => {
  const m = new PhysicalMemory();
  assert.equal(m.read32(0x1234_5678), 0);
  assert.equal(m.read64(2n ** 57n - 8n), 0n);
  assert.deepEqual([...m.read(0xfff, 4)], [0, 0, 0, 0]);
  assert.equal(m.backedPages, 0);
});

test("little-endian accessors", () => {
  const m = new PhysicalMemory();
  m.write32(0x1000, 0x11223344);
  assert.deepEqual([...m.read(0x1000, 4)], [0x44, 0x33, 0x22, 0x11]);
  m.write64(0x2000, 0x0102030405060708n);
  assert.equal(m.read32(0x2000), 0x05060708);
  assert.equal(m.read32(0x2004), 0x01020304);
  assert.equal(m.read16(0x2006), 0x0102);
});

test("addresses up to 2^57, as number or bigint", () => {
  const m = new PhysicalMemory();
  const top = 2n ** 57n - 4096n;
  m.write32(top, 0xdeadbeef);
  assert.equal(m.read32(top), 0xdeadbeef);
  assert.throws(() => m.read32(2n ** 57n), RangeError);
  assert.throws(() => m.write8(-1, 0), RangeError);
});

test("property: accessors read what was written, across page boundaries", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          addr: fc.integer({ min: 0, max: 3 * 4096 + 64 }).map((a) => a + 0x7fff_f000),
          data: fc.uint8Array({ minLength: 1, maxLength: 9000 }),
        }),
        { minLength: 1, maxLength: 8 },
      ),
      (writes) => {
        const m = new PhysicalMemory();
        const ref = new Map<number, number>();
        for (const w of writes) {
          m.write(w.addr, w.data);
          w.data.forEach((b, i) => ref.set(w.addr + i, b));
        }
        const lo = 0x7fff_f000 - 16;
        const all = m.read(lo, 4 * 4096 + 9200);
        for (let i = 0; i < all.length; i++) assert.equal(all[i], ref.get(lo + i) ?? 0);
        // Word accessors agree with the byte view, including at page-straddling offsets.
        for (let a = lo; a < lo + all.length - 8; a += 1021) {
          const b = (i: number) => ref.get(a + i) ?? 0;
          assert.equal(m.read32(a), (b(0) | (b(1) << 8) | (b(2) << 16) | (b(3) << 24)) >>> 0);
          assert.equal(m.read16(a), b(0) | (b(1) << 8));
        }
      },
    ),
    { numRuns: 60 },
  );
});

test("property: 32/16-bit writes straddling pages round-trip", () => {
  fc.assert(
    fc.property(fc.integer({ min: 4090, max: 4100 }), fc.integer({ min: 0, max: 0xffff_ffff }), (addr, v) => {
      const m = new PhysicalMemory();
      m.write32(addr, v);
      assert.equal(m.read32(addr), v);
      m.write16(addr + 1, v & 0xffff);
      assert.equal(m.read16(addr + 1), v & 0xffff);
    }),
  );
});

test("fill and readInto", () => {
  const m = new PhysicalMemory();
  m.fill(4000, 200, 0xab);
  const out = new Uint8Array(210);
  m.readInto(3995, out);
  assert.equal(out[4], 0);
  assert.equal(out[5], 0xab);
  assert.equal(out[204], 0xab);
  assert.equal(out[205], 0);
  assert.equal(m.backedPages, 2);
});
