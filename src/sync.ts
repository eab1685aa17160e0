import { setMaxListeners } from "node:events";
import { ListingError, classifyError, classifyListingFailure } from "./core/errors.js";
import { compareKeys } from "./core/keys.js";
import { parseLocation, refuseOverlap, refuseSameObject, type Location } from "./core/location.js";
import { UsageError, type KeyRange, type ObjectDetails, type ObjectInfo, type ObjectStore } from "./core/types.js";
import { validateWith } from "./options/define.js";
import { OPTION_TABLE, type OptionValues } from "./options/table.js";
import type { EventSink, SyncEvent, SyncSummary } from "./executor/events.js";
import { execute, type ExecuteResult } from "./executor/executor.js";
import type { TransferOptions } from "./executor/transfer.js";
import type { RetryPolicy } from "./core/retry.js";
import { hasKeySpaceListing, hasMultipartUploads, hasObjectLock, isLocalFolder } from "./core/capabilities.js";
import type { CompareMode } from "./planner/compare.js";
import { compileFilters, includeOnlyMessage, includesThatSelectNothing } from "./planner/filters.js";
import type { Action } from "./planner/planner.js";
import { actionStream, DEFAULT_LIST_PARALLELISM } from "./planner/strategy.js";
import { rangesFromSplitPoints, splitPointsFor } from "./planner/ranges.js";
import { CheckpointedRun } from "./checkpoint.js";
import { requireVersions, syncAllVersions } from "./versions.js";
import { resolveEndpointUrl, type S3ConnectionOptions } from "./stores/s3/client.js";
import { StoreOpener } from "./stores/open.js";
import { checkLocalLocations, refuseSameFile } from "./stores/local/locations.js";
import { refuseBackupOverlap } from "./backup.js";
import { Backup } from "./executor/backup.js";
import { FailedKeyLog } from "./executor/failed-keys.js";
import { readWorkList } from "./work-list.js";
import { readInventory } from "./stores/inventory.js";
import { RequestMeter, type MeterLimits } from "./core/meter.js";
import { AWS_S3_STANDARD_US_EAST_1, type PriceTable } from "./core/prices.js";
import { parseBandwidth } from "./options/parse.js";
import { Estimate, type Usage } from "./executor/estimate.js";
import type { WatchedRun } from "./executor/metrics.js";
import { Transferer } from "./executor/transfer.js";

/**
 * What a run needs besides its options: the two locations, connections, hooks. The options
 * themselves (delete, acl, compare, filters, ...) are declared once in options/table.ts; their
 * types come from there.
 */
export interface RunPlumbing {
  /** `s3://bucket[/prefix]`, or a store you built. */
  source: string | ObjectStore;
  target: string | ObjectStore;
  /** Connection settings for S3 locations given as URLs (endpoint, region, profile, credentials). */
  connection?: S3ConnectionOptions;
  /** Per-side settings over `connection` (another account, endpoint or region for one side). */
  sourceConnection?: S3ConnectionOptions;
  targetConnection?: S3ConnectionOptions;
  /** Plan only these key ranges, both sides listed with list(range), instead of splitting the key space (distributed runs). */
  ranges?: KeyRange[];
  onEvent?: EventSink;
  signal?: AbortSignal;
  retry?: RetryPolicy;
  /** Distributed runs: "copies" runs copies only and counts planned deletes (SyncResult.plannedDeletes); "deletes" runs deletes only. */
  only?: "copies" | "deletes";
  /** Files of the run itself (its --report file), absolute paths: a local folder never lists them and never writes over them. */
  ownFiles?: string[];
  /**
   * One object only (`cp`): the source's `sourceKey` written to the target as `targetKey`,
   * replacing whatever the target holds there. Nothing is listed, compared or deleted.
   */
  object?: { sourceKey: string; targetKey: string };
  /**
   * Plan only these keys (relative to both roots), as `--files-from` does: a short list is read
   * with a HEAD per key on each side, so a key the source lacks is deleted (with `delete`) only
   * when the source really lacks it. `watch` applies its events this way.
   */
  keys?: readonly string[];
  /**
   * A cap on this run's deletes that the caller worked out, in place of `maxDelete`, and how
   * messages name it: `watch` gives each batch what is left of --max-delete until its next
   * reconcile (a batch's own keys are no measure of a share of the target).
   */
  deleteBudget?: { max: number; name: string };
  /** Emit `notice` events: what the run has in force (conditional writes, the backup location). The CLI asks for them with -v. */
  notices?: boolean;
  /** Hears of the run as it starts (a worker's metrics endpoint watches each range). */
  onRun?: (run: WatchedRun) => void;
  /**
   * The meter of stores given as objects (their connections count and limit requests there);
   * the run measures what it adds to it. Default: a meter of the run's own, from its limits.
   */
  meter?: RequestMeter;
}

