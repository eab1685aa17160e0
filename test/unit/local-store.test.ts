import { after, test } from "node:test";
import assert from "node:assert/strict";
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
  existsSync,
  readFileSync,
} from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import fc from "fast-check";
import { compareKeys } from "../../src/core/keys.js";
import { bodyStream, type ObjectDetails, type ObjectInfo } from "../../src/core/types.js";
import { MemoryStore } from "../../src/stores/memory/memory-store.js";
import { LocalStore } from "../../src/stores/local/local-store.js";
import { keyPath } from "../../src/stores/local/keys.js";
import { collect } from "../helpers/memory.js";
import { Transferer } from "../../src/executor/transfer.js";
import type { ObjectStore, WriteOptions } from "../../src/core/types.js";

/** Streams one object from a source into a store, the way a sync does. */
const transfer = (source: ObjectStore, target: ObjectStore, object: ObjectInfo, opts: WriteOptions) =>
  new Transferer(source, target).transfer(object, opts);

const base = mkdtempSync(join(tmpdir(), "bucketsync-local-unit-"));
after(() => rmSync(base, { recursive: true, force: true }));
let counter = 0;
function folder(): string {
  const dir = join(base, `t${counter++}`);
  mkdirSync(dir);
  return dir;
}

/** Creates files (and their folders) for keys; a key ending in `/` makes an empty folder. */
function populate(root: string, keys: string[]): void {
  for (const key of keys) {
    if (key.endsWith("/")) {
      mkdirSync(join(root, key), { recursive: true });
      continue;
    }
    const path = join(root, key);
    mkdirSync(join(path, ".."), { recursive: true });
    writeFileSync(path, `content of ${key}`);
  }
}

const keysOf = async (store: LocalStore, range = {}) => (await collect(store.list(range))).map((o) => o.key);
const byteOrder = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

test("local listing: keys come in S3's UTF-8 byte order, folders sorted as `name/`", async () => {
  const root = folder();
  const keys = [
    "test-123.txt",
    "test.txt",
    "test/x",
    "test/y/z",
    "\u{1F600}",
    "\uE000",
    "\uFFFD.txt",
    "é",
    "a",
    "a b",
    "a+b",
    "a-b/c",
    "a.b",
    "a0",
    "ab/c",
    "Z",
    "~tilde",
    "!bang",
    "dir\u{1F600}/x",
    "dir\uE000/x",
    "dir/x",
  ];
  populate(root, keys);
  const listed = await keysOf(new LocalStore(root));
  assert.deepEqual(listed, [...keys].sort(compareKeys));
  assert.deepEqual(listed, [...keys].sort(byteOrder), "the same order as Buffer.compare of the UTF-8 bytes");
  assert.ok(
    listed.indexOf("test-123.txt") < listed.indexOf("test.txt") &&
      listed.indexOf("test.txt") < listed.indexOf("test/x"),
  );
  assert.ok(
    listed.indexOf("\uE000") < listed.indexOf("\u{1F600}"),
    "U+E000 before U+1F600 (JavaScript's < says otherwise)",
  );
});

test("local listing: random trees list in compareKeys order (property)", async () => {
  const segment = fc
    .string({
      unit: fc.constantFrom("a", "b", "-", ".", " ", "+", "é", "\uE000", "\uFFFD", "\u{1F600}", "\u{10000}", "0"),
      minLength: 1,
      maxLength: 4,
    })
    .filter((s) => s !== "." && s !== "..");
  const key = fc.array(segment, { minLength: 1, maxLength: 3 }).map((segments) => segments.join("/"));
  let run = 0;
  await fc.assert(
    fc.asyncProperty(fc.uniqueArray(key, { minLength: 1, maxLength: 25 }), async (candidates) => {
      // A folder cannot hold both a file `a` and a folder `a/`: keep the keys that fit.
      const chosen: string[] = [];
      for (const k of candidates) {
        const clash = chosen.some((c) => k.startsWith(`${c}/`) || c.startsWith(`${k}/`));
        if (!clash) chosen.push(k);
      }
      const root = join(base, `prop${run++}`);
      mkdirSync(root);
      populate(root, chosen);
      const listed = await keysOf(new LocalStore(root));
      rmSync(root, { recursive: true, force: true });
      assert.deepEqual(listed, [...chosen].sort(compareKeys));
    }),
    { numRuns: 60 },
  );
});

