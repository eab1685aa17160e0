/**
 * Interrupted runs against the real S3 server: Ctrl-C (SIGINT) during a streamed multipart
 * upload leaves no incomplete upload behind, Ctrl-C during downloads lets the requests in flight
 * finish (whole files, no aborted writes), and a download killed outright (SIGKILL) leaves a
 * temporary file that the next run removes.
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ListMultipartUploadsCommand, type S3Client } from "@aws-sdk/client-s3";
import {
  CLI,
  listAll,
  newBucket,
  put,
  putMany,
  removeBucket,
  runCli,
  s3Client,
  s3TestEnv,
  userEnv,
  type CliResult,
} from "../helpers/s3.js";
import { stallingProxy } from "../helpers/stalling-proxy.js";

const env = s3TestEnv();
const clientA = s3Client("a");
const clientB = s3Client("b");
const clientOf = (owner: "a" | "b") => (owner === "a" ? clientA : clientB);
const buckets: { name: string; owner: "a" | "b" }[] = [];
async function bucket(label: string, owner: "a" | "b" = "a") {
  const name = await newBucket(clientOf(owner), label);
  buckets.push({ name, owner });
  return name;
}
const base = mkdtempSync(join(tmpdir(), "bucketsync-interrupts-it-"));
let counter = 0;
function folder(): string {
  const dir = join(base, `f${counter++}`);
  mkdirSync(dir);
  return dir;
}

/** Profiles `prod` = user A and `staging` = user B in a shared credentials file (as in accounts.test.ts). */
const credentialsFile = join(base, "credentials");
const configFile = join(base, "config");
writeFileSync(
  credentialsFile,
  `[prod]\naws_access_key_id = ${env.a.accessKeyId}\naws_secret_access_key = ${env.a.secretAccessKey}\n\n` +
    `[staging]\naws_access_key_id = ${env.b.accessKeyId}\naws_secret_access_key = ${env.b.secretAccessKey}\n`,
);
writeFileSync(configFile, "");
const profileEnv = {
  AWS_ACCESS_KEY_ID: "",
  AWS_SECRET_ACCESS_KEY: "",
  AWS_SHARED_CREDENTIALS_FILE: credentialsFile,
  AWS_CONFIG_FILE: configFile,
};
const PROFILES = ["--source-profile", "prod", "--target-profile", "staging"];

after(async () => {
  for (const c of running) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  for (const b of buckets) await removeBucket(clientOf(b.owner), b.name).catch(() => undefined);
  clientA.destroy();
  clientB.destroy();
  rmSync(base, { recursive: true, force: true });
});

const running: ReturnType<typeof spawn>[] = [];
/** Starts the CLI as a child process a test can signal; user A's keys unless `extraEnv` replaces them. */
function startCli(args: string[], extraEnv: Record<string, string> = {}) {
  const child = spawn(process.execPath, [CLI, ...args, "--endpoint-url", env.endpoint], {
    env: { PATH: process.env.PATH ?? "", HOME: "/nonexistent", ...userEnv("a"), ...extraEnv },
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.push(child);
  const out = { stdout: "", stderr: "" };
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (out.stdout += d));
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (out.stderr += d));
  const killer = setTimeout(() => child.kill("SIGKILL"), 120_000);
  const exited = new Promise<CliResult & { signal: NodeJS.Signals | null }>((resolve) =>
    child.on("close", (code, signal) => {
      clearTimeout(killer);
      resolve({ code: code ?? -1, signal, ...out });
    }),
  );
  return { child, out, exited };
}

async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000) {
  const started = Date.now();
  while (!(await condition())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const show = (r: CliResult) =>
  `exit ${r.code}\n--- stderr\n${r.stderr.slice(0, 3000)}\n--- stdout (tail)\n${r.stdout.slice(-3000)}`;
const uploadsIn = async (client: S3Client, b: string) =>
  (await client.send(new ListMultipartUploadsCommand({ Bucket: b }))).Uploads ?? [];
const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");
type Event = { type: string; key?: string; code?: string; message?: string };
const events = (stdout: string): Event[] =>
  stdout
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l));
/** Every name under a folder, `/`-joined, temporary files included. */
function namesUnder(root: string, prefix = ""): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(root, prefix))) {
    const rel = prefix + name;
    if (statSync(join(root, rel)).isDirectory()) out.push(...namesUnder(root, `${rel}/`));
    else out.push(rel);
  }
  return out;
}
const temps = (root: string) => namesUnder(root).filter((n) => /(^|\/)\.bucketsync-/.test(n));