/** The options of `check()`: the same table, of which check reads the comparison, filters and listing settings. */
export type CommonOptions = RunPlumbing & OptionValues;

/** The options of `sync()`: every option of the table (options/table.ts) and the run's plumbing. */
export type SyncOptions = RunPlumbing & OptionValues;

/** The keys of RunPlumbing, for code that tells options and plumbing apart (distributed jobs). */
export const PLUMBING_KEYS: Record<keyof RunPlumbing, true> = {
  source: true,
  target: true,
  connection: true,
  sourceConnection: true,
  targetConnection: true,
  ranges: true,
  onEvent: true,
  signal: true,
  retry: true,
  only: true,
  ownFiles: true,
  object: true,
  keys: true,
  deleteBudget: true,
  notices: true,
  meter: true,
  onRun: true,
};

export const DEFAULT_CONCURRENCY = 64;

/** The request and bandwidth limits of a run's options (--tpslimit, --tpslimit-burst, --bwlimit). */
export function meterLimits(options: OptionValues): MeterLimits {
  return {
    tps: options.tpslimit,
    tpsBurst: options.tpslimitBurst,
    bandwidth: options.bwlimit !== undefined ? parseBandwidth("--bwlimit")(options.bwlimit) : undefined,
  };
}

/** --price-table, or AWS S3 Standard us-east-1. */
async function priceTableOf(options: OptionValues): Promise<PriceTable> {
  if (options.priceTable === undefined) return AWS_S3_STANDARD_US_EAST_1;
  return (await import("./config/prices.js")).loadPriceTable(options.priceTable);
}

/** --metrics-addr: serves the run's metrics until it ends (executor/metrics.ts). */
async function metricsFor(options: OptionValues, meter: RequestMeter) {
  if (options.metricsAddr === undefined) return undefined;
  const server = await (
    await import("./executor/metrics.js")
  ).serveMetrics(options.metricsAddr, { concurrency: options.concurrency ?? DEFAULT_CONCURRENCY });
  server.addMeter(meter);
  return server;
}

export interface SyncResult extends ExecuteResult {
  /** With `only`: deletes planned (with "copies", none of them run) and objects the source listed. */
  plannedDeletes?: number;
  sourceObjects?: number;
}

/**
 * A --backup-dir bucket that does not exist is bad input: refused before anything is written.
 * Other answers (AccessDenied on a write-only backup bucket) are left to the backups themselves.
 */
async function requireBackupBucket(backup: ObjectStore, url: string): Promise<void> {
  try {
    for await (const _ of backup.list()) break;
  } catch (err) {
    const info = classifyError(err);
    if (info.code === "NoSuchBucket") throw new UsageError(`--backup-dir ${url}: ${info.message}; nothing changed`);
  }
}

/** Which conditional writes are in force, for -v. */
function conditionalNotice(options: SyncOptions, endpoint: string | undefined): string {
  if (options.conditionalWrites === false) return "conditional writes: off (--no-conditional-writes)";
  const onAws = endpoint === undefined;
  return onAws
    ? "conditional writes: every write carries If-None-Match (new keys) or If-Match (updates); AWS S3 honours them on PutObject, CopyObject and multipart completion"
    : "conditional writes: new keys carry If-None-Match (S3-compatible servers honour it on PutObject; radosgw 16 ignores it on CopyObject and multipart completion); updates go without If-Match, which S3-compatible servers are not assumed to honour (radosgw 16 refuses it even when it holds)";
}

