/**
 * Issue 18, "Continuous sync: bucketsync watch": the built CLI watching a real radosgw with real
 * bucket notifications (a topic pushed to the watcher's own endpoint), and a local folder through
 * file-system events. Every comparison lists both sides with the SDK (keys and ETags).
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, unlinkSync, openSync, writeSync, closeSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  DeleteObjectCommand,
  GetBucketNotificationConfigurationCommand,
  PutBucketNotificationConfigurationCommand,
} from "@aws-sdk/client-s3";
import { CreateTopicCommand, DeleteTopicCommand, GetTopicAttributesCommand, SNSClient } from "@aws-sdk/client-sns";
import { CreateQueueCommand, GetQueueAttributesCommand, SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import type { FastifyInstance } from "fastify";
import { buildApp, type BuildAppOptions } from "fauxqs";
import { LeanS3Client } from "../../src/stores/s3/lean-client.js";
import { watch, type WatchEvent } from "../../src/watch/watch.js";
import {
  CLI,
  getText,
  listAll,
  put,
  putMany,
  runCli,
  s3Client,
  s3TestEnv,
  testBuckets,
  userEnv,
} from "../helpers/s3.js";

const client = s3Client("a");
const env = s3TestEnv();
const sns = new SNSClient({ endpoint: env.endpoint, region: env.region, credentials: env.a });
const buckets = testBuckets(client);
const made: string[] = [];
/** Topics the watchers made (a killed one leaves its own). */
const topics = new Set<string>();
/** A fresh bucket; its notifications are removed before it is (see after()). */
async function bucket(label: string): Promise<string> {
  const name = await buckets.bucket(label);
  made.push(name);
  return name;
}
const lean = new LeanS3Client({
  endpoint: env.endpoint,
  region: env.region,
  forcePathStyle: true,
  credentials: env.a,
  connections: 4,
  requestTimeoutMs: 30_000,
});
const base = mkdtempSync(join(tmpdir(), "bucketsync-watch-it-"));
const children: ChildProcess[] = [];
after(async () => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  // A watcher that failed or was killed leaves its notification, and radosgw 16 aborts on a
  // DeleteObjects in a bucket with one: notifications first, then objects one DeleteObject at a
  // time, so the helpers' bulk delete finds the buckets empty.
  for (const b of made) {
    for (const id of await notificationIds(b).catch(() => []))
      await lean.deleteBucketNotification(b, id).catch(() => undefined);
    for (const o of await listAll(client, b).catch(() => []))
      await client.send(new DeleteObjectCommand({ Bucket: b, Key: o.key })).catch(() => undefined);
  }
  for (const topic of topics) await sns.send(new DeleteTopicCommand({ TopicArn: arnOf(topic) })).catch(() => undefined);
  await lean.close();
  await buckets.removeAll();
  client.destroy();
  sns.destroy();
  rmSync(base, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Watcher {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  waitFor(pattern: RegExp, where?: "out" | "err", timeoutMs?: number): Promise<RegExpMatchArray>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `bucketsync watch ...` against the test server. */
function startWatch(args: string[]): Watcher {
  const child = spawn(process.execPath, [CLI, "watch", ...args, "--endpoint-url", env.endpoint], {
    env: { PATH: process.env.PATH ?? "", HOME: "/nonexistent", ...userEnv("a") },
  });
  children.push(child);
  let out = "";
  let err = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return {
    child,
    out: () => out,
    err: () => err,
    async waitFor(pattern, where = "err", timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const m = (where === "out" ? out : err).match(pattern);
        if (m) return m;
        if (child.exitCode !== null || Date.now() > deadline)
          assert.fail(`no ${pattern} in ${where}; exit ${child.exitCode}\nstdout:\n${out}\nstderr:\n${err}`);
        await sleep(50);
      }
    },
    async stop(signal = "SIGTERM") {
      child.kill(signal);
      return exited;
    },
  };
}

/** key -> ETag of every object under a bucket. */
async function contents(b: string): Promise<Map<string, string>> {
  return new Map((await listAll(client, b)).map((o) => [o.key, o.etag]));
}

/** Polls until the target holds exactly what the source holds (keys and ETags), up to `ms`. */
async function converges(src: string, dst: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const [a, b] = await Promise.all([contents(src), contents(dst)]);
    if (a.size === b.size && [...a].every(([k, e]) => b.get(k) === e)) return;
    if (Date.now() > deadline) {
      const missing = [...a.keys()].filter((k) => a.get(k) !== b.get(k));
      const extra = [...b.keys()].filter((k) => !a.has(k));
      assert.fail(
        `target differs after ${ms} ms: ${missing.length} missing or stale, ${extra.length} extra (${[...missing, ...extra].slice(0, 5).join(", ")})`,
      );
    }
    await sleep(200);
  }
}

/** The watch's topic name from its "watching" line. */
async function topicOf(w: Watcher): Promise<string> {
  const pattern = /topic (bucketsync-watch-[0-9a-f]{16})/;
  await w.waitFor(/watching/, w.child.spawnargs.includes("--json") ? "out" : "err");
  const topic = (w.out().match(pattern) ?? w.err().match(pattern))![1]!;
  topics.add(topic);
  return topic;
}

const arnOf = (topic: string) => `arn:aws:sns:default::${topic}`;

/** The push URL radosgw was given (with its secret token), read from the topic as anyone holding credentials could. */
async function pushUrlOf(topic: string): Promise<string> {
  const attributes = (await sns.send(new GetTopicAttributesCommand({ TopicArn: arnOf(topic) }))).Attributes!;
  return (JSON.parse(attributes.EndPoint!) as { EndpointAddress: string }).EndpointAddress;
}

async function notificationIds(b: string): Promise<string[]> {
  const config = await client.send(new GetBucketNotificationConfigurationCommand({ Bucket: b }));
  return (config.TopicConfigurations ?? []).map((c) => c.Id ?? "");
}

async function topicExists(topic: string): Promise<boolean> {
  try {
    await sns.send(new GetTopicAttributesCommand({ TopicArn: arnOf(topic) }));
    return true;
  } catch {
    return false;
  }
}

/** An S3 event record as radosgw posts it. */
function record(b: string, key: string, eventName: string, time: string) {
  return {
    eventVersion: "2.2",
    eventSource: "ceph:s3",
    eventTime: time,
    eventName,
    s3: { bucket: { name: b }, object: { key } },
  };
}

/** A port free a moment ago. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const port = (server.address() as AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function post(url: string, body: unknown): Promise<number> {
  const res = await fetch(url, {
    method: "POST",
    body: JSON.stringify(body),
    headers: { "content-type": "application/json" },
  });
  await res.arrayBuffer();
  return res.status;
}

describe("watch: a bucket source with real bucket notifications", () => {
  test("200 writes and 20 deletes at random moments while watch --delete runs: the target equals the source within 10 s, and SIGTERM removes the notification and topic (exit 0)", async () => {
    const src = await bucket("wsrc");
    const dst = await bucket("wdst");
    await putMany(
      client,
      src,
      Array.from({ length: 10 }, (_, i) => [`pre/${i}.txt`, `before ${i}`]),
    );
    const w = startWatch([`s3://${src}`, `s3://${dst}`, "--delete"]);
    const topic = await topicOf(w);
    await w.waitFor(/start-up sync: copied 10/);
    assert.deepEqual(await notificationIds(src), [topic]);
    // 200 writes (some rewrites of earlier keys) and 20 deletes, interleaved at random moments over ~4 s.
    const written: string[] = [];
    const ops: (() => Promise<void>)[] = [];
    for (let i = 0; i < 200; i++) {
      const key =
        i % 10 === 9 && written.length > 0 ? written[Math.floor(Math.random() * written.length)]! : `live/${i}.bin`;
      if (!written.includes(key)) written.push(key);
      ops.push(() => put(client, src, key, `v${i} ${"x".repeat(i)}`));
    }
    const deletable = [...Array.from({ length: 10 }, (_, i) => `pre/${i}.txt`)];
    for (let i = 0; i < 20; i++) {
      const key = i < 10 ? deletable[i]! : written[i * 7]!;
      ops.splice(40 + i * 8, 0, () =>
        client.send(new DeleteObjectCommand({ Bucket: src, Key: key })).then(() => undefined),
      );
    }
    await Promise.all(
      Array.from({ length: 4 }, async (_, lane) => {
        for (let i = lane; i < ops.length; i += 4) {
          await sleep(Math.random() * 70);
          await ops[i]!();
        }
      }),
    );
    await converges(src, dst, 10_000);
    assert.equal((await contents(dst)).size, (await contents(src)).size);
    assert.match(w.out(), /^delete: s3:\/\/.*pre\/0\.txt$/m, "a delete is one line, as sync prints it");
    assert.match(w.out(), /^copy: s3:\/\/.*live\/0\.bin to s3:\/\//m);
    assert.equal(await w.stop("SIGTERM"), 0, w.err());
    assert.match(w.err(), /change\(s\) applied, lag last [\d.]+s, p50 [\d.]+s, p99 [\d.]+s/);
    assert.deepEqual(await notificationIds(src), [], "the notification is gone after SIGTERM");
    assert.equal(await topicExists(topic), false, "the topic is gone after SIGTERM");
  });

  test("replayed duplicate, out-of-order and stale events write and delete nothing wrong; a removal event deletes only when the source really lacks the key", async () => {
    const src = await bucket("rsrc");
    const dst = await bucket("rdst");
    await put(client, src, "kept.txt", "still here");
    await put(client, src, "changed.txt", "v1");
    const metricsPort = await freePort();
    const w = startWatch([
      `s3://${src}`,
      `s3://${dst}`,
      "--delete",
      "--json",
      "--metrics-addr",
      `127.0.0.1:${metricsPort}`,
    ]);
    const topic = await topicOf(w);
    await w.waitFor(/"event":"synced"/, "out");
    const url = await pushUrlOf(topic);
    await put(client, src, "changed.txt", "v2 is newer");
    await put(client, src, "gone.txt", "short-lived");
    await client.send(new DeleteObjectCommand({ Bucket: src, Key: "gone.txt" }));
    await converges(src, dst);
    const scraped = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const lagCount = Number(/^bucketsync_watch_lag_seconds_count (\d+)/m.exec(scraped)?.[1] ?? 0);
    assert.ok(lagCount >= 1, `the lag histogram counts the changes applied from events:\n${scraped.slice(0, 2000)}`);
    const before = w.out();
    const t = (s: number) => new Date(Date.now() - s * 1000).toISOString();
    // Stale removal of a key the source has, old creations out of order, duplicates of each.
    const replay = [
      record(src, "kept.txt", "ObjectRemoved:Delete", t(1)),
      record(src, "changed.txt", "ObjectCreated:Put", t(30)),
      record(src, "changed.txt", "ObjectRemoved:Delete", t(20)),
      record(src, "gone.txt", "ObjectCreated:Put", t(10)),
      record(src, "kept.txt", "ObjectRemoved:Delete", t(1)),
    ];
    for (let i = 0; i < 3; i++) assert.equal(await post(url, { Records: [...replay].reverse() }), 200);
    assert.equal(await post(url, { Records: replay }), 200);
    await sleep(1500);
    assert.equal(await getText(client, dst, "kept.txt"), "still here");
    assert.equal(await getText(client, dst, "changed.txt"), "v2 is newer");
    assert.ok(!(await contents(dst)).has("gone.txt"), "a creation event for a key the source lacks copies nothing");
    await converges(src, dst, 1000);
    const added = w.out().slice(before.length);
    assert.doesNotMatch(added, /"type":"(copy|update|delete)"/, `replayed events changed the target:\n${added}`);
    // The source really lacks it now: the removal event deletes the target's copy.
    await client.send(new DeleteObjectCommand({ Bucket: src, Key: "kept.txt" }));
    await converges(src, dst);
    assert.equal(await w.stop(), 0);
  });

  test("the endpoint refuses requests without the secret token, and a flood of 1000 bogus events (with and without the token) writes nothing", async () => {
    const src = await bucket("fsrc");
    const dst = await bucket("fdst");
    await putMany(client, src, [
      ["a.txt", "a"],
      ["b/c.txt", "c"],
    ]);
    const w = startWatch([`s3://${src}`, `s3://${dst}`, "--delete", "--json"]);
    const topic = await topicOf(w);
    await w.waitFor(/"event":"synced"/, "out");
    const url = await pushUrlOf(topic);
    const origin = new URL(url).origin;
    const target = await contents(dst);
    const startedAt = w.out().length;
    const bogus = (n: number) => ({
      Records: Array.from({ length: n }, (_, i) =>
        record(
          src,
          i % 2 ? `nope/${i}.txt` : "a.txt",
          i % 2 ? "ObjectCreated:Put" : "ObjectRemoved:Delete",
          new Date().toISOString(),
        ),
      ),
    });
    const statuses = await Promise.all([
      post(`${origin}/`, bogus(10)),
      post(`${origin}/wrong-token`, bogus(10)),
      post(`${url}x`, bogus(10)),
      post(url.slice(0, -1), bogus(10)),
    ]);
    assert.deepEqual(statuses, [404, 404, 404, 404]);
    const get = await fetch(url);
    await get.arrayBuffer();
    assert.equal(get.status, 404, "only POST is accepted");
    assert.equal(await post(url, { not: "records" }), 400);
    const big = await fetch(url, { method: "POST", body: "x".repeat(2 * 1024 * 1024) }).catch(() => undefined);
    assert.ok(!big || big.status === 413, "a body over 1 MiB is refused");
    // 1000 events in 10 posts with the token: keys the source lacks, and removals of a key it has.
    for (let i = 0; i < 10; i++) assert.equal(await post(url, bogus(100)), 200);
    await sleep(2000);
    assert.deepEqual(await contents(dst), target, "the target is unchanged");
    assert.doesNotMatch(w.out().slice(startedAt), /"type":"(copy|update|delete)"/, "no event wrote anything");
    assert.equal(await w.stop(), 0);
    // Four wrong paths, a GET, a body that is not event records, one too large: 7 refused; the 10 posts with the token were taken.
    const status = w.out().match(/^\{"type":"watch".*"refused":(\d+).*"event":"status"\}$/m);
    assert.equal(status?.[1], "7", w.out());
  });

  test("killed with SIGKILL, 50 more changes, started again: the start-up sync catches up, and the stale notification and topic are replaced", async () => {
    const src = await bucket("ksrc");
    const dst = await bucket("kdst");
    await putMany(
      client,
      src,
      Array.from({ length: 20 }, (_, i) => [`k/${i}`, `one ${i}`]),
    );
    const first = startWatch([`s3://${src}`, `s3://${dst}`, "--delete"]);
    const topic = await topicOf(first);
    await first.waitFor(/start-up sync: copied 20/);
    await first.stop("SIGKILL");
    // 40 writes (20 new, 20 rewritten) and 10 deletes while nothing watches.
    await putMany(
      client,
      src,
      Array.from({ length: 20 }, (_, i) => [`k/new-${i}`, `new ${i}`]),
    );
    await putMany(
      client,
      src,
      Array.from({ length: 20 }, (_, i) => [`k/${i}`, `two ${i} rewritten`]),
    );
    for (let i = 0; i < 10; i++) await client.send(new DeleteObjectCommand({ Bucket: src, Key: `k/new-${i}` }));
    assert.deepEqual(await notificationIds(src), [topic], "the killed watcher left its notification");
    const second = startWatch([`s3://${src}`, `s3://${dst}`, "--delete"]);
    assert.equal(await topicOf(second), topic, "the same deterministic name");
    await second.waitFor(/start-up sync: copied 10, updated 20/);
    await converges(src, dst, 1000);
    assert.deepEqual(await notificationIds(src), [topic], "replaced, not duplicated");
    // The replaced notification pushes to the new watcher.
    await put(client, src, "k/after-restart", "heard");
    await converges(src, dst);
    assert.equal(await second.stop(), 0);
    assert.deepEqual(await notificationIds(src), []);
    assert.equal(await topicExists(topic), false);
  });

  test("the notification removed behind its back: the watcher says so, reconciles instead, sets it up again and says so", async () => {
    const src = await bucket("gsrc");
    const dst = await bucket("gdst");
    await putMany(client, src, [
      ["stay.txt", "s"],
      ["drop.txt", "d"],
    ]);
    const w = startWatch([`s3://${src}`, `s3://${dst}`, "--delete", "--reconcile", "2s", "--json"]);
    const topic = await topicOf(w);
    await w.waitFor(/"event":"synced"/, "out");
    await lean.deleteBucketNotification(src, topic);
    const fallback = await w.waitFor(/^\{"type":"watch".*"event":"fallback"\}$/m, "out", 10_000);
    assert.match(fallback[0], /bucket notification bucketsync-watch-[0-9a-f]{16} .* is gone/);
    // Changes while the notification is missing arrive through the reconciles (deletes after a full listing).
    await put(client, src, "while-lost.txt", "caught by a reconcile");
    await client.send(new DeleteObjectCommand({ Bucket: src, Key: "drop.txt" }));
    await converges(src, dst, 10_000);
    await w.waitFor(/"event":"restored"/, "out", 10_000);
    assert.deepEqual(await notificationIds(src), [topic], "set up again");
    assert.equal(await w.stop(), 0);
    assert.deepEqual(await notificationIds(src), []);
    assert.equal(await topicExists(topic), false);
  });

  test("an endpoint the S3 server cannot reach (a wrong --advertise): no heartbeat comes back, the watcher says so and reconciles instead, and the heartbeats leave nothing in the source", async () => {
    const src = await bucket("hsrc");
    const dst = await bucket("hdst");
    await put(client, src, "a.txt", "a");
    const nowhere = `http://127.0.0.1:${await freePort()}`;
    const w = startWatch([`s3://${src}`, `s3://${dst}`, "--delete", "--reconcile", "2s", "--advertise", nowhere]);
    await w.waitFor(/start-up sync: copied 1/);
    const fallback = await w.waitFor(
      /warning: the event source is not working: no event came back for a heartbeat.*/,
      "err",
      15_000,
    );
    assert.match(
      fallback[0],
      new RegExp(`does not reach ${nowhere.replace(/\./g, "\\.")}/ \\(see --listen, --advertise\\)`),
    );
    await put(client, src, "b.txt", "b");
    await converges(src, dst, 10_000);
    assert.equal(await w.stop(), 0, w.err());
    assert.deepEqual([...(await contents(src)).keys()].sort(), ["a.txt", "b.txt"], "a heartbeat writes nothing");
  });

  test("in fallback, events still copy but never delete: a removal event for a key the source lost waits for a complete listing (library API)", async () => {
    const src = await bucket("fsrc");
    const dst = await bucket("fdst");
    await putMany(client, src, [
      ["a.txt", "a"],
      ["b.txt", "b"],
    ]);
    const listenPort = await freePort();
    const said: WatchEvent[] = [];
    const controller = new AbortController();
    // The server is given an address nothing listens at: heartbeats fail, the watcher falls back.
    // Checks every 300 ms; no reconcile for an hour, so whatever happens next comes from events.
    const running = watch({
      source: `s3://${src}`,
      target: `s3://${dst}`,
      delete: true,
      connection: { endpointUrl: env.endpoint, credentials: env.a },
      listen: `127.0.0.1:${listenPort}`,
      advertise: `http://127.0.0.1:${await freePort()}`,
      reconcile: 3_600_000,
      fallbackEveryMs: 3_600_000,
      checkEveryMs: 300,
      onWatch: (e) => said.push(e),
      signal: controller.signal,
    });
    const deadline = Date.now() + 15_000;
    while (!said.some((e) => e.type === "fallback") && Date.now() < deadline) await sleep(100);
    assert.ok(
      said.some((e) => e.type === "fallback" && /heartbeat/.test(e.reason)),
      JSON.stringify(said.map((e) => e.type)),
    );
    assert.deepEqual([...(await contents(dst)).keys()].sort(), ["a.txt", "b.txt"], "the start-up sync ran");
    // Events reach the real endpoint (as if the server could push): b removed, c created.
    await client.send(new DeleteObjectCommand({ Bucket: src, Key: "b.txt" }));
    await put(client, src, "c.txt", "c");
    const topic = `bucketsync-watch-${(said.find((e) => e.type === "watching") as { events: string }).events.match(/bucketsync-watch-([0-9a-f]{16})/)![1]}`;
    topics.add(topic);
    const token = new URL(await pushUrlOf(topic)).pathname;
    const now = new Date().toISOString();
    assert.equal(
      await post(`http://127.0.0.1:${listenPort}${token}`, {
        Records: [record(src, "b.txt", "ObjectRemoved:Delete", now), record(src, "c.txt", "ObjectCreated:Put", now)],
      }),
      200,
    );
    const copied = Date.now() + 10_000;
    while (!(await contents(dst)).has("c.txt") && Date.now() < copied) await sleep(100);
    await sleep(1000);
    assert.deepEqual(
      [...(await contents(dst)).keys()].sort(),
      ["a.txt", "b.txt", "c.txt"],
      "c copied on its event; b not deleted on one while the event source is failing",
    );
    controller.abort();
    const result = await running;
    assert.equal(result.startup.fatal, undefined);
  });

  test("--max-delete 50% counts against the target the last full sync saw, not against a batch: one delete on an event runs, past half of the target deletes wait for a reconcile", async () => {
    const src = await bucket("msrc");
    const dst = await bucket("mdst");
    await putMany(
      client,
      src,
      ["a", "b", "c", "d"].map((k) => [`${k}.txt`, k]),
    );
    const w = startWatch([`s3://${src}`, `s3://${dst}`, "--delete", "--max-delete", "50%"]);
    await w.waitFor(/start-up sync: copied 4/);
    await client.send(new DeleteObjectCommand({ Bucket: src, Key: "a.txt" }));
    const first = Date.now() + 10_000;
    while ((await contents(dst)).has("a.txt") && Date.now() < first) await sleep(100);
    assert.deepEqual([...(await contents(dst)).keys()].sort(), ["b.txt", "c.txt", "d.txt"], w.err());
    for (const key of ["b.txt", "c.txt"]) await client.send(new DeleteObjectCommand({ Bucket: src, Key: key }));
    await w.waitFor(/more than the [01] left of --max-delete 50% for events until the next reconcile/, "err", 10_000);
    await sleep(500);
    assert.ok((await contents(dst)).size >= 2, "at most 2 of the 4 objects deleted on events");
    assert.equal(await w.stop(), 0, w.err());
  });

  test("a chain of watches (src -> mid -> dst, mid itself watched): deletes into a bucket with a notification go one key at a time, and radosgw 16 stays up", async () => {
    const src = await bucket("csrc");
    const mid = await bucket("cmid");
    const dst = await bucket("cdst");
    await putMany(
      client,
      src,
      Array.from({ length: 6 }, (_, i) => [`k${i}.txt`, `v${i}`]),
    );
    const first = startWatch([`s3://${src}`, `s3://${mid}`, "--delete"]);
    topics.add(await topicOf(first));
    await first.waitFor(/start-up sync: copied 6/);
    const second = startWatch([`s3://${mid}`, `s3://${dst}`, "--delete"]);
    topics.add(await topicOf(second));
    await second.waitFor(/start-up sync: copied 6/);
    // The first watcher's deletes land in mid, which has the second watcher's notification: a
    // multi-object delete there would abort radosgw 16.
    for (let i = 0; i < 3; i++) await client.send(new DeleteObjectCommand({ Bucket: src, Key: `k${i}.txt` }));
    await put(client, src, "new.txt", "n");
    await converges(src, mid, 10_000);
    await converges(src, dst, 10_000);
    assert.deepEqual([...(await contents(dst)).keys()].sort(), ["k3.txt", "k4.txt", "k5.txt", "new.txt"]);
    // And a plain sync --delete into the watched mid (its extra objects deleted one at a time).
    await put(client, mid, "extra-1.txt", "x");
    await put(client, mid, "extra-2.txt", "x");
    const run = await runCli(["sync", `s3://${src}`, `s3://${mid}`, "--delete"]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /deleted 2/);
    await converges(src, dst, 10_000);
    assert.equal(await first.stop(), 0, first.err());
    assert.equal(await second.stop(), 0, second.err());
  });

  test("a second watcher of the same source and target is refused while the first runs (exit 2, one line); the first goes on", async () => {
    const src = await bucket("tsrc");
    const dst = await bucket("tdst");
    const first = startWatch([`s3://${src}`, `s3://${dst}`, "--delete", "--listen", "0.0.0.0:0"]);
    const topic = await topicOf(first);
    // --listen on every address, with the S3 server on this machine: it is told the loopback address.
    assert.match(first.err(), /pushed to http:\/\/127\.0\.0\.1:\d+\/<secret token>/);
    const second = await runCli(["watch", `s3://${src}`, `s3://${dst}`, "--delete"]);
    assert.equal(second.code, 2, second.stderr);
    assert.equal(second.stderr.trim().split("\n").length, 1, second.stderr);
    assert.match(
      second.stderr,
      /another watcher of s3:\/\/.* into the same target is running \(its endpoint http:\/\/127\.0\.0\.1:\d+\/<secret token> answers\)/,
    );
    assert.doesNotMatch(second.stderr, /[0-9a-f]{64}/, "the other watcher's token is not printed");
    assert.deepEqual(await notificationIds(src), [topic], "the first watcher's notification stays");
    await put(client, src, "after.txt", "still followed");
    await converges(src, dst, 10_000);
    assert.equal(await first.stop(), 0, first.err());
    assert.doesNotMatch(first.err(), /the event source is not working/);
  });

  test("--keep-notifications leaves the notification and topic; the next watcher replaces them", async () => {
    const src = await bucket("ksrc");
    const dst = await bucket("kdst");
    const w = startWatch([`s3://${src}`, `s3://${dst}`, "--keep-notifications"]);
    const topic = await topicOf(w);
    await w.waitFor(/start-up sync/);
    assert.equal(await w.stop(), 0);
    assert.match(w.err(), new RegExp(`watch: left .*${topic}.* in place \\(--keep-notifications\\)`));
    assert.deepEqual(await notificationIds(src), [topic]);
    assert.equal(await topicExists(topic), true);
    const again = startWatch([`s3://${src}`, `s3://${dst}`]);
    await again.waitFor(/start-up sync/);
    assert.equal(await again.stop(), 0);
    assert.deepEqual(await notificationIds(src), []);
    assert.equal(await topicExists(topic), false);
  });
});

