/** What `bucketsync cleanup` prints: one line per upload, then the summary. */
import { displayUrl, printableKey } from "./render.js";

export function formatCleanupUpload(
  location: string,
  u: { key: string; uploadId: string; initiated: number },
  dryRun: boolean,
): string {
  const started = u.initiated > 0 ? new Date(u.initiated).toISOString() : "unknown";
  return `${dryRun ? "(dryrun) " : ""}abort: ${displayUrl(location)}${printableKey(u.key)} (upload ${u.uploadId}, started ${started})`;
}

export function formatCleanupSummary(
  r: { found: number; aborted: number; failed: number; younger: number },
  dryRun: boolean,
): string {
  const head = dryRun
    ? `would abort ${r.found} incomplete multipart upload(s)`
    : `aborted ${r.aborted} incomplete multipart upload(s), failed ${r.failed}`;
  return r.younger > 0 ? `${head}; ${r.younger} younger than --older-than left alone` : head;
}
