/**
 * Uploads and downloads (issue 20): many small files to and from a bucket, one large file, and a
 * 100,000-file folder upload for memory. Each tool uploads a local folder into its own empty
 * bucket, runs again with nothing to do, downloads that bucket into an empty folder, and runs
 * again. Only the tools that are fastest at this are run: bucketsync, aws-cli (defaults) and
 * rclone with 64 transfers; then the floor (bench/floor.ts, curl with pre-signed URLs, tool id
 * "floor" in BENCH_TOOLS) shows how much faster than rclone any client could be on this server.
 *
 * Environment (besides run.ts's):
 *   BENCH_FILES=5000           small files of BENCH_FILE_SIZE (4 KiB) in 50 folders (BENCH_QUICK: 500)
 *   BENCH_LARGE_MIB=512        the large file, uploaded and downloaded on the direct network (0: skipped)
 *   BENCH_WALK_FILES=100000    files of the memory row, uploaded by bucketsync only (0: skipped; quick: 10,000)
 *   BENCH_SKIP_TRANSFERS=1     skip this part
 */
import { randomFillSync } from "node:crypto";
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import type { S3Client } from "@aws-sdk/client-s3";
import { countObjects, createBucket, deleteBucket, listAll, log } from "./common.js";
import { FLOOR_ID, FLOOR_LABEL, floorCommand, type FloorRequest } from "./floor.js";
import type { ListingOptions } from "./listing.js";
import type { CommandSpec, Measurement } from "./measure.js";
import type { Network, TransferResult, TransferRun } from "./report.js";
import { TOOLS, type Endpoint, type Side, type ToolContext } from "./tools.js";

const QUICK = process.env.BENCH_QUICK === "1";
const FILES = Number(process.env.BENCH_FILES ?? (QUICK ? 500 : 5000));
const FILE_SIZE = 4096;
const FOLDERS = 50;
const LARGE_MIB = Number(process.env.BENCH_LARGE_MIB ?? (QUICK ? 64 : 512));
const WALK_FILES = Number(process.env.BENCH_WALK_FILES ?? (QUICK ? 10_000 : 100_000));
const WALK_FOLDERS = 10;
/** The peers of this part: the fastest ones at it. */
export const TRANSFER_TOOLS = ["bucketsync", "aws-cli", "rclone-64"];

/** The listing part's settings, less its bucket, plus the run's id (for bucket names). */
export type TransferOptions = Omit<ListingOptions, "keys" | "bucket"> & { runId: string };

/** Files of random bytes: `count` of `size` bytes spread over `folders` folders. */
function writeFiles(dir: string, count: number, size: number, folders: number): void {
  rmSync(dir, { recursive: true, force: true });
  const buf = Buffer.alloc(size);
  for (let f = 0; f < folders; f++) mkdirSync(join(dir, `d${String(f).padStart(2, "0")}`), { recursive: true });
  for (let i = 0; i < count; i++) {
    randomFillSync(buf);
    writeFileSync(join(dir, `d${String(i % folders).padStart(2, "0")}`, `f${String(i).padStart(6, "0")}.bin`), buf);
  }
}

function writeLargeFile(path: string, mib: number): void {
  const chunk = Buffer.alloc(1024 * 1024);
  const fd = openSync(path, "w");
  try {
    for (let i = 0; i < mib; i++) {
      randomFillSync(chunk);
      writeSync(fd, chunk);
    }
  } finally {
    closeSync(fd);
  }
}

/** Every file under `dir` with what a rewrite changes: inode, mtime, size. */
function folderSnapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string, rel: string) => {
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const path = join(d, e.name);
      if (e.isDirectory()) walk(path, `${rel}${e.name}/`);
      else if (e.isFile()) {
        const st = statSync(path, { bigint: true });
        out.set(rel + e.name, `${st.ino}|${st.mtimeNs}|${st.size}`);
      }
    }
  };
  walk(dir, "");
  return out;
}

/** The files under `dir` as keys (relative, `/`-separated) and paths. */
function filesUnder(dir: string): FloorRequest[] {
  return [...folderSnapshot(dir).keys()].sort().map((key) => ({ key, file: join(dir, key) }));
}

/** Responses with status 200 in curl's output (one `%{http_code}` a line). */
function okResponses(stdoutFile: string): number {
  return readFileSync(stdoutFile, "utf8")
    .split("\n")
    .filter((l) => l.trim() === "200").length;
}

function changedBetween(before: Map<string, string>, after: Map<string, string>): number {
  let n = 0;
  for (const [k, v] of after) if (before.get(k) !== v) n++;
  return n;
}

async function bucketSnapshot(client: S3Client, bucket: string): Promise<Map<string, string>> {
  return new Map((await listAll(client, bucket)).map((o) => [o.key, `${o.lastModified}|${o.etag}|${o.size}`]));
}

function freshDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
}

