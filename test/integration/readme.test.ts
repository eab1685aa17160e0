/**
 * Every README example runs as written: each `bucketsync` (or `npx bucketsync`) line of the
 * README's ```sh blocks is run in README order with bash, against the local radosgw, in a scratch
 * folder holding what the examples name (the buckets, ./public, the README's own bucketsync.yaml,
 * AWS profiles `prod` and `staging` pointing at the test server). A line that cannot run here is
 * listed in NOT_HERE with the reason; any other line must exit 0 (or the code EXPECTED gives).
 * The quick start's `npm run demo` is run too (as scripts/demo.sh, the server already up).
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { CLI, REPO, keys, put, removeBucket, s3Client, s3TestEnv } from "../helpers/s3.js";

/** Lines that cannot run on one machine with the local radosgw, by pattern, with why. */
const NOT_HERE: [RegExp, string][] = [
  [/r2\.cloudflarestorage\.com/, "needs a Cloudflare R2 account"],
  [
    /--queue redis:\/\/queue\.internal/,
    "needs the Redis host of the example; distributed.test.ts runs these on the local Redis",
  ],
  [/^bucketsync worker\b/, "a worker runs until stopped; distributed.test.ts runs workers"],
  [
    /^bucketsync watch\b/,
    "a watch runs until stopped; watch.test.ts runs watches on the local radosgw with real notifications",
  ],
  [
    /--source-inventory/,
    "needs an S3 Inventory that AWS writes daily; inventory.test.ts writes one in AWS's format and syncs from it",
  ],
];

/** Examples whose documented exit code is not 0. */
const EXPECTED: [RegExp, number][] = [];

/** The buckets the examples name. */
const BUCKETS = [
  "acme-production",
  "acme-staging",
  "acme-web",
  "acme-photos",
  "acme-backup",
  "my-source",
  "my-target",
  "prod-assets",
  "staging-assets",
];

const readme = readFileSync(join(REPO, "README.md"), "utf8");
const client = s3Client("a");
const work = mkdtempSync(join(tmpdir(), "bs-readme-"));
const env = s3TestEnv();

