import { StoreError } from "../../core/errors.js";
/**
 * Which keys can be files in a local folder, and where.
 *
 * Rules (docs/local-folders.md explains them to users):
 * - A key is split on `/` into path segments, which become nested directories and a file.
 * - Refused as an "unsafe key", never written: a key with a `..` or `.` segment (`../x`,
 *   `a/../../b`, `./dot`), an empty segment (`x//y`, or a leading `/`, i.e. an absolute
 *   path), a NUL character, or a lone UTF-16 surrogate (it has no UTF-8 spelling, so the file
 *   name would not round-trip). On Windows a `\` or `:` is refused too: both are path syntax
 *   there. Refusing beats normalizing: `a/./b` and `a/b` are different S3 objects, and writing
 *   both to one file would lose one silently.
 * - A key ending in `/` is a directory marker: when it is empty (zero bytes) it stands for a
 *   directory and creates only that directory; with content it cannot be a file and is refused.
 * - The last segment must not look like one of our temporary files (they are hidden from
 *   listings, so such a file would be downloaded again on every run).
 * Limits of the file system (a segment over 255 bytes, a file `a` where `a/b` needs a
 * directory) are found when writing, and reported for that key.
 */

/** A key that can be written: its path segments, and whether it is a directory marker. */
export type KeyPath = { ok: true; segments: string[]; marker: boolean } | { ok: false; reason: string };

const WINDOWS = process.platform === "win32";
// Lone surrogates: with the `u` flag a well-formed pair is one code point and does not match.
const LONE_SURROGATE = /\p{Surrogate}/u;

/** Maps a key to the path segments it would occupy, or says why it cannot be a file. */
export function keyPath(key: string): KeyPath {
  if (key === "") return { ok: false, reason: "the empty key names no file" };
  if (key.includes("\0")) return { ok: false, reason: "it contains a NUL character" };
  if (LONE_SURROGATE.test(key)) return { ok: false, reason: "it is not valid Unicode (a lone surrogate)" };
  if (key.startsWith("/")) return { ok: false, reason: "it is an absolute path" };
  if (WINDOWS && /[\\:]/.test(key))
    return { ok: false, reason: "it contains '\\' or ':', which are path syntax on Windows" };
  const marker = key.endsWith("/");
  const segments = (marker ? key.slice(0, -1) : key).split("/");
  for (const segment of segments) {
    if (segment === "") return { ok: false, reason: "it has an empty path segment ('//')" };
    if (segment === "..") return { ok: false, reason: "it has a '..' segment, which could leave the target folder" };
    if (segment === ".") return { ok: false, reason: "it has a '.' segment" };
  }
  if (isTempName(segments[segments.length - 1]!))
    return { ok: false, reason: "its name is reserved for bucketsync's temporary files" };
  return { ok: true, segments, marker };
}

/** Error `code`s of keys a local folder refuses or cannot hold. */
export const UNSAFE_KEY = "UnsafeKey";
export const PATH_CONFLICT = "PathConflict";

/** An error for one key, classified by the executor as a per-object failure (never retried, never fatal). */
export function keyError(code: string, message: string): Error & { code: string } {
  return new StoreError(code, message);
}

/** Throws UnsafeKey unless the key can be a file or directory here. */
export function requireKeyPath(key: string): { segments: string[]; marker: boolean } {
  const path = keyPath(key);
  if (!path.ok)
    throw keyError(UNSAFE_KEY, `unsafe key refused: ${JSON.stringify(key)}: ${path.reason}; nothing written`);
  return path;
}

// Temporary files are written beside their final name and renamed into place, so an
// interrupted download never leaves a partial file under the real name. The 12 hex digits are
// the writer's pid (8) and a number it counts up (4): a run that writes into a folder can then
// tell a leftover of a process that is gone from a file a live run is still writing (see
// LocalStore). Older versions wrote 12 random digits; those have the same shape.
const TEMP = /^\.bucketsync-[0-9a-f]{12}\.tmp$/;

export function isTempName(name: string): boolean {
  return TEMP.test(name);
}

/** The temporary name for writer `pid`'s write number `seq` (both kept to their digits). */
export function tempName(pid: number, seq: number): string {
  const hex = (n: number, digits: number) => (n % 16 ** digits).toString(16).padStart(digits, "0");
  return `.bucketsync-${hex(pid, 8)}${hex(seq, 4)}.tmp`;
}

/** The pid a temporary name says wrote it (a name from an older version says a random one). */
export function tempWriter(name: string): number {
  return parseInt(name.slice(".bucketsync-".length, ".bucketsync-".length + 8), 16);
}
