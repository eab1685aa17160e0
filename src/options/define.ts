/**
 * How a run option is declared: once, in table.ts. Everything else is derived from the
 * declaration: the library's option types (OptionValues), the CLI flags of each command
 * (cli/flags.ts), the config file's job schema (config/config.ts), the distributed job payload
 * and its schema (distributed/job.ts), and validation (validateOptions). Modeled on npm's config
 * definitions: each option says what it is, where it can be given and where it runs.
 *
 * This module loads no library (no zod, no commander): the CLI reads it at every start.
 */
import { UsageError } from "../core/types.js";

/** Commands whose flags an option appears among. */
export type CommandName = "sync" | "run" | "check" | "cp" | "watch";

/**
 * Where an option takes effect in a distributed sync: "range" options travel in each job and
 * decide what a worker does to its range; "local" ones stay on each machine or with the
 * coordinator (connections, concurrency, delete guards, output); "unsupported" ones do not work
 * per key range and are refused with --queue.
 */
export type DistributedRole = "range" | "local" | "unsupported";

/** The value kinds the config file and the job schema know how to check. */
export type ValueKind = "boolean" | "string" | "number" | "enum" | "filters" | "attributes" | "properties";

export interface OptionDef<T> {
  kind: ValueKind;
  /** Allowed values of an "enum". */
  choices?: readonly string[];
  /** Help text of the flag (and the config key). */
  help: string;
  /** The CLI flag (default `--kebab-case-of-the-key`), false for library-only options. */
  flag?: string | false;
  /** Hidden extra spellings of the flag (aws-cli's --dryrun). */
  aliases?: readonly string[];
  /** One-letter form, e.g. "-q". */
  short?: string;
  /** Placeholder of a flag's value, e.g. "<size>" (none: a boolean switch). */
  arg?: string;
  /** CLI text -> value; throws UsageError quoting the text. */
  parse?: (text: string, flag: string) => T;
  /** Booleans: also accept --no-<flag>, so a job's setting can be turned off on the command line. */
  negatable?: boolean;
  /** The config file key (default: snake_case of the key), or false when a job cannot set it. */
  config?: string | false;
  distributed: DistributedRole;
  commands: readonly CommandName[];
  /** Only the CLI reads it (output, exit codes): not a library option. */
  cliOnly?: boolean;
  /** Checks a value (from any source); returns the problem, worded with `name`. */
  validate?: (value: T, name: string) => string | undefined;
  /** The phantom value type; never set. */
  readonly __type?: T;
}

export type ValueOf<D> = D extends OptionDef<infer T> ? T : never;

const ALL: readonly CommandName[] = ["sync", "run", "check", "cp", "watch"];
const SYNC_RUN: readonly CommandName[] = ["sync", "run", "watch"];
/** Options of every write: sync, run, cp (which never deletes) and watch. */
const WRITES: readonly CommandName[] = ["sync", "run", "cp", "watch"];
/** Options of one-off runs only: not of `watch` (work lists, checkpoints, cut-offs, points in time). */
const ONE_OFF: readonly CommandName[] = ["sync", "run"];
/** `watch` alone. */
const WATCH: readonly CommandName[] = ["watch"];

type Common<T> = Omit<OptionDef<T>, "kind" | "choices" | "distributed" | "commands"> &
  Partial<Pick<OptionDef<T>, "distributed" | "commands">>;

/** An on/off switch. */
export function boolean(def: Common<boolean>): OptionDef<boolean> {
  return { kind: "boolean", distributed: "range", commands: SYNC_RUN, ...def };
}

/** One of a fixed set of words. */
export function oneOf<const C extends readonly string[]>(choices: C, def: Common<C[number]>): OptionDef<C[number]> {
  return {
    kind: "enum",
    choices,
    distributed: "range",
    commands: SYNC_RUN,
    arg: "<value>",
    validate: (v, name) => (choices.includes(v) ? undefined : `invalid ${name} '${v}'; expected ${choices.join(", ")}`),
    ...def,
  };
}

/** Free text. */
export function text(def: Common<string>): OptionDef<string> {
  return { kind: "string", distributed: "range", commands: SYNC_RUN, arg: "<value>", ...def };
}

/** A number read by `parse` (sizes, counts, durations). */
export function number(def: Common<number>): OptionDef<number> {
  return { kind: "number", distributed: "range", commands: SYNC_RUN, arg: "<n>", ...def };
}

/** A structured value the library takes as an object (its flags are declared by the CLI's composite groups). */
export function composite<T>(kind: "filters" | "attributes" | "properties", def: Common<T>): OptionDef<T> {
  return { kind, distributed: "range", commands: SYNC_RUN, flag: false, ...def };
}

export { ALL as ALL_COMMANDS, SYNC_RUN, WRITES, ONE_OFF, WATCH };

/** `maxDelete` -> `--max-delete`. */
export function flagOf(key: string, def: OptionDef<unknown>): string | undefined {
  if (def.flag === false) return undefined;
  return def.flag ?? `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** `maxDelete` -> `max_delete`. */
export function configKeyOf(key: string, def: OptionDef<unknown>): string | undefined {
  if (def.config === false || def.cliOnly) return undefined;
  return def.config ?? key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** Throws the first problem of `values` under `table` as a UsageError naming each option by its flag. */
export function validateWith(table: Record<string, OptionDef<unknown>>, values: object): void {
  for (const [key, def] of Object.entries(table)) {
    const value = (values as Record<string, unknown>)[key];
    if (value === undefined || !def.validate) continue;
    const problem = def.validate(value, flagOf(key, def) ?? key);
    if (problem) throw new UsageError(problem);
  }
}
