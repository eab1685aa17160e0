/**
 * `npm run bench:distributed`: how a distributed sync scales with 1, 2 and 4 worker processes when
 * every request crosses a 20 ms round trip (bench/latency-proxy.ts in front of the local radosgw),
 * next to a single-process `bucketsync sync` through the same proxy. Writes
 * bench/results/distributed.md and prints it.
 *
 * All of it runs on this one machine (2 cores): radosgw, Redis, the coordinator and every worker
 * share those cores, so the speed-up stops where the CPU runs out, not where a fleet would.
 *
 * Environment:
 *   BENCH_DIST_N=4000              objects of 1 KiB in the source (in BENCH_DIST_PREFIXES top-level prefixes)
 *   BENCH_DIST_PREFIXES=16
 *   BENCH_DIST_WORKERS=1,2,4       worker counts
 *   BENCH_DIST_CONCURRENCY=8,64    requests in flight per worker (one series each)
 *   BENCH_DIST_SHARDS=16
 *   BENCH_DIST_DELAY_MS=10         one-way delay of the proxy (round trip: twice this)
 *   BENCH_DIST_REPEAT=3            rounds; each round runs every configuration once; the median is reported
 *   BENCH_QUIET_WAIT_S=20          before each run, wait up to this long for an idle machine
 *
 * Only 127.0.0.1 is contacted. Target buckets are deleted after each run; the source bucket is
 * kept for the next run (bench-dist-src-N); Redis queues are per run.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { Queue } from "bullmq";
import { redisConnection } from "../src/distributed/job.js";
import {
  CLI,
  REPO,
  RESULTS_DIR,
  baseChildEnv,
  countObjects,
  createBucket,
  deleteBucket,
  loadServer,
  log,
  makeClient,
} from "./common.js";
import { LatencyProxy } from "./latency-proxy.js";
import { waitForQuietMachine } from "./measure.js";

const N = Number(process.env.BENCH_DIST_N ?? 4000);
const PREFIXES = Number(process.env.BENCH_DIST_PREFIXES ?? 16);
const WORKERS = (process.env.BENCH_DIST_WORKERS ?? "1,2,4").split(",").map(Number);
const CONCURRENCY = (process.env.BENCH_DIST_CONCURRENCY ?? "8,64").split(",").map(Number);
const SHARDS = Number(process.env.BENCH_DIST_SHARDS ?? 16);
const DELAY_MS = Number(process.env.BENCH_DIST_DELAY_MS ?? 10);
const REPEAT = Number(process.env.BENCH_DIST_REPEAT ?? 3);
const QUIET_WAIT_S = Number(process.env.BENCH_QUIET_WAIT_S ?? 20);
const RUN_TIMEOUT_MS = 600_000;

interface Run {
  concurrency: number;
  workers: number;
  seconds: number;
  quiet: boolean;
  cpuSeconds: number;
}

interface Row {
  concurrency: number;
  mode: string;
  workers: number;
  /** Median over the rounds, and every round's time. */
  seconds: number;
  all: number[];
  objectsPerSecond: number;
  speedup?: number;
  quietRuns: number;
  cpuSeconds: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const children = new Set<ChildProcess>();
function stopAll() {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
}
process.on("exit", stopAll);
process.on("SIGINT", () => (stopAll(), process.exit(130)));

function redisUrl(): string {
  const out = execFileSync("bash", [join(REPO, "scripts", "redis-server.sh"), "start"], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  const m = /BUCKETSYNC_REDIS_URL=(\S+)/.exec(out);
  if (!m) throw new Error("scripts/redis-server.sh start printed no URL");
  return m[1]!;
}

/** Starts the CLI; `done` resolves with its exit code and output. */
function cli(
  args: string[],
  env: NodeJS.ProcessEnv,
): { child: ChildProcess; done: Promise<{ code: number | null; stdout: string; stderr: string }> } {
  const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => (stdout += d));
  child.stderr!.on("data", (d: Buffer) => (stderr += d));
  const timer = setTimeout(() => child.kill("SIGKILL"), RUN_TIMEOUT_MS);
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on("exit", (code) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, stdout, stderr });
    }),
  );
  return { child, done };
}

