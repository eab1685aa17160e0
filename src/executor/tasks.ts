/**
 * The one task runner of bucketsync: copies, delete batches, version replays and ACL changes are
 * tasks pulled from one stream by a bounded pool (core/async.ts runPool), each request-level step
 * run through `attempt()`: a slot of the adaptive limit per try, retries by error class, and one
 * rule for what stops the whole run. Every caller (execute, syncAllVersions, applyAcl) uses this
 * instead of its own pool, retry loop and classification.
 */
import { runPool } from "../core/async.js";
import { classifyError, classifyListingFailure, type ErrorInfo } from "../core/errors.js";
import { DEFAULT_RETRY, isThrottle, withRetry, type RetryPolicy } from "../core/retry.js";
import { AdaptiveLimit } from "./adaptive-limit.js";

/**
 * Codes that, before any task succeeded, mean every other task would fail the same way: the
 * target refuses the run's write options (--storage-class, --sse, --acl) or the access.
 */
export const SETUP_CODES = new Set([
  "AccessDenied",
  "InvalidArgument",
  "InvalidStorageClass",
  "InvalidRequest",
  "InvalidEncryptionAlgorithmError",
  "NotImplemented",
]);

export type Attempted<T> = { ok: true; value: T } | { ok: false; info: ErrorInfo; stopsRun: boolean };

export interface TaskRunnerOptions {
  concurrency: number;
  retry?: RetryPolicy;
  /** Aborting stops taking new tasks and interrupts backoff waits. */
  signal?: AbortSignal;
}

export class TaskRunner {
  readonly retry: RetryPolicy;
  /** Set when the run must stop: a listing failed, credentials were refused, a setup error. */
  fatal?: ErrorInfo & { context: string };
  private readonly limit: AdaptiveLimit;
  private succeeded = 0;
  private halted = false;

  constructor(private readonly options: TaskRunnerOptions) {
    this.retry = options.retry ?? DEFAULT_RETRY;
    this.limit = new AdaptiveLimit(Math.max(1, options.concurrency));
  }

  /** True once the run stops taking new work (fatal error or interrupt). */
  get stopped(): boolean {
    return this.halted || this.fatal !== undefined || this.options.signal?.aborted === true;
  }

  /** Stops taking new tasks without a failure (a --max-duration cut-off); work in flight goes on. */
  halt(): void {
    this.halted = true;
  }

  /** Requests the adaptive limit lets go at once now (for metrics). */
  get currentLimit(): number {
    return this.limit.current;
  }

  /**
   * Runs `work` for every item of `tasks`, `concurrency` at a time; the stream advances only when
   * a worker is free. A failure of the stream itself (a listing) stops the run as fatal.
   */
  async run<T>(
    tasks: AsyncIterable<T>,
    work: (task: T) => Promise<void>,
    concurrency = this.options.concurrency,
  ): Promise<void> {
    await runPool(tasks, concurrency, work, {
      shouldStop: () => this.stopped,
      onSourceError: (err) => (this.fatal ??= classifyListingFailure(err)),
    });
  }

  /**
   * One step of a task, retried: each try takes a slot of the adaptive limit and the backoff
   * between tries holds none (after a burst of 503s the retries queue behind the lowered limit
   * instead of all retrying at once). A failure is classified once; one that every other task
   * would repeat stops the run (`stopsRun`, and `fatal` is set with `context`).
   */
  async attempt<T>(context: string, fn: () => Promise<T>, limited = true): Promise<Attempted<T>> {
    const once = async () => {
      const epoch = limited ? await this.limit.acquire() : 0;
      try {
        return await fn();
      } catch (err) {
        if (limited && isThrottle(classifyError(err))) this.limit.onThrottle(epoch);
        throw err;
      } finally {
        if (limited) this.limit.release();
      }
    };
    try {
      const value = await withRetry(once, this.retry, this.options.signal);
      this.succeeded++;
      if (limited) this.limit.onSuccess();
      return { ok: true, value };
    } catch (err) {
      const info = classifyError(err);
      const stopsRun = info.class === "fatal" || (this.succeeded === 0 && SETUP_CODES.has(info.code));
      if (stopsRun) this.fatal ??= { ...info, context };
      return { ok: false, info, stopsRun };
    }
  }

  /** Marks the run interrupted (its listings' abort errors are the interrupt's, not failures of their own). */
  settleInterrupt(): void {
    if (this.options.signal?.aborted)
      this.fatal = { code: "Interrupted", message: "interrupted", class: "fatal", context: "run" };
  }
}
