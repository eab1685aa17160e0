import { createHash } from "node:crypto";
import { pipeline } from "node:stream/promises";
import { PassThrough, type Readable } from "node:stream";
import { isLocalFolder } from "../core/capabilities.js";
import { MTIME_METADATA, formatMtime, parseMtime } from "../planner/pairing.js";
import { EncryptionNotAppliedError, StoreError, classifyError } from "../core/errors.js";
import {
  UsageError,
  bodyStream,
  type ObjectInfo,
  type ObjectStore,
  type WriteOptions,
  type WriteResult,
} from "../core/types.js";
import { candidatePartSizes, ContentHasher, isPlainMd5, multipartParts } from "../integrity/etag.js";
import { verifyServerCopy, verifyStreamed, type Verification, type VerifyMode } from "../integrity/verify.js";
import type { RequestMeter } from "../core/meter.js";

/** What every streamed transfer passes through: the run's meter (counts, --bwlimit) and a hard cut-off. */
export interface StreamControls {
  meter?: RequestMeter;
  /** Aborted by a hard cut-off: streams in flight are cut (nothing half-written is kept). */
  cutSignal?: AbortSignal;
}

export interface TransferOptions extends WriteOptions {
  /** off: no checks; on (default): prove what the ETags allow; strict: the same, and unverifiable is an error (decided by the caller). */
  verify?: VerifyMode;
  /** Send Content-MD5 on single-part streamed uploads when the source's ETag is an MD5. */
  sendContentMd5?: boolean;
}

/**
 * Puts source objects at the same keys in the target: server-side when the target can copy from
 * the source, otherwise streamed get -> put without buffering whole objects. Decided once per
 * run; when a server-side copy across accounts is refused (AccessDenied on the copy source), it
 * says so once and streams from then on instead of failing every object. Every transfer returns
 * what it proved about the copy (see integrity/verify.ts).
 */
export class Transferer {
  private serverSide: boolean;
  private readonly mayBeRefused: boolean;

  constructor(
    private readonly source: ObjectStore,
    private readonly target: ObjectStore,
    private readonly onWarning: (message: string) => void = () => undefined,
    private readonly controls: StreamControls = {},
  ) {
    const can = target.copyFrom ? (target.canCopyFrom?.(source) ?? false) : false;
    this.serverSide = can !== false;
    this.mayBeRefused = can === "maybe";
  }

  /** "server-side" or "streaming": how objects travel now. */
  get route(): "server-side" | "streaming" {
    return this.serverSide ? "server-side" : "streaming";
  }

  /**
   * `opts.signal` (the run's interrupt) reaches only multipart writes, which it aborts, leaving no
   * parts behind. Single requests, downloads into a folder included, are left to finish: an
   * interrupt stops taking new work, it does not throw away the work in flight.
   */
  async transfer(object: ObjectInfo, opts: TransferOptions, targetKey = object.key): Promise<Verification | undefined> {
    const verification = await this.move(object, opts, targetKey);
    if (opts.preserveAcl) await copyAclBetween(this.source, this.target, object.key, targetKey);
    return verification;
  }

  /** `targetKey` is the source's key in a sync; `cp` writes one object under another name. */
  private async move(object: ObjectInfo, opts: TransferOptions, targetKey: string): Promise<Verification | undefined> {
    // A key the target can never hold (an unsafe path in a folder) fails before any byte is fetched.
    const refused = this.target.refusal?.({ ...object, key: targetKey });
    if (refused) throw new StoreError(refused.code, refused.message);
    let landed = false;
    if (this.serverSide) {
      try {
        const result =
          (await this.target.copyFrom!(
            this.source,
            object,
            onlyMultipart(this.target, object.size, opts),
            targetKey,
          )) ?? {};
        return opts.verify === "off"
          ? undefined
          : verifyServerCopy(object.etag, result.etag, result.parts, result.sameParts);
      } catch (err) {
        const code = classifyError(err).code;
        const refusedAcrossAccounts = this.mayBeRefused && code === "AccessDenied";
        // Some servers (radosgw 16) accept --sse on CopyObject and ignore it; a streamed put honours it.
        const encryptionIgnored = err instanceof EncryptionNotAppliedError;
        if (!refusedAcrossAccounts && !encryptionIgnored) throw err;
        landed = encryptionIgnored;
        if (this.serverSide) {
          this.serverSide = false;
          this.onWarning(
            refusedAcrossAccounts
              ? `server-side copy from ${this.source.description} to ${this.target.description} was refused (AccessDenied); streaming objects through this machine instead`
              : `the server ignored --sse ${opts.sse} on a server-side copy; streaming objects through this machine instead, so they are written encrypted`,
          );
        }
      }
    }
    // After a copy the server took and ignored --sse on, the key holds this run's own write.
    return streamObject(
      this.source,
      this.target,
      object,
      landed ? { ...opts, onlyIf: undefined } : opts,
      targetKey,
      this.controls,
    );
  }
}

