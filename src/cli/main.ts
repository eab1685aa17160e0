import { Command, CommanderError, Option } from "commander";
import { applyAcl } from "../acl.js";
import type { Config, JobConfig } from "../config/config.js";
import { DEFAULT_CONFIG_FILE, jobFilters, resolveLocation } from "../config/resolve.js";
import { existsSync } from "node:fs";
import { redactSecrets } from "../core/errors.js";
import { maskEndpoint } from "../core/endpoint.js";
import { CANNED_ACLS, UsageError, type CannedAcl } from "../core/types.js";
import type { SyncEvent } from "../executor/events.js";
import type { CompareMode } from "../planner/compare.js";
import { includeOnlyMessage, includesThatSelectNothing, type FilterRule } from "../planner/filters.js";
import { CHECK_DEFAULT_COMPARE, check, sync, type SyncOptions } from "../sync.js";
import { completionScript } from "./completion.js";
import { addDistributedCommands, addQueueOptions, runDistributedSync } from "./distributed.js";
import {
  addAttributeFilterOptions,
  addConnectionOptions,
  addFilterOptions,
  attributesFrom,
  addSideConnectionOptions,
  collectMetadata,
  connectionFrom,
  parseSize,
  parseWholeNumber,
  sideConnectionFrom,
} from "./options.js";
import type { ProgressDisplay } from "./progress.js";
import { parseTimeBound } from "../planner/attributes.js";
import { eventRenderer, printableKey } from "./render.js";
import { JsonLines, RunReport } from "./report.js";

/** Exit codes: the contract scripts rely on. */
export const EXIT = { ok: 0, failed: 1, usage: 2, warnings: 3, interrupted: 130 } as const;

export interface RunIO {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}

/** Every flag of sync/run/check as commander parses it (camelCase). */
interface Flags {
  endpointUrl?: string;
  region?: string;
  profile?: string;
  timeout?: number;
  sizeOnly?: boolean;
  checksum?: boolean;
  concurrency?: number;
  followSymlinks?: boolean;
  autoPartSize?: boolean;
  json?: boolean;
  quiet?: boolean;
  verbose?: boolean;
  progress?: boolean;
  report?: string;
  delete?: boolean;
  dryRun?: boolean;
  dryrun?: boolean;
  acl?: string;
  preserveAcl?: boolean;
  maxDelete?: number;
  force?: boolean;
  multipartThreshold?: number;
  partSize?: number;
  verify?: string;
  contentMd5?: boolean;
  storageClass?: string;
  sse?: string;
  sseKmsKeyId?: string;
  metadataDirective?: string;
  contentType?: string;
  cacheControl?: string;
  contentDisposition?: string;
  metadata?: Record<string, string>;
  [side: string]: unknown;
}

function compareMode(flags: Flags, fallback: CompareMode = "size-and-time"): CompareMode {
  if (flags.sizeOnly && flags.checksum) throw new UsageError("--size-only and --checksum cannot be used together");
  return flags.sizeOnly ? "size-only" : flags.checksum ? "checksum" : fallback;
}

function addCompareOptions(command: Command): Command {
  return command
    .option("--size-only", "treat objects of the same size as equal")
    .option("--checksum", "compare ETags where both are plain MD5s (says when it cannot decide); check does this by default")
    .option("--auto-part-size", "with --checksum and a local side: hash files in the likely part size of a multipart ETag")
    .option("--concurrency <n>", "requests in flight (default 64)", parseWholeNumber("--concurrency", { min: 1, max: 4096 }))
    .option("--follow-symlinks", "follow symbolic links in local folders (default: skip them; loops are detected)")
    .option("--json", "print JSON lines: one event per action and a final summary")
    .option("-q, --quiet", "print only errors and the summary")
    .option("-v, --verbose", "print every action with its reason, skips included")
    .option("--fail-on-warnings", "exit 3 when the run completed with warnings (copies that could not be verified; check: objects compared by size and time only)");
}

