/**
 * Issue 17: work lists (--files-from, --files-from-raw, stdin) and re-drives (--failed-keys),
 * the built CLI against the real radosgw, requests counted in the fault proxy. Outcomes are read
 * from the real server, never through the proxy. Sizes are scaled down from the (a
 * 5,000-key bucket instead of 20,000) for the shared 2-core machine; the behaviour asserted is
 * the same: no listing request for a short list, exactly the listed keys copied or deleted.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compareKeys } from "../../src/core/keys.js";
import { startFaultProxy, type FaultProxy, type FaultProxyOptions } from "../helpers/fault-proxy.js";
import {
  CLI,
  keyZoo,
  keys,
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
const proxies: FaultProxy[] = [];
const dir = mkdtempSync(join(tmpdir(), "bs-worklist-"));
async function proxy(opts: Omit<FaultProxyOptions, "target"> = {}) {
  const p = await startFaultProxy({ target: s3TestEnv().endpoint, ...opts });
  proxies.push(p);
  return p;
}
function viaProxy(p: FaultProxy, args: string[]): Promise<CliResult> {
  return runCli([...args, "--endpoint-url", p.url], { endpoint: false });
}
const listings = (p: FaultProxy) => p.count("ListObjectsV2") + p.count("ListObjects");
const show = (r: CliResult) =>
  `exit ${r.code}\n--- stderr\n${r.stderr.slice(0, 3000)}\n--- stdout\n${r.stdout.slice(-1500)}`;

/** The CLI with `input` on its standard input. */
function runWithStdin(args: string[], input: string | Buffer, endpoint = s3TestEnv().endpoint): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args, "--endpoint-url", endpoint], {
      env: { PATH: process.env.PATH ?? "", HOME: "/nonexistent", ...userEnv("a") },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(input);
  });
}

const SOURCE_KEYS = 5000;
const name = (i: number) => `k/${String(i).padStart(5, "0")}`;
let src: string;

before(async () => {
  src = await bucket("wl-src");
  await putMany(
    client,
    src,
    Array.from({ length: SOURCE_KEYS }, (_, i) => [name(i), `body ${i}`] as [string, string]),
    48,
  );
});
after(async () => {
  for (const p of proxies) await p.close();
  await removeAll();
  client.destroy();
});

