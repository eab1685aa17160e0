import { candidatePartSizes, isPlainMd5, multipartParts } from "./etag.js";

/** What a transfer proved about the copy. */
export type Verification = { status: "verified"; how: string } | { status: "unverifiable"; reason: string } | { status: "mismatch"; reason: string };

export type VerifyMode = "off" | "on" | "strict";

/**
 * Verifies a server-side copy from ETags alone. A single-part copy of an MD5-ETag object must keep
 * that ETag; a multipart copy keeps a multipart source's ETag only when the part layout is the
 * same. Anything else cannot be proven without reading the bytes.
 */
export function verifyServerCopy(sourceEtag: string | undefined, targetEtag: string | undefined, targetParts: number | undefined): Verification {
  if (!targetEtag) return { status: "unverifiable", reason: "the server returned no ETag for the copy" };
  if (targetParts === undefined) {
    if (!isPlainMd5(sourceEtag)) return { status: "unverifiable", reason: `source ETag is not an MD5 (${describe(sourceEtag)})` };
    return targetEtag === sourceEtag ? { status: "verified", how: "ETag (MD5) equal" } : { status: "mismatch", reason: `target ETag ${targetEtag} differs from source MD5 ${sourceEtag}` };
  }
  if (multipartParts(sourceEtag) === targetParts) {
    return targetEtag === sourceEtag ? { status: "verified", how: "multipart ETag equal (same parts)" } : { status: "mismatch", reason: `target ETag ${targetEtag} differs from source ${sourceEtag}` };
  }
  return { status: "unverifiable", reason: `multipart copy in ${targetParts} parts of a source with ${describe(sourceEtag)}` };
}

/**
 * Verifies a streamed copy: the bytes that passed through were hashed. They must match the
 * source's ETag where that is an MD5 (or a multipart ETag whose part size can be found), and the
 * target's ETag where the target reports one.
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
  if (args.bytes !== args.size) return { status: "mismatch", reason: `read ${args.bytes} bytes, expected ${args.size}` };
  const proofs: string[] = [];
  // The bytes against the source.
  if (isPlainMd5(args.sourceEtag)) {
    if (args.md5 !== args.sourceEtag) return { status: "mismatch", reason: `bytes read have MD5 ${args.md5}, source ETag is ${args.sourceEtag}` };
    proofs.push("source MD5");
  } else if (multipartParts(args.sourceEtag) !== undefined) {
    const candidates = candidatePartSizes(args.size, multipartParts(args.sourceEtag)!);
    const match = candidates.find((p) => args.multipart.get(p) === args.sourceEtag);
    if (match !== undefined) proofs.push(`source multipart ETag (part size ${match})`);
  }
  // The target against the bytes.
  if (args.targetEtag) {
    const expected = args.targetPartSize === undefined ? args.md5 : args.multipart.get(args.targetPartSize);
    if (expected !== undefined && isPlainMd5(args.targetEtag.split("-")[0]) && args.targetEtag.includes("-") === (args.targetPartSize !== undefined)) {
      if (args.targetEtag !== expected) return { status: "mismatch", reason: `target ETag ${args.targetEtag} differs from the bytes sent (${expected})` };
      proofs.push("target ETag");
    }
  }
  if (proofs.length === 2 || (proofs.length === 1 && args.targetEtag === undefined && proofs[0] !== "target ETag")) {
    return { status: "verified", how: proofs.join(" + ") };
  }
  if (proofs.length === 1 && proofs[0] === "target ETag") return { status: "unverifiable", reason: `source ETag cannot be checked (${describe(args.sourceEtag)}); the target holds exactly the bytes read` };
  if (proofs.length === 1) return { status: "unverifiable", reason: `the target reports no usable ETag (${describe(args.targetEtag)})` };
  return { status: "unverifiable", reason: `neither source (${describe(args.sourceEtag)}) nor target (${describe(args.targetEtag)}) ETag is a checksum of the bytes` };
}

function describe(etag: string | undefined): string {
  if (etag === undefined || etag === "") return "no ETag";
  if (isPlainMd5(etag)) return "MD5 ETag";
  if (multipartParts(etag) !== undefined) return `multipart ETag of ${multipartParts(etag)} parts`;
  return "non-MD5 ETag";
}
