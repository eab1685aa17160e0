/**
 * --metrics-addr HOST:PORT (issue 16): Prometheus metrics of a run at http://HOST:PORT/metrics,
 * with prom-client (loaded only when asked for). Every name starts with `bucketsync_`; README
 * "Protect production" lists them with a scrape config. Values are read from the run's meter and
 * recorder at each scrape, so they always agree with what the summary will say.
 */
import http from "node:http";
import { Counter, Gauge, Registry } from "prom-client";
import { REQUEST_KINDS, type RequestMeter } from "../core/meter.js";
import { UsageError } from "../core/types.js";
import { parseListenAddress } from "../options/parse.js";
import type { SyncSummary } from "./events.js";
import type { TaskRunner } from "./tasks.js";

export interface MetricsSources {
  meter: RequestMeter;
  /** Objects the source listed so far (listing progress). */
  listed: () => number;
  /** The configured concurrency (the adaptive limit's ceiling). */
  concurrency: number;
}

export interface MetricsServer {
  url: string;
  /** Hands the endpoint the run's task runner and live summary (ExecuteOptions.onStart). */
  watch: (run: { runner: TaskRunner; summary: SyncSummary }) => void;
  close(): Promise<void>;
}

const OUTCOMES = ["copied", "updated", "deleted", "skipped", "failed", "left"] as const;

export async function serveMetrics(addr: string, sources: MetricsSources): Promise<MetricsServer> {
  const { host, port } = parseListenAddress("--metrics-addr", addr);
  const registry = new Registry();
  let run: { runner: TaskRunner; summary: SyncSummary } | undefined;
  const { meter } = sources;

  new Counter({
    name: "bucketsync_objects_total",
    help: "Objects by outcome: copied, updated, deleted, skipped, failed, left (by a cut-off)",
    labelNames: ["outcome"],
    registers: [registry],
    collect() {
      const s = run?.summary;
      this.reset();
      for (const outcome of OUTCOMES) {
        const value = outcome === "left" ? (s?.cutoff?.left.objects ?? 0) : ((s?.[outcome] as number | undefined) ?? 0);
        this.inc({ outcome }, value);
      }
    },
  });
  new Counter({
    name: "bucketsync_bytes_total",
    help: "Bytes of objects by outcome: copied (copies and updates), left (by a cut-off)",
    labelNames: ["outcome"],
    registers: [registry],
    collect() {
      this.reset();
      this.inc({ outcome: "copied" }, run?.summary.bytes ?? 0);
      this.inc({ outcome: "left" }, run?.summary.cutoff?.left.bytes ?? 0);
    },
  });
  const requests = new Counter({
    name: "bucketsync_requests_total",
    help: "S3 requests by kind (LIST, HEAD, GET, PUT, COPY, UploadPartCopy, DELETE) and HTTP status (error: no answer)",
    labelNames: ["kind", "status"],
    registers: [registry],
  });
  for (const kind of REQUEST_KINDS) requests.inc({ kind, status: "200" }, 0);
  meter.onRequest((kind, status) => requests.inc({ kind, status: String(status) }));
  new Counter({
    name: "bucketsync_bytes_through_total",
    help: "Bytes streamed through this machine (uploads, downloads, streamed copies)",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(meter.bytesThrough);
    },
  });
  new Counter({
    name: "bucketsync_retries_total",
    help: "Requests that failed in a way that is retried (5xx, 429, no answer)",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(meter.retryable);
    },
  });
  new Counter({
    name: "bucketsync_throttled_total",
    help: "Requests the server throttled (503 SlowDown, 429); each lowers the adaptive concurrency",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(meter.throttled);
    },
  });
  new Gauge({
    name: "bucketsync_requests_in_flight",
    help: "S3 requests in flight now",
    registers: [registry],
    collect() {
      this.set(meter.inFlight);
    },
  });
  new Counter({
    name: "bucketsync_listed_objects_total",
    help: "Objects the source listed so far (listing progress)",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(sources.listed());
    },
  });
  new Gauge({
    name: "bucketsync_limit_concurrency",
    help: "Requests the adaptive limit lets go at once now (lowered on throttling, up to --concurrency)",
    registers: [registry],
    collect() {
      this.set(run?.runner.currentLimit ?? sources.concurrency);
    },
  });
  new Gauge({
    name: "bucketsync_limit_tps",
    help: "--tpslimit: requests per second (0: none)",
    registers: [registry],
    collect() {
      this.set(meter.limits.tps ?? 0);
    },
  });
  new Gauge({
    name: "bucketsync_limit_bandwidth_bytes",
    help: "--bwlimit in force now, bytes per second (0: none)",
    registers: [registry],
    collect() {
      this.set(meter.currentBandwidth() ?? 0);
    },
  });

  const server = http.createServer((req, res) => {
    if (req.method !== "GET" || (req.url ?? "").split("?")[0] !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found; metrics are at /metrics\n");
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { "content-type": registry.contentType }).end(text),
      (err: Error) => res.writeHead(500, { "content-type": "text/plain" }).end(`${err.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(new UsageError(`--metrics-addr ${addr}: cannot listen (${err.code ?? err.message})`)),
    );
    server.listen(port, host, () => resolve());
  });
  server.unref();
  const bound = server.address() as { address: string; port: number };
  const shownHost = bound.address.includes(":") ? `[${bound.address}]` : bound.address;
  return {
    url: `http://${shownHost}:${bound.port}/metrics`,
    watch: (r) => {
      run = r;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
