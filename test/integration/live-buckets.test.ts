/**
 * Issue 15, safe on live buckets, against the real radosgw; every test reads the buckets
 * afterwards: backups of what a sync replaces or deletes (--backup-dir, --suffix), no-clobber
 * (--no-overwrite, --immutable), copies pinned to what the listing saw while the source is being
 * rewritten (server-side and streamed), target keys written by someone else during the run
 * (conditional writes), --max-delete as a share, and Object Lock on every object written.
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectRetentionCommand,
  DeleteBucketCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  PutObjectCommand,
} from "@aws-sdk/client-s3";
import { FaultProxy, type FaultProxyOptions } from "../helpers/fault-proxy.js";
import { getText, head, keys, put, putMany, runCli, s3Client, s3TestEnv, testBuckets } from "../helpers/s3.js";

const client = s3Client("a");
const clientB = s3Client("b");
const { bucket, removeAll } = testBuckets(client);
const { bucket: bucketOfB, removeAll: removeAllOfB } = testBuckets(clientB);
const work = mkdtempSync(join(tmpdir(), "bs-live-"));
const proxies: FaultProxy[] = [];
after(async () => {
  for (const p of proxies) await p.close();
  await removeAll();
  await removeAllOfB();
  rmSync(work, { recursive: true, force: true });
  client.destroy();
  clientB.destroy();
});
/** Governance-mode locks let their owner delete with the bypass header; the test's own bucket goes with its versions. */
async function removeLockedBucket(name: string): Promise<void> {
  const versions = await client.send(new ListObjectVersionsCommand({ Bucket: name })).catch(() => undefined);
  for (const v of [...(versions?.Versions ?? []), ...(versions?.DeleteMarkers ?? [])])
    await client
      .send(
        new DeleteObjectCommand({ Bucket: name, Key: v.Key, VersionId: v.VersionId, BypassGovernanceRetention: true }),
      )
      .catch(() => undefined);
  await client.send(new DeleteBucketCommand({ Bucket: name })).catch(() => undefined);
}
const show = (r: { code: number; stdout: string; stderr: string }) =>
  `exit ${r.code}\n${r.stderr}\n${r.stdout.slice(-2000)}`;
const events = (stdout: string) =>
  stdout
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown> & { type: string; key?: string });

async function proxy(beforeForward: FaultProxyOptions["beforeForward"]): Promise<FaultProxy> {
  const p = await FaultProxy.start({ target: s3TestEnv().endpoint, beforeForward });
  proxies.push(p);
  return p;
}

