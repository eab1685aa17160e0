import type { SyncEvent, SyncSummary } from "../../executor/events.js";

export interface RenderOptions {
  json: boolean;
  quiet: boolean;
  verbose: boolean;
  sourceUrl: string;
  targetUrl: string;
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
  /** Where human action lines go; a live progress display passes its own so lines print above it. */
  line?: (text: string) => void;
}

/** Turns run events into what the user sees: aws-cli style lines, or JSON lines with --json. */
export function eventRenderer(o: RenderOptions): (event: SyncEvent) => void {
  const line = o.line ?? ((text: string) => o.out.write(text));
  return (event) => {
    if (o.json) {
      if (event.type === "skip" && !o.verbose) return;
      o.out.write(JSON.stringify(event) + "\n");
      return;
    }
    switch (event.type) {
      case "copy":
      case "update": {
        if (o.quiet) return;
        const why = o.verbose ? ` (${event.reason}${event.verification ? `; ${event.verification}` : ""})` : "";
        line(
          `${event.dryRun ? "(dryrun) " : ""}copy: ${o.sourceUrl}${printableKey(event.sourceKey ?? event.key)} to ${o.targetUrl}${printableKey(event.key)}${why}\n`,
        );
        return;
      }
      case "delete":
        if (o.quiet) return;
        line(
          `${event.dryRun ? "(dryrun) " : ""}delete: ${o.targetUrl}${printableKey(event.key)}${o.verbose ? ` (${event.reason})` : ""}\n`,
        );
        return;
      case "skip":
        if (o.verbose) line(`skip: ${o.targetUrl}${printableKey(event.key)} (${event.reason})\n`);
        return;
      case "error":
        o.err.write(
          `error: ${event.action ? `${event.action} ` : ""}${printableKey(event.key ?? "")}${event.key || event.action ? ": " : ""}${event.message}\n`,
        );
        return;
      case "warning":
        o.err.write(`warning: ${event.message}\n`);
        return;
      case "notice":
        if (o.verbose) o.err.write(`note: ${event.message}\n`);
        return;
      case "backup":
        if (o.quiet) return;
        line(
          `${event.dryRun ? "(dryrun) " : ""}backup: ${o.targetUrl}${printableKey(event.key)} to ${event.backup}${printableKey(event.backupKey)}${o.verbose ? ` (before the ${event.before})` : ""}\n`,
        );
        return;
      case "replan":
        if (o.quiet) return;
        line(`replan: ${o.targetUrl}${printableKey(event.key)} (${event.reason})\n`);
        return;
      case "summary":
        o.out.write(formatSummary(event) + "\n");
        return;
    }
  };
}

/**
 * A key as a terminal line shows it: control characters (newlines, tabs, escapes) spelled out
 * as \n, \t or \xNN, so a key cannot break or fake an output line. JSON output is exact anyway.
 */
