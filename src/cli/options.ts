import { Option, type Command } from "commander";
import { UsageError } from "../core/types.js";
import { checkEndpointUrl } from "../core/endpoint.js";
import type { FilterRule } from "../planner/filters.js";
import type { S3ConnectionOptions } from "../stores/s3/client.js";
import type { AttributeFilters } from "../planner/attributes.js";
import { parseSize, parseTimeBound, parseWholeNumber } from "../options/parse.js";

export { parseSize, parseWholeNumber } from "../options/parse.js";

/**
 * Adds --include/--exclude; both push into one list so the rules keep their command-line order
 * (aws-cli semantics: later rules win). Commander calls argParser once per occurrence, in order.
 */
export function addFilterOptions(command: Command, rules: FilterRule[]): Command {
  const push = (type: FilterRule["type"]) => (pattern: string) => {
    rules.push({ type, pattern });
    return rules;
  };
  command.addOption(
    new Option("--include <glob>", "include keys matching the glob (repeatable; later rules win)").argParser(
      push("include"),
    ),
  );
  command.addOption(
    new Option("--exclude <glob>", "exclude keys matching the glob (repeatable; later rules win)").argParser(
      push("exclude"),
    ),
  );
  return command;
}

export function addConnectionOptions(command: Command): Command {
  return command
    .option("--endpoint-url <url>", "S3-compatible endpoint (path-style addressing is used)")
    .option("--region <region>", "region (default: from the AWS environment or profile, else us-east-1)")
    .option("--profile <name>", "profile from the shared AWS credentials/config files")
    .option(
      "--timeout <seconds>",
      "give up on a request (and retry it) after this long (default 120)",
      parseWholeNumber("--timeout"),
    );
}

/** Per-side variants for copies across accounts and providers; each falls back to the shared flag. */
export function addSideConnectionOptions(command: Command): Command {
  for (const side of ["source", "target"] as const) {
    command
      .option(`--${side}-endpoint-url <url>`, `endpoint of the ${side} side`)
      .option(`--${side}-region <region>`, `region of the ${side} side`)
      .option(`--${side}-profile <name>`, `AWS profile for the ${side} side`);
  }
  return command;
}

export interface ConnectionFlags {
  endpointUrl?: string;
  region?: string;
  profile?: string;
  timeout?: number;
}

/** Only the settings actually given, so per-side and config values can layer over each other. */
function defined(o: S3ConnectionOptions): S3ConnectionOptions {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as S3ConnectionOptions;
}

export function connectionFrom(opts: ConnectionFlags): S3ConnectionOptions {
  if (opts.timeout !== undefined && opts.timeout < 1)
    throw new UsageError(`invalid --timeout '${opts.timeout}'; expected seconds, at least 1`);
  checkEndpointUrl("--endpoint-url", opts.endpointUrl);
  return defined({
    endpointUrl: opts.endpointUrl,
    region: opts.region,
    profile: opts.profile,
    requestTimeoutMs: opts.timeout !== undefined ? opts.timeout * 1000 : undefined,
  });
}

export function sideConnectionFrom(side: "source" | "target", opts: Record<string, unknown>): S3ConnectionOptions {
  const endpointUrl = opts[`${side}EndpointUrl`] as string | undefined;
  checkEndpointUrl(`--${side}-endpoint-url`, endpointUrl);
  return defined({
    endpointUrl,
    region: opts[`${side}Region`] as string | undefined,
    profile: opts[`${side}Profile`] as string | undefined,
  });
}

/** `--metadata k=v` (repeatable, and likewise `--match-metadata`) into a record; errors name `flag`. */
export function collectMetadata(flag = "--metadata") {
  return (value: string, previous: Record<string, string> | undefined): Record<string, string> => {
    const eq = value.indexOf("=");
    if (eq <= 0) throw new UsageError(`invalid ${flag} '${value}'; expected key=value`);
    return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
  };
}

/** Filters on object attributes; the header ones are named --match-* since --content-type and --metadata set properties on write (as in aws-cli). */
export function addAttributeFilterOptions(command: Command): Command {
  return command
    .option("--min-size <size>", "only objects at least this big", parseSize("--min-size"))
    .option("--max-size <size>", "only objects at most this big", parseSize("--max-size"))
    .option("--newer-than <when>", "only objects modified after this (7d, 12h, or a timestamp)")
    .option("--older-than <when>", "only objects modified before this (7d, 12h, or a timestamp)")
    .option("--match-content-type <glob>", "only objects whose Content-Type matches (one HEAD per object)")
    .option(
      "--match-metadata <key=glob>",
      "only objects whose user metadata matches, repeatable (one HEAD per object)",
      collectMetadata("--match-metadata"),
    );
}

export function attributesFrom(flags: Record<string, unknown>): AttributeFilters {
  const out: AttributeFilters = {};
  if (flags.minSize !== undefined) out.minSize = flags.minSize as number;
  if (flags.maxSize !== undefined) out.maxSize = flags.maxSize as number;
  if (out.minSize !== undefined && out.maxSize !== undefined && out.minSize > out.maxSize)
    throw new UsageError("--min-size is larger than --max-size: nothing would match");
  if (flags.newerThan !== undefined) out.newerThan = parseTimeBound("--newer-than", flags.newerThan as string);
  if (flags.olderThan !== undefined) out.olderThan = parseTimeBound("--older-than", flags.olderThan as string);
  if (flags.matchContentType !== undefined) out.contentType = flags.matchContentType as string;
  if (flags.matchMetadata !== undefined) out.metadata = flags.matchMetadata as Record<string, string>;
  return out;
}
