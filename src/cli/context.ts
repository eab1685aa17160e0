/**
 * What every command of the CLI shares: where output goes, the config file (loaded on first
 * use, so runs without one never load the YAML and schema libraries), Ctrl-C handling, and the
 * exit codes, decided here and nowhere else.
 */
import { existsSync } from "node:fs";
import type { Command } from "commander";
import type { Config } from "../config/config.js";
import { DEFAULT_CONFIG_FILE } from "../config/resolve.js";
import type { ExecuteResult } from "../executor/executor.js";

/** Exit codes: the contract scripts rely on. */
export const EXIT = { ok: 0, failed: 1, usage: 2, warnings: 3, cutoff: 8, interrupted: 130 } as const;

export const EXIT_CODES_HELP = `Exit codes: 0 success, 1 some objects failed or differ, 2 invalid input (nothing changed),
  3 completed with warnings (only with --fail-on-warnings), 8 cut off by --max-transfer or
  --max-duration (no deletes ran; run again to continue), 130 interrupted.`;

export interface RunIO {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}

export interface CliContext {
  io: RunIO;
  /** The config file (--config, else ./bucketsync.yaml when present). */
  config(): Promise<Config>;
  setExit(code: number): void;
  /**
   * First SIGINT/SIGTERM: `onFirst` (stop taking new work, say so); a second one exits at once.
   * Returns the function that removes the handler.
   */
  onInterrupt(onFirst: (signal: NodeJS.Signals) => void): () => void;
}

/** How to stop at once after a first signal, for the line a command prints on it. */
export function againToQuit(signal: NodeJS.Signals): string {
  return signal === "SIGINT" ? "press Ctrl-C again to quit at once" : `send ${signal} again to quit at once`;
}

export function createContext(program: Command, io: RunIO, setExit: (code: number) => void): CliContext {
  return {
    io,
    setExit,
    config: async () => {
      const path = program.opts().config as string | undefined;
      if (path === undefined && !existsSync(DEFAULT_CONFIG_FILE)) return { remotes: {}, jobs: {} };
      return (await import("../config/config.js")).loadConfig(path);
    },
    onInterrupt: (onFirst) => {
      let interrupted = false;
      const handler = (signal: NodeJS.Signals) => {
        if (interrupted) {
          io.err.write(`\nbucketsync: ${signal} again: quitting at once; what was in flight is left as it was\n`);
          process.exit(EXIT.interrupted);
        }
        interrupted = true;
        onFirst(signal);
      };
      process.on("SIGINT", handler);
      process.on("SIGTERM", handler);
      return () => {
        process.off("SIGINT", handler);
        process.off("SIGTERM", handler);
      };
    },
  };
}

/**
 * The exit code of a sync run: interrupted 130; stopped or refused before changing anything 2
 * (one error line says why), after changing something 1; objects failed or deletes withheld 1;
 * copies that ETags cannot prove 0 (they are complete copies, as for aws-cli and rclone), or 3
 * when the user asked for it with --fail-on-warnings.
 */
export function syncExitCode(result: ExecuteResult, failOnWarnings: boolean): number {
  const { summary, fatal, refused } = result;
  if (fatal?.code === "Interrupted") return EXIT.interrupted;
  if (fatal || refused) return result.changedNothing ? EXIT.usage : EXIT.failed;
  if (summary.failed > 0) return EXIT.failed;
  // Cut off on purpose (--max-transfer, --max-duration): its own code, as rclone's 8.
  if (summary.cutoff) return EXIT.cutoff;
  if (summary.deletesWithheld) return EXIT.failed;
  if (summary.unverifiable > 0 && failOnWarnings) return EXIT.warnings;
  return EXIT.ok;
}

/** The exit code of `check`: differences 1, objects compared by size and time only 3 when asked for. */
export function checkExitCode(
  result: { inSync: boolean; undecidable: number; fatal?: unknown },
  failOnWarnings: boolean,
): number {
  if (result.fatal) return EXIT.usage;
  if (!result.inSync) return EXIT.failed;
  return result.undecidable > 0 && failOnWarnings ? EXIT.warnings : EXIT.ok;
}

/** The exit code of `acl apply`. */
export function aclExitCode(result: { applied: number; failed: number; fatal?: unknown }): number {
  if (result.fatal) return result.applied === 0 ? EXIT.usage : EXIT.failed;
  return result.failed > 0 ? EXIT.failed : EXIT.ok;
}