/** --object-lock-*: the target must be a bucket with Object Lock enabled, checked before anything is written. */
async function checkObjectLock(target: ObjectStore, options: SyncOptions): Promise<void> {
  if (options.objectLockMode === undefined && options.objectLockLegalHold === undefined) return;
  if (!hasObjectLock(target))
    throw new UsageError(`--object-lock-* needs an S3 target; ${target.description} is not one`);
  let enabled: boolean;
  try {
    enabled = await target.objectLockEnabled();
  } catch (err) {
    throw new UsageError(
      `cannot read the Object Lock configuration of ${target.description}: ${classifyError(err).message}`,
    );
  }
  if (!enabled)
    throw new UsageError(
      `the target ${target.description} has no Object Lock enabled (a bucket must be created with it), so --object-lock-* cannot apply; nothing copied`,
    );
}

/** What every write of the run sets; `--content-type` and friends imply REPLACE, as in aws-cli. */
function writeOptions(options: SyncOptions): TransferOptions {
  const replacing = options.replaceProperties && Object.values(options.replaceProperties).some((v) => v !== undefined);
  return {
    acl: options.acl,
    preserveAcl: options.preserveAcl,
    storageClass: options.storageClass,
    sse: options.sse,
    sseKmsKeyId: options.sseKmsKeyId,
    metadataDirective: options.metadataDirective ?? (replacing ? "REPLACE" : "COPY"),
    replaceProperties: options.replaceProperties,
    verify: options.verify ?? "on",
    sendContentMd5: options.contentMd5,
    guessContentType: options.guessMimeType,
    ...((options.objectLockMode !== undefined || options.objectLockLegalHold !== undefined) && {
      objectLock: {
        mode: options.objectLockMode,
        retainUntil: options.objectLockRetainUntil,
        legalHold: options.objectLockLegalHold === undefined ? undefined : options.objectLockLegalHold === "on",
      },
    }),
  };
}

/** AWS S3's storage classes. */
export const STORAGE_CLASSES = [
  "STANDARD",
  "REDUCED_REDUNDANCY",
  "STANDARD_IA",
  "ONEZONE_IA",
  "INTELLIGENT_TIERING",
  "GLACIER",
  "DEEP_ARCHIVE",
  "OUTPOSTS",
  "GLACIER_IR",
  "SNOW",
  "EXPRESS_ONEZONE",
];

/**
 * A run stopped by the target refusing its first write (see the executor's setup codes): name the
 * options that shape every write, since every object would have repeated the same refusal.
 */
function explainRefusedWrite(result: ExecuteResult, options: SyncOptions): ExecuteResult {
  const f = result.fatal;
  if (
    !f ||
    ![
      "InvalidArgument",
      "InvalidStorageClass",
      "InvalidRequest",
      "InvalidEncryptionAlgorithmError",
      "NotImplemented",
    ].includes(f.code)
  )
    return result;
  const given = [
    options.storageClass !== undefined && `--storage-class ${options.storageClass}`,
    options.sse !== undefined && `--sse ${options.sse}`,
    options.sseKmsKeyId !== undefined && "--sse-kms-key-id",
    options.acl !== undefined && `--acl ${options.acl}`,
    options.metadataDirective !== undefined && `--metadata-directive ${options.metadataDirective}`,
  ].filter(Boolean);
  if (given.length === 0) return result;
  const message = `the target refused the first write (${f.message}), so every object would fail the same way; check ${given.join(", ")}`;
  return { ...result, fatal: { ...f, message, context: "target" } };
}

/**
 * Validates options that do not need the network; throws UsageError with a one-line message.
 * Each option's own rule is declared with it in the table; rules between options are here.
 */