test("local listing is lazy: a folder is read only when the listing reaches it", async () => {
  const root = folder();
  populate(root, ["a/1", "m/1", "z/1"]);
  const it = new LocalStore(root).list()[Symbol.asyncIterator]();
  assert.equal((await it.next()).value?.key, "a/1");
  // Changes made now, after the first key, show up: nothing below the root was read ahead.
  writeFileSync(join(root, "z", "2"), "late");
  rmSync(join(root, "m"), { recursive: true });
  const rest: string[] = [];
  for (let r = await it.next(); !r.done; r = await it.next()) rest.push(r.value.key);
  assert.deepEqual(rest, ["z/1", "z/2"]);
});

test("local listing: a wide tree streams without reading folders ahead of the consumer", async () => {
  const root = folder();
  const dirs = Array.from({ length: 300 }, (_, i) => `d${String(i).padStart(3, "0")}`);
  populate(
    root,
    dirs.map((d) => `${d}/f`),
  );
  const it = new LocalStore(root).list()[Symbol.asyncIterator]();
  assert.equal((await it.next()).value?.key, "d000/f");
  // Remove every other folder: had the listing read them already, their keys would still come.
  for (const d of dirs.slice(1)) rmSync(join(root, d), { recursive: true });
  assert.equal((await it.next()).done, true);
});

test("local listing: sizes and times, empty folders as `d/` markers, temp files hidden, ranges", async () => {
  const root = folder();
  populate(root, ["a.txt", "e/", "n/e2/", "n/f", "z"]);
  writeFileSync(join(root, ".bucketsync-0123456789ab.tmp"), "partial download");
  const listed = await collect(new LocalStore(root).list());
  assert.deepEqual(
    listed.map((o) => [o.key, o.size]),
    [
      ["a.txt", "content of a.txt".length],
      ["e/", 0],
      ["n/e2/", 0],
      ["n/f", "content of n/f".length],
      ["z", "content of z".length],
    ],
  );
  assert.equal(listed[0]!.lastModified, Math.round(statSync(join(root, "a.txt")).mtimeMs));
  assert.equal(listed[0]!.etag, undefined, "no hashing while listing");
  const store = new LocalStore(root);
  assert.deepEqual(await keysOf(store, { startAfter: "e/" }), ["n/e2/", "n/f", "z"]);
  assert.deepEqual(await keysOf(store, { startAfter: "n/e2/" }), ["n/f", "z"]);
  assert.deepEqual(await keysOf(store, { startAfter: "a.txt", endAt: "n/f" }), ["e/", "n/e2/", "n/f"]);
  assert.deepEqual(await keysOf(store, { endAt: "e/" }), ["a.txt", "e/"]);
  assert.deepEqual(await keysOf(new LocalStore(join(root, "missing"))), [], "a missing folder lists as empty");
});

test("local listing: symlinks are skipped with a warning unless followed; loops are detected", async () => {
  const root = folder();
  populate(root, ["real/file.txt", "other.txt"]);
  symlinkSync("real", join(root, "linkdir"));
  symlinkSync("other.txt", join(root, "linkfile"));
  symlinkSync("nowhere", join(root, "broken"));
  symlinkSync("..", join(root, "real", "up")); // a loop: real/up -> root
  const warnings: string[] = [];
  assert.deepEqual(await keysOf(new LocalStore(root, { onWarning: (m) => warnings.push(m) })), [
    "other.txt",
    "real/file.txt",
  ]);
  assert.equal(warnings.filter((w) => /skipped symbolic link/.test(w)).length, 4, warnings.join("\n"));

  const followed: string[] = [];
  const keys = await keysOf(new LocalStore(root, { followSymlinks: true, onWarning: (m) => followed.push(m) }));
  assert.deepEqual(keys, ["linkdir/file.txt", "linkfile", "other.txt", "real/file.txt"]);
  assert.ok(
    followed.some((w) => /broken symbolic link .*broken/.test(w)),
    followed.join("\n"),
  );
  assert.ok(
    followed.some((w) => /real\/up\/: symbolic link loop/.test(w)),
    followed.join("\n"),
  );
  assert.ok(
    followed.some((w) => /linkdir\/up\/: symbolic link loop/.test(w)),
    followed.join("\n"),
  );
});

