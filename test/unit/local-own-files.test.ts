/**
 * A local folder's own files: the run's outputs (`ownFiles`, e.g. the --report file) are never
 * data, and temporary files left by interrupted downloads are removed by a run that writes into
 * the folder, unless their writer is still running.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { LocalStore, type LocalStoreOptions } from "../../src/stores/local/local-store.js";
import { collect } from "../helpers/memory.js";

const base = mkdtempSync(join(tmpdir(), "bucketsync-own-files-"));
const children: ReturnType<typeof spawn>[] = [];
after(() => {
  for (const c of children) c.kill("SIGKILL");
  rmSync(base, { recursive: true, force: true });
});
let counter = 0;
function folder(): string {
  const dir = join(base, `t${counter++}`);
  mkdirSync(dir);
  return dir;
}
function populate(root: string, files: Record<string, string>): void {
  for (const [key, content] of Object.entries(files)) {
    mkdirSync(join(root, key, ".."), { recursive: true });
    writeFileSync(join(root, key), content);
  }
}
const keysOf = async (store: LocalStore) => (await collect(store.list())).map((o) => o.key);
/** Every name under a folder, `/`-joined, sorted: temporary files included. */
function namesUnder(root: string, prefix = ""): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(root, prefix))) {
    const rel = prefix + name;
    if (statSync(join(root, rel)).isDirectory()) out.push(...namesUnder(root, `${rel}/`));
    else out.push(rel);
  }
  return out.sort();
}

/** A temporary file name as a writer with this pid makes it: `.bucketsync-<pid, 8 hex><4 hex>.tmp`. */
const tempOf = (pid: number, seq = 1) =>
  `.bucketsync-${pid.toString(16).padStart(8, "0")}${seq.toString(16).padStart(4, "0")}.tmp`;
/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  await new Promise((resolve) => child.once("exit", resolve));
  return child.pid!;
}
/** The pid of a process that keeps running until the tests end. */
function livePid(): number {
  const child = spawn(process.execPath, ["-e", "setTimeout(() => {}, 600000)"], { stdio: "ignore" });
  children.push(child);
  return child.pid!;
}

// ------------------------------------------------------------------ own files

test("ownFiles: the run's report file is not listed, whichever way its path is spelled; a file of that name elsewhere is", async () => {
  const root = folder();
  populate(root, {
    "a.txt": "a",
    "zz-report.jsonl": '{"half":',
    "sub/zz-report.jsonl": "someone else's file",
    "sub/b.txt": "b",
  });
  const alias = `${root}-alias`;
  symlinkSync(root, alias);
  const spellings = [
    join(root, "zz-report.jsonl"),
    join(root, "sub", "..", "zz-report.jsonl"), // not normalized by the caller
    join(alias, "zz-report.jsonl"), // through a symbolic link to the folder
  ];
  for (const own of spellings) {
    const options: LocalStoreOptions = { ownFiles: [own] };
    assert.deepEqual(await keysOf(new LocalStore(root, options)), ["a.txt", "sub/b.txt", "sub/zz-report.jsonl"], own);
    // The folder itself named through the link: the same file, the same answer.
    assert.deepEqual(
      await keysOf(new LocalStore(alias, options)),
      ["a.txt", "sub/b.txt", "sub/zz-report.jsonl"],
      `${own} via ${alias}`,
    );
  }
  // Without ownFiles it is an ordinary file.
  assert.deepEqual(await keysOf(new LocalStore(root)), [
    "a.txt",
    "sub/b.txt",
    "sub/zz-report.jsonl",
    "zz-report.jsonl",
  ]);
});

test("ownFiles: an own file reached through a followed symbolic link under another name is not listed either", async () => {
  const root = folder();
  populate(root, { "a.txt": "a", "logs/run.jsonl": "{", "logs/older.jsonl": "{}" });
  symlinkSync(join(root, "logs", "run.jsonl"), join(root, "latest.jsonl"));
  const options: LocalStoreOptions = { ownFiles: [join(root, "logs", "run.jsonl")], followSymlinks: true };
  assert.deepEqual(await keysOf(new LocalStore(root, options)), ["a.txt", "logs/older.jsonl"]);
});

test("ownFiles: a missing own file, or one outside the folder, changes nothing", async () => {
  const root = folder();
  populate(root, { "a.txt": "a", "b/c.txt": "c" });
  const elsewhere = join(folder(), "report.jsonl");
  writeFileSync(elsewhere, "{");
  const options: LocalStoreOptions = { ownFiles: [join(root, "not-yet.jsonl"), elsewhere] };
  assert.deepEqual(await keysOf(new LocalStore(root, options)), ["a.txt", "b/c.txt"]);
});

