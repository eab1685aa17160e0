/**
 * Issue 6, "A tool people enjoy": live progress on a terminal (and never in pipes or JSON),
 * quiet and verbose output, named jobs and remotes from bucketsync.yaml, config errors that name
 * file and line, the --report audit, help and shell completion, and the library API.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CLI,
  getText,
  keys,
  put,
  putMany,
  runCli,
  s3Client,
  s3TestEnv,
  userEnv,
  type CliResult,
  testBuckets,
} from "../helpers/s3.js";
import type { SyncEvent } from "../../src/index.js";

const env = s3TestEnv();
const client = s3Client("a");
const { bucket, removeAll: removeBuckets } = testBuckets(client);
const work = mkdtempSync(join(tmpdir(), "bucketsync-ux-"));
after(async () => {
  await removeBuckets();
  client.destroy();
  rmSync(work, { recursive: true, force: true });
});

const show = (r: CliResult) =>
  `exit ${r.code}\n--- stderr\n${r.stderr.slice(0, 3000)}\n--- stdout\n${r.stdout.slice(-3000)}`;
const lines = (text: string) => text.split(/\r?\n/).filter((l) => l.trim() !== "");
const md5 = (s: string) => createHash("md5").update(s).digest("hex");
const cliEnv = () => ({ PATH: process.env.PATH ?? "", HOME: "/nonexistent", ...userEnv("a") });

/** What only the live progress display prints: its counters line, and terminal control sequences. */
const PROGRESS_TEXT = /\d+ compared \| \d+ copied \| \d+ deleted \| \d+ unchanged/;
// eslint-disable-next-line no-control-regex -- the escape character is what this looks for
const ESCAPE = /\x1b\[/;

const quote = (arg: string) => `'${arg.replace(/'/g, `'\\''`)}'`;

/**
 * Runs the CLI with stdout and stderr on a pseudo-terminal (util-linux `script`), as a user at a
 * terminal would; `shellSuffix` may redirect stdout. Returns everything the terminal showed.
 */
function runOnTty(args: string[], shellSuffix = ""): Promise<{ code: number; output: string }> {
  const command = [process.execPath, CLI, ...args, "--endpoint-url", env.endpoint].map(quote).join(" ") + shellSuffix;
  return new Promise((resolve) => {
    execFile(
      "script",
      ["-qfec", command, "/dev/null"],
      { env: { ...cliEnv(), TERM: "xterm" }, maxBuffer: 256 * 1024 * 1024 },
      (err, stdout) => {
        const code = err
          ? typeof (err as { code?: unknown }).code === "number"
            ? (err as { code: number }).code
            : 1
          : 0;
        resolve({ code, output: stdout });
      },
    );
  });
}

/** Runs the CLI in a working directory (runCli has no cwd option), with user A's credentials. */
function runIn(cwd: string, args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { cwd, env: cliEnv(), maxBuffer: 64 * 1024 * 1024 },
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

/** Every stdout line of a --json run, parsed; fails on any line that is not JSON. */
function jsonLines(text: string): Record<string, unknown>[] {
  return lines(text).map((l) => {
    try {
      return JSON.parse(l) as Record<string, unknown>;
    } catch {
      assert.fail(`not a JSON line: ${JSON.stringify(l.slice(0, 200))}`);
    }
  });
}

describe("live progress", () => {
  let src: string;
  let dst: string;
  const COUNT = 1500;
  before(async () => {
    src = await bucket("prog-s");
    dst = await bucket("prog-d");
    await putMany(
      client,
      src,
      Array.from(
        { length: COUNT },
        (_, i) => [`obj/${String(i).padStart(5, "0")}`, `small object ${i}`] as [string, string],
      ),
      48,
    );
  });

  test("on a terminal: a live progress line with counters, redrawn in place; the run still ends with the summary", async () => {
    const r = await runOnTty(["sync", `s3://${src}`, `s3://${dst}/tty`, "--concurrency", "4"]);
    assert.equal(r.code, 0, r.output.slice(-2000));
    assert.match(r.output, PROGRESS_TEXT, "the progress counters were shown");
    assert.match(r.output, /syncing \d+ compared \| \d+ copied/);
    assert.match(r.output, ESCAPE, "drawn with terminal control sequences");
    assert.match(r.output, new RegExp(`copied ${COUNT}, updated 0, deleted 0, skipped 0, failed 0`));
    assert.match(r.output, /copy: s3:\/\/.*\/obj\/00000 to /, "action lines still print (above the progress line)");
    assert.equal((await keys(client, dst, "tty/")).length, COUNT);
  });

  test("stdout redirected to a file, stderr on the terminal: progress on the terminal, a clean file", async () => {
    const file = join(work, "redirected.txt");
    const r = await runOnTty(["sync", `s3://${src}`, `s3://${dst}/redir`, "--concurrency", "4"], ` > ${quote(file)}`);
    assert.equal(r.code, 0, r.output.slice(-2000));
    assert.match(r.output, PROGRESS_TEXT, "progress goes to the terminal (stderr)");
    const saved = readFileSync(file, "utf8");
    assert.doesNotMatch(saved, PROGRESS_TEXT);
    assert.doesNotMatch(saved, ESCAPE, "no control sequences in the file");
    assert.doesNotMatch(saved, /\r/, "no carriage returns in the file");
    assert.equal(lines(saved).filter((l) => l.startsWith("copy: ")).length, COUNT);
    assert.match(saved, new RegExp(`^copied ${COUNT}, updated 0, deleted 0, skipped 0, failed 0`, "m"));
  });

  test("in pipes (no terminal): no progress, no control sequences", async () => {
    const r = await runCli(["sync", `s3://${src}`, `s3://${dst}/pipe`, "--concurrency", "4"]);
    assert.equal(r.code, 0, show(r));
    for (const text of [r.stdout, r.stderr]) {
      assert.doesNotMatch(text, PROGRESS_TEXT);
      assert.doesNotMatch(text, ESCAPE);
      assert.doesNotMatch(text, /\r/);
    }
    assert.equal(r.stderr, "");
    assert.equal(lines(r.stdout).filter((l) => l.startsWith("copy: ")).length, COUNT);
  });

  test("--no-progress on a terminal: no progress line, action lines and summary as usual", async () => {
    const r = await runOnTty(["sync", `s3://${src}`, `s3://${dst}/noprog`, "--concurrency", "4", "--no-progress"]);
    assert.equal(r.code, 0, r.output.slice(-2000));
    assert.doesNotMatch(r.output, PROGRESS_TEXT);
    assert.doesNotMatch(r.output, ESCAPE);
    assert.equal(lines(r.output).filter((l) => l.startsWith("copy: ")).length, COUNT);
    assert.match(r.output, new RegExp(`copied ${COUNT}, updated 0, deleted 0, skipped 0, failed 0`));
  });

  test("--json on a terminal: no progress, and every line is JSON", async () => {
    const r = await runOnTty(["sync", `s3://${src}`, `s3://${dst}/json`, "--concurrency", "4", "--json"]);
    assert.equal(r.code, 0, r.output.slice(-2000));
    assert.doesNotMatch(r.output, PROGRESS_TEXT);
    assert.doesNotMatch(r.output, ESCAPE);
    const events = jsonLines(r.output);
    assert.equal(events.filter((e) => e.type === "copy").length, COUNT);
    assert.equal(events.length, COUNT + 1, "the copies and the summary, nothing else");
    assert.deepEqual(events.at(-1), { ...events.at(-1), type: "summary", copied: COUNT, failed: 0 });
  });

  test("-q on a terminal: no progress, only the summary", async () => {
    const r = await runOnTty(["sync", `s3://${src}`, `s3://${dst}/quiet`, "--concurrency", "4", "-q"]);
    assert.equal(r.code, 0, r.output.slice(-2000));
    assert.doesNotMatch(r.output, PROGRESS_TEXT);
    const shown = lines(r.output);
    assert.equal(shown.length, 1, r.output.slice(-2000));
    assert.match(
      shown[0]!,
      new RegExp(`^copied ${COUNT}, updated 0, deleted 0, skipped 0, failed 0[,;].* in [\\d.]+s$`),
    );
  });
});

