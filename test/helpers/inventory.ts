/**
 * Writes a synthetic S3 Inventory of a bucket as it is now, in AWS's documented format: gzip CSV
 * data files (no header; the columns `fileSchema` names; keys URL-encoded with `+` for a space)
 * or Parquet files (AWS's column names, written with hyparquet-writer), and a manifest.json
 * naming them with their MD5s. For the integration tests and the benchmark.
 */
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { parquetWriteBuffer } from "hyparquet-writer";
import { listAll, type Listed } from "./s3.js";

function parquetFile(bucket: string, rows: Listed[]): Buffer {
  const column = (name: string, type: "STRING" | "INT64" | "TIMESTAMP", data: unknown[]) => ({ name, type, data });
  return Buffer.from(
    parquetWriteBuffer({
      columnData: [
        column(
          "bucket",
          "STRING",
          rows.map(() => bucket),
        ),
        column(
          "key",
          "STRING",
          rows.map((o) => o.key),
        ),
        column(
          "size",
          "INT64",
          rows.map((o) => BigInt(o.size)),
        ),
        column(
          "last_modified_date",
          "TIMESTAMP",
          rows.map((o) => new Date(o.lastModified)),
        ),
        column(
          "e_tag",
          "STRING",
          rows.map((o) => o.etag),
        ),
        column(
          "storage_class",
          "STRING",
          rows.map(() => "STANDARD"),
        ),
      ],
    }),
  );
}

/** Returns the manifest's s3:// URL. */
export async function takeInventory(
  client: S3Client,
  srcBucket: string,
  inv: string,
  files = 2,
  format: "CSV" | "Parquet" = "CSV",
): Promise<string> {
  const listed = await listAll(client, srcBucket);
  const row = (o: (typeof listed)[number]) =>
    [
      srcBucket,
      encodeURIComponent(o.key).replace(/%20/g, "+"),
      String(o.size),
      new Date(o.lastModified).toISOString(),
      o.etag,
      "STANDARD",
    ]
      .map((v) => `"${v}"`)
      .join(",");
  const base = `inventories/${srcBucket}/${format.toLowerCase()}`;
  const entries: { key: string; size: number; MD5checksum: string }[] = [];
  for (let f = 0; f < files; f++) {
    // Files hold keys in no particular order, as AWS's may.
    const rows = listed.filter((_, i) => i % files === f).reverse();
    const body = format === "CSV" ? gzipSync(rows.map(row).join("\n") + "\n") : parquetFile(srcBucket, rows);
    const key = `${base}/data/part-${f}.${format === "CSV" ? "csv.gz" : "parquet"}`;
    await client.send(new PutObjectCommand({ Bucket: inv, Key: key, Body: body }));
    entries.push({ key, size: body.length, MD5checksum: createHash("md5").update(body).digest("hex") });
  }
  const manifest = {
    sourceBucket: srcBucket,
    destinationBucket: `arn:aws:s3:::${inv}`,
    version: "2016-11-30",
    creationTimestamp: String(Date.now()),
    fileFormat: format,
    fileSchema:
      format === "CSV"
        ? "Bucket, Key, Size, LastModifiedDate, ETag, StorageClass"
        : "message s3.inventory { required binary bucket (STRING); required binary key (STRING); optional int64 size; optional int64 last_modified_date (TIMESTAMP(MILLIS,true)); optional binary e_tag (STRING); optional binary storage_class (STRING); }",
    files: entries,
  };
  const manifestKey = `${base}/2026-12-01T01-00Z/manifest.json`;
  await client.send(new PutObjectCommand({ Bucket: inv, Key: manifestKey, Body: JSON.stringify(manifest) }));
  return `s3://${inv}/${manifestKey}`;
}