/**
 * get -> put, hashing the bytes on the way so the copy can be proven without reading it back. A
 * small object the source read whole (a Buffer) is hashed and written whole: no stream at all.
 */
async function streamObject(
  source: ObjectStore,
  target: ObjectStore,
  object: ObjectInfo,
  opts: TransferOptions,
  targetKey: string,
  controls: StreamControls,
): Promise<Verification | undefined> {
  // Pinned to what the listing saw (If-Match): a source rewritten since is a 412, then re-planned.
  const { body: got, details } = await source.get(
    object.key,
    object.versionId,
    object.versionId === undefined ? object.etag : undefined,
    object.size,
  );
  const { key: _key, size, lastModified: _lm, etag: _etag, ...props } = details;
  // A folder's Content-Type is a guess from the file name; --no-guess-mime-type leaves it to the server.
  if (opts.guessContentType === false && isLocalFolder(source)) delete props.contentType;
  // File times survive a round trip through a bucket, in rclone's format: an upload keeps the
  // file's mtime in `mtime` metadata, a download restores it from there.
  let lastModified = object.lastModified;
  if (isLocalFolder(source) && !isLocalFolder(target))
    props.metadata = { ...props.metadata, [MTIME_METADATA]: formatMtime(lastModified) };
  if (isLocalFolder(target)) lastModified = parseMtime(props.metadata?.[MTIME_METADATA]) ?? lastModified;
  const sourceEtag = details.etag ?? object.etag;
  const targetPartSize = target.uploadPartSize?.(size);
  const sourceParts = multipartParts(sourceEtag);
  const fromS3 = !isLocalFolder(source);
  // The listing's time is the one comparisons use, so a local target takes it as the file's mtime.
  const writeOptions = (contentMd5: string | undefined): TransferOptions => {
    // The run's interrupt reaches multipart writes only (see onlyMultipart); a hard cut-off stops
    // single writes too (an interrupt leaves them to finish).
    const runSignal = onlyMultipart(target, size, opts).signal;
    const cut = controls.cutSignal;
    // Object.assign, not a spread: in V8 a spread followed by properties its source lacks
    // (contentMd5, accessedAt) takes microseconds per object; assign copies in a fraction of that.
    return Object.assign({}, opts, {
      contentMd5,
      signal: runSignal && cut ? AbortSignal.any([runSignal, cut]) : (runSignal ?? cut),
      // A download marks its file with the object's LastModified (see ObjectInfo.accessedAt).
      accessedAt: isLocalFolder(target) && !isLocalFolder(source) ? object.lastModified : opts.accessedAt,
    });
  };
  // `props` is this call's own copy: the time is set on it (a spread adding it costs more; see writeOptions).
  const toWrite = Object.assign(props, { lastModified });

  if (Buffer.isBuffer(got) && targetPartSize === undefined && sourceParts === undefined) {
    await controls.meter?.pass(got.length, fromS3);
    const md5 = opts.verify === "off" ? undefined : createHash("md5").update(got).digest("hex");
    // The bytes' own MD5 as Content-MD5: the server checks what it received (a store that
    // hashes every small body itself is spared doing it again).
    const contentMd5 = md5 !== undefined ? Buffer.from(md5, "hex").toString("base64") : undefined;
    const result = await target.put(targetKey, got, size, toWrite, writeOptions(contentMd5));
    if (md5 === undefined) return undefined;
    return verifyStreamed({
      sourceEtag,
      size,
      bytes: got.length,
      md5,
      multipart: new Map(),
      targetEtag: result?.etag ?? undefined,
      targetPartSize,
    });
  }

  const raw = bodyStream(got);
  // Counted as bytes through this machine and held to --bwlimit; cut by a hard cut-off.
  const body = controls.meter ? controls.meter.throttle(raw, fromS3, controls.cutSignal) : raw;
  const hasher =
    opts.verify === "off"
      ? undefined
      : new ContentHasher(
          [...(targetPartSize ? [targetPartSize] : []), ...(sourceParts ? candidatePartSizes(size, sourceParts) : [])],
          { size },
        );
  const stream: Readable = hasher ? body.pipe(hasher) : body;
  // A failure of the source stream must reach the writer, and end the hasher too.
  if (hasher) body.once("error", (err) => hasher.destroy(err));
  const contentMd5 =
    opts.sendContentMd5 && targetPartSize === undefined && isPlainMd5(sourceEtag)
      ? Buffer.from(sourceEtag!, "hex").toString("base64")
      : undefined;
  let result: WriteResult | void;
  try {
    // A stream cut by the cut-off fails the write through its signal; its own error event must not go unheard.
    if (body !== raw) stream.on("error", () => undefined);
    result = await target.put(targetKey, stream, size, toWrite, writeOptions(contentMd5));
  } catch (err) {
    // A hash worker (a large object's) is let go with the failed write.
    hasher?.release();
    throw err;
  } finally {
    body.destroy();
    if (body !== raw) raw.destroy();
  }
  if (!hasher) return undefined;
  await drained(hasher);
  const { md5, multipart } = await hasher.result();
  return verifyStreamed({
    sourceEtag,
    size,
    bytes: hasher.bytes,
    md5,
    multipart,
    targetEtag: result?.etag,
    targetPartSize,
  });
}