/** CPU seconds (user + system) a live process has used so far, from /proc. */
function cpuSecondsOf(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const stat = execFileSync("cat", [`/proc/${pid}/stat`], { encoding: "utf8" });
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

async function main(): Promise<void> {
  const server = loadServer();
  const redis = redisUrl();
  const client = makeClient(server.endpoint, server.region, server.credentials);
  const env = baseChildEnv(server);
  const proxy = new LatencyProxy({ targetHost: "127.0.0.1", targetPort: server.port, oneWayDelayMs: DELAY_MS });
  const proxyPort = await proxy.start();
  const endpoint = `http://127.0.0.1:${proxyPort}`;
  log(`proxy 127.0.0.1:${proxyPort} -> ${server.endpoint} (${2 * DELAY_MS} ms round trip); Redis ${redis}`);

  const source = `bench-dist-src-${N}-${PREFIXES}`;
  await createBucket(client, source);
  if ((await countObjects(client, source)) !== N) {
    log(`seeding ${source} with ${N} objects of 1 KiB`);
    const body = Buffer.alloc(1024, 120);
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < N) {
          const i = next++;
          await client.send(
            new PutObjectCommand({
              Bucket: source,
              Key: `p${String(i % PREFIXES).padStart(2, "0")}/obj-${String(i).padStart(7, "0")}`,
              Body: body,
            }),
          );
        }
      }),
    );
  }

  const runs: Run[] = [];
  try {
    for (let round = 1; round <= REPEAT; round++)
      for (const concurrency of CONCURRENCY) {
        for (const workers of [0, ...WORKERS]) {
          const target = `bench-dist-dst-${process.pid}-${concurrency}-${workers}`;
          await deleteBucket(client, target);
          await createBucket(client, target);
          const quiet = await waitForQuietMachine(QUIET_WAIT_S * 1000);
          const queueName = `bench-${process.pid}-${concurrency}-${workers}`;
          const procs: ChildProcess[] = [];
          for (let i = 0; i < workers; i++) {
            procs.push(
              cli(
                [
                  "worker",
                  "--queue",
                  redis,
                  "--queue-name",
                  queueName,
                  "--endpoint-url",
                  endpoint,
                  "--concurrency",
                  String(concurrency),
                  "-q",
                ],
                env,
              ).child,
            );
          }
          if (workers > 0) await waitForWorkers(redis, queueName, workers, env);
          const args =
            workers === 0
              ? [
                  "sync",
                  `s3://${source}`,
                  `s3://${target}`,
                  "--endpoint-url",
                  endpoint,
                  "--concurrency",
                  String(concurrency),
                  "--json",
                  "-q",
                ]
              : [
                  "sync",
                  `s3://${source}`,
                  `s3://${target}`,
                  "--endpoint-url",
                  endpoint,
                  "--queue",
                  redis,
                  "--queue-name",
                  queueName,
                  "--shards",
                  String(SHARDS),
                  "--json",
                  "-q",
                ];
          const cpuBefore = procs.map((p) => cpuSecondsOf(p.pid));
          const t0 = performance.now();
          const run = cli(args, env);
          const result = await run.done;
          const seconds = (performance.now() - t0) / 1000;
          const cpu = procs.reduce((sum, p, i) => sum + cpuSecondsOf(p.pid) - cpuBefore[i]!, 0);
          for (const p of procs) p.kill("SIGTERM");
          if (result.code !== 0) throw new Error(`run failed (exit ${result.code}): ${result.stderr}`);
          const summary = JSON.parse(result.stdout.trim().split("\n").pop()!);
          if (summary.copied !== N) throw new Error(`expected ${N} copies, got ${summary.copied}`);
          runs.push({ concurrency, workers, seconds, quiet: quiet.quiet, cpuSeconds: cpu });
          log(
            `round ${round}/${REPEAT}, concurrency ${concurrency}, ${workers === 0 ? "single process" : `${workers} worker(s)`}: ${seconds.toFixed(1)} s, ${Math.round(N / seconds)} obj/s${quiet.quiet ? "" : " (machine busy)"}`,
          );
          await Promise.all(
            procs.map((p) => new Promise((r) => (p.exitCode !== null ? r(undefined) : p.once("exit", r)))),
          );
          await deleteBucket(client, target);
          if (workers > 0) await dropQueue(redis, queueName);
        }
      }
  } finally {
    stopAll();
    await proxy.stop();
    client.destroy();
  }

  const rows: Row[] = [];
  for (const concurrency of CONCURRENCY) {
    for (const workers of [0, ...WORKERS]) {
      const mine = runs.filter((r) => r.concurrency === concurrency && r.workers === workers);
      if (mine.length === 0) continue;
      const seconds = median(mine.map((r) => r.seconds));
      rows.push({
        concurrency,
        mode: workers === 0 ? "single process (no queue)" : "distributed",
        workers,
        seconds,
        all: mine.map((r) => r.seconds),
        objectsPerSecond: N / seconds,
        quietRuns: mine.filter((r) => r.quiet).length,
        cpuSeconds: median(mine.map((r) => r.cpuSeconds)),
      });
    }
    const one = rows.find((r) => r.concurrency === concurrency && r.workers === 1);
    for (const r of rows.filter((r) => r.concurrency === concurrency && r.workers > 0))
      r.speedup = one ? one.seconds / r.seconds : undefined;
  }
  const md = report(rows);
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(join(RESULTS_DIR, "distributed.md"), md);
  process.stdout.write(md);
}

