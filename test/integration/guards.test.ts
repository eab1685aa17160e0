/**
 * Issue 5, "Survive bad input": every guard that keeps a sync from damaging the target, each
 * checked by reading the target on the real server afterwards.
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { PutBucketAclCommand } from "@aws-sdk/client-s3";
import { compareKeys } from "../../src/core/keys.js";
import { startFaultProxy, type FaultProxy, type FaultProxyOptions } from "../helpers/fault-proxy.js";
import {
  CLI,
  keys,
  listAll,
  newBucket,
  putMany,
  removeBucket,
  runCli,
  s3Client,
  s3TestEnv,
  userEnv,
  type CliResult,
} from "../helpers/s3.js";

const client = s3Client("a");
const clientB = s3Client("b");
const buckets: { name: string; owner: "a" | "b" }[] = [];
const proxies: FaultProxy[] = [];
async function bucket(label: string, owner: "a" | "b" = "a") {
  const name = await newBucket(owner === "a" ? client : clientB, label);
  buckets.push({ name, owner });
  return name;
}
async function proxy(opts: Omit<FaultProxyOptions, "target">) {
  const p = await startFaultProxy({ target: s3TestEnv().endpoint, ...opts });
  proxies.push(p);
  return p;
}
after(async () => {
  for (const p of proxies) await p.close();
  for (const b of buckets) await removeBucket(b.owner === "a" ? client : clientB, b.name).catch(() => undefined);
  client.destroy();
  clientB.destroy();
});

const SECRETS = [s3TestEnv().a.secretAccessKey, s3TestEnv().b.secretAccessKey];

/** key -> "size etag lastModified": any write, overwrite or delete changes it. */
async function snapshot(b: string, c = client): Promise<Record<string, string>> {
  return Object.fromEntries((await listAll(c, b)).map((o) => [o.key, `${o.size} ${o.etag} ${o.lastModified}`]));
}

const show = (r: CliResult) =>
  `exit ${r.code}\n--- stderr\n${r.stderr.slice(0, 3000)}\n--- stdout\n${r.stdout.slice(-2000)}`;

