import type { ObjectInfo } from "../../src/core/types.js";

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
