import { compareKeys } from "../core/keys.js";
import type { KeyRange, ObjectInfo } from "../core/types.js";
import { runPool } from "../core/async.js";
import { plan, type Action, type PlanOptions } from "./planner.js";
import { evenly, mergeConcurrently, rangesFromSplitPoints, splitPointsFor, type RangeLister } from "./ranges.js";

/** One level of one side under a folder: the folders directly in it and the objects beside them. */
export interface Level {
  folders: readonly string[];
  objects: readonly ObjectInfo[];
}

/** Lists one level of one side ("" is the top); undefined when it is too large to hold in memory. */
export type LevelLister = (folder: string) => Promise<Level | undefined>;

/** A folder (or a key range inside one) to merge-join on its own, and which sides hold it. */
export interface FolderPart {
  range: KeyRange;
  inSource: boolean;
  inTarget: boolean;
}

/** The key space cut into folders: the objects outside all of them (sorted, in memory), and the parts. */
export interface FolderSplit {
  looseSource: ObjectInfo[];
  looseTarget: ObjectInfo[];
  parts: FolderPart[];
}

export interface FolderSplitOptions {
  /** Listings run at once; the split aims for at least this many parts. */
  parallel: number;
  /** Split points inside a folder too large to descend into (its level did not fit in memory). */
  splitFolder: (folder: string, maxPoints: number) => Promise<string[]>;
  /** Levels to descend at most. */
  maxDepth?: number;
  /** Stop descending before the parts grow past this many (tiny folders cost a request each). */
  maxFolders?: number;
  /** Stop descending before this many objects outside the folders are held per side. */
  maxLoose?: number;
}

interface Folder {
  inSource: boolean;
  inTarget: boolean;
  /** Its level was too large to list: descend no further, split it by key instead. */
  large?: boolean;
}

const NO_LEVEL: Level = { folders: [], objects: [] };

/**
 * Cuts the key space of two sides into parts along their folders, so that each part can be
 * listed by prefix (its listing ends exactly where the folder does) and merge-joined on its own.
 * Starts from both top levels and, while there are fewer folders than listings to run, descends
 * one level into every folder at once (`logs/` -> `logs/2025/`, `logs/2026/`), keeping the
 * objects found beside the folders. A folder whose level is too large to list in memory is split
 * into key ranges from a sample of its keys instead, and one whose subfolders are too many to
 * list one by one is split at its children's names. Undefined when a top level is too large: the
 * caller then splits the whole key space by sampling.
 *
 * Every key lies in exactly one part or among the loose objects, and a side without a folder is
 * never listed for it.
 */
export async function splitByFolders(
  listSource: LevelLister,
  listTarget: LevelLister,
  options: FolderSplitOptions,
): Promise<FolderSplit | undefined> {
  const { parallel, maxDepth = 3, maxFolders = 4 * parallel, maxLoose = 20_000 } = options;
  const [sourceTop, targetTop] = await Promise.all([listSource(""), listTarget("")]);
  if (!sourceTop || !targetTop) return undefined;
  const looseSource = [...sourceTop.objects];
  const looseTarget = [...targetTop.objects];
  let folders = new Map<string, Folder>();
  addFolders(folders, sourceTop.folders, targetTop.folders);
  /** Split points inside a folder that stays whole although it is big. */
  const points = new Map<string, string[]>();
  const maxPoints = splitPointsFor(parallel);

  for (let depth = 0; depth < maxDepth && folders.size < parallel; depth++) {
    const open = [...folders].filter(([, f]) => !f.large);
    if (open.length === 0) break;
    const levels = new Map<string, (Level | undefined)[]>();
    await runPool(fromArray(open), parallel, async ([name, f]) => {
      levels.set(
        name,
        await Promise.all([f.inSource ? listSource(name) : NO_LEVEL, f.inTarget ? listTarget(name) : NO_LEVEL]),
      );
    });
    const next = new Map<string, Folder>();
    const foundSource: ObjectInfo[] = [];
    const foundTarget: ObjectInfo[] = [];
    for (const [name, f] of folders) {
      const [s, t] = levels.get(name) ?? [];
      if (!levels.has(name)) next.set(name, f);
      else if (!s || !t) next.set(name, { ...f, large: true });
      else {
        addFolders(next, s.folders, t.folders);
        foundSource.push(...s.objects);
        foundTarget.push(...t.objects);
      }
    }
    // Finer than this costs more requests (and memory) than the parallelism it buys. The folders
    // stay whole, split at their children's names instead (`data/` with 100 subfolders becomes
    // ranges within `data/`, not one chain of pages).
    if (
      next.size > maxFolders ||
      looseSource.length + foundSource.length > maxLoose ||
      looseTarget.length + foundTarget.length > maxLoose
    ) {
      for (const [name, [s, t]] of levels) {
        if (!s || !t) continue;
        const children = [...s.folders, ...t.folders, ...s.objects.map((o) => o.key), ...t.objects.map((o) => o.key)];
        points.set(name, evenly([...new Set(children)].sort(compareKeys), maxPoints));
      }
      break;
    }
    folders = next;
    looseSource.push(...foundSource);
    looseTarget.push(...foundTarget);
  }

  const parts: FolderPart[] = [];
  if (folders.size < parallel) {
    const large = [...folders].filter(([, f]) => f.large && f.inSource).map(([name]) => name);
    await runPool(fromArray(large), parallel, async (name) => {
      points.set(
        name,
        (await options.splitFolder(name, maxPoints)).filter((point) => point.startsWith(name)),
      );
    });
  }
  for (const name of [...folders.keys()].sort(compareKeys)) {
    const { inSource, inTarget } = folders.get(name)!;
    for (const range of rangesFromSplitPoints(points.get(name) ?? []))
      parts.push({ range: { ...range, prefix: name }, inSource, inTarget });
  }
  const byKey = (a: ObjectInfo, b: ObjectInfo) => compareKeys(a.key, b.key);
  return { looseSource: looseSource.sort(byKey), looseTarget: looseTarget.sort(byKey), parts };
}

/**
 * Plans a folder split: the loose objects as one merge-join from memory, and every part as its
 * own, up to `parallel` at once. A side without the part's folder lists nothing for it.
 */
export function planFolderSplit(
  split: FolderSplit,
  listSource: RangeLister,
  listTarget: RangeLister,
  options: PlanOptions,
  parallel: number,
): AsyncGenerator<Action> {
  return mergeConcurrently(
    [
      () => plan(fromArray(split.looseSource), fromArray(split.looseTarget), options),
      ...split.parts.map(
        (part) => () =>
          plan(listPart(part, part.inSource, listSource), listPart(part, part.inTarget, listTarget), options),
      ),
    ],
    parallel,
  );
}

/** One side's listing of a part: nothing where the side lacks the folder; a whole folder it reported must list a key. */
function listPart(part: FolderPart, onThisSide: boolean, list: RangeLister): AsyncIterable<ObjectInfo> {
  if (!onThisSide) return fromArray([]);
  const whole = part.range.startAfter === undefined && part.range.endAt === undefined;
  return list(whole ? { ...part.range, expectKeys: true } : part.range);
}

function addFolders(into: Map<string, Folder>, source: readonly string[], target: readonly string[]): void {
  for (const name of source) into.set(name, { inSource: true, inTarget: false });
  for (const name of target) {
    const f = into.get(name);
    if (f) f.inTarget = true;
    else into.set(name, { inSource: false, inTarget: true });
  }
}

async function* fromArray<T>(items: readonly T[]): AsyncGenerator<T> {
  yield* items;
}
