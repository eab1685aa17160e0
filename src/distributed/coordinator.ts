/**
 * The coordinator of a distributed sync: splits the key space into ranges, enqueues one BullMQ job
 * per range (deterministic ids, so a re-run resumes), waits for the workers while reporting
 * aggregated progress, and then, only if every range succeeded, runs the delete phase itself.
 */
import { randomBytes } from "node:crypto";
import { Queue, type Job, type RedisClient } from "bullmq";
import { classifyListingFailure, type ErrorInfo } from "../core/errors.js";
import { parseLocation, refuseOverlap } from "../core/location.js";
import { UsageError, type KeyRange } from "../core/types.js";
import { emptySummary, type SyncSummary } from "../executor/events.js";
import { tooManyDeletes } from "../executor/executor.js";
import { addCounts } from "../core/meter.js";
import { compileFilters } from "../planner/filters.js";
import { ListingError } from "../core/errors.js";
import { StoreOpener } from "../stores/open.js";
import { resolveEndpointUrl } from "../stores/s3/client.js";
import { hasKeySpaceListing } from "../core/capabilities.js";
import { DEFAULT_CONCURRENCY, sync, validateSyncOptions, type SyncOptions, type SyncResult } from "../sync.js";
import { connectQueue, parseRecord, type QueueOptions } from "./queue.js";
import { forEachLimit, sleep } from "../core/async.js";
import {
  DEFAULT_QUEUE_NAME,
  JOB_NAME,
  JOB_VERSION,
  describeRange,
  jobIdOf,
  jobOptionsFrom,
  rangesForShards,
  redisConnection,
  runKeyOf,
  runLockKey,
  runRecordKey,
  type RangeJob,
  type RangeProgress,
  type RangeResult,
  type RunRecord,
} from "./job.js";

export interface DistributedSyncOptions extends SyncOptions, QueueOptions {
  /** Ranges to split the key space into, at most (default 64); fewer when the source's sample has fewer split points. */
  shards?: number;
  /** Attempts per range before it counts as failed (default 3). A worker that dies does not use one up. */
  attempts?: number;
  /** How often the coordinator reads the unfinished ranges' states (default 500 ms, longer for many ranges: ranges/4 ms). */
  pollIntervalMs?: number;
  onProgress?: (progress: DistributedProgress) => void;
}

export interface DistributedProgress {
  runId: string;
  generation: number;
  phase: "ranges" | "deletes";
  ranges: number;
  pending: number;
  running: number;
  done: number;
  failed: number;
  workers: number;
  /** Objects so far: finished ranges plus what running ranges reported. */
  copied: number;
  updated: number;
  skipped: number;
  failedObjects: number;
  bytes: number;
}

export interface FailedRange {
  index: number;
  range: KeyRange;
  reason: string;
}

export interface DistributedSyncResult extends SyncResult {
  runId: string;
  generation: number;
  ranges: number;
  /** Ranges already done before this invocation (a resumed run). */
  resumedRanges: number;
  failedRanges: FailedRange[];
}

export const DEFAULT_SHARDS = 64;
const MAX_SHARDS = 10_000;
const DEFAULT_ATTEMPTS = 3;
const LOCK_TTL_MS = 10_000;
const MAX_SPLIT_POINTS_PROBE = MAX_SHARDS;

/**
 * Runs a sync over BullMQ workers (`runWorker` / `bucketsync worker`). Takes the options of
 * `sync()` plus the queue; returns the same result shape, whose summary adds up every range's.
 * Deletes run here, after every range succeeded, under the same rules as `sync()`.
 */
