/** `bucketsync cp SRC DST`: one object (or file) to another place or name; with --recursive, a copy that never deletes. */
import type { Command } from "commander";
import type { FilterRule } from "../../options/table.js";
import type { CliContext } from "../context.js";
import { addSyncFlags, runSync } from "./sync.js";

export function registerCp(program: Command, ctx: CliContext): void {
  const filters: FilterRule[] = [];
  const command = program
    .command("cp")
    .description(
      "copy one object or file (s3://bucket/key, ./file) to a key, file or folder; with --recursive, every new or changed object under a prefix (never deletes)",
    )
    .argument("<src>", "s3://bucket/key or a file; with --recursive s3://bucket[/prefix] or a folder")
    .argument(
      "<dst>",
      "s3://bucket/key or a file path names the copy; s3://bucket, s3://bucket/prefix/ (trailing /) or a folder keeps the name",
    )
    .option("--recursive", "copy every object under the prefix or folder (new and changed ones, as rclone copy)");
  addSyncFlags(command, "cp", filters);
  command.addHelpText(
    "after",
    `
Examples:
  bucketsync cp s3://acme-production/logo.png s3://acme-staging/logo.png --acl public-read
  bucketsync cp s3://acme-production/report.csv s3://acme-staging/archive/   (keeps the name)
  bucketsync cp ./index.html s3://acme-web/site/index.html --cache-control max-age=60
  bucketsync cp s3://acme-production/data.json ./data.json
  bucketsync cp s3://acme-production/images s3://acme-staging/images --recursive`,
  );
  command.action(async (src: string, dst: string, flags: Record<string, unknown>) => {
    ctx.setExit(
      await runSync(ctx, {
        source: src,
        target: dst,
        flags,
        filters,
        config: await ctx.config(),
        copy: { recursive: !!flags.recursive },
      }),
    );
  });
}
