/**
 * Issue 5, "Survive faults": the CLI against the real S3 server behind a fault-injecting proxy.
 * Every check of the outcome reads the real server directly, never through the proxy.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { GetObjectCommand, ListMultipartUploadsCommand } from "@aws-sdk/client-s3";
import { compareKeys } from "../../src/core/keys.js";
import {
  RANDOM_FAULT_KINDS,
  startFaultProxy,
  type FaultProxy,
  type FaultProxyOptions,
  type RequestInfo,
} from "../helpers/fault-proxy.js";
import {
  getText,
  keyZoo,
  keys,
  listAll,
  put,
  putMany,
  runCli,
  s3Client,
  s3TestEnv,
  type CliResult,
  testBuckets,
} from "../helpers/s3.js";

const client = s3Client("a");
const { bucket, removeAll: removeBuckets } = testBuckets(client);
const proxies: FaultProxy[] = [];
async function proxy(opts: Omit<FaultProxyOptions, "target">) {
  const p = await startFaultProxy({ target: s3TestEnv().endpoint, ...opts });
  proxies.push(p);
  return p;
}
after(async () => {
  for (const p of proxies) await p.close();
  await removeBuckets();
  client.destroy();
});

/** Runs the CLI against the proxy instead of the server. */
function viaProxy(p: FaultProxy, args: string[]): Promise<CliResult> {
  return runCli([...args, "--endpoint-url", p.url], { endpoint: false });
}

/** key -> "size etag" for every object in a bucket, read from the real server. */
async function snapshot(b: string): Promise<Map<string, string>> {
  return new Map((await listAll(client, b)).map((o) => [o.key, `${o.size} ${o.etag}`]));
}

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const show = (r: CliResult) => {
  const errors = r.stdout.split("\n").filter((line) => line.includes('"type":"error"'));
  return `exit ${r.code}\n--- stderr\n${r.stderr.slice(0, 4000)}\n--- error events\n${errors.slice(0, 10).join("\n")}\n--- stdout (tail)\n${r.stdout.slice(-2000)}`;
};

