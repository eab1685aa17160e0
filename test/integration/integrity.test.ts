import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash, randomBytes } from "node:crypto";
import {
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  DeleteObjectCommand,
  GetObjectCommand,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { multipartEtag, OFF_THREAD_MIN_BYTES } from "../../src/integrity/etag.js";
import { getText, keys, listAll, newBucket, put, putMany, removeBucket, runCli, s3Client } from "../helpers/s3.js";

const client = s3Client("a");
const buckets: string[] = [];
async function bucket(label: string, versioned = false) {
  const name = await newBucket(client, label);
  buckets.push(name);
  if (versioned)
    await client.send(new PutBucketVersioningCommand({ Bucket: name, VersioningConfiguration: { Status: "Enabled" } }));
  return name;
}
after(async () => {
  for (const b of buckets) {
    // Versioned buckets: remove every version first.
    const v = await client.send(new ListObjectVersionsCommand({ Bucket: b })).catch(() => undefined);
    for (const o of [...(v?.Versions ?? []), ...(v?.DeleteMarkers ?? [])])
      await client
        .send(new DeleteObjectCommand({ Bucket: b, Key: o.Key, VersionId: o.VersionId }))
        .catch(() => undefined);
    await removeBucket(client, b).catch(() => undefined);
  }
  client.destroy();
});
const summaryOf = (stdout: string) => JSON.parse(stdout.trim().split("\n").pop()!) as Record<string, number>;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("integrity evidence", () => {
  test("every copy is verified and counted; a same-size corruption behind the tool's back is caught by check and repaired by sync --checksum", async () => {
    const src = await bucket("ev-s");
    const dst = await bucket("ev-d");
    await putMany(client, src, [
      ["a.txt", "alpha"],
      ["b.txt", "bravo"],
      ["c.txt", "charl"],
    ]);
    const first = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--json"]);
    assert.equal(first.code, 0, first.stderr);
    const s = summaryOf(first.stdout);
    assert.deepEqual([s.copied, s.verified, s.unverifiable, s.mismatched], [3, 3, 0, 0]);

    await put(client, dst, "b.txt", "BRAVO"); // same size, different bytes, newer
    const report = join(tmpdir(), `bucketsync-evidence-${process.pid}.jsonl`);
    const checked = await runCli(["check", `s3://${src}`, `s3://${dst}`, "--checksum", "--report", report]);
    assert.equal(checked.code, 1, checked.stdout + checked.stderr);
    assert.match(checked.stdout, /^differs: b\.txt \(checksum differs\)$/m);
    const evidence = readFileSync(report, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    rmSync(report);
    assert.equal(evidence.length, 3);
    const b = evidence.find((e) => e.key === "b.txt");
    assert.equal(b.result, "differs");
    assert.match(b.compared, /ETag/);
    assert.equal(b.source.etag, createHash("md5").update("bravo").digest("hex"));
    assert.equal(b.target.etag, createHash("md5").update("BRAVO").digest("hex"));
    assert.equal(evidence.filter((e) => e.result === "same").length, 2);

    const repaired = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--checksum", "--json"]);
    assert.equal(summaryOf(repaired.stdout).updated, 1);
    assert.equal(await getText(client, dst, "b.txt"), "bravo");
    assert.equal((await runCli(["check", `s3://${src}`, `s3://${dst}`, "--checksum"])).code, 0);
  });

  test("a large file (hashed in a worker thread) is verified on the way up and on the way down, byte for byte", async () => {
    const work = mkdtempSync(join(tmpdir(), "bucketsync-large-"));
    try {
      const data = randomBytes(OFF_THREAD_MIN_BYTES + 3 * 1024 * 1024 + 17);
      mkdirSync(join(work, "up"));
      writeFileSync(join(work, "up", "large.bin"), data);
      const b = await bucket("large");
      const up = await runCli(["sync", join(work, "up"), `s3://${b}`, "--json"]);
      assert.equal(up.code, 0, up.stderr);
      assert.deepEqual([summaryOf(up.stdout).verified, summaryOf(up.stdout).mismatched], [1, 0]);
      const down = await runCli(["sync", `s3://${b}`, join(work, "down"), "--json"]);
      assert.equal(down.code, 0, down.stderr);
      assert.deepEqual([summaryOf(down.stdout).verified, summaryOf(down.stdout).mismatched], [1, 0]);
      assert.ok(readFileSync(join(work, "down", "large.bin")).equals(data), "the downloaded file is the uploaded one");
      // --checksum against the folder hashes the file the same way, and finds it the same.
      const checked = await runCli(["check", join(work, "down"), `s3://${b}`, "--checksum"]);
      assert.equal(checked.code, 0, checked.stdout + checked.stderr);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  test("the multipart ETag computed from a known part size matches what the server returns", async () => {
    const b = await bucket("mpe");
    const data = randomBytes(12 * 1024 * 1024 + 77);
    await new Upload({ client, params: { Bucket: b, Key: "m.bin", Body: data }, partSize: 5 * 1024 * 1024 }).done();
    const md5 = (x: Buffer) => createHash("md5").update(x).digest();
    const parts = [0, 1, 2].map((i) => md5(data.subarray(i * 5 * 1024 * 1024, (i + 1) * 5 * 1024 * 1024)));
    assert.equal((await listAll(client, b))[0]!.etag, multipartEtag(parts));
  });
});

describe("versioned buckets", () => {
  test("--all-versions reproduces three versions of a key in order, and a re-run copies nothing", async () => {
    const src = await bucket("av-s", true);
    const dst = await bucket("av-d", true);
    for (const v of ["v1", "v2-longer", "v3"]) await put(client, src, "doc.txt", v);
    await put(client, src, "other.txt", "x");
    const r = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--all-versions", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(summaryOf(r.stdout).copied, 4);
    const versions = await client.send(new ListObjectVersionsCommand({ Bucket: dst, Prefix: "doc.txt" }));
    const ordered = [...(versions.Versions ?? [])].sort(
      (x, y) => x.LastModified!.getTime() - y.LastModified!.getTime() || 0,
    );
    const contents = [];
    for (const v of ordered) {
      const out = await client.send(new GetObjectCommand({ Bucket: dst, Key: "doc.txt", VersionId: v.VersionId }));
      contents.push(await out.Body!.transformToString());
    }
    assert.deepEqual(contents, ["v1", "v2-longer", "v3"]);
    assert.equal(await getText(client, dst, "doc.txt"), "v3");
    const again = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--all-versions", "--json"]);
    assert.equal(summaryOf(again.stdout).copied, 0);
  });

  test("--at between two versions copies the older one and skips a key deleted before that moment", async () => {
    const src = await bucket("at-s", true);
    const dst = await bucket("at-d");
    await put(client, src, "doc.txt", "old content");
    await put(client, src, "gone.txt", "soon deleted");
    await sleep(1500);
    await client.send(new DeleteObjectCommand({ Bucket: src, Key: "gone.txt" }));
    await sleep(1500);
    const moment = new Date();
    await sleep(1500);
    await put(client, src, "doc.txt", "new content!");
    await put(client, src, "later.txt", "created after the moment");
    const r = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--at", moment.toISOString(), "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await keys(client, dst), ["doc.txt"]);
    assert.equal(await getText(client, dst, "doc.txt"), "old content");
    const now = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--json"]);
    assert.equal(now.code, 0, now.stderr);
    assert.equal(await getText(client, dst, "doc.txt"), "new content!");
  });
});

describe("attribute filters", () => {
  test("--min-size, --max-size, --newer-than, --match-content-type and --match-metadata select exactly the right objects", async () => {
    const src = await bucket("af-s");
    await put(client, src, "tiny.txt", "x", { ContentType: "text/plain" });
    await put(client, src, "mid.png", "m".repeat(500), { ContentType: "image/png", Metadata: { team: "web-a" } });
    await put(client, src, "big.png", "b".repeat(5000), { ContentType: "image/png", Metadata: { team: "data" } });
    await sleep(1500);
    const cut = new Date();
    await sleep(1500);
    await put(client, src, "fresh.txt", "f".repeat(50), { ContentType: "text/plain" });
    const cases: [string[], string[]][] = [
      [["--min-size", "100", "--max-size", "1000"], ["mid.png"]],
      [["--newer-than", cut.toISOString()], ["fresh.txt"]],
      [
        ["--older-than", cut.toISOString()],
        ["big.png", "mid.png", "tiny.txt"],
      ],
      [
        ["--match-content-type", "image/*"],
        ["big.png", "mid.png"],
      ],
      [["--match-metadata", "team=web*"], ["mid.png"]],
    ];
    for (const [flags, want] of cases) {
      const dst = await bucket("af-d");
      const r = await runCli(["sync", `s3://${src}`, `s3://${dst}`, ...flags]);
      assert.equal(r.code, 0, `${flags.join(" ")}: ${r.stderr}`);
      assert.deepEqual(await keys(client, dst), want, flags.join(" "));
    }
    const bad = await runCli(["sync", `s3://${src}`, `s3://${src}-x`, "--newer-than", "last tuesday"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /invalid --newer-than/);
  });
});