/** Removes a run's queue and run records from Redis. */
async function dropQueue(redis: string, queueName: string): Promise<void> {
  const queue = new Queue(queueName, { connection: redisConnection(redis) });
  try {
    await queue.obliterate({ force: true });
    const client = await queue.client;
    let cursor = "0";
    do {
      const [next, found] = await client.scan(cursor, { MATCH: `bucketsync:${queueName}:*`, COUNT: 1000 });
      if (found.length > 0) await client.del(...found);
      cursor = next;
    } while (cursor !== "0");
  } finally {
    await queue.close();
  }
}

async function waitForWorkers(redis: string, queueName: string, count: number, env: NodeJS.ProcessEnv): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const r = await cli(["status", "--queue", redis, "--queue-name", queueName, "--json"], env).done;
    if (r.code === 0 && JSON.parse(r.stdout).workers >= count) return;
    if (Date.now() > deadline) throw new Error(`only ${r.stdout} workers after 30 s`);
    await new Promise((res) => setTimeout(res, 200));
  }
}

function report(rows: Row[]): string {
  const cpus = os.cpus();
  const lines = [
    "# Distributed sync: speed-up with worker processes",
    "",
    `${new Date().toISOString().slice(0, 10)}, \`npm run bench:distributed\`. ${N} objects of 1 KiB in ${PREFIXES} top-level prefixes, copied server-side`,
    `into an empty bucket through a ${2 * DELAY_MS} ms round-trip proxy (bench/latency-proxy.ts) in front of the local radosgw;`,
    `\`--shards ${SHARDS}\`; Redis from scripts/redis-server.sh. Time: the coordinator's wall clock, from start to exit`,
    `(splitting, enqueueing, every range, the summary); workers were started and connected before it. ${REPEAT} rounds, each`,
    "running every configuration once; the table shows the median (every round's time in brackets). Worker CPU: user+system",
    "seconds of all worker processes during the run (median).",
    "",
    `**One machine:** ${cpus.length} cores (${cpus[0]?.model ?? "unknown CPU"}) run radosgw, Redis, the proxy, the coordinator and`,
    "every worker. Distribution helps while one worker is bound by round trips (few requests in flight); once the",
    "2 cores are busy, more workers only share them. On real machines each worker brings its own cores and network.",
    "",
    "| requests in flight per worker | run | workers | time (s), median [rounds] | objects/s | speed-up vs 1 worker | worker CPU (s) | rounds started on an idle machine |",
    "|---:|---|---:|---:|---:|---:|---:|---|",
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.concurrency} | ${r.mode} | ${r.workers || "-"} | ${r.seconds.toFixed(1)} [${r.all.map((x) => x.toFixed(1)).join(", ")}] | ${Math.round(r.objectsPerSecond)} | ${r.speedup !== undefined ? `${r.speedup.toFixed(2)}x` : "-"} | ${r.workers ? r.cpuSeconds.toFixed(1) : "-"} | ${r.quietRuns}/${r.all.length} |`,
    );
  }
  lines.push("");
  return lines.join("\n");
}

await main();
