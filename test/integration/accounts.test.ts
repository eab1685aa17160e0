/**
 * Issue 4, "Across accounts and providers, and ACL tasks": copies between two accounts on one
 * endpoint (per-side profiles from a shared credentials file), the streaming fallback when the
 * target account may not read the source, `acl apply`, `--preserve-acl`, object properties on
 * write, and the memory bound of streaming a large object. Every check reads the real server.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectAclCommand,
  GetObjectCommand,
  ListBucketsCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutBucketAclCommand,
  PutBucketPolicyCommand,
  PutObjectAclCommand,
  UploadPartCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import {
  CLI,
  head,
  keyZoo,
  keys,
  listAll,
  newBucket,
  put,
  putMany,
  removeBucket,
  runCli,
  s3Client,
  s3TestEnv,
  tags,
  type CliResult,
} from "../helpers/s3.js";

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

/** A shared credentials file with profile `prod` = user A and `staging` = user B, and an empty config file. */
const awsDir = mkdtempSync(join(tmpdir(), "bucketsync-accounts-"));
const credentialsFile = join(awsDir, "credentials");
const configFile = join(awsDir, "config");
writeFileSync(
  credentialsFile,
  `[prod]\naws_access_key_id = ${env.a.accessKeyId}\naws_secret_access_key = ${env.a.secretAccessKey}\n\n` +
    `[staging]\naws_access_key_id = ${env.b.accessKeyId}\naws_secret_access_key = ${env.b.secretAccessKey}\n`,
);
writeFileSync(configFile, "");
/** No keys in the environment (empty values are "unset" to the AWS chain): only the profiles identify the sides. */
const profileEnv = {
  AWS_ACCESS_KEY_ID: "",
  AWS_SECRET_ACCESS_KEY: "",
  AWS_SHARED_CREDENTIALS_FILE: credentialsFile,
  AWS_CONFIG_FILE: configFile,
};
const PROFILES = ["--source-profile", "prod", "--target-profile", "staging"];
const runAcross = (args: string[]) => runCli([...args, ...PROFILES], { env: profileEnv });

after(async () => {
  for (const b of buckets) await removeBucket(clientOf(b.owner), b.name).catch(() => undefined);
  clientA.destroy();
  clientB.destroy();
  rmSync(awsDir, { recursive: true, force: true });
});

const show = (r: CliResult) =>
  `exit ${r.code}\n--- stderr\n${r.stderr.slice(0, 3000)}\n--- stdout\n${r.stdout.slice(-2000)}`;
const lines = (text: string) => text.split("\n").filter((l) => l.trim() !== "");
const refusedWarnings = (r: CliResult) => lines(r.stderr).filter((l) => /refused/i.test(l));
/** The human summary line of a run that copied `n` objects and nothing else (later fields, such as verification counts, may follow). */
const copiedOnly = (n: number) => new RegExp(`^copied ${n}, updated 0, deleted 0, skipped 0, failed 0[,;]`, "m");
/**
 * A successful run: exit 0, or exit 3 ("succeeded, but some copies could not be verified") when a
 * server-side multipart copy of a single-part source cannot be proven by ETags.
 * Returns stderr without that one warning line.
 */
function assertSucceeded(r: CliResult): string[] {
  const unverifiable = (l: string) => /could not be verified/.test(l);
  if (r.code === 3) assert.ok(lines(r.stderr).some(unverifiable), `exit 3 must say why: ${show(r)}`);
  else assert.equal(r.code, 0, show(r));
  return lines(r.stderr).filter((l) => !unverifiable(l));
}

/** HTTP status of an anonymous (unsigned) GET of an object. */
async function anonStatus(bucketName: string, key: string): Promise<number> {
  const path = key.split("/").map(encodeURIComponent).join("/");
  const res = await fetch(`${env.endpoint}/${bucketName}/${path}`);
  await res.arrayBuffer();
  return res.status;
}
async function anonListStatus(bucketName: string): Promise<number[]> {
  const out: number[] = [];
  for (const q of ["", "?list-type=2"]) {
    const res = await fetch(`${env.endpoint}/${bucketName}${q}`);
    await res.arrayBuffer();
    out.push(res.status);
  }
  return out;
}

