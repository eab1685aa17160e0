/**
 * The floor of the uploads and downloads: what this server allows any client on this machine.
 * curl (C, from Debian) sends the same PUTs and GETs as the tools, 64 in flight, but with every
 * request signed before the clock starts (pre-signed URLs), no listing, no comparison, no checks,
 * and downloaded bodies thrown away (/dev/null). No real tool does less per object, so
 * `rclone's time ÷ the floor's time` is the most any tool can be faster than rclone here: with
 * the server on the same two cores, the server's CPU for 5,000 requests bounds every client.
 */
import { writeFileSync } from "node:fs";
import { Hash } from "@smithy/hash-node";
import { SignatureV4 } from "@smithy/signature-v4";
import { baseChildEnv, type ServerInfo } from "./common.js";
import type { CommandSpec } from "./measure.js";
import type { Endpoint } from "./tools.js";

export const FLOOR_ID = "floor";
export const FLOOR_LABEL = "floor: curl, pre-signed URLs";
export const FLOOR_CONCURRENCY = 64;

/** One request of the floor: the object's key and, for an upload, the file to send. */
export interface FloorRequest {
  key: string;
  file?: string;
}

function quoted(s: string): string {
  return `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/**
 * A curl command that sends `requests` (PUTs of their files, or GETs) through `endpoint`, each
 * URL pre-signed now (valid one hour), and prints each response's status on its own line.
 */
export async function floorCommand(
  server: ServerInfo,
  endpoint: Endpoint,
  curl: string,
  bucket: string,
  requests: FloorRequest[],
  configFile: string,
): Promise<CommandSpec> {
  const url = new URL(endpoint.url);
  const signer = new SignatureV4({
    service: "s3",
    region: server.region,
    credentials: server.credentials,
    sha256: Hash.bind(null, "sha256"),
    uriEscapePath: false,
  });
  const lines: string[] = [];
  for (const r of requests) {
    const path = `/${bucket}/${r.key.split("/").map(encodeURIComponent).join("/")}`;
    const signed = await signer.presign(
      {
        method: r.file ? "PUT" : "GET",
        protocol: url.protocol,
        hostname: url.hostname,
        port: Number(url.port),
        path,
        query: {},
        headers: { host: url.host, "x-amz-content-sha256": "UNSIGNED-PAYLOAD" },
      },
      { expiresIn: 3600 },
    );
    const query = new URLSearchParams(signed.query as Record<string, string>).toString();
    lines.push(`url = ${quoted(`${url.origin}${signed.path}?${query}`)}`, `output = "/dev/null"`);
    if (r.file) lines.push(`upload-file = ${quoted(r.file)}`);
  }
  writeFileSync(configFile, lines.join("\n") + "\n", { mode: 0o600 });
  return {
    label: FLOOR_LABEL,
    cmd: curl,
    // -H "Expect:": no 100-continue round trip before each body, as the tools send small bodies.
    args: [
      "--silent",
      "--show-error",
      "--parallel",
      "--parallel-max",
      String(FLOOR_CONCURRENCY),
      "--header",
      "Expect:",
      "--write-out",
      "%{http_code}\\n",
      "--config",
      configFile,
    ],
    env: baseChildEnv(server),
  };
}
