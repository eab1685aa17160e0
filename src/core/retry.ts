import { setTimeout as sleep } from "node:timers/promises";
import { classifyError, type ErrorInfo } from "./errors.js";

export interface RetryPolicy {
  /** Total tries, including the first. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /**
   * How long a lost connection to a server that answered before is retried (ms), whatever the
   * number of tries: long enough to ride out a server or load balancer restart.
   */
  outageMs?: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 8, baseDelayMs: 100, maxDelayMs: 10_000, outageMs: 60_000 };
/** Backoff ceiling while a connection is down: try again often enough to notice the server is back. */
const OUTAGE_MAX_DELAY_MS = 2_000;

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
  let outageSince: number | undefined;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const info = classifyError(err);
      if (signal?.aborted || info.class !== "retry") throw err;
      if (info.outage) {
        outageSince ??= Date.now();
        const down = Date.now() - outageSince;
        if (down >= (policy.outageMs ?? 0) && attempt >= policy.attempts) {
          if (err && typeof err === "object") (err as { $outageExhausted?: number }).$outageExhausted = down;
          throw err;
        }
      } else if (attempt >= policy.attempts) throw err;
      onRetry?.(info);
      const ceiling = Math.min(
        info.outage ? OUTAGE_MAX_DELAY_MS : policy.maxDelayMs,
        policy.baseDelayMs * 2 ** (Math.min(attempt, 30) - 1),
      );
      // Full jitter; during an outage at least half the ceiling, so thousands of waiting requests do not spin.
      const delay = info.outage ? ceiling / 2 + (Math.random() * ceiling) / 2 : Math.random() * ceiling;
      try {
        await sleep(delay, undefined, signal ? { signal } : undefined);
      } catch {
        throw err; // interrupted while waiting: the last error stands
      }
    }
  }
}

/** Throttling answers: the server asks us to slow down. */
export function isThrottle(info: ErrorInfo): boolean {
  return (
    ["SlowDown", "Throttling", "ThrottlingException", "TooManyRequests", "ServiceUnavailable"].includes(info.code) ||
    /HTTP (429|503)/.test(info.message)
  );
}