async function errorName(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "no error";
  } catch (err) {
    return (err as { name?: string; Code?: string }).Code ?? (err as { name: string }).name;
  }
}

async function sha256Of(client: S3Client, bucketName: string, key: string): Promise<{ sha: string; size: number }> {
  const out = await client.send(new GetObjectCommand({ Bucket: bucketName, Key: key }));
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of out.Body as Readable) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha: hash.digest("hex"), size };
}

/** Everything a user could tell apart about an object: bytes, content headers, metadata, tags. */
async function describeObject(client: S3Client, bucketName: string, key: string) {
  const { sha, size } = await sha256Of(client, bucketName, key);
  const h = await head(client, bucketName, key);
  return {
    sha,
    size,
    contentType: h.ContentType,
    cacheControl: h.CacheControl,
    contentDisposition: h.ContentDisposition,
    metadata: h.Metadata ?? {},
    tags: await tags(client, bucketName, key),
  };
}

let canonicalB: string;
let canonicalA: string;
before(async () => {
  canonicalA = (await clientA.send(new ListBucketsCommand({}))).Owner!.ID!;
  canonicalB = (await clientB.send(new ListBucketsCommand({}))).Owner!.ID!;
});

describe("across accounts: per-side profiles on one endpoint", () => {
  const zoo = keyZoo();
  const big = "big/multipart.bin";
  const bigData = randomBytes(12 * 1024 * 1024);

  /** A source bucket of A's with the key zoo (some objects with properties and tags) and a 12 MiB object. */
  async function seedSource(label: string): Promise<string> {
    const src = await bucket(label, "a");
    let i = 0;
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < zoo.length) {
          const k = zoo[next++]!;
          const n = i++;
          await put(clientA, src, `zoo/${k}`, `content of ${k}`, {
            ContentType: n % 2 === 0 ? "text/plain; charset=utf-8" : "application/x-zoo",
            ...(n % 3 === 0 && { CacheControl: "max-age=300", ContentDisposition: "inline" }),
            Metadata: { origin: "zoo", index: String(n) },
            // A few tagged objects (streaming many tagged objects at once is tested separately).
            ...(n % 4 === 0 && { Tagging: `index=${n}&team=web%20site` }),
          });
        }
      }),
    );
    await put(clientA, src, big, bigData, {
      ContentType: "application/x-big",
      Metadata: { kind: "big", "owner-team": "data" },
      Tagging: "size=large&class=a%2Bb",
    });
    return src;
  }

  async function assertSameObjects(src: string, dst: string) {
    const want = await listAll(clientA, src);
    const got = await listAll(clientB, dst);
    assert.deepEqual(
      got.map((o) => [o.key, o.size]),
      want.map((o) => [o.key, o.size]),
      "the target holds exactly the source's keys and sizes",
    );
    for (const o of want) {
      assert.deepEqual(
        await describeObject(clientB, dst, o.key),
        await describeObject(clientA, src, o.key),
        `object ${JSON.stringify(o.key)}`,
      );
    }
  }

  test("the two accounts cannot read each other's buckets", async () => {
    const a = await bucket("own-a", "a");
    const b = await bucket("own-b", "b");
    await put(clientA, a, "secret", "A's");
    await put(clientB, b, "secret", "B's");
    assert.equal(
      await errorName(clientB.send(new ListObjectsV2Command({ Bucket: a }))),
      "AccessDenied",
      "B lists A's bucket",
    );
    assert.equal(
      await errorName(clientA.send(new ListObjectsV2Command({ Bucket: b }))),
      "AccessDenied",
      "A lists B's bucket",
    );
    assert.equal(
      await errorName(clientB.send(new GetObjectCommand({ Bucket: a, Key: "secret" }))),
      "AccessDenied",
      "B reads A's object",
    );
    assert.notEqual(canonicalA, canonicalB);
  });

  test("A's bucket to B's bucket: server-side copy is refused once, then every object is streamed, exactly", async () => {
    const src = await seedSource("xacct-s");
    const dst = await bucket("xacct-d", "b");
    assert.equal(
      await errorName(clientB.send(new ListObjectsV2Command({ Bucket: src }))),
      "AccessDenied",
      "precondition: B cannot read A's bucket",
    );

    const r = await runAcross([
      "sync",
      `s3://${src}`,
      `s3://${dst}`,
      "--multipart-threshold",
      "5MB",
      "--part-size",
      "5MB",
    ]);
    assert.equal(r.code, 0, show(r));
    const warnings = refusedWarnings(r);
    assert.equal(warnings.length, 1, `exactly one 'refused' warning: ${show(r)}`);
    assert.match(warnings[0]!, /^warning: .*refused.*AccessDenied.*stream/i);
    assert.deepEqual(lines(r.stderr), warnings, `nothing else on stderr: ${show(r)}`);
    assert.match(r.stdout, copiedOnly(zoo.length + 1), show(r));

    await assertSameObjects(src, dst);
    const bigListed = (await listAll(clientB, dst, "big/"))[0]!;
    assert.match(bigListed.etag, /-3$/, "the 12 MiB object was uploaded in 3 parts of 5 MiB");
    assert.equal(
      (await clientB.send(new ListMultipartUploadsCommand({ Bucket: dst }))).Uploads?.length ?? 0,
      0,
      "no parts left behind",
    );
    // The copies belong to B: A still cannot read them.
    assert.equal(
      await errorName(clientA.send(new GetObjectCommand({ Bucket: dst, Key: "zoo/plain.txt" }))),
      "AccessDenied",
    );

    const again = await runAcross(["sync", `s3://${src}`, `s3://${dst}`, "--json"]);
    assert.equal(again.code, 0, show(again));
    const summary = JSON.parse(lines(again.stdout).pop()!);
    assert.deepEqual(
      [summary.type, summary.copied, summary.updated, summary.skipped, summary.failed],
      ["summary", 0, 0, zoo.length + 1, 0],
      show(again),
    );
    const check = await runAcross(["check", `s3://${src}`, `s3://${dst}`]);
    assert.equal(check.code, 0, show(check));
  });

  test("when B may read A's bucket (bucket policy), single-request server-side copies work: no warning, same result", async () => {
    const src = await seedSource("xpol-s");
    const dst = await bucket("xpol-d", "b");
    await clientA.send(
      new PutBucketPolicyCommand({
        Bucket: src,
        Policy: JSON.stringify({
          Version: "2012-10-17",
          Statement: [
            {
              Effect: "Allow",
              Principal: { AWS: [`arn:aws:iam:::user/${canonicalB}`] },
              Action: ["s3:GetObject", "s3:ListBucket"],
              Resource: [`arn:aws:s3:::${src}`, `arn:aws:s3:::${src}/*`],
            },
          ],
        }),
      }),
    );
    assert.ok((await keys(clientB, src)).length > 0, "precondition: B can list A's bucket now");

    // Default multipart threshold (5 GiB): every object, the 12 MiB one included, is one CopyObject.
    const r = await runAcross(["sync", `s3://${src}`, `s3://${dst}`]);
    assert.equal(r.code, 0, show(r));
    assert.equal(refusedWarnings(r).length, 0, `no 'refused' warning: ${show(r)}`);
    assert.equal(r.stderr, "", show(r));
    assert.match(r.stdout, copiedOnly(zoo.length + 1), show(r));
    await assertSameObjects(src, dst);
  });

  test("when B may read A's objects (ACL grants), multipart server-side copies work too: no warning, same result", async () => {
    const src = await seedSource("xacl-s");
    const dst = await bucket("xacl-d", "b");
    const grantB = (owner: string) => ({
      Owner: { ID: owner },
      Grants: [
        { Grantee: { Type: "CanonicalUser" as const, ID: owner }, Permission: "FULL_CONTROL" as const },
        { Grantee: { Type: "CanonicalUser" as const, ID: canonicalB }, Permission: "READ" as const },
      ],
    });
    await clientA.send(new PutBucketAclCommand({ Bucket: src, AccessControlPolicy: grantB(canonicalA) }));
    for (const k of await keys(clientA, src))
      await clientA.send(new PutObjectAclCommand({ Bucket: src, Key: k, AccessControlPolicy: grantB(canonicalA) }));
    assert.ok((await keys(clientB, src)).length > 0, "precondition: B can list A's bucket now");

    const r = await runAcross([
      "sync",
      `s3://${src}`,
      `s3://${dst}`,
      "--multipart-threshold",
      "5MB",
      "--part-size",
      "5MB",
    ]);
    const stderr = assertSucceeded(r);
    assert.equal(refusedWarnings(r).length, 0, `no 'refused' warning: ${show(r)}`);
    assert.deepEqual(stderr, [], show(r));
    assert.match(r.stdout, copiedOnly(zoo.length + 1), show(r));
    await assertSameObjects(src, dst);
    assert.match((await listAll(clientB, dst, "big/"))[0]!.etag, /-3$/, "the 12 MiB object was copied in 3 parts");
  });

  test("streaming many tagged objects with few connections completes (no connection starvation)", async () => {
    const src = await bucket("xtag-s", "a");
    const dst = await bucket("xtag-d", "b");
    const names = Array.from({ length: 12 }, (_, i) => `t/${String(i).padStart(2, "0")}`);
    await Promise.all(names.map((k, i) => put(clientA, src, k, `tagged ${k}`, { Tagging: `n=${i}` })));
    const started = Date.now();
    const r = await runCliLimited(
      ["sync", `s3://${src}`, `s3://${dst}`, "--concurrency", "4", "--endpoint-url", env.endpoint, ...PROFILES],
      60_000,
    );
    const seconds = (Date.now() - started) / 1000;
    assert.equal(r.code, 0, `finished in ${seconds.toFixed(1)}s: ${show(r)}`);
    assert.ok(seconds < 30, `12 tiny objects took ${seconds.toFixed(1)}s`);
    assert.deepEqual(await keys(clientB, dst), names);
    for (const [i, k] of names.entries()) assert.deepEqual(await tags(clientB, dst, k), { n: String(i) }, k);
  });
});