/** The flags of `sync` (and of `run`, where they override the job's settings). */
function addSyncOptions(command: Command, filters: FilterRule[]): Command {
  command
    .option("--delete", "delete target objects not in the source (after every copy succeeded)")
    .option("--dry-run", "print what would happen; change nothing")
    .addOption(new Option("--dryrun", "alias of --dry-run").hideHelp())
    .addOption(new Option("--acl <canned>", "canned ACL for every object written").choices(CANNED_ACLS as unknown as string[]))
    .option("--preserve-acl", "copy each source object's grants to its copy")
    .option("--max-delete <n>", "refuse all deletes when more than N are planned", parseWholeNumber("--max-delete"))
    .option("--force", "allow --delete to empty the target when the source lists no objects")
    .option("--multipart-threshold <size>", "copy objects above this size in parts (default 5GiB)", parseSize("--multipart-threshold", { min: 1, max: 5 * 1024 ** 3, why: "expected 1 byte to 5 GiB" }))
    .option("--part-size <size>", "part size for multipart copies and uploads (default 64MiB)", parseSize("--part-size", { min: 5 * 1024 ** 2, max: 5 * 1024 ** 3, why: "S3 takes parts from 5 MiB to 5 GiB" }))
    .option("--storage-class <class>", "storage class of every object written (STANDARD, STANDARD_IA, ...)")
    .addOption(new Option("--sse <algorithm>", "server-side encryption of objects written").choices(["AES256", "aws:kms"]))
    .option("--sse-kms-key-id <id>", "KMS key for --sse aws:kms")
    .addOption(new Option("--metadata-directive <directive>", "COPY the source's metadata (default) or REPLACE it").choices(["COPY", "REPLACE"]))
    .option("--content-type <type>", "Content-Type of objects written (implies REPLACE)")
    .option("--cache-control <value>", "Cache-Control of objects written (implies REPLACE)")
    .option("--content-disposition <value>", "Content-Disposition of objects written (implies REPLACE)")
    .option("--metadata <key=value>", "user metadata of objects written, repeatable (implies REPLACE)", collectMetadata)
    .addOption(
      new Option("--verify <mode>", "prove each copy by ETag or by hashing the bytes: off, on (default), strict (unverifiable copies fail)").choices([
        "off",
        "on",
        "strict",
      ]),
    )
    .option("--content-md5", "send Content-MD5 on single-part streamed uploads whose source ETag is an MD5")
    .option("--report <file>", "write a JSON lines audit of every action to FILE")
    .option("--at <when>", "copy the source as it was at this moment (versioned bucket): a timestamp, or 1d, 12h ago")
    .option("--all-versions", "copy every version of each key, oldest first (versioned buckets)")
    .option("--no-progress", "no live progress display (it is off anyway when stderr is not a terminal, and with --json or -q)");
  addCompareOptions(command);
  addFilterOptions(command, filters);
  addAttributeFilterOptions(command);
  addConnectionOptions(command);
  addSideConnectionOptions(command);
  return command;
}

