import type { ObjectInfo } from "../../src/core/types.js";
import { sizeAndTime } from "../../src/planner/compare.js";
import { plan, type Action, type PlanOptions } from "../../src/planner/planner.js";
import { MemoryStore } from "../../src/stores/memory/memory-store.js";

/** Listing entries from [key, size, lastModified] triples, in the order given. */
export function listing(entries: [string, number, number][]): ObjectInfo[] {
  return entries.map(([key, size, lastModified]) => ({ key, size, lastModified }));
}

export async function* iterate<T>(items: T[]): AsyncGenerator<T> {
  for (const item of items) yield item;
}

export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

/**
 * A source and a target holding these keys (contents differ per side), and the actions of one
 * merge-join over their whole listings, each as "type key", sorted: what any split must reproduce.
 */
export async function storePair(src: string[], dst: string[]) {
  const source = new MemoryStore("s");
  const target = new MemoryStore("t");
  for (const k of src) source.set(k, `s${k}`);
  for (const k of dst) target.set(k, `t${k}`);
  const options: PlanOptions = { compare: sizeAndTime, filter: () => true, delete: true };
  const whole = (await collect(plan(source.list(), target.list(), options))).map(describeAction).sort();
  return { source, target, options, whole };
}

export const describeAction = (a: Action) => `${a.type} ${a.key}`;
