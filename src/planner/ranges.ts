import { compareKeys } from "../core/keys.js";
import type { KeyRange, ObjectInfo } from "../core/types.js";
import { plan, type Action, type PlanOptions } from "./planner.js";

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
 * Runs up to `parallel` async iterables at once and yields their items as they come, holding at
 * most one pending item per running source (backpressure: a source only advances when its item
 * was taken). Sources start in order as earlier ones finish. An error from any source is thrown
 * after the others are stopped.
 */
export async function* mergeConcurrently<T>(sources: Iterable<() => AsyncIterable<T>>, parallel: number): AsyncGenerator<T> {
  const pending = sources[Symbol.iterator]();
  type Slot = { iterator: AsyncIterator<T>; next: Promise<{ slot: Slot; result: IteratorResult<T> }> };
  const running = new Set<Slot>();
  const arm = (slot: Slot) => {
    slot.next = slot.iterator.next().then((result) => ({ slot, result }));
  };
  const startNext = (): boolean => {
    const step = pending.next();
    if (step.done) return false;
    const slot = { iterator: step.value()[Symbol.asyncIterator]() } as Slot;
    arm(slot);
    running.add(slot);
    return true;
  };
  try {
    while (running.size < parallel && startNext());
    while (running.size > 0) {
      const { slot, result } = await Promise.race([...running].map((s) => s.next));
      if (result.done) {
        running.delete(slot);
        startNext();
        continue;
      }
      arm(slot);
      yield result.value;
    }
  } finally {
    // Stop the others (on error or when the consumer stops early) and keep their rejections handled.
    for (const slot of running) {
      slot.next.catch(() => undefined);
      await slot.iterator.return?.().catch(() => undefined);
    }
  }
}

/**
 * Plans each key range as its own merge-join, the same range on both sides, and runs up to
 * `parallel` of them at once: listing is no longer one chain of pages, and memory stays one entry
 * (plus a prefetched page) per side per running range.
 */
export function planInRanges(
  ranges: readonly KeyRange[],
  listSource: (range: KeyRange) => AsyncIterable<ObjectInfo>,
  listTarget: (range: KeyRange) => AsyncIterable<ObjectInfo>,
  options: PlanOptions,
  parallel: number,
): AsyncGenerator<Action> {
  return mergeConcurrently(
    ranges.map((range) => () => plan(listSource(range), listTarget(range), options)),
    parallel,
  );
}