describe("sync through a proxy that faults 10% of requests", () => {
  test("503 SlowDown, 500 InternalError, connection resets and responses held past --timeout: the target ends exactly equal to the source", async () => {
    const src = await bucket("f10-s");
    const dst = await bucket("f10-d");
    const zoo = keyZoo().map((k) => `zoo/${k}`);
    // 931 source keys: one listing page per side, so the fixed seed decides the same way on every run.
    const extra = Array.from({ length: 900 }, (_, i) => `bulk/${String(i).padStart(5, "0")}.txt`);
    const all = [...zoo, ...extra];
    await putMany(
      client,
      src,
      all.map((k, i) => [k, `content of ${k} #${i}`]),
    );
    // The target: some objects already right, some stale (different size), some the source lacks.
    await putMany(client, dst, [
      ...extra.slice(0, 100).map((k) => [k, `content of ${k} #${all.indexOf(k)}`] as [string, string]),
      ...extra.slice(100, 150).map((k) => [k, "stale"] as [string, string]),
      ...Array.from({ length: 40 }, (_, i) => [`bulk/gone-${i}.txt`, "to be deleted"] as [string, string]),
      ["zoo/removed?.txt", "to be deleted"],
    ]);

    const p = await proxy({ seed: 20240605, faultRate: 0.1, delayMs: 10_000 });
    const r = await viaProxy(p, ["sync", `s3://${src}`, `s3://${dst}`, "--delete", "--timeout", "2", "--json"]);

    assert.equal(r.code, 0, show(r));
    const summary = JSON.parse(r.stdout.trim().split("\n").pop()!);
    assert.equal(summary.type, "summary");
    assert.equal(summary.failed, 0);
    assert.equal(summary.deleted, 41);
    assert.equal(summary.copied + summary.updated, all.length - 100);

    // Checked on the real server: same keys, same sizes and ETags (MD5s of the content).
    const want = await snapshot(src);
    const got = await snapshot(dst);
    assert.deepEqual([...got.keys()], [...want.keys()], "target keys are exactly the source keys");
    for (const [k, v] of want) assert.equal(got.get(k), v, `content of ${k}`);
    for (const k of zoo) assert.equal(await getText(client, dst, k), `content of ${k} #${all.indexOf(k)}`, k);

    // The proxy really did fault about 10% of the requests, of every kind.
    assert.ok(p.stats.requests >= all.length - 100, `requests: ${p.stats.requests}`);
    const share = p.totalFaults / p.stats.requests;
    assert.ok(share > 0.05 && share < 0.2, `fault share ${share}`);
    for (const kind of RANDOM_FAULT_KINDS)
      assert.ok(p.stats.faults[kind] > 0, `no ${kind} fault happened: ${JSON.stringify(p.stats)}`);
  });

  test("listing requests that fail once each (500, 503, reset) are retried: the sync completes", async () => {
    const src = await bucket("fl-s");
    const dst = await bucket("fl-d");
    const srcKeys = Array.from({ length: 2100 }, (_, i) => `k/${String(i).padStart(5, "0")}`);
    await putMany(
      client,
      src,
      srcKeys.map((k) => [k, `v${k}`]),
    );
    await putMany(client, dst, [
      ["k/00001", `vk/00001`],
      ["old/x", "x"],
    ]);
    const seen = new Set<string>();
    const kinds = ["internal", "slowDown", "reset"] as const;
    const p = await proxy({
      rule: (req) => {
        if (req.operation !== "ListObjectsV2") return undefined;
        // A retry repeats the same query; the first attempt of each distinct listing request fails.
        const id = `${req.bucket}?${[...req.query.entries()]
          .map(([k, v]) => `${k}=${v}`)
          .sort()
          .join("&")}`;
        if (seen.has(id)) return undefined;
        seen.add(id);
        return kinds[seen.size % kinds.length];
      },
    });
    const r = await viaProxy(p, ["sync", `s3://${src}`, `s3://${dst}`, "--delete"]);
    assert.equal(r.code, 0, show(r));
    assert.deepEqual(await keys(client, dst), [...srcKeys].sort(compareKeys));
    assert.ok((p.stats.byCause.rule ?? 0) >= 4, `listing pages faulted: ${JSON.stringify(p.stats)}`);
  });

  test("CopyObject answered 200 OK with an <Error> body (S3's way of reporting a copy that failed part-way) is retried", async () => {
    const src = await bucket("e200-s");
    const dst = await bucket("e200-d");
    const srcKeys = ["a", "b c", "d+e", "f"];
    await putMany(
      client,
      src,
      srcKeys.map((k) => [k, `v ${k}`]),
    );
    const faulted = new Set<string>();
    const p = await proxy({
      rule: (req) => {
        if (req.operation !== "CopyObject" || faulted.has(req.key)) return undefined;
        faulted.add(req.key);
        return "error200";
      },
    });
    const r = await viaProxy(p, ["sync", `s3://${src}`, `s3://${dst}`]);
    assert.equal(r.code, 0, show(r));
    assert.equal(p.stats.faults.error200, srcKeys.length, "every first copy attempt got a 200 with an error");
    assert.deepEqual(await keys(client, dst), srcKeys);
    for (const k of srcKeys) assert.equal(await getText(client, dst, k), `v ${k}`);
  });

  test("copies and deletes answered 200 OK with HTML are never counted as done", async () => {
    const src = await bucket("g200-s");
    const dst = await bucket("g200-d");
    const srcKeys = ["a", "b", "c"];
    await putMany(
      client,
      src,
      srcKeys.map((k) => [k, `v ${k}`]),
    );
    const stale = ["old-1", "old-2"];
    await putMany(
      client,
      dst,
      stale.map((k) => [k, "x"]),
    );
    const faulted = new Set<string>();
    const p = await proxy({
      rule: (req) => {
        if (req.operation !== "CopyObject" && req.operation !== "DeleteObjects") return undefined;
        const id = `${req.operation} ${req.key}`;
        if (faulted.has(id)) return undefined;
        faulted.add(id);
        return "garbage200";
      },
    });
    const r = await viaProxy(p, ["sync", `s3://${src}`, `s3://${dst}`, "--delete", "--json"]);
    assert.equal(p.stats.faults.garbage200, srcKeys.length + 1, "each copy and the delete batch got HTML once");
    const got = await keys(client, dst);
    const summary = JSON.parse(r.stdout.trim().split("\n").pop()!);
    // Whatever the tool decides (retry, or report a failure), what it says must be true.
    assert.equal(
      summary.copied,
      srcKeys.filter((k) => got.includes(k)).length,
      `copies reported = copies made: ${show(r)}`,
    );
    assert.equal(
      summary.deleted,
      stale.filter((k) => !got.includes(k)).length,
      `deletes reported = deletes made: ${show(r)}`,
    );
    if (r.code === 0) assert.deepEqual(got, srcKeys, `exit 0 means the target equals the source: ${show(r)}`);
    else assert.equal(r.code, 1, show(r));
  });

  test("a request that hangs is abandoned after --timeout and retried", async () => {
    const src = await bucket("to-s");
    const dst = await bucket("to-d");
    await putMany(client, src, [
      ["a", "1"],
      ["slow key", "2"],
      ["z", "3"],
    ]);
    let held = false;
    const p = await proxy({
      delayMs: 120_000, // far longer than the test may take: only a client timeout gets past it
      rule: (req) => {
        if (req.operation === "CopyObject" && req.key === "slow key" && !held) {
          held = true;
          return "delay";
        }
        return undefined;
      },
    });
    const started = Date.now();
    const r = await viaProxy(p, ["sync", `s3://${src}`, `s3://${dst}`, "--timeout", "2"]);
    const elapsed = Date.now() - started;
    assert.equal(r.code, 0, show(r));
    assert.ok(held, "the proxy held a response");
    assert.ok(elapsed < 60_000, `took ${elapsed} ms: the held request was not timed out`);
    assert.deepEqual(await keys(client, dst), ["a", "slow key", "z"]);
    assert.equal(await getText(client, dst, "slow key"), "2");
  });

  test("a server that throttles above 8 requests in flight: --concurrency 64 still completes the sync", async () => {
    const src = await bucket("cap-s");
    const dst = await bucket("cap-d");
    const srcKeys = Array.from({ length: 800 }, (_, i) => `c/${String(i).padStart(4, "0")}`);
    await putMany(
      client,
      src,
      srcKeys.map((k) => [k, k]),
    );
    const p = await proxy({ maxInFlight: 8, latencyMs: 40 });
    const r = await viaProxy(p, ["sync", `s3://${src}`, `s3://${dst}`, "--concurrency", "64", "--json"]);
    assert.equal(r.code, 0, show(r));
    assert.deepEqual(await keys(client, dst), srcKeys);
    assert.ok(p.stats.faults.slowDown > 0, "the proxy throttled");
  });
});

