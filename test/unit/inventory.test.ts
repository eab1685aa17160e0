/** Issue 17: S3 Inventory manifests and keys as AWS writes them. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { decodeInventoryKey, parseManifest } from "../../src/stores/inventory.js";
import { UsageError } from "../../src/core/types.js";

test("inventory keys are URL-decoded as a form: + is a space, %2B a plus", () => {
  assert.equal(decodeInventoryKey("a+b%2Bc%2Fd%C3%A9"), "a b+c/dé");
  assert.equal(decodeInventoryKey("plain/key.txt"), "plain/key.txt");
});

test("a manifest needs sourceBucket, fileFormat and files[]; CSV needs its fileSchema; ORC is refused", () => {
  const ok = parseManifest(
    JSON.stringify({ sourceBucket: "b", fileFormat: "CSV", fileSchema: "Bucket, Key", files: [{ key: "k" }] }),
    "s3://i/m.json",
  );
  assert.equal(ok.sourceBucket, "b");
  const refused = (text: string) => assert.throws(() => parseManifest(text, "s3://i/m.json"), UsageError);
  refused("not json");
  refused(JSON.stringify({ fileFormat: "CSV", files: [] }));
  refused(JSON.stringify({ sourceBucket: "b", fileFormat: "CSV", files: [{}] }));
  refused(JSON.stringify({ sourceBucket: "b", fileFormat: "ORC", fileSchema: "x", files: [] }));
  refused(JSON.stringify({ sourceBucket: "b", fileFormat: "CSV", files: [] }));
});
