/** Issue 13's pure parts: endpoint identity, masking, strict sizes, dot segments, include-only rules, outage retries. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { canonicalEndpoint, couldBeSameServer, maskEndpoint, maskUrls } from "../../src/core/endpoint.js";
import { parseLocation, refuseOverlap } from "../../src/core/location.js";
import { classifyError, redactSecrets } from "../../src/core/errors.js";
import { withRetry } from "../../src/core/retry.js";
import { includesThatSelectNothing } from "../../src/planner/filters.js";
import { parseSize, parseWholeNumber } from "../../src/options/parse.js";
import { printableKey } from "../../src/cli/format/render.js";
import { UsageError } from "../../src/core/types.js";

test("endpoints: spellings of one server are one server; different ports or hosts are not", async () => {
  const same: [string | undefined, string | undefined][] = [
    ["http://127.0.0.1:17480", "http://127.0.0.1:17480/"],
    ["http://127.0.0.1:17480", "HTTP://127.0.0.1:17480"],
    ["http://localhost:17480", "http://127.0.0.1:17480"],
    ["http://[::1]:17480", "http://127.0.0.1:17480"],
    ["http://example.com", "http://example.com:80/"],
    ["https://example.com", "https://EXAMPLE.com:443"],
    [undefined, "https://s3.eu-west-1.amazonaws.com"],
    ["https://s3.amazonaws.com", "https://s3.us-east-2.amazonaws.com/"],
  ];
  for (const [a, b] of same) assert.equal(await couldBeSameServer(a, b), true, `${a} ~ ${b}`);
  assert.equal(
    await couldBeSameServer("http://bkt.example.com", "http://example.com", ["bkt", "bkt"]),
    true,
    "virtual-hosted vs path-style",
  );
  const different: [string | undefined, string | undefined][] = [
    ["http://127.0.0.1:17480", "http://127.0.0.1:17481"],
    ["http://127.0.0.1:9000", undefined],
    ["http://example.invalid", "http://other.invalid"],
  ];
  for (const [a, b] of different) assert.equal(await couldBeSameServer(a, b), false, `${a} vs ${b}`);
});

test("overlap guard: nested prefixes of one bucket on one server are refused however the endpoints are spelled", async () => {
  const src = parseLocation("s3://ovl2/site/current");
  const dst = parseLocation("s3://ovl2/site");
  await assert.rejects(refuseOverlap(src, dst, "http://127.0.0.1:17480", "http://127.0.0.1:17480/"), UsageError);
  await assert.rejects(refuseOverlap(src, dst, "HTTP://localhost:17480", "http://127.0.0.1:17480"), UsageError);
  await refuseOverlap(src, dst, "http://127.0.0.1:17480", "http://127.0.0.1:17481"); // another server: fine
  await refuseOverlap(
    parseLocation("s3://ovl2/a"),
    parseLocation("s3://ovl2/b"),
    "http://127.0.0.1:1",
    "http://127.0.0.1:1/",
  );
});

test("endpoints: canonical spelling, and user info never shown", () => {
  assert.equal(canonicalEndpoint("HTTP://Host.Example:80/"), "http://host.example");
  assert.equal(canonicalEndpoint("https://h:8443/base/"), "https://h:8443/base");
  assert.equal(canonicalEndpoint(undefined), undefined);
  assert.equal(maskEndpoint("http://user:SECRET@host:1"), "http://****@host:1");
  assert.equal(maskUrls("failed at http://u:p@h and https://x:y@z/"), "failed at http://****@h and https://****@z/");
  assert.doesNotMatch(redactSecrets("connect http://user:SECRET@127.0.0.1:1 refused"), /SECRET/);
});

test("sizes and counts: the whole text must be a number with a unit; errors quote the user's text", () => {
  assert.equal(parseSize("--x")("8MB"), 8 * 1024 ** 2);
  assert.equal(parseSize("--x")("5GiB"), 5 * 1024 ** 3);
  assert.equal(parseSize("--x")("1.5 KiB"), 1536);
  assert.equal(parseSize("--x")("100"), 100);
  for (const bad of ["10x", "3 bananas", "", "MB", "-1", "1e3", "5 GiBs"])
    assert.throws(() => parseSize("--x")(bad), new RegExp(`invalid --x '${bad}'`));
  assert.throws(
    () => parseSize("--part-size", { min: 5 * 1024 ** 2, why: "S3 takes parts from 5 MiB" })("1MiB"),
    /invalid --part-size '1MiB'; S3 takes parts/,
  );
  assert.throws(() => parseWholeNumber("--concurrency")("8x"), /invalid --concurrency '8x'/);
  assert.throws(() => parseWholeNumber("--concurrency", { min: 1, max: 4096 })("0"), /invalid --concurrency '0'/);
});

test("locations: '..', '.' and empty prefix segments are refused, saying why", () => {
  for (const bad of ["s3://b1b/../x", "s3://b1b//x", "s3://b1b/./x", "s3://b1b/a/../b", "s3://b1b/a//"]) {
    assert.throws(() => parseLocation(bad), /the prefix has (a '\.\.?' segment|an empty segment)/, bad);
  }
  assert.equal(parseLocation("s3://b1b/a/b/").url, "s3://b1b/a/b/");
  assert.equal(parseLocation("s3://b1b/").url, "s3://b1b/");
  assert.equal(parseLocation("s3://b1b/a.b/..c/").url, "s3://b1b/a.b/..c/", "dots inside a segment are names");
});

test("filters: includes before any exclude select nothing", () => {
  assert.deepEqual(includesThatSelectNothing([{ type: "include", pattern: "*.png" }]), [
    { type: "include", pattern: "*.png" },
  ]);
  assert.deepEqual(
    includesThatSelectNothing([
      { type: "exclude", pattern: "*" },
      { type: "include", pattern: "*.png" },
    ]),
    [],
  );
  assert.deepEqual(includesThatSelectNothing([{ type: "exclude", pattern: "tmp/*" }]), []);
});

test("errors: a refused connection is fatal before the endpoint ever answered, an outage after", () => {
  const refused = () => Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
  const never = classifyError(Object.assign(refused(), { $endpoint: "http://h:1", $reachedBefore: false }));
  assert.equal(never.class, "fatal");
  assert.match(never.message, /cannot reach the endpoint http:\/\/h:1 \(ECONNREFUSED\)/);
  const later = classifyError(Object.assign(refused(), { $endpoint: "http://h:1", $reachedBefore: true }));
  assert.equal(later.class, "retry");
  assert.equal(later.outage, true);
  const silent = classifyError(
    Object.assign(new Error("Headers Timeout Error"), {
      code: "UND_ERR_HEADERS_TIMEOUT",
      $endpoint: "http://h:1",
      $reachedBefore: false,
    }),
  );
  assert.equal(silent.class, "fatal");
  assert.match(silent.message, /does not answer/);
});

test("retry: an outage is retried for outageMs whatever the count of tries, then stops the run", async () => {
  let calls = 0;
  const lost = () =>
    Object.assign(new Error("reset"), { code: "ECONNRESET", $endpoint: "http://h", $reachedBefore: true });
  const started = Date.now();
  const value = await withRetry(
    async () => {
      if (++calls < 12 || Date.now() - started < 300) throw lost();
      return "back";
    },
    { attempts: 3, baseDelayMs: 1, maxDelayMs: 5, outageMs: 5_000 },
  );
  assert.equal(value, "back");
  assert.ok(calls >= 12, "more tries than `attempts` while the outage lasts");

  let err: unknown;
  await withRetry(
    async () => {
      throw lost();
    },
    { attempts: 2, baseDelayMs: 1, maxDelayMs: 5, outageMs: 50 },
  ).catch((e) => (err = e));
  const info = classifyError(err);
  assert.equal(info.class, "fatal", "an outage longer than outageMs stops the run instead of failing every object");
  assert.match(info.message, /lost the connection to the endpoint http:\/\/h/);
});

test("keys with control characters are spelled out in text output", () => {
  assert.equal(printableKey("a\nb\tc"), "a\\nb\\tc");
  assert.equal(printableKey("plain/key.txt"), "plain/key.txt");
  assert.equal(printableKey("x\u001b[31m"), "x\\x1b[31m");
});

test("planner: a target folder marker that the source's keys will fill is not deleted when folders are implicit", async () => {
  const { plan } = await import("../../src/planner/planner.js");
  const { sizeAndTime } = await import("../../src/planner/compare.js");
  const src = [{ key: "d/x", size: 1, lastModified: 1 }];
  const dst = [
    { key: "d/", size: 0, lastModified: 1 },
    { key: "e/", size: 0, lastModified: 1 },
  ];
  const run = async (implicitFolders: boolean) => {
    const out: string[] = [];
    async function* it<T>(xs: T[]) {
      yield* xs;
    }
    for await (const a of plan(it(src), it(dst), {
      compare: sizeAndTime,
      filter: () => true,
      delete: true,
      implicitFolders,
    }))
      out.push(`${a.type} ${a.key}`);
    return out;
  };
  assert.deepEqual(await run(true), ["copy d/x", "delete e/"], "d/ is filled by d/x; e/ is gone from the source");
  assert.deepEqual(
    await run(false),
    ["delete d/", "copy d/x", "delete e/"],
    "between buckets a marker is an object like any other",
  );
});
