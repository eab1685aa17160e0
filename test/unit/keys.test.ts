import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { compareKeys, positionInRange } from "../../src/core/keys.js";

const byteOrder = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

test("keys sort in S3's UTF-8 byte order, not JavaScript's UTF-16 order", () => {
  const emoji = "\u{1F600}"; // above U+FFFF: a surrogate pair in UTF-16
  const privateUse = "\uE000"; // below it in code points, above the surrogates in UTF-16
  assert.ok(emoji < privateUse, "precondition: JS orders the emoji first");
  assert.ok(compareKeys(privateUse, emoji) < 0, "UTF-8 orders U+E000 before U+1F600");
  assert.ok(compareKeys("\uFFFD", "\u{10000}") < 0);
});

test("folder separators order as S3 does: test-123.txt < test.txt < test/x", () => {
  const keys = ["test/x", "test.txt", "test-123.txt", "test", "tesu", "a/b", "a", "a b", "a+b"];
  assert.deepEqual([...keys].sort(compareKeys), [
    "a",
    "a b",
    "a+b",
    "a/b",
    "test",
    "test-123.txt",
    "test.txt",
    "test/x",
    "tesu",
  ]);
});

test("compareKeys agrees with Buffer.compare on arbitrary unicode strings", () => {
  fc.assert(
    fc.property(fc.string({ unit: "grapheme" }), fc.string({ unit: "grapheme" }), (a, b) => {
      assert.equal(Math.sign(compareKeys(a, b)), Math.sign(byteOrder(a, b)));
    }),
    { numRuns: 5000 },
  );
  fc.assert(
    fc.property(
      fc.string({ unit: fc.constantFrom("a", "/", "-", ".", "\uE000", "\uFFFF", "\u{10000}", "\u{1F600}", "é") }),
      fc.string({ unit: fc.constantFrom("a", "/", "\u{1F600}", "\uFFFD") }),
      (a, b) => {
        assert.equal(Math.sign(compareKeys(a, b)), Math.sign(byteOrder(a, b)));
      },
    ),
    { numRuns: 5000 },
  );
});

test("equal keys compare as 0 and a prefix sorts first", () => {
  assert.equal(compareKeys("abc", "abc"), 0);
  assert.ok(compareKeys("ab", "abc") < 0);
  assert.ok(compareKeys("abc", "ab") > 0);
});

test("a key's place in a range: before it, inside, or past its end, folder prefixes included", () => {
  const range = { startAfter: "a/b", endAt: "a/y", prefix: "a/" };
  assert.deepEqual(
    ["a", "a/a", "a/b", "a/c", "a/y", "a/z", "a0", "b/c"].map((k) => positionInRange(k, range)),
    [-1, -1, -1, 0, 0, 1, 1, 1],
  );
  // "a.txt" sorts before every "a/..." key and "a0" after them all: a folder is one contiguous block.
  assert.deepEqual(
    ["a.txt", "a/", "a/\u{1F600}", "a0"].map((k) => positionInRange(k, { prefix: "a/" })),
    [-1, 0, 0, 1],
  );
  assert.equal(positionInRange("anything", {}), 0);
});
