/**
 * A fault-injecting HTTP reverse proxy for integration tests: sits in front of the real S3
 * endpoint on 127.0.0.1 (random port) and forwards each request unchanged — the Host header
 * included, because SigV4 signs it: the client signs for 127.0.0.1:PROXYPORT and radosgw checks
 * the signature against the Host header it receives, so a forwarded request verifies.
 *
 * Faults are decided per request, in arrival order, from a seeded PRNG (mulberry32): the same seed
 * gives the same sequence of decisions. Kinds:
 *  - "slowDown":  answered here, not forwarded: 503 SlowDown with an S3 XML error body
 *  - "internal":  answered here, not forwarded: 500 InternalError with an S3 XML error body
 *  - "reset":     forwarded (so the server did the work), then the connection is destroyed after
 *                 part of the response: half the body, or before the headers when there is none
 *  - "delay":     forwarded, then the response is held for `delayMs` (longer than the client's
 *                 request timeout) before it is sent
 *  - "error200":  answered here: 200 OK with an S3 XML <Error> body (InternalError), which is how
 *                 S3 reports a CopyObject/UploadPartCopy/CompleteMultipartUpload that failed after
 *                 it started
 *  - "garbage200": answered here: 200 OK with an HTML body (a middlebox, a captive portal)
 * Random faults draw from the first four kinds; the last two are for rules.
 * Rules fault specific requests every time: `failKeys` (every request whose decoded path or
 * x-amz-copy-source names the key gets a 500) and `rule` (any predicate on the request; it returns
 * a kind, or a canned reply of its own such as a DeleteResult with per-key errors).
 * `maxInFlight` answers 503 SlowDown to requests beyond that many in flight (a server at capacity);
 * `latencyMs` delays every response (or those a function picks, by how much).
 *
 * Bounded: a request log capped at `logLimit` entries, timers cleared and sockets destroyed on
 * close(), and the proxy closes itself after `lifetimeMs` in case a test forgets to.
 */
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";

export type FaultKind = "slowDown" | "internal" | "reset" | "delay" | "error200" | "garbage200";
/** The kinds random faults are drawn from (the other two are for rules). */
export const RANDOM_FAULT_KINDS = ["slowDown", "internal", "reset", "delay"] as const;
export type RandomFaultKind = (typeof RANDOM_FAULT_KINDS)[number];

/** What a rule sees of a request. `key` and `copySource` are decoded. */
export interface RequestInfo {
  /** Sequence number, from 0, in arrival order. */
  seq: number;
  method: string;
  /** The raw path, as sent (percent-encoded). */
  rawPath: string;
  /** The decoded path. */
  path: string;
  query: URLSearchParams;
  /** First path segment (path-style addressing). */
  bucket: string;
  /** The rest of the path after the bucket, decoded ("" for bucket-level requests). */
  key: string;
  /** x-amz-copy-source, decoded ("bucket/key"), when present. */
  copySource?: string;
  /** A name for the S3 operation, good enough for counting: ListObjectsV2, CopyObject, DeleteObjects, ... */
  operation: string;
  headers: http.IncomingHttpHeaders;
}

export interface FaultProxyOptions {
  /** Upstream endpoint, e.g. http://127.0.0.1:17480. */
  target: string;
  /** PRNG seed; the same seed gives the same fault decisions. Default 1. */
  seed?: number;
  /** Share (0..1) of requests faulted at random. Default 0. */
  faultRate?: number;
  /** Relative weights of the random fault kinds. Default: all four equally. */
  weights?: Partial<Record<RandomFaultKind, number>>;
  /** How long a "delay" fault holds the response, ms. Default 5000. */
  delayMs?: number;
  /** Latency added to every response, ms. Default 0. */
  latencyMs?: number | ((req: RequestInfo) => number);
  /** Every request whose decoded path or decoded x-amz-copy-source contains one of these gets 500 InternalError. */
  failKeys?: string[];
  /** Faults exactly the requests it returns a kind for (checked before the random faults). */
  rule?: (req: RequestInfo) => FaultKind | CannedReply | undefined;
  /** Awaited before a request is forwarded: what a test does there happens between the client's request and the server's answer. */
  beforeForward?: (req: RequestInfo) => Promise<void> | void;
  /** Requests beyond this many in flight get 503 SlowDown (a server at capacity). */
  maxInFlight?: number;
  /** Only requests numbered >= this are eligible for random faults. Default 0. */
  faultAfter?: number;
  /** The proxy closes itself after this long, ms. Default 10 minutes. */
  lifetimeMs?: number;
  /** Most request-log entries kept. Default 100,000. */
  logLimit?: number;
}

/** A rule's own answer, sent without forwarding (counted as fault kind "reply"). */
export interface CannedReply {
  status: number;
  body: string;
  contentType?: string;
}

