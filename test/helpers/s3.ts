import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type PutObjectCommandInput,
} from "@aws-sdk/client-s3";
import { decodeListedKey } from "../../src/stores/s3/s3-store.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

export const REPO = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
export const CLI = join(REPO, "dist", "src", "cli", "bin.js");

export interface S3User {
  accessKeyId: string;
  secretAccessKey: string;
}
export interface S3TestEnv {
  endpoint: string;
  region: string;
  a: S3User;
  b: S3User;
}

/**
 * The S3 server the integration tests use: S3_TEST_ENDPOINT (with S3_TEST_ACCESS_KEY_ID /
 * S3_TEST_SECRET_ACCESS_KEY and the _B variants), or the radosgw started by scripts/s3-server.sh.
 * Fails loudly when there is none: these tests never pass without a real server.
 */
export function s3TestEnv(): S3TestEnv {
  if (process.env.S3_TEST_ENDPOINT) {
    const need = (name: string) => {
      const v = process.env[name];
      if (!v) throw new Error(`S3_TEST_ENDPOINT is set but ${name} is not`);
      return v;
    };
    return {
      endpoint: process.env.S3_TEST_ENDPOINT,
      region: process.env.S3_TEST_REGION ?? "us-east-1",
      a: { accessKeyId: need("S3_TEST_ACCESS_KEY_ID"), secretAccessKey: need("S3_TEST_SECRET_ACCESS_KEY") },
      b: { accessKeyId: need("S3_TEST_B_ACCESS_KEY_ID"), secretAccessKey: need("S3_TEST_B_SECRET_ACCESS_KEY") },
    };
  }
  const file = join(REPO, ".s3-server", "env.json");
  if (!existsSync(file)) {
    throw new Error(
      "no S3 test server: run `npm test` (which starts one with scripts/s3-server.sh) or set S3_TEST_ENDPOINT",
    );
  }
  const env = JSON.parse(readFileSync(file, "utf8"));
  return { endpoint: env.endpoint, region: env.region, a: env.users.a, b: env.users.b };
}

export function s3Client(user: "a" | "b" = "a"): S3Client {
  const env = s3TestEnv();
  return new S3Client({
    endpoint: env.endpoint,
    region: env.region,
    forcePathStyle: true,
    credentials: env[user],
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
}

/** Credentials of a test user as the AWS environment variables a user would set. */
export function userEnv(user: "a" | "b" = "a"): Record<string, string> {
  const env = s3TestEnv();
  return {
    AWS_ACCESS_KEY_ID: env[user].accessKeyId,
    AWS_SECRET_ACCESS_KEY: env[user].secretAccessKey,
    AWS_REGION: env.region,
  };
}

let counter = 0;
/** Creates a fresh bucket with a unique name. */
export async function newBucket(client: S3Client, label = "t"): Promise<string> {
  const name = `bs-${label}-${process.pid}-${Date.now().toString(36)}-${counter++}`.toLowerCase().slice(0, 63);
  await client.send(new CreateBucketCommand({ Bucket: name }));
  return name;
}

/**
 * The buckets one test file makes: `bucket(label)` creates a fresh one, `removeAll()` (from the
 * file's `after`) deletes each with its objects.
 */
export function testBuckets(client: S3Client): { bucket(label?: string): Promise<string>; removeAll(): Promise<void> } {
  const names: string[] = [];
  return {
    async bucket(label = "t") {
      const name = await newBucket(client, label);
      names.push(name);
      return name;
    },
    async removeAll() {
      for (const b of names.splice(0)) await removeBucket(client, b).catch(() => undefined);
    },
  };
}

export async function put(
  client: S3Client,
  bucket: string,
  key: string,
  body: string | Buffer,
  extra: Partial<PutObjectCommandInput> = {},
) {
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ...extra }));
}

/** Puts many small objects, `parallel` at a time. */
export async function putMany(client: S3Client, bucket: string, entries: [string, string | Buffer][], parallel = 32) {
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < entries.length) {
        const [key, body] = entries[next++]!;
        await put(client, bucket, key, body);
      }
    }),
  );
}

