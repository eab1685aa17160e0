import { checkEndpointUrl } from "../core/endpoint.js";
import { UsageError } from "../core/types.js";
import type { FilterRule } from "../planner/filters.js";
import type { S3ConnectionOptions } from "../stores/s3/client.js";
import type { Config, JobConfig } from "./config.js";

/** The config file read when --config is not given. */
export const DEFAULT_CONFIG_FILE = "bucketsync.yaml";

// Resolving locations and filters needs no YAML or schema library: it stays out of config.ts so
// runs without a config file never load them.

export interface ResolvedLocation {
  url: string;
  /** Connection settings of the remote, when the location named one. */
  connection?: S3ConnectionOptions;
}

/**
 * Resolves `remote:` or `remote:sub/path` against the config's remotes; anything else (an
 * `s3://` URL or a local path) passes through unchanged.
 */
export function resolveLocation(arg: string, config: Config): ResolvedLocation {
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
export function jobFilters(job: JobConfig): FilterRule[] {
  return [
    ...(job.exclude ?? []).map((pattern) => ({ type: "exclude" as const, pattern })),
    ...(job.include ?? []).map((pattern) => ({ type: "include" as const, pattern })),
    ...(job.filters ?? []).map((f) => ("include" in f ? { type: "include" as const, pattern: f.include } : { type: "exclude" as const, pattern: f.exclude })),
  ];
}
