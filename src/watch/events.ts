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

export interface EventSourceHooks {
  /** Hints heard (keys relative to the source root). */
  onHints(hints: ChangeHint[]): void;
  /** Something the user should know (requests refused, records ignored), one line each time. */
  onWarning?(message: string): void;
}

/** What the watch loop needs of any event source. */
export interface EventSource {
  /** Where events come from, for the user (never a secret). */
  readonly description: string;
  /** Requests refused (wrong path, bad body); for the status line and tests. */
  readonly refused: number;
  /** Starts receiving; throws when the source cannot be set up. */
  start(): Promise<void>;
  /** Undefined while the source works, else what is wrong with it. */
  check(): Promise<string | undefined>;
  /** Stops receiving; `keep` leaves what was set up on the server. */
  stop(keep: boolean): Promise<void>;
  /** Tries the set-up again after check() found a problem (a source that mends itself has none). */
  reinstall?(): Promise<void>;
  /** Where the watcher listens for pushes, without any secret (a source that polls has none). */
  readonly listeningAt?: string;
}

/** Event records a source ignored (other buckets, outside the prefix, not object events), said at each check. */
export class IgnoredRecords {
  private count = 0;
  constructor(private readonly hooks: EventSourceHooks) {}

  add(n: number): void {
    this.count += n;
  }

  /** One warning for what was ignored since the last one, if anything was. */
  report(): void {
    if (this.count === 0) return;
    this.hooks.onWarning?.(`ignored ${this.count} event record(s) outside the source or not about objects`);
    this.count = 0;
  }
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
  const json = parseJson(body);
  if (json === undefined) return { ok: false, problem: "not JSON" };
  return parseRecords(json, where, now);
}

/**
 * What one SQS message names (the `--queue-url` route). A queue that a bucket notifies holds
 * one of: S3 event records as the bucket sent them; the same wrapped in an SNS envelope (bucket
 * -> topic -> queue, `Message` holding the records); an EventBridge event of S3 (`detail-type`
 * "Object Created" or "Object Deleted"); or the test event S3 sends when a notification is set
 * up (no keys, not a problem).
 */
export function parseQueueMessage(
  body: string,
  where: { bucket: string; prefix: string },
  now = Date.now(),
): ParsedNotification {
  let json = parseJson(body);
  if (json === undefined) return { ok: false, problem: "not JSON" };
  const envelope = SnsEnvelope.safeParse(json);
  if (envelope.success) {
    json = parseJson(envelope.data.Message);
    if (json === undefined) return { ok: false, problem: "an SNS message that is not JSON" };
  }
  if (TestEvent.safeParse(json).success) return { ok: true, hints: [], ignored: 0 };
  const bridged = EventBridgeEvent.safeParse(json);
  if (bridged.success) {
    const { detail, time } = bridged.data;
    const created = bridged.data["detail-type"] === "Object Created";
    const removed = bridged.data["detail-type"] === "Object Deleted";
    if (!created && !removed) return { ok: true, hints: [], ignored: 1 };
    json = {
      Records: [
        {
          eventName: created ? "ObjectCreated:EventBridge" : "ObjectRemoved:EventBridge",
          eventTime: time,
          s3: { bucket: { name: detail.bucket.name }, object: { key: detail.object.key } },
        },
      ],
    };
  }
  return parseRecords(json, where, now);
}

const SnsEnvelope = z.object({ Type: z.literal("Notification"), Message: z.string().max(MAX_BODY_BYTES) });
const TestEvent = z.object({ Event: z.literal("s3:TestEvent") });
const EventBridgeEvent = z.object({
  source: z.literal("aws.s3"),
  "detail-type": z.string().max(256),
  time: z.string().max(64).optional(),
  detail: z.object({
    bucket: z.object({ name: z.string().max(255) }),
    object: z.object({ key: z.string().min(1).max(4096) }),
  }),
});

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function parseRecords(json: unknown, where: { bucket: string; prefix: string }, now: number): ParsedNotification {
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
