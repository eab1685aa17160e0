import { createHash } from "node:crypto";
import { Hash } from "@smithy/hash-node";
import { SignatureV4 } from "@smithy/signature-v4";
import type { AwsCredentialIdentity, Provider } from "@aws-sdk/types";
import { parseS3Xml, type S3Xml } from "./xml.js";
import { unquoteEtag } from "../../integrity/etag.js";
import { createRequire } from "node:module";
import http from "node:http";
import https from "node:https";
import type { Agent as UndiciAgent, Dispatcher } from "undici";
import type { RequestKind, RequestMeter } from "../../core/meter.js";

// undici's entry point loads ~110 modules (fetch, WebSocket, caches): 75 ms of every start. The
// agent alone loads in 25 ms. undici is pinned to an exact version in package.json because this
// path is inside the package.
const Agent: typeof UndiciAgent = createRequire(import.meta.url)("undici/lib/dispatcher/agent.js");

interface BufferedResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/**
 * One request through undici's dispatcher (its documented handler API), the response body
 * collected into one Buffer. S3's answers here are small and read whole, so this skips the
 * stream that undici's request() builds for every response.
 */
/**
 * Requests that an interrupt aborts (listings): one listener on the run's signal for all of them,
 * not one per request (thousands in flight would each add one).
 */
class Abortable {
  private readonly inFlight = new Set<(reason: unknown) => void>();
  constructor(readonly signal: AbortSignal) {
    signal.addEventListener("abort", () => {
      for (const abort of this.inFlight) abort(signal.reason ?? new Error("aborted"));
    });
  }
  /** Registers a request's abort; returns the function that unregisters it. */
  add(abort: (reason: unknown) => void): () => void {
    if (this.signal.aborted) {
      abort(this.signal.reason ?? new Error("aborted"));
      return () => {};
    }
    this.inFlight.add(abort);
    return () => this.inFlight.delete(abort);
  }
}

function dispatchBuffered(
  agent: Dispatcher,
  options: Dispatcher.DispatchOptions,
  abortable?: Abortable,
): Promise<BufferedResponse> {
  return new Promise((resolve, reject) => {
    let status = 0;
    let headers: BufferedResponse["headers"] = {};
    let chunks: Buffer[] = [];
    let unlisten = () => {};
    agent.dispatch(options, {
      // Also what makes undici take this for its current handler API (it checks for this method).
      onRequestStart(controller) {
        if (abortable) unlisten = abortable.add((reason) => controller.abort(reason as Error));
      },
      onResponseStart(_controller, statusCode, responseHeaders) {
        // Called again after a 1xx informational response: keep only the final one.
        status = statusCode;
        headers = responseHeaders;
        chunks = [];
      },
      onResponseData(_controller, chunk) {
        chunks.push(chunk);
      },
      onResponseEnd() {
        unlisten();
        resolve({ status, headers, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks) });
      },
      onResponseError(_controller, error) {
        unlisten();
        reject(error);
      },
    });
  });
}

/**
 * A HEAD request over node:http's keep-alive agent. undici closes the connection after every HEAD
 * (it guards against servers that send a body with one), so a HEAD per key on it would open a
 * new connection per key: a connect per request, and one more round trip each on a slow link.
 */
function dispatchHead(
  agents: { http: http.Agent; https: https.Agent },
  protocol: string,
  hostname: string,
  port: number | undefined,
  path: string,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<BufferedResponse> {
  const lib = protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(
      {
        agent: protocol === "https:" ? agents.https : agents.http,
        method: "HEAD",
        hostname,
        port,
        path,
        headers,
      },
      (res) => {
        res.on("error", reject);
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.alloc(0) }));
        res.resume();
      },
    );
    req.on("error", reject);
    if (timeoutMs > 0)
      req.setTimeout(timeoutMs, () =>
        req.destroy(Object.assign(new Error(`no answer in ${timeoutMs} ms`), { code: "ETIMEDOUT" })),
      );
    req.end();
  });
}

