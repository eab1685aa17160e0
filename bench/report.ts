/**
 * Writes the results: bench/results/latest.json (everything), latest.md (tables for the README)
 * and latest.svg (wall time per tool, one panel per scenario, each panel on its own scale).
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { FLOOR_ID } from "./floor.js";
import type { Measurement } from "./measure.js";

export type Network = "direct" | "proxy";
export type Phase = "full" | "noop";

export interface RunRecord {
  tool: string;
  toolLabel: string;
  settings: string;
  network: Network;
  phase: Phase;
  measurement: Measurement;
  expectedObjects: number;
  /** Objects in the target after the run. */
  objectsAfter: number | null;
  /** No-op runs: target objects whose LastModified or ETag changed, i.e. rewritten although nothing changed. */
  rewritten: number | null;
  /** When a no-op rewrote objects: a second re-sync, to see whether it settles. */
  secondNoop?: { measurement: Measurement; rewritten: number };
  notes: string[];
}

export interface ListingRun {
  tool: string;
  toolLabel: string;
  command: string;
  network: Network;
  measurement: Measurement;
  keys: number;
  keysPerS: number;
  notes: string[];
}

export interface ListingResult {
  bucket: string;
  keys: number;
  prefixes: number;
  seed: { reused: boolean; seconds: number | null; putsPerS: number | null; concurrency: number };
  /** Runs per tool and network; each row shows the median one. */
  repeats: number;
  runs: ListingRun[];
}

export interface TransferRun {
  tool: string;
  toolLabel: string;
  settings: string;
  network: Network;
  /** small: the many-small-files folder; large: one large file; walk: the 100,000-file folder (memory). */
  kind: "small" | "large" | "walk";
  direction: "upload" | "download";
  /** full: into an empty bucket or folder; noop: the same again, nothing to do. */
  phase: Phase;
  measurement: Measurement;
  expected: number;
  /** Objects in the bucket (uploads) or files in the folder (downloads) afterwards. */
  found: number;
  /** No-op runs: objects or files rewritten although nothing changed. */
  rewritten: number | null;
  notes: string[];
}

export interface TransferResult {
  files: number;
  fileSize: number;
  folders: number;
  largeMiB: number;
  walkFiles: number;
  walkFolders: number;
  runs: TransferRun[];
}

export interface BenchMeta {
  date: string;
  objects: number;
  objectSize: string;
  quick: boolean;
  machine: { cpus: number; cpuModel: string; memGiB: number; kernel: string };
  server: string;
  proxy: { oneWayDelayMs: number; roundTripMs: number; connectDelayMs: number };
  versions: Record<string, string>;
  seedSeconds: number;
  totalSeconds: number;
  timeoutSeconds: number;
  notes: string[];
}

export interface BenchResult {
  meta: BenchMeta;
  runs: RunRecord[];
  listing: ListingResult | null;
  /** Uploads and downloads (absent in results written before they were measured). */
  transfers?: TransferResult | null;
}

const NETWORK_TITLE: Record<Network, string> = { direct: "direct (loopback)", proxy: "through the 20 ms RTT proxy" };
const PHASE_TITLE: Record<Phase, string> = { full: "Full copy into an empty bucket", noop: "No-op re-sync" };

export const SCENARIOS: { network: Network; phase: Phase }[] = [
  { network: "direct", phase: "full" },
  { network: "direct", phase: "noop" },
  { network: "proxy", phase: "full" },
  { network: "proxy", phase: "noop" },
];

const fmt = (x: number | null | undefined, digits = 1) =>
  x === null || x === undefined || Number.isNaN(x) ? "–" : x.toFixed(digits);
const int = (x: number) => x.toLocaleString("en-US");

/** "2.1x slower" / "1.3x faster" / "same" relative to bucketsync's wall time. */
export function ratioText(peerWall: number, baseWall: number): string {
  if (!(peerWall > 0 && baseWall > 0)) return "–";
  const r = peerWall / baseWall;
  if (r >= 1.05) return `${r.toFixed(r >= 10 ? 0 : 1)}x slower`;
  if (r <= 1 / 1.05) return `${(1 / r).toFixed(1)}x faster`;
  return "about the same";
}

