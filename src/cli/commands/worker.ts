/** `bucketsync worker --queue URL`: take key ranges of distributed syncs and sync them. */
import type { Command } from "commander";
import { DEFAULT_LOCK_DURATION_MS, DEFAULT_QUEUE_NAME, redactRedisUrl } from "../../distributed/defaults.js";
import type { WorkerLogEvent } from "../../distributed/worker.js";
import { parseWholeNumber } from "../../options/parse.js";
import { againToQuit, type CliContext } from "../context.js";
import { humanBytes } from "../format/render.js";
import { addConnectionOptions, addSideConnectionOptions, connectionFrom, sideConnectionFrom } from "../options.js";

export function registerWorker(program: Command, ctx: CliContext): void {
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
    .option("--metrics-addr <host:port>", "serve this worker's Prometheus metrics at http://HOST:PORT/metrics")
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
      if (json) return void ctx.io.out.write(JSON.stringify(event) + "\n");
      const r = "index" in event ? `range ${event.index + 1}/${event.total}` : "";
      switch (event.type) {
        case "ready":
          if (!quiet)
            ctx.io.out.write(
              `worker ${event.worker} ready on queue '${event.queueName}' at ${redactRedisUrl(flags.queue as string)}\n`,
            );
          break;
        case "range-start":
          if (!quiet)
            ctx.io.out.write(
              `${r} started (${event.range}): ${event.source} -> ${event.target}, attempt ${event.attempt} [${event.jobId}]\n`,
            );
          break;
        case "range-done": {
          const s = event.summary;
          if (!quiet)
            ctx.io.out.write(
              `${r} done in ${(event.durationMs / 1000).toFixed(1)}s: ${s.copied} copied, ${s.updated} updated, ${s.skipped} unchanged, ${s.failed} failed, ${humanBytes(s.bytes)}; ${event.plannedDeletes} delete(s) left to the coordinator [${event.jobId}]\n`,
            );
          break;
        }
        case "range-released":
          if (!quiet) ctx.io.out.write(`${r} handed back to the queue (worker stopping) [${event.jobId}]\n`);
          break;
        case "range-failed":
          ctx.io.err.write(
            `${r} failed (attempt ${event.attempt}${event.final ? ", final" : "; it will be retried"}): ${event.reason} [${event.jobId}]\n`,
          );
          break;
        case "error":
          ctx.io.err.write(`bucketsync worker: ${event.message}\n`);
          break;
      }
    };
    const { runWorker } = await import("../../distributed/worker.js");
    const handle = await runWorker({
      queue: flags.queue as string,
      queueName: flags.queueName as string | undefined,
      connection: connectionFrom(flags),
      sourceConnection: sideConnectionFrom("source", flags),
      targetConnection: sideConnectionFrom("target", flags),
      concurrency: flags.concurrency as number | undefined,
      parallelRanges: flags.parallelRanges as number | undefined,
      lockDurationMs: flags.lockDuration !== undefined ? (flags.lockDuration as number) * 1000 : undefined,
      metricsAddr: flags.metricsAddr as string | undefined,
      onLog: print,
    });
    await new Promise<void>((resolve) => {
      ctx.onInterrupt((signal) => {
        if (!quiet && !json)
          ctx.io.err.write(
            `\nbucketsync worker: ${signal}: handing ranges in progress back to the queue; ${againToQuit(signal)}\n`,
          );
        void handle.close().then(resolve);
      });
    });
    ctx.setExit(0);
  });
}
