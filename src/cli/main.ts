import { Command, CommanderError, Option } from "commander";
import { redactSecrets } from "../core/errors.js";
import { CANNED_ACLS, UsageError, type CannedAcl } from "../core/types.js";
import type { FilterRule } from "../planner/filters.js";
import type { CompareMode } from "../planner/compare.js";
import { check, sync } from "../sync.js";
import { addConnectionOptions, addFilterOptions, connectionFrom, parseSize, parseWholeNumber } from "./options.js";
import { eventRenderer, formatSummary } from "./render.js";

/** Exit codes: the contract scripts rely on. */
export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

interface RunIO {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}

interface SharedFlags {
  endpointUrl?: string;
  region?: string;
  profile?: string;
  sizeOnly?: boolean;
  checksum?: boolean;
  concurrency?: number;
  timeout?: number;
  followSymlinks?: boolean;
  json?: boolean;
  quiet?: boolean;
  verbose?: boolean;
}

function compareMode(flags: SharedFlags): CompareMode {
  if (flags.sizeOnly && flags.checksum) throw new UsageError("--size-only and --checksum cannot be used together");
  return flags.sizeOnly ? "size-only" : flags.checksum ? "checksum" : "size-and-time";
}

function addCompareOptions(command: Command): Command {
  return command
    .option("--size-only", "treat objects of the same size as equal")
    .option("--checksum", "compare ETags where both are plain MD5s (says when it cannot decide)")
    .option("--concurrency <n>", "requests in flight", parseWholeNumber("--concurrency"))
    .option("--timeout <seconds>", "give up on a request (and retry it) after this long (default 120)", parseWholeNumber("--timeout"))
    .option("--follow-symlinks", "follow symbolic links in local folders (default: skip them; loops are detected)")
    .option("--json", "print JSON lines: one event per action and a final summary")
    .option("-q, --quiet", "print only errors and the summary")
    .option("-v, --verbose", "print every action with its reason, skips included");
}

