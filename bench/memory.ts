/**
 * Memory stays flat as buckets grow: a no-op sync of N keys (default 1,000,000) between two
 * synthetic stores that generate their listings on the fly (no server, no stored listing), through
 * the real planner and executor. Reports peak RSS (VmHWM) and time; writes bench/results/memory.md.
 * Usage: npm run bench:memory [-- N]
 */
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { Readable } from "node:stream";
import { sync } from "../src/sync.js";
import type { DeleteFailure, KeyRange, ObjectDetails, ObjectInfo, ObjectStore } from "../src/core/types.js";

/** N keys in S3 order, generated lazily: a bucket of any size in constant memory. */
class SyntheticStore implements ObjectStore {
  constructor(
    readonly description: string,
    private readonly count: number,
  ) {}
  async *list(_range?: KeyRange): AsyncGenerator<ObjectInfo> {
    for (let i = 0; i < this.count; i++) {
      const n = String(i).padStart(9, "0");
      yield {
        key: `data/${n.slice(0, 3)}/${n}.bin`,
        size: 1024,
        lastModified: 1_700_000_000_000,
        etag: "0cc175b9c0f1b6a831c399e269772661",
      };
    }
  }
  async head(): Promise<ObjectDetails | undefined> {
    return undefined;
  }
  async get(): Promise<{ body: Readable; details: ObjectDetails }> {
    throw new Error("a no-op sync reads nothing");
  }
  async put(): Promise<void> {
    throw new Error("a no-op sync writes nothing");
  }
  async deleteMany(): Promise<DeleteFailure[]> {
    return [];
  }
}

const n = Number(process.argv[2] ?? 1_000_000);
const peak = () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8"))![1]) / 1024;
const before = peak();
const started = Date.now();
const { summary } = await sync({
  source: new SyntheticStore("synthetic://source/", n),
  target: new SyntheticStore("synthetic://target/", n),
  delete: true,
});
const seconds = (Date.now() - started) / 1000;
const result = {
  keys: n,
  skipped: summary.skipped,
  seconds,
  keysPerSecond: Math.round(n / seconds),
  peakRssMiB: Math.round(peak()),
  startRssMiB: Math.round(before),
};
if (summary.skipped !== n) throw new Error(`expected ${n} skips, got ${summary.skipped}`);
const md = `## No-op sync memory (${new Date().toISOString().slice(0, 10)})

A no-op sync of ${n.toLocaleString("en")} keys between two synthetic stores (listings generated on the fly), through the real planner and executor (\`npm run bench:memory\`).

| keys | time (s) | keys/s | peak RSS (MiB) | RSS at start (MiB) |
|---:|---:|---:|---:|---:|
| ${n.toLocaleString("en")} | ${seconds.toFixed(1)} | ${result.keysPerSecond.toLocaleString("en")} | ${result.peakRssMiB} | ${result.startRssMiB} |
`;
mkdirSync(new URL("../../bench/results/", import.meta.url), { recursive: true });
writeFileSync(new URL("../../bench/results/memory.md", import.meta.url), md);
console.log(md);