export function validateSyncOptions(options: SyncOptions): void {
  validateWith(OPTION_TABLE, options);
  if (options.at !== undefined && options.allVersions)
    throw new UsageError("--at and --all-versions cannot be used together");
  if (options.preserveAcl && options.acl !== undefined)
    throw new UsageError("--acl and --preserve-acl cannot be used together");
  if (options.sseKmsKeyId !== undefined && options.sse !== "aws:kms")
    throw new UsageError("--sse-kms-key-id needs --sse aws:kms");
  if (
    options.metadataDirective === "COPY" &&
    options.replaceProperties &&
    Object.values(options.replaceProperties).some((v) => v !== undefined)
  ) {
    throw new UsageError(
      "--content-type, --cache-control and --metadata replace the source's metadata; they cannot be used with --metadata-directive COPY",
    );
  }
  if (options.suffix !== undefined && options.backupDir === undefined)
    throw new UsageError("--suffix needs --backup-dir (the place the suffixed backups go)");
  if (options.suffixKeepExtension && options.suffix === undefined)
    throw new UsageError("--suffix-keep-extension needs --suffix");
  if ((options.objectLockMode === undefined) !== (options.objectLockRetainUntil === undefined))
    throw new UsageError("--object-lock-mode and --object-lock-retain-until go together");
  if (options.backupDir !== undefined && options.allVersions)
    throw new UsageError("--backup-dir and --all-versions cannot be used together");
  if (options.only !== undefined && options.only !== "copies" && options.only !== "deletes")
    throw new UsageError(`invalid only '${options.only}'`);
  const listed = options.filesFrom !== undefined || options.filesFromRaw !== undefined;
  if (listed && (options.at !== undefined || options.allVersions || options.ranges))
    throw new UsageError("--files-from cannot be used with --at, --all-versions or key ranges");
  if (options.sourceInventory !== undefined && (listed || options.at !== undefined || options.allVersions))
    throw new UsageError("--source-inventory cannot be used with --files-from, --at or --all-versions");
  if (options.checkpoint !== undefined) {
    const s3 = (loc: unknown) => typeof loc === "string" && parseLocation(loc).kind === "s3";
    if (!s3(options.source) || !s3(options.target))
      throw new UsageError("--checkpoint works between two s3:// locations");
    if (
      options.dryRun ||
      listed ||
      options.sourceInventory !== undefined ||
      options.at !== undefined ||
      options.allVersions ||
      options.ranges ||
      options.only
    )
      throw new UsageError(
        "--checkpoint cannot be used with --dry-run, --files-from, --source-inventory, --at or --all-versions",
      );
  }
  if (options.failedKeys !== undefined && options.allVersions)
    throw new UsageError("--failed-keys cannot be used with --all-versions");
}

