/**
 * What travels through Redis for a distributed sync, and the names derived from it: the range
 * job payload (no credentials, no endpoints, nothing machine-specific), the run key, job ids, the
 * ranges of a run, and the Redis connection a `redis://` URL names.
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import type { ConnectionOptions } from "bullmq";
import { compareKeys } from "../core/keys.js";
import { UsageError, type KeyRange } from "../core/types.js";
import type { SyncSummary } from "../executor/events.js";
import { flagOf, type OptionDef } from "../options/define.js";
import { OPTION_TABLE, type CompareMode, type FilterRule, type OptionValues } from "../options/table.js";
import { rangesFromSplitPoints } from "../planner/ranges.js";
import { PLUMBING_KEYS, type SyncOptions } from "../sync.js";

export { DEFAULT_LOCK_DURATION_MS, DEFAULT_QUEUE_NAME, redactRedisUrl } from "./defaults.js";
import { redactRedisUrl } from "./defaults.js";

/** Payload format version; a worker refuses jobs of another version (without retrying them). */
export const JOB_VERSION = 1;
export const JOB_NAME = "range";
/** Redis keys of run records and coordinator locks: `bucketsync:<queue name>:run:<run key>`. */
export const KEY_PREFIX = "bucketsync";

/**
 * The options that decide what a worker does to a range: the table's "range" options
 * (options/table.ts). Everything else stays on the machines: credentials, profiles, endpoints and
 * regions (each worker has its own connection flags), concurrency, and the coordinator's delete
 * guards.
 */
export type RangeJobOptions = OptionValues & {
  delete: boolean;
  dryRun: boolean;
  compare: CompareMode;
  filters: FilterRule[];
};

/** One job: make `range` of the target match the same range of the source. */
export interface RangeJob {
  v: number;
  runKey: string;
  generation: number;
  /** Position of the range in the run (0-based) and the number of ranges, for messages. */
  index: number;
  total: number;
  range: KeyRange;
  /** Canonical `s3://bucket/prefix/` URLs. */
  source: string;
  target: string;
  options: RangeJobOptions;
}

/** What a worker returns for a range (the job's return value). */
export interface RangeResult {
  summary: SyncSummary;
  /** Deletes the range needs; none was run (the coordinator runs them after every range succeeded). */
  plannedDeletes: number;
  sourceObjects: number;
  changedNothing: boolean;
  /** hostname:pid of the worker that finished it. */
  worker: string;
}

/** Progress a worker publishes while it runs a range (job.updateProgress), and leaves on a failed job. */
export interface RangeProgress {
  copied: number;
  updated: number;
  skipped: number;
  failed: number;
  bytes: number;
  worker: string;
}

/** distributedSync's own options (not sync()'s). */
const COORDINATOR_OPTIONS = new Set(["queue", "queueName", "shards", "attempts", "pollIntervalMs", "onProgress"]);

/** Range options that every job carries (the others only when set). */
const ALWAYS = { delete: false, dryRun: false, compare: "size-and-time", filters: [] } as const;

/**
 * The job options of a sync: the table's "range" options that are set, normalized (no
 * undefined or false values, no empty objects) so equal runs hash equally. An option whose role
 * is "unsupported", or a key that is neither an option nor run plumbing, is refused rather than
 * silently left behind by the workers.
 */
