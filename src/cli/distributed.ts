/** `sync --queue`: the coordinator side of a distributed sync (the worker and status commands are in commands/). */
import type { Command } from "commander";
import type { SyncEvent } from "../executor/events.js";
// BullMQ and ioredis load only when a queue command runs: every other command starts faster.
import type { DistributedProgress } from "../distributed/coordinator.js";
import { DEFAULT_QUEUE_NAME } from "../distributed/defaults.js";
import type { SyncOptions, SyncResult } from "../sync.js";
import { parseWholeNumber } from "../options/parse.js";
import type { ProgressDisplay } from "./format/progress.js";
import { humanBytes } from "./format/render.js";

interface IO {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}

/** --queue, --queue-name and --shards on `sync`: with --queue the run is distributed over workers. */
export function addQueueOptions(command: Command): Command {
  return command
    .option(
      "--queue <redis-url>",
      "distribute the sync: enqueue key ranges on this Redis (redis://host:6379) for 'bucketsync worker' processes",
    )
    .option("--queue-name <name>", `queue name shared with the workers (default ${DEFAULT_QUEUE_NAME})`)
    .option(
      "--shards <n>",
      "with --queue: split the key space into at most N ranges (default 64)",
      parseWholeNumber("--shards"),
    );
}

/** `sync --queue`: the coordinator, with aggregated progress lines on stderr (every 2 s while something changes). */
export async function runDistributedSync(
  options: SyncOptions,
  flags: Record<string, unknown>,
  io: IO,
  onEvent: (event: SyncEvent) => void,
  signal: AbortSignal,
  display?: ProgressDisplay,
): Promise<SyncResult> {
  const line = (text: string) => (display ? display.log(text) : io.err.write(`${text}\n`));
  let lastPrinted = 0;
  let last: DistributedProgress | undefined;
  const print = (p: DistributedProgress) =>
    line(
      `run ${p.runId}#${p.generation} ${p.phase === "deletes" ? "deletes: every range done, deleting" : `ranges: ${p.done}/${p.ranges} done, ${p.running} running, ${p.pending} pending, ${p.failed} failed`}; ` +
        `${p.workers} worker(s); ${p.copied} copied, ${p.updated} updated, ${p.skipped} unchanged, ${p.failedObjects} failed, ${humanBytes(p.bytes)}`,
    );
  const { distributedSync } = await import("../distributed/coordinator.js");
  const result = await distributedSync({
    ...options,
    queue: flags.queue as string,
    queueName: flags.queueName as string | undefined,
    shards: flags.shards as number | undefined,
    onEvent,
    signal,
    onProgress: (p) => {
      last = p;
      if (flags.quiet) return;
      const finished = p.done + p.failed === p.ranges;
      if (finished || p.phase === "deletes" || Date.now() - lastPrinted >= 2000) {
        lastPrinted = Date.now();
        print(p);
      }
    },
  });
  if (!flags.quiet && last && result.failedRanges.length > 0) {
    line(
      `bucketsync: ${result.failedRanges.length} range(s) failed; the others are done. Run the same command again to retry only those.`,
    );
  }
  return result;
}
