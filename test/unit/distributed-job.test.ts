import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { compareKeys } from "../../src/core/keys.js";
import { UsageError, type KeyRange } from "../../src/core/types.js";
import {
  jobIdOf,
  jobOptionsFrom,
  parseRangeJob,
  rangesForShards,
  redactRedisUrl,
  redisConnection,
  runKeyOf,
  type RangeJob,
} from "../../src/distributed/job.js";

const inRange = (key: string, r: KeyRange) =>
  (r.startAfter === undefined || compareKeys(key, r.startAfter) > 0) &&
  (r.endAt === undefined || compareKeys(key, r.endAt) <= 0);

test("the run key depends on source, target and what the workers do, not on machine settings", () => {
  const base = {
    source: "s3://a/",
    target: "s3://b/",
    delete: true,
    acl: "public-read" as const,
    filters: [{ type: "exclude" as const, pattern: "*.tmp" }],
  };
  const key = runKeyOf("s3://a/", "s3://b/", jobOptionsFrom(base));
  assert.match(key, /^[0-9a-f]{16}$/);
  // Same outcome, other machine settings and option order: same run.
  const same = jobOptionsFrom({
    filters: [{ type: "exclude", pattern: "*.tmp" }],
    acl: "public-read",
    delete: true,
    source: "s3://a/",
    target: "s3://b/",
    concurrency: 7,
    maxDelete: 10,
    connection: { endpointUrl: "http://x", credentials: { accessKeyId: "AKIAEXAMPLE", secretAccessKey: "s3cr3t" } },
    replaceProperties: { contentType: undefined },
  });
  assert.equal(runKeyOf("s3://a/", "s3://b/", same), key);
  assert.equal(runKeyOf("s3://a/", "s3://b/", same, [undefined, undefined]), key);
  assert.doesNotMatch(
    JSON.stringify(same),
    /s3cr3t|AKIAEXAMPLE|http:\/\/x/,
    "no credentials or endpoints in the payload",
  );
  // Anything that changes what a range does: another run.
  for (const other of [
    runKeyOf("s3://a/", "s3://c/", jobOptionsFrom(base)),
    runKeyOf("s3://a/p/", "s3://b/", jobOptionsFrom(base)),
    runKeyOf("s3://a/", "s3://b/", jobOptionsFrom({ ...base, delete: false })),
    runKeyOf("s3://a/", "s3://b/", jobOptionsFrom({ ...base, dryRun: true })),
    runKeyOf("s3://a/", "s3://b/", jobOptionsFrom({ ...base, acl: "private" })),
    runKeyOf(
      "s3://a/",
      "s3://b/",
      jobOptionsFrom({ ...base, filters: [...base.filters, { type: "include", pattern: "x" }] }),
    ),
    runKeyOf("s3://a/", "s3://b/", jobOptionsFrom({ ...base, compare: "checksum" })),
    runKeyOf("s3://a/", "s3://b/", jobOptionsFrom(base), ["http://minio:9000", undefined]),
  ]) {
    assert.notEqual(other, key);
  }
});

test("job ids are deterministic per run, generation and range, and valid BullMQ custom ids", () => {
  const ranges = rangesForShards(["m", "c", "x/"], 12);
  const ids = ranges.map((r) => jobIdOf("0123456789abcdef", 1, r));
  assert.deepEqual(
    ids,
    ranges.map((r) => jobIdOf("0123456789abcdef", 1, { ...r })),
  );
  assert.equal(new Set(ids).size, ranges.length);
  for (const id of ids) {
    assert.doesNotMatch(id, /:/);
    assert.ok(!/^\d+$/.test(id));
  }
  assert.notEqual(jobIdOf("0123456789abcdef", 2, ranges[0]!), ids[0]);
  assert.notEqual(jobIdOf("fedcba9876543210", 1, ranges[0]!), ids[0]);
  // A missing bound is not the empty string.
  assert.notEqual(jobIdOf("0123456789abcdef", 1, { endAt: "" }), jobIdOf("0123456789abcdef", 1, {}));
});

