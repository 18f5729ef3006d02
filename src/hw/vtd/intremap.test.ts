import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { PhysicalMemory, type PhysAddr, type PhysReader } from "../../core/memory.js";
import {
  decodeIrte,
  encodeIrta,
  encodeIrte,
  encodeRemappableMsi,
  type IrFault,
  type IrteFields,
  InterruptRemapper,
  type InterruptRemapperOptions,
  type RemapResult,
  walkInterrupt,
  writeIrte,
} from "./intremap.js";

const TABLE = 0x10_0000; // 1 MiB: room for 65536 entries

interface Rig {
  mem: PhysicalMemory;
  ir: InterruptRemapper;
  faults: IrFault[];
  put(index: number, f: Partial<IrteFields> & { vector: number; destination: number }): void;
  raw(index: number, w: [number, number, number, number]): void;
}

function rig(opts: { s?: number; eime?: boolean; cfis?: boolean; ire?: boolean; base?: number } & InterruptRemapperOptions = {}): Rig {
  const mem = new PhysicalMemory();
  const faults: IrFault[] = [];
  const ir = new InterruptRemapper(mem, (f) => faults.push(f), opts);
  const base = opts.base ?? TABLE;
  const eime = opts.eime ?? false;
  const irta = encodeIrta(base, opts.s ?? 0xf, eime);
  ir.setTable(irta.lo, irta.hi);
  ir.setEnabled(opts.ire ?? true);
  ir.setCompatibilityAllowed(opts.cfis ?? false);
  return {
    mem,
    ir,
    faults,
    put: (index, f) => writeIrte(mem, base, index, encodeIrte(f, eime)),
    raw: (index, w) => writeIrte(mem, base, index, w),
  };
}

function ok(r: RemapResult) {
  assert.equal(r.ok, true, r.ok ? "" : `blocked: 0x${r.reason.toString(16)} ${r.detail}`);
  if (!r.ok) throw new Error("unreachable");
  return r;
}

function blocked(r: RemapResult, reason: number) {
  assert.equal(r.ok, false, "expected the request to be blocked");
  if (r.ok) throw new Error("unreachable");
  assert.equal(r.reason, reason, `reason 0x${r.reason.toString(16)} (${r.detail}), expected 0x${reason.toString(16)}`);
  return r;
}

const SID = 0x0108; // 01:01.0

test("5.1.2.2 + QEMU 7.2 vtd_ir_remap_msi: 0xfee00030/0x2 becomes 0xfee0100c/0x4030", () => {
  // 0xfee00030: bit 4 = 1 (remappable), bit 3 = 0 (SHV clear, so data 0x2 is not a sub-handle),
  // bits 19:5 = 0x30 >> 5 = 1, bit 2 = 0: interrupt_index = 1.
  const t = rig({ s: 0xf, eime: false });
  t.put(1, { vector: 0x30, destination: 0x01, destinationMode: "logical", redirectionHint: true, triggerMode: "edge", deliveryMode: 0 });
  const r = ok(t.ir.remap(SID, 0xfee00030, 0, 0x2));
  assert.equal(r.remapped, true);
  assert.equal(r.index, 1);
  assert.equal(r.msi.address, 0xfee0100c);
  assert.equal(r.msi.addressHi, 0);
  assert.equal(r.msi.data, 0x4030);
  assert.deepEqual({ ...r.irq }, {
    vector: 0x30,
    destination: 1,
    destinationMode: "logical",
    deliveryMode: 0,
    triggerMode: "edge",
    redirectionHint: true,
  });
  assert.equal(t.faults.length, 0);
});

test("5.1.2.2 output MSI: level trigger, delivery mode and address bits 1:0 carried through", () => {
  const t = rig();
  t.put(9, { vector: 0x41, destination: 0x07, triggerMode: "level", deliveryMode: 1 });
  const m = encodeRemappableMsi(9);
  const r = ok(t.ir.remap(SID, (m.address | 3) >>> 0, 0, 0));
  assert.equal(r.msi.address, 0xfee07003);
  assert.equal(r.msi.data, 0x41 | (1 << 8) | (1 << 14) | (1 << 15));
  assert.equal(r.irq.triggerMode, "level");
  assert.equal(r.irq.destinationMode, "physical");
});

