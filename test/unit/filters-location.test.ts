import { test } from "node:test";
import assert from "node:assert/strict";
import { compileFilters } from "../../src/planner/filters.js";
import { locationsOverlap, parseLocation } from "../../src/core/location.js";
import { UsageError } from "../../src/core/types.js";

test("filters: everything included until a rule matches; later rules win", () => {
  const f = compileFilters([
    { type: "exclude", pattern: "*" },
    { type: "include", pattern: "*.jpg" },
    { type: "exclude", pattern: "tmp/*" },
  ]);
  assert.equal(f("a.jpg"), true);
  assert.equal(f("deep/dir/b.jpg"), true, "* crosses / as in aws-cli");
  assert.equal(f("a.png"), false);
  assert.equal(f("tmp/x.jpg"), false);
  assert.equal(f("tmp/deeper/x.jpg"), false);
  assert.equal(compileFilters([])("anything"), true);
});

test("filters: ? and [] match one character; dotfiles are not special", () => {
  const f = compileFilters([
    { type: "exclude", pattern: "log-?.txt" },
    { type: "exclude", pattern: "[ab].bin" },
    { type: "exclude", pattern: "*.swp" },
  ]);
  assert.equal(f("log-1.txt"), false);
  assert.equal(f("log-10.txt"), true);
  assert.equal(f("a.bin"), false);
  assert.equal(f("c.bin"), true);
  assert.equal(f(".hidden.swp"), false);
});

test("filters: an empty pattern is a usage error", () => {
  assert.throws(() => compileFilters([{ type: "include", pattern: "" }]), UsageError);
});

test("locations: a prefix is a folder", () => {
  assert.deepEqual(parseLocation("s3://bucket"), { kind: "s3", bucket: "bucket", prefix: "", url: "s3://bucket/" });
  assert.deepEqual(parseLocation("s3://bucket/"), { kind: "s3", bucket: "bucket", prefix: "", url: "s3://bucket/" });
  assert.equal((parseLocation("s3://b-1/photos") as { prefix: string }).prefix, "photos/");
  assert.equal((parseLocation("s3://b-1/photos/2024/") as { prefix: string }).prefix, "photos/2024/");
  assert.equal(parseLocation("./site").kind, "local");
});

test("locations: malformed URLs are usage errors", () => {
  for (const bad of ["s3://", "s3:///key", "s3://a", "s3://bad bucket/x", "gs://bucket", ""]) {
    assert.throws(() => parseLocation(bad), UsageError, bad);
  }
});

test("locations: same bucket with nested prefixes overlap; siblings do not", () => {
  const p = parseLocation;
  assert.equal(locationsOverlap(p("s3://bkt"), p("s3://bkt/x")), true);
  assert.equal(locationsOverlap(p("s3://bkt/x"), p("s3://bkt/x/y")), true);
  assert.equal(locationsOverlap(p("s3://bkt/x"), p("s3://bkt/x")), true);
  assert.equal(locationsOverlap(p("s3://bkt/x"), p("s3://bkt/x2")), false);
  assert.equal(locationsOverlap(p("s3://bkt/x"), p("s3://other/x")), false);
});