describe("Ctrl-C during a streamed multipart upload", () => {
  test("folder -> S3, a 60 MiB file in 5 MiB parts: SIGINT while parts are uploading ends with exit 130 and no incomplete upload, every time", async () => {
    const dir = folder();
    const data = randomBytes(60 * 1024 * 1024);
    writeFileSync(join(dir, "big.bin"), data);
    const b = await bucket("int-up");
    const args = ["sync", dir, `s3://${b}`, "--multipart-threshold", "5MiB", "--part-size", "5MiB"];
    // The abort raced the exit: a single lucky round proves nothing, so interrupt it several times.
    for (let round = 0; round < 3; round++) {
      const { child, exited } = startCli(args);
      await until(
        async () => (await uploadsIn(clientA, b)).length > 0 || child.exitCode !== null,
        "a multipart upload to start",
      );
      child.kill("SIGINT");
      const r = await exited;
      assert.equal(r.signal, null, `exited by itself: ${show(r)}`);
      assert.equal(r.code, 130, show(r));
      assert.deepEqual(
        await uploadsIn(clientA, b),
        [],
        `round ${round}: no incomplete multipart upload is left: ${show(r)}`,
      );
      assert.deepEqual(await listAll(clientA, b), [], "nothing was completed");
    }
    const again = await runCli(args);
    assert.equal(again.code, 0, show(again));
    const [listed] = await listAll(clientA, b);
    assert.equal(listed?.size, data.length);
    assert.match(listed!.etag, /-12$/, "uploaded in 12 parts");
    assert.deepEqual(await uploadsIn(clientA, b), []);
  });

  test("A's bucket -> B's bucket (server-side copy refused, streamed instead): SIGINT mid-upload leaves no incomplete upload in B's bucket", async () => {
    const src = await bucket("int-xs", "a");
    const dst = await bucket("int-xd", "b");
    await put(clientA, src, "big.bin", randomBytes(60 * 1024 * 1024));
    const args = [
      "sync",
      `s3://${src}`,
      `s3://${dst}`,
      "--multipart-threshold",
      "5MiB",
      "--part-size",
      "5MiB",
      ...PROFILES,
    ];
    for (let round = 0; round < 2; round++) {
      const { child, out, exited } = startCli(args, profileEnv);
      // The refused server-side attempt creates (and aborts) an upload too: wait for the streamed one.
      await until(
        async () =>
          (/refused.*streaming/i.test(out.stderr) && (await uploadsIn(clientB, dst)).length > 0) ||
          child.exitCode !== null,
        "the streamed multipart upload to start",
      );
      child.kill("SIGINT");
      const r = await exited;
      assert.equal(r.code, 130, show(r));
      assert.deepEqual(
        await uploadsIn(clientB, dst),
        [],
        `round ${round}: no incomplete multipart upload is left: ${show(r)}`,
      );
    }
    const again = await runCli(args, { env: profileEnv });
    assert.equal(again.code, 0, show(again));
    assert.equal((await listAll(clientB, dst))[0]?.size, 60 * 1024 * 1024);
    assert.deepEqual(await uploadsIn(clientB, dst), []);
  });

  test("the same upload path, not interrupted: a file above the threshold that fits in one part is a one-part upload, and verifies", async () => {
    const dir = folder();
    writeFileSync(join(dir, "ten.bin"), randomBytes(10 * 1024 * 1024));
    const b = await bucket("int-one");
    // Default part size (64 MiB): one part. It used to go up as a plain PutObject, whose MD5 ETag
    // then failed the check against the one-part multipart ETag the bytes were hashed for.
    const r = await runCli(["sync", dir, `s3://${b}`, "--multipart-threshold", "5MiB", "--json"]);
    assert.equal(r.code, 0, show(r));
    const summary = events(r.stdout).pop() as Event & { copied: number; verified: number; failed: number };
    assert.deepEqual([summary.copied, summary.verified, summary.failed], [1, 1, 0], show(r));
    assert.match((await listAll(clientA, b))[0]!.etag, /-1$/);
  });
});

