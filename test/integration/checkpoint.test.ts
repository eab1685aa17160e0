/**
 * Issue 17: resumable runs. A sync with --checkpoint SIGKILLed at about half, then the same
 * command again: an exact copy (checked with the AWS SDK against the source), deletes only at
 * the very end, and the proxy shows the second run listed only what the first had not finished.
 * Scaled down from the 20,000 objects to 8,000 for the shared machine.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startFaultProxy, type FaultProxy } from "../helpers/fault-proxy.js";
import {
  CLI,
  listAll,
  putMany,
  runCli,
  s3Client,
  s3TestEnv,
  testBuckets,
  userEnv,
  type CliResult,
} from "../helpers/s3.js";

const client = s3Client("a");
const { bucket, removeAll } = testBuckets(client);
const dir = mkdtempSync(join(tmpdir(), "bs-checkpoint-"));
let proxy: FaultProxy;
after(async () => {
  await proxy?.close();
  await removeAll();
  client.destroy();
});
const show = (r: CliResult) =>
  `exit ${r.code}\n--- stderr\n${r.stderr.slice(0, 3000)}\n--- stdout\n${r.stdout.slice(-1500)}`;

const COUNT = 8000;
const FOLDERS = 20;
const keyOf = (i: number) => `${String(i % FOLDERS).padStart(2, "0")}/${String(i).padStart(5, "0")}`;
let src: string;
let dst: string;

/** Which run is going, and where each of its source listings started (first pages only). */
let phase = "first";
const starts: Record<string, string[]> = { first: [], second: [] };

before(async () => {
  src = await bucket("ckpt-src");
  dst = await bucket("ckpt-dst");
  await putMany(
    client,
    src,
    Array.from({ length: COUNT }, (_, i) => [keyOf(i), `body of ${i}`] as [string, string]),
    48,
  );
  // Stale keys in the target, in the first, a middle and the last range: deleted only at the end.
  await putMany(client, dst, [
    ["00/zz-stale", "x"],
    ["09/zz-stale", "x"],
    ["zz/stale", "x"],
  ]);
  proxy = await startFaultProxy({
    target: s3TestEnv().endpoint,
    rule: (req) => {
      if (req.operation === "ListObjectsV2" && req.bucket === src && !req.query.has("continuation-token"))
        starts[phase]!.push(req.query.get("start-after") ?? "");
      return undefined;
    },
  });
});

describe("--checkpoint", () => {
  test("SIGKILLed at about half, the same command finishes the job exactly, listing only what was left", async () => {
    const checkpoint = join(dir, "run.ckpt");
    const args = ["sync", `s3://${src}`, `s3://${dst}`, "--delete", "--checkpoint", checkpoint];
    const child = spawn(process.execPath, [CLI, ...args, "--endpoint-url", proxy.url], {
      env: { PATH: process.env.PATH ?? "", HOME: "/nonexistent", ...userEnv("a") },
      stdio: "ignore",
    });
    const exited = new Promise((resolve) => child.on("close", resolve));
    const started = Date.now();
    while (proxy.count("CopyObject") < COUNT / 2) {
      if (Date.now() - started > 120_000) throw new Error("the first run did not get to half");
      await new Promise((r) => setTimeout(r, 10));
    }
    child.kill("SIGKILL");
    await exited;
    const copiedFirst = proxy.count("CopyObject");
    assert.ok(copiedFirst < COUNT, `killed before the end (${copiedFirst} copies)`);
    const afterKill = new Set((await listAll(client, dst)).map((o) => o.key));
    for (const k of ["00/zz-stale", "09/zz-stale", "zz/stale"]) assert.ok(afterKill.has(k), `${k} not deleted yet`);

    // What the first run recorded: ranges, and how far each got.
    const lines = readFileSync(checkpoint, "utf8").trimEnd().split("\n");
    const header = JSON.parse(lines[0]!) as { ranges: { startAfter?: string }[] };
    assert.ok(header.ranges.length > 1, "the key space was cut into ranges");
    const marks = new Map<number, { after?: string; done: boolean }>();
    for (const line of lines.slice(1)) {
      const u = JSON.parse(line) as { index: number; after?: string; done: boolean };
      marks.set(u.index, u);
    }
    assert.ok(
      [...marks.values()].some((m) => m.after !== undefined),
      "progress was recorded before the kill",
    );

    // Another run's checkpoint is refused, and changes nothing.
    const other = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--size-only", "--checkpoint", checkpoint]);
    assert.equal(other.code, 2, show(other));
    assert.match(
      other.stderr,
      /^bucketsync: --checkpoint .*run\.ckpt belongs to another run \(the same locations with other options\)/,
    );

    phase = "second";
    const copiesBefore = proxy.count("CopyObject");
    const second = await runCli([...args, "--endpoint-url", proxy.url], { endpoint: false });
    assert.equal(second.code, 0, show(second));
    const copiedSecond = proxy.count("CopyObject") - copiesBefore;
    // Only what was left: at most the last second before the kill (not yet written down) is copied twice.
    assert.ok(
      copiedFirst + copiedSecond <= COUNT + 1000,
      `the second run copied only what was left (${copiedFirst} + ${copiedSecond})`,
    );

    // Each listing of the second run starts where the first left its range; done ranges are not listed.
    const expected = header.ranges
      .map((r, i) => ({ r, m: marks.get(i) }))
      .filter(({ m }) => !m?.done)
      .map(({ r, m }) => m?.after ?? r.startAfter ?? "");
    assert.deepEqual([...starts.second!].sort(), expected.sort());

    // Exact: the target is the source, key by key and ETag by ETag; the stale keys are gone.
    const want = (await listAll(client, src)).map((o) => `${o.key} ${o.etag}`);
    const got = (await listAll(client, dst)).map((o) => `${o.key} ${o.etag}`);
    assert.deepEqual(got, want);
    assert.match(second.stdout, /deleted 3\b/);
    assert.ok(!existsSync(checkpoint), "a finished run removes its checkpoint");
  });

  test("bad input: only between buckets, not with --dry-run", async () => {
    const local = await runCli(["sync", dir, `s3://${dst}`, "--checkpoint", join(dir, "x")]);
    assert.equal(local.code, 2, show(local));
    assert.match(local.stderr, /--checkpoint works between two s3:\/\/ locations/);
    const dry = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--dry-run", "--checkpoint", join(dir, "x")]);
    assert.equal(dry.code, 2, show(dry));
    assert.match(dry.stderr, /--checkpoint cannot be used with --dry-run/);
  });
});