/** Opens both sides and refuses pairs that would copy onto themselves. */
async function openPair(
  options: CommonOptions & Pick<SyncOptions, "multipartThreshold" | "partSize">,
  opener: StoreOpener,
) {
  const locations: (Location | undefined)[] = [options.source, options.target].map((s) =>
    typeof s === "string" ? parseLocation(s) : undefined,
  );
  const [srcLoc, dstLoc] = locations;
  // Two sockets per worker: a streamed GET holds one while its tags are fetched on another.
  const connection = (side?: S3ConnectionOptions): S3ConnectionOptions => ({
    maxSockets: 2 * (options.concurrency ?? DEFAULT_CONCURRENCY),
    ...options.connection,
    ...side,
  });
  const sourceConnection = connection(options.sourceConnection);
  const targetConnection = connection(options.targetConnection);
  // Endpoints as the stores will use them (flags, then AWS_ENDPOINT_URL and profiles).
  const endpoints = async () =>
    [await resolveEndpointUrl(sourceConnection), await resolveEndpointUrl(targetConnection)] as const;
  // AWS has a fixed set of storage classes; S3-compatible servers may define their own (Ceph
  // placement classes). The endpoint is the one the store will use (flags, environment, profile).
  if (
    options.storageClass !== undefined &&
    !STORAGE_CLASSES.includes(options.storageClass) &&
    (await resolveEndpointUrl(targetConnection)) === undefined
  )
    throw new UsageError(`invalid --storage-class '${options.storageClass}'; S3 knows ${STORAGE_CLASSES.join(", ")}`);
  if (options.object) {
    // One object may be copied within its own folder, under another name; never onto itself.
    await checkLocalLocations(srcLoc, undefined);
    await checkLocalLocations(undefined, dstLoc);
    if (srcLoc && dstLoc) {
      await refuseSameObject(srcLoc, dstLoc, options.object, ...(await endpoints()));
      await refuseSameFile(srcLoc, dstLoc, options.object);
    }
  } else {
    if (srcLoc && dstLoc) await refuseOverlap(srcLoc, dstLoc, ...(await endpoints()));
    await checkLocalLocations(srcLoc, dstLoc);
  }
  // The backup location is in the target's account (its connection), and never overlaps what it saves.
  const backupLoc = options.backupDir !== undefined ? parseLocation(options.backupDir) : undefined;
  if (backupLoc) {
    const [sourceEndpoint, targetEndpoint] = await endpoints();
    await refuseBackupOverlap(
      backupLoc,
      [
        { role: "source", location: srcLoc, endpoint: sourceEndpoint },
        { role: "target", location: dstLoc, endpoint: targetEndpoint },
      ],
      targetEndpoint,
      compileFilters(options.filters ?? []),
    );
    await checkLocalLocations(undefined, backupLoc);
  }
  const storeOptions = {
    s3: {
      ...(options.multipartThreshold !== undefined && { multipartThreshold: options.multipartThreshold }),
      ...(options.partSize !== undefined && { partSize: options.partSize }),
    },
    local: {
      followSymlinks: options.followSymlinks,
      ownFiles: options.ownFiles,
      onWarning: (message: string) => options.onEvent?.({ type: "warning", message }),
    },
  };
  const source =
    typeof options.source === "string"
      ? await opener.open(srcLoc!, { ...storeOptions, connection: sourceConnection })
      : options.source;
  const target =
    typeof options.target === "string"
      ? await opener.open(dstLoc!, { ...storeOptions, connection: targetConnection })
      : options.target;
  const backup = backupLoc && (await opener.open(backupLoc, { ...storeOptions, connection: targetConnection }));
  if (backup) await requireBackupBucket(backup, backupLoc!.url);
  return { source, target, backup, targetEndpoint: await resolveEndpointUrl(targetConnection) };
}

/**
 * Makes the target match the source: copies new and changed objects (server-side where possible),
 * then, with `delete`, removes target objects the source no longer has.
 */