describe("Ctrl-C during downloads", () => {
  test("S3 -> folder, 2,000 objects: SIGINT lets the downloads in flight finish: exit 130, no aborted writes, every file whole, no temporary files", async () => {
    const b = await bucket("int-down");
    const objects = new Map(
      Array.from({ length: 2000 }, (_, i) => [
        `o/${String(i).padStart(4, "0")}.bin`,
        randomBytes(2048 + (i % 7) * 1000),
      ]),
    );
    await putMany(clientA, b, [...objects], 64);
    const dir = folder();
    const { child, out, exited } = startCli(["sync", `s3://${b}`, dir, "--json"]);
    await until(
      () => (out.stdout.match(/"type":"copy"/g)?.length ?? 0) >= 200 || child.exitCode !== null,
      "200 downloads",
    );
    child.kill("SIGINT");
    const r = await exited;
    assert.equal(r.code, 130, show(r));
    const all = events(r.stdout);
    const errors = all.filter((e) => e.type === "error");
    assert.deepEqual(
      errors.filter((e) => e.code === "ABORT_ERR" || /abort/i.test(e.message ?? "")),
      [],
      "no download was aborted",
    );
    assert.deepEqual(errors, [], "no failures at all");
    const copied = all.filter((e) => e.type === "copy").map((e) => e.key!);
    assert.ok(copied.length < objects.size, `the run stopped early (${copied.length} copies)`);
    assert.deepEqual(temps(dir), [], "no temporary file left behind");
    const files = namesUnder(dir).sort();
    assert.deepEqual(files, [...copied].sort(), "exactly the files reported as copied");
    for (const f of files) assert.ok(readFileSync(join(dir, f)).equals(objects.get(f)!), `${f} has its object's bytes`);

    const again = await runCli(["sync", `s3://${b}`, dir, "--json"]);
    assert.equal(again.code, 0, show(again));
    assert.equal(namesUnder(dir).length, objects.size);
  });
});

describe("a download killed outright", () => {
  test("SIGKILL mid-download of a 40 MiB object leaves a temporary file; the next run (with --delete) removes it and completes the file", async () => {
    const b = await bucket("int-kill");
    const data = randomBytes(40 * 1024 * 1024);
    await put(clientA, b, "big.bin", data);
    await put(clientA, b, "small.txt", "small");
    const dir = folder();
    const stall = await stallingProxy(env.endpoint, 8 * 1024 * 1024);
    let partial: string | undefined;
    try {
      const child = spawn(process.execPath, [CLI, "sync", `s3://${b}`, dir, "--endpoint-url", stall.url], {
        env: { PATH: process.env.PATH ?? "", HOME: "/nonexistent", ...userEnv("a") },
        stdio: "ignore",
      });
      running.push(child);
      const exited = new Promise((resolve) => child.once("exit", resolve));
      await until(() => {
        // small.txt's temporary file may be renamed between readdir and stat: look again next round.
        partial = temps(dir).find((n) => (statSync(join(dir, n), { throwIfNoEntry: false })?.size ?? 0) > 0);
        return partial !== undefined || child.exitCode !== null;
      }, "part of the object on disk");
      assert.ok(partial, "a temporary file appeared while downloading");
      child.kill("SIGKILL");
      await exited;
    } finally {
      await stall.close();
    }
    assert.ok(statSync(join(dir, partial!)).size < data.length, "the temporary file holds part of the object");

    const r = await runCli(["sync", `s3://${b}`, dir, "--delete", "--json"]);
    assert.equal(r.code, 0, show(r));
    assert.deepEqual(temps(dir), [], "no temporary file remains");
    assert.equal(sha256(readFileSync(join(dir, "big.bin"))), sha256(data), "the file is complete");
    assert.deepEqual(namesUnder(dir).sort(), ["big.bin", "small.txt"]);
  });
});
