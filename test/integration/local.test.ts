/**
 * Issue 3, "Local folders as sync source and target": the CLI between a real S3 server and
 * folders under the system temp directory.
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { compareKeys } from "../../src/core/keys.js";
import {
  CLI,
  getText,
  head,
  keyZoo,
  keys,
  listAll,
  put,
  putMany,
  runCli,
  s3Client,
  s3TestEnv,
  userEnv,
  testBuckets,
} from "../helpers/s3.js";
import { stallingProxy } from "../helpers/stalling-proxy.js";

const client = s3Client("a");
const { bucket, removeAll: removeBuckets } = testBuckets(client);
const base = mkdtempSync(join(tmpdir(), "bucketsync-local-it-"));
let counter = 0;
/** A fresh folder path (not created) inside its own parent, so a test can watch the parent. */
function place(): { parent: string; path: string } {
  const parent = join(base, `p${counter++}`);
  mkdirSync(parent);
  return { parent, path: join(parent, "folder") };
}
after(async () => {
  await removeBuckets();
  client.destroy();
  rmSync(base, { recursive: true, force: true });
});

type Summary = {
  copied: number;
  updated: number;
  deleted: number;
  skipped: number;
  failed: number;
  undecidable: number;
};
type ErrorEvent = { type: "error"; key?: string; action?: string; code: string; message: string };
function parse(stdout: string): { summary: Summary; errors: ErrorEvent[] } {
  const events = stdout
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l));
  const summary = events.pop();
  assert.equal(summary.type, "summary", stdout);
  return { summary, errors: events.filter((e) => e.type === "error") };
}
const counts = (s: Summary) => [s.copied, s.updated, s.deleted, s.failed];

/** Every file under a folder as a key (`/`-joined), in compareKeys order; empty folders as `d/`. */
function filesUnder(root: string, prefix = ""): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(root, prefix))) {
    const rel = prefix + name;
    if (statSync(join(root, rel)).isDirectory()) {
      const inner = filesUnder(root, `${rel}/`);
      out.push(...(inner.length ? inner : [`${rel}/`]));
    } else out.push(rel);
  }
  return out.sort(compareKeys);
}