test("5.1.4 IRE clear: every request passes through unchanged", () => {
  const t = rig({ ire: false });
  const r = ok(t.ir.remap(SID, 0xfee0300c, 0, 0x4031));
  assert.equal(r.remapped, false);
  assert.deepEqual({ ...r.msi }, { address: 0xfee0300c, addressHi: 0, data: 0x4031 });
  assert.equal(r.irq.vector, 0x31);
  assert.equal(r.irq.destination, 3);
  assert.equal(r.irq.destinationMode, "logical");
  assert.equal(r.irq.redirectionHint, true);
  // Even a remappable-format request, with no table at all, goes through untouched.
  const r2 = ok(t.ir.remap(SID, 0xfee00010, 0, 0));
  assert.equal(r2.remapped, false);
  assert.equal(r2.msi.address, 0xfee00010);
  assert.equal(t.ir.stats.passedThrough, 2);
  assert.equal(t.faults.length, 0);
});

test("5.1.4.1 fault 0x20: address high half set, address outside 0xFEEx_xxxx, data 31:16 with SHV", () => {
  const t = rig();
  t.put(5, { vector: 0x50, destination: 0 });
  const m = encodeRemappableMsi(5);
  blocked(t.ir.remap(SID, m.address, 1, 0), 0x20);
  blocked(t.ir.remap(SID, 0xfed00010, 0, 0), 0x20);
  const withSub = encodeRemappableMsi(4, 1);
  assert.equal(ok(t.ir.remap(SID, withSub.address, 0, 1)).index, 5);
  const r = blocked(t.ir.remap(SID, withSub.address, 0, 0x0001_0001), 0x20);
  assert.equal(r.reasonName, "IR_REQ_RSVD");
  // Without SHV, data bits 31:16 are ignored.
  assert.equal(ok(t.ir.remap(SID, m.address, 0, 0xffff_0000)).index, 5);
  assert.deepEqual(t.faults.map((f) => f.reason), [0x20, 0x20, 0x20]);
  assert.deepEqual(t.faults[0], { sid: SID, reason: 0x20, index: 5 });
  assert.deepEqual(t.faults[1], { sid: SID, reason: 0x20, index: 0 });
});

test("5.1.2.2 SHV: interrupt_index = handle + sub-handle; without SHV data is not an index", () => {
  const t = rig();
  t.put(7, { vector: 0x77, destination: 1 });
  t.put(4, { vector: 0x44, destination: 1 });
  const m = encodeRemappableMsi(4, 3);
  assert.equal(m.address & 0x8, 0x8);
  const r = ok(t.ir.remap(SID, m.address, 0, 3));
  assert.equal(r.index, 7);
  assert.equal(r.irq.vector, 0x77);
  const plain = encodeRemappableMsi(4);
  const r2 = ok(t.ir.remap(SID, plain.address, 0, 3));
  assert.equal(r2.index, 4);
  assert.equal(r2.irq.vector, 0x44);
});

test("5.1.2.2 handle[15] travels in address bit 2", () => {
  const t = rig({ s: 0xf });
  t.put(0x8001, { vector: 0x81, destination: 2 });
  t.put(0x0001, { vector: 0x01 + 0x20, destination: 2 });
  const m = encodeRemappableMsi(0x8001);
  assert.equal(m.address, 0xfee00034);
  const r = ok(t.ir.remap(SID, m.address, 0, 0));
  assert.equal(r.index, 0x8001);
  assert.equal(r.irq.vector, 0x81);
  assert.equal(ok(t.ir.remap(SID, 0xfee00030, 0, 0)).irq.vector, 0x21);
});

