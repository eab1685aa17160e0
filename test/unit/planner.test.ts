import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { plan, ListingOrderError, ListingError, type Action } from "../../src/planner/planner.js";
import { sizeAndTime } from "../../src/planner/compare.js";
import { compileFilters, type FilterRule } from "../../src/planner/filters.js";
import { compareKeys } from "../../src/core/keys.js";
import type { ObjectInfo } from "../../src/core/types.js";
import { collect, iterate, listing } from "../helpers/memory.js";

const summarize = (actions: Action[]) =>
  actions.map((a) => `${a.type} ${a.key}${a.type === "update" || a.type === "skip" ? ` (${a.reason})` : ""}`);

const cases: {
  name: string;
  source: [string, number, number][];
  target: [string, number, number][];
  filters?: FilterRule[];
  delete?: boolean;
  expect: string[];
}[] = [
  { name: "empty on both sides", source: [], target: [], expect: [] },
  {
    name: "source only: everything is new",
    source: [
      ["a", 1, 1],
      ["b", 1, 1],
    ],
    target: [],
    expect: ["copy a", "copy b"],
  },
  { name: "target only without --delete: nothing", source: [], target: [["a", 1, 1]], expect: [] },
  {
    name: "target only with --delete",
    source: [],
    target: [
      ["a", 1, 1],
      ["b", 1, 1],
    ],
    delete: true,
    expect: ["delete a", "delete b"],
  },
  {
    name: "both: same, bigger, newer, older",
    source: [
      ["newer", 1, 9],
      ["older", 1, 1],
      ["same", 1, 5],
      ["size", 2, 5],
    ],
    target: [
      ["newer", 1, 5],
      ["older", 1, 5],
      ["same", 1, 5],
      ["size", 1, 5],
    ],
    expect: [
      "update newer (source newer)",
      "skip older (same size and not newer)",
      "skip same (same size and not newer)",
      "update size (size differs)",
    ],
  },
  {
    name: "interleaved keys, S3 order with / and -",
    source: [
      ["test-1", 1, 1],
      ["test.txt", 1, 1],
      ["test/x", 1, 1],
    ],
    target: [
      ["test", 1, 1],
      ["test.txt", 1, 1],
      ["test/y", 1, 1],
    ],
    delete: true,
    expect: ["delete test", "copy test-1", "skip test.txt (same size and not newer)", "copy test/x", "delete test/y"],
  },
  {
    name: "excluded keys are neither copied nor deleted",
    source: [
      ["a.jpg", 1, 1],
      ["b.tmp", 1, 1],
    ],
    target: [
      ["c.tmp", 1, 1],
      ["d.jpg", 1, 1],
    ],
    filters: [{ type: "exclude", pattern: "*.tmp" }],
    delete: true,
    expect: ["copy a.jpg", "delete d.jpg"],
  },
  {
    name: "include after exclude re-includes",
    source: [
      ["logs/a", 1, 1],
      ["logs/keep", 1, 1],
      ["x", 1, 1],
    ],
    target: [],
    filters: [
      { type: "exclude", pattern: "logs/*" },
      { type: "include", pattern: "logs/keep" },
    ],
    expect: ["copy logs/keep", "copy x"],
  },
];

for (const c of cases) {
  test(`planner: ${c.name}`, async () => {
    const actions = await collect(
      plan(iterate(listing(c.source)), iterate(listing(c.target)), {
        compare: sizeAndTime,
        filter: compileFilters(c.filters ?? []),
        delete: c.delete ?? false,
      }),
    );
    assert.deepEqual(summarize(actions), c.expect);
  });
}

test("planner: an out-of-order listing stops with a clear error", async () => {
  const run = collect(
    plan(
      iterate(
        listing([
          ["b", 1, 1],
          ["a", 1, 1],
        ]),
      ),
      iterate([]),
      { compare: sizeAndTime, filter: () => true, delete: true },
    ),
  );
  await assert.rejects(
    run,
    (err: Error) =>
      err instanceof ListingOrderError && /source listing is out of order: 'a' came after 'b'/.test(err.message),
  );
});

