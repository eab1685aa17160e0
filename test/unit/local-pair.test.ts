import { after, test } from "node:test";
import assert from "node:assert/strict";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ObjectInfo } from "../../src/core/types.js";
import type { SyncEvent } from "../../src/executor/events.js";
import { plan } from "../../src/planner/planner.js";
import { MemoryStore } from "../../src/stores/memory/memory-store.js";
import { LocalStore } from "../../src/stores/local/local-store.js";
import {
  localCompareRule,
  MTIME_WINDOW_MS,
  pairListings,
  refusingFileFolderConflicts,
  withoutRedundantMarkers,
} from "../../src/planner/pairing.js";
import { check, sync } from "../../src/sync.js";
import { collect, iterate } from "../helpers/memory.js";

const base = mkdtempSync(join(tmpdir(), "bucketsync-local-pair-"));
after(() => rmSync(base, { recursive: true, force: true }));
let counter = 0;
const folder = () => {
  const dir = join(base, `t${counter++}`);
  mkdirSync(dir);
  return dir;
};
const entry = (key: string, size = 1, lastModified = 1_000_000): ObjectInfo => ({ key, size, lastModified });

test("redundant `d/` markers (with keys under them) are dropped; markers of empty directories stay", async () => {
  const listing = [
    entry("a"),
    entry("d/", 0),
    entry("d/x"),
    entry("e/", 0),
    entry("e/f/", 0),
    entry("e/f/g"),
    entry("m/", 0),
    entry("n/", 5),
    entry("n/x"),
    entry("z/", 0),
  ];
  const kept = (await collect(withoutRedundantMarkers(iterate(listing)))).map((o) => o.key);
  assert.deepEqual(kept, ["a", "d/x", "e/f/g", "m/", "n/", "n/x", "z/"]);
});

test("a source file `a` beside keys under `a/`: the keys under it are refused, in streaming memory", async () => {
  const refused: string[] = [];
  const fake = { refuseUnder: (k: string) => refused.push(k) } as unknown as LocalStore;
  const keys = ["a", "a b", "a-1", "a.txt", "a/b", "a/c/d", "ab", "ab/x", "b/", "b/c", "c", "c-d/e", "x", "x/"];
  const out = await collect(refusingFileFolderConflicts(iterate(keys.map((k) => entry(k))), fake, (k) => k !== "x"));
  assert.equal(out.length, keys.length, "every entry passes through");
  assert.deepEqual(refused, ["a", "a", "ab"], "`x` is excluded, so `x/` conflicts with nothing");
});

test("times with a local side compare within a window; checksum falls back to that window", () => {
  const t = 1_700_000_000_000;
  const rule = localCompareRule("size-and-time");
  assert.equal(rule(entry("k", 1, t + MTIME_WINDOW_MS), entry("k", 1, t)).copy, false, "within the window");
  assert.equal(rule(entry("k", 1, t + MTIME_WINDOW_MS + 1), entry("k", 1, t)).copy, true, "beyond it");
  assert.equal(rule(entry("k", 2, t), entry("k", 1, t)).copy, true, "size differs");
  const byChecksum = localCompareRule("checksum");
  const undecided = byChecksum({ ...entry("k", 1, t + 1500) }, { ...entry("k", 1, t), etag: "abc-2" });
  assert.deepEqual([undecided.copy, undecided.undecidable], [false, true]);
  assert.match(
    undecided.reason,
    /^checksum undecidable \(source no ETag, target multipart ETag\); same size and not newer$/,
  );
  const md5 = "0cc175b9c0f1b6a831c399e269772661";
  assert.equal(
    byChecksum({ ...entry("k"), etag: md5 }, { ...entry("k"), etag: md5.replace("0", "1") }).reason,
    "checksum differs",
  );
  assert.equal(localCompareRule("size-only")(entry("k", 1, t + 99_999), entry("k", 1, t)).copy, false);
});

class CountingLocal extends LocalStore {
  hashed: string[] = [];
  override async checksum(key: string, multipartEtag?: string): Promise<string | undefined> {
    this.hashed.push(key);
    return super.checksum(key, multipartEtag);
  }
}

test("--checksum with a local side hashes only files the other side has with the same size", async () => {
  const root = folder();
  for (const [name, content] of [
    ["both-same", "same"],
    ["both-changed", "old!"],
    ["local-only", "x"],
    ["size-differs", "short"],
    ["multipart", "mmmm"],
  ])
    writeFileSync(join(root, name!), content!);
  const local = new CountingLocal(root);
  const remote = new MemoryStore("remote");
  remote.set("both-same", "same");
  remote.set("both-changed", "new!");
  remote.set("remote-only", "y");
  remote.set("size-differs", "much longer");
  remote.set("multipart", "mmmm");
  remote.objects.get("multipart")!.details.etag = "0123456789abcdef0123456789abcdef-2";

  for (const [source, target] of [
    [local, remote],
    [remote, local],
  ] as const) {
    local.hashed = [];
    const paired = pairListings(source, target, "checksum", () => true);
    const actions = await collect(
      plan(paired.source, paired.target, { compare: paired.compare, filter: () => true, delete: true }),
    );
    const verdicts = Object.fromEntries(actions.map((a) => [a.key, `${a.type}: ${a.reason}`]));
    assert.deepEqual(
      local.hashed.sort(),
      ["both-changed", "both-same"],
      "multipart ETags cannot be compared, so that file is not read either",
    );
    assert.equal(verdicts["both-same"], "skip: same checksum");
    assert.equal(verdicts["both-changed"], "update: checksum differs");
    assert.match(verdicts["multipart"]!, /checksum undecidable/);
  }

  // Local to local: both sides hashed, still only for matching keys and sizes.
  const other = folder();
  writeFileSync(join(other, "both-same"), "same");
  writeFileSync(join(other, "both-changed"), "new!");
  const target = new CountingLocal(other);
  local.hashed = [];
  const paired = pairListings(local, target, "checksum", () => true);
  const actions = await collect(
    plan(paired.source, paired.target, { compare: paired.compare, filter: () => true, delete: false }),
  );
  assert.deepEqual(
    [local.hashed.sort(), target.hashed.sort()],
    [
      ["both-changed", "both-same"],
      ["both-changed", "both-same"],
    ],
  );
  assert.equal(actions.find((a) => a.key === "both-changed")?.reason, "checksum differs");
});