export interface LoggedRequest {
  seq: number;
  method: string;
  operation: string;
  bucket: string;
  key: string;
  /** The fault applied, if any. */
  fault?: FaultKind | "reply";
  /** Why: "random", "failKey", "rule", "capacity". */
  cause?: string;
  /** Upstream status, or the status the proxy answered with; undefined for resets before headers. */
  status?: number;
  /** When the request arrived (epoch ms). */
  at: number;
}

export interface FaultStats {
  requests: number;
  forwarded: number;
  faults: Record<FaultKind | "reply", number>;
  /** Faults by cause: random, failKey, rule, capacity. */
  byCause: Record<string, number>;
  /** Requests per S3 operation (ListObjectsV2, CopyObject, DeleteObjects, ...). */
  operations: Record<string, number>;
  /** Highest number of requests in flight at once. */
  maxInFlightSeen: number;
}

/** mulberry32: a tiny, fast, seedable PRNG; returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const HOP_BY_HOP = [
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  "trailer",
  "expect",
];

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** GETs of a bucket's sub-resources (the rest of a bucket's GETs are listings). */
const BUCKET_GETS: [string, string][] = [
  ["acl", "GetBucketAcl"],
  ["location", "GetBucketLocation"],
  ["versioning", "GetBucketVersioning"],
  ["policy", "GetBucketPolicy"],
  ["notification", "GetBucketNotificationConfiguration"],
  ["object-lock", "GetObjectLockConfiguration"],
];

/** Best-effort S3 operation name from method, path and query (path-style). */
export function operationOf(
  method: string,
  key: string,
  query: URLSearchParams,
  copySource: string | undefined,
): string {
  const has = (q: string) => query.has(q);
  if (key === "") {
    if (method === "GET" && query.get("list-type") === "2") return "ListObjectsV2";
    if (method === "GET" && has("uploads")) return "ListMultipartUploads";
    if (method === "GET") for (const [sub, name] of BUCKET_GETS) if (has(sub)) return name;
    if (method === "GET") return "ListObjects";
    if (method === "POST" && has("delete")) return "DeleteObjects";
    if (method === "HEAD") return "HeadBucket";
    if (method === "PUT" && [...query.keys()].length === 0) return "CreateBucket";
    if (method === "DELETE" && [...query.keys()].length === 0) return "DeleteBucket";
    return `${method} bucket?${[...query.keys()].join("&")}`;
  }
  if (method === "PUT" && has("partNumber")) return copySource ? "UploadPartCopy" : "UploadPart";
  if (method === "PUT" && has("tagging")) return "PutObjectTagging";
  if (method === "PUT" && has("acl")) return "PutObjectAcl";
  if (method === "PUT") return copySource ? "CopyObject" : "PutObject";
  if (method === "POST" && has("uploads")) return "CreateMultipartUpload";
  if (method === "POST" && has("uploadId")) return "CompleteMultipartUpload";
  if (method === "DELETE" && has("uploadId")) return "AbortMultipartUpload";
  if (method === "DELETE") return "DeleteObject";
  if (method === "GET" && has("tagging")) return "GetObjectTagging";
  if (method === "GET" && has("acl")) return "GetObjectAcl";
  if (method === "GET") return "GetObject";
  if (method === "HEAD") return "HeadObject";
  return `${method} object?${[...query.keys()].join("&")}`;
}

function errorXml(code: string, message: string, requestId: string, resource: string): string {
  const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  return (
    `<?xml version="1.0" encoding="UTF-8"?>` +
    `<Error><Code>${code}</Code><Message>${esc(message)}</Message><Resource>${esc(resource)}</Resource><RequestId>${requestId}</RequestId></Error>`
  );
}

export class FaultProxy {
  readonly log: LoggedRequest[] = [];
  readonly stats: FaultStats = {
    requests: 0,
    forwarded: 0,
    faults: { slowDown: 0, internal: 0, reset: 0, delay: 0, error200: 0, garbage200: 0, reply: 0 },
    byCause: {},
    operations: {},
    maxInFlightSeen: 0,
  };
  private server: http.Server;
  private upstream: URL;
  private agent: http.Agent;
  private rng: () => number;
  private timers = new Set<NodeJS.Timeout>();
  private sockets = new Set<Socket>();
  private inFlight = 0;
  private closed = false;
  private lifetime: NodeJS.Timeout;
  private port = 0;

  private constructor(private readonly opts: FaultProxyOptions) {
    this.upstream = new URL(opts.target);
    this.rng = mulberry32(opts.seed ?? 1);
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
    this.server = http.createServer((req, res) => this.handle(req, res));
    // Like radosgw and S3, keep idle connections long enough that the proxy's own idle closes do
    // not race with the client's connection reuse (a fault nobody asked for).
    this.server.keepAliveTimeout = 65_000;
    this.server.headersTimeout = 66_000;
    this.server.on("connection", (s) => {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    });
    this.lifetime = setTimeout(() => void this.close(), opts.lifetimeMs ?? 10 * 60_000);
    this.lifetime.unref();
  }

