import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeFaultRecord } from "./faults.js";

test("10.4.14 fault record: the interrupt index (FI 63:48) is exact at the top of the 64-bit field", () => {
  // the dwords 0xffff_ffff_ffff_ffff: a double cannot hold it, and (hi * 2^32 + lo) / 2^48 rounds up to 0x10000.
  const f = decodeFaultRecord(0xffff_ffff, 0xffff_ffff, 0x0000_0010, (0x8000_0000 | 0x22) >>> 0);
  assert.equal(f.interruptIndex, 0xffff);
  assert.equal(Math.floor((0xffff_ffff * 2 ** 32 + 0xffff_ffff) / 2 ** 48), 0x10000);
  assert.equal(f.fault, true);
  assert.equal(f.reason, 0x22);
  assert.equal(f.sourceId, 0x10);
  assert.equal(f.read, false);
  assert.equal(decodeFaultRecord(0x1234_5fff, 0x7, 0, 0x4000_0005).fiLo, 0x1234_5000);
  assert.equal(decodeFaultRecord(0, 0, 0, 0x4000_0005).read, true);
});
