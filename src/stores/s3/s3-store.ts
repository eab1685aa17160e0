import { Readable } from "node:stream";
import { createHash } from "node:crypto";
import mime from "mime";
import type { CompletedPart, PutObjectCommandInput } from "@aws-sdk/client-s3";
import { compareKeys, evenly } from "../../core/keys.js";
import {
  EncryptionNotAppliedError,
  StoreError,
  classifyError,
  emptyReportedFolder,
  invalidListing,
} from "../../core/errors.js";
import type {
  ObjectVersion,
  WriteResult,
  AclGrant,
  AclPolicy,
  CannedAcl,
  DeleteFailure,
  KeyRange,
  ObjectDetails,
  ObjectInfo,
  ObjectProperties,
  ObjectStore,
  PlannedOperation,
  WriteOptions,
} from "../../core/types.js";
import type { KeySpaceListing, MultipartUploads, VersionListing } from "../../core/capabilities.js";
import { uploadRecord } from "./upload-record.js";
import type { RequestCounts } from "../../core/meter.js";
import { sdkModule, type S3Connection } from "./client.js";
import type { ListPage } from "./lean-client.js";
import { candidatePartSizes, multipartParts, unquoteEtag } from "../../integrity/etag.js";
import { DEFAULT_RETRY, withRetry } from "../../core/retry.js";
import { forEachLimit, runPool } from "../../core/async.js";

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;
/** CopyObject's and PutObject's size limit. */
export const MAX_SINGLE_COPY = 5 * GiB;
export const MIN_PART_SIZE = 5 * MiB;
export const MAX_PART_SIZE = 5 * GiB;
export const MAX_PARTS = 10_000;

export interface S3StoreOptions {
  /** Objects larger than this are copied and uploaded in parts. */
  multipartThreshold: number;
  partSize: number;
  /** Parts in flight for one object. */
  partConcurrency: number;
}

export const DEFAULT_S3_STORE_OPTIONS: S3StoreOptions = {
  multipartThreshold: MAX_SINGLE_COPY,
  partSize: 64 * MiB,
  partConcurrency: 4,
};

/** An S3 bucket prefix as an ObjectStore. Keys it lists and takes are relative to the prefix. */
export class S3Store implements ObjectStore, KeySpaceListing, VersionListing, MultipartUploads {
  readonly description: string;
  readonly features = ["key-space", "versions", "object-lock", "multipart-uploads"] as const;

  /** AWS S3 honours If-Match on writes; an S3-compatible endpoint is not assumed to (see ObjectStore.ifMatchWrites). */
  get ifMatchWrites(): boolean {
    return this.connection.endpointUrl === undefined;
  }

  constructor(
    readonly connection: S3Connection,
    readonly bucket: string,
    /** Empty, or ending with `/`. */
    readonly prefix: string,
    readonly options: S3StoreOptions = DEFAULT_S3_STORE_OPTIONS,
  ) {
    this.description = `s3://${bucket}/${prefix}`;
  }

  /** Streams the listing page by page, fetching the next page while the caller works on this one. */
  async *list(range: KeyRange = {}): AsyncGenerator<ObjectInfo> {
    const prefix = this.prefix + (range.prefix ?? "");
    const startAfter = range.startAfter !== undefined ? this.prefix + range.startAfter : undefined;
    // Each page is retried on its own: one 503 must not end a listing of millions of keys.
    const fetchPage = (continuationToken?: string) =>
      withRetry(() =>
        this.connection.lean.listPage(this.bucket, { prefix: prefix || undefined, startAfter, continuationToken }),
      );
    let pending: Promise<ListPage> | undefined = fetchPage();
    let any = false;
    while (pending) {
      const page: ListPage = await pending;
      pending = page.nextToken ? fetchPage(page.nextToken) : undefined;
      // Keep a prefetch the caller never awaits (it stopped early) from becoming an unhandled rejection.
      pending?.catch(() => undefined);
      any ||= page.objects.length > 0;
      for (const entry of page.objects) {
        const info = this.infoOf(entry);
        if (range.endAt !== undefined && compareKeys(info.key, range.endAt) > 0) return;
        // The part a key is planned in depends on the server honouring Prefix: check it.
        if (range.prefix !== undefined && !info.key.startsWith(range.prefix))
          throw invalidListing(
            `key ${JSON.stringify(info.key)} is outside the requested prefix ${JSON.stringify(range.prefix)}`,
          );
        yield info;
      }
    }
    if (range.expectKeys && !any) throw emptyReportedFolder(range.prefix ?? "");
  }

  /**
   * One level of the key space from delimiter listings: the folders directly under `folder`
   * (relative, each ending in `/`) and the objects beside them. Undefined when it takes more than
   * `maxPages` pages, so what is held in memory stays bounded.
   */
  async listLevel(folder = "", maxPages = 5): Promise<{ folders: string[]; objects: ObjectInfo[] } | undefined> {
    const folders: string[] = [];
    const objects: ObjectInfo[] = [];
    const prefix = this.prefix + folder;
    let continuationToken: string | undefined;
    for (let pages = 0; pages < maxPages; pages++) {
      const page = await withRetry(() =>
        this.connection.lean.listPage(this.bucket, { prefix: prefix || undefined, delimiter: "/", continuationToken }),
      );
      for (const p of page.prefixes) {
        // Folder names decide which keys each side lists, so a wrongly encoded one (some servers
        // return them raw under encoding-type=url) must stop the listing, not mislead it.
        const full = decodeListedKey(p);
        if (!full.startsWith(prefix) || full.length <= prefix.length || !full.endsWith("/")) {
          throw invalidListing(`folder ${JSON.stringify(p)} is not a folder of ${JSON.stringify(prefix)}`);
        }
        folders.push(full.slice(this.prefix.length));
      }
      for (const entry of page.objects) objects.push(this.infoOf(entry));
      if (!page.nextToken) return { folders, objects };
      continuationToken = page.nextToken;
    }
    return undefined;
  }

