/**
 * --max-transfer, --max-duration and --cutoff-mode (issue 16), with rclone's meanings:
 *  - hard (default): stop at the limit. A transfer that would carry the bytes past --max-transfer
 *    is not started; at --max-duration the transfers in flight are stopped too (multipart work
 *    aborted, streams cut: nothing half-written is left).
 *  - soft: stop starting transfers once the limit is reached (the last one started may carry the
 *    bytes past it); transfers in flight finish.
 *  - cautious: never start a transfer that would carry the bytes past --max-transfer; transfers in
 *    flight finish.
 * Bytes are counted as each transfer starts (its whole size), server-side copies and streamed
 * ones alike, so a limit holds whatever the concurrency. A run that was cut off runs no deletes.
 */
import { setMaxListeners } from "node:events";
import bytes from "bytes";
import { StoreError } from "../core/errors.js";

import type { CutoffMode } from "../options/table.js";

/** What the summary says of a cut-off run. */
export interface CutoffReport {
  /** e.g. "--max-transfer 5 MiB reached". */
  reason: string;
  mode: CutoffMode;
  /** Copies and updates planned but not made, and their bytes. */
  left: { objects: number; bytes: number };
  /** False when the listing stopped at the cut-off (--max-duration): more may be left than counted. */
  listingComplete: boolean;
}

export interface CutoffSettings {
  maxTransfer?: number;
  maxDuration?: number;
  cutoffMode?: CutoffMode;
}

export class Cutoff {
  private committed = 0;
  private reason?: string;
  private byDuration = false;
  private readonly left = { objects: 0, bytes: 0 };
  private timer?: NodeJS.Timeout;
  private readonly hardStop = new AbortController();
  readonly mode: CutoffMode;

  constructor(private readonly settings: CutoffSettings) {
    this.mode = settings.cutoffMode ?? "hard";
    // Every streamed transfer in flight listens to it: many listeners by design, not a leak.
    setMaxListeners(0, this.hardStop.signal);
  }

  /** Starts the --max-duration clock; `onDuration` hears when it runs out. */
  start(onDuration: () => void): void {
    const ms = this.settings.maxDuration;
    if (ms === undefined) return;
    this.timer = setTimeout(() => {
      this.byDuration = true;
      this.reason ??= `--max-duration ${formatDuration(ms)} reached`;
      onDuration();
      if (this.mode === "hard") this.hardStop.abort(new StoreError("CutOff", `cut off: ${this.reason}`));
    }, ms);
    this.timer.unref();
  }

  /** Aborted when a hard cut-off stops the transfers in flight. */
  get signal(): AbortSignal {
    return this.hardStop.signal;
  }

  /** True once the run stops reading the plan (a --max-duration cut-off). */
  get stopsPlanning(): boolean {
    return this.byDuration;
  }

  get cut(): boolean {
    return this.reason !== undefined;
  }

  /**
   * A transfer that hard and cautious modes can never start, whatever was copied before: it alone
   * is over --max-transfer. It fails on its own (a clear message, no deletes) instead of cutting
   * the run off, which would stop every later run at the same object.
   */
  oversize(size: number): { code: string; message: string } | undefined {
    const max = this.settings.maxTransfer;
    if (max === undefined || this.mode === "soft" || size <= max) return undefined;
    return {
      code: "TooLarge",
      message: `TooLarge: ${formatSize(size)} is more than --max-transfer ${formatSize(max)}, so no run under this limit copies it (raise the limit, use --cutoff-mode soft, or leave it out with --exclude)`,
    };
  }

  /** Whether a transfer of `size` bytes may start; counts it when it may. */
  admit(size: number): boolean {
    if (this.reason !== undefined) return false;
    const max = this.settings.maxTransfer;
    if (max !== undefined) {
      const may = this.mode === "soft" ? this.committed < max : this.committed + size <= max;
      if (!may) {
        this.reason = `--max-transfer ${formatSize(max)} reached`;
        return false;
      }
    }
    this.committed += size;
    return true;
  }

  /** A planned copy that the cut-off left undone. */
  leftBehind(size: number): void {
    this.left.objects++;
    this.left.bytes += size;
  }

  report(): CutoffReport | undefined {
    if (this.reason === undefined) return undefined;
    return { reason: this.reason, mode: this.mode, left: { ...this.left }, listingComplete: !this.byDuration };
  }

  dispose(): void {
    clearTimeout(this.timer);
  }
}

/** Sizes in the cut-off's messages ("5 MB"). */
export function formatSize(n: number): string {
  return bytes.format(n, { unitSeparator: " " }) ?? `${n} B`;
}

function formatDuration(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}