export async function sync(options: SyncOptions): Promise<SyncResult> {
  validateSyncOptions(options);
  // Every retry backoff and multipart write of the run waits on this one signal: many listeners
  // by design, not a leak (Node would warn past 10 on stderr, through --json output).
  if (options.signal) setMaxListeners(0, options.signal);
  compileFilters(options.filters ?? []); // bad globs fail before any request
  const useless = includesThatSelectNothing(options.filters ?? []);
  if (useless.length > 0) options.onEvent?.({ type: "warning", message: includeOnlyMessage(useless) });
  const workList = options.keys ? [...options.keys].sort(compareKeys) : await readWorkList(options);
  const checkpoint =
    options.checkpoint !== undefined
      ? new CheckpointedRun(options.checkpoint, options, {
          source: String(options.source),
          target: String(options.target),
        })
      : undefined;
  const failedKeys = options.failedKeys !== undefined ? new FailedKeyLog(options.failedKeys) : undefined;
  const meter = options.meter ?? new RequestMeter(meterLimits(options));
  const priceTable = await priceTableOf(options);
  const opener = new StoreOpener(options.signal, meter);
  let sourceObjects = checkpoint?.earlierSourceObjects ?? 0;
  const metrics = await metricsFor(options, meter);
  try {
    const { source, target, backup, targetEndpoint } = await openPair(options, opener);
    await checkObjectLock(target, options);
    // Multipart uploads an earlier run started here and could not abort (it was killed).
    if (!options.dryRun && hasMultipartUploads(target)) {
      const orphans = await target.abortOrphanedUploads();
      if (orphans > 0)
        options.onEvent?.({
          type: "warning",
          message: `aborted ${orphans} incomplete multipart upload(s) that an earlier run left in ${target.description} when it was stopped`,
        });
    }
    if (options.allVersions) {
      if (options.delete) throw new UsageError("--all-versions copies version histories; it does not take --delete");
      const run = await syncAllVersions({
        source: requireVersions(source, "--all-versions"),
        target: requireVersions(target, "--all-versions"),
        filter: compileFilters(options.filters ?? []),
        concurrency: options.concurrency ?? DEFAULT_CONCURRENCY,
        dryRun: options.dryRun ?? false,
        write: writeOptions(options),
        onEvent: options.onEvent ?? (() => undefined),
        signal: options.signal,
        meter,
        priceTable,
      });
      return {
        summary: run.summary,
        fatal: run.fatal,
        changedNothing: run.summary.copied === 0 || (options.dryRun ?? false),
      };
    }
    let plannedDeletes = 0;
    const inventory = options.sourceInventory !== undefined ? await loadInventory(options, opener) : undefined;
    const all = options.object
      ? oneObject(await headSource(source, options.object.sourceKey), target, options.object, () => sourceObjects++)
      : checkpoint
        ? resumable(checkpoint, source, target, options, () => sourceObjects++)
        : actionStream(
            source,
            target,
            { ...options, workList, inventory },
            options.delete ?? false,
            () => sourceObjects++,
          );
    const actions = options.only ? onlyPhase(all, options.only, () => plannedDeletes++) : all;
    const onEvent = options.onEvent ?? (() => undefined);
    const hooks = backup
      ? new Backup(
          target,
          backup,
          {
            suffix: options.suffix,
            suffixKeepExtension: options.suffixKeepExtension,
            retry: options.retry,
            signal: options.signal,
          },
          (message) => onEvent({ type: "warning", message }),
        )
      : undefined;
    if (options.notices && backup)
      onEvent({ type: "notice", message: `backups of replaced and deleted objects go to ${backup.description}` });
    if (options.notices && !options.dryRun && !isLocalFolder(target))
      onEvent({ type: "notice", message: conditionalNotice(options, targetEndpoint) });
    const executed = await execute(actions, {
      source,
      target,
      hooks,
      settings: options,
      concurrency: options.concurrency ?? DEFAULT_CONCURRENCY,
      dryRun: options.dryRun ?? false,
      write: writeOptions(options),
      maxDelete: options.deleteBudget?.max ?? options.maxDelete,
      maxDeleteName: options.deleteBudget?.name,
      retry: options.retry,
      onEvent: checkpoint
        ? (event) => {
            checkpoint.onEvent(event);
            onEvent(event);
          }
        : onEvent,
      signal: options.signal,
      failedKeys,
      meter,
      priceTable,
      onStart: ({ runner, summary }) => {
        const run = { runner, summary, listed: () => sourceObjects };
        metrics?.watch(run);
        options.onRun?.(run);
      },
      // An empty source with --delete would wipe the target: the classic "sync deleted everything" bug.
      refuseDeletes: (planned) =>
        sourceObjects === 0 && !options.force
          ? `the source ${source.description} lists no objects, so --delete would remove all ${planned} target objects; pass --force if that is what you want`
          : undefined,
    });
    const result = explainRefusedWrite(executed, options);
    checkpoint?.finish(!result.fatal && result.summary.failed === 0);
    // A missing target folder is created by the first write, or here once the run succeeded (an
    // empty source still leaves the folder); a run that failed (no such bucket) leaves none.
    if (isLocalFolder(target) && !options.dryRun && !result.fatal && !result.refused) await target.ensureRoot();
    return options.only ? { ...result, plannedDeletes, sourceObjects } : result;
  } finally {
    checkpoint?.finish(false);
    failedKeys?.close();
    await metrics?.close();
    await opener.close();
  }
}

