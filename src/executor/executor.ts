import { setMaxListeners } from "node:events";
import type { ErrorInfo } from "../core/errors.js";
import type { DeleteFailure, ObjectInfo, ObjectStore, WriteOptions } from "../core/types.js";
import type { Action } from "../planner/planner.js";
import { DeleteSpool, type PendingDelete } from "./delete-spool.js";
import type { EventSink, SyncSummary } from "./events.js";
import type { RetryPolicy } from "../core/retry.js";
import type { MaxDelete, OptionValues } from "../options/table.js";
import type { Verification } from "../integrity/verify.js";
import type { FailedKeyLog } from "./failed-keys.js";
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
  /** More planned deletes than this (a count, or a share of the target's objects in scope) and none is made. */
  maxDelete?: MaxDelete;
  /** How the refusal names the cap (default `--max-delete N`): watch's cap is what is left of it until the next reconcile. */
  maxDeleteName?: string;
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
  /** --failed-keys: the file every failed key is written to (opened by the caller, closed here). */
  failedKeys?: FailedKeyLog;
}

/** What a hook may use: the run's recorder (its events), and whether this is a dry run (then it changes nothing). */
export interface HookContext {
  record: Recorder;
  dryRun: boolean;
}

export interface ExecuteHooks {
  /** Before an update overwrites the target's object (a backup of it); in dry runs too. A throw leaves the object as it is. */
  beforeReplace?(action: Extract<Action, { type: "update" }>, ctx: HookContext): Promise<void>;
  /**
   * Before a batch of target objects is deleted; in dry runs too. Returns the keys that must not
   * be deleted (each reported as failed); a throw keeps the whole batch.
   */
  beforeDelete?(batch: PendingDelete[], ctx: HookContext): Promise<DeleteFailure[] | void>;
}

