import { candidatePartSizes, isPlainMd5, multipartParts } from "./etag.js";

/** What a transfer proved about the copy. */
export type Verification =
  | { status: "verified"; how: string }
  | { status: "unverifiable"; reason: string }
  | { status: "mismatch"; reason: string };

export type { VerifyMode } from "../options/table.js";

/**
 * Verifies a server-side copy from ETags alone. A single-part copy of an MD5-ETag object must keep
 * that ETag; a multipart copy keeps a multipart source's ETag only when the part layout is the
 * same. Anything else cannot be proven without reading the bytes.
 */
export function verifyServerCopy(
  sourceEtag: string | undefined,
  targetEtag: string | undefined,
  targetParts: number | undefined,
  sameParts = false,
): Verification {
  if (!targetEtag) return { status: "unverifiable", reason: "the server returned no ETag for the copy" };
  if (targetParts === undefined) {
    if (!isPlainMd5(sourceEtag))
      return { status: "unverifiable", reason: `source ETag is not an MD5 (${describe(sourceEtag)})` };
    return targetEtag === sourceEtag
      ? { status: "verified", how: "ETag (MD5) equal" }
      : { status: "mismatch", reason: `target ETag ${targetEtag} differs from source MD5 ${sourceEtag}` };
  }
  if (multipartParts(sourceEtag) === targetParts) {
    // Equal multipart ETags mean equal part MD5s; unequal ones prove a difference only when the layout was certain.
    if (targetEtag === sourceEtag) return { status: "verified", how: "multipart ETag equal (same parts)" };
    if (sameParts) return { status: "mismatch", reason: `target ETag ${targetEtag} differs from source ${sourceEtag}` };
    return {
      status: "unverifiable",
      reason: `multipart copy with a guessed part layout; ETags differ (source ${sourceEtag})`,
    };
  }
  return {
    status: "unverifiable",
    reason: `multipart copy in ${targetParts} parts of a source with ${describe(sourceEtag)}`,
  };
}

/**
 * Verifies a streamed copy from the bytes that passed through, which were hashed on the way.
 * Source side: the bytes must match the source's ETag where that is an MD5 (or a multipart ETag
 * whose part size can be found); a source without ETags (a local file) is the bytes read.
 * Target side: the target's ETag must match the bytes sent; a target that reports none (a local
 * file, written from exactly those bytes) needs no further proof.
 */
export function verifyStreamed(args: {
  sourceEtag?: string;
  size: number;
  bytes: number;
  md5: string;
  /** Multipart ETags of the streamed bytes, per part size hashed. */
  multipart: Map<number, string>;
  /** The target's ETag after the write, and the part size it used (undefined: single part). */
  targetEtag?: string;
  targetPartSize?: number;
}): Verification {
  if (args.bytes !== args.size)
    return { status: "mismatch", reason: `read ${args.bytes} bytes, expected ${args.size}` };
  let sourceProof: string | undefined;
  if (args.sourceEtag === undefined) sourceProof = "bytes read from the source";
  else if (isPlainMd5(args.sourceEtag)) {
    if (args.md5 !== args.sourceEtag)
      return { status: "mismatch", reason: `bytes read have MD5 ${args.md5}, source ETag is ${args.sourceEtag}` };
    sourceProof = "source MD5";
  } else if (multipartParts(args.sourceEtag) !== undefined) {
    const match = candidatePartSizes(args.size, multipartParts(args.sourceEtag)!).find(
      (p) => args.multipart.get(p) === args.sourceEtag,
    );
    if (match !== undefined) sourceProof = `source multipart ETag (part size ${match})`;
  }
  let targetProof: string | undefined;
  if (args.targetEtag === undefined) targetProof = "written from the bytes read";
  else {
    const expected = args.targetPartSize === undefined ? args.md5 : args.multipart.get(args.targetPartSize);
    const comparable = isPlainMd5(args.targetEtag) || multipartParts(args.targetEtag) !== undefined;
    if (expected !== undefined && comparable) {
      if (args.targetEtag !== expected)
        return {
          status: "mismatch",
          reason: `target ETag ${args.targetEtag} differs from the bytes sent (${expected})`,
        };
      targetProof = "target ETag";
    }
  }
  if (sourceProof && targetProof) return { status: "verified", how: `${sourceProof} + ${targetProof}` };
  if (!sourceProof)
    return {
      status: "unverifiable",
      reason: `the source's ${describe(args.sourceEtag)} is not a checksum of its bytes`,
    };
  return {
    status: "unverifiable",
    reason: `the target's ${describe(args.targetEtag)} is not a checksum of the bytes sent`,
  };
}

function describe(etag: string | undefined): string {
  if (etag === undefined || etag === "") return "no ETag";
  if (isPlainMd5(etag)) return "MD5 ETag";
  if (multipartParts(etag) !== undefined) return `multipart ETag of ${multipartParts(etag)} parts`;
  return "non-MD5 ETag";
}