describe("--files-from", () => {
  test("a short list is read key by key: no LIST request, exactly those keys copied", async () => {
    const dst = await bucket("wl-short");
    const wanted = Array.from({ length: 50 }, (_, i) => name(i * 97 + 3));
    const file = join(dir, "short.txt");
    // A key the source does not have is simply not there to copy (one longer than S3 allows
    // too); CRLF line ends are read too.
    writeFileSync(file, [...wanted, "k/missing", "k/" + "x".repeat(1100)].join("\r\n") + "\r\n");
    const p = await proxy();
    const r = await viaProxy(p, ["sync", `s3://${src}`, `s3://${dst}`, "--files-from", file]);
    assert.equal(r.code, 0, show(r));
    assert.equal(listings(p), 0, `no listing request: ${JSON.stringify(p.stats.operations)}`);
    assert.ok(p.count("HeadObject") >= 102, "each listed key was read on both sides");
    assert.deepEqual(await keys(client, dst), [...wanted].sort(compareKeys));
    assert.match(r.stdout, /copied 50, updated 0, deleted 0, skipped 0, failed 0/);

    // Again: every key is now the same on both sides, still without listing.
    const again = await viaProxy(p, ["sync", `s3://${src}`, `s3://${dst}`, "--files-from", file]);
    assert.equal(again.code, 0, show(again));
    assert.match(again.stdout, /copied 0, updated 0, deleted 0, skipped 50/);
    assert.equal(listings(p), 0);
  });

  test("a long list (from stdin) lists only the ranges holding it and copies exactly its keys", async () => {
    const dst = await bucket("wl-long");
    const wanted = Array.from({ length: 2500 }, (_, i) => name(i + 1200));
    // Where each listing of the source starts (its first page: no continuation token).
    const starts: string[] = [];
    const p = await proxy({
      rule: (req) => {
        if (req.operation === "ListObjectsV2" && req.bucket === src && !req.query.has("continuation-token"))
          starts.push(req.query.get("start-after") ?? "");
        return undefined;
      },
    });
    const r = await runWithStdin(
      ["sync", `s3://${src}`, `s3://${dst}`, "--files-from", "-"],
      wanted.join("\n") + "\n",
      p.url,
    );
    assert.equal(r.code, 0, show(r));
    assert.deepEqual(await keys(client, dst), wanted);
    // 2,500 keys in three ranges, each listed from just before its first key: never from the
    // start of the bucket, so the 1,200 keys before them are not listed.
    assert.deepEqual(starts.sort(), ["k/0120", "k/0220", "k/0320"]);
  });

  test("--delete with a work list deletes only listed keys the source lacks", async () => {
    const dst = await bucket("wl-del");
    const stale = ["k/stale-1", "k/stale-2", "old/a", "old/b", "zzz"];
    await putMany(client, dst, [...stale.map((k) => [k, "stale"] as [string, string]), [name(7), "different"]]);
    const file = join(dir, "delete.txt");
    writeFileSync(file, ["k/stale-1", "old/a", name(7), name(8)].join("\n"));
    const p = await proxy();
    const r = await viaProxy(p, ["sync", `s3://${src}`, `s3://${dst}`, "--files-from", file, "--delete"]);
    assert.equal(r.code, 0, show(r));
    assert.equal(listings(p), 0);
    assert.deepEqual(await keys(client, dst), [name(7), name(8), "k/stale-2", "old/b", "zzz"].sort(compareKeys));
    assert.match(r.stdout, /deleted 2/);
    // The long-list path keeps the same rule.
    const many = Array.from({ length: 1500 }, (_, i) => name(i));
    writeFileSync(file, [...many, "k/stale-2", "zzz"].join("\n"));
    const long = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--files-from", file, "--delete"]);
    assert.equal(long.code, 0, show(long));
    const got = await keys(client, dst);
    assert.deepEqual(got, [...many, "old/b"].sort(compareKeys));
  });

  test("--files-from-raw takes NUL-separated keys, tabs and line breaks included; check reads work lists too", async () => {
    const zsrc = await bucket("wl-zsrc");
    const dst = await bucket("wl-zdst");
    const zoo = [...keyZoo(), "new\nline", "carriage\rreturn"];
    await putMany(
      client,
      zsrc,
      zoo.map((k) => [k, `content of ${k}`]),
    );
    const picked = zoo.filter((_, i) => i % 2 === 0 || zoo[i]!.includes("\t") || zoo[i]!.includes("\n"));
    const file = join(dir, "raw.bin");
    writeFileSync(file, picked.join("\0") + "\0");
    const r = await runCli(["sync", `s3://${zsrc}`, `s3://${dst}`, "--files-from-raw", file]);
    assert.equal(r.code, 0, show(r));
    assert.deepEqual(await keys(client, dst), [...picked].sort(compareKeys));
    const checked = await runCli(["check", `s3://${zsrc}`, `s3://${dst}`, "--files-from-raw", file]);
    assert.equal(checked.code, 0, show(checked));
    assert.match(checked.stdout, new RegExp(`in sync: ${picked.length} objects compared`));
  });

  test("bad input: a missing file or both forms is one line, exit 2, nothing copied", async () => {
    const dst = await bucket("wl-bad");
    const missing = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--files-from", join(dir, "nope.txt")]);
    assert.equal(missing.code, 2, show(missing));
    assert.match(missing.stderr, /^bucketsync: cannot read --files-from .*nope\.txt: ENOENT/);
    assert.equal(missing.stderr.trim().split("\n").length, 1);
    const both = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--files-from", "a", "--files-from-raw", "b"]);
    assert.equal(both.code, 2, show(both));
    assert.match(both.stderr, /--files-from and --files-from-raw cannot be used together/);
    assert.deepEqual(await keys(client, dst), []);
  });
});

describe("--failed-keys", () => {
  test("a sync through the fault proxy writes exactly the two poisoned keys; the re-drive copies them", async () => {
    const dst = await bucket("wl-fk");
    const poison = [name(1234), name(4321)];
    const file = join(dir, "failed.txt");
    const p = await proxy({ failKeys: poison });
    const r = await viaProxy(p, ["sync", `s3://${src}`, `s3://${dst}`, "--failed-keys", file]);
    assert.equal(r.code, 1, show(r));
    assert.match(r.stdout, /failed 2\b.* 2 failed key\(s\) written to .*failed\.txt/);
    const lines = readFileSync(file, "utf8").trimEnd().split("\n");
    // Lines are written as failures happen, so their order is the order the copies failed in.
    assert.deepEqual(lines.map((l) => l.split("\t")[0]).sort(compareKeys), poison);
    for (const line of lines) assert.match(line, /^k\/\d{5}\tcopy: \S.*/);
    assert.equal((await keys(client, dst)).length, SOURCE_KEYS - 2);

    // The poison lifted: the re-drive reads the file back and copies only those two, listing nothing.
    const clean = await proxy();
    const again = await viaProxy(clean, [
      "sync",
      `s3://${src}`,
      `s3://${dst}`,
      "--files-from",
      file,
      "--failed-keys",
      file,
    ]);
    assert.equal(again.code, 0, show(again));
    assert.match(again.stdout, /copied 2, updated 0, deleted 0, skipped 0, failed 0\b.* 0 failed key\(s\) written/);
    assert.equal(listings(clean), 0);
    assert.equal(clean.count("CopyObject"), 2);
    assert.equal(readFileSync(file, "utf8"), "");
    const all = await listAll(client, dst);
    assert.equal(all.length, SOURCE_KEYS);
  });
});
