import { test } from "node:test";
import assert from "node:assert/strict";
import { compileAttributeFilters, parseTimeBound } from "../../src/planner/attributes.js";
import { plan } from "../../src/planner/planner.js";
import { sizeAndTime } from "../../src/planner/compare.js";
import { MemoryStore } from "../../src/stores/memory/memory-store.js";
import { UsageError } from "../../src/core/types.js";
import { collect } from "../helpers/memory.js";

test("time bounds: durations count back from now; timestamps are absolute; junk is a usage error", () => {
  const now = Date.parse("2026-11-25T00:00:00Z");
  assert.equal(parseTimeBound("--newer-than", "7d", now), now - 7 * 86_400_000);
  assert.equal(parseTimeBound("--newer-than", "12h", now), now - 12 * 3_600_000);
  assert.equal(parseTimeBound("--older-than", "2026-11-24T12:00:00Z", now), Date.parse("2026-11-24T12:00:00Z"));
  assert.throws(() => parseTimeBound("--older-than", "yesterday-ish", now), UsageError);
});

test("attribute filters select exactly the objects in range, on both sides", async () => {
  const source = new MemoryStore("s");
  const target = new MemoryStore("t");
  source.set("small", "x", { lastModified: 1000 });
  source.set("medium", "x".repeat(50), { lastModified: 5000, contentType: "image/png", metadata: { team: "web-a" } });
  source.set("large", "x".repeat(500), { lastModified: 9000, contentType: "text/html", metadata: { team: "data" } });
  target.set("old-tiny", "y", { lastModified: 1 });
  target.set("old-medium", "y".repeat(60), { lastModified: 1 });
  const run = async (f: Parameters<typeof compileAttributeFilters>[0]) => {
    const actions = await collect(
      plan(source.list(), target.list(), {
        compare: sizeAndTime,
        filter: () => true,
        delete: true,
        sourceFilter: compileAttributeFilters(f, (k) => source.head(k)),
        targetFilter: compileAttributeFilters(f, (k) => target.head(k)),
      }),
    );
    return actions.map((a) => `${a.type} ${a.key}`).sort();
  };
  assert.deepEqual(
    await run({ minSize: 10, maxSize: 100 }),
    ["copy medium", "delete old-medium"],
    "old-tiny is outside the filter, so never deleted",
  );
  assert.deepEqual(await run({ newerThan: 4000 }), ["copy large", "copy medium"]);
  assert.deepEqual(await run({ olderThan: 4000 }), ["copy small", "delete old-medium", "delete old-tiny"]);
  assert.deepEqual(await run({ contentType: "image/*" }), ["copy medium"]);
  assert.deepEqual(await run({ metadata: { team: "web*" } }), ["copy medium"]);
  assert.equal(
    compileAttributeFilters({}, async () => undefined),
    undefined,
    "no filters: nothing to pay",
  );
});