/** The commands of every ```sh block, continuation lines joined, comments dropped. */
function shellExamples(text: string): string[] {
  const out: string[] = [];
  for (const block of text.matchAll(/```sh\n([\s\S]*?)```/g)) {
    const joined = block[1]!.replace(/\\\n\s*/g, " ");
    for (const raw of joined.split("\n")) {
      const line = raw.replace(/\s+#\s.*$/, "").trim();
      if (line === "" || line.startsWith("#")) continue;
      out.push(line);
    }
  }
  return out;
}

function bash(
  command: string,
  extraEnv: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      "bash",
      ["-c", command],
      {
        cwd: work,
        env: {
          PATH: `${join(work, "bin")}:${process.env.PATH ?? ""}`,
          HOME: work,
          AWS_ENDPOINT_URL: env.endpoint,
          AWS_ACCESS_KEY_ID: env.a.accessKeyId,
          AWS_SECRET_ACCESS_KEY: env.a.secretAccessKey,
          AWS_REGION: env.region,
          AWS_CONFIG_FILE: join(work, "aws-config"),
          AWS_SHARED_CREDENTIALS_FILE: join(work, "aws-credentials"),
          ...extraEnv,
        },
        maxBuffer: 64 * 1024 * 1024,
      },
      (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

async function emptyBuckets(): Promise<void> {
  for (const b of BUCKETS) await removeBucket(client, b).catch(() => undefined);
}

before(async () => {
  await emptyBuckets();
  for (const b of BUCKETS) await client.send(new CreateBucketCommand({ Bucket: b }));
  const seed: [string, string, string][] = [
    ["acme-production", "images/logo.png", "png"],
    ["acme-production", "images/old.png", "old"],
    ["acme-production", "index.html", "<h1>hi</h1>"],
    ["acme-production", "photos/2024/a.jpg", "jpg"],
    ["acme-production", "tmp/scratch.txt", "tmp"],
    ["acme-staging", "stale.txt", "gone after --delete"],
    ["acme-photos", "2024/beach.jpg", "beach"],
    ["my-source", "a.txt", "a"],
    ["prod-assets", "app.css", "body{}"],
  ];
  for (const [b, k, v] of seed) await put(client, b, k, v);
  mkdirSync(join(work, "bin"));
  writeFileSync(join(work, "bin", "bucketsync"), `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`);
  chmodSync(join(work, "bin", "bucketsync"), 0o755);
  writeFileSync(join(work, "README.md"), readme); // the watch example's file, as in a checkout
  mkdirSync(join(work, "public"));
  writeFileSync(join(work, "public", "index.html"), "<p>site</p>");
  writeFileSync(join(work, "keys.txt"), "index.html\nimages/logo.png\n"); // the work list of --files-from keys.txt
  // The README's own config file, and the AWS profiles its remotes name, on the test server.
  const yaml = /```yaml\n(remotes:[\s\S]*?)```/.exec(readme);
  assert.ok(yaml, "the README has a bucketsync.yaml example");
  writeFileSync(join(work, "bucketsync.yaml"), yaml[1]!);
  const profiles = ["prod", "staging"];
  writeFileSync(
    join(work, "aws-config"),
    profiles.map((p) => `[profile ${p}]\nregion = ${env.region}\nendpoint_url = ${env.endpoint}\n`).join("\n"),
  );
  writeFileSync(
    join(work, "aws-credentials"),
    profiles
      .map(
        (p) => `[${p}]\naws_access_key_id = ${env.a.accessKeyId}\naws_secret_access_key = ${env.a.secretAccessKey}\n`,
      )
      .join("\n"),
  );
});

after(async () => {
  await emptyBuckets();
  rmSync(work, { recursive: true, force: true });
  client.destroy();
});

test("every bucketsync example of the README runs as written against the local server", async () => {
  const commands = shellExamples(readme)
    .map((line) => line.replace(/^npx bucketsync\b/, "bucketsync"))
    .filter((line) => line.startsWith("bucketsync"));
  assert.ok(commands.length >= 20, `found only ${commands.length} examples`);
  let ran = 0;
  for (const command of commands) {
    const why = NOT_HERE.find(([pattern]) => pattern.test(command));
    if (why) continue;
    const r = await bash(command);
    const expected = EXPECTED.find(([pattern]) => pattern.test(command))?.[1] ?? 0;
    assert.equal(r.code, expected, `$ ${command}\nexit ${r.code}\n${r.stderr}\n${r.stdout.slice(-2000)}`);
    ran++;
  }
  assert.ok(ran >= 20, `ran only ${ran} examples`);
  // What the examples did, read from the server: the last sync of production into staging (the
  // --backup-dir example of "Safe on live buckets") made them equal again, saving the two cp
  // copies it deleted; earlier, the job's --delete had removed the prefix example's backup/photos.
  assert.deepEqual(await keys(client, "acme-staging"), [
    "images/logo.png",
    "images/old.png",
    "index.html",
    "photos/2024/a.jpg",
    "tmp/scratch.txt",
  ]);
  assert.deepEqual(await keys(client, "acme-backup"), [
    "staging/archive/logo.png-2026-12-01",
    "staging/images/logo-2026.png-2026-12-01",
  ]);
  assert.deepEqual(await keys(client, "acme-web"), ["www/index.html"]);
  assert.deepEqual(await keys(client, "my-target"), ["a.txt"]);
  assert.deepEqual(await keys(client, "staging-assets"), ["app.css"]);
  assert.equal(readFileSync(join(work, "backup", "2024", "beach.jpg"), "utf8"), "beach");
  assert.equal(readFileSync(join(work, "logo.png"), "utf8"), "png");
});

test("the quick start's demo runs: production -> staging, again, check, public object, private bucket", async () => {
  const r = await bash(`bash ${join(REPO, "scripts", "demo.sh")}`, { KEEP_SERVER: "1" });
  assert.equal(r.code, 0, `${r.stderr}\n${r.stdout.slice(-3000)}`);
  assert.match(r.stdout, /in sync/);
});
