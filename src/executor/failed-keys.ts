/**
 * The `--failed-keys` file (issue 17): one line per key that failed, the key, a tab and the
 * reason, in the form `--files-from` reads back (a line's key ends at its first tab), so a
 * re-drive copies only those keys. Lines are written as failures happen, so a run that is
 * killed still leaves the ones so far.
 */
import { closeSync, openSync, writeSync } from "node:fs";
import { UsageError } from "../core/types.js";

export class FailedKeyLog {
  private fd: number | undefined;
  /** Keys written so far. */
  written = 0;
  /** Keys that failed but hold a tab or a line break, which a line of this file cannot carry. */
  unwritable = 0;

  constructor(readonly path: string) {
    try {
      this.fd = openSync(path, "w");
    } catch (err) {
      throw new UsageError(`cannot write --failed-keys ${path}: ${(err as Error).message}`);
    }
  }

  add(key: string, reason: string): void {
    if (this.fd === undefined) return;
    if (/[\t\n\r]/.test(key)) {
      this.unwritable++;
      return;
    }
    writeSync(this.fd, `${key}\t${reason.replace(/[\t\r\n]+/g, " ")}\n`);
    this.written++;
  }

  close(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
  }
}