test("planner: JS-sorted keys with characters above U+FFFF are out of S3 order and rejected", async () => {
  const jsSorted = ["\u{1F600}", "\uE000"]; // JS order; S3 order is the reverse
  const run = collect(
    plan(iterate([]), iterate(jsSorted.map((key) => ({ key, size: 1, lastModified: 1 }))), {
      compare: sizeAndTime,
      filter: () => true,
      delete: true,
    }),
  );
  await assert.rejects(run, ListingOrderError);
});

test("planner: a failing listing surfaces as a ListingError naming the side", async () => {
  async function* broken(): AsyncGenerator<ObjectInfo> {
    yield { key: "a", size: 1, lastModified: 1 };
    throw Object.assign(new Error("boom"), { name: "InternalError" });
  }
  const run = collect(plan(iterate([]), broken(), { compare: sizeAndTime, filter: () => true, delete: true }));
  await assert.rejects(run, (err: Error) => err instanceof ListingError && err.side === "target");
});

test("planner: holds one entry per side (pulls lazily)", async () => {
  let pulled = 0;
  async function* counting(n: number): AsyncGenerator<ObjectInfo> {
    for (let i = 0; i < n; i++) {
      pulled++;
      yield { key: `k${String(i).padStart(6, "0")}`, size: 1, lastModified: 1 };
    }
  }
  const it = plan(counting(100_000), iterate([]), { compare: sizeAndTime, filter: () => true, delete: false });
  await it.next();
  await it.next();
  assert.ok(pulled <= 3, `pulled ${pulled} entries to produce 2 actions`);
  await it.return(undefined);
});

// Property: applying the plan makes the filtered target equal the filtered source, and never deletes outside the filter.
test("planner property: applying the actions makes the target match the filtered source", async () => {
  const keyArb = fc.string({
    unit: fc.constantFrom("a", "b", "/", "-", ".", "\u{1F600}", "\uE000", "é"),
    minLength: 1,
    maxLength: 5,
  });
  const entries = fc.uniqueArray(
    fc.record({ key: keyArb, size: fc.integer({ min: 0, max: 3 }), lastModified: fc.integer({ min: 0, max: 3 }) }),
    { selector: (e) => e.key, maxLength: 30 },
  );
  const rules = fc.array(
    fc.record({
      type: fc.constantFrom("include" as const, "exclude" as const),
      pattern: fc.constantFrom("a*", "*b", "*/*", "-*", "*\u{1F600}*", "?"),
    }),
    { maxLength: 3 },
  );
  await fc.assert(
    fc.asyncProperty(entries, entries, rules, async (src, dst, filters) => {
      const sorted = (xs: ObjectInfo[]) => [...xs].sort((x, y) => compareKeys(x.key, y.key));
      const filter = compileFilters(filters);
      const target = new Map(dst.map((e) => [e.key, e]));
      for await (const action of plan(iterate(sorted(src)), iterate(sorted(dst)), {
        compare: sizeAndTime,
        filter,
        delete: true,
      })) {
        assert.ok(filter(action.key), `action on a filtered-out key ${action.key}`);
        if (action.type === "copy" || action.type === "update") target.set(action.key, action.source);
        if (action.type === "delete") {
          assert.ok(!src.some((s) => s.key === action.key && filter(s.key)), "deleted a key the source has");
          target.delete(action.key);
        }
      }
      const want = src
        .filter((e) => filter(e.key))
        .map((e) => e.key)
        .sort(compareKeys);
      const got = [...target.keys()].filter(filter).sort(compareKeys);
      assert.deepEqual(got, want);
      for (const e of dst) if (!filter(e.key)) assert.equal(target.get(e.key), e, "an excluded target key was touched");
      for (const s of src.filter((e) => filter(e.key))) {
        const t = target.get(s.key)!;
        assert.ok(t.size === s.size && t.lastModified >= s.lastModified, `key ${s.key} not brought up to date`);
      }
    }),
    { numRuns: 500 },
  );
});
