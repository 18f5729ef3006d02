import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import * as u from "./u64.js";

const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const u64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
const M64 = 2n ** 64n - 1n;

test("property: toBig/loOf/hiOf round-trip", () => {
  fc.assert(fc.property(u64, (v) => u.toBig(u.loOf(v), u.hiOf(v)) === v));
});

test("property: bits() equals the bigint reference for every field", () => {
  fc.assert(
    fc.property(u64, fc.integer({ min: 0, max: 63 }), fc.integer({ min: 1, max: 32 }), (v, lsb, width) => {
      fc.pre(lsb + width <= 64);
      const ref = Number((v >> BigInt(lsb)) & ((1n << BigInt(width)) - 1n));
      assert.equal(u.bits(u.loOf(v), u.hiOf(v), lsb, width), ref);
    }),
    { numRuns: 2000 },
  );
});

test("property: bit()", () => {
  fc.assert(
    fc.property(u64, fc.integer({ min: 0, max: 63 }), (v, n) => u.bit(u.loOf(v), u.hiOf(v), n) === (((v >> BigInt(n)) & 1n) === 1n)),
  );
});

test("property: add64/shr64/shl64/cmp64 agree with bigint", () => {
  const out = new u.U64();
  fc.assert(
    fc.property(u64, u64, fc.integer({ min: 0, max: 63 }), (a, b, n) => {
      const [al, ah, bl, bh] = [u.loOf(a), u.hiOf(a), u.loOf(b), u.hiOf(b)];
      assert.equal(u.add64(out, al, ah, bl, bh).big(), (a + b) & M64);
      assert.equal(u.shr64(out, al, ah, n).big(), a >> BigInt(n));
      assert.equal(u.shl64(out, al, ah, n).big(), (a << BigInt(n)) & M64);
      assert.equal(u.cmp64(al, ah, bl, bh), a < b ? -1 : a > b ? 1 : 0);
    }),
    { numRuns: 2000 },
  );
});

test("property: number halves", () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (n) => {
      assert.equal(u.toNum(u.loOfNum(n), u.hiOfNum(n)), n);
      assert.equal(u.toBig(u.loOfNum(n), u.hiOfNum(n)), BigInt(n));
    }),
  );
  fc.assert(
    fc.property(u32, fc.integer({ min: 0, max: 2 ** 21 - 1 }), (lo, hi) => u.toNum(lo, hi) === Number(u.toBig(lo, hi))),
  );
});

test("property: withBitsBig/bitsBig", () => {
  fc.assert(
    fc.property(u64, fc.integer({ min: 0, max: 63 }), fc.integer({ min: 1, max: 64 }), u64, (v, lsb, width, f) => {
      fc.pre(lsb + width <= 64);
      const r = u.withBitsBig(v, lsb, width, f);
      assert.equal(u.bitsBig(r, lsb, width), f & ((1n << BigInt(width)) - 1n));
      const mask = ((1n << BigInt(width)) - 1n) << BigInt(lsb);
      assert.equal(r & ~mask, v & ~mask);
    }),
  );
});
