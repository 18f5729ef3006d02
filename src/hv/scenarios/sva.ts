import { IommuError } from "../../core/errors.js";
import { hex } from "../../core/hex.js";
import type { DmaOutcome } from "../../hw/platform.js";
import { HotPages, Mm } from "../../os/mm.js";
import { IntelSvm, type SvaBond } from "../../os/intel-svm.js";
import type { Hypervisor } from "../hypervisor.js";
import { MS, PAGE, countDiff, faultPhrase, frame, plural, Run, type ScenarioOptions, type ScenarioRun } from "./run.js";

/**
 * Scenario sva: a device shares two processes' address spaces through PASIDs (shared virtual addressing: each
 * PASID entry's first-stage pointer is the process's own page tables), the same virtual address reaching each
 * process's memory by PASID; requests without a PASID and with PASIDs nobody bound; and a delayed write with the
 * PASID of a process that has exited, after its pages went to another process. Runs on a VT-d unit in scalable
 * mode with first-stage translation and PASID support, and a device with a PASID capability at 00:08.0.
 */

export const ACCEL = "00:08.0";
/** Where both processes map their shared buffer (the same virtual address in each). */
export const BUFFER_VA = 0x7f3a_0000_0000;
const BUFFER_PAGES = 4;
/** Where process B maps more memory after A has exited, and how much: enough to take every page A gave back. */
const LATER_VA = 0x7f3b_0000_0000;
const LATER_PAGES = 16;
/** A PASID no process was given: in the first PASID table, next to the bound ones. */
export const STRAY_PASID = 42;

function checkSvaMachine(hv: Hypervisor): void {
  const bad = (why: string): IommuError =>
    new IommuError("SCENARIO_MACHINE", `machine '${hv.machine.config.name}' does not fit the sva scenario: ${why}`, { hint: "run it on q35-sva (its default)" });
  if (hv.machine.iommuKind !== "vtd") throw bad("shared virtual addressing is modelled on VT-d scalable mode only");
  const fn = hv.machine.topology.byBdf(ACCEL);
  if (fn === undefined || fn.pasidBits === 0) throw bad(`${ACCEL} must be a device with a PASID capability (pasidBits)`);
}

function landedIn(o: DmaOutcome, frames: Map<number, string>): string {
  if (!o.ok) return "nowhere";
  return o.segments.map((s) => frames.get(Number(s.hpa) - (Number(s.hpa) % PAGE)) ?? hex(s.hpa)).join(", ");
}

type Write = (bond: SvaBond | null, pasid: number | null, va: number, purpose: string) => DmaOutcome;

/**
 * Requests that must not reach any process's memory: without a PASID, with a PASID nobody was given, with one past
 * the PASID tables, and through A's PASID to a page A has just unmapped (the mmu notifier's invalidation).
 */
function strayRequests(r: Run, svm: IntelSvm, bondA: SvaBond, a: Mm, through: Write): Record<"noPasid" | "stray" | "strayFar" | "afterMunmap", DmaOutcome> & { beyond: number } {
  const noPasid = through(null, null, BUFFER_VA, "write without a PASID (requests without one use the device's DMA domain)");
  const stray = through(null, STRAY_PASID, BUFFER_VA, `write with PASID ${STRAY_PASID}, which no process was given`);
  const beyond = svm.pasidBeyondTable(bondA);
  const strayFar = through(null, beyond, BUFFER_VA, `write with PASID ${beyond}, beyond every PASID table allocated`);
  const blockedReason = (o: DmaOutcome): string =>
    o.ok ? "NOT blocked" : "reason" in o.result ? `blocked, fault reason ${hex(o.result.reason, 2)} ${o.result.reasonName}` : "unsupported request";
  r.step(`without a PASID: ${blockedReason(noPasid)}; PASID ${STRAY_PASID}: ${blockedReason(stray)}; PASID ${beyond}: ${blockedReason(strayFar)}`);
  const unmapped = BUFFER_VA + PAGE;
  a.munmap(unmapped);
  const afterMunmap = through(bondA, bondA.pasid, unmapped, `write A's page after A unmapped it (PASID ${bondA.pasid})`);
  r.step(`A unmapped ${hex(unmapped)}: a write there through PASID ${bondA.pasid} was ${afterMunmap.ok ? "NOT blocked" : blockedReason(afterMunmap)}`);
  return { noPasid, stray, strayFar, beyond, afterMunmap };
}