describe("watch: quick same-size rewrites (events compare content)", () => {
  test("six same-size overwrites of one object in a second end with the last in the target; a file rewritten at the same size within 2 s is uploaded again", async () => {
    const src = await bucket("qsrc");
    const dst = await bucket("qdst");
    const w = startWatch([`s3://${src}`, `s3://${dst}`]);
    await topicOf(w);
    await w.waitFor(/start-up sync/);
    for (let i = 1; i <= 6; i++) await putMany(client, src, [["r.txt", `v${i}`]]);
    await converges(src, dst);
    assert.equal(await getText(client, dst, "r.txt"), "v6");
    assert.equal(await w.stop(), 0);

    const dir = join(base, "quick");
    mkdirSync(dir, { recursive: true });
    const fdst = await bucket("qfdst");
    const f = startWatch([dir, `s3://${fdst}`]);
    await f.waitFor(/start-up sync/);
    writeFileSync(join(dir, "s.txt"), "aaa");
    const deadline = Date.now() + 10_000;
    while ((await getText(client, fdst, "s.txt").catch(() => "")) !== "aaa" && Date.now() < deadline) await sleep(200);
    writeFileSync(join(dir, "s.txt"), "bbb");
    await sleep(300);
    writeFileSync(join(dir, "s.txt"), "ccc");
    const last = Date.now() + 10_000;
    while ((await getText(client, fdst, "s.txt").catch(() => "")) !== "ccc" && Date.now() < last) await sleep(200);
    assert.equal(await getText(client, fdst, "s.txt"), "ccc", f.out());
    assert.equal(await f.stop(), 0);
  });
});