describe("multipart copies under faults", () => {
  test("a 30 MiB object copied in 6 parts while every third part copy fails: the object arrives intact, no upload left behind", async () => {
    const src = await bucket("mpf-s");
    const dst = await bucket("mpf-d");
    const data = randomBytes(30 * 1024 * 1024);
    await put(client, src, "big/object.bin", data, {
      ContentType: "application/x-big",
      Metadata: { origin: "faults" },
    });
    let partCopies = 0;
    const p = await proxy({
      rule: (req) => (req.operation === "UploadPartCopy" && ++partCopies % 3 === 0 ? "internal" : undefined),
    });
    const r = await viaProxy(p, [
      "sync",
      `s3://${src}`,
      `s3://${dst}`,
      "--multipart-threshold",
      "5MB",
      "--part-size",
      "5MB",
    ]);
    // A single-part source copied in parts cannot be proven by ETags: a complete copy (exit 0) with a warning.
    assert.equal(r.code, 0, show(r));
    assert.match(r.stderr, /could not be verified/);
    assert.ok(p.count("UploadPartCopy") >= 6, "copied in parts");
    const got = await client.send(new GetObjectCommand({ Bucket: dst, Key: "big/object.bin" }));
    const bytes = Buffer.from(await got.Body!.transformToByteArray());
    assert.equal(bytes.length, data.length);
    assert.equal(sha256(bytes), sha256(data), "same bytes");
    assert.equal(got.ContentType, "application/x-big");
    assert.deepEqual(got.Metadata, { origin: "faults" });
    const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: dst }));
    assert.equal(uploads.Uploads?.length ?? 0, 0, "no multipart upload left behind");
  });
});

