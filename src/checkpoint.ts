/**
 * The `--checkpoint FILE` of a resumable run (issue 17). The file is JSON lines: a header naming
 * the run (a fingerprint of its locations and of every option that decides what it plans) and
 * its key ranges, then one line per step of a range's progress (planner/checkpoint.ts: its
 * watermark, done, the deletes it planned). Lines are appended as the run goes, at most a second
 * apart, so a crash, a SIGKILL or a power loss loses at most the last second. The same command
 * with the same file then plans only what is left; a checkpoint written by another run is
 * refused. The file is removed once a run has planned every range and nothing failed.
 */
import { createHash } from "node:crypto";
import { appendFileSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { UsageError, type KeyRange } from "./core/types.js";
import { OPTION_TABLE, type OptionValues } from "./options/table.js";
import { CheckpointProgress, type PlannedDelete, type RangeMark, type RangeUpdate } from "./planner/checkpoint.js";

const FORMAT = "bucketsync-checkpoint";
const VERSION = 1;

interface Header {
  type: typeof FORMAT;
  version: number;
  fingerprint: string;
  source: string;
  target: string;
  ranges: KeyRange[];
}

/** What identifies a run: its locations, endpoints, and every option that decides what it plans or writes. */
export function runFingerprint(
  options: OptionValues & {
    source: unknown;
    target: unknown;
    connection?: { endpointUrl?: string };
    sourceConnection?: { endpointUrl?: string };
    targetConnection?: { endpointUrl?: string };
  },
): string {
  const decisive = Object.entries(OPTION_TABLE)
    .filter(([, def]) => def.distributed === "range")
    .map(([key]) => [key, (options as Record<string, unknown>)[key] ?? null]);
  const endpoint = (side?: { endpointUrl?: string }) => side?.endpointUrl ?? options.connection?.endpointUrl ?? null;
  return createHash("sha256")
    .update(
      JSON.stringify({
        source: options.source,
        target: options.target,
        endpoints: [endpoint(options.sourceConnection), endpoint(options.targetConnection)],
        delete: options.delete ?? false,
        options: decisive,
      }),
    )
    .digest("hex");
}

export interface LoadedCheckpoint {
  ranges: KeyRange[];
  marks: Map<number, RangeMark>;
  /** Deletes planned by ranges settled in earlier runs, not yet run. */
  deletes: PlannedDelete[];
  sourceObjects: number;
}

/** Reads a checkpoint; undefined when there is none; refuses one from another run. */
export function loadCheckpoint(
  path: string,
  fingerprint: string,
  run: { source: string; target: string },
): LoadedCheckpoint | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new UsageError(`cannot read --checkpoint ${path}: ${(err as Error).message}`);
  }
  const lines = text.split("\n");
  let header: Header | undefined;
  try {
    header = JSON.parse(lines[0] ?? "") as Header;
  } catch {
    header = undefined;
  }
  if (header?.type !== FORMAT || header.version !== VERSION || !Array.isArray(header.ranges))
    throw new UsageError(`--checkpoint ${path} is not a bucketsync checkpoint; give another file`);
  if (header.fingerprint !== fingerprint) {
    const where =
      header.source !== run.source || header.target !== run.target
        ? `${header.source} to ${header.target}`
        : "the same locations with other options";
    throw new UsageError(
      `--checkpoint ${path} belongs to another run (${where}); resume that run, or remove the file to start over`,
    );
  }
  const loaded: LoadedCheckpoint = { ranges: header.ranges, marks: new Map(), deletes: [], sourceObjects: 0 };
  for (const line of lines.slice(1)) {
    if (line === "") continue;
    let update: RangeUpdate;
    try {
      update = JSON.parse(line) as RangeUpdate;
    } catch {
      continue; // the line a crash cut short: that step is simply done again
    }
    loaded.marks.set(update.index, { ...(update.after !== undefined && { after: update.after }), done: update.done });
    loaded.deletes.push(...update.deletes);
    loaded.sourceObjects += update.sourceObjects;
  }
  return loaded;
}