/** How often one key is read again when its source keeps changing under the run. */
const MAX_REPLANS = 3;

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
  const record = new Recorder(opts.onEvent, opts.dryRun, opts.failedKeys);
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
  // Stopped: copies still waiting for a --tpslimit token are not sent (Ctrl-C, --max-duration hard).
  if (opts.meter) {
    const meter = opts.meter;
    if (writeSignal.aborted) meter.stopWaiting();
    else writeSignal.addEventListener("abort", () => meter.stopWaiting(), { once: true });
  }
  const transferer = new Transferer(opts.source, opts.target, (message) => record.warning(message), {
    meter: opts.meter,
    cutSignal: cutoff.signal,
  });
  const estimate = opts.dryRun ? new Estimate(opts.source, opts.target, opts.write) : undefined;

  const settings = opts.settings ?? {};
  const conditional = settings.conditionalWrites !== false;
  // Every write's options less its condition, made once: each copy below only replaces `onlyIf`.
  // (In V8 a spread followed by a property the source lacks takes microseconds; replacing one it
  // has is a plain copy.)
  const writeBase: TransferOptions = { ...opts.write, signal: writeSignal, onlyIf: undefined };
  const hookContext = { record, dryRun: opts.dryRun };
  /** Conditions the target was found to refuse even when they hold (detected on first use). */
  const unsupported = new Set<"If-None-Match" | "If-Match">();
  /** Target objects the listing showed in scope, for --max-delete as a share. */
  let targetObjects = 0;

  const handle = async (action: Action): Promise<void> => {
    if (action.type !== "copy") targetObjects++;
    if (action.type === "skip") {
      record.skipped(action.key, action.source.size, action.reason, action.source.etag, action.undecidable);
      return;
    }
    if (action.type === "delete") {
      await spool.add({
        key: action.key,
        size: action.target.size,
        etag: action.target.etag,
        lastModified: action.target.lastModified,
      });
      return;
    }
    if (action.type === "update") {
      // No-clobber: what the target holds stays, whatever the comparison says.
      if (settings.noOverwrite) {
        record.skipped(action.key, action.source.size, "exists in the target (--no-overwrite)", action.source.etag);
        return;
      }
      if (settings.immutable) {
        record.failed(
          { key: action.key, action: action.type },
          { code: "Immutable", message: `differs from the source (${action.reason}); --immutable never replaces it` },
        );
        return;
      }
      if (action.undecidable) record.undecided();
    }
    // Keys the target can never hold are reported as failures in dry runs too.
    const refusal = opts.target.refusal?.({ ...action.source, key: action.key });
    if (refusal) {
      record.failed(
        { key: action.key, action: action.type },
        { code: refusal.code, message: `${refusal.code}: ${refusal.message}` },
      );
      return;
    }
    const oversize = cutoff.oversize(action.source.size);
    if (oversize) {
      record.failed({ key: action.key, action: action.type }, oversize);
      return;
    }
    // --max-transfer / --max-duration: a copy the cut-off leaves undone is counted as left.
    if (!cutoff.admit(action.source.size)) {
      cutoff.leftBehind(action.source.size);
      return;
    }
    if (action.type === "update" && opts.hooks?.beforeReplace) {
      const ready = await runner.attempt(`${action.type} ${action.key}`, () =>
        opts.hooks!.beforeReplace!(action, hookContext),
      );
      if (!ready.ok) {
        if (!ready.stopsRun) record.failed({ key: action.key, action: action.type }, ready.info);
        return;
      }
    }
    if (estimate) {
      estimate.copy(action.source, transferer.route);
      record.copied(action);
      return;
    }
    const copied = await copyPinned(action);
    if (!copied) return;
    changed = true;
    const { verification, source } = copied;
    // A copy whose bytes provably differ is a failure, never a silent success; under --verify
    // strict so is one that cannot be proven. The copy is removed (as rclone does with a
    // corrupted transfer), so the next run sees the key as missing and copies it again instead
    // of taking a bad copy for an up-to-date one.
    const strict = opts.write?.verify === "strict";
    if (verification?.status === "mismatch" || (strict && verification?.status === "unverifiable")) {
      record.verificationFailed(action, verification, await removeFailedCopy(runner, opts.target, action.key));
      return;
    }
    record.copied(source === action.source ? action : { ...action, source }, verification);
  };

  /**
   * Copies the object the listing saw, or, when the source moved on since (a 412 on the pinned
   * read or copy, or a copy whose ETag is the source's newer one), the object it holds now: the
   * key is read again and copied again, at most MAX_REPLANS times. Writes are conditional on what
   * the plan saw in the target (absent, or that ETag): a 412 with an unchanged source means
   * someone else wrote the target meanwhile, which is reported, never overwritten.
   */
  const copyPinned = async (
    action: Extract<Action, { type: "copy" | "update" }>,
  ): Promise<{ verification?: Verification; source: ObjectInfo } | undefined> => {
    let source = action.source;
    let onlyIf: WriteOptions["onlyIf"] = !conditional
      ? undefined
      : action.type === "copy"
        ? unsupported.has("If-None-Match")
          ? undefined
          : "absent"
        : action.target.etag !== undefined && opts.target.ifMatchWrites === true && !unsupported.has("If-Match")
          ? { etag: action.target.etag }
          : undefined;
    for (let round = 0; ; round++) {
      const moved = await runner.attempt(`${action.type} ${action.key}`, () =>
        transferer.transfer(source, { ...writeBase, onlyIf }, action.key),
      );
      if (!moved.ok && cutoff.signal.aborted && !opts.signal?.aborted) {
        // Stopped by a hard cut-off: nothing was written, and the next run copies it.
        cutoff.leftBehind(source.size);
        return undefined;
      }
      // Interrupted before it was sent (waiting for --tpslimit): the run says it was interrupted.
      if (!moved.ok && opts.signal?.aborted && moved.info.code === "AbortError") return undefined;
      const preconditionFailed = !moved.ok && moved.info.code === "PreconditionFailed";
      const mismatch = moved.ok && moved.value?.status === "mismatch";
      if (moved.ok && !mismatch) return { verification: moved.value, source };
      if (!preconditionFailed && !mismatch) {
        // A failure every object would repeat stops the run (reported once by the caller).
        if (!moved.ok && !moved.stopsRun) record.failed({ key: action.key, action: action.type }, moved.info);
        return undefined;
      }
      // Did the source move on? Read the key again.
      const now = await runner.attempt(`head ${action.key}`, () => opts.source.head(source.key));
      const fresh = now.ok ? now.value : undefined;
      const movedOn =
        fresh !== undefined &&
        (fresh.etag !== undefined && source.etag !== undefined
          ? fresh.etag !== source.etag
          : fresh.size !== source.size || fresh.lastModified !== source.lastModified);
      if (!movedOn) {
        if (mismatch) return { verification: moved.ok ? moved.value : undefined, source };
        if (fresh === undefined && now.ok) {
          record.skipped(action.key, source.size, "the source was deleted after it was listed", source.etag);
          return undefined;
        }
        // The source is as listed, so the 412 is the target's. If the target still holds what the
        // plan saw, the server refuses a condition that holds (radosgw 16 answers 412 to every
        // If-Match): that condition is dropped for the rest of the run, and this write retried.
        if (onlyIf !== undefined && round < MAX_REPLANS) {
          const seen = await runner.attempt(`head ${action.key}`, () => opts.target.head(action.key));
          const holds = seen.ok && (onlyIf === "absent" ? seen.value === undefined : seen.value?.etag === onlyIf.etag);
          if (holds) {
            const kind = onlyIf === "absent" ? "If-None-Match" : "If-Match";
            if (!unsupported.has(kind)) {
              unsupported.add(kind);
              record.notice(
                `conditional writes: the target answers 412 to ${kind} when the condition holds, so it cannot be used there; writing without it from now on`,
              );
            }
            onlyIf = undefined;
            continue;
          }
        }
        // Someone else wrote the key.
        record.failed(
          { key: action.key, action: action.type },
          {
            code: "PreconditionFailed",
            message: `the target's object changed during the run (written by someone else); not overwritten`,
          },
        );
        return undefined;
      }
      if (round >= MAX_REPLANS) {
        record.failed(
          { key: action.key, action: action.type },
          { code: "SourceChanging", message: `the source changed ${round + 1} times while being copied; run again` },
        );
        return undefined;
      }
      record.replanned(
        action.key,
        `the source changed after it was listed (ETag ${source.etag ?? "-"} -> ${fresh.etag ?? "-"}); copying its newer object`,
      );
      source = { key: source.key, size: fresh.size, lastModified: fresh.lastModified, etag: fresh.etag };
      // A copy that landed (a server that ignores the copy's pin) is this run's own write now.
      if (mismatch && conditional) onlyIf = undefined;
    }
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
            : tooManyDeletes(spool.count, targetObjects, opts.maxDelete, opts.maxDeleteName);
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

/** Why --max-delete withholds `planned` deletes of `inScope` target objects, or undefined. */
export function tooManyDeletes(
  planned: number,
  inScope: number,
  max: MaxDelete | undefined,
  name = `--max-delete ${max}`,
): string | undefined {
  if (max === undefined || planned === 0) return undefined;
  if (typeof max === "number") return planned > max ? `${planned} deletions planned, more than ${name}` : undefined;
  const share = inScope === 0 ? 100 : (planned / inScope) * 100;
  return share > Number.parseFloat(max)
    ? `${planned} deletions planned, ${share.toFixed(1)}% of the ${inScope} target objects in scope, more than --max-delete ${max}`
    : undefined;
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
  await deletes.run(spool.batches(DELETE_BATCH), async (all) => {
    const failedKeys = new Set<string>();
    let batch = all;
    if (opts.hooks?.beforeDelete) {
      // A backup first: a key whose backup failed is not deleted (dry runs say what would be saved).
      const ready = await deletes.attempt(
        "delete",
        () => opts.hooks!.beforeDelete!(all, { record, dryRun: opts.dryRun }),
        false,
      );
      if (!ready.ok) {
        record.failed(
          { action: "delete", keys: all.map((d) => d.key) },
          { code: ready.info.code, message: `deleting ${all.length} objects failed: ${ready.info.message}` },
          all.length,
        );
        return;
      }
      const kept = new Set<string>();
      for (const f of ready.value ?? []) {
        kept.add(f.key);
        record.failed({ key: f.key, action: "delete" }, f);
      }
      batch = all.filter((d) => !kept.has(d.key));
      if (batch.length === 0) return;
    }
    if (!opts.dryRun) {
      const done = await deletes.attempt("delete", () => opts.target.deleteMany(batch.map((d) => d.key)), false);
      if (!done.ok) {
        record.failed(
          { action: "delete", keys: batch.map((d) => d.key) },
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