  /**
   * At most `maxPoints` keys inside `folder` to split its listing at, from the first key after
   * each of a set of probe characters (cheap one-key listings, in parallel); relative and sorted.
   */
  async probeSplitPoints(folder: string, maxPoints: number): Promise<string[]> {
    const prefix = this.prefix + folder;
    const probes = await Promise.all(
      PROBE_CHARS.map((c) =>
        withRetry(() =>
          this.connection.lean.listPage(this.bucket, {
            prefix: prefix || undefined,
            startAfter: prefix + c,
            maxKeys: 1,
          }),
        ),
      ),
    );
    const points = probes.flatMap((p) => p.objects.map((o) => this.infoOf(o).key));
    return evenly([...new Set(points)].sort(compareKeys), maxPoints);
  }

  private infoOf(entry: ListPage["objects"][number]): ObjectInfo {
    return {
      key: decodeListedKey(entry.key).slice(this.prefix.length),
      size: entry.size,
      lastModified: entry.lastModified,
      etag: entry.etag,
      storageClass: entry.storageClass,
    };
  }

  /**
   * Split points for listing this prefix in parallel ranges, from a sample of the key
   * distribution: the top-level "folders" (one delimiter listing) when there are several, else the
   * first key after each of a set of probe characters (cheap one-key listings). Empty when the
   * prefix fits in one page anyway.
   */
  async splitPoints(maxPoints: number): Promise<string[]> {
    const client = this.connection.lean;
    // A prefix that fits in one page is listed faster in one request than split.
    const first = await withRetry(() =>
      client.listPage(this.bucket, { prefix: this.prefix || undefined, maxKeys: 1000 }),
    );
    if (!first.nextToken) return [];
    const top = await withRetry(() =>
      client.listPage(this.bucket, { prefix: this.prefix || undefined, delimiter: "/", maxKeys: 1000 }),
    );
    const folders = top.prefixes.map((p) => decodeListedKey(p).slice(this.prefix.length));
    if (folders.length >= 2) return evenly(folders, maxPoints);
    return this.probeSplitPoints(folders[0] ?? "", maxPoints);
  }

  /**
   * Every version of every key (delete markers included), grouped by key in key order, each
   * group oldest first. Streams page by page; a key whose versions span pages is held until
   * its group is complete.
   */
  async *listVersions(range: KeyRange = {}): AsyncGenerator<{ key: string; versions: ObjectVersion[] }> {
    let keyMarker: string | undefined = range.startAfter !== undefined ? this.prefix + range.startAfter : undefined;
    let versionMarker: string | undefined;
    let pending: { key: string; versions: ObjectVersion[] } | undefined;
    for (;;) {
      const page = await withRetry(async () =>
        (await this.connection.sdkClient()).send(
          new (await sdkModule()).ListObjectVersionsCommand({
            Bucket: this.bucket,
            Prefix: this.prefix || undefined,
            EncodingType: "url",
            KeyMarker: keyMarker,
            VersionIdMarker: versionMarker,
          }),
        ),
      );
      const entries = [
        ...(page.Versions ?? []).map((v) => ({
          key: v.Key!,
          version: {
            versionId: v.VersionId ?? "null",
            size: v.Size ?? 0,
            lastModified: v.LastModified?.getTime() ?? 0,
            etag: unquoteEtag(v.ETag),
            deleteMarker: false,
          },
        })),
        ...(page.DeleteMarkers ?? []).map((d) => ({
          key: d.Key!,
          version: {
            versionId: d.VersionId ?? "null",
            size: 0,
            lastModified: d.LastModified?.getTime() ?? 0,
            deleteMarker: true,
          },
        })),
      ].map((e) => ({ ...e, key: decodeListedKey(e.key).slice(this.prefix.length) }));
      entries.sort((a, b) => compareKeys(a.key, b.key) || a.version.lastModified - b.version.lastModified);
      for (const { key, version } of entries) {
        if (range.endAt !== undefined && compareKeys(key, range.endAt) > 0) {
          if (pending) yield pending;
          return;
        }
        if (pending && pending.key !== key) {
          yield pending;
          pending = undefined;
        }
        (pending ??= { key, versions: [] }).versions.push(version);
      }
      if (!page.IsTruncated) break;
      keyMarker = page.NextKeyMarker !== undefined ? decodeListedKey(page.NextKeyMarker) : undefined;
      versionMarker = page.NextVersionIdMarker;
    }
    if (pending) yield pending;
  }