export function jobOptionsFrom(options: SyncOptions): RangeJobOptions {
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined || value === false || COORDINATOR_OPTIONS.has(key) || Object.hasOwn(PLUMBING_KEYS, key))
      continue;
    const def = Object.hasOwn(OPTION_TABLE, key) ? OPTION_TABLE[key] : undefined;
    if (!def || def.distributed === "unsupported") {
      const flag = def ? flagOf(key, def) : `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
      throw new UsageError(`${flag} is not supported by distributed sync (--queue)${def ? "" : " yet"}`);
    }
  }
  const out: Record<string, unknown> = {};
  for (const [key, def] of Object.entries(OPTION_TABLE)) {
    if (def.distributed !== "range") continue;
    let value = (options as unknown as Record<string, unknown>)[key];
    if (key === "filters")
      value = ((value as FilterRule[] | undefined) ?? []).map((f) => ({ type: f.type, pattern: f.pattern }));
    else if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      value = dropUndefined(value);
      if (Object.keys(value as object).length === 0) value = undefined;
    }
    if (value === false) value = undefined;
    value ??= (ALWAYS as Record<string, unknown>)[key];
    if (value !== undefined) out[key] = value;
  }
  return out as RangeJobOptions;
}

/**
 * Names a run: the same source, target and job options give the same key on any machine, so
 * re-running the same command finds the run (and its finished ranges) again. The coordinator's
 * endpoints (not secrets, and not in the payload) keep equal bucket names on two providers apart.
 */
export function runKeyOf(
  source: string,
  target: string,
  options: RangeJobOptions,
  endpoints: (string | undefined)[] = [],
): string {
  return sha256(
    stableJson({
      v: JOB_VERSION,
      source,
      target,
      options,
      ...(endpoints.some(Boolean) && { endpoints: endpoints.map((e) => e ?? null) }),
    }),
  ).slice(0, 16);
}

/**
 * The job id of a range in a run. Deterministic, so adding a range twice is a no-op in BullMQ and a
 * re-run finds finished ranges; no `:` (BullMQ refuses it in custom ids).
 */
export function jobIdOf(runKey: string, generation: number, range: KeyRange): string {
  return `bs-${runKey}-${generation}-${sha256(stableJson({ startAfter: range.startAfter ?? null, endAt: range.endAt ?? null })).slice(0, 16)}`;
}

/**
 * At most `shards` contiguous ranges covering every key once, from sorted split points (what
 * S3Store.splitPoints samples): keeps `shards - 1` points spread evenly over the given ones.
 */
export function rangesForShards(points: readonly string[], shards: number): KeyRange[] {
  if (!Number.isInteger(shards) || shards < 1)
    throw new UsageError(`invalid --shards '${shards}'; expected a whole number, at least 1`);
  const sorted = [...new Set(points)].sort(compareKeys);
  const max = shards - 1;
  const kept =
    sorted.length <= max
      ? sorted
      : Array.from({ length: max }, (_, i) => sorted[Math.floor(((i + 1) * sorted.length) / (max + 1))]!);
  return rangesFromSplitPoints(kept);
}

/** "after 'a/' up to 'b/'" for messages. */
export function describeRange(range: KeyRange): string {
  const from = range.startAfter !== undefined ? `after '${range.startAfter}'` : "from the start";
  const to = range.endAt !== undefined ? `up to '${range.endAt}'` : "to the end";
  return `${from} ${to}`;
}

const filterSchema = z.object({ type: z.enum(["include", "exclude"]), pattern: z.string() });
const STRUCTURED: Record<string, z.ZodType> = {
  filters: z.array(filterSchema),
  attributes: z.strictObject({
    minSize: z.number().optional(),
    maxSize: z.number().optional(),
    newerThan: z.number().optional(),
    olderThan: z.number().optional(),
    contentType: z.string().optional(),
    metadata: z.record(z.string(), z.string()).optional(),
  }),
  properties: z.strictObject({
    contentType: z.string().optional(),
    cacheControl: z.string().optional(),
    contentDisposition: z.string().optional(),
    contentEncoding: z.string().optional(),
    contentLanguage: z.string().optional(),
    metadata: z.record(z.string(), z.string()).optional(),
  }),
};

/** The schema of one option's value, from its kind in the table. */
function valueSchema(def: OptionDef<unknown>): z.ZodType {
  switch (def.kind) {
    case "boolean":
      return z.boolean();
    case "string":
      return z.string();
    case "number":
      return z.number();
    case "enum":
      return z.enum(def.choices as [string, ...string[]]);
    default:
      return STRUCTURED[def.kind]!;
  }
}

/** The range options' schema, derived from the table: strict, so a worker that does not know an option (older than the coordinator) refuses the job instead of ignoring it. */
const rangeOptionsSchema = z.strictObject(
  Object.fromEntries(
    Object.entries(OPTION_TABLE)
      .filter(([, def]) => def.distributed === "range")
      .map(([key, def]) => [key, key in ALWAYS ? valueSchema(def) : valueSchema(def).optional()]),
  ),
);

const jobSchema = z.object({
  v: z.literal(JOB_VERSION),
  runKey: z.string().regex(/^[0-9a-f]{16}$/),
  generation: z.number().int().min(1),
  index: z.number().int().min(0),
  total: z.number().int().min(1),
  range: z.object({ startAfter: z.string().optional(), endAt: z.string().optional() }),
  source: z.string().startsWith("s3://"),
  target: z.string().startsWith("s3://"),
  options: rangeOptionsSchema,
});

/** Checks a payload read from Redis; throws a one-line message when it is not a range job this version runs. */
export function parseRangeJob(data: unknown): RangeJob {
  const parsed = jobSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(
      `not a bucketsync range job this worker can run (version ${JOB_VERSION}; is the worker older than the coordinator?): ${issue ? `${issue.path.join(".")}: ${issue.message}` : "invalid"}`,
    );
  }
  return parsed.data as RangeJob;
}

/**
 * A BullMQ connection from `redis://[user:password@]host[:port][/db]` (or `rediss://` for TLS).
 * Workers need `maxRetriesPerRequest: null` (BullMQ's requirement for blocking commands).
 */
export function redisConnection(url: string, forWorker = false): ConnectionOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UsageError(`invalid --queue '${redactRedisUrl(url)}'; expected redis://host[:port][/db]`);
  }
  if (u.protocol !== "redis:" && u.protocol !== "rediss:")
    throw new UsageError(`invalid --queue '${redactRedisUrl(url)}'; expected redis://host[:port][/db] or rediss://`);
  if (!u.hostname) throw new UsageError(`invalid --queue '${redactRedisUrl(url)}': no host`);
  const db = u.pathname && u.pathname !== "/" ? Number(u.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0)
    throw new UsageError(`invalid --queue '${redactRedisUrl(url)}': the path must be a database number`);
  const host = u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname;
  return {
    host,
    port: u.port ? Number(u.port) : 6379,
    db,
    ...(u.username && { username: decodeURIComponent(u.username) }),
    ...(u.password && { password: decodeURIComponent(u.password) }),
    ...(u.protocol === "rediss:" && { tls: {} }),
    connectTimeout: 10_000,
    ...(forWorker ? { maxRetriesPerRequest: null } : { maxRetriesPerRequest: 2 }),
  };
}

export function runRecordKey(queueName: string, runKey: string): string {
  return `${KEY_PREFIX}:${queueName}:run:${runKey}`;
}
export function runLockKey(queueName: string, runKey: string): string {
  return `${KEY_PREFIX}:${queueName}:lock:${runKey}`;
}

/** A run's record in Redis: its ranges (fixed when the generation starts, so a resume finds the same jobs) and its state. */
export interface RunRecord {
  v: number;
  runKey: string;
  generation: number;
  source: string;
  target: string;
  ranges: KeyRange[];
  /** running: ranges or deletes unfinished (a re-run resumes); failed: a re-run retries what failed; done: a re-run starts a new generation. */
  state: "running" | "failed" | "done";
  createdAt: number;
  finishedAt?: number;
  summary?: SyncSummary;
  note?: string;
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** JSON with object keys sorted and undefined dropped, so equal options hash equally. */
export function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
