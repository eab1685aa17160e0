import { createWriteStream, openSync, type WriteStream } from "node:fs";
import { UsageError } from "../../core/types.js";
import { once } from "node:events";
import type { SyncEvent } from "../../executor/events.js";

/**
 * `--report FILE`: a JSON lines audit of every action of a run (key, action, reason, size, ETag,
 * outcome), skips included, so a user can see afterwards exactly what a run did.
 */
export class RunReport {
  private readonly lines: JsonLines;

  constructor(path: string) {
    this.lines = new JsonLines(path);
  }

  onEvent(event: SyncEvent): void {
    const time = new Date().toISOString();
    switch (event.type) {
      case "copy":
      case "update":
      case "delete":
        this.write({
          time,
          key: event.key,
          action: event.type,
          reason: event.reason,
          size: event.size,
          etag: event.etag,
          outcome: event.dryRun ? "dry-run" : "done",
          ...("verification" in event && event.verification !== undefined && { verification: event.verification }),
        });
        return;
      case "skip":
        this.write({
          time,
          key: event.key,
          action: "skip",
          reason: event.reason,
          size: event.size,
          etag: event.etag,
          outcome: "unchanged",
        });
        return;
      case "error":
        this.write({
          time,
          key: event.key,
          action: event.action ?? "unknown",
          reason: event.message,
          code: event.code,
          outcome: "failed",
        });
        return;
      case "warning":
        this.write({ time, action: "warning", reason: event.message });
        return;
      case "backup":
        this.write({
          time,
          key: event.key,
          action: "backup",
          reason: `before the ${event.before}`,
          backup: `${event.backup}${event.backupKey}`,
          outcome: event.dryRun ? "dry-run" : "done",
        });
        return;
      case "replan":
        this.write({ time, key: event.key, action: "replan", reason: event.reason, outcome: "re-read" });
        return;
      case "summary":
        this.write({ time, action: "summary", ...event, type: undefined });
        return;
    }
  }

  close(): Promise<void> {
    return this.lines.close();
  }

  private write(record: Record<string, unknown>): void {
    this.lines.write(record);
  }
}

/** A JSON lines file opened up front, so a bad path is a usage error before anything runs. */
export class JsonLines {
  private readonly stream: WriteStream;

  constructor(path: string) {
    let fd: number;
    try {
      fd = openSync(path, "w");
    } catch (err) {
      throw new UsageError(
        `cannot write --report file '${path}': ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
    this.stream = createWriteStream("", { fd });
  }

  write(record: object): void {
    this.stream.write(JSON.stringify(record) + "\n");
  }

  async close(): Promise<void> {
    this.stream.end();
    await once(this.stream, "close");
  }
}