  /** Writes a delete marker (a plain DELETE in a versioned bucket), for copying version histories. */
  async deleteCurrent(key: string): Promise<void> {
    await (
      await this.connection.sdkClient()
    ).send(new (await sdkModule()).DeleteObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }));
  }

  /** Whether the bucket has Object Lock enabled (objects can be written with retention). */
  async objectLockEnabled(): Promise<boolean> {
    try {
      const out = await (
        await this.connection.sdkClient()
      ).send(new (await sdkModule()).GetObjectLockConfigurationCommand({ Bucket: this.bucket }));
      return out.ObjectLockConfiguration?.ObjectLockEnabled === "Enabled";
    } catch (err) {
      const code = classifyError(err).code;
      if (code === "ObjectLockConfigurationNotFoundError" || code === "ObjectLockConfigurationNotFound") return false;
      throw err;
    }
  }

  async head(key: string): Promise<ObjectDetails | undefined> {
    try {
      // On the lean client: comparisons and downloads HEAD many small objects.
      const headers = await this.connection.lean.headObject(this.bucket, this.prefix + key);
      return detailsOfHeaders(key, headers, Number(headers["content-length"] ?? 0));
    } catch (err) {
      if ((err as { name?: string }).name === "NotFound" || (err as { name?: string }).name === "NoSuchKey")
        return undefined;
      throw err;
    }
  }

  async getAcl(key: string): Promise<AclPolicy> {
    const out = await (
      await this.connection.sdkClient()
    ).send(new (await sdkModule()).GetObjectAclCommand({ Bucket: this.bucket, Key: this.prefix + key }));
    const grants: AclGrant[] = [];
    for (const g of out.Grants ?? []) {
      const who = g.Grantee;
      const permission = g.Permission as AclGrant["permission"];
      if (!who || !permission) continue;
      if (who.Type === "CanonicalUser" && who.ID)
        grants.push({ grantee: { type: "CanonicalUser", id: who.ID }, permission });
      else if (who.Type === "Group" && who.URI) grants.push({ grantee: { type: "Group", uri: who.URI }, permission });
      else if (who.Type === "AmazonCustomerByEmail" && who.EmailAddress)
        grants.push({ grantee: { type: "AmazonCustomerByEmail", email: who.EmailAddress }, permission });
    }
    return { ownerId: out.Owner?.ID, grants };
  }

  async putAcl(key: string, acl: CannedAcl | AclPolicy): Promise<void> {
    if (typeof acl === "string") {
      await (
        await this.connection.sdkClient()
      ).send(new (await sdkModule()).PutObjectAclCommand({ Bucket: this.bucket, Key: this.prefix + key, ACL: acl }));
      return;
    }
    await (
      await this.connection.sdkClient()
    ).send(
      new (await sdkModule()).PutObjectAclCommand({
        Bucket: this.bucket,
        Key: this.prefix + key,
        AccessControlPolicy: {
          Owner: acl.ownerId ? { ID: acl.ownerId } : undefined,
          Grants: acl.grants.map((g) => ({
            Permission: g.permission,
            Grantee:
              g.grantee.type === "CanonicalUser"
                ? { Type: "CanonicalUser", ID: g.grantee.id }
                : g.grantee.type === "Group"
                  ? { Type: "Group", URI: g.grantee.uri }
                  : { Type: "AmazonCustomerByEmail", EmailAddress: g.grantee.email },
          })),
        },
      }),
    );
  }

  /**
   * The part size of a multipart object: from a HEAD of its first part where the server supports
   * that (AWS), else the most likely size for its part count. `exact` says which.
   */
  async partLayout(key: string, details: ObjectDetails): Promise<{ partSize: number; exact: boolean } | undefined> {
    const parts = multipartParts(details.etag);
    if (parts === undefined || parts < 2) return undefined;
    try {
      const first = await (
        await this.connection.sdkClient()
      ).send(new (await sdkModule()).HeadObjectCommand({ Bucket: this.bucket, Key: this.prefix + key, PartNumber: 1 }));
      const partSize = first.ContentLength;
      // radosgw 16 ignores partNumber and answers with the whole object: then the sizes do not fit.
      if (partSize && partSize >= MIN_PART_SIZE && Math.ceil(details.size / partSize) === parts)
        return { partSize, exact: true };
    } catch {
      // fall through to the guess
    }
    const guess = candidatePartSizes(details.size, parts).find((p) => p >= MIN_PART_SIZE && p <= MAX_PART_SIZE);
    return guess ? { partSize: guess, exact: false } : undefined;
  }

  /** Sets tags on a full key (no-op for none). */
  private async putTags(fullKey: string, tags: Record<string, string>): Promise<void> {
    if (Object.keys(tags).length === 0) return;
    await (
      await this.connection.sdkClient()
    ).send(
      new (await sdkModule()).PutObjectTaggingCommand({
        Bucket: this.bucket,
        Key: fullKey,
        Tagging: { TagSet: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) },
      }),
    );
  }

  async tags(key: string): Promise<Record<string, string>> {
    const out = await (
      await this.connection.sdkClient()
    ).send(new (await sdkModule()).GetObjectTaggingCommand({ Bucket: this.bucket, Key: this.prefix + key }));
    return Object.fromEntries((out.TagSet ?? []).map((t) => [t.Key!, t.Value ?? ""]));
  }

  async get(
    key: string,
    versionId?: string,
    ifMatch?: string,
    expectedSize?: number,
  ): Promise<{ body: Readable | Buffer; details: ObjectDetails }> {
    if (expectedSize !== undefined && expectedSize <= SMALL_OBJECT) {
      // Small objects on the lean path: one signed request, the bytes read whole.
      const out = await this.connection.lean.getObject(
        this.bucket,
        this.prefix + key,
        ifMatch !== undefined && versionId === undefined ? { "if-match": `"${ifMatch}"` } : {},
        versionId,
      );
      const details = detailsOfHeaders(key, out.headers, out.body.length);
      if (Number(out.headers["x-amz-tagging-count"] ?? 0) > 0) details.tags = await this.tags(key);
      return { body: out.body, details };
    }
    const out = await (
      await this.connection.sdkClient()
    ).send(
      new (await sdkModule()).GetObjectCommand({
        Bucket: this.bucket,
        Key: this.prefix + key,
        VersionId: versionId,
        IfMatch: ifMatch !== undefined && versionId === undefined ? `"${ifMatch}"` : undefined,
      }),
    );
    const details = detailsOf(key, out);
    if ((out.TagCount ?? 0) > 0) details.tags = await this.tags(key);
    return { body: out.Body as Readable, details };
  }

  uploadPartSize(size: number): number | undefined {
    return size > this.options.multipartThreshold ? partSizeFor(size, this.options.partSize) : undefined;
  }

  async put(
    key: string,
    body: Readable | Buffer,
    size: number,
    props: ObjectProperties,
    opts: WriteOptions,
  ): Promise<WriteResult> {
    const params = {
      Bucket: this.bucket,
      Key: this.prefix + key,
      ACL: opts.acl,
      ...writeParams(propertiesToWrite(props, opts, key)),
      ...encryptionParams(opts),
      ...lockParams(opts),
    };
    if (size <= Math.min(SMALL_OBJECT, this.options.multipartThreshold)) {
      // Small bodies on the lean path: read whole, one signed request with Content-MD5 (the
      // server checks the bytes), no SDK middleware. Left to finish on interrupt, like any single request.
      const data = Buffer.isBuffer(body) ? body : await readWhole(body);
      const md5 = opts.contentMd5 ?? createHash("md5").update(data).digest("base64");
      return this.connection.lean.putObject(this.bucket, this.prefix + key, data, {
        ...putHeaders(params),
        ...conditionHeaders(opts),
        "content-md5": md5,
      });
    }
    if (Buffer.isBuffer(body) || size <= this.options.multipartThreshold) {
      // One request: left to finish on interrupt (the executor gives it no signal then); a hard
      // cut-off's signal aborts it.
      const out = await (
        await this.connection.sdkClient()
      ).send(
        new (await sdkModule()).PutObjectCommand({
          ...params,
          Body: body,
          ContentLength: size,
          ContentMD5: opts.contentMd5,
          ...conditionParams(opts),
        }),
        { abortSignal: opts.signal },
      );
      return { etag: unquoteEtag(out.ETag) };
    }
    return this.multipartUpload(key, params, body, size, props.tags ?? {}, opts);
  }

  /**
   * Uploads a stream in parts of partSizeFor(size) (always in parts above the threshold, so the
   * ETag is the multipart one uploadPartSize promised), at most partConcurrency parts in flight:
   * memory stays about partSize x (partConcurrency + 1). Each part is retried on its own.
   *
   * Any failure, or an interrupt, aborts the upload, and this returns only after every part
   * request has settled and AbortMultipartUpload has been answered: no parts are left behind,
   * even when the process exits right after. (lib-storage's Upload, used before, rejects done()
   * as soon as it is aborted and sends the abort later, if ever: its part reader kept waiting on
   * a body that no longer flowed, and the CLI exited first.)
   */
  private async multipartUpload(
    key: string,
    params: Omit<PutObjectCommandInput, "Body"> & { Bucket: string; Key: string },
    body: Readable,
    size: number,
    tags: Record<string, string>,
    opts: WriteOptions,
  ): Promise<WriteResult> {
    const sdk = await sdkModule();
    const client = await this.connection.sdkClient();
    const partSize = partSizeFor(size, this.options.partSize);
    const partCount = Math.ceil(size / partSize);
    const interrupted = () =>
      new StoreError(
        "AbortError",
        `interrupted; the multipart upload of ${JSON.stringify(key)} was aborted, nothing written`,
      );
    if (opts.signal?.aborted) throw interrupted();
    // Stops all work in flight: the interrupt, or the first part that failed for good (its error is the reason).
    const stop = new AbortController();
    const onInterrupt = () => stop.abort(interrupted());
    opts.signal?.addEventListener("abort", onInterrupt, { once: true });
    // Reading stops too: a source stalled mid-part must not hold up the abort. (Destroyed without
    // an error, so nobody has to listen for one; the part reader sees a premature close.)
    const stopReading = () => body.destroy();
    stop.signal.addEventListener("abort", stopReading, { once: true });
    let uploadId: string | undefined;
    try {
      // Tags are set after completion: some servers (radosgw 16) ignore x-amz-tagging here. Not
      // abortable: its answer is the id an abort needs.
      const created = await client.send(new sdk.CreateMultipartUploadCommand({ ...params, Tagging: undefined }));
      uploadId = created.UploadId!;
      this.recordStarted(params.Key, uploadId);
      const parts: CompletedPart[] = new Array(partCount);
      const uploadPart = async ({ index, data }: { index: number; data: Buffer }) => {
        stop.signal.throwIfAborted();
        const out = await withRetry(
          () =>
            client.send(
              new sdk.UploadPartCommand({
                Bucket: params.Bucket,
                Key: params.Key,
                UploadId: uploadId,
                PartNumber: index + 1,
                Body: data,
                ContentLength: data.length,
              }),
              { abortSignal: stop.signal },
            ),
          DEFAULT_RETRY,
          stop.signal,
        );
        parts[index] = { PartNumber: index + 1, ETag: out.ETag };
      };
      // The one pool, reading parts only as workers free up: every part request settles before
      // anything is decided (an abort while a part is still being sent could let it land after).
      await runPool(readParts(body, partSize, size), this.options.partConcurrency, (part) =>
        uploadPart(part).catch((err) => {
          stop.abort(err);
          throw err;
        }),
      );
      // An interrupt after the last part still aborts: an interrupted run starts no new work.
      if (stop.signal.aborted) throw stop.signal.reason;
      const done = await client.send(
        new sdk.CompleteMultipartUploadCommand({
          Bucket: params.Bucket,
          Key: params.Key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts },
          ...conditionParams(opts),
        }),
      );
      uploadRecord().ended(uploadId);
      uploadId = undefined;
      await this.putTags(params.Key, tags);
      // radosgw answers CompleteMultipartUpload with an empty ETag; HEAD has the right one.
      const etag = unquoteEtag(done.ETag) || (await this.head(key))?.etag;
      return { etag, parts: partCount };
    } catch (err) {
      if (uploadId !== undefined) {
        const id = uploadId;
        // Retried on its own (the run's signal is aborted by now), and awaited.
        await withRetry(() =>
          client.send(new sdk.AbortMultipartUploadCommand({ Bucket: params.Bucket, Key: params.Key, UploadId: id })),
        ).then(
          () => uploadRecord().ended(id),
          () => undefined,
        );
      }
      throw err;
    } finally {
      opts.signal?.removeEventListener("abort", onInterrupt);
      stop.signal.removeEventListener("abort", stopReading);
    }
  }

  async deleteMany(keys: string[]): Promise<DeleteFailure[]> {
    if (keys.length === 0) return [];
    if (await this.notified()) {
      const failures: DeleteFailure[] = [];
      await forEachLimit(keys, SINGLE_DELETE_CONCURRENCY, async (key) => {
        try {
          await this.connection.lean.deleteObject(this.bucket, this.prefix + key);
        } catch (err) {
          const info = classifyError(err);
          // Retried as the batch's one attempt would be: a connection or server error fails the call.
          if (info.class === "retry" || info.class === "fatal") throw err;
          failures.push({ key, code: info.code, message: info.message });
        }
      });
      return failures;
    }
    const failures = await this.connection.lean.deleteObjects(
      this.bucket,
      keys.map((key) => this.prefix + key),
    );
    return failures.map((f) => ({ ...f, key: f.key.slice(this.prefix.length) }));
  }

  private notifiedCheck?: Promise<boolean>;

  /**
   * Whether deletes here go one key at a time: on an S3-compatible server (not AWS), when the
   * bucket has bucket notifications. radosgw 16 aborts on a multi-object delete (DeleteObjects)
   * in such a bucket (RGWDeleteMultiObj -> rgw::notify), and a bucket that `watch` follows has
   * one. Asked once per store; a server that cannot say is taken as having none.
   */
  private notified(): Promise<boolean> {
    if (this.connection.endpointUrl === undefined) return Promise.resolve(false);
    this.notifiedCheck ??= (async () => {
      try {
        const out = await (
          await this.connection.sdkClient()
        ).send(new (await sdkModule()).GetBucketNotificationConfigurationCommand({ Bucket: this.bucket }));
        return (
          (out.TopicConfigurations?.length ?? 0) +
            (out.QueueConfigurations?.length ?? 0) +
            (out.LambdaFunctionConfigurations?.length ?? 0) >
            0 || out.EventBridgeConfiguration !== undefined
        );
      } catch {
        return false;
      }
    })();
    return this.notifiedCheck;
  }

  /** Where this store's uploads are recorded: the endpoint as the connection names it ("aws" for AWS). */
  private recordStarted(fullKey: string, uploadId: string): void {
    uploadRecord().started({
      endpoint: this.connection.endpointUrl ?? "aws",
      bucket: this.bucket,
      key: fullKey,
      uploadId,
    });
  }

  async *listUploads(): AsyncGenerator<{ key: string; uploadId: string; initiated: number }> {
    const sdk = await sdkModule();
    const client = await this.connection.sdkClient();
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      const page = await withRetry(() =>
        client.send(
          new sdk.ListMultipartUploadsCommand({
            Bucket: this.bucket,
            Prefix: this.prefix || undefined,
            KeyMarker: keyMarker,
            UploadIdMarker: uploadIdMarker,
            EncodingType: "url",
          }),
        ),
      );
      for (const u of page.Uploads ?? []) {
        const key = decodeListedKey(u.Key ?? "");
        if (!key.startsWith(this.prefix) || !u.UploadId) continue;
        yield { key: key.slice(this.prefix.length), uploadId: u.UploadId, initiated: u.Initiated?.getTime() ?? 0 };
      }
      if (!page.IsTruncated) return;
      keyMarker = page.NextKeyMarker && decodeListedKey(page.NextKeyMarker);
      uploadIdMarker = page.NextUploadIdMarker;
      if (!keyMarker && !uploadIdMarker)
        throw invalidListing("ListMultipartUploads was truncated without a marker to go on from");
    }
  }

  async abortUpload(key: string, uploadId: string): Promise<void> {
    await this.abortFullKey(this.prefix + key, uploadId);
  }

  private async abortFullKey(fullKey: string, uploadId: string): Promise<void> {
    const sdk = await sdkModule();
    const client = await this.connection.sdkClient();
    try {
      await withRetry(() =>
        client.send(new sdk.AbortMultipartUploadCommand({ Bucket: this.bucket, Key: fullKey, UploadId: uploadId })),
      );
    } catch (err) {
      if ((err as { name?: string }).name !== "NoSuchUpload") throw err;
    }
  }

  abortOrphanedUploads(): Promise<number> {
    return uploadRecord().abortOrphans(this.connection.endpointUrl ?? "aws", this.bucket, (u) =>
      this.abortFullKey(u.key, u.uploadId),
    );
  }

  /**
   * The requests copyFrom, get, put and deleteMany send (see their code): what a dry run's cost
   * estimate adds up. Tags are unknown before a GET, so tag requests that depend on them are not
   * foreseen (a streamed object with tags costs one more GET).
   */
  plannedRequests(op: PlannedOperation): Partial<RequestCounts> {
    switch (op.op) {
      case "deleteMany":
        return { DELETE: Math.ceil(op.keys / 1000) };
      case "get":
        return { GET: 1 };
      case "put": {
        const partSize = this.uploadPartSize(op.size);
        if (partSize === undefined) return { PUT: 1 };
        // Create, the parts, Complete; radosgw's empty Complete ETag costs a HEAD (AWS answers with one).
        return { PUT: 2 + Math.ceil(op.size / partSize), HEAD: 1 };
      }
      case "copyFrom": {
        const { object, write } = op;
        // REPLACE on a single copy re-reads the source's tags (GET) to set them again.
        if (object.size <= this.options.multipartThreshold)
          return write.metadataDirective === "REPLACE" ? { COPY: 1, GET: 1 } : { COPY: 1 };
        // HEAD + tags of the source, Create, (HEAD of part 1 for a multipart source), the parts,
        // Complete, and the HEAD that reads the new ETag.
        const sourceParts = multipartParts(object.etag);
        const guess =
          sourceParts && sourceParts >= 2
            ? candidatePartSizes(object.size, sourceParts).find((p) => p >= MIN_PART_SIZE && p <= MAX_PART_SIZE)
            : undefined;
        const partSize = guess ?? partSizeFor(object.size, this.options.partSize);
        return {
          HEAD: sourceParts && sourceParts >= 2 ? 3 : 2,
          GET: 1,
          PUT: 2,
          UploadPartCopy: Math.max(1, Math.ceil(object.size / partSize)),
        };
      }
    }
  }

  canCopyFrom(source: ObjectStore): boolean | "maybe" {
    if (!(source instanceof S3Store) || source.connection.endpointUrl !== this.connection.endpointUrl) return false;
    return source.connection.identity === this.connection.identity ? true : "maybe";
  }

  async copyFrom(
    source: ObjectStore,
    sourceObject: ObjectInfo,
    opts: WriteOptions,
    targetKey = sourceObject.key,
  ): Promise<WriteResult> {
    const from = source as S3Store;
    const copySource = encodeCopySource(from.bucket, from.prefix + sourceObject.key, sourceObject.versionId);
    const key = this.prefix + targetKey;
    if (sourceObject.size <= this.options.multipartThreshold) {
      // Single requests are left to finish on interrupt; only multipart work is aborted.
      const result = await this.connection.lean.copyObject(this.bucket, key, copySource, {
        ...copyHeaders(opts, targetKey),
        // Pinned to what the listing saw: a source rewritten since then is not copied (412).
        ...(sourceObject.etag !== undefined &&
          sourceObject.versionId === undefined && { "x-amz-copy-source-if-match": `"${sourceObject.etag}"` }),
      });
      // Some servers take the encryption header on a copy and ignore it: never report that as done.
      if (opts.sse && result.sse !== opts.sse)
        throw new EncryptionNotAppliedError(`the server did not apply --sse ${opts.sse} to the copy`);
      // radosgw drops tags on a REPLACE copy whatever the tagging directive: set them again.
      if (opts.metadataDirective === "REPLACE") await this.putTags(key, await from.tags(sourceObject.key));
      await this.applyLock(key, result.versionId, opts);
      return result;
    }
    const result = await this.multipartCopy(from, sourceObject, copySource, key, opts);
    await this.applyLock(key, undefined, opts);
    return result;
  }

  /**
   * Object Lock on a copy: set with its own requests, because a server may take the lock headers
   * on a copy and ignore them (radosgw 16 does, measured); PutObject honours them.
   */
  private async applyLock(fullKey: string, versionId: string | undefined, opts: WriteOptions): Promise<void> {
    const lock = lockParams(opts);
    const client = await this.connection.sdkClient();
    const sdk = await sdkModule();
    if (lock.ObjectLockMode && lock.ObjectLockRetainUntilDate)
      await client.send(
        new sdk.PutObjectRetentionCommand({
          Bucket: this.bucket,
          Key: fullKey,
          VersionId: versionId,
          Retention: { Mode: lock.ObjectLockMode, RetainUntilDate: lock.ObjectLockRetainUntilDate },
        }),
      );
    if (lock.ObjectLockLegalHoldStatus)
      await client.send(
        new sdk.PutObjectLegalHoldCommand({
          Bucket: this.bucket,
          Key: fullKey,
          VersionId: versionId,
          LegalHold: { Status: lock.ObjectLockLegalHoldStatus },
        }),
      );
  }

  /** UploadPartCopy copies no metadata and no tags, so both are read from the source and set explicitly. */
  private async multipartCopy(
    from: S3Store,
    sourceObject: ObjectInfo,
    copySource: string,
    key: string,
    opts: WriteOptions,
  ): Promise<WriteResult> {
    const details = await from.head(sourceObject.key);
    if (!details) throw new StoreError("NoSuchKey", `source object vanished: ${sourceObject.key}`);
    // The parts are copied from the object the listing saw, or not at all.
    if (sourceObject.etag !== undefined && sourceObject.versionId === undefined && details.etag !== sourceObject.etag)
      throw new StoreError("PreconditionFailed", `the source changed since it was listed: ${sourceObject.key}`, {
        status: 412,
      });
    const tags = await from.tags(sourceObject.key);
    const created = await (
      await this.connection.sdkClient()
    ).send(
      new (await sdkModule()).CreateMultipartUploadCommand({
        Bucket: this.bucket,
        Key: key,
        ACL: opts.acl,
        // Tags are set after completion: some servers (radosgw 16) ignore x-amz-tagging here.
        ...writeParams(propertiesToWrite(details, opts, key)),
        ...encryptionParams(opts),
        ...lockParams(opts),
      }),
    );
    const uploadId = created.UploadId!;
    this.recordStarted(key, uploadId);
    const size = details.size;
    // Copying a multipart source with its own part layout keeps its ETag, which proves the copy.
    const sourceLayout = await from.partLayout(sourceObject.key, details);
    const partSize = sourceLayout?.partSize ?? partSizeFor(size, this.options.partSize);
    const partCount = Math.max(1, Math.ceil(size / partSize));
    const parts: CompletedPart[] = new Array(partCount);
    const copyPart = async (index: number) => {
      if (opts.signal?.aborted) throw opts.signal.reason ?? new Error("aborted");
      const start = index * partSize;
      const end = Math.min(size, start + partSize) - 1;
      const out = await withRetry(
        async () =>
          (await this.connection.sdkClient()).send(
            new (await sdkModule()).UploadPartCopyCommand({
              Bucket: this.bucket,
              Key: key,
              UploadId: uploadId,
              PartNumber: index + 1,
              CopySource: copySource,
              CopySourceRange: `bytes=${start}-${end}`,
              CopySourceIfMatch: details.etag ? `"${details.etag}"` : undefined,
            }),
            { abortSignal: opts.signal },
          ),
        DEFAULT_RETRY,
        opts.signal,
      );
      parts[index] = { PartNumber: index + 1, ETag: quote(out.CopyPartResult?.ETag) };
    };
    try {
      // The one pool: every part request settles before anything is decided, then any failure aborts.
      await forEachLimit(
        Array.from({ length: partCount }, (_, i) => i),
        this.options.partConcurrency,
        copyPart,
      );
      await (
        await this.connection.sdkClient()
      ).send(
        new (await sdkModule()).CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts },
          ...conditionParams(opts),
        }),
      );
      uploadRecord().ended(uploadId);
    } catch (err) {
      await (
        await this.connection.sdkClient()
      )
        .send(
          new (await sdkModule()).AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }),
        )
        .then(
          () => uploadRecord().ended(uploadId),
          () => undefined,
        );
      throw err;
    }
    await this.putTags(key, tags);
    return {
      etag: (await this.head(sourceObject.key))?.etag,
      parts: partCount,
      sameParts: sourceLayout?.exact === true,
      guessedParts: sourceLayout !== undefined,
    };
  }
}

