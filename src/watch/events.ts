/**
 * The pure parts of watch mode (issue 18): what a bucket notification says (validated, never
 * trusted), the bounded set of keys waiting to be applied, and the lag figures. Events are
 * hints: each key taken from here is read again on both sides before anything is written or
 * deleted (watch.ts applies keys through sync() with `keys`).
 */
import { z } from "zod";

/** One change the event source heard of: a key relative to the source root, and when it happened (epoch ms). */
export interface ChangeHint {
  key: string;
  time: number;
}

/** A notification body larger than this is refused (413) unread. */
export const MAX_BODY_BYTES = 1024 * 1024;
/** Keys waiting to be applied at most; past it the watcher is falling behind and reconciles instead. */
export const MAX_PENDING_KEYS = 100_000;

const S3Record = z.object({
  eventName: z.string().max(256),
  eventTime: z.string().max(64).optional(),
  s3: z.object({
    bucket: z.object({ name: z.string().max(255) }).optional(),
    object: z.object({ key: z.string().min(1).max(4096) }),
  }),
});

/** The body an S3 server posts: S3-style event records (radosgw, AWS S3 -> SQS messages). */
const NotificationBody = z.object({ Records: z.array(z.unknown()).max(10_000) });

export type ParsedNotification = { ok: true; hints: ChangeHint[]; ignored: number } | { ok: false; problem: string };

/**
 * The keys a notification names under `prefix` of `bucket`, relative to the prefix. Records of
 * other buckets or keys outside the prefix, and records that are not object events, are
 * ignored (counted). AWS percent-encodes keys in events (a space as `+`) and radosgw sends them
 * as they are; as both spellings are only hints, a key that decodes differently yields both.
 */
export function parseNotification(
  body: string,
  where: { bucket: string; prefix: string },
  now = Date.now(),
): ParsedNotification {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return { ok: false, problem: "not JSON" };
  }
  const parsed = NotificationBody.safeParse(json);
  if (!parsed.success) return { ok: false, problem: "not S3 event records" };
  const hints: ChangeHint[] = [];
  let ignored = 0;
  for (const raw of parsed.data.Records) {
    const record = S3Record.safeParse(raw);
    if (!record.success || !/^(ObjectCreated|ObjectRemoved):/.test(record.data.eventName.replace(/^s3:/, ""))) {
      ignored++;
      continue;
    }
    const { s3, eventTime } = record.data;
    if (s3.bucket && s3.bucket.name !== where.bucket) {
      ignored++;
      continue;
    }
    const parsedTime = eventTime !== undefined ? Date.parse(eventTime) : Number.NaN;
    // A time from the future (clock skew, a forged record) counts from now: lag is never negative.
    const time = Number.isFinite(parsedTime) ? Math.min(parsedTime, now) : now;
    let found = false;
    for (const key of spellings(s3.object.key)) {
      if (!key.startsWith(where.prefix) || key.length === where.prefix.length) continue;
      hints.push({ key: key.slice(where.prefix.length), time });
      found = true;
    }
    if (!found) ignored++;
  }
  return { ok: true, hints, ignored };
}

/** A key as sent, and as decoded when it decodes (AWS's form-encoding) to something else. */
function spellings(key: string): string[] {
  if (!/[%+]/.test(key)) return [key];
  try {
    const decoded = decodeURIComponent(key.replace(/\+/g, " "));
    return decoded === key ? [key] : [key, decoded];
  } catch {
    return [key];
  }
}

/**
 * Keys waiting to be applied, each once (coalesced), with the time of its earliest event still
 * waiting. Bounded: an add past `max` drops every key and reports `overflowed`, so the caller
 * reconciles instead of holding an unbounded backlog.
 */
export class PendingKeys {
  private readonly keys = new Map<string, number>();
  constructor(private readonly max = MAX_PENDING_KEYS) {}

  get size(): number {
    return this.keys.size;
  }

  /** Adds a hint; false when the set overflowed and was emptied (the caller must reconcile). */
  add(hint: ChangeHint): boolean {
    const earlier = this.keys.get(hint.key);
    if (earlier !== undefined) {
      if (hint.time < earlier) this.keys.set(hint.key, hint.time);
      return true;
    }
    if (this.keys.size >= this.max) {
      this.keys.clear();
      return false;
    }
    this.keys.set(hint.key, hint.time);
    return true;
  }

  /** Takes up to `n` keys, oldest events first (insertion order), with their event times. */
  take(n: number): Map<string, number> {
    const out = new Map<string, number>();
    for (const [key, time] of this.keys) {
      if (out.size >= n) break;
      out.set(key, time);
    }
    for (const key of out.keys()) this.keys.delete(key);
    return out;
  }

  clear(): void {
    this.keys.clear();
  }
}

/** The nearest-rank percentile `p` (0-100) of sorted values; undefined when there are none. */
export function percentile(sorted: readonly number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** Lag figures (event time -> target written), over the last `window` changes applied. */
export class LagStats {
  private readonly values: number[] = [];
  private next = 0;
  private lastMs: number | undefined;
  count = 0;
  constructor(private readonly window = 10_000) {}

  record(ms: number): void {
    const value = Math.max(0, ms);
    this.lastMs = value;
    this.count++;
    if (this.values.length < this.window) this.values.push(value);
    else this.values[this.next] = value;
    this.next = (this.next + 1) % this.window;
  }

  snapshot(): { last?: number; p50?: number; p99?: number; count: number } {
    const sorted = [...this.values].sort((a, b) => a - b);
    return { last: this.lastMs, p50: percentile(sorted, 50), p99: percentile(sorted, 99), count: this.count };
  }
}

/** `0.42s`, `12s`, `3m05s`: a lag for the status line. */
export function formatLag(ms: number | undefined): string {
  if (ms === undefined) return "-";
  if (ms < 10_000) return `${(ms / 1000).toFixed(2)}s`;
  if (ms < 60_000) return `${Math.round(ms / 1000)}s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
}