export function svaRun(opts: ScenarioOptions, flushOnUnbind: boolean): ScenarioRun {
  const label = flushOnUnbind
    ? "unbind tears the PASID entry down with PASID-cache and PASID-based IOTLB invalidations"
    : "unbind that clears the PASID entry without invalidating the PASID cache and the IOTLB";
  const r = new Run(label, { flushOnUnbind }, { machine: opts.machine ?? "q35-sva" });
  const { hv } = r;
  checkSvaMachine(hv);
  const svm = new IntelSvm(hv.host);
  const dev = hv.dev(ACCEL);
  const hot = new HotPages(hv.host.pages);
  const owners = new Map<number, string>();
  hv.hpaOwners.push((hpa) => owners.get(hpa - (hpa % PAGE)) ?? null);
  const a = new Mm(hv.port.memory, hot, 1001);
  const b = new Mm(hv.port.memory, hot, 1002);
  const mapBuffer = (mm: Mm, name: string, va: number, fill: number, pages = BUFFER_PAGES): number[] => {
    const frames = mm.mmap(va, pages);
    frames.forEach((f, i) => {
      owners.set(f, `process ${name} (pid ${mm.pid}) page at ${hex(va + i * PAGE)}`);
      hv.machine.memory.fill(f, PAGE, fill);
    });
    return frames;
  };
  const aFrames = mapBuffer(a, "A", BUFFER_VA, 0xaa);
  mapBuffer(b, "B", BUFFER_VA, 0xbb);
  r.step(`processes A (pid ${a.pid}) and B (pid ${b.pid}) each map ${plural(BUFFER_PAGES, "page")} at ${hex(BUFFER_VA)}: A's are filled with 0xaa, B's with 0xbb`);
  svm.enable(dev);
  const bondA = svm.bind(dev, a);
  const bondB = svm.bind(dev, b);
  r.step(`${svm.describeUnit(bondA)}; the accelerator at ${ACCEL} is bound to A with PASID ${bondA.pasid} and to B with PASID ${bondB.pasid}`);
  for (const bond of [bondA, bondB]) r.step(svm.describeEntry(bond));
  const fw = r.firmware(ACCEL);
  const frameName = new Map<number, string>(owners);
  const through: Write = (bond, pasid, va, purpose) =>
    fw.write(va, frame(bond?.pasid ?? 0), purpose, pasid === null ? undefined : { pasid });
  const wa = through(bondA, bondA.pasid, BUFFER_VA, `write A's buffer through PASID ${bondA.pasid}`);
  const wb = through(bondB, bondB.pasid, BUFFER_VA, `write B's buffer through PASID ${bondB.pasid}`);
  r.step(`the same address ${hex(BUFFER_VA)}: through PASID ${bondA.pasid} it landed in ${landedIn(wa, frameName)}; through PASID ${bondB.pasid} in ${landedIn(wb, frameName)}`);
  const { noPasid, stray, strayFar, beyond, afterMunmap } = strayRequests(r, svm, bondA, a, through);
  // The device is told to write into A's buffer later; A exits first.
  const delay = 5 * MS;
  const payload = new Uint8Array(PAGE).fill(0xd1);
  let late: DmaOutcome | null = null;
  fw.writeLater(delay, BUFFER_VA, payload, `delayed write armed by A (PASID ${bondA.pasid})`, (o) => (late = o), { pasid: bondA.pasid });
  r.step(`A armed a write of ${PAGE} bytes to ${hex(BUFFER_VA)} in ${delay / MS} ms, then exited`);
  svm.unbind(bondA, { flush: flushOnUnbind });
  a.exit();
  for (const f of aFrames) owners.delete(f);
  const bLater = mapBuffer(b, "B", LATER_VA, 0xbb, LATER_PAGES);
  const reused = bLater.filter((f) => aFrames.includes(f)).length;
  const target = aFrames[0]!;
  const now = owners.get(target) ?? "a free page";
  r.step(`B mapped ${plural(LATER_PAGES, "page")} at ${hex(LATER_VA)}: ${reused} of them are the ${plural(aFrames.length, "frame")} of A's buffer (freed pages are reused first); A's page at ${hex(BUFFER_VA)} is now ${now}`);
  const before = hv.machine.memory.read(target, PAGE);
  const faults0 = hv.host.faultCount;
  hv.advance(delay);
  const lateRecords = hv.host.faultsSince(faults0).filter((f) => f.pasid === bondA.pasid).length;
  const lateOutcome = late as DmaOutcome | null;
  const corrupted = countDiff(before, hv.machine.memory.read(target, PAGE));
  const blocked = lateOutcome !== null && !lateOutcome.ok;
  const lateFault = lateOutcome !== null && !lateOutcome.ok && "reason" in lateOutcome.result ? `fault ${hex(lateOutcome.result.reason, 2)} ${lateOutcome.result.reasonName}` : "no fault";
  const leaks = [
    ...(noPasid.ok ? ["the write without a PASID"] : []),
    ...(stray.ok ? [`the write with PASID ${STRAY_PASID}`] : []),
    ...(strayFar.ok ? [`the write with PASID ${beyond}`] : []),
    ...(afterMunmap.ok ? ["the write to the page A unmapped"] : []),
  ];
  const prot = blocked && corrupted === 0 && leaks.length === 0;
  return r.finish(
    {
      pasidA: bondA.pasid,
      pasidB: bondB.pasid,
      sameAddressLandedA: landedIn(wa, frameName),
      sameAddressLandedB: landedIn(wb, frameName),
      withoutPasidBlocked: !noPasid.ok,
      strayPasidBlocked: !stray.ok,
      pasidBeyondTablesBlocked: !strayFar.ok,
      writeAfterMunmapBlocked: !afterMunmap.ok,
      aFramesReusedByB: reused,
      delayedWriteBlocked: blocked,
      delayedWriteLandedIn: lateOutcome === null ? "not issued" : landedIn(lateOutcome, new Map([[target, now]])),
      bytesOfBOverwritten: corrupted,
    },
    prot
      ? {
          protected: true,
          summary:
            `the write with exited A's PASID ${bondA.pasid} was blocked (${lateFault}), ${faultPhrase(lateRecords, 1, ACCEL, r.faultWord)} with that PASID: the unit no longer held A's PASID entry or translations when A's frames went to B; ` +
            "requests without a PASID, with PASIDs no process was given and to a page A unmapped were blocked too",
        }
      : {
          protected: false,
          summary: [
            ...(blocked ? [] : [`the write with exited A's PASID ${bondA.pasid} used a translation the unit still cached and landed in ${now}: ${corrupted} bytes${now.startsWith("process B") ? " of B's memory" : ""} overwritten`]),
            ...(leaks.length > 0 ? [`${leaks.join(", ")} reached memory`] : []),
          ].join("; "),
        },
  );
}
