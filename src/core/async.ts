/**
 * The one worker pool of bucketsync: `concurrency` workers pull items from one async iterator, so
 * the producer (a listing, a plan) only advances when a worker is free: bounded concurrency and
 * backpressure without a queue, as the AWS SDK's uploader does it. `shouldStop` is checked before
 * each pull. An error thrown by the iterator itself goes to `onSourceError` and stops all workers.
 */
export async function runPool<T>(
  items: AsyncIterable<T>,
  concurrency: number,
  work: (item: T) => Promise<void>,
  options: { shouldStop?: () => boolean; onSourceError?: (err: unknown) => void } = {},
): Promise<void> {
  const iterator = items[Symbol.asyncIterator]();
  let sourceFailed = false;
  const stopped = () => sourceFailed || (options.shouldStop?.() ?? false);
  const worker = async () => {
    while (!stopped()) {
      let next: IteratorResult<T>;
      try {
        next = await iterator.next();
      } catch (err) {
        if (!sourceFailed) options.onSourceError?.(err);
        sourceFailed = true;
        if (!options.onSourceError) throw err;
        return;
      }
      if (next.done) return;
      await work(next.value);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
  if (stopped()) await iterator.return?.(undefined)?.catch(() => undefined);
}