/**
 * A source and a target that differ in every way a sync distinguishes: a new key, one whose size
 * differs, one the source changed later (same size), one unchanged, and one only in the target.
 */
async function seedDifferences(label: string) {
  const src = await bucket(`${label}-s`);
  const dst = await bucket(`${label}-d`);
  await putMany(client, dst, [
    ["newer", "aaaa"],
    ["size", "x"],
  ]);
  await put(client, src, "same", "ssss");
  await new Promise((r) => setTimeout(r, 1100)); // S3 times have 1 s resolution
  await putMany(client, src, [
    ["newer", "bbbb"],
    ["size", "longer"],
    ["new", "n"],
  ]);
  await putMany(client, dst, [
    ["same", "ssss"],
    ["extra", "e"],
  ]);
  return { src, dst };
}

describe("quiet and verbose", () => {
  let pairs: { src: string; dst: string }[];
  before(async () => {
    pairs = await Promise.all([seedDifferences("verb"), seedDifferences("quiet"), seedDifferences("plain")]);
  });

  test("-v prints every action with its reason, skips and deletes included", async () => {
    const { src, dst } = pairs[0]!;
    const r = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--delete", "-v"]);
    assert.equal(r.code, 0, show(r));
    const out = lines(r.stdout);
    const expect = [
      new RegExp(`^copy: s3://${src}/new to s3://${dst}/new \\(new[;)]`),
      new RegExp(`^copy: s3://${src}/size to s3://${dst}/size \\(size differs[;)]`),
      new RegExp(`^copy: s3://${src}/newer to s3://${dst}/newer \\(source newer[;)]`),
      new RegExp(`^skip: s3://${dst}/same \\(same size and not newer\\)$`),
      new RegExp(`^delete: s3://${dst}/extra \\(not in source\\)$`),
      /^copied 1, updated 2, deleted 1, skipped 1, failed 0[,;]/,
    ];
    for (const re of expect) assert.equal(out.filter((l) => re.test(l)).length, 1, `${re}: ${show(r)}`);
    assert.equal(out.length, expect.length, show(r));
    // -v also says what the run has in force, on stderr, and nothing else is there.
    assert.deepEqual(
      lines(r.stderr).map((l) => l.replace(/:.*/, "")),
      ["note"],
      r.stderr,
    );
    assert.match(r.stderr, /^note: conditional writes: /m);
  });

  test("-q prints only the summary", async () => {
    const { src, dst } = pairs[1]!;
    const r = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--delete", "-q"]);
    assert.equal(r.code, 0, show(r));
    const out = lines(r.stdout);
    assert.equal(out.length, 1, show(r));
    assert.match(out[0]!, /^copied 1, updated 2, deleted 1, skipped 1, failed 0[,;].* in [\d.]+s$/);
    assert.equal(r.stderr, "");
    assert.deepEqual(await keys(client, dst), ["new", "newer", "same", "size"], "-q changes only the output");
  });

  test("by default: one line per change without reasons, no skip lines", async () => {
    const { src, dst } = pairs[2]!;
    const r = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--delete"]);
    assert.equal(r.code, 0, show(r));
    const out = lines(r.stdout);
    assert.deepEqual(
      out
        .slice(0, -1)
        .map((l) => l.replace(/ to .*$/, ""))
        .sort(),
      [`copy: s3://${src}/new`, `copy: s3://${src}/newer`, `copy: s3://${src}/size`, `delete: s3://${dst}/extra`],
    );
    assert.doesNotMatch(r.stdout, /\(new\)|skip:/);
  });
});