/**
 * An empty download folder, the earlier one (if any) moved aside rather than deleted: on this
 * machine's ext4 without a journal, every new inode is allocated past the inodes deleted in the
 * last minutes (`recently_deleted()` in ext4's inode allocator reads each one's inode table
 * block), so a download right after deleting the previous download's 5,000 files paid 1-2.5 s
 * more system CPU, growing with each repeat (measured: 0.76, 1.64, 2.53 s of sys for the same
 * download into a folder deleted and made again). The folders moved aside are deleted once this
 * part is done (`removeSetAside`).
 */
function freshDownloadDir(dir: string, setAside: string): void {
  moveAside(dir, setAside);
  mkdirSync(dir, { recursive: true });
}

function moveAside(dir: string, setAside: string): void {
  if (!existsSync(dir)) return;
  mkdirSync(setAside, { recursive: true });
  renameSync(dir, join(setAside, `${Date.now()}-${Math.random().toString(36).slice(2)}`));
}

export async function runTransferBench(o: TransferOptions): Promise<TransferResult> {
  const tools = TOOLS.filter(
    (t) => TRANSFER_TOOLS.includes(t.id) && t.local && (!o.toolFilter || o.toolFilter.includes(t.id)),
  );
  const runs: TransferRun[] = [];
  const smallSrc = join(o.tmpDir, "small-src");
  /** Download folders done with, deleted at the end (see freshDownloadDir). */
  const setAside = join(o.tmpDir, "set-aside");
  log(`transfers: writing ${FILES} files of ${FILE_SIZE} bytes in ${FOLDERS} folders`);
  writeFiles(smallSrc, FILES, FILE_SIZE, FOLDERS);

  /** Runs one measured command of `tool` (its id and label name the logs) on `network`. */
  const measureSpec = async (
    tool: { id: string; label: string },
    network: string,
    spec: CommandSpec,
    name: string,
    buckets: string[],
    prepareRepeat?: () => Promise<boolean>,
  ): Promise<Measurement> => {
    log(`${tool.label}, ${network}, ${name}`);
    const m = await o.measure(spec, {
      probe: o.probe,
      proxyPid: network === "proxy" ? o.proxyPid : undefined,
      logBase: join(o.tmpDir, `${tool.id}-${network}-${name}`),
      accessLog: o.accessLog,
      buckets,
      prepareRepeat,
    });
    log(
      `  ${m.wallS.toFixed(2)} s, client CPU ${m.clientCpuS} s, peak RSS ${m.peakRssMiB} MiB, ${m.serverRequests} requests${m.ok ? "" : " FAILED"}`,
    );
    return m;
  };
  const measureOne = (
    tool: (typeof tools)[number],
    ctx: ToolContext,
    name: string,
    src: Side,
    dst: Side,
    buckets: string[],
    prepareRepeat?: () => Promise<boolean>,
  ): Promise<Measurement> =>
    measureSpec(tool, ctx.endpoint.network, tool.sync(src, dst, ctx), name, buckets, prepareRepeat);
  const notesFor = (m: Measurement) =>
    m.ok
      ? []
      : [
          `${m.timedOut ? "timed out" : `exit ${m.exitCode}`}: ${m.stderrTail.trim().split("\n").slice(-3).join(" / ").slice(0, 300)}`,
        ];
  const record = (
    tool: Pick<(typeof tools)[number], "id" | "label" | "settings">,
    network: Network,
    kind: TransferRun["kind"],
    direction: TransferRun["direction"],
    phase: TransferRun["phase"],
    m: Measurement,
    expected: number,
    found: number,
    rewritten: number | null,
  ) =>
    runs.push({
      tool: tool.id,
      toolLabel: tool.label,
      settings: tool.settings,
      network,
      kind,
      direction,
      phase,
      measurement: m,
      expected,
      found,
      rewritten,
      notes: notesFor(m),
    });

  /** Upload `src` into a new bucket, again, download it into an empty folder, again. */
  const roundTrip = async (
    tool: (typeof tools)[number],
    ctx: ToolContext,
    kind: TransferRun["kind"],
    src: string,
    expected: number,
    withNoops: boolean,
    download: boolean,
  ) => {
    const network = ctx.endpoint.network as Network;
    const bucket = `${o.runId}-${kind}-${tool.id}-${network}`;
    o.created.add(bucket);
    await createBucket(o.client, bucket);
    const up = await measureOne(tool, ctx, `${kind}-upload`, { dir: src }, { bucket }, [bucket], async () => {
      await deleteBucket(o.client, bucket);
      await createBucket(o.client, bucket);
      return true;
    });
    record(tool, network, kind, "upload", "full", up, expected, await countObjects(o.client, bucket), null);
    if (withNoops) {
      const before = await bucketSnapshot(o.client, bucket);
      const noop = await measureOne(tool, ctx, `${kind}-reupload`, { dir: src }, { bucket }, [bucket], async () => {
        return changedBetween(before, await bucketSnapshot(o.client, bucket)) === 0;
      });
      const after = await bucketSnapshot(o.client, bucket);
      record(tool, network, kind, "upload", "noop", noop, expected, after.size, changedBetween(before, after));
    }
    if (download) {
      const dir = join(o.tmpDir, `down-${kind}-${tool.id}-${network}`);
      freshDownloadDir(dir, setAside);
      const down = await measureOne(tool, ctx, `${kind}-download`, { bucket }, { dir }, [bucket], async () => {
        freshDownloadDir(dir, setAside);
        return true;
      });
      const got = folderSnapshot(dir);
      record(tool, network, kind, "download", "full", down, expected, got.size, null);
      if (withNoops) {
        const noop = await measureOne(tool, ctx, `${kind}-redownload`, { bucket }, { dir }, [bucket], async () => {
          return changedBetween(got, folderSnapshot(dir)) === 0;
        });
        const after = folderSnapshot(dir);
        record(tool, network, kind, "download", "noop", noop, expected, after.size, changedBetween(got, after));
      }
      // Not deleted yet: the next tool's download would pay for it (see freshDownloadDir).
      moveAside(dir, setAside);
    }
    await deleteBucket(o.client, bucket);
    o.created.delete(bucket);
  };

  /**
   * The floor (bench/floor.ts): curl PUTs the small files into a new bucket and GETs them back,
   * bodies discarded, every URL pre-signed before its clock starts.
   */
  const floorRoundTrip = async (endpoint: Endpoint) => {
    const network = endpoint.network as Network;
    const bucket = `${o.runId}-small-${FLOOR_ID}-${network}`;
    const floorTool = { id: FLOOR_ID, label: FLOOR_LABEL, settings: "64 in flight, bodies to /dev/null" };
    o.created.add(bucket);
    await createBucket(o.client, bucket);
    const run = async (direction: TransferRun["direction"], requests: FloorRequest[]) => {
      const spec = await floorCommand(
        o.server,
        endpoint,
        o.peers.curl.path,
        bucket,
        requests,
        join(o.tmpDir, `floor-${network}-${direction}.curl`),
      );
      const m = await measureSpec(floorTool, network, spec, `small-${direction}`, [bucket]);
      const found = direction === "upload" ? await countObjects(o.client, bucket) : okResponses(m.stdoutFile);
      record(floorTool, network, "small", direction, "full", m, FILES, found, null);
    };
    await run("upload", filesUnder(smallSrc));
    await run(
      "download",
      (await listAll(o.client, bucket)).map((obj) => ({ key: obj.key })),
    );
    await deleteBucket(o.client, bucket);
    o.created.delete(bucket);
  };

  for (const endpoint of o.endpoints) {
    for (const tool of tools) {
      const ctx: ToolContext = { server: o.server, distDir: o.distDir, endpoint, tmpDir: o.tmpDir, peers: o.peers };
      await roundTrip(tool, ctx, "small", smallSrc, FILES, true, true);
    }
    if (!o.toolFilter || o.toolFilter.includes(FLOOR_ID)) await floorRoundTrip(endpoint);
  }
  rmSync(smallSrc, { recursive: true, force: true });

  const direct = o.endpoints.find((e) => e.network === "direct") ?? o.endpoints[0]!;
  if (LARGE_MIB > 0) {
    const largeSrc = join(o.tmpDir, "large-src");
    freshDir(largeSrc);
    log(`transfers: writing one file of ${LARGE_MIB} MiB`);
    writeLargeFile(join(largeSrc, "large.bin"), LARGE_MIB);
    for (const tool of tools) {
      const ctx: ToolContext = {
        server: o.server,
        distDir: o.distDir,
        endpoint: direct,
        tmpDir: o.tmpDir,
        peers: o.peers,
      };
      await roundTrip(tool, ctx, "large", largeSrc, 1, false, true);
    }
    rmSync(largeSrc, { recursive: true, force: true });
  }

  const walker = tools.find((t) => t.id === "bucketsync");
  if (WALK_FILES > 0 && walker) {
    const walkSrc = join(o.tmpDir, "walk-src");
    log(`transfers: writing ${WALK_FILES} files in ${WALK_FOLDERS} folders`);
    writeFiles(walkSrc, WALK_FILES, 16, WALK_FOLDERS);
    const ctx: ToolContext = {
      server: o.server,
      distDir: o.distDir,
      endpoint: direct,
      tmpDir: o.tmpDir,
      peers: o.peers,
    };
    await roundTrip(walker, ctx, "walk", walkSrc, WALK_FILES, false, false);
    rmSync(walkSrc, { recursive: true, force: true });
  }

  rmSync(setAside, { recursive: true, force: true });
  return {
    files: FILES,
    fileSize: FILE_SIZE,
    folders: FOLDERS,
    largeMiB: LARGE_MIB,
    walkFiles: WALK_FILES,
    walkFolders: WALK_FOLDERS,
    runs,
  };
}