test("5.1.4.1 fault 0x21: index beyond 2^(S+1) entries, including handle + sub-handle past 0xffff", () => {
  const t = rig({ s: 0 }); // two entries
  t.put(1, { vector: 0x31, destination: 0 });
  assert.equal(ok(t.ir.remap(SID, encodeRemappableMsi(1).address, 0, 0)).index, 1);
  const r = blocked(t.ir.remap(SID, encodeRemappableMsi(2).address, 0, 0), 0x21);
  assert.equal(r.index, 2);
  const big = rig({ s: 0xf });
  const m = encodeRemappableMsi(0xffff, 0xffff);
  const r2 = blocked(big.ir.remap(SID, m.address, 0, 0xffff), 0x21);
  assert.equal(r2.index, 0x1fffe);
  assert.deepEqual(big.faults, [{ sid: SID, reason: 0x21, index: 0xfffe }]);
  assert.equal(t.faults.length, 1);
});

test("5.1.4.1 fault 0x22: IRTE not present", () => {
  const t = rig();
  t.put(3, { present: false, vector: 0x33, destination: 1 });
  const r = blocked(t.ir.remap(SID, encodeRemappableMsi(3).address, 0, 0), 0x22);
  assert.equal(r.reasonName, "IR_ENTRY_P");
  assert.equal(r.fpd, undefined);
  assert.deepEqual(t.faults, [{ sid: SID, reason: 0x22, index: 3 }]);
  // Untouched memory is a zero (not present) entry too.
  blocked(t.ir.remap(SID, encodeRemappableMsi(100).address, 0, 0), 0x22);
});

test("5.1.4.1 fault 0x23: IRTE beyond the host address width, or the read failing", () => {
  const top = 2 ** 39 - 4096;
  const t = rig({ base: top, s: 0xf, hostAddressWidth: 39 });
  t.put(255, { vector: 0x40, destination: 1 }); // last entry below 2^39
  assert.equal(ok(t.ir.remap(SID, encodeRemappableMsi(255).address, 0, 0)).irq.vector, 0x40);
  const r = blocked(t.ir.remap(SID, encodeRemappableMsi(256).address, 0, 0), 0x23);
  assert.equal(r.reasonName, "IR_ROOT_INVAL");
  assert.deepEqual(t.faults, [{ sid: SID, reason: 0x23, index: 256 }]);

  // Table base with high bits far beyond any width, and a reader that fails.
  const ir = new InterruptRemapper(new PhysicalMemory(), () => {}, { hostAddressWidth: 48 });
  ir.setTable(0x0000_000f, 0xffff_f000);
  ir.setEnabled(true);
  blocked(ir.remap(SID, encodeRemappableMsi(0).address, 0, 0), 0x23);
  // A reader that says the table is not there (a dump with a hole, RAM that ends): an access error.
  const holed = { read32: (_a: PhysAddr): number => 0, canRead: () => false };
  const ir2 = new InterruptRemapper(holed, () => {});
  ir2.setTable(0x1000 | 0xf, 0);
  ir2.setEnabled(true);
  blocked(ir2.remap(SID, encodeRemappableMsi(0).address, 0, 0), 0x23);
  // A reader that fails for another reason is a bug, not a fault the hardware would record: it propagates.
  const failing: PhysReader = {
    read32(_a: PhysAddr): number {
      throw new Error("programming error");
    },
  };
  const ir3 = new InterruptRemapper(failing, () => {});
  ir3.setTable(0x1000 | 0xf, 0);
  ir3.setEnabled(true);
  assert.throws(() => ir3.remap(SID, encodeRemappableMsi(0).address, 0, 0), /programming error/);
});

