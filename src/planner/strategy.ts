/**
 * How a sync lists and plans: one stream of actions for a pair of stores, chosen by what the
 * stores can do (core/capabilities.ts), never by their class. Between two stores that can split
 * their key space: folder by folder, else sampled key ranges, each part listed in parallel; a
 * versioned source at a point in time; given ranges (distributed workers); otherwise one
 * merge-join of the two (paired) listings.
 */
import { hasKeySpaceListing, hasVersions, type KeySpaceListing } from "../core/capabilities.js";
import { ListingError } from "../core/errors.js";
import { UsageError, type KeyRange, type ObjectInfo, type ObjectStore } from "../core/types.js";
import type { OptionValues } from "../options/table.js";
import { compileAttributeFilters } from "./attributes.js";
import { COMPARE_RULES, type CompareRule } from "./compare.js";
import { compileFilters } from "./filters.js";
import { planFolderSplit, splitByFolders } from "./folders.js";
import { pairListings } from "./pairing.js";
import { plan, type Action, type PlanOptions } from "./planner.js";
import { evenly, mergeConcurrently, planInRanges, rangesFromSplitPoints, splitPointsFor } from "./ranges.js";
import type { CheckpointProgress } from "./checkpoint.js";
import { contentRule, listingAt } from "./versions.js";
import { HEAD_LIST_MAX, arrayLister, confirmedBySource, planByHead, planListedRanges } from "./work-list.js";

/** The planner's settings for a pair of stores: comparison rule, key filters, attribute filters per side. */
export function planOptionsFor(
  source: ObjectStore,
  target: ObjectStore,
  options: OptionValues,
  withDeletes: boolean,
  compare?: CompareRule,
  onSourceEntry?: () => void,
): PlanOptions {
  const attributes = options.attributes ?? {};
  return {
    compare: compare ?? COMPARE_RULES[options.compare ?? "size-and-time"],
    filter: compileFilters(options.filters ?? []),
    delete: withDeletes,
    sourceFilter: compileAttributeFilters(attributes, (key) => source.head(key)),
    targetFilter: compileAttributeFilters(attributes, (key) => target.head(key)),
    onSourceEntry,
  };
}

/** Key ranges listed at once between two buckets; 1 lists each side as one chain of pages. */
export const DEFAULT_LIST_PARALLELISM = 16;
/** Keys of a short work list read at once (two HEADs each) when no concurrency is given. */
const DEFAULT_HEAD_PARALLELISM = 64;

/**
 * The plan as one stream of actions. Between two buckets the parts of the key space are
 * merge-joined in parallel: folder by folder (see splitByFolders) when both top levels are
 * small, else key ranges split from a sample of the source's keys. Otherwise (a local folder on
 * a side, or parallelism 1) one merge-join of the two paired listings. Splitting happens inside
 * the stream, so its errors surface as listing errors (no deletes), like any other.
 */