describe("bucket -> folder -> bucket", () => {
  // What the rules refuse (or the file system cannot hold), and why.
  const refused: Record<string, string> = {
    "x//y": "UnsafeKey",
    "./dot": "UnsafeKey",
    "a/b": "PathConflict",
    [`long-${"k".repeat(1000)}`]: "ENAMETOOLONG",
    [`long-unicode-${"é".repeat(490)}`]: "ENAMETOOLONG",
  };
  // `dir/` stands beside `dir/inside.txt`: a folder cannot tell a marker from no marker, so it is not compared.
  const dropped = ["dir/"];
  const zoo = keyZoo();
  const fileKeys = zoo.filter((k) => !(k in refused) && !dropped.includes(k)).sort(compareKeys);

  test("the key zoo round-trips byte for byte; refusals are reported; re-syncs change nothing", async () => {
    const src = await bucket("lz-s");
    const dst = await bucket("lz-d");
    await putMany(
      client,
      src,
      zoo.map((k) => [`zoo/${k}`, k.endsWith("/") ? "" : `content of ${k}`]),
    );
    const { parent, path } = place();

    const down = await runCli(["sync", `s3://${src}/zoo`, path, "--json"]);
    assert.equal(down.code, 1, `refusals make the run exit 1: ${down.stderr}`);
    const d = parse(down.stdout);
    assert.equal(d.summary.copied, fileKeys.length);
    assert.equal(d.summary.failed, Object.keys(refused).length);
    assert.deepEqual(Object.fromEntries(d.errors.map((e) => [e.key, e.code])), refused);
    for (const e of d.errors) assert.equal(e.action, "copy");
    assert.match(
      d.errors.find((e) => e.key === "x//y")!.message,
      /unsafe key refused: "x\/\/y": it has an empty path segment/,
    );
    assert.match(d.errors.find((e) => e.key === "a/b")!.message, /the source also has a file "a"/);
    assert.deepEqual(readdirSync(parent), ["folder"]);

    assert.deepEqual(filesUnder(path), fileKeys);
    for (const k of fileKeys) assert.equal(readFileSync(join(path, k), "utf8"), `content of ${k}`, k);
    const listed = new Map((await listAll(client, src, "zoo/")).map((o) => [o.key.slice(4), o.lastModified]));
    for (const k of fileKeys)
      assert.equal(
        Math.round(statSync(join(path, k)).mtimeMs),
        listed.get(k),
        `mtime of ${k} is the object's LastModified`,
      );

    const up = await runCli(["sync", path, `s3://${dst}/zoo`, "--json"]);
    assert.equal(up.code, 0, up.stderr);
    assert.equal(up.stderr, "", "no warnings, from the SDK or otherwise");
    assert.equal(parse(up.stdout).summary.copied, fileKeys.length);
    assert.deepEqual(
      await keys(client, dst, "zoo/"),
      fileKeys.map((k) => `zoo/${k}`).sort(compareKeys),
      "every key that is a file name, byte for byte",
    );
    for (const k of ["plain.txt", "emoji-\u{1F600}.txt", "tab\there", "back\\slash", "quote'\"s"])
      assert.equal(await getText(client, dst, `zoo/${k}`), `content of ${k}`);

    const again = await runCli(["sync", `s3://${src}/zoo`, path, "--json"]);
    const a = parse(again.stdout);
    assert.deepEqual(counts(a.summary), [0, 0, 0, Object.keys(refused).length], "only the refusals again");
    assert.equal(a.summary.skipped, fileKeys.length);
    const upAgain = await runCli(["sync", path, `s3://${dst}/zoo`, "--json"]);
    assert.equal(upAgain.code, 0, upAgain.stderr);
    assert.deepEqual(counts(parse(upAgain.stdout).summary), [0, 0, 0, 0]);
    const back = await runCli(["sync", path, `s3://${src}/zoo`, "--json"]);
    assert.equal(back.code, 0, back.stderr);
    assert.deepEqual(
      counts(parse(back.stdout).summary),
      [0, 0, 0, 0],
      "downloaded files are not newer than their source",
    );

    const check = await runCli(["check", path, `s3://${dst}/zoo`]);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    const byMd5 = await runCli([
      "check",
      `s3://${src}/zoo`,
      path,
      "--checksum",
      "--exclude",
      "x*",
      "--exclude",
      "*dot",
      "--exclude",
      "a/*",
      "--exclude",
      "long-*",
    ]);
    assert.equal(byMd5.code, 0, byMd5.stdout + byMd5.stderr);
    assert.match(byMd5.stdout, new RegExp(`in sync: ${fileKeys.length} objects compared`));
  });
});

describe("keys that would escape the target folder", () => {
  test("`../escape.txt` and `a/../../b` write nothing outside the folder, are reported, and withhold deletes", async () => {
    const src = await bucket("trav");
    await putMany(client, src, [
      ["../escape.txt", "evil"],
      ["a/../../b", "evil"],
      ["ok.txt", "fine"],
    ]);
    assert.deepEqual(
      (await keys(client, src)).sort(),
      ["../escape.txt", "a/../../b", "ok.txt"],
      "the server stores the keys as given",
    );
    const { parent, path } = place();
    mkdirSync(path);
    writeFileSync(join(path, "stale"), "would be deleted");
    const parentBefore = readdirSync(parent);
    const grandBefore = readdirSync(join(parent, ".."));

    const r = await runCli(["sync", `s3://${src}`, path, "--delete"]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /^error: copy \.\.\/escape\.txt: UnsafeKey: unsafe key refused: "\.\.\/escape\.txt": it has a '\.\.' segment, which could leave the target folder; nothing written$/m,
    );
    assert.match(r.stderr, /^error: copy a\/\.\.\/\.\.\/b: UnsafeKey: /m);
    assert.match(r.stderr, /^warning: 1 delete\(s\) not run: 2 object\(s\) failed to copy$/m);
    assert.match(r.stdout, /failed 2/);
    assert.deepEqual(readdirSync(parent), parentBefore);
    assert.deepEqual(readdirSync(join(parent, "..")), grandBefore);
    assert.deepEqual(readdirSync(path).sort(), ["ok.txt", "stale"], "deletes withheld after a refusal");
    assert.equal(existsSync(join(parent, "escape.txt")), false);
    assert.equal(existsSync(join(parent, "b")), false);
  });
});