describe("a key that always fails", () => {
  test("exit 1, the key is named, every other key arrives, and --delete deletes nothing", async () => {
    const src = await bucket("poison-s");
    const dst = await bucket("poison-d");
    const zoo = keyZoo();
    const poison = "amp&er=sand.txt"; // needs percent-encoding in both the path and x-amz-copy-source
    await putMany(
      client,
      src,
      zoo.map((k) => [k, `content of ${k}`]),
    );
    const stale = ["stale/1", "stale/2", "zzz-stale"];
    await putMany(
      client,
      dst,
      stale.map((k) => [k, "keep me"]),
    );

    const p = await proxy({ failKeys: [poison] });
    const r = await viaProxy(p, ["sync", `s3://${src}`, `s3://${dst}`, "--delete"]);

    assert.equal(r.code, 1, show(r));
    assert.ok((r.stdout + r.stderr).includes(poison), `the failing key is named:\n${show(r)}`);
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
    assert.ok((p.stats.byCause.failKey ?? 0) > 1, "the failing copy was retried");
    assert.equal(p.count("DeleteObjects"), 0, "no delete request was sent");
    assert.equal(p.count("DeleteObject"), 0, "no delete request was sent");

    const got = await keys(client, dst);
    for (const k of stale) assert.ok(got.includes(k), `${k} was deleted`);
    assert.ok(!got.includes(poison));
    const want = [...zoo.filter((k) => k !== poison), ...stale].sort(compareKeys);
    assert.deepEqual(got, want, "every other key was copied");
  });
});

