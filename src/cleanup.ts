/**
 * `cleanup()` (issue 17): aborts the incomplete multipart uploads under an S3 location (rclone's
 * `cleanup`), those started before a cutoff (24 hours ago by default, so uploads still running
 * elsewhere are left alone), or with `dryRun` only lists them. The parts of an incomplete upload
 * cost storage and never show in a listing of objects.
 */
import { classifyError } from "./core/errors.js";
import { hasMultipartUploads } from "./core/capabilities.js";
import { parseLocation } from "./core/location.js";
import { runPool } from "./core/async.js";
import { UsageError } from "./core/types.js";
import type { S3ConnectionOptions } from "./stores/s3/client.js";
import { StoreOpener } from "./stores/open.js";

export const DEFAULT_CLEANUP_AGE_MS = 24 * 60 * 60 * 1000;

export interface CleanupOptions {
  /** `s3://bucket[/prefix]`. */
  location: string;
  connection?: S3ConnectionOptions;
  /** Only uploads started before this moment (epoch ms); default 24 hours ago. */
  startedBefore?: number;
  dryRun?: boolean;
  /** Each upload found old enough: aborted (or would be), or why the abort failed. */
  onUpload?: (u: { key: string; uploadId: string; initiated: number; error?: string }) => void;
}

export interface CleanupResult {
  /** Uploads old enough to abort. */
  found: number;
  aborted: number;
  failed: number;
  /** Younger uploads left alone. */
  younger: number;
}

const ABORT_CONCURRENCY = 8;

export async function cleanup(options: CleanupOptions): Promise<CleanupResult> {
  const loc = parseLocation(options.location);
  if (loc.kind !== "s3") throw new UsageError("cleanup works on s3:// locations");
  const cutoff = options.startedBefore ?? Date.now() - DEFAULT_CLEANUP_AGE_MS;
  const opener = new StoreOpener();
  const result: CleanupResult = { found: 0, aborted: 0, failed: 0, younger: 0 };
  try {
    const opened = await opener.open(loc, { connection: options.connection });
    if (!hasMultipartUploads(opened)) throw new UsageError(`${opened.description} has no multipart uploads`);
    const store = opened;
    async function* oldEnough() {
      for await (const u of store.listUploads()) {
        if (u.initiated >= cutoff) result.younger++;
        else yield u;
      }
    }
    await runPool(oldEnough(), options.dryRun ? 1 : ABORT_CONCURRENCY, async (u) => {
      result.found++;
      if (options.dryRun) {
        options.onUpload?.(u);
        return;
      }
      try {
        await store.abortUpload(u.key, u.uploadId);
        result.aborted++;
        options.onUpload?.(u);
      } catch (err) {
        result.failed++;
        options.onUpload?.({ ...u, error: classifyError(err).message });
      }
    });
    return result;
  } finally {
    await opener.close();
  }
}