describe("deletes in both directions", () => {
  test("bucket -> folder removes files and the folders they emptied; folder -> bucket removes objects", async () => {
    const b = await bucket("ldel");
    await putMany(client, b, [
      ["keep.txt", "1"],
      ["sub/keep.txt", "2"],
    ]);
    const { path } = place();
    mkdirSync(join(path, "old", "deeper"), { recursive: true });
    writeFileSync(join(path, "old", "deeper", "x"), "x");
    writeFileSync(join(path, "gone.txt"), "x");

    const dry = await runCli(["sync", `s3://${b}`, path, "--delete", "--dry-run"]);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(
      dry.stdout,
      new RegExp(`\\(dryrun\\) delete: ${path.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}/gone\\.txt`),
    );
    assert.deepEqual(filesUnder(path), ["gone.txt", "old/deeper/x"], "a dry run changes nothing");

    const down = await runCli(["sync", `s3://${b}`, path, "--delete", "--json"]);
    assert.equal(down.code, 0, down.stderr);
    assert.deepEqual(counts(parse(down.stdout).summary), [2, 0, 2, 0]);
    assert.deepEqual(filesUnder(path), ["keep.txt", "sub/keep.txt"], "old/deeper/ went with its last file");

    writeFileSync(join(path, "new.txt"), "n");
    rmSync(join(path, "sub"), { recursive: true });
    const up = await runCli(["sync", path, `s3://${b}`, "--delete", "--json"]);
    assert.equal(up.code, 0, up.stderr);
    assert.deepEqual(counts(parse(up.stdout).summary), [1, 0, 1, 0]);
    assert.deepEqual(await keys(client, b), ["keep.txt", "new.txt"]);
  });

  test("an empty local source does not wipe the bucket without --force", async () => {
    const b = await bucket("lempty");
    await put(client, b, "precious", "x");
    const { path } = place();
    mkdirSync(path);
    const r = await runCli(["sync", path, `s3://${b}`, "--delete"]);
    assert.equal(r.code, 2, r.stderr);
    assert.deepEqual(await keys(client, b), ["precious"]);
  });
});