test("key rules: unsafe keys are refused with a reason; the rest map to path segments", () => {
  const refused: [string, RegExp][] = [
    ["../escape.txt", /'\.\.' segment/],
    ["a/../../b", /'\.\.' segment/],
    ["a/..", /'\.\.' segment/],
    ["..", /'\.\.' segment/],
    ["/etc/passwd", /absolute/],
    ["x//y", /empty path segment/],
    ["./dot", /'\.' segment/],
    ["a/./b", /'\.' segment/],
    ["nul\0byte", /NUL/],
    ["lone\uD800surrogate", /lone surrogate/],
    ["", /empty key/],
    ["d//", /empty path segment/],
    ["/", /absolute/],
    ["x/.bucketsync-0123456789ab.tmp", /reserved/],
  ];
  for (const [key, reason] of refused) {
    const path = keyPath(key);
    assert.equal(path.ok, false, JSON.stringify(key));
    if (!path.ok) assert.match(path.reason, reason, JSON.stringify(key));
  }
  assert.deepEqual(keyPath("a/b c/d.txt"), { ok: true, segments: ["a", "b c", "d.txt"], marker: false });
  assert.deepEqual(keyPath("dir/"), { ok: true, segments: ["dir"], marker: true });
  assert.deepEqual(keyPath("trailing-dot."), { ok: true, segments: ["trailing-dot."], marker: false });
  assert.deepEqual(keyPath("...").ok, true, "three dots is a name, not a path step");
  assert.deepEqual(keyPath("back\\slash").ok, process.platform !== "win32");
  assert.deepEqual(keyPath("emoji-\u{1F600}").ok, true);
});

/** A store whose objects stream through a PassThrough, so a test can fail one midway. */
class StreamingStore extends MemoryStore {
  failAfter?: number;
  override async get(key: string): Promise<{ body: Readable; details: ObjectDetails }> {
    const { body, details } = await super.get(key);
    if (this.failAfter === undefined) return { body, details };
    const data = Buffer.concat(await body.toArray());
    const out = new PassThrough();
    out.write(data.subarray(0, this.failAfter));
    setTimeout(() => out.destroy(Object.assign(new Error("connection reset mid-body"), { code: "ECONNRESET" })), 10);
    return { body: out, details };
  }
}

const info = (key: string, size: number, lastModified = Date.parse("2024-05-06T07:08:09Z")): ObjectInfo => ({
  key,
  size,
  lastModified,
});

test("writes: a file lands atomically with the source's LastModified as its mtime", async () => {
  const root = folder();
  const source = new MemoryStore("src");
  const lastModified = Date.parse("2020-01-02T03:04:05Z");
  source.set("deep/er/file.txt", "hello", { lastModified });
  const store = new LocalStore(join(root, "target-not-yet-there"));
  await transfer(source, store, info("deep/er/file.txt", 5, lastModified), {});
  const path = join(root, "target-not-yet-there", "deep", "er", "file.txt");
  assert.equal(readFileSync(path, "utf8"), "hello");
  assert.equal(Math.round(statSync(path).mtimeMs), lastModified);
  const listed = await collect(store.list());
  assert.deepEqual(
    listed.map(({ accessedAt: _a, ...rest }) => rest),
    [{ key: "deep/er/file.txt", size: 5, lastModified }],
  );
  assert.deepEqual(readdirSync(join(root, "target-not-yet-there", "deep", "er")), ["file.txt"], "no temp file left");
});

