/** `bucketsync ls LOCATION`: the objects under a bucket prefix or in a folder, as the sync would see them. */
import type { Command } from "commander";
import { resolveLocation } from "../../config/resolve.js";
import { parseLocation } from "../../core/location.js";
import type { ObjectInfo } from "../../core/types.js";
import { checkLocalLocations } from "../../stores/local/locations.js";
import type { FilterRule } from "../../options/table.js";
import { compileFilters } from "../../planner/filters.js";
import { StoreOpener } from "../../stores/open.js";
import { EXIT, type CliContext } from "../context.js";
import { humanBytes, printableKey } from "../format/render.js";
import { addConnectionOptions, addFilterOptions, connectionFrom } from "../options.js";

export function registerLs(program: Command, ctx: CliContext): void {
  const filters: FilterRule[] = [];
  const command = program
    .command("ls")
    .description(
      "list every object under s3://bucket[/prefix] or in a folder (keys relative to it), with --include/--exclude",
    )
    .argument("<location>", "s3://bucket[/prefix], a local folder, or remote:[path]")
    .option("-l, --long", "also show each object's modification time and ETag")
    .option("--json", "print JSON lines: one per object, then a summary");
  addFilterOptions(command, filters);
  addConnectionOptions(command);
  command.action(async (locationArg: string, flags: Record<string, unknown>) => {
    const { io } = ctx;
    const loc = resolveLocation(locationArg, await ctx.config());
    const filter = compileFilters(filters);
    const opener = new StoreOpener();
    let count = 0;
    let bytes = 0;
    try {
      const parsed = parseLocation(loc.url);
      // A folder that is not there is an error, as for sync; a bucket prefix that holds nothing is not.
      if (parsed.kind === "local") await checkLocalLocations(parsed, undefined);
      const store = await opener.open(loc.url, { connection: { ...connectionFrom(flags), ...loc.connection } });
      const show = (o: ObjectInfo, key = o.key) => {
        count++;
        bytes += o.size;
        if (flags.json)
          io.out.write(
            JSON.stringify({
              type: "object",
              key,
              size: o.size,
              lastModified: new Date(o.lastModified).toISOString(),
              etag: o.etag,
            }) + "\n",
          );
        else if (flags.long) {
          const when = new Date(o.lastModified).toISOString().replace("T", " ").slice(0, 19);
          io.out.write(`${when} ${String(o.size).padStart(12)} ${(o.etag ?? "-").padEnd(34)} ${printableKey(key)}\n`);
        } else io.out.write(`${String(o.size).padStart(12)} ${printableKey(key)}\n`);
      };
      for await (const o of store.list()) {
        if (!filter(o.key)) continue;
        show(o);
      }
      // `ls s3://bucket/key` of one object shows it, as aws s3 ls does.
      if (count === 0 && parsed.kind === "s3" && parsed.prefix !== "" && !/\/$/.test(loc.url)) {
        const key = parsed.prefix.replace(/\/$/, "");
        const name = key.slice(key.lastIndexOf("/") + 1);
        const parent = await opener.open(`s3://${parsed.bucket}/${key.slice(0, key.length - name.length)}`, {
          connection: { ...connectionFrom(flags), ...loc.connection },
        });
        const one = await parent.head(name);
        if (one) show(one, name);
      }
    } catch (err) {
      const { classifyListingFailure } = await import("../../core/errors.js");
      const { UsageError } = await import("../../core/types.js");
      if (err instanceof UsageError) throw err;
      const info = classifyListingFailure(err);
      io.err.write(`bucketsync: error: listing ${loc.url}: ${info.message}\n`);
      ctx.setExit(EXIT.usage);
      return;
    } finally {
      await opener.close();
    }
    if (flags.json) io.out.write(JSON.stringify({ type: "summary", objects: count, bytes }) + "\n");
    else io.err.write(`${count} object(s), ${humanBytes(bytes)}\n`);
    ctx.setExit(EXIT.ok);
  });
}