/** What every refusal looks like to a user: exit 2, one line on stderr, no stack trace, no secret. */
function assertRefused(r: CliResult, pattern: RegExp, what: string) {
  assert.equal(r.code, 2, `${what}: ${show(r)}`);
  const lines = r.stderr.split("\n").filter((l) => l.trim() !== "");
  assert.equal(lines.length, 1, `${what}: exactly one line on stderr: ${show(r)}`);
  assert.match(lines[0]!, pattern, `${what}: ${show(r)}`);
  assert.doesNotMatch(r.stdout + r.stderr, /\n\s+at .*\(|\bat .*\.js:\d+/, `${what}: no stack trace`);
  for (const s of SECRETS) assert.ok(!(r.stdout + r.stderr).includes(s), `${what}: a secret was printed`);
}

async function seeded(label: string, entries: [string, string][]) {
  const b = await bucket(label);
  await putMany(client, b, entries);
  return b;
}

describe("a source that cannot be read", () => {
  test("source bucket missing: exit 2, nothing deleted", async () => {
    const dst = await seeded("nosrc-d", [
      ["a", "1"],
      ["b", "2"],
    ]);
    const before = await snapshot(dst);
    const r = await runCli(["sync", `s3://${dst}-no-such-bucket`, `s3://${dst}`, "--delete"]);
    assertRefused(r, /NoSuchBucket/, "missing source");
    assert.match(r.stderr, /source/);
    assert.deepEqual(await snapshot(dst), before);
  });

  test("source owned by another account (AccessDenied on listing): exit 2, nothing deleted", async () => {
    const src = await bucket("bsrc", "b");
    await putMany(clientB, src, [
      ["x", "from B"],
      ["y", "from B"],
    ]);
    const dst = await seeded("bsrc-d", [
      ["a", "1"],
      ["b", "2"],
    ]);
    const before = await snapshot(dst);
    const r = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--delete"]);
    assertRefused(r, /AccessDenied/, "foreign source");
    assert.deepEqual(await snapshot(dst), before);
  });

  test("target owned by another account (AccessDenied on listing): exit 2, target untouched", async () => {
    const src = await seeded("btgt-s", [["x", "1"]]);
    const dst = await bucket("btgt", "b");
    await putMany(clientB, dst, [
      ["a", "B's"],
      ["b", "B's"],
    ]);
    const before = await snapshot(dst, clientB);
    const r = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--delete"]);
    assertRefused(r, /AccessDenied/, "foreign target");
    assert.deepEqual(await snapshot(dst, clientB), before);
  });

  test("a target we may list but not write: AccessDenied is reported once and the run stops (exit 2)", async () => {
    const src = await seeded(
      "ro-s",
      Array.from({ length: 40 }, (_, i) => [`k${i}`, `v${i}`] as [string, string]),
    );
    const dst = await bucket("ro-d", "b");
    await putMany(clientB, dst, [["stale", "B's"]]);
    await clientB.send(new PutBucketAclCommand({ Bucket: dst, ACL: "public-read" })); // A can list it, not write it
    const before = await snapshot(dst, clientB);
    const r = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--delete"]);
    assert.equal(r.code, 2, show(r));
    assert.equal((r.stderr.match(/AccessDenied/g) ?? []).length, 1, `AccessDenied reported once: ${show(r)}`);
    assert.equal(r.stderr.split("\n").filter((l) => l.trim()).length, 1, `one line: ${show(r)}`);
    assert.deepEqual(await snapshot(dst, clientB), before);
  });

  test("wrong credentials: exit 2, the secret is never printed, target untouched", async () => {
    const src = await seeded("cred-s", [["new", "1"]]);
    const dst = await seeded("cred-d", [["old", "1"]]);
    const before = await snapshot(dst);
    const badSecret = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--delete"], {
      env: { AWS_SECRET_ACCESS_KEY: "wrong-secret-value-0123456789" },
    });
    assertRefused(badSecret, /SignatureDoesNotMatch/, "wrong secret");
    assert.ok(!(badSecret.stdout + badSecret.stderr).includes("wrong-secret-value-0123456789"));
    const badKey = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--delete"], {
      env: { AWS_ACCESS_KEY_ID: "AKIANOTAREALKEY00000" },
    });
    assertRefused(badKey, /InvalidAccessKeyId/, "unknown access key");
    const none = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--delete"], {
      env: { AWS_ACCESS_KEY_ID: "", AWS_SECRET_ACCESS_KEY: "" },
    });
    assert.equal(none.code, 2, `no credentials: ${show(none)}`);
    assert.equal(none.stderr.split("\n").filter((l) => l.trim()).length, 1, `no credentials: one line: ${show(none)}`);
    assert.doesNotMatch(none.stderr, /\n\s+at /);
    assert.deepEqual(await snapshot(dst), before);
  });
});