/**
 * A lean S3 client for the hot calls of a sync: ListObjectsV2, CopyObject, DeleteObjects.
 *
 * Why: with client and server sharing two cores, client CPU per request decides the wall time,
 * and the full SDK v3 middleware stack costs about twice rclone's CPU per request. This client
 * uses the same maintained parts the SDK does — the official `@smithy/signature-v4` signer,
 * `undici` for HTTP, `saxes` for XML — without the per-request middleware. Everything
 * else (head, get, put, multipart, tagging) stays on the SDK.
 */
export interface LeanClientOptions {
  /** Custom endpoint (path-style); undefined means AWS (virtual-hosted style). */
  endpoint?: string;
  region: string;
  forcePathStyle: boolean;
  credentials: AwsCredentialIdentity | Provider<AwsCredentialIdentity>;
  connections: number;
  requestTimeoutMs: number;
  /** Learns of every answer and failure: see Reachability in client.ts. */
  reachability?: Reachability;
  /** Aborts listing requests in flight (an interrupted run stops listing at once; writes finish). */
  signal?: AbortSignal;
  /** Counts every request and holds it to --tpslimit (core/meter.ts). */
  meter?: RequestMeter;
}

/** What a client tells about whether its endpoint answers (see client.ts). */
export interface Reachability {
  /** True once the endpoint answered any request. */
  readonly reached: boolean;
  /** Before the first answer, a silent endpoint is given up on after this long (ms). */
  readonly firstAnswerTimeoutMs: number;
  answered(): void;
  /** Adds the endpoint and whether it had answered before to an error of the connection. */
  annotate(err: unknown): unknown;
}

export interface ListedObject {
  key: string;
  size: number;
  lastModified: number;
  etag?: string;
  storageClass?: string;
}

export interface ListPage {
  objects: ListedObject[];
  /** Common prefixes, when listed with a delimiter (still URL-encoded, like keys). */
  prefixes: string[];
  nextToken?: string;
}

/** Errors shaped like the SDK's (`name`, `Code`, `$metadata.httpStatusCode`) so one classifier serves both. */
export class S3ResponseError extends Error {
  readonly Code: string;
  readonly $metadata: { httpStatusCode: number };
  constructor(code: string, status: number, message: string) {
    super(message || code);
    this.name = code;
    this.Code = code;
    this.$metadata = { httpStatusCode: status };
  }
}

const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// The XML builder for DeleteObjects bodies loads on the first delete only.
let builder: Promise<{ build(o: unknown): string }> | undefined;
function deleteBodyBuilder() {
  return (builder ??= import("fast-xml-parser").then(
    ({ XMLBuilder }) => new XMLBuilder({ ignoreAttributes: true, processEntities: true }),
  ));
}

