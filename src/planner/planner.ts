import { compareKeys } from "../core/keys.js";
import type { ObjectInfo } from "../core/types.js";
import type { CompareRule } from "./compare.js";
import type { KeyFilter } from "./filters.js";
import type { ObjectFilter } from "./attributes.js";

/** What the planner decided for one key. */
export type Action =
  | { type: "copy"; key: string; source: ObjectInfo; reason: "new" }
  | { type: "update"; key: string; source: ObjectInfo; target: ObjectInfo; reason: string; undecidable?: boolean }
  | { type: "skip"; key: string; source: ObjectInfo; target: ObjectInfo; reason: string; undecidable?: boolean }
  | { type: "delete"; key: string; target: ObjectInfo; reason: "not in source" };

export interface PlanOptions {
  compare: CompareRule;
  filter: KeyFilter;
  /** Plan deletes of target keys the source does not have. */
  delete: boolean;
  /** Attribute filters per side (size, time, headers), applied after the key filter. */
  sourceFilter?: ObjectFilter;
  targetFilter?: ObjectFilter;
}

/** A listing returned keys out of UTF-8 byte order: merging it would be a guess, so the run stops. */
export class ListingOrderError extends Error {
  override name = "ListingOrderError";
  constructor(side: string, previous: string, key: string) {
    super(`${side} listing is out of order: '${key}' came after '${previous}'; stopping before any delete`);
  }
}

/**
 * Merge-joins two sorted listings into actions, holding one entry per side: constant memory
 * whatever the bucket size. Keys excluded by the filter produce nothing on either side.
 */
export async function* plan(source: AsyncIterable<ObjectInfo>, target: AsyncIterable<ObjectInfo>, options: PlanOptions): AsyncGenerator<Action> {
  // Order is checked before filtering, so a misordered excluded key still stops the run.
  const src = filtered(ordered(source, "source"), options.filter, options.sourceFilter);
  const dst = filtered(ordered(target, "target"), options.filter, options.targetFilter);
  let s = await src.next();
  let t = await dst.next();
  while (!s.done || !t.done) {
    const order = s.done ? 1 : t.done ? -1 : compareKeys(s.value.key, t.value.key);
    if (order < 0) {
      const so = s.value as ObjectInfo;
      yield { type: "copy", key: so.key, source: so, reason: "new" };
      s = await src.next();
    } else if (order > 0) {
      const to = t.value as ObjectInfo;
      if (options.delete) yield { type: "delete", key: to.key, target: to, reason: "not in source" };
      t = await dst.next();
    } else {
      const so = s.value as ObjectInfo;
      const to = t.value as ObjectInfo;
      const verdict = options.compare(so, to);
      const type = verdict.copy ? "update" : "skip";
      yield { type, key: so.key, source: so, target: to, reason: verdict.reason, ...(verdict.undecidable ? { undecidable: true } : {}) };
      s = await src.next();
      t = await dst.next();
    }
  }
}

async function* filtered(listing: AsyncIterable<ObjectInfo>, filter: KeyFilter, objectFilter?: ObjectFilter): AsyncGenerator<ObjectInfo> {
  for await (const entry of listing) if (filter(entry.key) && (!objectFilter || (await objectFilter(entry)))) yield entry;
}

/** A listing failed part-way or at the start; `cause` is the store's error. */
export class ListingError extends Error {
  override name = "ListingError";
  constructor(
    readonly side: string,
    override readonly cause: unknown,
  ) {
    super(`${side} listing failed: ${(cause as Error)?.message ?? cause}`);
  }
}

async function* ordered(listing: AsyncIterable<ObjectInfo>, side: string): AsyncGenerator<ObjectInfo> {
  let previous: string | undefined;
  const iterator = listing[Symbol.asyncIterator]();
  for (;;) {
    let next: IteratorResult<ObjectInfo>;
    try {
      next = await iterator.next();
    } catch (err) {
      throw new ListingError(side, err);
    }
    if (next.done) return;
    const entry = next.value;
    if (previous !== undefined && compareKeys(previous, entry.key) >= 0) throw new ListingOrderError(side, previous, entry.key);
    previous = entry.key;
    yield entry;
  }
}