describe("uploads", () => {
  test("Content-Type comes from the file name, --acl applies, big files go up in parts; re-sync is a no-op", async () => {
    const b = await bucket("lup");
    const { path } = place();
    mkdirSync(join(path, "css"), { recursive: true });
    writeFileSync(join(path, "index.html"), "<h1>hi</h1>");
    writeFileSync(join(path, "css", "site.css"), "h1{}");
    writeFileSync(join(path, "data.json"), "{}");
    writeFileSync(join(path, "README"), "no extension");
    const big = randomBytes(20 * 1024 * 1024);
    writeFileSync(join(path, "big.bin"), big);

    const r = await runCli([
      "sync",
      path,
      `s3://${b}/site`,
      "--acl",
      "public-read",
      "--multipart-threshold",
      "8MB",
      "--part-size",
      "5MB",
      "--json",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    assert.equal(parse(r.stdout).summary.copied, 5);
    assert.equal((await head(client, b, "site/index.html")).ContentType, "text/html");
    assert.equal((await head(client, b, "site/css/site.css")).ContentType, "text/css");
    assert.equal((await head(client, b, "site/data.json")).ContentType, "application/json");
    assert.equal((await head(client, b, "site/big.bin")).ContentType, "application/octet-stream");
    const endpoint = s3TestEnv().endpoint;
    const anon = await fetch(`${endpoint}/${b}/site/index.html`);
    assert.equal(anon.status, 200, "--acl public-read applied to the upload");
    assert.equal(await anon.text(), "<h1>hi</h1>");
    assert.equal(
      (await fetch(`${endpoint}/${b}/site/big.bin`, { method: "HEAD" })).status,
      200,
      "and to the multipart upload",
    );
    const listed = await listAll(client, b, "site/");
    assert.match(listed.find((o) => o.key === "site/big.bin")!.etag, /-4$/, "uploaded in 4 parts of 5 MiB");
    const got = await client.send(new GetObjectCommand({ Bucket: b, Key: "site/big.bin" }));
    const bytes = Buffer.from(await got.Body!.transformToByteArray());
    assert.equal(createHash("sha256").update(bytes).digest("hex"), createHash("sha256").update(big).digest("hex"));

    const again = await runCli(["sync", path, `s3://${b}/site`, "--json"]);
    assert.deepEqual(counts(parse(again.stdout).summary), [0, 0, 0, 0]);
    // --checksum: single-part uploads compare by MD5; the multipart one cannot, and says so.
    const md5 = await runCli(["sync", path, `s3://${b}/site`, "--checksum", "--json"]);
    const m = parse(md5.stdout).summary;
    assert.deepEqual([...counts(m), m.undecidable], [0, 0, 0, 0, 1]);
  });

  test("a changed local file of the same size: sync's default compares times; check (by default) and --checksum compare content", async () => {
    const b = await bucket("lsum");
    const { path } = place();
    mkdirSync(path);
    writeFileSync(join(path, "k"), "good");
    assert.equal((await runCli(["sync", `${path}/`, `s3://${b}`])).code, 0);
    await put(client, b, "k", "evil"); // same size, newer: the time rule keeps it
    const plain = await runCli(["sync", path, `s3://${b}`, "--dry-run", "--json"]);
    assert.equal(parse(plain.stdout).summary.skipped, 1, "sync's time rule keeps it");
    assert.equal((await runCli(["check", path, `s3://${b}`])).code, 1, "check compares content by default (issue 13)");
    const c = await runCli(["check", path, `s3://${b}`, "--checksum"]);
    assert.equal(c.code, 1);
    assert.match(c.stdout, /^differs: k \(checksum differs\)$/m);
    const fix = await runCli(["sync", path, `s3://${b}`, "--checksum", "--json"]);
    assert.equal(parse(fix.stdout).summary.updated, 1);
    assert.equal(await getText(client, b, "k"), "good");
  });
});

describe("interrupted downloads", () => {
  test("SIGKILL mid-download leaves no file under the real name; the next run completes it", async () => {
    const b = await bucket("lkill");
    const data = randomBytes(24 * 1024 * 1024);
    await put(client, b, "big.bin", data);
    await put(client, b, "small.txt", "small");
    const { path } = place();
    mkdirSync(path);
    writeFileSync(join(path, "big.bin"), "previous version");
    const stall = await stallingProxy(s3TestEnv().endpoint, 4 * 1024 * 1024);
    try {
      const child = spawn(process.execPath, [CLI, "sync", `s3://${b}`, path, "--endpoint-url", stall.url], {
        env: { PATH: process.env.PATH ?? "", HOME: "/nonexistent", ...userEnv("a") },
        stdio: "ignore",
      });
      const exited = new Promise((resolve) => child.once("exit", resolve));
      // Wait until part of the object has been written to disk, then kill without warning.
      const deadline = Date.now() + 30_000;
      let partial: string | undefined;
      while (!partial && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
        // big.bin's temporary file, with part of the object in it: small.txt's (5 bytes) is renamed
        // at any moment, between readdir and stat or after (then it would be gone at the stat below).
        partial = readdirSync(path).find(
          (n) =>
            /^\.bucketsync-[0-9a-f]{12}\.tmp$/.test(n) &&
            (statSync(join(path, n), { throwIfNoEntry: false })?.size ?? 0) > 64 * 1024,
        );
      }
      assert.ok(partial, "a temporary file appeared while downloading");
      child.kill("SIGKILL");
      await exited;
      assert.equal(
        readFileSync(join(path, "big.bin"), "utf8"),
        "previous version",
        "the real name still holds the old file, whole",
      );
      assert.ok(statSync(join(path, partial)).size < data.length);
    } finally {
      await stall.close();
    }
    const r = await runCli(["sync", `s3://${b}`, path, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(parse(r.stdout).summary.failed, 0);
    assert.equal(
      createHash("sha256")
        .update(readFileSync(join(path, "big.bin")))
        .digest("hex"),
      createHash("sha256").update(data).digest("hex"),
    );
    // The leftover temp file is never listed, so it is neither uploaded nor compared.
    const up = await runCli(["sync", path, `s3://${b}`, "--json"]);
    assert.deepEqual(counts(parse(up.stdout).summary), [0, 0, 0, 0]);
  });
});

describe("usage", () => {
  test("a missing local source is a usage error; a missing target folder is created; local paths print as given", async () => {
    const b = await bucket("lusage");
    await put(client, b, "d/k.txt", "k");
    const { parent, path } = place();
    const missing = await runCli(["sync", join(parent, "nope"), `s3://${b}`, "--delete"]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^bucketsync: source folder '.*nope' does not exist$/m);
    const overlap = await runCli(["sync", parent, join(parent, "inner")]);
    assert.equal(overlap.code, 2);
    assert.match(overlap.stderr, /overlap/);

    const r = await runCli(["sync", `s3://${b}`, path]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      new RegExp(`^copy: s3://${b}/d/k\\.txt to ${path.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}/d/k\\.txt$`, "m"),
    );
    assert.equal(readFileSync(join(path, "d", "k.txt"), "utf8"), "k");
  });
});
