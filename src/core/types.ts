import { Readable } from "node:stream";
import type { RequestCounts } from "./meter.js";

/** One object as a listing reports it. `key` is relative to the store's root (bucket prefix or folder). */
export interface ObjectInfo {
  key: string;
  size: number;
  /** Milliseconds since the epoch. */
  lastModified: number;
  /** ETag without quotes; absent where the store has none (local files before hashing). */
  etag?: string;
  storageClass?: string;
  /** Set when the entry is a specific version (--at, --all-versions): copies read that version. */
  versionId?: string;
  /**
   * Local files: the access time (ms). A download sets it to the object's LastModified, which
   * marks the file as that download of that object while nothing reads it (see
   * planner/pairing.ts, withOriginalTimes); never trusted beyond that.
   */
  accessedAt?: number;
}

/** One version of a key in a versioned bucket, or a delete marker. */
export interface ObjectVersion {
  versionId: string;
  size: number;
  lastModified: number;
  etag?: string;
  deleteMarker: boolean;
}

/** Everything a copy must carry besides the bytes. */
export interface ObjectProperties {
  contentType?: string;
  cacheControl?: string;
  contentDisposition?: string;
  contentEncoding?: string;
  contentLanguage?: string;
  expires?: Date;
  metadata?: Record<string, string>;
  /** Object tags as key/value pairs. */
  tags?: Record<string, string>;
  storageClass?: string;
  /** The source's modification time (epoch ms): a local folder sets it as the file's mtime; S3 ignores it. */
  lastModified?: number;
}

export interface ObjectDetails extends ObjectInfo, Omit<ObjectProperties, "lastModified"> {}

/** A key range for listing: keys k with startAfter < k <= endAt (either bound optional). */
export interface KeyRange {
  startAfter?: string;
  endAt?: string;
  /**
   * Only keys that start with this: one "folder" of the key space. S3 lists it with `Prefix`, so
   * the listing ends where the folder does instead of reading a page past the range's end.
   */
  prefix?: string;
  /**
   * The store reported `prefix` as a folder, so listing it must find a key. One that finds none
   * throws: a misreported folder name (some servers return them unencoded under
   * encoding-type=url) must not make this side look empty there, or --delete would act on it.
   */
  expectKeys?: boolean;
}

export const CANNED_ACLS = [
  "private",
  "public-read",
  "public-read-write",
  "authenticated-read",
  "bucket-owner-read",
  "bucket-owner-full-control",
] as const;
export type CannedAcl = (typeof CANNED_ACLS)[number];

/** What a write should set on the new object, beyond what the source carries. */
export interface WriteOptions {
  acl?: CannedAcl;
  storageClass?: string;
  /** Server-side encryption of the written object. */
  sse?: "AES256" | "aws:kms";
  sseKmsKeyId?: string;
  /**
   * COPY (default): the source's content headers and user metadata travel with the object.
   * REPLACE: only `replaceProperties` are set (aws-cli's --metadata-directive REPLACE); tags still travel.
   */
  metadataDirective?: "COPY" | "REPLACE";
  /** With REPLACE and no Content-Type given: guess it from the key's extension (default true). */
  guessContentType?: boolean;
  /** Content-MD5 (base64) of the bytes, for the server to check on a single-part upload. */
  contentMd5?: string;
  /** Local targets: the access time to give the file (a download: the object's LastModified). */
  accessedAt?: number;
  /** Copy each source object's grants to its copy (owner grants mapped to the target's owner). */
  preserveAcl?: boolean;
  replaceProperties?: Pick<
    ObjectProperties,
    "contentType" | "cacheControl" | "contentDisposition" | "contentEncoding" | "contentLanguage" | "metadata"
  >;
  /** Abort signal: a write in progress stops and cleans up (multipart uploads are aborted). */
  signal?: AbortSignal;
  /**
   * Conditional write: "absent" writes only if the key does not exist (If-None-Match: *), an ETag
   * only if the target still holds that object (If-Match). A server that honours it answers 412
   * PreconditionFailed instead of overwriting what someone else wrote meanwhile.
   */
  onlyIf?: "absent" | { etag: string };
  /** Object Lock retention and legal hold of the object written (a bucket with Object Lock enabled). */
  objectLock?: ObjectLockSettings;
}

export interface ObjectLockSettings {
  mode?: "GOVERNANCE" | "COMPLIANCE";
  /** Retain until (epoch ms). */
  retainUntil?: number;
  legalHold?: boolean;
}

/** An object's access control list, as S3 expresses it. */
export interface AclPolicy {
  ownerId?: string;
  grants: AclGrant[];
}
export interface AclGrant {
  grantee:
    | { type: "CanonicalUser"; id: string }
    | { type: "Group"; uri: string }
    | { type: "AmazonCustomerByEmail"; email: string };
  permission: "FULL_CONTROL" | "READ" | "WRITE" | "READ_ACP" | "WRITE_ACP";
}

