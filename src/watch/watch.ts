/**
 * `watch()` (issue 18): a full sync first, then each change the source reports applied to the
 * target as it happens, with a periodic reconcile (a normal sync) to catch anything missed.
 *
 * Events are hints. Keys heard are coalesced in a bounded set (events.ts) and applied in
 * batches through sync() with `keys`: both sides are read again (HEAD, or stat), so a
 * duplicated, reordered or stale event does nothing wrong, and a key is deleted from the target
 * only when the source really lacks it (and `delete` is on). Every write rule of sync (ACL,
 * metadata, verification, filters, backups) applies as it would in a run.
 *
 * When the event source fails (set-up refused, notification removed, watcher error) the watcher
 * says so once, stops deleting on events and reconciles on a short interval; deletes then only
 * happen after a complete listing, which sync() guarantees. A bucket source's set-up is tried
 * again at each check and, once back, a reconcile catches up.
 */
import { setMaxListeners } from "node:events";
import { sleep } from "../core/async.js";
import { classifyError } from "../core/errors.js";
import { parseLocation } from "../core/location.js";
import { RequestMeter } from "../core/meter.js";
import { UsageError } from "../core/types.js";
import type { SyncEvent, SyncSummary } from "../executor/events.js";
import { checkLocalLocations } from "../stores/local/locations.js";
import { connectS3, resolveEndpointUrl, type S3Connection } from "../stores/s3/client.js";
import { meterLimits, sync, validateSyncOptions, type SyncOptions, type SyncResult } from "../sync.js";
import { BucketEventSource } from "./bucket-events.js";
import { LagStats, MAX_PENDING_KEYS, PendingKeys, type ChangeHint, type EventSource } from "./events.js";
import { DEFAULT_SETTLE_MS, FolderEventSource } from "./folder-events.js";
import { QueueEventSource } from "./queue-events.js";

/** Files a folder reconcile copied that are checked once more after it (see reconcile). */
const RECHECK_KEYS = 10_000;

export const DEFAULT_RECONCILE_MS = 60 * 60 * 1000;
/** How often a failed event source is retried and the source reconciled meanwhile (at most --reconcile). */
export const FALLBACK_RECONCILE_MS = 60 * 1000;
export const DEFAULT_CHECK_MS = 30 * 1000;
export const DEFAULT_STATUS_MS = 60 * 1000;
/** Keys applied per batch: the HEAD path of a work list (planner/work-list.ts HEAD_LIST_MAX). */
const BATCH_KEYS = 1000;
/** A first event waits this long for others to join its batch. */
const GATHER_MS = 25;

/** What the watch says besides the runs' own events (rendered by the CLI). */
export type WatchEvent =
  | { type: "watching"; events: string; endpoint?: string }
  /** The start-up sync is done: from here on changes are applied as they are heard. */
  | { type: "synced"; summary: SyncSummary }
  | { type: "fallback"; reason: string; reconcileEveryMs: number }
  | { type: "restored"; events: string }
  | { type: "reconcile"; reason: string; summary?: SyncSummary; error?: string }
  /** `dryRun`: the changes were reported, not written. */
  | { type: "status"; applied: number; pending: number; refused: number; lag: LagSnapshot; dryRun?: boolean }
  /** `kept`: what --keep-notifications left on the server (a description of the event source). */
  | { type: "stopping"; kept?: string };

export type LagSnapshot = ReturnType<LagStats["snapshot"]>;

export interface WatchOptions extends SyncOptions {
  onWatch?: (event: WatchEvent) => void;
  /** How often the event source is checked (default 30 s). */
  checkEveryMs?: number;
  /** How often a status event is emitted while changes are applied (default 60 s). */
  statusEveryMs?: number;
  /** A folder source: how long a file's size must stay put before it counts as written (default 2 s). */
  settleMs?: number;
  /** Reconcile interval while the event source is failing (default 60 s, at most `reconcile`). */
  fallbackEveryMs?: number;
}

export interface WatchResult {
  /** The start-up sync; a watch whose start-up sync failed stops there. */
  startup: SyncResult;
  /** Changes applied from events (copies, updates, deletes). */
  applied: number;
  lag: LagSnapshot;
}

const WATCH_ONLY = ["reconcile", "keepNotifications", "listen", "advertise", "queueUrl", "metricsAddr"] as const;