describe("delete guards", () => {
  test("--delete with a source that lists nothing while the target has objects: exit 2 naming --force; with --force it deletes", async () => {
    const src = await seeded("empty-s", [["elsewhere/x", "not under the synced prefix"]]);
    const dst = await seeded("empty-d", [
      ["a", "1"],
      ["b/c", "2"],
      ["d", "3"],
    ]);
    const before = await snapshot(dst);

    const r = await runCli(["sync", `s3://${src}/empty`, `s3://${dst}`, "--delete"]);
    assertRefused(r, /--force/, "empty source prefix");
    assert.deepEqual(await snapshot(dst), before, "nothing deleted");

    const emptyBucket = await bucket("empty-b");
    const r2 = await runCli(["sync", `s3://${emptyBucket}`, `s3://${dst}`, "--delete"]);
    assertRefused(r2, /--force/, "empty source bucket");
    assert.deepEqual(await snapshot(dst), before, "nothing deleted");

    const forced = await runCli(["sync", `s3://${src}/empty`, `s3://${dst}`, "--delete", "--force"]);
    assert.equal(forced.code, 0, show(forced));
    assert.deepEqual(await keys(client, dst), [], "--force lets the empty source empty the target");
  });

  test("--max-delete N: more than N planned deletes, none is made, exit 1, and it says so; exactly N are allowed", async () => {
    const src = await seeded("maxd-s", [
      ["keep", "1"],
      ["new", "2"],
    ]);
    const stale = ["s1", "s2", "s3", "s4", "s5"];
    const dst = await seeded("maxd-d", [["keep", "1"], ...stale.map((k) => [k, "x"] as [string, string])]);

    const r = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--delete", "--max-delete", "4"]);
    assert.equal(r.code, 1, show(r));
    assert.match(r.stderr, /--max-delete 4/, show(r));
    assert.match(r.stderr, /5 /, `the number planned is given: ${show(r)}`);
    assert.doesNotMatch(r.stdout, /^delete:/m, show(r));
    assert.deepEqual(
      await keys(client, dst),
      ["keep", "new", ...stale],
      "all stale objects kept; the copy still happened",
    );

    const ok = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--delete", "--max-delete", "5"]);
    assert.equal(ok.code, 0, show(ok));
    assert.deepEqual(await keys(client, dst), ["keep", "new"]);
  });

  test("--max-delete 0 refuses every delete", async () => {
    const src = await seeded("maxd0-s", [["keep", "1"]]);
    const dst = await seeded("maxd0-d", [
      ["keep", "1"],
      ["stale", "x"],
    ]);
    const r = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--delete", "--max-delete", "0"]);
    assert.equal(r.code, 1, show(r));
    assert.match(r.stderr, /--max-delete 0/);
    assert.deepEqual(await keys(client, dst), ["keep", "stale"]);
  });

  test("one failed copy means no deletes at all (exit 1, the key and the withheld deletes are reported)", async () => {
    const src = await seeded("fc-s", [
      ["good-1", "1"],
      ["bad key#1", "2"],
      ["good-2", "3"],
    ]);
    const dst = await seeded("fc-d", [
      ["stale-a", "x"],
      ["stale-z", "x"],
    ]);
    const p = await proxy({ failKeys: ["bad key#1"] });
    const r = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--delete", "--endpoint-url", p.url], {
      endpoint: false,
    });
    assert.equal(r.code, 1, show(r));
    assert.match(r.stderr, /bad key#1/, show(r));
    assert.match(r.stderr, /2 delete\(s\) not run/, show(r));
    assert.equal(p.count("DeleteObjects"), 0);
    assert.deepEqual(await keys(client, dst), ["good-1", "good-2", "stale-a", "stale-z"]);
  });
});

