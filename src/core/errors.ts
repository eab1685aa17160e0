import { maskUrls } from "./endpoint.js";
import { UsageError } from "./types.js";

/** How the executor treats an error. */
export type ErrorClass =
  /** Worth another try after a pause: throttling, server errors, dropped connections, timeouts. */
  | "retry"
  /** This object failed; others may still succeed (NoSuchKey, per-object AccessDenied). */
  | "object"
  /** Nothing else will succeed either: bad credentials, missing bucket, unreachable endpoint. */
  | "fatal";

export interface ErrorInfo {
  code: string;
  message: string;
  class: ErrorClass;
  /**
   * The connection to a server that answered before is gone (refused, reset, timed out): a
   * restarting server or load balancer. Retried for a span of time (RetryPolicy.outageMs), not a
   * count of tries, so a restart of several seconds is ridden out.
   */
  outage?: boolean;
}

/**
 * What the S3 connection adds to the errors it throws (see stores/s3/client.ts): the endpoint
 * (already masked) and whether that endpoint had answered any request before. An endpoint that
 * never answered is a setup problem (exit 2); one that answered before is having an outage.
 */
export interface ConnectionContext {
  $endpoint?: string;
  $reachedBefore?: boolean;
  /** The bucket a request that the server answered with an error was about. */
  $bucket?: string;
  /** Set by withRetry when a connection outage outlasted RetryPolicy.outageMs. */
  $outageExhausted?: number;
}

const FATAL_CODES = new Set([
  "InvalidAccessKeyId",
  "SignatureDoesNotMatch",
  "ExpiredToken",
  "TokenRefreshRequired",
  "InvalidToken",
  "NoSuchBucket",
  "CredentialsProviderError",
  "AccountProblem",
  "AllAccessDisabled",
  "PermanentRedirect",
  "AuthorizationHeaderMalformed",
]);
const RETRY_CODES = new Set([
  "SlowDown",
  "Throttling",
  "ThrottlingException",
  "RequestTimeout",
  "RequestTimeTooSkewed",
  "InternalError",
  "ServiceUnavailable",
  "TimeoutError",
  "InvalidResponse",
  "RequestTimeoutException",
]);
const NETWORK_CODES = new Set([
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "ECONNABORTED",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_REQ_CONTENT_LENGTH_MISMATCH",
  "UND_ERR_RES_CONTENT_LENGTH_MISMATCH",
]);
const UNREACHABLE_CODES = new Set(["ECONNREFUSED", "ENOTFOUND", "EHOSTUNREACH", "ENETUNREACH"]);
/** Whether an error code (classifyError's) says nothing could be reached at that address. */
export function isUnreachable(code: string): boolean {
  return UNREACHABLE_CODES.has(code);
}
/** No answer at all: before an endpoint ever answered, these mean it cannot be used. */
const SILENT_CODES = new Set([
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_CONNECT_TIMEOUT",
  "ETIMEDOUT",
  "TimeoutError",
  "RequestTimeout",
]);
/** Errors of the connection itself (no HTTP answer), as opposed to an answer that says no. */
const CONNECTION_CODES = new Set([
  ...UNREACHABLE_CODES,
  ...SILENT_CODES,
  "ECONNRESET",
  "EPIPE",
  "ECONNABORTED",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
]);

/** Classifies an error from any store once, so every layer agrees on what it means. */
export function classifyError(err: unknown): ErrorInfo {
  const e = err as {
    name?: string;
    Code?: string;
    code?: string;
    message?: string;
    $metadata?: { httpStatusCode?: number };
    $retryable?: unknown;
  };
  const status = e?.$metadata?.httpStatusCode;
  // undici wraps socket errors: the useful code may sit on `cause`.
  const causeCode = (e as { cause?: { code?: unknown } })?.cause?.code;
  const code =
    e?.Code ??
    (typeof causeCode === "string" && UNREACHABLE_CODES.has(causeCode) ? causeCode : undefined) ??
    (e?.code && typeof e.code === "string" ? e.code : undefined) ??
    e?.name ??
    "Error";
  const message = cleanMessage(e, code, status);
  if (err instanceof UsageError) return { code: "UsageError", message, class: "fatal" };
  const ctx = err as ConnectionContext | undefined;
  const where = ctx?.$endpoint ? ` ${ctx.$endpoint}` : "";
  if (ctx?.$outageExhausted !== undefined && CONNECTION_CODES.has(code)) {
    return {
      code,
      message: `lost the connection to the endpoint${where} for ${Math.round(ctx.$outageExhausted / 1000)} s (${code})`,
      class: "fatal",
    };
  }
  // An https:// URL on a plain-HTTP port (or the reverse): say that, not OpenSSL's record text.
  if (/^ERR_SSL_|^EPROTO$/.test(code) && status === undefined) {
    return {
      code,
      message: `TLS failed with the endpoint${where} (${code}): is it a plain http:// endpoint, or the wrong port?`,
      class: "fatal",
    };
  }
  if (code === "NoSuchBucket" && ctx?.$bucket) {
    return {
      code,
      message: `${message}: bucket '${ctx.$bucket}' does not exist${where ? ` at${where}` : ""}`,
      class: "fatal",
    };
  }
  if (status === undefined && CONNECTION_CODES.has(code)) {
    if (ctx?.$reachedBefore)
      return { code, message: `connection to the endpoint${where} failed (${code})`, class: "retry", outage: true };
    if (UNREACHABLE_CODES.has(code))
      return { code, message: `cannot reach the endpoint${where} (${code})`, class: "fatal" };
    // A server that accepts connections and never answers: say so instead of waiting forever.
    if (ctx?.$endpoint && SILENT_CODES.has(code))
      return { code, message: `the endpoint${where} does not answer (${code})`, class: "fatal" };
  }
  if (FATAL_CODES.has(code)) return { code, message, class: "fatal" };
  if (RETRY_CODES.has(code) || NETWORK_CODES.has(code) || e?.$retryable) return { code, message, class: "retry" };
  if (status === 429 || (status !== undefined && status >= 500)) return { code, message, class: "retry" };
  return { code, message, class: "object" };
}