test("--shards N gives at most N ranges that cover every key exactly once", () => {
  assert.deepEqual(rangesForShards(["a/", "b/"], 1), [{}]);
  assert.equal(rangesForShards(["a/", "b/", "c/"], 12).length, 4);
  assert.throws(() => rangesForShards([], 0), UsageError);
  const keyArb = fc.string({ unit: fc.constantFrom("a", "b", "/", "-", "é", "\u{1F600}"), maxLength: 4 });
  fc.assert(
    fc.property(
      fc.array(keyArb, { maxLength: 40 }),
      fc.integer({ min: 1, max: 20 }),
      fc.array(keyArb, { maxLength: 30 }),
      (points, shards, keys) => {
        const ranges = rangesForShards(points, shards);
        assert.ok(ranges.length >= 1 && ranges.length <= shards);
        for (const key of keys) assert.equal(ranges.filter((r) => inRange(key, r)).length, 1, key);
      },
    ),
    { numRuns: 300 },
  );
});

test("a worker accepts only range jobs of its version", () => {
  const job: RangeJob = {
    v: 1,
    runKey: "0123456789abcdef",
    generation: 1,
    index: 0,
    total: 2,
    range: { endAt: "m/" },
    source: "s3://a/",
    target: "s3://b/",
    options: jobOptionsFrom({ source: "s3://a/", target: "s3://b/", delete: true }),
  };
  assert.deepEqual(parseRangeJob(JSON.parse(JSON.stringify(job))), job);
  assert.throws(() => parseRangeJob({ ...job, v: 2 }), /version 1/);
  assert.throws(() => parseRangeJob({ ...job, source: "/etc" }), /source/);
  assert.throws(() => parseRangeJob("garbage"), /not a bucketsync range job/);
  // An option this worker does not know is refused, never ignored.
  assert.throws(
    () => parseRangeJob({ ...job, options: { ...job.options, someFutureOption: true } }),
    /someFutureOption/,
  );
  // The coordinator refuses sync options it cannot hand to workers rather than dropping them.
  assert.throws(
    () => jobOptionsFrom({ source: "s3://a/", target: "s3://b/", someNewOption: 1 } as never),
    /not supported by distributed sync/,
  );
  assert.throws(
    () => jobOptionsFrom({ source: "s3://a/", target: "s3://b/", at: Date.now() }),
    /--at is not supported/,
  );
  assert.doesNotThrow(() => jobOptionsFrom({ source: "s3://a/", target: "s3://b/", allVersions: false }));
  const withAttributes = jobOptionsFrom({
    source: "s3://a/",
    target: "s3://b/",
    attributes: { minSize: 10, contentType: undefined },
    verify: "strict",
  });
  assert.deepEqual(parseRangeJob({ ...job, options: withAttributes }).options, { ...withAttributes });
  assert.deepEqual(withAttributes.attributes, { minSize: 10 });
});

test("redis:// URLs become connection options; passwords stay out of messages", () => {
  assert.deepEqual(redisConnection("redis://127.0.0.1:16379"), {
    host: "127.0.0.1",
    port: 16379,
    db: 0,
    connectTimeout: 10_000,
    maxRetriesPerRequest: 2,
  });
  const c = redisConnection("rediss://user:p%40ss@queue.internal/3", true) as Record<string, unknown>;
  assert.deepEqual(
    [c.host, c.port, c.db, c.username, c.password, c.tls, c.maxRetriesPerRequest],
    ["queue.internal", 6379, 3, "user", "p@ss", {}, null],
  );
  assert.throws(() => redisConnection("http://x"), UsageError);
  assert.throws(() => redisConnection("redis://x/abc"), UsageError);
  assert.equal(redactRedisUrl("redis://user:secret@h:1/0"), "redis://user:***@h:1/0");
  assert.equal(redactRedisUrl("redis://:secret@h"), "redis://:***@h");
});
