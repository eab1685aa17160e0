import { checkEndpointUrl } from "../core/endpoint.js";
import { UsageError } from "../core/types.js";
import { configKeyOf } from "../options/define.js";
import { OPTION_TABLE, type FilterRule, type OptionValues } from "../options/table.js";
import type { S3ConnectionOptions } from "../stores/s3/client.js";

/** The config file read when --config is not given. */
export const DEFAULT_CONFIG_FILE = "bucketsync.yaml";

// Resolving locations and filters needs no YAML or schema library: it stays out of config.ts so
// runs without a config file never load them.

/** What resolving needs of a config (config.ts's Config has this shape; no import, so no cycle). */
export interface RemotesConfig {
  file?: string;
  remotes: Record<
    string,
    { url: string; endpoint?: string; region?: string; profile?: string; force_path_style?: boolean }
  >;
}

/** A job's filter settings, as the config file spells them. */
export interface JobFilterConfig {
  exclude?: string[];
  include?: string[];
  filters?: ({ include: string } | { exclude: string })[];
}

export interface ResolvedLocation {
  url: string;
  /** Connection settings of the remote, when the location named one. */
  connection?: S3ConnectionOptions;
}

/**
 * Resolves `remote:` or `remote:sub/path` against the config's remotes; anything else (an
 * `s3://` URL or a local path) passes through unchanged.
 */
export function resolveLocation(arg: string, config: RemotesConfig): ResolvedLocation {
  const m = /^([A-Za-z0-9_.-]+):(?!\/\/)(.*)$/.exec(arg);
  if (!m) return { url: arg };
  const remote = config.remotes[m[1]!];
  if (!remote) {
    const known = Object.keys(config.remotes);
    throw new UsageError(
      `unknown remote '${m[1]}'${known.length ? `; configured remotes: ${known.join(", ")}` : config.file ? "" : ` (no ${DEFAULT_CONFIG_FILE} found)`}`,
    );
  }
  checkEndpointUrl(`endpoint of remote '${m[1]}'`, remote.endpoint);
  const sub = m[2]!.replace(/^\/+/, "");
  const base = remote.url.replace(/\/+$/, "");
  return {
    url: sub ? `${base}/${sub}` : remote.url,
    connection: {
      ...(remote.endpoint !== undefined && { endpointUrl: remote.endpoint }),
      ...(remote.region !== undefined && { region: remote.region }),
      ...(remote.profile !== undefined && { profile: remote.profile }),
      ...(remote.force_path_style !== undefined && { forcePathStyle: remote.force_path_style }),
    },
  };
}

/** A job's filter rules in the order they apply. */
export function jobFilters(job: JobFilterConfig): FilterRule[] {
  return [
    ...(job.exclude ?? []).map((pattern) => ({ type: "exclude" as const, pattern })),
    ...(job.include ?? []).map((pattern) => ({ type: "include" as const, pattern })),
    ...(job.filters ?? []).map((f) =>
      "include" in f
        ? { type: "include" as const, pattern: f.include }
        : { type: "exclude" as const, pattern: f.exclude },
    ),
  ];
}

/**
 * A job's settings as run options (options/table.ts): each table option under its config key,
 * text values of options the CLI parses (sizes, times) parsed the same way, and `compare` also
 * from the `size_only` / `checksum` shortcuts. Filters are jobFilters'.
 */
export function jobOptionValues(job: Record<string, unknown>): OptionValues {
  const out: Record<string, unknown> = {};
  for (const [key, def] of Object.entries(OPTION_TABLE)) {
    const configKey = configKeyOf(key, def);
    const value = configKey ? job[configKey] : undefined;
    if (value === undefined) continue;
    out[key] = def.parse && typeof value === "string" && def.kind !== "string" ? def.parse(value, configKey!) : value;
  }
  if (out.compare === undefined) {
    if (job.size_only && job.checksum) throw new UsageError("a job cannot set both size_only and checksum");
    if (job.size_only) out.compare = "size-only";
    else if (job.checksum) out.compare = "checksum";
  }
  return out as OptionValues;
}
