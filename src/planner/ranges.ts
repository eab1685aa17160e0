import { compareKeys } from "../core/keys.js";
import type { KeyRange, ObjectInfo } from "../core/types.js";
import { plan, type Action, type PlanOptions } from "./planner.js";

/** Lists one side's keys within a range. */
export type RangeLister = (range: KeyRange) => AsyncIterable<ObjectInfo>;

/**
 * Turns sorted split points into contiguous ranges covering every key exactly once:
 * (-inf, p1], (p1, p2], ..., (pn, +inf). A split point may itself be a key (it then belongs to
 * the range it ends), so the same ranges applied to both sides pair every key with its twin.
 */
export function rangesFromSplitPoints(points: readonly string[]): KeyRange[] {
  const sorted = [...new Set(points)].sort(compareKeys);
  const ranges: KeyRange[] = [];
  let previous: string | undefined;
  for (const point of sorted) {
    ranges.push({ ...(previous !== undefined && { startAfter: previous }), endAt: point });
    previous = point;
  }
  ranges.push(previous !== undefined ? { startAfter: previous } : {});
  return ranges;
}

/**
 * Split points to aim for with `parallel` listing slots: two ranges per slot, enough to keep them
 * busy, few enough that each range spans many pages (every range costs a request per side even
 * when it turns out small).
 */
export function splitPointsFor(parallel: number): number {
  return 2 * parallel - 1;
}

export { evenly } from "../core/keys.js";

/**
 * Runs up to `parallel` async iterables at once and yields their items as they come, holding at
 * most one pending item per running source (backpressure: a source only advances when its item
 * was taken). Sources start in order as earlier ones finish. An error from any source is thrown
 * after the others are told to stop. Producers hand items over through a queue, so each item
 * costs a couple of promises, not a race over every running source.
 */
export async function* mergeConcurrently<T>(
  sources: Iterable<() => AsyncIterable<T>>,
  parallel: number,
): AsyncGenerator<T> {
  const pending = sources[Symbol.iterator]();
  const ready: { item: T; release: () => void }[] = [];
  let wake: (() => void) | undefined;
  let failure: { error: unknown } | undefined;
  let running = 0;
  let stopped = false;
  const signal = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const produce = async (iterable: AsyncIterable<T>) => {
    try {
      for await (const item of iterable) {
        if (stopped) break;
        await new Promise<void>((release) => {
          ready.push({ item, release });
          signal();
        });
        if (stopped) break;
      }
    } catch (error) {
      failure ??= { error };
    } finally {
      running--;
      if (!stopped && !failure) startNext();
      signal();
    }
  };
  const startNext = (): boolean => {
    const step = pending.next();
    if (step.done) return false;
    running++;
    void produce(step.value());
    return true;
  };
  try {
    while (running < parallel && startNext());
    for (;;) {
      if (failure) throw failure.error;
      const next = ready.shift();
      if (next) {
        next.release();
        yield next.item;
        continue;
      }
      if (running === 0) return;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    stopped = true;
    for (const waiting of ready.splice(0)) waiting.release();
  }
}

/**
 * Plans each key range as its own merge-join, the same range on both sides, and runs up to
 * `parallel` of them at once: listing is no longer one chain of pages, and memory stays one entry
 * (plus a prefetched page) per side per running range.
 */
export function planInRanges(
  ranges: readonly KeyRange[],
  listSource: RangeLister,
  listTarget: RangeLister,
  options: PlanOptions,
  parallel: number,
): AsyncGenerator<Action> {
  return mergeConcurrently(
    ranges.map((range) => () => plan(listSource(range), listTarget(range), options)),
    parallel,
  );
}
