import http from "node:http";
import type { AddressInfo, Socket } from "node:net";

/**
 * A transparent HTTP proxy that passes requests through unchanged (so signatures stay valid)
 * but stops sending a GET response body after `limit` bytes, leaving the download hanging.
 */
export async function stallingProxy(
  endpoint: string,
  limit: number,
): Promise<{ url: string; close: () => Promise<void> }> {
  const upstream = new URL(endpoint);
  const sockets = new Set<Socket>();
  const upstreams = new Set<http.ClientRequest>();
  const server = http.createServer((req, res) => {
    const out = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        if (req.method !== "GET" || Number(answer.headers["content-length"] ?? 0) <= limit) {
          answer.pipe(res);
          return;
        }
        let sent = 0;
        answer.on("data", (chunk: Buffer) => {
          if (sent >= limit) return answer.pause();
          res.write(chunk.subarray(0, limit - sent));
          sent += chunk.length;
        });
      },
    );
    upstreams.add(out);
    out.on("close", () => upstreams.delete(out));
    out.on("error", () => res.destroy());
    req.pipe(out);
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        for (const u of upstreams) u.destroy();
        server.close(() => resolve());
      }),
  };
}
