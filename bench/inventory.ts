/**
 * Inventory benchmark (issue 17): a no-op sync of a bucket already copied, once by listing both
 * sides and once with `--source-inventory` (the source never listed), each through a counting
 * proxy (no faults, no latency): requests by kind and wall time, median of BENCH_REPEATS runs.
 * BENCH_INVENTORY_KEYS keys (default 100,000) of 1 byte under 100 prefixes. Writes
 * bench/results/inventory.md. `npm run bench:inventory`.
 */
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { startFaultProxy } from "../test/helpers/fault-proxy.js";
import { takeInventory } from "../test/helpers/inventory.js";
import { CLI, RESULTS_DIR, baseChildEnv, createBucket, deleteBucket, loadServer, log, makeClient } from "./common.js";

const KEYS = Number(process.env.BENCH_INVENTORY_KEYS ?? 100_000);
const REPEATS = Math.max(1, Number(process.env.BENCH_REPEATS ?? 3));
const run = promisify(execFile);

async function main() {
  const server = loadServer();
  const client = makeClient(server.endpoint, server.region, server.credentials);
  const stamp = Date.now().toString(36);
  const [src, dst, inv] = ["src", "dst", "inv"].map((s) => `bs-bench-inv-${s}-${stamp}`);
  for (const b of [src!, dst!, inv!]) await createBucket(client, b);
  const env = baseChildEnv(server);
  try {
    log(`seeding ${KEYS} keys`);
    let next = 0;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (next < KEYS) {
          const i = next++;
          const key = `p${String(i % 100).padStart(2, "0")}/${String(i).padStart(7, "0")}`;
          await client.send(new PutObjectCommand({ Bucket: src, Key: key, Body: "x" }));
        }
      }),
    );
    log("first copy");
    await run(process.execPath, [CLI, "sync", `s3://${src}`, `s3://${dst}`, "-q", "--endpoint-url", server.endpoint], {
      env,
      maxBuffer: 64 * 1024 * 1024,
    });
    const manifest = await takeInventory(client, src!, inv!, 8);
    const rows: string[] = [];
    for (const [mode, extra] of [
      ["listing both sides", []],
      ["--source-inventory", ["--source-inventory", manifest]],
    ] as const) {
      const times: number[] = [];
      let ops: Record<string, number> = {};
      let sourceLists = 0;
      for (let r = 0; r < REPEATS; r++) {
        const proxy = await startFaultProxy({ target: server.endpoint });
        const started = performance.now();
        const out = await run(
          process.execPath,
          [CLI, "sync", `s3://${src}`, `s3://${dst}`, "-q", ...extra, "--endpoint-url", proxy.url],
          { env, maxBuffer: 64 * 1024 * 1024 },
        );
        times.push((performance.now() - started) / 1000);
        if (!/copied 0, updated 0, deleted 0/.test(out.stdout)) throw new Error(`not a no-op: ${out.stdout}`);
        ops = { ...proxy.stats.operations };
        sourceLists = proxy.log.filter((l) => l.bucket === src && l.operation.startsWith("List")).length;
        await proxy.close();
      }
      times.sort((a, b) => a - b);
      const total = Object.values(ops).reduce((a, b) => a + b, 0);
      const median = times[Math.floor(times.length / 2)]!;
      log(`${mode}: ${median.toFixed(2)} s, ${total} requests`);
      rows.push(
        `| ${mode} | ${median.toFixed(2)} s | ${total} | ${sourceLists} | ${ops.ListObjectsV2 ?? 0} | ${ops.GetObject ?? 0} | ${ops.HeadObject ?? 0} |`,
      );
    }
    const md = [
      `# No-op sync of ${KEYS.toLocaleString("en")} keys: listing vs --source-inventory`,
      "",
      `Median of ${REPEATS} runs on this machine (server and client sharing 2 cores), through a counting proxy without latency. ` +
        "Requests are what the proxy saw for the whole run (both buckets and the inventory bucket).",
      "",
      "| mode | wall time | requests | source LISTs | ListObjectsV2 (all) | GetObject (inventory) | HeadObject |",
      "|---|---|---|---|---|---|---|",
      ...rows,
      "",
    ].join("\n");
    writeFileSync(join(RESULTS_DIR, "inventory.md"), md);
    process.stdout.write(md);
  } finally {
    for (const b of [src!, dst!, inv!]) await deleteBucket(client, b).catch(() => undefined);
    client.destroy();
  }
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
