import { classifyError, classifyListingFailure } from "./core/errors.js";
import { compareKeys } from "./core/keys.js";
import { withRetry } from "./core/retry.js";
import { UsageError, type ObjectInfo, type ObjectVersion } from "./core/types.js";
import { emptySummary, type EventSink, type SyncSummary } from "./executor/events.js";
import { runPool } from "./core/async.js";
import { Transferer, type TransferOptions } from "./executor/transfer.js";
import type { CompareRule } from "./planner/compare.js";
import { isPlainMd5 } from "./integrity/etag.js";
import type { KeyFilter } from "./planner/filters.js";
import { deleteCurrent, S3Store } from "./stores/s3/s3-store.js";

/**
 * `--at TIME`: the source as it was at that moment. For each key, the newest version written at
 * or before TIME; keys whose newest version by then is a delete marker, or that did not exist
 * yet, are absent. A sorted listing like any other, so the ordinary planner and executor copy it.
 */
export async function* listingAt(groups: AsyncIterable<{ key: string; versions: ObjectVersion[] }>, at: number): AsyncGenerator<ObjectInfo> {
  for await (const { key, versions } of groups) {
    let chosen: ObjectVersion | undefined;
    for (const v of versions) if (v.lastModified <= at) chosen = v; // oldest first: the last one by then wins
    if (!chosen || chosen.deleteMarker) continue;
    yield { key, size: chosen.size, lastModified: chosen.lastModified, etag: chosen.etag, versionId: chosen.versionId };
  }
}

/**
 * Comparing an old version with the target's current object: times say nothing (the version is
 * older by design), so content decides: sizes, then ETags; when ETags cannot decide, copy.
 */
export const contentRule: CompareRule = (source, target) => {
  if (source.size !== target.size) return { copy: true, reason: "size differs" };
  if (source.etag !== undefined && source.etag === target.etag) return { copy: false, reason: "same checksum" };
  if (isPlainMd5(source.etag) && isPlainMd5(target.etag)) return { copy: true, reason: "checksum differs" };
  return { copy: true, reason: "content cannot be compared (non-MD5 ETags); copying", undecidable: true };
};

const signature = (v: ObjectVersion) => (v.deleteMarker ? "delete-marker" : `${v.size}:${v.etag ?? ""}`);

/**
 * Which source versions a target is missing: the longest run of source versions (from the
 * oldest) that the target's history already ends with is done; the rest are copied in order.
 * An empty target gets every version; a diverged one gets the whole source history appended once.
 */
export function versionsToCopy(source: ObjectVersion[], target: ObjectVersion[]): ObjectVersion[] {
  const src = source.map(signature);
  const dst = target.map(signature);
  for (let k = Math.min(src.length, dst.length); k > 0; k--) {
    const tail = dst.slice(dst.length - k);
    if (tail.every((s, i) => s === src[i])) return source.slice(k);
  }
  return source;
}

export interface AllVersionsOptions {
  source: S3Store;
  target: S3Store;
  filter: KeyFilter;
  concurrency: number;
  dryRun: boolean;
  write: TransferOptions;
  onEvent: EventSink;
  signal?: AbortSignal;
}

/**
 * `--all-versions`: copies every version of each key, oldest first, so a versioned target's
 * history matches the source's (delete markers become delete markers). Keys run concurrently;
 * the versions of one key run in order.
 */
export async function syncAllVersions(o: AllVersionsOptions): Promise<{ summary: SyncSummary; fatal?: ReturnType<typeof classifyListingFailure> }> {
  const started = Date.now();
  const summary = emptySummary(o.dryRun);
  const transferer = new Transferer(o.source, o.target, (message) => o.onEvent({ type: "warning", message }));
  let fatal: ReturnType<typeof classifyListingFailure> | undefined;
  const work = pairGroups(o.source.listVersions(), o.target.listVersions());
  await runPool(
    work,
    o.concurrency,
    async ({ key, source, target }) => {
      if (!o.filter(key)) return;
      const missing = versionsToCopy(source, target);
      if (missing.length === 0) {
        summary.skipped++;
        o.onEvent({ type: "skip", key, size: source[source.length - 1]?.size ?? 0, reason: `all ${source.length} version(s) present` });
        return;
      }
      for (const [i, v] of missing.entries()) {
        const reason = `version ${source.length - missing.length + i + 1} of ${source.length}${v.deleteMarker ? " (delete marker)" : ""}`;
        try {
          if (!o.dryRun) {
            if (v.deleteMarker) await withRetry(() => deleteCurrent(o.target, key));
            else {
              const verification = await withRetry(() =>
                transferer.transfer({ key, size: v.size, lastModified: v.lastModified, etag: v.etag, versionId: v.versionId }, o.write),
              );
              if (verification?.status === "verified") summary.verified++;
              if (verification?.status === "unverifiable") summary.unverifiable++;
            }
          }
        } catch (err) {
          const info = classifyError(err);
          if (info.class === "fatal") fatal ??= { ...info, context: `copy ${key}` };
          summary.failed++;
          o.onEvent({ type: "error", key, action: "copy", code: info.code, message: `${reason}: ${info.message}` });
          return; // later versions of this key would land out of order
        }
        summary.copied++;
        summary.bytes += v.size;
        o.onEvent({ type: "copy", key, size: v.size, etag: v.etag, reason, dryRun: o.dryRun });
      }
    },
    { shouldStop: () => fatal !== undefined || o.signal?.aborted === true, onSourceError: (err) => (fatal ??= classifyListingFailure(err)) },
  );
  summary.durationMs = Date.now() - started;
  return { summary, fatal };
}

/** Merge-joins two version listings by key (both grouped and sorted by key). */
async function* pairGroups(
  source: AsyncIterable<{ key: string; versions: ObjectVersion[] }>,
  target: AsyncIterable<{ key: string; versions: ObjectVersion[] }>,
): AsyncGenerator<{ key: string; source: ObjectVersion[]; target: ObjectVersion[] }> {
  const s = source[Symbol.asyncIterator]();
  const t = target[Symbol.asyncIterator]();
  let a = await s.next();
  let b = await t.next();
  while (!a.done) {
    const order = b.done ? -1 : compareKeys(a.value.key, b.value.key);
    if (order < 0) {
      yield { key: a.value.key, source: a.value.versions, target: [] };
      a = await s.next();
    } else if (order > 0) {
      b = await t.next(); // keys only in the target: left alone
    } else {
      yield { key: a.value.key, source: a.value.versions, target: b.value!.versions };
      a = await s.next();
      b = await t.next();
    }
  }
}

export function requireS3(store: unknown, flag: string): S3Store {
  if (!(store instanceof S3Store)) throw new UsageError(`${flag} needs S3 buckets on both sides`);
  return store;
}
