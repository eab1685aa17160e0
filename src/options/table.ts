/**
 * Every option of a sync (and of check, and of a config-file job), declared once. The library's
 * option types, the CLI flags, the config file's job keys, the distributed job payload and
 * option validation all come from this table (see define.ts). To add an option: add an entry
 * here, then read it where it takes effect (`options.<key>`; the executor gets every option as
 * `settings`). See docs/architecture.md, "Where a change goes".
 */
import { maskEndpoint } from "../core/endpoint.js";
import { CANNED_ACLS, type CannedAcl } from "../core/types.js";
import {
  ALL_COMMANDS,
  ONE_OFF,
  WATCH,
  WRITES,
  boolean,
  composite,
  number,
  oneOf,
  text,
  type OptionDef,
  type ValueOf,
} from "./define.js";
import {
  parseBandwidth,
  parseDuration,
  parseListenAddress,
  parsePercent,
  parsePositiveNumber,
  parseSize,
  parseTimeAhead,
  parseTimeBound,
  parseWholeNumber,
} from "./parse.js";

export const COMPARE_MODES = ["size-and-time", "size-only", "checksum"] as const;
export type CompareMode = (typeof COMPARE_MODES)[number];
export const VERIFY_MODES = ["off", "on", "strict"] as const;
export const CUTOFF_MODES = ["hard", "soft", "cautious"] as const;
export type CutoffMode = (typeof CUTOFF_MODES)[number];
export const ORDER_BY = ["size", "size,desc", "key"] as const;
export type OrderBy = (typeof ORDER_BY)[number];

/** A problem of `value` under a flag's parser, worded with `name` (for options given as text). */
function problemOf(parse: (text: string) => unknown, value: string, name: string): string | undefined {
  try {
    parse(value);
    return undefined;
  } catch (err) {
    return (err as Error).message.replace(/^invalid value/, `invalid ${name}`);
  }
}
export type VerifyMode = (typeof VERIFY_MODES)[number];

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** An ordered include/exclude rule (aws-cli semantics: later rules win). */
export interface FilterRule {
  type: "include" | "exclude";
  pattern: string;
}

/** Filters on object attributes (both sides). */
export interface AttributeFilters {
  minSize?: number;
  maxSize?: number;
  /** Only objects modified after this time (epoch ms). */
  newerThan?: number;
  /** Only objects modified before this time (epoch ms). */
  olderThan?: number;
  /** Glob on Content-Type, e.g. `image/*`. Needs a HEAD per object. */
  contentType?: string;
  /** Globs on user metadata values, e.g. { team: "web*" }. Needs a HEAD per object. */
  metadata?: Record<string, string>;
}

/** The properties `--content-type` and friends set on every object written (REPLACE). */
export interface ReplaceProperties {
  contentType?: string;
  cacheControl?: string;
  contentDisposition?: string;
  contentEncoding?: string;
  contentLanguage?: string;
  metadata?: Record<string, string>;
}

/** --max-delete: a count, or a share of the target's objects in scope ("10%"). */
export type MaxDelete = number | `${number}%`;

