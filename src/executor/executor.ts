import { classifyError, classifyListingFailure, type ErrorInfo } from "../core/errors.js";
import type { ObjectStore } from "../core/types.js";
import type { Action } from "../planner/planner.js";
import { DeleteSpool } from "./delete-spool.js";
import { emptySummary, type EventSink, type SyncSummary } from "./events.js";
import { DEFAULT_RETRY, isThrottle, withRetry, type RetryPolicy } from "../core/retry.js";
import { AdaptiveLimit } from "./adaptive-limit.js";
import { Transferer, type TransferOptions } from "./transfer.js";
import type { Verification } from "../integrity/verify.js";
import { runPool } from "../core/async.js";

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

/**
 * Codes that, before any copy succeeded, mean every other copy would fail the same way: the
 * target refuses the run's write options (--storage-class, --sse, --acl) or the access.
 */
const SETUP_CODES = new Set([
  "AccessDenied",
  "InvalidArgument",
  "InvalidStorageClass",
  "InvalidRequest",
  "InvalidEncryptionAlgorithmError",
  "NotImplemented",
]);

/** Removes a copy that failed verification; says what happened, for the error event. */
async function removeFailedCopy(target: ObjectStore, key: string, retry: RetryPolicy): Promise<string> {
  try {
    const failures = await withRetry(() => target.deleteMany([key]), retry);
    if (failures.length === 0) return "the copy was removed, so the next run copies it again";
    return `removing the copy failed (${failures[0]!.code}): delete it by hand`;
  } catch (err) {
    return `removing the copy failed (${classifyError(err).message}): delete it by hand`;
  }
}
const DELETE_CONCURRENCY = 4;

/**
 * Runs a plan with `concurrency` workers pulling from one action stream: a worker only asks the
 * planner for the next action when it is free, so listing never runs ahead of copying (backpressure
 * without a queue). Deletes are spooled and run only after every copy succeeded and both listings
 * completed.
 */
