import { test } from "node:test";
import assert from "node:assert/strict";
import { PhysicalMemory } from "../../core/memory.js";
import { buildCap, buildEcap, qemuVtdConfig } from "./config.js";
import {
  decodePostedIrte,
  encodeIrta,
  encodeIrte,
  encodePidControl,
  encodePidDestination,
  encodePostedIrte,
  encodeRemappableMsi,
  InterruptRemapper,
  type IrFault,
  PID_CONTROL_OFFSET,
  PID_NDST_OFFSET,
  writeIrte,
} from "./intremap.js";
import { isPostedNotification, VtdUnit } from "./unit.js";
import type { InterruptMessage } from "../platform.js";

const TABLE = 0x10_0000;
const PID = 0x20_0040;
const SID = 0x0010;

function rig(pi: boolean, eime = false) {
  const mem = new PhysicalMemory();
  const faults: IrFault[] = [];
  const ir = new InterruptRemapper(mem, (f) => faults.push(f), { postedInterrupts: pi, writer: mem });
  const irta = encodeIrta(TABLE, 0xf, eime);
  ir.setTable(irta.lo, irta.hi);
  ir.setEnabled(true);
  const pid = (nv: number, apic: number, sn = false) => {
    mem.write32(PID + PID_CONTROL_OFFSET, encodePidControl(nv, false, sn));
    mem.write32(PID + PID_NDST_OFFSET, encodePidDestination(apic, eime));
  };
  const msi = (i: number) => encodeRemappableMsi(i, 0);
  const send = (i: number, sid = SID) => ir.remap(sid, msi(i).address, 0, msi(i).data);
  return { mem, ir, faults, pid, send };
}

const pirBit = (mem: PhysicalMemory, v: number) => ((mem.read32(PID + 4 * (v >>> 5)) >>> (v & 31)) & 1) === 1;
const control = (mem: PhysicalMemory) => mem.read32(PID + PID_CONTROL_OFFSET);

test("VT-d 10.4.2 CAP.PI: bit 59 with postedInterrupts; QEMU 7.2's default CAP/ECAP unchanged", () => {
  assert.equal(buildCap(qemuVtdConfig()), 0x00d2008c22260286n);
  assert.equal(buildEcap(qemuVtdConfig()), 0xf00f4an);
  assert.equal(buildCap(qemuVtdConfig({ postedInterrupts: true })), 0x00d2008c22260286n | (1n << 59n));
  assert.equal(buildEcap(qemuVtdConfig({ postedInterrupts: true })), 0xf00f4an);
  assert.throws(() => qemuVtdConfig({ postedInterrupts: true, interruptRemapping: false }), /postedInterrupts/);
  const unit = new VtdUnit({ memory: new PhysicalMemory(), config: { postedInterrupts: true } });
  assert.equal((unit.cap >> 59n) & 1n, 1n);
  assert.equal((unit.mmioRead(0x08, 8) >> 59n) & 1n, 1n, "CAP_REG reads it");
});

test("VT-d 9.11 posted-format IRTE: encode and decode round-trip", () => {
  const w = encodePostedIrte({ vector: 0x45, descriptor: 0x1_2345_6780n, urgent: true, sid: 0x1234, sq: 2, svt: 1, avail: 5, fpd: true });
  assert.deepEqual(w, [0x0045_c503, 0x2345_6780, 0x0006_1234, 0x1]);
  const f = decodePostedIrte(...w, 39);
  assert.equal(f.present, true);
  assert.equal(f.fpd, true);
  assert.equal(f.urgent, true);
  assert.equal(f.vector, 0x45);
  assert.equal(f.descriptor, 0x1_2345_6780n);
  assert.equal(f.avail, 5);
  assert.deepEqual([f.sid, f.sq, f.svt], [0x1234, 2, 1]);
  assert.equal(f.reservedViolation, null);
  assert.throws(() => encodePostedIrte({ vector: 1, descriptor: 0x1020 }), RangeError, "64-byte alignment");
});

test("VT-d 5.2.3 posting: PIR bit, ON set once, one notification to NV/NDST", () => {
  const t = rig(true);
  t.pid(0xf2, 3);
  writeIrte(t.mem, TABLE, 7, encodePostedIrte({ vector: 0x41, descriptor: PID, sid: SID, svt: 1 }));
  const r = t.send(7);
  assert.ok(r.ok);
  assert.ok(r.posted !== undefined);
  assert.equal(r.posted.notified, true);
  assert.equal(r.posted.descriptor, BigInt(PID));
  assert.equal(r.irq.vector, 0xf2, "notification vector NV");
  assert.equal(r.irq.destination, 3, "NDST bits 15:8 in xAPIC mode");
  assert.equal(r.irq.destinationMode, "physical");
  assert.ok(pirBit(t.mem, 0x41));
  assert.equal(control(t.mem) & 1, 1, "ON set");
  // A second interrupt (another vector) while ON is set: PIR updated, no new notification.
  writeIrte(t.mem, TABLE, 8, encodePostedIrte({ vector: 0xa3, descriptor: PID }));
  const r2 = t.send(8);
  assert.ok(r2.ok && r2.posted !== undefined);
  assert.equal(r2.posted.notified, false);
  assert.ok(pirBit(t.mem, 0xa3));
  const r3 = t.send(7);
  assert.ok(r3.ok && r3.posted?.alreadyPending === true && !r3.posted.notified);
  assert.equal(t.ir.stats.posted, 3);
  assert.equal(t.ir.stats.notifications, 1);
  // Software clears ON (and takes the PIR): the next post notifies again.
  t.mem.write32(PID + PID_CONTROL_OFFSET, control(t.mem) & ~1);
  const r4 = t.send(8);
  assert.ok(r4.ok && r4.posted?.notified === true);
  assert.equal(t.faults.length, 0);
});

