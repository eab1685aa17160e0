/**
 * Issue 19, "fits aws-cli and rclone habits": endpoints from the environment and profiles,
 * flags that do nothing, messages that name what failed, --json to the end, Content-Type on
 * REPLACE, named jobs. Against the real radosgw; outcomes read from the server.
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { GetObjectAclCommand } from "@aws-sdk/client-s3";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getText, head, keys, put, runCli, s3Client, s3TestEnv, testBuckets } from "../helpers/s3.js";

const client = s3Client("a");
const { bucket, removeAll: removeBuckets } = testBuckets(client);
const work = mkdtempSync(join(tmpdir(), "bs-habits-"));
after(async () => {
  await removeBuckets();
  rmSync(work, { recursive: true, force: true });
  client.destroy();
});
const lines = (text: string) => text.split("\n").filter((l) => l.trim() !== "");
const show = (r: { code: number; stdout: string; stderr: string }) =>
  `exit ${r.code}\n${r.stderr}\n${r.stdout.slice(-1500)}`;

describe("endpoints from the environment and profiles", () => {
  test("AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_S3 and a profile's endpoint_url are used; --endpoint-url wins", async () => {
    const src = await bucket("env-s");
    const dst = await bucket("env-d");
    await put(client, src, "a.txt", "a");
    const endpoint = s3TestEnv().endpoint;
    const viaEnv = await runCli(["sync", `s3://${src}`, `s3://${dst}`], {
      endpoint: false,
      env: { AWS_ENDPOINT_URL: endpoint },
    });
    assert.equal(viaEnv.code, 0, show(viaEnv));
    assert.deepEqual(await keys(client, dst), ["a.txt"]);
    const s3Specific = await runCli(["check", `s3://${src}`, `s3://${dst}`], {
      endpoint: false,
      env: { AWS_ENDPOINT_URL: "http://127.0.0.1:9", AWS_ENDPOINT_URL_S3: endpoint },
    });
    assert.equal(s3Specific.code, 0, show(s3Specific));
    const flagWins = await runCli(["check", `s3://${src}`, `s3://${dst}`, "--endpoint-url", endpoint], {
      endpoint: false,
      env: { AWS_ENDPOINT_URL: "http://127.0.0.1:9" },
    });
    assert.equal(flagWins.code, 0, show(flagWins));

    const env = s3TestEnv();
    const config = join(work, "config");
    const credentials = join(work, "credentials");
    writeFileSync(config, `[profile rgw]\nregion = us-east-1\nendpoint_url = ${endpoint}\n`);
    writeFileSync(
      credentials,
      `[rgw]\naws_access_key_id = ${env.a.accessKeyId}\naws_secret_access_key = ${env.a.secretAccessKey}\n`,
    );
    const viaProfile = await runCli(["check", `s3://${src}`, `s3://${dst}`, "--profile", "rgw"], {
      endpoint: false,
      env: {
        AWS_CONFIG_FILE: config,
        AWS_SHARED_CREDENTIALS_FILE: credentials,
        AWS_ACCESS_KEY_ID: "",
        AWS_SECRET_ACCESS_KEY: "",
      },
    });
    assert.equal(viaProfile.code, 0, show(viaProfile));
    const noProfile = await runCli(["check", `s3://${src}`, `s3://${dst}`, "--profile", "nosuch"], {
      endpoint: false,
      env: { AWS_CONFIG_FILE: config, AWS_SHARED_CREDENTIALS_FILE: credentials },
    });
    assert.equal(noProfile.code, 2);
    assert.deepEqual(lines(noProfile.stderr), [
      "bucketsync: the profile 'nosuch' was not found in the AWS config or credentials file",
    ]);
  });
});

describe("flags and messages", () => {
  test("bare bucketsync prints the help and exits 2; contradictions exit 2; flags without effect warn", async () => {
    const bare = await runCli([], { endpoint: false });
    assert.equal(bare.code, 2);
    assert.match(bare.stderr, /Usage: bucketsync/);
    assert.match(bare.stderr, /Exit codes: 0 success.*\n.*3 completed with warnings/);
    const qv = await runCli(["sync", "s3://aaa-bucket", "s3://bbb-bucket", "-q", "-v"]);
    assert.equal(qv.code, 2);
    assert.match(qv.stderr, /-q and -v cannot be used together/);
    const src = await bucket("fl-s");
    const dst = await bucket("fl-d");
    await put(client, src, "a.txt", "a");
    const r = await runCli([
      "sync",
      `s3://${src}`,
      `s3://${dst}`,
      "--force",
      "--max-delete",
      "3",
      "--shards",
      "4",
      "--auto-part-size",
    ]);
    assert.equal(r.code, 0, show(r));
    for (const flag of ["--force", "--max-delete", "--shards", "--auto-part-size"]) {
      assert.match(r.stderr, new RegExp(`^warning: ${flag} has no effect without`, "m"), flag);
    }
    const meta = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--match-metadata", "foo"]);
    assert.equal(meta.code, 2);
    assert.match(meta.stderr, /invalid --match-metadata 'foo'/);
  });

  test("bucket names are checked with the rule; a missing bucket is named with its endpoint; --config on a folder is one line", async () => {
    for (const [name, rule] of [
      ["My-Bucket", /lowercase/],
      ["my_bucket", /lowercase letters, digits, dots and hyphens/],
      ["192.168.1.1", /IP address/],
      ["ab", /3 to 63/],
    ] as const) {
      const r = await runCli(["sync", `s3://${name}`, "s3://fine-bucket"]);
      assert.equal(r.code, 2, name);
      assert.match(r.stderr, /invalid bucket name/);
      assert.match(r.stderr, rule, name);
    }
    const dst = await bucket("nsb");
    const missing = await runCli(["sync", "s3://bs-no-such-bucket-19", `s3://${dst}`]);
    assert.equal(missing.code, 2);
    assert.ok(
      missing.stderr.includes(`bucket 'bs-no-such-bucket-19' does not exist at ${s3TestEnv().endpoint}`),
      missing.stderr,
    );
    const folder = await runCli(["sync", "s3://aaa-bucket", "s3://bbb-bucket", "--config", work]);
    assert.equal(folder.code, 2);
    assert.equal(lines(folder.stderr).length, 1, folder.stderr);
    assert.match(folder.stderr, /is a folder/);
  });

  test("--json: a fatal error is a JSON error event followed by the summary on stdout", async () => {
    const dst = await bucket("jf");
    const r = await runCli(["sync", "s3://bs-no-such-bucket-19", `s3://${dst}`, "--json"]);
    assert.equal(r.code, 2);
    const events = lines(r.stdout).map((l) => JSON.parse(l) as { type: string; fatal?: boolean; code?: string });
    assert.equal(events.at(-2)?.type, "error");
    assert.equal(events.at(-2)?.code, "NoSuchBucket");
    assert.equal(events.at(-1)?.type, "summary");
  });
});

describe("Content-Type on REPLACE", () => {
  test("--cache-control alone keeps Content-Type guessed from the extension; --no-guess-mime-type does not guess", async () => {
    const src = await bucket("ct-s");
    const dst = await bucket("ct-d");
    await put(client, src, "img/photo.png", "png", { ContentType: "image/png" });
    await put(client, src, "page.html", "<p>", { ContentType: "text/html" });
    const r = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--cache-control", "max-age=60"]);
    assert.equal(r.code, 0, show(r));
    const png = await head(client, dst, "img/photo.png");
    assert.equal(png.ContentType, "image/png");
    assert.equal(png.CacheControl, "max-age=60");
    assert.equal((await head(client, dst, "page.html")).ContentType, "text/html");
    const dst2 = await bucket("ct-d2");
    const off = await runCli([
      "sync",
      `s3://${src}`,
      `s3://${dst2}`,
      "--cache-control",
      "max-age=60",
      "--no-guess-mime-type",
    ]);
    assert.equal(off.code, 0, show(off));
    assert.notEqual((await head(client, dst2, "img/photo.png")).ContentType, "image/png");
  });
});

describe("named jobs", () => {
  test("from: production names the remote of the same file; --no-delete turns the job's delete off", async () => {
    const src = await bucket("job-s");
    const dst = await bucket("job-d");
    await put(client, src, "a.txt", "a");
    await put(client, dst, "extra.txt", "x");
    const config = join(work, "bucketsync.yaml");
    writeFileSync(
      config,
      `remotes:\n  production: { url: "s3://${src}", endpoint: "${s3TestEnv().endpoint}" }\n  staging: { url: "s3://${dst}", endpoint: "${s3TestEnv().endpoint}" }\njobs:\n  p2s: { from: production, to: staging, delete: true }\n`,
    );
    const kept = await runCli(["run", "p2s", "--config", config, "--no-delete"], { endpoint: false });
    assert.equal(kept.code, 0, show(kept));
    assert.deepEqual(await keys(client, dst), ["a.txt", "extra.txt"]);
    const synced = await runCli(["run", "p2s", "--config", config], { endpoint: false });
    assert.equal(synced.code, 0, show(synced));
    assert.deepEqual(await keys(client, dst), ["a.txt"]);
  });
});

describe("modification times survive a round trip", () => {
  test("folder -> bucket -> folder: 100 files with 2025 mtimes; the second pass downloads nothing and the mtimes are restored", async () => {
    const { mkdirSync, statSync, utimesSync } = await import("node:fs");
    const b = await bucket("mt");
    const from = join(work, "mt-from");
    const to = join(work, "mt-to");
    mkdirSync(join(from, "sub"), { recursive: true });
    const base = Date.parse("2025-03-01T10:00:00Z");
    for (let i = 0; i < 100; i++) {
      const file = join(from, i % 2 ? "sub" : "", `f${i}.txt`);
      writeFileSync(file, `file ${i}`);
      utimesSync(file, new Date(base + i * 60_000), new Date(base + i * 60_000));
    }
    const up = await runCli(["sync", from, `s3://${b}`]);
    assert.equal(up.code, 0, show(up));
    assert.equal(
      (await head(client, b, "f0.txt")).Metadata?.mtime,
      `${base / 1000}.000000000`,
      "rclone's mtime format",
    );
    const down = await runCli(["sync", `s3://${b}`, to]);
    assert.equal(down.code, 0, show(down));
    for (const i of [0, 1, 57, 99]) {
      const rel = join(i % 2 ? "sub" : "", `f${i}.txt`);
      assert.equal(statSync(join(to, rel)).mtimeMs, base + i * 60_000, rel);
    }
    type Summary = { copied: number; updated: number; skipped: number; requests: { HEAD: number; GET: number } };
    const pass = async (into: string) => {
      const r = await runCli(["sync", `s3://${b}`, into, "--json"]);
      assert.equal(r.code, 0, show(r));
      const summary = JSON.parse(lines(r.stdout).at(-1)!) as Summary;
      return [summary.copied, summary.updated, summary.skipped, summary.requests.HEAD, summary.requests.GET];
    };
    // The files a download wrote carry its mark (their access time is the object's LastModified):
    // the re-download compares from the listings alone.
    assert.deepEqual(await pass(to), [0, 0, 100, 0, 0], "nothing downloaded again, no HEAD");
    // Files whose mark is gone (read since, or never downloaded: the original folder) cost a HEAD
    // each for the original time, and are still not downloaded.
    for (const i of [3, 4, 5]) {
      const file = join(to, i % 2 ? "sub" : "", `f${i}.txt`);
      utimesSync(file, new Date(), statSync(file).mtime);
    }
    assert.deepEqual(await pass(to), [0, 0, 100, 3, 0], "three HEADs for the three unmarked files");
    assert.deepEqual(await pass(from), [0, 0, 100, 100, 0], "into the original folder: a HEAD each, no download");
    const reupload = await runCli(["sync", from, `s3://${b}`, "--json"]);
    assert.equal((JSON.parse(lines(reupload.stdout).at(-1)!) as { skipped: number }).skipped, 100);
    // An object rclone uploaded (its mtime metadata) downloads with that time too.
    await put(client, b, "rclone.txt", "r", { Metadata: { mtime: "1735689600.5" } });
    assert.equal((await runCli(["sync", `s3://${b}`, to])).code, 0);
    assert.equal(statSync(join(to, "rclone.txt")).mtimeMs, 1735689600500);
  });

  test("downloads of many objects print nothing on stderr (no MaxListenersExceededWarning)", async () => {
    const b = await bucket("ml");
    for (let i = 0; i < 40; i++) await put(client, b, `k${i}`, `v${i}`);
    for (const extra of [[], ["-q"], ["--json"]]) {
      const r = await runCli(["sync", `s3://${b}`, join(work, `ml${extra.join("")}`), ...extra]);
      assert.equal(r.code, 0, show(r));
      assert.equal(r.stderr, "", `stderr with ${extra.join(" ") || "defaults"}`);
    }
  });
});

describe("ls and rm", () => {
  test("ls lists keys relative to the prefix, with filters, --long and --json", async () => {
    const b = await bucket("ls");
    await put(client, b, "logs/a.txt", "aa");
    await put(client, b, "logs/b.gz", "bbb");
    await put(client, b, "other/c.txt", "c");
    const r = await runCli(["ls", `s3://${b}/logs`]);
    assert.equal(r.code, 0, show(r));
    assert.deepEqual(
      lines(r.stdout).map((l) => l.trim().split(/\s+/)),
      [
        ["2", "a.txt"],
        ["3", "b.gz"],
      ],
    );
    assert.match(r.stderr, /^2 object\(s\), 5 B$/m);
    const filtered = await runCli(["ls", `s3://${b}`, "--exclude", "*", "--include", "*.txt", "--json"]);
    const events = lines(filtered.stdout).map((l) => JSON.parse(l) as { type: string; key?: string; objects?: number });
    assert.deepEqual(
      events.filter((e) => e.type === "object").map((e) => e.key),
      ["logs/a.txt", "other/c.txt"],
    );
    assert.equal(events.at(-1)?.objects, 2);
    assert.match(
      (await runCli(["ls", `s3://${b}/logs`, "-l"])).stdout,
      /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +2 [0-9a-f]{32} +a\.txt$/m,
    );
  });

  test("rm deletes one object; a prefix needs --recursive; --dry-run deletes nothing; filters narrow it", async () => {
    const b = await bucket("rm");
    for (const k of ["keep.txt", "dir/a.txt", "dir/b.log", "dir/sub/c.txt"]) await put(client, b, k, k);
    const one = await runCli(["rm", `s3://${b}/keep.txt`]);
    assert.equal(one.code, 0, show(one));
    assert.match(one.stdout, new RegExp(`^delete: s3://${b}/keep\\.txt$`, "m"));
    const prefix = await runCli(["rm", `s3://${b}/dir/`]);
    assert.equal(prefix.code, 2);
    assert.match(prefix.stderr, /names a prefix, not an object; add --recursive/);
    const missing = await runCli(["rm", `s3://${b}/nope.txt`]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no such object/);
    const dry = await runCli(["rm", `s3://${b}/dir`, "--recursive", "--dry-run"]);
    assert.equal(dry.code, 0, show(dry));
    assert.equal(lines(dry.stdout).filter((l) => l.startsWith("(dryrun) delete:")).length, 3);
    assert.deepEqual(await keys(client, b), ["dir/a.txt", "dir/b.log", "dir/sub/c.txt"], "a dry run deletes nothing");
    const logs = await runCli(["rm", `s3://${b}/dir`, "--recursive", "--exclude", "*", "--include", "*.log"]);
    assert.equal(logs.code, 0, show(logs));
    assert.deepEqual(await keys(client, b), ["dir/a.txt", "dir/sub/c.txt"]);
    // aws-cli habits: --dryrun, a prefix named without its slash, a bucket that does not exist.
    const dryrun = await runCli(["rm", `s3://${b}/dir`, "--recursive", "--dryrun"]);
    assert.equal(dryrun.code, 0, show(dryrun));
    assert.deepEqual(await keys(client, b), ["dir/a.txt", "dir/sub/c.txt"], "--dryrun deletes nothing");
    const noSlash = await runCli(["rm", `s3://${b}/dir`]);
    assert.equal(noSlash.code, 2, show(noSlash));
    assert.match(noSlash.stderr, /names a prefix, not an object; add --recursive/);
    const noBucket = await runCli(["rm", `s3://${b}-none/key`]);
    assert.equal(noBucket.code, 2, show(noBucket));
    assert.match(noBucket.stderr, /NoSuchBucket/);
    const ls = await runCli(["ls", `s3://${b}/dir/a.txt`]);
    assert.equal(ls.code, 0, show(ls));
    assert.deepEqual(
      lines(ls.stdout).map((l) => l.trim().split(/\s+/)),
      [["9", "a.txt"]],
      "ls of an object shows it",
    );
    const lsMissing = await runCli(["ls", join(work, "no-such-folder")]);
    assert.equal(lsMissing.code, 2, show(lsMissing));
    const all = await runCli(["rm", `s3://${b}/dir`, "--recursive"]);
    assert.equal(all.code, 0, show(all));
    assert.deepEqual(await keys(client, b), []);
  });
});

describe("unreadable files and folders", () => {
  test("an unreadable file says 'cannot read', an unreadable folder stops the listing in one undoubled line", async () => {
    const b = await bucket("perm");
    // Root reads every file: run the CLI as nobody then, so permissions bite as they do for users.
    const uid = process.getuid?.() === 0 ? 65534 : undefined;
    const dir = mkdtempSync(join(work, "perm-"));
    chmodSync(work, 0o755);
    chmodSync(dir, 0o777);
    writeFileSync(join(dir, "ok.txt"), "ok");
    writeFileSync(join(dir, "secret.txt"), "no");
    chmodSync(join(dir, "ok.txt"), 0o644);
    chmodSync(join(dir, "secret.txt"), 0o000);
    const file = await runCli(["sync", dir, `s3://${b}`], { uid });
    assert.equal(file.code, 1, show(file));
    assert.match(file.stderr, /^error: copy secret\.txt: EACCES: cannot read "secret\.txt": permission denied$/m);
    assert.doesNotMatch(file.stderr, /to write/);
    assert.deepEqual(await keys(client, b), ["ok.txt"]);
    mkdirSync(join(dir, "sub"));
    writeFileSync(join(dir, "sub", "x.txt"), "x");
    chmodSync(join(dir, "sub"), 0o000);
    const folder = await runCli(["sync", dir, `s3://${b}`, "--delete", "--exclude", "secret.txt"], { uid });
    assert.equal(folder.code, 2, show(folder));
    const line = lines(folder.stderr).find((l) => l.includes("sub/"));
    assert.equal(
      line,
      `bucketsync: error: source listing: EACCES: cannot read the folder "sub/": permission denied; nothing changed`,
    );
    chmodSync(join(dir, "sub"), 0o755);
  });
});

describe("cp", () => {
  test("cp copies one object under a new name, into a prefix, to and from files; never onto itself; --recursive never deletes", async () => {
    const a = await bucket("cp-a");
    const b = await bucket("cp-b");
    await put(client, a, "docs/report.csv", "one,two\n");
    await put(client, b, "extra.txt", "stays");
    const renamed = await runCli([
      "cp",
      `s3://${a}/docs/report.csv`,
      `s3://${b}/archive/2026.csv`,
      "--acl",
      "public-read",
    ]);
    assert.equal(renamed.code, 0, show(renamed));
    assert.match(
      renamed.stdout,
      new RegExp(`^copy: s3://${a}/docs/report\\.csv to s3://${b}/archive/2026\\.csv$`, "m"),
    );
    assert.equal(await getText(client, b, "archive/2026.csv"), "one,two\n");
    const grants = await client.send(new GetObjectAclCommand({ Bucket: b, Key: "archive/2026.csv" }));
    assert.ok(
      grants.Grants?.some((g) => g.Grantee?.URI?.endsWith("/global/AllUsers") && g.Permission === "READ"),
      "the copy carries --acl public-read",
    );
    // A trailing slash or a bare bucket keeps the name; a rename within one folder is not an overlap.
    assert.equal((await runCli(["cp", `s3://${a}/docs/report.csv`, `s3://${b}/in/`])).code, 0);
    assert.equal((await runCli(["cp", `s3://${a}/docs/report.csv`, `s3://${a}/docs/copy.csv`])).code, 0);
    const self = await runCli(["cp", `s3://${a}/docs/report.csv`, `s3://${a}/docs/report.csv`]);
    assert.equal(self.code, 2, show(self));
    assert.match(self.stderr, /same object/);
    const prefix = await runCli(["cp", `s3://${a}/docs/`, `s3://${b}/`]);
    assert.equal(prefix.code, 2);
    assert.match(prefix.stderr, /names a prefix, not an object; add --recursive/);
    const missing = await runCli(["cp", `s3://${a}/docs/nope.csv`, `s3://${b}/`]);
    assert.equal(missing.code, 2, show(missing));
    assert.equal(lines(missing.stderr).join("\n"), `bucketsync: no such object: s3://${a}/docs/nope.csv`);
    // Files: download to a name and into a folder, upload from a file.
    const dir = mkdtempSync(join(work, "cp-"));
    assert.equal((await runCli(["cp", `s3://${b}/archive/2026.csv`, join(dir, "local.csv")])).code, 0);
    assert.equal(readFileSync(join(dir, "local.csv"), "utf8"), "one,two\n");
    assert.equal((await runCli(["cp", `s3://${b}/archive/2026.csv`, dir])).code, 0);
    assert.equal(readFileSync(join(dir, "2026.csv"), "utf8"), "one,two\n");
    writeFileSync(join(dir, "page.html"), "<p>hi</p>");
    const up = await runCli(["cp", join(dir, "page.html"), `s3://${b}/site/index.html`]);
    assert.equal(up.code, 0, show(up));
    assert.equal((await head(client, b, "site/index.html")).ContentType, "text/html");
    assert.equal((await runCli(["cp", dir, `s3://${b}/`])).code, 2, "a folder needs --recursive");
    // --recursive copies what is new or changed and deletes nothing.
    const rec = await runCli(["cp", `s3://${a}/docs`, `s3://${b}`, "--recursive"]);
    assert.equal(rec.code, 0, show(rec));
    assert.deepEqual(await keys(client, b), [
      "archive/2026.csv",
      "copy.csv",
      "extra.txt",
      "in/report.csv",
      "report.csv",
      "site/index.html",
    ]);
  });
});

describe("TLS on a plain-HTTP port", () => {
  test("an https:// URL on the HTTP endpoint says so in one line, not OpenSSL's record text", async () => {
    const https = s3TestEnv().endpoint.replace(/^http:/, "https:");
    const r = await runCli(["sync", "s3://aaa-bucket", "s3://bbb-bucket", "--endpoint-url", https], {
      endpoint: false,
    });
    assert.equal(r.code, 2, show(r));
    assert.equal(lines(r.stderr).length, 1, r.stderr);
    assert.match(r.stderr, /TLS failed with the endpoint https:\/\/.*: is it a plain http:\/\/ endpoint/);
    assert.doesNotMatch(r.stderr, /ssl3_get_record|openssl/i);
  });
});
