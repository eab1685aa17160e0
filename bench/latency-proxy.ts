/**
 * A user-space TCP proxy on 127.0.0.1 that adds latency: every chunk is held for `oneWayDelayMs`
 * in each direction (so 10 ms gives a 20 ms round trip), in order, per connection. A new
 * connection also waits one round trip before it is connected upstream, like a TCP handshake.
 * (`tc netem` is not available on this kernel, hence user space.)
 *
 * Bounded: at most `maxConnections` connections, at most `highWaterMark` bytes queued per
 * direction (the sender is paused beyond that), and as a child process it stops by itself when
 * its parent goes away (stdin closes) or after --max-seconds.
 *
 *   node dist/bench/latency-proxy.js --target 127.0.0.1:17480 [--delay-ms 10] [--port 0] [--max-seconds 7200]
 *
 * prints one JSON line {"port":N} on stdout once it listens, and its counters on stderr when it stops.
 */
import net from "node:net";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";

export interface ProxyOptions {
  targetHost: string;
  targetPort: number;
  /** Delay per direction; the round trip grows by twice this. */
  oneWayDelayMs: number;
  /** 0 picks a free port. */
  listenPort?: number;
  maxConnections?: number;
  highWaterMark?: number;
}

export interface ProxyStats {
  connections: number;
  refused: number;
  bytesUp: number;
  bytesDown: number;
}

export class LatencyProxy {
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();
  readonly stats: ProxyStats = { connections: 0, refused: 0, bytesUp: 0, bytesDown: 0 };

  constructor(private readonly options: ProxyOptions) {
    if (options.targetHost !== "127.0.0.1")
      throw new Error(`latency proxy: target must be 127.0.0.1, not ${options.targetHost}`);
  }

  /** Listens on 127.0.0.1; resolves with the port. */
  start(): Promise<number> {
    const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (client) => this.accept(client));
    server.maxConnections = this.options.maxConnections ?? 1024;
    server.on("drop", () => this.stats.refused++);
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.options.listenPort ?? 0, "127.0.0.1", () =>
        resolve((server.address() as net.AddressInfo).port),
      );
    });
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private track(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once("close", () => this.sockets.delete(socket));
  }

  private accept(client: net.Socket): void {
    this.stats.connections++;
    this.track(client);
    client.setNoDelay(true);
    client.pause();
    const delay = this.options.oneWayDelayMs;
    let upstream: net.Socket | undefined;
    const closeBoth = () => {
      client.destroy();
      upstream?.destroy();
    };
    client.on("error", closeBoth);
    client.on("close", closeBoth);
    // One round trip for the handshake, then connect upstream (loopback, instant) and start relaying.
    const handshake = setTimeout(() => {
      if (client.destroyed) return;
      upstream = net.connect({
        host: this.options.targetHost,
        port: this.options.targetPort,
        allowHalfOpen: true,
        noDelay: true,
      });
      this.track(upstream);
      upstream.on("error", closeBoth);
      upstream.on("close", closeBoth);
      upstream.once("connect", () => {
        upstream!.setNoDelay(true);
        const hwm = this.options.highWaterMark ?? 4 * 1024 * 1024;
        delayedPipe(client, upstream!, delay, hwm, (n) => (this.stats.bytesUp += n));
        delayedPipe(upstream!, client, delay, hwm, (n) => (this.stats.bytesDown += n));
        client.resume();
      });
    }, 2 * delay);
    client.once("close", () => clearTimeout(handshake));
  }
}

/** Relays `from` to `to`, delivering each chunk (and the final FIN) `delayMs` after it arrived, in order. */
function delayedPipe(
  from: net.Socket,
  to: net.Socket,
  delayMs: number,
  highWaterMark: number,
  count: (n: number) => void,
): void {
  const queue: { due: number; chunk: Buffer | null }[] = []; // null: end of stream
  let queuedBytes = 0;
  let timer: NodeJS.Timeout | undefined;

  const arm = () => {
    if (timer === undefined && queue.length > 0)
      timer = setTimeout(flush, Math.max(0, queue[0]!.due - performance.now()));
  };
  const maybeResume = () => {
    if (from.isPaused() && !from.destroyed && queuedBytes + to.writableLength <= highWaterMark / 2) from.resume();
  };
  const flush = () => {
    timer = undefined;
    if (to.destroyed) return;
    const now = performance.now();
    while (queue.length > 0 && queue[0]!.due <= now + 0.5) {
      const { chunk } = queue.shift()!;
      if (chunk === null) {
        to.end();
        continue;
      }
      queuedBytes -= chunk.length;
      to.write(chunk);
    }
    arm();
    maybeResume();
  };

  from.on("data", (chunk: Buffer) => {
    count(chunk.length);
    queue.push({ due: performance.now() + delayMs, chunk });
    queuedBytes += chunk.length;
    arm();
    if (queuedBytes + to.writableLength > highWaterMark) from.pause();
  });
  from.on("end", () => {
    queue.push({ due: performance.now() + delayMs, chunk: null });
    arm();
  });
  to.on("drain", maybeResume);
  const stop = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    queue.length = 0;
  };
  from.once("close", () => {
    // Deliver what is queued (the peer may still read), unless the receiver is gone too.
    if (to.destroyed) stop();
  });
  to.once("close", stop);
}

// ------------------------------------------------------------------ as a child process

function argValue(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const target = argValue(args, "--target");
  if (!target || !/^127\.0\.0\.1:\d+$/.test(target)) {
    console.error("usage: latency-proxy.js --target 127.0.0.1:PORT [--delay-ms 10] [--port 0] [--max-seconds 7200]");
    process.exit(2);
  }
  const [host, port] = target.split(":");
  const proxy = new LatencyProxy({
    targetHost: host!,
    targetPort: Number(port),
    oneWayDelayMs: Number(argValue(args, "--delay-ms") ?? 10),
    listenPort: Number(argValue(args, "--port") ?? 0),
  });
  const listenPort = await proxy.start();
  process.stdout.write(JSON.stringify({ port: listenPort }) + "\n");

  let stopping = false;
  const stop = async (why: string) => {
    if (stopping) return;
    stopping = true;
    await proxy.stop();
    process.stderr.write(`latency-proxy: stopped (${why}): ${JSON.stringify(proxy.stats)}\n`);
    process.exit(0);
  };
  const maxSeconds = Number(argValue(args, "--max-seconds") ?? 7200);
  setTimeout(() => void stop(`--max-seconds ${maxSeconds} reached`), maxSeconds * 1000).unref();
  process.stdin.on("end", () => void stop("parent closed stdin"));
  process.stdin.on("close", () => void stop("parent closed stdin"));
  process.stdin.on("error", () => void stop("stdin error"));
  process.stdin.resume();
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