/** The options for a write of `size` bytes: without the signal unless the target writes it in parts (see Transferer.transfer). */
function onlyMultipart(target: ObjectStore, size: number, opts: TransferOptions): TransferOptions {
  if (opts.signal === undefined || target.uploadPartSize?.(size) !== undefined) return opts;
  // Not `const { signal, ...single } = opts`: in V8 a spread that only replaces a property its
  // source has is a fast clone, while a rest pattern, or a spread followed by properties the source
  // lacks, takes microseconds per file (see writeOptions).
  return { ...opts, signal: undefined };
}

/** Waits until the hasher has seen every byte (the writer may stop reading at exactly `size`). */
async function drained(hasher: ContentHasher): Promise<void> {
  if (hasher.readableEnded || hasher.destroyed) return;
  // Consume anything left (nothing, normally) so 'end' fires.
  await pipeline(hasher, new PassThrough().resume()).catch(() => undefined);
}

/**
 * --preserve-acl: the source's grants on the copy. Grants to the source's owner become grants to
 * the target object's owner (another account owns the copy); group and other-user grants travel
 * as they are, and the target refuses the ones it cannot express.
 */
async function copyAclBetween(source: ObjectStore, target: ObjectStore, key: string, targetKey: string): Promise<void> {
  if (!source.getAcl || !target.getAcl || !target.putAcl) throw new UsageError("--preserve-acl needs S3 on both sides");
  const [from, current] = await Promise.all([source.getAcl(key), target.getAcl(targetKey)]);
  const grants = from.grants.map((g) =>
    g.grantee.type === "CanonicalUser" && g.grantee.id === from.ownerId && current.ownerId
      ? { ...g, grantee: { type: "CanonicalUser" as const, id: current.ownerId } }
      : g,
  );
  await target.putAcl(targetKey, { ownerId: current.ownerId, grants });
}
