/**
 * The one worker pool of bucketsync: `concurrency` workers pull items from one async iterator, so
 * the producer (a listing, a plan) only advances when a worker is free: bounded concurrency and
 * backpressure without a queue, as the AWS SDK's uploader does it. `shouldStop` is checked before
 * each pull. An error thrown by the iterator itself goes to `onSourceError` and stops all workers.
 * An error thrown by `work` stops the others from pulling more; the pool waits for every worker
 * to settle (nothing still in flight once it returns), then throws that first error.
 */
export async function runPool<T>(
  items: AsyncIterable<T>,
  concurrency: number,
  work: (item: T) => Promise<void>,
  options: { shouldStop?: () => boolean; onSourceError?: (err: unknown) => void } = {},
): Promise<void> {
  const iterator = items[Symbol.asyncIterator]();
  let sourceFailed = false;
  let workFailed: { err: unknown } | undefined;
  const stopped = () => sourceFailed || workFailed !== undefined || (options.shouldStop?.() ?? false);
  const worker = async () => {
    while (!stopped()) {
      let next: IteratorResult<T>;
      try {
        next = await iterator.next();
      } catch (err) {
        if (!sourceFailed) options.onSourceError?.(err);
        sourceFailed = true;
        // Without a handler the pool throws it, once every worker has settled.
        if (!options.onSourceError) workFailed ??= { err };
        return;
      }
      if (next.done) return;
      try {
        await work(next.value);
      } catch (err) {
        workFailed ??= { err };
        return;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
  if (stopped()) await iterator.return?.(undefined)?.catch(() => undefined);
  if (workFailed) throw workFailed.err;
}

/** `fn` for every item of an array, at most `limit` at a time (on the pool above). */
export async function forEachLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<void>,
): Promise<void> {
  async function* indexed() {
    for (let i = 0; i < items.length; i++) yield i;
  }
  await runPool(indexed(), limit, (i) => fn(items[i]!, i));
}

/** Waits `ms`, or less when `signal` aborts (it resolves then, it does not throw). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** `p`, or an Error(message) after `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms))),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Maps a stream with up to `limit` calls of `fn` in flight, yielding results in the input's
 * order; reads at most `limit` items ahead of the consumer (bounded memory). A failing call
 * fails the stream at its place.
 */
export async function* mapOrdered<T, R>(
  items: AsyncIterable<T>,
  limit: number,
  fn: (item: T) => Promise<R>,
): AsyncGenerator<R> {
  const pending: Promise<R>[] = [];
  for await (const item of items) {
    const p = fn(item);
    p.catch(() => undefined); // awaited below, in order; never an unhandled rejection meanwhile
    pending.push(p);
    if (pending.length >= limit) yield await pending.shift()!;
  }
  while (pending.length > 0) yield await pending.shift()!;
}
