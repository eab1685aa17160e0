import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { LineCounter, parseDocument, isMap, isNode, isScalar } from "yaml";
import { z } from "zod";
import { UsageError } from "../core/types.js";
import { configKeyOf, type OptionDef } from "../options/define.js";
import { OPTION_TABLE } from "../options/table.js";

/**
 * bucketsync.yaml: named remotes and jobs. Credentials never live here: a remote names an AWS
 * profile, and the standard credential chain does the rest.
 */
const Remote = z
  .object({
    url: z.string().min(1),
    profile: z.string().optional(),
    endpoint: z.string().url().optional(),
    region: z.string().optional(),
    force_path_style: z.boolean().optional(),
  })
  .strict();

const Filter = z.union([
  z.object({ include: z.string().min(1) }).strict(),
  z.object({ exclude: z.string().min(1) }).strict(),
]);

/** A config value of a table option: its kind's type, or for options the CLI parses (sizes, times) also the CLI's text. */
function optionSchema(def: OptionDef<unknown>): z.ZodType {
  const base =
    def.kind === "boolean"
      ? z.boolean()
      : def.kind === "enum"
        ? z.enum(def.choices as [string, ...string[]])
        : def.kind === "number"
          ? z.number()
          : z.string();
  const parse = def.parse;
  const checked = def.validate
    ? base.superRefine((v, ctx) => {
        const problem = def.validate!(v, "value");
        if (problem) ctx.addIssue({ code: "custom", message: problem });
      })
    : base;
  if (!parse) return checked.optional();
  return z
    .union([checked, z.string()])
    .superRefine((v, ctx) => {
      if (typeof v !== "string" || def.kind === "string") return;
      try {
        parse(v, "value");
      } catch (err) {
        ctx.addIssue({ code: "custom", message: (err as Error).message });
      }
    })
    .optional();
}

/** Every option of the table that a job may set, under its config key (options/table.ts). */
const tableKeys = Object.fromEntries(
  Object.entries(OPTION_TABLE).flatMap(([key, def]) => {
    const configKey = configKeyOf(key, def);
    return configKey ? [[configKey, optionSchema(def)]] : [];
  }),
);

const Job = z
  .object({
    from: z.string().min(1),
    to: z.string().min(1),
    ...tableKeys,
    /** Shorthand lists: excludes apply first, then includes (so an include can re-admit). */
    exclude: z.array(z.string().min(1)).optional(),
    include: z.array(z.string().min(1)).optional(),
    /** Ordered rules, later wins, exactly like repeated --include/--exclude flags. */
    filters: z.array(Filter).optional(),
    /** The CLI's shortcuts for `compare`. */
    size_only: z.boolean().optional(),
    checksum: z.boolean().optional(),
    description: z.string().optional(),
  })
  .strict();

const ConfigSchema = z
  .object({
    remotes: z
      .record(z.string().regex(/^[A-Za-z0-9_.-]+$/, "remote names use letters, digits, _ . -"), Remote)
      .optional(),
    jobs: z.record(z.string().regex(/^[A-Za-z0-9_.:-]+$/, "job names use letters, digits, _ . : -"), Job).optional(),
  })
  .strict();

export type RemoteConfig = z.infer<typeof Remote>;
export type JobConfig = z.infer<typeof Job> & Record<string, unknown>;
export interface Config {
  file?: string;
  remotes: Record<string, RemoteConfig>;
  jobs: Record<string, JobConfig>;
}

import { DEFAULT_CONFIG_FILE } from "./resolve.js";
export { DEFAULT_CONFIG_FILE };

/**
 * Loads `--config PATH`, or ./bucketsync.yaml when present. A missing default file is an empty
 * config; a missing named file, bad YAML or a schema violation is a UsageError naming file:line.
 */
export function loadConfig(path: string | undefined, cwd = process.cwd()): Config {
  const file = resolve(cwd, path ?? DEFAULT_CONFIG_FILE);
  if (!existsSync(file)) {
    if (path !== undefined) throw new UsageError(`config file not found: ${path}`);
    return { remotes: {}, jobs: {} };
  }
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new UsageError(
      `cannot read config file ${path ?? DEFAULT_CONFIG_FILE}: ${(err as NodeJS.ErrnoException).code === "EISDIR" ? "it is a folder" : (err as Error).message}`,
    );
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const at = e.linePos?.[0] ?? lineCounter.linePos(e.pos[0]);
    throw new UsageError(
      `${path ?? DEFAULT_CONFIG_FILE}${at ? `:${at.line}:${at.col}` : ""}: invalid YAML: ${e.message.split("\n")[0]}`,
    );
  }
  const parsed = ConfigSchema.safeParse(doc.toJS() ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    // Point at the deepest node that exists on the issue's path; an unknown key points at itself.
    const nodePath = [...issue.path, ...(issue.code === "unrecognized_keys" ? issue.keys.slice(0, 1) : [])] as (
      string | number
    )[];
    let line: number | undefined;
    for (let n = nodePath.length; n >= 0 && line === undefined; n--) {
      const target = nodePath.slice(0, n);
      const node =
        n > 0 && issue.code === "unrecognized_keys" && n === nodePath.length
          ? keyNode(doc, target)
          : doc.getIn(target, true);
      if (isNode(node) && node.range) line = lineCounter.linePos(node.range[0]).line;
    }
    const where = issue.path.length > 0 ? ` (${issue.path.join(".")})` : "";
    throw new UsageError(`${path ?? DEFAULT_CONFIG_FILE}${line ? `:${line}` : ""}: ${issue.message}${where}`);
  }
  return { file, remotes: parsed.data.remotes ?? {}, jobs: parsed.data.jobs ?? {} };
}

/** The key node (not the value) of a map entry, so an unknown key is reported on its own line. */
function keyNode(doc: ReturnType<typeof parseDocument>, path: (string | number)[]): unknown {
  const parent = doc.getIn(path.slice(0, -1), true);
  if (!isMap(parent)) return undefined;
  const pair = parent.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === path[path.length - 1]);
  return pair?.key;
}

export { jobFilters, resolveLocation, type ResolvedLocation } from "./resolve.js";