test("9.10 fault 0x24: reserved bits, posted format, xAPIC destination bits, reserved SVT", () => {
  const t = rig({ eime: false });
  const good = encodeIrte({ vector: 0x60, destination: 0x12 }, false);
  const cases: [string, [number, number, number, number]][] = [
    ["bits 14:12", [good[0] | 0x1000, good[1], good[2], good[3]]],
    ["bits 31:24", [(good[0] | 0x8000_0000) >>> 0, good[1], good[2], good[3]]],
    ["IM (posted, unsupported)", [good[0] | 0x8000, good[1], good[2], good[3]]],
    ["xAPIC dest bits 39:32", [good[0], good[1] | 0x01, good[2], good[3]]],
    ["xAPIC dest bits 63:48", [good[0], (good[1] | 0x8000_0000) >>> 0, good[2], good[3]]],
    ["bits 95:84", [good[0], good[1], good[2] | 0x0010_0000, good[3]]],
    ["bits 127:96", [good[0], good[1], good[2], 0x1]],
    ["SVT 11b", [good[0], good[1], good[2] | (3 << 18), good[3]]],
  ];
  cases.forEach(([what, words], i) => {
    t.raw(i, words);
    const r = blocked(t.ir.remap(SID, encodeRemappableMsi(i).address, 0, 0), 0x24);
    assert.equal(r.reasonName, "IR_IRTE_RSVD", what);
    assert.equal(r.index, i, what);
  });
  assert.equal(t.faults.length, cases.length);
  // AVAIL bits 11:8 are for software: not reserved.
  t.raw(20, [good[0] | 0xf00, good[1], good[2], good[3]]);
  assert.equal(ok(t.ir.remap(SID, encodeRemappableMsi(20).address, 0, 0)).irq.destination, 0x12);
});

test("5.1.4 fault 0x25: compatibility format blocked unless CFIS; EIME blocks it regardless", () => {
  const compat = 0xfee0100c; // bit 4 clear
  const t = rig({ cfis: false });
  const r = blocked(t.ir.remap(SID, compat, 0, 0x4030), 0x25);
  assert.equal(r.reasonName, "IR_REQ_COMPAT");
  assert.deepEqual(t.faults, [{ sid: SID, reason: 0x25, index: 0 }]);
  t.ir.setCompatibilityAllowed(true);
  const p = ok(t.ir.remap(SID, compat, 0, 0x4030));
  assert.equal(p.remapped, false);
  assert.deepEqual({ ...p.msi }, { address: compat, addressHi: 0, data: 0x4030 });
  assert.equal(p.index, undefined);
  const x2 = rig({ cfis: true, eime: true });
  blocked(x2.ir.remap(SID, compat, 0, 0x4030), 0x25);
});

test("9.10 fault 0x26, SVT 01b: SID compared under the SQ mask", () => {
  const t = rig();
  const msi = (i: number) => encodeRemappableMsi(i).address;
  // SQ 00b: all 16 bits.
  t.put(0, { vector: 0x20, destination: 0, svt: 1, sq: 0, sid: 0x0108 });
  ok(t.ir.remap(0x0108, msi(0), 0, 0));
  blocked(t.ir.remap(0x0109, msi(0), 0, 0), 0x26);
  // SQ 01b: ignore bit 2.
  t.put(1, { vector: 0x21, destination: 0, svt: 1, sq: 1, sid: 0x0108 });
  ok(t.ir.remap(0x010c, msi(1), 0, 0));
  blocked(t.ir.remap(0x010a, msi(1), 0, 0), 0x26);
  // SQ 10b: ignore bits 2:1.
  t.put(2, { vector: 0x22, destination: 0, svt: 1, sq: 2, sid: 0x0108 });
  ok(t.ir.remap(0x010e, msi(2), 0, 0));
  blocked(t.ir.remap(0x0109, msi(2), 0, 0), 0x26);
  // SQ 11b: ignore bits 2:0 (the whole function number).
  t.put(3, { vector: 0x23, destination: 0, svt: 1, sq: 3, sid: 0x0108 });
  ok(t.ir.remap(0x010f, msi(3), 0, 0));
  const r = blocked(t.ir.remap(0x0110, msi(3), 0, 0), 0x26);
  assert.equal(r.reasonName, "IR_SID_ERR");
  assert.deepEqual(t.faults, [
    { sid: 0x0109, reason: 0x26, index: 0 },
    { sid: 0x010a, reason: 0x26, index: 1 },
    { sid: 0x0109, reason: 0x26, index: 2 },
    { sid: 0x0110, reason: 0x26, index: 3 },
  ]);
});