describe("--backup-dir", () => {
  test("--delete --backup-dir: every object overwritten or deleted is first saved with its bytes, Content-Type and metadata", async () => {
    const src = await bucket("bk-src");
    const dst = await bucket("bk-dst");
    const bak = await bucket("bk-bak");
    await put(client, src, "same.txt", "same");
    await put(client, src, "site/page.html", "<p>new, longer page</p>", { ContentType: "text/html" });
    await put(client, src, "new.txt", "new");
    await put(client, dst, "same.txt", "same");
    await put(client, dst, "site/page.html", "<p>old</p>", {
      ContentType: "text/html; charset=old",
      Metadata: { team: "web" },
    });
    await put(client, dst, "gone/extra.bin", "extra bytes", {
      ContentType: "application/x-extra",
      Metadata: { owner: "ops" },
    });
    const r = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--delete", "--backup-dir", `s3://${bak}/run`]);
    assert.equal(r.code, 0, show(r));
    assert.deepEqual(
      await keys(client, dst),
      ["new.txt", "same.txt", "site/page.html"],
      "the target equals the source",
    );
    assert.equal(await getText(client, dst, "site/page.html"), "<p>new, longer page</p>");
    assert.deepEqual(await keys(client, bak), ["run/gone/extra.bin", "run/site/page.html"]);
    assert.equal(await getText(client, bak, "run/site/page.html"), "<p>old</p>");
    assert.equal(await getText(client, bak, "run/gone/extra.bin"), "extra bytes");
    const page = await head(client, bak, "run/site/page.html");
    assert.equal(page.ContentType, "text/html; charset=old");
    assert.deepEqual(page.Metadata, { team: "web" });
    const extra = await head(client, bak, "run/gone/extra.bin");
    assert.equal(extra.ContentType, "application/x-extra");
    assert.deepEqual(extra.Metadata, { owner: "ops" });
    assert.match(r.stdout, /backed up 2/);
  });

  test("--suffix on two days keeps both backups; --dry-run says what would be backed up and changes nothing", async () => {
    const src = await bucket("sfx-src");
    const dst = await bucket("sfx-dst");
    const bak = await bucket("sfx-bak");
    await put(client, dst, "notes/a.txt", "day zero");
    await put(client, src, "notes/a.txt", "day one, longer");
    const dry = await runCli([
      "sync",
      `s3://${src}`,
      `s3://${dst}`,
      "--backup-dir",
      `s3://${bak}`,
      "--suffix",
      "-2026-12-01",
      "--suffix-keep-extension",
      "--dry-run",
      "--json",
    ]);
    assert.equal(dry.code, 0, show(dry));
    const planned = events(dry.stdout).find((e) => e.type === "backup");
    assert.deepEqual(
      { key: planned?.key, backupKey: planned?.backupKey, dryRun: planned?.dryRun },
      { key: "notes/a.txt", backupKey: "notes/a-2026-12-01.txt", dryRun: true },
    );
    assert.deepEqual(await keys(client, bak), [], "a dry run backs up nothing");
    assert.equal(await getText(client, dst, "notes/a.txt"), "day zero");
    for (const [day, content] of [
      ["-2026-12-01", "day one, longer"],
      ["-2026-12-02", "day two, longer still"],
    ]) {
      await put(client, src, "notes/a.txt", content!);
      const r = await runCli([
        "sync",
        `s3://${src}`,
        `s3://${dst}`,
        "--backup-dir",
        `s3://${bak}`,
        "--suffix",
        day!,
        "--suffix-keep-extension",
      ]);
      assert.equal(r.code, 0, show(r));
    }
    assert.deepEqual(await keys(client, bak), ["notes/a-2026-12-01.txt", "notes/a-2026-12-02.txt"]);
    assert.equal(await getText(client, bak, "notes/a-2026-12-01.txt"), "day zero");
    assert.equal(await getText(client, bak, "notes/a-2026-12-02.txt"), "day one, longer");
    assert.equal(await getText(client, dst, "notes/a.txt"), "day two, longer still");
  });

  test("a backup that fails (no write permission there) leaves the target object untouched and exits 1", async () => {
    const src = await bucket("bkf-src");
    const dst = await bucket("bkf-dst");
    const bak = await bucketOfB("bkf-bak"); // user B's bucket: user A may not write there
    await put(client, src, "a.txt", "new and longer");
    await put(client, src, "fresh.txt", "fresh");
    await put(client, dst, "a.txt", "old");
    await put(client, dst, "extra.txt", "extra");
    const r = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--delete", "--backup-dir", `s3://${bak}/b`]);
    assert.equal(r.code, 1, show(r));
    assert.match(r.stderr, /^error: update a\.txt: .*its backup to .* failed .*left as it is$/m);
    assert.equal(await getText(client, dst, "a.txt"), "old", "not replaced without its backup");
    assert.equal(await getText(client, dst, "extra.txt"), "extra", "a failed object withholds every delete");
    assert.equal(await getText(client, dst, "fresh.txt"), "fresh", "new objects are still copied");
    // Deletes alone: each delete waits for its backup, and one that fails is not deleted.
    await put(client, src, "a.txt", "old");
    const deletes = await runCli([
      "sync",
      `s3://${src}`,
      `s3://${dst}`,
      "--delete",
      "--size-only",
      "--backup-dir",
      `s3://${bak}/b`,
    ]);
    assert.equal(deletes.code, 1, show(deletes));
    assert.match(deletes.stderr, /^error: delete extra\.txt: .*its backup to .* failed/m);
    assert.deepEqual(await keys(client, dst), ["a.txt", "extra.txt", "fresh.txt"]);
  });

  test("a backup location inside the target is refused (exit 2) unless the sync excludes it", async () => {
    const src = await bucket("bko-src");
    const dst = await bucket("bko-dst");
    await put(client, src, "a.txt", "new and longer");
    await put(client, dst, "a.txt", "old");
    const inside = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--delete", "--backup-dir", `s3://${dst}/bak`]);
    assert.equal(inside.code, 2, show(inside));
    assert.match(inside.stderr, /is inside the target .*exclude it/);
    const missing = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--backup-dir", `s3://${src}-none/b`]);
    assert.equal(missing.code, 2, show(missing));
    assert.match(missing.stderr, /^bucketsync: --backup-dir .*NoSuchBucket.*nothing changed$/m);
    const onSource = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--backup-dir", `s3://${src}`]);
    assert.equal(onSource.code, 2, show(onSource));
    assert.equal(await getText(client, dst, "a.txt"), "old", "a refused run changes nothing");
    const excluded = await runCli([
      "sync",
      `s3://${src}`,
      `s3://${dst}`,
      "--delete",
      "--backup-dir",
      `s3://${dst}/bak`,
      "--exclude",
      "bak/*",
    ]);
    assert.equal(excluded.code, 0, show(excluded));
    assert.deepEqual(await keys(client, dst), ["a.txt", "bak/a.txt"]);
    assert.equal(await getText(client, dst, "bak/a.txt"), "old");
  });

  test("local folders: replaced and deleted files are saved into the backup folder", async () => {
    const src = mkdtempSync(join(work, "src-"));
    const dst = mkdtempSync(join(work, "dst-"));
    const bak = join(work, "bak-local");
    writeFileSync(join(src, "a.txt"), "new and longer");
    writeFileSync(join(dst, "a.txt"), "old");
    writeFileSync(join(dst, "extra.txt"), "extra");
    const r = await runCli(["sync", src, dst, "--delete", "--backup-dir", bak]);
    assert.equal(r.code, 0, show(r));
    const { readFileSync, readdirSync } = await import("node:fs");
    assert.deepEqual(readdirSync(dst).sort(), ["a.txt"]);
    assert.equal(readFileSync(join(dst, "a.txt"), "utf8"), "new and longer");
    assert.deepEqual(readdirSync(bak).sort(), ["a.txt", "extra.txt"]);
    assert.equal(readFileSync(join(bak, "a.txt"), "utf8"), "old");
    assert.equal(readFileSync(join(bak, "extra.txt"), "utf8"), "extra");
  });
});

