/**
 * `npm run bench`: bucketsync against aws-cli, rclone, s3cmd and a bare SDK loop on the local
 * radosgw, same server and same data, direct and through a 20 ms round-trip proxy; then a
 * listing benchmark on a 100,000-key bucket. Writes bench/results/latest.{md,json,svg} and
 * prints the markdown.
 *
 * Environment:
 *   BENCH_N=5000            objects of 1 KiB to sync (BENCH_QUICK=1: 500, and 10,000 keys to list)
 *   BENCH_SKIP_LISTING=1    skip the listing benchmark
 *   BENCH_SKIP_TRANSFERS=1  skip the uploads and downloads (bench/transfers.ts, which lists its own settings)
 *   BENCH_SKIP_SYNC=1       skip the bucket-to-bucket part
 *   BENCH_SERVER_DIR=dir    the server's folder (default .s3-server); with BUCKETSYNC_S3_PORT and the other
 *                           port variables of scripts/s3-server.sh, a server of the benchmark's own
 *   BENCH_LIST_KEYS=100000  keys in the listing bucket (bench-list-100k, kept between runs)
 *   BENCH_LIST_REPEATS=3    listing runs per tool and network; the median is reported
 *   BENCH_TOOLS=a,b         only these tools (ids in bench/tools.ts), e.g. bucketsync,bare-sdk
 *   BENCH_NETWORKS=direct   only these networks (direct, proxy)
 *   BENCH_RESULTS_DIR=dir   where to write latest.{md,json,svg}; by default bench/results/ for a complete
 *                           run, else (BENCH_QUICK, BENCH_TOOLS, BENCH_NETWORKS, BENCH_SKIP_LISTING) the run's temp dir
 *   BENCH_TIMEOUT_S=900     per command; a command over it is killed and reported as timed out
 *   BENCH_QUIET_WAIT_S=30   before each measured command, wait up to this long for an idle machine
 *   BENCH_RETRY_NOISY=1     repeat a run disturbed by other work this many times; keep the least disturbed
 *
 * Only 127.0.0.1 is ever contacted. Buckets made by the run are deleted at the end (the listing
 * bucket is kept for reuse); the proxy and every child are stopped.
 */
