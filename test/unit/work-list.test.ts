/** Issue 17: work lists planned by HEAD and by the ranges that hold them give the actions a whole-listing plan gives for those keys. */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { compareKeys } from "../../src/core/keys.js";
import { parseWorkList, planByHead, planListedRanges, workListRanges } from "../../src/planner/work-list.js";
import { collect, describeAction, storePair } from "../helpers/memory.js";

test("parseWorkList: lines (CRLF too) or NUL entries, a line's key ends at its first tab, sorted, no duplicates", () => {
  assert.deepEqual(parseWorkList("b\r\na\tcopy: failed\n\nb\nc d\n", false), ["a", "b", "c d"]);
  assert.deepEqual(parseWorkList("x\ty\0new\nline\0\0a\0", true), ["a", "new\nline", "x\ty"]);
  assert.deepEqual(parseWorkList("\u{1F600}\n\uE000\n", false), ["\uE000", "\u{1F600}"]);
});

test("workListRanges: every key lies in its own range, ranges in key order", () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.string({ unit: "grapheme", minLength: 1, maxLength: 6 }), { maxLength: 60 }),
      (raw) => {
        const keys = [...raw].sort(compareKeys);
        const ranges = workListRanges(keys, 7);
        assert.equal(
          ranges.reduce((n, r) => n + r.keys.size, 0),
          keys.length,
        );
        for (const { range, keys: inRange } of ranges)
          for (const k of inRange) {
            if (range.startAfter !== undefined) assert.ok(compareKeys(range.startAfter, k) < 0);
            assert.ok(compareKeys(k, range.endAt!) <= 0);
          }
      },
    ),
  );
});

test("a work list plans exactly what the whole plan does for its keys, by HEAD and by ranges", async () => {
  const src = ["a", "b", "c", "d/1", "d/2", "e", "z"];
  const dst = ["b", "c", "d/1", "f", "g", "z"];
  const { source, target, options, whole } = await storePair(src, dst);
  const list = ["a", "c", "d/2", "f", "missing", "z"];
  const want = whole.filter((line) => list.includes(line.slice(line.indexOf(" ") + 1)));
  const byHead = (await collect(planByHead(list, source, target, options, 3))).map(describeAction).sort();
  assert.deepEqual(byHead, want);
  assert.ok(want.includes("delete f") && !want.some((l) => l.endsWith(" g")));
  const byRange = (await collect(planListedRanges(list, source, target, options, 2))).map(describeAction).sort();
  assert.deepEqual(byRange, want);
});