describe("--report", () => {
  type Rec = Record<string, unknown> & { action: string; key?: string };
  const readReport = (file: string): Rec[] => jsonLines(readFileSync(file, "utf8")) as Rec[];

  test("one JSON line per action (copy, update, delete, skip) with key, reason, size, ETag and outcome, then the summary", async () => {
    const { src, dst } = await seedDifferences("rep");
    const dryFile = join(work, "dry-report.jsonl");
    const dry = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--delete", "--dry-run", "--report", dryFile]);
    assert.equal(dry.code, 0, show(dry));
    const dryRecs = readReport(dryFile);
    assert.deepEqual(
      dryRecs
        .filter((r) => r.action !== "summary" && r.action !== "skip")
        .map((r) => [r.key, r.outcome])
        .sort(),
      [
        ["extra", "dry-run"],
        ["new", "dry-run"],
        ["newer", "dry-run"],
        ["size", "dry-run"],
      ],
    );
    assert.deepEqual(await keys(client, dst), ["extra", "newer", "same", "size"], "dry run changed nothing");

    const file = join(work, "report.jsonl");
    const r = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--delete", "--report", file]);
    assert.equal(r.code, 0, show(r));
    const recs = readReport(file);
    const byKey = (k: string) => recs.filter((x) => x.key === k);
    for (const rec of recs)
      assert.ok(typeof rec.time === "string" && !Number.isNaN(Date.parse(rec.time)), `time: ${JSON.stringify(rec)}`);

    assert.equal(recs.length, 6, JSON.stringify(recs, null, 1));
    assert.deepEqual(
      byKey("new").map(({ time: _t, ...x }) => x),
      [
        {
          key: "new",
          action: "copy",
          reason: "new",
          size: 1,
          etag: md5("n"),
          outcome: "done",
          verification: "verified: ETag (MD5) equal",
        },
      ],
    );
    assert.deepEqual(
      byKey("size").map(({ time: _t, ...x }) => x),
      [
        {
          key: "size",
          action: "update",
          reason: "size differs",
          size: 6,
          etag: md5("longer"),
          outcome: "done",
          verification: "verified: ETag (MD5) equal",
        },
      ],
    );
    assert.deepEqual(
      byKey("newer").map(({ time: _t, ...x }) => x),
      [
        {
          key: "newer",
          action: "update",
          reason: "source newer",
          size: 4,
          etag: md5("bbbb"),
          outcome: "done",
          verification: "verified: ETag (MD5) equal",
        },
      ],
    );
    assert.deepEqual(
      byKey("extra").map(({ time: _t, ...x }) => x),
      [{ key: "extra", action: "delete", reason: "not in source", size: 1, etag: md5("e"), outcome: "done" }],
    );
    const skip = byKey("same");
    assert.equal(skip.length, 1);
    assert.deepEqual(
      [skip[0]!.action, skip[0]!.reason, skip[0]!.outcome],
      ["skip", "same size and not newer", "unchanged"],
    );
    const summary = recs.filter((x) => x.action === "summary");
    assert.equal(summary.length, 1);
    assert.equal(recs.at(-1), summary[0], "the summary comes last");
    assert.deepEqual(
      [summary[0]!.copied, summary[0]!.updated, summary[0]!.deleted, summary[0]!.skipped, summary[0]!.failed],
      [1, 2, 1, 1, 0],
    );

    // What the report says happened did happen.
    assert.deepEqual(await keys(client, dst), ["new", "newer", "same", "size"]);
    assert.equal(await getText(client, dst, "size"), "longer");
    assert.equal(await getText(client, dst, "newer"), "bbbb");
  });

  test("skip records carry the object's size and ETag too", async () => {
    const src = await bucket("repskip-s");
    const dst = await bucket("repskip-d");
    await put(client, src, "k", "same bytes");
    assert.equal((await runCli(["sync", `s3://${src}`, `s3://${dst}`])).code, 0);
    const file = join(work, "skip-report.jsonl");
    const r = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--report", file]);
    assert.equal(r.code, 0, show(r));
    const skip = readReport(file).find((x) => x.action === "skip");
    assert.ok(skip, "a skip record");
    assert.equal(skip.key, "k");
    assert.equal(skip.size, "same bytes".length, `size in ${JSON.stringify(skip)}`);
    assert.equal(skip.etag, md5("same bytes"), `etag in ${JSON.stringify(skip)}`);
  });

  test("an unwritable report path is refused before anything is copied", async () => {
    const src = await bucket("repbad-s");
    const dst = await bucket("repbad-d");
    await put(client, src, "k", "v");
    const r = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--report", join(work, "no-such-dir", "r.jsonl")]);
    assert.equal(r.code, 2, show(r));
    assert.equal(lines(r.stderr).length, 1, show(r));
    assert.match(r.stderr, /--report/);
    assert.deepEqual(await keys(client, dst), []);
  });
});