/** `cp`: the source object, read first so that a missing one is one line, exit 2 (another failure is the run's to report). */
async function headSource(source: ObjectStore, key: string): Promise<ObjectDetails | Error> {
  try {
    const found = await source.head(key);
    if (!found) throw new UsageError(`no such object: ${source.description}${key}`);
    return found;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    return err as Error;
  }
}

/** `cp` of one object: its action (an update when the target has the key). */
async function* oneObject(
  from: ObjectDetails | Error,
  target: ObjectStore,
  object: { sourceKey: string; targetKey: string },
  onSource: () => void,
): AsyncGenerator<Action> {
  if (from instanceof Error) throw from;
  onSource();
  const to = await target.head(object.targetKey);
  const info: ObjectInfo = { key: object.sourceKey, size: from.size, lastModified: from.lastModified, etag: from.etag };
  if (to) yield { type: "update", key: object.targetKey, source: info, target: to, reason: "cp replaces it" };
  else yield { type: "copy", key: object.targetKey, source: info, reason: "new" };
}

/**
 * A resumable run's actions: the deletes earlier runs planned (to the spool first), then the
 * ranges left, from the checkpoint's ranges or new ones cut at the source's split points.
 * Cutting happens inside the stream, so a source that cannot be read fails as a listing does.
 */
async function* resumable(
  checkpoint: CheckpointedRun,
  source: ObjectStore,
  target: ObjectStore,
  options: SyncOptions,
  onSourceObject: () => void,
): AsyncGenerator<Action> {
  const parallel = options.listParallelism ?? DEFAULT_LIST_PARALLELISM;
  const progress = await checkpoint.start(async () => {
    try {
      return hasKeySpaceListing(source) ? await source.splitPoints(splitPointsFor(parallel)) : [];
    } catch (err) {
      throw new ListingError("source", err);
    }
  }, rangesFromSplitPoints);
  if (options.delete) yield* checkpoint.earlierDeletes();
  yield* actionStream(source, target, { ...options, progress }, options.delete ?? false, onSourceObject);
}

/**
 * The source's keys from the S3 Inventory `--source-inventory` names (read with the source's
 * connection): its bucket must be the source's, and only keys under the source's prefix count.
 */
async function loadInventory(options: SyncOptions, opener: StoreOpener): Promise<ObjectInfo[]> {
  const manifest = parseLocation(options.sourceInventory!);
  const src = typeof options.source === "string" ? parseLocation(options.source) : undefined;
  if (manifest.kind !== "s3" || src?.kind !== "s3")
    throw new UsageError("--source-inventory needs an s3:// source and an s3://bucket/.../manifest.json");
  const store = await opener.open(`s3://${manifest.bucket}/`, {
    connection: { ...options.connection, ...options.sourceConnection },
  });
  const key = manifest.prefix.replace(/\/$/, "");
  try {
    return (await readInventory(store, key, src.bucket, src.prefix)).objects;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    // Read before anything is planned: a failure changed nothing, like any other bad input.
    throw new UsageError(`cannot read the source inventory ${options.sourceInventory}: ${classifyError(err).message}`);
  }
}

/** Keeps one phase's actions (distributed runs: workers copy, the coordinator deletes); counts the deletes seen. */
async function* onlyPhase(
  actions: AsyncIterable<Action>,
  only: "copies" | "deletes",
  onDelete: () => void,
): AsyncGenerator<Action> {
  for await (const action of actions) {
    if (action.type === "delete") onDelete();
    if ((action.type === "delete") === (only === "deletes")) yield action;
  }
}

export type Difference = { key: string; kind: "missing in target" | "differs" | "not in source"; reason: string };