/** Like runCli (profiles, no keys in the environment) but killed after `limitMs`; code 124 when it was. */
function runCliLimited(args: string[], limitMs: number, wrap: string[] = []): Promise<CliResult> {
  return new Promise((resolve) => {
    const command = wrap.length > 0 ? wrap[0]! : process.execPath;
    const argv = wrap.length > 0 ? [...wrap.slice(1), process.execPath, CLI, ...args] : [CLI, ...args];
    let killed = false;
    const child = execFile(
      command,
      argv,
      {
        env: { PATH: process.env.PATH ?? "", HOME: "/nonexistent", AWS_REGION: env.region, ...profileEnv },
        maxBuffer: 64 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        clearTimeout(timer);
        const code = killed
          ? 124
          : err
            ? typeof (err as { code?: unknown }).code === "number"
              ? (err as { code: number }).code
              : 1
            : 0;
        resolve({ code, stdout, stderr });
      },
    );
    const timer = setTimeout(() => {
      killed = true;
      child.kill("SIGKILL");
    }, limitMs);
  });
}

describe("acl apply", () => {
  test("sets a canned ACL on exactly the objects under a prefix (and its filters); the bucket stays private", async () => {
    const b = await bucket("aclapp", "a");
    const all = [
      "images/a.png",
      "images/sub/b.png",
      "images/c.jpg",
      "images/d.tmp",
      "images/with space.png",
      "imagesX/e.png",
      "other/f.png",
      "g.png",
    ];
    await putMany(
      clientA,
      b,
      all.map((k) => [k, `data ${k}`]),
    );
    const publicNow = async () => {
      const out: string[] = [];
      for (const k of all) {
        const s = await anonStatus(b, k);
        assert.ok(s === 200 || s === 403, `${k}: status ${s}`);
        if (s === 200) out.push(k);
      }
      return out;
    };
    assert.deepEqual(await publicNow(), [], "all private to begin with");

    const dry = await runCli(["acl", "apply", `s3://${b}/images`, "--acl", "public-read", "--dry-run"]);
    assert.equal(dry.code, 0, show(dry));
    assert.match(dry.stdout, new RegExp(`^\\(dryrun\\) acl public-read: s3://${b}/images/a\\.png$`, "m"));
    assert.match(dry.stdout, /^dry run: would set public-read on 5 object\(s\), failed 0$/m, show(dry));
    assert.doesNotMatch(dry.stdout, /imagesX|other\/|g\.png/);
    assert.deepEqual(await publicNow(), [], "--dry-run changed nothing");

    const pngOnly = await runCli([
      "acl",
      "apply",
      `s3://${b}/images`,
      "--acl",
      "public-read",
      "--exclude",
      "*",
      "--include",
      "*.png",
    ]);
    assert.equal(pngOnly.code, 0, show(pngOnly));
    assert.match(pngOnly.stdout, /^set public-read on 3 object\(s\), failed 0$/m, show(pngOnly));
    assert.deepEqual(await publicNow(), ["images/a.png", "images/sub/b.png", "images/with space.png"]);

    const notTmp = await runCli(["acl", "apply", `s3://${b}/images/`, "--acl", "public-read", "--exclude", "*.tmp"]);
    assert.equal(notTmp.code, 0, show(notTmp));
    assert.deepEqual(await publicNow(), ["images/a.png", "images/sub/b.png", "images/c.jpg", "images/with space.png"]);

    const every = await runCli(["acl", "apply", `s3://${b}/images`, "--acl", "public-read", "--json"]);
    assert.equal(every.code, 0, show(every));
    const events = lines(every.stdout).map((l) => JSON.parse(l));
    assert.deepEqual(
      events
        .filter((e) => e.type === "acl")
        .map((e) => e.key)
        .sort(),
      ["a.png", "c.jpg", "d.tmp", "sub/b.png", "with space.png"],
      "keys relative to the prefix",
    );
    assert.deepEqual(events.at(-1), { ...events.at(-1), type: "summary", applied: 5, failed: 0, dryRun: false });
    assert.deepEqual(
      await publicNow(),
      ["images/a.png", "images/sub/b.png", "images/c.jpg", "images/d.tmp", "images/with space.png"],
      "images/ only, not imagesX/",
    );
    const body = await fetch(`${env.endpoint}/${b}/images/a.png`);
    assert.equal(await body.text(), "data images/a.png");
    assert.deepEqual(await anonListStatus(b), [403, 403], "anonymous listing of the bucket stays denied");

    const back = await runCli(["acl", "apply", `s3://${b}/images`, "--acl", "private", "-q"]);
    assert.equal(back.code, 0, show(back));
    assert.deepEqual(lines(back.stdout), ["set private on 5 object(s), failed 0"]);
    assert.deepEqual(await publicNow(), [], "private again");

    const bad = await runCli(["acl", "apply", `s3://${b}/images`, "--acl", "world-readable"]);
    assert.equal(bad.code, 2, show(bad));
    assert.equal(lines(bad.stderr).length, 1, show(bad));
    assert.match(bad.stderr, /--acl/);
    assert.match(bad.stderr, /world-readable/);
    const missing = await runCli(["acl", "apply", `s3://${b}/images`]);
    assert.equal(missing.code, 2, show(missing));
    assert.match(missing.stderr, /--acl/);
    assert.deepEqual(await publicNow(), [], "refused runs changed nothing");
  });
});