test("sync() into a local folder: unsafe and conflicting keys are errors, deletes are withheld, the rest lands", async () => {
  const parent = folder();
  const root = join(parent, "target");
  mkdirSync(root);
  writeFileSync(join(root, "stale.txt"), "not in the source");
  const source = new MemoryStore("src");
  for (const key of [
    "ok.txt",
    "../escape.txt",
    "a/../../b",
    "x//y",
    "./dot",
    "a",
    "a/b",
    "a/c",
    "dir/",
    "dir/inside.txt",
    "empty/",
  ])
    source.set(key, key.endsWith("/") ? "" : `content of ${key}`);
  const events: SyncEvent[] = [];
  const result = await sync({ source, target: root, delete: true, concurrency: 8, onEvent: (e) => events.push(e) });
  const errors = events.filter((e): e is Extract<SyncEvent, { type: "error" }> => e.type === "error");
  assert.deepEqual(errors.map((e) => [e.key, e.code]).sort(), [
    ["../escape.txt", "UnsafeKey"],
    ["./dot", "UnsafeKey"],
    ["a/../../b", "UnsafeKey"],
    ["a/b", "PathConflict"],
    ["a/c", "PathConflict"],
    ["x//y", "UnsafeKey"],
  ]);
  assert.equal(result.summary.failed, 6);
  assert.match(result.summary.deletesWithheld ?? "", /6 object\(s\) failed/);
  assert.deepEqual(readdirSync(parent), ["target"], "nothing outside the target");
  assert.deepEqual(readdirSync(root).sort(), ["a", "dir", "empty", "ok.txt", "stale.txt"]);
  assert.equal(readFileSync(join(root, "a"), "utf8"), "content of a");
  assert.deepEqual(readdirSync(join(root, "dir")), ["inside.txt"]);

  // Excluding what cannot be written lets the run succeed, deletes included; then it is a no-op.
  // (picomatch will not let `*` match a `.` or `..` segment, hence these patterns.)
  const filters = ["..*", "a/*", "x*", "*dot"].map((pattern) => ({ type: "exclude" as const, pattern }));
  const second = await sync({ source, target: root, delete: true, filters });
  assert.equal(second.summary.failed, 0);
  assert.equal(second.summary.deleted, 1);
  assert.equal(existsSync(join(root, "stale.txt")), false);
  const third = await sync({ source, target: root, delete: true, filters });
  assert.deepEqual(
    [third.summary.copied, third.summary.updated, third.summary.deleted, third.summary.failed],
    [0, 0, 0, 0],
  );
  assert.equal((await check({ source, target: root, filters })).inSync, true);
});

test("sync() local to local: mtimes carry over, re-sync is a no-op, --delete prunes emptied folders", async () => {
  const src = folder();
  const dst = join(base, `dst${counter++}`);
  mkdirSync(join(src, "sub", "deeper"), { recursive: true });
  writeFileSync(join(src, "sub", "deeper", "f.txt"), "f");
  writeFileSync(join(src, "g.txt"), "g");
  const old = new Date("2019-09-09T09:09:09Z");
  utimesSync(join(src, "g.txt"), old, old);
  const first = await sync({ source: src, target: dst });
  assert.equal(first.summary.copied, 2);
  assert.equal(Math.round(statSync(join(dst, "g.txt")).mtimeMs), old.getTime());
  const again = await sync({ source: src, target: dst, delete: true });
  assert.deepEqual([again.summary.copied, again.summary.updated, again.summary.skipped], [0, 0, 2]);

  rmSync(join(src, "sub"), { recursive: true });
  const pruned = await sync({ source: src, target: dst, delete: true });
  assert.equal(pruned.summary.deleted, 1);
  assert.deepEqual(readdirSync(dst), ["g.txt"], "sub/deeper/ went with its last file");
  const quiet = await sync({ source: src, target: dst, delete: true });
  assert.deepEqual([quiet.summary.copied, quiet.summary.deleted], [0, 0]);
});

test("sync() refuses a missing source folder, overlapping folders and a file as target; a dry run creates nothing", async () => {
  const root = folder();
  writeFileSync(join(root, "file"), "x");
  mkdirSync(join(root, "src"));
  writeFileSync(join(root, "src", "k"), "k");
  await assert.rejects(
    sync({ source: join(root, "missing"), target: join(root, "t") }),
    /source folder .* does not exist/,
  );
  await assert.rejects(sync({ source: join(root, "src"), target: join(root, "src", "inner") }), /overlap/);
  await assert.rejects(sync({ source: join(root, "src"), target: join(root, "src") }), /overlap/);
  await assert.rejects(sync({ source: root, target: join(root, "src") }), /overlap/);
  await assert.rejects(sync({ source: join(root, "src"), target: join(root, "file") }), /not a folder/);
  const dry = await sync({ source: join(root, "src"), target: join(root, "new"), dryRun: true });
  assert.equal(dry.summary.copied, 1);
  assert.equal(existsSync(join(root, "new")), false);
  const empty = folder();
  await sync({ source: empty, target: join(root, "created") });
  assert.ok(statSync(join(root, "created")).isDirectory(), "a missing target folder is created");
});