describe("bad input", () => {
  test("each mistake: exit 2, one line on stderr, no stack trace, no secret, target unchanged", async () => {
    const src = await seeded("bad-s", [
      ["k", "v"],
      ["a/b", "v"],
    ]);
    const dst = await seeded("bad-d", [["old", "v"]]);
    const before = await snapshot(dst);

    // A port nothing listens on, and an HTTP server that is not S3.
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", () => r()));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const notS3 = http.createServer((_req, res) =>
      res.writeHead(404, { "content-type": "text/html" }).end("<html><body>Not Found</body></html>"),
    );
    await new Promise<void>((r) => notS3.listen(0, "127.0.0.1", () => r()));
    const notS3Url = `http://127.0.0.1:${(notS3.address() as AddressInfo).port}`;
    // A web server that says 200 to everything (the wrong port, a captive portal).
    const welcome = http.createServer((req, res) => {
      req.resume();
      res.writeHead(200, { "content-type": "text/html" }).end("<html><body>Welcome!</body></html>");
    });
    await new Promise<void>((r) => welcome.listen(0, "127.0.0.1", () => r()));
    const welcomeUrl = `http://127.0.0.1:${(welcome.address() as AddressInfo).port}`;

    const S = `s3://${src}`;
    const D = `s3://${dst}`;
    // [args, expected message, whether runCli adds the real --endpoint-url]
    const cases: [string[], RegExp, boolean?][] = [
      // malformed locations
      [["sync", "s3://", D, "--delete"], /invalid bucket name/],
      [["sync", "s3://a", D, "--delete"], /invalid bucket name 'a'/],
      [["sync", "s3:///key", D, "--delete"], /invalid bucket name/],
      [["sync", "s3://bad_bucket!/x", D, "--delete"], /invalid bucket name/],
      [["sync", "s3://two words/x", D, "--delete"], /invalid bucket name/],
      [["sync", S, "gs://x/y", "--delete"], /unsupported location/],
      [["sync", "http://example.com/b", D, "--delete"], /unsupported location/],
      [["sync", S, `s3://${dst}/${"p".repeat(1100)}`, "--delete"], /1024/],
      [["sync", S], /missing required argument/],
      [["sync", S, D, "extra-arg"], /too many arguments|unexpected/i],
      [["synk", S, D], /unknown command/],
      // unknown flags
      [["sync", S, D, "--bogus"], /unknown option '--bogus'/],
      [["sync", S, D, "--delet"], /unknown option '--delet'/],
      [["sync", S, D, "-z"], /unknown option '-z'/],
      // values
      [["sync", S, D, "--acl", "world-writable"], /--acl/],
      [["sync", S, D, "--acl"], /--acl/],
      [["sync", S, D, "--concurrency", "0"], /invalid --concurrency/],
      [["sync", S, D, "--concurrency", "-1"], /invalid --concurrency/],
      [["sync", S, D, "--concurrency", "many"], /invalid --concurrency/],
      [["sync", S, D, "--concurrency", "1e9"], /invalid --concurrency/],
      [["sync", S, D, "--part-size", "1MB"], /--part-size/],
      [["sync", S, D, "--part-size", "6GB"], /--part-size/],
      [["sync", S, D, "--part-size", "lots"], /--part-size/],
      [["sync", S, D, "--multipart-threshold", "0"], /--multipart-threshold/],
      [["sync", S, D, "--max-delete", "-1"], /--max-delete/],
      [["sync", S, D, "--max-delete", "few"], /--max-delete/],
      [["sync", S, D, "--timeout", "soon"], /--timeout/],
      [["sync", S, D, "--timeout", "0"], /--timeout/],
      [["sync", S, D, "--timeout", "-5"], /--timeout/],
      [["sync", S, D, "--size-only", "--checksum"], /cannot be used together/],
      // globs
      [["sync", S, D, "--delete", "--exclude", "[abc"], /--exclude.*\[abc/],
      [["sync", S, D, "--delete", "--include", "[abc"], /--include.*\[abc/],
      [["sync", S, D, "--delete", "--exclude", ""], /--exclude/],
      // overlapping source and target
      [["sync", S, S, "--delete"], /overlap/],
      [["sync", `${S}/a`, `${S}/a/b`, "--delete"], /overlap/],
      [["sync", `${S}/a/b`, `${S}/a`, "--delete"], /overlap/],
      [["sync", S, `${S}/backup`, "--delete"], /overlap/],
      [["sync", `${S}/a/`, `${S}/a`, "--delete"], /overlap/],
      // endpoints
      [["sync", S, D, "--delete", "--endpoint-url", "not a url"], /--endpoint-url/, false],
      [["sync", S, D, "--delete", "--endpoint-url", "ftp://127.0.0.1:21"], /--endpoint-url/, false],
      [["sync", S, D, "--delete", "--endpoint-url", `http://user:${SECRETS[0]}@127.0.0.1:1`], /--endpoint-url/, false],
      [
        ["sync", S, D, "--delete", "--endpoint-url", `http://127.0.0.1:${deadPort}`],
        /cannot reach the endpoint/,
        false,
      ],
      [
        ["sync", S, D, "--delete", "--endpoint-url", "http://no-such-host.invalid:9000"],
        /cannot reach the endpoint/,
        false,
      ],
      [["sync", S, D, "--delete", "--endpoint-url", notS3Url], /listing/, false],
      [["sync", S, D, "--delete", "--endpoint-url", welcomeUrl], /listing/, false],
    ];
    // Every case runs; the failures are reported together.
    const failures: string[] = [];
    try {
      for (const [args, pattern, withEndpoint] of cases) {
        const r = await runCli(args, { endpoint: withEndpoint ?? true });
        try {
          assertRefused(r, pattern, args.map((a) => (a.length > 60 ? `${a.slice(0, 60)}...` : a)).join(" "));
        } catch (err) {
          failures.push((err as Error).message.split("\n\n")[0]!);
        }
      }
    } finally {
      for (const server of [notS3, welcome]) {
        server.close();
        server.closeAllConnections();
      }
    }
    assert.deepEqual(failures, [], `${failures.length} of ${cases.length} cases failed`);
    assert.deepEqual(await snapshot(dst), before, "no case changed the target");
    assert.deepEqual(await keys(client, src), ["a/b", "k"], "no case changed the source");
  });
});

/** Starts the CLI as a child process a test can signal. */
function startCli(args: string[]) {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH ?? "", HOME: "/nonexistent", ...userEnv("a") },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const out = { stdout: "", stderr: "" };
  child.stdout.setEncoding("utf8").on("data", (d: string) => (out.stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (out.stderr += d));
  const killer = setTimeout(() => child.kill("SIGKILL"), 120_000);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.on("close", (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, at: Date.now() });
    }),
  );
  return { child, out, exited };
}

