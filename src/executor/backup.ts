/**
 * --backup-dir (rclone's semantics): every target object a run would overwrite or delete is first
 * copied to the backup location, under its key relative to the sync root (with --suffix appended),
 * and only then replaced or deleted. It is the executor's two hooks (beforeReplace, beforeDelete):
 * a backup that fails leaves that object as it is, counted as failed. Copies go server-side where
 * the stores allow, keeping metadata and tags, and are verified like any copy.
 */
import { forEachLimit } from "../core/async.js";
import { classifyError, StoreError } from "../core/errors.js";
import { DEFAULT_RETRY, withRetry, type RetryPolicy } from "../core/retry.js";
import type { DeleteFailure, ObjectInfo, ObjectStore } from "../core/types.js";
import type { PendingDelete } from "./delete-spool.js";
import type { ExecuteHooks, HookContext } from "./executor.js";
import { Transferer } from "./transfer.js";

export interface BackupOptions {
  /** Appended to every backed-up key (`-2026-12-01`). */
  suffix?: string;
  /** With `suffix`: before the key's extension (`a-2026-12-01.txt`). */
  suffixKeepExtension?: boolean;
  retry?: RetryPolicy;
  signal?: AbortSignal;
}

/** The key a target object is backed up under. */
export function backupKey(key: string, suffix = "", keepExtension = false): string {
  if (!suffix) return key;
  if (!keepExtension) return key + suffix;
  const slash = key.lastIndexOf("/");
  const dot = key.lastIndexOf(".");
  // Only a dot inside the last segment, not its first character (`.env` has no extension).
  if (dot <= slash + 1) return key + suffix;
  return key.slice(0, dot) + suffix + key.slice(dot);
}

const BACKUP_CONCURRENCY = 16;

export class Backup implements ExecuteHooks {
  private readonly transferer: Transferer;

  constructor(
    private readonly target: ObjectStore,
    private readonly backup: ObjectStore,
    private readonly options: BackupOptions = {},
    onWarning?: (message: string) => void,
  ) {
    this.transferer = new Transferer(target, backup, onWarning);
  }

  async beforeReplace(action: { key: string; target: ObjectInfo }, ctx: HookContext): Promise<void> {
    await this.save(action.target, "update", ctx);
  }

  async beforeDelete(batch: PendingDelete[], ctx: HookContext): Promise<DeleteFailure[]> {
    const kept: DeleteFailure[] = [];
    await forEachLimit(batch, BACKUP_CONCURRENCY, async (d) => {
      try {
        await withRetry(
          () => this.save({ ...d, lastModified: d.lastModified ?? Date.now() }, "delete", ctx),
          this.options.retry ?? DEFAULT_RETRY,
          this.options.signal,
        );
      } catch (err) {
        const info = classifyError(err);
        kept.push({ key: d.key, code: info.code, message: info.message });
      }
    });
    return kept;
  }

  private async save(object: ObjectInfo, before: "update" | "delete", ctx: HookContext): Promise<void> {
    const key = backupKey(object.key, this.options.suffix, this.options.suffixKeepExtension);
    if (!ctx.dryRun) {
      try {
        // The object the plan saw (pinned by its ETag), with its metadata and tags.
        const verification = await this.transferer.transfer(object, { metadataDirective: "COPY", verify: "on" }, key);
        if (verification?.status === "mismatch") throw new StoreError("BackupMismatch", verification.reason);
      } catch (err) {
        const info = classifyError(err);
        // Not a setup error of the run: the object stays, the others go on.
        throw new StoreError(
          "BackupFailed",
          `its backup to ${this.backup.description}${key} failed (${info.message}), so it was left as it is`,
          { retryable: info.class === "retry" },
        );
      }
    }
    ctx.record.backedUp(object.key, key, this.backup.description, before);
  }
}
