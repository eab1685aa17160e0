import { classifyError, classifyListingFailure } from "./core/errors.js";
import { withRetry } from "./core/retry.js";
import { hasVersions, type VersionListing } from "./core/capabilities.js";
import { UsageError, type ObjectStore } from "./core/types.js";
import { emptySummary, type EventSink, type SyncSummary } from "./executor/events.js";
import { runPool } from "./core/async.js";
import { Transferer, type TransferOptions } from "./executor/transfer.js";
import type { KeyFilter } from "./planner/filters.js";
import { pairGroups, versionsToCopy } from "./planner/versions.js";

export interface AllVersionsOptions {
  source: ObjectStore & VersionListing;
  target: ObjectStore & VersionListing;
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
export async function syncAllVersions(
  o: AllVersionsOptions,
): Promise<{ summary: SyncSummary; fatal?: ReturnType<typeof classifyListingFailure> }> {
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
        o.onEvent({
          type: "skip",
          key,
          size: source[source.length - 1]?.size ?? 0,
          reason: `all ${source.length} version(s) present`,
        });
        return;
      }
      for (const [i, v] of missing.entries()) {
        const reason = `version ${source.length - missing.length + i + 1} of ${source.length}${v.deleteMarker ? " (delete marker)" : ""}`;
        try {
          if (!o.dryRun) {
            if (v.deleteMarker) await withRetry(() => o.target.deleteCurrent(key));
            else {
              const verification = await withRetry(() =>
                transferer.transfer(
                  { key, size: v.size, lastModified: v.lastModified, etag: v.etag, versionId: v.versionId },
                  o.write,
                ),
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
    {
      shouldStop: () => fatal !== undefined || o.signal?.aborted === true,
      onSourceError: (err) => (fatal ??= classifyListingFailure(err)),
    },
  );
  summary.durationMs = Date.now() - started;
  return { summary, fatal };
}

/** The store as a versioned one, or a usage error naming the option that needs versions. */
export function requireVersions(store: ObjectStore, flag: string): ObjectStore & VersionListing {
  if (!hasVersions(store)) throw new UsageError(`${flag} needs S3 buckets on both sides (versioned)`);
  return store;
}