export function printableKey(key: string): string {
  // eslint-disable-next-line no-control-regex
  if (!/[\x00-\x1f\x7f]/.test(key)) return key;
  // eslint-disable-next-line no-control-regex
  return key.replace(/[\x00-\x1f\x7f]/g, (c) =>
    c === "\n"
      ? "\\n"
      : c === "\t"
        ? "\\t"
        : c === "\r"
          ? "\\r"
          : `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
}

export function formatSummary(s: SyncSummary): string {
  const secs = (s.durationMs / 1000).toFixed(1);
  const parts = [
    `${s.dryRun ? "would copy" : "copied"} ${s.copied}`,
    `${s.dryRun ? "would update" : "updated"} ${s.updated}`,
    `${s.dryRun ? "would delete" : "deleted"} ${s.deleted}`,
    `skipped ${s.skipped}`,
    `failed ${s.failed}`,
  ];
  if (s.undecidable > 0) parts.push(`checksum undecidable ${s.undecidable}`);
  if (s.backedUp) parts.push(`${s.dryRun ? "would back up" : "backed up"} ${s.backedUp}`);
  if (s.replanned) parts.push(`re-read ${s.replanned} (source changed)`);
  if (s.verified + s.unverifiable + s.mismatched > 0)
    parts.push(`verified ${s.verified}, unverifiable ${s.unverifiable}, mismatched ${s.mismatched}`);
  const failedKeys = s.failedKeys ? `; ${s.failedKeys.written} failed key(s) written to ${s.failedKeys.file}` : "";
  // One line, ending as it always did ("12.0 KiB in 0.1s"); the requests and their cost before that.
  return `${s.dryRun ? "dry run: " : ""}${parts.join(", ")}; ${formatUsage(s)}; ${humanBytes(s.bytes)} in ${secs}s${failedKeys}`;
}

/**
 * The requests line under the summary: by kind, the bytes through this machine and their cost at
 * the price table; in a dry run, what the real run would send.
 */
export function formatUsage(s: Pick<SyncSummary, "requests" | "bytesThrough" | "cost" | "estimated">): string {
  const kinds = Object.entries(s.requests).filter(([, n]) => n > 0);
  const total = kinds.reduce((sum, [, n]) => sum + n, 0);
  const list = kinds.length > 0 ? kinds.map(([k, n]) => `${k} ${n}`).join(", ") : "none";
  return `${s.estimated ? "estimated requests" : "requests"} ${total} (${list}), ${humanBytes(s.bytesThrough)} through this machine, ${s.estimated ? "estimated cost" : "cost"} ${formatUsd(s.cost.usd)} at ${s.cost.priceTable} prices`;
}

/** Dollars with enough digits to show small costs ($0.0051, $12.40). */
export function formatUsd(usd: number): string {
  if (usd === 0) return "$0";
  if (usd >= 1) return `$${usd.toFixed(2)}`;
  return `$${usd.toPrecision(2).replace(/0+$/, "")}`;
}

export function humanBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

/** For action lines: s3://bucket/prefix/ or folder/ with the trailing slash keys are appended to. */
/**
 * Copies that could not be verified, counted by reason, for a run's closing warning (sync, and
 * watch's start-up sync): ETags cannot prove them, yet they are complete copies (exit 0).
 */
export function unverifiedCounter(): {
  onEvent(event: SyncEvent): void;
  warning(count: number, suffix?: string): string | undefined;
} {
  const reasons = new Map<string, number>();
  return {
    onEvent(event) {
      if ((event.type === "copy" || event.type === "update") && event.verification?.startsWith("unverifiable: ")) {
        const reason = event.verification.slice("unverifiable: ".length);
        reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
      }
    },
    warning(count, suffix = "") {
      if (count <= 0) return undefined;
      const [reason] = [...reasons.entries()].sort((a, b) => b[1] - a[1]);
      return `warning: ${count} copied object(s) could not be verified${reason ? ` (${reason[0]}${reasons.size > 1 ? ", and other reasons" : ""})` : ""}; -v or --report shows each${suffix}\n`;
    },
  };
}

export function displayUrl(arg: string): string {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/i.exec(arg);
  if (!m) return arg.endsWith("/") ? arg : `${arg}/`;
  const prefix = m[2] === "" || m[2]!.endsWith("/") ? m[2] : `${m[2]}/`;
  return `s3://${m[1]}/${prefix}`;
}

/** check's closing line; keys compared by size and time only are never hidden inside "in sync". */
export function formatCheckSummary(r: {
  inSync: boolean;
  differences: number;
  compared: number;
  undecidable: number;
}): string {
  const head = r.inSync
    ? `in sync: ${r.compared} objects compared`
    : `${r.differences} difference(s) in ${r.compared} objects compared`;
  const tail =
    r.undecidable > 0
      ? `; ${r.undecidable} undecidable (content could not be compared, ETags cannot decide: compared by size and time only; -v or --report names them)`
      : "";
  return head + tail;
}

/**
 * A run's fatal error: one line on stderr and, with --json, the error event on stdout too, so
 * the stream stays machine-readable to the end. An interrupt is not an error.
 */
export function printFatal(
  io: { out: NodeJS.WritableStream; err: NodeJS.WritableStream },
  json: boolean,
  fatal: { code: string; context: string; message: string } | undefined,
  nothingChanged: boolean,
): void {
  if (!fatal || fatal.code === "Interrupted") return;
  io.err.write(`bucketsync: error: ${fatal.context}: ${fatal.message}${nothingChanged ? "; nothing changed" : ""}\n`);
  if (json) io.out.write(fatalEvent(fatal));
}

/** The JSON line of an error that stopped a command (`--json`): sync's, watch's, cleanup's. */
export function fatalEvent(fatal: { code: string; context: string; message: string }): string {
  return (
    JSON.stringify({ type: "error", fatal: true, code: fatal.code, context: fatal.context, message: fatal.message }) +
    "\n"
  );
}