export async function distributedSync(options: DistributedSyncOptions): Promise<DistributedSyncResult> {
  const started = Date.now();
  validateSyncOptions(options);
  compileFilters(options.filters ?? []);
  if (typeof options.source !== "string" || typeof options.target !== "string") {
    throw new UsageError(
      "a distributed sync needs s3:// URLs for source and target (workers open the stores themselves)",
    );
  }
  const src = parseLocation(options.source);
  const dst = parseLocation(options.target);
  if (src.kind !== "s3" || dst.kind !== "s3") {
    throw new UsageError(
      "a distributed sync needs s3:// locations on both sides: workers on other machines cannot see a local folder",
    );
  }
  const sideConnection = (side?: SyncOptions["connection"]) => ({
    maxSockets: options.concurrency ?? DEFAULT_CONCURRENCY,
    ...options.connection,
    ...side,
  });
  // Endpoints as the stores will use them (flags, then AWS_ENDPOINT_URL and profiles).
  const endpoints = [
    await resolveEndpointUrl(sideConnection(options.sourceConnection)),
    await resolveEndpointUrl(sideConnection(options.targetConnection)),
  ];
  await refuseOverlap(src, dst, endpoints[0], endpoints[1]);
  const shards = options.shards ?? DEFAULT_SHARDS;
  if (!Number.isInteger(shards) || shards < 1 || shards > MAX_SHARDS)
    throw new UsageError(`invalid --shards '${shards}'; expected a whole number from 1 to ${MAX_SHARDS}`);
  const attempts = options.attempts ?? DEFAULT_ATTEMPTS;
  const queueName = options.queueName ?? DEFAULT_QUEUE_NAME;
  const jobOptions = jobOptionsFrom(options);
  // Endpoints name the providers (not secrets): the same bucket names on another provider are another run.
  const runKey = runKeyOf(src.url, dst.url, jobOptions, endpoints);
  const onEvent = options.onEvent ?? (() => undefined);
  const summary = emptySummary(options.dryRun ?? false);
  const result = (
    extra: Partial<DistributedSyncResult> & Pick<DistributedSyncResult, "changedNothing">,
  ): DistributedSyncResult => ({
    runId: runKey,
    generation: 0,
    ranges: 0,
    resumedRanges: 0,
    failedRanges: [],
    ...extra,
    summary: { ...summary, durationMs: Date.now() - started },
  });

  const queue = new Queue(queueName, { connection: redisConnection(options.queue) });
  queue.on("error", () => undefined); // connection errors surface through the calls below
  let lock: RunLock | undefined;
  try {
    let client: RedisClient;
    try {
      client = await connectQueue(queue, options.queue);
    } catch (err) {
      return result({
        fatal: { code: "RedisUnreachable", class: "fatal", message: (err as Error).message, context: "queue" },
        changedNothing: true,
      });
    }
    lock = await RunLock.acquire(client, runLockKey(queueName, runKey), (message) =>
      onEvent({ type: "warning", message }),
    );

    // The run's record: resume its generation unless it finished; a new generation fixes the ranges.
    const recordKey = runRecordKey(queueName, runKey);
    let record = parseRecord(await client.get(recordKey));
    if (!record || record.state === "done") {
      const planned = await planRanges(options, shards);
      if ("fatal" in planned) return result({ fatal: planned.fatal, changedNothing: true });
      if (record) await removeJobs(queue, record);
      record = {
        v: JOB_VERSION,
        runKey,
        generation: (record?.generation ?? 0) + 1,
        source: src.url,
        target: dst.url,
        ranges: planned.ranges,
        state: "running",
        createdAt: Date.now(),
      };
      await client.set(recordKey, JSON.stringify(record));
    } else if (record.state === "failed") {
      record.state = "running";
      await client.set(recordKey, JSON.stringify(record));
    }
    const run = record;
    const save = (patch: Partial<RunRecord>) => client.set(recordKey, JSON.stringify(Object.assign(run, patch)));

    // Enqueue: a range whose job exists is not added again; a failed one is retried; a finished one is kept.
    const ids = run.ranges.map((range) => jobIdOf(runKey, run.generation, range));
    let resumedRanges = 0;
    const toAdd: {
      name: string;
      data: RangeJob;
      opts: {
        jobId: string;
        attempts: number;
        backoff: { type: "exponential"; delay: number };
        removeOnComplete: false;
        removeOnFail: false;
      };
    }[] = [];
    for (const [index, range] of run.ranges.entries()) {
      const jobId = ids[index]!;
      const state = await queue.getJobState(jobId);
      if (state === "completed") resumedRanges++;
      else if (state === "failed")
        await (await queue.getJob(jobId))?.retry("failed", { resetAttemptsMade: true, resetAttemptsStarted: true });
      else if (state === "unknown") {
        const data: RangeJob = {
          v: JOB_VERSION,
          runKey,
          generation: run.generation,
          index,
          total: run.ranges.length,
          range,
          source: src.url,
          target: dst.url,
          options: jobOptions,
        };
        toAdd.push({
          name: JOB_NAME,
          data,
          opts: {
            jobId,
            attempts,
            backoff: { type: "exponential", delay: 1000 },
            removeOnComplete: false,
            removeOnFail: false,
          },
        });
      }
    }
    for (let i = 0; i < toAdd.length; i += 500) await queue.addBulk(toAdd.slice(i, i + 500));
    if (resumedRanges > 0)
      onEvent({
        type: "warning",
        message: `resuming run ${runKey}: ${resumedRanges} of ${run.ranges.length} range(s) were already done and are not redone`,
      });

    // Wait for every range, reporting progress.
    const finished = await waitForRanges(queue, run, ids, options, lock);
    if (finished === "lock lost") {
      return result({
        generation: run.generation,
        ranges: run.ranges.length,
        resumedRanges,
        fatal: { code: "LockLost", class: "fatal", message: lock.lost!, context: "run" },
        changedNothing: false,
      });
    }
    if (finished === "interrupted") {
      return result({
        generation: run.generation,
        ranges: run.ranges.length,
        resumedRanges,
        fatal: {
          code: "Interrupted",
          class: "fatal",
          message: "interrupted; the ranges go on on the workers; run the same command again to resume",
          context: "run",
        },
        changedNothing: false,
      });
    }
    let changed = false;
    let plannedDeletes = 0;
    let sourceObjects = 0;
    const rangesWithDeletes: KeyRange[] = [];
    for (const [index, r] of finished.results.entries()) {
      if (!r) continue;
      add(summary, r.summary);
      changed ||= !r.changedNothing;
      plannedDeletes += r.plannedDeletes;
      sourceObjects += r.sourceObjects;
      if (r.plannedDeletes > 0) rangesWithDeletes.push(run.ranges[index]!);
    }
    const failedRanges: FailedRange[] = [];
    for (const f of finished.failed) {
      failedRanges.push({ index: f.index, range: run.ranges[f.index]!, reason: f.reason });
      summary.copied += f.progress?.copied ?? 0;
      summary.updated += f.progress?.updated ?? 0;
      summary.skipped += f.progress?.skipped ?? 0;
      summary.bytes += f.progress?.bytes ?? 0;
      summary.failed += Math.max(1, f.progress?.failed ?? 0);
      if ((f.progress?.copied ?? 0) + (f.progress?.updated ?? 0) > 0 && !options.dryRun) changed = true;
      onEvent({
        type: "error",
        action: "range",
        code: "RangeFailed",
        message: `range ${f.index + 1}/${run.ranges.length} (${describeRange(run.ranges[f.index]!)}) failed: ${f.reason}`,
      });
    }
    const base = { generation: run.generation, ranges: run.ranges.length, resumedRanges, failedRanges };
    if (failedRanges.length > 0) {
      if (options.delete)
        summary.deletesWithheld = `deletes not run: ${failedRanges.length} of ${run.ranges.length} range(s) failed`;
      if (summary.deletesWithheld) onEvent({ type: "warning", message: summary.deletesWithheld });
      await save({ state: "failed", note: `${failedRanges.length} range(s) failed` });
      return result({ ...base, changedNothing: !changed });
    }

    // Delete phase: every range succeeded. Re-plan, from fresh listings, only the ranges whose
    // worker found deletes, and run them here through the executor (spool, --max-delete, batches).
    let deletePass: SyncResult | undefined;
    // --max-delete as a share is of the target's objects in every range (the delete pass sees only its own).
    const share =
      typeof options.maxDelete === "string"
        ? tooManyDeletes(plannedDeletes, summary.skipped + summary.updated + plannedDeletes, options.maxDelete)
        : undefined;
    if (options.delete && plannedDeletes > 0 && share) {
      summary.deletesWithheld = `${plannedDeletes} delete(s) not run: ${share}`;
      onEvent({ type: "warning", message: summary.deletesWithheld });
    } else if (options.delete && plannedDeletes > 0) {
      options.onProgress?.({ ...finished.progress, phase: "deletes" });
      deletePass = await sync({
        ...options,
        source: src.url,
        target: dst.url,
        ranges: rangesWithDeletes,
        only: "deletes",
        maxDelete: typeof options.maxDelete === "string" ? undefined : options.maxDelete,
        // The empty-source guard must see the whole source, not the ranges re-planned here.
        force: options.force || sourceObjects > 0,
      });
      summary.deleted += deletePass.summary.deleted;
      if (deletePass.summary.requests) addCounts(summary.requests, deletePass.summary.requests);
      if (deletePass.summary.cost)
        summary.cost = {
          usd: Math.round((summary.cost.usd + deletePass.summary.cost.usd) * 1e6) / 1e6,
          priceTable: deletePass.summary.cost.priceTable,
        };
      summary.failed += deletePass.summary.failed;
      if (deletePass.summary.deletesWithheld) summary.deletesWithheld = deletePass.summary.deletesWithheld;
      changed ||= !deletePass.changedNothing;
    }
    const clean = !deletePass?.fatal && !deletePass?.refused && !summary.deletesWithheld && summary.failed === 0;
    await save(
      clean
        ? { state: "done", finishedAt: Date.now(), summary: { ...summary, durationMs: Date.now() - started } }
        : { state: "running", note: deletePass?.refused ?? summary.deletesWithheld ?? "deletes incomplete" },
    );
    return result({ ...base, fatal: deletePass?.fatal, refused: deletePass?.refused, changedNothing: !changed });
  } finally {
    await lock?.release().catch(() => undefined);
    await queue.close().catch(() => undefined);
  }
}

