/** Issue 18: the pure parts of watch mode (event validation, the coalescing set of keys, lag figures). */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  LagStats,
  PendingKeys,
  formatLag,
  parseNotification,
  parseQueueMessage,
  percentile,
} from "../../src/watch/events.js";
import { watchName } from "../../src/watch/bucket-events.js";
import { queueRegion } from "../../src/watch/queue-events.js";

const where = { bucket: "prod", prefix: "img/" };
const rec = (
  key: string,
  eventName = "ObjectCreated:Put",
  bucket = "prod",
  eventTime = "2026-12-01T10:00:00.000Z",
) => ({
  eventName,
  eventTime,
  s3: { bucket: { name: bucket }, object: { key } },
});
const body = (...records: unknown[]) => JSON.stringify({ Records: records });

describe("parseNotification", () => {
  test("object events under the prefix become hints relative to it, with their event time", () => {
    const parsed = parseNotification(body(rec("img/a.png"), rec("img/b/c.png", "ObjectRemoved:Delete")), where);
    assert.deepEqual(parsed, {
      ok: true,
      hints: [
        { key: "a.png", time: Date.parse("2026-12-01T10:00:00.000Z") },
        { key: "b/c.png", time: Date.parse("2026-12-01T10:00:00.000Z") },
      ],
      ignored: 0,
    });
  });

  test("other buckets, keys outside the prefix (img2/ is not img/), the prefix itself and non-object events are ignored and counted", () => {
    const parsed = parseNotification(
      body(rec("img/a", "ObjectCreated:Put", "other"), rec("img2/x"), rec("img/"), rec("img/a", "s3:TestEvent"), {
        junk: 1,
      }),
      where,
    );
    assert.deepEqual(parsed, { ok: true, hints: [], ignored: 5 });
  });

  test("a percent-encoded key (AWS's form) is tried as sent and decoded; a plain key once", () => {
    const parsed = parseNotification(body(rec("img/a+b%2Bc.txt"), rec("img/plain.txt")), where);
    assert.ok(parsed.ok);
    assert.deepEqual(
      parsed.hints.map((h) => h.key),
      ["a+b%2Bc.txt", "a b+c.txt", "plain.txt"],
    );
    const bad = parseNotification(body(rec("img/100%")), where);
    assert.ok(bad.ok);
    assert.deepEqual(
      bad.hints.map((h) => h.key),
      ["100%"],
      "a key that does not decode is taken as it is",
    );
  });

  test("a time in the future counts from now; a missing or unreadable time is now", () => {
    const now = Date.parse("2026-12-01T10:00:00.000Z");
    const parsed = parseNotification(
      body(
        rec("img/a", "ObjectCreated:Put", "prod", "2030-01-01T00:00:00Z"),
        rec("img/b", "ObjectCreated:Put", "prod", "yesterday"),
      ),
      where,
      now,
    );
    assert.ok(parsed.ok);
    assert.deepEqual(
      parsed.hints.map((h) => h.time),
      [now, now],
    );
  });

  test("bodies that are not JSON or not event records are refused", () => {
    assert.deepEqual(parseNotification("{not json", where), { ok: false, problem: "not JSON" });
    assert.deepEqual(parseNotification(JSON.stringify({ Records: "x" }), where), {
      ok: false,
      problem: "not S3 event records",
    });
    assert.deepEqual(parseNotification(JSON.stringify([1, 2]), where), { ok: false, problem: "not S3 event records" });
    const tooMany = JSON.stringify({ Records: Array.from({ length: 10_001 }, () => ({})) });
    assert.equal(parseNotification(tooMany, where).ok, false);
  });
});

describe("PendingKeys", () => {
  test("coalesces a key's events, keeping its earliest time; takes keys in the order first heard", () => {
    const keys = new PendingKeys();
    keys.add({ key: "b", time: 20 });
    keys.add({ key: "a", time: 30 });
    keys.add({ key: "b", time: 10 });
    keys.add({ key: "b", time: 40 });
    assert.equal(keys.size, 2);
    assert.deepEqual([...keys.take(1)], [["b", 10]]);
    assert.deepEqual([...keys.take(5)], [["a", 30]]);
    assert.equal(keys.size, 0);
  });

  test("past its bound it empties and says so (the watcher reconciles instead)", () => {
    const keys = new PendingKeys(3);
    for (const key of ["a", "b", "c"]) assert.equal(keys.add({ key, time: 1 }), true);
    assert.equal(keys.add({ key: "a", time: 0 }), true, "a key already waiting does not grow the set");
    assert.equal(keys.add({ key: "d", time: 1 }), false);
    assert.equal(keys.size, 0);
  });
});

