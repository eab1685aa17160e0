import { couldBeSameServer } from "./endpoint.js";
import { UsageError } from "./types.js";

/** Where a sync side lives, parsed from the command line. */
export type Location =
  { kind: "s3"; bucket: string; prefix: string; url: string } | { kind: "local"; path: string; url: string };

/**
 * Why `name` breaks S3's bucket naming rules, or undefined: 3 to 63 characters of lowercase
 * letters, digits, dots and hyphens, starting and ending with a letter or digit, no two dots in
 * a row, not shaped like an IP address. (Legacy uppercase and underscore names are refused too:
 * no current provider creates them, and a typo there would otherwise reach the server.)
 */
export function bucketNameProblem(name: string): string | undefined {
  if (name.length < 3 || name.length > 63) return "bucket names have 3 to 63 characters";
  if (/[A-Z]/.test(name)) return "bucket names use lowercase letters only";
  if (!/^[a-z0-9.-]+$/.test(name)) return "bucket names use only lowercase letters, digits, dots and hyphens";
  if (!/^[a-z0-9].*[a-z0-9]$/.test(name)) return "bucket names start and end with a letter or digit";
  if (name.includes("..")) return "bucket names have no two dots in a row";
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(name)) return "bucket names are not shaped like an IP address";
  return undefined;
}

/**
 * Parses `s3://bucket[/prefix]` or a local path. A prefix is a folder: `s3://b/photos` means the
 * keys under `photos/`, never `photos2/...`, so the prefix always ends with `/` (or is empty).
 */
export function parseLocation(arg: string): Location {
  if (arg === "") throw new UsageError("empty location; expected s3://bucket[/prefix] or a local path");
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(arg);
  if (!scheme) return { kind: "local", path: arg, url: arg };
  if (scheme[1]!.toLowerCase() !== "s3")
    throw new UsageError(`unsupported location '${arg}': expected s3://bucket[/prefix] or a local path`);
  const rest = arg.slice(scheme[0].length);
  const slash = rest.indexOf("/");
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  let prefix = slash < 0 ? "" : rest.slice(slash + 1);
  const problem = bucketNameProblem(bucket);
  if (problem) throw new UsageError(`invalid bucket name '${bucket}' in '${arg}': ${problem}`);
  // S3 keys are not paths: `..` would not go up but become part of every key written (`../x/f`,
  // which no folder can hold), and `//` or `.` name prefixes that hardly ever hold anything.
  const segments = prefix.replace(/\/$/, "").split("/");
  if (prefix !== "") {
    const bad = segments.find((s) => s === "" || s === "." || s === "..");
    if (bad !== undefined) {
      const what = bad === "" ? "an empty segment ('//')" : `a '${bad}' segment`;
      throw new UsageError(
        `invalid location '${arg}': the prefix has ${what}; S3 keys are not paths, so it would be taken literally; write the prefix without it`,
      );
    }
  }
  if (prefix !== "" && !prefix.endsWith("/")) prefix += "/";
  if (Buffer.byteLength(prefix) > 1024)
    throw new UsageError(`prefix in '${arg}' is longer than S3's 1024-byte key limit`);
  return { kind: "s3", bucket, prefix, url: `s3://${bucket}/${prefix}` };
}

/** True when two S3 locations on one server share keys: same bucket and one prefix contains the other. */
export function locationsOverlap(a: Location, b: Location): boolean {
  if (a.kind !== "s3" || b.kind !== "s3" || a.bucket.toLowerCase() !== b.bucket.toLowerCase()) return false;
  return a.prefix.startsWith(b.prefix) || b.prefix.startsWith(a.prefix);
}

/**
 * Refuses a source and target that share keys on what could be the same server: a sync would
 * copy onto itself, and --delete would remove the source's objects. Endpoints are compared by
 * what they name (see couldBeSameServer), never by spelling.
 */
export async function refuseOverlap(
  source: Location,
  target: Location,
  sourceEndpoint: string | undefined,
  targetEndpoint: string | undefined,
): Promise<void> {
  if (source.kind !== "s3" || target.kind !== "s3" || !locationsOverlap(source, target)) return;
  if (!(await couldBeSameServer(sourceEndpoint, targetEndpoint, [source.bucket, target.bucket]))) return;
  throw new UsageError(`source ${source.url} and target ${target.url} overlap; a sync would copy onto itself`);
}

/**
 * `cp` of one object: refuses a copy onto itself (the same key of the same bucket on what could be
 * the same server). Other keys of the same folder are fine: that is a copy under a new name.
 */
export async function refuseSameObject(
  source: Location,
  target: Location,
  object: { sourceKey: string; targetKey: string },
  sourceEndpoint: string | undefined,
  targetEndpoint: string | undefined,
): Promise<void> {
  if (source.kind !== "s3" || target.kind !== "s3" || source.bucket.toLowerCase() !== target.bucket.toLowerCase())
    return;
  if (source.prefix + object.sourceKey !== target.prefix + object.targetKey) return;
  if (!(await couldBeSameServer(sourceEndpoint, targetEndpoint, [source.bucket, target.bucket]))) return;
  throw new UsageError(`source and target are the same object (${source.url}${object.sourceKey}); nothing to copy`);
}
