import cliProgress from "cli-progress";
import type { SyncEvent } from "../../executor/events.js";
import { humanBytes } from "./render.js";

/**
 * Live progress on a terminal: counts, bytes, rate, errors and elapsed time, redrawn in place at
 * most 4 times a second (cli-progress). Action lines go through `log` so they print above the
 * progress line instead of through it. The total is unknown while the listings stream (that is
 * what keeps memory flat), so there is no percentage; the delete phase shows its own count.
 */
export class ProgressDisplay {
  private readonly multibar: cliProgress.MultiBar;
  private readonly bar: cliProgress.SingleBar;
  private readonly started = Date.now();
  private counts = { compared: 0, copied: 0, deleted: 0, skipped: 0, errors: 0, bytes: 0 };
  private timer: NodeJS.Timeout;

  constructor(stream: NodeJS.WriteStream, label: string) {
    this.multibar = new cliProgress.MultiBar(
      {
        stream,
        fps: 4,
        hideCursor: true,
        clearOnComplete: true,
        stopOnComplete: false,
        format: `${label} {compared} compared | {copied} copied | {deleted} deleted | {skipped} unchanged | {bytes} | {rate} | {errors} errors | {elapsed}`,
      },
      cliProgress.Presets.shades_classic,
    );
    this.bar = this.multibar.create(1, 0, this.payload());
    // Elapsed time and rate move even when no event arrives.
    this.timer = setInterval(() => this.bar.update(0, this.payload()), 250);
    this.timer.unref();
  }

  /** Prints a line above the progress display. */
  log(line: string): void {
    this.multibar.log(line.endsWith("\n") ? line : `${line}\n`);
  }

  onEvent(event: SyncEvent): void {
    const c = this.counts;
    switch (event.type) {
      case "copy":
      case "update":
        c.compared++;
        c.copied++;
        c.bytes += event.size;
        break;
      case "skip":
        c.compared++;
        c.skipped++;
        break;
      case "delete":
        c.deleted++;
        break;
      case "error":
        c.errors++;
        break;
      default:
        return;
    }
    this.bar.update(0, this.payload());
  }

  stop(): void {
    clearInterval(this.timer);
    this.multibar.stop();
  }

  private payload() {
    const seconds = (Date.now() - this.started) / 1000;
    const c = this.counts;
    return {
      ...c,
      bytes: humanBytes(c.bytes),
      rate: `${seconds > 0 ? Math.round((c.copied + c.skipped + c.deleted) / seconds) : 0} obj/s, ${humanBytes(seconds > 0 ? c.bytes / seconds : 0)}/s`,
      elapsed: `${seconds.toFixed(0)}s`,
    };
  }
}