describe("watch: a local folder source", () => {
  test("files created, rewritten and removed while watching arrive in the bucket; a file written slowly over 3 s is uploaded once, whole", async () => {
    const dir = join(base, "site");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "index.html"), "<h1>v1</h1>");
    const dst = await bucket("ldst");
    const w = startWatch([dir, `s3://${dst}/www`, "--delete"]);
    await w.waitFor(/start-up sync: copied 1/);
    writeFileSync(join(dir, "new.txt"), "new file");
    mkdirSync(join(dir, "sub"));
    writeFileSync(join(dir, "sub", "deep.txt"), "deep");
    writeFileSync(join(dir, "index.html"), "<h1>v2, rewritten</h1>");
    // A slow writer: 11 chunks, one every 300 ms.
    const slow = openSync(join(dir, "slow.bin"), "w");
    const chunks: string[] = [];
    for (let i = 0; i <= 10; i++) {
      const chunk = `chunk ${i} ${"#".repeat(1000)}\n`;
      chunks.push(chunk);
      writeSync(slow, chunk);
      if (i === 3) unlinkSync(join(dir, "new.txt"));
      await sleep(300);
    }
    closeSync(slow);
    const expect = async () => {
      const listed = await listAll(client, dst, "www/");
      return listed.map((o) => o.key).join(",");
    };
    const deadline = Date.now() + 10_000;
    while ((await expect()) !== "www/index.html,www/slow.bin,www/sub/deep.txt" && Date.now() < deadline)
      await sleep(200);
    assert.equal(await expect(), "www/index.html,www/slow.bin,www/sub/deep.txt");
    assert.equal(await getText(client, dst, "www/index.html"), "<h1>v2, rewritten</h1>");
    assert.equal(await getText(client, dst, "www/slow.bin"), chunks.join(""));
    const slowCopies = w.out().match(/^copy: .*slow\.bin/gm) ?? [];
    assert.equal(slowCopies.length, 1, `slow.bin uploaded ${slowCopies.length} times:\n${w.out()}`);
    assert.equal(await w.stop("SIGINT"), 0);
  });
});

