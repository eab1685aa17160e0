/** `bucketsync status --queue URL`: the distributed runs a queue knows. */
import type { Command } from "commander";
import { UsageError } from "../../core/types.js";
import { DEFAULT_QUEUE_NAME } from "../../distributed/defaults.js";
import { EXIT, type CliContext } from "../context.js";
import { formatRun } from "../format/distributed.js";

export function registerStatus(program: Command, ctx: CliContext): void {
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
      const { queueStatus } = await import("../../distributed/status.js");
      status = await queueStatus({
        queue: flags.queue as string,
        queueName: flags.queueName as string | undefined,
        runId: flags.run as string | undefined,
      });
    } catch (err) {
      if (err instanceof UsageError) throw err;
      ctx.io.err.write(`bucketsync: error: ${(err as Error).message}\n`);
      ctx.setExit(EXIT.usage);
      return;
    }
    if (flags.json) {
      ctx.io.out.write(JSON.stringify(status) + "\n");
    } else {
      ctx.io.out.write(
        `queue '${status.queueName}' at ${status.queue}: ${status.workers} worker(s) connected, ${status.runs.length} run(s)\n`,
      );
      for (const run of status.runs) ctx.io.out.write(formatRun(run));
    }
    ctx.setExit(0);
  });
}
