import picomatch from "picomatch";
import type { ObjectDetails, ObjectInfo } from "../core/types.js";

/** Filters on object attributes rather than keys (rclone's --min-size, --max-age and friends). */
export type { AttributeFilters } from "../options/table.js";
import type { AttributeFilters } from "../options/table.js";

/** Decides whether an object takes part; may look at the object's headers. */
export type ObjectFilter = (object: ObjectInfo) => boolean | Promise<boolean>;

export { parseTimeBound } from "../options/parse.js";

/**
 * Compiles attribute filters for one side; `head` fetches an object's headers when a filter needs
 * them (content type, metadata). Returns undefined when no filter is set, so the planner pays nothing.
 */
export function compileAttributeFilters(
  f: AttributeFilters,
  head: (key: string) => Promise<ObjectDetails | undefined>,
): ObjectFilter | undefined {
  const cheap: ((o: ObjectInfo) => boolean)[] = [];
  if (f.minSize !== undefined) cheap.push((o) => o.size >= f.minSize!);
  if (f.maxSize !== undefined) cheap.push((o) => o.size <= f.maxSize!);
  if (f.newerThan !== undefined) cheap.push((o) => o.lastModified > f.newerThan!);
  if (f.olderThan !== undefined) cheap.push((o) => o.lastModified < f.olderThan!);
  const typeMatch = f.contentType !== undefined ? picomatch(f.contentType, { bash: true, nocase: true }) : undefined;
  const metaMatch = Object.entries(f.metadata ?? {}).map(
    ([k, glob]) => [k.toLowerCase(), picomatch(glob, { bash: true })] as const,
  );
  const needsHead = typeMatch !== undefined || metaMatch.length > 0;
  if (cheap.length === 0 && !needsHead) return undefined;
  return (object) => {
    for (const test of cheap) if (!test(object)) return false;
    if (!needsHead) return true;
    return head(object.key).then((details) => {
      if (!details) return false;
      if (typeMatch && !typeMatch(details.contentType ?? "")) return false;
      const meta = Object.fromEntries(Object.entries(details.metadata ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
      return metaMatch.every(([k, match]) => meta[k] !== undefined && match(meta[k]!));
    });
  };
}
