import ms from "ms";
import picomatch from "picomatch";
import { UsageError, type ObjectDetails, type ObjectInfo } from "../core/types.js";

/** Filters on object attributes rather than keys (rclone's --min-size, --max-age and friends). */
export interface AttributeFilters {
  minSize?: number;
  maxSize?: number;
  /** Only objects modified after this time (epoch ms). */
  newerThan?: number;
  /** Only objects modified before this time (epoch ms). */
  olderThan?: number;
  /** Glob on Content-Type, e.g. `image/*`. Needs a HEAD per object. */
  contentType?: string;
  /** Globs on user metadata values, e.g. { team: "web*" }. Needs a HEAD per object. */
  metadata?: Record<string, string>;
}

/** Decides whether an object takes part; may look at the object's headers. */
export type ObjectFilter = (object: ObjectInfo) => boolean | Promise<boolean>;

/** `7d`, `12h`, `30m` (before now), or an ISO timestamp, into epoch ms. */
export function parseTimeBound(flag: string, value: string, now = Date.now()): number {
  const duration = ms(value as ms.StringValue);
  if (typeof duration === "number" && Number.isFinite(duration) && duration >= 0 && !/^\d{4}-/.test(value)) return now - duration;
  const time = Date.parse(value);
  if (Number.isNaN(time))
    throw new UsageError(`invalid ${flag} '${value}'; expected a duration such as 7d or 12h, or a timestamp such as 2026-11-24T12:00:00Z`);
  return time;
}

/**
 * Compiles attribute filters for one side; `head` fetches an object's headers when a filter needs
 * them (content type, metadata). Returns undefined when no filter is set, so the planner pays nothing.
 */
export function compileAttributeFilters(f: AttributeFilters, head: (key: string) => Promise<ObjectDetails | undefined>): ObjectFilter | undefined {
  const cheap: ((o: ObjectInfo) => boolean)[] = [];
  if (f.minSize !== undefined) cheap.push((o) => o.size >= f.minSize!);
  if (f.maxSize !== undefined) cheap.push((o) => o.size <= f.maxSize!);
  if (f.newerThan !== undefined) cheap.push((o) => o.lastModified > f.newerThan!);
  if (f.olderThan !== undefined) cheap.push((o) => o.lastModified < f.olderThan!);
  const typeMatch = f.contentType !== undefined ? picomatch(f.contentType, { bash: true, nocase: true }) : undefined;
  const metaMatch = Object.entries(f.metadata ?? {}).map(([k, glob]) => [k.toLowerCase(), picomatch(glob, { bash: true })] as const);
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
