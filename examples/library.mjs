// Runnable example of the library API against the local test server:
//   npm run build && bash scripts/s3-server.sh start && node examples/library.mjs
import { readFileSync } from "node:fs";
import { S3Client, CreateBucketCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { sync, check } from "bucketsync";

const env = JSON.parse(readFileSync(new URL("../.s3-server/env.json", import.meta.url), "utf8"));
const connection = { endpointUrl: env.endpoint, credentials: env.users.a };

// Seed a small "production" bucket.
const s3 = new S3Client({
  endpoint: env.endpoint,
  region: env.region,
  forcePathStyle: true,
  credentials: env.users.a,
  requestChecksumCalculation: "WHEN_REQUIRED",
});
const stamp = Date.now();
const [production, staging] = [`example-prod-${stamp}`, `example-staging-${stamp}`];
for (const bucket of [production, staging]) await s3.send(new CreateBucketCommand({ Bucket: bucket }));
for (let i = 0; i < 20; i++)
  await s3.send(
    new PutObjectCommand({ Bucket: production, Key: `images/${i}.png`, Body: `png ${i}`, ContentType: "image/png" }),
  );

// Sync with events, exactly what the CLI renders.
const { summary, fatal } = await sync({
  source: `s3://${production}`,
  target: `s3://${staging}`,
  delete: true,
  acl: "public-read",
  connection,
  onEvent: (event) => {
    if (event.type === "copy") console.log(`copied ${event.key} (${event.size} bytes, ${event.verification})`);
  },
});
console.log(fatal ? `failed: ${fatal.message}` : `summary: ${JSON.stringify(summary)}`);

const result = await check({ source: `s3://${production}`, target: `s3://${staging}`, connection });
console.log(`in sync: ${result.inSync} (${result.compared} compared)`);
s3.destroy();
