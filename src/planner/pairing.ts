/** What changes in planning when a side is a local folder (a store with the LocalFolder capability). */
import { mapOrdered } from "../core/async.js";
import { isLocalFolder, type LocalFolder } from "../core/capabilities.js";
import type { ObjectInfo, ObjectStore } from "../core/types.js";
import { isPlainMd5, multipartParts } from "../integrity/etag.js";
import { COMPARE_RULES, checksum, sizeAndTimeWithin, sizeOnly, type CompareMode, type CompareRule } from "./compare.js";
import type { KeyFilter } from "./filters.js";
import type { Action } from "./planner.js";

/** The time window of a local folder that declares none (LocalStore declares 2 s: see LocalFolder.timeWindowMs). */
export const MTIME_WINDOW_MS = 2000;

export interface PairedListings {
  source: AsyncIterable<ObjectInfo>;
  target: AsyncIterable<ObjectInfo>;
  compare: CompareRule;
  /** The target is a folder: its folders exist implicitly under its files (PlanOptions.implicitFolders). */
  implicitFolders: boolean;
  /** Applied to the plan's actions, in order, before they run (a download's original times). */
  afterPlan?: (actions: AsyncIterable<Action>) => AsyncIterable<Action>;
}

/**
 * The two listings and the comparison rule for a pair of stores. Between S3 stores that is
 * just their listings and the rule asked for. When a side is a local folder:
 * - the S3 side's redundant directory markers (`d/` followed by keys under `d/`) are dropped: a
 *   folder cannot tell a directory with a marker from one without, and an empty folder lists as
 *   a marker, so markers of empty directories still sync both ways;
 * - for a local target, a source holding both a file `a` and keys under `a/` has the keys under
 *   `a/` refused (the file, first in key order, wins), whatever order the copies finish in;
 * - times compare with a window of MTIME_WINDOW_MS, and `--checksum` hashes a local file only
 *   when the other side has the same key and size (and a hash to compare with).
 */
export function pairListings(
  source: ObjectStore,
  target: ObjectStore,
  mode: CompareMode,
  filter: KeyFilter,
  autoPartSize = false,
): PairedListings {
  const sourceLocal = isLocalFolder(source) ? source : undefined;
  const targetLocal = isLocalFolder(target) ? target : undefined;
  let src: AsyncIterable<ObjectInfo> = source.list();
  let dst: AsyncIterable<ObjectInfo> = target.list();
  if (!sourceLocal && !targetLocal)
    return { source: src, target: dst, compare: COMPARE_RULES[mode], implicitFolders: false };
  if (!sourceLocal) src = withoutRedundantMarkers(src);
  if (!targetLocal) dst = withoutRedundantMarkers(dst);
  if (targetLocal) src = refusingFileFolderConflicts(src, targetLocal, filter);
  const windowMs = Math.max(sourceLocal?.timeWindowMs ?? 0, targetLocal?.timeWindowMs ?? 0);
  if (mode === "checksum") [src, dst] = hashingWhenPaired(src, dst, sourceLocal, targetLocal, filter, autoPartSize);
  const compare = localCompareRule(mode, windowMs);
  return {
    source: src,
    target: dst,
    compare,
    implicitFolders: targetLocal !== undefined,
    ...(mode !== "size-only" &&
      targetLocal &&
      !sourceLocal && {
        afterPlan: (actions: AsyncIterable<Action>) => withOriginalTimes(actions, source, compare, windowMs),
      }),
  };
}

/** The comparison rules with a local side: times within MTIME_WINDOW_MS count as equal. */
export function localCompareRule(mode: CompareMode, windowMs = MTIME_WINDOW_MS): CompareRule {
  const byTime = sizeAndTimeWithin(windowMs);
  if (mode === "size-only") return sizeOnly;
  if (mode === "size-and-time") return byTime;
  return (source, target) => {
    const verdict = checksum(source, target);
    if (!verdict.undecidable) return verdict;
    // Same fallback as between buckets, but with the window.
    const fallback = byTime(source, target);
    const reason = `${verdict.reason.slice(0, verdict.reason.lastIndexOf("; "))}; ${fallback.reason}`;
    return { copy: fallback.copy, reason, undecidable: true };
  };
}

