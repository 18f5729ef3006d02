import assert from "node:assert/strict";
import { test } from "node:test";
import { isCanonical, firstStageReserved, fsLevels } from "./first-stage.js";
import { faultReasonName, isQualifiedFault } from "./faults.js";
import {
  decodePasidDirEntry,
  decodePasidEntry,
  decodeSmContextEntry,
  decodeSmRootEntry,
  encodePasidDirEntry,
  encodePasidEntry,
  encodeSmContextEntry,
  encodeSmRootEntry,
  pasidLimit,
  PGTT_NESTED,
  smContextEntryOffset,
  smUsesUpperTable,
} from "./scalable.js";

test("scalable-mode root, context, PASID directory and PASID entries round-trip through encode/decode (9.2, 9.4–9.6)", () => {
  const root = { lowerPresent: true, lowerTable: 0x1234000, upperPresent: true, upperTable: 0xabcdef000 };
  assert.deepEqual(decodeSmRootEntry(encodeSmRootEntry(root)), root);
  const ctx = { present: true, fpd: false, dte: true, paside: true, pre: false, pdts: 5, pasidDir: 0x7fff0000, ridPasid: 0xfffff, ridPriv: true };
  assert.deepEqual(decodeSmContextEntry(encodeSmContextEntry(ctx)), ctx);
  assert.deepEqual(decodePasidDirEntry(encodePasidDirEntry({ present: true, fpd: true, table: 0x5000 })), { present: true, fpd: true, table: 0x5000 });
  const pe = {
    present: true, fpd: false, aw: 2, pgtt: PGTT_NESTED, ssade: false, ssptptr: 0x123456000, did: 0xbeef, pwsnp: true, pgsnp: false,
    sre: true, ere: false, fspm: 1, wpe: true, nxe: false, smep: false, eafe: true, fsptptr: 0xfedcba000,
  };
  assert.deepEqual(decodePasidEntry(encodePasidEntry(pe)), pe);
  assert.equal(encodePasidEntry(pe).length, 16);
});

test("devfn 128–255 use the upper context table, 32 bytes per entry; PDTS sizes the PASID space", () => {
  assert.equal(smUsesUpperTable(0x7f), false);
  assert.equal(smUsesUpperTable(0x80), true);
  assert.equal(smContextEntryOffset(0x81), 32);
  assert.equal(pasidLimit(0), 128 * 64);
  assert.equal(pasidLimit(7), 2 ** 20);
});

test("canonical addresses for 4- and 5-level first-stage paging (3.6.1)", () => {
  assert.equal(isCanonical(0x00007fff, 4), true);
  assert.equal(isCanonical(0xffff8000 | 0, 4), true);
  assert.equal(isCanonical(0x00008000, 4), false);
  assert.equal(isCanonical(0x00008000, 5), true);
  assert.equal(isCanonical(0x01000000, 5), false);
  assert.equal(fsLevels(0), 4);
  assert.equal(fsLevels(1), 5);
  const r = firstStageReserved(48, false);
  assert.notEqual(r.rsvdLo[3], 0, "PS at level 3 is reserved without FS1GP");
  assert.equal(firstStageReserved(48, true).rsvdLo[3], 0);
});

test("scalable-mode fault reasons have names and the root-level ones are not qualified (7.1.3)", () => {
  assert.equal(faultReasonName(0x58), "SM_PASID_TABLE_INV");
  assert.equal(faultReasonName(0x85), "SM_WRITE");
  assert.equal(isQualifiedFault(0x39), false);
  assert.equal(isQualifiedFault(0x59), true);
  assert.equal(isQualifiedFault(0x42), false);
});