/** Everything `sync` and `run` share once the source, target and flags are known. */
async function runSync(
  io: RunIO,
  args: { source: string; target: string; flags: Flags; filters: FilterRule[]; config: Config; job?: JobConfig },
): Promise<number> {
  const { flags, job, config } = args;
  const src = resolveLocation(args.source, config);
  const dst = resolveLocation(args.target, config);
  const shared = connectionFrom(flags);
  const options: SyncOptions = {
    source: src.url,
    target: dst.url,
    connection: shared,
    // Remote settings from the config, then per-side flags, each over the shared flags.
    sourceConnection: { ...src.connection, ...sideConnectionFrom("source", flags) },
    targetConnection: { ...dst.connection, ...sideConnectionFrom("target", flags) },
    delete: flags.delete ?? job?.delete ?? false,
    dryRun: !!(flags.dryRun || flags.dryrun),
    acl: (flags.acl ?? job?.acl) as CannedAcl | undefined,
    preserveAcl: flags.preserveAcl,
    maxDelete: flags.maxDelete ?? job?.max_delete,
    force: flags.force ?? job?.force,
    multipartThreshold: flags.multipartThreshold,
    partSize: flags.partSize,
    storageClass: flags.storageClass,
    sse: flags.sse as SyncOptions["sse"],
    sseKmsKeyId: flags.sseKmsKeyId,
    metadataDirective: flags.metadataDirective as SyncOptions["metadataDirective"],
    replaceProperties: {
      contentType: flags.contentType,
      cacheControl: flags.cacheControl,
      contentDisposition: flags.contentDisposition,
      metadata: flags.metadata,
    },
    compare: compareMode({ sizeOnly: flags.sizeOnly ?? job?.size_only, checksum: flags.checksum ?? job?.checksum }),
    filters: [...(job ? jobFilters(job) : []), ...args.filters],
    attributes: attributesFrom(flags),
    concurrency: flags.concurrency ?? job?.concurrency,
    followSymlinks: !!flags.followSymlinks,
    autoPartSize: !!flags.autoPartSize,
    verify: flags.verify as SyncOptions["verify"],
    at: flags.at !== undefined ? parseTimeBound("--at", flags.at as string) : undefined,
    allVersions: flags.allVersions as boolean | undefined,
    contentMd5: flags.contentMd5,
  };

  const report = flags.report ? new RunReport(flags.report) : undefined;
  const errStream = io.err as NodeJS.WriteStream;
  const progress =
    errStream.isTTY && !flags.json && !flags.quiet && flags.progress !== false && !flags.queue
      ? new (await import("./progress.js")).ProgressDisplay(errStream, options.dryRun ? "dry run" : "syncing")
      : undefined;
  const render = eventRenderer({
    json: !!flags.json,
    quiet: !!flags.quiet,
    verbose: !!flags.verbose,
    sourceUrl: displayUrl(src.url),
    targetUrl: displayUrl(dst.url),
    ...io,
    // On a terminal, action lines print above the live progress line instead of through it.
    line: progress && (io.out as NodeJS.WriteStream).isTTY ? (text) => progress.log(text) : undefined,
  });
  // Why copies could not be verified, counted by reason, for the closing warning.
  const unverifiedReasons = new Map<string, number>();
  const onEvent = (event: SyncEvent) => {
    if ((event.type === "copy" || event.type === "update") && event.verification?.startsWith("unverifiable: ")) {
      const reason = event.verification.slice("unverifiable: ".length);
      unverifiedReasons.set(reason, (unverifiedReasons.get(reason) ?? 0) + 1);
    }
    progress?.onEvent(event);
    report?.onEvent(event);
    render(event);
  };

  const controller = new AbortController();
  const stopOnSignal = interruptHandler(controller, io, () => progress?.stop());
  try {
    const result = flags.queue
      ? await runDistributedSync(options, flags, io, onEvent, controller.signal, progress)
      : await sync({ ...options, onEvent, signal: controller.signal });
    progress?.stop();
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
            : summary.unverifiable > 0 && flags.failOnWarnings
              ? EXIT.warnings
              : EXIT.ok;
    // A refused run (exit 2) changed nothing: its one error line is the whole story.
    if (code !== EXIT.usage) onEvent({ type: "summary", ...summary });
    // Copies that ETags cannot prove are complete copies (aws-cli and rclone exit 0 for them):
    // a warning with the reason, and exit 3 only when asked for with --fail-on-warnings.
    const unverifiedOk = summary.unverifiable - (flags.verify === "strict" ? summary.unverifiable : 0);
    if (unverifiedOk > 0 && !flags.json && !flags.quiet) {
      const [reason] = [...unverifiedReasons.entries()].sort((a, b) => b[1] - a[1]);
      io.err.write(
        `warning: ${unverifiedOk} copied object(s) could not be verified${reason ? ` (${reason[0]}${unverifiedReasons.size > 1 ? ", and other reasons" : ""})` : ""}; -v or --report shows each${code === EXIT.warnings ? "; exit code 3 (--fail-on-warnings)" : ""}\n`,
      );
    }
    return code;
  } finally {
    progress?.stop();
    stopOnSignal();
    await report?.close();
  }
}

