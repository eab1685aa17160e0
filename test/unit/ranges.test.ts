import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { mergeConcurrently, planInRanges, rangesFromSplitPoints } from "../../src/planner/ranges.js";
import { collect, describeAction as describe, storePair } from "../helpers/memory.js";

test("ranges from split points cover the key space once: (-inf,p1], (p1,p2], (p2,+inf)", () => {
  assert.deepEqual(rangesFromSplitPoints([]), [{}]);
  assert.deepEqual(rangesFromSplitPoints(["m", "c", "m"]), [
    { endAt: "c" },
    { startAfter: "c", endAt: "m" },
    { startAfter: "m" },
  ]);
});

test("ranged planning yields exactly the actions of one merge-join, whatever the split points", async () => {
  const keyArb = fc.string({
    unit: fc.constantFrom("a", "b", "/", "-", ".", "\u{1F600}", "\uE000"),
    minLength: 1,
    maxLength: 4,
  });
  await fc.assert(
    fc.asyncProperty(
      fc.uniqueArray(keyArb, { maxLength: 40 }),
      fc.uniqueArray(keyArb, { maxLength: 40 }),
      fc.array(keyArb, { maxLength: 6 }),
      fc.integer({ min: 1, max: 4 }),
      async (src, dst, points, parallel) => {
        const { source, target, options, whole } = await storePair(src, dst);
        const ranged = (
          await collect(
            planInRanges(
              rangesFromSplitPoints(points),
              (r) => source.list(r),
              (r) => target.list(r),
              options,
              parallel,
            ),
          )
        )
          .map(describe)
          .sort();
        assert.deepEqual(ranged, whole);
      },
    ),
    { numRuns: 300 },
  );
});

test("mergeConcurrently runs at most `parallel` sources and propagates errors", async () => {
  let running = 0;
  let peak = 0;
  const source = (n: number) =>
    async function* () {
      running++;
      peak = Math.max(peak, running);
      for (let i = 0; i < n; i++) {
        await new Promise((r) => setImmediate(r));
        yield i;
      }
      running--;
    };
  const items = await collect(mergeConcurrently([source(3), source(5), source(2), source(4)], 2));
  assert.equal(items.length, 14);
  assert.ok(peak <= 2, `peak ${peak}`);
  async function* failing() {
    yield 1;
    throw new Error("listing broke");
  }
  await assert.rejects(collect(mergeConcurrently([source(50), () => failing()], 2)), /listing broke/);
});
