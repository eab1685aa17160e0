/**
 * A distributed-sync worker: takes range jobs from the queue and runs the normal merge-join sync
 * over each range with its own credential chain and connection settings. It copies; it never
 * deletes (it counts the deletes its range needs and reports them to the coordinator).
 */
import { DEFAULT_LOCK_DURATION_MS } from "./job.js";
import { hostname } from "node:os";
import { UnrecoverableError, WaitingError, Worker, type Job } from "bullmq";
import { UsageError, type ObjectStore } from "../core/types.js";
import type { SyncSummary } from "../executor/events.js";
import { StoreOpener } from "../stores/open.js";
import type { S3ConnectionOptions } from "../stores/s3/client.js";
import { DEFAULT_CONCURRENCY, meterLimits, sync } from "../sync.js";
import { RequestMeter } from "../core/meter.js";
import type { QueueOptions } from "./queue.js";
import {
  DEFAULT_QUEUE_NAME,
  describeRange,
  parseRangeJob,
  redisConnection,
  type RangeJob,
  type RangeProgress,
  type RangeResult,
} from "./job.js";

export interface WorkerOptions extends QueueOptions {
  /** This machine's S3 settings (endpoint, region, profile); credentials come from its own AWS chain. */
  connection?: S3ConnectionOptions;
  sourceConnection?: S3ConnectionOptions;
  targetConnection?: S3ConnectionOptions;
  /** Requests in flight for each range (default 64, as in sync). */
  concurrency?: number;
  /** Ranges worked on at once (default 1). */
  parallelRanges?: number;
  /**
   * How long a range's lock lasts without renewal (default 30 s); it is renewed every half of it.
   * A worker that dies holds its range until then; the stalled check (run every `lockDurationMs`
   * too) then hands it to another worker.
   */
  lockDurationMs?: number;
  /** Key ranges listed at once inside one range (default 1: a range is listed as one chain of pages). */
  listParallelism?: number;
  /** Serves this worker's Prometheus metrics (all its ranges) at http://HOST:PORT/metrics. */
  metricsAddr?: string;
  onLog?: (event: WorkerLogEvent) => void;
}

export type WorkerLogEvent =
  | { type: "ready"; worker: string; queueName: string }
  | {
      type: "range-start";
      jobId: string;
      index: number;
      total: number;
      range: string;
      source: string;
      target: string;
      attempt: number;
    }
  | {
      type: "range-done";
      jobId: string;
      index: number;
      total: number;
      summary: SyncSummary;
      plannedDeletes: number;
      durationMs: number;
    }
  | {
      type: "range-failed";
      jobId: string;
      index: number;
      total: number;
      reason: string;
      attempt: number;
      final: boolean;
    }
  | { type: "range-released"; jobId: string; index: number; total: number }
  | { type: "error"; message: string };

export interface WorkerHandle {
  /** hostname:pid */
  readonly id: string;
  /** Stops taking ranges; ranges in progress stop after their requests in flight and go back to the queue. */
  close(): Promise<void>;
}

export { DEFAULT_LOCK_DURATION_MS };

