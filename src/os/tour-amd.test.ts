import { test } from "node:test";
import assert from "node:assert/strict";
import { decodeEvent, EVF_RW, IO_PAGE_FAULT } from "../spec/amdvi/events.js";
import { runCliReporting } from "../cli/main.js";
import type { Kernel } from "./kernel.js";
import { runTour, type TourStory } from "./tour.js";
import type { Machine } from "../hw/machine.js";

/** Linux 6.1 amd_iommu_types.h EVT_BUFFER_SIZE: the event log the driver allocates (512 entries of 16 bytes). */
const EVT_BUFFER_SIZE = 8192;

interface Seen {
  cmdline: string;
  kind: string | null;
  dmaRemapping: boolean;
  log: string[];
  /** Event log entries as the hardware wrote them to memory (four dwords each), during the run. */
  entries: number[][];
}

/** "0000:00:02.0" as a PCI requester id (bus << 8 | device << 3 | function). */
function rid(bdf: string): number {
  const m = /^[0-9a-f]{4}:([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/.exec(bdf);
  assert.ok(m, bdf);
  return (parseInt(m[1]!, 16) << 8) | (parseInt(m[2]!, 16) << 3) | Number(m[3]);
}

/** Runs the kernel stories, recording for each run the kernel's state and the event log entries written. */
function tour(machine: string, unmaps = 50): { stories: TourStory[]; seen: Map<string, Seen> } {
  const seen = new Map<string, Seen>();
  let writes: [addr: number, value: number][] = [];
  const onBoot = (_story: string, m: Machine, k: Kernel): void => {
    writes = [];
    const logs = k.amd.units.map((u) => u.evtBuf).filter((b) => b !== 0);
    const mem = m.memory;
    const write32 = mem.write32.bind(mem);
    mem.write32 = (addr: number | bigint, v: number): void => {
      const a = Number(addr);
      if (logs.some((b) => a >= b && a < b + EVT_BUFFER_SIZE)) writes.push([a, v >>> 0]);
      write32(addr, v);
    };
  };
  // An entry is four dword writes at consecutive addresses from a 16-byte boundary; the driver's zeroing of an
  // entry it has read is not one (all four zero).
  const entriesOf = (w: [number, number][]): number[][] => {
    const out: number[][] = [];
    for (let i = 0; i + 3 < w.length; i++) {
      const group = w.slice(i, i + 4);
      const at = group[0]![0];
      if (at % 16 !== 0 || !group.every(([a], j) => a === at + 4 * j)) continue;
      if (group.some(([, v]) => v !== 0)) out.push(group.map(([, v]) => v));
      i += 3;
    }
    return out;
  };
  const observe = (story: string, run: { label: string; cmdline: string }, _m: Machine, k: Kernel): void => {
    seen.set(`${story}/${run.label}`, { cmdline: run.cmdline, kind: k.ops?.kind ?? null, dmaRemapping: k.dmaRemapping, log: k.log.lines.map((l) => l.text), entries: entriesOf(writes) });
  };
  return { stories: runTour({ machine, sgPages: 8, unmaps, onBoot, observe }, undefined), seen };
}

function get<T>(v: T | undefined, what: string): T {
  assert.ok(v !== undefined, what);
  return v;
}

test("tour on q35-amd: every kernel story runs without AMD-Vi (amd_iommu=off) and with it (the default)", () => {
  const { stories, seen } = tour("q35-amd");
  assert.deepEqual(stories.map((s) => s.id), ["a", "b", "c", "d", "e", "f"]);
  const story = (id: string) => get(stories.find((s) => s.id === id), id);
  for (const s of stories) {
    assert.equal(s.runs.length, 2, `${s.id}: ${s.skipped ?? ""}`);
    assert.equal(s.skipped, undefined);
  }
  for (const id of ["a", "b", "c", "d"]) {
    const off = get(seen.get(`${id}/without IOMMU`), id);
    assert.equal(off.cmdline, "amd_iommu=off");
    assert.equal(off.kind, null, `${id}: no driver translates`);
    assert.equal(off.dmaRemapping, false);
    const on = get(seen.get(`${id}/with IOMMU`), id);
    assert.equal(on.cmdline, "", "AMD-Vi is on by default; amd_iommu has no 'on'");
    assert.equal(on.kind, "amd");
    assert.equal(on.dmaRemapping, true);
    assert.ok(!on.log.some((l) => /Unknown option/.test(l)));
  }
  const n = (id: string, run: number) => get(story(id).runs[run], `${id}[${run}]`).numbers;

  // a, b: one IOVA range for scattered pages; no bounces for the 32-bit device behind the IOMMU.
  assert.equal(n("a", 0).dmaSegments, 8);
  assert.equal(n("a", 1).dmaSegments, 1);
  assert.equal(n("b", 0).bounces, 16);
  assert.equal(n("b", 1).bounces, 0);

  // c: without the IOMMU the stray write lands; with it, it is blocked and the unit logs an IO_PAGE_FAULT.
  assert.equal(n("c", 0).bytesCorrupted, 256);
  assert.equal(n("c", 0).blocked, false);
  assert.equal(n("c", 0).faultReason, "none");
  assert.deepEqual(get(seen.get("c/without IOMMU"), "c off").entries, []);
  const c = n("c", 1);
  assert.equal(c.blocked, true);
  assert.equal(c.bytesCorrupted, 0);
  const entries = get(seen.get("c/with IOMMU"), "c on").entries;
  assert.equal(entries.length, 1, "one event log entry for the one stray write");
  const raw = decodeEvent(get(entries[0], "entry"));
  assert.equal(raw.code, IO_PAGE_FAULT);
  assert.equal(raw.deviceId, rid(String(c.device)));
  assert.ok((raw.flags & EVF_RW) !== 0, "a write");
  const rawAddr = raw.addrLo + raw.addrHi * 2 ** 32;
  assert.equal(c.strayWriteAt, "0x" + rawAddr.toString(16), "the event names the stray address");
  assert.equal(c.faultAddr, "0x" + rawAddr.toString(16));
  assert.equal(c.faultReason, "0x02");
  assert.match(String(c.faultText), new RegExp(`^Event logged \\[IO_PAGE_FAULT domain=0x[0-9a-f]{4} address=${c.faultAddr} flags=0x[0-9a-f]{4}\\]$`));
  const cs = get(story("c").runs[1], "c on").summary;
  assert.match(cs, new RegExp(`^blocked: event log entry \\[IO_PAGE_FAULT, code 0x02\\] for ${String(c.device).replace(/\./g, "\\.")}, DMA Write at ${c.faultAddr}; nothing of`));
  assert.doesNotMatch(cs, /fault record/);

  // d: the same bus address is two different pages behind the IOMMU; without it, one device reaches the other's buffer.
  assert.equal(n("d", 0).aReachesB, true);
  assert.equal(n("d", 1).sameAddress, true);
  assert.notEqual(n("d", 1).physA, n("d", 1).physB);
  assert.equal(n("d", 1).aReachesB, false);

  // e: iommu=pt gives identity domains (bus address = physical) while AMD-Vi stays on; translated does not.
  const pt = get(seen.get("e/iommu=pt (identity)"), "e pt");
  assert.equal(pt.cmdline, "iommu=pt");
  assert.equal(pt.kind, "amd");
  assert.equal(n("e", 0).groupTypes, "identity");
  assert.equal(n("e", 0).dmaIsPhysical, true);
  assert.equal(n("e", 0).strayWriteBlocked, false);
  assert.equal(n("e", 1).dmaIsPhysical, false);
  assert.equal(n("e", 1).strayWriteBlocked, true);
  assert.equal(n("e", 1).bounces32, 0);

  // f: strict is one INVALIDATE_IOMMU_PAGES per unmap, and no device write after an unmap reaches the page.
  // QEMU's AMD-Vi sets NpCache, so Linux also flushes after each map and forces strict mode: iommu.strict=0
  // cannot make the domain lazy, and the run says so rather than claiming a flush queue.
  const strict = n("f", 0);
  assert.equal(strict.invalidationsPerUnmap, 1);
  assert.equal(strict.iotlbInvalidations, 50);
  assert.equal(strict.invalidationsAfterMap, 50);
  assert.equal(strict.staleAccessesAfterUnmap, 0);
  assert.ok(Number(strict.completionWaits) >= 100, "each flush is waited for");
  assert.equal(strict.waitDescriptors, undefined, "no VT-d wait descriptors on AMD-Vi");
  assert.match(get(story("f").runs[0], "f strict").summary, /^50 unmaps: 50 IOTLB invalidation commands \(1\.000 per unmap, plus 50 after maps\); 0 of 50/);
  const lazyRun = get(story("f").runs[1], "f lazy");
  const lazySeen = get(seen.get(`f/${lazyRun.label}`), "f lazy seen");
  assert.ok(lazySeen.log.includes("AMD-Vi: Using strict mode due to virtualization"));
  assert.equal(lazyRun.cmdline, "iommu.strict=0");
  assert.equal(lazyRun.label, "iommu.strict=0 (kept strict)");
  assert.equal(lazyRun.numbers.maxStaleWindowUs, null);
  assert.equal(lazyRun.numbers.staleAccessesAfterUnmap, 0);
  assert.match(lazyRun.summary, /^the kernel kept unmaps strict \("AMD-Vi: Using strict mode due to virtualization"\); /);
});

test("tour on amd-server: the stray write's event comes from the unit covering the device; strict flushes are counted over all units", () => {
  const { stories, seen } = tour("amd-server", 40);
  const story = (id: string) => get(stories.find((s) => s.id === id), id);
  for (const id of ["a", "c", "d", "f"]) assert.equal(story(id).runs.length, 2, id);
  // No driver-bound device limited to 32-bit DMA on this machine: b and e say so.
  for (const id of ["b", "e"]) assert.match(story(id).skipped ?? "", /32-bit DMA/);
  for (const id of ["a", "c", "d"]) {
    assert.equal(get(seen.get(`${id}/without IOMMU`), id).kind, null);
    assert.equal(get(seen.get(`${id}/with IOMMU`), id).kind, "amd");
  }
  const c = get(story("c").runs[1], "c").numbers;
  const entries = get(seen.get("c/with IOMMU"), "c on").entries;
  assert.equal(entries.length, 1);
  const raw = decodeEvent(get(entries[0], "entry"));
  assert.equal(raw.code, IO_PAGE_FAULT);
  assert.equal(raw.deviceId, rid(String(c.device)));
  assert.equal(c.faultAddr, "0x" + (raw.addrLo + raw.addrHi * 2 ** 32).toString(16));
  assert.equal(c.faultAddr, c.strayWriteAt);
  assert.equal(get(story("c").runs[0], "c off").numbers.bytesCorrupted, 256);
  const f = get(story("f").runs[0], "f").numbers;
  assert.equal(f.invalidationsPerUnmap, 1);
  assert.equal(f.staleAccessesAfterUnmap, 0);
});

test("iommu tour -m q35-amd on the command line: runs and wording follow the AMD-Vi state", async () => {
  let out = "";
  let err = "";
  const code = await runCliReporting(["tour", "--no-vm", "-m", "q35-amd", "--json"], { debug: false, env: {}, out: (t) => void (out += t), err: (t) => void (err += t) });
  assert.equal(code, 0, err);
  const stories = JSON.parse(out) as TourStory[];
  assert.equal(stories.length, 6);
  assert.ok(stories.every((s) => s.runs.length === 2 && s.skipped === undefined));
  const c = get(stories.find((s) => s.id === "c"), "c");
  assert.equal(c.runs[0]!.cmdline, "amd_iommu=off");
  assert.match(c.runs[0]!.summary, /^256 bytes of the kernel's next page overwritten/);
  assert.match(c.runs[1]!.summary, /^blocked: event log entry \[IO_PAGE_FAULT/);
});
