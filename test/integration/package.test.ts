/**
 * Issue 19: the package as users get it, and as one executable file. `npm pack` of this checkout, installed globally into a
 * temporary prefix from the tarball, gives a working `bucketsync` that syncs against the local
 * radosgw; the tarball holds only what runs.
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { REPO, getText, newBucket, put, removeBucket, s3Client, s3TestEnv, userEnv } from "../helpers/s3.js";

const run = promisify(execFile);
const client = s3Client("a");
const work = mkdtempSync(join(tmpdir(), "bs-pkg-"));
const buckets: string[] = [];
after(async () => {
  for (const b of buckets) await removeBucket(client, b).catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
  client.destroy();
});

describe("the packed CLI", () => {
  test(
    "npm pack -> npm install -g from the tarball -> bucketsync --version and a real sync",
    { timeout: 300_000 },
    async () => {
      // dist/ is already built by `npm test`; packing must not rebuild it under the running suite.
      const packed = await run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", work], {
        cwd: REPO,
        maxBuffer: 16 * 1024 * 1024,
      });
      const [info] = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[]; size: number }[];
      const paths = info!.files.map((f) => f.path);
      assert.ok(paths.includes("dist/src/cli/bin.js"), "the CLI is in the package");
      assert.ok(paths.includes("package.json") && paths.includes("README.md"));
      assert.deepEqual(
        paths.filter((p) => /^(test|bench|scripts|src)\/|^dist\/(test|bench|scripts)\/|\.map$/.test(p)),
        [],
        "only runtime files",
      );
      const prefix = join(work, "prefix");
      await run("npm", ["install", "-g", "--no-audit", "--no-fund", "--prefix", prefix, join(work, info!.filename)], {
        maxBuffer: 16 * 1024 * 1024,
      });
      const bin = join(prefix, "bin", "bucketsync");
      const env = { PATH: `${join(prefix, "bin")}:${process.env.PATH ?? ""}`, HOME: "/nonexistent", ...userEnv("a") };
      const version = await run(bin, ["--version"], { env });
      assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);

      const src = await newBucket(client, "pkg-s");
      const dst = await newBucket(client, "pkg-d");
      buckets.push(src, dst);
      await put(client, src, "hello.txt", "hello from the package");
      const synced = await run(bin, ["sync", `s3://${src}`, `s3://${dst}`, "--endpoint-url", s3TestEnv().endpoint], {
        env,
      });
      assert.match(synced.stdout, /^copied 1, /m);
      assert.equal(await getText(client, dst, "hello.txt"), "hello from the package");
    },
  );

  test(
    "a single executable file (Node's SEA): builds, prints its version and syncs",
    { timeout: 300_000 },
    async () => {
      const out = join(work, "sea");
      await run(process.execPath, [join(REPO, "dist", "scripts", "sea.js"), out], { maxBuffer: 16 * 1024 * 1024 });
      const exe = join(out, "bucketsync");
      const env = { PATH: "/usr/bin:/bin", HOME: "/nonexistent", ...userEnv("a") };
      const version = await run(exe, ["--version"], { env });
      assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
      assert.equal(version.stderr, "", "no experimental-feature warning");
      const src = await newBucket(client, "sea-s");
      const dst = await newBucket(client, "sea-d");
      buckets.push(src, dst);
      await put(client, src, "a/one.txt", "from the single executable");
      const synced = await run(exe, ["sync", `s3://${src}`, `s3://${dst}`, "--endpoint-url", s3TestEnv().endpoint], {
        env,
      });
      assert.match(synced.stdout, /^copied 1, /m);
      assert.equal(await getText(client, dst, "a/one.txt"), "from the single executable");
      const bad = await run(exe, ["sync", "s3://Bad_Name", `s3://${dst}`]).catch(
        (e: { code: number; stderr: string }) => e,
      );
      assert.equal((bad as { code: number }).code, 2);
      assert.match((bad as { stderr: string }).stderr, /^bucketsync: invalid bucket name 'Bad_Name'/);
    },
  );
});