// Probe characters for sampling flat key spaces: digits, letters, and a few common separators.
const PROBE_CHARS = [..."-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~"];

/** Parts of at least `preferred` bytes, grown so no object needs more than 10,000 parts. */
export function partSizeFor(size: number, preferred: number): number {
  return Math.max(preferred, MIN_PART_SIZE, Math.ceil(size / MAX_PARTS));
}

/**
 * Cuts a stream into parts of `partSize` bytes (the last one shorter), numbered from 0. Several
 * workers may ask for the next part at once (an async generator queues them); only the part being
 * assembled is held here. The stream must carry exactly `size` bytes.
 */
async function* readParts(
  body: Readable,
  partSize: number,
  size: number,
): AsyncGenerator<{ index: number; data: Buffer }> {
  let held: Buffer[] = [];
  let heldBytes = 0;
  let total = 0;
  let index = 0;
  for await (const chunk of body) {
    let rest: Buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
    total += rest.length;
    if (total > size) throw new Error(`the source sent more than the ${size} bytes it announced; nothing written`);
    while (heldBytes + rest.length >= partSize) {
      const take = partSize - heldBytes;
      held.push(rest.subarray(0, take));
      rest = rest.subarray(take);
      const data = Buffer.concat(held, partSize);
      held = [];
      heldBytes = 0;
      yield { index: index++, data };
    }
    if (rest.length > 0) {
      held.push(rest);
      heldBytes += rest.length;
    }
  }
  if (total < size) {
    // Most likely a connection that closed early: worth another try ($retryable).
    throw new StoreError("IncompleteBody", `short read: got ${total} of ${size} bytes; nothing written`, {
      retryable: true,
    });
  }
  if (heldBytes > 0) yield { index, data: Buffer.concat(held, heldBytes) };
}