test("9.10 fault 0x26, SVT 10b: requester bus within [SID 15:8, SID 7:0]", () => {
  const t = rig();
  t.put(0, { vector: 0x20, destination: 0, svt: 2, sid: (2 << 8) | 5 }); // buses 2..5
  const a = encodeRemappableMsi(0).address;
  assert.equal(ok(t.ir.remap(0x0200, a, 0, 0)).index, 0);
  ok(t.ir.remap(0x05ff, a, 0, 0));
  ok(t.ir.remap(0x0310, a, 0, 0));
  blocked(t.ir.remap(0x01ff, a, 0, 0), 0x26);
  blocked(t.ir.remap(0x0600, a, 0, 0), 0x26);
  // SVT 00b: no verification at all.
  t.put(1, { vector: 0x21, destination: 0, svt: 0, sid: 0x1234 });
  ok(t.ir.remap(0xffff, encodeRemappableMsi(1).address, 0, 0));
  assert.equal(t.faults.length, 2);
});

test("9.10 destination: 8-bit APIC id in bits 47:40 (xAPIC) vs 32-bit id in 63:32 (x2APIC, EIME)", () => {
  const x = rig({ eime: false });
  x.raw(0, [0x0001_0000 | (0x3a << 16) | 1, 0x0000_ab00, 0, 0]);
  const rx = ok(x.ir.remap(SID, encodeRemappableMsi(0).address, 0, 0));
  assert.equal(rx.irq.destination, 0xab);
  assert.equal(rx.irq.vector, 0x3b);
  assert.equal(rx.msi.address, 0xfeeab000);
  assert.equal(rx.msi.addressHi, 0);

  const e = rig({ eime: true });
  e.put(0, { vector: 0x50, destination: 0x1234_5678 });
  const re = ok(e.ir.remap(SID, encodeRemappableMsi(0).address, 0, 0));
  assert.equal(re.irq.destination, 0x1234_5678);
  assert.equal(re.msi.address, 0xfee78000);
  assert.equal(re.msi.addressHi, 0x1234_5600);
  // The same words that x2APIC mode accepts fault in xAPIC mode (destination bits outside 47:40).
  const words = encodeIrte({ vector: 0x50, destination: 0x1234_5678 }, true);
  x.raw(1, words);
  blocked(x.ir.remap(SID, encodeRemappableMsi(1).address, 0, 0), 0x24);
});

test("9.10 FPD: the request is blocked but no fault is recorded (also for a non-present entry)", () => {
  const t = rig();
  t.put(0, { present: false, fpd: true, vector: 0x20, destination: 0 });
  t.raw(1, [(encodeIrte({ fpd: true, vector: 0x21, destination: 0 }, false)[0] | 0x1000) >>> 0, 0, 0, 0]);
  t.put(2, { fpd: true, vector: 0x22, destination: 0, svt: 1, sid: 0x0200 });
  t.put(3, { fpd: false, vector: 0x23, destination: 0, svt: 1, sid: 0x0200 });
  assert.equal(blocked(t.ir.remap(SID, encodeRemappableMsi(0).address, 0, 0), 0x22).fpd, true);
  assert.equal(blocked(t.ir.remap(SID, encodeRemappableMsi(1).address, 0, 0), 0x24).fpd, true);
  assert.equal(blocked(t.ir.remap(SID, encodeRemappableMsi(2).address, 0, 0), 0x26).fpd, true);
  assert.equal(t.faults.length, 0);
  assert.equal(t.ir.stats.faultsSuppressed, 3);
  const r = blocked(t.ir.remap(SID, encodeRemappableMsi(3).address, 0, 0), 0x26);
  assert.equal(r.fpd, undefined);
  assert.deepEqual(t.faults, [{ sid: SID, reason: 0x26, index: 3 }]);
  assert.equal(t.ir.stats.blocked, 4);
  assert.equal(t.ir.stats.faultsRecorded, 1);
  // FPD on a passing entry changes nothing.
  t.put(4, { fpd: true, vector: 0x24, destination: 0 });
  ok(t.ir.remap(SID, encodeRemappableMsi(4).address, 0, 0));
});

