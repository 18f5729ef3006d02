import { test } from "node:test";
import assert from "node:assert/strict";
import { PhysicalMemory } from "../core/memory.js";
import { FirstStageOut, walkFirstStage } from "../hw/vtd/first-stage.js";
import { firstStageReserved } from "../spec/vtd/first-stage.js";
import { VTD_FR_SM_FS_ENTRY_P, VTD_FR_SM_WRITE } from "../spec/vtd/sm-faults.js";
import { HotPages, Mm } from "./mm.js";
import { PageAllocator } from "./pages.js";

const MiB = 1 << 20;
const VA = 0x7f12_3456_0000;

function setup(): { mem: PhysicalMemory; hot: HotPages } {
  const mem = new PhysicalMemory();
  const pages = new PageAllocator(mem, [{ base: 0, end: 64 * MiB - 1, type: "usable" }]);
  return { mem, hot: new HotPages(pages) };
}

/** What a VT-d first-stage walk (the device's view, spec 3.6) makes of the process's tables. */
function deviceView(mem: PhysicalMemory, mm: Mm, va: number, write: boolean): { reason: number; frame: number; user: boolean } {
  const caps = { ...firstStageReserved(48, true), addrHiMask: 0xffff, oneGig: true };
  const out = new FirstStageOut();
  const reason = walkFirstStage(mem, caps, mm.pgd, 0, mm.levels, va % 2 ** 32, Math.floor(va / 2 ** 32), { write, supervisor: false, wpe: false }, out);
  return { reason, frame: out.frameHi * 2 ** 32 + out.frameLo, user: out.user };
}

test("a process's page tables read the same from the CPU and from a first-stage walk, user pages writable as mapped", () => {
  const { mem, hot } = setup();
  const mm = new Mm(mem, hot, 100);
  const frames = mm.mmap(VA, 3);
  const ro = mm.mmap(VA + 0x10_0000, 1, false)[0]!;
  for (let i = 0; i < 3; i++) {
    assert.equal(mm.translate(VA + i * 4096 + 0x123), frames[i]);
    const d = deviceView(mem, mm, VA + i * 4096, true);
    assert.equal(d.reason, 0);
    assert.equal(d.frame, frames[i]);
    assert.ok(d.user, "user pages carry U/S at every level");
  }
  assert.equal(deviceView(mem, mm, VA + 0x10_0000, false).frame, ro);
  assert.equal(deviceView(mem, mm, VA + 0x10_0000, true).reason, VTD_FR_SM_WRITE, "a read-only page refuses a write");
  assert.equal(deviceView(mem, mm, VA + 3 * 4096, false).reason, VTD_FR_SM_FS_ENTRY_P, "beyond the mapping nothing is present");
});

test("munmap clears the leaf; the frame it gave back is the next frame another process gets (hot pages, last freed first)", () => {
  const { mem, hot } = setup();
  const a = new Mm(mem, hot, 100);
  const b = new Mm(mem, hot, 200);
  const [fa] = a.mmap(VA, 1);
  assert.equal(a.munmap(VA), fa);
  assert.equal(a.translate(VA), null);
  assert.equal(deviceView(mem, a, VA, false).reason, VTD_FR_SM_FS_ENTRY_P);
  const [fb] = b.mmap(0x5000_0000, 1);
  assert.equal(fb, fa, "process B's new page is process A's old frame");
  assert.equal(a.munmap(VA), null);
  assert.throws(() => b.mmap(0x5000_0000, 1), /already mapped/);
  assert.throws(() => b.mmap(0x5000_0001, 1), /page-aligned/);
});

test("5-level tables reach addresses above 2^47", () => {
  const { mem, hot } = setup();
  const mm = new Mm(mem, hot, 1, 5);
  const high = 2 ** 50 + 0x7000;
  const [f] = mm.mmap(high, 1);
  assert.equal(mm.translate(high), f);
  assert.throws(() => new Mm(mem, hot, 2, 4).mmap(high, 1), /user address/);
});