describe("--preserve-acl", () => {
  /** A's bucket with a public-read object, a private one, and one with an extra READ grant to user B. */
  async function seedAcls(label: string) {
    const src = await bucket(label, "a");
    await putMany(clientA, src, [
      ["pub", "public data"],
      ["priv", "private data"],
      ["granted", "for B"],
    ]);
    await clientA.send(new PutObjectAclCommand({ Bucket: src, Key: "pub", ACL: "public-read" }));
    await clientA.send(
      new PutObjectAclCommand({
        Bucket: src,
        Key: "granted",
        AccessControlPolicy: {
          Owner: { ID: canonicalA },
          Grants: [
            { Grantee: { Type: "CanonicalUser", ID: canonicalA }, Permission: "FULL_CONTROL" },
            { Grantee: { Type: "CanonicalUser", ID: canonicalB }, Permission: "READ" },
          ],
        },
      }),
    );
    return src;
  }
  const grantsOf = async (client: S3Client, b: string, key: string) => {
    const out = await client.send(new GetObjectAclCommand({ Bucket: b, Key: key }));
    return {
      owner: out.Owner?.ID,
      grants: (out.Grants ?? []).map((g) => `${g.Grantee?.ID ?? g.Grantee?.URI} ${g.Permission}`).sort(),
    };
  };
  const ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers";

  test("within one account: public stays public, private stays private, the grant to B travels", async () => {
    const src = await seedAcls("pacl-s");
    const dst = await bucket("pacl-d", "a");
    const r = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--preserve-acl"]);
    assert.equal(r.code, 0, show(r));
    assert.equal(await anonStatus(dst, "pub"), 200);
    assert.equal(await anonStatus(dst, "priv"), 403);
    assert.equal(await anonStatus(dst, "granted"), 403);
    assert.equal(
      await errorName(clientB.send(new GetObjectCommand({ Bucket: dst, Key: "granted" }))),
      "no error",
      "B may read the granted copy",
    );
    assert.equal(
      await errorName(clientB.send(new GetObjectCommand({ Bucket: dst, Key: "priv" }))),
      "AccessDenied",
      "B may not read the private copy",
    );
    for (const k of ["pub", "priv", "granted"])
      assert.deepEqual(await grantsOf(clientA, dst, k), await grantsOf(clientA, src, k), k);
    assert.deepEqual(
      (await grantsOf(clientA, dst, "granted")).grants,
      [`${canonicalA} FULL_CONTROL`, `${canonicalB} READ`].sort(),
    );
  });

  test("across accounts: the owner's grants map to the new owner, the public grant travels", async () => {
    const src = await seedAcls("paclx-s");
    const dst = await bucket("paclx-d", "b");
    const r = await runAcross(["sync", `s3://${src}`, `s3://${dst}`, "--preserve-acl"]);
    assert.equal(r.code, 0, show(r));
    assert.equal(refusedWarnings(r).length, 1, `streamed after one refusal: ${show(r)}`);
    assert.equal(await anonStatus(dst, "pub"), 200);
    assert.equal(await anonStatus(dst, "priv"), 403);
    assert.equal(await anonStatus(dst, "granted"), 403);
    const pub = await grantsOf(clientB, dst, "pub");
    assert.equal(pub.owner, canonicalB);
    assert.deepEqual(pub.grants, [`${canonicalB} FULL_CONTROL`, `${ALL_USERS} READ`].sort());
    assert.deepEqual((await grantsOf(clientB, dst, "priv")).grants, [`${canonicalB} FULL_CONTROL`]);
    const granted = await grantsOf(clientB, dst, "granted");
    assert.ok(granted.grants.includes(`${canonicalB} FULL_CONTROL`), JSON.stringify(granted));
    assert.ok(
      granted.grants.every((g) => !g.startsWith(`${canonicalA} `)),
      `no grant to the source account: ${JSON.stringify(granted)}`,
    );
    assert.equal(
      await errorName(clientA.send(new GetObjectCommand({ Bucket: dst, Key: "priv" }))),
      "AccessDenied",
      "A gets no access to B's copy",
    );
  });

  test("--acl with --preserve-acl is refused: exit 2, nothing copied", async () => {
    const src = await seedAcls("paclbad-s");
    const dst = await bucket("paclbad-d", "a");
    const r = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--preserve-acl", "--acl", "public-read"]);
    assert.equal(r.code, 2, show(r));
    assert.equal(lines(r.stderr).length, 1, show(r));
    assert.match(r.stderr, /--acl and --preserve-acl/);
    assert.deepEqual(await keys(clientA, dst), []);
  });
});