/**
 * `x-amz-copy-source` is `bucket/key` with each path segment percent-encoded; encodeURI leaves
 * `+ ? # &` alone and breaks those keys.
 */
export function encodeCopySource(bucket: string, key: string, versionId?: string): string {
  const source = `${bucket}/${key.split("/").map(encodeURIComponent).join("/")}`;
  return versionId ? `${source}?versionId=${encodeURIComponent(versionId)}` : source;
}

/** Keys listed with EncodingType=url: `+` stands for a space, everything else is percent-encoded. */

export function decodeListedKey(key: string): string {
  // Most keys need no decoding at all; the check is cheaper than decodeURIComponent.
  if (key.indexOf("%") < 0 && key.indexOf("+") < 0) return key;
  return decodeURIComponent(key.replace(/\+/g, " "));
}

function quote(etag: string | undefined): string | undefined {
  if (etag === undefined) return undefined;
  return etag.startsWith('"') ? etag : `"${etag}"`;
}

type HeadLike = {
  ContentType?: string;
  CacheControl?: string;
  ContentDisposition?: string;
  ContentEncoding?: string;
  ContentLanguage?: string;
  Expires?: Date;
  ExpiresString?: string;
  Metadata?: Record<string, string>;
  StorageClass?: string;
};

/** An object's details from a HEAD or GET response. */
function detailsOf(
  key: string,
  out: HeadLike & { ContentLength?: number; LastModified?: Date; ETag?: string },
): ObjectDetails {
  return {
    key,
    size: out.ContentLength ?? 0,
    lastModified: out.LastModified?.getTime() ?? 0,
    etag: unquoteEtag(out.ETag),
    ...propertiesOf(out),
  };
}