export interface CheckResult {
  inSync: boolean;
  differences: number;
  compared: number;
  /** Objects on both sides whose content could not be compared (ETags cannot decide): compared by size and time only. */
  undecidable: number;
  fatal?: { code: string; message: string; context: string };
  /**
   * What a sync making the target match (with --delete) would send and cost: check's own listing
   * as measured, plus the copies, updates and delete batches the differences need.
   */
  estimate?: Usage;
}

/** Compares source and target without changing anything; reports each difference through `onDifference`. */
/** Per-object evidence of a check: what each side holds, what was compared, and the verdict. */
export interface Evidence {
  key: string;
  result: "same" | Difference["kind"];
  /** The comparison that decided: "size and time", "size", "ETag", or why it could not decide. */
  compared: string;
  reason: string;
  source?: { size: number; etag?: string; lastModified: string };
  target?: { size: number; etag?: string; lastModified: string };
}

const COMPARED: Record<CompareMode, string> = {
  "size-and-time": "size and modification time",
  "size-only": "size",
  checksum: "ETag (MD5) where both are MD5s",
};

/**
 * `check` proves equality, so it compares content by default (as rclone's check compares
 * hashes): ETags where they decide, local files hashed; size and time only where they cannot,
 * and those keys are counted apart (`undecidable`).
 */
export const CHECK_DEFAULT_COMPARE: CompareMode = "checksum";

export async function check(
  options: CommonOptions & { onDifference?: (d: Difference) => void; onEvidence?: (e: Evidence) => void },
): Promise<CheckResult> {
  validateSyncOptions(options);
  compileFilters(options.filters ?? []);
  const meter = options.meter ?? new RequestMeter(meterLimits(options));
  const opener = new StoreOpener(options.signal, meter);
  let differences = 0;
  let compared = 0;
  let undecidable = 0;
  const mode = options.compare ?? CHECK_DEFAULT_COMPARE;
  const checkOptions = { ...options, compare: mode, workList: await readWorkList(options) };
  const priceTable = await priceTableOf(options);
  let estimate: Estimate | undefined;
  let deletes = 0;
  try {
    const { source, target } = await openPair(checkOptions, opener);
    estimate = new Estimate(source, target);
    const route = new Transferer(source, target).route;
    const side = (o: ObjectInfo | undefined) =>
      o && { size: o.size, etag: o.etag, lastModified: new Date(o.lastModified).toISOString() };
    for await (const action of actionStream(source, target, checkOptions, true)) {
      compared++;
      const undecided = (action.type === "skip" || action.type === "update") && action.undecidable === true;
      if (undecided) undecidable++;
      const kind =
        action.type === "skip"
          ? "same"
          : action.type === "copy"
            ? "missing in target"
            : action.type === "update"
              ? "differs"
              : "not in source";
      if (options.onEvidence) {
        const both = action.type === "skip" || action.type === "update";
        options.onEvidence({
          key: action.key,
          result: kind,
          compared: both ? (undecided ? "size and time (ETags cannot decide)" : COMPARED[mode]) : "presence",
          reason: action.reason,
          source: side(action.type === "delete" ? undefined : action.source),
          target: side(action.type === "copy" ? undefined : action.type === "delete" ? action.target : action.target),
        });
      }
      if (kind === "same") continue;
      if (action.type === "copy" || action.type === "update") estimate.copy(action.source, route);
      else if (action.type === "delete") deletes++;
      differences++;
      options.onDifference?.({ key: action.key, kind, reason: action.reason });
    }
    estimate.deletes(deletes);
    return {
      inSync: differences === 0,
      differences,
      compared,
      undecidable,
      estimate: estimate.usage(meter.snapshot(), priceTable),
    };
  } catch (err) {
    if (err instanceof UsageError) throw err;
    const info = classifyListingFailure(err);
    return {
      inSync: false,
      differences,
      compared,
      undecidable,
      fatal: { code: info.code, message: info.message, context: info.context },
    };
  } finally {
    await opener.close();
  }
}

export type { SyncEvent, SyncSummary };