test("6.5.2.7 interrupt entry cache: a changed IRTE stays stale until invalidated", () => {
  const t = rig();
  const a = (i: number) => encodeRemappableMsi(i).address;
  for (let i = 0; i < 10; i++) t.put(i, { vector: 0x30 + i, destination: 0 });
  for (let i = 0; i < 10; i++) assert.equal(ok(t.ir.remap(SID, a(i), 0, 0)).irq.vector, 0x30 + i);
  assert.equal(t.ir.stats.misses, 10);
  assert.equal(t.ir.cachedEntries, 10);
  for (let i = 0; i < 10; i++) t.put(i, { vector: 0x80 + i, destination: 0 });
  assert.equal(ok(t.ir.remap(SID, a(3), 0, 0)).irq.vector, 0x33, "cached entry still applies");
  assert.equal(t.ir.stats.hits, 1);

  t.ir.invalidateIndex(3, 0);
  assert.equal(ok(t.ir.remap(SID, a(3), 0, 0)).irq.vector, 0x83);
  assert.equal(ok(t.ir.remap(SID, a(2), 0, 0)).irq.vector, 0x32, "neighbour untouched");

  // IM = 2: four entries 4..7, given any index inside the block.
  t.ir.invalidateIndex(6, 2);
  for (let i = 4; i < 8; i++) assert.equal(ok(t.ir.remap(SID, a(i), 0, 0)).irq.vector, 0x80 + i);
  assert.equal(ok(t.ir.remap(SID, a(8), 0, 0)).irq.vector, 0x38);

  // Removing an entry from memory does not stop a cached one.
  t.raw(9, [0, 0, 0, 0]);
  assert.equal(ok(t.ir.remap(SID, a(9), 0, 0)).irq.vector, 0x39);
  t.ir.invalidateAll();
  assert.equal(t.ir.cachedEntries, 0);
  blocked(t.ir.remap(SID, a(9), 0, 0), 0x22);
  assert.equal(ok(t.ir.remap(SID, a(8), 0, 0)).irq.vector, 0x88);
});

test("6.5.2.7 interrupt entry cache: LRU eviction at the configured size, faults are not cached, a hit reuses its frozen result", () => {
  const t = rig({ cacheSize: 2 });
  const a = (i: number) => encodeRemappableMsi(i).address;
  for (let i = 0; i < 3; i++) t.put(i, { vector: 0x40 + i, destination: 0 });
  ok(t.ir.remap(SID, a(0), 0, 0));
  ok(t.ir.remap(SID, a(1), 0, 0));
  ok(t.ir.remap(SID, a(0), 0, 0)); // 0 is now most recent
  ok(t.ir.remap(SID, a(2), 0, 0)); // evicts 1
  assert.equal(t.ir.stats.evictions, 1);
  assert.equal(t.ir.cachedEntries, 2);
  const before = t.ir.stats.misses;
  ok(t.ir.remap(SID, a(0), 0, 0));
  assert.equal(t.ir.stats.misses, before, "0 stayed cached");
  ok(t.ir.remap(SID, a(1), 0, 0));
  assert.equal(t.ir.stats.misses, before + 1, "1 was evicted");

  // A non-present entry is re-read every time: writing it makes it work without an invalidation.
  const u = rig();
  blocked(u.ir.remap(SID, a(5), 0, 0), 0x22);
  u.put(5, { vector: 0x55, destination: 0 });
  assert.equal(ok(u.ir.remap(SID, a(5), 0, 0)).irq.vector, 0x55);
  // A cache hit returns the same frozen result object.
  const r1 = u.ir.remap(SID, a(5), 0, 0);
  const r2 = u.ir.remap(SID, a(5), 0, 0);
  assert.equal(r1, r2);
  assert.equal(Object.isFrozen(r1), true);

  // Size 0 disables the cache: every request reads memory.
  const z = rig({ cacheSize: 0 });
  z.put(0, { vector: 0x20, destination: 0 });
  ok(z.ir.remap(SID, a(0), 0, 0));
  z.put(0, { vector: 0x21, destination: 0 });
  assert.equal(ok(z.ir.remap(SID, a(0), 0, 0)).irq.vector, 0x21);
  assert.equal(z.ir.stats.hits, 0);
});