/** RFC 3986 encoding, as SigV4 and S3 paths need it (encodeURIComponent leaves !'()* alone). */
export function encodeRfc3986(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function encodeKeyPath(key: string): string {
  return key.split("/").map(encodeRfc3986).join("/");
}

export class LeanS3Client {
  private readonly agent: UndiciAgent;
  private readonly signers = new Map<string, SignatureV4>();
  /** Buckets AWS told us live in another region (301 with x-amz-bucket-region). */
  private readonly bucketRegions = new Map<string, string>();
  private readonly endpoint?: URL;

  private readonly listings?: Abortable;
  /** HEADs only (see dispatchHead). */
  private readonly headAgents: { http: http.Agent; https: https.Agent };

  constructor(private readonly options: LeanClientOptions) {
    this.endpoint = options.endpoint ? new URL(options.endpoint) : undefined;
    this.listings = options.signal ? new Abortable(options.signal) : undefined;
    this.agent = new Agent({
      connections: options.connections,
      keepAliveTimeout: 10_000,
      headersTimeout: options.requestTimeoutMs || 0,
      bodyTimeout: options.requestTimeoutMs || 0,
      connectTimeout: 10_000,
    });
    const keepAlive = { keepAlive: true, maxSockets: options.connections, timeout: 0 };
    this.headAgents = { http: new http.Agent(keepAlive), https: new https.Agent(keepAlive) };
  }

  async listPage(
    bucket: string,
    params: { prefix?: string; startAfter?: string; continuationToken?: string; maxKeys?: number; delimiter?: string },
  ): Promise<ListPage> {
    const query: Record<string, string> = {
      "list-type": "2",
      "encoding-type": "url",
      "max-keys": String(params.maxKeys ?? 1000),
    };
    if (params.prefix) query.prefix = params.prefix;
    if (params.delimiter) query.delimiter = params.delimiter;
    if (params.continuationToken) query["continuation-token"] = params.continuationToken;
    else if (params.startAfter) query["start-after"] = params.startAfter;
    const res = await this.send("LIST", "GET", bucket, undefined, query, {}, undefined, this.listings);
    const result = parseResult(res.body, "ListBucketResult", ["Contents", "CommonPrefixes"]);
    const objects: ListedObject[] = (result.records.get("Contents") ?? []).map((c) => ({
      key: c.Key ?? "",
      size: Number(c.Size ?? 0),
      lastModified: Date.parse(c.LastModified ?? ""),
      etag: unquoteEtag(c.ETag),
      storageClass: c.StorageClass,
    }));
    const truncated = result.fields.get("IsTruncated") === "true";
    const nextToken = truncated ? result.fields.get("NextContinuationToken") : undefined;
    // A truncated page without a way on must never read as the end of the listing.
    if (truncated && !nextToken)
      throw new S3ResponseError("InvalidResponse", 502, "listing page is truncated but has no NextContinuationToken");
    const prefixes: string[] = (result.records.get("CommonPrefixes") ?? []).map((p) => p.Prefix ?? "");
    return { objects, prefixes, nextToken };
  }

  /** CopyObject; returns the new object's ETag from the CopyObjectResult. */
  async copyObject(
    bucket: string,
    key: string,
    copySource: string,
    headers: Record<string, string>,
  ): Promise<{ etag?: string; sse?: string; versionId?: string }> {
    const res = await this.send("COPY", "PUT", bucket, key, {}, { "x-amz-copy-source": copySource, ...headers });
    // CopyObject can answer 200 and still fail: the error is in the body.
    const result = parseResult(res.body, "CopyObjectResult", [], true);
    if (result.root === "Error") throw errorFromXml(result, 200);
    const etag = result.fields.get("ETag");
    const sse = res.headers["x-amz-server-side-encryption"];
    const versionId = res.headers["x-amz-version-id"];
    return {
      etag: typeof etag === "string" ? unquoteEtag(etag) : undefined,
      sse: typeof sse === "string" ? sse : undefined,
      versionId: typeof versionId === "string" ? versionId : undefined,
    };
  }

  /**
   * PutObject of a small body held in memory (the lean path for small files: no SDK middleware,
   * one signed request); `headers` carry the object's properties and conditions.
   */
  async putObject(
    bucket: string,
    key: string,
    body: Buffer,
    headers: Record<string, string>,
  ): Promise<{ etag?: string }> {
    const res = await this.send("PUT", "PUT", bucket, key, {}, headers, body);
    const etag = res.headers.etag;
    return { etag: typeof etag === "string" ? unquoteEtag(etag) : undefined };
  }

  /** HeadObject: the object's response headers. */
  async headObject(bucket: string, key: string): Promise<Record<string, string | string[] | undefined>> {
    return (await this.send("HEAD", "HEAD", bucket, key, {}, {})).headers;
  }

  /** GetObject of a small object, read whole into memory: its headers and bytes. */
  async getObject(
    bucket: string,
    key: string,
    headers: Record<string, string>,
    versionId?: string,
  ): Promise<{ headers: Record<string, string | string[] | undefined>; body: Buffer }> {
    const res = await this.send("GET", "GET", bucket, key, versionId ? { versionId } : {}, headers);
    return { headers: res.headers, body: res.body };
  }

  /** DeleteObjects in quiet mode: returns only the keys that failed. */
  async deleteObjects(bucket: string, keys: string[]): Promise<{ key: string; code: string; message: string }[]> {
    const xml = (await deleteBodyBuilder()).build({ Delete: { Quiet: true, Object: keys.map((Key) => ({ Key })) } });
    const body = Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>${xml}`);
    const res = await this.send(
      "DELETE",
      "POST",
      bucket,
      undefined,
      { delete: "" },
      { "content-md5": createHash("md5").update(body).digest("base64"), "content-type": "application/xml" },
      body,
    );
    const result = parseResult(res.body, "DeleteResult", ["Error"]);
    return (result.records.get("Error") ?? []).map((e) => ({
      key: e.Key ?? "",
      code: e.Code ?? "Error",
      message: e.Message || e.Code || "delete failed",
    }));
  }

  /** DeleteObject of one key (204 whether or not it existed). */
  async deleteObject(bucket: string, key: string): Promise<void> {
    await this.send("DELETE", "DELETE", bucket, key, {}, {});
  }

  /**
   * Removes one notification of a bucket by its id: Ceph's `DELETE /bucket?notification=ID`
   * (radosgw merges PutBucketNotificationConfiguration by id instead of replacing the set).
   */
  async deleteBucketNotification(bucket: string, id: string): Promise<void> {
    await this.send("DELETE", "DELETE", bucket, undefined, { notification: id }, {});
  }

  close(): Promise<void> {
    this.headAgents.http.destroy();
    this.headAgents.https.destroy();
    return this.agent.close();
  }

  private async send(
    kind: RequestKind,
    method: string,
    bucket: string,
    key: string | undefined,
    query: Record<string, string>,
    headers: Record<string, string>,
    body?: Buffer,
    abortable?: Abortable,
  ): Promise<BufferedResponse> {
    for (let redirects = 0; ; redirects++) {
      // Before signing: a request waiting for --tpslimit must not carry an old signature.
      await this.options.meter?.begin(kind);
      const region = this.bucketRegions.get(bucket) ?? this.options.region;
      const { protocol, hostname, port, path } = this.address(bucket, key, region);
      const signed = await this.signer(region)
        .sign({
          method,
          protocol,
          hostname,
          port,
          path,
          query,
          // Object.assign, not a spread: in V8 a spread followed by properties its source lacks
          // takes microseconds per request.
          headers: Object.assign({}, headers, {
            host: port ? `${hostname}:${port}` : hostname,
            "x-amz-content-sha256": body ? createHash("sha256").update(body).digest("hex") : EMPTY_SHA256,
          }),
          body,
        })
        .catch((err: unknown) => {
          this.options.meter?.end(kind, "error");
          throw err;
        });
      const qs = Object.entries(query)
        .map(([k, v]) => (v === "" ? encodeRfc3986(k) : `${encodeRfc3986(k)}=${encodeRfc3986(v)}`))
        .join("&");
      const reach = this.options.reachability;
      const meter = this.options.meter;
      let res: BufferedResponse;
      try {
        // A server that never answered gets a short wait: a silent endpoint must not hang the run.
        const firstWait = reach && !reach.reached ? reach.firstAnswerTimeoutMs : undefined;
        res =
          method === "HEAD"
            ? await dispatchHead(
                this.headAgents,
                protocol,
                signed.hostname,
                port,
                qs ? `${path}?${qs}` : path,
                signed.headers,
                firstWait ?? this.options.requestTimeoutMs,
              )
            : await dispatchBuffered(
                this.agent,
                {
                  origin: `${protocol}//${signed.hostname}${port ? `:${port}` : ""}`,
                  path: qs ? `${path}?${qs}` : path,
                  method: method as "GET",
                  headers: signed.headers,
                  body,
                  ...(firstWait !== undefined && { headersTimeout: firstWait }),
                },
                abortable,
              );
      } catch (err) {
        meter?.end(kind, "error");
        throw reach ? reach.annotate(err) : err;
      }
      meter?.end(kind, res.status);
      reach?.answered();
      if (res.status < 300) return res;
      const movedTo = res.headers["x-amz-bucket-region"];
      if (
        res.status === 301 &&
        typeof movedTo === "string" &&
        movedTo !== region &&
        redirects === 0 &&
        !this.endpoint
      ) {
        this.bucketRegions.set(bucket, movedTo);
        continue;
      }
      const err = errorFromBody(res.body, res.status);
      // Which bucket, at which endpoint: "NoSuchBucket" alone does not say.
      Object.assign(err, { $bucket: bucket });
      throw reach ? reach.annotate(err) : err;
    }
  }

  private address(bucket: string, key: string | undefined, region: string) {
    const keyPath = key === undefined ? "" : encodeKeyPath(key);
    if (this.endpoint) {
      const base = this.endpoint.pathname.replace(/\/$/, "");
      const virtual = !this.options.forcePathStyle;
      return {
        protocol: this.endpoint.protocol,
        hostname: virtual ? `${bucket}.${this.endpoint.hostname}` : this.endpoint.hostname,
        port: this.endpoint.port ? Number(this.endpoint.port) : undefined,
        path: virtual ? `${base}/${keyPath}` : `${base}/${bucket}${key === undefined ? "" : `/${keyPath}`}`,
      };
    }
    const dnsSafe = /^[a-z0-9][a-z0-9-]*[a-z0-9]$/.test(bucket);
    const host = `s3.${region}.amazonaws.com`;
    return dnsSafe
      ? { protocol: "https:", hostname: `${bucket}.${host}`, port: undefined, path: `/${keyPath}` }
      : {
          protocol: "https:",
          hostname: host,
          port: undefined,
          path: `/${bucket}${key === undefined ? "" : `/${keyPath}`}`,
        };
  }

  private signer(region: string): SignatureV4 {
    let signer = this.signers.get(region);
    if (!signer) {
      // S3 signs the path as sent (no double encoding), as the SDK's S3 client does.
      signer = new SignatureV4({
        credentials: this.options.credentials,
        region,
        service: "s3",
        sha256: Hash.bind(null, "sha256"),
        uriEscapePath: false,
      });
      this.signers.set(region, signer);
    }
    return signer;
  }
}