/**
 * Drops zero-byte `d/` markers that are followed by a key under `d/`. In a sorted listing such a
 * key comes right after the marker (nothing sorts between `d/` and `d/x`), so one entry of
 * lookahead suffices.
 */
export async function* withoutRedundantMarkers(listing: AsyncIterable<ObjectInfo>): AsyncGenerator<ObjectInfo> {
  let marker: ObjectInfo | undefined;
  for await (const entry of listing) {
    if (marker) {
      if (!entry.key.startsWith(marker.key)) yield marker;
      marker = undefined;
    }
    if (entry.key.endsWith("/") && entry.size === 0) marker = entry;
    else yield entry;
  }
  if (marker) yield marker;
}

/**
 * Tells the local target about source keys under a file of the source (`a/b` beside `a`). Every
 * key between `a` and `a/...` starts with `a`, so the files that can still be a folder of a later
 * key form a chain of prefixes of the current key: memory stays within one key's length.
 */
export async function* refusingFileFolderConflicts(
  listing: AsyncIterable<ObjectInfo>,
  target: LocalFolder,
  filter: KeyFilter,
): AsyncGenerator<ObjectInfo> {
  const files: string[] = [];
  for await (const entry of listing) {
    // Excluded keys are never written, so they conflict with nothing.
    if (filter(entry.key)) {
      while (files.length > 0 && !entry.key.startsWith(files[files.length - 1]!)) files.pop();
      const file = files.find((f) => entry.key.startsWith(`${f}/`));
      if (file !== undefined) target.refuseUnder(file);
      if (!entry.key.endsWith("/")) files.push(entry.key);
    }
    yield entry;
  }
}

/**
 * Fills in the MD5 of local files whose key and size match the other side's current entry, just
 * before the planner compares them. The planner holds one entry per side and asks for the next
 * one only when done with the last, so when one side yields key k and the other side's last
 * entry is also k, those two are about to be compared: the local one(s) are hashed then, by
 * setting `etag` on the entry objects (the planner passes them through unchanged). A file only
 * one side has is never read.
 */
export function hashingWhenPaired(
  source: AsyncIterable<ObjectInfo>,
  target: AsyncIterable<ObjectInfo>,
  sourceStore: LocalFolder | undefined,
  targetStore: LocalFolder | undefined,
  filter: KeyFilter = () => true,
  autoPartSize = false,
): [AsyncGenerator<ObjectInfo>, AsyncGenerator<ObjectInfo>] {
  const stores = [sourceStore, targetStore] as const;
  const fill = async (entry: ObjectInfo, store: LocalFolder | undefined, other: ObjectInfo) => {
    if (!store || entry.etag !== undefined) return;
    // An encrypted (non-MD5) ETag on the other side cannot be compared: skip the read. A multipart
    // one can, with --auto-part-size, when a likely part size reproduces it.
    const multipart = multipartParts(other.etag) !== undefined;
    if (other.etag !== undefined && !isPlainMd5(other.etag) && !(multipart && autoPartSize)) return;
    // Unreadable now: leave it undecided; copying the file will report the real error.
    entry.etag = await store.checksum(entry.key, multipart ? other.etag : undefined).catch(() => undefined);
  };
  return whenPaired(source, target, filter, async (s, t) => {
    await fill(s, stores[0], t);
    await fill(t, stores[1], s);
  });
}

/**
 * Runs `onPair` on the source and target entries of a key with the same size on both sides,
 * just before the planner compares them (see hashingWhenPaired for why that moment is known),
 * so it can fill in what the listing lacks (a hash, a file's original time).
 */