/** Builds the program; a fresh one per run so parsed state never leaks between runs. */
export function buildProgram(io: RunIO, setExit: (code: number) => void): Command {
  const program = new Command("bucketsync")
    .description("Keep one S3 bucket (or prefix, or local folder) in sync with another, fast and safely.")
    .version(process.env.npm_package_version ?? "0.1.0")
    .option("--config <file>", "config file with remotes and jobs (default: ./bucketsync.yaml when present)")
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out.write(s), writeErr: (s) => io.err.write(s), outputError: () => undefined });
  // The YAML and schema libraries load only when there is a config file to read.
  const config = async (): Promise<Config> => {
    const path = program.opts().config as string | undefined;
    if (path === undefined && !existsSync(DEFAULT_CONFIG_FILE)) return { remotes: {}, jobs: {} };
    return (await import("../config/config.js")).loadConfig(path);
  };
  program.addHelpText(
    "after",
    `
Examples:
  bucketsync sync s3://acme-production s3://acme-staging --delete --acl public-read
  bucketsync sync ./site s3://acme-web/site --delete
  bucketsync check s3://acme-production s3://acme-staging
  bucketsync run production-to-staging        (a job from bucketsync.yaml)
  bucketsync acl apply s3://acme-staging/images --acl public-read

Exit codes: 0 success, 1 some objects failed or differ, 2 invalid input (nothing changed),
  3 completed with warnings (only with --fail-on-warnings), 130 interrupted.
Run 'bucketsync help <command>' for a command's flags.`,
  );

  const syncFilters: FilterRule[] = [];
  const syncCmd = program
    .command("sync")
    .description("copy new and changed objects from SRC to DST; with --delete, remove what SRC no longer has")
    .argument("<src>", "s3://bucket[/prefix], a local folder, or remote:[path] from the config")
    .argument("<dst>", "s3://bucket[/prefix], a local folder, or remote:[path] from the config");
  addSyncOptions(syncCmd, syncFilters);
  addQueueOptions(syncCmd);
  syncCmd.addHelpText(
    "after",
    `
Examples:
  bucketsync sync s3://acme-production s3://acme-staging --delete --acl public-read
  bucketsync sync s3://photos/2024 s3://archive/photos/2024 --exclude "*.tmp" --dry-run
  bucketsync sync s3://prod s3://backup --source-profile prod --target-profile backup
  bucketsync sync s3://a s3://b --endpoint-url http://127.0.0.1:9000 --checksum
  bucketsync sync ./public s3://site/www --acl public-read --delete`,
  );
  syncCmd.action(async (src: string, dst: string, flags: Flags) => {
    setExit(await runSync(io, { source: src, target: dst, flags, filters: syncFilters, config: await config() }));
  });

  const runFilters: FilterRule[] = [];
  const runCmd = program
    .command("run")
    .description("run a named job from the config file; flags given here override the job's settings")
    .argument("<job>", "job name (see 'bucketsync jobs')");
  addSyncOptions(runCmd, runFilters);
  runCmd.action(async (name: string, flags: Flags) => {
    const cfg = await config();
    const job = cfg.jobs[name];
    if (!job) {
      const known = Object.keys(cfg.jobs);
      throw new UsageError(`unknown job '${name}'${known.length ? `; configured jobs: ${known.join(", ")}` : cfg.file ? "" : " (no bucketsync.yaml found)"}`);
    }
    setExit(await runSync(io, { source: job.from, target: job.to, flags, filters: runFilters, config: cfg, job }));
  });

  program
    .command("jobs")
    .description("list the jobs and remotes of the config file")
    .option("--json", "print JSON")
    .action(async (flags: { json?: boolean }) => {
      const cfg = await config();
      if (flags.json) {
        const remotes = Object.fromEntries(
          Object.entries(cfg.remotes).map(([name, r]) => [name, r.endpoint ? { ...r, endpoint: maskEndpoint(r.endpoint) } : r]),
        );
        io.out.write(JSON.stringify({ remotes, jobs: cfg.jobs }) + "\n");
        return;
      }
      if (!cfg.file) io.err.write("bucketsync: no bucketsync.yaml here (use --config FILE)\n");
      for (const [name, job] of Object.entries(cfg.jobs)) {
        const flagsText = [job.delete && "--delete", job.acl && `--acl ${job.acl}`, ...jobFilters(job).map((f) => `--${f.type} ${f.pattern}`)]
          .filter(Boolean)
          .join(" ");
        io.out.write(`${name}: ${job.from} -> ${job.to}${flagsText ? ` ${flagsText}` : ""}${job.description ? `  # ${job.description}` : ""}\n`);
      }
      for (const [name, remote] of Object.entries(cfg.remotes)) {
        io.out.write(
          `remote ${name}: ${remote.url}${remote.profile ? ` (profile ${remote.profile})` : ""}${remote.endpoint ? ` at ${maskEndpoint(remote.endpoint)}` : ""}\n`,
        );
      }
    });

  const checkFilters: FilterRule[] = [];
  const checkCmd = program
    .command("check")
    .description("compare SRC and DST by content (ETags, local files hashed; size and time where ETags cannot decide) without changing anything; exit 0 in sync, 1 when they differ, 2 on error")
    .argument("<src>", "s3://bucket[/prefix], a local folder, or remote:[path]")
    .argument("<dst>", "s3://bucket[/prefix], a local folder, or remote:[path]");
  addCompareOptions(checkCmd);
  addFilterOptions(checkCmd, checkFilters);
  addAttributeFilterOptions(checkCmd);
  checkCmd.option("--report <file>", "write per-object evidence (key, sizes, ETags, what was compared, result) as JSON lines to FILE");
  addConnectionOptions(checkCmd);
  addSideConnectionOptions(checkCmd);
  checkCmd.action(async (srcArg: string, dstArg: string, flags: Flags) => {
    const cfg = await config();
    const useless = includesThatSelectNothing(checkFilters);
    if (useless.length > 0) io.err.write(`warning: ${includeOnlyMessage(useless)}\n`);
    const src = resolveLocation(srcArg, cfg);
    const dst = resolveLocation(dstArg, cfg);
    const evidence = flags.report ? new JsonLines(flags.report) : undefined;
    const verbose = !!flags.verbose && !flags.quiet && !flags.json;
    const result = await check({
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
      connection: connectionFrom(flags),
      sourceConnection: { ...src.connection, ...sideConnectionFrom("source", flags) },
      targetConnection: { ...dst.connection, ...sideConnectionFrom("target", flags) },
      compare: compareMode(flags, CHECK_DEFAULT_COMPARE),
      filters: checkFilters,
      attributes: attributesFrom(flags),
      concurrency: flags.concurrency,
      followSymlinks: !!flags.followSymlinks,
      autoPartSize: !!flags.autoPartSize,
      onDifference: (d) => {
        if (flags.json) io.out.write(JSON.stringify({ type: "difference", ...d }) + "\n");
        else if (!flags.quiet && !verbose) io.out.write(`${d.kind}: ${printableKey(d.key)}${d.kind === "differs" ? ` (${d.reason})` : ""}\n`);
      },
    });
    await evidence?.close();
    if (result.fatal) {
      io.err.write(`bucketsync: error: ${result.fatal.context}: ${result.fatal.message}\n`);
      setExit(EXIT.usage);
      return;
    }
    if (flags.json) {
      io.out.write(
        JSON.stringify({ type: "summary", inSync: result.inSync, differences: result.differences, compared: result.compared, undecidable: result.undecidable }) + "\n",
      );
    } else {
      const head = result.inSync ? `in sync: ${result.compared} objects compared` : `${result.differences} difference(s) in ${result.compared} objects compared`;
      // Keys compared by size and time only are never hidden inside "in sync".
      const tail = result.undecidable > 0 ? `; ${result.undecidable} undecidable (content could not be compared, ETags cannot decide: compared by size and time only; -v or --report names them)` : "";
      io.out.write(`${head}${tail}\n`);
    }
    setExit(result.inSync ? (result.undecidable > 0 && flags.failOnWarnings ? EXIT.warnings : EXIT.ok) : EXIT.failed);
  });

  const acl = program.command("acl").description("object ACLs");
  const aclFilters: FilterRule[] = [];
  const aclApply = acl
    .command("apply")
    .description("set a canned ACL on every object under a prefix (the bucket itself is not changed)")
    .argument("<location>", "s3://bucket[/prefix] or remote:[path]")
    .addOption(new Option("--acl <canned>", "the canned ACL").choices(CANNED_ACLS as unknown as string[]).makeOptionMandatory())
    .option("--dry-run", "print what would change; change nothing")
    .option("--concurrency <n>", "requests in flight (default 64)", parseWholeNumber("--concurrency", { min: 1, max: 4096 }))
    .option("--json", "print JSON lines")
    .option("-q, --quiet", "print only errors and the summary");
  addFilterOptions(aclApply, aclFilters);
  addConnectionOptions(aclApply);
  aclApply.addHelpText(
    "after",
    `\nExample (only the .png files: exclude everything, then include them back):\n  bucketsync acl apply s3://acme-staging/images --acl public-read --exclude "*" --include "*.png"`,
  );
  aclApply.action(async (locationArg: string, flags: Flags) => {
    const loc = resolveLocation(locationArg, await config());
    const started = Date.now();
    const result = await applyAcl({
      location: loc.url,
      acl: flags.acl as CannedAcl,
      filters: aclFilters,
      dryRun: !!flags.dryRun,
      concurrency: flags.concurrency,
      connection: { ...connectionFrom(flags), ...loc.connection },
      onEvent: (e) => {
        if (flags.json) io.out.write(JSON.stringify(e) + "\n");
        else if (e.type === "error") io.err.write(`error: acl ${e.key}: ${e.message}\n`);
        else if (!flags.quiet) io.out.write(`${e.dryRun ? "(dryrun) " : ""}acl ${e.acl}: ${displayUrl(loc.url)}${e.key}\n`);
      },
    });
    if (result.fatal) {
      io.err.write(`bucketsync: error: ${result.fatal.context}: ${result.fatal.message}${result.applied === 0 ? "; nothing changed" : ""}\n`);
      setExit(result.applied === 0 ? EXIT.usage : EXIT.failed);
      return;
    }
    const summary = { type: "summary", applied: result.applied, failed: result.failed, dryRun: !!flags.dryRun, durationMs: Date.now() - started };
    if (flags.json) io.out.write(JSON.stringify(summary) + "\n");
    else io.out.write(`${flags.dryRun ? "dry run: would set" : "set"} ${flags.acl} on ${result.applied} object(s), failed ${result.failed}\n`);
    setExit(result.failed > 0 ? EXIT.failed : EXIT.ok);
  });

  program
    .command("completion")
    .description('print a shell completion script: eval "$(bucketsync completion bash)"')
    .argument("<shell>", "bash or zsh")
    .action((shell: string) => {
      if (shell !== "bash" && shell !== "zsh") throw new UsageError(`unsupported shell '${shell}'; expected bash or zsh`);
      io.out.write(completionScript(shell, program));
    });

  addDistributedCommands(program, io, setExit);
  return program;
}