/** A command line as a reader would type it: no temp paths, no absolute program paths, no port. */
export function shortCommand(command: string): string {
  return command
    .replace(/\S*\/bench\/results\/tmp\/[^/\s]+\/dist\//g, "dist/")
    .replace(/^\S*\/node /, "node ")
    .replace(/^\S*\/(aws|rclone|s3cmd) /, "$1 ")
    .replace(/(--config|-c) \S+/, "$1 TMPFILE")
    .replace(/http:\/\/127\.0\.0\.1:\d+/g, "$ENDPOINT")
    .replace(/bench-run-[a-z0-9]+-/g, "bench-");
}

/** "5,002 (PUT 5,000, GET 2)", with errors if any. */
function requestsText(m: Measurement): string {
  if (m.serverRequests === null) return "–";
  const methods = Object.entries(m.serverRequestsByMethod).sort((a, b) => b[1] - a[1]);
  const detail = methods.length > 0 ? ` (${methods.map(([k, v]) => `${k} ${int(v)}`).join(", ")})` : "";
  const errors = m.serverRequestErrors ? `, **${int(m.serverRequestErrors)} errors**` : "";
  // Other clients of a shared server show up in radosgw's own counter (and in its CPU).
  const all = m.serverRequestsAllClients;
  const others = all !== null && all > m.serverRequests * 1.05 + 10 ? `; server total ${int(all)}` : "";
  return `${int(m.serverRequests)}${detail}${errors}${others}`;
}

function status(run: RunRecord): string {
  const m = run.measurement;
  if (m.timedOut) return "**TIMED OUT**";
  if (!m.ok) return `**FAILED (exit ${m.exitCode})**`;
  const parts: string[] = [];
  if (run.phase === "full") {
    if (run.objectsAfter === run.expectedObjects) parts.push(`${int(run.objectsAfter)} ✓`);
    else
      parts.push(
        `**MISMATCH: ${run.objectsAfter === null ? "?" : int(run.objectsAfter)} of ${int(run.expectedObjects)}**`,
      );
  } else {
    if (run.rewritten !== null)
      parts.push(run.rewritten === 0 ? "0 rewritten ✓" : `**${int(run.rewritten)} rewritten**`);
    if (run.objectsAfter !== null && run.objectsAfter !== run.expectedObjects)
      parts.push(`**MISMATCH: ${int(run.objectsAfter)} of ${int(run.expectedObjects)}**`);
  }
  return parts.join(", ");
}

function scenarioTable(result: BenchResult, network: Network, phase: Phase): string {
  const runs = result.runs.filter((r) => r.network === network && r.phase === phase);
  if (runs.length === 0) return "";
  const base = runs.find((r) => r.tool === "bucketsync");
  const proxied = network === "proxy";
  const lines = [
    `### ${PHASE_TITLE[phase]}, ${NETWORK_TITLE[network]}`,
    "",
    `| Tool | Wall (s) | vs bucketsync | Client CPU (s) | Peak RSS (MiB) | Server CPU (s) | Requests | Result |${proxied ? " Proxy CPU (s) |" : ""} Other CPU (s) |`,
    `| --- | ---: | --- | ---: | ---: | ---: | --- | --- |${proxied ? " ---: |" : ""} ---: |`,
  ];
  for (const r of runs) {
    const m = r.measurement;
    const vs =
      r.tool === "bucketsync"
        ? "–"
        : base && base.measurement.ok && m.ok
          ? ratioText(m.wallS, base.measurement.wallS)
          : "–";
    const name = r.tool === "bucketsync" ? `**${r.toolLabel}**` : r.toolLabel;
    lines.push(
      `| ${name} | ${fmt(m.wallS, 2)} | ${vs} | ${fmt(m.clientCpuS, 2)} | ${fmt(m.peakRssMiB, 0)} | ${fmt(m.serverCpuS, 2)} | ${requestsText(m)} | ${status(r)} |${proxied ? ` ${fmt(m.proxyCpuS, 2)} |` : ""} ${fmt(m.otherCpuS, 2)} |`,
    );
    if (r.secondNoop) {
      const s = r.secondNoop.measurement;
      const vs2 = base && base.measurement.ok && s.ok ? ratioText(s.wallS, base.measurement.wallS) : "–";
      const res = !s.ok
        ? `**FAILED (exit ${s.exitCode})**`
        : r.secondNoop.rewritten === 0
          ? "0 rewritten ✓"
          : `**${int(r.secondNoop.rewritten)} rewritten**`;
      lines.push(
        `| ${r.toolLabel}, 2nd re-sync | ${fmt(s.wallS, 2)} | ${vs2} | ${fmt(s.clientCpuS, 2)} | ${fmt(s.peakRssMiB, 0)} | ${fmt(s.serverCpuS, 2)} | ${requestsText(s)} | ${res} |${proxied ? ` ${fmt(s.proxyCpuS, 2)} |` : ""} ${fmt(s.otherCpuS, 2)} |`,
      );
    }
  }
  return lines.join("\n");
}

function listingTable(listing: ListingResult): string {
  const lines = [
    `### Listing ${int(listing.keys)} keys (s3://${listing.bucket}, ${listing.prefixes} top-level prefixes)`,
    "",
    "| Tool | Network | Wall (s) | Keys/s | Client CPU (s) | Peak RSS (MiB) | Server CPU (s) | Requests | Result | Other CPU (s) |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: |",
  ];
  for (const r of listing.runs) {
    const m = r.measurement;
    const result = m.timedOut
      ? "**TIMED OUT**"
      : !m.ok
        ? `**FAILED (exit ${m.exitCode})**`
        : r.keys === listing.keys
          ? `${int(r.keys)} keys ✓`
          : `**${int(r.keys)} keys of ${int(listing.keys)}**`;
    lines.push(
      `| ${r.toolLabel} | ${r.network === "direct" ? "direct" : "20 ms RTT"} | ${fmt(m.wallS, 2)} | ${m.ok ? int(Math.round(r.keysPerS)) : "–"} | ${fmt(m.clientCpuS, 2)} | ${fmt(m.peakRssMiB, 0)} | ${fmt(m.serverCpuS, 2)} | ${requestsText(m)} | ${result} | ${fmt(m.otherCpuS, 2)} |`,
    );
  }
  const s = listing.seed;
  lines.push("");
  if (listing.repeats > 1)
    lines.push(
      `Each row is the median of ${listing.repeats} runs, taken in rounds over all tools (the range of each is in the notes below).`,
      "",
    );
  lines.push(
    s.reused
      ? `The listing bucket was reused from an earlier run (it already held ${int(listing.keys)} keys).`
      : `Seeding it took ${fmt(s.seconds, 0)} s (${int(Math.round(s.putsPerS ?? 0))} PUTs/s at ${s.concurrency} in flight); later runs reuse it while the server keeps running.`,
  );
  lines.push("");
  lines.push("Commands:");
  lines.push("");
  const seen = new Set<string>();
  for (const r of listing.runs) {
    if (seen.has(r.tool)) continue;
    seen.add(r.tool);
    lines.push(`- ${r.toolLabel}: \`${shortCommand(r.command)}\``);
  }
  return lines.join("\n");
}

// ------------------------------------------------------------------ uploads and downloads

const mib = (n: number) => (n >= 1024 ? `${n / 1024} GiB` : `${n} MiB`);

/** `peer / bucketsync` as "2.10x": above 1, bucketsync is that many times faster (or cheaper). */
function times(peer: number | null | undefined, base: number | null | undefined): string {
  if (!(peer && base && peer > 0 && base > 0)) return "–";
  return `${(peer / base).toFixed(2)}x`;
}

function transferRun(
  t: TransferResult,
  tool: string,
  network: Network,
  kind: TransferRun["kind"],
  direction: TransferRun["direction"],
  phase: Phase,
): TransferRun | undefined {
  return t.runs.find(
    (r) =>
      r.tool === tool && r.network === network && r.kind === kind && r.direction === direction && r.phase === phase,
  );
}

/** What went wrong in a set of runs, or ✓. */
function transferStatus(runs: (TransferRun | undefined)[]): string {
  const problems: string[] = [];
  for (const r of runs) {
    if (!r) continue;
    const m = r.measurement;
    const what = `${r.phase === "noop" ? "re-" : ""}${r.direction}`;
    if (m.timedOut) problems.push(`${what} **TIMED OUT**`);
    else if (!m.ok) problems.push(`${what} **FAILED (exit ${m.exitCode})**`);
    else if (r.found !== r.expected) problems.push(`${what} **${int(r.found)} of ${int(r.expected)}**`);
    else if (r.rewritten) problems.push(`${what} **${int(r.rewritten)} rewritten**`);
  }
  return problems.length > 0 ? problems.join(", ") : "✓";
}

/**
 * What the server allows (bench/floor.ts): rclone's time over the floor's is the most any tool
 * can be faster than rclone on this machine, beside what bucketsync got.
 */
function ceilingTable(t: TransferResult, networks: Network[]): string | null {
  const rows: string[] = [];
  for (const network of networks)
    for (const direction of ["upload", "download"] as const) {
      const floor = transferRun(t, FLOOR_ID, network, "small", direction, "full")?.measurement;
      const rclone = transferRun(t, "rclone-64", network, "small", direction, "full")?.measurement;
      const ours = transferRun(t, "bucketsync", network, "small", direction, "full")?.measurement;
      if (!floor?.ok) continue;
      const ok = (m: Measurement | undefined) => (m?.ok ? m : undefined);
      rows.push(
        `| ${network === "direct" ? "direct" : "20 ms RTT"} | ${direction} | ${fmt(floor.wallS, 2)} | ${fmt(floor.clientCpuS, 2)} | ${fmt(floor.serverCpuS, 2)} | ${fmt(ok(rclone)?.wallS, 2)} | ${times(ok(rclone)?.wallS, floor.wallS)} | ${times(ok(rclone)?.wallS, ok(ours)?.wallS)} |`,
      );
    }
  if (rows.length === 0) return null;
  return [
    "What the server allows: the floor is curl sending the same requests, 64 in flight, with every URL signed before the clock starts, no listing or checks, and downloads thrown away (bench/floor.ts). " +
      "With the server on the same cores, no tool can do less per object, so rclone ÷ floor is the most any tool can be faster than rclone here.",
    "",
    "| Network | Direction | Floor (s) | Floor client CPU (s) | Server CPU (s) | rclone (64 transfers) (s) | Most possible vs rclone | bucketsync vs rclone |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...rows,
  ].join("\n");
}

function transferTables(t: TransferResult): string {
  const out: string[] = [];
  const tools = [...new Map(t.runs.map((r) => [r.tool, r.toolLabel])).entries()];
  const networks = SCENARIOS.map((s) => s.network).filter((n, i, a) => a.indexOf(n) === i);
  const wall = (r: TransferRun | undefined) => (r?.measurement.ok ? fmt(r.measurement.wallS, 2) : "–");
  const cpu = (r: TransferRun | undefined) => (r?.measurement.ok ? fmt(r.measurement.clientCpuS, 2) : "–");
  const small = t.runs.filter((r) => r.kind === "small");
  if (small.length > 0) {
    out.push(
      `### Uploads and downloads of ${int(t.files)} files of ${t.fileSize / 1024} KiB (${t.folders} folders)`,
      "",
      "Each tool uploads the folder into an empty bucket, uploads it again (nothing to do), downloads that bucket into an empty folder, and downloads it again.",
      "",
      "| Tool | Network | Upload (s) | Client CPU (s) | Re-upload (s) | Download (s) | Client CPU (s) | Re-download (s) | Peak RSS (MiB) | Result |",
      "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    );
    for (const network of networks)
      for (const [tool, label] of tools) {
        const get = (d: TransferRun["direction"], p: Phase) => transferRun(t, tool, network, "small", d, p);
        const runs = [get("upload", "full"), get("upload", "noop"), get("download", "full"), get("download", "noop")];
        if (runs.every((r) => !r)) continue;
        const rss = Math.max(...runs.map((r) => r?.measurement.peakRssMiB ?? 0));
        const name = tool === "bucketsync" ? `**${label}**` : label;
        out.push(
          `| ${name} | ${network === "direct" ? "direct" : "20 ms RTT"} | ${wall(runs[0])} | ${cpu(runs[0])} | ${wall(runs[1])} | ${wall(runs[2])} | ${cpu(runs[2])} | ${wall(runs[3])} | ${fmt(rss, 0)} | ${transferStatus(runs)} |`,
        );
      }
    out.push(
      "",
      "The same as ratios, peer ÷ bucketsync (above 1: bucketsync is that many times faster, or uses that many times less client CPU):",
      "",
      "| Peer | Network | Upload | Upload CPU | Re-upload | Download | Download CPU | Re-download |",
      "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    );
    for (const network of networks)
      for (const [tool, label] of tools) {
        if (tool === "bucketsync" || tool === FLOOR_ID) continue;
        const cell = (d: TransferRun["direction"], p: Phase, what: "wall" | "cpu") => {
          const peer = transferRun(t, tool, network, "small", d, p)?.measurement;
          const base = transferRun(t, "bucketsync", network, "small", d, p)?.measurement;
          if (!peer?.ok || !base?.ok) return "–";
          return what === "wall" ? times(peer.wallS, base.wallS) : times(peer.clientCpuS, base.clientCpuS);
        };
        if (!transferRun(t, tool, network, "small", "upload", "full")) continue;
        out.push(
          `| ${label} | ${network === "direct" ? "direct" : "20 ms RTT"} | ${cell("upload", "full", "wall")} | ${cell("upload", "full", "cpu")} | ${cell("upload", "noop", "wall")} | ${cell("download", "full", "wall")} | ${cell("download", "full", "cpu")} | ${cell("download", "noop", "wall")} |`,
        );
      }
    out.push("");
    const ceiling = ceilingTable(t, networks);
    if (ceiling) out.push(ceiling, "");
  }
  const large = t.runs.filter((r) => r.kind === "large");
  if (large.length > 0) {
    const network = large[0]!.network;
    out.push(
      `### One file of ${mib(t.largeMiB)}, ${network === "direct" ? "direct" : "20 ms RTT"}`,
      "",
      "| Tool | Upload (s) | Client CPU (s) | Peak RSS (MiB) | Download (s) | Client CPU (s) | Peak RSS (MiB) | Result |",
      "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    );
    for (const [tool, label] of tools) {
      const up = transferRun(t, tool, network, "large", "upload", "full");
      const down = transferRun(t, tool, network, "large", "download", "full");
      if (!up && !down) continue;
      const name = tool === "bucketsync" ? `**${label}**` : label;
      out.push(
        `| ${name} | ${wall(up)} | ${cpu(up)} | ${fmt(up?.measurement.peakRssMiB, 0)} | ${wall(down)} | ${cpu(down)} | ${fmt(down?.measurement.peakRssMiB, 0)} | ${transferStatus([up, down])} |`,
      );
    }
    out.push("");
  }
  const walk = t.runs.find((r) => r.kind === "walk");
  if (walk) {
    const m = walk.measurement;
    out.push(
      `### Uploading a folder of ${int(t.walkFiles)} files (${t.walkFolders} folders), memory`,
      "",
      "| Tool | Upload (s) | Client CPU (s) | Peak RSS (MiB) | Requests | Result |",
      "| --- | ---: | ---: | ---: | --- | --- |",
      `| **${walk.toolLabel}** | ${fmt(m.wallS, 2)} | ${fmt(m.clientCpuS, 2)} | ${fmt(m.peakRssMiB, 0)} | ${requestsText(m)} | ${transferStatus([walk])} |`,
      "",
    );
  }
  const commands = new Map<string, string>();
  for (const r of t.runs) {
    const key = `${r.toolLabel} ${r.direction}`;
    if (!commands.has(key) && r.kind === "small")
      commands.set(
        key,
        shortCommand(r.measurement.command).replace(/\S*\/bench\/results\/tmp\/\S+?\/(small-src|down-\S+)/g, "DIR"),
      );
  }
  if (commands.size > 0) {
    out.push("Commands:", "");
    for (const [k, c] of commands) out.push(`- ${k}: \`${c}\``);
    out.push("");
  }
  return out.join("\n");
}

export function markdown(result: BenchResult): string {
  const { meta } = result;
  const out: string[] = [];
  out.push(`## Benchmark results (${meta.date.slice(0, 10)})`);
  out.push("");
  out.push(
    `Bucket-to-bucket sync of **${int(meta.objects)} objects of ${meta.objectSize}** (server-side copies) on ${meta.server}, ` +
      `client and server sharing one machine: ${meta.machine.cpus} CPUs (${meta.machine.cpuModel}), ${meta.machine.memGiB} GiB RAM, Linux ${meta.machine.kernel}. ` +
      `"Through the proxy" adds a ${meta.proxy.roundTripMs} ms round trip (${meta.proxy.oneWayDelayMs} ms each way, and one round trip per new connection) with a user-space TCP proxy. ` +
      `Each tool copies into its own empty bucket, then runs again with nothing to do.`,
  );
  out.push("");
  out.push(
    "Wall = elapsed time. Client CPU (user+sys of the tool's whole process tree) and peak RSS come from GNU time. " +
      "Server CPU = utime+stime of ceph-mon, ceph-osd and radosgw during the run. " +
      "Requests = requests to the run's buckets in radosgw's access log, by HTTP method (a CopyObject is a PUT); \"server total\" appears when radosgw served noticeably more requests meanwhile, i.e. other clients shared the server, and then server CPU includes their load too. " +
      "Other CPU = the machine's remaining busy time during the run (not client, server or proxy): large values mean other work disturbed the measurement. " +
      "Each command starts only once the machine is idle.",
  );
  out.push("");
  for (const { network, phase } of SCENARIOS) {
    const t = scenarioTable(result, network, phase);
    if (t) out.push(t, "");
  }
  if (result.listing) out.push(listingTable(result.listing), "");
  if (result.transfers) out.push(transferTables(result.transfers));
  out.push("### Setup");
  out.push("");
  out.push("| Tool | Version | Settings | Command (direct) |");
  out.push("| --- | --- | --- | --- |");
  const settings = new Map<string, { label: string; settings: string; command: string }>();
  for (const r of result.runs)
    if (!settings.has(r.tool))
      settings.set(r.tool, { label: r.toolLabel, settings: r.settings, command: shortCommand(r.measurement.command) });
  const versionFor = (tool: string) =>
    tool.startsWith("aws-cli")
      ? meta.versions.aws
      : tool.startsWith("rclone")
        ? meta.versions.rclone
        : tool === "s3cmd"
          ? meta.versions.s3cmd
          : tool === "bare-sdk"
            ? meta.versions.sdk
            : meta.versions.bucketsync;
  for (const [tool, s] of settings) out.push(`| ${s.label} | ${versionFor(tool)} | ${s.settings} | \`${s.command}\` |`);
  out.push("");
  out.push(
    `Node ${meta.versions.node}; ${meta.versions.sdk}. Seeding the source bucket took ${fmt(meta.seedSeconds, 1)} s; the whole benchmark took ${fmt(meta.totalSeconds / 60, 1)} min.`,
  );
  if (meta.notes.length > 0) {
    out.push("");
    out.push("Notes:");
    out.push("");
    for (const n of meta.notes) out.push(`- ${n}`);
  }
  const runNotes = result.runs.filter((r) => r.notes.length > 0);
  const listingNotes = result.listing?.runs.filter((r) => r.notes.length > 0) ?? [];
  for (const r of runNotes)
    for (const n of r.notes)
      out.push(`- ${r.toolLabel}, ${r.phase === "full" ? "full copy" : "no-op"}, ${r.network}: ${n}`);
  for (const r of listingNotes) for (const n of r.notes) out.push(`- ${r.toolLabel}, listing, ${r.network}: ${n}`);
  for (const r of result.transfers?.runs ?? [])
    for (const n of r.notes)
      out.push(`- ${r.toolLabel}, ${r.kind} ${r.phase === "noop" ? "re-" : ""}${r.direction}, ${r.network}: ${n}`);
  out.push("");
  out.push(
    `Reproduce: \`npm run bench\` (\`BENCH_N=${meta.objects}\`; \`BENCH_QUICK=1\` for a 500-object smoke run; \`BENCH_SKIP_LISTING=1\` to skip the listing part).`,
  );
  return out.join("\n") + "\n";
}

// ------------------------------------------------------------------ SVG

const COLORS: Record<string, string> = {
  bucketsync: "#2563eb",
  "bare-sdk": "#64748b",
  "aws-cli": "#f59e0b",
  "aws-cli-64": "#b45309",
  rclone: "#4ade80",
  "rclone-64": "#15803d",
  s3cmd: "#a855f7",
};

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function niceStep(max: number): number {
  const raw = max / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const n = raw / mag;
  return (n <= 1 ? 1 : n <= 2 ? 2 : n <= 2.5 ? 2.5 : n <= 5 ? 5 : 10) * mag;
}

interface Panel {
  title: string;
  unit: string;
  rows: { label: string; value: number | null; color: string; bold: boolean; text: string }[];
}

/** A bar of wall time: the tool's, its ratio to bucketsync's, and `extra` after the figures. */
function wallRow(tool: string, label: string, m: Measurement, base: Measurement | undefined, extra: string) {
  const ratio = tool !== "bucketsync" && base?.ok && m.ok ? `  (${ratioText(m.wallS, base.wallS)})` : "";
  return {
    label,
    value: m.ok ? m.wallS : null,
    color: COLORS[tool] ?? "#94a3b8",
    bold: tool === "bucketsync",
    text: m.timedOut ? "timed out" : !m.ok ? `failed (exit ${m.exitCode})` : `${m.wallS.toFixed(2)} s${ratio}${extra}`,
  };
}

export function svg(result: BenchResult): string {
  const panels: Panel[] = [];
  for (const { network, phase } of SCENARIOS) {
    const runs = result.runs.filter((r) => r.network === network && r.phase === phase);
    if (runs.length === 0) continue;
    const base = runs.find((r) => r.tool === "bucketsync");
    panels.push({
      title: `${PHASE_TITLE[phase]} (${int(result.meta.objects)} objects), ${NETWORK_TITLE[network]}: wall time, lower is better`,
      unit: "s",
      rows: runs.flatMap((r) => {
        const m = r.measurement;
        const bad = !m.ok || (phase === "full" && r.objectsAfter !== r.expectedObjects);
        const rewritten = phase === "noop" && r.rewritten ? `, ${int(r.rewritten)} rewritten` : "";
        const row = wallRow(r.tool, r.toolLabel, m, base?.measurement, `${rewritten}${bad ? "  MISMATCH" : ""}`);
        const second = r.secondNoop?.measurement;
        if (!second) return [row];
        const ratio2 =
          base?.measurement.ok && second.ok ? `  (${ratioText(second.wallS, base.measurement.wallS)})` : "";
        return [
          row,
          {
            label: `${r.toolLabel}, 2nd re-sync`,
            value: second.ok ? second.wallS : null,
            color: COLORS[r.tool] ?? "#94a3b8",
            bold: false,
            text: second.ok
              ? `${second.wallS.toFixed(2)} s${ratio2}${r.secondNoop!.rewritten ? `, ${int(r.secondNoop!.rewritten)} rewritten` : ""}`
              : "failed",
          },
        ];
      }),
    });
  }
  if (result.listing && result.listing.runs.length > 0) {
    panels.push({
      title: `Listing ${int(result.listing.keys)} keys: keys per second, higher is better`,
      unit: "keys/s",
      rows: result.listing.runs.map((r) => ({
        label: `${r.toolLabel}${r.network === "proxy" ? " (20 ms)" : ""}`,
        value: r.measurement.ok ? r.keysPerS : null,
        color: COLORS[r.tool] ?? "#94a3b8",
        bold: r.tool === "bucketsync",
        text: r.measurement.ok ? `${int(Math.round(r.keysPerS))} keys/s` : "failed",
      })),
    });
  }

  const tr = result.transfers;
  for (const kind of ["small", "large"] as const)
    for (const direction of ["upload", "download"] as const)
      for (const network of ["direct", "proxy"] as const) {
        const runs = tr?.runs.filter(
          (r) => r.kind === kind && r.direction === direction && r.network === network && r.phase === "full",
        );
        if (!tr || !runs || runs.length === 0) continue;
        const base = runs.find((r) => r.tool === "bucketsync");
        const what =
          kind === "small" ? `${int(tr.files)} files of ${tr.fileSize / 1024} KiB` : `one file of ${mib(tr.largeMiB)}`;
        panels.push({
          title: `${direction === "upload" ? "Upload" : "Download"} of ${what}, ${NETWORK_TITLE[network]}: wall time, lower is better`,
          unit: "s",
          rows: runs.map((r) =>
            wallRow(r.tool, r.toolLabel, r.measurement, base?.measurement, r.found !== r.expected ? "  MISMATCH" : ""),
          ),
        });
      }

  const width = 1000;
  const labelW = 240;
  const barW = 500;
  const rowH = 22;
  const titleH = 30;
  const axisH = 18;
  const gap = 22;
  let y = 44;
  const parts: string[] = [];
  parts.push(
    `<text x="16" y="26" font-size="17" font-weight="bold">bucketsync vs peers: ${int(result.meta.objects)} objects of ${esc(result.meta.objectSize)}, radosgw on 127.0.0.1, ${result.meta.machine.cpus} shared CPUs (${esc(result.meta.date.slice(0, 10))})</text>`,
  );
  for (const p of panels) {
    parts.push(`<text x="16" y="${y + 18}" font-size="14" font-weight="bold">${esc(p.title)}</text>`);
    y += titleH;
    const max = Math.max(...p.rows.map((r) => r.value ?? 0), 1e-9);
    const step = niceStep(max);
    const top = Math.ceil(max / step) * step;
    const scale = barW / top;
    const plotH = p.rows.length * rowH;
    for (let t = 0; t <= top + step / 1000; t += step) {
      const x = labelW + t * scale;
      parts.push(`<line x1="${x.toFixed(1)}" y1="${y}" x2="${x.toFixed(1)}" y2="${y + plotH}" stroke="#e2e8f0"/>`);
      const tick = p.unit === "s" ? `${+t.toFixed(2)} s` : `${int(Math.round(t))}`;
      parts.push(
        `<text x="${x.toFixed(1)}" y="${y + plotH + 13}" font-size="10" fill="#64748b" text-anchor="middle">${tick}</text>`,
      );
    }
    p.rows.forEach((r, i) => {
      const ry = y + i * rowH;
      parts.push(
        `<text x="${labelW - 8}" y="${ry + 15}" font-size="12" text-anchor="end"${r.bold ? ' font-weight="bold"' : ""}>${esc(r.label)}</text>`,
      );
      const w = r.value === null ? 0 : Math.max(1, r.value * scale);
      if (r.value !== null)
        parts.push(
          `<rect x="${labelW}" y="${ry + 3}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="${r.color}" rx="2"/>`,
        );
      parts.push(
        `<text x="${(labelW + w + 6).toFixed(1)}" y="${ry + 15}" font-size="11" fill="${r.value === null ? "#dc2626" : "#0f172a"}"${r.bold ? ' font-weight="bold"' : ""}>${esc(r.text)}</text>`,
      );
    });
    y += plotH + axisH + gap;
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" viewBox="0 0 ${width} ${y}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    ...parts,
    "</svg>",
    "",
  ].join("\n");
}

export function writeReports(result: BenchResult, dir: string): { md: string; json: string; svg: string } {
  mkdirSync(dir, { recursive: true });
  const files = { md: join(dir, "latest.md"), json: join(dir, "latest.json"), svg: join(dir, "latest.svg") };
  writeFileSync(files.json, JSON.stringify(result, null, 2) + "\n");
  writeFileSync(files.md, markdown(result));
  writeFileSync(files.svg, svg(result));
  return files;
}

// Re-render the markdown and SVG from a results JSON: node dist/bench/report.js [bench/results/latest.json]
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const file =
    process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), "..", "..", "bench", "results", "latest.json");
  const result = JSON.parse(readFileSync(file, "utf8")) as BenchResult;
  const files = writeReports(result, dirname(file));
  process.stdout.write(markdown(result));
  process.stderr.write(`wrote ${files.md}, ${files.svg}\n`);
}