test("ownFiles: a download never replaces an own file (a bucket that already holds an old report)", async () => {
  const root = folder();
  populate(root, { "zz-report.jsonl": "this run's report" });
  const store = new LocalStore(root, { ownFiles: [join(root, "zz-report.jsonl")] });
  await assert.rejects(
    store.put("zz-report.jsonl", Buffer.from("old report"), 10, {}, {}),
    (err: Error & { code?: string }) => {
      assert.equal(err.code, "PathConflict");
      assert.match(err.message, /zz-report\.jsonl.*this run's own/);
      return true;
    },
  );
  assert.equal(readFileSync(join(root, "zz-report.jsonl"), "utf8"), "this run's report");
  await store.put("other.jsonl", Buffer.from("data"), 4, {}, {});
  assert.equal(readFileSync(join(root, "other.jsonl"), "utf8"), "data");
});

// ------------------------------------------------------------------ temporary files

test("temporary files carry the writer's pid", async () => {
  const root = folder();
  const store = new LocalStore(root);
  const body = new PassThrough();
  const writing = store.put("k.bin", body, 6, {}, {});
  body.write("abc");
  let temp: string | undefined;
  for (let i = 0; i < 200 && !temp; i++) {
    await new Promise((r) => setTimeout(r, 5));
    temp = readdirSync(root).find((n) => n.startsWith(".bucketsync-"));
  }
  assert.ok(temp, "a temporary file while writing");
  assert.match(temp, /^\.bucketsync-[0-9a-f]{12}\.tmp$/, "the documented shape, `.bucketsync-<12 hex>.tmp`");
  assert.equal(parseInt(temp.slice(".bucketsync-".length, ".bucketsync-".length + 8), 16), process.pid);
  body.end("def");
  await writing;
  assert.deepEqual(readdirSync(root), ["k.bin"]);
  assert.equal(readFileSync(join(root, "k.bin"), "utf8"), "abcdef");
});

test("a folder a run writes into: its first write removes the temporary files of writers that are gone, or untouched for days; live writers' stay", async () => {
  const root = folder();
  populate(root, { "a.txt": "a", "d/e.txt": "e", "z.txt": "z" });
  const dead = await deadPid();
  const live = livePid();
  const old = new Date(Date.now() - 3 * 24 * 3600_000);
  const stale = [tempOf(dead), `d/${tempOf(dead, 2)}`, tempOf(live, 3), ".bucketsync-0123456789ab.tmp"];
  const kept = [tempOf(live, 4), `d/${tempOf(process.pid, 5)}`, tempOf(process.ppid, 6)];
  for (const name of [...stale, ...kept]) writeFileSync(join(root, name), "partial");
  // A live pid reused by another program, and an older version's name whose "pid" may be anyone's: the age decides.
  utimesSync(join(root, tempOf(live, 3)), old, old);
  utimesSync(join(root, ".bucketsync-0123456789ab.tmp"), old, old);

  const store = new LocalStore(root);
  assert.deepEqual(
    await keysOf(store),
    ["a.txt", "d/e.txt", "z.txt"],
    "temporary files are never listed; order unchanged",
  );
  assert.equal(namesUnder(root).length, 3 + stale.length + kept.length, "a listing alone removes nothing");
  await store.put("d/new.txt", Buffer.from("new"), 3, {}, {});
  assert.deepEqual(
    namesUnder(root),
    ["a.txt", "d/e.txt", "d/new.txt", "z.txt", ...kept].sort(),
    "stale ones removed, live ones kept",
  );

  // A run that writes first (sync creates the target folder) removes them as its listing passes them.
  for (const name of stale) writeFileSync(join(root, name), "partial");
  utimesSync(join(root, tempOf(live, 3)), old, old);
  utimesSync(join(root, ".bucketsync-0123456789ab.tmp"), old, old);
  const next = new LocalStore(root);
  await next.ensureRoot();
  assert.deepEqual(await keysOf(next), ["a.txt", "d/e.txt", "d/new.txt", "z.txt"]);
  assert.deepEqual(namesUnder(root), ["a.txt", "d/e.txt", "d/new.txt", "z.txt", ...kept].sort());
});

test("deletes are writes too: a run that only deletes removes stale temporary files", async () => {
  const root = folder();
  populate(root, { "gone.txt": "g", "d/gone.txt": "g" });
  const dead = await deadPid();
  writeFileSync(join(root, "d", tempOf(dead)), "partial");
  const store = new LocalStore(root);
  assert.deepEqual(await keysOf(store), ["d/gone.txt", "gone.txt"]);
  assert.deepEqual(await store.deleteMany(["d/gone.txt", "gone.txt"]), []);
  assert.deepEqual(readdirSync(root), [], "the folder it emptied is pruned too");
});

test("a folder only read (a source, a dry run, check) keeps every temporary file", async () => {
  const root = folder();
  populate(root, { "a.txt": "a" });
  const dead = await deadPid();
  const old = new Date(Date.now() - 3 * 24 * 3600_000);
  writeFileSync(join(root, tempOf(dead)), "partial");
  writeFileSync(join(root, ".bucketsync-0123456789ab.tmp"), "partial");
  utimesSync(join(root, ".bucketsync-0123456789ab.tmp"), old, old);
  assert.deepEqual(await keysOf(new LocalStore(root)), ["a.txt"]);
  assert.deepEqual(namesUnder(root), [tempOf(dead), ".bucketsync-0123456789ab.tmp", "a.txt"].sort());
});

test("a write in progress is never removed by a concurrent run's listing (same process, another store)", async () => {
  const root = folder();
  const writer = new LocalStore(root);
  const body = new PassThrough();
  const writing = writer.put("big.bin", body, 8, {}, {});
  body.write("1234");
  for (let i = 0; i < 200 && !readdirSync(root).some((n) => n.startsWith(".bucketsync-")); i++)
    await new Promise((r) => setTimeout(r, 5));
  const other = new LocalStore(root);
  await other.ensureRoot();
  assert.deepEqual(await keysOf(other), []);
  assert.equal(
    readdirSync(root).filter((n) => n.startsWith(".bucketsync-")).length,
    1,
    "the temporary file is still there",
  );
  body.end("5678");
  await writing;
  assert.equal(readFileSync(join(root, "big.bin"), "utf8"), "12345678");
  assert.ok(!readdirSync(root).some((n) => n.startsWith(".bucketsync-")));
  assert.ok(existsSync(join(root, "big.bin")));
});
