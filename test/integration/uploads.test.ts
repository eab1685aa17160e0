/**
 * Issue 17: incomplete multipart uploads. A run SIGKILLed during a multipart copy leaves its
 * upload behind; the next run aborts it (the record in the cache folder); `bucketsync cleanup`
 * finds and aborts planted ones. Sizes scaled down from the 50 MiB (24 MiB in 5 MiB
 * parts) for the shared machine.
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CreateMultipartUploadCommand,
  ListMultipartUploadsCommand,
  UploadPartCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { startFaultProxy, type FaultProxy } from "../helpers/fault-proxy.js";
import { CLI, head, put, runCli, s3Client, s3TestEnv, testBuckets, userEnv, type CliResult } from "../helpers/s3.js";

const client = s3Client("a");
const { bucket, removeAll } = testBuckets(client);
const cache = mkdtempSync(join(tmpdir(), "bs-uploads-cache-"));
const proxies: FaultProxy[] = [];
after(async () => {
  for (const p of proxies) await p.close();
  // Incomplete uploads keep a bucket from being deleted: abort what is left first.
  await removeAll();
  client.destroy();
  rmSync(cache, { recursive: true, force: true });
});

const show = (r: CliResult) =>
  `exit ${r.code}\n--- stderr\n${r.stderr.slice(0, 3000)}\n--- stdout\n${r.stdout.slice(-2000)}`;
const uploadsIn = async (c: S3Client, b: string) =>
  (await c.send(new ListMultipartUploadsCommand({ Bucket: b }))).Uploads ?? [];

async function until(condition: () => boolean, what: string, timeoutMs = 60_000) {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function plant(b: string, key: string): Promise<string> {
  const created = await client.send(new CreateMultipartUploadCommand({ Bucket: b, Key: key }));
  await client.send(
    new UploadPartCommand({ Bucket: b, Key: key, UploadId: created.UploadId, PartNumber: 1, Body: "part one" }),
  );
  return created.UploadId!;
}

describe("incomplete multipart uploads", () => {
  test("after a SIGKILL during a multipart copy, the next run aborts the upload it left", async () => {
    const src = await bucket("mpu-src");
    const dst = await bucket("mpu-dst");
    const size = 24 * 1024 * 1024;
    await put(client, src, "big.bin", randomBytes(size));
    // Part copies answer slowly, so the run is surely in the middle of its upload when killed.
    const p = await startFaultProxy({
      target: s3TestEnv().endpoint,
      latencyMs: (req) => (req.operation === "UploadPartCopy" ? 3000 : 0),
    });
    proxies.push(p);
    const args = ["sync", `s3://${src}`, `s3://${dst}`, "--multipart-threshold", "5MiB", "--part-size", "5MiB"];
    const child = spawn(process.execPath, [CLI, ...args, "--endpoint-url", p.url], {
      env: { PATH: process.env.PATH ?? "", HOME: "/nonexistent", ...userEnv("a"), BUCKETSYNC_CACHE_DIR: cache },
      stdio: "ignore",
    });
    const exited = new Promise((resolve) => child.on("close", resolve));
    await until(() => p.count("UploadPartCopy") > 0, "the first part copy");
    child.kill("SIGKILL");
    await exited;
    const left = await uploadsIn(client, dst);
    assert.equal(left.length, 1, "the killed run left its upload behind");

    // The same command (the same endpoint: a record names where its uploads are).
    const viaProxy = [...args, "--endpoint-url", p.url];
    const again = await runCli(viaProxy, { endpoint: false, env: { BUCKETSYNC_CACHE_DIR: cache } });
    assert.equal(again.code, 0, show(again));
    assert.match(again.stderr, /aborted 1 incomplete multipart upload\(s\) that an earlier run left/);
    assert.deepEqual(await uploadsIn(client, dst), [], "no incomplete upload is left");
    assert.equal((await head(client, dst, "big.bin")).ContentLength, size);

    // The record was taken over and emptied: a third run has nothing to abort.
    const third = await runCli(viaProxy, { endpoint: false, env: { BUCKETSYNC_CACHE_DIR: cache } });
    assert.equal(third.code, 0, show(third));
    assert.doesNotMatch(third.stderr, /aborted/);
  });

  test("cleanup finds and aborts planted uploads: by prefix, by age, --dry-run changes nothing", async () => {
    const b = await bucket("mpu-clean");
    const ids = [await plant(b, "p/one"), await plant(b, "p/two words+?"), await plant(b, "q/three")];
    const dry = await runCli(["cleanup", `s3://${b}/p`, "--older-than", "0", "--dry-run"]);
    assert.equal(dry.code, 0, show(dry));
    assert.match(
      dry.stdout,
      new RegExp(`\\(dryrun\\) abort: s3://${b}/p/one \\(upload ${ids[0]!.replace(/[.+]/g, "\\$&")}`),
    );
    assert.match(dry.stdout, /\(dryrun\) abort: .*p\/two words\+\?/);
    assert.match(dry.stdout, /would abort 2 incomplete multipart upload\(s\)/);
    assert.equal((await uploadsIn(client, b)).length, 3);

    // The default age (24 hours) leaves uploads started just now alone.
    const young = await runCli(["cleanup", `s3://${b}`]);
    assert.equal(young.code, 0, show(young));
    assert.match(
      young.stdout,
      /aborted 0 incomplete multipart upload\(s\), failed 0; 3 younger than --older-than left alone/,
    );
    assert.equal((await uploadsIn(client, b)).length, 3);

    const real = await runCli(["cleanup", `s3://${b}/p/`, "--older-than", "0s", "--json"]);
    assert.equal(real.code, 0, show(real));
    const lines = real.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      lines
        .filter((l) => l.type === "abort")
        .map((l) => l.key)
        .sort(),
      ["one", "two words+?"],
    );
    assert.deepEqual(lines.at(-1), { type: "summary", dryRun: false, found: 2, aborted: 2, failed: 0, younger: 0 });
    assert.deepEqual(
      (await uploadsIn(client, b)).map((u) => u.Key),
      ["q/three"],
    );
    await runCli(["cleanup", `s3://${b}`, "--older-than", "0"]);
    assert.deepEqual(await uploadsIn(client, b), []);
  });

  test("cleanup refuses bad input in one line with exit 2", async () => {
    const local = await runCli(["cleanup", "./some/folder"]);
    assert.equal(local.code, 2, show(local));
    assert.match(local.stderr, /^bucketsync: cleanup works on s3:\/\/ locations\n$/);
    const age = await runCli(["cleanup", "s3://whatever", "--older-than", "banana"]);
    assert.equal(age.code, 2, show(age));
    assert.match(age.stderr, /^bucketsync: invalid --older-than 'banana'/);
    // A bucket that does not exist is refused input too: one line, exit 2, nothing aborted.
    const missing = await runCli(["cleanup", `s3://${await bucket("mpu-gone")}-missing`, "--older-than", "0"]);
    assert.equal(missing.code, 2, show(missing));
    assert.match(missing.stderr, /^bucketsync: error: .*does not exist.*; nothing aborted\n$/);
    const missingJson = await runCli(["cleanup", `s3://${await bucket("mpu-gone2")}-missing`, "--json"]);
    assert.equal(missingJson.code, 2, show(missingJson));
    assert.deepEqual(
      missingJson.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l))
        .map((e) => [e.type, e.fatal, e.code]),
      [["error", true, "NoSuchBucket"]],
    );
  });
});