describe("no-clobber", () => {
  test("--no-overwrite keeps every existing object's bytes and copies the new ones; --immutable exits 1 naming the differing keys", async () => {
    const src = await bucket("nc-src");
    const dst = await bucket("nc-dst");
    await put(client, src, "a.txt", "source version, longer");
    await put(client, src, "b.txt", "source b, longer");
    await put(client, src, "new.txt", "new");
    await put(client, dst, "a.txt", "target a");
    await put(client, dst, "b.txt", "target b");
    const keep = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--no-overwrite"]);
    assert.equal(keep.code, 0, show(keep));
    assert.equal(await getText(client, dst, "a.txt"), "target a");
    assert.equal(await getText(client, dst, "b.txt"), "target b");
    assert.equal(await getText(client, dst, "new.txt"), "new");
    await put(client, src, "newer.txt", "newer");
    const immutable = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--immutable"]);
    assert.equal(immutable.code, 1, show(immutable));
    assert.match(immutable.stderr, /^error: update a\.txt: differs from the source .*--immutable/m);
    assert.match(immutable.stderr, /^error: update b\.txt: /m);
    assert.equal(await getText(client, dst, "a.txt"), "target a");
    assert.equal(await getText(client, dst, "b.txt"), "target b");
    assert.equal(await getText(client, dst, "newer.txt"), "newer", "new objects are still copied");
    // rclone's spelling works too.
    const rclone = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--ignore-existing"]);
    assert.equal(rclone.code, 0, show(rclone));
    assert.equal(await getText(client, dst, "a.txt"), "target a");
  });
});

