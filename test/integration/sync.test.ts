import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { PutObjectAclCommand } from "@aws-sdk/client-s3";
import { compareKeys } from "../../src/core/keys.js";
import {
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
  tags,
  testBuckets,
} from "../helpers/s3.js";

const client = s3Client("a");
const { bucket, removeAll: removeBuckets } = testBuckets(client);
after(async () => {
  await removeBuckets();
  client.destroy();
});

const summaryOf = (stdout: string) => {
  const line = stdout.trim().split("\n").filter(Boolean).pop()!;
  const parsed = JSON.parse(line);
  assert.equal(parsed.type, "summary");
  return parsed as {
    copied: number;
    updated: number;
    deleted: number;
    skipped: number;
    failed: number;
    undecidable: number;
  };
};

describe("sync between buckets on a real S3 server", () => {
  let src: string;
  let dst: string;
  const zoo = keyZoo();
  const many = Array.from(
    { length: 1100 },
    (_, i) => `many/${String(i).padStart(5, "0")}-${i % 7 === 0 ? "\u{1F600}" : "x"}.dat`,
  );

  before(async () => {
    src = await bucket("src");
    dst = await bucket("dst");
    await putMany(
      client,
      src,
      [...zoo, ...many].map((k) => [`zoo/${k}`, `content of ${k}`]),
    );
    await put(client, src, "zoo2/not-under-zoo", "must not be copied");
  });

  test("the key zoo and 1100+ keys arrive byte for byte, and a re-sync copies nothing", async () => {
    const r = await runCli(["sync", `s3://${src}/zoo`, `s3://${dst}/zoo`, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    const s = summaryOf(r.stdout);
    assert.equal(s.copied, zoo.length + many.length);
    assert.equal(s.failed, 0);

    const want = [...zoo, ...many].map((k) => `zoo/${k}`).sort(compareKeys);
    const got = await keys(client, dst, "zoo/");
    assert.deepEqual(got, want, "target holds exactly the source keys, in S3 order");
    for (const k of [...zoo, many[0]!, many[7]!])
      assert.equal(await getText(client, dst, `zoo/${k}`), `content of ${k}`, k);
    assert.deepEqual(await keys(client, dst, "zoo2"), [], "zoo2/ is not under the zoo/ prefix");

    const again = await runCli(["sync", `s3://${src}/zoo`, `s3://${dst}/zoo`, "--json"]);
    assert.equal(again.code, 0, again.stderr);
    const s2 = summaryOf(again.stdout);
    assert.deepEqual([s2.copied, s2.updated, s2.deleted, s2.skipped], [0, 0, 0, zoo.length + many.length]);

    const check = await runCli(["check", `s3://${src}/zoo`, `s3://${dst}/zoo`]);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    assert.match(check.stdout, new RegExp(`in sync: ${zoo.length + many.length} objects compared`));
  });
});

describe("every listing layout gives the exact target", () => {
  // Folders on both sides, some on one side only, objects beside them: listed folder by folder.
  test("folders on one side only are copied or deleted, loose objects too", async () => {
    const src = await bucket("lay-s");
    const dst = await bucket("lay-d");
    const source = ["a.txt", "a/1", "a/2", "a/deep/3", "a0", "b/1", "c/1", "c/2", "top"];
    await putMany(
      client,
      src,
      source.map((k) => [k, `src ${k}`]),
    );
    await putMany(
      client,
      dst,
      ["a/1", "a/old", "stale-top", "z/1", "z/2/3"].map((k) => [k, k === "a/1" ? "src a/1" : `old ${k}`]),
    );
    const r = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--delete", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const s = summaryOf(r.stdout);
    assert.deepEqual([s.copied, s.deleted, s.failed], [source.length - 1, 4, 0]);
    assert.deepEqual(await keys(client, dst), [...source].sort(compareKeys));
    assert.equal(await getText(client, dst, "a/deep/3"), "src a/deep/3");
  });

  // One folder holding everything: split by sampling keys inside it, then listed range by range.
  test("a single folder of more than a page is split and synced exactly", async () => {
    const src = await bucket("one-s");
    const dst = await bucket("one-d");
    const source = Array.from(
      { length: 1500 },
      (_, i) => `only/${["A", "k", "z", "0", "-"][i % 5]}${String(i).padStart(4, "0")}`,
    );
    await putMany(
      client,
      src,
      source.map((k) => [k, "x"]),
    );
    await putMany(
      client,
      dst,
      ["only/A0000", "only/m-stale", "only/~stale", "only0"].map((k) => [k, "x"]),
    );
    const r = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--delete", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const s = summaryOf(r.stdout);
    assert.deepEqual([s.copied, s.deleted, s.skipped], [1499, 3, 1]);
    assert.deepEqual(await keys(client, dst), [...source].sort(compareKeys));
  });

  // More than five pages of objects beside the folders: the key space is split by sampling instead.
  test("a top level too wide to hold in memory is split by sampled key ranges and synced exactly", async () => {
    const src = await bucket("wide-s");
    const dst = await bucket("wide-d");
    const source = [...Array.from({ length: 5100 }, (_, i) => `k${String(i).padStart(5, "0")}`), "a/1", "z/1"];
    await putMany(
      client,
      src,
      source.map((k) => [k, "x"]),
      64,
    );
    await putMany(
      client,
      dst,
      ["k00007", "k99999-stale", "m/1"].map((k) => [k, "x"]),
    );
    const r = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--delete", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const s = summaryOf(r.stdout);
    assert.deepEqual([s.copied, s.deleted, s.skipped, s.failed], [source.length - 1, 2, 1, 0]);
    assert.deepEqual(await keys(client, dst), [...source].sort(compareKeys));
  });
});

describe("change detection", () => {
  test("same-size changed source content is copied (source newer)", async () => {
    const src = await bucket("chg-s");
    const dst = await bucket("chg-d");
    await put(client, src, "k", "aaaa");
    assert.equal((await runCli(["sync", `s3://${src}`, `s3://${dst}`])).code, 0);
    await new Promise((r) => setTimeout(r, 1100)); // S3 times have 1 s resolution
    await put(client, src, "k", "bbbb");
    const r = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(summaryOf(r.stdout).updated, 1);
    assert.equal(await getText(client, dst, "k"), "bbbb");
  });

  test("a target changed behind the tool's back with the same size: default keeps it (the copy-time trap), --checksum repairs it", async () => {
    const src = await bucket("trap-s");
    const dst = await bucket("trap-d");
    await put(client, src, "k", "good");
    assert.equal((await runCli(["sync", `s3://${src}`, `s3://${dst}`])).code, 0);
    await put(client, dst, "k", "evil"); // same size, newer than the source

    const plain = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--json"]);
    assert.equal(summaryOf(plain.stdout).updated, 0, "size+time cannot see it: documented trap");
    const check = await runCli(["check", `s3://${src}`, `s3://${dst}`, "--checksum"]);
    assert.equal(check.code, 1);
    assert.match(check.stdout, /differs: k \(checksum differs\)/);

    const fixed = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--checksum", "--json"]);
    assert.equal(summaryOf(fixed.stdout).updated, 1);
    assert.equal(await getText(client, dst, "k"), "good");
    assert.equal((await runCli(["check", `s3://${src}`, `s3://${dst}`, "--checksum"])).code, 0);
  });

  test("--size-only skips same-size objects whatever their time", async () => {
    const src = await bucket("so-s");
    const dst = await bucket("so-d");
    await put(client, dst, "k", "old!");
    await new Promise((r) => setTimeout(r, 1100));
    await put(client, src, "k", "new!");
    const r = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--size-only", "--json"]);
    assert.equal(summaryOf(r.stdout).skipped, 1);
    assert.equal(await getText(client, dst, "k"), "old!");
  });
});

describe("deletes", () => {
  test("--delete removes what the source lacks, but never excluded keys; dry-run changes nothing", async () => {
    const src = await bucket("del-s");
    const dst = await bucket("del-d");
    await putMany(client, src, [
      ["keep.txt", "1"],
      ["logs/a.log", "2"],
    ]);
    await putMany(client, dst, [
      ["keep.txt", "1"],
      ["gone.txt", "x"],
      ["logs/old.log", "x"],
      ["tmp/scratch", "x"],
      ["tmp/deep/er", "x"],
    ]);

    const dry = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--delete", "--exclude", "tmp/*", "--dryrun"]);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /\(dryrun\) delete: s3:\/\/.*\/gone\.txt/);
    assert.match(dry.stdout, /\(dryrun\) copy: .*logs\/a\.log/);
    assert.deepEqual(
      await keys(client, dst),
      ["gone.txt", "keep.txt", "logs/old.log", "tmp/deep/er", "tmp/scratch"],
      "dry run changed nothing",
    );

    const r = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--delete", "--exclude", "tmp/*", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await keys(client, dst), ["keep.txt", "logs/a.log", "tmp/deep/er", "tmp/scratch"]);
    const s = summaryOf(r.stdout);
    assert.deepEqual([s.copied, s.deleted, s.skipped], [1, 2, 1]);
  });

  test("deletes of more than 1000 keys run in batches and all land", async () => {
    const src = await bucket("bd-s");
    const dst = await bucket("bd-d");
    await putMany(
      client,
      dst,
      Array.from({ length: 1203 }, (_, i) => [`old/${i}`, "x"] as [string, string]),
    );
    await put(client, src, "only", "1");
    const r = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--delete", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(summaryOf(r.stdout).deleted, 1203);
    assert.deepEqual(await keys(client, dst), ["only"]);
  });
});

describe("prefixes, metadata, ACLs", () => {
  test("prefix to prefix maps keys; photos does not match photos2", async () => {
    const src = await bucket("pfx-s");
    const dst = await bucket("pfx-d");
    await putMany(client, src, [
      ["photos/a.jpg", "a"],
      ["photos/2024/b.jpg", "b"],
      ["photos2/c.jpg", "c"],
      ["photos", "file named photos"],
    ]);
    const r = await runCli(["sync", `s3://${src}/photos`, `s3://${dst}/backup/photos/`]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await keys(client, dst), ["backup/photos/2024/b.jpg", "backup/photos/a.jpg"]);
  });

  test("content headers, user metadata and tags arrive intact", async () => {
    const src = await bucket("meta-s");
    const dst = await bucket("meta-d");
    const expires = new Date("2030-01-01T00:00:00Z");
    await put(client, src, "page.html", "<h1>hi</h1>", {
      ContentType: "text/html; charset=utf-8",
      CacheControl: "max-age=60",
      ContentDisposition: 'attachment; filename="page.html"',
      ContentEncoding: "identity",
      ContentLanguage: "en-GB",
      Expires: expires,
      Metadata: { owner: "team-a", "source-id": "42" },
      Tagging: "env=prod&team=web%20site",
    });
    const r = await runCli(["sync", `s3://${src}`, `s3://${dst}`]);
    assert.equal(r.code, 0, r.stderr);
    const h = await head(client, dst, "page.html");
    assert.equal(h.ContentType, "text/html; charset=utf-8");
    assert.equal(h.CacheControl, "max-age=60");
    assert.equal(h.ContentDisposition, 'attachment; filename="page.html"');
    assert.equal(h.ContentEncoding, "identity");
    assert.equal(h.ContentLanguage, "en-GB");
    assert.equal(h.Expires?.getTime(), expires.getTime());
    assert.deepEqual(h.Metadata, { owner: "team-a", "source-id": "42" });
    assert.deepEqual(await tags(client, dst, "page.html"), { env: "prod", team: "web site" });
  });

  test("a 20 MiB object goes through multipart copy with metadata, tags and ACL, byte for byte", async () => {
    const src = await bucket("mp-s");
    const dst = await bucket("mp-d");
    const data = randomBytes(20 * 1024 * 1024);
    await put(client, src, "big/file.bin", data, {
      ContentType: "application/x-test",
      Metadata: { kind: "big" },
      Tagging: "size=large",
    });
    const r = await runCli([
      "sync",
      `s3://${src}`,
      `s3://${dst}`,
      "--multipart-threshold",
      "8MB",
      "--part-size",
      "5MB",
      "--acl",
      "public-read",
      "--json",
    ]);
    // A single-part source copied in parts cannot be proven by ETags: counted as unverifiable, and still exit 0.
    assert.equal(r.code, 0, r.stderr);
    assert.equal(summaryOf(r.stdout).copied, 1);
    assert.equal((summaryOf(r.stdout) as unknown as { unverifiable: number }).unverifiable, 1);
    const listed = (await listAll(client, dst))[0]!;
    assert.match(listed.etag, /-4$/, "copied in 4 parts of 5 MiB");
    const got = await client.send(
      new (await import("@aws-sdk/client-s3")).GetObjectCommand({ Bucket: dst, Key: "big/file.bin" }),
    );
    const bytes = Buffer.from(await got.Body!.transformToByteArray());
    assert.equal(createHash("sha256").update(bytes).digest("hex"), createHash("sha256").update(data).digest("hex"));
    assert.equal(got.ContentType, "application/x-test");
    assert.deepEqual(got.Metadata, { kind: "big" });
    assert.deepEqual(await tags(client, dst, "big/file.bin"), { size: "large" });
    const anon = await fetch(`${s3TestEnv().endpoint}/${dst}/big/file.bin`, { method: "HEAD" });
    assert.equal(anon.status, 200, "ACL set on the multipart copy");
    // No parts left behind.
    const uploads = await client.send(
      new (await import("@aws-sdk/client-s3")).ListMultipartUploadsCommand({ Bucket: dst }),
    );
    assert.equal(uploads.Uploads?.length ?? 0, 0);
  });

  test("a multipart source is copied with its own part layout, so its ETag proves the copy", async () => {
    const src = await bucket("mpv-s");
    const dst = await bucket("mpv-d");
    const data = randomBytes(20 * 1024 * 1024);
    const { Upload } = await import("@aws-sdk/lib-storage");
    await new Upload({
      client,
      params: { Bucket: src, Key: "parts.bin", Body: data },
      partSize: 8 * 1024 * 1024,
    }).done();
    const sourceEtag = (await listAll(client, src))[0]!.etag;
    assert.match(sourceEtag, /-3$/);
    const r = await runCli([
      "sync",
      `s3://${src}`,
      `s3://${dst}`,
      "--multipart-threshold",
      "5MB",
      "--part-size",
      "5MB",
      "--json",
      "-v",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const s = summaryOf(r.stdout) as unknown as { verified: number; unverifiable: number };
    assert.deepEqual([s.verified, s.unverifiable], [1, 0]);
    assert.equal((await listAll(client, dst))[0]!.etag, sourceEtag, "same parts, same ETag");
  });

  test("--acl public-read makes objects anonymously readable while the bucket stays private", async () => {
    const src = await bucket("acl-s");
    const dst = await bucket("acl-d");
    await putMany(client, src, [
      ["img/a.png", "png-a"],
      ["img/b c.png", "png-b"],
    ]);
    const r = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--acl", "public-read"]);
    assert.equal(r.code, 0, r.stderr);
    const endpoint = s3TestEnv().endpoint;
    const a = await fetch(`${endpoint}/${dst}/img/a.png`);
    assert.equal(a.status, 200);
    assert.equal(await a.text(), "png-a");
    const b = await fetch(`${endpoint}/${dst}/img/b%20c.png`);
    assert.equal(b.status, 200);
    const list = await fetch(`${endpoint}/${dst}?list-type=2`);
    assert.equal(list.status, 403, "anonymous listing of the bucket is denied");
    const srcAnon = await fetch(`${endpoint}/${src}/img/a.png`);
    assert.equal(srcAnon.status, 403, "the source objects stay private");
  });

  test("without --acl, copies are private even when the source object is public", async () => {
    const src = await bucket("priv-s");
    const dst = await bucket("priv-d");
    await put(client, src, "k", "v");
    await client.send(new PutObjectAclCommand({ Bucket: src, Key: "k", ACL: "public-read" }));
    assert.equal((await runCli(["sync", `s3://${src}`, `s3://${dst}`])).code, 0);
    assert.equal((await fetch(`${s3TestEnv().endpoint}/${dst}/k`)).status, 403);
  });
});

describe("check and errors", () => {
  test("check exits 0 in sync, 1 listing each difference, 2 on error", async () => {
    const src = await bucket("chk-s");
    const dst = await bucket("chk-d");
    await putMany(client, src, [
      ["same", "1"],
      ["new", "2"],
      ["changed", "3"],
    ]);
    await putMany(client, dst, [
      ["same", "1"],
      ["changed", "longer"],
      ["extra", "4"],
    ]);
    const r = await runCli(["check", `s3://${src}`, `s3://${dst}`]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^differs: changed \(size differs\)$/m);
    assert.match(r.stdout, /^missing in target: new$/m);
    assert.match(r.stdout, /^not in source: extra$/m);
    assert.match(r.stdout, /3 difference\(s\)/);
    const missing = await runCli(["check", `s3://${src}`, `s3://${dst}-nope`]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /NoSuchBucket/);
    assert.deepEqual(await keys(client, dst), ["changed", "extra", "same"], "check changes nothing");
  });

  test("bad input: one line, exit 2, nothing changed, no stack trace, no secrets", async () => {
    const src = await bucket("bad-s");
    const dst = await bucket("bad-d");
    await put(client, src, "k", "v");
    await put(client, dst, "old", "v");
    const cases: [string[], RegExp][] = [
      [["sync", "s3://", `s3://${dst}`], /invalid bucket name/],
      [["sync", `s3://${src}`, "gs://x/y"], /unsupported location/],
      [["sync", `s3://${src}`, `s3://${dst}`, "--acl", "world-writable"], /--acl/],
      [["sync", `s3://${src}`, `s3://${dst}`, "--concurrency", "0"], /invalid --concurrency/],
      [["sync", `s3://${src}`, `s3://${dst}`, "--concurrency", "-3"], /invalid --concurrency/],
      [["sync", `s3://${src}`, `s3://${dst}`, "--part-size", "1MB"], /--part-size/],
      [["sync", `s3://${src}`, `s3://${dst}`, "--bogus"], /unknown option '--bogus'/],
      [["sync", `s3://${src}/a`, `s3://${src}/a/b`, "--delete"], /overlap/],
      [["sync", `s3://${src}-missing`, `s3://${dst}`, "--delete"], /source listing: NoSuchBucket/],
      [["sync", `s3://${src}`, `s3://${dst}`, "--size-only", "--checksum"], /cannot be used together/],
      [["sync", `s3://${src}`], /missing required argument/],
    ];
    for (const [args, pattern] of cases) {
      const r = await runCli(args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, `one line for ${args.join(" ")}: ${r.stderr}`);
      assert.match(lines[0]!, pattern);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
      assert.doesNotMatch(r.stdout + r.stderr, /bucketsync-test-secret/);
    }
    const badKey = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--delete"], {
      env: { AWS_SECRET_ACCESS_KEY: "wrong-secret-value" },
    });
    assert.equal(badKey.code, 2);
    assert.match(badKey.stderr, /SignatureDoesNotMatch/);
    assert.doesNotMatch(badKey.stdout + badKey.stderr, /wrong-secret-value/);
    const unreachable = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--endpoint-url", "http://127.0.0.1:9"], {
      endpoint: false,
    });
    assert.equal(unreachable.code, 2);
    assert.match(unreachable.stderr, /cannot reach the endpoint/);
    assert.deepEqual(await keys(client, dst), ["old"], "nothing changed by any of them");
  });
});