export async function execute(actions: AsyncIterable<Action>, opts: ExecuteOptions): Promise<ExecuteResult> {
  const started = Date.now();
  const retry = opts.retry ?? DEFAULT_RETRY;
  const summary = emptySummary(opts.dryRun);
  const spool = new DeleteSpool();
  let fatal: ExecuteResult["fatal"];
  let refused: string | undefined;
  let changed = false;
  let succeeded = 0;
  const limit = new AdaptiveLimit(Math.max(1, opts.concurrency));
  const transferer = new Transferer(opts.source, opts.target, (message) => opts.onEvent({ type: "warning", message }));
  const stop = () => fatal !== undefined || opts.signal?.aborted === true;

  const handle = async (action: Action): Promise<void> => {
    if (action.type === "skip") {
      summary.skipped++;
      if (action.undecidable) summary.undecidable++;
      opts.onEvent({
        type: "skip",
        key: action.key,
        size: action.source.size,
        etag: action.source.etag,
        reason: action.reason,
      });
      return;
    }
    if (action.type === "delete") {
      await spool.add({ key: action.key, size: action.target.size, etag: action.target.etag });
      return;
    }
    if (action.type === "update" && action.undecidable) summary.undecidable++;
    const size = action.source.size;
    // Keys the target can never hold are reported as failures in dry runs too.
    const refused = opts.target.refusal?.(action.source);
    if (refused) {
      summary.failed++;
      opts.onEvent({
        type: "error",
        key: action.key,
        action: action.type,
        code: refused.code,
        message: `${refused.code}: ${refused.message}`,
      });
      return;
    }
    let verification: Verification | undefined;
    if (!opts.dryRun) {
      // Each attempt takes a slot of its own and the backoff between attempts holds none: after a
      // burst of 503s the retries queue behind the lowered limit instead of all retrying at once.
      const attempt = async () => {
        const epoch = await limit.acquire();
        try {
          return await transferer.transfer(action.source, { ...opts.write, signal: opts.signal });
        } catch (err) {
          if (isThrottle(classifyError(err))) limit.onThrottle(epoch);
          throw err;
        } finally {
          limit.release();
        }
      };
      try {
        verification = await withRetry(attempt, retry, opts.signal);
        succeeded++;
        limit.onSuccess();
      } catch (err) {
        const info = classifyError(err);
        // An error every object will repeat (bad credentials, a refused write option, AccessDenied
        // before anything succeeded) is a setup problem, not one object's: say it once and stop.
        if (info.class === "fatal" || (succeeded === 0 && SETUP_CODES.has(info.code))) {
          fatal ??= { ...info, context: `${action.type} ${action.key}` };
          return;
        }
        summary.failed++;
        opts.onEvent({ type: "error", key: action.key, action: action.type, code: info.code, message: info.message });
        return;
      }
      changed = true;
      // A copy whose bytes provably differ is a failure, never a silent success; under --verify
      // strict so is one that cannot be proven. The copy is removed (as rclone does with a
      // corrupted transfer), so the next run sees the key as missing and copies it again instead
      // of taking a bad copy for an up-to-date one.
      const strict = opts.write?.verify === "strict";
      if (verification?.status === "mismatch" || (strict && verification?.status === "unverifiable")) {
        if (verification.status === "mismatch") summary.mismatched++;
        else summary.unverifiable++;
        summary.failed++;
        const removed = await removeFailedCopy(opts.target, action.key, retry);
        opts.onEvent({
          type: "error",
          key: action.key,
          action: action.type,
          code: verification.status === "mismatch" ? "VerifyMismatch" : "Unverifiable",
          message: `copied, but ${verification.status === "mismatch" ? "verification failed" : "cannot be verified"}: ${verification.reason}; ${removed}`,
        });
        return;
      }
      if (verification?.status === "verified") summary.verified++;
      if (verification?.status === "unverifiable") summary.unverifiable++;
    }
    if (action.type === "copy") summary.copied++;
    else summary.updated++;
    summary.bytes += size;
    opts.onEvent({
      type: action.type,
      key: action.key,
      size,
      etag: action.source.etag,
      reason: action.reason,
      dryRun: opts.dryRun,
      ...(verification && {
        verification:
          verification.status === "verified" ? `verified: ${verification.how}` : `unverifiable: ${verification.reason}`,
      }),
    });
  };

  try {
    await runPool(actions, opts.concurrency, handle, {
      shouldStop: stop,
      onSourceError: (err) => (fatal ??= classifyListingFailure(err)),
    });
    // An interrupt aborts listings in flight: their errors are the interrupt's, not failures of their own.
    if (opts.signal?.aborted) fatal = { code: "Interrupted", message: "interrupted", class: "fatal", context: "run" };

    if (spool.count > 0) {
      const withheld = fatal
        ? `the run stopped early (${fatal.context}: ${fatal.message})`
        : summary.failed > 0
          ? `${summary.failed} object(s) failed to copy`
          : opts.maxDelete !== undefined && spool.count > opts.maxDelete
            ? `${spool.count} deletions planned, more than --max-delete ${opts.maxDelete}`
            : undefined;
      refused = withheld ? undefined : opts.refuseDeletes?.(spool.count);
      if (refused) {
        summary.deletesWithheld = `${spool.count} delete(s) refused: ${refused}`;
      } else if (withheld) {
        summary.deletesWithheld = `${spool.count} delete(s) not run: ${withheld}`;
        // A fatal stop is reported by the caller in one line; the warning is for the other cases.
        if (!fatal) opts.onEvent({ type: "warning", message: summary.deletesWithheld });
      } else {
        changed = (await runDeletes(spool, opts, summary, retry)) || changed;
      }
    }
  } finally {
    spool.dispose();
  }
  summary.durationMs = Date.now() - started;
  return { summary, fatal, changedNothing: !changed, refused };
}

async function runDeletes(
  spool: DeleteSpool,
  opts: ExecuteOptions,
  summary: SyncSummary,
  retry: RetryPolicy,
): Promise<boolean> {
  let changed = false;
  await runPool(spool.batches(DELETE_BATCH), DELETE_CONCURRENCY, async (batch) => {
    const failedKeys = new Set<string>();
    if (!opts.dryRun) {
      try {
        const failures = await withRetry(() => opts.target.deleteMany(batch.map((d) => d.key)), retry);
        for (const f of failures) {
          failedKeys.add(f.key);
          summary.failed++;
          opts.onEvent({ type: "error", key: f.key, action: "delete", code: f.code, message: f.message });
        }
      } catch (err) {
        const info = classifyError(err);
        summary.failed += batch.length;
        opts.onEvent({
          type: "error",
          action: "delete",
          code: info.code,
          message: `deleting ${batch.length} objects failed: ${info.message}`,
        });
        return;
      }
      changed = true;
    }
    for (const d of batch) {
      if (failedKeys.has(d.key)) continue;
      summary.deleted++;
      opts.onEvent({
        type: "delete",
        key: d.key,
        size: d.size,
        etag: d.etag,
        reason: "not in source",
        dryRun: opts.dryRun,
      });
    }
  });
  return changed;
}
