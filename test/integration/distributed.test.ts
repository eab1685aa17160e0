/**
 * Distributed sync end to end: a real radosgw, a real Redis (scripts/redis-server.sh), the built
 * CLI as coordinator and as worker processes; one worker is SIGKILLed in the middle of a range.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { Queue } from "bullmq";
import { compareKeys } from "../../src/core/keys.js";
import { redisConnection } from "../../src/distributed/job.js";
import { redisUrl } from "../helpers/redis.js";
import { startDelayProxy } from "../helpers/delay-proxy.js";
import { CLI, getText, listAll, putMany, runCli, s3Client, s3TestEnv, userEnv, testBuckets } from "../helpers/s3.js";

const REDIS = redisUrl();
const env = s3TestEnv();
const client = s3Client("a");
const { bucket, removeAll: removeBuckets } = testBuckets(client);
const children = new Set<ChildProcess>();
const queueName = `bs-test-${process.pid}-${Date.now().toString(36)}`;

after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await removeBuckets();
  client.destroy();
  // Leave the shared test Redis as it was: the test queues and their run records go.
  for (const name of [queueName, `${queueName}-resume`, `${queueName}-fail`]) {
    const queue = new Queue(name, { connection: redisConnection(REDIS) });
    await queue.obliterate({ force: true }).catch(() => undefined);
    const redis = await queue.client;
    let cursor = "0";
    do {
      const [next, found] = await redis.scan(cursor, { MATCH: `bucketsync:${name}:*`, COUNT: 1000 });
      if (found.length > 0) await redis.del(...found);
      cursor = next;
    } while (cursor !== "0");
    await queue.close();
  }
});

/** A CLI process whose output lines can be awaited. */
function spawnCli(args: string[], endpoint = env.endpoint, user: "a" | "b" = "a") {
  const child = spawn(process.execPath, [CLI, ...args, "--endpoint-url", endpoint], {
    env: { PATH: process.env.PATH ?? "", HOME: "/nonexistent", ...userEnv(user) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  let stdout = "";
  let stderr = "";
  const waiters: { re: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  const check = () => {
    for (const w of [...waiters]) {
      const m = (stdout + stderr).match(w.re);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  };
  child.stdout!.on("data", (d) => ((stdout += d), check()));
  child.stderr!.on("data", (d) => ((stderr += d), check()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return {
    child,
    exited,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    /** Resolves with the first match of `re` in the output so far or to come; rejects after `ms`. */
    waitFor(re: RegExp, ms = 60_000): Promise<RegExpMatchArray> {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${re} in:\n${stdout}\n${stderr}`)), ms);
        waiters.push({ re, resolve: (m) => (clearTimeout(timer), resolve(m)) });
        check();
      });
    },
  };
}

function worker(extra: string[] = [], endpoint?: string) {
  return spawnCli(
    ["worker", "--queue", REDIS, "--queue-name", queueName, "--lock-duration", "3", "--concurrency", "16", ...extra],
    endpoint,
  );
}

function stopWorker(w: ReturnType<typeof worker>) {
  if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill("SIGTERM");
  return w.exited;
}

const summaryOf = (stdout: string) => {
  const parsed = JSON.parse(stdout.trim().split("\n").filter(Boolean).pop()!);
  assert.equal(parsed.type, "summary");
  return parsed as { copied: number; updated: number; deleted: number; skipped: number; failed: number };
};

async function status(queue = queueName) {
  const r = await runCli(["status", "--queue", REDIS, "--queue-name", queue, "--json"], { endpoint: false });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as {
    workers: number;
    runs: {
      runId: string;
      state: string;
      ranges: number;
      pending: number;
      running: number;
      done: number;
      failed: number;
      summary?: { deleted: number };
    }[];
  };
}

describe("distributed sync over Redis with worker processes", () => {
  let src: string;
  let dst: string;
  const sourceKeys: string[] = [];
  const extras: string[] = [];
  const kept: string[] = [];
  const content = (key: string) => `content of ${key}`;

  before(async () => {
    src = await bucket("dsrc");
    dst = await bucket("ddst");
    // ~10 top-level prefixes so the key space splits; a few awkward keys travel as range bounds.
    for (let p = 0; p < 10; p++)
      for (let i = 0; i < 300; i++)
        sourceKeys.push(`d${p}/obj-${String(i).padStart(5, "0")}${i % 50 === 0 ? "-é \u{1F600}" : ""}.txt`);
    await putMany(
      client,
      src,
      sourceKeys.map((k) => [k, content(k)]),
      48,
    );
    // Target: extras that must be deleted exactly once (inside ranges, before the first and after
    // the last folder), excluded keys that must survive, stale copies to update, equal ones to skip.
    extras.push("0-before-everything", "d3/obj-00007.txt.old", "d9/zz-gone", "zz-after-everything/x");
    for (let i = 0; i < 36; i++) extras.push(`d${i % 10}/extra-${i}`);
    for (let i = 0; i < 5; i++) kept.push(`keep/excluded-${i}`);
    const stale = sourceKeys
      .filter((_, i) => i % 150 === 1)
      .map((k) => [k, "stale, different size"] as [string, string]);
    await putMany(client, dst, [
      ...extras.map((k) => [k, "x"] as [string, string]),
      ...kept.map((k) => [k, "kept"] as [string, string]),
      ...stale,
    ]);
  });

  test("three workers, one SIGKILLed mid-range: the target equals the source, each extra deleted once", async () => {
    // Worker A sees a slow S3 (25 ms each way), so it is surely in the middle of its first range when killed.
    const slow = await startDelayProxy(Number(new URL(env.endpoint).port), 25);
    try {
      const a = worker(["--concurrency", "2"], `http://127.0.0.1:${slow.port}`);
      await a.waitFor(/ready on queue/);
      const coordinator = spawnCli([
        "sync",
        `s3://${src}`,
        `s3://${dst}`,
        "--queue",
        REDIS,
        "--queue-name",
        queueName,
        "--shards",
        "12",
        "--delete",
        "--exclude",
        "keep/*",
        "--json",
      ]);
      // Its first range (before the first folder) is empty; kill it in the second, which holds 300 keys.
      const started = await a.waitFor(/range (?!1\/)(\d+)\/(\d+) started .*\[(bs-[0-9a-f-]+)\]/);
      const killedJob = started[3]!;
      const b = worker();
      const c = worker();
      await Promise.all([b.waitFor(/ready on queue/), c.waitFor(/ready on queue/)]);
      await new Promise((r) => setTimeout(r, 1500));
      assert.ok(
        !new RegExp(`done in .*\\[${killedJob}\\]`).test(a.stdout),
        "worker A must still be in that range when it is killed",
      );
      a.child.kill("SIGKILL");
      await a.exited;

      const code = await coordinator.exited;
      assert.equal(code, 0, coordinator.stderr + coordinator.stdout.slice(-2000));
      const s = summaryOf(coordinator.stdout);
      assert.equal(s.failed, 0);
      assert.equal(
        s.copied + s.updated + s.skipped,
        sourceKeys.length,
        "every source key was planned once in the final pass of its range",
      );
      assert.ok(s.updated <= 20, `${s.updated} updates`);
      assert.equal(s.deleted, extras.length);
      const deleteEvents = coordinator.stdout
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l))
        .filter((e) => e.type === "delete")
        .map((e) => e.key as string);
      assert.deepEqual(
        [...deleteEvents].sort(compareKeys),
        [...extras].sort(compareKeys),
        "each extra deleted exactly once, nothing else deleted",
      );

      // The target is the source plus the excluded keys, byte for byte (ETag = MD5 of single-part objects).
      const [srcList, dstList] = await Promise.all([listAll(client, src), listAll(client, dst)]);
      assert.deepEqual(
        dstList.map((o) => o.key),
        [...sourceKeys, ...kept].sort(compareKeys),
      );
      const dstByKey = new Map(dstList.map((o) => [o.key, o]));
      for (const o of srcList) assert.equal(dstByKey.get(o.key)?.etag, o.etag, o.key);
      for (const k of [sourceKeys[0]!, sourceKeys[1]!, sourceKeys[150]!, sourceKeys[2999]!])
        assert.equal(await getText(client, dst, k), content(k));

      // The killed worker's range went back to the queue and another worker finished it.
      const queue = new Queue(queueName, { connection: redisConnection(REDIS) });
      try {
        const job = await queue.getJob(killedJob);
        assert.ok(job, killedJob);
        assert.equal(await job.getState(), "completed");
        assert.notEqual((job.returnvalue as { worker: string }).worker.split(":").pop(), String(a.child.pid));
        assert.ok(job.stalledCounter >= 1, "the job was recovered as stalled");
      } finally {
        await queue.close();
      }

      const st = await status();
      const run = st.runs.find((r) => r.state === "done");
      assert.ok(run, JSON.stringify(st));
      assert.equal(run.ranges, 11, "10 top-level folders give 11 ranges (12 shards asked)");
      assert.deepEqual([run.done, run.pending, run.running, run.failed], [run.ranges, 0, 0, 0]);
      assert.equal(run.summary?.deleted, extras.length);
      const text = await runCli(["status", "--queue", REDIS, "--queue-name", queueName], { endpoint: false });
      assert.match(text.stdout, /ranges: 11 total, 0 pending, 0 running, 11 done, 0 failed/);

      // Running the same command again changes nothing.
      const again = await runCli([
        "sync",
        `s3://${src}`,
        `s3://${dst}`,
        "--queue",
        REDIS,
        "--queue-name",
        queueName,
        "--shards",
        "12",
        "--delete",
        "--exclude",
        "keep/*",
        "--json",
      ]);
      assert.equal(again.code, 0, again.stderr);
      const s2 = summaryOf(again.stdout);
      assert.deepEqual([s2.copied, s2.updated, s2.deleted, s2.failed, s2.skipped], [0, 0, 0, 0, sourceKeys.length]);
      await Promise.all([stopWorker(b), stopWorker(c)]);
      assert.equal(b.child.exitCode, 0, b.stderr);
    } finally {
      await slow.close();
    }
  });

  test("a coordinator killed after enqueuing: the re-run resumes, does not redo finished ranges, then deletes", async () => {
    const q2 = `${queueName}-resume`;
    const s2 = await bucket("rsrc");
    const d2 = await bucket("rdst");
    // More than one listing page, or the sampler does not split at all.
    const keys = Array.from({ length: 1200 }, (_, i) => `f${i % 4}/k${i}`);
    await putMany(
      client,
      s2,
      keys.map((k) => [k, content(k)]),
    );
    await putMany(client, d2, [
      ["f1/gone", "x"],
      ["f3/gone", "x"],
      ["zz/gone", "x"],
    ]);
    const args = [
      "sync",
      `s3://${s2}`,
      `s3://${d2}`,
      "--queue",
      REDIS,
      "--queue-name",
      q2,
      "--shards",
      "8",
      "--delete",
      "--json",
    ];

    // No worker on this queue yet: the coordinator enqueues and waits; kill it there.
    const first = spawnCli(args);
    await first.waitFor(/ranges: 0\/5 done/);
    first.child.kill("SIGKILL");
    await first.exited;
    assert.deepEqual(await keys2(d2), ["f1/gone", "f3/gone", "zz/gone"], "nothing deleted yet");

    // A worker finishes every range while no coordinator runs.
    const w = spawnCli(["worker", "--queue", REDIS, "--queue-name", q2, "--lock-duration", "3"]);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const st = await status(q2);
      if (st.runs[0] && st.runs[0].done === st.runs[0].ranges) break;
      assert.ok(Date.now() < deadline, JSON.stringify(st));
      await new Promise((r) => setTimeout(r, 300));
    }
    const finishedBefore = await finishedTimes(q2);
    assert.equal(finishedBefore.length, 5);
    const rangesRun = (w.stdout.match(/done in/g) ?? []).length;

    const again = await runCli(args);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout + again.stderr, /resuming run [0-9a-f]{16}: 5 of 5 range\(s\) were already done/);
    const s = summaryOf(again.stdout);
    assert.deepEqual(
      [s.copied, s.deleted, s.failed],
      [1200, 3, 0],
      "the run's totals: copies by the worker, deletes by this coordinator",
    );
    assert.deepEqual(await finishedTimes(q2), finishedBefore, "finished ranges were not redone");
    assert.equal((w.stdout.match(/done in/g) ?? []).length, rangesRun);
    assert.deepEqual(await keys2(d2), [...keys].sort(compareKeys));
    await stopWorker(w as ReturnType<typeof worker>);
  });
});

describe("a range that fails", () => {
  test("no delete runs while any range failed; the re-run retries only the failed ranges, then deletes", async () => {
    const q3 = `${queueName}-fail`;
    const s3 = await bucket("fsrc");
    const d3 = await bucket("fdst");
    await putMany(
      client,
      s3,
      Array.from({ length: 1050 }, (_, i) => [`g${i % 3}/k${i}`, "v"] as [string, string]),
    );
    await putMany(client, d3, [
      ["g0/gone", "x"],
      ["g2/gone", "x"],
    ]);
    const args = [
      "sync",
      `s3://${s3}`,
      `s3://${d3}`,
      "--queue",
      REDIS,
      "--queue-name",
      q3,
      "--shards",
      "4",
      "--delete",
      "--json",
    ];
    // This worker runs as user B, who may not read user A's buckets: every range fails, three times.
    const wrong = spawnCli(["worker", "--queue", REDIS, "--queue-name", q3, "--lock-duration", "3"], env.endpoint, "b");
    const failedRun = await runCli(args);
    await stopWorker(wrong as ReturnType<typeof worker>);
    assert.equal(failedRun.code, 1, failedRun.stdout + failedRun.stderr);
    const events = failedRun.stdout
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    assert.equal(events.filter((e) => e.type === "error" && e.code === "RangeFailed").length, 4, failedRun.stdout);
    assert.equal(events.filter((e) => e.type === "delete").length, 0);
    assert.match(summaryLine(failedRun.stdout).deletesWithheld ?? "", /deletes not run: 4 of 4 range\(s\) failed/);
    assert.deepEqual(await keys2(d3), ["g0/gone", "g2/gone"], "nothing deleted");
    const st = await status(q3);
    assert.deepEqual([st.runs[0]?.state, st.runs[0]?.failed], ["failed", 4]);

    const right = spawnCli(["worker", "--queue", REDIS, "--queue-name", q3, "--lock-duration", "3"]);
    const again = await runCli(args);
    await stopWorker(right as ReturnType<typeof worker>);
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.deepEqual([summaryOf(again.stdout).copied, summaryOf(again.stdout).deleted], [1050, 2]);
    assert.equal((await keys2(d3)).length, 1050);
  });
});

const summaryLine = (stdout: string) =>
  summaryOf(stdout) as ReturnType<typeof summaryOf> & { deletesWithheld?: string };

async function keys2(bucketName: string) {
  return (await listAll(client, bucketName)).map((o) => o.key);
}

async function finishedTimes(queue: string): Promise<[string, number][]> {
  const q = new Queue(queue, { connection: redisConnection(REDIS) });
  try {
    const jobs = await q.getJobs(["completed"]);
    return jobs.map((j) => [j.id!, j.finishedOn!] as [string, number]).sort(([a], [b]) => (a < b ? -1 : 1));
  } finally {
    await q.close();
  }
}
