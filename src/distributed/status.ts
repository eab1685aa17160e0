/** What a queue holds: the runs it knows, each with its ranges pending, running, done and failed. */
import { Queue, type RedisClient } from "bullmq";
import type { SyncSummary } from "../executor/events.js";
import { forEachLimit } from "../core/async.js";
import { connectQueue, parseRecord, type QueueOptions } from "./queue.js";
import { DEFAULT_QUEUE_NAME, KEY_PREFIX, describeRange, jobIdOf, redactRedisUrl, redisConnection } from "./job.js";

export interface QueueStatusOptions extends QueueOptions {
  /** Only this run (its id, as the coordinator prints it). */
  runId?: string;
}

export interface RunStatus {
  runId: string;
  generation: number;
  source: string;
  target: string;
  state: "running" | "failed" | "done";
  createdAt: number;
  finishedAt?: number;
  note?: string;
  ranges: number;
  pending: number;
  running: number;
  done: number;
  failed: number;
  failedRanges: { index: number; range: string; reason: string }[];
  summary?: SyncSummary;
}

export interface QueueStatus {
  queue: string;
  queueName: string;
  workers: number;
  runs: RunStatus[];
}

/** Reads the runs recorded for a queue and the state of each of their range jobs. */
export async function queueStatus(options: QueueStatusOptions): Promise<QueueStatus> {
  const queueName = options.queueName ?? DEFAULT_QUEUE_NAME;
  const queue = new Queue(queueName, { connection: redisConnection(options.queue) });
  queue.on("error", () => undefined);
  try {
    const client = await connectQueue(queue, options.queue);
    const runs: RunStatus[] = [];
    for (const key of await scanKeys(client, `${KEY_PREFIX}:${queueName}:run:${options.runId ?? "*"}`)) {
      const record = parseRecord(await client.get(key));
      if (!record) continue;
      const status: RunStatus = {
        runId: record.runKey,
        generation: record.generation,
        source: record.source,
        target: record.target,
        state: record.state,
        createdAt: record.createdAt,
        finishedAt: record.finishedAt,
        note: record.note,
        ranges: record.ranges.length,
        pending: 0,
        running: 0,
        done: 0,
        failed: 0,
        failedRanges: [],
        summary: record.summary,
      };
      await forEachLimit(record.ranges, 64, async (range, index) => {
        const id = jobIdOf(record.runKey, record.generation, range);
        const state = await queue.getJobState(id);
        if (state === "completed") status.done++;
        else if (state === "active") status.running++;
        else if (state === "failed") {
          status.failed++;
          const job = await queue.getJob(id);
          status.failedRanges.push({ index, range: describeRange(range), reason: job?.failedReason ?? "failed" });
        } else status.pending++;
      });
      status.failedRanges.sort((a, b) => a.index - b.index);
      runs.push(status);
    }
    runs.sort((a, b) => b.createdAt - a.createdAt);
    return {
      queue: redactRedisUrl(options.queue),
      queueName,
      workers: await queue.getWorkersCount().catch(() => 0),
      runs,
    };
  } finally {
    await queue.close().catch(() => undefined);
  }
}

async function scanKeys(client: RedisClient, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = "0";
  do {
    const [next, batch] = await client.scan(cursor, { MATCH: pattern, COUNT: 1000 });
    keys.push(...batch);
    cursor = next;
  } while (cursor !== "0");
  return keys;
}