/** Checks both sides answer (so a typo fails before any job exists) and splits the source's key space. */
async function planRanges(
  options: DistributedSyncOptions,
  shards: number,
): Promise<{ ranges: KeyRange[] } | { fatal: ErrorInfo & { context: string } }> {
  const opener = new StoreOpener();
  const connection = (side?: SyncOptions["connection"]) => ({ maxSockets: 16, ...options.connection, ...side });
  try {
    const source = await opener.open(options.source as string, { connection: connection(options.sourceConnection) });
    const target = await opener.open(options.target as string, { connection: connection(options.targetConnection) });
    let points: string[] = [];
    try {
      if (shards > 1 && hasKeySpaceListing(source))
        points = await source.splitPoints(Math.min(shards - 1, MAX_SPLIT_POINTS_PROBE));
      else await first(source.list());
    } catch (err) {
      throw new ListingError("source", err);
    }
    try {
      await first(target.list());
    } catch (err) {
      throw new ListingError("target", err);
    }
    return { ranges: rangesForShards(points, shards) };
  } catch (err) {
    if (err instanceof UsageError) throw err;
    return { fatal: classifyListingFailure(err) };
  } finally {
    await opener.close();
  }
}

interface Finished {
  results: (RangeResult | undefined)[];
  failed: { index: number; reason: string; progress?: RangeProgress }[];
  progress: DistributedProgress;
}

