/** Issue 17: the record of multipart uploads; the next run takes over a dead process's orphans. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { UploadRecord, type RecordedUpload } from "../../src/stores/s3/upload-record.js";

const host = hostname().replace(/[^A-Za-z0-9.-]/g, "_");
const line = (op: string, u: Partial<RecordedUpload>) => JSON.stringify({ op, ...u }) + "\n";

test("a dead process's open uploads in this bucket are aborted; others stay recorded; live processes are left alone", async () => {
  const dir = mkdtempSync(join(tmpdir(), "bs-record-"));
  const dead = spawnSync(process.execPath, ["-e", ""]).pid!;
  const at = (bucket: string, key: string, uploadId: string) => ({ endpoint: "http://e", bucket, key, uploadId });
  writeFileSync(
    join(dir, `${host}-${dead}-0a0b.jsonl`),
    line("start", at("b", "k1", "u1")) +
      line("start", at("b", "k2", "u2")) +
      line("end", { uploadId: "u2" }) +
      line("start", at("other", "k3", "u3")) +
      line("start", at("b", "k4", "u4")) +
      '{"op":"start","endpo', // cut short by the crash
  );
  // A live process (this one's parent) and another host: never touched.
  writeFileSync(join(dir, `${host}-${process.ppid}-0c0d.jsonl`), line("start", at("b", "live", "u5")));
  writeFileSync(join(dir, `elsewhere-${dead}-0e0f.jsonl`), line("start", at("b", "far", "u6")));
  const record = new UploadRecord(dir);
  const aborted: string[] = [];
  const n = await record.abortOrphans("http://e", "b", async (u) => {
    if (u.uploadId === "u4") throw new Error("network down");
    aborted.push(u.uploadId);
  });
  assert.equal(n, 1);
  assert.deepEqual(aborted, ["u1"]);
  const files = readdirSync(dir).sort();
  assert.equal(files.length, 3, files.join(", "));
  const mine = files.find((f) => f.includes(`-${process.pid}-`))!;
  const text = readFileSync(join(dir, mine), "utf8");
  // u3 (another bucket) and u4 (abort failed) are still open, now in this process's record.
  const again: string[] = [];
  await new UploadRecord(dir).abortOrphans("http://e", "other", async (u) => void again.push(u.uploadId));
  assert.deepEqual(again, [], "this process is alive: its record is not taken");
  assert.match(text, /"u3"/);
  assert.match(text, /"u4"/);
  assert.doesNotMatch(text, /"u2"/);
});