import { spawn, type ChildProcess } from "node:child_process";
import {
  appendFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import { join, relative } from "node:path";
import { performance } from "node:perf_hooks";
import { ListBucketsCommand, type S3Client } from "@aws-sdk/client-s3";
import {
  CLI,
  REPO,
  RESULTS_DIR,
  SERVER_DIR,
  TMP_ROOT,
  baseChildEnv,
  countObjects,
  createBucket,
  deleteBucket,
  listAll,
  listBucketNames,
  loadServer,
  log,
  makeClient,
  sleep,
  type ServerInfo,
} from "./common.js";
import { runListingBench } from "./listing.js";
import { runTransferBench } from "./transfers.js";
import {
  RgwAccessLog,
  ServerProbe,
  isNoisy,
  killRunningChildren,
  round,
  runMeasured,
  runQuiet,
  waitForQuietMachine,
  type CommandSpec,
  type Measurement,
} from "./measure.js";
import {
  markdown,
  writeReports,
  type BenchResult,
  type ListingResult,
  type Network,
  type RunRecord,
} from "./report.js";
import { TOOLS, ensurePeers, ownVersions, type Endpoint, type ToolContext } from "./tools.js";

const QUICK = process.env.BENCH_QUICK === "1";
const N = Number(process.env.BENCH_N ?? (QUICK ? 500 : 5000));
const SKIP_LISTING = process.env.BENCH_SKIP_LISTING === "1";
const SKIP_TRANSFERS = process.env.BENCH_SKIP_TRANSFERS === "1";
const SKIP_SYNC = process.env.BENCH_SKIP_SYNC === "1";
const LIST_KEYS = Number(process.env.BENCH_LIST_KEYS ?? (QUICK ? 10_000 : 100_000));
const LIST_BUCKET = `bench-list-${LIST_KEYS % 1000 === 0 ? `${LIST_KEYS / 1000}k` : LIST_KEYS}`;
const TIMEOUT_MS = Number(process.env.BENCH_TIMEOUT_S ?? 900) * 1000;
const TOOL_FILTER = process.env.BENCH_TOOLS?.split(",")
  .map((s) => s.trim())
  .filter(Boolean);
const NETWORKS = (process.env.BENCH_NETWORKS?.split(",").map((s) => s.trim()) ?? ["direct", "proxy"]) as Network[];
const QUIET_WAIT_MS = Number(process.env.BENCH_QUIET_WAIT_S ?? 30) * 1000;
const RETRY_NOISY = Number(process.env.BENCH_RETRY_NOISY ?? 1);
const ONE_WAY_DELAY_MS = 10;
/** Buckets of one run start with this; a leftover from a killed run is removed by the next run. */
const RUN_PREFIX = "bench-run-";

const created = new Set<string>();
let proxyChild: ChildProcess | undefined;
let client: S3Client | undefined;
let tmpDir = "";
const LOCK = join(TMP_ROOT, "lock");

// ------------------------------------------------------------------ housekeeping

function acquireLock(): void {
  mkdirSync(TMP_ROOT, { recursive: true });
  if (existsSync(LOCK)) {
    const pid = Number(readFileSync(LOCK, "utf8").trim());
    let alive = false;
    try {
      alive = pid > 0 && pid !== process.pid && readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("bench");
    } catch {
      alive = false;
    }
    if (alive)
      throw new Error(`another benchmark (pid ${pid}) is running; two at once on 2 cores would measure each other`);
  }
  writeFileSync(LOCK, String(process.pid));
}

function releaseLock(): void {
  try {
    if (readFileSync(LOCK, "utf8").trim() === String(process.pid)) rmSync(LOCK);
  } catch {
    /* gone */
  }
}

/** Starts the latency proxy as a child (its CPU is then measurable on its own); resolves with its port. */
async function startProxy(server: ServerInfo, distDir: string): Promise<{ port: number; pid: number }> {
  const script = join(distDir, "bench", "latency-proxy.js");
  const maxSeconds = 4 * 3600;
  const child = spawn(
    process.execPath,
    [
      script,
      "--target",
      `127.0.0.1:${server.port}`,
      "--delay-ms",
      String(ONE_WAY_DELAY_MS),
      "--max-seconds",
      String(maxSeconds),
    ],
    {
      stdio: ["pipe", "pipe", "pipe"],
    },
  );
  proxyChild = child;
  child.stderr!.on("data", (c) => appendFileSync(join(tmpDir, "proxy.log"), c));
  const port = await new Promise<number>((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(() => reject(new Error("latency proxy did not start in 10 s")), 10_000);
    child.stdout!.on("data", (c) => {
      buf += c;
      const line = buf.split("\n")[0];
      if (buf.includes("\n")) {
        clearTimeout(timer);
        resolve(JSON.parse(line!).port);
      }
    });
    child.once("exit", (code) => reject(new Error(`latency proxy exited with ${code}`)));
  });
  return { port, pid: child.pid! };
}

async function stopProxy(): Promise<void> {
  const child = proxyChild;
  proxyChild = undefined;
  if (!child || child.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.stdin!.end(); // the proxy stops when its stdin closes
  await Promise.race([exited, sleep(3000)]);
  if (child.exitCode === null) child.kill("SIGKILL");
}

let cleanedUp = false;
async function cleanup(): Promise<void> {
  if (cleanedUp) return;
  cleanedUp = true;
  killRunningChildren();
  await stopProxy();
  if (client) {
    for (const bucket of created) {
      try {
        await deleteBucket(client, bucket);
      } catch (err) {
        log(`could not delete s3://${bucket}: ${(err as Error).name}`);
      }
    }
    client.destroy();
  }
  // Config files hold the (test-only) credentials; logs stay for inspection until the next run.
  if (tmpDir && existsSync(tmpDir)) {
    for (const f of readdirSync(tmpDir))
      if (/^(aws-config|aws-credentials|rclone-|s3cmd-)/.test(f)) rmSync(join(tmpDir, f), { force: true });
  }
  releaseLock();
}

/**
 * Runs one measured command after waiting for an idle machine: background work from the previous
 * run (radosgw, the OSD) or from other users of this 2-core machine must not bill this one.
 */
export async function measureQuietly(
  spec: CommandSpec,
  opts: {
    probe: ServerProbe;
    proxyPid?: number;
    logBase: string;
    accessLog: RgwAccessLog;
    buckets: string[];
    /** Restores the starting state before a repeat, or says it cannot (false); without it a disturbed run is not repeated. */
    prepareRepeat?: () => Promise<boolean>;
  },
): Promise<Measurement> {
  let best: Measurement | undefined;
  const discarded: number[] = [];
  let attempts = 0;
  for (;;) {
    attempts++;
    await sleep(500);
    const quiet = await waitForQuietMachine(QUIET_WAIT_MS);
    if (!quiet.quiet)
      log(`  the machine did not go idle in ${QUIET_WAIT_MS / 1000} s (other users?); measuring anyway`);
    const suffix = attempts > 1 ? `-try${attempts}` : "";
    const m = await runMeasured(spec, {
      server: opts.probe,
      proxyPid: opts.proxyPid,
      timeoutMs: TIMEOUT_MS,
      logBase: opts.logBase + suffix,
      accessLog: opts.accessLog,
      buckets: opts.buckets,
    });
    m.quietBefore = quiet;
    m.stdoutFile = relative(REPO, m.stdoutFile);
    m.stderrFile = relative(REPO, m.stderrFile);
    if (!best || m.otherCpuS < best.otherCpuS) {
      if (best) discarded.push(best.wallS);
      best = m;
    } else discarded.push(m.wallS);
    if (!m.ok || !isNoisy(m) || !opts.prepareRepeat || attempts > RETRY_NOISY) break;
    if (!(await opts.prepareRepeat())) break;
    log(`  disturbed: ${m.otherCpuS} s of other CPU in ${m.wallS.toFixed(1)} s; repeating`);
  }
  best.attempts = attempts;
  if (discarded.length > 0) best.discardedWallS = discarded;
  return best;
}

/** Median of several sequential ListBuckets calls, in ms: checks the proxy and shows what it adds. */
async function roundTripMs(endpoint: string, server: ServerInfo): Promise<number> {
  const c = makeClient(endpoint, server.region, server.credentials, 1);
  try {
    const times: number[] = [];
    for (let i = 0; i < 12; i++) {
      const t = performance.now();
      await c.send(new ListBucketsCommand({}));
      if (i >= 2) times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    return round(times[Math.floor(times.length / 2)]!, 1);
  } finally {
    c.destroy();
  }
}

function otherClusters(): string[] {
  const ours = join(SERVER_DIR, "ceph.conf");
  const others = new Set<string>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let cl = "";
    try {
      cl = readFileSync(`/proc/${entry}/cmdline`, "utf8").replace(/\0/g, " ");
    } catch {
      continue;
    }
    const m = /^(\S*radosgw) .*-c (\S+)/.exec(cl);
    if (m && m[2] !== ours) others.add(m[2]!);
  }
  return [...others];
}

// ------------------------------------------------------------------ the benchmark

interface Snapshot {
  [key: string]: string;
}

async function snapshot(c: S3Client, bucket: string): Promise<Snapshot> {
  const out: Snapshot = {};
  for (const o of await listAll(c, bucket)) out[o.key] = `${o.lastModified}|${o.etag}|${o.size}`;
  return out;
}

function rewrittenBetween(before: Snapshot, after: Snapshot): number {
  let n = 0;
  for (const [key, v] of Object.entries(after)) if (before[key] !== v) n++;
  return n;
}

async function main(): Promise<void> {
  const t0 = performance.now();
  process.chdir(REPO); // scripts/seed.js finds the server's env.json from the working directory
  acquireLock();
  const runId = `${RUN_PREFIX}${Date.now().toString(36)}`;
  for (const old of existsSync(TMP_ROOT) ? readdirSync(TMP_ROOT) : [])
    if (old.startsWith(RUN_PREFIX)) rmSync(join(TMP_ROOT, old), { recursive: true, force: true });
  tmpDir = join(TMP_ROOT, runId);
  mkdirSync(tmpDir, { recursive: true });
  log(`run ${runId}: ${N} objects${QUICK ? " (quick)" : ""}; logs in ${relative(REPO, tmpDir)}`);

  if (!existsSync(CLI)) throw new Error(`${CLI} is missing; run npm run build`);
  // Snapshot the compiled code: dist/ is shared with whoever else builds in this tree during the run.
  // (Bare imports still resolve to the repo's node_modules, which is above the snapshot.)
  const distDir = join(tmpDir, "dist");
  for (const part of ["src", "bench", "scripts"])
    cpSync(join(REPO, "dist", part), join(distDir, part), { recursive: true });
  const start = await runQuiet("bash", [join(REPO, "scripts", "s3-server.sh"), "start", SERVER_DIR]);
  if (start.code !== 0) throw new Error(`scripts/s3-server.sh start failed: ${start.stderr.slice(-800)}`);
  const server = loadServer();
  const probe = new ServerProbe(SERVER_DIR);
  const accessLog = new RgwAccessLog(join(SERVER_DIR, "log", "client.rgw.bucketsync.log"));
  log(`server ${server.endpoint} (mon ${probe.pids.mon}, osd ${probe.pids.osd}, radosgw ${probe.pids.rgw})`);

  const peers = await ensurePeers();
  const own = await ownVersions();
  log(
    `peers: ${peers.aws.version} [${peers.aws.path}]; ${peers.rclone.version}; ${peers.s3cmd.version}; ${peers.curl.version}`,
  );

  client = makeClient(server.endpoint, server.region, server.credentials);
  for (const stale of (await listBucketNames(client)).filter((b) => b.startsWith(RUN_PREFIX))) {
    log(`removing s3://${stale}, left by an earlier run that was killed`);
    await deleteBucket(client, stale);
  }

  const proxy = await startProxy(server, distDir);
  const endpoints: Endpoint[] = [
    { network: "direct", url: server.endpoint, port: server.port },
    { network: "proxy", url: `http://127.0.0.1:${proxy.port}`, port: proxy.port },
  ].filter((e) => NETWORKS.includes(e.network as Network));
  const rttDirect = await roundTripMs(server.endpoint, server);
  const rttProxy = await roundTripMs(`http://127.0.0.1:${proxy.port}`, server);
  log(
    `latency proxy on 127.0.0.1:${proxy.port} (pid ${proxy.pid}); ListBuckets takes ${rttDirect} ms direct, ${rttProxy} ms through the proxy`,
  );

  // The source: N objects of 1 KiB, seeded by the repo's own seeder.
  const src = `${runId}-src`;
  created.add(src);
  const seedStart = performance.now();
  const seeded = await runQuiet(
    process.execPath,
    [join(distDir, "scripts", "seed.js"), src, String(N), "1k"],
    { ...baseChildEnv(server), BUCKETSYNC_S3_ENV_FILE: join(SERVER_DIR, "env.json") },
    TIMEOUT_MS,
  );
  const seedSeconds = (performance.now() - seedStart) / 1000;
  if (seeded.code !== 0) throw new Error(`seeding failed: ${seeded.stderr.slice(-800)}`);
  const srcCount = await countObjects(client, src);
  if (srcCount !== N) throw new Error(`the source holds ${srcCount} objects after seeding, expected ${N}`);
  log(`seeded s3://${src} with ${N} objects in ${seedSeconds.toFixed(1)} s`);

  const tools = SKIP_SYNC ? [] : TOOLS.filter((t) => !TOOL_FILTER || TOOL_FILTER.includes(t.id));
  const runs: RunRecord[] = [];
  for (const endpoint of endpoints) {
    for (const tool of tools) {
      const ctx: ToolContext = { server, distDir, endpoint, tmpDir, peers };
      const dst = `${runId}-${tool.id}-${endpoint.network}`;
      created.add(dst);
      await createBucket(client, dst);
      const measure = async (phase: string, prepareRepeat?: () => Promise<boolean>) => {
        log(`${tool.label}, ${endpoint.network}, ${phase}`);
        return measureQuietly(tool.sync({ bucket: src }, { bucket: dst }, ctx), {
          probe,
          proxyPid: endpoint.network === "proxy" ? proxy.pid : undefined,
          logBase: join(tmpDir, `${tool.id}-${endpoint.network}-${phase}`),
          accessLog,
          buckets: [src, dst],
          prepareRepeat,
        });
      };
      const notesFor = (m: Awaited<ReturnType<typeof measure>>) =>
        m.ok
          ? []
          : [
              `${m.timedOut ? "timed out" : `exit ${m.exitCode}`}: ${m.stderrTail.trim().split("\n").slice(-3).join(" / ").slice(0, 300)}`,
            ];

      // A disturbed full copy is repeated into an empty bucket again.
      const full = await measure("full", async () => {
        await deleteBucket(client!, dst);
        await createBucket(client!, dst);
        return true;
      });
      const afterFull = await countObjects(client, dst);
      runs.push({
        tool: tool.id,
        toolLabel: tool.label,
        settings: tool.settings,
        network: endpoint.network as Network,
        phase: "full",
        measurement: full,
        expectedObjects: N,
        objectsAfter: afterFull,
        rewritten: null,
        notes: notesFor(full),
      });
      log(
        `  ${full.wallS.toFixed(2)} s, client CPU ${full.clientCpuS} s, server CPU ${full.serverCpuS} s, ${full.serverRequests} requests, ${afterFull}/${N} objects${full.ok ? "" : " FAILED"}`,
      );

      const before = await snapshot(client, dst);
      // A disturbed no-op is repeated only if it changed nothing (rclone's first re-sync does).
      const noop = await measure("noop", async () => rewrittenBetween(before, await snapshot(client!, dst)) === 0);
      const after = await snapshot(client, dst);
      const rewritten = rewrittenBetween(before, after);
      const noopRecord: RunRecord = {
        tool: tool.id,
        toolLabel: tool.label,
        settings: tool.settings,
        network: endpoint.network as Network,
        phase: "noop",
        measurement: noop,
        expectedObjects: N,
        objectsAfter: Object.keys(after).length,
        rewritten,
        notes: notesFor(noop),
      };
      runs.push(noopRecord);
      log(
        `  no-op: ${noop.wallS.toFixed(2)} s, client CPU ${noop.clientCpuS} s, ${noop.serverRequests} requests, ${rewritten} objects rewritten`,
      );

      if (rewritten > 0 && noop.ok) {
        // Something was rewritten although nothing changed: does a second re-sync settle?
        const second = await measure("noop2");
        const again = rewrittenBetween(after, await snapshot(client, dst));
        noopRecord.secondNoop = { measurement: second, rewritten: again };
        noopRecord.notes.push(
          `the no-op re-sync rewrote ${rewritten} of ${N} objects (${noop.serverRequests} server requests); a second re-sync then took ${second.wallS.toFixed(2)} s, ${second.serverRequests} requests, and rewrote ${again}`,
        );
        log(`  second no-op: ${second.wallS.toFixed(2)} s, ${second.serverRequests} requests, ${again} rewritten`);
      }
      await deleteBucket(client, dst);
      created.delete(dst);
    }
  }

  // What both the listing and the transfer parts run with.
  const shared = {
    server,
    probe,
    client,
    endpoints,
    proxyPid: proxy.pid,
    peers,
    tmpDir,
    distDir,
    toolFilter: TOOL_FILTER,
    created,
    accessLog,
    measure: measureQuietly,
  };
  const listing: ListingResult | null = SKIP_LISTING
    ? null
    : await runListingBench({ ...shared, keys: LIST_KEYS, bucket: LIST_BUCKET });

  await deleteBucket(client, src);
  created.delete(src);

  const transfers = SKIP_TRANSFERS ? null : await runTransferBench({ ...shared, runId });

  const notes: string[] = [];
  notes.push(`ListBuckets round trip: ${rttDirect} ms direct, ${rttProxy} ms through the proxy (median of 10).`);
  const others = otherClusters();
  if (others.length > 0)
    notes.push(
      `Another S3 server (${others.length} other radosgw cluster${others.length > 1 ? "s" : ""}) was running on this machine during the run; see "Other CPU".`,
    );
  const all = [
    ...runs.map((r) => ({ name: `${r.toolLabel} ${r.phase} ${r.network}`, m: r.measurement })),
    ...(listing?.runs ?? []).map((r) => ({ name: `${r.toolLabel} ${r.network}`, m: r.measurement })),
    ...(transfers?.runs ?? []).map((r) => ({
      name: `${r.toolLabel} ${r.kind} ${r.phase === "noop" ? "re-" : ""}${r.direction} ${r.network}`,
      m: r.measurement,
    })),
  ];
  const noisy = all.filter(({ m }) => isNoisy(m));
  if (noisy.length > 0)
    notes.push(
      `${noisy.length} of ${all.length} runs were disturbed by other work on the machine (other CPU above a quarter of a core on average): ${noisy.map((r) => r.name).join("; ")}.`,
    );
  const unquiet = all.filter(({ m }) => m.quietBefore && !m.quietBefore.quiet);
  if (unquiet.length > 0)
    notes.push(`${unquiet.length} runs started without an idle machine after waiting ${QUIET_WAIT_MS / 1000} s.`);
  const repeated = all.filter(({ m }) => (m.attempts ?? 1) > 1);
  if (repeated.length > 0)
    notes.push(
      `Repeated because the first attempt was disturbed (the less disturbed attempt is shown): ${repeated.map(({ name, m }) => `${name} (discarded ${m.discardedWallS?.map((w) => w.toFixed(2)).join(", ")} s)`).join("; ")}.`,
    );
  const cpus = os.cpus();
  const result: BenchResult = {
    meta: {
      date: new Date().toISOString(),
      objects: N,
      objectSize: "1 KiB",
      quick: QUICK,
      machine: {
        cpus: cpus.length,
        cpuModel: cpus[0]?.model.trim() ?? "unknown",
        memGiB: Math.round(os.totalmem() / 1024 ** 3),
        kernel: os.release(),
      },
      server: "Ceph radosgw 16 (single node, memstore OSD, beast frontend, 127.0.0.1)",
      proxy: {
        oneWayDelayMs: ONE_WAY_DELAY_MS,
        roundTripMs: 2 * ONE_WAY_DELAY_MS,
        connectDelayMs: 2 * ONE_WAY_DELAY_MS,
      },
      versions: {
        ...own,
        aws: peers.aws.version,
        rclone: peers.rclone.version,
        s3cmd: peers.s3cmd.version,
        curl: peers.curl.version,
      },
      seedSeconds: round(seedSeconds, 1),
      totalSeconds: round((performance.now() - t0) / 1000, 0),
      timeoutSeconds: TIMEOUT_MS / 1000,
      notes,
    },
    runs,
    listing,
    transfers,
  };
  // Only a complete run replaces the published results; quick and filtered runs stay with their logs.
  const complete =
    !QUICK &&
    !TOOL_FILTER &&
    NETWORKS.includes("direct") &&
    NETWORKS.includes("proxy") &&
    !SKIP_LISTING &&
    !SKIP_TRANSFERS &&
    !SKIP_SYNC;
  const outDir = process.env.BENCH_RESULTS_DIR ?? (complete ? RESULTS_DIR : join(tmpDir, "results"));
  const files = writeReports(result, outDir);
  log(
    `wrote ${Object.values(files)
      .map((f) => relative(REPO, f))
      .join(", ")} in ${(result.meta.totalSeconds / 60).toFixed(1)} min`,
  );
  process.stdout.write("\n" + markdown(result));
}

for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping children and cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

try {
  await main();
} catch (err) {
  log(`failed: ${(err as Error).stack ?? err}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