/** What a write reports back: the new object's ETag, and its part count when written in parts. */
export interface WriteResult {
  etag?: string;
  parts?: number;
  /** True when a multipart copy reproduced the source's exact part layout (so its ETag must equal the source's). */
  sameParts?: boolean;
  /** True when the copy used the source's likely part layout (a guess: equal ETags then prove it, unequal ones prove nothing). */
  guessedParts?: boolean;
}

export interface DeleteFailure {
  key: string;
  code: string;
  message: string;
}

/**
 * A place objects live: an S3 bucket prefix, a local folder, or memory.
 * Listings are sorted by `compareKeys` (UTF-8 byte order) and stream; nothing holds a whole listing.
 */
export interface ObjectStore {
  /** Shown to users, e.g. `s3://bucket/prefix/` or `/home/me/backup/`. Never contains credentials. */
  readonly description: string;
  /**
   * Whether a write here may carry If-Match (conditional updates): true where the server is known
   * to honour it. S3-compatible servers are not assumed to (radosgw 16 answers 412 even when it
   * holds); If-None-Match for new keys is sent everywhere.
   */
  readonly ifMatchWrites?: boolean;
  /** The optional capabilities this store implements (see core/capabilities.ts for each one's methods). */
  readonly features?: readonly StoreFeature[];
  list(range?: KeyRange): AsyncIterable<ObjectInfo>;
  head(key: string): Promise<ObjectDetails | undefined>;
  /**
   * Reads an object (a specific version when `versionId` is given and the store keeps versions).
   * `ifMatch`: only if its ETag is still this (S3: If-Match, else 412 PreconditionFailed), so the
   * bytes read are the ones a listing compared. `expectedSize`: the size the listing gave, so a
   * store may read a small object whole in one request; `body` is then a Buffer holding all of it
   * (see `bodyStream()` for a reader that wants a stream either way).
   */
  get(
    key: string,
    versionId?: string,
    ifMatch?: string,
    expectedSize?: number,
  ): Promise<{ body: Readable | Buffer; details: ObjectDetails }>;
  /** Writes an object; returns what the store can say about the result (its ETag) for verification. */
  put(
    key: string,
    body: Readable | Buffer,
    size: number,
    props: ObjectProperties,
    opts: WriteOptions,
  ): Promise<WriteResult | void>;
  /** Optional: the part size a put of `size` bytes will use (undefined: one part), so streamed bytes can be hashed the same way. */
  uploadPartSize?(size: number): number | undefined;
  /** Deletes up to 1000 keys; returns the keys that failed, with the store's reason. */
  deleteMany(keys: string[]): Promise<DeleteFailure[]>;
  /**
   * Optional capability: whether `copyFrom` can copy from `source` server-side. true: same
   * endpoint and credentials. "maybe": same endpoint, other credentials, so it works only if the
   * target's account may read the source (a bucket policy); the executor tries and falls back to
   * streaming on AccessDenied. false: streams get -> put.
   */
  canCopyFrom?(source: ObjectStore): boolean | "maybe";
  /** Optional capability: read an object's ACL (for --preserve-acl). */
  getAcl?(key: string): Promise<AclPolicy>;
  /** Optional capability: set an object's ACL, canned or as grants (acl apply, --preserve-acl). */
  putAcl?(key: string, acl: CannedAcl | AclPolicy): Promise<void>;
  /**
   * Optional capability: copy `sourceObject` from `source` to `targetKey` here (default: the same
   * key; `cp` renames), without moving bytes through this process.
   */
  copyFrom?(
    source: ObjectStore,
    sourceObject: ObjectInfo,
    opts: WriteOptions,
    targetKey?: string,
  ): Promise<WriteResult | void>;
  /**
   * Optional capability: why this store can never hold `object` under its key (a local folder
   * refuses `../x`), so the key can be reported as failed without fetching it, dry runs included.
   */
  refusal?(object: ObjectInfo): { code: string; message: string } | undefined;
  /**
   * Optional: the requests this store sends for one operation, by kind (the cost estimate of a
   * dry run). A store without it (a local folder) sends none.
   */
  plannedRequests?(op: PlannedOperation): Partial<RequestCounts>;
}

/** An operation whose requests a store can foretell (see ObjectStore.plannedRequests). */
export type PlannedOperation =
  | { op: "copyFrom"; object: ObjectInfo; write: WriteOptions }
  | { op: "get"; object: ObjectInfo }
  | { op: "put"; size: number }
  | { op: "deleteMany"; keys: number };

/** Optional capabilities a store declares (core/capabilities.ts). */
export type StoreFeature = "key-space" | "versions" | "local-folder" | "object-lock" | "multipart-uploads";

/** A user error: bad input or a refused operation. Shown as one line; exit code 2; nothing changed. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** An object's body as a stream, whether the store streamed it or read it whole (see ObjectStore.get). */
export function bodyStream(body: Readable | Buffer): Readable {
  return Buffer.isBuffer(body) ? Readable.from([body]) : body;
}
