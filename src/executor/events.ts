import { emptyCounts, type RequestCounts } from "../core/meter.js";
import { AWS_S3_STANDARD_US_EAST_1, type Cost } from "../core/prices.js";
import type { CutoffReport } from "./cutoff.js";

/** Events a run emits, in the order things happen. The CLI renders them; library users subscribe. */
export type SyncEvent =
  | {
      type: "copy" | "update";
      key: string;
      /** The source's key, when the copy has another name (cp). */
      sourceKey?: string;
      size: number;
      etag?: string;
      reason: string;
      dryRun: boolean;
      verification?: string;
    }
  | { type: "delete"; key: string; size: number; etag?: string; reason: string; dryRun: boolean }
  | { type: "skip"; key: string; size: number; etag?: string; reason: string }
  | { type: "error"; key?: string; action?: string; code: string; message: string }
  | { type: "warning"; message: string }
  /** What the run has in force (conditional writes, a backup location), shown with -v. */
  | { type: "notice"; message: string }
  /** A target object copied to the backup location before it is overwritten or deleted (--backup-dir). */
  | { type: "backup"; key: string; backupKey: string; backup: string; before: "update" | "delete"; dryRun: boolean }
  /** The source changed between listing and copy: the key was read again and its newer object copied. */
  | { type: "replan"; key: string; reason: string }
  | ({ type: "summary" } & SyncSummary);

export interface SyncSummary {
  copied: number;
  updated: number;
  deleted: number;
  skipped: number;
  failed: number;
  /** Keys whose --checksum comparison could not decide and fell back to size and time. */
  undecidable: number;
  /** Copies proven by ETag or by hashing the bytes that passed through. */
  verified: number;
  /** Copies that could not be proven (multipart or non-MD5 ETags); see each event's reason. */
  unverifiable: number;
  /** Copies whose bytes provably differ from the source (counted in failed too). */
  mismatched: number;
  bytes: number;
  durationMs: number;
  dryRun: boolean;
  /** --failed-keys: the file and how many keys were written to it. */
  failedKeys?: { file: string; written: number };
  /** Why deletes did not run, when they were planned and withheld for safety. */
  deletesWithheld?: string;
  /** Target objects backed up before being overwritten or deleted (--backup-dir); set when any were. */
  backedUp?: number;
  /** Keys read again because the source changed after it was listed; set when any were. */
  replanned?: number;
  /**
   * S3 requests by kind (LIST, HEAD, GET, PUT, COPY, UploadPartCopy, DELETE), as sent; in a dry
   * run, what the real run would send (its listing measured, the planned work foreseen).
   */
  requests: RequestCounts;
  /** Bytes streamed through this machine (each byte once); in a dry run, foreseen. */
  bytesThrough: number;
  /** What `requests` and the bytes read out of S3 cost under the run's price table. */
  cost: Cost;
  /** True in a dry run: requests, bytesThrough and cost are the estimate of the real run. */
  estimated?: boolean;
  /** Set when --max-transfer or --max-duration cut the run off (no deletes ran; exit code 8). */
  cutoff?: CutoffReport;
}

export type EventSink = (event: SyncEvent) => void;

export function emptySummary(dryRun: boolean): SyncSummary {
  return {
    copied: 0,
    updated: 0,
    deleted: 0,
    skipped: 0,
    failed: 0,
    undecidable: 0,
    verified: 0,
    unverifiable: 0,
    mismatched: 0,
    bytes: 0,
    durationMs: 0,
    dryRun,
    requests: emptyCounts(),
    bytesThrough: 0,
    cost: { usd: 0, priceTable: AWS_S3_STANDARD_US_EAST_1.name },
  };
}
