/**
 * Work lists (issue 17): plans only the keys a list names (`--files-from`, `--failed-keys` read
 * back, an S3 Inventory). A short list between two buckets is read key by key (one HEAD per key
 * on each side, in parallel, no listing at all); a long one lists only the key ranges that hold
 * its keys; a store without a key space (a local folder) is listed whole and filtered. Either
 * way each key goes through the one merge-join (plan()), so comparison rules, filters and
 * deletes ("only listed keys the source lacks") are the same as in any other run.
 */
import { withRetry, type RetryPolicy } from "../core/retry.js";
import { compareKeys, keyByteLength, positionInRange } from "../core/keys.js";
import type { KeyRange, ObjectInfo, ObjectStore } from "../core/types.js";
import { plan, type Action, type PlanOptions } from "./planner.js";
import { mergeConcurrently } from "./ranges.js";

/** Lists up to this many keys are read with HEAD requests (two per key) instead of listings. */
export const HEAD_LIST_MAX = 1000;
/** S3's limit on a key's length in UTF-8 bytes. */
const MAX_KEY_BYTES = 1024;
/** Keys per listed range of a long work list. */
export const KEYS_PER_RANGE = 1000;

/**
 * The keys of a work list file, sorted in the one key order and without duplicates. Lines (or,
 * `raw`, NUL-separated entries) name keys relative to the sync root; an empty entry is skipped.
 * In line form a line ends at `\n` (a `\r` before it is dropped: files written on Windows) and
 * a key ends at its first tab, so a `--failed-keys` file (key, tab, reason) reads back as its
 * keys. Keys holding a tab or a line break need the raw form.
 */
export function parseWorkList(text: string, raw: boolean): string[] {
  const entries = raw
    ? text.split("\0")
    : text.split("\n").map((line) => {
        const tab = line.indexOf("\t");
        const key = tab >= 0 ? line.slice(0, tab) : line;
        return tab < 0 && key.endsWith("\r") ? key.slice(0, -1) : key;
      });
  const sorted = entries.filter((k) => k !== "").sort(compareKeys);
  return sorted.filter((k, i) => i === 0 || k !== sorted[i - 1]);
}

/** One entry, or none: a key read with HEAD as a listing plan() can merge. */
async function* single(read: () => Promise<ObjectInfo | undefined>): AsyncGenerator<ObjectInfo> {
  const found = await read();
  if (found) yield found;
}

/** What a listing says of an object, from a HEAD's fuller answer. */
function listed(o: ObjectInfo): ObjectInfo {
  return {
    key: o.key,
    size: o.size,
    lastModified: o.lastModified,
    ...(o.etag !== undefined && { etag: o.etag }),
    ...(o.storageClass !== undefined && { storageClass: o.storageClass }),
  };
}

/** A HEAD retried as a listing page is (throttling, 5xx, dropped connections); absent is undefined. */
export function headRetried(store: ObjectStore, key: string, retry?: RetryPolicy): Promise<ObjectInfo | undefined> {
  return withRetry(async () => {
    const found = await store.head(key);
    return found && listed(found);
  }, retry);
}

/**
 * The plan of a short list: both sides read key by key (HEAD), `parallel` keys at once. A HEAD
 * that fails for good fails the run as a listing error would (no deletes).
 */
export function planByHead(
  keys: readonly string[],
  source: ObjectStore,
  target: ObjectStore,
  options: PlanOptions,
  parallel: number,
  retry?: RetryPolicy,
): AsyncGenerator<Action> {
  // A key longer than S3 allows cannot be there: asking for it would be a client error.
  const wanted = keys.filter((k) => keyByteLength(k) <= MAX_KEY_BYTES && options.filter(k));
  return mergeConcurrently(
    wanted.map(
      (key) => () =>
        plan(
          single(() => headRetried(source, key, retry)),
          single(() => headRetried(target, key, retry)),
          options,
        ),
    ),
    parallel,
  );
}

/**
 * The key ranges that hold a sorted list's keys, `perRange` keys each: a range starts just
 * before its first key (that key without its last character: nothing between the two can be
 * listed, so at most a few keys more) and ends at its last key. Ranges may overlap a little;
 * each plans only its own keys.
 */