function cleanMessage(e: { message?: string } | undefined, code: string, status: number | undefined): string {
  // radosgw (and some other servers) send empty <Message>; the SDK then says "UnknownError".
  let message = e?.message && e.message !== "UnknownError" && e.message !== code ? e.message : "";
  message = redactSecrets(message.split("\n")[0] ?? "");
  const parts = [code];
  if (status !== undefined) parts.push(`(HTTP ${status})`);
  if (message) parts.push(`: ${message}`);
  return parts.join(" ").replace(" :", ":");
}

/** Removes anything that looks like a credential from text that may reach a terminal or log. */
export function redactSecrets(text: string): string {
  return maskUrls(text)
    .replace(/(AKIA|ASIA)[A-Z0-9]{12,}/g, "$1****")
    .replace(/(Credential=)[^,\s/]+/g, "$1****")
    .replace(/(Signature=)[0-9a-f]+/g, "$1****")
    .replace(/(X-Amz-Security-Token=)[^&\s]+/gi, "$1****");
}

/**
 * An error with a code the classifier knows: S3's codes, a file system's (EACCES), and a few of
 * bucketsync's own. One class instead of `Object.assign(new Error(), { name })` at every site, so
 * callers can test `instanceof` and read `code`.
 */
export class StoreError extends Error {
  readonly Code: string;
  readonly code: string;
  readonly $retryable?: object;
  readonly $metadata?: { httpStatusCode: number };
  constructor(code: string, message: string, options: { retryable?: boolean; status?: number } = {}) {
    super(message);
    this.name = code;
    this.Code = code;
    this.code = code;
    if (options.retryable) this.$retryable = {};
    if (options.status !== undefined) this.$metadata = { httpStatusCode: options.status };
  }
}

/** The server took an encryption header on a copy and did not apply it (radosgw 16 with --sse): stream instead. */
export class EncryptionNotAppliedError extends StoreError {
  constructor(message: string) {
    super("EncryptionNotApplied", message);
  }
}

/** A listing returned keys out of UTF-8 byte order: merging it would be a guess, so the run stops. */
export class ListingOrderError extends Error {
  override name = "ListingOrderError";
  constructor(side: string, previous: string, key: string) {
    super(`${side} listing is out of order: '${key}' came after '${previous}'; stopping before any delete`);
  }
}

/** A listing failed part-way or at the start; `cause` is the store's error. */
export class ListingError extends Error {
  override name = "ListingError";
  constructor(
    readonly side: string,
    override readonly cause: unknown,
  ) {
    super(`${side} listing failed: ${(cause as Error)?.message ?? cause}`);
  }
}

/**
 * An answer that cannot be right (a listing page truncated without a token, a folder outside
 * the prefix, XML of the wrong kind): retried like a 5xx, never read as "empty" or "done".
 */
export class InvalidResponseError extends Error {
  override name = "InvalidResponse";
  readonly Code = "InvalidResponse";
}

/**
 * Classifies a failure of the action stream (a listing): an out-of-order listing keeps its own
 * message; a failed listing names its side.
 */
export function classifyListingFailure(err: unknown): ErrorInfo & { context: string } {
  if (err instanceof ListingOrderError)
    return { code: "ListingOrder", message: err.message, class: "fatal", context: "listing" };
  if (err instanceof ListingError) return { ...classifyError(err.cause), context: `${err.side} listing` };
  return { ...classifyError(err), context: "listing" };
}

/** A listing response that cannot be right (retried like any invalid response; never read as the end of a listing). */
export function invalidListing(message: string): Error {
  return new InvalidResponseError(`invalid listing: ${message}`);
}

/** A folder the store itself reported that then lists no key: its name was misreported (see KeyRange.expectKeys). */
export function emptyReportedFolder(folder: string): Error {
  return invalidListing(`the folder ${JSON.stringify(folder)} was reported but lists no keys`);
}
