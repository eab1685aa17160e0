/**
 * The one recorder of a run's outcomes: the only code that touches the summary and emits the
 * events the CLI renders and library users subscribe to. Each outcome is one method, so a count
 * and its event can never disagree.
 */
import type { ErrorInfo } from "../core/errors.js";
import type { Verification } from "../integrity/verify.js";
import type { Action } from "../planner/planner.js";
import { emptySummary, type EventSink, type SyncSummary } from "./events.js";
import type { FailedKeyLog } from "./failed-keys.js";
import { formatSize, type CutoffReport } from "./cutoff.js";
import type { Usage } from "./estimate.js";

type Copy = Extract<Action, { type: "copy" | "update" }>;

export class Recorder {
  readonly summary: SyncSummary;
  private readonly started = Date.now();

  constructor(
    private readonly onEvent: EventSink,
    private readonly dryRun: boolean,
    /** --failed-keys: every key that fails is written there too. */
    private readonly failedKeys?: FailedKeyLog,
  ) {
    this.summary = emptySummary(dryRun);
  }

  /** A key both sides already agree on. */
  skipped(key: string, size: number, reason: string, etag?: string, undecidable = false): void {
    this.summary.skipped++;
    if (undecidable) this.summary.undecidable++;
    this.onEvent({ type: "skip", key, size, etag, reason });
  }

  /** An update whose comparison could not decide by content (counted whatever the copy's outcome). */
  undecided(): void {
    this.summary.undecidable++;
  }

  /** A copy or update that happened (or would, in a dry run), with what proved it. */
  copied(
    action: Copy | { type: "copy"; key: string; source: { key?: string; size: number; etag?: string }; reason: string },
    verification?: Verification,
  ): void {
    const s = this.summary;
    if (action.type === "copy") s.copied++;
    else s.updated++;
    if (verification?.status === "verified") s.verified++;
    if (verification?.status === "unverifiable") s.unverifiable++;
    s.bytes += action.source.size;
    this.onEvent({
      type: action.type,
      key: action.key,
      ...(action.source.key !== undefined && action.source.key !== action.key && { sourceKey: action.source.key }),
      size: action.source.size,
      etag: action.source.etag,
      reason: action.reason,
      dryRun: this.dryRun,
      ...(verification && {
        verification:
          verification.status === "verified" ? `verified: ${verification.how}` : `unverifiable: ${verification.reason}`,
      }),
    });
  }

  /** One object (or a batch, without a key: `keys` names its objects) that failed. */
  failed(
    what: { key?: string; keys?: readonly string[]; action: string },
    info: Pick<ErrorInfo, "code" | "message">,
    count = 1,
  ): void {
    this.summary.failed += count;
    for (const key of what.key !== undefined ? [what.key] : (what.keys ?? []))
      this.failedKeys?.add(key, `${what.action}: ${info.message}`);
    this.onEvent({
      type: "error",
      ...(what.key !== undefined && { key: what.key }),
      action: what.action,
      code: info.code,
      message: info.message,
    });
  }

  /** A copy whose bytes provably differ (or, under --verify strict, cannot be proven): a failure. */
  verificationFailed(
    action: Copy,
    verification: Extract<Verification, { status: "mismatch" | "unverifiable" }>,
    afterwards: string,
  ): void {
    if (verification.status === "mismatch") this.summary.mismatched++;
    else this.summary.unverifiable++;
    const what = verification.status === "mismatch" ? "verification failed" : "cannot be verified";
    this.failed(
      { key: action.key, action: action.type },
      {
        code: verification.status === "mismatch" ? "VerifyMismatch" : "Unverifiable",
        message: `copied, but ${what}: ${verification.reason}; ${afterwards}`,
      },
    );
  }

  deleted(d: { key: string; size: number; etag?: string }, reason = "not in source"): void {
    this.summary.deleted++;
    this.onEvent({
      type: "delete",
      key: d.key,
      size: d.size,
      etag: d.etag,
      reason,
      dryRun: this.dryRun,
    });
  }

  notice(message: string): void {
    this.onEvent({ type: "notice", message });
  }

  /** A target object saved to the backup location (or that would be, in a dry run). */
  backedUp(key: string, backupKey: string, backup: string, before: "update" | "delete"): void {
    this.summary.backedUp = (this.summary.backedUp ?? 0) + 1;
    this.onEvent({ type: "backup", key, backupKey, backup, before, dryRun: this.dryRun });
  }

  /** The source moved on between listing and copy; the key is planned again from what it holds now. */
  replanned(key: string, reason: string): void {
    this.summary.replanned = (this.summary.replanned ?? 0) + 1;
    this.onEvent({ type: "replan", key, reason });
  }

  warning(message: string): void {
    this.onEvent({ type: "warning", message });
  }

  /** Why planned deletes did not run. */
  withheld(message: string, warn: boolean): void {
    this.summary.deletesWithheld = message;
    if (warn) this.warning(message);
  }

  /** A run that --max-transfer or --max-duration cut off: says what was left, once. */
  cutOff(report: CutoffReport): void {
    this.summary.cutoff = report;
    const { objects, bytes } = report.left;
    const left =
      objects > 0
        ? `${report.listingComplete ? "" : "at least "}${objects} object(s) (${formatSize(bytes)}) left to copy`
        : report.listingComplete
          ? "nothing left to copy"
          : "the rest of the source was not read";
    this.warning(
      `cut off: ${report.reason} (--cutoff-mode ${report.mode}); ${left}${report.listingComplete ? "" : ", the listing stopped"}; no deletes ran; run again to continue`,
    );
  }

  /** The summary with the run's duration (and what it sent, or would send), once it is over. */
  finish(usage?: Usage & { estimated?: boolean }): SyncSummary {
    this.summary.durationMs = Date.now() - this.started;
    if (usage) {
      this.summary.requests = usage.requests;
      this.summary.bytesThrough = usage.bytesThrough;
      this.summary.cost = usage.cost;
      if (usage.estimated) this.summary.estimated = true;
    }
    if (this.failedKeys) {
      this.failedKeys.close();
      this.summary.failedKeys = { file: this.failedKeys.path, written: this.failedKeys.written };
      if (this.failedKeys.unwritable > 0)
        this.warning(
          `${this.failedKeys.unwritable} failed key(s) hold a tab or a line break and are not in ${this.failedKeys.path}; the error lines name them`,
        );
    }
    return this.summary;
  }
}