/** For action lines: s3://bucket/prefix/ or folder/ with the trailing slash keys are appended to. */
function displayUrl(arg: string): string {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/i.exec(arg);
  if (!m) return arg.endsWith("/") ? arg : `${arg}/`;
  const prefix = m[2] === "" || m[2]!.endsWith("/") ? m[2] : `${m[2]}/`;
  return `s3://${m[1]}/${prefix}`;
}

/** First Ctrl-C: stop taking new work and finish cleanly. Second: exit at once. */
function interruptHandler(controller: AbortController, io: RunIO, beforeMessage: () => void): () => void {
  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) process.exit(EXIT.interrupted);
    beforeMessage();
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
      if (err.exitCode === 0 || err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.code === "commander.help") return EXIT.ok;
      // One line: commander's "(Did you mean ...?)" goes on the same line.
      io.err.write(`bucketsync: ${redactSecrets(err.message.replace(/^error: /, "").replace(/\s*\n\s*/g, " "))}\n`);
      return EXIT.usage;
    }
    if (err instanceof UsageError) {
      io.err.write(`bucketsync: ${redactSecrets(err.message)}\n`);
      return EXIT.usage;
    }
    io.err.write(`bucketsync: unexpected error: ${redactSecrets((err as Error)?.stack ?? String(err))}\n`);
    return EXIT.failed;
  }
}
