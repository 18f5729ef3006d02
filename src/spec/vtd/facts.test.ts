/**
 * The spec layer against the values QEMU and Linux publish (test/fixtures/vtd-facts.json): register offsets,
 * GCMD/GSTS bits, CAP/ECAP fields, fault reasons, descriptor types and fields, root and context entry fields,
 * IRTE fields, reserved-bit masks, and the encodings behind them (ND, FRO, SQ, AW). Each entry of the data file
 * names the header and macro a value comes from and the spec/vtd name it must equal; a value that disagrees is
 * a finding, to be investigated in both places. Where QEMU's reserved masks are knowingly wider than the
 * specification (fields defined after QEMU 7.2, the type's high bits), the entry names those fields.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import * as msi from "../msi.js";
import * as capability from "./capability.js";
import * as context from "./context.js";
import * as faults from "./faults.js";
import { uncoveredWords, wordsField, type FieldSpec } from "./fields.js";
import * as intremap from "./intremap.js";
import * as invalidation from "./invalidation.js";
import * as paging from "./paging.js";
import * as registers from "./registers.js";
import * as scalable from "./scalable.js";
import * as firstStage from "./first-stage.js";
import * as smFaults from "./sm-faults.js";

interface Fact {
  source: string;
  macro: string;
  spec: string;
  lsb?: number;
  width?: number;
  value?: number | string | boolean;
  reservedLo?: string;
  reservedHi?: string;
  reservedAll?: string[];
  fields?: string;
  qemuAlsoReserves?: string[];
  why?: string;
}

interface FactFile {
  sources: Record<string, { repository: string; file: string; revision: string }>;
  noReference: Record<string, string>;
  facts: Fact[];
}

const data = JSON.parse(readFileSync(new URL("../../../test/fixtures/vtd-facts.json", import.meta.url), "utf8")) as FactFile;

const MODULES: Record<string, Record<string, unknown>> = { msi, capability, context, faults, intremap, invalidation, paging, registers, scalable, firstStage, smFaults };

/** "registers.GCMD.TE" → the exported value. */
function resolve(path: string): unknown {
  const [mod = "", ...rest] = path.split(".");
  let v: unknown = MODULES[mod];
  assert.ok(v !== undefined, `${path}: no spec module ${mod}`);
  for (const k of rest) {
    assert.ok(v !== null && typeof v === "object" && k in v, `${path}: no ${k}`);
    v = (v as Record<string, unknown>)[k];
  }
  return v;
}

function isField(v: unknown): v is FieldSpec {
  return v !== null && typeof v === "object" && "lsb" in v && "width" in v && "section" in v;
}

/** A 64-bit value from two 32-bit words. */
function quad(words: readonly number[], at: number): bigint {
  return (BigInt((words[at + 1] ?? 0) >>> 0) << 32n) | BigInt((words[at] ?? 0) >>> 0);
}

function wordsOfQuad(v: bigint): [number, number] {
  return [Number(v & 0xffffffffn), Number(v >> 32n)];
}

const num = (v: number | bigint | string | boolean): bigint => (typeof v === "boolean" ? BigInt(v ? 1 : 0) : BigInt(v));

/** The computed facts: the spec layer's functions evaluated at the arguments a header's macro is given. */
const COMPUTED: Record<string, (...a: number[]) => bigint | number | boolean> = {
  queueIndexShift: (wide) => invalidation.queueIndexShift(wide === 1),
  tailMisaligned: (reg, wide) => invalidation.tailMisaligned(reg ?? 0, wide === 1),
  queueEntries: (qs, wide) => invalidation.queueEntries(qs ?? 0, wide === 1),
  irtaEntries: (s) => intremap.irtaEntries(s ?? 0),
  faultRecordCount: (n) => capability.faultRecordCount(n ?? 0),
  registerOffset: (n) => capability.registerOffset(n ?? 0),
  mgawBits: (n) => capability.mgawBits(n ?? 0),
  domainIdBits: (n) => capability.domainIdBits(n ?? 0),
  ndForDomainIdBits: (n) => capability.ndForDomainIdBits(n ?? 0),
  rootReservedLo: (haw) => quad(context.rootEntryReserved(haw ?? 0), 0),
  contextReservedLo: (haw) => quad(context.contextEntryReserved(haw ?? 0, 16), 0),
  contextReservedHi: (didBits) => quad(context.contextEntryReserved(39, didBits ?? 0), 2),
  awLevels: (aw) => context.awLevels(aw ?? 0),
  awForWidth: (width) => [0, 1, 2, 3, 4].find((aw) => context.awWidth(aw) === width) ?? -1,
  levelShift: (level) => paging.levelShift(level ?? 0),
  slIgnored: () => paging.SL_IGNORED_HIGH.reduce((m, f) => m | (((1n << BigInt(f.width)) - 1n) << BigInt(f.lsb)), 0n),
  slReserved: (level = 0, haw = 0, dt = 0, large = 0) => {
    const r = paging.secondLevelReserved({ hawBits: haw, largePages: capability.SLLPS_2M | capability.SLLPS_1G, deviceTlb: dt === 1, snoopControl: false });
    const lo = large === 1 ? r.rsvdLargeLo[level] : r.rsvdLo[level];
    const hi = large === 1 ? r.rsvdLargeHi[level] : r.rsvdHi[level];
    return quad([lo ?? 0, hi ?? 0], 0);
  },
  sidCompareMask: (sq) => registers.sidCompareMask(sq ?? 0),
  busVerified: (sid, requester) => intremap.irteSourceVerified(((intremap.SVT_VERIFY_BUS << intremap.IRTE_SVT_SHIFT) | (sid ?? 0)) >>> 0, requester ?? 0),
  smContextReservedLo: (haw) => quad(scalable.smContextEntryReserved(haw ?? 0), 0),
  smContextReservedHi: () => quad(scalable.smContextEntryReserved(39), 2),
  pasidDirIndex: (pasid) => scalable.pasidDirIndex(pasid ?? 0),
  pasidTableIndex: (pasid) => scalable.pasidTableIndex(pasid ?? 0),
  pasidDirEntries: (pdts) => scalable.pasidDirEntries(pdts ?? 0),
  fsAddressWidth: (levels) => firstStage.fsAddressWidth(levels ?? 0),
  remappableAddress: (index) => intremap.encodeRemappableMsi(index ?? 0, 0).address,
};