function propertiesOf(out: HeadLike): ObjectProperties {
  const props: ObjectProperties = {};
  if (out.ContentType) props.contentType = out.ContentType;
  if (out.CacheControl) props.cacheControl = out.CacheControl;
  if (out.ContentDisposition) props.contentDisposition = out.ContentDisposition;
  if (out.ContentEncoding) props.contentEncoding = out.ContentEncoding;
  if (out.ContentLanguage) props.contentLanguage = out.ContentLanguage;
  if (out.Expires && !Number.isNaN(out.Expires.getTime())) props.expires = out.Expires;
  if (out.Metadata && Object.keys(out.Metadata).length > 0) props.metadata = out.Metadata;
  if (out.StorageClass) props.storageClass = out.StorageClass;
  return props;
}

/** The properties a write sets: the source's, or with REPLACE only the given ones; options override the storage class. */
function propertiesToWrite(source: ObjectProperties, opts: WriteOptions, key: string): ObjectProperties {
  const base: ObjectProperties =
    opts.metadataDirective === "REPLACE"
      ? { ...replacedProperties(opts, key), tags: source.tags, expires: undefined }
      : { ...source };
  if (opts.storageClass) base.storageClass = opts.storageClass;
  return base;
}

/**
 * What REPLACE sets: the given properties, with a Content-Type guessed from the key's extension
 * when none is given (as aws-cli does; `--no-guess-mime-type` turns it off), so `--cache-control`
 * alone does not turn every image into binary/octet-stream.
 */
