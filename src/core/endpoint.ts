import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { UsageError } from "./types.js";

/**
 * Endpoint URLs as the tool compares and shows them. Two rules matter for safety:
 * - a guard decides by what a URL names, never by how it was spelled (`HTTP://Host:80/` is
 *   `http://host`), and where two spellings could name one server it takes them as one;
 * - a URL may carry a password (`http://user:secret@host`): nothing shows it.
 */

/** The endpoint with user info replaced by `****`, for messages; text that is not a URL is returned with any `user:pass@` masked. */
export function maskEndpoint(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/i, "$1****@");
}

/** Masks user info in every URL inside a piece of text (error messages may quote a URL). */
export function maskUrls(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s'"]*@/gi, "$1****@");
}

/**
 * The canonical spelling of an endpoint URL: scheme and host in lower case, no default port, no
 * trailing slash, no user info. Connections are keyed by it, so `http://h:80/` and `http://h`
 * share one connection and may copy server-side. Undefined stays undefined (AWS).
 */
export function canonicalEndpoint(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return url;
  }
  const path = parsed.pathname.replace(/\/+$/, "");
  // URL already lower-cases scheme and host and drops a default port.
  return `${parsed.protocol}//${parsed.host}${path}`;
}

/** Validates an endpoint given by the user (flag, config file); the message never shows user info. */
export function checkEndpointUrl(what: string, value: string | undefined): void {
  if (value === undefined) return;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`invalid ${what} '${maskEndpoint(value)}'; expected http(s)://host[:port]`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new UsageError(`invalid ${what} '${maskEndpoint(value)}'; expected http(s)://host[:port]`);
  if (url.username || url.password)
    throw new UsageError(`${what} must not contain credentials (${maskEndpoint(value)}); use the AWS credential chain`);
}

const AWS_HOST = /(^|\.)amazonaws\.com(\.cn)?$/;

interface ServerName {
  /** "aws" for AWS S3 (one bucket namespace for every region), "loopback", an IP, or a host name. */
  host: string;
  port: number;
}

function serverName(url: string | undefined, bucket: string | undefined): ServerName {
  if (url === undefined) return { host: "aws", port: 443 };
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { host: url.toLowerCase(), port: 0 };
  }
  let host = parsed.hostname
    .toLowerCase()
    .replace(/\.$/, "")
    .replace(/^\[|\]$/g, "");
  // Virtual-hosted spelling: bucket.host names the same server as host.
  if (bucket && host.startsWith(`${bucket.toLowerCase()}.`)) host = host.slice(bucket.length + 1);
  const port = parsed.port ? Number(parsed.port) : parsed.protocol === "https:" ? 443 : 80;
  if (AWS_HOST.test(host)) return { host: "aws", port: 443 };
  if (isLoopback(host)) return { host: "loopback", port };
  return { host, port };
}

/** Whether an endpoint URL names this machine (any loopback spelling). */
export function isLoopbackEndpoint(url: string | undefined): boolean {
  return url !== undefined && serverName(url, undefined).host === "loopback";
}

function isLoopback(host: string): boolean {
  return (
    host === "localhost" ||
    host.endsWith(".localhost") ||
    host === "::1" ||
    host === "0.0.0.0" ||
    host === "::" ||
    /^127\./.test(host)
  );
}

async function addresses(host: string): Promise<Set<string>> {
  if (isIP(host)) return new Set([host]);
  try {
    const found = await lookup(host, { all: true });
    return new Set(found.map((a) => (isLoopback(a.address) ? "loopback" : a.address)));
  } catch {
    // A name that does not resolve reaches no server: the run will fail on it anyway.
    return new Set();
  }
}

/**
 * Whether two endpoints (undefined: AWS) could be the same server. Spellings are normalized
 * (case, default ports, trailing slashes, path-style vs virtual-hosted, any loopback address);
 * host names that differ are resolved, and a shared address on the same port counts as the same
 * server. AWS S3 is one server whatever the region, since bucket names are global there.
 */
export async function couldBeSameServer(
  a: string | undefined,
  b: string | undefined,
  buckets: [string?, string?] = [],
): Promise<boolean> {
  const x = serverName(a, buckets[0]);
  const y = serverName(b, buckets[1]);
  if (x.host === y.host) return x.host === "aws" || x.port === y.port;
  if (x.port !== y.port || x.host === "aws" || y.host === "aws") return false;
  const [ax, ay] = await Promise.all([
    addresses(x.host === "loopback" ? "127.0.0.1" : x.host),
    addresses(y.host === "loopback" ? "127.0.0.1" : y.host),
  ]);
  const norm = (s: Set<string>) => new Set([...s].map((v) => (isLoopback(v) ? "loopback" : v)));
  const nx = norm(ax);
  for (const addr of norm(ay)) if (nx.has(addr)) return true;
  return false;
}
