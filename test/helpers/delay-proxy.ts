import net from "node:net";

/**
 * A TCP proxy on 127.0.0.1 that holds every chunk for `delayMs` in each direction (in order), so a
 * client behind it sees a slow server. Used to keep one distributed-sync worker busy long enough
 * to be killed in the middle of a range.
 */
export async function startDelayProxy(
  targetPort: number,
  delayMs: number,
): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const relay = (from: net.Socket, to: net.Socket) => {
    from.on("data", (chunk: Buffer) => setTimeout(() => to.destroyed || to.write(chunk), delayMs));
    from.on("end", () => setTimeout(() => to.destroyed || to.end(), delayMs));
  };
  const server = net.createServer((client) => {
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
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
    relay(client, upstream);
    relay(upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