async function until(condition: () => boolean, timeoutMs = 60_000) {
  const started = Date.now();
  while (!condition() && Date.now() - started < timeoutMs) await new Promise((r) => setTimeout(r, 25));
}

describe("Ctrl-C", () => {
  test("SIGINT mid-run: exit 130, says so, prints a summary, deletes nothing; running it again finishes the job", async () => {
    const n = 3000;
    const srcKeys = Array.from({ length: n }, (_, i) => `obj/${String(i).padStart(5, "0")}`);
    const src = await seeded(
      "int-s",
      srcKeys.map((k) => [k, `v ${k}`]),
    );
    const stale = ["obj/00000-stale", "zzz-stale"];
    const dst = await seeded(
      "int-d",
      stale.map((k) => [k, "x"]),
    );
    const p = await proxy({ latencyMs: 50 });
    const args = ["sync", `s3://${src}`, `s3://${dst}`, "--delete", "--endpoint-url", p.url];

    const { child, out, exited } = startCli(args);
    // About a second in, once copies are under way.
    const started = Date.now();
    await until(() => (Date.now() - started >= 1000 && p.count("CopyObject") >= 50) || child.exitCode !== null);
    const copiesBeforeSignal = p.count("CopyObject");
    child.kill("SIGINT");
    const { code, signal } = await exited;
    const { stdout, stderr } = out;
    const r = { code: code ?? -1, stdout, stderr };

    assert.equal(signal, null, `exited by itself, not killed: ${show(r)}`);
    assert.ok(
      copiesBeforeSignal >= 50 && copiesBeforeSignal < n,
      `interrupted mid-run (${copiesBeforeSignal} copies before the signal)`,
    );
    assert.equal(code, 130, show(r));
    assert.match(stderr, /SIGINT|interrupt/i, show(r));
    assert.match(
      stdout + stderr,
      /copied \d+, updated \d+, deleted 0, skipped \d+, failed \d+/,
      `a summary line: ${show(r)}`,
    );
    assert.doesNotMatch(stderr, /\n\s+at /, "no stack trace");
    assert.equal(p.count("DeleteObjects"), 0, "no delete request was sent");
    const afterInterrupt = await keys(client, dst);
    for (const k of stale) assert.ok(afterInterrupt.includes(k), `${k} survived the interrupt`);
    assert.ok(afterInterrupt.length - stale.length < n, "the run did stop early");

    const again = await runCli(args, { endpoint: false });
    assert.equal(again.code, 0, show(again));
    assert.deepEqual(await keys(client, dst), [...srcKeys].sort(compareKeys), "the target equals the source");
    const srcList = await listAll(client, src);
    const dstList = await listAll(client, dst);
    assert.deepEqual(
      dstList.map((o) => `${o.key} ${o.size} ${o.etag}`),
      srcList.map((o) => `${o.key} ${o.size} ${o.etag}`),
    );
  });

  test("a second Ctrl-C quits at once, without waiting for requests in flight, and deletes nothing", async () => {
    const srcKeys = Array.from({ length: 100 }, (_, i) => `o/${String(i).padStart(3, "0")}`);
    const src = await seeded(
      "int2-s",
      srcKeys.map((k) => [k, k]),
    );
    const dst = await seeded("int2-d", [["stale", "x"]]);
    const p = await proxy({ latencyMs: (req) => (req.operation === "CopyObject" ? 8000 : 0) }); // every copy takes 8 s
    const { child, out, exited } = startCli([
      "sync",
      `s3://${src}`,
      `s3://${dst}`,
      "--delete",
      "--endpoint-url",
      p.url,
    ]);
    await until(() => p.count("CopyObject") >= 10 || child.exitCode !== null);
    child.kill("SIGINT");
    await until(() => /SIGINT|interrupt/i.test(out.stderr) || child.exitCode !== null, 5000);
    const second = Date.now();
    child.kill("SIGINT");
    const { code, at } = await exited;
    const r = { code: code ?? -1, ...out };
    assert.equal(code, 130, show(r));
    assert.ok(at - second < 4000, `quit ${at - second} ms after the second Ctrl-C; copies take 8 s`);
    assert.equal(p.count("DeleteObjects"), 0);
    assert.ok((await keys(client, dst)).includes("stale"));
  });
});
