import { setTimeout as sleep } from "node:timers/promises";
import { classifyError, type ErrorInfo } from "./errors.js";

export interface RetryPolicy {
  /** Total tries, including the first. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 8, baseDelayMs: 100, maxDelayMs: 10_000 };

/**
 * Runs `fn`, retrying only errors classified "retry" (throttling, 5xx, dropped connections,
 * timeouts), with exponential backoff and full jitter. Client errors fail at once.
 * `onRetry` hears each retried error (the executor slows down on throttling).
 */
export async function withRetry<T>(
  fn: () => Promise<T>,
  policy: RetryPolicy = DEFAULT_RETRY,
  signal?: AbortSignal,
  onRetry?: (info: ErrorInfo) => void,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const info = classifyError(err);
      if (attempt >= policy.attempts || signal?.aborted || info.class !== "retry") throw err;
      onRetry?.(info);
      const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
      await sleep(Math.random() * ceiling);
    }
  }
}

/** Throttling answers: the server asks us to slow down. */
export function isThrottle(info: ErrorInfo): boolean {
  return ["SlowDown", "Throttling", "ThrottlingException", "TooManyRequests", "ServiceUnavailable"].includes(info.code) || /HTTP (429|503)/.test(info.message);
}
