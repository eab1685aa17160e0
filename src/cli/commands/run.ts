/** `bucketsync run JOB`: a named job from the config file; flags given override its settings. */
import type { Command } from "commander";
import { UsageError } from "../../core/types.js";
import type { FilterRule } from "../../options/table.js";
import type { CliContext } from "../context.js";
import { addSyncFlags, runSync } from "./sync.js";

export function registerRun(program: Command, ctx: CliContext): void {
  const filters: FilterRule[] = [];
  const command = program
    .command("run")
    .description(
      "run a named job from the config file; flags given here override the job's settings (--no-delete turns a job's delete off)",
    )
    .argument("<job>", "job name (see 'bucketsync jobs')");
  addSyncFlags(command, "run", filters);
  command.action(async (name: string, flags: Record<string, unknown>) => {
    const cfg = await ctx.config();
    const job = cfg.jobs[name];
    if (!job) {
      const known = Object.keys(cfg.jobs);
      throw new UsageError(
        `unknown job '${name}'${known.length ? `; configured jobs: ${known.join(", ")}` : cfg.file ? "" : " (no bucketsync.yaml found)"}`,
      );
    }
    // `from: production` names a remote of the same file, as `production:` does.
    const side = (value: string) => (Object.hasOwn(cfg.remotes, value) ? `${value}:` : value);
    ctx.setExit(await runSync(ctx, { source: side(job.from), target: side(job.to), flags, filters, config: cfg, job }));
  });
}
