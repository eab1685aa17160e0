import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { planFolderSplit, splitByFolders, type LevelLister } from "../../src/planner/folders.js";
import type { KeyRange, ObjectInfo } from "../../src/core/types.js";
import { MemoryStore } from "../../src/stores/memory/memory-store.js";
import { sizeAndTime } from "../../src/planner/compare.js";
import { collect, describeAction as describe, storePair } from "../helpers/memory.js";

/** A delimiter listing of one level of a memory store; undefined past `maxEntries` (too large to hold). */
function levels(store: MemoryStore, keys: string[], maxEntries: number, asked: string[]): LevelLister {
  return async (folder) => {
    assert.ok(
      folder === "" || keys.some((k) => k.startsWith(folder)),
      `asked for ${folder}, which this side does not have`,
    );
    asked.push(folder);
    const folders = new Set<string>();
    const objects: ObjectInfo[] = [];
    for await (const o of store.list({ prefix: folder })) {
      const slash = o.key.indexOf("/", folder.length);
      if (slash >= 0) folders.add(o.key.slice(0, slash + 1));
      else objects.push(o);
    }
    return folders.size + objects.length > maxEntries ? undefined : { folders: [...folders], objects };
  };
}

function lister(store: MemoryStore, keys: string[]) {
  return (range: KeyRange) => {
    assert.ok(
      range.prefix && keys.some((k) => k.startsWith(range.prefix!)),
      `listed ${range.prefix}, which this side does not have`,
    );
    return store.list(range);
  };
}

test("a folder split plans exactly the actions of one merge-join, and never lists a folder on a side without it", async () => {
  const keyArb = fc.string({ unit: fc.constantFrom("a", "b", "/", "/", ".", "\u{1F600}"), minLength: 1, maxLength: 7 });
  await fc.assert(
    fc.asyncProperty(
      fc.uniqueArray(keyArb, { maxLength: 50 }),
      fc.uniqueArray(keyArb, { maxLength: 50 }),
      fc.record({
        parallel: fc.integer({ min: 1, max: 8 }),
        maxEntries: fc.integer({ min: 1, max: 12 }),
        maxFolders: fc.integer({ min: 1, max: 30 }),
        maxLoose: fc.integer({ min: 0, max: 40 }),
      }),
      async (src, dst, o) => {
        const { source, target, options, whole } = await storePair(src, dst);
        const asked: string[] = [];
        const split = await splitByFolders(
          levels(source, src, o.maxEntries, asked),
          levels(target, dst, o.maxEntries, asked),
          {
            ...o,
            // Every other key inside the folder, as a sample.
            splitFolder: async (folder) =>
              src
                .filter((k) => k.startsWith(folder))
                .sort()
                .filter((_, i) => i % 2 === 0),
          },
        );
        if (!split) {
          // Only when a top level is too large.
          assert.ok(asked.length <= 2);
          return;
        }
        // Objects found below the top level are held only up to maxLoose.
        const topLoose = (keys: string[]) => keys.filter((k) => !k.includes("/")).length;
        assert.ok(split.looseSource.length <= Math.max(o.maxLoose, topLoose(src)), "source objects held");
        assert.ok(split.looseTarget.length <= Math.max(o.maxLoose, topLoose(dst)), "target objects held");
        const byFolder = (
          await collect(planFolderSplit(split, lister(source, src), lister(target, dst), options, o.parallel))
        )
          .map(describe)
          .sort();
        assert.deepEqual(byFolder, whole);
      },
    ),
    { numRuns: 500 },
  );
});

test("descends into a lone folder and splits a folder too large to list by key", async () => {
  const source = new MemoryStore("s");
  const keys = [
    ...Array.from({ length: 30 }, (_, i) => `logs/2025/${String(i).padStart(2, "0")}`),
    ...Array.from({ length: 30 }, (_, i) => `logs/2026/${i}`),
    "logs/readme",
    "top",
  ];
  for (const k of keys) source.set(k, "x");
  const target = new MemoryStore("t");
  const asked: string[] = [];
  const split = await splitByFolders(levels(source, keys, 10, asked), levels(target, [], 10, asked), {
    parallel: 4,
    splitFolder: async (folder) => (folder === "logs/2025/" ? ["logs/2025/09", "logs/2025/19", "elsewhere"] : []),
  });
  assert.ok(split);
  assert.deepEqual(
    split.looseSource.map((o) => o.key),
    ["logs/readme", "top"],
  );
  assert.deepEqual(
    split.parts.map((p) => [p.range, p.inSource, p.inTarget]),
    [
      [{ prefix: "logs/2025/", endAt: "logs/2025/09" }, true, false],
      [{ prefix: "logs/2025/", startAfter: "logs/2025/09", endAt: "logs/2025/19" }, true, false],
      [{ prefix: "logs/2025/", startAfter: "logs/2025/19" }, true, false],
      [{ prefix: "logs/2026/" }, true, false],
    ],
  );
  // The empty target was asked for its top level only.
  assert.deepEqual(asked.filter((f) => f === "").length, 2);
});

test("a folder with too many subfolders to list one by one is split at their names", async () => {
  const keys = Array.from({ length: 100 }, (_, i) => `data/${String(i).padStart(3, "0")}/k`);
  const source = new MemoryStore("s");
  for (const k of keys) source.set(k, "x");
  const asked: string[] = [];
  const split = await splitByFolders(levels(source, keys, 1000, asked), levels(new MemoryStore("t"), [], 1000, asked), {
    parallel: 4,
    splitFolder: async () => assert.fail("no folder is too large to list"),
  });
  assert.ok(split);
  assert.equal(split.parts.length, 8, "2 ranges per listing slot");
  assert.ok(split.parts.every((p) => p.range.prefix === "data/" && p.inSource && !p.inTarget));
  assert.deepEqual(split.parts[0]!.range, { prefix: "data/", endAt: "data/012/" });
});

test("a folder that was reported but lists no keys stops the plan (a misreported name must not read as empty)", async () => {
  const source = new MemoryStore("s");
  source.set("a b/x", "x");
  const target = new MemoryStore("t");
  target.set("a+b/x", "x");
  // The source's server named its folder "a+b/" although its keys are "a b/..." (a server that
  // leaves folder names unencoded under encoding-type=url): listed under that name it is empty.
  const split = {
    looseSource: [],
    looseTarget: [],
    parts: [{ range: { prefix: "a+b/" }, inSource: true, inTarget: true }],
  };
  const options = { compare: sizeAndTime, filter: () => true, delete: true };
  await assert.rejects(
    collect(
      planFolderSplit(
        split,
        (r) => source.list(r),
        (r) => target.list(r),
        options,
        2,
      ),
    ),
    /the folder "a\+b\/" was reported but lists no keys/,
  );
});