test("writes: a download keeps the file's original mtime and marks the file with the object's LastModified as its access time", async () => {
  const root = folder();
  const source = new MemoryStore("src");
  const uploaded = Date.parse("2026-01-02T03:04:05.678Z");
  const original = Date.parse("2025-06-07T08:09:10Z");
  source.set("a.txt", "hello", { lastModified: uploaded, metadata: { mtime: `${original / 1000}.000000000` } });
  const store = new LocalStore(root);
  await transfer(source, store, info("a.txt", 5, uploaded), {});
  const st = statSync(join(root, "a.txt"));
  assert.equal(Math.round(st.mtimeMs), original);
  assert.equal(Math.round(st.atimeMs), uploaded);
  const [listed] = await collect(store.list());
  assert.deepEqual([listed?.lastModified, listed?.accessedAt], [original, uploaded]);
});

test("writes: a source stream failing midway leaves no file under the real name and no temp file", async () => {
  const root = folder();
  const source = new StreamingStore("src");
  source.set("big.bin", Buffer.alloc(100_000, 7));
  source.failAfter = 50_000;
  const store = new LocalStore(root);
  await assert.rejects(transfer(source, store, info("big.bin", 100_000), {}), /connection reset mid-body/);
  assert.deepEqual(readdirSync(root), []);

  // An existing file survives a failed update untouched.
  writeFileSync(join(root, "big.bin"), "old version");
  await assert.rejects(transfer(source, store, info("big.bin", 100_000), {}), /connection reset/);
  assert.deepEqual(readdirSync(root), ["big.bin"]);
  assert.equal(readFileSync(join(root, "big.bin"), "utf8"), "old version");
});

test("writes: a body shorter than announced is refused, and an abort stops the write", async () => {
  const root = folder();
  const store = new LocalStore(root);
  await assert.rejects(store.put("short", Buffer.from("abc"), 10, {}, {}), /short read/);
  const controller = new AbortController();
  const body = new PassThrough();
  body.write("some bytes");
  const pending = store.put("aborted", body, 100, {}, { signal: controller.signal });
  setTimeout(() => controller.abort(), 10);
  await assert.rejects(pending);
  assert.deepEqual(readdirSync(root), []);
});

test("writes: unsafe keys are refused before anything is fetched or written", async () => {
  const parent = folder();
  const root = join(parent, "target");
  mkdirSync(root);
  const source = new MemoryStore("src");
  let fetched = 0;
  source.get = async () => {
    fetched++;
    throw new Error("must not fetch");
  };
  const store = new LocalStore(root);
  for (const key of ["../escape.txt", "a/../../b", "/abs", "x//y", "./dot", "dir/with-content/"]) {
    await assert.rejects(transfer(source, store, info(key, 3), {}), (err: Error & { code?: string }) => {
      assert.equal(err.code, "UnsafeKey", key);
      assert.match(err.message, /unsafe key refused/);
      return true;
    });
  }
  // The same verdicts without writing, for reporting refusals before any transfer (dry runs too).
  assert.equal(store.refusal(info("../escape.txt", 3))?.code, "UnsafeKey");
  assert.equal(store.refusal(info("fine/key.txt", 3)), undefined);
  store.refuseUnder("fine");
  assert.equal(store.refusal(info("fine/key.txt", 3))?.code, "PathConflict");
  await assert.rejects(store.put("../escape.txt", Buffer.from("x"), 1, {}, {}), /unsafe key/);
  await assert.rejects(store.get("../escape.txt"), /unsafe key/);
  assert.equal(fetched, 0);
  assert.deepEqual(readdirSync(parent), ["target"]);
  assert.deepEqual(readdirSync(root), []);
});