  /** Starts a proxy on 127.0.0.1 at a random free port. */
  static async start(opts: FaultProxyOptions): Promise<FaultProxy> {
    const proxy = new FaultProxy(opts);
    await new Promise<void>((resolve, reject) => {
      proxy.server.once("error", reject);
      proxy.server.listen(0, "127.0.0.1", () => resolve());
    });
    proxy.port = (proxy.server.address() as AddressInfo).port;
    return proxy;
  }

  /** The endpoint URL clients should use. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Requests seen for one operation (e.g. "DeleteObjects"). */
  count(operation: string): number {
    return this.stats.operations[operation] ?? 0;
  }

  get totalFaults(): number {
    return Object.values(this.stats.faults).reduce((a, b) => a + b, 0);
  }

  /** Changes the share of random faults from now on (e.g. 0 to stop faulting). */
  setFaultRate(rate: number): void {
    this.opts.faultRate = rate;
  }

  private later(ms: number, fn: () => void): void {
    if (this.closed) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.closed) fn();
    }, ms);
    this.timers.add(t);
  }

  private pickKind(): FaultKind {
    const ALL_KINDS = RANDOM_FAULT_KINDS;
    const weight = (k: RandomFaultKind) => (this.opts.weights ? (this.opts.weights[k] ?? 0) : 1);
    const total = ALL_KINDS.reduce((s, k) => s + weight(k), 0);
    let r = this.rng() * total;
    for (const k of ALL_KINDS) {
      r -= weight(k);
      if (r < 0 && weight(k) > 0) return k;
    }
    return ALL_KINDS.filter((k) => weight(k) > 0).pop() ?? "internal";
  }

  private describe(req: http.IncomingMessage, seq: number): RequestInfo {
    const url = new URL(req.url ?? "/", "http://proxy.invalid");
    const rawPath = url.pathname;
    const segments = rawPath.split("/"); // ["", bucket, ...key segments]
    const bucket = safeDecode(segments[1] ?? "");
    const key = segments.slice(2).map(safeDecode).join("/");
    const rawCopy = req.headers["x-amz-copy-source"];
    const copySource = typeof rawCopy === "string" ? safeDecode(rawCopy.replace(/^\//, "")) : undefined;
    const method = req.method ?? "GET";
    return {
      seq,
      method,
      rawPath,
      path: safeDecode(rawPath),
      query: url.searchParams,
      bucket,
      key,
      copySource,
      operation: operationOf(method, key, url.searchParams, copySource),
      headers: req.headers,
    };
  }

  private decide(info: RequestInfo): { kind: FaultKind | "reply"; cause: string; reply?: CannedReply } | undefined {
    // One PRNG draw per request whatever happens, so decisions stay aligned with arrival order.
    const draw = this.rng();
    if (
      this.opts.failKeys?.some(
        (k) => info.key.includes(k) || info.path.includes(k) || (info.copySource?.includes(k) ?? false),
      )
    ) {
      return { kind: "internal", cause: "failKey" };
    }
    const ruled = this.opts.rule?.(info);
    if (typeof ruled === "object") return { kind: "reply", cause: "rule", reply: ruled };
    if (ruled) return { kind: ruled, cause: "rule" };
    if (this.opts.maxInFlight !== undefined && this.inFlight > this.opts.maxInFlight)
      return { kind: "slowDown", cause: "capacity" };
    if (info.seq >= (this.opts.faultAfter ?? 0) && draw < (this.opts.faultRate ?? 0))
      return { kind: this.pickKind(), cause: "random" };
    return undefined;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const seq = this.stats.requests++;
    this.inFlight++;
    this.stats.maxInFlightSeen = Math.max(this.stats.maxInFlightSeen, this.inFlight);
    let done = false;
    const finish = () => {
      if (!done) {
        done = true;
        this.inFlight--;
      }
    };
    res.on("close", finish);
    req.on("error", () => undefined);
    res.on("error", () => undefined);

    const info = this.describe(req, seq);
    this.stats.operations[info.operation] = (this.stats.operations[info.operation] ?? 0) + 1;
    const fault = this.decide(info);
    const entry: LoggedRequest = {
      seq,
      method: info.method,
      operation: info.operation,
      bucket: info.bucket,
      key: info.key,
      at: Date.now(),
    };
    if (fault) {
      entry.fault = fault.kind;
      entry.cause = fault.cause;
      this.stats.faults[fault.kind]++;
      this.stats.byCause[fault.cause] = (this.stats.byCause[fault.cause] ?? 0) + 1;
    }
    if (this.log.length < (this.opts.logLimit ?? 100_000)) this.log.push(entry);

    if (fault && fault.kind !== "reset" && fault.kind !== "delay") {
      // Answered here; the request body is read and dropped so the connection stays usable.
      req.resume();
      const requestId = `FAULT${String(seq).padStart(10, "0")}`;
      const [status, contentType, body] = fault.reply
        ? [fault.reply.status, fault.reply.contentType ?? "application/xml", fault.reply.body]
        : fault.kind === "slowDown"
          ? [503, "application/xml", errorXml("SlowDown", "Please reduce your request rate.", requestId, info.rawPath)]
          : fault.kind === "garbage200"
            ? [
                200,
                "text/html",
                "<html><head><title>Welcome</title></head><body>Please log in to continue.</body></html>",
              ]
            : [
                fault.kind === "error200" ? 200 : 500,
                "application/xml",
                errorXml(
                  "InternalError",
                  "We encountered an internal error. Please try again.",
                  requestId,
                  info.rawPath,
                ),
              ];
      entry.status = status;
      const send = () =>
        res
          .writeHead(status, {
            "content-type": contentType,
            "content-length": Buffer.byteLength(body),
            "x-amz-request-id": requestId,
          })
          .end(body);
      const latency = this.latencyFor(info);
      if (latency > 0) this.later(latency, send);
      else send();
      return;
    }
    const go = () =>
      this.forward(req, res, entry, fault?.kind === "reply" ? undefined : fault?.kind, this.latencyFor(info));
    if (!this.opts.beforeForward) return go();
    // The test acts on the server first (e.g. rewrites the object this request reads), then it goes on.
    req.pause();
    void Promise.resolve(this.opts.beforeForward(info)).then(go, go);
  }

  private latencyFor(info: RequestInfo): number {
    const l = this.opts.latencyMs;
    return typeof l === "function" ? l(info) : (l ?? 0);
  }

  private forward(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    entry: LoggedRequest,
    kind: FaultKind | undefined,
    latency: number,
  ): void {
    this.stats.forwarded++;
    const headers: http.OutgoingHttpHeaders = { ...req.headers };
    for (const h of HOP_BY_HOP) delete headers[h];
    // Host stays exactly as the client sent (and signed) it.
    if (req.headers["transfer-encoding"]) headers["transfer-encoding"] = req.headers["transfer-encoding"];
    const upstreamReq = http.request(
      {
        host: this.upstream.hostname,
        port: this.upstream.port || 80,
        method: req.method,
        path: req.url,
        headers,
        agent: this.agent,
      },
      (upstreamRes) => {
        const chunks: Buffer[] = [];
        upstreamRes.on("data", (c: Buffer) => chunks.push(c));
        upstreamRes.on("error", () => res.destroy());
        upstreamRes.on("end", () => {
          const body = Buffer.concat(chunks);
          entry.status = upstreamRes.statusCode;
          const outHeaders: http.OutgoingHttpHeaders = {};
          for (const [name, value] of Object.entries(upstreamRes.headers)) {
            if (value !== undefined && !HOP_BY_HOP.includes(name)) outHeaders[name] = value;
          }
          // A HEAD answer keeps the object's Content-Length: it has no body, but the header is the answer.
          if (req.method !== "HEAD") outHeaders["content-length"] = body.length;
          const respond = () => {
            if (res.destroyed) return;
            if (kind === "reset") {
              if (body.length === 0) {
                // The server did the work; the client never hears about it.
                res.socket?.destroy();
                res.destroy();
                return;
              }
              res.writeHead(upstreamRes.statusCode ?? 502, outHeaders);
              res.write(body.subarray(0, Math.max(1, Math.floor(body.length / 2))), () => {
                res.socket?.destroy();
                res.destroy();
              });
              return;
            }
            res.writeHead(upstreamRes.statusCode ?? 502, outHeaders);
            res.end(body);
          };
          const wait = (kind === "delay" ? (this.opts.delayMs ?? 5_000) : 0) + latency;
          if (wait > 0) this.later(wait, respond);
          else respond();
        });
      },
    );
    upstreamReq.on("error", () => {
      if (!res.headersSent && !res.destroyed)
        res.writeHead(502, { "content-type": "text/plain" }).end("fault proxy: upstream error");
      else res.destroy();
    });
    req.pipe(upstreamReq);
  }

  /** Stops listening, drops every connection and pending timer. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.lifetime);
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    for (const s of this.sockets) s.destroy();
    this.agent.destroy();
    await closed;
  }
}

/** Starts a proxy in front of `opts.target`. */
export function startFaultProxy(opts: FaultProxyOptions): Promise<FaultProxy> {
  return FaultProxy.start(opts);
}
