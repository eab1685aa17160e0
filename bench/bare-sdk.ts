/**
 * The "bare SDK loop": the least work an AWS SDK v3 client can do to sync one bucket into another.
 * It lists both buckets once, then issues CopyObject for every source key the target lacks (or
 * has with another size), N at a time. No retries, no comparison by time, no reporting: the
 * ceiling for any SDK-based client on this machine. On a no-op re-sync it lists both and copies nothing.
 *
 *   node dist/bench/bare-sdk.js sync SRC DST --endpoint-url URL [--concurrency 64]
 *   node dist/bench/bare-sdk.js list BUCKET --endpoint-url URL
 *
 * Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. Prints one JSON line with what it did.
 */
import { CopyObjectCommand, ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import { makeClient } from "./common.js";

async function listKeys(client: S3Client, bucket: string): Promise<Map<string, number>> {
  const keys = new Map<string, number>();
  let token: string | undefined;
  do {
    const page = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token, MaxKeys: 1000 }),
    );
    for (const o of page.Contents ?? []) keys.set(o.Key!, o.Size ?? 0);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys;
}

/** CopyObject's x-amz-copy-source: bucket/key with the key URL-encoded, slashes kept. */
const copySource = (bucket: string, key: string) => `${bucket}/${encodeURIComponent(key).replace(/%2F/g, "/")}`;

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const flag = (name: string) => {
    const i = args.indexOf(name);
    if (i < 0) return undefined;
    const v = args[i + 1];
    args.splice(i, 2);
    return v;
  };
  const endpoint = flag("--endpoint-url");
  const concurrency = Number(flag("--concurrency") ?? 64);
  const [command, a, b] = args;
  const id = process.env.AWS_ACCESS_KEY_ID;
  const secret = process.env.AWS_SECRET_ACCESS_KEY;
  if (!endpoint || !id || !secret || !(command === "sync" ? a && b : command === "list" && a)) {
    console.error(
      "usage: bare-sdk.js sync SRC DST --endpoint-url URL [--concurrency N] | list BUCKET --endpoint-url URL (credentials from AWS_* env)",
    );
    process.exit(2);
  }
  const client = makeClient(
    endpoint,
    process.env.AWS_REGION ?? "us-east-1",
    { accessKeyId: id, secretAccessKey: secret },
    concurrency,
  );
  try {
    if (command === "list") {
      const keys = await listKeys(client, a!);
      console.log(JSON.stringify({ listed: keys.size }));
      return;
    }
    const [source, target] = await Promise.all([listKeys(client, a!), listKeys(client, b!)]);
    const todo = [...source].filter(([key, size]) => target.get(key) !== size).map(([key]) => key);
    let next = 0;
    let failed = 0;
    await Promise.all(
      Array.from({ length: Math.min(concurrency, todo.length) }, async () => {
        while (next < todo.length) {
          const key = todo[next++]!;
          try {
            await client.send(new CopyObjectCommand({ Bucket: b!, Key: key, CopySource: copySource(a!, key) }));
          } catch (err) {
            failed++;
            if (failed <= 5) console.error(`copy ${key}: ${(err as Error).name}`);
          }
        }
      }),
    );
    console.log(
      JSON.stringify({ listedSource: source.size, listedTarget: target.size, copied: todo.length - failed, failed }),
    );
    if (failed > 0) process.exitCode = 1;
  } finally {
    client.destroy();
  }
}

await main();