export function whenPaired(
  source: AsyncIterable<ObjectInfo>,
  target: AsyncIterable<ObjectInfo>,
  filter: KeyFilter,
  onPair: (source: ObjectInfo, target: ObjectInfo) => Promise<void>,
): [AsyncGenerator<ObjectInfo>, AsyncGenerator<ObjectInfo>] {
  const last: [ObjectInfo | undefined, ObjectInfo | undefined] = [undefined, undefined];
  async function* side(listing: AsyncIterable<ObjectInfo>, me: 0 | 1): AsyncGenerator<ObjectInfo> {
    const them = me === 0 ? 1 : 0;
    for await (const entry of listing) {
      last[me] = entry;
      const other = last[them];
      if (other && other.key === entry.key && other.size === entry.size && filter(entry.key)) {
        await (me === 0 ? onPair(entry, other) : onPair(other, entry));
      }
      yield entry;
    }
  }
  return [side(source, 0), side(target, 1)];
}

/** rclone's user metadata key for a file's modification time (float seconds), which bucketsync reads and writes too. */
export const MTIME_METADATA = "mtime";

/** `1735689600.123000000` (rclone's format) for epoch ms. */
export function formatMtime(ms: number): string {
  const whole = Math.floor(ms / 1000);
  return `${whole}.${String(Math.round(ms - whole * 1000)).padStart(3, "0")}000000`;
}

/** Epoch ms from rclone's `mtime` metadata, or undefined when it is not one. */
export function parseMtime(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d+(\.\d+)?$/.test(value.trim())) return undefined;
  return Math.round(Number(value) * 1000);
}

/**
 * Downloads into a folder: an object uploaded from a folder (by bucketsync or rclone) keeps the
 * file's time in its `mtime` metadata while its LastModified is the upload time, and a download
 * gives the file that original time. So when a file and its object have the same size and the
 * object looks newer, the plan's `update` is checked before it runs:
 * - a file whose access time is the object's LastModified is this run's kind of download of that
 *   very object (a download sets it so: see ObjectInfo.accessedAt), untouched since: skipped, no
 *   request. Anything that reads or rewrites the file moves its access time, and it is checked;
 * - otherwise one HEAD reads the original time, and the comparison is made again with it, so a
 *   folder -> bucket -> folder round trip does not download everything again.
 * Only updates are looked at (a key the folder lacks costs nothing), ORIGINAL_TIME_LOOKAHEAD at
 * once, in order: a no-op re-download costs one round trip per window, not one per file.
 */
export function withOriginalTimes(
  actions: AsyncIterable<Action>,
  source: ObjectStore,
  compare: CompareRule,
  windowMs: number,
): AsyncGenerator<Action> {
  return mapOrdered(actions, ORIGINAL_TIME_LOOKAHEAD, async (a) => {
    if (a.type !== "update" || a.key.endsWith("/") || a.source.size !== a.target.size) return a;
    if (a.source.lastModified - a.target.lastModified <= windowMs) return a;
    const skip = (reason: string, undecidable?: boolean): Action => ({
      type: "skip",
      key: a.key,
      source: a.source,
      target: a.target,
      reason,
      ...(undecidable && { undecidable }),
    });
    if (a.target.accessedAt === a.source.lastModified && a.target.accessedAt !== undefined)
      return skip("same size; the file is the download of this object (its access time marks it)");
    const details = await source.head(a.key).catch(() => undefined);
    const original = parseMtime(details?.metadata?.[MTIME_METADATA]);
    if (original === undefined) return a;
    const verdict = compare({ ...a.source, lastModified: original }, a.target);
    if (verdict.copy) return { ...a, reason: verdict.reason, undecidable: verdict.undecidable };
    return skip(`${verdict.reason} (the object's original mtime)`, verdict.undecidable);
  });
}

const ORIGINAL_TIME_LOOKAHEAD = 64;
