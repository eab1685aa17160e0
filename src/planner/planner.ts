import { ListingError, ListingOrderError } from "../core/errors.js";
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

// The listing errors live with every other error class (core/errors.ts); re-exported for the planner's users.
export { ListingError, ListingOrderError };

export interface PlanOptions {
  compare: CompareRule;
  filter: KeyFilter;
  /** Plan deletes of target keys the source does not have. */
  delete: boolean;
  /** Attribute filters per side (size, time, headers), applied after the key filter. */
  sourceFilter?: ObjectFilter;
  targetFilter?: ObjectFilter;
  /** Called for every source entry listed (before filters): the empty-source guard counts them. */
  onSourceEntry?: () => void;
  /**
   * The target's folders exist implicitly under its files (a local folder): a target marker `d/`
   * (an empty folder) is not deleted when the source has keys under `d/`, since the copies fill it.
   */
  implicitFolders?: boolean;
}

/**
 * Merge-joins two sorted listings into actions, holding one entry per side: constant memory
 * whatever the bucket size. Keys excluded by the filter produce nothing on either side.
 */
export async function* plan(
  source: AsyncIterable<ObjectInfo>,
  target: AsyncIterable<ObjectInfo>,
  options: PlanOptions,
): AsyncGenerator<Action> {
  const src = new Side(source, "source", options.filter, options.sourceFilter, options.onSourceEntry);
  const dst = new Side(target, "target", options.filter, options.targetFilter);
  try {
    let s = await src.next();
    let t = await dst.next();
    while (s || t) {
      const order = !s ? 1 : !t ? -1 : compareKeys(s.key, t.key);
      if (order < 0) {
        yield { type: "copy", key: s!.key, source: s!, reason: "new" };
        s = await src.next();
      } else if (order > 0) {
        const filled = options.implicitFolders && s !== undefined && t!.key.endsWith("/") && s.key.startsWith(t!.key);
        if (options.delete && !filled) yield { type: "delete", key: t!.key, target: t!, reason: "not in source" };
        t = await dst.next();
      } else {
        const verdict = options.compare(s!, t!);
        const type = verdict.copy ? "update" : "skip";
        yield {
          type,
          key: s!.key,
          source: s!,
          target: t!,
          reason: verdict.reason,
          ...(verdict.undecidable ? { undecidable: true } : {}),
        };
        s = await src.next();
        t = await dst.next();
      }
    }
  } finally {
    await Promise.all([src.close(), dst.close()]);
  }
}

/**
 * One side of the merge: pulls the listing, stops on a key out of order (checked before
 * filtering, so a misordered excluded key still stops the run), applies the key and attribute
 * filters. A plain class, not a chain of generators: this runs once per key of both buckets.
 */
class Side {
  private previous: string | undefined;
  private readonly iterator: AsyncIterator<ObjectInfo>;

  constructor(
    listing: AsyncIterable<ObjectInfo>,
    private readonly side: string,
    private readonly filter: KeyFilter,
    private readonly objectFilter?: ObjectFilter,
    private readonly onEntry?: () => void,
  ) {
    this.iterator = listing[Symbol.asyncIterator]();
  }

  async next(): Promise<ObjectInfo | undefined> {
    for (;;) {
      let next: IteratorResult<ObjectInfo>;
      try {
        next = await this.iterator.next();
      } catch (err) {
        throw new ListingError(this.side, err);
      }
      if (next.done) return undefined;
      const entry = next.value;
      if (this.previous !== undefined && compareKeys(this.previous, entry.key) >= 0)
        throw new ListingOrderError(this.side, this.previous, entry.key);
      this.previous = entry.key;
      this.onEntry?.();
      if (!this.filter(entry.key)) continue;
      if (this.objectFilter && !(await this.objectFilter(entry))) continue;
      return entry;
    }
  }

  async close(): Promise<void> {
    await this.iterator.return?.()?.catch?.(() => undefined);
  }
}