export function workListRanges(
  keys: readonly string[],
  perRange = KEYS_PER_RANGE,
): { range: KeyRange; keys: ReadonlySet<string> }[] {
  const out: { range: KeyRange; keys: ReadonlySet<string> }[] = [];
  for (let i = 0; i < keys.length; i += perRange) {
    const chunk = keys.slice(i, i + perRange);
    const first = [...chunk[0]!];
    const before = first.slice(0, -1).join("");
    out.push({
      range: { ...(before !== "" && { startAfter: before }), endAt: chunk[chunk.length - 1]! },
      keys: new Set(chunk),
    });
  }
  return out;
}

/** The plan of a long list: only the ranges holding its keys are listed, `parallel` at once. */
export function planListedRanges(
  keys: readonly string[],
  source: ObjectStore,
  target: ObjectStore,
  options: PlanOptions,
  parallel: number,
): AsyncGenerator<Action> {
  return mergeConcurrently(
    workListRanges(keys).map(
      ({ range, keys: inRange }) =>
        () =>
          plan(source.list(range), target.list(range), {
            ...options,
            filter: (key) => inRange.has(key) && options.filter(key),
          }),
    ),
    parallel,
  );
}

/** A sorted array as a store's listing of `range` (binary search to its start). */
export function arrayLister(sorted: readonly ObjectInfo[]): (range?: KeyRange) => AsyncIterable<ObjectInfo> {
  return async function* (range: KeyRange = {}) {
    let lo = 0;
    let hi = sorted.length;
    const after = range.startAfter;
    if (after !== undefined)
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (compareKeys(sorted[mid]!.key, after) <= 0) lo = mid + 1;
        else hi = mid;
      }
    for (let i = lo; i < sorted.length; i++) {
      const where = positionInRange(sorted[i]!.key, range);
      if (where > 0) return;
      if (where === 0) yield sorted[i]!;
    }
  };
}

/**
 * The actions of a plan made from a listing that may be stale (an S3 Inventory, a day old by
 * design), each confirmed against the live source before it is yielded: every copy, update and
 * delete is planned again from a HEAD of the source key (`parallel` at once), so a key the
 * source no longer has is neither copied nor (when the target has it and the source has it
 * again) deleted, and a copy carries the object as it is now. Skips pass as they are.
 */
export async function* confirmedBySource(
  actions: AsyncIterable<Action>,
  source: ObjectStore,
  options: PlanOptions,
  parallel: number,
  retry?: RetryPolicy,
): AsyncGenerator<Action> {
  type Settled = { id: number; out?: Action[]; error?: unknown };
  const inFlight = new Map<number, Promise<Settled>>();
  let next = 0;
  const replan = async (action: Exclude<Action, { type: "skip" }>): Promise<Action[]> => {
    const target = action.type === "copy" ? undefined : action.target;
    const out: Action[] = [];
    const live = single(() => headRetried(source, action.key, retry));
    // The confirmation's source read is not a listed entry: the empty-source guard counted the inventory's.
    for await (const a of plan(
      live,
      single(async () => target),
      { ...options, onSourceEntry: undefined },
    ))
      out.push(a);
    return out;
  };
  const settle = async function* (): AsyncGenerator<Action> {
    const done = await Promise.race(inFlight.values());
    inFlight.delete(done.id);
    if (done.error !== undefined) throw done.error;
    yield* done.out!;
  };
  try {
    for await (const action of actions) {
      if (action.type === "skip") {
        yield action;
        continue;
      }
      const id = next++;
      inFlight.set(
        id,
        replan(action).then(
          (out) => ({ id, out }),
          (error: unknown) => ({ id, error: error ?? new Error("confirmation failed") }),
        ),
      );
      if (inFlight.size >= parallel) yield* settle();
    }
    while (inFlight.size > 0) yield* settle();
  } finally {
    // Nothing is left running unobserved: every confirmation settles (they never reject).
    await Promise.all(inFlight.values());
  }
}
