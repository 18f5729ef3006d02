import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { formatPciAddress, formatBdf, fromRequesterId, parsePciAddress, requesterId } from "./pci.js";
import { IommuError } from "./errors.js";

test("parse and format", () => {
  assert.deepEqual(parsePciAddress("0000:00:1f.3"), { segment: 0, bus: 0, device: 0x1f, fn: 3 });
  assert.deepEqual(parsePciAddress("00:1f.3"), { segment: 0, bus: 0, device: 0x1f, fn: 3 });
  assert.deepEqual(parsePciAddress("10000:00:00.0".slice(1)), { segment: 0, bus: 0, device: 0, fn: 0 });
  assert.equal(formatPciAddress(parsePciAddress("1:2:3.4")), "0001:02:03.4");
  assert.equal(formatBdf({ bus: 0xab, device: 0x1c, fn: 7 }), "ab:1c.7");
});

test("requester id is bus<<8 | dev<<3 | fn", () => {
  assert.equal(requesterId({ bus: 0, device: 0x1f, fn: 3 }), 0xfb);
  assert.equal(requesterId({ bus: 1, device: 0, fn: 0 }), 0x100);
  fc.assert(fc.property(fc.integer({ min: 0, max: 0xffff }), (rid) => requesterId(fromRequesterId(rid)) === rid));
});

test("malformed addresses are BAD_BDF errors", () => {
  for (const bad of ["", "00:20.0", "0:0:0:0.0", "00:1f.8", "zz:00.0", "00:1f"]) {
    assert.throws(() => parsePciAddress(bad), (e: unknown) => e instanceof IommuError && e.code === "BAD_BDF", bad);
  }
});