function refuseForWatch(options: WatchOptions): void {
  const given = (k: keyof WatchOptions) => options[k] !== undefined && options[k] !== false;
  for (const [key, flag] of [
    ["object", "one object"],
    ["keys", "a key list"],
    ["filesFrom", "--files-from"],
    ["filesFromRaw", "--files-from-raw"],
    ["sourceInventory", "--source-inventory"],
    ["checkpoint", "--checkpoint"],
    ["at", "--at"],
    ["allVersions", "--all-versions"],
    ["maxTransfer", "--max-transfer"],
    ["maxDuration", "--max-duration"],
    ["ranges", "key ranges"],
    ["only", "only"],
  ] as const)
    if (given(key)) throw new UsageError(`watch cannot be used with ${flag}`);
  if (typeof options.source !== "string" || typeof options.target !== "string")
    throw new UsageError("watch takes the source and target as locations");
  if (options.queueUrl !== undefined) {
    if (parseLocation(options.source).kind !== "s3")
      throw new UsageError("--queue-url is for a bucket source; a local folder's changes come from file-system events");
    for (const [key, flag] of [
      ["listen", "--listen"],
      ["advertise", "--advertise"],
      ["keepNotifications", "--keep-notifications"],
    ] as const)
      if (given(key))
        throw new UsageError(
          `${flag} has no use with --queue-url (the watcher reads the queue; it sets up no notification)`,
        );
  }
}

/** The objects a full sync left in the target's scope. */
function inTarget(summary: SyncSummary): number {
  return summary.copied + summary.updated + summary.skipped;
}