test("9.10 encodeIrte/decodeIrte round trip", () => {
  const f = {
    present: true,
    fpd: true,
    destinationMode: "logical" as const,
    redirectionHint: true,
    triggerMode: "level" as const,
    deliveryMode: 5,
    avail: 0xa,
    posted: false,
    vector: 0xec,
    destination: 0xfe,
    sid: 0xbeef,
    sq: 2,
    svt: 1,
  };
  const w = encodeIrte(f, false);
  assert.deepEqual(w, [0x00ec0abf, 0xfe00, 0x0006beef, 0]);
  assert.deepEqual(decodeIrte(...w, false), { ...f, reservedViolation: null });
  assert.throws(() => encodeIrte({ vector: 256, destination: 0 }, false), RangeError);
  assert.throws(() => encodeIrte({ vector: 1, destination: 0x100 }, false), RangeError);
});

test("walkInterrupt: stateless walk of a PhysicalMemory table, same answers as the unit", () => {
  const mem = new PhysicalMemory();
  const base = 0x2_0000_0000n; // above 4 GiB: the IRTA high half matters
  writeIrte(mem, base, 0x21, encodeIrte({ vector: 0x99, destination: 0x0000_0102, destinationMode: "physical" }, true));
  const irta = base | (1n << 11n) | 7n; // EIME, 256 entries
  const m = encodeRemappableMsi(0x20, 1);
  const r = ok(walkInterrupt(mem, irta, SID, BigInt(m.address), m.data));
  assert.equal(r.index, 0x21);
  assert.equal(r.irq.vector, 0x99);
  assert.equal(r.irq.destination, 0x102);
  assert.equal(r.msi.address, 0xfee02000);
  assert.equal(r.msi.addressHi, 0x100);
  blocked(walkInterrupt(mem, irta, SID, BigInt(encodeRemappableMsi(0x100).address), 0), 0x21);
  blocked(walkInterrupt(mem, irta, SID, 0xfee00000n, 0x30), 0x25);
  assert.equal(ok(walkInterrupt(mem, irta & ~(1n << 11n), SID, 0xfee00000n, 0x30, { cfis: true })).remapped, false);
  // Out-of-range bigints are taken modulo 2^64, never thrown on: 2^70 vanishes, -1n is a table at the very
  // top of the 64-bit space (unreadable), and an address with bit 40 set has a non-zero high half.
  blocked(walkInterrupt(mem, -1n, SID, (1n << 70n) | BigInt(m.address), 1), 0x23);
  blocked(walkInterrupt(mem, irta, SID, (1n << 40n) | BigInt(m.address), 1), 0x20);
});

