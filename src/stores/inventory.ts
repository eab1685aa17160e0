/**
 * S3 Inventory as a source listing (issue 17): reads AWS's documented format, a `manifest.json`
 * (`sourceBucket`, `fileFormat`, `fileSchema`, `files[]` with each data file's key and MD5) and
 * its data files, through any ObjectStore holding them, each file checked against its MD5:
 * - CSV (gzip): rows carry the columns `fileSchema` names, in that order, without a header; the
 *   key is URL-encoded as an HTML form would (space as `+`, `+` as `%2B`); read with csv-parse.
 * - Parquet: AWS's columns (`bucket`, `key`, `size`, `last_modified_date`, `e_tag`, ...), read
 *   with hyparquet (Snappy built in; GZIP and Brotli through node:zlib). A data file is read
 *   whole into memory, since Parquet keeps its index at the end.
 * ORC is refused. With versions in the inventory, only the current version of each key counts
 * (IsLatest, and not a delete marker).
 *
 * The entries are held in memory, sorted in the one key order (an inventory is not sorted by
 * key across its files): about 200 bytes a key.
 */
import { createHash } from "node:crypto";
import { pipeline } from "node:stream/promises";
import { Transform } from "node:stream";
import { brotliDecompressSync, createGunzip, gunzipSync } from "node:zlib";
import { compareKeys } from "../core/keys.js";
import { UsageError, bodyStream, type ObjectInfo, type ObjectStore } from "../core/types.js";

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
  if (!["CSV", "PARQUET"].includes(m.fileFormat.toUpperCase()))
    throw new UsageError(
      `${where}: ${m.fileFormat} inventories are not read; bucketsync reads CSV and Parquet inventories (configure the inventory with one of them)`,
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
/** One inventory record, whatever the format. */
interface Record {
  bucket?: string;
  key: string;
  size: unknown;
  lastModified: unknown;
  etag?: string;
  storageClass?: string;
  isLatest?: unknown;
  deleteMarker?: unknown;
}

const truthy = (v: unknown) => v === true || v === "true";
const falsy = (v: unknown) => v === false || v === "false";

function timeOf(v: unknown): number {
  if (v instanceof Date) return v.getTime();
  if (typeof v === "bigint") return Number(v);
  if (typeof v === "number") return v;
  return typeof v === "string" ? Date.parse(v) : NaN;
}

/** The Parquet codecs hyparquet leaves to its caller (it decodes Snappy itself). */
const PARQUET_CODECS = {
  GZIP: (input: Uint8Array) => new Uint8Array(gunzipSync(input)),
  BROTLI: (input: Uint8Array) => new Uint8Array(brotliDecompressSync(input)),
};

/** Parquet column -> record field: AWS's names. */
const PARQUET_COLUMNS: [string, keyof Record][] = [
  ["bucket", "bucket"],
  ["key", "key"],
  ["size", "size"],
  ["last_modified_date", "lastModified"],
  ["e_tag", "etag"],
  ["storage_class", "storageClass"],
  ["is_latest", "isLatest"],
  ["is_delete_marker", "deleteMarker"],
];

async function* parquetRecords(bytes: Buffer, file: string): AsyncGenerator<Record> {
  const { parquetMetadata, parquetReadObjects } = await import("hyparquet");
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  const metadata = parquetMetadata(buffer);
  const names = new Set(metadata.schema.map((c) => c.name));
  const missing = ["key", "size", "last_modified_date"].filter((n) => !names.has(n));
  if (missing.length > 0) throw new Error(`inventory data file ${file} has no ${missing.join(", ")} column`);
  const columns = PARQUET_COLUMNS.filter(([name]) => names.has(name));
  const rows = await parquetReadObjects({
    file: buffer,
    metadata,
    columns: columns.map(([name]) => name),
    compressors: PARQUET_CODECS,
  });
  for (const row of rows) {
    const record: Partial<Record> = {};
    for (const [name, field] of columns) (record as { [k: string]: unknown })[field] = row[name] ?? undefined;
    yield record as Record;
  }
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
  for await (const chunk of bodyStream(got.body)) chunks.push(chunk as Buffer);
  const manifest = parseManifest(Buffer.concat(chunks).toString("utf8"), where);
  if (manifest.sourceBucket !== sourceBucket)
    throw new UsageError(
      `the inventory ${where} lists bucket ${manifest.sourceBucket}, not the source's bucket ${sourceBucket}`,
    );
  const csv = manifest.fileFormat.toUpperCase() === "CSV";
  const cols = csv ? columnsOf(manifest.fileSchema, where) : undefined;
  const objects: ObjectInfo[] = [];
  const accept = (r: Record, file: string) => {
    if (falsy(r.isLatest) || truthy(r.deleteMarker)) return;
    if (r.bucket !== undefined && r.bucket !== sourceBucket) return;
    if (!r.key.startsWith(prefix)) return;
    const lastModified = timeOf(r.lastModified);
    const size = Number(r.size);
    if (!Number.isFinite(size) || Number.isNaN(lastModified))
      throw new Error(`inventory data file ${file}: unreadable size or date for ${JSON.stringify(r.key)}`);
    objects.push({
      key: r.key.slice(prefix.length),
      size,
      lastModified,
      ...(r.etag && { etag: r.etag.replace(/"/g, "") }),
      ...(r.storageClass && { storageClass: r.storageClass }),
    });
  };
  for (const file of manifest.files) {
    const data = await store.get(file.key).catch((err: unknown) => {
      throw new Error(`inventory data file ${file.key}: ${(err as Error).message}`);
    });
    const md5 = createHash("md5");
    if (cols) {
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
          const at = (i: number) => (i >= 0 ? row[i] : undefined);
          accept(
            {
              bucket: at(cols.bucket),
              key: decodeInventoryKey(row[cols.key]!),
              size: row[cols.size],
              lastModified: row[cols.modified],
              etag: at(cols.etag),
              storageClass: at(cols.storageClass),
              isLatest: at(cols.isLatest),
              deleteMarker: at(cols.deleteMarker),
            },
            file.key,
          );
        }
      };
      // Loaded for an inventory only (as hyparquet is), not at every start.
      const { parse } = await import("csv-parse");
      await pipeline(bodyStream(data.body), hashing, createGunzip(), parse({ skip_empty_lines: true }), read);
    } else {
      const parts: Buffer[] = [];
      for await (const chunk of bodyStream(data.body)) {
        md5.update(chunk as Buffer);
        parts.push(chunk as Buffer);
      }
      for await (const record of parquetRecords(Buffer.concat(parts), file.key)) accept(record, file.key);
    }
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