/** Watches `source` and keeps `target` following it until `signal` is aborted. */
export async function watch(options: WatchOptions): Promise<WatchResult> {
  refuseForWatch(options);
  validateSyncOptions(options);
  const signal = options.signal ?? new AbortController().signal;
  setMaxListeners(0, signal);
  const onEvent = options.onEvent ?? (() => undefined);
  const say = options.onWatch ?? (() => undefined);
  const reconcileEvery = options.reconcile ?? DEFAULT_RECONCILE_MS;
  const fallbackEvery = Math.min(reconcileEvery, options.fallbackEveryMs ?? FALLBACK_RECONCILE_MS);
  // The event source is checked every 30 s, or at each reconcile interval when that is shorter.
  const checkEvery = options.checkEveryMs ?? Math.min(DEFAULT_CHECK_MS, reconcileEvery);
  const statusEvery = options.statusEveryMs ?? DEFAULT_STATUS_MS;
  const source = options.source as string;
  const target = options.target as string;
  const srcLoc = parseLocation(source);
  // Local sides are checked before anything starts (a missing source folder is one line, exit 2).
  await checkLocalLocations(srcLoc, parseLocation(target));

  // Every run of the watch shares one meter: --tpslimit holds across them.
  const meter = options.meter ?? new RequestMeter(meterLimits(options));
  const base: SyncOptions = { ...options, meter };
  for (const key of WATCH_ONLY) delete (base as unknown as Record<string, unknown>)[key];
  for (const key of ["onWatch", "checkEveryMs", "statusEveryMs", "settleMs", "fallbackEveryMs"])
    delete (base as unknown as Record<string, unknown>)[key];
  const metrics =
    options.metricsAddr !== undefined
      ? await (
          await import("../executor/metrics.js")
        ).serveMetrics(options.metricsAddr, {
          concurrency: options.concurrency ?? 64,
        })
      : undefined;
  metrics?.addMeter(meter);

  const pending = new PendingKeys();
  const lag = new LagStats();
  let reconcileReason: string | undefined;
  let wake = () => undefined as void;
  const wakeUp = () => wake();
  signal.addEventListener("abort", wakeUp);
  const onHints = (hints: ChangeHint[]) => {
    for (const hint of hints)
      if (!pending.add(hint)) {
        reconcileReason = `more than ${MAX_PENDING_KEYS} changes waiting: falling behind`;
        onEvent({
          type: "warning",
          message: "too many changes waiting to be applied (falling behind); reconciling instead",
        });
      }
    wakeUp();
  };

  let connection: S3Connection | undefined;
  let events: EventSource | undefined;
  if (srcLoc.kind === "s3") {
    const side = { ...options.connection, ...options.sourceConnection };
    connection = await connectS3({ ...side, endpointUrl: await resolveEndpointUrl(side) }, { meter });
    const hooks = { onHints, onWarning: (message: string) => onEvent({ type: "warning", message }) };
    events =
      options.queueUrl !== undefined
        ? new QueueEventSource(connection, { bucket: srcLoc.bucket, prefix: srcLoc.prefix }, options.queueUrl, hooks)
        : new BucketEventSource(
            connection,
            { bucket: srcLoc.bucket, prefix: srcLoc.prefix, target },
            // A dry run sends no heartbeat (a DELETE, even of a key that never exists).
            { listen: options.listen, advertise: options.advertise, heartbeats: !options.dryRun },
            hooks,
          );
  } else {
    events = new FolderEventSource(
      srcLoc.path,
      { followSymlinks: options.followSymlinks, settleMs: options.settleMs },
      {
        onHints,
        onReconcile: (reason) => {
          reconcileReason = reason;
          wakeUp();
        },
      },
    );
  }

  let healthy = false;
  const fallBack = (reason: string) => {
    healthy = false;
    say({ type: "fallback", reason, reconcileEveryMs: fallbackEvery });
  };
  let applied = 0;
  let appliedSinceStatus = 0;
  const status = (): WatchEvent => ({
    type: "status",
    applied,
    pending: pending.size,
    refused: events!.refused,
    lag: lag.snapshot(),
    ...(options.dryRun && { dryRun: true }),
  });
  try {
    try {
      await events.start();
      healthy = true;
    } catch (err) {
      if (err instanceof UsageError) throw err;
      fallBack(`cannot receive ${events.description}: ${classifyError(err).message}`);
    }

    // The start-up sync: after the event source, so nothing changed during it is missed.
    const startup = await sync({ ...base, onEvent, signal, onRun: (run) => metrics?.watch(run) });
    if (startup.fatal || startup.refused) return { startup, applied, lag: lag.snapshot() };
    // Said once the start-up sync is through: a watch refused there (no target, an overlap) never says it watched.
    if (healthy) say({ type: "watching", events: events.description, endpoint: events.listeningAt });
    say({ type: "synced", summary: startup.summary });
    // Notes (conditional writes, backups) were said by the start-up sync: not again for each batch.
    base.notices = false;

    // --max-delete over a watch: at most N (or PCT% of the target as the last full sync left
    // it) deletes on events until the next reconcile, which applies the cap to its own plan as
    // sync does. Past it, deletes wait for that reconcile.
    let deletesOnEvents = 0;
    let targetObjects = inTarget(startup.summary);
    const deleteBudget = () => {
      const cap = options.maxDelete;
      if (cap === undefined) return undefined;
      const total = typeof cap === "number" ? cap : Math.floor((Number.parseFloat(cap) / 100) * targetObjects);
      const left = Math.max(0, total - deletesOnEvents);
      return { max: left, name: `the ${left} left of --max-delete ${cap} for events until the next reconcile` };
    };

    let nextReconcile = Date.now() + (healthy ? reconcileEvery : fallbackEvery);
    let nextCheck = Date.now() + checkEvery;
    let nextStatus = Date.now() + statusEvery;

    const reconcile = async (reason: string) => {
      reconcileReason = undefined;
      // A folder's watcher says nothing of a file removed before it settled, so a file this
      // reconcile copied may be gone soon after: each one is checked once more, like an event,
      // once such a file would have settled (best effort: up to RECHECK_KEYS of them; the next
      // reconcile catches the rest).
      const recheck: string[] = [];
      const folder = events instanceof FolderEventSource;
      const result = await sync({
        ...base,
        onEvent: (event: SyncEvent) => {
          onEvent(event);
          if (folder && (event.type === "copy" || event.type === "update") && !event.dryRun)
            if (recheck.length < RECHECK_KEYS) recheck.push(event.key);
        },
        signal,
        onRun: (run) => metrics?.watch(run),
      });
      if (recheck.length > 0) {
        const timer = setTimeout(
          () => onHints(recheck.map((key) => ({ key, time: Date.now() }))),
          (options.settleMs ?? DEFAULT_SETTLE_MS) + 1000,
        );
        timer.unref();
      }
      if (!result.fatal && !result.refused) {
        targetObjects = inTarget(result.summary);
        deletesOnEvents = 0;
      }
      say({
        type: "reconcile",
        reason,
        summary: result.summary,
        ...(result.fatal && { error: result.fatal.message }),
        ...(result.refused && { error: result.refused }),
      });
      nextReconcile = Date.now() + (healthy ? reconcileEvery : fallbackEvery);
    };

    const applyBatch = async () => {
      const batch = pending.take(BATCH_KEYS);
      // Without a working event source, events cause copies only; deletes wait for a reconcile.
      const deletes = (options.delete ?? false) && healthy;
      const result = await sync({
        ...base,
        keys: [...batch.keys()],
        // An event says the key changed: compare content (ETags from the HEADs; a local file is
        // hashed), not size and time, which cannot tell two same-size writes within the same
        // second (an object) or within the folder's 2 s window (a file) apart. A rule the user
        // chose stays.
        compare: base.compare ?? "checksum",
        delete: deletes,
        deleteBudget: deleteBudget(),
        // Each delete is of a key the source was just read without (HEAD or stat), not of an empty listing.
        force: true,
        onEvent: (event: SyncEvent) => {
          if (event.type === "copy" || event.type === "update" || event.type === "delete") {
            const time = batch.get(event.key);
            if (time !== undefined && !event.dryRun) {
              lag.record(Date.now() - time);
              metrics?.observeLag(Math.max(0, Date.now() - time) / 1000);
            }
            applied++;
            appliedSinceStatus++;
            if (event.type === "delete" && !event.dryRun) deletesOnEvents++;
          }
          onEvent(event);
        },
      });
      if (result.fatal || result.refused || result.summary.failed > 0 || result.summary.deletesWithheld) {
        onEvent({
          type: "warning",
          message: `applying ${batch.size} change(s) did not fully succeed${result.fatal ? ` (${result.fatal.message})` : ""}; a reconcile follows in ${Math.round(fallbackEvery / 1000)}s`,
        });
        nextReconcile = Math.min(nextReconcile, Date.now() + fallbackEvery);
      }
    };

    let saidReinstall: string | undefined;
    const check = async () => {
      nextCheck = Date.now() + checkEvery;
      const problem = await events!.check();
      if (problem && healthy) {
        fallBack(problem);
        nextReconcile = Date.now();
        return;
      }
      // A bucket source's set-up is tried again (a queue has none to redo: its pollers retry on their own).
      if (!healthy && srcLoc.kind === "s3") {
        try {
          await events!.reinstall?.();
          if ((await events!.check()) === undefined) {
            healthy = true;
            say({ type: "restored", events: events!.description });
            reconcileReason = "the event source is back";
          }
        } catch (err) {
          // Still failing: the fallback reconciles go on. A refusal (another watcher took the
          // topic over) is said once, not taken back at every check.
          const message = classifyError(err).message;
          if (err instanceof UsageError && message !== saidReinstall) {
            saidReinstall = message;
            onEvent({ type: "warning", message: `not taking the notification back: ${message}` });
          }
        }
      }
    };

    while (!signal.aborted) {
      const now = Date.now();
      if (reconcileReason !== undefined) await reconcile(reconcileReason);
      else if (now >= nextReconcile) await reconcile(healthy ? "periodic" : "the event source is not working");
      else if (now >= nextCheck) await check();
      else if (pending.size > 0) {
        await sleep(GATHER_MS);
        await applyBatch();
      } else {
        if (now >= nextStatus) {
          if (appliedSinceStatus > 0) say(status());
          appliedSinceStatus = 0;
          nextStatus = now + statusEvery;
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.max(1, Math.min(nextReconcile, nextCheck, nextStatus) - now));
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
          if (signal.aborted || pending.size > 0 || reconcileReason !== undefined) wake();
        });
        wake = () => undefined;
      }
    }
    say({
      type: "stopping",
      ...(options.keepNotifications && events instanceof BucketEventSource && { kept: events.description }),
    });
    // Keys heard but not applied when the watch stops: the next start-up sync applies them.
    if (applied > 0 || events.refused > 0) say(status());
    return { startup, applied, lag: lag.snapshot() };
  } finally {
    signal.removeEventListener("abort", wakeUp);
    try {
      await events.stop(options.keepNotifications ?? false);
    } catch (err) {
      onEvent({
        type: "warning",
        message: `could not remove the notification set-up of ${events.description}: ${classifyError(err).message}`,
      });
    }
    await connection?.close();
    await metrics?.close();
  }
}
