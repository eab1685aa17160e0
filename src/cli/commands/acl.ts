/** `bucketsync acl apply LOCATION --acl CANNED`: a canned ACL on every object under a prefix. */
import { Option, type Command } from "commander";
import { applyAcl } from "../../acl.js";
import { resolveLocation } from "../../config/resolve.js";
import { CANNED_ACLS, type CannedAcl } from "../../core/types.js";
import type { FilterRule } from "../../options/table.js";
import { parseWholeNumber } from "../../options/parse.js";
import { aclExitCode, type CliContext } from "../context.js";
import { displayUrl, printableKey } from "../format/render.js";
import { addConnectionOptions, addFilterOptions, connectionFrom } from "../options.js";

export function registerAcl(program: Command, ctx: CliContext): void {
  const acl = program.command("acl").description("object ACLs");
  const filters: FilterRule[] = [];
  const apply = acl
    .command("apply")
    .description("set a canned ACL on every object under a prefix (the bucket itself is not changed)")
    .argument("<location>", "s3://bucket[/prefix] or remote:[path]")
    .addOption(
      new Option("--acl <canned>", "the canned ACL").choices(CANNED_ACLS as unknown as string[]).makeOptionMandatory(),
    )
    .option("--dry-run", "print what would change; change nothing")
    .option(
      "--concurrency <n>",
      "requests in flight (default 64)",
      parseWholeNumber("--concurrency", { min: 1, max: 4096 }),
    )
    .option("--json", "print JSON lines")
    .option("-q, --quiet", "print only errors and the summary");
  addFilterOptions(apply, filters);
  addConnectionOptions(apply);
  apply.addHelpText(
    "after",
    `\nExample (only the .png files: exclude everything, then include them back):\n  bucketsync acl apply s3://acme-staging/images --acl public-read --exclude "*" --include "*.png"`,
  );
  apply.action(async (locationArg: string, flags: Record<string, unknown>) => {
    const { io } = ctx;
    const loc = resolveLocation(locationArg, await ctx.config());
    const started = Date.now();
    const result = await applyAcl({
      location: loc.url,
      acl: flags.acl as CannedAcl,
      filters,
      dryRun: !!flags.dryRun,
      concurrency: flags.concurrency as number | undefined,
      connection: { ...connectionFrom(flags), ...loc.connection },
      onEvent: (e) => {
        if (flags.json) io.out.write(JSON.stringify(e) + "\n");
        else if (e.type === "error") io.err.write(`error: acl ${printableKey(e.key)}: ${e.message}\n`);
        else if (!flags.quiet)
          io.out.write(`${e.dryRun ? "(dryrun) " : ""}acl ${e.acl}: ${displayUrl(loc.url)}${printableKey(e.key)}\n`);
      },
    });
    if (result.fatal) {
      io.err.write(
        `bucketsync: error: ${result.fatal.context}: ${result.fatal.message}${result.applied === 0 ? "; nothing changed" : ""}\n`,
      );
    } else {
      const summary = {
        type: "summary",
        applied: result.applied,
        failed: result.failed,
        dryRun: !!flags.dryRun,
        durationMs: Date.now() - started,
      };
      if (flags.json) io.out.write(JSON.stringify(summary) + "\n");
      else
        io.out.write(
          `${flags.dryRun ? "dry run: would set" : "set"} ${flags.acl} on ${result.applied} object(s), failed ${result.failed}\n`,
        );
    }
    ctx.setExit(aclExitCode(result));
  });
}