test("random IRTA, table bytes and requests: never throws, only ok or a 0x20..0x26 fault", () => {
  const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
  const words = fc.tuple(u32, u32, u32, u32);
  // IRTEs: raw random words, or well-formed entries with now and then one bit flipped.
  const entry = fc.oneof(
    words,
    fc
      .record({
        present: fc.boolean(),
        fpd: fc.boolean(),
        vector: fc.integer({ min: 0, max: 0xff }),
        destination: u32,
        deliveryMode: fc.integer({ min: 0, max: 7 }),
        sid: fc.integer({ min: 0, max: 0xffff }),
        sq: fc.integer({ min: 0, max: 3 }),
        svt: fc.integer({ min: 0, max: 3 }),
        eime: fc.boolean(),
        flip: fc.option(fc.integer({ min: 0, max: 127 }), { freq: 3 }),
      })
      .map((f): [number, number, number, number] => {
        const w = encodeIrte({ ...f, destination: f.eime ? f.destination : f.destination & 0xff }, f.eime);
        if (f.flip !== null) w[f.flip >> 5] = ((w[f.flip >> 5] ?? 0) ^ (1 << (f.flip & 31))) >>> 0;
        return w;
      }),
  );
  const request = fc.oneof(
    // Anything at all.
    fc.record({ lo: u32, hi: u32, data: u32 }),
    // Remappable requests aimed at the entries written, with or without a sub-handle.
    fc
      .record({ handle: fc.integer({ min: 0, max: 40 }), sub: fc.option(fc.integer({ min: 0, max: 8 })), low2: fc.integer({ min: 0, max: 3 }), hi: fc.constantFrom(0, 0, 0, 1), junk: fc.constantFrom(0, 0, 0x10000) })
      .map((r) => {
        const m = encodeRemappableMsi(r.handle, r.sub ?? undefined);
        return { lo: (m.address | r.low2) >>> 0, hi: r.hi, data: (m.data | r.junk) >>> 0 };
      }),
    // Compatibility format.
    fc.record({ lo: fc.integer({ min: 0, max: 0xfffff }).map((x) => ((0xfee0_0000 | x) & ~0x10) >>> 0), hi: fc.constant(0), data: u32 }),
  );
  const seen = new Set<string>();
  fc.assert(
    fc.property(
      fc.record({
        irtaLo: u32,
        irtaHi: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 0x1ff }), u32),
        table: fc.array(entry, { minLength: 1, maxLength: 40 }),
        ire: fc.boolean(),
        cfis: fc.boolean(),
        haw: fc.oneof(fc.constant(39), fc.constant(48), fc.integer({ min: 0, max: 70 })),
        cacheSize: fc.integer({ min: -1, max: 4 }),
        requests: fc.array(fc.record({ sid: fc.oneof(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: -5, max: 0x1ffff })), req: request }), {
          minLength: 1,
          maxLength: 12,
        }),
      }),
      (c) => {
        const mem = new PhysicalMemory();
        const base = BigInt(c.irtaHi) * 2n ** 32n + BigInt((c.irtaLo & 0xffff_f000) >>> 0);
        if (base + BigInt(c.table.length * 16) < 2n ** 57n) c.table.forEach((w, i) => writeIrte(mem, base, i, w));
        let calls = 0;
        const ir = new InterruptRemapper(
          mem,
          (f) => {
            calls++;
            assert.ok(f.reason >= 0x20 && f.reason <= 0x26);
            assert.ok(f.index >= 0 && f.index <= 0xffff);
          },
          { hostAddressWidth: c.haw, cacheSize: c.cacheSize },
        );
        ir.setTable(c.irtaLo, c.irtaHi);
        ir.setEnabled(c.ire);
        ir.setCompatibilityAllowed(c.cfis);
        const irta = (BigInt(c.irtaHi) << 32n) | BigInt(c.irtaLo);
        for (const { sid, req } of c.requests) {
          const r = ir.remap(sid, req.lo, req.hi, req.data);
          check(r);
          if (!c.ire) assert.equal(r.ok && !r.remapped, true);
          if (r.ok && r.remapped) assert.ok((r.index ?? -1) < 2 << (c.irtaLo & 0xf));
          const w = walkInterrupt(mem, irta, sid, (BigInt(req.hi) << 32n) | BigInt(req.lo), req.data, { cfis: c.cfis, hostAddressWidth: c.haw });
          check(w);
          // Without a cache in between, the unit and the stateless walk agree on the first look at an entry.
          if (c.ire && c.cacheSize <= 0) assert.deepEqual(plain(w), plain(r));
        }
        assert.equal(calls, ir.stats.faultsRecorded);
        assert.equal(ir.stats.blocked, ir.stats.faultsRecorded + ir.stats.faultsSuppressed);
      },
    ),
    { numRuns: 500, seed: 0x5eed },
  );
  // The generators reach every outcome, so the property says something about each of them.
  for (const k of ["remapped", "passthrough", "0x20", "0x21", "0x22", "0x23", "0x24", "0x25", "0x26"]) assert.ok(seen.has(k), `no ${k} case generated`);

  function check(r: RemapResult): void {
    seen.add(r.ok ? (r.remapped ? "remapped" : "passthrough") : "0x" + r.reason.toString(16));
    if (r.ok) {
      assert.ok(r.msi.address >= 0 && r.msi.address <= 0xffff_ffff);
      assert.ok(r.irq.vector >= 0 && r.irq.vector <= 0xff);
    } else {
      assert.ok(r.reason >= 0x20 && r.reason <= 0x26, `reason 0x${r.reason.toString(16)}`);
      assert.equal(typeof r.reasonName, "string");
    }
  }
  function plain(r: RemapResult): unknown {
    return r.ok ? { ...r, irq: { ...r.irq }, msi: { ...r.msi } } : { ...r };
  }
});
