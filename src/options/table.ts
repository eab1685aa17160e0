/**
 * Every option of a sync (and of check, and of a config-file job), declared once. The library's
 * option types, the CLI flags, the config file's job keys, the distributed job payload and
 * option validation all come from this table (see define.ts). To add an option: add an entry
 * here, then read it where it takes effect (`options.<key>`; the executor gets every option as
 * `settings`). See docs/architecture.md, "Where a change goes".
 */
import { CANNED_ACLS, type CannedAcl } from "../core/types.js";
import { ALL_COMMANDS, boolean, composite, number, oneOf, text, type OptionDef, type ValueOf } from "./define.js";
import { parseSize, parseTimeBound, parseWholeNumber } from "./parse.js";

export const COMPARE_MODES = ["size-and-time", "size-only", "checksum"] as const;
export type CompareMode = (typeof COMPARE_MODES)[number];
export const VERIFY_MODES = ["off", "on", "strict"] as const;
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

export const RUN_OPTIONS = {
  delete: boolean({ help: "delete target objects not in the source (after every copy succeeded)", negatable: true }),
  dryRun: boolean({
    flag: "--dry-run",
    aliases: ["--dryrun"],
    help: "print what would happen; change nothing",
    negatable: true,
  }),
  acl: oneOf(CANNED_ACLS, { arg: "<canned>", help: "canned ACL for every object written" }) as OptionDef<CannedAcl>,
  preserveAcl: boolean({ help: "copy each source object's grants to its copy", negatable: true }),
  maxDelete: number({
    help: "refuse all deletes when more than N are planned",
    parse: (t, f) => parseWholeNumber(f)(t),
    distributed: "local",
    validate: (v, name) =>
      Number.isInteger(v) && v >= 0 ? undefined : `invalid ${name} '${v}'; expected a whole number`,
  }),
  force: boolean({
    help: "allow --delete to empty the target when the source lists no objects",
    distributed: "local",
    negatable: true,
  }),
  multipartThreshold: number({
    arg: "<size>",
    help: "copy objects above this size in parts (default 5GiB)",
    parse: (t, f) => parseSize(f, { min: 1, max: 5 * GiB, why: "expected 1 byte to 5 GiB" })(t),
    validate: (v, name) =>
      Number.isFinite(v) && v >= 1 && v <= 5 * GiB ? undefined : `invalid ${name} '${v}'; expected 1 byte to 5 GiB`,
  }),
  partSize: number({
    arg: "<size>",
    help: "part size for multipart copies and uploads (default 64MiB)",
    parse: (t, f) => parseSize(f, { min: 5 * MiB, max: 5 * GiB, why: "S3 takes parts from 5 MiB to 5 GiB" })(t),
    validate: (v, name) =>
      Number.isFinite(v) && v >= 5 * MiB && v <= 5 * GiB
        ? undefined
        : `invalid ${name} '${v}'; S3 takes parts from 5 MiB to 5 GiB`,
  }),
  storageClass: text({
    arg: "<class>",
    help: "storage class of every object written (STANDARD, STANDARD_IA, ...)",
    validate: (v, name) => (/^[A-Z0-9_]{2,40}$/.test(v) ? undefined : `invalid ${name} '${v}'`),
  }),
  sse: oneOf(["AES256", "aws:kms"], { arg: "<algorithm>", help: "server-side encryption of objects written" }),
  sseKmsKeyId: text({ arg: "<id>", help: "KMS key for --sse aws:kms" }),
  metadataDirective: oneOf(["COPY", "REPLACE"], {
    arg: "<directive>",
    help: "COPY the source's metadata (default) or REPLACE it",
  }),
  replaceProperties: composite<ReplaceProperties>("properties", {
    help: "Content-Type, Cache-Control, Content-Disposition and user metadata of objects written (implies REPLACE)",
    config: false,
  }),
  guessMimeType: boolean({
    help: "guess Content-Type from the file extension on uploads and when --content-type is not given with REPLACE (on by default; --no-guess-mime-type turns it off)",
    negatable: true,
  }),
  verify: oneOf(VERIFY_MODES, {
    arg: "<mode>",
    help: "prove each copy by ETag or by hashing the bytes: off, on (default), strict (unverifiable copies fail)",
  }),
  contentMd5: boolean({
    help: "send Content-MD5 on single-part streamed uploads whose source ETag is an MD5",
    negatable: true,
  }),
  // A point-in-time source lists versions of the whole bucket; version histories are copied per key, not per range.
  at: number({
    arg: "<when>",
    help: "copy the source as it was at this moment (versioned bucket): a timestamp, or 1d, 12h ago",
    parse: (t, f) => parseTimeBound(f, t),
    distributed: "unsupported",
  }),
  allVersions: boolean({
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
  // Issue 17: work lists, re-drives and S3 Inventory as the source listing. Each names a file or
  // a manifest read by this machine, so none of them runs per range on distributed workers.
  filesFrom: text({
    arg: "<file>",
    help: "only the keys this file lists, one per line, relative to the source and target (- for stdin); a short list is read with a HEAD per key instead of listing",
    distributed: "unsupported",
    commands: ALL_COMMANDS,
  }),
  filesFromRaw: text({
    arg: "<file>",
    help: "like --files-from, with keys separated by NUL bytes (keys holding tabs or line breaks)",
    distributed: "unsupported",
    commands: ALL_COMMANDS,
  }),
  failedKeys: text({
    arg: "<file>",
    help: "write every key that failed to this file, a tab and the reason after it (--files-from reads it back)",
    distributed: "unsupported",
  }),
  sourceInventory: text({
    arg: "<manifest>",
    help: "read the source's keys from an S3 Inventory (s3://bucket/.../manifest.json, CSV or Parquet) instead of listing it",
    distributed: "unsupported",
    validate: (v, name) =>
      /^s3:\/\/[^/]+\/.*manifest\.json$/.test(v)
        ? undefined
        : `invalid ${name} '${v}'; expected s3://bucket/path/manifest.json`,
  }),
  checkpoint: text({
    arg: "<file>",
    help: "record the run's progress in FILE; after a crash the same command with the same FILE does only what is left",
    distributed: "unsupported",
  }),
  listParallelism: number({
    flag: false,
    config: false,
    help: "key ranges listed at once between two buckets (default 16)",
    distributed: "local",
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
