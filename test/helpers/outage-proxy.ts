import net from "node:net";

/**
 * A TCP proxy on 127.0.0.1 that can go down like a restarting server or load balancer: `outage(ms)`
 * destroys every open connection and stops listening (new connections are refused), then listens
 * again on the same port after `ms`. `connections` counts the connections it accepted; it closes
 * itself after `lifetimeMs` in case a test forgets to.
 */
export interface OutageProxy {
  port: number;
  url: string;
  connections: number;
  /** Requests seen (any chunk from the client that starts an HTTP request line). */
  requests: number;
  outage(ms: number): Promise<void>;
  close(): Promise<void>;
}

export async function startOutageProxy(targetPort: number, lifetimeMs = 10 * 60_000): Promise<OutageProxy> {
  const sockets = new Set<net.Socket>();
  let closed = false;
  const state = { connections: 0, requests: 0 };
  const server = net.createServer((client) => {
    state.connections++;
    const upstream = net.connect({ host: "127.0.0.1", port: targetPort });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.setNoDelay(true);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.on("data", (chunk: Buffer) => {
      if (/^(GET|PUT|POST|HEAD|DELETE) /.test(chunk.toString("latin1", 0, 8))) state.requests++;
    });
    client.pipe(upstream);
    upstream.pipe(client);
  });
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
  await listen(0);
  const port = (server.address() as net.AddressInfo).port;
  const stop = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    });
  const timer = setTimeout(() => void proxy.close(), lifetimeMs);
  timer.unref();
  const proxy: OutageProxy = {
    port,
    url: `http://127.0.0.1:${port}`,
    get connections() {
      return state.connections;
    },
    get requests() {
      return state.requests;
    },
    async outage(ms: number) {
      await stop();
      await new Promise((r) => setTimeout(r, ms));
      if (!closed) await listen(port);
    },
    async close() {
      closed = true;
      clearTimeout(timer);
      if (server.listening) await stop();
      for (const s of sockets) s.destroy();
    },
  };
  return proxy;
}
