/** What `watch` says of itself (start, fallback, reconciles, the lag status line): lines on stderr, or JSON lines. */
import { formatLag } from "../../watch/events.js";
import type { LagSnapshot, WatchEvent } from "../../watch/watch.js";
import { formatSummary } from "./render.js";

export function formatLagLine(lag: LagSnapshot): string {
  return `lag last ${formatLag(lag.last)}, p50 ${formatLag(lag.p50)}, p99 ${formatLag(lag.p99)}`;
}

export function watchRenderer(o: {
  json: boolean;
  quiet: boolean;
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}): (event: WatchEvent) => void {
  return (event) => {
    if (o.json) {
      o.out.write(JSON.stringify({ ...event, type: "watch", event: event.type }) + "\n");
      return;
    }
    switch (event.type) {
      case "watching":
        if (!o.quiet)
          o.err.write(
            `watching: ${event.events}${event.endpoint ? `, pushed to ${event.endpoint}<secret token>` : ""}\n`,
          );
        return;
      case "synced":
        if (!o.quiet) o.err.write(`start-up sync: ${formatSummary(event.summary)}\n`);
        return;
      case "fallback":
        o.err.write(
          `warning: the event source is not working: ${event.reason}; no deletes on events, reconciling every ${Math.round(event.reconcileEveryMs / 1000)}s instead\n`,
        );
        return;
      case "restored":
        o.err.write(`watching again: ${event.events}\n`);
        return;
      case "reconcile":
        if (event.error) o.err.write(`warning: reconcile (${event.reason}) failed: ${event.error}\n`);
        else if (!o.quiet && event.summary)
          o.err.write(`reconcile (${event.reason}): ${formatSummary(event.summary)}\n`);
        return;
      case "status":
        if (!o.quiet)
          o.err.write(
            `watch: ${event.applied} change(s) ${event.dryRun ? "reported (dry run: nothing written)" : "applied"}, ${formatLagLine(event.lag)}, ${event.pending} waiting${event.refused ? `, ${event.refused} refused (requests at the endpoint, or queue messages that were not events)` : ""}\n`,
          );
        return;
      case "stopping":
        if (!o.quiet) o.err.write("watch: stopping\n");
        if (event.kept)
          o.err.write(
            `watch: left ${event.kept} in place (--keep-notifications); the next watch of this source and target takes them over, and removes them when it stops without the flag\n`,
          );
        return;
    }
  };
}