describe("watch: a folder reconcile racing a quick create-and-delete", () => {
  test("a file created while a reconcile runs and removed before it settled does not stay in the bucket", async () => {
    const dir = join(base, "race");
    mkdirSync(join(dir, "gone"), { recursive: true });
    writeFileSync(join(dir, "gone", "a.txt"), "a");
    writeFileSync(join(dir, "keep.txt"), "keep");
    const dst = await bucket("racedst");
    const w = startWatch([dir, `s3://${dst}`, "--delete"]);
    await w.waitFor(/start-up sync: copied 2/);
    // Removing a folder makes the watcher reconcile; the file below appears during it and is
    // gone again before it settled (so the folder watcher never reports it).
    rmSync(join(dir, "gone"), { recursive: true });
    writeFileSync(join(dir, "t.txt"), "short-lived");
    await sleep(500);
    unlinkSync(join(dir, "t.txt"));
    const keysNow = async () => (await listAll(client, dst)).map((o) => o.key).join(",");
    const deadline = Date.now() + 10_000;
    while ((await keysNow()) !== "keep.txt" && Date.now() < deadline) await sleep(200);
    assert.equal(await keysNow(), "keep.txt", `${w.out()}\n${w.err()}`);
    assert.equal(await w.stop(), 0);
  });
});

