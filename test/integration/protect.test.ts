/**
 * Issue 16, "Protect production and budget a run": the CLI against the real S3 server, its
 * requests counted by a proxy (never by the tool's own output): the dry run's estimate against
 * what the real run sends, --max-transfer / --max-duration with --cutoff-mode, --bwlimit,
 * --tpslimit, --price-table and --metrics-addr. Outcomes are read from the server directly.
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { Queue } from "bullmq";
import { redisConnection } from "../../src/distributed/job.js";
import { redisUrl } from "../helpers/redis.js";
import { startCountingProxy, type CountingProxy } from "../helpers/counting-proxy.js";
import {
  CLI,
  listAll,
  put,
  putMany,
  runCli,
  s3Client,
  s3TestEnv,
  testBuckets,
  userEnv,
  type CliResult,
} from "../helpers/s3.js";

const client = s3Client("a");
const { bucket, removeAll: removeBuckets } = testBuckets(client);
const proxies: CountingProxy[] = [];
const work = mkdtempSync(join(tmpdir(), "bs-protect-"));
after(async () => {
  for (const p of proxies) await p.close();
  await removeBuckets();
  client.destroy();
  rmSync(work, { recursive: true, force: true });
});

async function counting(): Promise<CountingProxy> {
  const p = await startCountingProxy(s3TestEnv().endpoint);
  proxies.push(p);
  return p;
}

function viaProxy(p: CountingProxy, args: string[]): Promise<CliResult> {
  return runCli([...args, "--endpoint-url", p.endpoint], { endpoint: false });
}

type Summary = {
  copied: number;
  updated: number;
  deleted: number;
  skipped: number;
  failed: number;
  bytes: number;
  requests: Record<string, number>;
  bytesThrough: number;
  cost: { usd: number; priceTable: string };
  estimated?: boolean;
  cutoff?: { reason: string; mode: string; left: { objects: number; bytes: number } };
};

function summaryOf(r: CliResult): Summary {
  const line = r.stdout
    .trim()
    .split("\n")
    .reverse()
    .find((l) => l.includes('"type":"summary"'));
  assert.ok(line, `no summary event:\n${show(r)}`);
  return JSON.parse(line) as Summary;
}

const show = (r: CliResult) =>
  `exit ${r.code}\n--- stderr\n${r.stderr.slice(0, 3000)}\n--- stdout\n${r.stdout.slice(-1500)}`;
const nonZero = (o: Record<string, number>) => Object.fromEntries(Object.entries(o).filter(([, n]) => n > 0));
const total = (o: Record<string, number | undefined>) => Object.values(o).reduce<number>((s, n) => s + (n ?? 0), 0);
const MiB = 1024 * 1024;

async function contents(b: string): Promise<Map<string, string>> {
  return new Map((await listAll(client, b)).map((o) => [o.key, `${o.size} ${o.etag}`]));
}

describe("the cost estimate", () => {
  test("a dry run's requests for a 1,000-object sync match what a counting proxy sees in the real run (exactly for COPY, UploadPartCopy and DELETE); the summary carries the measured counts and their cost", async () => {
    const src = await bucket("est-src");
    const dst = await bucket("est-dst");
    const entries: [string, string][] = Array.from({ length: 1000 }, (_, i) => [
      `f${i % 7}/obj-${String(i).padStart(4, "0")}`,
      `body ${i}`,
    ]);
    await putMany(client, src, entries);
    await put(client, src, "big/twelve-mib", Buffer.alloc(12 * MiB, 3));
    // 200 already there (same size, newer), 30 only in the target (deleted with --delete).
    await putMany(client, dst, entries.slice(0, 200));
    await putMany(
      client,
      dst,
      Array.from({ length: 30 }, (_, i): [string, string] => [`gone/${i}`, "old"]),
    );
    const args = [
      "sync",
      `s3://${src}`,
      `s3://${dst}`,
      "--delete",
      "--json",
      "--multipart-threshold",
      "8M",
      "--part-size",
      "5M",
    ];

    const p = await counting();
    const dry = await viaProxy(p, [...args, "--dry-run"]);
    assert.equal(dry.code, 0, show(dry));
    const estimate = summaryOf(dry);
    assert.equal(estimate.estimated, true);
    assert.deepEqual(p.kinds(), { LIST: estimate.requests.LIST }, "a dry run sends only listings");
    assert.equal(estimate.copied, 801);
    assert.equal(estimate.deleted, 30);

    p.reset();
    const real = await viaProxy(p, args);
    assert.equal(real.code, 0, show(real));
    const measured = summaryOf(real);
    const seen = p.kinds();
    // The tool's own counts are exactly what arrived.
    assert.deepEqual(nonZero(measured.requests), seen);
    // The estimate: within 2% overall, exact for COPY, UploadPartCopy and DELETE.
    for (const kind of ["COPY", "UploadPartCopy", "DELETE"])
      assert.equal(
        estimate.requests[kind],
        seen[kind as keyof typeof seen] ?? 0,
        `${kind}: ${JSON.stringify({ estimate: estimate.requests, seen })}`,
      );
    assert.deepEqual(seen.COPY, 800);
    assert.equal(seen.UploadPartCopy, 3);
    assert.equal(seen.DELETE, 1);
    const off = Math.abs(total(estimate.requests) - total(seen)) / total(seen);
    assert.ok(off <= 0.02, `estimate ${JSON.stringify(estimate.requests)} vs seen ${JSON.stringify(seen)}`);
    // The default price table, applied: requests only (server-side copies move no bytes here).
    assert.equal(measured.bytesThrough, 0);
    assert.equal(measured.cost.priceTable, "aws-s3-standard-us-east-1 2026-11");
    const r = measured.requests;
    const usd = ((r.LIST! + r.PUT! + r.COPY! + r.UploadPartCopy!) * 0.005 + (r.GET! + r.HEAD!) * 0.0004) / 1000;
    assert.ok(Math.abs(measured.cost.usd - usd) < 1e-6, `${measured.cost.usd} vs ${usd}`);
    assert.equal((await contents(dst)).size, 1001);
  });

  test("the human summary names the requests, the bytes and the cost with the price table's region and date; --price-table applies another table", async () => {
    const src = await bucket("price-src");
    const dst = await bucket("price-dst");
    await putMany(
      client,
      src,
      Array.from({ length: 10 }, (_, i): [string, string] => [`k${i}`, "x"]),
    );
    const dry = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--dry-run"]);
    assert.equal(dry.code, 0, show(dry));
    assert.match(
      dry.stdout,
      /estimated requests \d+ \(LIST \d+, COPY 10\), 0 B through this machine, estimated cost \$[0-9.]+ at aws-s3-standard-us-east-1 2026-11 prices/,
    );

    const table = join(work, "prices.yaml");
    writeFileSync(table, "name: negotiated 2026-12\nrequests:\n  LIST: 1\n  COPY: 100\ntransfer_out_per_gb: 0\n");
    const priced = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--dry-run", "--json", "--price-table", table]);
    const s = summaryOf(priced);
    assert.equal(s.cost.priceTable, "negotiated 2026-12");
    assert.equal(s.cost.usd, (s.requests.LIST! * 1 + 10 * 100) / 1000);

    writeFileSync(table, "name: bad\nrequests:\n  FETCH: 1\n");
    const bad = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--price-table", table]);
    assert.equal(bad.code, 2, show(bad));
    assert.equal(bad.stderr.trim().split("\n").length, 1, bad.stderr);
    assert.match(bad.stderr, /--price-table .*prices\.yaml/);
    assert.equal((await contents(dst)).size, 0, "nothing copied");
  });

  test("check prints what a sync to match would send and cost", async () => {
    const src = await bucket("chk-src");
    const dst = await bucket("chk-dst");
    await putMany(
      client,
      src,
      Array.from({ length: 5 }, (_, i): [string, string] => [`k${i}`, "x"]),
    );
    const r = await runCli(["check", `s3://${src}`, `s3://${dst}`, "--json"]);
    assert.equal(r.code, 1, show(r));
    const s = JSON.parse(r.stdout.trim().split("\n").pop()!) as { estimate: Summary };
    assert.equal(s.estimate.requests.COPY, 5);
    assert.ok(s.estimate.requests.LIST! >= 1);
  });
});

describe("cut-offs", () => {
  test("--max-transfer 5M stops after 5 MiB with no deletes and exit 8; a second run completes the sync exactly, copying nothing twice", async () => {
    const src = await bucket("cut-src");
    const dst = await bucket("cut-dst");
    await putMany(
      client,
      src,
      Array.from({ length: 12 }, (_, i): [string, Buffer] => [
        `part-${String(i).padStart(2, "0")}`,
        Buffer.alloc(MiB, i),
      ]),
      4,
    );
    await put(client, dst, "stale", "to be deleted");
    const first = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--delete", "--max-transfer", "5M", "--json"]);
    assert.equal(first.code, 8, show(first));
    const s = summaryOf(first);
    assert.equal(s.copied, 5);
    assert.equal(s.bytes, 5 * MiB);
    assert.equal(s.deleted, 0);
    assert.deepEqual(s.cutoff?.left, { objects: 7, bytes: 7 * MiB });
    assert.match(first.stdout, /cut off: --max-transfer 5 MB reached.*7 object\(s\).*no deletes ran/);
    const after1 = await contents(dst);
    assert.equal(after1.size, 6);
    assert.ok(after1.has("stale"), "no deletes after a cut-off");

    const second = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--delete", "--json"]);
    assert.equal(second.code, 0, show(second));
    const s2 = summaryOf(second);
    assert.equal(s2.copied, 7, "only what was left");
    assert.equal(s2.skipped, 5);
    assert.equal(s2.deleted, 1);
    assert.deepEqual(await contents(dst), await contents(src));
  });

  test("an object larger than --max-transfer fails on its own: the objects after it are copied, no deletes, and later runs are not stopped at it", async () => {
    const src = await bucket("oversize-src");
    const dst = await bucket("oversize-dst");
    await put(client, src, "a-small", Buffer.alloc(MiB, 1));
    await put(client, src, "b-huge", Buffer.alloc(3 * MiB, 2));
    await put(client, src, "c-small", Buffer.alloc(MiB, 3));
    await put(client, dst, "stale", "to be deleted");
    const args = ["sync", `s3://${src}`, `s3://${dst}`, "--delete", "--max-transfer", "2M"];
    const first = await runCli(args);
    assert.equal(first.code, 1, show(first));
    assert.match(first.stderr, /b-huge.*TooLarge: 3 MB is more than --max-transfer 2 MB/);
    assert.deepEqual([...(await contents(dst)).keys()].sort(), ["a-small", "c-small", "stale"]);
    // Run again: nothing left to copy but the oversize object, which fails the same way.
    const again = await runCli([...args, "--json"]);
    assert.equal(again.code, 1, show(again));
    const s = summaryOf(again);
    assert.equal(s.copied, 0);
    assert.equal(s.failed, 1);
    assert.equal(s.deleted, 0);
  });

  test("--max-duration 2s --cutoff-mode soft lets copies in flight finish; hard cuts them and leaves nothing half-written", async () => {
    const folder = join(work, "slow");
    rmSync(folder, { recursive: true, force: true });
    const { mkdirSync } = await import("node:fs");
    mkdirSync(folder);
    for (let i = 0; i < 4; i++) writeFileSync(join(folder, `file-${i}`), Buffer.alloc(3 * MiB, i));
    // Two uploads at once sharing 2 MiB/s: each takes about 3 s, so both are in flight at 2 s.
    const common = ["--max-duration", "2s", "--bwlimit", "2M", "--concurrency", "2", "--json"];

    const soft = await bucket("soft");
    const started = Date.now();
    const r = await runCli(["sync", folder, `s3://${soft}`, ...common, "--cutoff-mode", "soft"]);
    assert.equal(r.code, 8, show(r));
    assert.ok(Date.now() - started >= 2500, "the copies in flight were waited for");
    const s = summaryOf(r);
    assert.equal(s.copied, 2, show(r));
    assert.equal(s.failed, 0);
    assert.equal(s.cutoff?.mode, "soft");
    const copied = await contents(soft);
    assert.equal(copied.size, 2);
    for (const value of copied.values()) assert.match(value, new RegExp(`^${3 * MiB} `));

    const hard = await bucket("hard");
    const h = await runCli(["sync", folder, `s3://${hard}`, ...common, "--cutoff-mode", "hard"]);
    assert.equal(h.code, 8, show(h));
    const hs = summaryOf(h);
    assert.equal(hs.copied, 0);
    assert.equal(hs.failed, 0, "a cut copy is left, not failed");
    assert.ok(hs.cutoff!.left.objects >= 2);
    assert.equal((await contents(hard)).size, 0, "nothing half-written");
  });
});

describe("stopping while --tpslimit holds requests back", () => {
  test("--max-duration and Ctrl-C do not send the copies still waiting for a token (exit 8 / 130 at once)", async () => {
    const src = await bucket("tps-stop-s");
    await putMany(
      client,
      src,
      Array.from({ length: 100 }, (_, i) => [`k${String(i).padStart(3, "0")}`, "x"] as [string, string]),
    );
    const dst = await bucket("tps-stop-d");
    const started = Date.now();
    const cut = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--tpslimit", "10", "--max-duration", "2s"]);
    const took = Date.now() - started;
    assert.equal(cut.code, 8, cut.stderr);
    // At 10 requests a second, 2 s allow about 20 copies; the 64 waiting for a token are not sent.
    const copied = (await listAll(client, dst)).length;
    assert.ok(copied <= 35, `copied ${copied} after the cut-off`);
    assert.ok(took < 8_000, `the run ended ${took} ms after it started`);
    const dst2 = await bucket("tps-stop-i");
    const env = s3TestEnv();
    const child = spawn(
      process.execPath,
      [CLI, "sync", `s3://${src}`, `s3://${dst2}`, "--tpslimit", "10", "--endpoint-url", env.endpoint],
      {
        env: { PATH: process.env.PATH ?? "", HOME: "/nonexistent", ...userEnv("a") },
        stdio: "ignore",
      },
    );
    await new Promise((r) => setTimeout(r, 2500));
    const interrupted = Date.now();
    child.kill("SIGINT");
    const code = await new Promise<number | null>((r) => child.once("exit", (c) => r(c)));
    assert.equal(code, 130);
    assert.ok(Date.now() - interrupted < 3_000, `exited ${Date.now() - interrupted} ms after Ctrl-C`);
    assert.ok((await listAll(client, dst2)).length <= 40);
  });
});

describe("limits", () => {
  test("--bwlimit 2M on a 20 MiB streamed upload takes 9-12 s, and the summary counts the bytes through", async () => {
    const folder = join(work, "bw");
    const { mkdirSync } = await import("node:fs");
    mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, "twenty"), Buffer.alloc(20 * MiB, 9));
    const dst = await bucket("bw");
    const started = Date.now();
    const r = await runCli(["sync", folder, `s3://${dst}`, "--bwlimit", "2M", "--json"]);
    const seconds = (Date.now() - started) / 1000;
    assert.equal(r.code, 0, show(r));
    assert.ok(seconds >= 9 && seconds <= 12, `took ${seconds} s`);
    const s = summaryOf(r);
    assert.equal(s.bytesThrough, 20 * MiB);
    assert.equal(s.requests.PUT, 1);
  });

  test("--tpslimit 20 on a 400-object sync: a counting proxy never sees more than 20 requests within a second", async () => {
    const src = await bucket("tps-src");
    const dst = await bucket("tps-dst");
    await putMany(
      client,
      src,
      Array.from({ length: 400 }, (_, i): [string, string] => [`t/${i}`, "x"]),
    );
    const p = await counting();
    const r = await viaProxy(p, ["sync", `s3://${src}`, `s3://${dst}`, "--tpslimit", "20", "--json"]);
    assert.equal(r.code, 0, show(r));
    assert.equal(summaryOf(r).copied, 400);
    assert.ok(p.total() >= 401);
    const most = p.maxInWindow(1000);
    assert.ok(most <= 20, `${most} requests within one second`);
    assert.ok(most >= 15, `the limit is used (${most} in the busiest second)`);
  });

  test("bad limits are one line and exit 2, before any request", async () => {
    for (const args of [
      ["--bwlimit", "25:00,1M"],
      ["--bwlimit", "fast"],
      ["--tpslimit", "0"],
      ["--max-transfer", "lots"],
      ["--max-transfer", "0"],
      ["--max-duration", "soon"],
      ["--cutoff-mode", "gentle"],
      ["--order-by", "colour"],
      ["--metrics-addr", "nowhere"],
    ]) {
      const r = await runCli(["sync", "s3://bs-nonexistent-a", "s3://bs-nonexistent-b", ...args]);
      assert.equal(r.code, 2, `${args.join(" ")}: ${show(r)}`);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.match(r.stderr, new RegExp(args[0]!));
    }
  });
});

describe("metrics", () => {
  test("/metrics during a run, scraped with a real HTTP client, has the documented names with values that match the summary", async () => {
    const src = await bucket("met-src");
    const dst = await bucket("met-dst");
    await putMany(
      client,
      src,
      Array.from({ length: 4 }, (_, i): [string, string] => [`m${i}`, "x"]),
    );
    await put(client, dst, "extra", "y");
    const port = await freePort();
    // At 2 requests a second the run lasts a few seconds, and after the last copy the delete
    // batch waits for its token: the last scrapes see the copies' final counts.
    const run = runCli([
      "sync",
      `s3://${src}`,
      `s3://${dst}`,
      "--delete",
      "--tpslimit",
      "2",
      "--metrics-addr",
      `127.0.0.1:${port}`,
      "--json",
    ]);
    let done = false;
    void run.then(() => (done = true));
    const scrapes: string[] = [];
    while (!done) {
      const text = await fetch(`http://127.0.0.1:${port}/metrics`)
        .then((res) => (res.ok ? res.text() : undefined))
        .catch(() => undefined);
      if (text) scrapes.push(text);
      await new Promise((r) => setTimeout(r, 100));
    }
    const r = await run;
    assert.equal(r.code, 0, show(r));
    assert.ok(scrapes.length >= 3, `scraped ${scrapes.length} times`);
    const last = scrapes[scrapes.length - 1]!;
    for (const name of [
      "bucketsync_objects_total",
      "bucketsync_bytes_total",
      "bucketsync_requests_total",
      "bucketsync_bytes_through_total",
      "bucketsync_retries_total",
      "bucketsync_throttled_total",
      "bucketsync_requests_in_flight",
      "bucketsync_listed_objects_total",
      "bucketsync_limit_concurrency",
      "bucketsync_limit_tps",
      "bucketsync_limit_bandwidth_bytes",
    ])
      assert.match(last, new RegExp(`^# TYPE ${name} `, "m"), name);
    const s = summaryOf(r);
    const value = (text: string, series: string) =>
      Number(new RegExp(`^${series.replace(/[{}]/g, "\\$&")} (\\S+)$`, "m").exec(text)?.[1]);
    assert.equal(value(last, 'bucketsync_objects_total{outcome="copied"}'), s.copied);
    assert.equal(value(last, 'bucketsync_requests_total{kind="COPY",status="200"}'), s.requests.COPY);
    assert.equal(value(last, 'bucketsync_requests_total{kind="LIST",status="200"}'), s.requests.LIST);
    assert.equal(value(last, "bucketsync_listed_objects_total"), 4);
    assert.equal(value(last, "bucketsync_limit_tps"), 2);
    assert.equal(s.deleted, 1);
  });
});

describe("distributed", () => {
  test("limits travel to the workers and apply per worker; a range cut off by --max-transfer runs no deletes; the worker serves its metrics", async () => {
    const redis = redisUrl();
    const queueName = `bs-protect-${process.pid}-${Date.now().toString(36)}`;
    const src = await bucket("dq-src");
    const dst = await bucket("dq-dst");
    await putMany(
      client,
      src,
      Array.from({ length: 8 }, (_, i): [string, Buffer] => [`d/${i}`, Buffer.alloc(MiB, i)]),
      4,
    );
    await put(client, dst, "stale", "x");
    const port = await freePort();
    const worker = spawn(
      process.execPath,
      [
        CLI,
        "worker",
        "--queue",
        redis,
        "--queue-name",
        queueName,
        "--lock-duration",
        "3",
        "--metrics-addr",
        `127.0.0.1:${port}`,
        "--endpoint-url",
        s3TestEnv().endpoint,
      ],
      {
        env: { PATH: process.env.PATH ?? "", HOME: "/nonexistent", ...userEnv("a") },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let workerOut = "";
    worker.stdout!.on("data", (d) => (workerOut += d));
    worker.stderr!.on("data", (d) => (workerOut += d));
    try {
      const args = [
        "sync",
        `s3://${src}`,
        `s3://${dst}`,
        "--queue",
        redis,
        "--queue-name",
        queueName,
        "--delete",
        "--json",
      ];
      const cut = await runCli([...args, "--max-transfer", "3M"]);
      assert.notEqual(cut.code, 0, show(cut));
      const s = summaryOf(cut);
      assert.equal(s.copied, 3, show(cut));
      assert.equal(s.deleted, 0);
      assert.ok((await contents(dst)).has("stale"), "no deletes after a cut-off range");
      assert.match(workerOut, /cut off: --max-transfer 3 MB reached/);
      const scraped = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      assert.match(scraped, /^bucketsync_objects_total\{outcome="copied"\} 3$/m, scraped);
      assert.match(scraped, /^bucketsync_requests_total\{kind="COPY",status="200"\} 3$/m);

      const again = await runCli(args);
      assert.equal(again.code, 0, show(again) + workerOut);
      const s2 = summaryOf(again);
      assert.equal(s2.copied, 5, "only what was left");
      assert.equal(s2.deleted, 1);
      assert.equal(s2.requests.COPY, 5);
      assert.deepEqual(await contents(dst), await contents(src));
    } finally {
      worker.kill("SIGTERM");
      await new Promise((r) => worker.once("exit", r));
      const queue = new Queue(queueName, { connection: redisConnection(redis) });
      await queue.obliterate({ force: true }).catch(() => undefined);
      const r = await queue.client;
      let cursor = "0";
      do {
        const [next, found] = await r.scan(cursor, { MATCH: `bucketsync:${queueName}:*`, COUNT: 1000 });
        if (found.length > 0) await r.del(...found);
        cursor = next;
      } while (cursor !== "0");
      await queue.close();
    }
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
