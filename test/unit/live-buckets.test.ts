/**
 * Issue 15, the executor's side with in-memory stores: what is backed up and in what order (no
 * replace or delete before its backup succeeded), no-clobber, re-planning a source that moved on,
 * conditional writes, and --max-delete as a share.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execute, tooManyDeletes } from "../../src/executor/executor.js";
import { Backup, backupKey } from "../../src/executor/backup.js";
import type { SyncEvent } from "../../src/executor/events.js";
import type { OptionValues } from "../../src/options/table.js";
import { plan } from "../../src/planner/planner.js";
import { sizeAndTime } from "../../src/planner/compare.js";
import { MemoryStore } from "../../src/stores/memory/memory-store.js";

const fastRetry = { attempts: 2, baseDelayMs: 1, maxDelayMs: 2 };

async function run(
  source: MemoryStore,
  target: MemoryStore,
  opts: { backup?: MemoryStore; settings?: OptionValues; dryRun?: boolean; suffix?: string } = {},
) {
  const events: SyncEvent[] = [];
  const actions = plan(source.list(), target.list(), { compare: sizeAndTime, filter: () => true, delete: true });
  const result = await execute(actions, {
    source,
    target,
    concurrency: 1,
    dryRun: opts.dryRun ?? false,
    retry: fastRetry,
    settings: opts.settings,
    hooks: opts.backup ? new Backup(target, opts.backup, { suffix: opts.suffix, retry: fastRetry }) : undefined,
    onEvent: (e) => events.push(e),
  });
  return { ...result, events };
}

function stores() {
  const source = new MemoryStore("src");
  const target = new MemoryStore("dst");
  const backup = new MemoryStore("bak");
  source.set("a.txt", "new, longer", { lastModified: 2000 });
  source.set("same.txt", "same", { lastModified: 1000 });
  target.set("a.txt", "old", { lastModified: 1000, contentType: "text/old" });
  target.set("same.txt", "same", { lastModified: 1000 });
  target.set("z-extra.txt", "extra", { lastModified: 1000 });
  return { source, target, backup };
}

test("backups: each replaced and deleted object is saved first (its backup event comes before its copy or delete)", async () => {
  const { source, target, backup } = stores();
  const { events, summary } = await run(source, target, { backup, suffix: "-1" });
  assert.deepEqual([...backup.objects.keys()].sort(), ["a.txt-1", "z-extra.txt-1"]);
  assert.equal(backup.content("a.txt-1"), "old");
  assert.equal(backup.objects.get("a.txt-1")?.details.contentType, "text/old");
  assert.equal(backup.content("z-extra.txt-1"), "extra");
  assert.equal(target.content("a.txt"), "new, longer");
  assert.equal(target.objects.has("z-extra.txt"), false);
  const order = events
    .filter((e) => e.type !== "skip" && e.type !== "summary")
    .map((e) => `${e.type} ${"key" in e ? e.key : ""}`);
  assert.deepEqual(order, ["backup a.txt", "update a.txt", "backup z-extra.txt", "delete z-extra.txt"]);
  assert.equal(summary.backedUp, 2);
});

test("backups: a backup that fails keeps that object as it was (not replaced, not deleted), counted as failed", async () => {
  const { source, target, backup } = stores();
  backup.failingKeys.add("a.txt");
  const first = await run(source, target, { backup });
  assert.equal(first.summary.failed, 1);
  assert.equal(target.content("a.txt"), "old", "no replace before its backup succeeded");
  assert.equal(target.objects.has("z-extra.txt"), true, "a failed object withholds the deletes");
  backup.failingKeys.clear();
  backup.failingKeys.add("z-extra.txt");
  const second = await run(source, target, { backup });
  assert.equal(second.summary.failed, 1);
  assert.equal(target.content("a.txt"), "new, longer");
  assert.equal(target.objects.has("z-extra.txt"), true, "no delete before its backup succeeded");
  assert.ok(second.events.some((e) => e.type === "error" && e.key === "z-extra.txt" && /its backup/.test(e.message)));
});

test("backups: a dry run says what would be backed up and writes nothing", async () => {
  const { source, target, backup } = stores();
  const { events } = await run(source, target, { backup, dryRun: true });
  assert.deepEqual(
    events.filter((e) => e.type === "backup").map((e) => e.type === "backup" && [e.key, e.before, e.dryRun]),
    [
      ["a.txt", "update", true],
      ["z-extra.txt", "delete", true],
    ],
  );
  assert.equal(backup.objects.size, 0);
  assert.equal(target.content("a.txt"), "old");
});

test("backupKey: the suffix goes at the end, or before the extension with --suffix-keep-extension", () => {
  assert.equal(backupKey("dir/a.txt"), "dir/a.txt");
  assert.equal(backupKey("dir/a.txt", "-2026"), "dir/a.txt-2026");
  assert.equal(backupKey("dir/a.tar.gz", "-2026", true), "dir/a.tar-2026.gz");
  assert.equal(backupKey("dir.v2/README", "-2026", true), "dir.v2/README-2026");
  assert.equal(backupKey(".env", "-2026", true), ".env-2026");
});

test("--no-overwrite skips every update; --immutable fails them; new objects are copied either way", async () => {
  for (const [settings, failed] of [
    [{ noOverwrite: true }, 0],
    [{ immutable: true }, 1],
  ] as const) {
    const { source, target } = stores();
    source.set("new.txt", "n");
    const { summary } = await run(source, target, { settings });
    assert.equal(target.content("a.txt"), "old");
    assert.equal(target.content("new.txt"), "n");
    assert.equal(summary.failed, failed);
  }
});

test("a source rewritten after the listing: the copy is pinned (412), the key is re-read and its newer object copied", async () => {
  const { source, target } = stores();
  let rewritten = false;
  source.beforeRead = (key) => {
    if (key === "a.txt" && !rewritten) {
      rewritten = true;
      source.set("a.txt", "rewritten meanwhile", { lastModified: 3000 });
    }
  };
  const { events, summary } = await run(source, target);
  assert.equal(target.content("a.txt"), "rewritten meanwhile");
  assert.ok(events.some((e) => e.type === "replan" && e.key === "a.txt"));
  assert.equal(summary.failed, 0);
  assert.equal(summary.replanned, 1);
});

test("conditional writes: a target key someone else wrote after the listing is reported and kept", async () => {
  const { source, target } = stores();
  source.set("new.txt", "ours");
  source.beforeRead = (key) => {
    if (key === "new.txt" && !target.objects.has("new.txt")) target.set("new.txt", "theirs");
  };
  const { events, summary } = await run(source, target);
  assert.equal(target.content("new.txt"), "theirs");
  assert.equal(summary.failed, 1);
  assert.ok(events.some((e) => e.type === "error" && e.key === "new.txt" && e.code === "PreconditionFailed"));
  // Without conditional writes the plan's write goes through.
  const again = stores();
  again.source.set("new.txt", "ours");
  again.source.beforeRead = (key) => {
    if (key === "new.txt" && !again.target.objects.has("new.txt")) again.target.set("new.txt", "theirs");
  };
  await run(again.source, again.target, { settings: { conditionalWrites: false } });
  assert.equal(again.target.content("new.txt"), "ours");
});

test("--max-delete as a share of the target's objects in scope", () => {
  assert.equal(tooManyDeletes(9, 100, "10%"), undefined);
  assert.equal(tooManyDeletes(10, 100, "10%"), undefined);
  assert.match(tooManyDeletes(11, 100, "10%")!, /11 deletions planned, 11\.0% of the 100 target objects/);
  assert.equal(tooManyDeletes(5, 100, 5), undefined);
  assert.match(tooManyDeletes(6, 100, 5)!, /more than --max-delete 5/);
  assert.equal(tooManyDeletes(0, 0, "0%"), undefined);
});
