/** The CLI of distributed sync: `sync --queue`, `worker` and `status`. */
import type { Command } from "commander";
import { UsageError } from "../core/types.js";
import type { SyncEvent } from "../executor/events.js";
// BullMQ and ioredis load only when a queue command runs: every other command starts faster.
import type { DistributedProgress } from "../distributed/coordinator.js";
import { DEFAULT_LOCK_DURATION_MS, DEFAULT_QUEUE_NAME, redactRedisUrl } from "../distributed/defaults.js";
import type { RunStatus } from "../distributed/status.js";
import type { WorkerLogEvent } from "../distributed/worker.js";
import type { SyncOptions, SyncResult } from "../sync.js";
import { addConnectionOptions, addSideConnectionOptions, connectionFrom, parseWholeNumber, sideConnectionFrom } from "./options.js";
import type { ProgressDisplay } from "./progress.js";
import { humanBytes } from "./render.js";

interface IO {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}

/** --queue, --queue-name and --shards on `sync`: with --queue the run is distributed over workers. */
export function addQueueOptions(command: Command): Command {
  return command
    .option("--queue <redis-url>", "distribute the sync: enqueue key ranges on this Redis (redis://host:6379) for 'bucketsync worker' processes")
    .option("--queue-name <name>", `queue name shared with the workers (default ${DEFAULT_QUEUE_NAME})`)
    .option("--shards <n>", "with --queue: split the key space into at most N ranges (default 64)", parseWholeNumber("--shards"));
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
    line(`bucketsync: ${result.failedRanges.length} range(s) failed; the others are done. Run the same command again to retry only those.`);
  }
  return result;
}

