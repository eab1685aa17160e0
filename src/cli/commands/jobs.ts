/** `bucketsync jobs`: the jobs and remotes of the config file. */
import type { Command } from "commander";
import { maskEndpoint } from "../../core/endpoint.js";
import { jobFilters } from "../../config/resolve.js";
import type { CliContext } from "../context.js";

export function registerJobs(program: Command, ctx: CliContext): void {
  program
    .command("jobs")
    .description("list the jobs and remotes of the config file")
    .option("--json", "print JSON")
    .action(async (flags: { json?: boolean }) => {
      const { io } = ctx;
      const cfg = await ctx.config();
      if (flags.json) {
        const remotes = Object.fromEntries(
          Object.entries(cfg.remotes).map(([name, r]) => [
            name,
            r.endpoint ? { ...r, endpoint: maskEndpoint(r.endpoint) } : r,
          ]),
        );
        io.out.write(JSON.stringify({ remotes, jobs: cfg.jobs }) + "\n");
        return;
      }
      if (!cfg.file) io.err.write("bucketsync: no bucketsync.yaml here (use --config FILE)\n");
      for (const [name, job] of Object.entries(cfg.jobs)) {
        const flagsText = [
          job.delete && "--delete",
          job.acl && `--acl ${job.acl}`,
          ...jobFilters(job).map((f) => `--${f.type} ${f.pattern}`),
        ]
          .filter(Boolean)
          .join(" ");
        io.out.write(
          `${name}: ${job.from} -> ${job.to}${flagsText ? ` ${flagsText}` : ""}${job.description ? `  # ${job.description}` : ""}\n`,
        );
      }
      for (const [name, remote] of Object.entries(cfg.remotes)) {
        io.out.write(
          `remote ${name}: ${remote.url}${remote.profile ? ` (profile ${remote.profile})` : ""}${remote.endpoint ? ` at ${maskEndpoint(remote.endpoint)}` : ""}\n`,
        );
      }
    });
}
