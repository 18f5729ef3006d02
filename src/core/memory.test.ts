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

test("numbers above 2^53 are refused, bigints are exact up to 2^57", () => {
  const m = new PhysicalMemory();
  const big = 2n ** 53n + 8n; // 2^53 + 8 and 2^53 + 12 share the number 2^53 + 8 … 2^53 + 16 after rounding
  m.write32(big, 0x11111111);
  m.write32(big + 4n, 0x22222222);
  assert.equal(m.read32(big), 0x11111111);
  assert.equal(m.read32(big + 4n), 0x22222222);
  assert.equal(m.read64(big), 0x22222222_11111111n);
  assert.equal(m.read32(big - 2n ** 52n), 0, "no aliasing below 2^53");
  assert.throws(() => m.read32(2 ** 53), RangeError);
  assert.throws(() => m.write32(2 ** 53 + 8, 1), RangeError);
  assert.throws(() => m.read32(2 ** 56), /beyond 2\^53.*bigint/);
  assert.throws(() => m.read32(4.5), RangeError);
  assert.throws(() => m.read32(Number.NaN), RangeError);
  // A read that starts below 2^53 and ends above it crosses exactly.
  const edge = 2n ** 53n - 2n;
  m.write32(edge, 0xa1b2c3d4);
  assert.equal(m.read32(edge), 0xa1b2c3d4);
  assert.equal(m.read16(2n ** 53n), 0xa1b2);
  assert.deepEqual([...m.read(edge, 4)], [0xd4, 0xc3, 0xb2, 0xa1]);
});

test("a page written back to zeros gives its storage back, and reads stay right", () => {
  const m = new PhysicalMemory({ ram: [{ base: 0, size: 2 ** 30 }] });
  m.write32(0x5000, 7);
  m.write32(0x5ffc, 9);
  assert.equal(m.backedPages, 1);
  m.write32(0x5000, 0);
  assert.equal(m.backedPages, 1);
  m.fill(0x5ff0, 16, 0);
  assert.equal(m.backedPages, 0);
  assert.equal(m.pageWords(5), undefined);
  // The storage comes back zeroed for another page.
  m.write8(0x9123, 0x55);
  assert.equal(m.backedPages, 1);
  assert.deepEqual([...m.read(0x9000, 0x1000)].filter((b) => b !== 0), [0x55]);
  assert.equal(m.read32(0x5000), 0);
  assert.equal(m.pageWords(9)?.[0x123 >> 2], (0x55 << 24) >>> 0);
});

test("pages inside the memory map are indexed, others sparse; both read the same", () => {
  const m = new PhysicalMemory({ ram: [{ base: 0, size: 2 ** 31 }, { base: 2 ** 32, size: 2 ** 31 }] });
  m.write32(0x1000, 1);
  m.write32(2 ** 32 + 0x1000, 2);
  assert.equal(m.sparsePages, 0);
  m.write32(0xfed9_0000, 3); // the PCI hole
  m.write32(2n ** 56n, 4);
  assert.equal(m.sparsePages, 2);
  assert.deepEqual([m.read32(0x1000), m.read32(2 ** 32 + 0x1000), m.read32(0xfed9_0000), m.read32(2n ** 56n)], [1, 2, 3, 4]);
  assert.deepEqual(m.backedPageNumbers(), [1, 0xfed90, 2 ** 20 + 1, 2 ** 44]);
  assert.equal(m.pageWords(0xfed90)?.[0], 3);
  assert.throws(() => m.pageWords(-1), RangeError);
  assert.throws(() => m.pageWords(1.5), RangeError);
});

test("property: random writes, including zeroing, read back like a byte map", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          kind: fc.constantFrom("w8", "w16", "w32", "fill", "write"),
          addr: fc.integer({ min: 0, max: 3 * 4096 }),
          v: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff_ffff })),
          n: fc.integer({ min: 1, max: 5000 }),
        }),
        { minLength: 1, maxLength: 40 },
      ),
      (ops) => {
        const m = new PhysicalMemory({ ram: [{ base: 0, size: 2 * 4096 }] }); // the third page is sparse
        const ref = new Uint8Array(4 * 4096 + 5000);
        const put = (a: number, bytes: number[]) => bytes.forEach((b, i) => (ref[a + i] = b));
        for (const o of ops) {
          const le = (k: number) => Array.from({ length: k }, (_, i) => Math.floor(o.v / 256 ** i) & 0xff);
          if (o.kind === "w8") {
            m.write8(o.addr, o.v);
            put(o.addr, le(1));
          } else if (o.kind === "w16") {
            m.write16(o.addr, o.v);
            put(o.addr, le(2));
          } else if (o.kind === "w32") {
            m.write32(o.addr, o.v);
            put(o.addr, le(4));
          } else if (o.kind === "fill") {
            m.fill(o.addr, o.n, o.v & 0xff);
            put(o.addr, new Array<number>(o.n).fill(o.v & 0xff));
          } else {
            const data = Uint8Array.from({ length: o.n }, (_, i) => (i % 3 === 0 ? o.v & 0xff : 0));
            m.write(o.addr, data);
            put(o.addr, [...data]);
          }
        }
        assert.deepEqual(m.read(0, ref.length), ref);
        let held = 0;
        for (let p = 0; p < ref.length / 4096; p++) if (ref.subarray(p * 4096, (p + 1) * 4096).some((b) => b !== 0)) held++;
        assert.equal(m.backedPages, held);
      },
    ),
    { numRuns: 150 },
  );
});