describe("object properties on write", () => {
  let src: string;
  const big = randomBytes(6 * 1024 * 1024);
  before(async () => {
    src = await bucket("props-s", "a");
    await put(clientA, src, "page.html", "<h1>hi</h1>", {
      ContentType: "text/html",
      CacheControl: "max-age=60",
      Metadata: { old: "1", team: "web" },
      Tagging: "keep=yes",
    });
    await put(clientA, src, "big.bin", big, {
      ContentType: "application/x-big",
      Metadata: { old: "2" },
      Tagging: "keep=big",
    });
  });
  // Objects above the threshold go through the multipart copy path, which sets properties itself.
  const MP = ["--multipart-threshold", "5MB", "--part-size", "5MB"];

  test("--storage-class STANDARD is applied to server-side and multipart copies", async () => {
    const dst = await bucket("sc-d", "a");
    const r = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--storage-class", "STANDARD", ...MP]);
    assertSucceeded(r);
    for (const k of ["page.html", "big.bin"]) {
      const h = await head(clientA, dst, k);
      assert.equal(h.StorageClass ?? "STANDARD", "STANDARD", k);
      assert.equal(h.ContentType, k === "page.html" ? "text/html" : "application/x-big", `${k}: metadata still copied`);
    }
    const bad = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--storage-class", "cold"]);
    assert.equal(bad.code, 2, show(bad));
    assert.match(bad.stderr, /--storage-class/);
  });

  test("--metadata-directive REPLACE --content-type --metadata replaces metadata (tags still travel)", async () => {
    const dst = await bucket("repl-d", "a");
    const r = await runCli([
      "sync",
      `s3://${src}`,
      `s3://${dst}`,
      "--metadata-directive",
      "REPLACE",
      "--content-type",
      "text/plain",
      "--metadata",
      "a=b",
      ...MP,
    ]);
    assertSucceeded(r);
    const got: Record<string, unknown> = {};
    for (const k of ["page.html", "big.bin"]) {
      const h = await head(clientA, dst, k);
      got[k] = {
        contentType: h.ContentType,
        metadata: h.Metadata,
        cacheControl: h.CacheControl,
        tags: await tags(clientA, dst, k),
      };
    }
    assert.deepEqual(got, {
      // The source's Cache-Control and user metadata are replaced away; tags still travel.
      "page.html": { contentType: "text/plain", metadata: { a: "b" }, cacheControl: undefined, tags: { keep: "yes" } },
      "big.bin": { contentType: "text/plain", metadata: { a: "b" }, cacheControl: undefined, tags: { keep: "big" } },
    });
    assert.equal((await sha256Of(clientA, dst, "big.bin")).sha, createHash("sha256").update(big).digest("hex"));
  });

  test("--content-type alone implies REPLACE; with --metadata-directive COPY it is refused", async () => {
    const dst = await bucket("ct-d", "a");
    const r = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--content-type", "text/plain", ...MP]);
    assertSucceeded(r);
    for (const k of ["page.html", "big.bin"]) {
      const h = await head(clientA, dst, k);
      assert.equal(h.ContentType, "text/plain", k);
      assert.deepEqual(h.Metadata ?? {}, {}, `${k}: REPLACE drops the source's user metadata`);
    }
    const dst2 = await bucket("ct-d2", "a");
    const bad = await runCli([
      "sync",
      `s3://${src}`,
      `s3://${dst2}`,
      "--content-type",
      "text/plain",
      "--metadata-directive",
      "COPY",
    ]);
    assert.equal(bad.code, 2, show(bad));
    assert.equal(lines(bad.stderr).length, 1, show(bad));
    assert.deepEqual(await keys(clientA, dst2), []);
  });

  // radosgw 16 has SSE-KMS (with its "testing" key backend, configured by scripts/s3-server.sh) but
  // no SSE-S3 (AES256) without a Vault; AWS has both and takes the same headers.
  test("--sse aws:kms --sse-kms-key-id encrypts the copies", async () => {
    const dst = await bucket("sse-d", "a");
    const r = await runCli([
      "sync",
      `s3://${src}`,
      `s3://${dst}`,
      "--sse",
      "aws:kms",
      "--sse-kms-key-id",
      "bucketsync-test-key",
      ...MP,
    ]);
    const encryption: Record<string, string | undefined> = {};
    for (const k of ["page.html", "big.bin"])
      encryption[k] = (await head(clientA, dst, k).catch(() => undefined))?.ServerSideEncryption;
    assert.deepEqual(encryption, { "page.html": "aws:kms", "big.bin": "aws:kms" }, show(r));
    assertSucceeded(r);
  });
});