export const RUN_OPTIONS = {
  delete: boolean({ help: "delete target objects not in the source (after every copy succeeded)", negatable: true }),
  dryRun: boolean({
    commands: WRITES,
    flag: "--dry-run",
    aliases: ["--dryrun"],
    help: "print what would happen; change nothing (watch still sets up, and removes, its notification on the source)",
    negatable: true,
  }),
  acl: oneOf(CANNED_ACLS, {
    commands: WRITES,
    arg: "<canned>",
    help: "canned ACL for every object written",
  }) as OptionDef<CannedAcl>,
  preserveAcl: boolean({ commands: WRITES, help: "copy each source object's grants to its copy", negatable: true }),
  maxDelete: {
    ...number({
      arg: "<n|pct%>",
      help: "refuse all deletes when more than N are planned, or more than PCT% of the target's objects in scope",
      distributed: "local",
    }),
    parse: (t: string, f: string) => (/%\s*$/.test(t) ? parsePercent(f)(t) : parseWholeNumber(f)(t)),
    validate: (v: MaxDelete, name: string) =>
      (typeof v === "number" && Number.isInteger(v) && v >= 0) ||
      (typeof v === "string" && /^\d+(\.\d+)?%$/.test(v) && Number.parseFloat(v) <= 100)
        ? undefined
        : `invalid ${name} '${v}'; expected a whole number or a percentage such as 10%`,
  } as OptionDef<MaxDelete>,
  force: boolean({
    help: "allow --delete to empty the target when the source lists no objects",
    distributed: "local",
    negatable: true,
  }),
  multipartThreshold: number({
    commands: WRITES,
    arg: "<size>",
    help: "copy objects above this size in parts (default 5GiB)",
    parse: (t, f) => parseSize(f, { min: 1, max: 5 * GiB, why: "expected 1 byte to 5 GiB" })(t),
    validate: (v, name) =>
      Number.isFinite(v) && v >= 1 && v <= 5 * GiB ? undefined : `invalid ${name} '${v}'; expected 1 byte to 5 GiB`,
  }),
  partSize: number({
    commands: WRITES,
    arg: "<size>",
    help: "part size for multipart copies and uploads (default 64MiB)",
    parse: (t, f) => parseSize(f, { min: 5 * MiB, max: 5 * GiB, why: "S3 takes parts from 5 MiB to 5 GiB" })(t),
    validate: (v, name) =>
      Number.isFinite(v) && v >= 5 * MiB && v <= 5 * GiB
        ? undefined
        : `invalid ${name} '${v}'; S3 takes parts from 5 MiB to 5 GiB`,
  }),
  storageClass: text({
    commands: WRITES,
    arg: "<class>",
    help: "storage class of every object written (STANDARD, STANDARD_IA, ...)",
    validate: (v, name) => (/^[A-Z0-9_]{2,40}$/.test(v) ? undefined : `invalid ${name} '${v}'`),
  }),
  sse: oneOf(["AES256", "aws:kms"], {
    commands: WRITES,
    arg: "<algorithm>",
    help: "server-side encryption of objects written",
  }),
  sseKmsKeyId: text({ commands: WRITES, arg: "<id>", help: "KMS key for --sse aws:kms" }),
  metadataDirective: oneOf(["COPY", "REPLACE"], {
    commands: WRITES,
    arg: "<directive>",
    help: "COPY the source's metadata (default) or REPLACE it",
  }),
  replaceProperties: composite<ReplaceProperties>("properties", {
    commands: WRITES,
    help: "Content-Type, Cache-Control, Content-Disposition and user metadata of objects written (implies REPLACE)",
    config: false,
  }),
  guessMimeType: boolean({
    commands: WRITES,
    help: "guess Content-Type from the file extension on uploads and when --content-type is not given with REPLACE (on by default; --no-guess-mime-type turns it off)",
    negatable: true,
  }),
  verify: oneOf(VERIFY_MODES, {
    commands: WRITES,
    arg: "<mode>",
    help: "prove each copy by ETag or by hashing the bytes: off, on (default), strict (unverifiable copies fail)",
  }),
  contentMd5: boolean({
    commands: WRITES,
    help: "send Content-MD5 on single-part streamed uploads whose source ETag is an MD5",
    negatable: true,
  }),
  // A point-in-time source lists versions of the whole bucket; version histories are copied per key, not per range.
  at: number({
    commands: ONE_OFF,
    arg: "<when>",
    help: "copy the source as it was at this moment (versioned bucket): a timestamp, or 1d, 12h ago",
    parse: (t, f) => parseTimeBound(f, t),
    distributed: "unsupported",
  }),
  allVersions: boolean({
    commands: ONE_OFF,
    help: "copy every version of each key, oldest first (versioned buckets)",
    distributed: "unsupported",
  }),
  compare: oneOf(COMPARE_MODES, {
    flag: false,
    help: "how objects on both sides are compared: size-and-time (sync's default), size-only, checksum (check's default)",
    commands: ALL_COMMANDS,
  }),
  filters: composite<FilterRule[]>("filters", {
    help: "include/exclude rules in order",
    commands: ALL_COMMANDS,
    config: false,
  }),
  attributes: composite<AttributeFilters>("attributes", {
    help: "filters on size, time, Content-Type and metadata",
    commands: ALL_COMMANDS,
    config: false,
  }),
  autoPartSize: boolean({
    help: "with --checksum and a local side: hash files in the likely part size of a multipart ETag",
    commands: ALL_COMMANDS,
  }),
  concurrency: number({
    help: "requests in flight (default 64)",
    parse: (t, f) => parseWholeNumber(f, { min: 1, max: 4096 })(t),
    distributed: "local",
    commands: ALL_COMMANDS,
    validate: (v, name) =>
      Number.isInteger(v) && v >= 1 && v <= 4096
        ? undefined
        : `invalid ${name} '${v}'; expected a whole number from 1 to 4096`,
  }),
  followSymlinks: boolean({
    help: "follow symbolic links in local folders (default: skip them; loops are detected)",
    distributed: "local",
    commands: ALL_COMMANDS,
  }),
  // Issue 15: safe on live buckets.
  backupDir: text({
    arg: "<url>",
    help: "before an object is overwritten or deleted, copy it here (s3://bucket/prefix or a folder; keys relative to the sync root)",
    distributed: "range",
  }),
  suffix: text({ arg: "<suffix>", help: "with --backup-dir: append this to each backed-up key (e.g. -2026-12-01)" }),
  suffixKeepExtension: boolean({
    help: "with --suffix: put the suffix before the extension (a-2026.txt, not a.txt-2026)",
    negatable: true,
  }),
  noOverwrite: boolean({
    flag: "--no-overwrite",
    aliases: ["--ignore-existing"],
    commands: WRITES,
    help: "never replace an object that exists in the target, whatever the comparison says (rclone: --ignore-existing)",
  }),
  immutable: boolean({
    commands: WRITES,
    help: "an object on both sides that differs is an error, never an update; new objects are still copied",
    negatable: true,
  }),
  conditionalWrites: boolean({
    commands: WRITES,
    help: "writes carry If-None-Match/If-Match so an object someone else wrote meanwhile is never overwritten (on by default; --no-conditional-writes for servers that refuse the headers)",
    negatable: true,
  }),
  objectLockMode: oneOf(["GOVERNANCE", "COMPLIANCE"], {
    commands: WRITES,
    arg: "<mode>",
    help: "Object Lock retention mode of every object written (needs --object-lock-retain-until and a bucket with Object Lock)",
  }),
  objectLockRetainUntil: number({
    commands: WRITES,
    arg: "<when>",
    help: "retain objects written until this time: a timestamp, or a duration from now such as 30d",
    parse: (t, f) => parseTimeAhead(f, t),
  }),
  objectLockLegalHold: oneOf(["on", "off"], {
    commands: WRITES,
    arg: "<on|off>",
    help: "Object Lock legal hold on every object written",
  }),
  // Issue 17: work lists, re-drives and S3 Inventory as the source listing. Each names a file or
  // a manifest read by this machine, so none of them runs per range on distributed workers.
  filesFrom: text({
    arg: "<file>",
    help: "only the keys this file lists, one per line, relative to the source and target (- for stdin); a short list is read with a HEAD per key instead of listing",
    distributed: "unsupported",
    commands: ["sync", "run", "check", "cp"],
  }),
  filesFromRaw: text({
    arg: "<file>",
    help: "like --files-from, with keys separated by NUL bytes (keys holding tabs or line breaks)",
    distributed: "unsupported",
    commands: ["sync", "run", "check", "cp"],
  }),
  failedKeys: text({
    commands: ONE_OFF,
    arg: "<file>",
    help: "write every key that failed to this file, a tab and the reason after it (--files-from reads it back)",
    distributed: "unsupported",
  }),
  sourceInventory: text({
    commands: ONE_OFF,
    arg: "<manifest>",
    help: "read the source's keys from an S3 Inventory (s3://bucket/.../manifest.json, CSV or Parquet) instead of listing it",
    distributed: "unsupported",
    validate: (v, name) =>
      /^s3:\/\/[^/]+\/.*manifest\.json$/.test(v)
        ? undefined
        : `invalid ${name} '${v}'; expected s3://bucket/path/manifest.json`,
  }),
  checkpoint: text({
    commands: ONE_OFF,
    arg: "<file>",
    help: "record the run's progress in FILE; after a crash the same command with the same FILE does only what is left",
    distributed: "unsupported",
  }),
  // Issue 16: protect production and budget a run. Limits travel to distributed workers and
  // apply per range a worker runs (one at a time by default), not across the cluster.
  bwlimit: text({
    arg: "<rate>",
    help: 'bandwidth of bytes streamed through this machine (uploads, downloads, streamed copies), e.g. 10M, or a timetable "08:00,10M 19:00,off" (weekdays optional: "Mon-08:00,10M"); a bare number is KiB/s; server-side copies are not throttled by it',
    validate: (v, name) => problemOf(parseBandwidth(name), v, name),
  }),
  tpslimit: number({
    arg: "<n>",
    help: "at most N requests per second, of every kind (listing included); adaptive throttling on SlowDown stays underneath",
    parse: (t, f) => parsePositiveNumber(f)(t),
    validate: (v, name) =>
      Number.isFinite(v) && v > 0 ? undefined : `invalid ${name} '${v}'; expected a number above 0`,
  }),
  tpslimitBurst: number({
    arg: "<n>",
    help: "requests --tpslimit lets go at once after a quiet spell (default 1)",
    parse: (t, f) => parseWholeNumber(f, { min: 1, max: 100_000 })(t),
    validate: (v, name) =>
      Number.isInteger(v) && v >= 1 ? undefined : `invalid ${name} '${v}'; expected a whole number from 1`,
  }),
  maxTransfer: number({
    commands: ONE_OFF,
    arg: "<size>",
    help: "stop after this many bytes are copied (server-side or streamed), e.g. 5G; see --cutoff-mode",
    parse: (t, f) => parseSize(f)(t),
    // 0 would refuse every copy (each one "more than the limit"): no limit is the flag left out.
    validate: (v, name) =>
      Number.isFinite(v) && v > 0
        ? undefined
        : `invalid ${name} '${v}'; expected a size above 0 (leave ${name} out for no limit)`,
  }),
  maxDuration: number({
    commands: ONE_OFF,
    arg: "<duration>",
    help: "stop starting copies after this long, e.g. 90s, 30m, 2h; see --cutoff-mode",
    parse: (t, f) => parseDuration(f)(t),
    validate: (v, name) => (Number.isFinite(v) && v > 0 ? undefined : `invalid ${name} '${v}'; expected a duration`),
  }),
  cutoffMode: oneOf(CUTOFF_MODES, {
    commands: ONE_OFF,
    arg: "<mode>",
    help: "at --max-transfer/--max-duration: hard (default: stop at once, copies in flight cut), soft (let copies in flight finish), cautious (never start a copy that would pass --max-transfer); a cut-off run runs no deletes and exits 8",
  }),
  orderBy: oneOf(ORDER_BY, {
    arg: "<order>",
    help: "copy in this order within the executor's window of planned copies (not a sort of the whole bucket): size (smallest first), size,desc, key",
  }),
  priceTable: text({
    arg: "<file>",
    help: "YAML or JSON price table for the cost estimate (default: AWS S3 Standard, us-east-1)",
    commands: ALL_COMMANDS,
    distributed: "local",
  }),
  metricsAddr: text({
    arg: "<host:port>",
    help: "serve Prometheus metrics at http://HOST:PORT/metrics during the run (names start with bucketsync_)",
    distributed: "local",
    validate: (v, name) => problemOf((t) => parseListenAddress(name, t), v, name),
  }),
  listParallelism: number({
    commands: WRITES,
    flag: false,
    config: false,
    help: "key ranges listed at once between two buckets (default 16)",
    distributed: "local",
  }),
  // Issue 18: watch mode. Each runs on the watching machine only; a job file cannot set them.
  reconcile: number({
    commands: WATCH,
    arg: "<duration>",
    help: "watch: run a full sync this often besides the events, to catch anything missed (default 1h)",
    parse: (t, f) => parseDuration(f)(t),
    validate: (v, name) => (Number.isFinite(v) && v > 0 ? undefined : `invalid ${name} '${v}'; expected a duration`),
    distributed: "local",
    config: false,
  }),
  keepNotifications: boolean({
    commands: WATCH,
    help: "watch: leave the bucket notification and its topic in place when the watcher stops",
    distributed: "local",
    config: false,
  }),
  listen: text({
    commands: WATCH,
    arg: "<host:port>",
    help: "watch: where the endpoint receiving bucket notifications listens (default 127.0.0.1:0, a free port)",
    validate: (v, name) => problemOf((t) => parseListenAddress(name, t), v, name),
    distributed: "local",
    config: false,
  }),
  advertise: text({
    commands: WATCH,
    arg: "<url>",
    help: "watch: the base URL the S3 server reaches the --listen endpoint at (default http://HOST:PORT of --listen); the secret path token is added to it",
    validate: (v, name) =>
      /^https?:\/\/[^/\s]+\/?$/.test(v) ? undefined : `invalid ${name} '${v}'; expected http://host:port`,
    distributed: "local",
    config: false,
  }),
  queueUrl: text({
    commands: WATCH,
    arg: "<url>",
    help: "watch: read a bucket source's events from this SQS queue, which the bucket notifies (the route on AWS S3; see the README for its set-up and IAM), instead of a topic pushing to the watcher",
    validate: (v, name) =>
      /^https?:\/\/[^/\s]+\/\S+$/.test(v)
        ? undefined
        : `invalid ${name} '${maskEndpoint(v)}'; expected a queue URL like https://sqs.us-east-1.amazonaws.com/123456789012/my-queue`,
    distributed: "local",
    config: false,
  }),
};

export type RunOptionKey = keyof typeof RUN_OPTIONS;

/** The value of every run option, all optional: what `sync()` and `check()` take besides locations and hooks. */
export type OptionValues = { [K in RunOptionKey]?: ValueOf<(typeof RUN_OPTIONS)[K]> };

/** The table as a plain record, for code that walks it. */
export const OPTION_TABLE: Record<string, OptionDef<unknown>> = RUN_OPTIONS as unknown as Record<
  string,
  OptionDef<unknown>
>;