describe("a live source and target", () => {
  /** Rewrites `key` in `bucket` the first time a request that reads it passes the proxy. */
  function rewriteOnce(bucketName: string, key: string, operation: string, content: string) {
    let done = false;
    return async (req: { operation: string; bucket: string; key: string; copySource?: string }) => {
      const reads = req.copySource === `${bucketName}/${key}` || (req.bucket === bucketName && req.key === key);
      if (done || req.operation !== operation || !reads) return;
      done = true;
      await client.send(new PutObjectCommand({ Bucket: bucketName, Key: key, Body: content }));
    };
  }

  test("a source object rewritten between listing and a server-side copy: the newer bytes are copied, verified, and the re-plan is an event", async () => {
    const src = await bucket("live-src");
    const dst = await bucket("live-dst");
    await putMany(
      client,
      src,
      Array.from({ length: 20 }, (_, i) => [`k${String(i).padStart(2, "0")}.txt`, `v${i}`]),
    );
    await put(client, src, "live.txt", "as listed");
    const p = await proxy(rewriteOnce(src, "live.txt", "CopyObject", "rewritten after the listing, longer"));
    const r = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--json"], {
      endpoint: false,
      env: { AWS_ENDPOINT_URL: p.url },
    });
    assert.equal(r.code, 0, show(r));
    assert.equal(await getText(client, dst, "live.txt"), "rewritten after the listing, longer");
    const all = events(r.stdout);
    assert.ok(
      all.some((e) => e.type === "replan" && e.key === "live.txt"),
      `a replan event for live.txt\n${r.stdout}`,
    );
    const copy = all.find((e) => e.type === "copy" && e.key === "live.txt");
    assert.match(String(copy?.verification), /^verified/);
    assert.equal(copy?.etag, (await head(client, src, "live.txt")).ETag?.replace(/"/g, ""));
    assert.equal(all.filter((e) => e.type === "error").length, 0);
    assert.equal((await keys(client, dst)).length, 21);
  });

  test("the same for a streamed copy (other endpoint): the GET is pinned by If-Match, and the newer object is copied", async () => {
    const src = await bucket("lives-src");
    const dst = await bucket("lives-dst");
    await put(client, src, "live.txt", "as listed");
    await put(client, src, "other.txt", "other");
    const p = await proxy(rewriteOnce(src, "live.txt", "GetObject", "rewritten before the GET, longer"));
    const r = await runCli(
      [
        "sync",
        `s3://${src}`,
        `s3://${dst}`,
        "--json",
        "--source-endpoint-url",
        p.url,
        "--target-endpoint-url",
        s3TestEnv().endpoint,
      ],
      { endpoint: false },
    );
    assert.equal(r.code, 0, show(r));
    assert.equal(await getText(client, dst, "live.txt"), "rewritten before the GET, longer");
    const all = events(r.stdout);
    assert.ok(
      all.some((e) => e.type === "replan" && e.key === "live.txt"),
      r.stdout,
    );
    assert.match(String(all.find((e) => e.type === "copy" && e.key === "live.txt")?.verification), /^verified/);
  });

  test("a target key written by someone else during the run (412 on the conditional write) is reported and not overwritten", async () => {
    const src = mkdtempSync(join(work, "cond-"));
    const dst = await bucket("cond-dst");
    writeFileSync(join(src, "theirs.txt"), "ours");
    writeFileSync(join(src, "plain.txt"), "plain");
    let done = false;
    const p = await proxy(async (req) => {
      if (done || req.operation !== "PutObject" || req.bucket !== dst || req.key !== "theirs.txt") return;
      done = true;
      await client.send(new PutObjectCommand({ Bucket: dst, Key: "theirs.txt", Body: "written by someone else" }));
    });
    const r = await runCli(["sync", src, `s3://${dst}`, "-v"], { endpoint: false, env: { AWS_ENDPOINT_URL: p.url } });
    assert.equal(r.code, 1, show(r));
    assert.match(r.stderr, /^error: copy theirs\.txt: .*changed during the run.*not overwritten/m);
    assert.match(r.stderr, /^note: conditional writes: /m);
    assert.equal(await getText(client, dst, "theirs.txt"), "written by someone else");
    assert.equal(await getText(client, dst, "plain.txt"), "plain");
  });
});

