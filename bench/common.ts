/**
 * Shared helpers for the benchmark: where things are, the local S3 server, a tuned S3 client, and
 * bucket chores (create, count, empty and delete) done outside any measured run.
 */
import http from "node:http";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  S3Client,
} from "@aws-sdk/client-s3";
import { NodeHttpHandler } from "@smithy/node-http-handler";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

/** Repository root (this file runs from dist/bench/). */
export const REPO = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const CLI = join(REPO, "dist", "src", "cli", "bin.js");
/** The server's folder (scripts/s3-server.sh's DIR): BENCH_SERVER_DIR, e.g. a server of its own on other ports. */
export const SERVER_DIR = process.env.BENCH_SERVER_DIR ?? join(REPO, ".s3-server");
export const RESULTS_DIR = join(REPO, "bench", "results");
export const TMP_ROOT = join(RESULTS_DIR, "tmp");

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface ServerInfo {
  endpoint: string;
  host: string;
  port: number;
  region: string;
  credentials: Credentials;
}

/** The benchmark talks to the loopback interface only; anything else is refused before a byte is sent. */
export function assertLoopback(host: string): void {
  if (host !== "127.0.0.1") throw new Error(`refusing to benchmark against ${host}: only 127.0.0.1 is allowed`);
}

/** Reads .s3-server/env.json, written by scripts/s3-server.sh start. */
export function loadServer(): ServerInfo {
  const file = join(SERVER_DIR, "env.json");
  if (!existsSync(file)) throw new Error(`${file} is missing; run: bash scripts/s3-server.sh start`);
  const env = JSON.parse(readFileSync(file, "utf8"));
  const url = new URL(env.endpoint);
  assertLoopback(url.hostname);
  if (url.protocol !== "http:") throw new Error(`expected an http:// endpoint, got ${env.endpoint}`);
  return {
    endpoint: `http://127.0.0.1:${url.port}`,
    host: "127.0.0.1",
    port: Number(url.port),
    region: env.region ?? "us-east-1",
    credentials: { accessKeyId: env.users.a.accessKeyId, secretAccessKey: env.users.a.secretAccessKey },
  };
}

/** An SDK v3 client configured the way bucketsync configures its own (keep-alive, no streaming checksums). */
export function makeClient(endpoint: string, region: string, credentials: Credentials, maxSockets = 64): S3Client {
  assertLoopback(new URL(endpoint).hostname);
  return new S3Client({
    endpoint,
    region,
    forcePathStyle: true,
    credentials,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    maxAttempts: 3,
    requestHandler: new NodeHttpHandler({
      httpAgent: new http.Agent({ keepAlive: true, maxSockets }),
      connectionTimeout: 10_000,
      requestTimeout: 120_000,
    }),
  });
}

export async function createBucket(client: S3Client, bucket: string): Promise<void> {
  await client.send(new CreateBucketCommand({ Bucket: bucket })).catch((err) => {
    if (err.name !== "BucketAlreadyOwnedByYou" && err.name !== "BucketAlreadyExists") throw err;
  });
}

export async function bucketExists(client: S3Client, bucket: string): Promise<boolean> {
  const out = await client.send(new ListBucketsCommand({}));
  return (out.Buckets ?? []).some((b) => b.Name === bucket);
}

export async function listBucketNames(client: S3Client): Promise<string[]> {
  const out = await client.send(new ListBucketsCommand({}));
  return (out.Buckets ?? []).map((b) => b.Name!).filter(Boolean);
}

export interface Listed {
  key: string;
  size: number;
  lastModified: number;
  etag: string;
}

/** Lists a whole bucket (1000 keys a page). */
export async function listAll(client: S3Client, bucket: string): Promise<Listed[]> {
  const out: Listed[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token, MaxKeys: 1000 }),
    );
    for (const o of page.Contents ?? [])
      out.push({ key: o.Key!, size: o.Size ?? 0, lastModified: o.LastModified?.getTime() ?? 0, etag: o.ETag ?? "" });
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out;
}

export async function countObjects(client: S3Client, bucket: string): Promise<number> {
  let count = 0;
  let token: string | undefined;
  do {
    const page = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token, MaxKeys: 1000 }),
    );
    count += page.KeyCount ?? page.Contents?.length ?? 0;
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return count;
}

/** Deletes every object (1000 per request, a few requests in flight) and then the bucket. Missing buckets are fine. */
export async function deleteBucket(client: S3Client, bucket: string): Promise<void> {
  try {
    for (;;) {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, MaxKeys: 1000 }));
      const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key! }));
      if (keys.length === 0) break;
      // Two halves at once: quicker, and still gentle on the shared server.
      const halves = [keys.slice(0, 500), keys.slice(500)].filter((h) => h.length > 0);
      await Promise.all(
        halves.map((Objects) =>
          client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects, Quiet: true } })),
        ),
      );
    }
    await client.send(new DeleteBucketCommand({ Bucket: bucket }));
  } catch (err) {
    if ((err as Error).name === "NoSuchBucket") return;
    throw err;
  }
}

export function log(message: string): void {
  const t = new Date().toISOString().slice(11, 19);
  process.stderr.write(`[bench ${t}] ${message}\n`);
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Environment for child processes: no proxies, no stray AWS profile or IMDS lookups. */
export function baseChildEnv(server: ServerInfo): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(env)) {
    if (/^(https?_proxy|all_proxy|no_proxy)$/i.test(name)) delete env[name];
    if (/^AWS_/.test(name) && name !== "AWS_CA_BUNDLE") delete env[name];
    if (/^RCLONE_/.test(name)) delete env[name];
  }
  return {
    ...env,
    NO_PROXY: "127.0.0.1",
    AWS_ACCESS_KEY_ID: server.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: server.credentials.secretAccessKey,
    AWS_REGION: server.region,
    AWS_DEFAULT_REGION: server.region,
    AWS_EC2_METADATA_DISABLED: "true",
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
  };
}