describe("deletes the server refuses", () => {
  test("DeleteObjects answering per-key errors: exit 1, each key named, none reported deleted", async () => {
    const src = await bucket("dke-s");
    const dst = await bucket("dke-d");
    await put(client, src, "keep", "1");
    const stale = ["old 2&x", "old-1"];
    await putMany(client, dst, [["keep", "1"], ...stale.map((k) => [k, "x"] as [string, string])]);
    const xmlKey = (k: string) => k.replace(/&/g, "&amp;");
    const p = await proxy({
      rule: (req) =>
        req.operation === "DeleteObjects"
          ? {
              status: 200,
              body:
                `<?xml version="1.0" encoding="UTF-8"?><DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
                stale
                  .map(
                    (k) =>
                      `<Error><Key>${xmlKey(k)}</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`,
                  )
                  .join("") +
                `</DeleteResult>`,
            }
          : undefined,
    });
    const r = await viaProxy(p, ["sync", `s3://${src}`, `s3://${dst}`, "--delete", "--json"]);
    assert.equal(r.code, 1, show(r));
    const events = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    const summary = events.pop();
    assert.equal(summary.deleted, 0, show(r));
    assert.equal(summary.failed, stale.length, show(r));
    for (const k of stale)
      assert.ok(
        events.some((e) => e.type === "error" && e.key === k && e.code === "AccessDenied"),
        `${k} reported: ${show(r)}`,
      );
    assert.ok(!events.some((e) => e.type === "delete"), "no delete reported as done");
    assert.deepEqual(await keys(client, dst), ["keep", ...stale]);
  });
});

describe("a listing that fails part-way", () => {
  const srcKeys = Array.from({ length: 1500 }, (_, i) => `obj/${String(i).padStart(5, "0")}`);
  let src: string;
  before(async () => {
    src = await bucket("lf-s");
    await putMany(
      client,
      src,
      srcKeys.map((k) => [k, `v ${k}`]),
    );
  });

  /**
   * Fails every listing of `bucket` that asks for keys after `mid` (by continuation token or
   * start-after): however the tool splits its listing (pages in turn, or key ranges in parallel),
   * the part of the key space before `mid` lists fine and the rest does not.
   */
  function listingPast(bucket: string, mid: string, kind: "internal" | "garbage200") {
    return (req: RequestInfo) => {
      if (req.operation !== "ListObjectsV2" || req.bucket !== bucket) return undefined;
      const from = req.query.get("continuation-token") ?? req.query.get("start-after") ?? "";
      return compareKeys(from, mid) > 0 ? kind : undefined;
    };
  }

  test("source listing fails part-way: exit non-zero, nothing deleted", async () => {
    const dst = await bucket("lf-d");
    // "aaa/..." sorts before every source key, so the planner meets these deletes before the failure.
    const doomed = ["aaa/1", "aaa/2", "obj/00000-extra", "zzz/1"];
    await putMany(
      client,
      dst,
      doomed.map((k) => [k, "x"]),
    );
    const before = await snapshot(dst);
    const p = await proxy({ rule: listingPast(src, "obj/00500", "internal") });
    const r = await viaProxy(p, ["sync", `s3://${src}`, `s3://${dst}`, "--delete"]);
    assert.notEqual(r.code, 0, show(r));
    assert.ok((p.stats.byCause.rule ?? 0) > 0, "a listing request was failed");
    assert.match(r.stderr, /source listing/, show(r));
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
    assert.equal(p.count("DeleteObjects"), 0, "no delete request was sent");
    const got = await snapshot(dst);
    for (const [k, v] of before) assert.equal(got.get(k), v, `${k} survives`);
  });

  test("a source listing page answered 200 OK with HTML instead of XML is not the end of the listing: nothing deleted", async () => {
    const dst = await bucket("lg-d");
    // The target already holds every source key: a source listing cut short at obj/00500 would
    // make the rest look deleted from the source.
    await putMany(
      client,
      dst,
      srcKeys.map((k) => [k, `v ${k}`]),
    );
    const before = await snapshot(dst);
    const p = await proxy({ rule: listingPast(src, "obj/00500", "garbage200") });
    const r = await viaProxy(p, ["sync", `s3://${src}`, `s3://${dst}`, "--delete"]);
    assert.ok(p.stats.faults.garbage200 > 0, "a listing page was answered with HTML");
    assert.equal(p.count("DeleteObjects"), 0, `no delete request was sent: ${show(r)}`);
    assert.notEqual(r.code, 0, show(r));
    assert.match(r.stderr, /source listing/, show(r));
    assert.deepEqual(await snapshot(dst), before, "the target is untouched");
  });

  test("a listing page that says it is truncated but gives no continuation token is not the end: nothing deleted", async () => {
    const dst = await bucket("lt-d");
    await putMany(
      client,
      dst,
      srcKeys.map((k) => [k, `v ${k}`]),
    );
    const before = await snapshot(dst);
    // Every source listing answers one key and "more to come", with no way to get it.
    const cut = `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>obj%2F00000</Key><Size>9</Size><ETag>"x"</ETag><LastModified>2026-01-01T00:00:00.000Z</LastModified></Contents></ListBucketResult>`;
    const p = await proxy({
      rule: (req) =>
        req.operation === "ListObjectsV2" && req.bucket === src
          ? { status: 200, body: cut, contentType: "application/xml" }
          : undefined,
    });
    const r = await viaProxy(p, ["sync", `s3://${src}`, `s3://${dst}`, "--delete"]);
    assert.notEqual(r.code, 0, show(r));
    assert.match(r.stderr, /source listing.*NextContinuationToken/, show(r));
    assert.equal(p.count("DeleteObjects"), 0, "no delete request was sent");
    assert.deepEqual(await snapshot(dst), before, "the target is untouched");
  });

  test("target listing fails part-way: exit non-zero, nothing deleted", async () => {
    const dst = await bucket("lft-d");
    const targetKeys = Array.from({ length: 1500 }, (_, i) => `aaa/${String(i).padStart(5, "0")}`);
    await putMany(
      client,
      dst,
      targetKeys.map((k) => [k, "x"]),
    );
    const p = await proxy({ rule: listingPast(dst, "aaa/00500", "internal") });
    const r = await viaProxy(p, ["sync", `s3://${src}`, `s3://${dst}`, "--delete"]);
    assert.notEqual(r.code, 0, show(r));
    assert.ok((p.stats.byCause.rule ?? 0) > 0, "a listing request was failed");
    assert.match(r.stderr, /target listing/, show(r));
    assert.equal(p.count("DeleteObjects"), 0, "no delete request was sent");
    const got = await keys(client, dst, "aaa/");
    assert.equal(got.length, targetKeys.length, "every target object survives");
  });
});