export async function* actionStream(
  source: ObjectStore,
  target: ObjectStore,
  options: OptionValues & {
    ranges?: KeyRange[];
    workList?: readonly string[];
    inventory?: readonly ObjectInfo[];
    progress?: CheckpointProgress;
  },
  withDeletes: boolean,
  onSourceObject: () => void = () => undefined,
): AsyncGenerator<Action> {
  const parallel = options.listParallelism ?? DEFAULT_LIST_PARALLELISM;
  const workList = options.workList;
  if (options.at !== undefined) {
    if (!hasVersions(source)) throw new UsageError("--at needs a versioned S3 bucket as the source");
    const versioned = source;
    yield* plan(
      listingAt(versioned.listVersions(), options.at),
      target.list(),
      planOptionsFor(source, target, options, withDeletes, contentRule, onSourceObject),
    );
    return;
  }
  if (options.ranges) {
    yield* planInRanges(
      options.ranges,
      (r) => source.list(r),
      (r) => target.list(r),
      planOptionsFor(source, target, options, withDeletes, undefined, onSourceObject),
      parallel,
    );
    return;
  }
  if (options.progress) {
    // A resumable run: its fixed ranges, each from after its watermark, done ones not at all.
    const progress = options.progress;
    const planOptions = planOptionsFor(source, target, options, withDeletes, undefined, onSourceObject);
    yield* mergeConcurrently(
      progress.pending().map(
        ({ index, range }) =>
          () =>
            progress.track(
              index,
              plan(source.list(range), target.list(range), {
                ...planOptions,
                onSourceEntry: () => {
                  onSourceObject();
                  progress.sourceEntry(index);
                },
              }),
            ),
      ),
      parallel,
    );
    return;
  }
  if (options.inventory) {
    // The source's keys from an inventory, never listed: the target's live listing in ranges split
    // at the inventory's keys, and every change confirmed by a HEAD of the live source.
    const planOptions = planOptionsFor(source, target, options, withDeletes, undefined, onSourceObject);
    const inventory = options.inventory;
    const listSource = arrayLister(inventory);
    const points = evenly(inventory, splitPointsFor(parallel)).map((o) => o.key);
    const planned = hasKeySpaceListing(target)
      ? planInRanges(rangesFromSplitPoints(points), listSource, (r) => target.list(r), planOptions, parallel)
      : plan(listSource(), target.list(), planOptions);
    yield* confirmedBySource(planned, source, planOptions, options.concurrency ?? DEFAULT_HEAD_PARALLELISM);
    return;
  }
  if (workList && hasKeySpaceListing(source) && hasKeySpaceListing(target)) {
    // Only the listed keys: read one by one when few, else only the ranges that hold them.
    const planOptions = planOptionsFor(source, target, options, withDeletes, undefined, onSourceObject);
    if (workList.length <= HEAD_LIST_MAX)
      yield* planByHead(workList, source, target, planOptions, options.concurrency ?? DEFAULT_HEAD_PARALLELISM);
    else yield* planListedRanges(workList, source, target, planOptions, parallel);
    return;
  }
  if (!workList && hasKeySpaceListing(source) && hasKeySpaceListing(target) && parallel > 1) {
    const planOptions = planOptionsFor(source, target, options, withDeletes, undefined, onSourceObject);
    // Folder by folder where the folders allow it: every listing request then returns only keys
    // it needs, and a folder one side lacks costs that side nothing.
    const levelsOf = (store: KeySpaceListing, side: string) => (folder: string) =>
      // The top level may take a few pages; a folder's level one, else it is split by key instead.
      store.listLevel(folder, folder === "" ? 5 : 1).catch((err) => Promise.reject(new ListingError(side, err)));
    const split = await splitByFolders(levelsOf(source, "source"), levelsOf(target, "target"), {
      parallel,
      splitFolder: (folder, maxPoints) =>
        source.probeSplitPoints(folder, maxPoints).catch((err) => Promise.reject(new ListingError("source", err))),
    });
    if (split) {
      yield* planFolderSplit(
        split,
        (r) => source.list(r),
        (r) => target.list(r),
        planOptions,
        parallel,
      );
      return;
    }
    let points: string[];
    try {
      points = await source.splitPoints(splitPointsFor(parallel));
    } catch (err) {
      throw new ListingError("source", err);
    }
    if (points.length > 0) {
      yield* planInRanges(
        rangesFromSplitPoints(points),
        (r) => source.list(r),
        (r) => target.list(r),
        planOptions,
        parallel,
      );
      return;
    }
  }
  // A work list with a local side: both listed, only its keys planned.
  const filter = compileFilters(options.filters ?? []);
  const listedKeys = workList && new Set(workList);
  const keyFilter = listedKeys ? (key: string) => listedKeys.has(key) && filter(key) : filter;
  const paired = pairListings(source, target, options.compare ?? "size-and-time", keyFilter, options.autoPartSize);
  const actions = plan(paired.source, paired.target, {
    ...planOptionsFor(source, target, options, withDeletes, paired.compare, onSourceObject),
    filter: keyFilter,
    implicitFolders: paired.implicitFolders,
  });
  yield* paired.afterPlan ? paired.afterPlan(actions) : actions;
}