/** Builds the program; a fresh one per run so parsed state never leaks between runs. */
export function buildProgram(io: RunIO, setExit: (code: number) => void): Command {
  const program = new Command("bucketsync")
    .description("Keep one S3 bucket (or prefix) in sync with another, fast and safely.")
    .version(process.env.npm_package_version ?? "0.1.0")
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out.write(s), writeErr: (s) => io.err.write(s), outputError: () => undefined });

  const syncFilters: FilterRule[] = [];
  const syncCmd = program
    .command("sync")
    .description("copy new and changed objects from SRC to DST; with --delete, remove what SRC no longer has")
    .argument("<src>", "s3://bucket[/prefix] or a local folder")
    .argument("<dst>", "s3://bucket[/prefix] or a local folder")
    .option("--delete", "delete target objects not in the source (after every copy succeeded)")
    .option("--dry-run", "print what would happen; change nothing")
    .addOption(new Option("--dryrun", "alias of --dry-run").hideHelp())
    .addOption(new Option("--acl <canned>", "canned ACL for every object written").choices(CANNED_ACLS as unknown as string[]))
    .option("--max-delete <n>", "refuse all deletes when more than N are planned", parseWholeNumber("--max-delete"))
    .option("--force", "allow --delete to empty the target when the source lists no objects")
    .option("--multipart-threshold <size>", "copy objects above this size in parts (default 5GiB)", parseSize("--multipart-threshold"))
    .option("--part-size <size>", "part size for multipart copies and uploads (default 64MiB)", parseSize("--part-size"));
  addCompareOptions(syncCmd);
  addFilterOptions(syncCmd, syncFilters);
  addConnectionOptions(syncCmd);
  syncCmd.addHelpText(
    "after",
    `
Examples:
  bucketsync sync s3://acme-production s3://acme-staging --delete --acl public-read
  bucketsync sync s3://photos/2024 s3://archive/photos/2024 --exclude "*.tmp" --dry-run
  bucketsync sync s3://a s3://b --endpoint-url http://127.0.0.1:9000 --checksum`,
  );
  syncCmd.action(async (src: string, dst: string, flags: SharedFlags & Record<string, unknown>) => {
    const controller = new AbortController();
    const stopOnSignal = interruptHandler(controller, io);
    const render = eventRenderer({ json: !!flags.json, quiet: !!flags.quiet, verbose: !!flags.verbose, sourceUrl: displayUrl(src), targetUrl: displayUrl(dst), ...io });
    try {
      const result = await sync({
        source: src,
        target: dst,
        connection: connectionFrom(flags),
        delete: !!flags.delete,
        dryRun: !!(flags.dryRun || flags.dryrun),
        acl: flags.acl as CannedAcl | undefined,
        maxDelete: flags.maxDelete as number | undefined,
        force: !!flags.force,
        multipartThreshold: flags.multipartThreshold as number | undefined,
        partSize: flags.partSize as number | undefined,
        compare: compareMode(flags),
        filters: syncFilters,
        concurrency: flags.concurrency,
        followSymlinks: !!flags.followSymlinks,
        onEvent: render,
        signal: controller.signal,
      });
      const { summary, fatal, refused } = result;
      if (fatal && fatal.code !== "Interrupted") {
        io.err.write(`bucketsync: error: ${fatal.context}: ${fatal.message}${result.changedNothing ? "; nothing changed" : ""}\n`);
      }
      if (refused) io.err.write(`bucketsync: refused: ${refused}${result.changedNothing ? "; nothing changed" : ""}\n`);
      const code =
        fatal?.code === "Interrupted"
          ? EXIT.interrupted
          : fatal || refused
            ? result.changedNothing
              ? EXIT.usage
              : EXIT.failed
            : summary.failed > 0 || summary.deletesWithheld
              ? EXIT.failed
              : EXIT.ok;
      // A refused run (exit 2) changed nothing: its one error line is the whole story.
      if (code !== EXIT.usage) render({ type: "summary", ...summary });
      setExit(code);
    } finally {
      stopOnSignal();
    }
  });

  const checkFilters: FilterRule[] = [];
  const checkCmd = program
    .command("check")
    .description("compare SRC and DST without changing anything; exit 0 in sync, 1 when they differ, 2 on error")
    .argument("<src>", "s3://bucket[/prefix] or a local folder")
    .argument("<dst>", "s3://bucket[/prefix] or a local folder");
  addCompareOptions(checkCmd);
  addFilterOptions(checkCmd, checkFilters);
  addConnectionOptions(checkCmd);
  checkCmd.action(async (src: string, dst: string, flags: SharedFlags) => {
    const result = await check({
      source: src,
      target: dst,
      connection: connectionFrom(flags),
      compare: compareMode(flags),
      filters: checkFilters,
      concurrency: flags.concurrency,
      followSymlinks: !!flags.followSymlinks,
      onDifference: (d) => {
        if (flags.json) io.out.write(JSON.stringify({ type: "difference", ...d }) + "\n");
        else if (!flags.quiet) io.out.write(`${d.kind}: ${d.key}${d.kind === "differs" ? ` (${d.reason})` : ""}\n`);
      },
    });
    if (result.fatal) {
      io.err.write(`bucketsync: error: ${result.fatal.context}: ${result.fatal.message}\n`);
      setExit(EXIT.usage);
      return;
    }
    if (flags.json) io.out.write(JSON.stringify({ type: "summary", inSync: result.inSync, differences: result.differences, compared: result.compared }) + "\n");
    else io.out.write(result.inSync ? `in sync: ${result.compared} objects compared\n` : `${result.differences} difference(s) in ${result.compared} objects compared\n`);
    setExit(result.inSync ? EXIT.ok : EXIT.failed);
  });

  return program;
}

/** For action lines: s3://bucket/prefix/ with the trailing slash keys are appended to. */
function displayUrl(arg: string): string {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/i.exec(arg);
  if (!m) return arg.endsWith("/") ? arg : `${arg}/`;
  const prefix = m[2] === "" || m[2]!.endsWith("/") ? m[2] : `${m[2]}/`;
  return `s3://${m[1]}/${prefix}`;
}

/** First Ctrl-C: stop taking new work and finish cleanly. Second: exit at once. */
function interruptHandler(controller: AbortController, io: RunIO): () => void {
  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) process.exit(EXIT.interrupted);
    io.err.write(`\nbucketsync: ${signal}: finishing requests in flight; press Ctrl-C again to quit at once\n`);
    controller.abort(new Error("interrupted"));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return () => {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  };
}

/** Runs the CLI; returns the exit code. Never throws for user errors. */
export async function main(argv: string[], io: RunIO = { out: process.stdout, err: process.stderr }): Promise<number> {
  let code: number = EXIT.ok;
  const program = buildProgram(io, (c) => (code = c));
  try {
    await program.parseAsync(argv, { from: "user" });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0 || err.code === "commander.helpDisplayed" || err.code === "commander.version") return EXIT.ok;
      io.err.write(`bucketsync: ${err.message.replace(/^error: /, "")}\n`);
      return EXIT.usage;
    }
    if (err instanceof UsageError) {
      io.err.write(`bucketsync: ${err.message}\n`);
      return EXIT.usage;
    }
    io.err.write(`bucketsync: unexpected error: ${redactSecrets((err as Error)?.stack ?? String(err))}\n`);
    return EXIT.failed;
  }
}

