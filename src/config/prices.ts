/**
 * `--price-table FILE` (issue 16): a small YAML or JSON file with the prices of another provider
 * or negotiated ones, checked with zod; errors are one line naming the file.
 *
 *   name: wasabi-us-east-1 2026-11        # shown with every cost
 *   requests:                             # USD per 1,000 requests; kinds left out cost 0
 *     LIST: 0
 *     PUT: 0
 *   transfer_out_per_gb: 0                # USD per GB read out of S3 to this machine (default 0)
 */
import { readFile } from "node:fs/promises";
import { parse } from "yaml";
import { z } from "zod";
import { REQUEST_KINDS, emptyCounts } from "../core/meter.js";
import type { PriceTable } from "../core/prices.js";
import { UsageError } from "../core/types.js";

const price = z.number().finite().nonnegative();
const PriceFile = z
  .object({
    name: z.string().min(1),
    requests: z.object(Object.fromEntries(REQUEST_KINDS.map((k) => [k, price.optional()]))).strict(),
    transfer_out_per_gb: price.optional(),
  })
  .strict();

export async function loadPriceTable(file: string): Promise<PriceTable> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read --price-table ${file}: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
  }
  let data: unknown;
  try {
    data = parse(text);
  } catch (err) {
    throw new UsageError(`--price-table ${file} is not YAML or JSON: ${(err as Error).message.split("\n")[0]}`);
  }
  const parsed = PriceFile.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.length > 0 ? ` at ${issue.path.join(".")}` : "";
    throw new UsageError(
      `--price-table ${file}${where}: ${issue.message}; expected name, requests (${REQUEST_KINDS.join(", ")}: USD per 1,000) and transfer_out_per_gb`,
    );
  }
  const perThousand = emptyCounts();
  for (const kind of REQUEST_KINDS) perThousand[kind] = (parsed.data.requests[kind] as number | undefined) ?? 0;
  return { name: parsed.data.name, perThousand, transferOutPerGB: parsed.data.transfer_out_per_gb ?? 0 };
}