function evaluate(expr: string): bigint | number | boolean | unknown {
  const m = /^(\w+)\((.*)\)$/.exec(expr);
  if (m === null) return resolve(expr);
  const fn = COMPUTED[m[1] ?? ""];
  assert.ok(fn !== undefined, `${expr}: no computed fact ${m[1]}`);
  const args = (m[2] ?? "").split(",").map((a) => a.trim()).filter((a) => a !== "").map((a) => (a === "true" ? 1 : a === "false" ? 0 : Number(a)));
  return fn(...args);
}

function checkField(f: Fact): void {
  const v = resolve(f.spec);
  assert.ok(isField(v), `${f.spec} is not a field`);
  assert.equal(v.lsb, f.lsb, `${f.source} ${f.macro}: ${f.spec} starts at bit ${f.lsb}, the spec layer says ${v.lsb}`);
  if (f.width !== undefined) assert.equal(v.width, f.width, `${f.source} ${f.macro}: ${f.spec} is ${f.width} bits wide, the spec layer says ${v.width}`);
}

function checkValue(f: Fact): void {
  const v = evaluate(f.spec);
  assert.ok(typeof v === "number" || typeof v === "bigint" || typeof v === "boolean", `${f.spec} is not a number`);
  assert.equal(num(v), num(f.value ?? 0), `${f.source} ${f.macro}: ${f.spec} is ${String(f.value)}, the spec layer says ${String(v)}`);
}

/** Reserved masks: ours within QEMU's, and QEMU's extra bits all inside the fields the entry names. */
function checkReserved(f: Fact): void {
  const resolved = resolve(f.spec);
  const fields = resolve(f.fields ?? "") as Record<string, FieldSpec>;
  const ours = Array.isArray(resolved) ? (resolved as number[]) : uncoveredWords(128, fields);
  const theirs: (number | undefined)[] = [undefined, undefined, undefined, undefined];
  if (f.reservedLo !== undefined) [theirs[0], theirs[1]] = wordsOfQuad(BigInt(f.reservedLo));
  if (f.reservedHi !== undefined) [theirs[2], theirs[3]] = wordsOfQuad(BigInt(f.reservedHi));
  if (f.reservedAll !== undefined) f.reservedAll.forEach((w, i) => (theirs[i] = Number(w)));
  const also = (f.qemuAlsoReserves ?? []).map((k) => fields[k]).filter((x): x is FieldSpec => x !== undefined);
  assert.equal(also.length, (f.qemuAlsoReserves ?? []).length, `${f.macro}: unknown field in qemuAlsoReserves`);
  const alsoWords = [0, 0, 0, 0];
  for (const s of also) for (let b = s.lsb; b < s.lsb + s.width; b++) alsoWords[b >>> 5] = ((alsoWords[b >>> 5] ?? 0) | (1 << (b & 31))) >>> 0;
  const extra = [0, 0, 0, 0];
  theirs.forEach((t, i) => {
    if (t === undefined) return;
    const o = (ours[i] ?? 0) >>> 0;
    assert.equal((o & ~t) >>> 0, 0, `${f.source} ${f.macro}: the spec layer reserves bits QEMU does not (dword ${i}: 0x${((o & ~t) >>> 0).toString(16)})`);
    extra[i] = (t & ~o) >>> 0;
    assert.equal((extra[i]! & ~(alsoWords[i] ?? 0)) >>> 0, 0, `${f.source} ${f.macro}: QEMU reserves bits the spec layer defines, outside ${JSON.stringify(f.qemuAlsoReserves)} (dword ${i}: 0x${extra[i]!.toString(16)})`);
  });
  // Each named field must be one QEMU reserves (at least in part), so that the list cannot hide anything.
  for (const s of also) {
    const hit = [0, 1, 2, 3].some((i) => theirs[i] !== undefined && wordsField([extra[0]!, extra[1]!, extra[2]!, extra[3]!], s) !== 0);
    assert.ok(hit, `${f.macro}: ${s.name} is named in qemuAlsoReserves but QEMU does not reserve it`);
  }
}

