import { setMaxListeners } from "node:events";
import type { ErrorInfo } from "../core/errors.js";
import type { ObjectStore } from "../core/types.js";
import type { Action } from "../planner/planner.js";
import { DeleteSpool } from "./delete-spool.js";
import type { EventSink, SyncSummary } from "./events.js";
import type { RetryPolicy } from "../core/retry.js";
import type { OptionValues } from "../options/table.js";
import { Recorder } from "./recorder.js";
import { TaskRunner } from "./tasks.js";
import { Transferer, type TransferOptions } from "./transfer.js";
import type { RequestMeter } from "../core/meter.js";
import type { PriceTable } from "../core/prices.js";
import { Cutoff } from "./cutoff.js";
import { Estimate, measuredUsage } from "./estimate.js";
import { orderWithin } from "./order.js";

export interface ExecuteOptions {
  source: ObjectStore;
  target: ObjectStore;
  concurrency: number;
  dryRun: boolean;
  /** ACL, storage class, encryption and metadata directive for every object written. */
  write?: TransferOptions;
  /** More planned deletes than this and none is made. */
  maxDelete?: number;
  retry?: RetryPolicy;
  onEvent: EventSink;
  /** Aborting stops taking new work; in-flight single requests finish, multipart work is aborted. */
  signal?: AbortSignal;
  /**
   * Last safety check before deletes run: given the number planned, returns why they must not
   * run (a refusal, exit 2), or undefined.
   */
  refuseDeletes?: (planned: number) => string | undefined;
  /** Called before a target object is replaced or deleted; a hook that throws fails that object (or batch), which is then left as it is. */
  hooks?: ExecuteHooks;
  /** Every option of the run (options/table.ts), for code here that an option changes. */
  settings?: OptionValues;
  /** Counts the run's requests and streamed bytes, and holds them to --tpslimit and --bwlimit. */
  meter?: RequestMeter;
  /** Prices for the summary's cost (default AWS S3 Standard, us-east-1). */
  priceTable?: PriceTable;
  /** Learns of the run's task runner and live summary as the run starts (the metrics endpoint reads them). */
  onStart?: (run: { runner: TaskRunner; summary: SyncSummary }) => void;
}

export interface ExecuteHooks {
  /** Before an update overwrites the target's object (a backup of it, a conditional check). */
  beforeReplace?(action: Extract<Action, { type: "update" }>): Promise<void>;
  /** Before a batch of target objects is deleted. */
  beforeDelete?(batch: { key: string; size: number; etag?: string }[]): Promise<void>;
}

export interface ExecuteResult {
  summary: SyncSummary;
  /** Set when the run stopped early: a listing failed, credentials were refused, or it was interrupted. */
  fatal?: ErrorInfo & { context: string };
  /** True when nothing was written or deleted (so a fatal error can be reported as "nothing changed"). */
  changedNothing: boolean;
  /** Set when a safety rule refused the deletes (for example an empty source without --force). */
  refused?: string;
}

const DELETE_BATCH = 1000;

/** Removes a copy that failed verification; says what happened, for the error event. */
async function removeFailedCopy(runner: TaskRunner, target: ObjectStore, key: string): Promise<string> {
  const removed = await runner.attempt(`remove ${key}`, () => target.deleteMany([key]), false);
  if (!removed.ok) return `removing the copy failed (${removed.info.message}): delete it by hand`;
  if (removed.value.length > 0) return `removing the copy failed (${removed.value[0]!.code}): delete it by hand`;
  return "the copy was removed, so the next run copies it again";
}
const DELETE_CONCURRENCY = 4;

/**
 * Runs a plan with `concurrency` workers pulling from one action stream: a worker only asks the
 * planner for the next action when it is free, so listing never runs ahead of copying (backpressure
 * without a queue). Deletes are spooled and run only after every copy succeeded and both listings
 * completed.
 */
