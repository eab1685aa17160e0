/**
 * `bucketsync rm LOCATION`: delete one object, or with --recursive every object under a prefix
 * (after --include/--exclude), listed completely before the first delete; --dry-run says what
 * would go. The deletes run as a sync's do: batches of 1000, per-key errors reported.
 */
import { Option, type Command } from "commander";
import { resolveLocation } from "../../config/resolve.js";
import { classifyListingFailure } from "../../core/errors.js";
import { parseLocation } from "../../core/location.js";
import { UsageError } from "../../core/types.js";
import { DeleteSpool } from "../../executor/delete-spool.js";
import { runDeletes } from "../../executor/executor.js";
import { Recorder } from "../../executor/recorder.js";
import { measuredUsage } from "../../executor/estimate.js";
import { RequestMeter } from "../../core/meter.js";
import type { FilterRule } from "../../options/table.js";
import { compileFilters } from "../../planner/filters.js";
import { StoreOpener } from "../../stores/open.js";
import { EXIT, type CliContext } from "../context.js";
import { displayUrl, eventRenderer } from "../format/render.js";
import { addConnectionOptions, addFilterOptions, connectionFrom } from "../options.js";

export function registerRm(program: Command, ctx: CliContext): void {
  const filters: FilterRule[] = [];
  const command = program
    .command("rm")
    .description("delete one object (s3://bucket/key), or with --recursive every object under a prefix")
    .argument("<location>", "s3://bucket/key, or s3://bucket[/prefix] with --recursive, or remote:[path]")
    .option("--recursive", "delete every object under the prefix (after --include/--exclude)")
    .option("--dry-run", "print what would be deleted; delete nothing")
    .addOption(new Option("--dryrun", "alias of --dry-run").hideHelp())
    .option("--json", "print JSON lines: one event per delete, then the summary")
    .option("-q, --quiet", "print only errors and the summary");
  addFilterOptions(command, filters);
  addConnectionOptions(command);
  command.action(async (locationArg: string, flags: Record<string, unknown>) => {
    const { io } = ctx;
    if (flags.dryrun) flags.dryRun = true;
    const loc = resolveLocation(locationArg, await ctx.config());
    const parsed = parseLocation(loc.url);
    if (parsed.kind !== "s3") throw new UsageError("rm works on s3:// locations (delete local files with your shell)");
    // One object: its folder is the store and its name the key; a prefix needs --recursive.
    let root = loc.url;
    let only: string | undefined;
    if (!flags.recursive) {
      const key = parsed.prefix.replace(/\/$/, "");
      if (key === "" || /\/$/.test(loc.url)) {
        throw new UsageError(
          `${parsed.url} names a prefix, not an object; add --recursive to delete every object under it`,
        );
      }
      only = key.slice(key.lastIndexOf("/") + 1);
      root = `s3://${parsed.bucket}/${key.slice(0, key.length - only.length)}`;
    } else if (filters.length === 0 && parsed.prefix === "" && !flags.dryRun) {
      // Emptying a whole bucket is allowed, as with aws s3 rm --recursive; it is said once first.
      io.err.write(`bucketsync: deleting every object in s3://${parsed.bucket}/\n`);
    }
    const filter = compileFilters(filters);
    const record = new Recorder(
      eventRenderer({
        json: !!flags.json,
        quiet: !!flags.quiet,
        verbose: false,
        sourceUrl: root,
        targetUrl: displayUrl(root),
        ...io,
      }),
      !!flags.dryRun,
    );
    // Counted like a sync's requests, so the summary says what the deletes sent and cost.
    const meter = new RequestMeter();
    const opener = new StoreOpener(undefined, meter);
    const spool = new DeleteSpool();
    try {
      const store = await opener.open(root, { connection: { ...connectionFrom(flags), ...loc.connection } });
      if (only !== undefined) {
        const found = await store.head(only);
        if (!found) {
          // A missing bucket answers a HEAD like a missing key: the listing says which it is.
          for await (const _ of store.list({ prefix: `${only}/` })) {
            throw new UsageError(
              `${parsed.url.replace(/\/$/, "")} names a prefix, not an object; add --recursive to delete every object under it`,
            );
          }
          io.err.write(`bucketsync: error: no such object: ${parsed.url.replace(/\/$/, "")}\n`);
          ctx.setExit(EXIT.failed);
          return;
        }
        await spool.add({ key: only, size: found.size, etag: found.etag });
      } else {
        // The whole listing first: a listing that fails part-way deletes nothing.
        for await (const o of store.list())
          if (filter(o.key)) await spool.add({ key: o.key, size: o.size, etag: o.etag });
      }
      await runDeletes(spool, { target: store, dryRun: !!flags.dryRun }, record, "rm");
    } catch (err) {
      if (err instanceof UsageError) throw err;
      io.err.write(`bucketsync: error: ${classifyListingFailure(err).message}; nothing deleted\n`);
      ctx.setExit(EXIT.usage);
      return;
    } finally {
      spool.dispose();
      await opener.close();
    }
    const summary = record.finish(measuredUsage(meter.snapshot()));
    eventRenderer({ json: !!flags.json, quiet: false, verbose: false, sourceUrl: root, targetUrl: root, ...io })({
      type: "summary",
      ...summary,
    });
    ctx.setExit(summary.failed > 0 ? EXIT.failed : EXIT.ok);
  });
}
