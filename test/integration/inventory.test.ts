/**
 * Issue 17: S3 Inventory as the source listing. The test writes a synthetic inventory in AWS's
 * documented format (manifest.json with fileSchema and files[], gzip CSV data files, keys
 * URL-encoded) into a bucket, changes the source after "taking" it, and syncs through the fault
 * proxy, which counts the requests: no LIST on the source, the target equal to the live source.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { DeleteObjectCommand } from "@aws-sdk/client-s3";
import { startFaultProxy, type FaultProxy } from "../helpers/fault-proxy.js";
import { takeInventory } from "../helpers/inventory.js";
import {
  getText,
  keys,
  listAll,
  put,
  putMany,
  runCli,
  s3Client,
  s3TestEnv,
  testBuckets,
  type CliResult,
} from "../helpers/s3.js";

const client = s3Client("a");
const { bucket, removeAll } = testBuckets(client);
const proxies: FaultProxy[] = [];
after(async () => {
  for (const p of proxies) await p.close();
  await removeAll();
  client.destroy();
});
const show = (r: CliResult) =>
  `exit ${r.code}\n--- stderr\n${r.stderr.slice(0, 3000)}\n--- stdout\n${r.stdout.slice(-2000)}`;

let src: string;
let inv: string;
let manifest: string;
const base = Array.from({ length: 400 }, (_, i) => `data/${String(i).padStart(4, "0")}`);
const odd = ["with space.txt", "plus+sign.txt", "percent%41.txt", "unicode-é-\u{1F600}.txt"];

before(async () => {
  src = await bucket("inv-src");
  inv = await bucket("inv-inv");
  await putMany(
    client,
    src,
    [...base, ...odd, "gone/copy-me-not", "gone/in-target"].map((k) => [k, `v1 ${k}`]),
  );
  manifest = await takeInventory(client, src, inv);
  // The day after the inventory: keys removed, added and changed on the live source.
  await client.send(new DeleteObjectCommand({ Bucket: src, Key: "gone/copy-me-not" }));
  await client.send(new DeleteObjectCommand({ Bucket: src, Key: "gone/in-target" }));
  await put(client, src, "added/later", "new since the inventory");
  await put(client, src, "data/0007", "changed since the inventory: longer body");
});

describe("--source-inventory", () => {
  test("drives a sync: no LIST on the source, the target equal to the live source for the keys it lists", async () => {
    const dst = await bucket("inv-dst");
    // The target already has: a key the inventory has and the source lost since, a key added to
    // the source after the inventory (so the inventory lacks it: it must not be deleted), and junk.
    await putMany(client, dst, [
      ["gone/in-target", "old"],
      ["added/later", "new since the inventory"],
      ["junk/stale", "stale"],
      [base[3]!, "v1 data/0003"],
    ]);
    const p = await startFaultProxy({ target: s3TestEnv().endpoint });
    proxies.push(p);
    const r = await runCli(
      ["sync", `s3://${src}`, `s3://${dst}`, "--source-inventory", manifest, "--delete", "--endpoint-url", p.url],
      { endpoint: false },
    );
    assert.equal(r.code, 0, show(r));
    const sourceLists = p.log.filter((l) => l.bucket === src && l.operation.startsWith("ListObjects")).length;
    assert.equal(sourceLists, 0, "the source was never listed");
    assert.ok(
      p.log.some((l) => l.bucket === dst && l.operation === "ListObjectsV2"),
      "the target was listed live",
    );

    const live = new Map((await listAll(client, src)).map((o) => [o.key, o.etag]));
    const got = new Map((await listAll(client, dst)).map((o) => [o.key, o.etag]));
    for (const k of [...base, ...odd]) assert.equal(got.get(k), live.get(k), `${k} matches the live source`);
    assert.equal(await getText(client, dst, "data/0007"), "changed since the inventory: longer body");
    assert.ok(!got.has("gone/copy-me-not"), "a key gone from the source is not copied");
    assert.ok(!got.has("gone/in-target"), "the target's copy of a key the live source lost is deleted");
    assert.ok(got.has("added/later"), "a key the inventory lacks but the live source has is not deleted");
    assert.ok(!got.has("junk/stale"), "a key neither has is deleted (confirmed by a HEAD)");
    assert.doesNotMatch(r.stderr, /error|mismatch/i);
  });

  test("a prefix of the source reads only the inventory's keys under it", async () => {
    const dst = await bucket("inv-pfx");
    const r = await runCli(["sync", `s3://${src}/data`, `s3://${dst}/copy`, "--source-inventory", manifest]);
    assert.equal(r.code, 0, show(r));
    assert.deepEqual(
      await keys(client, dst),
      base.map((k) => `copy/${k.slice("data/".length)}`),
    );
  });

  test("a Parquet inventory drives the same sync", async () => {
    const parquet = await takeInventory(client, src, inv, 2, "Parquet");
    const dst = await bucket("inv-parquet");
    const r = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--source-inventory", parquet]);
    assert.equal(r.code, 0, show(r));
    const live = (await listAll(client, src)).map((o) => `${o.key} ${o.etag}`);
    assert.deepEqual(
      (await listAll(client, dst)).map((o) => `${o.key} ${o.etag}`),
      live,
    );
  });

  test("bad inventories: one line, exit 2, nothing changed", async () => {
    const dst = await bucket("inv-bad");
    const missing = await runCli([
      "sync",
      `s3://${src}`,
      `s3://${dst}`,
      "--source-inventory",
      `s3://${inv}/nope/manifest.json`,
    ]);
    assert.equal(missing.code, 2, show(missing));
    assert.match(missing.stderr, /^bucketsync: no inventory manifest at s3:\/\/.*nope\/manifest\.json\n$/);
    await put(
      client,
      inv,
      "orc/manifest.json",
      JSON.stringify({ sourceBucket: src, fileFormat: "ORC", fileSchema: "struct<bucket:string>", files: [] }),
    );
    const orc = await runCli([
      "sync",
      `s3://${src}`,
      `s3://${dst}`,
      "--source-inventory",
      `s3://${inv}/orc/manifest.json`,
    ]);
    assert.equal(orc.code, 2, show(orc));
    assert.match(
      orc.stderr,
      /manifest\.json: ORC inventories are not read; bucketsync reads CSV and Parquet inventories/,
    );
    const other = await bucket("inv-other");
    const wrong = await runCli(["sync", `s3://${other}`, `s3://${dst}`, "--source-inventory", manifest]);
    assert.equal(wrong.code, 2, show(wrong));
    assert.match(wrong.stderr, new RegExp(`lists bucket ${src}, not the source's bucket ${other}`));
    const notManifest = await runCli(["sync", `s3://${src}`, `s3://${dst}`, "--source-inventory", "./manifest.json"]);
    assert.equal(notManifest.code, 2, show(notManifest));
    assert.deepEqual(await keys(client, dst), []);
  });
});
