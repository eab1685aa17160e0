/** The Redis the distributed tests use. */
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { REPO } from "./s3.js";

/** The Redis of the tests: BUCKETSYNC_REDIS_URL, or the private one scripts/redis-server.sh starts (it fails loudly when it cannot). */
export function redisUrl(): string {
  if (process.env.BUCKETSYNC_REDIS_URL) return process.env.BUCKETSYNC_REDIS_URL;
  let out: string;
  try {
    out = execFileSync("bash", [join(REPO, "scripts", "redis-server.sh"), "start"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(
      `no Redis for the distributed tests: scripts/redis-server.sh start failed: ${e.stderr || e.message}`,
    );
  }
  const m = /BUCKETSYNC_REDIS_URL=(\S+)/.exec(out);
  if (!m) throw new Error(`scripts/redis-server.sh start printed no BUCKETSYNC_REDIS_URL:\n${out}`);
  return m[1]!;
}
