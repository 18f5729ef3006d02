import assert from "node:assert/strict";
import { test } from "node:test";
import { CAP, ECAP } from "./capability.js";
import { fieldOf, fieldOfBig, withField, type FieldSpec } from "./fields.js";

const all: FieldSpec[] = [...Object.values(CAP), ...Object.values(ECAP)];

test("fieldOf on halves equals fieldOfBig on the bigint for every CAP/ECAP field", () => {
  let seed = 12345;
  const rnd = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
  for (let i = 0; i < 500; i++) {
    const lo = rnd();
    const hi = rnd();
    const raw = (BigInt(hi) << 32n) | BigInt(lo);
    for (const s of all) assert.equal(fieldOf(lo, hi, s), fieldOfBig(raw, s), `${s.name} at ${raw.toString(16)}`);
  }
});

test("FRO (bits 33:24) straddles the halves", () => {
  const raw = withField(0n, CAP.FRO, 0x3ff);
  assert.equal(raw, 0x3ffn << 24n);
  assert.equal(fieldOf(Number(raw & 0xffffffffn), Number(raw >> 32n), CAP.FRO), 0x3ff);
});

test("no two fields of a register overlap, and each lies within 64 bits", () => {
  for (const reg of [CAP, ECAP]) {
    let used = 0n;
    for (const s of Object.values(reg)) {
      const m = ((1n << BigInt(s.width)) - 1n) << BigInt(s.lsb);
      assert.equal(used & m, 0n, s.name);
      assert.ok(s.lsb + s.width <= 64, s.name);
      used |= m;
    }
  }
});
