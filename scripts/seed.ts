/**
 * Seeds a bucket on the local test server with many objects, for the demo and the benchmark.
 * Usage: node dist/scripts/seed.js BUCKET COUNT [mixed|1k] [PREFIX]
 * Reads the server and credentials from .s3-server/env.json (written by scripts/s3-server.sh), or
 * from the file BUCKETSYNC_S3_ENV_FILE names.
 */
import { CreateBucketCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { readFileSync } from "node:fs";
import { join } from "node:path";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

const [bucket, countArg, sizes = "mixed", prefix = ""] = process.argv.slice(2);
if (!bucket || !countArg) {
  console.error("usage: seed.js BUCKET COUNT [mixed|1k] [PREFIX]");
  process.exit(2);
}
const count = Number(countArg);
const env = JSON.parse(
  readFileSync(process.env.BUCKETSYNC_S3_ENV_FILE ?? join(process.cwd(), ".s3-server", "env.json"), "utf8"),
);
const client = new S3Client({
  endpoint: env.endpoint,
  region: env.region,
  forcePathStyle: true,
  credentials: env.users.a,
  requestChecksumCalculation: "WHEN_REQUIRED",
});

// Mixed sizes: mostly small files with some larger ones, like a real asset bucket.
const sizeFor = (i: number) => (sizes === "1k" ? 1024 : [200, 1024, 4096, 16_384, 65_536, 300_000][i % 6]!);
const folders = ["images", "css", "js", "docs", "uploads/2025", "uploads/2026"];
const typeFor = (i: number) =>
  ["image/png", "text/css", "application/javascript", "application/pdf", "image/jpeg", "image/webp"][i % 6]!;

await client.send(new CreateBucketCommand({ Bucket: bucket })).catch((err) => {
  if (err.name !== "BucketAlreadyOwnedByYou" && err.name !== "BucketAlreadyExists") throw err;
});
let next = 0;
const body = Buffer.alloc(300_000, "x");
await Promise.all(
  Array.from({ length: 64 }, async () => {
    while (next < count) {
      const i = next++;
      const key = `${prefix}${folders[i % folders.length]}/file-${String(i).padStart(7, "0")}.bin`;
      await client.send(
        new PutObjectCommand({ Bucket: bucket, Key: key, Body: body.subarray(0, sizeFor(i)), ContentType: typeFor(i) }),
      );
    }
  }),
);
client.destroy();
console.error(`seeded s3://${bucket}/${prefix} with ${count} objects`);