/** Starts a checkpoint file for a new run (written whole, then renamed into place). */
export function createCheckpoint(
  path: string,
  fingerprint: string,
  run: { source: string; target: string },
  ranges: KeyRange[],
): void {
  const header: Header = { type: FORMAT, version: VERSION, fingerprint, ...run, ranges };
  const temp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(temp, JSON.stringify(header) + "\n");
    renameSync(temp, path);
  } catch (err) {
    throw new UsageError(`cannot write --checkpoint ${path}: ${(err as Error).message}`);
  }
}

/** Appends a run's progress to its checkpoint every second, and once more at the end. */
export class CheckpointWriter {
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly path: string,
    readonly progress: CheckpointProgress,
    everyMs = 1000,
  ) {
    this.timer = setInterval(() => this.flush(), everyMs);
    this.timer.unref();
  }

  flush(): void {
    const updates = this.progress.updates();
    if (updates.length > 0) appendFileSync(this.path, updates.map((u) => JSON.stringify(u)).join("\n") + "\n");
  }

  /** The last progress written; the file removed when the run needs no resuming. */
  finish(finished: boolean): void {
    clearInterval(this.timer);
    this.flush();
    if (finished) rmSync(this.path, { force: true });
  }
}

export { CheckpointProgress };

/**
 * A resumable run's checkpoint, from the options to the end of the run: refuses another run's
 * file before any request, plans from the file's ranges (or cuts new ones from the source's
 * split points and starts the file), hands the deletes earlier runs planned back to the
 * executor's spool, follows each action's outcome from the run's events, and writes it all down.
 */
export class CheckpointedRun {
  private readonly fingerprint: string;
  private readonly loaded: LoadedCheckpoint | undefined;
  private writer: CheckpointWriter | undefined;
  private progress: CheckpointProgress | undefined;

  constructor(
    private readonly path: string,
    options: Parameters<typeof runFingerprint>[0],
    private readonly run: { source: string; target: string },
  ) {
    this.fingerprint = runFingerprint(options);
    this.loaded = loadCheckpoint(path, this.fingerprint, run);
    if (!this.loaded) {
      // Writable before any request: a run must not find out at its first step.
      try {
        writeFileSync(`${path}.${process.pid}.tmp`, "");
        rmSync(`${path}.${process.pid}.tmp`);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        const why = code === "ENOENT" ? "its folder does not exist" : code === "EACCES" ? "permission denied" : code;
        throw new UsageError(`cannot write --checkpoint ${path}: ${why ?? (err as Error).message}`);
      }
    }
  }

  /** Source objects earlier runs listed (for the empty-source guard). */
  get earlierSourceObjects(): number {
    return this.loaded?.sourceObjects ?? 0;
  }

  /** The run's progress over the file's ranges, or over new ones cut at `splitPoints()`. */
  async start(splitPoints: () => Promise<string[]>, toRanges: (points: string[]) => KeyRange[]) {
    let ranges = this.loaded?.ranges;
    if (!ranges) {
      ranges = toRanges(await splitPoints());
      createCheckpoint(this.path, this.fingerprint, this.run, ranges);
    }
    this.progress = new CheckpointProgress(ranges, this.loaded?.marks ?? new Map());
    this.writer = new CheckpointWriter(this.path, this.progress);
    return this.progress;
  }

  /** Deletes that ranges settled by earlier runs planned, as actions for the executor's spool. */
  *earlierDeletes(): Generator<{
    type: "delete";
    key: string;
    target: { key: string; size: number; etag?: string; lastModified: number };
    reason: "not in source";
  }> {
    for (const d of this.loaded?.deletes ?? [])
      yield { type: "delete", key: d.key, target: { ...d, lastModified: 0 }, reason: "not in source" };
  }

  /** Follows an event of the run: the outcome of the action for its key. */
  onEvent(event: { type: string; key?: string; action?: string }): void {
    if (!this.progress || event.key === undefined) return;
    if (event.type === "copy" || event.type === "update" || event.type === "skip")
      this.progress.settled(event.key, true);
    else if (event.type === "error" && event.action !== "delete") this.progress.settled(event.key, false);
  }

  /** Writes the last progress; removes the file when the run planned everything and nothing failed. */
  finish(succeeded: boolean): void {
    this.writer?.finish(succeeded && this.progress?.complete === true);
  }
}
