/**
 * `bucketsync cleanup s3://bucket[/prefix] [--older-than 24h] [--dry-run]`: aborts incomplete
 * multipart uploads there (issue 17). A thin command over cleanup() (src/cleanup.ts).
 */
import type { Command } from "commander";
import { resolveLocation } from "../../config/resolve.js";
import { classifyListingFailure } from "../../core/errors.js";
import { UsageError } from "../../core/types.js";
import { cleanup } from "../../cleanup.js";
import { parseTimeBound } from "../../options/parse.js";
import { EXIT, type CliContext } from "../context.js";
import { formatCleanupSummary, formatCleanupUpload } from "../format/cleanup.js";
import { fatalEvent } from "../format/render.js";
import { addConnectionOptions, connectionFrom } from "../options.js";

export function registerCleanup(program: Command, ctx: CliContext): void {
  const command = program
    .command("cleanup")
    .description("abort incomplete multipart uploads under s3://bucket[/prefix] (their parts cost storage)")
    .argument("<location>", "s3://bucket[/prefix], or remote:[path] from the config")
    .option("--older-than <age>", "only uploads started longer ago than this: 24h (default), 7d, 0 for all", "24h")
    .option("--dry-run", "print the uploads that would be aborted; abort nothing")
    .option("--json", "print JSON lines: one per upload, then the summary");
  addConnectionOptions(command);
  command.addHelpText(
    "after",
    `
Examples:
  bucketsync cleanup s3://acme-backup
  bucketsync cleanup s3://acme-backup/photos --older-than 0 --dry-run`,
  );
  command.action(async (locationArg: string, flags: Record<string, unknown>) => {
    const { io } = ctx;
    const loc = resolveLocation(locationArg, await ctx.config());
    if (!/^s3:\/\//i.test(loc.url)) throw new UsageError("cleanup works on s3:// locations");
    const startedBefore = parseTimeBound("--older-than", String(flags.olderThan));
    const json = !!flags.json;
    const dryRun = !!flags.dryRun;
    /** Uploads aborted so far: a listing that fails later has still changed these. */
    let aborted = 0;
    try {
      const result = await cleanup({
        location: loc.url,
        connection: { ...connectionFrom(flags), ...loc.connection },
        startedBefore,
        dryRun,
        onUpload: (u) => {
          if (!dryRun && !u.error) aborted++;
          if (json) io.out.write(JSON.stringify({ type: "abort", dryRun, ...u }) + "\n");
          else if (u.error) io.err.write(`error: ${formatCleanupUpload(loc.url, u, dryRun)}: ${u.error}\n`);
          else io.out.write(formatCleanupUpload(loc.url, u, dryRun) + "\n");
        },
      });
      io.out.write(
        (json ? JSON.stringify({ type: "summary", dryRun, ...result }) : formatCleanupSummary(result, dryRun)) + "\n",
      );
      ctx.setExit(result.failed > 0 ? EXIT.failed : EXIT.ok);
    } catch (err) {
      if (err instanceof UsageError) throw err;
      // A missing bucket or a refused listing changed nothing, like any refused input (exit 2).
      const done = aborted === 0 ? "nothing aborted" : `${aborted} aborted before that`;
      const info = classifyListingFailure(err);
      io.err.write(`bucketsync: error: ${info.message}; ${done}\n`);
      // The same error event as sync's, so a --json reader sees why there is no summary.
      if (json) io.out.write(fatalEvent(info));
      ctx.setExit(aborted === 0 ? EXIT.usage : EXIT.failed);
    }
  });
}