export async function execute(actions: AsyncIterable<Action>, opts: ExecuteOptions): Promise<ExecuteResult> {
  const runner = new TaskRunner({ concurrency: opts.concurrency, retry: opts.retry, signal: opts.signal });
  const record = new Recorder(opts.onEvent, opts.dryRun);
  opts.onStart?.({ runner, summary: record.summary });
  const start = opts.meter?.snapshot();
  const summary = record.summary;
  const spool = new DeleteSpool();
  let refused: string | undefined;
  let changed = false;
  const cutoff = new Cutoff(opts.settings ?? {});
  // A hard cut-off stops multipart work in flight as an interrupt does.
  const writeSignal = opts.signal ? AbortSignal.any([opts.signal, cutoff.signal]) : cutoff.signal;
  setMaxListeners(0, writeSignal);
  const transferer = new Transferer(opts.source, opts.target, (message) => record.warning(message), {
    meter: opts.meter,
    cutSignal: cutoff.signal,
  });
  const estimate = opts.dryRun ? new Estimate(opts.source, opts.target, opts.write) : undefined;

  const handle = async (action: Action): Promise<void> => {
    if (action.type === "skip") {
      record.skipped(action.key, action.source.size, action.reason, action.source.etag, action.undecidable);
      return;
    }
    if (action.type === "delete") {
      await spool.add({ key: action.key, size: action.target.size, etag: action.target.etag });
      return;
    }
    if (action.type === "update" && action.undecidable) record.undecided();
    // Keys the target can never hold are reported as failures in dry runs too.
    const refusal = opts.target.refusal?.(action.source);
    if (refusal) {
      record.failed(
        { key: action.key, action: action.type },
        { code: refusal.code, message: `${refusal.code}: ${refusal.message}` },
      );
      return;
    }
    // --max-transfer / --max-duration: a copy the cut-off leaves undone is counted as left.
    if (!cutoff.admit(action.source.size)) {
      cutoff.leftBehind(action.source.size);
      return;
    }
    if (estimate) {
      estimate.copy(action.source, transferer.route);
      record.copied(action);
      return;
    }
    if (action.type === "update" && opts.hooks?.beforeReplace) {
      const ready = await runner.attempt(`${action.type} ${action.key}`, () => opts.hooks!.beforeReplace!(action));
      if (!ready.ok) {
        if (!ready.stopsRun) record.failed({ key: action.key, action: action.type }, ready.info);
        return;
      }
    }
    const moved = await runner.attempt(`${action.type} ${action.key}`, () =>
      transferer.transfer(action.source, { ...opts.write, signal: writeSignal }),
    );
    if (!moved.ok && cutoff.signal.aborted && !opts.signal?.aborted) {
      // Stopped by a hard cut-off: nothing was written, and the next run copies it.
      cutoff.leftBehind(action.source.size);
      return;
    }
    if (!moved.ok) {
      // A failure every object would repeat stops the run (reported once by the caller).
      if (!moved.stopsRun) record.failed({ key: action.key, action: action.type }, moved.info);
      return;
    }
    changed = true;
    const verification = moved.value;
    // A copy whose bytes provably differ is a failure, never a silent success; under --verify
    // strict so is one that cannot be proven. The copy is removed (as rclone does with a
    // corrupted transfer), so the next run sees the key as missing and copies it again instead
    // of taking a bad copy for an up-to-date one.
    const strict = opts.write?.verify === "strict";
    if (verification?.status === "mismatch" || (strict && verification?.status === "unverifiable")) {
      record.verificationFailed(action, verification, await removeFailedCopy(runner, opts.target, action.key));
      return;
    }
    record.copied(action, verification);
  };

  try {
    // At --max-duration the plan is no longer read.
    cutoff.start(() => runner.halt());
    const ordered = opts.settings?.orderBy ? orderWithin(actions, opts.settings.orderBy) : actions;
    await runner.run(ordered, handle);
    runner.settleInterrupt();
    const fatal = runner.fatal;
    const cut = cutoff.report();
    if (cut) record.cutOff(cut);
    if (spool.count > 0) {
      const withheld = fatal
        ? `the run stopped early (${fatal.context}: ${fatal.message})`
        : cut
          ? `the run was cut off (${cut.reason})`
          : summary.failed > 0
            ? `${summary.failed} object(s) failed to copy`
            : opts.maxDelete !== undefined && spool.count > opts.maxDelete
              ? `${spool.count} deletions planned, more than --max-delete ${opts.maxDelete}`
              : undefined;
      refused = withheld ? undefined : opts.refuseDeletes?.(spool.count);
      if (refused) record.withheld(`${spool.count} delete(s) refused: ${refused}`, false);
      // A fatal stop is reported by the caller in one line; the warning is for the other cases.
      else if (withheld) record.withheld(`${spool.count} delete(s) not run: ${withheld}`, !fatal);
      else {
        changed = (await runDeletes(spool, { ...opts, retry: runner.retry }, record)) || changed;
        estimate?.deletes(spool.count);
      }
    }
  } finally {
    cutoff.dispose();
    spool.dispose();
  }
  const reading = opts.meter?.since(start);
  const usage = estimate
    ? { ...estimate.usage(reading, opts.priceTable), estimated: true }
    : measuredUsage(reading, opts.priceTable);
  return { summary: record.finish(usage), fatal: runner.fatal, changedNothing: !changed, refused };
}

/** Deletes in batches of 1000, DELETE_CONCURRENCY at a time, each batch's per-key errors read and reported. */
export async function runDeletes(
  spool: DeleteSpool,
  opts: Pick<ExecuteOptions, "target" | "dryRun" | "hooks" | "retry">,
  record: Recorder,
  reason = "not in source",
): Promise<boolean> {
  let changed = false;
  const deletes = new TaskRunner({ concurrency: DELETE_CONCURRENCY, retry: opts.retry });
  await deletes.run(spool.batches(DELETE_BATCH), async (batch) => {
    const failedKeys = new Set<string>();
    if (!opts.dryRun) {
      if (opts.hooks?.beforeDelete) {
        const ready = await deletes.attempt("delete", () => opts.hooks!.beforeDelete!(batch), false);
        if (!ready.ok) {
          record.failed(
            { action: "delete" },
            { code: ready.info.code, message: `deleting ${batch.length} objects failed: ${ready.info.message}` },
            batch.length,
          );
          return;
        }
      }
      const done = await deletes.attempt("delete", () => opts.target.deleteMany(batch.map((d) => d.key)), false);
      if (!done.ok) {
        record.failed(
          { action: "delete" },
          { code: done.info.code, message: `deleting ${batch.length} objects failed: ${done.info.message}` },
          batch.length,
        );
        return;
      }
      for (const f of done.value) {
        failedKeys.add(f.key);
        record.failed({ key: f.key, action: "delete" }, f);
      }
      changed = true;
    }
    for (const d of batch) if (!failedKeys.has(d.key)) record.deleted(d, reason);
  });
  return changed;
}