describe("watch: bad input", () => {
  test("a bad location or a bad --reconcile is one line on stderr, exit 2, nothing changed", async () => {
    const dst = await bucket("bdst");
    const missing = await runCli(["watch", "s3://bs-no-such-bucket-for-watch", `s3://${dst}`, "--delete"]);
    assert.equal(missing.code, 2, missing.stderr);
    assert.equal(missing.stderr.trim().split("\n").length, 1, missing.stderr);
    const missingJson = await runCli(["watch", "s3://bs-no-such-bucket-for-watch", `s3://${dst}`, "--json"]);
    assert.equal(missingJson.code, 2, missingJson.stderr);
    const errorEvent = JSON.parse(missingJson.stdout.trim().split("\n").at(-1)!) as Record<string, unknown>;
    assert.equal(errorEvent.type, "error");
    assert.match(String(errorEvent.message), /the source bucket .* does not exist/);
    // A missing target is refused by the start-up sync: one line, no "watching", and the
    // notification set up on the source is gone again.
    const src = await bucket("bsrc");
    await put(client, src, "a.txt", "a");
    const noTarget = await runCli(["watch", `s3://${src}`, "s3://bs-no-such-target-for-watch", "--delete"]);
    assert.equal(noTarget.code, 2, noTarget.stderr);
    assert.equal(noTarget.stderr.trim().split("\n").length, 1, noTarget.stderr);
    assert.match(noTarget.stderr, /bs-no-such-target-for-watch/);
    assert.deepEqual(await notificationIds(src), []);
    const badReconcile = await runCli(["watch", "s3://a", `s3://${dst}`, "--reconcile", "soon"]);
    assert.equal(badReconcile.code, 2);
    assert.equal(badReconcile.stderr.trim().split("\n").length, 1, badReconcile.stderr);
    assert.match(badReconcile.stderr, /--reconcile 'soon'/);
    const badScheme = await runCli(["watch", "gs://a", `s3://${dst}`]);
    assert.equal(badScheme.code, 2);
    assert.equal(badScheme.stderr.trim().split("\n").length, 1, badScheme.stderr);
    const noFolder = await runCli(["watch", join(base, "no-such-folder"), `s3://${dst}`]);
    assert.equal(noFolder.code, 2);
    assert.equal(noFolder.stderr.trim().split("\n").length, 1, noFolder.stderr);
    assert.match(noFolder.stderr, /does not exist/);
    const oneOff = await runCli(["watch", "s3://a", `s3://${dst}`, "--checkpoint", "x.ckpt"]);
    assert.equal(oneOff.code, 2, "one-off options are not watch options");
    assert.match(
      oneOff.stderr,
      /^bucketsync: --checkpoint is an option of a one-off sync run; watch does not take it$/m,
    );
    assert.deepEqual(await contents(dst), new Map());
  });
});