/** Polls the ranges' states until each one is completed or failed (or the signal aborts). */
async function waitForRanges(
  queue: Queue,
  run: RunRecord,
  ids: string[],
  options: DistributedSyncOptions,
  lock: RunLock,
): Promise<Finished | "interrupted" | "lock lost"> {
  const results: (RangeResult | undefined)[] = new Array(ids.length).fill(undefined);
  const failed = new Map<number, { index: number; reason: string; progress?: RangeProgress }>();
  // Each poll costs one small Redis call per unfinished range: keep it near 4,000 calls/s at most.
  const poll = options.pollIntervalMs ?? Math.max(500, Math.ceil(ids.length / 4));
  let lastReport = "";
  for (;;) {
    if (options.signal?.aborted) return "interrupted";
    if (lock.lost) return "lock lost";
    let running = 0;
    let pending = 0;
    const live: RangeProgress[] = [];
    await forEachLimit(ids, 64, async (id, index) => {
      if (results[index] || failed.has(index)) return;
      const state = await queue.getJobState(id);
      if (state === "completed" || state === "failed" || state === "active") {
        const job: Job | undefined = await queue.getJob(id);
        if (!job) return void pending++;
        if (state === "completed") results[index] = job.returnvalue as RangeResult;
        else if (state === "failed")
          failed.set(index, { index, reason: job.failedReason || "failed", progress: progressOf(job) });
        else {
          running++;
          const p = progressOf(job);
          if (p) live.push(p);
        }
        return;
      }
      pending++;
    });
    const done = results.filter(Boolean).length;
    const progress: DistributedProgress = {
      runId: run.runKey,
      generation: run.generation,
      phase: "ranges",
      ranges: ids.length,
      pending,
      running,
      done,
      failed: failed.size,
      workers: await queue.getWorkersCount().catch(() => 0),
      copied: 0,
      updated: 0,
      skipped: 0,
      failedObjects: 0,
      bytes: 0,
    };
    for (const s of [...results.filter((r): r is RangeResult => !!r).map((r) => r.summary), ...live]) {
      progress.copied += s.copied;
      progress.updated += s.updated;
      progress.skipped += s.skipped;
      progress.failedObjects += s.failed;
      progress.bytes += s.bytes;
    }
    const report = JSON.stringify(progress);
    if (report !== lastReport) options.onProgress?.(progress);
    lastReport = report;
    if (done + failed.size === ids.length)
      return lock.lost
        ? "lock lost"
        : { results, failed: [...failed.values()].sort((a, b) => a.index - b.index), progress };
    await sleep(poll, options.signal);
  }
}