describe("lag figures", () => {
  test("nearest-rank percentiles", () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    assert.equal(percentile(values, 50), 50);
    assert.equal(percentile(values, 99), 99);
    assert.equal(percentile(values, 100), 100);
    assert.equal(percentile([7], 99), 7);
    assert.equal(percentile([], 50), undefined);
  });

  test("last, p50 and p99 over a window of the latest changes; negative lags count as 0", () => {
    const lag = new LagStats(4);
    for (const ms of [1000, 1000, 1000, 1000, 10, 20, 30, -5]) lag.record(ms);
    assert.deepEqual(lag.snapshot(), { last: 0, p50: 10, p99: 30, count: 8 });
    assert.deepEqual(new LagStats().snapshot(), { last: undefined, p50: undefined, p99: undefined, count: 0 });
  });

  test("formatted for the status line", () => {
    assert.equal(formatLag(420), "0.42s");
    assert.equal(formatLag(12_400), "12s");
    assert.equal(formatLag(185_000), "3m05s");
    assert.equal(formatLag(undefined), "-");
  });
});

test("a watch's topic and notification name is the same for the same pair, and differs for another target", () => {
  assert.equal(watchName("prod", "img/", "s3://b/"), watchName("prod", "img/", "s3://b/"));
  assert.notEqual(watchName("prod", "img/", "s3://b/"), watchName("prod", "img/", "s3://c/"));
  assert.match(watchName("prod", "", "s3://b/"), /^bucketsync-watch-[0-9a-f]{16}$/);
});

describe("parseQueueMessage (--queue-url)", () => {
  const at = Date.parse("2026-12-01T10:00:00.000Z");
  test("S3 records straight from the bucket, and the same inside an SNS envelope (bucket -> topic -> queue)", () => {
    const direct = body(rec("img/a.png"));
    const expected = { ok: true, hints: [{ key: "a.png", time: at }], ignored: 0 };
    assert.deepEqual(parseQueueMessage(direct, where), expected);
    const wrapped = JSON.stringify({ Type: "Notification", TopicArn: "arn:aws:sns:eu-west-1:1:t", Message: direct });
    assert.deepEqual(parseQueueMessage(wrapped, where), expected);
  });

  test("EventBridge events of S3: Object Created and Object Deleted are hints, other detail types are ignored", () => {
    const event = (detailType: string, key: string, bucket = "prod") =>
      JSON.stringify({
        version: "0",
        "detail-type": detailType,
        source: "aws.s3",
        time: "2026-12-01T10:00:00Z",
        detail: { bucket: { name: bucket }, object: { key } },
      });
    assert.deepEqual(parseQueueMessage(event("Object Created", "img/n.png"), where), {
      ok: true,
      hints: [{ key: "n.png", time: at }],
      ignored: 0,
    });
    assert.deepEqual(parseQueueMessage(event("Object Deleted", "img/d.png"), where), {
      ok: true,
      hints: [{ key: "d.png", time: at }],
      ignored: 0,
    });
    assert.deepEqual(parseQueueMessage(event("Object Restore Completed", "img/r.png"), where), {
      ok: true,
      hints: [],
      ignored: 1,
    });
    assert.deepEqual(parseQueueMessage(event("Object Created", "img/x.png", "other"), where), {
      ok: true,
      hints: [],
      ignored: 1,
    });
  });

  test("S3's test event is no problem and names no key; anything else is refused", () => {
    assert.deepEqual(
      parseQueueMessage(JSON.stringify({ Service: "Amazon S3", Event: "s3:TestEvent", Bucket: "prod" }), where),
      { ok: true, hints: [], ignored: 0 },
    );
    assert.equal(parseQueueMessage("hello", where).ok, false);
    assert.equal(parseQueueMessage(JSON.stringify({ orderId: 1 }), where).ok, false);
    assert.equal(parseQueueMessage(JSON.stringify({ Type: "Notification", Message: "not json" }), where).ok, false);
  });

  test("the region a queue URL names", () => {
    assert.equal(queueRegion("https://sqs.eu-west-1.amazonaws.com/123456789012/q"), "eu-west-1");
    assert.equal(queueRegion("https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q"), "cn-north-1");
    assert.equal(queueRegion("https://queue.amazonaws.com/123456789012/q"), "us-east-1");
    assert.equal(queueRegion("http://127.0.0.1:4566/000000000000/q"), undefined);
  });
});
