/** Planning over versioned listings: a point in time (--at) and whole histories (--all-versions). */
import { compareKeys } from "../core/keys.js";
import type { ObjectInfo, ObjectVersion } from "../core/types.js";
import { isPlainMd5 } from "../integrity/etag.js";
import type { CompareRule } from "./compare.js";

/**
 * `--at TIME`: the source as it was at that moment. For each key, the newest version written at
 * or before TIME; keys whose newest version by then is a delete marker, or that did not exist
 * yet, are absent. A sorted listing like any other, so the ordinary planner and executor copy it.
 */
export async function* listingAt(
  groups: AsyncIterable<{ key: string; versions: ObjectVersion[] }>,
  at: number,
): AsyncGenerator<ObjectInfo> {
  for await (const { key, versions } of groups) {
    let chosen: ObjectVersion | undefined;
    for (const v of versions) if (v.lastModified <= at) chosen = v; // oldest first: the last one by then wins
    if (!chosen || chosen.deleteMarker) continue;
    yield { key, size: chosen.size, lastModified: chosen.lastModified, etag: chosen.etag, versionId: chosen.versionId };
  }
}

/**
 * Comparing an old version with the target's current object: times say nothing (the version is
 * older by design), so content decides: sizes, then ETags; when ETags cannot decide, copy.
 */
export const contentRule: CompareRule = (source, target) => {
  if (source.size !== target.size) return { copy: true, reason: "size differs" };
  if (source.etag !== undefined && source.etag === target.etag) return { copy: false, reason: "same checksum" };
  if (isPlainMd5(source.etag) && isPlainMd5(target.etag)) return { copy: true, reason: "checksum differs" };
  return { copy: true, reason: "content cannot be compared (non-MD5 ETags); copying", undecidable: true };
};

const signature = (v: ObjectVersion) => (v.deleteMarker ? "delete-marker" : `${v.size}:${v.etag ?? ""}`);

/**
 * Which source versions a target is missing: the longest run of source versions (from the
 * oldest) that the target's history already ends with is done; the rest are copied in order.
 * An empty target gets every version; a diverged one gets the whole source history appended once.
 */
export function versionsToCopy(source: ObjectVersion[], target: ObjectVersion[]): ObjectVersion[] {
  const src = source.map(signature);
  const dst = target.map(signature);
  for (let k = Math.min(src.length, dst.length); k > 0; k--) {
    const tail = dst.slice(dst.length - k);
    if (tail.every((s, i) => s === src[i])) return source.slice(k);
  }
  return source;
}

/** Merge-joins two version listings by key (both grouped and sorted by key). */
export async function* pairGroups(
  source: AsyncIterable<{ key: string; versions: ObjectVersion[] }>,
  target: AsyncIterable<{ key: string; versions: ObjectVersion[] }>,
): AsyncGenerator<{ key: string; source: ObjectVersion[]; target: ObjectVersion[] }> {
  const s = source[Symbol.asyncIterator]();
  const t = target[Symbol.asyncIterator]();
  let a = await s.next();
  let b = await t.next();
  while (!a.done) {
    const order = b.done ? -1 : compareKeys(a.value.key, b.value.key);
    if (order < 0) {
      yield { key: a.value.key, source: a.value.versions, target: [] };
      a = await s.next();
    } else if (order > 0) {
      b = await t.next(); // keys only in the target: left alone
    } else {
      yield { key: a.value.key, source: a.value.versions, target: b.value!.versions };
      a = await s.next();
      b = await t.next();
    }
  }
}
