/**
 * S3 Inventory as a source listing (issue 17): reads AWS's documented format, a `manifest.json`
 * (`sourceBucket`, `fileFormat`, `fileSchema`, `files[]` with each data file's key and MD5) and
 * its gzip-compressed CSV data files, through any ObjectStore holding them. CSV rows carry the
 * columns `fileSchema` names, in that order, without a header; the key is URL-encoded as an
 * HTML form would (space as `+`, `+` as `%2B`). With versions in the inventory, only the current
 * version of each key counts (IsLatest, and not a delete marker).
 *
 * Parquet and ORC inventories are refused with a clear message: see README ("S3 Inventory").
 *
 * The entries are held in memory, sorted in the one key order (an inventory is not sorted by
 * key across its files): about 200 bytes a key.
 */
import { createHash } from "node:crypto";
import { pipeline } from "node:stream/promises";
import { Transform } from "node:stream";
import { createGunzip } from "node:zlib";
import { parse } from "csv-parse";
import { compareKeys } from "../core/keys.js";
import { UsageError, type ObjectInfo, type ObjectStore } from "../core/types.js";

export interface InventoryManifest {
  sourceBucket: string;
  destinationBucket?: string;
  fileFormat: string;
  fileSchema: string;
  creationTimestamp?: string;
  files: { key: string; size?: number; MD5checksum?: string }[];
}

export interface Inventory {
  /** The current objects under the prefix asked for, keys relative to it, sorted. */
  objects: ObjectInfo[];
  /** When the inventory was taken (epoch ms), when the manifest says. */
  createdAt?: number;
  sourceBucket: string;
}

/** Reads and checks a manifest; every problem is one line naming the manifest. */
export function parseManifest(text: string, where: string): InventoryManifest {
  let m: Partial<InventoryManifest>;
  try {
    m = JSON.parse(text) as Partial<InventoryManifest>;
  } catch (err) {
    throw new UsageError(`${where} is not an S3 Inventory manifest: ${(err as Error).message}`);
  }
  if (
    typeof m !== "object" ||
    m === null ||
    typeof m.sourceBucket !== "string" ||
    typeof m.fileFormat !== "string" ||
    !Array.isArray(m.files) ||
    m.files.some((f) => typeof f?.key !== "string")
  )
    throw new UsageError(`${where} is not an S3 Inventory manifest (sourceBucket, fileFormat and files[] expected)`);
  if (m.fileFormat.toUpperCase() !== "CSV")
    throw new UsageError(
      `${where} is a ${m.fileFormat} inventory; bucketsync reads CSV inventories (configure the inventory with the CSV format)`,
    );
  if (typeof m.fileSchema !== "string") throw new UsageError(`${where} has no fileSchema`);
  return m as InventoryManifest;
}

/** The columns a sync needs, by their place in `fileSchema`. */
function columnsOf(schema: string, where: string) {
  const names = schema.split(",").map((c) => c.trim());
  const at = (name: string) => names.indexOf(name);
  const cols = {
    count: names.length,
    bucket: at("Bucket"),
    key: at("Key"),
    size: at("Size"),
    modified: at("LastModifiedDate"),
    etag: at("ETag"),
    storageClass: at("StorageClass"),
    isLatest: at("IsLatest"),
    deleteMarker: at("IsDeleteMarker"),
  };
  const missing = ["Key", "Size", "LastModifiedDate"].filter((n) => at(n) < 0);
  if (missing.length > 0)
    throw new UsageError(`${where}: the inventory has no ${missing.join(", ")} column (its fileSchema is "${schema}")`);
  return cols;
}

/** A key as a CSV inventory writes it: URL-encoded, space as `+`. */
export function decodeInventoryKey(encoded: string): string {
  return decodeURIComponent(encoded.replace(/\+/g, "%20"));
}

/**
 * Reads the inventory `manifestKey` names in `store` (the inventory bucket's root): the current
 * objects of `sourceBucket` under `prefix`, relative to it. Each data file's MD5 is checked
 * against the manifest's.
 */
export async function readInventory(
  store: ObjectStore,
  manifestKey: string,
  sourceBucket: string,
  prefix: string,
): Promise<Inventory> {
  const where = `${store.description}${manifestKey}`;
  const got = await store.get(manifestKey).catch((err: unknown) => {
    if ((err as { name?: string }).name === "NoSuchKey") throw new UsageError(`no inventory manifest at ${where}`);
    throw err;
  });
  const chunks: Buffer[] = [];
  for await (const chunk of got.body) chunks.push(chunk as Buffer);
  const manifest = parseManifest(Buffer.concat(chunks).toString("utf8"), where);
  if (manifest.sourceBucket !== sourceBucket)
    throw new UsageError(
      `the inventory ${where} lists bucket ${manifest.sourceBucket}, not the source's bucket ${sourceBucket}`,
    );
  const cols = columnsOf(manifest.fileSchema, where);
  const objects: ObjectInfo[] = [];
  for (const file of manifest.files) {
    const data = await store.get(file.key).catch((err: unknown) => {
      throw new Error(`inventory data file ${file.key}: ${(err as Error).message}`);
    });
    const md5 = createHash("md5");
    const hashing = new Transform({
      transform(chunk: Buffer, _enc, done) {
        md5.update(chunk);
        done(null, chunk);
      },
    });
    const read = async (rows: AsyncIterable<string[]>) => {
      for await (const row of rows) {
        if (row.length !== cols.count)
          throw new Error(`inventory data file ${file.key}: a row has ${row.length} columns, not ${cols.count}`);
        if (cols.isLatest >= 0 && row[cols.isLatest] === "false") continue;
        if (cols.deleteMarker >= 0 && row[cols.deleteMarker] === "true") continue;
        if (cols.bucket >= 0 && row[cols.bucket] !== sourceBucket) continue;
        const key = decodeInventoryKey(row[cols.key]!);
        if (!key.startsWith(prefix)) continue;
        const lastModified = Date.parse(row[cols.modified]!);
        const size = Number(row[cols.size]);
        if (!Number.isFinite(size) || Number.isNaN(lastModified))
          throw new Error(`inventory data file ${file.key}: unreadable size or date for ${JSON.stringify(key)}`);
        objects.push({
          key: key.slice(prefix.length),
          size,
          lastModified,
          ...(cols.etag >= 0 && row[cols.etag] && { etag: row[cols.etag]!.replace(/"/g, "") }),
          ...(cols.storageClass >= 0 && row[cols.storageClass] && { storageClass: row[cols.storageClass] }),
        });
      }
    };
    await pipeline(data.body, hashing, createGunzip(), parse({ skip_empty_lines: true }), read);
    if (file.MD5checksum && md5.digest("hex") !== file.MD5checksum.toLowerCase())
      throw new Error(`inventory data file ${file.key} does not match its MD5 in the manifest`);
  }
  objects.sort((a, b) => compareKeys(a.key, b.key) || a.lastModified - b.lastModified);
  // A key twice (a file listed twice, versions without IsLatest): the last modified counts.
  const unique = objects.filter((o, i) => i === objects.length - 1 || compareKeys(o.key, objects[i + 1]!.key) !== 0);
  const created = Number(manifest.creationTimestamp);
  return {
    objects: unique,
    sourceBucket: manifest.sourceBucket,
    ...(Number.isFinite(created) && created > 0 && { createdAt: created }),
  };
}
