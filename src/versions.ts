import type { classifyListingFailure } from "./core/errors.js";
import { hasVersions, type VersionListing } from "./core/capabilities.js";
import { UsageError, type ObjectStore } from "./core/types.js";
import type { EventSink, SyncSummary } from "./executor/events.js";
import { Recorder } from "./executor/recorder.js";
import { measuredUsage } from "./executor/estimate.js";
import type { RequestMeter } from "./core/meter.js";
import type { PriceTable } from "./core/prices.js";
import { TaskRunner } from "./executor/tasks.js";
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
  /** The run's meter: its requests and bytes go into the summary (issue 16). */
  meter?: RequestMeter;
  priceTable?: PriceTable;
}

/**
 * `--all-versions`: copies every version of each key, oldest first, so a versioned target's
 * history matches the source's (delete markers become delete markers). Keys run concurrently;
 * the versions of one key run in order.
 */
export async function syncAllVersions(
  o: AllVersionsOptions,
): Promise<{ summary: SyncSummary; fatal?: ReturnType<typeof classifyListingFailure> }> {
  const runner = new TaskRunner({ concurrency: o.concurrency, signal: o.signal });
  const record = new Recorder(o.onEvent, o.dryRun);
  const transferer = new Transferer(o.source, o.target, (message) => record.warning(message));
  const work = pairGroups(o.source.listVersions(), o.target.listVersions());
  await runner.run(work, async ({ key, source, target }) => {
    if (!o.filter(key)) return;
    const missing = versionsToCopy(source, target);
    if (missing.length === 0) {
      record.skipped(key, source[source.length - 1]?.size ?? 0, `all ${source.length} version(s) present`);
      return;
    }
    for (const [i, v] of missing.entries()) {
      const reason = `version ${source.length - missing.length + i + 1} of ${source.length}${v.deleteMarker ? " (delete marker)" : ""}`;
      const copy = { type: "copy" as const, key, source: { size: v.size, etag: v.etag }, reason };
      if (o.dryRun) {
        record.copied(copy);
        continue;
      }
      const done = await runner.attempt(`copy ${key}`, async () =>
        v.deleteMarker
          ? (await o.target.deleteCurrent(key), undefined)
          : transferer.transfer(
              { key, size: v.size, lastModified: v.lastModified, etag: v.etag, versionId: v.versionId },
              o.write,
            ),
      );
      if (!done.ok) {
        record.failed({ key, action: "copy" }, { code: done.info.code, message: `${reason}: ${done.info.message}` });
        return; // later versions of this key would land out of order
      }
      record.copied(copy, done.value);
    }
  });
  return { summary: record.finish(measuredUsage(o.meter?.snapshot(), o.priceTable)), fatal: runner.fatal };
}

/** The store as a versioned one, or a usage error naming the option that needs versions. */
export function requireVersions(store: ObjectStore, flag: string): ObjectStore & VersionListing {
  if (!hasVersions(store)) throw new UsageError(`${flag} needs S3 buckets on both sides (versioned)`);
  return store;
}
