/**
 * --order-by (issue 16): copies in size or key order within a bounded window of the plan, never a
 * sort of the whole bucket. The window holds at most WINDOW planned copies; each time a worker
 * asks for the next action it gets the first of the window in the chosen order, and the window is
 * refilled from the plan. Skips and deletes pass straight through (deletes wait in the spool anyway).
 */
import { compareKeys } from "../core/keys.js";
import type { OrderBy } from "../options/table.js";
import type { Action } from "../planner/planner.js";

export const ORDER_WINDOW = 1000;

type Copy = Extract<Action, { type: "copy" | "update" }>;

function comparatorOf(order: OrderBy): (a: Copy, b: Copy) => number {
  switch (order) {
    case "size":
      return (a, b) => a.source.size - b.source.size || compareKeys(a.key, b.key);
    case "size,desc":
      return (a, b) => b.source.size - a.source.size || compareKeys(a.key, b.key);
    case "key":
      return (a, b) => compareKeys(a.key, b.key);
  }
}

export async function* orderWithin(
  actions: AsyncIterable<Action>,
  order: OrderBy,
  window = ORDER_WINDOW,
): AsyncGenerator<Action> {
  const compare = comparatorOf(order);
  // Kept sorted; insertion by binary search (the window is small).
  const held: Copy[] = [];
  const insert = (c: Copy) => {
    let lo = 0;
    let hi = held.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compare(held[mid]!, c) <= 0) lo = mid + 1;
      else hi = mid;
    }
    held.splice(lo, 0, c);
  };
  for await (const action of actions) {
    if (action.type !== "copy" && action.type !== "update") {
      yield action;
      continue;
    }
    insert(action);
    if (held.length >= window) yield held.shift()!;
  }
  while (held.length > 0) yield held.shift()!;
}
