import { test } from "node:test";
import assert from "node:assert/strict";
import { parseS3Xml } from "../../src/stores/s3/xml.js";

const page = (keys: string[], truncated: boolean) =>
  `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><IsTruncated>${truncated}</IsTruncated>` +
  keys.map((k) => `<Contents><Key>${k}</Key><ETag>&quot;abc&quot;</ETag><Size>1</Size></Contents>`).join("") +
  `</ListBucketResult>`;

test("an S3 response parses into its root, fields and records, entities decoded", () => {
  const xml = parseS3Xml(page(["a&amp;b", "c"], true), ["Contents"]);
  assert.equal(xml.root, "ListBucketResult");
  assert.equal(xml.fields.get("IsTruncated"), "true");
  assert.deepEqual(xml.records.get("Contents"), [
    { Key: "a&b", ETag: '"abc"', Size: "1" },
    { Key: "c", ETag: '"abc"', Size: "1" },
  ]);
});

test("a cut-off or malformed response throws, and the next one still parses whole", () => {
  const whole = page(["k1", "k2"], false);
  assert.throws(() => parseS3Xml(whole.slice(0, whole.length - 30), ["Contents"]));
  assert.throws(() => parseS3Xml("<html><body>Service Unavailable</body>", ["Contents"]));
  assert.throws(() => parseS3Xml(`<a><b></a>`, []));
  const again = parseS3Xml(whole, ["Contents"]);
  assert.equal(again.fields.get("IsTruncated"), "false");
  assert.deepEqual(
    again.records.get("Contents")?.map((r) => r.Key),
    ["k1", "k2"],
  );
  // Responses after one another do not leak fields or records into each other.
  const copy = parseS3Xml(`<CopyObjectResult><ETag>e1</ETag></CopyObjectResult>`, []);
  assert.deepEqual([copy.root, [...copy.fields], copy.records.size], ["CopyObjectResult", [["ETag", "e1"]], 0]);
});
