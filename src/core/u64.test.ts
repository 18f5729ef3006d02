import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import * as u from "./u64.js";

const u64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });

test("property: loOf/hiOf split a 64-bit value into its unsigned 32-bit halves", () => {
  fc.assert(
    fc.property(u64, (v) => {
      const [lo, hi] = [u.loOf(v), u.hiOf(v)];
      assert.ok(lo >= 0 && lo <= 0xffff_ffff && hi >= 0 && hi <= 0xffff_ffff);
      assert.equal((BigInt(hi) << 32n) | BigInt(lo), v);
    }),
  );
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
