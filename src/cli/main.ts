/**
 * The CLI's entry: builds the program from one file per command (commands/), runs it, and turns
 * user errors into one line and exit code 2. Commands get a CliContext (context.ts) for output,
 * the config file, signals and exit codes.
 */
import { createRequire } from "node:module";
import { Command, CommanderError } from "commander";
import { redactSecrets } from "../core/errors.js";
import { UsageError } from "../core/types.js";
import { createContext, EXIT, EXIT_CODES_HELP, type RunIO } from "./context.js";
import { registerAcl } from "./commands/acl.js";
import { registerCheck } from "./commands/check.js";
import { registerCleanup } from "./commands/cleanup.js";
import { registerCompletion } from "./commands/completion.js";
import { registerCp } from "./commands/cp.js";
import { registerJobs } from "./commands/jobs.js";
import { registerLs } from "./commands/ls.js";
import { registerRm } from "./commands/rm.js";
import { registerRun } from "./commands/run.js";
import { registerStatus } from "./commands/status.js";
import { registerSync } from "./commands/sync.js";
import { registerWatch } from "./commands/watch.js";
import { registerWorker } from "./commands/worker.js";

export { EXIT, type RunIO };

/** The version of the installed package (dist/src/cli/main.js -> package.json), in a checkout and an install alike. */
function packageVersion(): string {
  try {
    return (createRequire(import.meta.url)("../../../package.json") as { version: string }).version;
  } catch {
    return "unknown";
  }
}

/** Builds the program; a fresh one per run so parsed state never leaks between runs. */
export function buildProgram(io: RunIO, setExit: (code: number) => void): Command {
  const program = new Command("bucketsync")
    .description("Keep one S3 bucket (or prefix, or local folder) in sync with another, fast and safely.")
    .version(packageVersion())
    .option("--config <file>", "config file with remotes and jobs (default: ./bucketsync.yaml when present)")
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.out.write(s),
      writeErr: (s) => io.err.write(s),
      outputError: () => undefined,
    });
  program.addHelpText(
    "after",
    `
Examples:
  bucketsync sync s3://acme-production s3://acme-staging --delete --acl public-read
  bucketsync sync ./site s3://acme-web/site --delete
  bucketsync check s3://acme-production s3://acme-staging
  bucketsync run production-to-staging        (a job from bucketsync.yaml)
  bucketsync acl apply s3://acme-staging/images --acl public-read
  bucketsync cp s3://acme-production/logo.png s3://acme-staging/logo.png
  bucketsync watch s3://acme-production s3://acme-staging --delete   (follows changes as they happen)

${EXIT_CODES_HELP}
Run 'bucketsync help <command>' for a command's flags.`,
  );
  const ctx = createContext(program, io, setExit);
  for (const register of [
    registerSync,
    registerWatch,
    registerRun,
    registerJobs,
    registerCheck,
    registerAcl,
    registerLs,
    registerCp,
    registerRm,
    registerCleanup,
    registerCompletion,
    registerWorker,
    registerStatus,
  ]) {
    register(program, ctx);
  }
  return program;
}

/** Runs the CLI; returns the exit code. Never throws for user errors. */
export async function main(argv: string[], io: RunIO = { out: process.stdout, err: process.stderr }): Promise<number> {
  let code: number = EXIT.ok;
  const program = buildProgram(io, (c) => (code = c));
  // Nothing to do is a usage error: the help, and exit 2.
  if (argv.length === 0) {
    program.outputHelp({ error: true });
    return EXIT.usage;
  }
  try {
    await program.parseAsync(argv, { from: "user" });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (
        err.exitCode === 0 ||
        err.code === "commander.helpDisplayed" ||
        err.code === "commander.version" ||
        err.code === "commander.help"
      )
        return EXIT.ok;
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
