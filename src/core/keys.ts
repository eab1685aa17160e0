import type { KeyRange } from "./types.js";

/**
 * The one key order of bucketsync: UTF-8 byte order, as S3's ListObjectsV2 returns keys.
 *
 * JavaScript's `<` compares UTF-16 code units, which disagrees with UTF-8 byte order only
 * when one string has a surrogate (a character above U+FFFF) where the other has a unit in
 * U+E000..U+FFFF. We compare code units and fix up exactly that case, which is as fast as
 * `<` and never allocates (Buffer.compare would encode both strings on every call).
 */
export function compareKeys(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(i);
    if (ca !== cb) {
      if (ca >= 0xd800 && cb >= 0xd800) return utf8Rank(ca) - utf8Rank(cb);
      return ca - cb;
    }
  }
  return a.length - b.length;
}

/** Surrogates (0xD800-0xDFFF) encode code points above 0xFFFF, so they rank above 0xE000-0xFFFF. */
function utf8Rank(unit: number): number {
  if (unit >= 0xe000) return unit - 0x800;
  return unit + 0x2000;
}

/**
 * Where `key` lies for a listing of `range`: -1 before it (skip), 0 inside, 1 past its end (a
 * sorted listing stops there). For stores that cannot ask their backend for the range itself.
 */
export function positionInRange(key: string, range: KeyRange): -1 | 0 | 1 {
  if (range.startAfter !== undefined && compareKeys(key, range.startAfter) <= 0) return -1;
  if (range.endAt !== undefined && compareKeys(key, range.endAt) > 0) return 1;
  if (range.prefix !== undefined && !key.startsWith(range.prefix)) return compareKeys(key, range.prefix) < 0 ? -1 : 1;
  return 0;
}

/** Byte length of a key in UTF-8, which is how S3 measures its 1024-byte limit. */
export function keyByteLength(key: string): number {
  return Buffer.byteLength(key, "utf8");
}

/** At most `max` items, spread evenly over the sorted input. */
export function evenly<T>(sorted: readonly T[], max: number): T[] {
  if (sorted.length <= max) return [...sorted];
  return Array.from({ length: max }, (_, i) => sorted[Math.floor(((i + 1) * sorted.length) / (max + 1))]!);
}