function replacedProperties(opts: WriteOptions, key: string): NonNullable<WriteOptions["replaceProperties"]> {
  const given = opts.replaceProperties ?? {};
  if (given.contentType !== undefined || opts.guessContentType === false) return given;
  const guessed = mime.getType(key.slice(key.lastIndexOf("/") + 1));
  return guessed ? { ...given, contentType: guessed } : given;
}

/** Object Lock settings of a write, as the SDK's parameters. */
function lockParams(opts: WriteOptions) {
  const lock = opts.objectLock;
  return {
    ObjectLockMode: lock?.mode,
    ObjectLockRetainUntilDate: lock?.retainUntil !== undefined ? new Date(lock.retainUntil) : undefined,
    ObjectLockLegalHoldStatus: lock?.legalHold === undefined ? undefined : lock.legalHold ? "ON" : "OFF",
  } as const;
}

/** Single DeleteObjects in flight per batch of a bucket with notifications (see notified()). */
const SINGLE_DELETE_CONCURRENCY = 16;

/** Objects up to this size are read and written in one buffered request on the lean client. */
const SMALL_OBJECT = 1024 * 1024;

async function readWhole(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

/** PutObject's parameters as the request headers the SDK would send. */
function putHeaders(p: {
  ACL?: string;
  ContentType?: string;
  CacheControl?: string;
  ContentDisposition?: string;
  ContentEncoding?: string;
  ContentLanguage?: string;
  Expires?: Date;
  Metadata?: Record<string, string>;
  StorageClass?: string;
  Tagging?: string;
  ServerSideEncryption?: string;
  SSEKMSKeyId?: string;
  ObjectLockMode?: string;
  ObjectLockRetainUntilDate?: Date;
  ObjectLockLegalHoldStatus?: string;
}): Record<string, string> {
  const h: Record<string, string> = {};
  const set = (name: string, value: string | undefined) => {
    if (value !== undefined && value !== "") h[name] = value;
  };
  set("x-amz-acl", p.ACL);
  set("content-type", p.ContentType);
  set("cache-control", p.CacheControl);
  set("content-disposition", p.ContentDisposition);
  set("content-encoding", p.ContentEncoding);
  set("content-language", p.ContentLanguage);
  set("expires", p.Expires?.toUTCString());
  for (const [k, v] of Object.entries(p.Metadata ?? {})) set(`x-amz-meta-${k.toLowerCase()}`, v);
  set("x-amz-storage-class", p.StorageClass);
  set("x-amz-tagging", p.Tagging);
  set("x-amz-server-side-encryption", p.ServerSideEncryption);
  set("x-amz-server-side-encryption-aws-kms-key-id", p.SSEKMSKeyId);
  set("x-amz-object-lock-mode", p.ObjectLockMode);
  set("x-amz-object-lock-retain-until-date", p.ObjectLockRetainUntilDate?.toISOString());
  set("x-amz-object-lock-legal-hold", p.ObjectLockLegalHoldStatus);
  return h;
}

/** An object's details from GetObject's response headers (the lean path). */
function detailsOfHeaders(
  key: string,
  headers: Record<string, string | string[] | undefined>,
  size: number,
): ObjectDetails {
  const one = (name: string) => {
    const v = headers[name];
    return typeof v === "string" && v !== "" ? v : undefined;
  };
  const metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers))
    if (name.startsWith("x-amz-meta-") && typeof value === "string") metadata[name.slice(11)] = value;
  const expires = one("expires");
  const lastModified = one("last-modified");
  return {
    key,
    size,
    lastModified: lastModified ? Date.parse(lastModified) : 0,
    etag: unquoteEtag(one("etag")),
    ...propertiesOf({
      ContentType: one("content-type"),
      CacheControl: one("cache-control"),
      ContentDisposition: one("content-disposition"),
      ContentEncoding: one("content-encoding"),
      ContentLanguage: one("content-language"),
      Expires: expires ? new Date(expires) : undefined,
      Metadata: metadata,
      StorageClass: one("x-amz-storage-class"),
    }),
  };
}

