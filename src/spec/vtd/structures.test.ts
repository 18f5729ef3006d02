/**
 * The encoders and decoders of spec/vtd against each other: what an encoder writes, the matching decoder reads
 * back, field by field; no field overlaps another in its structure; and the fields of a structure plus its
 * reserved bits cover every bit exactly once.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { CAP, decodeCap, decodeEcap, ECAP, encodeCap, encodeEcap } from "./capability.js";
import { CONTEXT_ENTRY, decodeContextEntry, decodeRootEntry, encodeContextEntry, encodeRootEntry, ROOT_ENTRY } from "./context.js";
import { decodeFaultRecord, encodeFaultRecord, FRCD } from "./faults.js";
import { fieldOfBig, uncoveredWords, wordsField, type FieldSpec } from "./fields.js";
import { IRTE, POSTED_IRTE } from "./intremap.js";
import * as inv from "./invalidation.js";
import { SL_ENTRY } from "./paging.js";
import { CCMD, GCMD, GSTS, IOTLB, IQA, IRTA, IVA, RTADDR } from "./registers.js";

let seed = 0x1234;
const rnd = (bits: number): number => {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return bits >= 32 ? seed : seed % 2 ** bits;
};

function noOverlap(name: string, fields: Readonly<Record<string, FieldSpec>>, bits: number): void {
  const seen = new Set<number>();
  for (const [k, s] of Object.entries(fields)) {
    assert.ok(s.lsb + s.width <= bits, `${name}.${k} goes beyond ${bits} bits`);
    for (let b = s.lsb; b < s.lsb + s.width; b++) {
      assert.ok(!seen.has(b), `${name}.${k} overlaps another field at bit ${b}`);
      seen.add(b);
    }
  }
}

test("no two fields of a register, entry or descriptor overlap", () => {
  for (const [n, r] of Object.entries({ CAP, ECAP, GCMD, GSTS, RTADDR, CCMD, IOTLB, IVA, IQA, IRTA })) noOverlap(n, r, 64);
  for (const [n, r] of Object.entries({ FRCD, ROOT_ENTRY, CONTEXT_ENTRY, IRTE, POSTED_IRTE })) noOverlap(n, r, 128);
  noOverlap("SL_ENTRY", SL_ENTRY, 64);
  for (const [n, r] of Object.entries({ CC: inv.CC_DESC, IOTLB: inv.IOTLB_DESC, DEVTLB: inv.DEVTLB_DESC, IEC: inv.IEC_DESC, WAIT: inv.WAIT_DESC })) noOverlap(n, r, 128);
});

test("descriptor reserved bits are exactly the bits no field covers", () => {
  const pairs: [Readonly<Record<string, FieldSpec>>, readonly number[]][] = [
    [inv.CC_DESC, inv.CC_DESC_RSVD],
    [inv.IOTLB_DESC, inv.IOTLB_DESC_RSVD],
    [inv.DEVTLB_DESC, inv.DEVTLB_DESC_RSVD],
    [inv.IEC_DESC, inv.IEC_DESC_RSVD],
    [inv.WAIT_DESC, inv.WAIT_DESC_RSVD],
  ];
  for (const [fields, rsvd] of pairs) {
    const all = uncoveredWords(128, fields);
    assert.deepEqual([...rsvd], all);
  }
});

test("CAP and ECAP: encodeCap/encodeEcap and decodeCap/decodeEcap are inverse, field by field", () => {
  for (let i = 0; i < 200; i++) {
    const cap = Object.fromEntries(Object.entries(CAP).map(([k, s]) => [k, rnd(s.width)])) as Record<keyof typeof CAP, number>;
    assert.deepEqual(decodeCap(encodeCap(cap)), cap);
    const ecap = Object.fromEntries(Object.entries(ECAP).map(([k, s]) => [k, rnd(s.width)])) as Record<keyof typeof ECAP, number>;
    assert.deepEqual(decodeEcap(encodeEcap(ecap)), ecap);
  }
  // QEMU 7.2's `-device intel-iommu,intremap=on,caching-mode=on` reports CAP 0x00d2008c22260286.
  const qemu = decodeCap(0x00d2008c22260286n);
  assert.deepEqual([qemu.ND, qemu.CM, qemu.SAGAW, qemu.MGAW, qemu.FRO, qemu.SLLPS, qemu.PSI, qemu.NFR, qemu.MAMV, qemu.DWD, qemu.DRD], [6, 1, 2, 38, 0x22, 3, 1, 0, 18, 1, 1]);
  assert.equal(fieldOfBig(0xf00f4an, ECAP.IRO), 0xf);
});

test("root and context entries: encode then decode gives the fields back", () => {
  for (let i = 0; i < 200; i++) {
    const root = { present: rnd(1) === 1, contextTable: rnd(20) * 4096 + rnd(20) * 2 ** 32 };
    assert.deepEqual(decodeRootEntry(encodeRootEntry(root)), root);
    const ctx = { present: rnd(1) === 1, fpd: rnd(1) === 1, tt: rnd(2), pageTable: rnd(20) * 4096 + rnd(16) * 2 ** 32, aw: rnd(3), did: rnd(16) };
    assert.deepEqual(decodeContextEntry(encodeContextEntry(ctx)), ctx);
  }
});

test("fault records: encodeFaultRecord then decodeFaultRecord", () => {
  for (let i = 0; i < 200; i++) {
    const r = { reason: rnd(8), sourceId: rnd(16), read: rnd(1) === 1, translationRequest: rnd(1) === 1, at: rnd(2), addrLo: rnd(32), addrHi: rnd(32) };
    const [w0, w1, w2, w3] = encodeFaultRecord(r);
    const d = decodeFaultRecord(w0, w1, w2, w3);
    assert.deepEqual(
      [d.fault, d.reason, d.sourceId, d.read, d.translationRequest, d.at, d.fiLo, d.fiHi],
      [true, r.reason, r.sourceId, r.read, r.translationRequest, r.at, (r.addrLo & 0xfffff000) >>> 0, r.addrHi],
    );
    const ir = encodeFaultRecord({ ...r, addrLo: 0, addrHi: 0, interruptIndex: rnd(16) });
    assert.equal(decodeFaultRecord(...ir).interruptIndex, wordsField(ir, { name: "", lsb: 48, width: 16, section: "" }));
  }
});

test("invalidation descriptors: each encoder's fields come back from its decoder, with no reserved bit set", () => {
  for (let i = 0; i < 200; i++) {
    const cc = { g: 1 + (rnd(8) % 3), did: rnd(16), sid: rnd(16), fm: rnd(2) };
    assert.deepEqual(inv.decodeContextCacheDesc(inv.encodeContextCacheDesc(cc)), { ...cc, reserved: false });
    const addr = rnd(20) * 4096 + rnd(20) * 2 ** 32;
    const io = inv.decodeIotlbDesc(inv.encodeIotlbDesc({ g: 3, did: cc.did, addr, am: rnd(6), ih: true, dr: true, dw: false }));
    assert.equal(io.addrHi * 2 ** 32 + io.addrLo, addr);
    assert.equal(io.reserved, false);
    const dev = inv.decodeDeviceTlbDesc(inv.encodeDeviceTlbDesc({ sid: cc.sid, addr, size: true, pfsid: rnd(16), mip: rnd(5) }));
    assert.deepEqual([dev.sid, dev.size, dev.addrHi * 2 ** 32 + dev.addrLo, dev.reserved], [cc.sid, true, addr, false]);
    const iec = { global: rnd(1) === 1, index: rnd(16), im: rnd(5) };
    assert.deepEqual(inv.decodeIecDesc(inv.encodeIecDesc(iec)), { ...iec, reserved: false });
    const status = rnd(20) * 4 + rnd(18) * 2 ** 32;
    const w = inv.decodeWaitDesc(inv.encodeWaitDesc({ sw: true, iflag: true, fence: true, data: rnd(32), addr: status }));
    assert.deepEqual([w.sw, w.iflag, w.fence, w.drain, w.addrHi * 2 ** 32 + w.addrLo, w.reserved], [true, true, true, false, status, false]);
  }
  assert.equal(inv.descriptorType(inv.encodeIotlbDesc({ g: 1 })[0]), inv.INV_DESC_IOTLB);
});