function kind(f: Fact): "field" | "value" | "reserved" {
  if (f.reservedLo !== undefined || f.reservedHi !== undefined || f.reservedAll !== undefined) return "reserved";
  if (f.lsb !== undefined) return "field";
  return "value";
}

test(`spec/vtd agrees with the ${data.facts.length} values QEMU and Linux publish`, () => {
  const failures: string[] = [];
  for (const f of data.facts) {
    assert.ok(data.sources[f.source] !== undefined, `${f.macro}: unknown source ${f.source}`);
    try {
      const k = kind(f);
      if (k === "field") checkField(f);
      else if (k === "value") checkValue(f);
      else checkReserved(f);
    } catch (e) {
      failures.push((e as Error).message);
    }
  }
  assert.deepEqual(failures, []);
});

/** Every field record of the spec layer, by path. */
const RECORDS: Record<string, Record<string, FieldSpec>> = {
  "capability.CAP": capability.CAP,
  "capability.ECAP": capability.ECAP,
  ...Object.fromEntries(
    ["VER", "GCMD", "GSTS", "RTADDR", "CCMD", "IOTLB", "IVA", "FSTS", "FECTL", "IECTL", "FEDATA", "IEDATA", "FEADDR", "IEADDR", "PMEN", "IQH", "IQT", "IQA", "ICS", "IQERCD", "IRTA"].map((k) => [
      `registers.${k}`,
      resolve(`registers.${k}`) as Record<string, FieldSpec>,
    ]),
  ),
  "faults.FRCD": faults.FRCD,
  "context.ROOT_ENTRY": context.ROOT_ENTRY,
  "context.CONTEXT_ENTRY": context.CONTEXT_ENTRY,
  "paging.SL_ENTRY": paging.SL_ENTRY,
  "invalidation.CC_DESC": invalidation.CC_DESC,
  "invalidation.IOTLB_DESC": invalidation.IOTLB_DESC,
  "invalidation.DEVTLB_DESC": invalidation.DEVTLB_DESC,
  "invalidation.IEC_DESC": invalidation.IEC_DESC,
  "invalidation.WAIT_DESC": invalidation.WAIT_DESC,
  "intremap.IRTE": intremap.IRTE,
  "intremap.POSTED_IRTE": intremap.POSTED_IRTE,
  "invalidation.PC_DESC": invalidation.PC_DESC,
  "invalidation.PIOTLB_DESC": invalidation.PIOTLB_DESC,
  "invalidation.P_DEVTLB_DESC": invalidation.P_DEVTLB_DESC,
  "scalable.SM_ROOT_ENTRY": scalable.SM_ROOT_ENTRY,
  "scalable.SM_CONTEXT_ENTRY": scalable.SM_CONTEXT_ENTRY,
  "scalable.PASID_DIR_ENTRY": scalable.PASID_DIR_ENTRY,
  "scalable.PASID_ENTRY": scalable.PASID_ENTRY,
  "firstStage.FS_ENTRY": firstStage.FS_ENTRY,
};

test("every field of every register, entry and descriptor is checked against a published value, or says why none exists", () => {
  const checked = new Set<FieldSpec>();
  for (const f of data.facts) {
    if (kind(f) !== "field") continue;
    checked.add(resolve(f.spec) as FieldSpec);
  }
  const excused = new Map<FieldSpec, string>(Object.entries(data.noReference).map(([p, why]) => [resolve(p) as FieldSpec, why]));
  const missing: string[] = [];
  for (const [path, record] of Object.entries(RECORDS)) {
    for (const [k, s] of Object.entries(record)) if (!checked.has(s) && !excused.has(s)) missing.push(`${path}.${k}`);
  }
  assert.deepEqual(missing, []);
  for (const [p] of Object.entries(data.noReference)) assert.ok(!checked.has(resolve(p) as FieldSpec), `${p} has a published value now: remove it from noReference`);
});

test("the data file counts: facts per source and distinct spec names", () => {
  const bySource = new Map<string, number>();
  for (const f of data.facts) bySource.set(f.source, (bySource.get(f.source) ?? 0) + 1);
  assert.ok((bySource.get("qemu") ?? 0) > 100 && (bySource.get("linux") ?? 0) > 100, JSON.stringify([...bySource]));
  assert.ok(new Set(data.facts.map((f) => f.spec)).size > 200);
});
