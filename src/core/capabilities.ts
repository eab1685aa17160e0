/**
 * Optional capabilities of a store, as rclone's fs/features.go has them: a store declares what it
 * can do in `features`, and code above the stores asks through these type guards, never by the
 * store's class. A new backend (GCS, Azure) implements ObjectStore plus the capabilities it has,
 * and everything above works with it unchanged.
 */
import type { KeyRange, ObjectInfo, ObjectStore, ObjectVersion, StoreFeature } from "./types.js";
export type { StoreFeature } from "./types.js";

/**
 * Cheap ways into a large key space (S3's delimiter and one-key listings): what lets a sync list
 * many parts at once, folder by folder or by sampled ranges.
 */
export interface KeySpaceListing {
  /** One level under `folder`: its folders (relative, ending in `/`) and the objects beside them; undefined when it takes more than `maxPages`. */
  listLevel(folder?: string, maxPages?: number): Promise<{ folders: string[]; objects: ObjectInfo[] } | undefined>;
  /** At most `maxPoints` keys inside `folder` to split its listing at (relative, sorted). */
  probeSplitPoints(folder: string, maxPoints: number): Promise<string[]>;
  /** Split points for the whole store; empty when it fits in one page. */
  splitPoints(maxPoints: number): Promise<string[]>;
}

/** A versioned store: every version of every key, and delete markers. */
export interface VersionListing {
  /** Every version (delete markers included), grouped by key in key order, each group oldest first. */
  listVersions(range?: KeyRange): AsyncIterable<{ key: string; versions: ObjectVersion[] }>;
  /** Writes a delete marker (a plain delete in a versioned bucket). */
  deleteCurrent(key: string): Promise<void>;
}

/**
 * A folder on a file system: directory semantics (a folder exists implicitly under its files, a
 * file and a folder cannot share a name), file times with their own precision, contents hashed on
 * demand.
 */
export interface LocalFolder {
  /** How far this store's times and another's may disagree and still be the same moment (ms). */
  readonly timeWindowMs: number;
  /** Creates the folder itself (a sync that succeeded leaves it, even when nothing was written). */
  ensureRoot(): Promise<void>;
  /** Source keys under `file/` are refused: the file, first in key order, wins. */
  refuseUnder(file: string): void;
  /** MD5 of a file, or its multipart ETag when one of the likely part layouts reproduces `multipartEtag`. */
  checksum(key: string, multipartEtag?: string): Promise<string | undefined>;
}

/** A bucket that can hold objects under Object Lock (WriteOptions.objectLock). */
export interface ObjectLocking {
  /** Whether Object Lock is enabled on the bucket (only buckets created with it can lock objects). */
  objectLockEnabled(): Promise<boolean>;
}

/** Incomplete multipart uploads (issue 17): listed and aborted by `cleanup`, orphans of killed runs aborted by the next. */
export interface MultipartUploads {
  /** Every incomplete multipart upload under this store's root, keys relative to it, in key order. */
  listUploads(): AsyncIterable<{ key: string; uploadId: string; initiated: number }>;
  /** Aborts one upload; one that is gone already counts as aborted. */
  abortUpload(key: string, uploadId: string): Promise<void>;
  /** Aborts the uploads that earlier runs of this tool on this machine started here and left behind when killed; returns how many. */
  abortOrphanedUploads(): Promise<number>;
}

const has = (store: ObjectStore, feature: StoreFeature) => store.features?.includes(feature) === true;

export function hasKeySpaceListing(store: ObjectStore): store is ObjectStore & KeySpaceListing {
  return has(store, "key-space");
}

export function hasVersions(store: ObjectStore): store is ObjectStore & VersionListing {
  return has(store, "versions");
}

export function hasObjectLock(store: ObjectStore): store is ObjectStore & ObjectLocking {
  return has(store, "object-lock");
}

export function isLocalFolder(store: ObjectStore): store is ObjectStore & LocalFolder {
  return has(store, "local-folder");
}

export function hasMultipartUploads(store: ObjectStore): store is ObjectStore & MultipartUploads {
  return has(store, "multipart-uploads");
}