/** `worker` and `status`. */
export function addDistributedCommands(program: Command, io: IO, setExit: (code: number) => void): void {
  const workerCmd = program
    .command("worker")
    .description("take key ranges of distributed syncs from a Redis queue and sync them (runs until Ctrl-C or SIGTERM)")
    .requiredOption("--queue <redis-url>", "the Redis the coordinator enqueues on (redis://host:6379)")
    .option("--queue-name <name>", `queue name (default ${DEFAULT_QUEUE_NAME})`)
    .option("--concurrency <n>", "requests in flight for each range (default 64)", parseWholeNumber("--concurrency"))
    .option("--parallel-ranges <n>", "ranges worked on at once (default 1)", parseWholeNumber("--parallel-ranges"))
    .option(
      "--lock-duration <seconds>",
      `a dead worker's range goes to another worker after about twice this (default ${DEFAULT_LOCK_DURATION_MS / 1000})`,
      parseWholeNumber("--lock-duration"),
    )
    .option("--json", "print JSON lines: one event per range started, done or failed")
    .option("-q, --quiet", "print only failures");
  addConnectionOptions(workerCmd);
  addSideConnectionOptions(workerCmd);
  workerCmd.addHelpText(
    "after",
    `
Each worker uses its own AWS credential chain and connection flags: secrets never travel through Redis.
Example:
  bucketsync worker --queue redis://queue.internal:6379 --endpoint-url https://s3.eu-west-1.amazonaws.com`,
  );
  workerCmd.action(async (flags: Record<string, unknown>) => {
    const json = !!flags.json;
    const quiet = !!flags.quiet;
    const print = (event: WorkerLogEvent) => {
      if (json) return void io.out.write(JSON.stringify(event) + "\n");
      const r = "index" in event ? `range ${event.index + 1}/${event.total}` : "";
      switch (event.type) {
        case "ready":
          if (!quiet) io.out.write(`worker ${event.worker} ready on queue '${event.queueName}' at ${redactRedisUrl(flags.queue as string)}\n`);
          break;
        case "range-start":
          if (!quiet) io.out.write(`${r} started (${event.range}): ${event.source} -> ${event.target}, attempt ${event.attempt} [${event.jobId}]\n`);
          break;
        case "range-done": {
          const s = event.summary;
          if (!quiet)
            io.out.write(
              `${r} done in ${(event.durationMs / 1000).toFixed(1)}s: ${s.copied} copied, ${s.updated} updated, ${s.skipped} unchanged, ${s.failed} failed, ${humanBytes(s.bytes)}; ${event.plannedDeletes} delete(s) left to the coordinator [${event.jobId}]\n`,
            );
          break;
        }
        case "range-released":
          if (!quiet) io.out.write(`${r} handed back to the queue (worker stopping) [${event.jobId}]\n`);
          break;
        case "range-failed":
          io.err.write(`${r} failed (attempt ${event.attempt}${event.final ? ", final" : "; it will be retried"}): ${event.reason} [${event.jobId}]\n`);
          break;
        case "error":
          io.err.write(`bucketsync worker: ${event.message}\n`);
          break;
      }
    };
    const { runWorker } = await import("../distributed/worker.js");
    const handle = await runWorker({
      queue: flags.queue as string,
      queueName: flags.queueName as string | undefined,
      connection: connectionFrom(flags),
      sourceConnection: sideConnectionFrom("source", flags),
      targetConnection: sideConnectionFrom("target", flags),
      concurrency: flags.concurrency as number | undefined,
      parallelRanges: flags.parallelRanges as number | undefined,
      lockDurationMs: flags.lockDuration !== undefined ? (flags.lockDuration as number) * 1000 : undefined,
      onLog: print,
    });
    await new Promise<void>((resolve) => {
      const onSignal = (signal: NodeJS.Signals) => {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
        process.once("SIGINT", () => process.exit(130));
        if (!quiet && !json) io.err.write(`\nbucketsync worker: ${signal}: handing ranges in progress back to the queue; press Ctrl-C again to quit at once\n`);
        void handle.close().then(resolve);
      };
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
    });
    setExit(0);
  });

  const statusCmd = program
    .command("status")
    .description("show the distributed runs a queue knows: ranges pending, running, done and failed")
    .requiredOption("--queue <redis-url>", "the Redis of the runs (redis://host:6379)")
    .option("--queue-name <name>", `queue name (default ${DEFAULT_QUEUE_NAME})`)
    .option("--run <id>", "only this run")
    .option("--json", "print JSON");
  statusCmd.action(async (flags: Record<string, unknown>) => {
    let status;
    try {
      const { queueStatus } = await import("../distributed/status.js");
      status = await queueStatus({ queue: flags.queue as string, queueName: flags.queueName as string | undefined, runId: flags.run as string | undefined });
    } catch (err) {
      if (err instanceof UsageError) throw err;
      io.err.write(`bucketsync: error: ${(err as Error).message}\n`);
      setExit(2);
      return;
    }
    if (flags.json) {
      io.out.write(JSON.stringify(status) + "\n");
    } else {
      io.out.write(`queue '${status.queueName}' at ${status.queue}: ${status.workers} worker(s) connected, ${status.runs.length} run(s)\n`);
      for (const run of status.runs) io.out.write(formatRun(run));
    }
    setExit(0);
  });
}

function formatRun(run: RunStatus): string {
  const when = new Date(run.finishedAt ?? run.createdAt).toISOString();
  let text =
    `run ${run.runId}#${run.generation}: ${run.source} -> ${run.target}: ${run.state}${run.finishedAt ? ` at ${when}` : `, started ${when}`}${run.note && run.state !== "done" ? ` (${run.note})` : ""}\n` +
    `  ranges: ${run.ranges} total, ${run.pending} pending, ${run.running} running, ${run.done} done, ${run.failed} failed\n`;
  if (run.summary) {
    const s = run.summary;
    text += `  summary: ${s.copied} copied, ${s.updated} updated, ${s.deleted} deleted, ${s.skipped} unchanged, ${s.failed} failed, ${humanBytes(s.bytes)} in ${(s.durationMs / 1000).toFixed(1)}s\n`;
  }
  for (const f of run.failedRanges) text += `  failed range ${f.index + 1} (${f.range}): ${f.reason}\n`;
  return text;
}
