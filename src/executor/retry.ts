import { setTimeout as sleep } from "node:timers/promises";
import { classifyError } from "../core/errors.js";

export interface RetryPolicy {
  /** Total tries, including the first. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 6, baseDelayMs: 100, maxDelayMs: 10_000 };

/**
 * Runs `fn`, retrying only errors classified "retry" (throttling, 5xx, dropped connections),
 * with exponential backoff and full jitter. Client errors fail at once.
 */
export async function withRetry<T>(fn: () => Promise<T>, policy: RetryPolicy = DEFAULT_RETRY, signal?: AbortSignal): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= policy.attempts || signal?.aborted || classifyError(err).class !== "retry") throw err;
      const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
      await sleep(Math.random() * ceiling);
    }
  }
}