test("VT-d 5.2.3 posting: SN suppresses non-urgent notifications, URG overrides SN", () => {
  const t = rig(true);
  t.pid(0xf2, 1, true);
  writeIrte(t.mem, TABLE, 1, encodePostedIrte({ vector: 0x30, descriptor: PID }));
  writeIrte(t.mem, TABLE, 2, encodePostedIrte({ vector: 0x31, descriptor: PID, urgent: true }));
  const r = t.send(1);
  assert.ok(r.ok && r.posted?.notified === false);
  assert.ok(pirBit(t.mem, 0x30), "posted anyway");
  assert.equal(control(t.mem) & 1, 0, "ON stays clear");
  const u = t.send(2);
  assert.ok(u.ok && u.posted?.notified === true && u.posted.urgent);
  assert.equal(control(t.mem) & 3, 3, "ON and SN");
});

test("VT-d 9.12 posting in x2APIC mode: NDST is the whole 32-bit destination", () => {
  const t = rig(true, true);
  t.pid(0xf0, 0x1_0203);
  writeIrte(t.mem, TABLE, 0, encodePostedIrte({ vector: 0x50, descriptor: PID }));
  const r = t.send(0);
  assert.ok(r.ok && r.posted?.notified === true);
  assert.equal(r.irq.destination, 0x1_0203);
});

test("VT-d 5.1.4.1 posted-format IRTE reserved fields: fault 0x24; without CAP.PI, IM = 1 is 0x24", () => {
  const base = encodePostedIrte({ vector: 0x41, descriptor: PID });
  const cases: [number, number, number, number][] = [
    [base[0] | 0x4, base[1], base[2], base[3]], // bit 2
    [base[0] | 0x1000, base[1], base[2], base[3]], // bit 12
    [base[0] | 0x0100_0000, base[1], base[2], base[3]], // bit 24
    [base[0], base[1] | 0x1, base[2], base[3]], // bit 32
    [base[0], base[1], base[2] | 0x0010_0000, base[3]], // bit 84
    [base[0], base[1], base[2] | (3 << 18), base[3]], // SVT 11b
    [base[0], base[1], base[2], 0x80], // descriptor at 2^39
  ];
  cases.forEach((w, i) => {
    const t = rig(true);
    writeIrte(t.mem, TABLE, i, w);
    const r = t.send(i);
    assert.ok(!r.ok && r.reason === 0x24, `case ${i}: ${r.ok ? "ok" : r.detail}`);
    assert.deepEqual(t.faults, [{ sid: SID, reason: 0x24, index: i }]);
    assert.equal(pirBit(t.mem, 0x41), false);
  });
  const off = rig(false);
  off.pid(0xf2, 0);
  writeIrte(off.mem, TABLE, 3, base);
  const r = off.send(3);
  assert.ok(!r.ok && r.reason === 0x24);
  assert.equal(pirBit(off.mem, 0x41), false);
  // With CAP.PI the remapped format is unchanged.
  const on = rig(true);
  writeIrte(on.mem, TABLE, 4, encodeIrte({ vector: 0x33, destination: 2 }, false));
  const rr = on.send(4);
  assert.ok(rr.ok && rr.posted === undefined && rr.irq.vector === 0x33 && rr.irq.destination === 2);
});

test("VT-d 9.10 source-id verification applies to posted-format entries (0x26)", () => {
  const t = rig(true);
  t.pid(0xf2, 0);
  writeIrte(t.mem, TABLE, 5, encodePostedIrte({ vector: 0x41, descriptor: PID, sid: SID, svt: 1 }));
  const r = t.send(5, 0x0018);
  assert.ok(!r.ok && r.reason === 0x26);
  assert.equal(pirBit(t.mem, 0x41), false);
});

test("VT-d 5.2.3 the unit sends the notification to the interrupt sink, marked as posted", () => {
  const memory = new PhysicalMemory();
  const seen: InterruptMessage[] = [];
  const unit = new VtdUnit({ memory, config: { postedInterrupts: true }, interruptSink: (m) => seen.push(m) });
  const irta = encodeIrta(TABLE, 0xf, false);
  unit.mmioWrite(0xb8, 8, (BigInt(irta.hi) << 32n) | BigInt(irta.lo));
  unit.mmioWrite(0x18, 4, 1 << 24); // SIRTP
  unit.mmioWrite(0x18, 4, 1 << 25); // IRE
  memory.write32(PID + PID_CONTROL_OFFSET, encodePidControl(0xf2));
  memory.write32(PID + PID_NDST_OFFSET, encodePidDestination(1, false));
  writeIrte(memory, TABLE, 9, encodePostedIrte({ vector: 0x61, descriptor: PID }));
  const m = encodeRemappableMsi(9, 0);
  const r1 = unit.translate({ sid: SID, addr: m.address, write: true, data: m.data });
  const r2 = unit.translate({ sid: SID, addr: m.address, write: true, data: m.data });
  assert.ok(r1.ok && r1.kind === "interrupt" && r2.ok && r2.kind === "interrupt");
  assert.equal(seen.length, 1, "one notification while ON stays set");
  const n = seen[0]!;
  assert.ok(isPostedNotification(n));
  assert.equal(n.posted.vector, 0x61);
  assert.equal(n.posted.descriptor, BigInt(PID));
  assert.equal(n.irq?.vector, 0xf2);
  assert.equal(n.irq?.destination, 1);
  assert.equal(n.origin, "device");
});
