/**
 * --metrics-addr HOST:PORT (issue 16): Prometheus metrics of a run (or of a worker's ranges) at http://HOST:PORT/metrics,
 * with prom-client (loaded only when asked for). Every name starts with `bucketsync_`; README
 * "Protect production" lists them with a scrape config. Values are read from the run's meter and
 * recorder at each scrape, so they always agree with what the summary will say.
 */
import http from "node:http";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { REQUEST_KINDS, type RequestMeter } from "../core/meter.js";
import { UsageError } from "../core/types.js";
import { parseListenAddress } from "../options/parse.js";
import type { SyncSummary } from "./events.js";
import type { TaskRunner } from "./tasks.js";

export interface MetricsSources {
  /** The configured concurrency (the adaptive limit's ceiling). */
  concurrency: number;
}

/** One run the endpoint reports on: a sync, or one range of a distributed worker. */
export interface WatchedRun {
  runner: TaskRunner;
  /** The run's live summary (the recorder's). */
  summary: SyncSummary;
  /** Objects the source listed so far (listing progress). */
  listed: () => number;
}

export interface MetricsServer {
  url: string;
  /** Adds a run (its counters are summed with the runs before it). */
  watch: (run: WatchedRun) => void;
  /** Adds a meter (a worker has one per set of limits). */
  addMeter: (meter: RequestMeter) => void;
  /** `watch`: one change applied, `seconds` after its event (the histogram appears with the first). */
  observeLag: (seconds: number) => void;
  close(): Promise<void>;
}

const OUTCOMES = ["copied", "updated", "deleted", "skipped", "failed", "left"] as const;

export async function serveMetrics(addr: string, sources: MetricsSources): Promise<MetricsServer> {
  const { host, port } = parseListenAddress("--metrics-addr", addr);
  const registry = new Registry();
  const runs: WatchedRun[] = [];
  const meters: RequestMeter[] = [];
  const sumRuns = (value: (r: WatchedRun) => number) => runs.reduce((n, r) => n + value(r), 0);
  const sumMeters = (value: (m: RequestMeter) => number) => meters.reduce((n, m) => n + value(m), 0);

  new Counter({
    name: "bucketsync_objects_total",
    help: "Objects by outcome: copied, updated, deleted, skipped, failed, left (by a cut-off)",
    labelNames: ["outcome"],
    registers: [registry],
    collect() {
      this.reset();
      for (const outcome of OUTCOMES)
        this.inc(
          { outcome },
          sumRuns((r) => (outcome === "left" ? (r.summary.cutoff?.left.objects ?? 0) : r.summary[outcome])),
        );
    },
  });
  new Counter({
    name: "bucketsync_bytes_total",
    help: "Bytes of objects by outcome: copied (copies and updates), left (by a cut-off)",
    labelNames: ["outcome"],
    registers: [registry],
    collect() {
      this.reset();
      this.inc(
        { outcome: "copied" },
        sumRuns((r) => r.summary.bytes),
      );
      this.inc(
        { outcome: "left" },
        sumRuns((r) => r.summary.cutoff?.left.bytes ?? 0),
      );
    },
  });
  const requests = new Counter({
    name: "bucketsync_requests_total",
    help: "S3 requests by kind (LIST, HEAD, GET, PUT, COPY, UploadPartCopy, DELETE) and HTTP status (error: no answer)",
    labelNames: ["kind", "status"],
    registers: [registry],
  });
  for (const kind of REQUEST_KINDS) requests.inc({ kind, status: "200" }, 0);
  new Counter({
    name: "bucketsync_bytes_through_total",
    help: "Bytes streamed through this machine (uploads, downloads, streamed copies)",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(sumMeters((m) => m.bytesThrough));
    },
  });
  new Counter({
    name: "bucketsync_retries_total",
    help: "Requests that failed in a way that is retried (5xx, 429, no answer)",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(sumMeters((m) => m.retryable));
    },
  });
  new Counter({
    name: "bucketsync_throttled_total",
    help: "Requests the server throttled (503 SlowDown, 429); each lowers the adaptive concurrency",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(sumMeters((m) => m.throttled));
    },
  });
  new Gauge({
    name: "bucketsync_requests_in_flight",
    help: "S3 requests in flight now",
    registers: [registry],
    collect() {
      this.set(sumMeters((m) => m.inFlight));
    },
  });
  new Counter({
    name: "bucketsync_listed_objects_total",
    help: "Objects the source listed so far (listing progress)",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(sumRuns((r) => r.listed()));
    },
  });
  new Gauge({
    name: "bucketsync_limit_concurrency",
    help: "Requests the adaptive limit lets go at once now (lowered on throttling, up to --concurrency)",
    registers: [registry],
    collect() {
      this.set(runs.at(-1)?.runner.currentLimit ?? sources.concurrency);
    },
  });
  new Gauge({
    name: "bucketsync_limit_tps",
    help: "--tpslimit: requests per second (0: none)",
    registers: [registry],
    collect() {
      this.set(meters.at(-1)?.limits.tps ?? 0);
    },
  });
  new Gauge({
    name: "bucketsync_limit_bandwidth_bytes",
    help: "--bwlimit in force now, bytes per second (0: none)",
    registers: [registry],
    collect() {
      this.set(meters.at(-1)?.currentBandwidth() ?? 0);
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
  let lag: Histogram | undefined;
  return {
    url: `http://${shownHost}:${bound.port}/metrics`,
    observeLag: (seconds) => {
      lag ??= new Histogram({
        name: "bucketsync_watch_lag_seconds",
        help: "watch: time from a change's event to the target written, per change applied from events",
        buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
        registers: [registry],
      });
      lag.observe(seconds);
    },
    watch: (run) => {
      runs.push(run);
    },
    addMeter: (meter) => {
      if (meters.includes(meter)) return;
      meters.push(meter);
      meter.onRequest((kind, status) => requests.inc({ kind, status: String(status) }));
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
