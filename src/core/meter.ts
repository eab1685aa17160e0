/**
 * The meter of a run (issue 16): every S3 request of the run passes through it, whichever client
 * sends it (the lean client's hot calls and the SDK's), so it is where requests are counted by
 * kind and status and where --tpslimit waits; the bytes streamed through this machine pass through
 * its `throttle()`, where they are counted and where --bwlimit waits. Limits are token buckets
 * (the `limiter` package); the adaptive concurrency limit of the executor stays underneath them.
 */
import { Transform, type Readable } from "node:stream";
import { TokenBucket } from "limiter";

/** The request kinds of the cost estimate and the summary, as S3 bills them. */
export const REQUEST_KINDS = ["LIST", "HEAD", "GET", "PUT", "COPY", "UploadPartCopy", "DELETE"] as const;
export type RequestKind = (typeof REQUEST_KINDS)[number];
export type RequestCounts = Record<RequestKind, number>;

export function emptyCounts(): RequestCounts {
  return { LIST: 0, HEAD: 0, GET: 0, PUT: 0, COPY: 0, UploadPartCopy: 0, DELETE: 0 };
}

/** Adds `from` (times `times`) into `into`. */
export function addCounts(into: RequestCounts, from: Partial<RequestCounts>, times = 1): RequestCounts {
  for (const kind of REQUEST_KINDS) into[kind] += (from[kind] ?? 0) * times;
  return into;
}

/**
 * The kind an SDK command is billed as: listings LIST; reads of an object, its tags or ACL GET;
 * writes (PutObject, UploadPart, Create/CompleteMultipartUpload, tags, ACLs) PUT; deletes and
 * aborts DELETE.
 */
export function kindOfCommand(command: string): RequestKind {
  const name = command.replace(/Command$/, "");
  if (/^List/.test(name)) return "LIST";
  if (/^Head/.test(name)) return "HEAD";
  if (name === "CopyObject") return "COPY";
  if (name === "UploadPartCopy") return "UploadPartCopy";
  if (/^(Delete|Abort)/.test(name)) return "DELETE";
  if (/^Get/.test(name)) return "GET";
  return "PUT";
}

/**
 * A --bwlimit timetable (rclone's form): entries sorted by minute of the week, each the rate in
 * bytes per second from then on (undefined: off). One entry without a time is a constant rate.
 */
export interface BandwidthSchedule {
  entries: { minuteOfWeek: number; rate: number | undefined }[];
  /** The text as given, for messages and metrics. */
  text: string;
}

/** The rate a schedule sets at `now` (bytes/s), or undefined when it is off. */
export function rateAt(schedule: BandwidthSchedule, now = new Date()): number | undefined {
  const minute = now.getDay() * 24 * 60 + now.getHours() * 60 + now.getMinutes();
  const { entries } = schedule;
  let current = entries[entries.length - 1];
  for (const e of entries) if (e.minuteOfWeek <= minute) current = e;
  return current?.rate;
}

/** How much slower than --tpslimit the token bucket fills (see RequestMeter). */
export const TPS_HEADROOM = 1.05;

export interface MeterLimits {
  /** Requests per second, all kinds (listing included). */
  tps?: number;
  /** Requests that may go at once after a quiet spell (default 1). */
  tpsBurst?: number;
  bandwidth?: BandwidthSchedule;
}

export interface MeterReading {
  requests: RequestCounts;
  bytesThrough: number;
  bytesDownloaded: number;
}

/** What a metrics endpoint (or any observer) hears of each request as it ends. */
export type RequestListener = (kind: RequestKind, status: number | "error") => void;

export class RequestMeter {
  readonly requests = emptyCounts();
  /** Bytes streamed through this machine (downloads, uploads, streamed copies), each byte once. */
  bytesThrough = 0;
  /** Of those, bytes read from an S3 store (what S3 bills as data transfer out). */
  bytesDownloaded = 0;
  inFlight = 0;
  /** Requests answered 503/429 (the server asked us to slow down). */
  throttled = 0;
  /** Requests that failed in a way the tool retries (5xx, 429, no answer). */
  retryable = 0;
  private readonly listeners: RequestListener[] = [];
  private readonly tpsBucket?: TokenBucket;
  private bwBucket?: TokenBucket;
  private bwRate?: number;
  /** Rejected by stopWaiting(): requests still waiting for --tpslimit are not sent after a stop. */
  private readonly stopped: Promise<never>;
  private stop!: (reason: Error) => void;
  private isStopped = false;

