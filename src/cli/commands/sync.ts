/** `bucketsync sync SRC DST`, and the run that `run JOB` shares with it. */
import { resolve } from "node:path";
import type { Command } from "commander";
import type { Config, JobConfig } from "../../config/config.js";
import { resolveLocation } from "../../config/resolve.js";
import type { SyncEvent } from "../../executor/events.js";
import type { FilterRule } from "../../options/table.js";
import { planCopy } from "../../cp.js";
import { sync, type SyncOptions } from "../../sync.js";
import { againToQuit, EXIT, syncExitCode, type CliContext } from "../context.js";
import { addOutputOptions, addRunOptions, ineffectiveFlags, runOptionsFrom } from "../flags.js";
import { addQueueOptions, runDistributedSync } from "../distributed.js";
import { displayUrl, eventRenderer, printFatal, unverifiedCounter } from "../format/render.js";
import { RunReport } from "../format/report.js";
import { addConnectionOptions, addSideConnectionOptions, connectionFrom, sideConnectionFrom } from "../options.js";

/** Adds everything `sync` and `run` take: run options, output flags, connections. */
export function addSyncFlags(command: Command, name: "sync" | "run" | "cp", filters: FilterRule[]): Command {
  addRunOptions(command, name, filters);
  addOutputOptions(command, name);
  addConnectionOptions(command);
  addSideConnectionOptions(command);
  return command;
}

export function registerSync(program: Command, ctx: CliContext): void {
  const filters: FilterRule[] = [];
  const command = program
    .command("sync")
    .description("copy new and changed objects from SRC to DST; with --delete, remove what SRC no longer has")
    .argument("<src>", "s3://bucket[/prefix], a local folder, or remote:[path] from the config")
    .argument("<dst>", "s3://bucket[/prefix], a local folder, or remote:[path] from the config");
  addSyncFlags(command, "sync", filters);
  addQueueOptions(command);
  command.addHelpText(
    "after",
    `
Examples:
  bucketsync sync s3://acme-production s3://acme-staging --delete --acl public-read
  bucketsync sync s3://photos/2024 s3://archive/photos/2024 --exclude "*.tmp" --dry-run
  bucketsync sync s3://prod s3://backup --source-profile prod --target-profile backup
  bucketsync sync s3://a s3://b --endpoint-url http://127.0.0.1:9000 --checksum
  bucketsync sync ./public s3://site/www --acl public-read --delete
  bucketsync sync s3://prod s3://backup --files-from keys.txt --failed-keys failed.txt
  bucketsync sync s3://prod s3://backup --delete --checkpoint prod.ckpt`,
  );
  command.action(async (src: string, dst: string, flags: Record<string, unknown>) => {
    ctx.setExit(await runSync(ctx, { source: src, target: dst, flags, filters, config: await ctx.config() }));
  });
}

/** The run's own files (--report, --failed-keys), absolute: a local folder never lists them or writes over them. */
function ownFilesOf(flags: Record<string, unknown>): string[] | undefined {
  const files = [flags.report, flags.failedKeys].filter((f): f is string => typeof f === "string" && f !== "-");
  return files.length > 0 ? files.map((f) => resolve(f)) : undefined;
}

/** Everything `sync` and `run` share once the source, target and flags are known. */
export async function runSync(
  ctx: CliContext,
  args: {
    source: string;
    target: string;
    flags: Record<string, unknown>;
    filters: FilterRule[];
    config: Config;
    job?: JobConfig;
    /** `cp`: one object (its roots and keys from planCopy), or with recursive a copy that never deletes. */
    copy?: { recursive: boolean };
  },
): Promise<number> {
  const { io } = ctx;
  const { flags, job, config } = args;
  const name = args.job ? "run" : args.copy ? "cp" : "sync";
  const src = resolveLocation(args.source, config);
  const dst = resolveLocation(args.target, config);
  const plan = args.copy ? await planCopy(src.url, dst.url, args.copy.recursive) : undefined;
  const options: SyncOptions = {
    source: plan?.source ?? src.url,
    target: plan?.target ?? dst.url,
    ...(plan?.object && { object: plan.object }),
    connection: connectionFrom(flags),
    // Remote settings from the config, then per-side flags, each over the shared flags.
    sourceConnection: { ...src.connection, ...sideConnectionFrom("source", flags) },
    targetConnection: { ...dst.connection, ...sideConnectionFrom("target", flags) },
    ...runOptionsFrom(flags, name, args.filters, job),
    ...(args.copy && { delete: false }),
    notices: !!flags.verbose,
    // The report is being written while the run lists: never data, never overwritten.
    ownFiles: ownFilesOf(flags),
  };

  const ineffective = ineffectiveFlags(flags, options, name);
  const report = flags.report ? new RunReport(flags.report as string) : undefined;
  const errStream = io.err as NodeJS.WriteStream;
  const progress =
    errStream.isTTY && !flags.json && !flags.quiet && flags.progress !== false && !flags.queue
      ? new (await import("../format/progress.js")).ProgressDisplay(errStream, options.dryRun ? "dry run" : "syncing")
      : undefined;
  const render = eventRenderer({
    json: !!flags.json,
    quiet: !!flags.quiet,
    verbose: !!flags.verbose,
    sourceUrl: displayUrl(options.source as string),
    targetUrl: displayUrl(options.target as string),
    ...io,
    // On a terminal, action lines print above the live progress line instead of through it.
    line: progress && (io.out as NodeJS.WriteStream).isTTY ? (text) => progress.log(text) : undefined,
  });
  const unverified = unverifiedCounter();
  const onEvent = (event: SyncEvent) => {
    unverified.onEvent(event);
    progress?.onEvent(event);
    report?.onEvent(event);
    render(event);
  };

  for (const message of ineffective) onEvent({ type: "warning", message });
  const controller = new AbortController();
  const stopOnSignal = ctx.onInterrupt((signal) => {
    progress?.stop();
    io.err.write(`\nbucketsync: ${signal}: finishing requests in flight; ${againToQuit(signal)}\n`);
    controller.abort(new Error("interrupted"));
  });
  try {
    const result = flags.queue
      ? await runDistributedSync(options, flags, io, onEvent, controller.signal, progress)
      : await sync({ ...options, onEvent, signal: controller.signal });
    progress?.stop();
    const { summary, fatal, refused } = result;
    const nothing = result.changedNothing ? "; nothing changed" : "";
    printFatal(io, !!flags.json, fatal, !!result.changedNothing);
    if (refused) {
      io.err.write(`bucketsync: refused: ${refused}${nothing}\n`);
      if (flags.json)
        io.out.write(
          JSON.stringify({ type: "error", fatal: true, code: "Refused", context: "delete", message: refused }) + "\n",
        );
    }
    const code = syncExitCode(result, !!flags.failOnWarnings);
    // A refused run (exit 2) changed nothing: its one error line is the whole story (with --json, the summary follows).
    if (code !== EXIT.usage || flags.json) onEvent({ type: "summary", ...summary });
    // Copies that ETags cannot prove are complete copies (aws-cli and rclone exit 0 for them):
    // a warning with the reason, and exit 3 only when asked for with --fail-on-warnings.
    const unverifiedOk = options.verify === "strict" ? 0 : summary.unverifiable;
    const warning = unverified.warning(
      unverifiedOk,
      code === EXIT.warnings ? "; exit code 3 (--fail-on-warnings)" : "",
    );
    if (warning && !flags.json && !flags.quiet) io.err.write(warning);
    return code;
  } finally {
    progress?.stop();
    stopOnSignal();
    await report?.close();
  }
}
