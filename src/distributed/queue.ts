/** What the coordinator, the workers and `status` share about the queue: its options, the connection check, run records. */
import type { Queue, RedisClient } from "bullmq";
import { withTimeout } from "../core/async.js";
import { JOB_VERSION, KEY_PREFIX, redactRedisUrl, type RunRecord } from "./job.js";

export interface QueueOptions {
  /** `redis://host:6379[/db]` (or `rediss://`): where the range jobs live. */
  queue: string;
  /** BullMQ queue name (default "bucketsync"); coordinator and workers must agree. */
  queueName?: string;
}

export function parseRecord(text: string | null): RunRecord | undefined {
  if (!text) return undefined;
  try {
    const r = JSON.parse(text) as RunRecord;
    return r.v === JOB_VERSION && Array.isArray(r.ranges) ? r : undefined;
  } catch {
    return undefined;
  }
}

/** The queue's Redis client once it answers; throws a one-line message (without the URL's password) when it does not within 15 s. */
export async function connectQueue(queue: Queue, url: string): Promise<RedisClient> {
  let lastError: Error | undefined;
  const onError = (err: Error) => (lastError = err);
  queue.on("error", onError);
  try {
    const client = await withTimeout(queue.waitUntilReady(), 15_000, "no answer within 15 s");
    await withTimeout(client.get(`${KEY_PREFIX}:ping`), 15_000, "no answer within 15 s");
    return client;
  } catch (err) {
    const why = lastError ? `${(err as Error).message} (${redactRedisUrl(lastError.message)})` : (err as Error).message;
    throw new Error(`cannot reach Redis at ${redactRedisUrl(url)}: ${why}`);
  } finally {
    queue.off("error", onError);
  }
}
