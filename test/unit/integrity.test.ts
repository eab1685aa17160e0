import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  candidatePartSizes,
  ContentHasher,
  multipartEtag,
  multipartParts,
  OFF_THREAD_MIN_BYTES,
  unquoteEtag,
} from "../../src/integrity/etag.js";
import { verifyServerCopy, verifyStreamed } from "../../src/integrity/verify.js";

const MiB = 1024 * 1024;
const md5 = (b: Buffer) => createHash("md5").update(b).digest();

test("multipart ETag is md5 of the part md5s, then -N, exactly as S3 computes it", () => {
  const data = randomBytes(12 * MiB);
  const parts = [data.subarray(0, 5 * MiB), data.subarray(5 * MiB, 10 * MiB), data.subarray(10 * MiB)];
  const expected =
    createHash("md5")
      .update(Buffer.concat(parts.map(md5)))
      .digest("hex") + "-3";
  assert.equal(multipartEtag(parts.map(md5)), expected);
  assert.equal(multipartParts(expected), 3);
  assert.equal(multipartParts(md5(data).toString("hex")), undefined);
});

for (const [where, opts] of [
  ["in this thread", {}],
  ["in a worker thread (a large stream)", { size: OFF_THREAD_MIN_BYTES }],
] as const)
  test(`ContentHasher hashes the whole and each part layout in one pass, whatever the chunking, ${where}`, async () => {
    // 40 MiB: more than the worker may hold unhashed, so its backpressure is exercised too.
    const data = randomBytes(40 * MiB + 123);
    const hasher = new ContentHasher([5 * MiB, 8 * MiB], opts);
    const chunks = [];
    for (let i = 0; i < data.length; i += 777_777) chunks.push(data.subarray(i, i + 777_777));
    const passed: Buffer[] = [];
    await pipeline(
      Readable.from(chunks),
      hasher,
      new Writable({
        write: (c: Buffer, _e, done) => {
          passed.push(c);
          done();
        },
      }),
    );
    const { md5: whole, multipart } = await hasher.result();
    assert.equal(whole, md5(data).toString("hex"));
    assert.equal(hasher.bytes, data.length);
    assert.ok(Buffer.concat(passed).equals(data), "the bytes pass through unchanged");
    const split = (size: number) =>
      Array.from({ length: Math.ceil(data.length / size) }, (_, i) => md5(data.subarray(i * size, (i + 1) * size)));
    assert.equal(multipart.get(5 * MiB), multipartEtag(split(5 * MiB)));
    assert.equal(multipart.get(8 * MiB), multipartEtag(split(8 * MiB)));
  });

test("candidate part sizes give exactly the part count, common tool defaults first", () => {
  const c = candidatePartSizes(20 * MiB, 3);
  assert.equal(c[0], 8 * MiB, "aws-cli's 8 MiB first");
  for (const p of c) assert.equal(Math.ceil((20 * MiB) / p), 3);
  assert.ok(candidatePartSizes(13 * MiB, 3).includes(5 * MiB));
});

test("server-side copies: MD5 ETags must match; multipart proves only with the same parts", () => {
  const a = "0cc175b9c0f1b6a831c399e269772661";
  assert.equal(verifyServerCopy(a, a, undefined).status, "verified");
  assert.equal(verifyServerCopy(a, "92eb5ffee6ae2fec3ad71c777531578f", undefined).status, "mismatch");
  assert.equal(verifyServerCopy(`${a}-3`, `${a}-3`, 3).status, "verified");
  assert.equal(verifyServerCopy(`${a}-3`, `${a.replace("0", "1")}-3`, 3, true).status, "mismatch");
  assert.equal(
    verifyServerCopy(`${a}-3`, `${a.replace("0", "1")}-3`, 3, false).status,
    "unverifiable",
    "a guessed layout proves nothing when ETags differ",
  );
  assert.equal(verifyServerCopy(a, `${a}-4`, 4).status, "unverifiable");
  assert.equal(verifyServerCopy("kms-not-md5", "whatever", undefined).status, "unverifiable");
});

test("streamed copies: bytes checked against the source, the target checked against the bytes", () => {
  const data = randomBytes(1000);
  const sum = md5(data).toString("hex");
  const base = { size: 1000, bytes: 1000, md5: sum, multipart: new Map<number, string>() };
  assert.equal(verifyStreamed({ ...base, sourceEtag: sum, targetEtag: sum }).status, "verified");
  assert.equal(
    verifyStreamed({ ...base, sourceEtag: sum }).status,
    "verified",
    "a local target is written from the hashed bytes",
  );
  assert.equal(verifyStreamed({ ...base, targetEtag: sum }).status, "verified", "a local source is the bytes read");
  assert.equal(
    verifyStreamed({ ...base, sourceEtag: "0cc175b9c0f1b6a831c399e269772661", targetEtag: sum }).status,
    "mismatch",
    "corrupted read",
  );
  assert.equal(
    verifyStreamed({ ...base, sourceEtag: sum, targetEtag: "0cc175b9c0f1b6a831c399e269772661" }).status,
    "mismatch",
    "corrupted write",
  );
  assert.equal(verifyStreamed({ ...base, bytes: 999, sourceEtag: sum }).status, "mismatch", "short read");
  assert.equal(verifyStreamed({ ...base, sourceEtag: "kms-etag", targetEtag: sum }).status, "unverifiable");
});

test("ETags lose their quotes whichever way the server sends them", () => {
  assert.equal(unquoteEtag('"9dd4e461268c8034f5c8564e155c67a6"'), "9dd4e461268c8034f5c8564e155c67a6");
  assert.equal(unquoteEtag("9dd4e461268c8034f5c8564e155c67a6-3"), "9dd4e461268c8034f5c8564e155c67a6-3");
  assert.equal(unquoteEtag('"abc'), "abc");
  assert.equal(unquoteEtag('abc"'), "abc");
  assert.equal(unquoteEtag('"'), "");
  assert.equal(unquoteEtag(""), undefined);
  assert.equal(unquoteEtag(undefined), undefined);
});