/** Starts a worker; resolves once it is connected and taking jobs. */
export async function runWorker(options: WorkerOptions): Promise<WorkerHandle> {
  const id = `${hostname()}:${process.pid}`;
  const log = options.onLog ?? (() => undefined);
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 4096)
    throw new UsageError(`invalid --concurrency '${concurrency}'; expected a whole number from 1 to 4096`);
  const parallelRanges = options.parallelRanges ?? 1;
  if (!Number.isInteger(parallelRanges) || parallelRanges < 1 || parallelRanges > 256)
    throw new UsageError(`invalid --parallel-ranges '${parallelRanges}'; expected 1 to 256`);
  const lockDuration = options.lockDurationMs ?? DEFAULT_LOCK_DURATION_MS;
  if (!Number.isFinite(lockDuration) || lockDuration < 1000)
    throw new UsageError(`invalid --lock-duration; expected at least 1 second`);
  const queueName = options.queueName ?? DEFAULT_QUEUE_NAME;
  const connection = redisConnection(options.queue, true);
  const active = new Map<string, AbortController>();
  let closing = false;

  // One pair of stores per source/target/part settings, kept across ranges: connections stay warm
  // between ranges instead of being set up again for each (a TLS handshake and more per range).
  // --tpslimit and --bwlimit apply per worker: one meter (and opener) per set of limits, shared by
  // the ranges this worker runs.
  const openers = new Map<string, { opener: StoreOpener; meter: RequestMeter }>();
  const metrics =
    options.metricsAddr === undefined
      ? undefined
      : await (await import("../executor/metrics.js")).serveMetrics(options.metricsAddr, { concurrency });
  const openerFor = (data: RangeJob) => {
    const key = JSON.stringify([data.options.tpslimit, data.options.tpslimitBurst, data.options.bwlimit]);
    let entry = openers.get(key);
    if (!entry) {
      const meter = new RequestMeter(meterLimits(data.options));
      entry = { opener: new StoreOpener(undefined, meter), meter };
      metrics?.addMeter(meter);
      openers.set(key, entry);
    }
    return entry;
  };
  const pairs = new Map<string, Promise<{ source: ObjectStore; target: ObjectStore; meter: RequestMeter }>>();
  const storesFor = (data: RangeJob) => {
    const key = JSON.stringify([
      data.source,
      data.target,
      data.options.multipartThreshold,
      data.options.partSize,
      data.options.tpslimit,
      data.options.tpslimitBurst,
      data.options.bwlimit,
    ]);
    let pair = pairs.get(key);
    if (!pair) {
      const s3 = {
        ...(data.options.multipartThreshold !== undefined && { multipartThreshold: data.options.multipartThreshold }),
        ...(data.options.partSize !== undefined && { partSize: data.options.partSize }),
      };
      const connection = (side?: S3ConnectionOptions) => ({
        maxSockets: concurrency * parallelRanges,
        ...options.connection,
        ...side,
      });
      const { opener, meter } = openerFor(data);
      pair = (async () => ({
        source: await opener.open(data.source, { s3, connection: connection(options.sourceConnection) }),
        target: await opener.open(data.target, { s3, connection: connection(options.targetConnection) }),
        meter,
      }))();
      pair.catch(() => pairs.delete(key));
      pairs.set(key, pair);
    }
    return pair;
  };

  const processor = async (job: Job, token?: string): Promise<RangeResult> => {
    let data: RangeJob;
    try {
      data = parseRangeJob(job.data);
    } catch (err) {
      throw new UnrecoverableError((err as Error).message);
    }
    const controller = new AbortController();
    active.set(job.id!, controller);
    const started = Date.now();
    const tag = { jobId: job.id!, index: data.index, total: data.total };
    log({
      type: "range-start",
      ...tag,
      range: describeRange(data.range),
      source: data.source,
      target: data.target,
      attempt: job.attemptsMade + 1,
    });
    const progress: RangeProgress = { copied: 0, updated: 0, skipped: 0, failed: 0, bytes: 0, worker: id };
    const firstErrors: string[] = [];
    let lastPublished = 0;
    const publish = (force = false) => {
      if (!force && Date.now() - lastPublished < 1000) return;
      lastPublished = Date.now();
      return job.updateProgress({ ...progress }).catch(() => undefined);
    };
    try {
      const { source, target, meter } = await storesFor(data);
      const result = await sync({
        ...data.options,
        source,
        target,
        meter,
        onRun: metrics?.watch,
        ranges: [data.range],
        only: "copies",
        concurrency,
        listParallelism: options.listParallelism ?? 1,
        signal: controller.signal,
        onEvent: (event) => {
          if (event.type === "copy" || event.type === "update") {
            progress[event.type === "copy" ? "copied" : "updated"]++;
            progress.bytes += event.size;
          } else if (event.type === "skip") progress.skipped++;
          else if (event.type === "error") {
            progress.failed++;
            if (firstErrors.length < 3)
              firstErrors.push(`${event.key ?? ""}: ${event.code}${event.message ? ` ${event.message}` : ""}`);
          } else return;
          void publish();
        },
      });
      await publish(true);
      if (result.fatal?.code === "Interrupted" && closing) {
        // This worker is stopping: hand the range back at once (no attempt used up); re-running it is idempotent.
        await job.moveToWait(token);
        log({ type: "range-released", ...tag });
        throw new WaitingError();
      }
      if (result.fatal) throw new Error(`${result.fatal.context}: ${result.fatal.message}`);
      if (result.summary.failed > 0)
        throw new Error(`${result.summary.failed} object(s) failed: ${firstErrors.join("; ")}`);
      // A range cut off by --max-transfer/--max-duration (limits apply per worker) is not done:
      // the coordinator runs no deletes, and running the sync again continues it.
      if (result.summary.cutoff)
        throw new UnrecoverableError(
          `cut off: ${result.summary.cutoff.reason}; ${result.summary.cutoff.left.objects} object(s) left`,
        );
      const done: RangeResult = {
        summary: result.summary,
        plannedDeletes: result.plannedDeletes ?? 0,
        sourceObjects: result.sourceObjects ?? 0,
        changedNothing: result.changedNothing,
        worker: id,
      };
      log({
        type: "range-done",
        ...tag,
        summary: result.summary,
        plannedDeletes: done.plannedDeletes,
        durationMs: Date.now() - started,
      });
      return done;
    } catch (err) {
      if (err instanceof WaitingError) throw err;
      const final =
        err instanceof UsageError ||
        err instanceof UnrecoverableError ||
        job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      log({ type: "range-failed", ...tag, reason: (err as Error).message, attempt: job.attemptsMade + 1, final });
      // Bad input fails the same way on every worker: do not retry it.
      if (err instanceof UsageError) throw new UnrecoverableError(err.message);
      throw err;
    } finally {
      active.delete(job.id!);
    }
  };

  const worker = new Worker(queueName, processor, {
    connection,
    concurrency: parallelRanges,
    lockDuration,
    stalledInterval: lockDuration,
    // A range whose worker died is handed out again; a third stall in a row fails it.
    maxStalledCount: 2,
    name: `bucketsync-${id}`,
    autorun: true,
  });
  worker.on("error", (err) => log({ type: "error", message: err.message }));
  await worker.waitUntilReady();
  log({ type: "ready", worker: id, queueName });

  let closed: Promise<void> | undefined;
  return {
    id,
    close() {
      closed ??= (async () => {
        closing = true;
        for (const c of active.values()) c.abort(new Error("worker stopping"));
        await worker.close();
        for (const { opener } of openers.values()) await opener.close();
        await metrics?.close();
      })();
      return closed;
    },
  };
}
