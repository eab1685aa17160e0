import type { ObjectInfo } from "../core/types.js";
import { isPlainMd5 } from "../integrity/etag.js";
import type { CompareMode } from "../options/table.js";

/** The verdict of a comparison rule for a key present on both sides. */
export type Verdict = { copy: boolean; reason: string; undecidable?: boolean };

/** A comparison rule: given the source and target entries of one key, copy or not, and why. */
export type CompareRule = (source: ObjectInfo, target: ObjectInfo) => Verdict;

export const SAME = "same size and not newer";

/**
 * aws-cli's default: copy when sizes differ or the source is newer than the target.
 * Trap: a server-side copy gets a new LastModified (the copy time), so a target that is later
 * changed with the same size is never repaired by this rule; use `checksum` for that.
 */
export const sizeAndTime: CompareRule = (source, target) => {
  if (source.size !== target.size) return { copy: true, reason: "size differs" };
  if (source.lastModified > target.lastModified) return { copy: true, reason: "source newer" };
  return { copy: false, reason: SAME };
};

/** Like sizeAndTime, but tolerating clocks that disagree by up to `windowMs` (local files vs servers). */
export function sizeAndTimeWithin(windowMs: number): CompareRule {
  return (source, target) => {
    if (source.size !== target.size) return { copy: true, reason: "size differs" };
    if (source.lastModified - target.lastModified > windowMs) return { copy: true, reason: "source newer" };
    return { copy: false, reason: SAME };
  };
}

export const sizeOnly: CompareRule = (source, target) =>
  source.size !== target.size ? { copy: true, reason: "size differs" } : { copy: false, reason: "same size" };

export { isPlainMd5 };

/**
 * Compares content by ETag where that proves something: both plain MD5s, or identical multipart
 * ETags (same bytes in the same parts). Otherwise it cannot decide; it says so and falls back to
 * size and time, the way rclone falls back when a hash is missing.
 */
export const checksum: CompareRule = (source, target) => {
  if (source.size !== target.size) return { copy: true, reason: "size differs" };
  if (source.etag !== undefined && source.etag === target.etag) return { copy: false, reason: "same checksum" };
  if (isPlainMd5(source.etag) && isPlainMd5(target.etag)) return { copy: true, reason: "checksum differs" };
  const fallback = sizeAndTime(source, target);
  return {
    copy: fallback.copy,
    reason: `checksum undecidable (${describeEtags(source.etag, target.etag)}); ${fallback.reason}`,
    undecidable: true,
  };
};

function describeEtags(a: string | undefined, b: string | undefined): string {
  const kind = (e: string | undefined) =>
    e === undefined ? "no ETag" : e.includes("-") ? "multipart ETag" : isPlainMd5(e) ? "MD5" : "non-MD5 ETag";
  return `source ${kind(a)}, target ${kind(b)}`;
}

/** One rule per compare mode of the option table (options/table.ts). */
export const COMPARE_RULES: Record<CompareMode, CompareRule> = {
  "size-and-time": sizeAndTime,
  "size-only": sizeOnly,
  checksum,
};
export type { CompareMode };
