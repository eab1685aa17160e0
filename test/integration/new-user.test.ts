/**
 * Issue 13, "Wrong results and lost data found when tried as a new user would": each case as a
 * user met it, against the real radosgw, with the outcome read from the server directly (never
 * through the tool's own output alone).
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Upload } from "@aws-sdk/lib-storage";
import {
  CLI,
  getText,
  keys,
  listAll,
  put,
  putMany,
  removeBucket,
  runCli,
  s3Client,
  s3TestEnv,
  userEnv,
  testBuckets,
} from "../helpers/s3.js";
import { startOutageProxy, type OutageProxy } from "../helpers/outage-proxy.js";

const client = s3Client("a");
const { bucket, removeAll: removeBuckets } = testBuckets(client);
const dirs: string[] = [];
const proxies: OutageProxy[] = [];
function tempDir(label: string): string {
  const d = mkdtempSync(join(tmpdir(), `bs-${label}-`));
  dirs.push(d);
  return d;
}
after(async () => {
  for (const p of proxies) await p.close();
  await removeBuckets();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  client.destroy();
});

const endpoint = () => s3TestEnv().endpoint;
const port = () => Number(new URL(endpoint()).port);
const summaryOf = (stdout: string) => JSON.parse(stdout.trim().split("\n").pop()!) as Record<string, number>;
const md5 = (b: Buffer | string) => createHash("md5").update(b).digest("hex");
const show = (r: { code: number; stdout: string; stderr: string }) =>
  `exit ${r.code}\n--- stderr\n${r.stderr.slice(0, 3000)}\n--- stdout\n${r.stdout.slice(-2000)}`;
const nonEmptyLines = (text: string) => text.split("\n").filter((l) => l.trim() !== "");

describe("1. the overlap guard compares what endpoints name, not how they are spelled", () => {
  const spellings = (e: string) => {
    const u = new URL(e);
    return [
      [e, `${e}/`],
      [e.replace("http://", "HTTP://"), e],
      [e, `http://localhost:${u.port}`],
      [`http://localhost:${u.port}/`, `HTTP://127.0.0.1:${u.port}`],
    ];
  };
  test("a source inside the target (site/current -> site) with --delete is refused for every spelling of one endpoint: nothing deleted", async () => {
    const b = await bucket("ovl");
    const all = Array.from({ length: 20 }, (_, i) => `site/current/f${i}.txt`);
    await putMany(client, b, [...all.map((k) => [k, k] as [string, string]), ["site/old.txt", "old"]]);
    for (const [se, te] of spellings(endpoint())) {
      const r = await runCli(
        [
          "sync",
          `s3://${b}/site/current`,
          `s3://${b}/site`,
          "--delete",
          "--source-endpoint-url",
          se!,
          "--target-endpoint-url",
          te!,
        ],
        {
          endpoint: false,
        },
      );
      assert.equal(r.code, 2, `${se} vs ${te}: ${show(r)}`);
      assert.match(r.stderr, /overlap/);
      assert.equal(nonEmptyLines(r.stderr).length, 1, r.stderr);
    }
    assert.deepEqual((await keys(client, b)).sort(), [...all, "site/old.txt"].sort(), "every object is still there");
  });

  test("a target inside the source (x -> x/y) is refused: the bucket does not grow", async () => {
    const b = await bucket("ovl2");
    await putMany(client, b, [
      ["x/a.txt", "a"],
      ["x/b.txt", "b"],
    ]);
    const r = await runCli(
      [
        "sync",
        `s3://${b}/x`,
        `s3://${b}/x/y`,
        "--source-endpoint-url",
        endpoint().replace("http://", "HTTP://"),
        "--target-endpoint-url",
        endpoint(),
      ],
      {
        endpoint: false,
      },
    );
    assert.equal(r.code, 2, show(r));
    assert.deepEqual((await keys(client, b)).sort(), ["x/a.txt", "x/b.txt"]);
  });

  test("sibling prefixes on one endpoint spelled two ways still sync (and server-side)", async () => {
    const b = await bucket("ovl3");
    await putMany(client, b, [["a/1.txt", "one"]]);
    const r = await runCli(
      [
        "sync",
        `s3://${b}/a`,
        `s3://${b}/b`,
        "--source-endpoint-url",
        `${endpoint()}/`,
        "--target-endpoint-url",
        endpoint(),
        "--json",
      ],
      {
        endpoint: false,
      },
    );
    assert.equal(r.code, 0, show(r));
    assert.equal(await getText(client, b, "b/1.txt"), "one");
    assert.doesNotMatch(r.stdout, /streaming/, "the same server copies server-side");
  });
});

describe("2. an endpoint that goes away for a few seconds in the middle of a run", () => {
  test("every connection dropped and new ones refused for 5 s mid-sync: one run, exit 0, exact copy", async () => {
    const src = await bucket("out-s");
    const dst = await bucket("out-d");
    const all = Array.from({ length: 3000 }, (_, i) => `obj/${String(i).padStart(5, "0")}.txt`);
    await putMany(
      client,
      src,
      all.map((k) => [k, `body ${k}`]),
      64,
    );
    const p = await startOutageProxy(port());
    proxies.push(p);
    const child = spawn(
      process.execPath,
      [CLI, "sync", `s3://${src}`, `s3://${dst}`, "--endpoint-url", p.url, "--json", "--concurrency", "16"],
      {
        env: { PATH: process.env.PATH ?? "", HOME: "/nonexistent", ...userEnv("a") },
      },
    );
    let stdout = "";
    let stderr = "";
    let copies = 0;
    let outage: Promise<void> | undefined;
    child.stdout.on("data", (d: Buffer) => {
      stdout += d;
      copies = (stdout.match(/"type":"copy"/g) ?? []).length;
      if (!outage && copies >= 200) outage = p.outage(5000);
    });
    child.stderr.on("data", (d: Buffer) => (stderr += d));
    const code = await new Promise<number>((resolve) => child.on("exit", (c) => resolve(c ?? 1)));
    assert.ok(outage, `the outage happened mid-run (copies seen: ${copies})`);
    await outage;
    assert.equal(code, 0, show({ code, stdout, stderr }));
    const s = summaryOf(stdout);
    assert.equal(s.copied, 3000);
    assert.equal(s.failed, 0);
    const listed = await listAll(client, dst);
    assert.deepEqual(
      listed.map((o) => o.key),
      all,
    );
    for (const o of listed.filter((_, i) => i % 97 === 0)) assert.equal(o.etag, md5(`body ${o.key}`));
  });

  test("an endpoint that refuses connections from the start is still one line and exit 2", async () => {
    const r = await runCli(["sync", "s3://aaa-bucket", "s3://bbb-bucket", "--endpoint-url", "http://127.0.0.1:9"], {
      endpoint: false,
    });
    assert.equal(r.code, 2, show(r));
    assert.match(r.stderr, /cannot reach the endpoint http:\/\/127\.0\.0\.1:9 \(ECONNREFUSED\)/);
    assert.equal(nonEmptyLines(r.stderr).length, 1, r.stderr);
  });
});

describe("3-4. check compares content by default and never hides what it could not compare", () => {
  test("a same-size rewrite of a target object (newer than the source) is a difference without flags; --json and -v say what was compared", async () => {
    const src = await bucket("chk-s");
    const dst = await bucket("chk-d");
    await putMany(client, src, [
      ["a.txt", "alpha"],
      ["b.txt", "bravo"],
    ]);
    assert.equal((await runCli(["sync", `s3://${src}`, `s3://${dst}`])).code, 0);
    await put(client, dst, "b.txt", "BRAVO");
    const r = await runCli(["check", `s3://${src}`, `s3://${dst}`]);
    assert.equal(r.code, 1, show(r));
    assert.match(r.stdout, /^differs: b\.txt \(checksum differs\)$/m);
    assert.match(r.stdout, /^1 difference\(s\) in 2 objects compared$/m);

    const j = await runCli(["check", `s3://${src}`, `s3://${dst}`, "--json"]);
    const summary = summaryOf(j.stdout) as unknown as { inSync: boolean; differences: number; undecidable: number };
    assert.deepEqual([summary.inSync, summary.differences, summary.undecidable], [false, 1, 0]);

    const v = await runCli(["check", `s3://${src}`, `s3://${dst}`, "-v"]);
    assert.match(v.stdout, /^same: a\.txt \(same checksum; compared ETag/m);
    assert.match(v.stdout, /^differs: b\.txt \(checksum differs; compared ETag/m);

    // --size-only is still there for a cheap look.
    assert.equal((await runCli(["check", `s3://${src}`, `s3://${dst}`, "--size-only"])).code, 0);
  });

  test("against a local folder, a multipart download corrupted in 10 bytes (same size and mtime) is reported as undecidable in text, --json and --report", async () => {
    const b = await bucket("chk-mp");
    const data = randomBytes(12 * 1024 * 1024);
    await new Upload({ client, params: { Bucket: b, Key: "big.bin", Body: data }, partSize: 5 * 1024 * 1024 }).done();
    await putMany(client, b, [
      ["one.txt", "one"],
      ["two.txt", "two"],
    ]);
    const dir = tempDir("chk-mp");
    const down = await runCli(["sync", `s3://${b}`, dir]);
    assert.equal(down.code, 0, show(down));
    const file = join(dir, "big.bin");
    const { mtime } = statSync(file);
    const corrupted = readFileSync(file);
    for (let i = 0; i < 10; i++) corrupted[6 * 1024 * 1024 + i] ^= 0xff;
    writeFileSync(file, corrupted);
    utimesSync(file, mtime, mtime);

    const report = join(dir, "..", `${b}-evidence.jsonl`);
    const r = await runCli(["check", `s3://${b}`, dir, "--checksum", "--auto-part-size", "--report", report]);
    dirs.push(report);
    assert.match(r.stdout, /3 objects compared; 1 undecidable/, show(r));
    const j = await runCli(["check", `s3://${b}`, dir, "--checksum", "--auto-part-size", "--json"]);
    assert.equal((summaryOf(j.stdout) as unknown as { undecidable: number }).undecidable, 1, j.stdout);
    const evidence = readFileSync(report, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { key: string; compared: string });
    assert.match(evidence.find((e) => e.key === "big.bin")!.compared, /cannot decide/);
    const v = await runCli(["check", `s3://${b}`, dir, "--checksum", "--auto-part-size", "-v"]);
    assert.match(v.stdout, /^same: big\.bin \(checksum undecidable.*compared size and time/m, show(v));
  });
});

describe("5-6. unverifiable copies and --verify strict", () => {
  test("a multipart copy of a single-part source is a complete run: exit 0 with the count and reason; --fail-on-warnings makes it exit 3", async () => {
    const src = await bucket("uv-s");
    const dst = await bucket("uv-d");
    await put(client, src, "big.bin", randomBytes(10 * 1024 * 1024));
    const r = await runCli([
      "sync",
      `s3://${src}`,
      `s3://${dst}`,
      "--multipart-threshold",
      "8MiB",
      "--part-size",
      "5MiB",
    ]);
    assert.equal(r.code, 0, show(r));
    assert.match(
      r.stderr,
      /^warning: 1 copied object\(s\) could not be verified \(multipart copy in 2 parts of a source with MD5 ETag\)/m,
    );
    assert.match(r.stdout, /unverifiable 1/);
    await removeBucket(client, dst).catch(() => undefined);
    const dst2 = await bucket("uv-d2");
    const strictExit = await runCli([
      "sync",
      `s3://${src}`,
      `s3://${dst2}`,
      "--multipart-threshold",
      "8MiB",
      "--part-size",
      "5MiB",
      "--fail-on-warnings",
    ]);
    assert.equal(strictExit.code, 3, show(strictExit));
  });

  test("--verify strict: a copy that fails verification does not look in sync to the next run", async () => {
    const src = await bucket("st-s");
    const dst = await bucket("st-d");
    await put(client, src, "big.bin", randomBytes(10 * 1024 * 1024));
    await put(client, src, "small.txt", "small");
    const args = [
      "sync",
      `s3://${src}`,
      `s3://${dst}`,
      "--multipart-threshold",
      "8MiB",
      "--part-size",
      "5MiB",
      "--verify",
      "strict",
      "--json",
    ];
    const first = await runCli(args);
    assert.equal(first.code, 1, show(first));
    assert.match(first.stdout, /"code":"Unverifiable".*removed/);
    assert.deepEqual(await keys(client, dst), ["small.txt"], "the unproven copy is not left in the target");
    const second = await runCli(args);
    assert.equal(second.code, 1, `the next run tries again and fails again: ${show(second)}`);
    const s = summaryOf(second.stdout);
    assert.equal(s.skipped, 1, "only small.txt is in sync");
    const check = await runCli(["check", `s3://${src}`, `s3://${dst}`]);
    assert.equal(check.code, 1, show(check));
    assert.match(check.stdout, /^missing in target: big\.bin$/m);
  });
});

describe("12. a failed run into a new local folder creates nothing", () => {
  test("sync s3://no-such-bucket ./newdir/deep/er exits 2 and newdir does not exist", async () => {
    const base = tempDir("nd");
    const target = join(base, "newdir", "deep", "er");
    const r = await runCli(["sync", "s3://bs-no-such-bucket-13", target]);
    assert.equal(r.code, 2, show(r));
    assert.equal(existsSync(join(base, "newdir")), false);
    // A successful run of an empty prefix still creates the folder.
    const b = await bucket("nd");
    const ok = await runCli(["sync", `s3://${b}`, target]);
    assert.equal(ok.code, 0, show(ok));
    assert.equal(statSync(target).isDirectory(), true);
  });
});

describe("13. acl apply --include alone would expose everything", () => {
  test("--include '*.png' without an --exclude is refused with the right form; the documented form changes only .png", async () => {
    const b = await bucket("acl");
    await putMany(client, b, [
      ["img/a.png", "png"],
      ["img/b.gif", "gif"],
    ]);
    const refused = await runCli(["acl", "apply", `s3://${b}/img`, "--acl", "public-read", "--include", "*.png"]);
    assert.equal(refused.code, 2, show(refused));
    assert.match(refused.stderr, /--exclude "\*" --include "\*\.png"/);
    assert.equal(nonEmptyLines(refused.stderr).length, 1);
    const anonymous = async (key: string) => (await fetch(`${endpoint()}/${b}/${key}`)).status;
    assert.equal(await anonymous("img/b.gif"), 403);
    const ok = await runCli([
      "acl",
      "apply",
      `s3://${b}/img`,
      "--acl",
      "public-read",
      "--exclude",
      "*",
      "--include",
      "*.png",
    ]);
    assert.equal(ok.code, 0, show(ok));
    assert.equal(await anonymous("img/a.png"), 200);
    assert.equal(await anonymous("img/b.gif"), 403, "the .gif stays private");
  });
});

describe("14. a write option the server refuses", () => {
  test("--storage-class FAST: one line naming the flag, exit 2, nothing written", async () => {
    const src = await bucket("sc-s");
    const dst = await bucket("sc-d");
    await putMany(
      client,
      src,
      Array.from({ length: 300 }, (_, i) => [`k${i}.txt`, `v${i}`] as [string, string]),
    );
    const r = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--storage-class", "FAST"]);
    assert.equal(r.code, 2, show(r));
    const lines = nonEmptyLines(r.stderr);
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /--storage-class FAST/);
    assert.deepEqual(await keys(client, dst), []);
    // Against AWS itself (no endpoint), an unknown class is refused before any request.
    const aws = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--storage-class", "FAST"], { endpoint: false });
    assert.equal(aws.code, 2);
    assert.match(aws.stderr, /^bucketsync: invalid --storage-class 'FAST'; S3 knows STANDARD/);
  });
});

describe("15. an endpoint that accepts connections and never answers", () => {
  test("fails within a minute with one line; SIGTERM ends a run at once", async () => {
    const silent = net.createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
    try {
      const started = Date.now();
      const r = await runCli(["sync", "s3://aaa-bucket", "s3://bbb-bucket", "--endpoint-url", url], {
        endpoint: false,
      });
      const took = Date.now() - started;
      assert.equal(r.code, 2, show(r));
      assert.ok(took < 60_000, `gave up after ${took} ms`);
      assert.equal(nonEmptyLines(r.stderr).length, 1, r.stderr);
      assert.match(r.stderr, /does not answer/);

      const child = spawn(
        process.execPath,
        [CLI, "sync", "s3://aaa-bucket", "s3://bbb-bucket", "--endpoint-url", url],
        {
          env: { PATH: process.env.PATH ?? "", HOME: "/nonexistent", ...userEnv("a") },
        },
      );
      await new Promise((r) => setTimeout(r, 1500));
      const signalled = Date.now();
      child.kill("SIGTERM");
      const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
      assert.ok(Date.now() - signalled < 5000, `SIGTERM took ${Date.now() - signalled} ms`);
      assert.equal(code, 130);
    } finally {
      silent.close();
    }
  });
});

describe("16. a password inside an endpoint URL is never printed", () => {
  test("flags and config file remotes: the password does not appear in any output", async () => {
    const e = new URL(endpoint());
    const withPassword = `http://user:SECRET-PW-13@${e.host}`;
    const r1 = await runCli(["sync", "s3://aaa-bucket", "s3://bbb-bucket", "--endpoint-url", withPassword], {
      endpoint: false,
    });
    assert.equal(r1.code, 2);
    assert.doesNotMatch(r1.stdout + r1.stderr, /SECRET-PW-13/);
    assert.match(r1.stderr, /\*\*\*\*@/);
    const r2 = await runCli(
      ["sync", "s3://aaa-bucket", "s3://bbb-bucket", "--endpoint-url", "http://user:SECRET-PW-13@[bad"],
      { endpoint: false },
    );
    assert.equal(r2.code, 2);
    assert.doesNotMatch(r2.stdout + r2.stderr, /SECRET-PW-13/);
    const dir = tempDir("cfg");
    const config = join(dir, "bucketsync.yaml");
    writeFileSync(config, `remotes:\n  prod: { url: "s3://aaa-bucket", endpoint: "${withPassword}" }\n`);
    const r3 = await runCli(["sync", "prod:", "s3://bbb-bucket", "--config", config], { endpoint: false });
    assert.equal(r3.code, 2);
    assert.doesNotMatch(r3.stdout + r3.stderr, /SECRET-PW-13/);
    const r4 = await runCli(["jobs", "--config", config, "--json"], { endpoint: false });
    assert.doesNotMatch(r4.stdout + r4.stderr, /SECRET-PW-13/);
  });
});

describe("9-10. bad sizes and dot segments are refused before anything runs", () => {
  test("sizes with trailing junk exit 2 quoting the user's text; S3 URLs with '..', '.' or '//' segments exit 2 saying why", async () => {
    for (const [flag, value] of [
      ["--min-size", "10x"],
      ["--min-size", "3 bananas"],
      ["--max-size", "1.5.5MB"],
      ["--part-size", "1MiB"],
      ["--multipart-threshold", "6GiB"],
      ["--concurrency", "8x"],
    ] as const) {
      const r = await runCli(["sync", "s3://aaa-bucket", "s3://bbb-bucket", flag, value]);
      assert.equal(r.code, 2, `${flag} ${value}: ${show(r)}`);
      assert.ok(r.stderr.includes(`invalid ${flag} '${value}'`), `${flag} ${value}: ${r.stderr}`);
    }
    const dir = tempDir("dots");
    for (const [src, dst] of [
      ["s3://aaa-bucket/x", "s3://bbb-bucket/../x"],
      ["s3://aaa-bucket//x", "s3://bbb-bucket"],
      ["s3://aaa-bucket/./x", dir],
    ] as const) {
      const r = await runCli(["sync", src, dst, "--delete"]);
      assert.equal(r.code, 2, `${src} ${dst}: ${show(r)}`);
      assert.match(r.stderr, /the prefix has (a '\.\.?' segment|an empty segment)/);
    }
  });
});

describe("11. the run's own files are not data", () => {
  test("sync of a folder with --report inside it never uploads the report; check's evidence file is not a difference", async () => {
    const b = await bucket("own");
    const dir = tempDir("own");
    writeFileSync(join(dir, "a.txt"), "a");
    writeFileSync(join(dir, "b.txt"), "b");
    const report = join(dir, "zz-report.jsonl");
    for (let run = 0; run < 2; run++) {
      const r = await runCli(["sync", dir, `s3://${b}`, "--report", report, "--delete"]);
      assert.equal(r.code, 0, show(r));
      assert.deepEqual(await keys(client, b), ["a.txt", "b.txt"], `run ${run + 1}`);
    }
    rmSync(report); // the sync's report is a file like any other once that run is over
    const evidence = join(dir, "evidence.jsonl");
    const c = await runCli(["check", dir, `s3://${b}`, "--report", evidence]);
    assert.equal(c.code, 0, show(c));
    assert.match(c.stdout, /^in sync: 2 objects compared$/m);
  });
});

describe("downloads into an existing empty folder", () => {
  test("--delete into a folder with an empty subfolder d while the source has d/x: exit 0, d/x arrives", async () => {
    const b = await bucket("fill");
    await putMany(client, b, [["d/x", "x"]]);
    const dir = tempDir("fill");
    const { mkdirSync } = await import("node:fs");
    mkdirSync(join(dir, "d"));
    mkdirSync(join(dir, "gone"));
    const r = await runCli(["sync", `s3://${b}`, dir, "--delete"]);
    assert.equal(r.code, 0, show(r));
    assert.equal(readFileSync(join(dir, "d", "x"), "utf8"), "x");
    assert.equal(existsSync(join(dir, "gone")), false, "an empty folder the source lacks is deleted");
  });
});
