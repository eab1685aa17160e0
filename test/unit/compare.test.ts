import { test } from "node:test";
import assert from "node:assert/strict";
import { checksum, isPlainMd5, sizeAndTime, sizeAndTimeWithin, sizeOnly } from "../../src/planner/compare.js";
import type { ObjectInfo } from "../../src/core/types.js";

const md5a = "0cc175b9c0f1b6a831c399e269772661";
const md5b = "92eb5ffee6ae2fec3ad71c777531578f";
const obj = (size: number, lastModified: number, etag?: string): ObjectInfo => ({ key: "k", size, lastModified, etag });

test("size-and-time copies when sizes differ or the source is newer, like aws-cli", () => {
  assert.deepEqual(sizeAndTime(obj(1, 0), obj(2, 10)), { copy: true, reason: "size differs" });
  assert.deepEqual(sizeAndTime(obj(1, 20), obj(1, 10)), { copy: true, reason: "source newer" });
  assert.equal(sizeAndTime(obj(1, 10), obj(1, 10)).copy, false);
  assert.equal(sizeAndTime(obj(1, 5), obj(1, 10)).copy, false, "an older source with the same size is left alone");
});

test("size-and-time within a window tolerates clock skew", () => {
  const rule = sizeAndTimeWithin(2000);
  assert.equal(rule(obj(1, 11_500), obj(1, 10_000)).copy, false);
  assert.equal(rule(obj(1, 12_500), obj(1, 10_000)).copy, true);
});

test("size-only ignores times", () => {
  assert.equal(sizeOnly(obj(3, 99), obj(3, 1)).copy, false);
  assert.equal(sizeOnly(obj(3, 1), obj(4, 99)).copy, true);
});

test("checksum compares plain MD5 ETags and catches same-size changes", () => {
  assert.deepEqual(checksum(obj(1, 0, md5a), obj(1, 99, md5b)), { copy: true, reason: "checksum differs" });
  assert.deepEqual(checksum(obj(1, 99, md5a), obj(1, 0, md5a)), { copy: false, reason: "same checksum" });
});

test("checksum says when it cannot decide (multipart or non-MD5 ETags) and falls back to size and time", () => {
  const v = checksum(obj(10, 50, `${md5a}-3`), obj(10, 10, md5b));
  assert.equal(v.undecidable, true);
  assert.equal(v.copy, true);
  assert.match(v.reason, /checksum undecidable \(source multipart ETag, target MD5\); source newer/);
  const same = checksum(obj(10, 5, `${md5a}-3`), obj(10, 10, undefined));
  assert.equal(same.undecidable, true);
  assert.equal(same.copy, false);
  assert.deepEqual(
    checksum(obj(10, 50, `${md5a}-3`), obj(10, 10, `${md5a}-3`)),
    { copy: false, reason: "same checksum" },
    "identical multipart ETags mean identical parts",
  );
});

test("isPlainMd5 recognises only 32-hex ETags", () => {
  assert.equal(isPlainMd5(md5a), true);
  assert.equal(isPlainMd5(`${md5a}-2`), false);
  assert.equal(isPlainMd5(undefined), false);
  assert.equal(isPlainMd5("xyz"), false);
});