/**
 * The AWS route (`--queue-url`): the bucket notifies an SQS queue and the watcher reads it. The
 * queue is fauxqs (an SQS server speaking the SDK's JSON protocol) on 127.0.0.1; the events in
 * it are radosgw's own bucket notifications, carried there by a bridge standing in for AWS's
 * S3 -> SQS delivery (every other one wrapped in an SNS envelope, as bucket -> topic -> queue
 * delivers them).
 */
describe("watch: a bucket source through an SQS queue (--queue-url)", () => {
  let app: FastifyInstance | undefined;
  let sqsPort = 0;
  const sqs = () =>
    new SQSClient({ endpoint: `http://127.0.0.1:${sqsPort}`, region: env.region, credentials: env.a, maxAttempts: 1 });
  async function startQueueServer(port = 0): Promise<void> {
    // Queue URLs named after the address asked (http://127.0.0.1:PORT/...), not fauxqs's default
    // sqs.REGION.localhost, which does not resolve here: its store with no host of its own.
    const { SqsStore } = (await import(new URL("./sqs/sqsStore.js", import.meta.resolve("fauxqs")).href)) as {
      SqsStore: new () => { host: string };
    };
    const sqsStore = new SqsStore();
    sqsStore.host = "";
    app = buildApp({ logger: false, stores: { sqsStore } as unknown as BuildAppOptions["stores"] });
    await app.listen({ port, host: "127.0.0.1" });
    sqsPort = (app.server.address() as AddressInfo).port;
  }
  async function stopQueueServer(): Promise<void> {
    await app?.close();
    app = undefined;
  }
  async function makeQueue(name: string): Promise<string> {
    const c = sqs();
    const url = (await c.send(new CreateQueueCommand({ QueueName: name }))).QueueUrl!;
    c.destroy();
    assert.equal(url, `http://127.0.0.1:${sqsPort}/000000000000/${name}`);
    return url;
  }
  async function queued(url: string): Promise<number> {
    const c = sqs();
    const { Attributes } = await c.send(
      new GetQueueAttributesCommand({
        QueueUrl: url,
        AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
      }),
    );
    c.destroy();
    return Number(Attributes!.ApproximateNumberOfMessages) + Number(Attributes!.ApproximateNumberOfMessagesNotVisible);
  }
  async function send(url: string, body: string): Promise<void> {
    const c = sqs();
    await c.send(new SendMessageCommand({ QueueUrl: url, MessageBody: body }));
    c.destroy();
  }
  /** radosgw notifies a topic whose push endpoint is a bridge that puts each event into the queue. */
  async function notifyQueue(b: string, url: string): Promise<{ delivered: () => number; close: () => Promise<void> }> {
    let delivered = 0;
    const bridge = createServer((req, res) => {
      let body = "";
      req.on("data", (d) => (body += d));
      req.on("end", () => {
        const message =
          delivered % 2 === 0
            ? body
            : JSON.stringify({ Type: "Notification", TopicArn: "arn:aws:sns:us-east-1:000000000000:t", Message: body });
        delivered++;
        send(url, message).then(
          () => res.writeHead(200).end(),
          () => res.writeHead(500).end(),
        );
      });
    });
    await new Promise<void>((resolve) => bridge.listen(0, "127.0.0.1", () => resolve()));
    const name = `bucketsync-it-bridge-${b}`;
    const topic = await sns.send(
      new CreateTopicCommand({
        Name: name,
        Attributes: { "push-endpoint": `http://127.0.0.1:${(bridge.address() as AddressInfo).port}/` },
      }),
    );
    topics.add(name);
    await client.send(
      new PutBucketNotificationConfigurationCommand({
        Bucket: b,
        NotificationConfiguration: {
          TopicConfigurations: [
            { Id: name, TopicArn: topic.TopicArn!, Events: ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"] },
          ],
        },
      }),
    );
    return {
      delivered: () => delivered,
      close: () => new Promise((resolve) => bridge.close(() => resolve())),
    };
  }
  after(stopQueueServer);

  test("60 writes and 10 deletes while watch --delete --queue-url runs: the target equals the source within 10 s, the queue is drained (a test event and a stray message included), SIGTERM exits 0 and leaves the queue", async () => {
    await startQueueServer();
    const src = await bucket("qsrc");
    const dst = await bucket("qdst");
    const url = await makeQueue(`bucketsync-it-${src}`);
    const bridge = await notifyQueue(src, url);
    // What a queue holds besides events: S3's test event on set-up, and a stray message.
    await send(url, JSON.stringify({ Service: "Amazon S3", Event: "s3:TestEvent", Bucket: src }));
    await send(url, "not an event");
    await putMany(
      client,
      src,
      Array.from({ length: 10 }, (_, i) => [`pre/${i}.txt`, `before ${i}`]),
    );
    const w = startWatch([`s3://${src}`, `s3://${dst}`, "--delete", "--queue-url", url]);
    await w.waitFor(/watching: events of s3:\/\/.* from the queue http:\/\/127\.0\.0\.1/);
    await w.waitFor(/start-up sync: copied 10/);
    const ops: (() => Promise<void>)[] = Array.from(
      { length: 60 },
      (_, i) => () => put(client, src, `live/${i % 50}.bin`, `v${i} ${"y".repeat(i)}`),
    );
    for (let i = 0; i < 10; i++)
      ops.splice(5 + i * 6, 0, () =>
        client.send(new DeleteObjectCommand({ Bucket: src, Key: `pre/${i}.txt` })).then(() => undefined),
      );
    await Promise.all(
      Array.from({ length: 3 }, async (_, lane) => {
        for (let i = lane; i < ops.length; i += 3) {
          await sleep(Math.random() * 60);
          await ops[i]!();
        }
      }),
    );
    await converges(src, dst, 10_000);
    assert.equal((await contents(dst)).size, 50);
    assert.ok(bridge.delivered() >= 70, `radosgw delivered ${bridge.delivered()} events to the queue`);
    assert.match(w.out(), /^delete: s3:\/\/.*pre\/0\.txt$/m);
    assert.match(w.out(), /^copy: s3:\/\/.*live\/0\.bin to s3:\/\//m);
    const deadline = Date.now() + 10_000;
    while ((await queued(url)) > 0 && Date.now() < deadline) await sleep(200);
    assert.equal(
      await queued(url),
      0,
      "every message, the test event and the stray one included, is taken off the queue",
    );
    assert.equal(await w.stop("SIGTERM"), 0, w.err());
    assert.match(w.err(), /change\(s\) applied, lag last [\d.]+s/);
    assert.doesNotMatch(w.err(), /has no notification to/, "the bucket notifies (through a topic): no set-up warning");
    assert.equal(await queued(url), 0, "the queue is the user's: it is still there after the watcher stops");
    await bridge.close();
  });

  test("the queue failing: the watcher says so and reconciles instead; the queue back: it says so and follows it again", async () => {
    if (!app) await startQueueServer();
    const src = await bucket("qfsrc");
    const dst = await bucket("qfdst");
    const url = await makeQueue(`bucketsync-it-${src}`);
    const bridge = await notifyQueue(src, url);
    await put(client, src, "first.txt", "1");
    const w = startWatch([`s3://${src}`, `s3://${dst}`, "--delete", "--queue-url", url, "--reconcile", "3s"]);
    await w.waitFor(/start-up sync: copied 1/);
    const port = sqsPort;
    await stopQueueServer();
    await w.waitFor(/warning: the event source is not working.*queue/, "err", 20_000);
    // Meanwhile writes reach the target through the reconciles (a complete listing each).
    await put(client, src, "during.txt", "2");
    await converges(src, dst, 10_000);
    await startQueueServer(port);
    await makeQueue(`bucketsync-it-${src}`);
    await w.waitFor(/watching again: events of/, "err", 20_000);
    await put(client, src, "after.txt", "3");
    await converges(src, dst, 10_000);
    assert.equal(await w.stop("SIGTERM"), 0, w.err());
    await bridge.close();
  });

  test("bad --queue-url input is one line on stderr, exit 2, nothing changed", async () => {
    if (!app) await startQueueServer();
    const src = await bucket("qbsrc");
    const dst = await bucket("qbdst");
    await put(client, src, "a.txt", "a");
    const folder = mkdtempSync(join(base, "q-"));
    const cases: [string[], RegExp][] = [
      [
        [`s3://${src}`, `s3://${dst}`, "--queue-url", `http://127.0.0.1:${sqsPort}/000000000000/no-such-queue`],
        /the queue does not exist; nothing changed/,
      ],
      [
        [`s3://${src}`, `s3://${dst}`, "--queue-url", `http://127.0.0.1:${await freePort()}/000000000000/q`],
        /cannot reach the queue \(ECONNREFUSED\); nothing changed/,
      ],
      [[`s3://${src}`, `s3://${dst}`, "--queue-url", "my-queue"], /invalid --queue-url 'my-queue'/],
      [
        [folder, `s3://${dst}`, "--queue-url", `http://127.0.0.1:${sqsPort}/000000000000/q`],
        /--queue-url is for a bucket source/,
      ],
      [
        [
          `s3://${src}`,
          `s3://${dst}`,
          "--queue-url",
          `http://127.0.0.1:${sqsPort}/000000000000/q`,
          "--listen",
          "127.0.0.1:0",
        ],
        /--listen has no use with --queue-url/,
      ],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(["watch", ...args, "--delete"]);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
    }
    assert.deepEqual(await contents(dst), new Map());
  });
});