describe("--max-delete as a share", () => {
  test("--max-delete 10%: refused (no delete at all, exit 1) with 11% planned; runs with 9%", async () => {
    const src = await bucket("pct-src");
    const dst = await bucket("pct-dst");
    const kept = Array.from({ length: 89 }, (_, i) => [`keep/${String(i).padStart(3, "0")}`, "k"] as [string, string]);
    await putMany(client, src, kept);
    await putMany(client, dst, kept);
    const extras = Array.from(
      { length: 11 },
      (_, i) => [`extra/${String(i).padStart(2, "0")}`, "x"] as [string, string],
    );
    await putMany(client, dst, extras); // 11 of 100 target objects
    const refused = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--delete", "--max-delete", "10%"]);
    assert.equal(refused.code, 1, show(refused));
    assert.match(
      refused.stderr,
      /11 deletions planned, 11\.0% of the 100 target objects in scope, more than --max-delete 10%/,
    );
    assert.equal((await keys(client, dst, "extra/")).length, 11, "no delete at all");
    // Two of the extras come back to the source: 9 deletes of 100 objects.
    await putMany(client, src, extras.slice(0, 2));
    const runs = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--delete", "--max-delete", "10%"]);
    assert.equal(runs.code, 0, show(runs));
    assert.deepEqual(await keys(client, dst, "extra/"), ["extra/00", "extra/01"]);
    const bad = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--delete", "--max-delete", "120%"]);
    assert.equal(bad.code, 2);
  });
});

describe("Object Lock", () => {
  test("objects written with --object-lock-mode GOVERNANCE --object-lock-retain-until 1d carry it, and a plain delete of that version is refused", async () => {
    const src = await bucket("lock-src");
    const locked = `bs-locked-${process.pid}-${Date.now().toString(36)}`;
    await client.send(new CreateBucketCommand({ Bucket: locked, ObjectLockEnabledForBucket: true }));
    after(() => removeLockedBucket(locked));
    const plain = await bucket("lock-plain");
    await put(client, src, "a.txt", "keep me");
    await put(client, src, "dir/b.txt", "me too");
    const before = Date.now();
    const r = await runCli([
      "sync",
      `s3://${src}`,
      `s3://${locked}`,
      "--object-lock-mode",
      "GOVERNANCE",
      "--object-lock-retain-until",
      "1d",
    ]);
    assert.equal(r.code, 0, show(r));
    for (const key of ["a.txt", "dir/b.txt"]) {
      const retention = await client.send(new GetObjectRetentionCommand({ Bucket: locked, Key: key }));
      assert.equal(retention.Retention?.Mode, "GOVERNANCE");
      const until = retention.Retention!.RetainUntilDate!.getTime();
      assert.ok(Math.abs(until - (before + 86_400_000)) < 120_000, `retained until about a day from now: ${until}`);
    }
    const version = (await client.send(new HeadObjectCommand({ Bucket: locked, Key: "a.txt" }))).VersionId;
    await assert.rejects(
      client.send(new DeleteObjectCommand({ Bucket: locked, Key: "a.txt", VersionId: version })),
      /AccessDenied/,
    );
    const noLock = await runCli([
      "sync",
      `s3://${src}`,
      `s3://${plain}`,
      "--object-lock-mode",
      "GOVERNANCE",
      "--object-lock-retain-until",
      "1d",
    ]);
    assert.equal(noLock.code, 2, show(noLock));
    assert.match(noLock.stderr, /has no Object Lock enabled/);
    assert.deepEqual(await keys(client, plain), [], "nothing copied");
  });
});
