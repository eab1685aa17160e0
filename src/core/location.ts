import { UsageError } from "./types.js";

/** Where a sync side lives, parsed from the command line. */
export type Location = { kind: "s3"; bucket: string; prefix: string; url: string } | { kind: "local"; path: string; url: string };

// S3's bucket naming rules (3-63 chars; lowercase letters, digits, dots, hyphens); we also accept
// the legacy uppercase/underscore names some S3-compatible servers allow.
const BUCKET = /^[A-Za-z0-9][A-Za-z0-9._-]{1,62}$/;

/**
 * Parses `s3://bucket[/prefix]` or a local path. A prefix is a folder: `s3://b/photos` means the
 * keys under `photos/`, never `photos2/...`, so the prefix always ends with `/` (or is empty).
 */
export function parseLocation(arg: string): Location {
  if (arg === "") throw new UsageError("empty location; expected s3://bucket[/prefix] or a local path");
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(arg);
  if (!scheme) return { kind: "local", path: arg, url: arg };
  if (scheme[1]!.toLowerCase() !== "s3") throw new UsageError(`unsupported location '${arg}': expected s3://bucket[/prefix] or a local path`);
  const rest = arg.slice(scheme[0].length);
  const slash = rest.indexOf("/");
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  let prefix = slash < 0 ? "" : rest.slice(slash + 1);
  if (!BUCKET.test(bucket)) throw new UsageError(`invalid bucket name '${bucket}' in '${arg}'`);
  if (prefix !== "" && !prefix.endsWith("/")) prefix += "/";
  if (Buffer.byteLength(prefix) > 1024) throw new UsageError(`prefix in '${arg}' is longer than S3's 1024-byte key limit`);
  return { kind: "s3", bucket, prefix, url: `s3://${bucket}/${prefix}` };
}

/** True when two S3 locations share keys: same bucket and one prefix contains the other. */
export function locationsOverlap(a: Location, b: Location): boolean {
  if (a.kind !== "s3" || b.kind !== "s3" || a.bucket !== b.bucket) return false;
  return a.prefix.startsWith(b.prefix) || b.prefix.startsWith(a.prefix);
}
