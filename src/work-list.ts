/**
 * Reads a run's work list (issue 17): `--files-from FILE` (one key per line) or
 * `--files-from-raw FILE` (NUL-separated), `-` for standard input. The keys are parsed and
 * sorted by planner/work-list.ts; planner/strategy.ts plans only them.
 */
import { readFile } from "node:fs/promises";
import { UsageError } from "./core/types.js";
import type { OptionValues } from "./options/table.js";
import { parseWorkList } from "./planner/work-list.js";

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString("utf8");
}

/** The sorted keys of the run's work list, or undefined when it has none. */
export async function readWorkList(options: OptionValues): Promise<string[] | undefined> {
  if (options.filesFrom !== undefined && options.filesFromRaw !== undefined)
    throw new UsageError("--files-from and --files-from-raw cannot be used together");
  const raw = options.filesFromRaw !== undefined;
  const file = options.filesFromRaw ?? options.filesFrom;
  if (file === undefined) return undefined;
  const flag = raw ? "--files-from-raw" : "--files-from";
  let text: string;
  try {
    text = file === "-" ? await readAll(process.stdin) : await readFile(file, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read ${flag} ${file}: ${(err as Error).message}`);
  }
  return parseWorkList(text, raw);
}
