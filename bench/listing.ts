/**
 * Listing benchmark: how fast each client walks a 100,000-key bucket, direct and through the
 * 20 ms proxy. The bucket (1-byte objects under 100 top-level prefixes) is seeded once and reused
 * by later runs while the server keeps running (its data lives in RAM).
 *
 * bucketsync is timed as `bucketsync check BUCKET EMPTY-BUCKET --quiet`: it lists both sides and
 * compares, printing only its summary line. (`--json` would print one line per key, 100,000 lines,
 * which measures printing rather than listing.)
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import {
  REPO,
  baseChildEnv,
  bucketExists,
  countObjects,
  createBucket,
  deleteBucket,
  log,
  type ServerInfo,
} from "./common.js";
import { round, type CommandSpec, type Measurement, type RgwAccessLog, type ServerProbe } from "./measure.js";
import type { ListingResult, ListingRun, Network } from "./report.js";
import { RCLONE_REMOTE, rcloneConfig, rcloneEnv, type Endpoint, type Peers, type ToolContext } from "./tools.js";

export interface ListingOptions {
  server: ServerInfo;
  probe: ServerProbe;
  client: S3Client;
  endpoints: Endpoint[];
  proxyPid?: number;
  peers: Peers;
  tmpDir: string;
  distDir: string;
  /** Only these tool ids (BENCH_TOOLS). */
  toolFilter?: string[];
  keys: number;
  bucket: string;
  /** Buckets this run creates and must delete. */
  created: Set<string>;
  accessLog: RgwAccessLog;
  /** Runs one measured command (waiting for an idle machine first). */
  measure: (
    spec: CommandSpec,
    opts: {
      probe: ServerProbe;
      proxyPid?: number;
      logBase: string;
      accessLog: RgwAccessLog;
      buckets: string[];
      prepareRepeat?: () => Promise<boolean>;
    },
  ) => Promise<Measurement>;
}

const PREFIXES = 100;
const SEED_CONCURRENCY = 64;
/** Runs per tool and network (BENCH_LIST_REPEATS); the median is reported. */
const REPEATS = Math.max(1, Number(process.env.BENCH_LIST_REPEATS ?? 3));

/** Key i: 100 top-level prefixes, 10 folders under each. */
function keyFor(i: number): string {
  return `p${String(i % PREFIXES).padStart(2, "0")}/d${Math.floor(i / PREFIXES) % 10}/obj-${String(i).padStart(6, "0")}`;
}

async function seed(client: S3Client, bucket: string, keys: number): Promise<number> {
  await createBucket(client, bucket);
  const started = Date.now();
  const body = Buffer.from("x");
  let next = 0;
  let done = 0;
  const progress = setInterval(
    () =>
      log(
        `  seeded ${done.toLocaleString("en-US")} of ${keys.toLocaleString("en-US")} (${Math.round(done / ((Date.now() - started) / 1000))} PUTs/s)`,
      ),
    30_000,
  );
  try {
    await Promise.all(
      Array.from({ length: SEED_CONCURRENCY }, async () => {
        while (next < keys) {
          const i = next++;
          await client.send(new PutObjectCommand({ Bucket: bucket, Key: keyFor(i), Body: body }));
          done++;
        }
      }),
    );
  } finally {
    clearInterval(progress);
  }
  return (Date.now() - started) / 1000;
}

interface ListingTool {
  id: string;
  label: string;
  command(bucket: string, empty: string, ctx: ToolContext): CommandSpec;
  /** How many keys the run reported, from its output files. */
  keysListed(stdout: string): number;
}

const LISTING_TOOLS: ListingTool[] = [
  {
    id: "bucketsync",
    label: "bucketsync check",
    command: (bucket, empty, ctx) => ({
      label: "bucketsync check",
      cmd: process.execPath,
      args: [
        join(ctx.distDir, "src", "cli", "bin.js"),
        "check",
        `s3://${bucket}`,
        `s3://${empty}`,
        "--quiet",
        "--endpoint-url",
        ctx.endpoint.url,
      ],
      env: baseChildEnv(ctx.server),
      okExitCodes: [1], // 1 = the buckets differ, as they must
    }),
    keysListed: (out) => Number(/in (\d+) objects compared/.exec(out)?.[1] ?? NaN),
  },
  {
    id: "aws-cli",
    label: "aws s3 ls --recursive",
    command: (bucket, _empty, ctx) => ({
      label: "aws s3 ls --recursive",
      cmd: ctx.peers.aws.path,
      args: ["s3", "ls", "--recursive", `s3://${bucket}`, "--endpoint-url", ctx.endpoint.url],
      env: { ...baseChildEnv(ctx.server), AWS_CONFIG_FILE: "/dev/null", AWS_SHARED_CREDENTIALS_FILE: "/dev/null" },
    }),
    keysListed: (out) => out.split("\n").filter((l) => l.trim() !== "").length,
  },
  {
    id: "rclone-64",
    label: "rclone lsf -R --fast-list",
    command: (bucket, _empty, ctx) => ({
      label: "rclone lsf -R --fast-list",
      cmd: ctx.peers.rclone.path,
      args: ["--config", rcloneConfig(ctx), "lsf", "-R", "--files-only", "--fast-list", `${RCLONE_REMOTE}:${bucket}`],
      env: rcloneEnv(ctx),
    }),
    keysListed: (out) => out.split("\n").filter((l) => l.trim() !== "").length,
  },
  {
    id: "bare-sdk",
    label: "bare SDK loop (list)",
    command: (bucket, _empty, ctx) => ({
      label: "bare SDK loop (list)",
      cmd: process.execPath,
      args: [join(ctx.distDir, "bench", "bare-sdk.js"), "list", bucket, "--endpoint-url", ctx.endpoint.url],
      env: baseChildEnv(ctx.server),
    }),
    keysListed: (out) => Number(JSON.parse(out.trim().split("\n").at(-1) || "{}").listed ?? NaN),
  },
];

