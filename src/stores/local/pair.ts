import * as fs from "node:fs/promises";
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import type { Location } from "../../core/location.js";
import type { ObjectInfo, ObjectStore } from "../../core/types.js";
import { UsageError } from "../../core/types.js";
import { isPlainMd5, multipartParts } from "../../integrity/etag.js";
import { COMPARE_RULES, checksum, sizeAndTimeWithin, sizeOnly, type CompareMode, type CompareRule } from "../../planner/compare.js";
import type { KeyFilter } from "../../planner/filters.js";
import { LocalStore } from "./local-store.js";

/**
 * How far a local file's mtime and an S3 LastModified may disagree and still count as the same
 * time: clocks skew, S3 times have 1-second resolution, and some file systems (FAT) keep 2 seconds.
 */
export const MTIME_WINDOW_MS = 2000;

export interface PairedListings {
  source: AsyncIterable<ObjectInfo>;
  target: AsyncIterable<ObjectInfo>;
  compare: CompareRule;
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
export function pairListings(source: ObjectStore, target: ObjectStore, mode: CompareMode, filter: KeyFilter, autoPartSize = false): PairedListings {
  const sourceLocal = source instanceof LocalStore ? source : undefined;
  const targetLocal = target instanceof LocalStore ? target : undefined;
  let src: AsyncIterable<ObjectInfo> = source.list();
  let dst: AsyncIterable<ObjectInfo> = target.list();
  if (!sourceLocal && !targetLocal) return { source: src, target: dst, compare: COMPARE_RULES[mode] };
  if (!sourceLocal) src = withoutRedundantMarkers(src);
  if (!targetLocal) dst = withoutRedundantMarkers(dst);
  if (targetLocal) src = refusingFileFolderConflicts(src, targetLocal, filter);
  if (mode === "checksum") [src, dst] = hashingWhenPaired(src, dst, sourceLocal, targetLocal, filter, autoPartSize);
  return { source: src, target: dst, compare: localCompareRule(mode) };
}

/** The comparison rules with a local side: times within MTIME_WINDOW_MS count as equal. */
export function localCompareRule(mode: CompareMode): CompareRule {
  const byTime = sizeAndTimeWithin(MTIME_WINDOW_MS);
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
export async function* refusingFileFolderConflicts(listing: AsyncIterable<ObjectInfo>, target: LocalStore, filter: KeyFilter): AsyncGenerator<ObjectInfo> {
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
  sourceStore: LocalStore | undefined,
  targetStore: LocalStore | undefined,
  filter: KeyFilter = () => true,
  autoPartSize = false,
): [AsyncGenerator<ObjectInfo>, AsyncGenerator<ObjectInfo>] {
  const last: [ObjectInfo | undefined, ObjectInfo | undefined] = [undefined, undefined];
  const stores = [sourceStore, targetStore] as const;
  const fill = async (entry: ObjectInfo, store: LocalStore | undefined, other: ObjectInfo) => {
    if (!store || entry.etag !== undefined) return;
    // An encrypted (non-MD5) ETag on the other side cannot be compared: skip the read. A multipart
    // one can, with --auto-part-size, when a likely part size reproduces it.
    const multipart = multipartParts(other.etag) !== undefined;
    if (other.etag !== undefined && !isPlainMd5(other.etag) && !(multipart && autoPartSize)) return;
    // Unreadable now: leave it undecided; copying the file will report the real error.
    entry.etag = await store.checksum(entry.key, multipart ? other.etag : undefined).catch(() => undefined);
  };
  async function* side(listing: AsyncIterable<ObjectInfo>, me: 0 | 1): AsyncGenerator<ObjectInfo> {
    const them = me === 0 ? 1 : 0;
    for await (const entry of listing) {
      last[me] = entry;
      const other = last[them];
      if (other && other.key === entry.key && other.size === entry.size && filter(entry.key)) {
        await fill(entry, stores[me], other);
        await fill(other, stores[them], entry);
      }
      yield entry;
    }
  }
  return [side(source, 0), side(target, 1)];
}

/**
 * Checks local locations before anything is listed: a source folder must exist, a target must
 * be a folder if it exists (a missing one is created), and two local folders must not overlap
 * (one inside the other, through symlinks too): a sync would copy onto itself.
 */
export async function checkLocalLocations(source: Location | undefined, target: Location | undefined): Promise<void> {
  if (source?.kind === "local") {
    const st = await statFor(source.path, "source");
    if (!st) throw new UsageError(`source folder '${source.path}' does not exist`);
    if (!st.isDirectory()) throw new UsageError(`source '${source.path}' is not a folder`);
  }
  if (target?.kind === "local") {
    const st = await statFor(target.path, "target");
    if (st && !st.isDirectory()) throw new UsageError(`target '${target.path}' exists and is not a folder`);
    // A missing target is created only once something is written, so a run that fails changes
    // nothing; whether it can be created is checked now, on its nearest existing folder.
    if (!st) await checkCreatable(target.path);
  }
  if (source?.kind === "local" && target?.kind === "local") {
    const [a, b] = [await realPath(source.path), await realPath(target.path)];
    if (contains(a, b) || contains(b, a)) {
      throw new UsageError(`source ${source.path} and target ${target.path} overlap (one folder is inside the other); a sync would copy onto itself`);
    }
  }
}

async function checkCreatable(path: string): Promise<void> {
  let dir = dirname(resolve(path));
  for (;;) {
    const st = await fs.stat(dir).catch(() => undefined);
    if (st) {
      if (!st.isDirectory()) throw new UsageError(`cannot create target folder '${path}': ${dir} is not a folder`);
      await fs.access(dir, fs.constants.W_OK).catch(() => {
        throw new UsageError(`cannot create target folder '${path}': ${dir} is not writable`);
      });
      return;
    }
    const parent = dirname(dir);
    if (parent === dir) return;
    dir = parent;
  }
}

async function statFor(path: string, side: string) {
  try {
    return await fs.stat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return undefined;
    throw new UsageError(`cannot use ${side} '${path}': ${(err as Error).message}`);
  }
}

/** The real path of a folder, or of its nearest existing ancestor joined with the rest. */
async function realPath(path: string): Promise<string> {
  const full = resolve(path);
  try {
    return await fs.realpath(full);
  } catch {
    const parent = dirname(full);
    return parent === full ? full : join(await realPath(parent), basename(full));
  }
}

function contains(outer: string, inner: string): boolean {
  const rel = relative(outer, inner);
  return rel === "" || (rel.split(sep)[0] !== ".." && !isAbsolute(rel));
}