function progressOf(job: Job): RangeProgress | undefined {
  const p = job.progress as Partial<RangeProgress> | number | undefined;
  return p && typeof p === "object" && typeof p.copied === "number" ? (p as RangeProgress) : undefined;
}

/** Adds a range's counters (every numeric field but the duration) into the run's summary. */
function add(into: SyncSummary, s: SyncSummary): void {
  const target = into as unknown as Record<string, unknown>;
  for (const [key, value] of Object.entries(s)) {
    if (key === "durationMs" || typeof value !== "number") continue;
    target[key] = ((target[key] as number | undefined) ?? 0) + value;
  }
  // Requests by kind and their cost (issue 16), summed over the ranges.
  if (s.requests) addCounts(into.requests, s.requests);
  if (s.cost) into.cost = { usd: Math.round((into.cost.usd + s.cost.usd) * 1e6) / 1e6, priceTable: s.cost.priceTable };
}

/** Removes the jobs of a finished generation before the next one starts (they are no longer needed to resume). */
async function removeJobs(queue: Queue, record: RunRecord): Promise<void> {
  await forEachLimit(record.ranges, 64, async (range) => {
    const job = await queue.getJob(jobIdOf(record.runKey, record.generation, range));
    await job?.remove().catch(() => undefined);
  });
}

/** Lua, so each check-and-set is atomic (through BullMQ's client adapter, which has no SET NX or EVAL). */
const LOCK_SCRIPTS = {
  bucketsyncLockAcquire: "if redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return 1 else return 0 end",
  bucketsyncLockRenew:
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end",
  bucketsyncLockRelease:
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end",
};

/**
 * One coordinator per run at a time: a Redis lock with a short TTL, renewed while the coordinator
 * lives. A coordinator that died (SIGKILL, lost machine) leaves it to expire within LOCK_TTL_MS.
 */
class RunLock {
  private timer?: NodeJS.Timeout;
  /** Set when another coordinator took the run over (this one stalled past the TTL): it must not delete. */
  lost?: string;

  private constructor(
    private readonly client: RedisClient,
    private readonly key: string,
    private readonly token: string,
  ) {}

  static async acquire(client: RedisClient, key: string, warn: (message: string) => void): Promise<RunLock> {
    for (const [name, lua] of Object.entries(LOCK_SCRIPTS)) client.defineCommand(name, { numberOfKeys: 1, lua });
    const token = randomBytes(12).toString("hex");
    const deadline = Date.now() + 2 * LOCK_TTL_MS + 2_000;
    let warned = false;
    for (;;) {
      if ((await client.runCommand("bucketsyncLockAcquire", [key, token, LOCK_TTL_MS])) === 1) break;
      if (Date.now() > deadline)
        throw new UsageError(
          "another coordinator is running this sync right now (same source, target and options); wait for it, or watch it with 'bucketsync status'",
        );
      if (!warned)
        warn(
          `another coordinator holds this run's lock; waiting up to ${Math.round((deadline - Date.now()) / 1000)} s (a coordinator that died releases it within ${LOCK_TTL_MS / 1000} s)`,
        );
      warned = true;
      await sleep(500);
    }
    const lock = new RunLock(client, key, token);
    lock.timer = setInterval(() => void lock.renew(), LOCK_TTL_MS / 3);
    lock.timer.unref();
    return lock;
  }

  private async renew(): Promise<void> {
    try {
      const ok = await this.client.runCommand("bucketsyncLockRenew", [this.key, this.token, LOCK_TTL_MS]);
      if (ok !== 1) this.lost = "the coordinator lock was lost (another coordinator took over the run)";
    } catch {
      // A blip: the next renewal retries; the TTL leaves room for two misses.
    }
  }

  async release(): Promise<void> {
    clearInterval(this.timer);
    await this.client.runCommand("bucketsyncLockRelease", [this.key, this.token]);
  }
}

async function first<T>(items: AsyncIterable<T>): Promise<T | undefined> {
  for await (const item of items) return item;
  return undefined;
}

export { connectQueue, parseRecord, type QueueOptions };