describe("named jobs and remotes (bucketsync.yaml)", () => {
  let src: string;
  let dst: string;
  let dir: string;
  let configPath: string;
  const config = (s: string, d: string) => `# remotes and jobs for the tests
remotes:
  production:
    url: s3://${s}
    endpoint: ${env.endpoint}
  staging:
    url: s3://${d}
    endpoint: ${env.endpoint}
jobs:
  nightly:
    description: production to staging
    from: "production:"
    to: staging:site
    delete: true
    acl: public-read
    exclude: ["tmp/*"]
`;
  before(async () => {
    src = await bucket("job-s");
    dst = await bucket("job-d");
    dir = join(work, "project");
    mkdirSync(dir);
    configPath = join(work, "jobs.yaml");
    writeFileSync(configPath, config(src, dst));
    await putMany(client, src, [
      ["index.html", "<h1>home</h1>"],
      ["img/logo.png", "png"],
      ["tmp/scratch.txt", "scratch"],
    ]);
    await putMany(client, dst, [
      ["site/old.html", "old"],
      ["site/tmp/keep.txt", "staging's own"],
      ["elsewhere/x", "outside the job"],
    ]);
  });
  const anon = async (key: string) => {
    const res = await fetch(`${env.endpoint}/${dst}/${key}`);
    await res.arrayBuffer();
    return res.status;
  };

  test("`jobs` lists the jobs and remotes", async () => {
    const r = await runCli(["jobs", "--config", configPath], { endpoint: false });
    assert.equal(r.code, 0, show(r));
    assert.deepEqual(lines(r.stdout), [
      "nightly: production: -> staging:site --delete --acl public-read --exclude tmp/*  # production to staging",
      `remote production: s3://${src} at ${env.endpoint}`,
      `remote staging: s3://${dst} at ${env.endpoint}`,
    ]);
    const json = await runCli(["jobs", "--config", configPath, "--json"], { endpoint: false });
    assert.equal(json.code, 0, show(json));
    const parsed = JSON.parse(json.stdout);
    assert.deepEqual(Object.keys(parsed.jobs), ["nightly"]);
    assert.equal(parsed.remotes.staging.url, `s3://${dst}`);
  });

  test("`run JOB --dry-run`: the flag overrides the job, nothing changes", async () => {
    const before = await keys(client, dst);
    const r = await runCli(["run", "nightly", "--config", configPath, "--dry-run"], { endpoint: false });
    assert.equal(r.code, 0, show(r));
    assert.match(
      r.stdout,
      new RegExp(`^\\(dryrun\\) copy: s3://${src}/index\\.html to s3://${dst}/site/index\\.html$`, "m"),
    );
    assert.match(r.stdout, new RegExp(`^\\(dryrun\\) delete: s3://${dst}/site/old\\.html$`, "m"));
    assert.doesNotMatch(r.stdout, /tmp\//, "tmp/* is excluded on both sides");
    assert.deepEqual(await keys(client, dst), before);
  });

  test("`run JOB` with --config: copies, deletes, applies the job's ACL, keeps excluded keys", async () => {
    const r = await runCli(["run", "nightly", "--config", configPath], { endpoint: false });
    assert.equal(r.code, 0, show(r));
    assert.deepEqual(await keys(client, dst), [
      "elsewhere/x",
      "site/img/logo.png",
      "site/index.html",
      "site/tmp/keep.txt",
    ]);
    assert.equal(await getText(client, dst, "site/index.html"), "<h1>home</h1>");
    assert.equal(await anon("site/index.html"), 200, "acl: public-read from the job");
    assert.equal(await anon("site/img/logo.png"), 200);
    assert.equal(await anon("site/tmp/keep.txt"), 403, "excluded: untouched");
    assert.equal(await anon(""), 403, "the bucket is not listable anonymously");
  });

  test("`run JOB` finds ./bucketsync.yaml in the working directory", async () => {
    writeFileSync(join(dir, "bucketsync.yaml"), config(src, dst).replace("to: staging:site", "to: staging:fromcwd"));
    const r = await runIn(dir, ["run", "nightly"]);
    assert.equal(r.code, 0, show(r));
    assert.deepEqual(await keys(client, dst, "fromcwd/"), ["fromcwd/img/logo.png", "fromcwd/index.html"]);
    const listed = await runIn(dir, ["jobs"]);
    assert.equal(listed.code, 0, show(listed));
    assert.match(listed.stdout, /^nightly: production: -> staging:fromcwd /m);
  });

  test("`sync` takes remote:path in place of URLs", async () => {
    const r = await runCli(["sync", "production:", "staging:backup", "--config", configPath], { endpoint: false });
    assert.equal(r.code, 0, show(r));
    assert.deepEqual(await keys(client, dst, "backup/"), [
      "backup/img/logo.png",
      "backup/index.html",
      "backup/tmp/scratch.txt",
    ]);
    const sub = await runCli(["sync", "production:img", "staging:logos", "--config", configPath], { endpoint: false });
    assert.equal(sub.code, 0, show(sub));
    assert.deepEqual(await keys(client, dst, "logos/"), ["logos/logo.png"]);
  });

  test("unknown job or remote: exit 2 with one clear line", async () => {
    const before = await keys(client, dst);
    const job = await runCli(["run", "weekly", "--config", configPath], { endpoint: false });
    assert.equal(job.code, 2, show(job));
    assert.deepEqual(lines(job.stderr), ["bucketsync: unknown job 'weekly'; configured jobs: nightly"]);
    const remote = await runCli(["sync", "prod:", "staging:x", "--config", configPath], { endpoint: false });
    assert.equal(remote.code, 2, show(remote));
    assert.deepEqual(lines(remote.stderr), [
      "bucketsync: unknown remote 'prod'; configured remotes: production, staging",
    ]);
    const noConfig = await runIn(work, ["run", "nightly"]);
    assert.equal(noConfig.code, 2, show(noConfig));
    assert.equal(lines(noConfig.stderr).length, 1, show(noConfig));
    assert.match(noConfig.stderr, /unknown job 'nightly'.*bucketsync\.yaml/);
    const missing = await runCli(["jobs", "--config", join(work, "nope.yaml")], { endpoint: false });
    assert.equal(missing.code, 2, show(missing));
    assert.deepEqual(lines(missing.stderr), [`bucketsync: config file not found: ${join(work, "nope.yaml")}`]);
    assert.deepEqual(await keys(client, dst), before);
  });
});

describe("config errors name the file and line", () => {
  const cases: { name: string; text: string; line: number; message: RegExp }[] = [
    {
      name: "YAML syntax error (an unquoted remote reference ending in ':')",
      text: "remotes:\n  production:\n    url: s3://x\njobs:\n  nightly:\n    from: production:\n    to: s3://y\n",
      line: 6,
      message: /YAML/i,
    },
    {
      name: "YAML syntax error (a tab as indentation)",
      text: "jobs:\n  nightly:\n    from: s3://x\n\tto: s3://y\n",
      line: 4,
      message: /YAML/i,
    },
    {
      name: "YAML error (a duplicate key)",
      text: "jobs:\n  nightly:\n    from: s3://x\n    to: s3://y\n    delete: true\n    delete: false\n",
      line: 6,
      message: /YAML/i,
    },
    {
      name: "schema error: an invalid ACL",
      text: "jobs:\n  nightly:\n    from: s3://x\n    to: s3://y\n    delete: true\n    acl: world-readable\n",
      line: 6,
      message: /acl/,
    },
    {
      name: "schema error: a wrong type",
      text: "jobs:\n  nightly:\n    from: s3://x\n    to: s3://y\n    concurrency: lots\n",
      line: 5,
      message: /concurrency/,
    },
    {
      name: "schema error: an unknown key",
      text: "jobs:\n  nightly:\n    from: s3://x\n    to: s3://y\n    delete: true\n    exclude_from: list.txt\n",
      line: 6,
      message: /exclude_from/,
    },
  ];
  for (const c of cases) {
    test(`${c.name}: exit 2, one line naming FILE:${c.line}`, async () => {
      const file = join(work, `bad-${c.line}-${c.name.replace(/\W+/g, "-")}.yaml`);
      writeFileSync(file, c.text);
      for (const args of [
        ["jobs", "--config", file],
        ["run", "nightly", "--config", file],
      ]) {
        const r = await runCli(args, { endpoint: false });
        assert.equal(r.code, 2, show(r));
        const errLines = lines(r.stderr);
        assert.equal(errLines.length, 1, show(r));
        assert.ok(errLines[0]!.includes(`${file}:${c.line}`), `expected '${file}:${c.line}' in: ${errLines[0]}`);
        assert.match(errLines[0]!, c.message);
        assert.doesNotMatch(r.stderr, /\n\s+at /);
      }
    });
  }
});

describe("help and shell completion", () => {
  test("--help, help sync and sync --help exit 0 and show examples", async () => {
    const top = await runCli(["--help"], { endpoint: false });
    assert.equal(top.code, 0, show(top));
    assert.match(top.stdout, /Examples:/);
    assert.match(top.stdout, /^\s+sync \[options\] <src> <dst>/m);
    assert.match(top.stdout, /Exit codes:/);
    for (const args of [
      ["help", "sync"],
      ["sync", "--help"],
    ]) {
      const r = await runCli(args, { endpoint: false });
      assert.equal(r.code, 0, show(r));
      assert.match(r.stdout, /Examples:/);
      assert.match(r.stdout, /--source-profile/);
      assert.match(r.stdout, /bucketsync sync s3:\/\//);
    }
    const acl = await runCli(["help", "acl"], { endpoint: false });
    assert.equal(acl.code, 0, show(acl));
    assert.match(acl.stdout, /apply/);
  });

  test("completion bash: valid bash that completes commands and flags", async () => {
    const r = await runCli(["completion", "bash"], { endpoint: false });
    assert.equal(r.code, 0, show(r));
    const file = join(work, "bucketsync-completion.bash");
    writeFileSync(file, r.stdout);
    const bash = (script: string) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
        execFile("bash", ["-c", script], (err, stdout, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        ),
      );
    const syntax = await bash(`bash -n ${quote(file)}`);
    assert.equal(syntax.code, 0, syntax.stderr);
    const complete = async (...words: string[]) => {
      const out = await bash(
        `source ${quote(file)}; COMP_WORDS=(${words.map(quote).join(" ")}); COMP_CWORD=${words.length - 1}; COMP_LINE=${quote(words.join(" "))}; _bucketsync; printf '%s\\n' "\${COMPREPLY[@]}"`,
      );
      assert.equal(out.code, 0, out.stderr);
      return lines(out.stdout);
    };
    assert.deepEqual(await complete("bucketsync", "sy"), ["sync"]);
    const all = await complete("bucketsync", "");
    for (const command of ["sync", "run", "jobs", "check", "acl", "completion", "help"])
      assert.ok(all.includes(command), `${command} in ${all.join(" ")}`);
    assert.deepEqual(await complete("bucketsync", "sync", "--del"), ["--delete"]);
    assert.ok((await complete("bucketsync", "sync", "--source-")).includes("--source-profile"));
    assert.deepEqual(await complete("bucketsync", "acl", "apply", "s3://b", "--ac"), ["--acl"]);
    const registered = await bash(`source ${quote(file)}; complete -p bucketsync`);
    assert.match(registered.stdout, /-F _bucketsync bucketsync/);
    const zsh = await runCli(["completion", "zsh"], { endpoint: false });
    assert.equal(zsh.code, 0, show(zsh));
    assert.match(zsh.stdout, /^#compdef bucketsync/);
    const fish = await runCli(["completion", "fish"], { endpoint: false });
    assert.equal(fish.code, 2, show(fish));
    assert.match(fish.stderr, /unsupported shell 'fish'/);
  });
});

describe("library API", () => {
  test("import from the package name; sync() with connection settings reports through onEvent", async () => {
    const specifier = "bucketsync"; // resolved through package.json "exports" (self-reference)
    const lib = (await import(specifier)) as typeof import("../../src/index.js");
    assert.equal(typeof lib.sync, "function");
    const src = await bucket("lib-s");
    const dst = await bucket("lib-d");
    await putMany(client, src, [
      ["a.txt", "alpha"],
      ["dir/b.txt", "bravo!"],
      ["c.txt", "charlie"],
    ]);
    await put(client, dst, "stale.txt", "old");
    const connection = { endpointUrl: env.endpoint, credentials: env.a };

    const events: SyncEvent[] = [];
    const first = await lib.sync({
      source: `s3://${src}`,
      target: `s3://${dst}`,
      delete: true,
      connection,
      onEvent: (e) => events.push(e),
    });
    assert.equal(first.fatal, undefined);
    assert.deepEqual(
      [first.summary.copied, first.summary.updated, first.summary.deleted, first.summary.skipped, first.summary.failed],
      [3, 0, 1, 0, 0],
    );
    assert.equal(first.summary.bytes, "alpha".length + "bravo!".length + "charlie".length);
    assert.equal(first.summary.dryRun, false);
    const copies = events.filter((e): e is Extract<SyncEvent, { type: "copy" | "update" }> => e.type === "copy");
    assert.deepEqual(copies.map((e) => [e.key, e.size, e.etag, e.reason, e.dryRun]).sort(), [
      ["a.txt", 5, md5("alpha"), "new", false],
      ["c.txt", 7, md5("charlie"), "new", false],
      ["dir/b.txt", 6, md5("bravo!"), "new", false],
    ]);
    const deletes = events.filter((e) => e.type === "delete");
    assert.deepEqual(
      deletes.map((e) => [e.key, (e as { reason: string }).reason]),
      [["stale.txt", "not in source"]],
    );
    assert.equal(events.filter((e) => e.type === "error" || e.type === "warning").length, 0, JSON.stringify(events));
    assert.deepEqual(await keys(client, dst), ["a.txt", "c.txt", "dir/b.txt"]);

    const again: SyncEvent[] = [];
    const second = await lib.sync({
      source: `s3://${src}`,
      target: `s3://${dst}`,
      connection,
      onEvent: (e) => again.push(e),
    });
    assert.deepEqual([second.summary.copied, second.summary.skipped], [0, 3]);
    assert.deepEqual(
      again.map((e) => e.type),
      ["skip", "skip", "skip"],
    );

    const checked = await lib.check({ source: `s3://${src}`, target: `s3://${dst}`, connection });
    assert.deepEqual([checked.inSync, checked.compared, checked.differences], [true, 3, 0]);

    await assert.rejects(
      lib.sync({ source: `s3://${src}`, target: `s3://${dst}`, connection, acl: "world-readable" as never }),
      (err: Error) => err instanceof lib.UsageError && /--acl/.test(err.message),
    );
    const bad = await lib.sync({ source: `s3://${src}-missing`, target: `s3://${dst}`, connection });
    assert.ok(bad.fatal, "a missing source is reported, not thrown");
    assert.match(`${bad.fatal.code} ${bad.fatal.message}`, /NoSuchBucket/);
  });
});
