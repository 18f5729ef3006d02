/**
 * Deterministic random mutations of the corpus IVRS tables. Whatever the bytes, decode either succeeds or throws
 * an AcpiError (never another error, never a hang); when it succeeds, encoding gives back the same bytes and
 * decoding those gives the same table.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { AcpiError } from "./bytes.js";
import { tableChecksumSum } from "./sdt.js";
import { corpusTables } from "../../test/support/iasl.js";
import { seededRandom } from "../core/random.js";
import { decodeIvrs, encodeIvrs, renderIvrsText } from "./ivrs.js";

const rng = seededRandom;

/** Type codes worth planting: every block and entry type, and one of each unknown length class. */
const INTERESTING = [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x10, 0x11, 0x20, 0x21, 0x22, 0x40, 0x41, 0x42, 0x43, 0x46,
  0x47, 0x48, 0x80, 0xc0, 0xf0, 0xff];

function mutate(src: Uint8Array, rand: () => number): Uint8Array {
  const pick = (n: number): number => Math.floor(rand() * n);
  let b = Uint8Array.from(src);
  const at = (): number => 36 + pick(Math.max(1, b.length - 36));
  const rounds = 1 + pick(3);
  for (let r = 0; r < rounds; r++) {
    switch (pick(7)) {
      case 0: // flip random bits
        for (let n = 1 + pick(4); n > 0; n--) {
          const i = at();
          b[i] = (b[i] ?? 0) ^ (1 << pick(8));
        }
        break;
      case 1: // plant a type code
        b[at()] = INTERESTING[pick(INTERESTING.length)] ?? 0;
        break;
      case 2: { // rewrite a 16-bit field (block lengths, device ids) with a small or random value
        const i = at();
        const v = rand() < 0.5 ? pick(64) : pick(0x10000);
        b[i] = v & 0xff;
        if (i + 1 < b.length) b[i + 1] = v >> 8;
        break;
      }
      case 3: // truncate
        b = b.slice(0, 36 + pick(b.length - 35));
        break;
      case 4: { // insert bytes
        const i = at();
        const extra = Array.from({ length: 1 + pick(24) }, () => pick(256));
        b = Uint8Array.from([...b.subarray(0, i), ...extra, ...b.subarray(i)]);
        break;
      }
      case 5: { // delete bytes
        const i = at();
        b = Uint8Array.from([...b.subarray(0, i), ...b.subarray(i + 1 + pick(16))]);
        break;
      }
      default: // UID length of a possible F0h entry, or any byte, set to an extreme
        b[at()] = rand() < 0.5 ? 0xff : 0;
        break;
    }
  }
  // Usually keep the header's length consistent with the bytes, so the mutation reaches the blocks.
  if (b.length >= 8 && rand() < 0.85) {
    b[4] = b.length & 0xff;
    b[5] = (b.length >> 8) & 0xff;
    b[6] = 0;
    b[7] = 0;
  }
  if (b.length >= 10 && rand() < 0.5) {
    b[9] = 0;
    b[9] = (0x100 - tableChecksumSum(b, Math.min(b.length, (b[4] ?? 0) | ((b[5] ?? 0) << 8)))) & 0xff;
  }
  return b;
}

test("fuzz: mutated corpus tables decode or throw AcpiError; decoded ones re-encode to the same bytes", (t: TestContext) => {
  const corpus = corpusTables("ivrs").map(([, b]) => b);
  assert.ok(corpus.length > 0);
  const rand = rng(0x1f5a_2024);
  const outcomes = new Map<string, number>();
  const iterations = 3000;
  for (let i = 0; i < iterations; i++) {
    const src = corpus[i % corpus.length] ?? new Uint8Array(0);
    const input = mutate(src, rand);
    let decoded;
    try {
      decoded = decodeIvrs(input);
    } catch (e) {
      if (!(e instanceof AcpiError)) {
        throw new Error(`iteration ${i}: decode threw ${String(e)} for ${Buffer.from(input).toString("hex")}`, { cause: e });
      }
      assert.doesNotMatch(e.message, /\n/);
      outcomes.set(e.code, (outcomes.get(e.code) ?? 0) + 1);
      continue;
    }
    outcomes.set("decoded", (outcomes.get("decoded") ?? 0) + 1);
    const bytes = encodeIvrs(decoded, { keepChecksum: true });
    assert.deepEqual(bytes, input.subarray(0, decoded.length), `iteration ${i}: re-encoded bytes differ`);
    assert.deepEqual(decodeIvrs(bytes), decoded, `iteration ${i}: decode(encode(decode(x))) differs from decode(x)`);
    if (i % 16 === 0) assert.ok(renderIvrsText(decoded).startsWith("[000h 0000   4]"));
  }
  t.diagnostic(`${iterations} mutations: ${[...outcomes].sort().map(([k, n]) => `${k} ${n}`).join(", ")}`);
  // Both paths must be exercised, or the mutations are not reaching the decoder.
  assert.ok((outcomes.get("decoded") ?? 0) > iterations / 10, "too few mutations decoded");
  assert.ok((outcomes.get("IVRS_ENTRY_OVERRUN") ?? 0) > 0 && (outcomes.get("IVRS_TRUNCATED") ?? 0) > 0, "error paths not reached");
});
