import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { RangeNode, RangeTree } from "./rbtree.js";

test("property: random inserts and erases keep red-black invariants and order", () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 500 })), { maxLength: 400 }), (ops) => {
      const t = new RangeTree();
      const live = new Map<number, RangeNode>();
      for (const [ins, k] of ops) {
        if (ins && !live.has(k)) {
          const n = new RangeNode(k * 10, k * 10 + 5);
          t.insert(n);
          live.set(k, n);
        } else if (!ins && live.has(k)) {
          t.erase(live.get(k)!);
          live.delete(k);
        }
        t.validate();
      }
      assert.equal(t.size, live.size);
      const keys = [...live.keys()].sort((a, b) => a - b);
      const walked: number[] = [];
      for (let n = t.first(); n; n = RangeTree.next(n)) walked.push(n.lo / 10);
      assert.deepEqual(walked, keys);
      const back: number[] = [];
      for (let n = t.last(); n; n = RangeTree.prev(n)) back.push(n.lo / 10);
      assert.deepEqual(back, [...keys].reverse());
      for (const k of keys) {
        assert.equal(t.find(k * 10 + 3)?.lo, k * 10);
        assert.equal(t.find(k * 10 + 7), null);
        assert.equal(t.lowerBound(k * 10 - 4)?.lo, k * 10);
      }
    }),
    { numRuns: 150 },
  );
});
