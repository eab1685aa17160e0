/** Issue 14: every option is declared once (options/table.ts) and everything else is derived from it. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Command } from "commander";
import { configKeyOf, flagOf } from "../../src/options/define.js";
import { OPTION_TABLE } from "../../src/options/table.js";
import { addRunOptions, runOptionsFrom } from "../../src/cli/flags.js";
import { jobOptionsFrom, parseRangeJob } from "../../src/distributed/job.js";
import { jobOptionValues } from "../../src/config/resolve.js";
import { validateSyncOptions } from "../../src/sync.js";
import { UsageError } from "../../src/core/types.js";

const parsed = (args: string[], name: "sync" | "run" | "check" = "sync") => {
  const filters: { type: "include" | "exclude"; pattern: string }[] = [];
  const command = addRunOptions(new Command(name).exitOverride(), name, filters);
  command.parse(args, { from: "user" });
  return runOptionsFrom(command.opts(), name, filters);
};

test("options: every table option with a flag is a flag of each of its commands", () => {
  for (const name of ["sync", "run", "check"] as const) {
    const command = addRunOptions(new Command(name), name, []);
    const longs = new Set(command.options.map((o) => o.long));
    for (const [key, def] of Object.entries(OPTION_TABLE)) {
      const flag = flagOf(key, def);
      if (!flag || !def.commands.includes(name)) continue;
      assert.ok(longs.has(flag), `${name} has ${flag}`);
      if (def.negatable) assert.ok(longs.has(`--no-${flag.slice(2)}`), `${name} has --no-${flag.slice(2)}`);
    }
  }
});

test("options: flags parse into option values; the strict parsers quote the user's text", () => {
  assert.deepEqual(
    parsed(["--delete", "--part-size", "8MiB", "--acl", "public-read", "--checksum", "--exclude", "*.tmp"]),
    {
      delete: true,
      partSize: 8 * 1024 * 1024,
      acl: "public-read",
      compare: "checksum",
      filters: [{ type: "exclude", pattern: "*.tmp" }],
      attributes: {},
      replaceProperties: {},
    },
  );
  assert.equal(parsed(["--dryrun"]).dryRun, true, "aws-cli's spelling");
  assert.throws(() => parsed(["--max-delete", "5x"]), /invalid --max-delete '5x'/);
});

test("options: a job's settings sit under the flags; --no-x turns a job's switch off", () => {
  const job = { delete: true, part_size: "16MiB", size_only: true, exclude: ["tmp/*"] };
  const filters: { type: "include" | "exclude"; pattern: string }[] = [];
  const command = addRunOptions(new Command("run").exitOverride(), "run", filters);
  command.parse(["--no-delete", "--include", "tmp/keep"], { from: "user" });
  const values = runOptionsFrom(command.opts(), "run", filters, job);
  assert.equal(values.delete, false);
  assert.equal(values.partSize, 16 * 1024 * 1024);
  assert.equal(values.compare, "size-only");
  assert.deepEqual(values.filters, [
    { type: "exclude", pattern: "tmp/*" },
    { type: "include", pattern: "tmp/keep" },
  ]);
  assert.deepEqual(jobOptionValues({ verify: "strict", max_delete: 3 }), { verify: "strict", maxDelete: 3 });
});

test("options: every option has a config key unless it says otherwise, and range options travel to workers", () => {
  const keys = Object.entries(OPTION_TABLE).map(([key, def]) => configKeyOf(key, def));
  assert.ok(keys.includes("max_delete") && keys.includes("storage_class") && keys.includes("dry_run"));
  const options = jobOptionsFrom({
    source: "s3://a",
    target: "s3://b",
    acl: "public-read",
    verify: "strict",
    maxDelete: 5,
    concurrency: 8,
  });
  assert.deepEqual(
    options,
    { delete: false, dryRun: false, acl: "public-read", verify: "strict", compare: "size-and-time", filters: [] },
    "local options stay home",
  );
  const job = parseRangeJob({
    v: 1,
    runKey: "0123456789abcdef",
    generation: 1,
    index: 0,
    total: 1,
    range: {},
    source: "s3://a/",
    target: "s3://b/",
    options,
  });
  assert.equal(job.options.verify, "strict");
  assert.throws(
    () => parseRangeJob({ ...job, options: { ...options, notAnOption: true } }),
    /not a bucketsync range job/,
  );
  assert.throws(
    () => jobOptionsFrom({ source: "s3://a", target: "s3://b", allVersions: true }),
    /--all-versions is not supported by distributed sync/,
  );
});

test("options: each option's own validation runs from the table, for library callers too", () => {
  assert.throws(() => validateSyncOptions({ source: "s3://a", target: "s3://b", partSize: 1024 }), UsageError);
  assert.throws(
    () => validateSyncOptions({ source: "s3://a", target: "s3://b", verify: "sometimes" as "on" }),
    /invalid --verify 'sometimes'/,
  );
  assert.throws(
    () => validateSyncOptions({ source: "s3://a", target: "s3://b", concurrency: 0 }),
    /invalid --concurrency/,
  );
  validateSyncOptions({ source: "s3://a", target: "s3://b", partSize: 8 * 1024 * 1024, verify: "strict" });
});