test("writes: `dir/` markers make folders; `a` beside `a/b` fails one key with a clear reason", async () => {
  const root = folder();
  const source = new MemoryStore("src");
  source.set("a", "file a");
  source.set("a/b", "under a");
  source.set("d/", "");
  const store = new LocalStore(root);
  const markerTime = Date.parse("2021-01-01T00:00:00Z");
  await transfer(source, store, info("d/", 0, markerTime), {});
  assert.ok(statSync(join(root, "d")).isDirectory());
  assert.equal(Math.round(statSync(join(root, "d")).mtimeMs), markerTime, "the folder carries the marker's time");
  assert.deepEqual(await keysOf(store), ["d/"], "an empty folder lists as its marker");

  // The pairing of listings tells the store that the source has both; the file wins, whatever the timing.
  store.refuseUnder("a");
  await assert.rejects(
    transfer(source, store, info("a/b", 7), {}),
    (err: Error & { code?: string }) => err.code === "PathConflict" && /also has a file "a"/.test(err.message),
  );
  await transfer(source, store, info("a", 6), {});
  assert.equal(readFileSync(join(root, "a"), "utf8"), "file a");

  // Without that knowledge, the file system decides: a file in the way of a folder, a folder in the way of a file.
  const plain = new LocalStore(root);
  await assert.rejects(transfer(source, plain, info("a/b", 7), {}), /"a" is a file/);
  await assert.rejects(plain.put("d", Buffer.from("x"), 1, {}, {}), /a folder of that name is in the way/);
});

test("writes: never through a symlinked folder unless symlinks are followed", async () => {
  const parent = folder();
  const root = join(parent, "target");
  const outside = join(parent, "outside");
  mkdirSync(root);
  mkdirSync(outside);
  symlinkSync(outside, join(root, "link"));
  const store = new LocalStore(root);
  await assert.rejects(store.put("link/x", Buffer.from("x"), 1, {}, {}), /symbolic link/);
  assert.deepEqual(await store.deleteMany(["link/x"]), [], "nothing there as far as this folder goes");
  assert.deepEqual(readdirSync(outside), []);
  await new LocalStore(root, { followSymlinks: true }).put("link/x", Buffer.from("x"), 1, {}, {});
  assert.deepEqual(readdirSync(outside), ["x"]);
  assert.equal(await store.head("link/x"), undefined);
});

test("reads: get and head give size, time and a Content-Type from the name", async () => {
  const root = folder();
  populate(root, ["site/index.html", "site/app.js", "data.unknownext", "empty/"]);
  writeFileSync(join(root, "zero.json"), "");
  const store = new LocalStore(root);
  const { body, details } = await store.get("site/index.html");
  assert.equal(Buffer.concat(await bodyStream(body).toArray()).toString(), "content of site/index.html");
  assert.equal(details.contentType, "text/html");
  assert.equal(details.size, "content of site/index.html".length);
  assert.equal((await store.head("site/app.js"))?.contentType, "text/javascript");
  assert.equal((await store.head("data.unknownext"))?.contentType, undefined);
  assert.equal(await store.head("nope"), undefined);
  assert.equal((await store.head("empty/"))?.size, 0);
  const zero = await store.get("zero.json");
  assert.equal(Buffer.concat(await bodyStream(zero.body).toArray()).length, 0);
  await assert.rejects(store.get("nope"), (err: Error) => err.name === "NoSuchKey");
  assert.equal(await store.checksum("site/app.js"), createHash("md5").update("content of site/app.js").digest("hex"));
  assert.equal(await store.checksum("empty/"), createHash("md5").digest("hex"));
});

test("deletes: files go, folders they emptied are pruned, markers remove empty folders", async () => {
  const root = folder();
  populate(root, ["keep/k", "gone/deep/x", "gone/deep/y", "marker/", "top"]);
  const store = new LocalStore(root);
  const failures = await store.deleteMany([
    "gone/deep/x",
    "gone/deep/y",
    "marker/",
    "top",
    "already-missing",
    "../escape",
  ]);
  assert.deepEqual(
    failures.map((f) => [f.key, f.code]),
    [["../escape", "UnsafeKey"]],
  );
  assert.deepEqual(readdirSync(root).sort(), ["keep"]);
  assert.deepEqual(await keysOf(store), ["keep/k"]);
  const notEmpty = await store.deleteMany(["keep/"]);
  assert.equal(notEmpty[0]?.code, "ENOTEMPTY");
  assert.ok(existsSync(join(root, "keep", "k")));
});
