import { test } from "node:test";
import assert from "node:assert/strict";
import { execute } from "../../src/executor/executor.js";
import { AdaptiveLimit } from "../../src/executor/adaptive-limit.js";
import type { SyncEvent } from "../../src/executor/events.js";
import { DeleteSpool } from "../../src/executor/delete-spool.js";
import { plan } from "../../src/planner/planner.js";
import { sizeAndTime } from "../../src/planner/compare.js";
import { MemoryStore } from "../../src/stores/memory/memory-store.js";
import { collect } from "../helpers/memory.js";

const fastRetry = { attempts: 2, baseDelayMs: 1, maxDelayMs: 2 };

async function run(
  source: MemoryStore,
  target: MemoryStore,
  opts: { delete?: boolean; dryRun?: boolean; maxDelete?: number; acl?: "public-read"; concurrency?: number } = {},
) {
  const events: SyncEvent[] = [];
  const actions = plan(source.list(), target.list(), {
    compare: sizeAndTime,
    filter: () => true,
    delete: opts.delete ?? false,
  });
  const result = await execute(actions, {
    source,
    target,
    concurrency: opts.concurrency ?? 4,
    dryRun: opts.dryRun ?? false,
    write: { acl: opts.acl },
    maxDelete: opts.maxDelete,
    retry: fastRetry,
    onEvent: (e) => events.push(e),
  });
  return { ...result, events };
}

function stores() {
  const source = new MemoryStore("src");
  const target = new MemoryStore("dst");
  source.set("a", "A");
  source.set("b", "B");
  target.set("old-1", "x");
  target.set("old-2", "y");
  return { source, target };
}

test("executor: copies new objects with the ACL, then deletes what the source lacks", async () => {
  const { source, target } = stores();
  const r = await run(source, target, { delete: true, acl: "public-read" });
  assert.deepEqual([...target.objects.keys()].sort(), ["a", "b"]);
  assert.equal(target.content("a"), "A");
  assert.equal(target.acl("a"), "public-read");
  assert.equal(r.summary.copied, 2);
  assert.equal(r.summary.deleted, 2);
  const order = r.events.filter((e) => e.type === "copy" || e.type === "delete").map((e) => e.type);
  assert.deepEqual(order, ["copy", "copy", "delete", "delete"], "deletes come after every copy");
});

test("executor: one failed copy means no deletes at all", async () => {
  const { source, target } = stores();
  source.failingKeys.add("b");
  const r = await run(source, target, { delete: true });
  assert.equal(r.summary.failed, 1);
  assert.equal(r.summary.deleted, 0);
  assert.ok(target.objects.has("old-1") && target.objects.has("old-2"), "nothing deleted");
  assert.match(r.summary.deletesWithheld ?? "", /2 delete\(s\) not run: 1 object\(s\) failed/);
  assert.ok(r.events.some((e) => e.type === "error" && e.key === "b"));
});

test("executor: dry run reports the plan and changes nothing", async () => {
  const { source, target } = stores();
  const before = [...target.objects.keys()];
  const r = await run(source, target, { delete: true, dryRun: true });
  assert.deepEqual([...target.objects.keys()], before);
  assert.equal(r.summary.copied, 2);
  assert.equal(r.summary.deleted, 2);
  assert.ok(r.events.every((e) => !("dryRun" in e) || e.dryRun));
  assert.equal(r.changedNothing, true);
});

test("executor: --max-delete is all or nothing", async () => {
  const { source, target } = stores();
  const r = await run(source, target, { delete: true, maxDelete: 1 });
  assert.equal(r.summary.deleted, 0);
  assert.equal(target.objects.size, 4, "copies ran, no delete did");
  assert.match(r.summary.deletesWithheld ?? "", /more than --max-delete 1/);
  const ok = await run(source, target, { delete: true, maxDelete: 2 });
  assert.equal(ok.summary.deleted, 2);
});

test("executor: per-key delete errors are read and reported", async () => {
  const { source, target } = stores();
  target.failingKeys.add("old-2");
  const r = await run(source, target, { delete: true });
  assert.equal(r.summary.deleted, 1);
  assert.equal(r.summary.failed, 1);
  assert.ok(r.events.some((e) => e.type === "error" && e.key === "old-2" && e.action === "delete"));
});

test("executor: a re-run after success does nothing", async () => {
  const { source, target } = stores();
  await run(source, target, { delete: true });
  const again = await run(source, target, { delete: true });
  assert.deepEqual(
    [again.summary.copied, again.summary.updated, again.summary.deleted, again.summary.skipped],
    [0, 0, 0, 2],
  );
});

test("executor: many objects with concurrency 1 and 50 both converge", async () => {
  for (const concurrency of [1, 50]) {
    const source = new MemoryStore();
    const target = new MemoryStore();
    for (let i = 0; i < 500; i++) source.set(`k/${i}`, `v${i}`);
    for (let i = 0; i < 100; i++) target.set(`z/${i}`, "gone");
    const r = await run(source, target, { delete: true, concurrency });
    assert.equal(target.objects.size, 500);
    assert.equal(r.summary.deleted, 100);
  }
});

test("delete spool: spills to a temporary file past its memory limit and keeps order", async () => {
  const spool = new DeleteSpool(3);
  for (let i = 0; i < 10; i++) await spool.add({ key: `k${i}`, size: i });
  const batches = await collect(spool.batches(4));
  assert.deepEqual(
    batches.map((b) => b.map((d) => d.key)),
    [
      ["k0", "k1", "k2", "k3"],
      ["k4", "k5", "k6", "k7"],
      ["k8", "k9"],
    ],
  );
  assert.equal(spool.bytes, 45);
  spool.dispose();
});

test("adaptive limit: a burst of throttles halves once; throttles of requests sent after the decrease halve again", async () => {
  const limit = new AdaptiveLimit(64);
  const firstRound = await Promise.all(Array.from({ length: 64 }, () => limit.acquire()));
  for (const epoch of firstRound) limit.onThrottle(epoch);
  assert.equal(limit.current, 32, "64 throttles from one round are one signal");
  for (let i = 0; i < 64; i++) limit.release();
  const secondRound = await Promise.all(Array.from({ length: 32 }, () => limit.acquire()));
  let waited = false;
  const extra = limit.acquire().then(() => (waited = true));
  await new Promise((r) => setImmediate(r));
  assert.equal(waited, false, "a 33rd request waits for a slot");
  for (const epoch of secondRound) limit.onThrottle(epoch);
  assert.equal(limit.current, 16);
  for (let i = 0; i < 32; i++) limit.release();
  await extra;
  // Additive increase: one more slot after a full window of successes.
  for (let i = 0; i < 16; i++) limit.onSuccess();
  assert.equal(limit.current, 17);
});