/** A conditional write's headers (WriteOptions.onlyIf), on the lean path. */
function conditionHeaders(opts: WriteOptions): Record<string, string> {
  const c = conditionParams(opts);
  return { ...(c.IfNoneMatch && { "if-none-match": c.IfNoneMatch }), ...(c.IfMatch && { "if-match": c.IfMatch }) };
}

/** A conditional write's headers (WriteOptions.onlyIf). */
function conditionParams(opts: WriteOptions): { IfNoneMatch?: string; IfMatch?: string } {
  if (opts.onlyIf === undefined) return {};
  return opts.onlyIf === "absent" ? { IfNoneMatch: "*" } : { IfMatch: `"${opts.onlyIf.etag}"` };
}

function encryptionParams(opts: WriteOptions) {
  return {
    ServerSideEncryption: opts.sse,
    SSEKMSKeyId: opts.sseKmsKeyId,
  } as { ServerSideEncryption?: "AES256"; SSEKMSKeyId?: string };
}

/** Headers of a server-side CopyObject: directives, ACL, storage class, encryption, replaced properties. */
function copyHeaders(opts: WriteOptions, key: string): Record<string, string> {
  const h: Record<string, string> = {
    "x-amz-tagging-directive": "COPY",
    "x-amz-metadata-directive": opts.metadataDirective ?? "COPY",
  };
  const lock = lockParams(opts);
  if (lock.ObjectLockMode) h["x-amz-object-lock-mode"] = lock.ObjectLockMode;
  if (lock.ObjectLockRetainUntilDate)
    h["x-amz-object-lock-retain-until-date"] = lock.ObjectLockRetainUntilDate.toISOString();
  if (lock.ObjectLockLegalHoldStatus) h["x-amz-object-lock-legal-hold"] = lock.ObjectLockLegalHoldStatus;
  const condition = conditionParams(opts);
  if (condition.IfNoneMatch) h["if-none-match"] = condition.IfNoneMatch;
  if (condition.IfMatch) h["if-match"] = condition.IfMatch;
  if (opts.acl) h["x-amz-acl"] = opts.acl;
  if (opts.storageClass) h["x-amz-storage-class"] = opts.storageClass;
  if (opts.sse) h["x-amz-server-side-encryption"] = opts.sse;
  if (opts.sseKmsKeyId) h["x-amz-server-side-encryption-aws-kms-key-id"] = opts.sseKmsKeyId;
  if (opts.metadataDirective === "REPLACE") {
    const r = replacedProperties(opts, key);
    if (r.contentType) h["content-type"] = r.contentType;
    if (r.cacheControl) h["cache-control"] = r.cacheControl;
    if (r.contentDisposition) h["content-disposition"] = r.contentDisposition;
    if (r.contentEncoding) h["content-encoding"] = r.contentEncoding;
    if (r.contentLanguage) h["content-language"] = r.contentLanguage;
    for (const [k, v] of Object.entries(r.metadata ?? {})) h[`x-amz-meta-${k.toLowerCase()}`] = v;
  }
  return h;
}

function writeParams(props: ObjectProperties) {
  return {
    ContentType: props.contentType,
    CacheControl: props.cacheControl,
    ContentDisposition: props.contentDisposition,
    ContentEncoding: props.contentEncoding,
    ContentLanguage: props.contentLanguage,
    Expires: props.expires,
    Metadata: props.metadata,
    StorageClass: props.storageClass as never,
    Tagging: props.tags && Object.keys(props.tags).length > 0 ? encodeTagging(props.tags) : undefined,
  };
}

/** The x-amz-tagging header: URL query encoding, with %20 (not `+`) for spaces. */
function encodeTagging(tags: Record<string, string>): string {
  return Object.entries(tags)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join("&");
}