describe("memory bound when streaming", () => {
  const SIZE = 200 * 1024 * 1024;
  const PART = 10 * 1024 * 1024;
  /** Peak RSS allowed for the CLI streaming a 200 MiB object with 8 MiB parts (4 in flight): 250 MiB. */
  const BOUND_KIB = 250 * 1024;

  test(
    "a 200 MiB object streamed across accounts with 8 MiB parts stays under 250 MiB of RSS, byte for byte",
    { timeout: 15 * 60_000 },
    async (t) => {
      const src = await bucket("mem-s", "a");
      const dst = await bucket("mem-d", "b");
      const key = "huge/object.bin";
      // Uploaded in 10 MiB parts generated one at a time, so the test itself never holds 200 MiB.
      const created = await clientA.send(
        new CreateMultipartUploadCommand({
          Bucket: src,
          Key: key,
          ContentType: "application/octet-stream",
          Metadata: { kind: "huge" },
        }),
      );
      const hash = createHash("sha256");
      const parts: { PartNumber: number; ETag: string }[] = [];
      for (let n = 1; n * PART <= SIZE; n++) {
        const chunk = randomBytes(PART);
        hash.update(chunk);
        const out = await clientA.send(
          new UploadPartCommand({ Bucket: src, Key: key, UploadId: created.UploadId, PartNumber: n, Body: chunk }),
        );
        parts.push({ PartNumber: n, ETag: out.ETag! });
      }
      await clientA.send(
        new CompleteMultipartUploadCommand({
          Bucket: src,
          Key: key,
          UploadId: created.UploadId,
          MultipartUpload: { Parts: parts },
        }),
      );
      const sourceSha = hash.digest("hex");

      const rssFile = join(awsDir, "rss.txt");
      const r = await runCliLimited(
        [
          "sync",
          `s3://${src}`,
          `s3://${dst}`,
          "--part-size",
          "8MB",
          "--multipart-threshold",
          "16MB",
          "--endpoint-url",
          env.endpoint,
          ...PROFILES,
        ],
        10 * 60_000,
        ["/usr/bin/time", "-f", "%M", "-o", rssFile],
      );
      assert.equal(r.code, 0, show(r));
      assert.equal(refusedWarnings(r).length, 1, `it streamed: ${show(r)}`);
      const peakKiB = Number(readFileSync(rssFile, "utf8").trim().split("\n").pop());
      t.diagnostic(
        `peak RSS of the CLI streaming 200 MiB: ${peakKiB} KiB (${(peakKiB / 1024).toFixed(1)} MiB); bound ${BOUND_KIB / 1024} MiB`,
      );
      console.log(`# peak RSS streaming 200 MiB: ${(peakKiB / 1024).toFixed(1)} MiB`);
      assert.ok(Number.isFinite(peakKiB) && peakKiB > 0, `measured ${peakKiB}`);
      assert.ok(peakKiB < BOUND_KIB, `peak RSS ${(peakKiB / 1024).toFixed(1)} MiB exceeds ${BOUND_KIB / 1024} MiB`);

      const copied = await sha256Of(clientB, dst, key);
      assert.equal(copied.size, SIZE);
      assert.equal(copied.sha, sourceSha, "same bytes");
      const listed = (await listAll(clientB, dst))[0]!;
      assert.match(listed.etag, /-25$/, "uploaded in 25 parts of 8 MiB");
      assert.deepEqual((await head(clientB, dst, key)).Metadata, { kind: "huge" });
    },
  );
});
