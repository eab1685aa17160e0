/** `bucketsync check SRC DST`: compare by content without changing anything. */
import { resolve } from "node:path";
import type { Command } from "commander";
import { resolveLocation } from "../../config/resolve.js";
import type { FilterRule } from "../../options/table.js";
import { includeOnlyMessage, includesThatSelectNothing } from "../../planner/filters.js";
import { CHECK_DEFAULT_COMPARE, check } from "../../sync.js";
import { checkExitCode, type CliContext } from "../context.js";
import { addOutputOptions, addRunOptions, ineffectiveFlags, runOptionsFrom } from "../flags.js";
import { formatCheckSummary, formatUsage, printableKey } from "../format/render.js";
import { JsonLines } from "../format/report.js";
import { addConnectionOptions, addSideConnectionOptions, connectionFrom, sideConnectionFrom } from "../options.js";

export function registerCheck(program: Command, ctx: CliContext): void {
  const filters: FilterRule[] = [];
  const command = program
    .command("check")
    .description(
      "compare SRC and DST by content (ETags, local files hashed; size and time where ETags cannot decide) without changing anything; exit 0 in sync, 1 when they differ, 2 on error",
    )
    .argument("<src>", "s3://bucket[/prefix], a local folder, or remote:[path]")
    .argument("<dst>", "s3://bucket[/prefix], a local folder, or remote:[path]");
  addRunOptions(command, "check", filters);
  addOutputOptions(command, "check");
  addConnectionOptions(command);
  addSideConnectionOptions(command);
  command.action(async (srcArg: string, dstArg: string, flags: Record<string, unknown>) => {
    const { io } = ctx;
    const cfg = await ctx.config();
    const useless = includesThatSelectNothing(filters);
    if (useless.length > 0) io.err.write(`warning: ${includeOnlyMessage(useless)}\n`);
    const src = resolveLocation(srcArg, cfg);
    const dst = resolveLocation(dstArg, cfg);
    const evidence = flags.report ? new JsonLines(flags.report as string) : undefined;
    const verbose = !!flags.verbose && !flags.quiet && !flags.json;
    const options = runOptionsFrom(flags, "check", filters);
    for (const message of ineffectiveFlags(flags, options, "check")) io.err.write(`warning: ${message}\n`);
    const result = await check({
      ...options,
      compare: options.compare ?? CHECK_DEFAULT_COMPARE,
      onEvidence:
        evidence || verbose
          ? (e) => {
              evidence?.write(e);
              // -v: every object with its verdict and what decided it.
              if (verbose) io.out.write(`${e.result}: ${printableKey(e.key)} (${e.reason}; compared ${e.compared})\n`);
            }
          : undefined,
      source: src.url,
      target: dst.url,
      // The evidence file inside a local side would otherwise read as "missing in target".
      ownFiles: flags.report ? [resolve(flags.report as string)] : undefined,
      connection: connectionFrom(flags),
      sourceConnection: { ...src.connection, ...sideConnectionFrom("source", flags) },
      targetConnection: { ...dst.connection, ...sideConnectionFrom("target", flags) },
      onDifference: (d) => {
        if (flags.json) io.out.write(JSON.stringify({ type: "difference", ...d }) + "\n");
        else if (!flags.quiet && !verbose)
          io.out.write(`${d.kind}: ${printableKey(d.key)}${d.kind === "differs" ? ` (${d.reason})` : ""}\n`);
      },
    });
    await evidence?.close();
    if (result.fatal) {
      io.err.write(`bucketsync: error: ${result.fatal.context}: ${result.fatal.message}\n`);
    } else if (flags.json) {
      const { inSync, differences, compared, undecidable, estimate } = result;
      io.out.write(JSON.stringify({ type: "summary", inSync, differences, compared, undecidable, estimate }) + "\n");
    } else {
      io.out.write(formatCheckSummary(result) + "\n");
      // What a sync (with --delete) that makes them match would send and cost.
      if (result.estimate && !flags.quiet)
        io.out.write(`a sync to match: ${formatUsage({ ...result.estimate, estimated: true })}\n`);
    }
    ctx.setExit(checkExitCode(result, !!flags.failOnWarnings));
  });
}
