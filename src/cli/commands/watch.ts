/** `bucketsync watch SRC DST`: a full sync, then each change of the source applied as it happens (src/watch/). */
import type { Command } from "commander";
import { resolveLocation } from "../../config/resolve.js";
import type { FilterRule } from "../../options/table.js";
import { UsageError } from "../../core/types.js";
import type { WatchOptions } from "../../watch/watch.js";
import { againToQuit, EXIT, syncExitCode, type CliContext } from "../context.js";
import { addRunOptions, ineffectiveFlags, refuseFlagsOf, runOptionsFrom } from "../flags.js";
import { displayUrl, eventRenderer, printFatal, unverifiedCounter } from "../format/render.js";
import { addConnectionOptions, addSideConnectionOptions, connectionFrom, sideConnectionFrom } from "../options.js";

export function registerWatch(program: Command, ctx: CliContext): void {
  const filters: FilterRule[] = [];
  const command = program
    .command("watch")
    .description(
      "sync SRC to DST, then apply each change of SRC as it happens (bucket notifications or file-system events), with a periodic reconcile",
    )
    .argument(
      "<src>",
      "s3://bucket[/prefix] (on a server with SNS-style bucket notifications, or with --queue-url) or a local folder",
    )
    .argument("<dst>", "s3://bucket[/prefix] or a local folder");
  addRunOptions(command, "watch", filters);
  refuseFlagsOf(command, "watch", "sync");
  command
    .option("--json", "print JSON lines: one event per action, and the watch's own events")
    .option("-q, --quiet", "print only errors and warnings")
    .option("-v, --verbose", "print every action with its reason, skips included");
  addConnectionOptions(command);
  addSideConnectionOptions(command);
  command.addHelpText(
    "after",
    `
Examples:
  bucketsync watch s3://acme-production s3://acme-staging --delete --acl public-read
  bucketsync watch ./site s3://acme-web/site --delete
  bucketsync watch s3://prod s3://backup --reconcile 15m --listen 0.0.0.0:8088 --advertise http://10.0.0.5:8088
  bucketsync watch s3://prod s3://staging --delete --queue-url https://sqs.us-east-1.amazonaws.com/123456789012/prod-events

Stops on Ctrl-C or SIGTERM (exit 0) after the changes in flight, removing the bucket
notification and topic it created (--keep-notifications leaves them). On AWS S3 the events
come from an SQS queue the bucket notifies (--queue-url; its set-up is in the README).`,
  );
  command.action(async (src: string, dst: string, flags: Record<string, unknown>) => {
    const { io } = ctx;
    const config = await ctx.config();
    const from = resolveLocation(src, config);
    const to = resolveLocation(dst, config);
    const options: WatchOptions = {
      source: from.url,
      target: to.url,
      connection: connectionFrom(flags),
      sourceConnection: { ...from.connection, ...sideConnectionFrom("source", flags) },
      targetConnection: { ...to.connection, ...sideConnectionFrom("target", flags) },
      ...runOptionsFrom(flags, "watch", filters),
      notices: !!flags.verbose,
    };
    const ineffective = ineffectiveFlags(flags, options, "watch");
    const render = eventRenderer({
      json: !!flags.json,
      quiet: !!flags.quiet,
      verbose: !!flags.verbose,
      sourceUrl: displayUrl(options.source as string),
      targetUrl: displayUrl(options.target as string),
      ...io,
    });
    for (const message of ineffective) render({ type: "warning", message });
    const controller = new AbortController();
    const stopOnSignal = ctx.onInterrupt((signal) => {
      io.err.write(`\nbucketsync: ${signal}: stopping the watch after the changes in flight; ${againToQuit(signal)}\n`);
      controller.abort(new Error("interrupted"));
    });
    try {
      // Loaded for a watch only: its event sources and zod schemas cost every other command's start ~0.1 s of CPU.
      const [{ watch }, { watchRenderer }] = await Promise.all([
        import("../../watch/watch.js"),
        import("../format/watch.js"),
      ]);
      // The start-up sync's copies that ETags cannot prove: one warning once it is done, as sync says it.
      const unverified = unverifiedCounter();
      let startingUp = true;
      const sayWatch = watchRenderer({ json: !!flags.json, quiet: !!flags.quiet, ...io });
      const result = await watch({
        ...options,
        onEvent: (event) => {
          if (startingUp) unverified.onEvent(event);
          render(event);
        },
        onWatch: (event) => {
          sayWatch(event);
          if (event.type !== "synced") return;
          startingUp = false;
          const warning = unverified.warning(options.verify === "strict" ? 0 : event.summary.unverifiable);
          if (warning && !flags.json && !flags.quiet) io.err.write(warning);
        },
        signal: controller.signal,
      }).catch((err: unknown) => {
        // Bad input found while setting up (a missing source bucket, another watcher running):
        // one line on stderr as always, and with --json also the error event a sync would print.
        if (err instanceof UsageError && flags.json)
          io.out.write(
            JSON.stringify({ type: "error", fatal: true, code: "UsageError", context: "watch", message: err.message }) +
              "\n",
          );
        throw err;
      });
      const { fatal, refused, changedNothing } = result.startup;
      const nothing = changedNothing ? "; nothing changed" : "";
      printFatal(io, !!flags.json, fatal, !!changedNothing);
      if (refused) io.err.write(`bucketsync: refused: ${refused}${nothing}\n`);
      // A watch that ran until it was stopped ends well: exit 0 (also when stopped during its start-up sync).
      const stopped = controller.signal.aborted && (!fatal || fatal.code === "Interrupted") && !refused;
      ctx.setExit(stopped || (!fatal && !refused) ? EXIT.ok : syncExitCode(result.startup, false));
    } finally {
      stopOnSignal();
    }
  });
}