  constructor(readonly limits: MeterLimits = {}) {
    this.stopped = new Promise<never>((_, reject) => (this.stop = reject));
    this.stopped.catch(() => undefined);
    // The bucket fills 5% slower than N per second: a request sent at exactly 1/N s intervals
    // can arrive a few ms early or late, and at exactly N per second any jitter puts N+1 into
    // some second; 5% of headroom absorbs 50 ms of it.
    if (limits.tps)
      this.tpsBucket = new TokenBucket({
        bucketSize: Math.max(1, limits.tpsBurst ?? 1),
        tokensPerInterval: limits.tps,
        interval: 1000 * TPS_HEADROOM,
      });
  }

  /** The counters now, to measure one run on a meter several runs share (a worker's ranges). */
  snapshot(): MeterReading {
    return { requests: { ...this.requests }, bytesThrough: this.bytesThrough, bytesDownloaded: this.bytesDownloaded };
  }

  /** What was counted since `from`. */
  since(from?: MeterReading): MeterReading {
    const now = this.snapshot();
    if (!from) return now;
    for (const kind of REQUEST_KINDS) now.requests[kind] -= from.requests[kind];
    return {
      requests: now.requests,
      bytesThrough: now.bytesThrough - from.bytesThrough,
      bytesDownloaded: now.bytesDownloaded - from.bytesDownloaded,
    };
  }

  onRequest(listener: RequestListener): void {
    this.listeners.push(listener);
  }

  /** Waits for --tpslimit, then counts the request as sent. Call `end()` once it is answered. */
  async begin(kind: RequestKind): Promise<void> {
    if (this.tpsBucket) {
      // After an interrupt or a hard cut-off, new work waiting for a token is given up (aborts of
      // multipart uploads, DELETEs, still go: they leave nothing behind).
      const token = this.tpsBucket.removeTokens(1);
      await (kind !== "DELETE" ? Promise.race([token, this.stopped]) : token);
    }
    this.requests[kind]++;
    this.inFlight++;
  }

  /** The run stopped (interrupt, hard cut-off): requests waiting for --tpslimit fail instead of going out. */
  stopWaiting(): void {
    if (this.isStopped) return;
    this.isStopped = true;
    this.stop(Object.assign(new Error("stopped before it was sent"), { name: "AbortError", code: "AbortError" }));
  }

  end(kind: RequestKind, status: number | "error"): void {
    this.inFlight--;
    if (status === 503 || status === 429) this.throttled++;
    if (status === "error" || status === 429 || status >= 500) this.retryable++;
    for (const listen of this.listeners) listen(kind, status);
  }

  /** The current --bwlimit rate (bytes/s), undefined when unlimited. */
  currentBandwidth(now = new Date()): number | undefined {
    return this.limits.bandwidth ? rateAt(this.limits.bandwidth, now) : undefined;
  }

  /**
   * The stream, counted and held to --bwlimit (one budget for all streams of the run).
   * `fromS3`: its bytes are read from S3 (data transfer out). `signal` destroys it (a hard cut-off).
   */
  throttle(body: Readable, fromS3: boolean, signal?: AbortSignal): Readable {
    const out = new Transform({
      transform: (chunk: Buffer, _enc, done) => {
        this.pass(chunk.length, fromS3)
          .then(() => done(null, chunk))
          .catch(done);
      },
    });
    body.once("error", (err) => out.destroy(err));
    if (signal) {
      const onAbort = () => out.destroy(signal.reason instanceof Error ? signal.reason : new Error("stopped"));
      if (signal.aborted) onAbort();
      else signal.addEventListener("abort", onAbort, { once: true });
      out.once("close", () => signal.removeEventListener("abort", onAbort));
    }
    return body.pipe(out);
  }

  /** `bytes` of a body (a stream's chunk, or a small body read whole): held to --bwlimit, then counted. */
  async pass(bytes: number, fromS3: boolean): Promise<void> {
    await this.take(bytes);
    this.bytesThrough += bytes;
    if (fromS3) this.bytesDownloaded += bytes;
  }

  /** Waits until `bytes` may pass under the current --bwlimit rate. */
  private async take(bytes: number): Promise<void> {
    const rate = this.currentBandwidth();
    if (rate === undefined) return;
    if (!this.bwBucket || this.bwRate !== rate) {
      // A new rate (the timetable moved on): one second's worth of burst, as rclone allows.
      const size = Math.max(1, Math.floor(rate));
      if (!this.bwBucket)
        this.bwBucket = new TokenBucket({ bucketSize: size, tokensPerInterval: size, interval: 1000 });
      else {
        this.bwBucket.bucketSize = size;
        this.bwBucket.tokensPerInterval = size;
        this.bwBucket.content = Math.min(this.bwBucket.content, size);
      }
      this.bwRate = rate;
    }
    const bucket = this.bwBucket;
    for (let left = bytes; left > 0;) {
      const piece = Math.min(left, bucket.bucketSize);
      await bucket.removeTokens(piece);
      left -= piece;
    }
  }
}
