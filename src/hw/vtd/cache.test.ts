import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { SetAssocStore } from "./cache.js";
import type { ReplacementPolicy } from "./config.js";

/** The contract every policy keeps; run once per policy. */
for (const policy of ["lru", "fifo", "random"] as ReplacementPolicy[]) {
  describe(`6.2 translation cache store, ${policy} replacement`, () => {
    test("finds what it filled, in the set it was filled in, and counts fills", () => {
      const c = new SetAssocStore({ sets: 4, ways: 2, policy });
      const s = c.allocate(1, 10, 20);
      assert.equal(c.find(1, 10, 20), s);
      assert.equal(c.find(0, 10, 20), -1);
      assert.equal(c.find(1, 10, 21), -1);
      assert.deepEqual([c.count, c.fills, c.evictions], [1, 1, 0]);
    });

    test("refilling the same tag reuses its slot; a full set evicts exactly one entry", () => {
      const c = new SetAssocStore({ sets: 1, ways: 3, policy, seed: 7 });
      const a = c.allocate(0, 1, 0);
      assert.equal(c.allocate(0, 1, 0), a);
      c.allocate(0, 2, 0);
      c.allocate(0, 3, 0);
      assert.equal(c.count, 3);
      c.allocate(0, 4, 0);
      assert.deepEqual([c.count, c.evictions], [3, 1]);
      const present = [1, 2, 3, 4].filter((k) => c.find(0, k, 0) >= 0);
      assert.equal(present.length, 3);
      assert.ok(present.includes(4));
    });

    test("invalidation removes entries and counts them; reset empties and zeroes the counters", () => {
      const c = new SetAssocStore({ sets: 2, ways: 2, policy });
      for (let k = 0; k < 4; k++) c.allocate(k & 1, k, 0);
      assert.equal(c.invalidateWhere((s) => c.tagOf0(s) % 2 === 0), 2);
      assert.equal(c.find(0, 0, 0), -1);
      assert.equal(c.find(1, 1, 0) >= 0, true);
      assert.equal(c.invalidateAll(), 2);
      assert.deepEqual([c.count, c.invalidations], [0, 4]);
      c.reset();
      assert.deepEqual(c.stats(), { hits: 0, misses: 0, evictions: 0, fills: 0, invalidations: 0, entries: 0, capacity: 4 });
    });
  });
}

test("6.2 LRU replaces the least recently used entry", () => {
  const c = new SetAssocStore({ sets: 1, ways: 2, policy: "lru" });
  c.allocate(0, 1, 0);
  c.allocate(0, 2, 0);
  c.touch(c.find(0, 1, 0)); // 1 is now more recent than 2
  c.allocate(0, 3, 0);
  assert.deepEqual([c.find(0, 1, 0) >= 0, c.find(0, 2, 0) >= 0], [true, false]);
});

test("6.2 FIFO replaces the oldest fill whatever was used since", () => {
  const c = new SetAssocStore({ sets: 1, ways: 2, policy: "fifo" });
  c.allocate(0, 1, 0);
  c.allocate(0, 2, 0);
  c.touch(c.find(0, 1, 0));
  c.allocate(0, 3, 0);
  assert.deepEqual([c.find(0, 1, 0) >= 0, c.find(0, 2, 0) >= 0], [false, true]);
});

test("6.2 random replacement is reproducible for a seed", () => {
  const run = (seed: number) => {
    const c = new SetAssocStore({ sets: 1, ways: 4, policy: "random", seed });
    for (let k = 0; k < 40; k++) c.allocate(0, k, 0);
    return [...Array(40).keys()].filter((k) => c.find(0, k, 0) >= 0);
  };
  assert.deepEqual(run(42), run(42));
  assert.equal(run(42).length, 4);
  assert.notDeepEqual(run(1), run(2));
});
