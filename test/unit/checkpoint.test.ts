/** Issue 17: a resumable run's progress: watermarks move only over settled actions; a failure holds its range back. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { CheckpointProgress } from "../../src/planner/checkpoint.js";
import { rangesFromSplitPoints } from "../../src/planner/ranges.js";
import type { Action } from "../../src/planner/planner.js";
import { collect, iterate } from "../helpers/memory.js";

const o = (key: string) => ({ key, size: 1, lastModified: 0 });
const copy = (key: string): Action => ({ type: "copy", key, source: o(key), reason: "new" });
const del = (key: string): Action => ({ type: "delete", key, target: o(key), reason: "not in source" });

test("watermarks follow settled actions in key order; deletes go with them; a failed key holds its range", async () => {
  const ranges = rangesFromSplitPoints(["m"]); // (-inf, m], (m, +inf)
  const p = new CheckpointProgress(ranges, new Map());
  await collect(p.track(0, iterate([copy("a"), del("b"), copy("c")])));
  await collect(p.track(1, iterate([copy("n"), copy("o")])));
  assert.deepEqual(p.updates(), []);
  p.settled("c", true);
  assert.deepEqual(p.updates(), [], "c waits for a");
  p.settled("a", true);
  assert.deepEqual(p.updates(), [
    { index: 0, after: "c", done: true, deletes: [{ key: "b", size: 1, etag: undefined }], sourceObjects: 0 },
  ]);
  p.settled("n", false);
  p.settled("o", true);
  assert.deepEqual(p.updates(), []);
  assert.equal(p.complete, false);
  // The next run plans the failed range again from where it stood, and not the done one.
  assert.deepEqual(p.pending(), [{ index: 1, range: { startAfter: "m" } }]);
  const resumed = new CheckpointProgress(ranges, new Map([[1, { after: "n", done: false }]]));
  assert.deepEqual(resumed.pending(), [
    { index: 0, range: { endAt: "m" } },
    { index: 1, range: { startAfter: "n" } },
  ]);
});