export interface Listed {
  key: string;
  size: number;
  etag: string;
  lastModified: number;
}

/** Every key under a prefix (full keys), decoded, in server order. */
export async function listAll(client: S3Client, bucket: string, prefix = ""): Promise<Listed[]> {
  const out: Listed[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(
      new ListObjectsV2Command({
        Bucket: bucket,
        Prefix: prefix || undefined,
        ContinuationToken: token,
        EncodingType: "url",
      }),
    );
    for (const c of page.Contents ?? [])
      out.push({
        key: decodeListedKey(c.Key!),
        size: c.Size!,
        etag: c.ETag!.replace(/"/g, ""),
        lastModified: c.LastModified!.getTime(),
      });
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out;
}

export async function keys(client: S3Client, bucket: string, prefix = ""): Promise<string[]> {
  return (await listAll(client, bucket, prefix)).map((o) => o.key);
}

export async function getText(client: S3Client, bucket: string, key: string): Promise<string> {
  const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return out.Body!.transformToString();
}

export async function head(client: S3Client, bucket: string, key: string) {
  return client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
}

export async function tags(client: S3Client, bucket: string, key: string): Promise<Record<string, string>> {
  const out = await client.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: key }));
  return Object.fromEntries((out.TagSet ?? []).map((t) => [t.Key!, t.Value!]));
}

export async function removeBucket(client: S3Client, bucket: string) {
  for (;;) {
    const listed = await listAll(client, bucket);
    if (listed.length === 0) break;
    for (let i = 0; i < listed.length; i += 1000) {
      await client.send(
        new DeleteObjectsCommand({
          Bucket: bucket,
          Delete: { Objects: listed.slice(i, i + 1000).map((o) => ({ Key: o.key })), Quiet: true },
        }),
      );
    }
  }
  await client.send(new DeleteBucketCommand({ Bucket: bucket }));
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI as a user would, with user A's credentials in the environment by default. */
export function runCli(
  args: string[],
  opts: {
    env?: Record<string, string>;
    user?: "a" | "b";
    endpoint?: boolean;
    /** Run as this Unix user id (tests running as root use it to meet permissions as a user does). */
    uid?: number;
  } = {},
): Promise<CliResult> {
  const env = s3TestEnv();
  const full = opts.endpoint === false ? args : [...args, "--endpoint-url", env.endpoint];
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...full],
      {
        env: { PATH: process.env.PATH ?? "", HOME: "/nonexistent", ...userEnv(opts.user), ...opts.env },
        maxBuffer: 256 * 1024 * 1024,
        ...(opts.uid !== undefined && { uid: opts.uid, gid: opts.uid }),
      },
      (err, stdout, stderr) => {
        const code = err
          ? typeof (err as { code?: unknown }).code === "number"
            ? (err as { code: number }).code
            : 1
          : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** The key zoo: keys every sync tool has broken at least once. */
export function keyZoo(): string[] {
  const zoo = [
    "plain.txt",
    "with space.txt",
    "plus+sign.txt",
    "question?.txt",
    "hash#tag.txt",
    "percent%20literal.txt",
    "amp&er=sand.txt",
    "at@semi;colon:comma,.txt",
    "brackets[1].txt",
    "unicode-é-ü-中文.txt",
    "emoji-\u{1F600}.txt",
    "private-use-\uE000.txt",
    "a",
    "a/b",
    "test-123.txt",
    "test.txt",
    "test/x",
    "dir/",
    "dir/inside.txt",
    "x//y",
    "./dot",
    "trailing-dot.",
    "tab\there",
    "quote'\"s",
    "star*.txt",
    "paren(1).txt",
    "tilde~.txt",
    "caret^.txt",
    "back\\slash",
    `long-${"k".repeat(1000)}`,
    `long-unicode-${"é".repeat(490)}`,
  ];
  return zoo;
}
