/**
 * The run options' flags, derived from the option table (options/table.ts): every option that
 * has a flag and belongs to a command is added to it, and read back into OptionValues, with a
 * config-file job's settings underneath. The structured options (compare, filters, attribute
 * filters, replaced properties) are spelled as several flags each; their flags are declared here,
 * once.
 */
import { Option, type Command } from "commander";
import { UsageError } from "../core/types.js";
import { flagOf, type CommandName, type OptionDef } from "../options/define.js";
import { OPTION_TABLE, type CompareMode, type FilterRule, type OptionValues } from "../options/table.js";
import { jobFilters, jobOptionValues } from "../config/resolve.js";
import { addAttributeFilterOptions, addFilterOptions, attributesFrom, collectMetadata } from "./options.js";

/** commander's attribute name of a flag: `--max-delete` -> `maxDelete`. */
function attributeOf(flag: string): string {
  return flag.replace(/^--(no-)?/, "").replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function optionFor(flag: string, def: OptionDef<unknown>, hidden = false): Option {
  const option = new Option(
    def.arg ? `${def.short ? `${def.short}, ` : ""}${flag} ${def.arg}` : `${def.short ? `${def.short}, ` : ""}${flag}`,
    hidden ? `alias of ${flag}` : def.help,
  );
  if (def.kind === "enum" && def.choices) option.choices(def.choices as string[]);
  if (def.parse) option.argParser((text: string) => def.parse!(text, flag));
  if (hidden) option.hideHelp();
  return option;
}

/** The flags of the table's composite options, per option key. */
const COMPOSITE_FLAGS: Record<string, (command: Command, filters: FilterRule[]) => void> = {
  compare: (command) =>
    command
      .option("--size-only", "treat objects of the same size as equal")
      .option(
        "--checksum",
        "compare ETags where both are plain MD5s (says when it cannot decide); check does this by default",
      ),
  filters: (command, filters) => addFilterOptions(command, filters),
  attributes: (command) => addAttributeFilterOptions(command),
  replaceProperties: (command) =>
    command
      .option("--content-type <type>", "Content-Type of objects written (implies REPLACE)")
      .option("--cache-control <value>", "Cache-Control of objects written (implies REPLACE)")
      .option("--content-disposition <value>", "Content-Disposition of objects written (implies REPLACE)")
      .option(
        "--metadata <key=value>",
        "user metadata of objects written, repeatable (implies REPLACE)",
        collectMetadata("--metadata"),
      ),
};

/** Adds every run option of `name` to `command`; `filters` collects --include/--exclude in order. */
export function addRunOptions(command: Command, name: CommandName, filters: FilterRule[]): Command {
  for (const [key, def] of Object.entries(OPTION_TABLE)) {
    if (!def.commands.includes(name)) continue;
    if (COMPOSITE_FLAGS[key]) {
      COMPOSITE_FLAGS[key]!(command, filters);
      continue;
    }
    const flag = flagOf(key, def);
    if (!flag) continue;
    command.addOption(optionFor(flag, def));
    for (const alias of def.aliases ?? []) command.addOption(optionFor(alias, def, true));
    if (def.kind === "boolean" && def.negatable) {
      command.addOption(new Option(`--no-${flag.slice(2)}`, `turn ${flag} off (over a job's setting)`).hideHelp());
    }
  }
  return command;
}

/**
 * The flags that `other` takes and `name` does not (on watch: a one-off run's, such as
 * --checkpoint), added hidden so that giving one says what it is, not "unknown option".
 */
export function refuseFlagsOf(command: Command, name: CommandName, other: CommandName): Command {
  for (const [key, def] of Object.entries(OPTION_TABLE)) {
    if (def.commands.includes(name) || !def.commands.includes(other) || COMPOSITE_FLAGS[key]) continue;
    const flag = flagOf(key, def);
    if (!flag) continue;
    const option = new Option(def.arg ? `${flag} ${def.arg}` : flag).hideHelp();
    command.addOption(option);
    command.on(`option:${option.name()}`, () => {
      throw new UsageError(`${flag} is an option of a one-off ${other} run; ${name} does not take it`);
    });
  }
  return command;
}

function compareFrom(flags: Record<string, unknown>): CompareMode | undefined {
  if (flags.sizeOnly && flags.checksum) throw new UsageError("--size-only and --checksum cannot be used together");
  return flags.sizeOnly ? "size-only" : flags.checksum ? "checksum" : undefined;
}

/**
 * The run options of `name` from parsed flags, over a job's settings: a flag given wins, a
 * negated one (`--no-delete`) turns a job's setting off; the job's filters come before the
 * command line's.
 */
export function runOptionsFrom(
  flags: Record<string, unknown>,
  name: CommandName,
  filters: FilterRule[],
  job?: Record<string, unknown>,
): OptionValues {
  const fromJob = job ? jobOptionValues(job) : {};
  const out: Record<string, unknown> = {};
  for (const [key, def] of Object.entries(OPTION_TABLE)) {
    if (!def.commands.includes(name)) continue;
    let value: unknown;
    if (key === "compare") value = compareFrom(flags);
    else if (key === "filters") value = [...(job ? jobFilters(job) : []), ...filters];
    else if (key === "attributes") value = attributesFrom(flags);
    else if (key === "replaceProperties") {
      value = Object.fromEntries(
        Object.entries({
          contentType: flags.contentType,
          cacheControl: flags.cacheControl,
          contentDisposition: flags.contentDisposition,
          metadata: flags.metadata,
        }).filter(([, v]) => v !== undefined),
      );
    } else {
      const flag = flagOf(key, def);
      if (!flag) continue;
      // A switch spelled `--no-x` (--no-overwrite): commander stores x, true unless the flag is given.
      value = flag.startsWith("--no-")
        ? flags[attributeOf(flag)] === false
          ? true
          : undefined
        : flags[attributeOf(flag)];
      for (const alias of def.aliases ?? []) value ??= flags[attributeOf(alias)];
    }
    value ??= (fromJob as Record<string, unknown>)[key];
    if (value !== undefined) out[key] = value;
  }
  return out as OptionValues;
}

/** Output and exit-code flags: the CLI's own, not run options. */
export function addOutputOptions(command: Command, name: CommandName): Command {
  command
    .option(
      "--json",
      name === "check"
        ? "print JSON lines: one per difference, then a summary"
        : "print JSON lines: one event per action and a final summary",
    )
    .option("-q, --quiet", "print only errors and the summary")
    .option(
      "-v, --verbose",
      name === "check"
        ? "print every object with its verdict and what decided it"
        : "print every action with its reason, skips included",
    )
    .option(
      "--fail-on-warnings",
      "exit 3 when the run completed with warnings (copies that could not be verified; check: objects compared by size and time only)",
    )
    .option(
      "--report <file>",
      name === "check"
        ? "write per-object evidence (key, sizes, ETags, what was compared, result) as JSON lines to FILE"
        : "write a JSON lines audit of every action to FILE",
    );
  if (name !== "check")
    command.option(
      "--no-progress",
      "no live progress display (it is off anyway when stderr is not a terminal, and with --json or -q)",
    );
  return command;
}

/**
 * Flags that cannot do anything as given: contradictions are usage errors (exit 2); flags that
 * merely have no effect are returned as warnings, so a user is never left believing they acted.
 */
export function ineffectiveFlags(flags: Record<string, unknown>, options: OptionValues, name: CommandName): string[] {
  if (flags.quiet && flags.verbose) throw new UsageError("-q and -v cannot be used together");
  const warnings: string[] = [];
  const noEffect = (flag: string, without: string) => warnings.push(`${flag} has no effect without ${without}`);
  if (name !== "check" && !options.delete) {
    if (flags.force) noEffect("--force", "--delete");
    if (flags.maxDelete !== undefined) noEffect("--max-delete", "--delete");
  }
  if (!flags.queue) {
    if (flags.shards !== undefined) noEffect("--shards", "--queue");
    if (flags.queueName !== undefined) noEffect("--queue-name", "--queue");
  }
  if (flags.autoPartSize && (options.compare ?? (name === "check" ? "checksum" : "size-and-time")) !== "checksum") {
    noEffect("--auto-part-size", "--checksum");
  }
  return warnings;
}
