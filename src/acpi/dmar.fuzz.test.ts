/**
 * Seeded random corruption of real DMAR tables: flipped bytes, truncation, rewritten structure and scope
 * lengths, spliced-in pieces of other tables. Decoding must either succeed or throw AcpiError (never anything
 * else, never hang), and whatever decodes must encode back to the same bytes and decode again to an equal object.
 * The seed is fixed, so a failure reproduces; the message names the seed, iteration and mutation.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { AcpiError } from "./bytes.js";
import { decodeDmar, encodeDmar, renderDmarText, type DmarTable } from "./dmar.js";
import { corpusTables } from "../../test/support/iasl.js";
import { seededRandom } from "../core/random.js";

const SEED = 0x1d0a_2024;
const ITERATIONS = 10000;

const rng = seededRandom;

type Rand = () => number;
const int = (r: Rand, n: number) => Math.floor(r() * n);

function setU32(b: Uint8Array, at: number, v: number): void {
  new DataView(b.buffer, b.byteOffset, b.byteLength).setUint32(at, v >>> 0, true);
}

function setU16(b: Uint8Array, at: number, v: number): void {
  new DataView(b.buffer, b.byteOffset, b.byteLength).setUint16(at, v & 0xffff, true);
}

/** Offsets of the structure and scope length fields of a table that decodes. */
function lengthFields(t: DmarTable): { structures: number[]; scopes: number[] } {
  const structures: number[] = [];
  const scopes: number[] = [];
  for (const s of t.structures) {
    structures.push(s.offset + 2);
    if ("scopes" in s) for (const sc of s.scopes) scopes.push(sc.offset + 1);
  }
  return { structures, scopes };
}

const MUTATIONS: [string, (r: Rand, b: Uint8Array, t: DmarTable, other: Uint8Array) => Uint8Array][] = [
  ["flip bytes", (r, b) => {
    const x = b.slice();
    for (let n = 1 + int(r, 4); n > 0; n--) {
      const at = 36 + int(r, x.length - 36);
      x[at] = (x[at] ?? 0) ^ (1 << int(r, 8));
    }
    return x;
  }],
  ["random bytes", (r, b) => {
    const x = b.slice();
    for (let n = 1 + int(r, 6); n > 0; n--) x[int(r, x.length)] = [0, 0xff, int(r, 256)][int(r, 3)] ?? 0;
    return x;
  }],
  ["truncate", (r, b) => b.slice(0, int(r, b.length))],
  ["truncate, header length fixed", (r, b) => {
    const x = b.slice(0, 36 + int(r, b.length - 35));
    if (x.length >= 8) setU32(x, 4, x.length);
    return x;
  }],
  ["structure length", (r, b, t) => {
    const x = b.slice();
    const at = lengthFields(t).structures;
    if (at.length) setU16(x, at[int(r, at.length)] ?? 50, [0, 1, 3, 4, 5, 0xffff, int(r, 0x10000), int(r, 64)][int(r, 8)] ?? 0);
    return x;
  }],
  ["structure length ±", (r, b, t) => {
    const x = b.slice();
    const at = lengthFields(t).structures;
    const p = at[int(r, Math.max(1, at.length))] ?? 50;
    if (p + 1 < x.length) setU16(x, p, (x[p] ?? 0) + ((x[p + 1] ?? 0) << 8) + int(r, 17) - 8);
    return x;
  }],
  ["scope length", (r, b, t) => {
    const x = b.slice();
    const at = lengthFields(t).scopes;
    if (at.length) x[at[int(r, at.length)] ?? 0] = [0, 1, 5, 6, 7, 9, 0xff, int(r, 256), int(r, 24)][int(r, 9)] ?? 0;
    return x;
  }],
  ["structure type", (r, b, t) => {
    const x = b.slice();
    const s = t.structures[int(r, Math.max(1, t.structures.length))];
    if (s) setU16(x, s.offset, int(r, 10));
    return x;
  }],
  ["splice", (r, b, _t, other) => {
    const from = int(r, other.length);
    const piece = other.slice(from, from + 1 + int(r, 48));
    const at = 36 + int(r, b.length - 35);
    const x = new Uint8Array(b.length + piece.length);
    x.set(b.subarray(0, at));
    x.set(piece, at);
    x.set(b.subarray(at), at + piece.length);
    if (r() < 0.7) setU32(x, 4, x.length);
    return x;
  }],
  ["cut a range", (r, b) => {
    const at = 48 + int(r, Math.max(1, b.length - 48));
    const n = 1 + int(r, 24);
    const x = new Uint8Array([...b.subarray(0, at), ...b.subarray(at + n)]);
    if (x.length >= 8 && r() < 0.8) setU32(x, 4, x.length);
    return x;
  }],
];

describe("DMAR decoder under random corruption", () => {
  const corpus = corpusTables("dmar");
  const decoded = corpus.map(([, b]) => decodeDmar(b));

  it(`${ITERATIONS} seeded mutations: AcpiError or a stable round trip, nothing else`, { timeout: 120_000 }, (t) => {
    const r = rng(SEED);
    const outcomes = new Map<string, number>();
    let ok = 0;
    for (let i = 0; i < ITERATIONS; i++) {
      const k = int(r, corpus.length);
      const [name, bytes] = corpus[k] ?? corpus[0]!;
      const [mutation, mutate] = MUTATIONS[int(r, MUTATIONS.length)] ?? MUTATIONS[0]!;
      const other = corpus[int(r, corpus.length)]?.[1] ?? bytes;
      const x = mutate(r, bytes, decoded[k]!, other);
      const where = `seed 0x${SEED.toString(16)} iteration ${i}: ${mutation} of ${name}`;
      let d: DmarTable;
      try {
        d = decodeDmar(x);
      } catch (e) {
        if (!(e instanceof AcpiError)) assert.fail(`${where}: threw ${String(e)}, not an AcpiError`);
        assert.match(e.code, /^[A-Z_]+$/, where);
        assert.ok(e.message.length > 0 && !e.message.includes("\n"), `${where}: message '${e.message}'`);
        outcomes.set(e.code, (outcomes.get(e.code) ?? 0) + 1);
        continue;
      }
      ok++;
      const again = encodeDmar(d, { keepChecksum: true });
      assert.deepEqual(again, x.subarray(0, d.length), `${where}: re-encoded bytes differ`);
      assert.deepEqual(decodeDmar(again), d, `${where}: decode(encode(decode(x))) differs`);
      const fresh = decodeDmar(encodeDmar(JSON.parse(JSON.stringify(d)) as DmarTable));
      assert.equal(fresh.checksumValid, true, where);
      assert.deepEqual({ ...fresh, checksum: 0, checksumValid: true }, { ...d, checksum: 0, checksumValid: true }, `${where}: via JSON`);
      assert.ok(renderDmarText(d).includes("Signature"), where);
    }
    t.diagnostic(`${ok} decoded and round-tripped; errors: ${[...outcomes].map(([c, n]) => `${c} ${n}`).join(", ")}`);
    // both paths must be exercised, or the mutations are not reaching the decoder
    assert.ok(ok > ITERATIONS / 10, `only ${ok} mutated tables decoded`);
    assert.ok((outcomes.get("ACPI_BAD_SUBTABLE_LENGTH") ?? 0) > 0, "no structure length errors");
    assert.ok((outcomes.get("ACPI_BAD_SCOPE_LENGTH") ?? 0) > 0, "no scope length errors");
  });
});
