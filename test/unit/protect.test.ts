/** Issue 16: the pure parts of rate limits, cut-offs, ordering and the cost estimate. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { Command } from "commander";
import { RequestMeter, kindOfCommand, rateAt } from "../../src/core/meter.js";
import { AWS_S3_STANDARD_US_EAST_1, costOf } from "../../src/core/prices.js";
import { UsageError } from "../../src/core/types.js";
import { Cutoff } from "../../src/executor/cutoff.js";
import { orderWithin } from "../../src/executor/order.js";
import { parseBandwidth, parseDuration, parseListenAddress } from "../../src/options/parse.js";
import { addRunOptions, runOptionsFrom } from "../../src/cli/flags.js";
import type { Action } from "../../src/planner/planner.js";

const KiB = 1024;
const MiB = 1024 * KiB;
const bw = parseBandwidth("--bwlimit");

test("--bwlimit: one rate, rclone's units (a bare number is KiB/s), off", () => {
  assert.equal(rateAt(bw("10M")), 10 * MiB);
  assert.equal(rateAt(bw("512k")), 512 * KiB);
  assert.equal(rateAt(bw("512")), 512 * KiB);
  assert.equal(rateAt(bw("1.5MiB")), 1.5 * MiB);
  assert.equal(rateAt(bw("off")), undefined);
  for (const bad of ["", "fast", "10X", "0", "25:00,1M", "08:00", "Xyz-08:00,1M", "08:00,1M 09:60,off"])
    assert.throws(() => bw(bad), UsageError, bad);
});

test("--bwlimit timetable: each entry holds from its time until the next, the last one wraps to before the first; weekdays optional", () => {
  const daily = bw("08:00,10M 19:00,off");
  const at = (day: number, h: number, m = 0) => new Date(2026, 10, 29 + day, h, m); // 2026-11-29 is a Sunday
  assert.equal(rateAt(daily, at(1, 7, 59)), undefined, "before 08:00: the last entry of the day before (off)");
  assert.equal(rateAt(daily, at(1, 8, 0)), 10 * MiB);
  assert.equal(rateAt(daily, at(1, 18, 59)), 10 * MiB);
  assert.equal(rateAt(daily, at(1, 19, 0)), undefined);
  const weekly = bw("Mon-00:00,512k Fri-23:59,10M Sat-10:00,1M Sun-20:00,off");
  assert.equal(rateAt(weekly, at(3, 12)), 512 * KiB, "Wednesday");
  assert.equal(rateAt(weekly, at(6, 9)), 10 * MiB, "Saturday morning");
  assert.equal(rateAt(weekly, at(6, 11)), 1 * MiB, "Saturday noon");
  assert.equal(rateAt(weekly, at(0, 21)), undefined, "Sunday night");
  assert.equal(rateAt(weekly, at(0, 1)), 1 * MiB, "Sunday early: Saturday's rate still");
});

test("durations and listen addresses", () => {
  assert.equal(parseDuration("--max-duration")("2s"), 2000);
  assert.equal(parseDuration("--max-duration")("1.5h"), 5_400_000);
  assert.equal(parseDuration("--max-duration")("90"), 90_000);
  assert.throws(() => parseDuration("--max-duration")("soon"), /invalid --max-duration 'soon'/);
  assert.deepEqual(parseListenAddress("--metrics-addr", "127.0.0.1:9090"), { host: "127.0.0.1", port: 9090 });
  assert.deepEqual(parseListenAddress("--metrics-addr", "[::1]:9090"), { host: "::1", port: 9090 });
  assert.deepEqual(parseListenAddress("--metrics-addr", ":9090"), { host: undefined, port: 9090 });
  assert.throws(() => parseListenAddress("--metrics-addr", "9090"), UsageError);
});

test("the flags of issue 16 reach the option values", () => {
  const command = addRunOptions(new Command("sync").exitOverride(), "sync", []);
  command.parse(
    [
      "--bwlimit",
      "08:00,10M 19:00,off",
      "--tpslimit",
      "20",
      "--tpslimit-burst",
      "5",
      "--max-transfer",
      "5M",
      "--max-duration",
      "2m",
      "--cutoff-mode",
      "soft",
      "--order-by",
      "size,desc",
      "--metrics-addr",
      "127.0.0.1:9090",
    ],
    { from: "user" },
  );
  const values = runOptionsFrom(command.opts(), "sync", []);
  assert.equal(values.bwlimit, "08:00,10M 19:00,off");
  assert.equal(values.tpslimit, 20);
  assert.equal(values.tpslimitBurst, 5);
  assert.equal(values.maxTransfer, 5 * MiB);
  assert.equal(values.maxDuration, 120_000);
  assert.equal(values.cutoffMode, "soft");
  assert.equal(values.orderBy, "size,desc");
  assert.equal(values.metricsAddr, "127.0.0.1:9090");
});

test("cut-off modes: hard and cautious never start a copy past --max-transfer, soft stops once it is reached", () => {
  const run = (mode: "hard" | "soft" | "cautious", sizes: number[]) => {
    const c = new Cutoff({ maxTransfer: 10, cutoffMode: mode });
    return sizes.map((s) => c.admit(s));
  };
  assert.deepEqual(run("hard", [4, 4, 4, 1]), [true, true, false, false]);
  assert.deepEqual(run("cautious", [4, 4, 4, 1]), [true, true, false, false]);
  assert.deepEqual(run("soft", [4, 4, 4, 1]), [true, true, true, false]);
  const c = new Cutoff({ maxTransfer: 10 });
  c.admit(8);
  c.admit(8);
  c.leftBehind(8);
  assert.deepEqual(c.report(), {
    reason: "--max-transfer 10 B reached",
    mode: "hard",
    left: { objects: 1, bytes: 8 },
    listingComplete: true,
  });
  assert.equal(new Cutoff({}).report(), undefined);
});

test("an object larger than --max-transfer itself is oversize in hard and cautious modes, never a cut-off", () => {
  for (const mode of ["hard", "cautious"] as const) {
    const c = new Cutoff({ maxTransfer: 10, cutoffMode: mode });
    assert.match(c.oversize(11)?.message ?? "", /^TooLarge: 11 B is more than --max-transfer 10 B/);
    assert.equal(c.oversize(10), undefined);
    assert.equal(c.cut, false, "asking does not cut the run off");
  }
  assert.equal(new Cutoff({ maxTransfer: 10, cutoffMode: "soft" }).oversize(11), undefined);
  assert.equal(new Cutoff({}).oversize(11), undefined);
});

test("--order-by sorts within a bounded window and lets other actions through", async () => {
  const copy = (key: string, size: number): Action =>
    ({ type: "copy", key, reason: "new", source: { key, size, lastModified: 0 } }) as Action;
  async function* plan(): AsyncGenerator<Action> {
    yield copy("a", 30);
    yield copy("b", 10);
    yield { type: "skip", key: "c", reason: "same", source: { key: "c", size: 1, lastModified: 0 } } as Action;
    yield copy("d", 20);
    yield copy("e", 5);
  }
  const keysOf = async (order: "size" | "size,desc" | "key", window: number) => {
    const out: string[] = [];
    for await (const a of orderWithin(plan(), order, window)) out.push(a.key);
    return out;
  };
  assert.deepEqual(await keysOf("size", 100), ["c", "e", "b", "d", "a"]);
  assert.deepEqual(await keysOf("size,desc", 100), ["c", "a", "d", "b", "e"]);
  // A window of 2: never more than two copies held.
  assert.deepEqual(await keysOf("size", 2), ["b", "c", "d", "e", "a"]);
});

test("the default price table and the cost of counters", () => {
  assert.equal(AWS_S3_STANDARD_US_EAST_1.name, "aws-s3-standard-us-east-1 2026-11");
  const cost = costOf(
    { LIST: 3, HEAD: 0, GET: 1000, PUT: 0, COPY: 1000, UploadPartCopy: 0, DELETE: 1 },
    2 ** 30,
    AWS_S3_STANDARD_US_EAST_1,
  );
  assert.equal(cost.usd, 0.095415);
  assert.equal(kindOfCommand("HeadObjectCommand"), "HEAD");
  assert.equal(kindOfCommand("UploadPartCopyCommand"), "UploadPartCopy");
  assert.equal(kindOfCommand("CompleteMultipartUploadCommand"), "PUT");
  assert.equal(kindOfCommand("AbortMultipartUploadCommand"), "DELETE");
  assert.equal(kindOfCommand("GetObjectTaggingCommand"), "GET");
  assert.equal(kindOfCommand("ListObjectVersionsCommand"), "LIST");
});

test("the meter counts streamed bytes and holds them to the bandwidth", async () => {
  const meter = new RequestMeter({ bandwidth: bw("256k") });
  const started = Date.now();
  let seen = 0;
  for await (const chunk of meter.throttle(Readable.from([Buffer.alloc(128 * KiB), Buffer.alloc(128 * KiB)]), true))
    seen += (chunk as Buffer).length;
  const ms = Date.now() - started;
  assert.equal(seen, 256 * KiB);
  assert.equal(meter.bytesThrough, 256 * KiB);
  assert.equal(meter.bytesDownloaded, 256 * KiB);
  assert.ok(ms >= 850 && ms < 2500, `256 KiB at 256 KiB/s took ${ms} ms`);
});