export async function runListingBench(o: ListingOptions): Promise<ListingResult> {
  const { client, bucket, keys } = o;
  const empty = `${bucket}-empty`;
  let reused = false;
  let seedSeconds: number | null = null;
  if (await bucketExists(client, bucket)) {
    const have = await countObjects(client, bucket);
    if (have === keys) {
      reused = true;
      log(`listing: reusing s3://${bucket} (${keys.toLocaleString("en-US")} keys)`);
    } else {
      log(`listing: s3://${bucket} holds ${have} keys, not ${keys}; recreating it`);
      await deleteBucket(client, bucket);
    }
  }
  if (!reused) {
    log(
      `listing: seeding s3://${bucket} with ${keys.toLocaleString("en-US")} 1-byte objects at ${SEED_CONCURRENCY} in flight`,
    );
    seedSeconds = await seed(client, bucket, keys);
    const have = await countObjects(client, bucket);
    log(
      `listing: seeded in ${seedSeconds.toFixed(0)} s (${Math.round(keys / seedSeconds)} PUTs/s); the bucket lists ${have} keys`,
    );
    if (have !== keys) throw new Error(`seeding s3://${bucket} left ${have} keys, expected ${keys}`);
  }
  o.created.add(empty);
  await createBucket(client, empty);

  // A listing takes a couple of seconds, so one run is at the mercy of whatever the server is
  // doing; each tool runs REPEATS times, in rounds over all tools, and the median run is reported.
  const tools = LISTING_TOOLS.filter((t) => !o.toolFilter || o.toolFilter.includes(t.id));
  const samples = new Map<
    string,
    { tool: (typeof tools)[number]; endpoint: Endpoint; runs: { m: Measurement; listed: number }[] }
  >();
  for (let round = 1; round <= REPEATS; round++) {
    for (const endpoint of o.endpoints) {
      for (const tool of tools) {
        const ctx: ToolContext = { server: o.server, distDir: o.distDir, endpoint, tmpDir: o.tmpDir, peers: o.peers };
        const spec = tool.command(bucket, empty, ctx);
        log(`listing: ${tool.label}, ${endpoint.network}, run ${round} of ${REPEATS}`);
        const m = await o.measure(spec, {
          probe: o.probe,
          proxyPid: endpoint.network === "proxy" ? o.proxyPid : undefined,
          logBase: join(o.tmpDir, `listing-${tool.id}-${endpoint.network}-${round}`),
          accessLog: o.accessLog,
          buckets: [bucket, empty],
          prepareRepeat: async () => true, // listing changes nothing: a disturbed run can simply be repeated
        });
        let listed = NaN;
        try {
          listed = tool.keysListed(readFileSync(join(REPO, m.stdoutFile), "utf8"));
        } catch {
          /* reported as a mismatch */
        }
        log(
          `  ${m.wallS.toFixed(2)} s, ${Math.round(keys / m.wallS)} keys/s, listed ${listed}, client CPU ${m.clientCpuS} s${m.ok ? "" : ", FAILED"}`,
        );
        const id = `${tool.id} ${endpoint.network}`;
        if (!samples.has(id)) samples.set(id, { tool, endpoint, runs: [] });
        samples.get(id)!.runs.push({ m, listed });
      }
    }
  }
  const runs: ListingRun[] = [];
  for (const { tool, endpoint, runs: all } of samples.values()) {
    // A failed or short run is the one shown, so it is never hidden behind a good median.
    const bad = all.find((r) => !r.m.ok || r.listed !== keys);
    const sorted = [...all].sort((a, b) => a.m.wallS - b.m.wallS);
    const { m, listed } = bad ?? sorted[Math.floor(sorted.length / 2)]!;
    const notes: string[] = [];
    if (!m.ok)
      notes.push(
        `exit ${m.exitCode}${m.timedOut ? " (timed out)" : ""}: ${m.stderrTail.trim().split("\n").slice(-2).join(" / ")}`,
      );
    if (all.length > 1)
      notes.push(
        `median of ${all.length} runs (${sorted[0]!.m.wallS.toFixed(2)}-${sorted.at(-1)!.m.wallS.toFixed(2)} s)`,
      );
    runs.push({
      tool: tool.id,
      toolLabel: tool.label,
      command: m.command,
      network: endpoint.network as Network,
      measurement: m,
      keys: Number.isNaN(listed) ? 0 : listed,
      keysPerS: round(keys / m.wallS, 0),
      notes,
    });
  }
  return {
    bucket,
    keys,
    prefixes: PREFIXES,
    repeats: REPEATS,
    seed: {
      reused,
      seconds: seedSeconds === null ? null : round(seedSeconds, 1),
      putsPerS: seedSeconds ? round(keys / seedSeconds, 0) : null,
      concurrency: SEED_CONCURRENCY,
    },
    runs,
  };
}