/**
 * A 200 response's XML, or a retryable error when its root is not the expected one: a proxy's
 * HTML page or a truncated body must never read as "an empty listing" (which would let --delete
 * wipe the target) or as "copied". `allowError`: CopyObject can answer 200 with an <Error> body.
 */
function parseResult(body: Buffer, root: string, records: string[], allowError = false): S3Xml {
  let parsed: S3Xml | undefined;
  try {
    parsed = parseS3Xml(body.toString("utf8"), records);
  } catch {
    parsed = undefined;
  }
  if (parsed && (parsed.root === root || (allowError && parsed.root === "Error"))) return parsed;
  const snippet = body.toString("utf8", 0, 60).replace(/\s+/g, " ");
  throw new S3ResponseError(
    "InvalidResponse",
    502,
    `expected <${root}> in the response, got ${JSON.stringify(snippet)}`,
  );
}

function errorFromXml(xml: S3Xml, status: number): S3ResponseError {
  return new S3ResponseError(xml.fields.get("Code") || `HTTP${status}`, status, xml.fields.get("Message") ?? "");
}

function errorFromBody(body: Buffer, status: number): S3ResponseError {
  let code =
    status === 404
      ? "NotFound"
      : status === 403
        ? "AccessDenied"
        : status === 412
          ? "PreconditionFailed"
          : `HTTP${status}`;
  let message = "";
  try {
    const parsed = parseS3Xml(body.toString("utf8"), []);
    if (parsed.fields.get("Code")) code = parsed.fields.get("Code")!;
    message = parsed.fields.get("Message") ?? "";
  } catch {
    // not XML: keep the status-derived code
  }
  return new S3ResponseError(code, status, message);
}
